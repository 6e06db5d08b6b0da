//! The same Citus behaviours through sqlx and the blocking `postgres` crate: the target is
//! looked up, worker errors mapped, upserts counted and RETURNING ordered by the one code path
//! every client shares.

use crate::{count, db, event, events, Citus, Event};
use pgbulk::{CopyRow, ErrorKind, UpsertOptions};

#[derive(CopyRow, Debug, Clone, PartialEq)]
struct Upserted {
    reference: String,
    amount: i64,
    inserted: bool,
}

/// A batch for the events `table` holding `rows[..1_000]`: input row 321 repeats the key of
/// row 42 (a worker's unique violation).
fn clashing(rows: &[Event]) -> Vec<Event> {
    let mut batch = rows[1_000..2_000].to_vec();
    batch[321] = rows[42].clone();
    batch
}

/// Rows 500..1500 of `rows`: 500 existing (every second one changed), 500 new, reversed.
/// With what `upsert_via_staging_returning(..).in_input_order()` must return for them.
fn upsert_batch(rows: &[Event]) -> (Vec<Event>, Vec<Upserted>) {
    let mut batch = rows[500..1_500].to_vec();
    let mut expected = Vec::new();
    for (i, e) in batch.iter_mut().enumerate() {
        let new = i >= 500;
        if new || i % 2 == 0 {
            e.amount += i64::from(!new);
            expected.push(Upserted {
                reference: e.reference.clone(),
                amount: e.amount,
                inserted: new,
            });
        }
    }
    batch.reverse();
    expected.reverse();
    (batch, expected)
}

/// What every client's worker error must say: the input row, the key, the constraint's name.
fn check_worker_error(err: &pgbulk::Error, table: &str) {
    assert_eq!(err.kind(), ErrorKind::Db, "{err}");
    assert_eq!(err.row(), Some(321), "{err}");
    assert_eq!(err.column(), Some("tenant_id, reference"), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("\"{table}_tenant_id_reference_key\"")),
        "{err}"
    );
}

#[tokio::test]
async fn through_sqlx() {
    use pgbulk::SqlxBulkExt as _;
    use sqlx::Connection as _;
    let db = db().await;
    let rows: Vec<Event> = (0..2_000).map(event).collect();
    for kind in Citus::BOTH {
        let table = events(&db, kind).await;
        let mut c = sqlx::PgConnection::connect_with(&db.sqlx_options())
            .await
            .unwrap();
        c.bulk()
            .table(&table)
            .copy_in(&rows[..1_000])
            .await
            .unwrap();
        let err = c
            .bulk()
            .table(&table)
            .copy_in(&clashing(&rows))
            .await
            .unwrap_err();
        check_worker_error(&err, &table);
        assert_eq!(count(&db, &table).await, 1_000, "{kind:?}");

        let (batch, expected) = upsert_batch(&rows);
        let back: Vec<Upserted> = c
            .bulk()
            .table(&table)
            .upsert_via_staging_returning::<Upserted, _, _>(batch)
            .in_input_order()
            .await
            .unwrap();
        assert_eq!(back, expected, "{kind:?}");
        let counts = c
            .bulk()
            .table(&table)
            .upsert_via_staging(rows[1_400..1_600].to_vec())
            .await
            .unwrap();
        assert_eq!((counts.inserted, counts.unchanged), (100, 100), "{kind:?}");
        assert_eq!(count(&db, &table).await, 1_600, "{kind:?}");
    }
}

#[tokio::test]
async fn through_the_blocking_client() {
    use pgbulk::sync::BulkExt as _;
    let db = db().await;
    let rows: Vec<Event> = (0..2_000).map(event).collect();
    let mut tables = Vec::new();
    for kind in Citus::BOTH {
        tables.push(events(&db, kind).await);
    }
    let conninfo = db.connection_string();
    let checked = tables.clone();
    // The sync client runs its own runtime: use it off this runtime's thread.
    tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&conninfo, postgres::NoTls).unwrap();
        for table in &checked {
            client.bulk().table(table).copy_in(&rows[..1_000]).unwrap();
            let err = client
                .bulk()
                .table(table)
                .copy_in(clashing(&rows))
                .unwrap_err();
            check_worker_error(&err, table);

            let (batch, expected) = upsert_batch(&rows);
            let back: Vec<Upserted> = client
                .bulk()
                .table(table)
                .upsert_via_staging_returning(batch, &UpsertOptions::default(), true)
                .unwrap();
            assert_eq!(back, expected, "{table}");
            let counts = client
                .bulk()
                .table(table)
                .upsert_via_staging(rows[1_400..1_600].to_vec())
                .unwrap();
            assert_eq!((counts.inserted, counts.unchanged), (100, 100), "{table}");
        }
    })
    .await
    .unwrap();
    for table in &tables {
        assert_eq!(count(&db, table).await, 1_600, "{table}");
    }
}
