//! `PgRange<T>` into int4range, int8range, numrange, tsrange, tstzrange and daterange: random
//! ranges round-trip through `copy_in` and `copy_out`; a cross-check against the server's own
//! range functions (`lower`, `upper`, `lower_inc`, … read by tokio-postgres, and ranges built
//! by the server's constructors from tokio-postgres parameters, read by `copy_out`); golden
//! bytes from the server's binary COPY; the plan's checks; normalization and bad bounds.

use crate::fidelity::numeric::{decimal, same_decimal};
use crate::fidelity::time::{date, timestamp};
use crate::fidelity::{self, Pair, Row};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use pgbulk::{BulkExt, CopyRow, Decode, Encode, ErrorKind, Infinity, PgRange};
use proptest::prelude::*;
use rust_decimal::Decimal;
use std::fmt::Debug;
use std::ops::Bound::{self, Excluded, Included, Unbounded};
use tokio_postgres::types::{FromSqlOwned, ToSql};

/// A canonical discrete range, as the server stores one: `empty`, or `[lower, upper)` with
/// either side possibly unbounded and `lower < upper`.
fn discrete<T: Clone + Debug + PartialOrd + 'static>(
    value: BoxedStrategy<T>,
) -> impl Strategy<Value = PgRange<T>> {
    let bounds = (
        proptest::option::weighted(0.85, value.clone()),
        proptest::option::weighted(0.85, value),
    )
        .prop_filter_map("lower < upper", |(a, b)| match (a, b) {
            (Some(a), Some(b)) if a < b => Some(PgRange::new(Included(a), Excluded(b))),
            (Some(a), Some(b)) if b < a => Some(PgRange::new(Included(b), Excluded(a))),
            (Some(_), Some(_)) => None,
            (a, b) => Some(PgRange::new(
                a.map_or(Unbounded, Included),
                b.map_or(Unbounded, Excluded),
            )),
        });
    prop_oneof![1 => Just(PgRange::Empty), 9 => bounds]
}

/// A continuous range the server keeps as written: any inclusivity, `lower < upper`, or
/// `[x,x]`.
fn continuous<T: Clone + Debug + PartialOrd + 'static>(
    value: BoxedStrategy<T>,
) -> impl Strategy<Value = PgRange<T>> {
    let side = (proptest::option::weighted(0.85, value), any::<bool>());
    let bounds = (side.clone(), side).prop_filter_map("valid", |((a, ai), (b, bi))| {
        let bound = |v: Option<T>, inc: bool| match v {
            None => Unbounded,
            Some(v) if inc => Included(v),
            Some(v) => Excluded(v),
        };
        match (&a, &b) {
            (Some(x), Some(y)) if x > y => Some(PgRange::new(bound(b, bi), bound(a, ai))),
            (Some(x), Some(y)) if x == y => {
                (ai && bi).then(|| PgRange::new(bound(a, true), bound(b, true)))
            }
            _ => Some(PgRange::new(bound(a, ai), bound(b, bi))),
        }
    });
    prop_oneof![1 => Just(PgRange::Empty), 9 => bounds]
}

fn eq<T: PartialEq>(a: &T, b: &T) -> bool {
    a == b
}

/// numrange bounds keep their scale (`1.50` stays `1.50`).
fn same_num_range(a: &PgRange<Decimal>, b: &PgRange<Decimal>) -> bool {
    let same_bound = |x: Option<Bound<&Decimal>>, y: Option<Bound<&Decimal>>| match (x, y) {
        (Some(Included(x)), Some(Included(y))) | (Some(Excluded(x)), Some(Excluded(y))) => {
            same_decimal(x, y)
        }
        (x, y) => x == y,
    };
    a.is_empty() == b.is_empty()
        && same_bound(a.lower(), b.lower())
        && same_bound(a.upper(), b.upper())
}

/// The server's view of a range, through its functions `isempty`, `lower`, `upper`,
/// `lower_inc`, `upper_inc` (tokio-postgres reads each).
type Parts<T> = (bool, Option<T>, Option<T>, bool, bool);

fn parts<T: Clone>(v: &PgRange<T>) -> Parts<T> {
    let side = |b: Option<Bound<&T>>| match b {
        Some(Included(x)) => (Some(x.clone()), true),
        Some(Excluded(x)) => (Some(x.clone()), false),
        _ => (None, false),
    };
    let (lower, lower_inc) = side(v.lower());
    let (upper, upper_inc) = side(v.upper());
    (v.is_empty(), lower, upper, lower_inc, upper_inc)
}

