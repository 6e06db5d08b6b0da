//! Round trip of every supported type through the server, edge values included.

use crate::db;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use pgbulk::{BulkExt, CopyRow};
use rust_decimal::Decimal;
use std::borrow::Cow;
use std::str::FromStr;
use uuid::Uuid;

const DDL: &str = "CREATE TABLE all_types (
    id int4 PRIMARY KEY, flag bool, small int2, big int8, real4 float4, dbl float8,
    txt text, vc varchar(50), bp char(5), nm name, bin bytea,
    maybe_int int4, maybe_text text,
    day date, tod time, ts timestamp, tstz timestamptz, uid uuid, amount numeric,
    ints int4[], texts text[], maybe_ints int4[], days date[], uuids uuid[],
    amounts numeric[], bins bytea[], flags bool[], dbls float8[], vcs varchar[],
    smalls int2[], bigs int8[], reals float4[], tss timestamp[], tstzs timestamptz[], tods time[]
)";

#[derive(CopyRow, Debug, Clone)]
#[copy(table = "all_types")]
struct AllTypes {
    id: i32,
    flag: bool,
    small: i16,
    big: i64,
    real4: f32,
    dbl: f64,
    txt: String,
    vc: String,
    bp: String,
    nm: String,
    bin: Vec<u8>,
    maybe_int: Option<i32>,
    maybe_text: Option<String>,
    day: NaiveDate,
    tod: NaiveTime,
    ts: NaiveDateTime,
    tstz: DateTime<Utc>,
    uid: Uuid,
    amount: Decimal,
    ints: Vec<i32>,
    texts: Vec<String>,
    maybe_ints: Vec<Option<i32>>,
    days: Vec<NaiveDate>,
    uuids: Vec<Uuid>,
    amounts: Vec<Decimal>,
    bins: Vec<Vec<u8>>,
    flags: Vec<bool>,
    dbls: Vec<f64>,
    vcs: Vec<Option<String>>,
    smalls: Vec<i16>,
    bigs: Vec<i64>,
    reals: Vec<f32>,
    tss: Vec<NaiveDateTime>,
    tstzs: Vec<DateTime<Utc>>,
    tods: Vec<NaiveTime>,
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn dt(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
}

/// The latest timestamp chrono can hold (PostgreSQL goes further, to 294276 AD).
fn max_ts() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(262_142, 12, 31)
        .unwrap()
        .and_hms_micro_opt(23, 59, 59, 999_999)
        .unwrap()
}

