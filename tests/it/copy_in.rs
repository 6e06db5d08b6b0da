//! `copy_in`: inputs of every shape, plans, streams, transactions, progress, cancellation — on
//! every async client (`on_every_client!`), except the prepared COPY statement, which is
//! tokio-postgres' own (sqlx cannot run a prepared COPY).

use crate::{count, db};
use futures_util::stream;
use pgbulk::{BulkExt, CopyRow, ErrorKind, Progress};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "items")]
struct Item {
    #[copy(key)]
    id: i64,
    name: String,
    #[copy(rename = "qty")]
    quantity: i32,
    #[copy(skip)]
    scratch: Vec<u8>,
}

fn item(id: i64) -> Item {
    Item {
        id,
        name: format!("item {id}"),
        quantity: i32::try_from(id % 1000).unwrap(),
        scratch: vec![1, 2, 3],
    }
}

const ITEMS: &str = "CREATE TABLE items (id int8 PRIMARY KEY, name text NOT NULL, qty int4, note text DEFAULT 'n/a')";

/// The COPY statements prepared on this session (`pg_prepared_statements`).
async fn prepared_copies(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE 'COPY%'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// tokio-postgres only: sqlx cannot run a prepared COPY statement.
#[tokio::test]
async fn prepared_copy_in_keeps_one_statement_and_stays_all_or_nothing() {
    let mut db = db().await;
    db.client().batch_execute(ITEMS).await.unwrap();
    let bulk = db.client().bulk();
    let plan = bulk.plan::<Item>().await.unwrap();
    // copy_in_with_plan prepares the COPY per call and closes it again.
    bulk.copy_in_with_plan(&plan, (0..10).map(item))
        .await
        .unwrap();
    assert_eq!(prepared_copies(db.client()).await, 0);

    let items = bulk.prepare_copy_in(&plan).await.unwrap();
    assert_eq!(items.plan().copy_statement(), plan.copy_statement());
    for batch in 1..6 {
        let rows: Vec<Item> = (batch * 10..batch * 10 + 10).map(item).collect();
        assert_eq!(bulk.copy_in_prepared(&items, &rows).await.unwrap(), 10);
        // The one prepared statement is what every batch runs: none is added per call.
        assert_eq!(prepared_copies(db.client()).await, 1);
    }
    assert_eq!(count(&db, "items").await, 60);

    // A duplicate key at input row 3 of a prepared batch: the error names it, nothing of the
    // batch is written, and the statement keeps working.
    let bad: Vec<Item> = [100, 101, 102, 5, 103].into_iter().map(item).collect();
    let err = bulk.copy_in_prepared(&items, &bad).await.unwrap_err();
    assert_eq!(err.row(), Some(3), "{err}");
    assert_eq!(err.field(), Some("id"), "{err}");
    assert_eq!(count(&db, "items").await, 60);
    assert_eq!(
        bulk.copy_in_prepared(&items, (100..104).map(item))
            .await
            .unwrap(),
        4
    );
    assert_eq!(count(&db, "items").await, 64);
    drop(bulk);

    // The same (owned) statement across `client.transaction()`: used inside a transaction
    // that rolls back, the rows written through it are gone; then inside one that commits.
    let tx = db.client_mut().transaction().await.unwrap();
    assert_eq!(
        tx.bulk()
            .copy_in_prepared(&items, (200..210).map(item))
            .await
            .unwrap(),
        10
    );
    assert_eq!(prepared_copies(tx.client()).await, 1);
    tx.rollback().await.unwrap();
    assert_eq!(count(&db, "items").await, 64);
    let tx = db.client_mut().transaction().await.unwrap();
    let err = tx
        .bulk()
        .copy_in_prepared(&items, [item(300), item(300)])
        .await
        .unwrap_err();
    assert_eq!(err.row(), Some(1), "{err}");
    drop(tx);
    let tx = db.client_mut().transaction().await.unwrap();
    assert_eq!(
        tx.bulk()
            .copy_in_prepared(&items, (300..305).map(item))
            .await
            .unwrap(),
        5
    );
    tx.commit().await.unwrap();
    assert_eq!(count(&db, "items").await, 69);
    // Dropping it closes the statement on its connection.
    drop(items);
    assert_eq!(prepared_copies(db.client()).await, 0);
}

/// A prepared COPY kept beside its client in one struct, moved around with it.
struct Loader {
    client: tokio_postgres::Client,
    items: pgbulk::PreparedCopyIn<Item>,
}

#[tokio::test]
async fn prepared_copy_in_is_owned_and_refused_on_another_connection() {
    let db = db().await;
    db.client().batch_execute(ITEMS).await.unwrap();
    let client = db.connect().await.unwrap();
    let plan = client.bulk().plan::<Item>().await.unwrap();
    let items = client.bulk().prepare_copy_in(&plan).await.unwrap();
    // Stored beside the client, and the struct moved (boxed): the client's address changes,
    // so the first use asks the server who it is, and goes ahead.
    let loader = Box::new(Loader { client, items });
    assert_eq!(
        loader
            .client
            .bulk()
            .copy_in_prepared(&loader.items, (0..5).map(item))
            .await
            .unwrap(),
        5
    );
    // On another connection: refused before anything is sent, and both connections stay
    // usable (no statement of the wrong session is run, none is out of step).
    let other = db.connect().await.unwrap();
    let err = other
        .bulk()
        .copy_in_prepared(&loader.items, (5..10).map(item))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Usage, "{err}");
    assert!(err.to_string().contains("another connection"), "{err}");
    assert!(!other.is_closed());
    assert_eq!(count(&db, "items").await, 5);
    // Also on the test database's own client (a third session), and from a transaction.
    let err = db
        .client()
        .bulk()
        .copy_in_prepared(&loader.items, [item(50)])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Usage, "{err}");
    let mut other = other;
    let tx = other.transaction().await.unwrap();
    let err = tx
        .bulk()
        .copy_in_prepared(&loader.items, [item(51)])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Usage, "{err}");
    tx.rollback().await.unwrap();
    // Its own connection still works, with the same statement.
    assert_eq!(
        loader
            .client
            .bulk()
            .copy_in_prepared(&loader.items, (10..13).map(item))
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        other
            .query_one("SELECT 1", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        1
    );
    assert_eq!(count(&db, "items").await, 8);
}
on_every_client! {
    async fn accepts_vec_ref_vec_and_lazy_iterators(db, conn) {
        db.client().batch_execute(ITEMS).await.unwrap();
        let rows: Vec<Item> = (0..100).map(item).collect();
        assert_eq!(conn.bulk().copy_in(&rows).await.unwrap(), 100);
        assert_eq!(conn.bulk().copy_in((100..200).map(item)).await.unwrap(), 100);
        assert_eq!(conn.bulk().copy_in(vec![item(200)]).await.unwrap(), 1);
        assert_eq!(conn.bulk().copy_in(std::iter::empty::<Item>()).await.unwrap(), 0);
        assert_eq!(count(&db, "items").await, 201);
        // Columns the struct does not carry get their defaults; skipped fields are not columns.
        let note: String = db
            .client()
            .query_one("SELECT note FROM items WHERE id = 5", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(note, "n/a");
        let columns: Vec<&str> = pgbulk::columns_of::<Item>()
            .iter()
            .map(pgbulk::Column::name)
            .collect();
        assert_eq!(columns, ["id", "name", "qty"]);
        assert!(pgbulk::columns_of::<Item>()[0].is_key() && !pgbulk::columns_of::<Item>()[1].is_key());
    }

    async fn many_chunks_with_progress_and_bounded_buffer(db, conn) {
        db.client().batch_execute(ITEMS).await.unwrap();
        let seen = Mutex::new(Vec::<Progress>::new());
        let n = 200_000;
        let written = conn
            .bulk()
            .flush_bytes(64 * 1024)
            .on_progress(|p| seen.lock().unwrap().push(p))
            .copy_in((0..n).map(item))
            .await
            .unwrap();
        assert_eq!(written, 200_000);
        assert_eq!(count(&db, "items").await, 200_000);
        let seen = seen.into_inner().unwrap();
        // ~30 bytes a row: several dozen chunks, rows and bytes only ever growing, the last one
        // reporting every row.
        assert!(seen.len() > 50, "only {} progress reports", seen.len());
        assert!(seen
            .windows(2)
            .all(|w| w[0].rows <= w[1].rows && w[0].bytes < w[1].bytes));
        assert_eq!(seen.last().unwrap().rows, 200_000);
        // Each chunk is about flush_bytes: the buffer is flushed, not grown.
        let max_chunk = seen
            .windows(2)
            .map(|w| w[1].bytes - w[0].bytes)
            .max()
            .unwrap();
        assert!(max_chunk < 64 * 1024 + 1024, "chunk of {max_chunk} bytes");
    }

    /// The describe step itself is observed through the `described` event it emits: `plan`
    /// describes the table once, the batches on its plan never again (and say so in their spans),
    /// while each `copy_in` without a plan describes it anew.
    async fn plan_is_reused_across_batches(db, conn) {
        db.client().batch_execute(ITEMS).await.unwrap();
        #[cfg(feature = "tracing")]
        let capture = crate::progress::tracing_capture::Capture::default();
        #[cfg(feature = "tracing")]
        let _guard = capture.on_this_thread();
        let plan = conn.bulk().plan::<Item>().await.unwrap();
        assert_eq!(plan.table(), "\"items\"");
        assert_eq!(
            plan.copy_statement(),
            "COPY \"items\" (\"id\", \"name\", \"qty\") FROM STDIN (FORMAT binary)"
        );
        for batch in 0..5 {
            let rows: Vec<Item> = (batch * 10..batch * 10 + 10).map(item).collect();
            assert_eq!(conn.bulk().copy_in_with_plan(&plan, &rows).await.unwrap(), 10);
        }
        assert_eq!(count(&db, "items").await, 50);
        #[cfg(feature = "tracing")]
        {
            let described = capture.events("described");
            assert_eq!(described.len(), 1, "{described:?}");
            assert_eq!(described[0]["what"], "\"items\"");
            let spans = capture.span("pgbulk.copy_in");
            assert_eq!(spans.len(), 5);
            assert!(
                spans.iter().all(|s| s["plan_reused"] == "true"),
                "{spans:?}"
            );
        }

        // Without a plan: a describe per call, and the span says so.
        for batch in 5..7 {
            conn.bulk()
                .copy_in((batch * 10..batch * 10 + 10).map(item))
                .await
                .unwrap();
        }
        assert_eq!(count(&db, "items").await, 70);
        #[cfg(feature = "tracing")]
        {
            assert_eq!(capture.events("described").len(), 3);
            let spans = capture.span("pgbulk.copy_in");
            assert_eq!(spans[5]["plan_reused"], "false");
            assert_eq!(spans[6]["plan_reused"], "false");
        }
    }

    async fn stream_input_and_stream_errors(db, conn) {
        db.client().batch_execute(ITEMS).await.unwrap();
        let ok = stream::iter((0..1000).map(|i| Ok::<_, std::io::Error>(item(i))));
        assert_eq!(conn.bulk().copy_in_stream(ok).await.unwrap(), 1000);

        db.client().batch_execute("TRUNCATE items").await.unwrap();
        let failing = stream::iter((0..1000).map(|i| {
            if i == 700 {
                Err(std::io::Error::other("upstream went away"))
            } else {
                Ok(item(i))
            }
        }));
        let err = conn
            .bulk()
            .copy_in_stream(failing)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), pgbulk::ErrorKind::Input);
        assert_eq!(err.row(), Some(700));
        assert!(err.to_string().contains("upstream went away"), "{err}");
        assert_eq!(count(&db, "items").await, 0);
    }

    async fn table_override_and_transactions(db, conn) {
        db.client()
            .batch_execute(&format!(
                "{ITEMS}; CREATE SCHEMA archive; CREATE TABLE archive.items (LIKE items)"
            ))
            .await
            .unwrap();
        let rows: Vec<Item> = (0..10).map(item).collect();
        conn.bulk()
            .table("archive.items")
            .copy_in(&rows)
            .await
            .unwrap();
        assert_eq!(count(&db, "archive.items").await, 10);
        assert_eq!(count(&db, "items").await, 0);

        let mut tx = begin(&mut conn).await;
        assert!(tx.bulk().in_transaction());
        tx.bulk().copy_in(&rows).await.unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(count(&db, "items").await, 0);

        let mut tx = begin(&mut conn).await;
        tx.bulk().copy_in(&rows).await.unwrap();
        let inside = tx.bulk().copy_out::<Item>().collect_vec().await.unwrap();
        assert_eq!(inside.len(), 10);
        tx.commit().await.unwrap();
        assert_eq!(count(&db, "items").await, 10);
    }

    async fn dropping_the_future_halfway_leaves_nothing(db, conn) {
        db.client().batch_execute(ITEMS).await.unwrap();
        let sent = AtomicU64::new(0);
        let load = conn
            .bulk()
            .on_progress(|p| sent.store(p.rows, Ordering::SeqCst))
            .copy_in((0..5_000_000).map(item));
        let stop = async {
            while sent.load(Ordering::SeqCst) < 300_000 {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        };
        tokio::select! {
            r = load => panic!("the load finished before it was dropped: {r:?}"),
            () = stop => {}
        }
        assert!(sent.load(Ordering::SeqCst) >= 300_000);
        // The COPY was aborted: nothing is visible, and the same client works (sqlx: it reports
        // the lost session; see `conn.rs`).
        assert_eq!(count(&db, "items").await, 0);
        after_abandoned_copy(&mut conn, &db).await;
        assert_eq!(
            conn.bulk().copy_in((0..10).map(item)).await.unwrap(),
            10
        );
        assert_eq!(count(&db, "items").await, 10);
    }
}