/// The range whose parts are `parts`.
fn from_parts<T>((empty, lower, upper, lower_inc, upper_inc): Parts<T>) -> PgRange<T> {
    let bound = |v: Option<T>, inc: bool| match v {
        None => Unbounded,
        Some(v) if inc => Included(v),
        Some(v) => Excluded(v),
    };
    if empty {
        PgRange::Empty
    } else {
        PgRange::new(bound(lower, lower_inc), bound(upper, upper_inc))
    }
}

/// Check 2 for ranges: tokio-postgres reads the parts of what `copy_in` wrote, and `copy_out`
/// reads what the server's range constructor built from tokio-postgres parameters.
fn cross_check<T>(
    pair: &Pair,
    strategy: impl Strategy<Value = PgRange<T>>,
    same: fn(&PgRange<T>, &PgRange<T>) -> bool,
) where
    T: Encode + Decode + ToSql + FromSqlOwned + Clone + Debug + Sync + Send + 'static,
{
    let values = fidelity::sample(strategy, &[]);
    let rt = fidelity::runtime();
    rt.block_on(async {
        let db = fidelity::fresh(pair).await;
        let rows: Vec<_> = (0..).zip(&values).map(|(id, v)| Row { id, v }).collect();
        db.client().bulk().copy_in(&rows).await.unwrap();
        let got = db
            .client()
            .query(
                "SELECT isempty(v), lower(v), upper(v), lower_inc(v), upper_inc(v) \
                 FROM fidelity ORDER BY id",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(got.len(), values.len());
        for (v, row) in values.iter().zip(&got) {
            let theirs: Parts<T> = (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
            let read = from_parts(theirs.clone());
            assert!(
                same(v, &read),
                "copy_in wrote {v:?}; the server's functions say {theirs:?}"
            );
        }
        let insert = fidelity::rewrite(
            &db,
            &format!(
                "CASE WHEN $2 THEN 'empty'::{pg} ELSE {pg}($3, $4, $5) END",
                pg = pair.pg
            ),
        )
        .await;
        for (id, v) in (0i32..).zip(&values) {
            let (empty, lower, upper, lower_inc, upper_inc) = parts(v);
            let flags = format!(
                "{}{}",
                if lower_inc { '[' } else { '(' },
                if upper_inc { ']' } else { ')' }
            );
            db.client()
                .execute(&insert, &[&id, &empty, &lower, &upper, &flags])
                .await
                .unwrap_or_else(|e| panic!("the server could not build {v:?}: {e:?}"));
        }
        let back = db
            .client()
            .bulk()
            .copy_out_query::<Row<PgRange<T>>>("SELECT id, v FROM fidelity ORDER BY id")
            .collect_vec()
            .await
            .unwrap();
        assert_eq!(back.len(), values.len());
        for (v, b) in values.iter().zip(&back) {
            assert!(
                same(v, &b.v),
                "the server built {v:?}; copy_out read {:?}",
                b.v
            );
        }
    });
}

/// Declares the three checks of one range type.
macro_rules! range_pair {
    (
        $name:ident: $t:ty => $pg:literal;
        strategy: $strategy:expr;
        edges: $edges:expr;
        same: $same:expr;
        golden: [$(($sql:literal, $val:expr)),* $(,)?];
    ) => {
        mod $name {
            use super::*;

            const PAIR: Pair = Pair { pg: $pg, setup: "" };

            #[test]
            fn proptest_round_trip() {
                let edges: Vec<PgRange<$t>> = $edges;
                fidelity::proptest_round_trip(&PAIR, $strategy, &edges, $same);
            }

            #[test]
            fn cross_check() {
                super::cross_check::<$t>(&PAIR, $strategy, $same);
            }

            #[test]
            fn golden_bytes() {
                let cases: Vec<(&str, PgRange<$t>)> = vec![$(($sql, $val)),*];
                fidelity::golden_bytes(&PAIR, &cases, $same);
            }
        }
    };
}

range_pair! {
    i32_int4range: i32 => "int4range";
    strategy: discrete(any::<i32>().boxed());
    edges: vec![PgRange::Empty, PgRange::from(..), PgRange::from(i32::MIN..i32::MAX), PgRange::from(0..), PgRange::new(Unbounded, Excluded(0))];
    same: eq;
    golden: [
        ("'[1,5)'::int4range", PgRange::from(1..5)),
        ("'empty'::int4range", PgRange::Empty),
        ("'(,)'::int4range", PgRange::from(..)),
        ("'[-3,)'::int4range", PgRange::from(-3..)),
        ("'(,7)'::int4range", PgRange::from(..7)),
    ];
}

range_pair! {
    i64_int8range: i64 => "int8range";
    strategy: discrete(any::<i64>().boxed());
    edges: vec![PgRange::Empty, PgRange::from(i64::MIN..i64::MAX), PgRange::new(Unbounded, Excluded(i64::MIN + 1))];
    same: eq;
    golden: [
        ("'[-9223372036854775808,9223372036854775807)'::int8range", PgRange::from(i64::MIN..i64::MAX)),
        ("'[10,20]'::int8range", PgRange::from(10..21)),
    ];
}

range_pair! {
    decimal_numrange: Decimal => "numrange";
    strategy: continuous(decimal().boxed());
    edges: vec![PgRange::Empty, PgRange::from(Decimal::new(150, 2)..=Decimal::new(150, 2)), PgRange::new(Excluded(Decimal::MIN), Unbounded)];
    same: same_num_range;
    golden: [
        ("'(1.50,2.5]'::numrange", PgRange::new(Excluded(Decimal::new(150, 2)), Included(Decimal::new(25, 1)))),
        ("'[-1,)'::numrange", PgRange::from(Decimal::NEGATIVE_ONE..)),
        ("'empty'::numrange", PgRange::Empty),
    ];
}

fn ts(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
}

range_pair! {
    naive_date_time_tsrange: NaiveDateTime => "tsrange";
    strategy: continuous(timestamp().boxed());
    edges: vec![PgRange::Empty, PgRange::from(ts("2000-01-01 00:00:00")..=ts("2000-01-01 00:00:00"))];
    same: eq;
    golden: [
        ("'[2000-01-01 00:00:00, 2024-02-29 12:34:56.789012)'::tsrange", PgRange::from(ts("2000-01-01 00:00:00")..ts("2024-02-29 12:34:56.789012"))),
        ("'(1999-12-31 23:59:59.999999,]'::tsrange", PgRange::new(Excluded(ts("1999-12-31 23:59:59.999999")), Unbounded)),
    ];
}

range_pair! {
    date_time_utc_tstzrange: DateTime<Utc> => "tstzrange";
    strategy: continuous(timestamp().prop_map(|t| t.and_utc()).boxed());
    edges: vec![PgRange::Empty, PgRange::from(..)];
    same: eq;
    golden: [
        ("'[2000-01-01 00:00:00+00, 2000-01-01 01:00:00+01]'::tstzrange", PgRange::from(ts("2000-01-01 00:00:00").and_utc()..=ts("2000-01-01 00:00:00").and_utc())),
        ("'(2024-02-29 12:34:56.789012-08,)'::tstzrange", PgRange::new(Excluded(ts("2024-02-29 20:34:56.789012").and_utc()), Unbounded)),
    ];
}

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

range_pair! {
    naive_date_daterange: NaiveDate => "daterange";
    strategy: discrete(date().boxed());
    edges: vec![PgRange::Empty, PgRange::from(ymd(1999, 12, 31)..ymd(2000, 1, 1))];
    same: eq;
    golden: [
        ("'[2000-01-01,2000-02-01)'::daterange", PgRange::from(ymd(2000, 1, 1)..ymd(2000, 2, 1))),
        ("'[2024-02-29,2024-02-29]'::daterange", PgRange::from(ymd(2024, 2, 29)..ymd(2024, 3, 1))),
        ("'(,2000-01-01)'::daterange", PgRange::from(..ymd(2000, 1, 1))),
    ];
}

#[test]
fn infinite_bound_values_are_values_not_unbounded() {
    // `[-infinity,infinity)` has two bounds whose values are ±infinity; `(,)` has none.
    let cases = vec![
        (
            "'[-infinity,infinity)'::daterange",
            PgRange::from(Infinity::NegInfinity..Infinity::PosInfinity),
        ),
        (
            "'[2000-01-01,infinity)'::daterange",
            PgRange::from(Infinity::Value(ymd(2000, 1, 1))..Infinity::PosInfinity),
        ),
        ("'(,)'::daterange", PgRange::from(..)),
    ];
    fidelity::golden_bytes::<PgRange<Infinity<NaiveDate>>>(
        &Pair {
            pg: "daterange",
            setup: "",
        },
        &cases,
        eq,
    );
}

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "bookings")]
struct Booking {
    id: i32,
    seats: PgRange<i32>,
    during: PgRange<NaiveDateTime>,
    history: Vec<PgRange<i64>>,
}

