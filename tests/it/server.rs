//! The server the tests run against (which major, read from the server itself), and the
//! behaviour that depends on its version, tested on both sides of each version floor.

use crate::{count, db};
use pgbulk::testkit::TestDb;
use pgbulk::{BulkExt, CopyRow, ErrorKind, PgNumeric};
use rust_decimal::Decimal;
use std::sync::OnceLock;

/// The first `server_version_num` whose numeric type holds ±Infinity.
const NUMERIC_INFINITY_SINCE: i32 = 140_000;

/// `server_version_num` of `db`'s server.
pub async fn version_num_of(db: &TestDb) -> i32 {
    db.client()
        .query_one("SELECT current_setting('server_version_num')::int4", &[])
        .await
        .unwrap()
        .get(0)
}

/// `server_version_num` of the tests' server, for code outside a runtime (the fidelity
/// checks' synchronous drivers). Asked once per process.
pub fn version_num() -> i32 {
    static VERSION: OnceLock<i32> = OnceLock::new();
    *VERSION.get_or_init(|| {
        std::thread::spawn(|| {
            crate::fidelity::runtime().block_on(async { version_num_of(&db().await).await })
        })
        .join()
        .unwrap()
    })
}

/// Reports the server's version as the server states it, and checks it is the major the run
/// asked for: `PGBULK_EXPECT_PG_MAJOR` (set by `scripts/test-pg.sh`) must match, so a run
/// meant for one major cannot pass on another. With `PGBULK_SERVER_VERSION_FILE` set, the
/// version is written there for the script to print.
#[tokio::test]
async fn reports_the_server_version() {
    let db = db().await;
    let row = db
        .client()
        .query_one(
            "SELECT current_setting('server_version'), \
                    current_setting('server_version_num')::int4, version()",
            &[],
        )
        .await
        .unwrap();
    let (version, num, banner): (String, i32, String) = (row.get(0), row.get(1), row.get(2));
    assert!(
        num >= 130_000,
        "pgbulk is tested from PostgreSQL 13 on; got {banner}"
    );
    assert!(
        version.starts_with(&format!("{}.", num / 10_000)),
        "{version} vs {num}"
    );
    if let Some(major) = std::env::var("PGBULK_EXPECT_PG_MAJOR")
        .ok()
        .filter(|m| !m.is_empty())
    {
        assert_eq!(
            (num / 10_000).to_string(),
            major,
            "the tests were asked to run on PostgreSQL {major} but connected to {banner}"
        );
    }
    if let Some(path) = std::env::var_os("PGBULK_SERVER_VERSION_FILE") {
        std::fs::write(path, format!("{version} (server_version_num {num})\n")).unwrap();
    }
}

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "amounts")]
struct Entry {
    #[copy(key)]
    id: i32,
    note: String,
    amount: PgNumeric,
    history: Vec<PgNumeric>,
}

const AMOUNTS: &str =
    "CREATE TABLE amounts (id int4 PRIMARY KEY, note text, amount numeric, history numeric[])";

fn amounts(infinity_at: Option<usize>, in_array: bool) -> Vec<Entry> {
    (0..4)
        .map(|i| {
            let special = infinity_at == Some(i);
            Entry {
                id: i32::try_from(i).unwrap(),
                note: format!("row {i}"),
                amount: if special && !in_array {
                    PgNumeric::PosInfinity
                } else {
                    PgNumeric::Value(Decimal::new(i64::try_from(i).unwrap() * 15, 1))
                },
                history: if special && in_array {
                    vec![PgNumeric::NaN, PgNumeric::NegInfinity]
                } else {
                    vec![PgNumeric::NaN, PgNumeric::Value(Decimal::ONE)]
                },
            }
        })
        .collect()
}

/// Before 14, the error a row with an infinity gets: client-side, naming row and field.
fn assert_refused(err: &pgbulk::Error, row: u64, field: &str) {
    assert_eq!(err.kind(), ErrorKind::Encode, "{err}");
    assert_eq!(err.row(), Some(row), "{err}");
    assert_eq!(
        (err.field(), err.column()),
        (Some(field), Some(field)),
        "{err}"
    );
    assert!(
        err.to_string().contains("needs PostgreSQL 14 or later"),
        "{err}"
    );
    // decided before sending: the server never saw the bytes
    assert!(err.as_db_error().is_none(), "{err}");
}