fn rows() -> Vec<AllTypes> {
    let typical = AllTypes {
        id: 1,
        flag: true,
        small: 12,
        big: 1_234_567_890_123,
        real4: 1.5,
        dbl: -2.25,
        txt: "hello".into(),
        vc: "varchar".into(),
        bp: "abcde".into(),
        nm: "a_name".into(),
        bin: vec![0, 1, 2, 255],
        maybe_int: Some(7),
        maybe_text: Some("x".into()),
        day: NaiveDate::from_ymd_opt(2024, 2, 29).unwrap(),
        tod: NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999).unwrap(),
        ts: dt("2024-02-29 12:34:56.789012"),
        tstz: dt("2024-02-29 12:34:56.789012").and_utc(),
        uid: Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
        amount: dec("12345.6789"),
        ints: vec![1, -2, 3],
        texts: vec!["a".into(), String::new(), "ünï".into()],
        maybe_ints: vec![Some(1), None, Some(3)],
        days: vec![NaiveDate::from_ymd_opt(1999, 12, 31).unwrap()],
        uuids: vec![Uuid::nil(), Uuid::max()],
        amounts: vec![dec("0.1"), dec("-1.000")],
        bins: vec![vec![], vec![0]],
        flags: vec![true, false],
        dbls: vec![0.5, f64::NAN],
        vcs: vec![None, Some("v".into())],
        smalls: vec![i16::MIN, i16::MAX],
        bigs: vec![i64::MIN, 0, i64::MAX],
        reals: vec![f32::INFINITY, -0.0],
        tss: vec![dt("1970-01-01 00:00:00.000001")],
        tstzs: vec![dt("2000-01-01 00:00:00").and_utc()],
        tods: vec![NaiveTime::MIN],
    };
    let minimal = AllTypes {
        id: 2,
        flag: false,
        small: i16::MIN,
        big: i64::MIN,
        real4: f32::NEG_INFINITY,
        dbl: f64::NEG_INFINITY,
        txt: String::new(),
        vc: String::new(),
        bp: "     ".into(),
        nm: String::new(),
        bin: vec![],
        maybe_int: None,
        maybe_text: None,
        day: NaiveDate::from_ymd_opt(-4713, 11, 24).unwrap(),
        tod: NaiveTime::MIN,
        ts: dt("0001-01-01 00:00:00"),
        tstz: dt("0001-01-01 00:00:00").and_utc(),
        uid: Uuid::nil(),
        amount: Decimal::MIN,
        ints: vec![],
        texts: vec![],
        maybe_ints: vec![None],
        days: vec![],
        uuids: vec![],
        amounts: vec![],
        bins: vec![],
        flags: vec![],
        dbls: vec![],
        vcs: vec![],
        smalls: vec![],
        bigs: vec![],
        reals: vec![],
        tss: vec![],
        tstzs: vec![],
        tods: vec![],
    };
    let maximal = AllTypes {
        id: 3,
        flag: true,
        small: i16::MAX,
        big: i64::MAX,
        real4: f32::NAN,
        dbl: f64::INFINITY,
        txt: "日本語 ✓ émoji 🦀 \u{7f} tab\t newline\n".into(),
        vc: "ß".repeat(50),
        bp: "üüüüü".into(),
        nm: "n".repeat(63),
        bin: (0..=255).collect(),
        maybe_int: Some(i32::MIN),
        maybe_text: Some(String::new()),
        day: NaiveDate::from_ymd_opt(262_142, 12, 31).unwrap(),
        tod: NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999).unwrap(),
        ts: max_ts(),
        tstz: max_ts().and_utc(),
        uid: Uuid::max(),
        amount: Decimal::MAX,
        ints: vec![i32::MIN, i32::MAX],
        texts: vec!["🦀".into()],
        maybe_ints: vec![None, None],
        days: vec![NaiveDate::from_ymd_opt(2000, 1, 1).unwrap()],
        uuids: vec![Uuid::from_u128(1)],
        amounts: vec![
            dec("-0.0000000000000000000000000001"),
            dec("0.0000000000000000000000000001"),
            dec("-79228162514264337593543950335"),
        ],
        bins: vec![vec![0; 3]],
        flags: vec![false],
        dbls: vec![-0.0, f64::MIN_POSITIVE, f64::MAX],
        vcs: vec![Some(String::new())],
        smalls: vec![0],
        bigs: vec![1],
        reals: vec![f32::NAN, f32::MIN, f32::MAX, f32::EPSILON],
        tss: vec![dt("1999-12-31 23:59:59.999999")],
        tstzs: vec![dt("1969-07-20 20:17:40").and_utc()],
        tods: vec![NaiveTime::from_hms_opt(12, 0, 0).unwrap()],
    };
    let mut decimals = typical.clone();
    decimals.id = 4;
    decimals.amount = dec("-123456789.123456789012345678");
    decimals.amounts = vec![
        dec("1.50"),
        dec("0.00"),
        dec("-0.001"),
        dec("10000"),
        dec("99999999.99999999"),
        dec("0.0001"),
    ];
    vec![typical, minimal, maximal, decimals]
}

/// Debug output compares floats by what they print, so NaN equals NaN and -0.0 differs from
/// 0.0, and decimals by their scale as well as their value.
fn same(a: &AllTypes, b: &AllTypes) -> bool {
    format!("{a:?}") == format!("{b:?}")
        && a.real4.to_bits() == b.real4.to_bits()
        && a.dbl.to_bits() == b.dbl.to_bits()
}

#[tokio::test]
async fn every_type_round_trips_with_edge_values() {
    let db = db().await;
    db.client().batch_execute(DDL).await.unwrap();
    let input = rows();
    let written = db.client().bulk().copy_in(&input).await.unwrap();
    assert_eq!(written, input.len() as u64);
    let mut back: Vec<AllTypes> = db
        .client()
        .bulk()
        .copy_out::<AllTypes>()
        .collect_vec()
        .await
        .unwrap();
    back.sort_by_key(|r| r.id);
    assert_eq!(back.len(), input.len());
    for (a, b) in input.iter().zip(&back) {
        assert!(
            same(a, b),
            "row {} differs:\n wrote {a:?}\n  read {b:?}",
            a.id
        );
    }
}

