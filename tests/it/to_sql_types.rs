//! The `#[copy(to_sql)]` route for types pgbulk has no codec of its own for, one example per
//! type as the README shows it: cidr (the `cidr` crate), hstore, ltree, bit varying (`bit-vec`)
//! and point/box/path (`geo-types`), each through postgres-types' `ToSql`/`FromSql` (its
//! `with-cidr-0_3`, `with-bit-vec-0_8` and `with-geo-types-0_7` features; hstore and ltree
//! need none). Each is written with `copy_in`, checked in the server's own text output, and
//! read back with `copy_out`. (pgvector's `Vector` takes the same route, but Debian 12
//! packages no pgvector server extension for PostgreSQL 15, so it is documented in the README,
//! not tested here.)

use bit_vec::BitVec;
use cidr::{IpCidr, IpInet};
use geo_types::{coord, LineString, Point, Rect};
use pgbulk::testkit::TestDb;
use pgbulk::{BulkExt, CopyRow, FromCopyRow};
use std::collections::HashMap;
use std::fmt::Debug;

/// Creates the table (after `setup`), writes `rows`, checks the server's text of column `v`
/// against `text` row by row, and reads the rows back equal.
async fn round_trip<T>(setup: &str, rows: &[T], text: &[Option<&str>]) -> TestDb
where
    T: FromCopyRow + Debug + PartialEq + Send + 'static,
{
    let db = crate::db().await;
    db.client().batch_execute(setup).await.unwrap();
    assert_eq!(
        db.client().bulk().copy_in(rows).await.unwrap(),
        rows.len() as u64
    );
    let got: Vec<Option<String>> = db
        .client()
        .query(
            &format!(
                "SELECT v::text FROM {} ORDER BY id",
                pgbulk::table_of::<T>()
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let want: Vec<Option<String>> = text.iter().map(|t| t.map(str::to_owned)).collect();
    assert_eq!(got, want, "the server's text of what copy_in wrote");
    let back: Vec<T> = db
        .client()
        .bulk()
        .copy_out_query::<T>(&format!(
            "SELECT * FROM {} ORDER BY id",
            pgbulk::table_of::<T>()
        ))
        .collect_vec()
        .await
        .unwrap();
    assert_eq!(back, rows);
    db
}

/// `cidr`: `IpCidr` (and `IpInet` for `inet`) from the `cidr` crate.
#[derive(CopyRow, Debug, PartialEq)]
#[copy(table = "networks")]
struct Network {
    id: i32,
    #[copy(to_sql)]
    v: Option<IpCidr>,
    #[copy(to_sql)]
    gateway: IpInet,
}

#[tokio::test]
async fn cidr_crate_into_cidr_and_inet() {
    let rows = [
        Network {
            id: 1,
            v: Some("10.1.0.0/16".parse().unwrap()),
            gateway: "10.1.0.1/16".parse().unwrap(),
        },
        Network {
            id: 2,
            v: Some("2001:db8::/32".parse().unwrap()),
            gateway: "2001:db8::1/128".parse().unwrap(),
        },
        Network {
            id: 3,
            v: None,
            gateway: "192.0.2.7/24".parse().unwrap(),
        },
    ];
    round_trip(
        "CREATE TABLE networks (id int4, v cidr, gateway inet)",
        &rows,
        &[Some("10.1.0.0/16"), Some("2001:db8::/32"), None],
    )
    .await;
}

/// `hstore` (contrib extension): `HashMap<String, Option<String>>`.
#[derive(CopyRow, Debug, PartialEq)]
#[copy(table = "attrs")]
struct Attrs {
    id: i32,
    #[copy(to_sql)]
    v: HashMap<String, Option<String>>,
}

#[tokio::test]
async fn hashmap_into_hstore() {
    let rows = [Attrs {
        id: 1,
        v: HashMap::from([
            ("colour".to_owned(), Some("red".to_owned())),
            ("size".to_owned(), None),
        ]),
    }];
    round_trip(
        "CREATE EXTENSION hstore; CREATE TABLE attrs (id int4, v hstore)",
        &rows,
        &[Some(r#""size"=>NULL, "colour"=>"red""#)],
    )
    .await;
}

/// `ltree` (contrib extension): `String`, which postgres-types writes in ltree's binary
/// format (a version byte, then the label path).
#[derive(CopyRow, Debug, PartialEq)]
#[copy(table = "categories")]
struct Category {
    id: i32,
    #[copy(to_sql)]
    v: String,
}

#[tokio::test]
async fn string_into_ltree() {
    let rows = [Category {
        id: 1,
        v: "Top.Science.Astronomy".to_owned(),
    }];
    let db = round_trip(
        "CREATE EXTENSION ltree; CREATE TABLE categories (id int4, v ltree)",
        &rows,
        &[Some("Top.Science.Astronomy")],
    )
    .await;
    // it is a real ltree: the server's ltree operators work on it
    let under: bool = db
        .client()
        .query_one("SELECT v <@ 'Top.Science' FROM categories", &[])
        .await
        .unwrap()
        .get(0);
    assert!(under);
}

/// `bit varying`: `BitVec` from `bit-vec`.
#[derive(CopyRow, Debug, PartialEq)]
#[copy(table = "flags")]
struct Flags {
    id: i32,
    #[copy(to_sql)]
    v: BitVec,
}

#[tokio::test]
async fn bit_vec_into_varbit() {
    let mut bits = BitVec::from_elem(11, false);
    for i in [0, 2, 10] {
        bits.set(i, true);
    }
    round_trip(
        "CREATE TABLE flags (id int4, v varbit)",
        &[Flags { id: 1, v: bits }],
        &[Some("10100000001")],
    )
    .await;
}

/// `point`, `box` and `path`: `Point`, `Rect` and `LineString` from `geo-types`.
#[derive(CopyRow, Debug, PartialEq)]
#[copy(table = "places")]
struct Place {
    id: i32,
    #[copy(to_sql)]
    v: Point<f64>,
    #[copy(to_sql)]
    area: Rect<f64>,
    #[copy(to_sql)]
    route: LineString<f64>,
}

#[tokio::test]
async fn geo_types_into_point_box_and_path() {
    let rows = [Place {
        id: 1,
        v: Point::new(1.5, -2.0),
        area: Rect::new(coord! { x: 0.0, y: 0.0 }, coord! { x: 2.0, y: 3.0 }),
        route: LineString::from(vec![(0.0, 0.0), (1.0, 1.0), (2.0, 0.5)]),
    }];
    let db = round_trip(
        "CREATE TABLE places (id int4, v point, area box, route path)",
        &rows,
        &[Some("(1.5,-2)")],
    )
    .await;
    let (area, route): (String, String) = {
        let row = db
            .client()
            .query_one("SELECT area::text, route::text FROM places", &[])
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(area, "(2,3),(0,0)");
    assert_eq!(route, "[(0,0),(1,1),(2,0.5)]");
}
