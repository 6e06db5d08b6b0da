//! Past one stream: `copy_in_parallel` over several connections, and `replace_all`.

use crate::{count, db};
use pgbulk::{BulkExt, CopyRow, ErrorKind};

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "loads")]
struct Load {
    id: i64,
    name: String,
}

fn load(id: i64) -> Load {
    Load {
        id,
        name: format!("row {id}"),
    }
}

const LOADS: &str = "CREATE TABLE loads (id int8 PRIMARY KEY, name text NOT NULL)";

#[tokio::test]
async fn parallel_load_splits_the_input_across_connections() {
    let db = db().await;
    db.client().batch_execute(LOADS).await.unwrap();
    let second = db.connect().await.unwrap();
    let third = db.connect().await.unwrap();
    let rows: Vec<Load> = (0..1001).map(load).collect();
    let plan = db.client().bulk().plan::<Load>().await.unwrap();
    let outcome = db
        .client()
        .bulk()
        .copy_in_parallel_with_plan(&plan, &[&second, &third], &rows)
        .await
        .unwrap();
    assert!(outcome.is_complete());
    assert_eq!(outcome.written(), 1001);
    let ranges: Vec<_> = outcome.parts().iter().map(|p| p.rows.clone()).collect();
    assert_eq!(ranges, vec![0..334, 334..668, 668..1001]);
    for part in outcome.parts() {
        assert_eq!(*part.result.as_ref().unwrap(), part.rows.len() as u64);
    }
    assert_eq!(outcome.into_result().unwrap(), 1001);
    let back: Vec<Load> = db
        .client()
        .bulk()
        .copy_out_query::<Load>("SELECT * FROM loads ORDER BY id")
        .collect_vec()
        .await
        .unwrap();
    assert_eq!(back, rows);
}

#[tokio::test]
async fn parallel_load_is_not_atomic_across_connections() {
    let db = db().await;
    db.client().batch_execute(LOADS).await.unwrap();
    let second = db.connect().await.unwrap();
    // Row 17 (in the second half) repeats the key of row 3 (in the first half). Both COPYs run
    // at once, so which one meets the key second (and fails) is a race; exactly one does, and
    // the other part's rows stay: the load is not atomic across connections.
    let mut rows: Vec<Load> = (0..20).map(load).collect();
    rows[17].id = 3;
    let plan = db.client().bulk().plan::<Load>().await.unwrap();
    let outcome = db
        .client()
        .bulk()
        .copy_in_parallel_with_plan(&plan, &[&second], &rows)
        .await
        .unwrap();
    assert!(!outcome.is_complete());
    let failed: Vec<usize> = (0..2)
        .filter(|&i| outcome.parts()[i].result.is_err())
        .collect();
    assert_eq!(failed.len(), 1, "exactly one part fails");
    assert_eq!(outcome.written(), 10);
    let expected_row = if failed[0] == 0 { 3 } else { 17 };
    let err = outcome.into_result().unwrap_err();
    assert_eq!(err.row(), Some(expected_row), "{err}");
    assert_eq!(count(&db, "loads").await, 10);
}

#[tokio::test]
async fn replace_all_swaps_the_contents_in_one_transaction() {
    let mut db = db().await;
    db.client().batch_execute(LOADS).await.unwrap();
    db.client().bulk().copy_in((0..50).map(load)).await.unwrap();
    let tx = db.client_mut().transaction().await.unwrap();
    let written = tx
        .bulk()
        .replace_all::<Load, _>((100..110).map(load))
        .await
        .unwrap();
    assert_eq!(written, 10);
    tx.commit().await.unwrap();
    let ids: Vec<i64> = db
        .client()
        .query("SELECT id FROM loads ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, (100..110).collect::<Vec<_>>());
}

#[tokio::test]
async fn replace_all_rolls_back_and_needs_a_transaction() {
    let mut db = db().await;
    db.client().batch_execute(LOADS).await.unwrap();
    db.client().bulk().copy_in((0..5).map(load)).await.unwrap();
    let err = db
        .client()
        .bulk()
        .replace_all::<Load, _>((10..20).map(load))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Usage);
    // A failing load inside the transaction: the truncate is rolled back with it.
    let tx = db.client_mut().transaction().await.unwrap();
    let bad = vec![load(1), load(1)];
    let err = tx.bulk().replace_all::<Load, _>(&bad).await.unwrap_err();
    // The load itself failed, at its second row: so the table had been emptied first (the
    // first row, id 1, would collide with the old rows otherwise).
    assert_eq!(err.kind(), ErrorKind::Db, "{err}");
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION),
        "{err}"
    );
    assert_eq!(err.row(), Some(1), "{err}");
    drop(tx);
    assert_eq!(count(&db, "loads").await, 5);
}

#[tokio::test]
async fn parallel_load_describes_once_and_sums_progress() {
    let db = db().await;
    db.client().batch_execute(LOADS).await.unwrap();
    let second = db.connect().await.unwrap();
    let rows: Vec<Load> = (0..5000).map(load).collect();
    let last = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen = last.clone();
    let outcome = db
        .client()
        .bulk()
        .flush_bytes(4096)
        .on_progress(move |p| *seen.lock().unwrap() = Some(p.rows))
        .copy_in_parallel(&[&second], &rows)
        .await
        .unwrap();
    assert!(outcome.is_complete());
    assert_eq!(outcome.parts().len(), 2);
    assert_eq!(outcome.parts()[1].connection, 1);
    assert_eq!(outcome.into_result().unwrap(), 5000);
    // The last report is the sum over both connections' totals.
    assert_eq!(*last.lock().unwrap(), Some(5000));
    assert_eq!(count(&db, "loads").await, 5000);
}

#[tokio::test]
async fn parallel_load_refuses_a_transaction_and_a_repeated_connection() {
    let mut db = db().await;
    db.client().batch_execute(LOADS).await.unwrap();
    let second = db.connect().await.unwrap();
    let rows: Vec<Load> = (0..10).map(load).collect();
    let err = db
        .client()
        .bulk()
        .copy_in_parallel(&[&second, db.client()], &rows)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Usage, "{err}");
    assert!(err.to_string().contains("same connection twice"), "{err}");
    let tx = db.client_mut().transaction().await.unwrap();
    let err = tx
        .bulk()
        .copy_in_parallel(&[&second], &rows)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Usage, "{err}");
    drop(tx);
    // Nothing was sent by either refused call.
    assert_eq!(count(&db, "loads").await, 0);
    // A mismatched table is refused before anything is sent, as copy_in does.
    let err = db
        .client()
        .bulk()
        .table("missing_table")
        .copy_in_parallel(&[&second], &rows)
        .await
        .unwrap_err();
    assert_ne!(err.kind(), ErrorKind::Usage, "{err}");
}
