//! `copy_in_returning` and `upsert_via_staging_returning` with `in_input_order()` on a Citus
//! cluster. Each shard runs its own `INSERT .. RETURNING` and the coordinator concatenates their
//! results, so the order is proven by matching the returned rows to the input by key, or the
//! call is refused when there is no key to match by; never a wrong order.

use crate::{db, event, events, events_with, staging_tables, Citus, Event};
use pgbulk::{BulkExt, CopyRow, ErrorKind};

#[derive(CopyRow, Debug, Clone, PartialEq)]
struct Inserted {
    id: i64,
    tenant_id: i64,
    reference: String,
}

#[derive(CopyRow, Debug, Clone, PartialEq)]
struct Upserted {
    id: i64,
    reference: String,
    amount: i64,
    inserted: bool,
}

#[tokio::test]
async fn copy_in_returning_hands_back_generated_ids_in_input_order() {
    let db = db().await;
    let rows: Vec<Event> = (0..5_000).map(event).collect();
    for kind in Citus::BOTH {
        let table = events(&db, kind).await;
        let back: Vec<Inserted> = db
            .client()
            .bulk()
            .table(&table)
            .copy_in_returning::<Inserted, _, _>(&rows)
            .in_input_order()
            .await
            .unwrap();
        assert_eq!(back.len(), rows.len(), "{kind:?}");
        for (i, (got, sent)) in back.iter().zip(&rows).enumerate() {
            assert_eq!(
                (got.tenant_id, &got.reference),
                (sent.tenant_id, &sent.reference),
                "{kind:?}: returned row {i} is not input row {i}"
            );
        }
        // The ids handed back are the ones stored for those rows.
        let mut stored: Vec<Inserted> = db
            .client()
            .bulk()
            .copy_out_query::<Inserted>(format!("SELECT id, tenant_id, reference FROM {table}"))
            .collect_vec()
            .await
            .unwrap();
        stored.sort_by_key(|r| r.id);
        let mut sorted = back.clone();
        sorted.sort_by_key(|r| r.id);
        assert_eq!(stored, sorted, "{kind:?}");
        assert_eq!(staging_tables(&db).await, 0);
    }
}

#[tokio::test]
async fn input_order_without_a_key_to_match_by_is_refused() {
    #[derive(CopyRow, Debug, Clone)]
    struct Reading {
        tenant_id: i64,
        value: f64,
    }
    #[derive(CopyRow, Debug)]
    struct Id {
        id: i64,
    }
    let db = db().await;
    let rows: Vec<Reading> = (0..100)
        .map(|i| Reading {
            tenant_id: i % 7,
            value: f64::from(i32::try_from(i).unwrap()),
        })
        .collect();
    for kind in Citus::BOTH {
        let table = kind.name("readings");
        kind.create(
            &db,
            &table,
            "(id bigserial, tenant_id int8 NOT NULL, value float8)",
        )
        .await;
        let err = db
            .client()
            .bulk()
            .table(&table)
            .copy_in_returning::<Id, _, _>(&rows)
            .in_input_order()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Usage, "{kind:?}: {err}");
        let message = err.to_string();
        assert!(message.contains("in_input_order"), "{message}");
        assert!(message.contains("unique"), "{message}");
        assert_eq!(crate::count(&db, &table).await, 0, "nothing was sent");
        // Without in_input_order the rows go in, one id each.
        let ids = db
            .client()
            .bulk()
            .table(&table)
            .copy_in_returning::<Id, _, _>(&rows)
            .await
            .unwrap();
        assert_eq!(ids.len(), 100);
    }
}

#[tokio::test]
async fn upsert_returning_in_input_order() {
    let db = db().await;
    let rows: Vec<Event> = (0..4_000).map(event).collect();
    for kind in Citus::BOTH {
        let table = events_with(&db, kind, &rows[..2_000]).await;
        // Existing rows changed (every second one), unchanged ones, and new ones, mixed:
        // (row, inserted); unchanged rows are not returned.
        let mut batch: Vec<Event> = rows[1_000..3_000].to_vec();
        let mut expected: Vec<(String, i64, bool)> = Vec::new();
        for (i, e) in batch.iter_mut().enumerate() {
            let new = i >= 1_000;
            if i % 2 == 0 || new {
                e.amount += i64::from(!new);
                expected.push((e.reference.clone(), e.amount, new));
            }
        }
        batch.reverse();
        expected.reverse();
        let back: Vec<Upserted> = db
            .client()
            .bulk()
            .table(&table)
            .upsert_via_staging_returning::<Upserted, _, _>(&batch)
            .in_input_order()
            .await
            .unwrap();
        let got: Vec<(String, i64, bool)> = back
            .into_iter()
            .map(|u| (u.reference, u.amount, u.inserted))
            .collect();
        assert_eq!(got.len(), 1_500, "{kind:?}");
        assert_eq!(got, expected, "{kind:?}");
        assert_eq!(staging_tables(&db).await, 0);
    }
}
