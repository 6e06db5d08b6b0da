//! `upsert_via_staging` on distributed and reference tables: counts, contents, transactions.

use crate::{count, db, event, events_with, staging_tables, stored, Citus, Event};
use pgbulk::BulkExt;

#[tokio::test]
async fn upsert_counts_and_contents() {
    let mut db = db().await;
    let rows: Vec<Event> = (0..3_000).map(event).collect();
    for kind in Citus::BOTH {
        let table = events_with(&db, kind, &rows[..2_000]).await;

        // 1,000 existing rows (half of them changed), 1,000 new ones, and one duplicate key.
        let mut batch: Vec<Event> = rows[1_000..].to_vec();
        for e in batch.iter_mut().take(1_000).step_by(2) {
            e.amount += 1_000_000;
        }
        batch.push(batch[1_500].clone());
        let counts = db
            .client()
            .bulk()
            .table(&table)
            .upsert_via_staging(&batch)
            .await
            .unwrap();
        assert_eq!(
            (
                counts.inserted,
                counts.updated,
                counts.unchanged,
                counts.duplicates
            ),
            (1_000, 500, 500, 1),
            "{kind:?}"
        );
        let mut expected = rows[..1_000].to_vec();
        expected.extend(batch[..2_000].iter().cloned());
        expected.sort();
        assert_eq!(stored(&db, &table).await, expected, "{kind:?}");

        // Inside a transaction: rolled back, nothing changes; committed, it stays.
        let changed: Vec<Event> = rows[..10]
            .iter()
            .map(|e| Event {
                amount: e.amount + 7,
                ..e.clone()
            })
            .collect();
        let tx = db.client_mut().transaction().await.unwrap();
        let counts = tx
            .bulk()
            .table(&table)
            .upsert_via_staging(&changed)
            .await
            .unwrap();
        assert_eq!(counts.updated, 10);
        tx.rollback().await.unwrap();
        let before = sum(&db, &table).await;
        let tx = db.client_mut().transaction().await.unwrap();
        tx.bulk()
            .table(&table)
            .upsert_via_staging(&changed)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(sum(&db, &table).await, before + 70, "{kind:?}");

        // DO NOTHING leaves existing rows and inserts new ones.
        let mut batch = changed.clone();
        for e in &mut batch {
            e.amount = 0;
        }
        batch.push(event(5_000));
        let counts = db
            .client()
            .bulk()
            .table(&table)
            .upsert_via_staging(&batch)
            .do_nothing()
            .await
            .unwrap();
        assert_eq!((counts.inserted, counts.unchanged), (1, 10), "{kind:?}");
        assert_eq!(count(&db, &table).await, 3_001);
        assert_eq!(sum(&db, &table).await, before + 70 + 5_000, "{kind:?}");
        assert_eq!(staging_tables(&db).await, 0);
    }
}

/// `sum(amount)` of `table`.
async fn sum(db: &pgbulk::testkit::TestDb, table: &str) -> i64 {
    db.client()
        .query_one(&format!("SELECT sum(amount)::int8 FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}