/// A fresh database with the `bookings` table.
async fn bookings() -> pgbulk::testkit::TestDb {
    let db = crate::db().await;
    db.client()
        .batch_execute(
            "CREATE TABLE bookings (id int4, seats int4range, during tsrange, history int8range[])",
        )
        .await
        .unwrap();
    db
}

#[tokio::test]
async fn discrete_ranges_come_back_in_canonical_form() {
    let db = bookings().await;
    let written = vec![Booking {
        id: 1,
        seats: PgRange::from(1..=5),
        during: PgRange::from(ts("2000-01-01 10:00:00")..ts("2000-01-01 10:00:00")),
        history: vec![
            PgRange::new(Excluded(1), Excluded(2)),
            PgRange::new(Excluded(1), Included(3)),
            PgRange::Empty,
        ],
    }];
    db.client().bulk().copy_in(&written).await.unwrap();
    let text: (String, String, String) = {
        let row = db
            .client()
            .query_one(
                "SELECT seats::text, during::text, history::text FROM bookings",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1), row.get(2))
    };
    assert_eq!(
        text,
        (
            "[1,6)".into(),
            "empty".into(),
            "{empty,\"[2,4)\",empty}".into()
        )
    );
    let back = db
        .client()
        .bulk()
        .copy_out::<Booking>()
        .collect_vec()
        .await
        .unwrap();
    assert_eq!(
        back,
        vec![Booking {
            id: 1,
            seats: PgRange::from(1..6),
            during: PgRange::Empty,
            history: vec![PgRange::Empty, PgRange::from(2..4), PgRange::Empty],
        }]
    );
    assert!(back[0].seats.contains(&5) && !back[0].seats.contains(&6));
}

