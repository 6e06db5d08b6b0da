//! Type fidelity: for every Rust ↔ PostgreSQL pair of the README's type table, three
//! independent checks against the real server, each its own test named
//! `fidelity::<family>::<rust>_<pg>::<check>`:
//!
//! - `proptest_round_trip`: random values (and the pair's edge values) written with `copy_in`
//!   and read back with `copy_out`, equal bit for bit; [`RUNS`] runs of [`BATCH`] random values
//!   plus the edges, each run one `copy_in` and one `copy_out`.
//! - `cross_check`: values written by `copy_in` read back by tokio-postgres `query()` (its
//!   `FromSql`, or the server's text output where tokio-postgres has no type), and values
//!   written by tokio-postgres (`INSERT .. VALUES ($1)`, its `ToSql`, or the server's text
//!   input) read back by `copy_out` — so a bug mirrored in our encoder and decoder cannot hide.
//! - `golden_bytes`: for fixed values, our encoder's bytes equal the field bytes of the
//!   server's own `COPY (SELECT ..) TO STDOUT (FORMAT binary)`, and our decoder reads those
//!   bytes back to the value.

// Every pair's comparison takes `&T` (one `fn(&T, &T) -> bool` type for all pairs), and the
// tests name values `a`/`b`/`x`/`y` the way equality code does.
#![allow(
    clippy::trivially_copy_pass_by_ref,
    clippy::many_single_char_names,
    clippy::items_after_statements
)]

mod arrays;
mod int;
mod json;
pub(crate) mod numeric;
mod text;
pub(crate) mod time;
mod time_crate;
mod to_sql;

use bytes::BytesMut;
use futures_util::TryStreamExt;
use pgbulk::__private::accepted_type;
use pgbulk::testkit::TestDb;
use pgbulk::{BulkExt, CopyRow, Decode, Encode};
use proptest::collection::vec;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::fmt::Debug;
use tokio_postgres::types::{FromSqlOwned, ToSql};

/// Random values per proptest run (one `copy_in`, one `copy_out`), before the edge values.
pub const BATCH: usize = 96;
/// Proptest runs per pair.
pub const RUNS: u32 = 2;

/// The table every check writes: an id that keeps the order, and the value.
#[derive(CopyRow, Debug)]
#[copy(table = "fidelity")]
pub struct Row<T> {
    pub id: i32,
    pub v: T,
}

/// A PostgreSQL column type, and the DDL it needs first (an enum, a domain, an extension).
pub struct Pair {
    pub pg: &'static str,
    pub setup: &'static str,
}

/// Equality for the pairs whose Rust type's `==` is exact.
pub fn eq<T: PartialEq>(a: &T, b: &T) -> bool {
    a == b
}

/// A runtime for one test (proptest's runner is synchronous).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A fresh database with the pair's setup and `fidelity (id int4, v <pg>)`.
pub async fn fresh(pair: &Pair) -> TestDb {
    let db = crate::db().await;
    db.client()
        .batch_execute(&format!(
            "{}; CREATE TABLE fidelity (id int4 PRIMARY KEY, v {})",
            pair.setup, pair.pg
        ))
        .await
        .unwrap_or_else(|e| panic!("setup for {}: {e:?}", pair.pg));
    db
}

/// Writes `values` with `copy_in` (into an emptied table).
async fn write<T: Encode>(db: &TestDb, values: &[T]) -> Result<u64, pgbulk::Error> {
    db.client()
        .batch_execute("TRUNCATE fidelity")
        .await
        .unwrap();
    let rows = (0..).zip(values).map(|(id, v)| Row { id, v });
    db.client().bulk().copy_in(rows).await
}

/// Reads the table back with `copy_out`, in id order.
async fn read<T: Encode + Decode + Send + 'static>(db: &TestDb) -> Result<Vec<T>, pgbulk::Error> {
    let rows = db
        .client()
        .bulk()
        .copy_out_query::<Row<T>>("SELECT id, v FROM fidelity ORDER BY id")
        .collect_vec()
        .await?;
    Ok(rows.into_iter().map(|r| r.v).collect())
}

/// A deterministic sample of `strategy`: [`BATCH`] values, then `edges`.
pub fn sample<T: Clone + Debug, S: Strategy<Value = T>>(strategy: S, edges: &[T]) -> Vec<T> {
    let mut runner = TestRunner::deterministic();
    let mut values = vec(strategy, BATCH)
        .new_tree(&mut runner)
        .unwrap()
        .current();
    values.extend_from_slice(edges);
    values
}

