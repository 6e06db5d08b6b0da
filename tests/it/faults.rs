//! Faults during a load or a read: whatever happens, no row is half-written, the error says
//! what happened (row and column where known), and the connection is usable afterwards where
//! the server allows it — on every async client (`on_every_client!`).

use crate::count;
use futures_util::{stream, StreamExt};
use pgbulk::{BulkExt, CopyRow, ErrorKind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::error::SqlState;

#[derive(CopyRow, Debug, Clone)]
#[copy(table = "ledger")]
struct Entry {
    id: i32,
    account: i32,
    amount: rust_decimal::Decimal,
    memo: Option<String>,
    day: chrono::NaiveDate,
}

const LEDGER: &str = "
    CREATE TABLE accounts (id int4 PRIMARY KEY);
    INSERT INTO accounts SELECT generate_series(0, 9);
    CREATE TABLE ledger (
        id int4 PRIMARY KEY,
        account int4 NOT NULL REFERENCES accounts (id),
        amount numeric(5, 2) NOT NULL CHECK (amount >= 0),
        memo text NOT NULL,
        day date NOT NULL
    )";

fn entry(id: i32) -> Entry {
    Entry {
        id,
        account: id % 10,
        amount: rust_decimal::Decimal::new(i64::from(id % 10_000), 2),
        memo: Some(format!("entry {id}")),
        day: chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
    }
}

/// The ledger with no constraint a generated row can break (any amount, any account), for
/// loads of millions of rows.
async fn ledger_for_long_loads(db: &pgbulk::testkit::TestDb) {
    db.client().batch_execute(LEDGER).await.unwrap();
    db.client()
        .batch_execute(
            "ALTER TABLE ledger DROP CONSTRAINT ledger_amount_check, ALTER amount TYPE numeric, \
             DROP CONSTRAINT ledger_account_fkey",
        )
        .await
        .unwrap();
}

/// Entries `0..n` as a stream that pauses `pause_ms` every `every` rows.
fn slow_entries(
    n: i32,
    every: i32,
    pause_ms: u64,
) -> impl futures_util::Stream<Item = Result<Entry, std::io::Error>> {
    stream::iter(0..n).then(move |i| async move {
        if i % every == 0 {
            tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        }
        Ok(entry(i))
    })
}

/// Makes one row bad.
type Spoil = fn(&mut Entry);

/// What, how, the SQLSTATE expected, and the row and column the error should name.
type Rejection = (
    &'static str,
    Spoil,
    SqlState,
    Option<u64>,
    Option<&'static str>,
);

/// 2,000 entries with `spoil` applied to row 1,234.
fn with_bad_row(spoil: Spoil) -> Vec<Entry> {
    (0..2_000)
        .map(|i| {
            let mut e = entry(i);
            if i == 1_234 {
                spoil(&mut e);
            }
            e
        })
        .collect()
}

/// The connection `$conn` still works and the ledger is empty. (A macro: the bodies run on
/// connections of two clients, whose `bulk()` handles are different types.)
macro_rules! assert_nothing_written_and_usable {
    ($db:expr, $conn:expr) => {{
        assert_eq!(count($db, "ledger").await, 0);
        let n = $conn.bulk().copy_in((0..10).map(entry)).await.unwrap();
        assert_eq!(n, 10);
        $db.client().batch_execute("TRUNCATE ledger").await.unwrap();
    }};
}

#[derive(CopyRow, Debug)]
#[copy(table = "big")]
struct Big {
    id: i64,
    pad: String,
}

#[derive(CopyRow, Debug, Clone)]
#[copy(table = "grids")]
struct Grid {
    id: i32,
    cells: Vec<Vec<i32>>,
}

on_every_client! {
    async fn server_rejections_name_row_and_column_and_write_nothing(db, conn) {
        db.client().batch_execute(LEDGER).await.unwrap();

        // Foreign keys are checked by a trigger after the last row, so the server names the key
        // (and so the column) but no line: the row is unknown there.
        let cases: [Rejection; 5] = [
            (
                "unique",
                |e| e.id = 7,
                SqlState::UNIQUE_VIOLATION,
                Some(1_234),
                Some("id"),
            ),
            (
                "check",
                |e| e.amount = rust_decimal::Decimal::new(-1, 2),
                SqlState::CHECK_VIOLATION,
                Some(1_234),
                None,
            ),
            (
                "not null",
                |e| e.memo = None,
                SqlState::NOT_NULL_VIOLATION,
                Some(1_234),
                Some("memo"),
            ),
            (
                "foreign key",
                |e| e.account = 99,
                SqlState::FOREIGN_KEY_VIOLATION,
                None,
                Some("account"),
            ),
            (
                "numeric(5,2) overflow",
                |e| e.amount = rust_decimal::Decimal::new(123_456, 2),
                SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
                Some(1_234),
                Some("amount"),
            ),
        ];
        for (what, spoil, code, row, column) in cases {
            let err = conn.bulk().copy_in(&with_bad_row(spoil)).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Db, "{what}: {err}");
            assert_eq!(err.code(), Some(&code), "{what}: {err}");
            assert_eq!(err.row(), row, "{what}: {err}");
            if let Some(column) = column {
                assert_eq!(err.column(), Some(column), "{what}: {err}");
                assert_eq!(err.field(), Some(column), "{what}: {err}");
            }
            assert!(
                err.to_string().contains("no row was written"),
                "{what}: {err}"
            );
            assert_nothing_written_and_usable!(&db, conn);
        }
    }

    async fn client_side_encode_errors_name_row_and_field_and_write_nothing(db, conn) {
        db.client().batch_execute(LEDGER).await.unwrap();
        let cases: [(&str, Spoil, &str, &str); 2] = [
            (
                "NUL in text",
                |e| e.memo = Some("a\0b".into()),
                "memo",
                "NUL",
            ),
            (
                "date before 4714 BC",
                |e| e.day = chrono::NaiveDate::from_ymd_opt(-5000, 1, 1).unwrap(),
                "day",
                "outside PostgreSQL's date range",
            ),
        ];
        for (what, spoil, field, words) in cases {
            let err = conn.bulk().copy_in(&with_bad_row(spoil)).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Encode, "{what}: {err}");
            assert_eq!(err.row(), Some(1_234), "{what}: {err}");
            assert_eq!(err.field(), Some(field), "{what}: {err}");
            assert!(err.to_string().contains(words), "{what}: {err}");
            assert_nothing_written_and_usable!(&db, conn);
        }
    }

    async fn timeout_mid_stream_and_aborted_task_write_nothing(db, conn) {
        ledger_for_long_loads(&db).await;
        // A slow source: the timeout fires while the COPY is open and rows have been sent.
        let slow = slow_entries(i32::MAX, 1000, 10);
        let sent = AtomicU64::new(0);
        let load = conn
            .bulk()
            .flush_bytes(4096)
            .on_progress(|p| sent.store(p.rows, Ordering::SeqCst))
            .copy_in_stream(slow);
        // Boxed, so that `drop` below really drops it (and aborts the COPY).
        let mut load = Box::pin(load);
        // The timeout is only armed once the COPY has reported more than 1,000 rows sent, so it
        // fires mid-stream however slow the machine is (the source never ends).
        let sending = async {
            while sent.load(Ordering::SeqCst) <= 1_000 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::select! {
            r = &mut load => panic!("the endless load finished: {r:?}"),
            () = sending => {}
        }
        let timed_out = tokio::time::timeout(Duration::from_millis(50), &mut load).await;
        assert!(timed_out.is_err(), "the endless load finished");
        drop(load);
        assert!(sent.load(Ordering::SeqCst) > 1_000);
        // sqlx: the session was ended, and a new connection goes on (see `conn.rs`).
        assert_eq!(count(&db, "ledger").await, 0);
        after_abandoned_copy(&mut conn, &db).await;
        assert_nothing_written_and_usable!(&db, conn);

        // The same from a spawned task, aborted once its COPY has reported rows sent.
        let shared = Arc::new(tokio::sync::Mutex::new(connect(&db).await));
        let task_sent = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let shared = Arc::clone(&shared);
            let task_sent = Arc::clone(&task_sent);
            async move {
                let mut client = shared.lock().await;
                let loaded = client
                    .bulk()
                    .on_progress(move |p| task_sent.store(p.rows, Ordering::SeqCst))
                    .copy_in((0..i32::MAX).map(entry))
                    .await;
                loaded
            }
        });
        while task_sent.load(Ordering::SeqCst) < 10_000 {
            assert!(!task.is_finished(), "the endless load ended");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        assert_eq!(count(&db, "ledger").await, 0);
        let mut client = shared.lock().await;
        after_abandoned_copy(&mut client, &db).await;
        assert_eq!(client.bulk().copy_in((0..5).map(entry)).await.unwrap(), 5);
    }

    async fn panicking_iterator_and_failing_stream_write_nothing(db, conn) {
        db.client().batch_execute(LEDGER).await.unwrap();
        let shared = Arc::new(tokio::sync::Mutex::new(connect(&db).await));
        let task = tokio::spawn({
            let shared = Arc::clone(&shared);
            async move {
                let mut client = shared.lock().await;
                let loaded = client
                    .bulk()
                    .copy_in((0..100_000).map(|i| {
                        assert!(i != 50_000, "the source broke at row 50,000");
                        entry(i)
                    }))
                    .await;
                loaded
            }
        });
        let join = task.await.unwrap_err();
        assert!(join.is_panic());
        assert_eq!(count(&db, "ledger").await, 0);
        // The panic dropped the COPY half-way (sqlx: the session was ended; see `conn.rs`).
        let mut client = shared.lock().await;
        after_abandoned_copy(&mut client, &db).await;
        assert_eq!(client.bulk().copy_in((0..5).map(entry)).await.unwrap(), 5);
        db.client().batch_execute("TRUNCATE ledger").await.unwrap();

        let failing = stream::iter(0..100_000).map(|i| {
            if i == 77_777 {
                Err(std::io::Error::other("disk read failed"))
            } else {
                Ok(entry(i))
            }
        });
        let err = conn
            .bulk()
            .copy_in_stream(failing)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Input);
        assert_eq!(err.row(), Some(77_777));
        assert!(err.to_string().contains("disk read failed"), "{err}");
        assert_nothing_written_and_usable!(&db, conn);
    }

    async fn statement_timeout_during_copy_in_writes_nothing(db, conn) {
        ledger_for_long_loads(&db).await;
        execute(&mut conn, "SET statement_timeout = '300ms'")
            .await
            .unwrap();
        // A finite source (about 2 s): tokio-postgres reports a server error during COPY FROM
        // STDIN only when the client ends the COPY, so an endless source would never see it.
        let slow = slow_entries(200_000, 500, 5);
        let err = conn
            .bulk()
            .flush_bytes(4096)
            .copy_in_stream(slow)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED), "{err}");
        assert!(err.to_string().contains("statement timeout"), "{err}");
        execute(&mut conn, "RESET statement_timeout").await.unwrap();
        assert_nothing_written_and_usable!(&db, conn);
    }

    async fn terminated_backend_during_copy_in_is_an_error_and_nothing_is_written(db, conn) {
        ledger_for_long_loads(&db).await;
        let mut victim = conn;
        let pid = scalar(&mut victim, "SELECT pg_backend_pid()::int8")
            .await
            .unwrap();
        let sent = AtomicU64::new(0);
        let load = victim
            .bulk()
            .on_progress(|p| sent.store(p.rows, Ordering::SeqCst))
            .copy_in((0..i32::MAX).map(entry));
        let killer = async {
            while sent.load(Ordering::SeqCst) < 100_000 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            db.client()
                .batch_execute(&format!("SELECT pg_terminate_backend({pid})"))
                .await
                .unwrap();
        };
        let (result, ()) = tokio::join!(load, killer);
        let err = result.unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::Db | ErrorKind::Connection),
            "{err:?}"
        );
        assert_eq!(count(&db, "ledger").await, 0);
        let gone = is_gone(&mut victim).await;
        assert!(
            err.code() == Some(&SqlState::ADMIN_SHUTDOWN) || gone,
            "{err}"
        );
        assert!(gone, "a terminated backend's connection is gone");
    }

    async fn terminated_backend_during_copy_out_is_an_error_not_an_early_end(db, conn) {
        db.client()
            .batch_execute(
                "CREATE TABLE big AS SELECT g::int8 AS id, repeat('x', 200) AS pad FROM generate_series(1, 300000) g",
            )
            .await
            .unwrap();
        let mut victim = conn;
        let pid = scalar(&mut victim, "SELECT pg_backend_pid()::int8")
            .await
            .unwrap();
        let mut rows = victim.bulk().copy_out::<Big>();
        let mut read = 0u64;
        let mut failure = None;
        while let Some(row) = rows.next().await {
            match row {
                Ok(_) => read += 1,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
            if read == 1_000 {
                db.client()
                    .batch_execute(&format!("SELECT pg_terminate_backend({pid})"))
                    .await
                    .unwrap();
            }
        }
        let err =
            failure.unwrap_or_else(|| panic!("copy_out ended quietly after {read} of 300000 rows"));
        assert!(read < 300_000);
        assert!(
            matches!(err.kind(), ErrorKind::Db | ErrorKind::Connection),
            "{err:?}"
        );
        assert_eq!(err.row(), Some(read), "{err}");
    }

    async fn ragged_array_is_an_encode_error_naming_row_and_field_and_writes_nothing(db, conn) {
        db.client()
            .batch_execute("CREATE TABLE grids (id int4 PRIMARY KEY, cells int4[] NOT NULL)")
            .await
            .unwrap();
        let rows: Vec<Grid> = (0..2_000)
            .map(|id| Grid {
                id,
                cells: if id == 1_234 {
                    vec![vec![1, 2, 3], vec![4, 5]]
                } else {
                    vec![vec![id; 3]; 2]
                },
            })
            .collect();
        let err = conn.bulk().copy_in(&rows).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Encode, "{err}");
        assert_eq!(err.row(), Some(1_234), "{err}");
        assert_eq!(err.field(), Some("cells"), "{err}");
        assert!(err.to_string().contains("not rectangular"), "{err}");
        assert_eq!(count(&db, "grids").await, 0);
        // The connection is usable, and the good rows load.
        let n = conn.bulk().copy_in(&rows[..1_234]).await.unwrap();
        assert_eq!(n, 1_234);
    }
}