#[tokio::test]
async fn a_lower_bound_above_the_upper_is_refused_naming_row_and_column() {
    let db = bookings().await;
    let rows: Vec<Booking> = (0..10)
        .map(|id| Booking {
            id,
            seats: if id == 7 {
                PgRange::new(Included(5), Excluded(1))
            } else {
                PgRange::from(1..5)
            },
            during: PgRange::from(..),
            history: vec![],
        })
        .collect();
    let err = db.client().bulk().copy_in(&rows).await.unwrap_err();
    assert_eq!(err.row(), Some(7), "{err}");
    assert_eq!(err.column(), Some("seats"), "{err}");
    assert!(
        err.to_string()
            .contains("lower bound must be less than or equal to"),
        "{err}"
    );
    assert_eq!(crate::count(&db, "bookings").await, 0);
    // the client works afterwards
    db.client().bulk().copy_in(&rows[..7]).await.unwrap();
    assert_eq!(crate::count(&db, "bookings").await, 7);
}

#[tokio::test]
async fn plan_accepts_the_range_of_the_field_s_type_and_domains_over_it() {
    #[derive(CopyRow, Debug, PartialEq)]
    #[copy(table = "spans")]
    struct Span {
        id: i32,
        v: PgRange<i32>,
    }
    let db = crate::db().await;
    // multiranges exist from PostgreSQL 14 on
    let multirange = crate::server::version_num_of(&db).await >= 140_000;
    db.client()
        .batch_execute(&format!(
            "CREATE DOMAIN seat_span AS int4range CHECK (NOT isempty(VALUE));
             CREATE TABLE spans (id int4, v seat_span);
             CREATE TABLE wide (id int4, v int8range);
             CREATE TABLE multi (id int4, v {});
             CREATE TABLE plain (id int4, v int4);",
            if multirange {
                "int4multirange"
            } else {
                "int4range[]"
            }
        ))
        .await
        .unwrap();
    let rows = [Span {
        id: 1,
        v: PgRange::from(3..9),
    }];
    db.client().bulk().copy_in(&rows).await.unwrap();
    let back = db
        .client()
        .bulk()
        .copy_out::<Span>()
        .collect_vec()
        .await
        .unwrap();
    assert_eq!(back, rows);
    // the domain's CHECK still runs on the server
    let err = db
        .client()
        .bulk()
        .copy_in(&[Span {
            id: 2,
            v: PgRange::Empty,
        }])
        .await
        .unwrap_err();
    assert_eq!(err.row(), Some(0), "{err}");
    // int4 bounds into int8range, a multirange (an array of ranges before 14) or a plain int4:
    // plan errors before any data
    for table in ["wide", "multi", "plain"] {
        let err = db
            .client()
            .bulk()
            .table(table)
            .copy_in(&rows)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TypeMismatch, "{table}: {err}");
        assert!(err.to_string().contains("PgRange<i32>"), "{table}: {err}");
        let err = db
            .client()
            .bulk()
            .copy_out_query::<Span>(&format!("SELECT id, v FROM {table}"))
            .collect_vec()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TypeMismatch, "{table}: {err}");
    }
}
