//! Concurrency soak: 8 tasks load (plain, failing and quarantined), read and upsert at once on
//! one deadpool pool for a bounded time; afterwards the tables hold exactly what the
//! successful calls committed, and every read saw whole loads and whole upserts only.
//!
//! Runs for `PGBULK_SOAK_SECS` seconds (default 10, at most 600).

use crate::db;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use pgbulk::{BulkExt, CopyRow, ErrorKind};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "soak")]
struct Row {
    id: i64,
    qty: i32,
    body: String,
}

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "counters")]
struct Counter {
    #[copy(key)]
    key: i32,
    owner: i32,
    version: i64,
}

const BATCH: i64 = 1_000;

fn row(id: i64) -> Row {
    Row {
        id,
        qty: i32::try_from(id % 97).unwrap(),
        body: format!("row {id}"),
    }
}

fn soak_time() -> Duration {
    let secs = std::env::var("PGBULK_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(10)
        .min(600);
    Duration::from_secs(secs)
}

/// A loader: batches of 1,000 new ids. Every 5th batch has a CHECK violation at row 500 and
/// must fail as a whole; every 7th is quarantined with one duplicate key. Returns the ids it
/// committed.
async fn loader(pool: Pool, task: i64, until: Instant) -> Vec<i64> {
    let mut committed = Vec::new();
    let mut batch = 0i64;
    while Instant::now() < until {
        let base = task * 1_000_000_000 + batch * BATCH;
        let mut rows: Vec<Row> = (base..base + BATCH).map(row).collect();
        let client = pool.get().await.unwrap();
        if batch % 5 == 4 {
            rows[500].qty = -1;
            let err = client.bulk().copy_in(&rows).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Db, "{err}");
            assert_eq!(err.row(), Some(500), "{err}");
        } else if batch % 7 == 6 {
            rows[900].id = base + 100;
            let outcome = client.bulk().quarantine().copy_in(&rows).await.unwrap();
            assert_eq!(outcome.written, 999);
            assert_eq!(outcome.rejected.len(), 1);
            assert_eq!(outcome.rejected[0].index, 900);
            committed.extend((base..base + BATCH).filter(|&id| id != base + 900));
        } else {
            assert_eq!(
                client.bulk().copy_in(&rows).await.unwrap(),
                BATCH.unsigned_abs()
            );
            committed.extend(base..base + BATCH);
        }
        batch += 1;
    }
    committed
}

/// An upserter: owns 1,000 keys and upserts all of them with version 1, 2, 3, …; every 3rd
/// version inside a transaction that is rolled back. Returns its last committed version.
async fn upserter(pool: Pool, owner: i32, until: Instant) -> i64 {
    let mut last = 0i64;
    let mut version = 0i64;
    while Instant::now() < until {
        version += 1;
        let rows: Vec<Counter> = (owner * 1_000..(owner + 1) * 1_000)
            .map(|key| Counter {
                key,
                owner,
                version,
            })
            .collect();
        let mut client = pool.get().await.unwrap();
        if version % 3 == 0 {
            let tx = client.transaction().await.unwrap();
            tx.bulk().upsert_via_staging(&rows).await.unwrap();
            tx.rollback().await.unwrap();
        } else {
            let counts = client.bulk().upsert_via_staging(&rows).await.unwrap();
            assert_eq!(counts.inserted + counts.updated, 1_000, "{counts:?}");
            last = version;
        }
    }
    last
}

