//! Arrays: 1-D of scalars with NULLs, nested `Vec`s up to 6-D, enum arrays, domains; and
//! values Rust cannot hold failing with row and column.

use super::json::same_json;
use super::text::same_json_text;
use super::{eq, pair};
use crate::db;
use chrono::NaiveDateTime;
use pgbulk::{BulkExt, CopyRow, ErrorKind, Infinity, PgNumeric};
use proptest::prelude::*;
use rust_decimal::Decimal;

pair! {
    vec_option_i32_int4_array: Vec<Option<i32>> => "int4[]";
    setup: "";
    strategy: prop::collection::vec(any::<Option<i32>>(), 0..12);
    edges: vec![vec![], vec![None], vec![Some(i32::MIN), None, Some(i32::MAX)]];
    same: eq;
    theirs: Vec<Option<i32>> = Vec::clone, read: "v", write: "$2", same: eq;
    golden: [
        ("'{}'::int4[]", vec![]),
        ("'{1,NULL,3}'::int4[]", vec![Some(1), None, Some(3)]),
    ];
}

pair! {
    vec_string_text_array: Vec<String> => "text[]";
    setup: "";
    strategy: prop::collection::vec("[^\u{0}]{0,8}", 0..8);
    edges: vec![vec![], vec![String::new()], vec!["NULL".into(), "{,}\"\\".into()]];
    same: eq;
    theirs: Vec<String> = Vec::clone, read: "v", write: "$2", same: eq;
    golden: [("ARRAY['a', 'é']::text[]", vec!["a".into(), "é".into()])];
}

pair! {
    vec_string_enum_array: Vec<String> => "mood[]";
    setup: "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')";
    strategy: prop::collection::vec(prop::sample::select(vec!["sad", "ok", "happy"]).prop_map(String::from), 0..6);
    edges: vec![vec![], vec!["happy".into(), "sad".into()]];
    same: eq;
    theirs: String = |v| format!("{{{}}}", v.join(",")), read: "v::text", write: "$2::text::mood[]", same: eq;
    golden: [("ARRAY['ok', 'happy']::mood[]", vec!["ok".into(), "happy".into()])];
}

/// A rectangular 2-D array.
fn matrix<T: std::fmt::Debug + Clone>(
    s: impl Strategy<Value = T> + Clone,
) -> impl Strategy<Value = Vec<Vec<T>>> {
    (1usize..5, 1usize..5).prop_flat_map(move |(rows, cols)| {
        prop::collection::vec(prop::collection::vec(s.clone(), cols), rows)
    })
}

pair! {
    vec_vec_option_i64_int8_array_2d: Vec<Vec<Option<i64>>> => "int8[]";
    setup: "";
    strategy: matrix(any::<Option<i64>>());
    edges: vec![vec![], vec![vec![None]], vec![vec![Some(1), Some(2)], vec![None, Some(i64::MIN)]]];
    same: eq;
    theirs: String = |v| format!("{{{}}}", v.iter().map(|r| format!("{{{}}}", r.iter().map(|x| x.map_or("NULL".into(), |x| x.to_string())).collect::<Vec<_>>().join(","))).collect::<Vec<_>>().join(",")),
        read: "v::text", write: "$2::text::int8[]", same: eq;
    golden: [
        ("'{{1,2,3},{4,NULL,6}}'::int8[]", vec![vec![Some(1), Some(2), Some(3)], vec![Some(4), None, Some(6)]]),
        ("'{{7}}'::int8[]", vec![vec![Some(7)]]),
    ];
}

type Six = Vec<Vec<Vec<Vec<Vec<Vec<i16>>>>>>;

/// `{a,b,..}` of each element's text.
fn list<T>(v: &[T], f: impl Fn(&T) -> String) -> String {
    format!("{{{}}}", v.iter().map(f).collect::<Vec<_>>().join(","))
}

/// The server's text form of a 6-D array.
#[allow(clippy::ptr_arg)]
fn six_text(v: &Six) -> String {
    list(v, |a| {
        list(a, |b| {
            list(b, |c| list(c, |d| list(d, |e| list(e, i16::to_string))))
        })
    })
}

/// A 6-D array of the given lengths (outermost first), filled from `flat` in row-major order.
fn six(dims: [usize; 6], flat: &[i16]) -> Six {
    let mut at = flat.chunks(dims[5]);
    let mut next = || at.next().unwrap().to_vec();
    (0..dims[0])
        .map(|_| {
            (0..dims[1])
                .map(|_| {
                    (0..dims[2])
                        .map(|_| {
                            (0..dims[3])
                                .map(|_| (0..dims[4]).map(|_| next()).collect())
                                .collect()
                        })
                        .collect()
                })
                .collect()
        })
        .collect()
}