#[tokio::test]
async fn values_written_read_back_by_tokio_postgres() {
    // An independent decoder: tokio-postgres' own FromSql impls.
    let db = db().await;
    db.client().batch_execute(DDL).await.unwrap();
    let input = rows();
    assert!(input.len() > 1);
    assert!(
        input.windows(2).all(|w| w[0].id < w[1].id),
        "input sorted by id"
    );
    let written = db.client().bulk().copy_in(&input).await.unwrap();
    assert_eq!(written, input.len() as u64);
    let rows = db
        .client()
        .query("SELECT id, txt, bp, big, dbl, day, ts, tstz, uid, texts, maybe_ints, amount::text FROM all_types ORDER BY id", &[])
        .await
        .unwrap();
    // Every row is there (the zip below would stop at the shorter side).
    assert_eq!(rows.len(), input.len());
    for (row, want) in rows.iter().zip(&input) {
        assert_eq!(row.get::<_, i32>(0), want.id);
        assert_eq!(row.get::<_, String>(1), want.txt);
        assert_eq!(row.get::<_, String>(2).trim_end(), want.bp.trim_end());
        assert_eq!(row.get::<_, i64>(3), want.big);
        assert_eq!(row.get::<_, f64>(4).to_bits(), want.dbl.to_bits());
        assert_eq!(row.get::<_, NaiveDate>(5), want.day);
        assert_eq!(row.get::<_, NaiveDateTime>(6), want.ts);
        assert_eq!(row.get::<_, DateTime<Utc>>(7), want.tstz);
        assert_eq!(row.get::<_, Uuid>(8), want.uid);
        assert_eq!(row.get::<_, Vec<String>>(9), want.texts);
        assert_eq!(row.get::<_, Vec<Option<i32>>>(10), want.maybe_ints);
        // numeric::text keeps the scale: 12345.6789, and Decimal prints the same.
        assert_eq!(row.get::<_, String>(11), want.amount.to_string());
    }
}

#[derive(CopyRow, Debug)]
#[copy(table = "borrowed")]
struct Borrowed<'a> {
    id: i32,
    s: &'a str,
    boxed: Box<str>,
    cow: Cow<'a, str>,
    bytes: &'a [u8],
    list: &'a [i64],
    maybe: Option<&'a str>,
}

#[derive(CopyRow, Debug, PartialEq)]
#[copy(table = "borrowed")]
struct Owned {
    id: i32,
    s: String,
    boxed: Box<str>,
    cow: Cow<'static, str>,
    bytes: Vec<u8>,
    list: Vec<i64>,
    maybe: Option<String>,
}

#[tokio::test]
async fn borrowed_fields_are_written() {
    let db = db().await;
    db.client()
        .batch_execute("CREATE TABLE borrowed (id int4, s varchar, boxed text, cow text, bytes bytea, list int8[], maybe text)")
        .await
        .unwrap();
    let text = String::from("borrowed ✓");
    let bytes = vec![9u8, 8, 7];
    let list = [5i64, 6];
    let rows: Vec<Borrowed<'_>> = (0..3)
        .map(|id| Borrowed {
            id,
            s: &text,
            boxed: "boxed".into(),
            cow: if id == 0 {
                Cow::Borrowed(&text)
            } else {
                Cow::Owned(format!("owned {id}"))
            },
            bytes: &bytes,
            list: &list,
            maybe: (id == 1).then_some(text.as_str()),
        })
        .collect();
    // An iterator of references, lazily mapped.
    assert_eq!(db.client().bulk().copy_in(rows.iter()).await.unwrap(), 3);
    let back = db
        .client()
        .bulk()
        .copy_out_query::<Owned>("SELECT * FROM borrowed ORDER BY id")
        .collect_vec()
        .await
        .unwrap();
    let want: Vec<Owned> = rows
        .iter()
        .map(|b| Owned {
            id: b.id,
            s: b.s.to_owned(),
            boxed: b.boxed.clone(),
            cow: Cow::Owned(b.cow.to_string()),
            bytes: b.bytes.to_vec(),
            list: b.list.to_vec(),
            maybe: b.maybe.map(str::to_owned),
        })
        .collect();
    assert_eq!(back, want);
}