/// Check 1: random values and the edges round-trip through `copy_in` and `copy_out`.
pub fn proptest_round_trip<T, S>(pair: &Pair, strategy: S, edges: &[T], same: fn(&T, &T) -> bool)
where
    T: Encode + Decode + Clone + Debug + Send + 'static,
    S: Strategy<Value = T>,
{
    let rt = runtime();
    let db = rt.block_on(fresh(pair));
    let mut runner = TestRunner::new(Config {
        cases: RUNS,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&vec(strategy, BATCH), |mut values| {
        values.extend_from_slice(edges);
        let back = rt.block_on(async {
            write(&db, &values).await?;
            read::<T>(&db).await
        });
        let back = back.map_err(|e| TestCaseError::fail(format!("{e}")))?;
        proptest::prop_assert_eq!(back.len(), values.len());
        for (v, b) in values.iter().zip(&back) {
            proptest::prop_assert!(same(v, b), "{:?} came back as {:?}", v, b);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{} round trip: {e}", pair.pg);
    }
}

/// Check 2: tokio-postgres reads what `copy_in` wrote, and `copy_out` reads what tokio-postgres
/// wrote. `read` is the select expression over column `v` (`v`, or `v::text`), `write` the
/// insert expression over parameter `$2` (`$2`, or `$2::text::interval`); `theirs` turns a
/// value into what tokio-postgres reads and writes for it.
#[allow(clippy::too_many_arguments)]
pub fn cross_check<T, R, S>(
    pair: &Pair,
    strategy: S,
    edges: &[T],
    read_expr: &str,
    write_expr: &str,
    theirs: fn(&T) -> R,
    same_theirs: fn(&R, &R) -> bool,
    same: fn(&T, &T) -> bool,
) where
    T: Encode + Decode + Clone + Debug + Send + 'static,
    R: ToSql + FromSqlOwned + Sync + Debug,
    S: Strategy<Value = T>,
{
    let values = sample(strategy, edges);
    let rt = runtime();
    rt.block_on(async {
        let db = fresh(pair).await;
        // copy_in → tokio-postgres
        write(&db, &values).await.unwrap();
        let rows = db
            .client()
            .query(
                &format!("SELECT {read_expr} FROM fidelity ORDER BY id"),
                &[],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), values.len());
        for (v, row) in values.iter().zip(&rows) {
            let got: R = row.get(0);
            let want = theirs(v);
            assert!(
                same_theirs(&want, &got),
                "copy_in wrote {v:?}; tokio-postgres read {got:?}, expected {want:?}"
            );
        }
        // tokio-postgres → copy_out
        let insert = rewrite(&db, write_expr).await;
        for (id, v) in (0i32..).zip(&values) {
            db.client()
                .execute(&insert, &[&id, &theirs(v)])
                .await
                .unwrap_or_else(|e| panic!("tokio-postgres could not write {v:?}: {e:?}"));
        }
        let back = read::<T>(&db).await.unwrap();
        assert_eq!(back.len(), values.len());
        for (v, b) in values.iter().zip(&back) {
            assert!(
                same(v, b),
                "tokio-postgres wrote {v:?}; copy_out read {b:?}"
            );
        }
    });
}

/// Empties the table and prepares `INSERT INTO fidelity (id, v) VALUES ($1, <value>)`.
pub async fn rewrite(db: &TestDb, value: &str) -> tokio_postgres::Statement {
    db.client()
        .batch_execute("TRUNCATE fidelity")
        .await
        .unwrap();
    db.client()
        .prepare(&format!(
            "INSERT INTO fidelity (id, v) VALUES ($1, {value})"
        ))
        .await
        .unwrap()
}

/// The fields of the one tuple of a binary COPY stream, length prefixes included.
pub fn copy_fields(data: &[u8]) -> Vec<Vec<u8>> {
    const HEADER: usize = 19;
    assert_eq!(&data[..11], b"PGCOPY\n\xff\r\n\0", "binary COPY signature");
    let mut pos = HEADER;
    let count = i16::from_be_bytes([data[pos], data[pos + 1]]);
    pos += 2;
    let mut fields = Vec::new();
    for _ in 0..count {
        let len = i32::from_be_bytes(data[pos..pos + 4].try_into().unwrap());
        let end = pos + 4 + usize::try_from(len.max(0)).unwrap();
        fields.push(data[pos..end].to_vec());
        pos = end;
    }
    assert_eq!(&data[pos..], &[0xff, 0xff], "one tuple, then the trailer");
    fields
}

/// Lowercase hex, for readable failures.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Check 3: our encoder writes exactly the server's `COPY .. TO STDOUT (FORMAT binary)` bytes
/// for each `(sql expression, value)`, and our decoder reads the server's bytes to the value.
pub fn golden_bytes<T>(pair: &Pair, cases: &[(&str, T)], same: fn(&T, &T) -> bool)
where
    T: Encode + Decode + Debug,
{
    assert!(!cases.is_empty());
    let rt = runtime();
    rt.block_on(async {
        let db = fresh(pair).await;
        let select = cases
            .iter()
            .enumerate()
            .map(|(i, (sql, _))| format!("{sql} AS c{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let stmt = db
            .client()
            .prepare(&format!("SELECT {select}"))
            .await
            .unwrap();
        let copy = format!("COPY (SELECT {select}) TO STDOUT (FORMAT binary)");
        let chunks: Vec<bytes::Bytes> = db
            .client()
            .copy_out(&copy)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let data = chunks.concat();
        let fields = copy_fields(&data);
        assert_eq!(fields.len(), cases.len());
        for (((sql, v), column), server) in cases.iter().zip(stmt.columns()).zip(&fields) {
            let ty = accepted_type(column.type_(), <T as Encode>::accepts)
                .unwrap_or_else(|| panic!("{v:?}: the codec does not accept {}", column.type_()));
            let mut ours = BytesMut::new();
            v.encode_field(ty, &mut ours).unwrap();
            assert_eq!(
                hex(&ours),
                hex(server),
                "{v:?}: our bytes (left) differ from the server's for {sql}"
            );
            let len = i32::from_be_bytes(server[..4].try_into().unwrap());
            let value = (len >= 0).then(|| &server[4..]);
            let back = T::decode(ty, value).unwrap();
            assert!(
                same(v, &back),
                "{sql}: the server's bytes read as {back:?}, not {v:?}"
            );
        }
    });
}

/// Declares the three checks of one pair as a module of three tests.
///
/// ```text
/// pair! {
///     i64_int8: i64 => "int8";                         // module name, Rust type, column type
///     setup: "";                                       // DDL run first
///     strategy: any::<i64>();                          // random values
///     edges: vec![i64::MIN, i64::MAX];                 // always included
///     same: eq;                                        // equality, bit for bit
///     theirs: i64 = |v| *v, read: "v", write: "$2", same: eq;  // the tokio-postgres side
///     golden: [("0::int8", 0), ...];                   // server expression, value
/// }
/// ```
macro_rules! pair {
    // no golden values: only where the server's canonical bytes can never equal ours (a
    // jsonb object); such a pair has a hand-written golden test beside it
    (
        $name:ident: $t:ty => $pg:literal;
        setup: $setup:literal;
        strategy: $strategy:expr;
        edges: $edges:expr;
        same: $same:expr;
        theirs: $r:ty = $to_theirs:expr, read: $read:literal, write: $write:literal, same: $same_theirs:expr;
    ) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            const PAIR: $crate::fidelity::Pair = $crate::fidelity::Pair { pg: $pg, setup: $setup };

            #[test]
            fn proptest_round_trip() {
                let edges: Vec<$t> = $edges;
                $crate::fidelity::proptest_round_trip::<$t, _>(&PAIR, $strategy, &edges, $same);
            }

            #[test]
            fn cross_check() {
                let edges: Vec<$t> = $edges;
                $crate::fidelity::cross_check::<$t, $r, _>(
                    &PAIR, $strategy, &edges, $read, $write, $to_theirs, $same_theirs, $same,
                );
            }
        }
    };
    (
        $name:ident: $t:ty => $pg:literal;
        setup: $setup:literal;
        strategy: $strategy:expr;
        edges: $edges:expr;
        same: $same:expr;
        theirs: $r:ty = $to_theirs:expr, read: $read:literal, write: $write:literal, same: $same_theirs:expr;
        golden: [$(($sql:literal, $val:expr)),* $(,)?];
    ) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            const PAIR: $crate::fidelity::Pair = $crate::fidelity::Pair { pg: $pg, setup: $setup };

            #[test]
            fn proptest_round_trip() {
                let edges: Vec<$t> = $edges;
                $crate::fidelity::proptest_round_trip::<$t, _>(&PAIR, $strategy, &edges, $same);
            }

            #[test]
            fn cross_check() {
                let edges: Vec<$t> = $edges;
                $crate::fidelity::cross_check::<$t, $r, _>(
                    &PAIR, $strategy, &edges, $read, $write, $to_theirs, $same_theirs, $same,
                );
            }

            #[test]
            fn golden_bytes() {
                let cases: Vec<(&str, $t)> = vec![$(($sql, $val)),*];
                $crate::fidelity::golden_bytes::<$t>(&PAIR, &cases, $same);
            }
        }
    };
}

pub(crate) use pair;