// Every dimension's length varies, and the elements are drawn one by one, so element order,
// a swapped dimension or a transposition changes the value.
pair! {
    vec6_i16_int2_array_6d: Six => "int2[]";
    setup: "";
    strategy: proptest::array::uniform6(1usize..4).prop_flat_map(|dims| {
        let n = dims.iter().product::<usize>();
        proptest::collection::vec(any::<i16>(), n).prop_map(move |flat| six(dims, &flat))
    });
    edges: vec![
        vec![],
        vec![vec![vec![vec![vec![vec![i16::MIN, i16::MAX]]]]]],
        six([2, 1, 3, 1, 2, 1], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
        six([1, 2, 1, 2, 1, 2], &[-1, -2, -3, -4, -5, -6, -7, -8]),
    ];
    same: eq;
    theirs: String = six_text, read: "v::text", write: "$2::text::int2[]", same: eq;
    golden: [
        ("'{{{{{{1,2}}}}}}'::int2[]", vec![vec![vec![vec![vec![vec![1, 2]]]]]]),
        (
            "'{{{{{{1,2},{3,4}}}}},{{{{{5,6},{7,8}}}}}}'::int2[]",
            six([2, 1, 1, 1, 2, 2], &[1, 2, 3, 4, 5, 6, 7, 8])
        ),
        (
            "'{{{{{{1},{2}},{{3},{4}},{{5},{6}}}}}}'::int2[]",
            six([1, 1, 1, 3, 2, 1], &[1, 2, 3, 4, 5, 6])
        ),
    ];
}

/// A 6-D field reads 6-D arrays only: a 1-D value is an error, not a reshaping.
#[tokio::test]
async fn vec6_i16_int2_array_6d_reads_only_6d() {
    let db = db().await;
    db.client()
        .batch_execute("CREATE TABLE six (id int4, v int2[]); INSERT INTO six VALUES (0, '{{{{{{1},{2}}}}}}'), (1, '{1,2}')")
        .await
        .unwrap();
    #[derive(CopyRow, Debug)]
    #[copy(table = "six")]
    struct SixRow {
        id: i32,
        v: Six,
    }
    let ok = db
        .client()
        .bulk()
        .copy_out_query::<SixRow>("SELECT * FROM six WHERE id = 0")
        .collect_vec()
        .await
        .unwrap();
    assert_eq!(ok[0].v, vec![vec![vec![vec![vec![vec![1], vec![2]]]]]]);
    let err = db
        .client()
        .bulk()
        .copy_out_query::<SixRow>("SELECT * FROM six WHERE id = 1")
        .collect_vec()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert!(
        err.to_string()
            .contains("cannot be read into a 6-D nested Vec"),
        "{err}"
    );
}

#[derive(CopyRow, Debug)]
#[copy(table = "grid")]
struct Grid {
    id: i32,
    cells: Vec<Vec<i32>>,
}

#[derive(CopyRow, Debug)]
#[copy(table = "grid")]
struct Flat {
    id: i32,
    cells: Vec<i32>,
}

#[tokio::test]
async fn ragged_2d_is_an_encode_error_naming_row_and_field_and_2d_into_1d_is_refused() {
    let db = db().await;
    db.client()
        .batch_execute("CREATE TABLE grid (id int4, cells int4[])")
        .await
        .unwrap();
    let rows = vec![
        Grid {
            id: 0,
            cells: vec![vec![1, 2], vec![3, 4]],
        },
        Grid {
            id: 1,
            cells: vec![vec![1, 2], vec![3]],
        },
    ];
    let err = db.client().bulk().copy_in(&rows).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Encode);
    assert_eq!(err.row(), Some(1));
    assert_eq!(err.field(), Some("cells"));
    assert!(err.to_string().contains("not rectangular"), "{err}");
    assert_eq!(crate::count(&db, "grid").await, 0);

    db.client().bulk().copy_in(&rows[..1]).await.unwrap();
    let err = db
        .client()
        .bulk()
        .copy_out::<Flat>()
        .collect_vec()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert_eq!((err.row(), err.column()), (Some(0), Some("cells")));
    assert!(
        err.to_string().contains("cannot be read into a 1-D Vec"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// domains over supported types use the base type's codec

pair! {
    i32_domain_over_int4: i32 => "posint";
    setup: "CREATE DOMAIN posint AS int4 CHECK (VALUE > 0)";
    strategy: 1..=i32::MAX;
    edges: vec![1, i32::MAX];
    same: eq;
    theirs: i32 = |v| *v, read: "v::int4", write: "$2::int4", same: eq;
    golden: [("5::posint", 5), ("2147483647::posint", i32::MAX)];
}

pair! {
    vec_i32_domain_array: Vec<i32> => "posint[]";
    setup: "CREATE DOMAIN posint AS int4 CHECK (VALUE > 0)";
    strategy: prop::collection::vec(1..=i32::MAX, 0..6);
    edges: vec![vec![], vec![1, i32::MAX]];
    same: eq;
    theirs: Vec<i32> = Vec::clone, read: "v::int4[]", write: "$2::int4[]", same: eq;
    golden: [("ARRAY[1, 2]::posint[]", vec![1, 2])];
}

pair! {
    string_domain_over_jsonb: String => "doc";
    setup: "CREATE DOMAIN doc AS jsonb CHECK (jsonb_typeof(VALUE) = 'object')";
    strategy: prop::collection::btree_map("[a-z]{1,4}", any::<i32>(), 0..4).prop_map(|m| serde_json::to_string(&m).unwrap());
    edges: vec!["{}".into()];
    same: same_json_text;
    theirs: serde_json::Value = |s| serde_json::from_str(s).unwrap(), read: "v::jsonb", write: "$2::jsonb", same: same_json;
    golden: [("'{\"a\": 1}'::doc", "{\"a\": 1}".into())];
}

// ---------------------------------------------------------------------------------------------
// values Rust cannot hold: plain fields fail naming row and column, the wrappers read them

#[derive(CopyRow, Debug)]
#[copy(table = "special")]
struct Plain {
    id: i32,
    ts: NaiveDateTime,
    amount: Decimal,
}

#[derive(CopyRow, Debug, PartialEq)]
#[copy(table = "special")]
struct Wrapped {
    id: i32,
    ts: Infinity<NaiveDateTime>,
    amount: PgNumeric,
}

#[tokio::test]
async fn infinity_and_nan_fail_plain_fields_naming_row_and_column_and_wrappers_read_them() {
    let db = db().await;
    // numeric has ±Infinity from PostgreSQL 14 on; before, row 3 holds NaN
    let infinity = crate::server::version_num_of(&db).await >= 140_000;
    let (special, special_text) = if infinity {
        (PgNumeric::PosInfinity, "Infinity")
    } else {
        (PgNumeric::NaN, "NaN")
    };
    db.client()
        .batch_execute(&format!(
            "CREATE TABLE special (id int4, ts timestamp, amount numeric);
             INSERT INTO special VALUES (0, '2020-01-01', 1.5), (1, 'infinity', 2), (2, '2020-01-01', 'NaN'),
               (3, '-infinity', '{special_text}'), (4, '2020-01-01', 1e40)"
        ))
        .await
        .unwrap();
    let read = |q: &'static str| db.client().bulk().copy_out_query::<Plain>(q).collect_vec();

    let err = read("SELECT * FROM special WHERE id <= 1 ORDER BY id")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert_eq!((err.row(), err.column()), (Some(1), Some("ts")), "{err}");
    assert!(err.to_string().contains("'infinity'"), "{err}");

    let err = read("SELECT * FROM special WHERE id IN (0, 2) ORDER BY id")
        .await
        .unwrap_err();
    assert_eq!(
        (err.row(), err.column()),
        (Some(1), Some("amount")),
        "{err}"
    );
    assert!(err.to_string().contains("'NaN'"), "{err}");

    // more digits than Decimal holds
    let err = read("SELECT * FROM special WHERE id = 4")
        .await
        .unwrap_err();
    assert_eq!(
        (err.row(), err.column()),
        (Some(0), Some("amount")),
        "{err}"
    );

    let wrapped = db
        .client()
        .bulk()
        .copy_out_query::<Wrapped>("SELECT * FROM special WHERE id <= 3 ORDER BY id")
        .collect_vec()
        .await
        .unwrap();
    let t = NaiveDateTime::parse_from_str("2020-01-01 00:00:00", "%Y-%m-%d %H:%M:%S").unwrap();
    assert_eq!(
        wrapped,
        vec![
            Wrapped {
                id: 0,
                ts: Infinity::Value(t),
                amount: PgNumeric::Value(Decimal::new(15, 1))
            },
            Wrapped {
                id: 1,
                ts: Infinity::PosInfinity,
                amount: PgNumeric::Value(Decimal::from(2))
            },
            Wrapped {
                id: 2,
                ts: Infinity::Value(t),
                amount: PgNumeric::NaN
            },
            Wrapped {
                id: 3,
                ts: Infinity::NegInfinity,
                amount: special
            },
        ]
    );
    // and they write them back
    db.client().batch_execute("TRUNCATE special").await.unwrap();
    db.client().bulk().copy_in(&wrapped).await.unwrap();
    let texts: Vec<(String, String)> = db
        .client()
        .query(
            "SELECT ts::text, amount::text FROM special ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(texts[1], ("infinity".into(), "2".into()));
    assert_eq!(texts[2].1, "NaN");
    assert_eq!(texts[3], ("-infinity".into(), special_text.into()));
}
