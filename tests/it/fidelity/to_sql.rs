//! `#[copy(to_sql)]`: postgres-types `ToSql`/`FromSql` types — an enum, a composite, a domain
//! and an array of the composite — through `copy_in` and `copy_out`, against the server's
//! text output and its own binary COPY bytes.

use crate::db;
use futures_util::TryStreamExt;
use pgbulk::{BulkExt, CopyRow, ViaToSql};
use postgres_types::{FromSql, ToSql};

#[derive(Debug, Clone, Copy, PartialEq, ToSql, FromSql)]
#[postgres(name = "mood")]
enum Mood {
    #[postgres(name = "sad")]
    Sad,
    #[postgres(name = "ok")]
    Ok,
    #[postgres(name = "très bien")]
    TresBien,
}

#[derive(Debug, Clone, PartialEq, ToSql, FromSql)]
#[postgres(name = "point3")]
struct Point3 {
    x: i32,
    y: Option<f64>,
    label: String,
}

/// A domain's Rust type. PostgreSQL describes a domain column by its base type (`int4` here),
/// so the type must accept the base: `transparent`, not `name = "posint"` (whose derive only
/// accepts a type named `posint`).
#[derive(Debug, Clone, Copy, PartialEq, ToSql, FromSql)]
#[postgres(transparent)]
struct PosInt(i32);

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "custom")]
struct Custom {
    id: i32,
    #[copy(to_sql)]
    mood: Mood,
    #[copy(to_sql)]
    moods: Vec<Mood>,
    #[copy(to_sql)]
    point: Point3,
    #[copy(to_sql)]
    points: Vec<Point3>,
    #[copy(to_sql)]
    maybe: Option<Point3>,
    #[copy(to_sql)]
    n: PosInt,
    wrapped: Vec<ViaToSql<Mood>>,
}

const DDL: &str = "CREATE TYPE mood AS ENUM ('sad', 'ok', 'très bien');
    CREATE TYPE point3 AS (x int4, y float8, label text);
    CREATE DOMAIN posint AS int4 CHECK (VALUE > 0);
    CREATE TABLE custom (id int4, mood mood, moods mood[], point point3, points point3[],
                         maybe point3, n posint, wrapped mood[])";

fn rows() -> Vec<Custom> {
    let p = |x, y, label: &str| Point3 {
        x,
        y,
        label: label.into(),
    };
    vec![
        Custom {
            id: 0,
            mood: Mood::TresBien,
            moods: vec![Mood::Sad, Mood::Ok, Mood::TresBien],
            point: p(1, Some(-0.5), "a"),
            points: vec![p(i32::MIN, None, ""), p(i32::MAX, Some(f64::MAX), "é,\"()")],
            maybe: None,
            n: PosInt(i32::MAX),
            wrapped: vec![ViaToSql(Mood::Ok)],
        },
        Custom {
            id: 1,
            mood: Mood::Sad,
            moods: vec![],
            point: p(0, None, "NULL"),
            points: vec![],
            maybe: Some(p(7, Some(1.5), "x")),
            n: PosInt(1),
            wrapped: vec![],
        },
    ]
}

#[tokio::test]
async fn to_sql_enum_composite_domain_and_composite_array_round_trip() {
    let db = db().await;
    db.client().batch_execute(DDL).await.unwrap();
    let rows = rows();
    db.client().bulk().copy_in(&rows).await.unwrap();
    // the server's own text output of what copy_in wrote
    let text: Vec<Vec<Option<String>>> = db
        .client()
        .query(
            "SELECT mood::text, moods::text, point::text, points::text, maybe::text, n::text, wrapped::text
             FROM custom ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (0..7).map(|i| r.get(i)).collect())
        .collect();
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        text[0],
        vec![
            s("très bien"),
            s("{sad,ok,\"très bien\"}"),
            s("(1,-0.5,a)"),
            s(r#"{"(-2147483648,,\"\")","(2147483647,1.7976931348623157e+308,\"é,\"\"()\")"}"#),
            None,
            s("2147483647"),
            s("{ok}"),
        ]
    );
    assert_eq!(text[1][3], s("{}"));
    assert_eq!(text[1][4], s("(7,1.5,x)"));
    // and copy_out reads it back
    let back = db
        .client()
        .bulk()
        .copy_out_query::<Custom>("SELECT * FROM custom ORDER BY id")
        .collect_vec()
        .await
        .unwrap();
    assert_eq!(back, rows);
    // a domain CHECK failure is the server's, named by row and column
    let bad = Custom {
        n: PosInt(0),
        ..rows[1].clone()
    };
    let err = db.client().bulk().copy_in(&[bad]).await.unwrap_err();
    assert_eq!(err.kind(), pgbulk::ErrorKind::Db);
    assert_eq!(err.row(), Some(0), "{err}");
}

/// postgres-types writes the server's own binary COPY bytes for these values (what the
/// adapter hands on unchanged).
#[tokio::test]
async fn to_sql_enum_composite_domain_golden_bytes() {
    let db = db().await;
    db.client().batch_execute(DDL).await.unwrap();
    let select = "SELECT 'très bien'::mood, ROW(1, -0.5, 'a')::point3, ARRAY[ROW(2, NULL, '')::point3], 5::posint";
    let stmt = db.client().prepare(select).await.unwrap();
    let chunks: Vec<bytes::Bytes> = db
        .client()
        .copy_out(&format!("COPY ({select}) TO STDOUT (FORMAT binary)"))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let server = super::copy_fields(&chunks.concat());
    let cols = stmt.columns();
    let field = |f: &dyn Fn(&tokio_postgres::types::Type, &mut bytes::BytesMut), i: usize| {
        let mut buf = bytes::BytesMut::new();
        f(cols[i].type_(), &mut buf);
        buf.to_vec()
    };
    use pgbulk::__private::ToSqlField;
    let ours = [
        field(
            &|t, b| ToSqlField::<Mood>::encode_field(&Mood::TresBien, t, b).unwrap(),
            0,
        ),
        field(
            &|t, b| {
                ToSqlField::<Point3>::encode_field(
                    &Point3 {
                        x: 1,
                        y: Some(-0.5),
                        label: "a".into(),
                    },
                    t,
                    b,
                )
                .unwrap();
            },
            1,
        ),
        field(
            &|t, b| {
                ToSqlField::<Vec<Point3>>::encode_field(
                    &vec![Point3 {
                        x: 2,
                        y: None,
                        label: String::new(),
                    }],
                    t,
                    b,
                )
                .unwrap();
            },
            2,
        ),
        field(
            &|t, b| ToSqlField::<PosInt>::encode_field(&PosInt(5), t, b).unwrap(),
            3,
        ),
    ];
    for (i, (o, s)) in ours.iter().zip(&server).enumerate() {
        assert_eq!(o, s, "column {i}");
    }
    assert_eq!(
        ToSqlField::<Vec<Point3>>::decode(cols[2].type_(), Some(&server[2][4..])).unwrap(),
        vec![Point3 {
            x: 2,
            y: None,
            label: String::new()
        }]
    );
}