/// A reader: reads both tables over and over; every row is intact, the row count of `soak`
/// only grows and is a sum of whole loads, and each upserter's keys all have one version.
async fn reader(pool: Pool, until: Instant) -> u64 {
    let mut reads = 0u64;
    let mut seen = 0usize;
    while Instant::now() < until {
        let client = pool.get().await.unwrap();
        let rows = client.bulk().copy_out::<Row>().collect_vec().await.unwrap();
        assert!(rows.len() >= seen, "{} rows after {seen}", rows.len());
        seen = rows.len();
        // Whole loads only: batches of 1,000, or 999 for a quarantined one.
        let mut per_batch: BTreeMap<i64, usize> = BTreeMap::new();
        for r in &rows {
            assert_eq!(*r, row(r.id));
            *per_batch.entry(r.id / BATCH).or_default() += 1;
        }
        for (b, n) in per_batch {
            assert!(n == 1_000 || n == 999, "batch {b} has {n} rows");
        }
        let counters = client
            .bulk()
            .copy_out::<Counter>()
            .collect_vec()
            .await
            .unwrap();
        let mut versions: BTreeMap<i32, (i64, usize)> = BTreeMap::new();
        for c in &counters {
            let v = versions.entry(c.owner).or_insert((c.version, 0));
            assert_eq!(v.0, c.version, "owner {} seen at two versions", c.owner);
            v.1 += 1;
        }
        for (owner, (_, n)) in versions {
            assert_eq!(n, 1_000, "owner {owner} has {n} keys");
        }
        reads += 1;
    }
    reads
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_tasks_load_read_and_upsert_on_one_pool() {
    let db = db().await;
    db.client()
        .batch_execute(
            "CREATE TABLE soak (id int8 PRIMARY KEY, qty int4 NOT NULL CHECK (qty >= 0), body text NOT NULL);
             CREATE TABLE counters (key int4 PRIMARY KEY, owner int4 NOT NULL, version int8 NOT NULL);",
        )
        .await
        .unwrap();
    let manager = Manager::from_config(
        db.config().clone(),
        tokio_postgres::NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Verified,
        },
    );
    let pool = Pool::builder(manager).max_size(8).build().unwrap();
    let until = Instant::now() + soak_time();
    let loaders: Vec<_> = (0..3)
        .map(|t| tokio::spawn(loader(pool.clone(), t, until)))
        .collect();
    let upserters: Vec<_> = (0..2)
        .map(|o| tokio::spawn(upserter(pool.clone(), o, until)))
        .collect();
    let readers: Vec<_> = (0..3)
        .map(|_| tokio::spawn(reader(pool.clone(), until)))
        .collect();

    let mut expected_ids = Vec::new();
    for l in loaders {
        expected_ids.extend(l.await.unwrap());
    }
    let mut last_versions = Vec::new();
    for u in upserters {
        last_versions.push(u.await.unwrap());
    }
    let mut reads = 0;
    for r in readers {
        reads += r.await.unwrap();
    }
    assert!(reads > 0);
    assert!(expected_ids.len() >= 1_000, "no load finished");

    // Exactly the committed rows, nothing of the failed or rolled-back calls.
    expected_ids.sort_unstable();
    let mut back = db
        .client()
        .bulk()
        .copy_out::<Row>()
        .collect_vec()
        .await
        .unwrap();
    back.sort_by_key(|r| r.id);
    assert_eq!(back.len(), expected_ids.len());
    for (r, id) in back.iter().zip(&expected_ids) {
        assert_eq!(*r, row(*id));
    }
    let mut counters = db
        .client()
        .bulk()
        .copy_out::<Counter>()
        .collect_vec()
        .await
        .unwrap();
    counters.sort_by_key(|c| c.key);
    let expected: Vec<Counter> = (0..2)
        .flat_map(|owner| {
            let version = last_versions[usize::try_from(owner).unwrap()];
            (owner * 1_000..(owner + 1) * 1_000).map(move |key| Counter {
                key,
                owner,
                version,
            })
        })
        .collect();
    assert_eq!(counters, expected);
    // No connection was left inside a transaction or a COPY: every pooled client still works.
    let clients: Vec<_> = futures_util::future::join_all((0..8).map(|_| pool.get()))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    for c in &clients {
        let in_tx: bool = c
            .query_one("SELECT pg_current_xact_id_if_assigned() IS NOT NULL", &[])
            .await
            .unwrap()
            .get(0);
        assert!(!in_tx);
    }
}
