//! `copy_out_parallel`: one table read over several connections sharing one snapshot.

use crate::db;
use pgbulk::{copy_out_parallel, CopyRow, ErrorKind};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "accts")]
struct Acct {
    id: i64,
    bal: i64,
    ver: i64,
    pad: String,
}

const ROWS: i64 = 40_000;

fn pad(id: i64) -> String {
    format!("{id:0>60}")
}

/// One committed writer transaction `k`: `bal[a] -= 1`, `bal[b] += 1`, delete `c`, insert `new`.
#[derive(Debug, Clone, Copy)]
struct Txn {
    a: i64,
    b: i64,
    c: i64,
    new: i64,
}

/// The table after the writer's first `k` transactions, as `id -> row`.
fn model(txns: &[Txn], k: usize) -> BTreeMap<i64, Acct> {
    let mut rows: BTreeMap<i64, Acct> = (0..ROWS)
        .map(|id| {
            let row = Acct {
                id,
                bal: 0,
                ver: 0,
                pad: pad(id),
            };
            (id, row)
        })
        .collect();
    for (i, t) in txns[..k].iter().enumerate() {
        let ver = i64::try_from(i).unwrap() + 1;
        let a = rows.get_mut(&t.a).unwrap();
        a.bal -= 1;
        a.ver = ver;
        let b = rows.get_mut(&t.b).unwrap();
        b.bal += 1;
        b.ver = ver;
        rows.remove(&t.c).unwrap();
        rows.insert(
            t.new,
            Acct {
                id: t.new,
                bal: 0,
                ver,
                pad: pad(t.new),
            },
        );
    }
    rows
}

/// Runs writer transactions on `client` until `stop`, recording each after it commits.
async fn writer(client: tokio_postgres::Client, log: Arc<Mutex<Vec<Txn>>>, stop: Arc<AtomicBool>) {
    let mut live: Vec<i64> = (0..ROWS).collect();
    let mut next = ROWS;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut pick = |n: usize| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) as usize % n
    };
    while !stop.load(Ordering::Relaxed) {
        let k = i64::try_from(log.lock().unwrap().len()).unwrap() + 1;
        // Spread over the whole table so updated rows move between block ranges.
        let ia = pick(live.len());
        let a = live[ia];
        let b = loop {
            let b = live[pick(live.len())];
            if b != a {
                break b;
            }
        };
        let ic = loop {
            let ic = pick(live.len());
            if live[ic] != a && live[ic] != b {
                break ic;
            }
        };
        let c = live[ic];
        let new = next;
        client
            .batch_execute(&format!(
                "BEGIN; \
                 UPDATE accts SET bal = bal - 1, ver = {k} WHERE id = {a}; \
                 UPDATE accts SET bal = bal + 1, ver = {k} WHERE id = {b}; \
                 DELETE FROM accts WHERE id = {c}; \
                 INSERT INTO accts VALUES ({new}, 0, {k}, '{}'); \
                 COMMIT",
                pad(new)
            ))
            .await
            .unwrap();
        live.swap_remove(ic);
        live.push(new);
        next += 1;
        log.lock().unwrap().push(Txn { a, b, c, new });
    }
}