/// Numeric ±Infinity: from PostgreSQL 14 they are written and read back, on every path
/// (`copy_in`, `upsert_via_staging`, the sync client); before 14 the row is refused on the
/// client with an error naming row, field and version, nothing is written, and the
/// connection works afterwards.
#[tokio::test]
async fn numeric_infinity_is_refused_before_14_and_written_from_14() {
    let db = db().await;
    db.client().batch_execute(AMOUNTS).await.unwrap();
    let infinite = version_num_of(&db).await >= NUMERIC_INFINITY_SINCE;

    let scalar = amounts(Some(2), false);
    let mut array = amounts(Some(3), true);
    for a in &mut array {
        a.id += 10;
    }
    let copied = db.client().bulk().copy_in(&scalar).await;
    let upserted = db.client().bulk().upsert_via_staging(&array).await;
    if infinite {
        assert_eq!(copied.unwrap(), 4);
        assert_eq!(upserted.unwrap().inserted, 4);
        let back: Vec<Entry> = db
            .client()
            .bulk()
            .copy_out_query("SELECT * FROM amounts ORDER BY id")
            .collect_vec()
            .await
            .unwrap();
        assert_eq!(back, [scalar, array].concat());
    } else {
        assert_refused(&copied.unwrap_err(), 2, "amount");
        assert_refused(&upserted.unwrap_err(), 3, "history");
        assert_eq!(count(&db, "amounts").await, 0);
        // the connection goes on, and finite values and NaN are written on 13 too
        assert_eq!(
            db.client()
                .bulk()
                .copy_in(&amounts(None, false))
                .await
                .unwrap(),
            4
        );
    }

    // The blocking client reads the version the same way.
    let conninfo = db.connection_string();
    tokio::task::spawn_blocking(move || {
        use pgbulk::sync::BulkExt as _;
        let mut client = postgres::Client::connect(&conninfo, postgres::NoTls).unwrap();
        client.batch_execute("TRUNCATE amounts").unwrap();
        let result = client.bulk().copy_in(amounts(Some(1), false));
        if infinite {
            assert_eq!(result.unwrap(), 4);
        } else {
            assert_refused(&result.unwrap_err(), 1, "amount");
            let n: i64 = client
                .query_one("SELECT count(*) FROM amounts", &[])
                .unwrap()
                .get(0);
            assert_eq!(n, 0);
        }
    })
    .await
    .unwrap();
}

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "skus")]
struct Sku {
    #[copy(key)]
    code: Option<String>,
    qty: i64,
}

fn skus(qty: i64) -> Vec<Sku> {
    vec![
        Sku { code: None, qty },
        Sku {
            code: Some("a".into()),
            qty,
        },
    ]
}

/// A NULL key under `UNIQUE NULLS NOT DISTINCT` (PostgreSQL 15 and later) conflicts with the
/// stored NULL key, so `upsert_via_staging` updates that row; under a plain unique index (all
/// that 13 and 14 have) every NULL key is a new row.
#[tokio::test]
async fn upsert_on_a_null_key_follows_the_servers_nulls_distinctness() {
    let db = db().await;
    let not_distinct = version_num_of(&db).await >= 150_000;
    let nulls = if not_distinct {
        "NULLS NOT DISTINCT"
    } else {
        ""
    };
    db.client()
        .batch_execute(&format!(
            "CREATE TABLE skus (code text, qty int8 NOT NULL, UNIQUE {nulls} (code))"
        ))
        .await
        .unwrap();
    let mut counts = Vec::new();
    for qty in [1, 5] {
        let c = db
            .client()
            .bulk()
            .upsert_via_staging(&skus(qty))
            .await
            .unwrap();
        counts.push((c.inserted, c.updated));
    }
    let null_rows: Vec<i64> = db
        .client()
        .query("SELECT qty FROM skus WHERE code IS NULL ORDER BY qty", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    if not_distinct {
        assert_eq!(counts, [(2, 0), (0, 2)]);
        assert_eq!(null_rows, [5]);
    } else {
        assert_eq!(counts, [(2, 0), (1, 1)]);
        assert_eq!(null_rows, [1, 5]);
    }
    assert_eq!(count(&db, "skus").await, if not_distinct { 2 } else { 3 });
}
