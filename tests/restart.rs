//! The server crashes and restarts in the middle of a load: the load fails with an error (never
//! a quiet success), and after the restart no row of it is there.
//!
//! Its own test binary, hence its own throwaway cluster: the crash (`kill -9` of the copying
//! backend, after which the postmaster ends every session and recovers) would break the
//! connections of every other test sharing the cluster. It always runs on a throwaway cluster of
//! its own (`testkit::use_local_cluster`), never on a `DATABASE_URL` server.

// Test code: one long scenario (crash, recover, check) is the point.
#![allow(clippy::too_many_lines)]

use futures_util::StreamExt;
use pgbulk::testkit::TestDb;
use pgbulk::{BulkExt, CopyRow, ErrorKind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(CopyRow, Debug, Clone)]
#[copy(table = "events")]
struct Event {
    id: i64,
    body: String,
}

fn event(id: i64) -> Event {
    Event {
        id,
        body: format!("event {id} {}", "x".repeat(100)),
    }
}

/// `kill -9 pid`: the server process, as root or as its owner.
fn kill9(pid: i32) {
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -9 {pid} failed");
}

/// Connects again once the server has recovered (within 60 s). `witness`, a connection made
/// before the crash, must be gone first: the postmaster ends every session once it has seen
/// the crashed backend exit, and a connection made before that moment would be ended too.
async fn reconnect(db: &TestDb, witness: &tokio_postgres::Client) -> tokio_postgres::Client {
    let start = Instant::now();
    while witness.simple_query("SELECT 1").await.is_ok() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the server did not end the other sessions within 60 s of the crash"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    loop {
        match db.connect().await {
            Ok(c) if c.simple_query("SELECT 1").await.is_ok() => return c,
            Ok(_) | Err(_) if start.elapsed() < Duration::from_secs(60) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(_) => panic!("the server did not recover within 60 s"),
            Err(e) => panic!("the server did not recover within 60 s: {e}"),
        }
    }
}

async fn backend_pid(client: &tokio_postgres::Client) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn server_crash_and_restart_mid_load_is_an_error_and_writes_nothing() {
    // Its own throwaway cluster, even when DATABASE_URL names a server: this test crashes it.
    pgbulk::testkit::use_local_cluster();
    let db = TestDb::new().await.unwrap();
    db.client()
        .batch_execute("CREATE TABLE events (id int8 PRIMARY KEY, body text NOT NULL)")
        .await
        .unwrap();

    // 1. copy_in: crash after 100,000 rows have been handed over.
    let victim = db.connect().await.unwrap();
    let pid = backend_pid(&victim).await;
    let witness = db.connect().await.unwrap();
    let sent = AtomicU64::new(0);
    let load = victim
        .bulk()
        .on_progress(|p| sent.store(p.rows, Ordering::SeqCst))
        .copy_in((0..i64::MAX).map(event));
    let crash = async {
        while sent.load(Ordering::SeqCst) < 100_000 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        kill9(pid);
    };
    let (result, ()) = tokio::time::timeout(Duration::from_secs(120), async {
        tokio::join!(load, crash)
    })
    .await
    .expect("copy_in neither failed nor finished after the crash");
    let err = result.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Connection | ErrorKind::Db),
        "{err:?}"
    );
    assert!(
        victim.is_closed(),
        "the crashed backend's connection is gone"
    );
    let client = reconnect(&db, &witness).await;
    let n: i64 = client
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "rows of the crashed load survived the restart");

    // 2. A committed load survives; a quarantined load cut by a crash leaves nothing of its own.
    // (The testkit runs with synchronous_commit off, which may lose the last commits in a crash;
    // this session waits for its commits' WAL to be written.)
    client
        .batch_execute("SET synchronous_commit = on")
        .await
        .unwrap();
    assert_eq!(
        client.bulk().copy_in((0..1_000).map(event)).await.unwrap(),
        1_000
    );
    let rows: Vec<Event> = (1_000..400_000).map(event).collect();
    let pid = backend_pid(&client).await;
    let witness = db.connect().await.unwrap();
    let sent = AtomicU64::new(0);
    let load = client
        .bulk()
        .on_progress(|p| sent.store(p.rows, Ordering::SeqCst))
        .quarantine()
        .copy_in(&rows);
    let crash = async {
        while sent.load(Ordering::SeqCst) < 50_000 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        kill9(pid);
    };
    let (result, ()) = tokio::join!(load, crash);
    let err = result.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Connection | ErrorKind::Db),
        "{err:?}"
    );
    let client = reconnect(&db, &witness).await;
    let n: i64 = client
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1_000, "only the committed load is there");

    // 3. copy_out: the crash is an error, not an early end of the rows.
    client
        .batch_execute("SET synchronous_commit = on")
        .await
        .unwrap();
    client
        .batch_execute(
            "INSERT INTO events SELECT g, repeat('y', 200) FROM generate_series(1000, 299999) g",
        )
        .await
        .unwrap();
    let reader = db.connect().await.unwrap();
    let pid = backend_pid(&reader).await;
    let witness = db.connect().await.unwrap();
    let mut stream = reader.bulk().copy_out::<Event>();
    let mut read = 0u64;
    let mut failure = None;
    while let Some(row) = stream.next().await {
        match row {
            Ok(_) => read += 1,
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
        if read == 1_000 {
            kill9(pid);
        }
    }
    let err = failure.unwrap_or_else(|| panic!("copy_out ended quietly after {read} rows"));
    assert!(read < 300_000);
    assert_eq!(err.row(), Some(read), "{err}");
    let client = reconnect(&db, &witness).await;
    let n: i64 = client
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 300_000);
}