async fn read_during_writes(split: fn(pgbulk::ParallelRead<'_>) -> pgbulk::ParallelRead<'_>) {
    let db = db().await;
    db.client()
        .batch_execute(&format!(
            "CREATE TABLE accts (id int8 PRIMARY KEY, bal int8 NOT NULL, ver int8 NOT NULL, \
             pad text NOT NULL); \
             INSERT INTO accts SELECT g, 0, 0, lpad(g::text, 60, '0') FROM generate_series(0, {}) g",
            ROWS - 1
        ))
        .await
        .unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writing = tokio::spawn(writer(
        db.connect().await.unwrap(),
        log.clone(),
        stop.clone(),
    ));
    while log.lock().unwrap().len() < 20 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let before = log.lock().unwrap().len();
    let (b, c) = (db.connect().await.unwrap(), db.connect().await.unwrap());
    let clients = [db.client(), &b, &c];
    let mut rows: Vec<Acct> = Vec::new();
    let mut in_parts = 0;
    // Read until the writer has committed during a read (on a loaded machine one read may be
    // quicker than one writer transaction).
    for _ in 0..20 {
        let started = log.lock().unwrap().len();
        let parts = split(copy_out_parallel(&clients))
            .collect_parts::<Acct>()
            .await
            .unwrap();
        in_parts = parts.iter().filter(|p| !p.is_empty()).count();
        rows = parts.into_iter().flatten().collect();
        if log.lock().unwrap().len() > started + 2 {
            break;
        }
    }
    let during = log.lock().unwrap().len();
    stop.store(true, Ordering::Relaxed);
    writing.await.unwrap();
    assert!(
        during > before,
        "the writer committed while the table was read"
    );
    assert!(in_parts >= 2, "rows came from several parts");

    // The snapshot saw the writer's first `k` transactions, for some k: exactly the table
    // after them, no row twice, none missing, no half of a transaction.
    let k = usize::try_from(rows.iter().map(|r| r.ver).max().unwrap()).unwrap();
    assert!(k >= before, "the snapshot is newer than the read's start");
    let expect = model(&log.lock().unwrap(), k);
    let mut got = BTreeMap::new();
    for row in rows {
        let id = row.id;
        assert!(got.insert(id, row).is_none(), "row {id} read twice");
    }
    assert_eq!(got.len(), expect.len());
    assert!(
        got == expect,
        "the read equals the table after transaction {k}"
    );
    // The connections are usable and outside any transaction afterwards.
    for client in clients {
        client
            .batch_execute("BEGIN; SET TRANSACTION ISOLATION LEVEL SERIALIZABLE; COMMIT")
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_read_by_blocks_is_one_snapshot_during_writes() {
    let db = db().await;
    if crate::server::version_num_of(&db).await < 140_000 {
        // No TID range scans before PostgreSQL 14: the block split is refused, nothing is read,
        // and the client is usable afterwards.
        db.client()
            .batch_execute(
                "CREATE TABLE accts (id int8 PRIMARY KEY, bal int8 NOT NULL, ver int8 NOT NULL, \
                 pad text NOT NULL); INSERT INTO accts VALUES (1, 0, 0, '')",
            )
            .await
            .unwrap();
        let err = copy_out_parallel(&[db.client()])
            .table("accts")
            .collect_vec::<Acct>()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Usage, "{err}");
        db.client().batch_execute("SELECT 1").await.unwrap();
        return;
    }
    read_during_writes(|r| r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_read_by_key_ranges_is_one_snapshot_during_writes() {
    read_during_writes(|r| r.key_ranges("id", [10_000, 25_000, 30_000])).await;
}

#[tokio::test]
async fn parallel_read_errors_end_every_transaction() {
    let db = db().await;
    db.client()
        .batch_execute(
            "CREATE TABLE accts (id int8, bal int8, ver int8, pad text); \
             INSERT INTO accts VALUES (1, 0, 0, 'a'), (2, NULL, 0, 'b')",
        )
        .await
        .unwrap();
    let b = db.connect().await.unwrap();
    let clients = [db.client(), &b];
    // A NULL into a non-Option field: the decode error names row, field and column.
    let err = copy_out_parallel(&clients)
        .key_ranges("id", [2])
        .collect_vec::<Acct>()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode, "{err}");
    assert_eq!(err.field(), Some("bal"));
    // A missing table: the server's error.
    let err = copy_out_parallel(&clients)
        .table("nope")
        .collect_vec::<Acct>()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Db, "{err}");
    assert!(copy_out_parallel(&[]).collect_vec::<Acct>().await.is_err());
    // A connection already inside a transaction: an error, not a read of another snapshot.
    b.batch_execute("BEGIN; SELECT 1").await.unwrap();
    let err = copy_out_parallel(&clients)
        .key_ranges("id", [2])
        .collect_vec::<Acct>()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Db, "{err}");
    assert!(err.to_string().contains("outside any transaction"), "{err}");
    let same = [db.client(), db.client()];
    assert!(copy_out_parallel(&same)
        .key_ranges("id", [2])
        .collect_vec::<Acct>()
        .await
        .is_err());
    // Both connections are out of their transactions: a new snapshot sees new rows.
    db.client()
        .batch_execute("UPDATE accts SET bal = 5")
        .await
        .unwrap();
    let rows = copy_out_parallel(&clients)
        .key_ranges("id", [2])
        .collect_vec::<Acct>()
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.bal == 5));
    // An empty table: every part empty, still one per connection.
    db.client().batch_execute("TRUNCATE accts").await.unwrap();
    let parts = copy_out_parallel(&clients)
        .key_ranges("id", [2])
        .collect_parts::<Acct>()
        .await
        .unwrap();
    assert_eq!(parts.len(), 2);
    assert!(parts.iter().all(Vec::is_empty));
}
