//! RETURNING at COPY speed: `copy_in_returning` and `upsert_via_staging_returning`.

use crate::upsert::STAGES_LEFT;
use pgbulk::{BulkExt, CopyRow, ErrorKind};

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "orders")]
struct NewOrder {
    #[copy(key)]
    reference: String,
    customer: String,
    amount: i64,
}

#[derive(CopyRow, Debug, Clone, PartialEq)]
struct Inserted {
    id: i64,
    reference: String,
}

#[derive(CopyRow, Debug, Clone, PartialEq)]
struct Upserted {
    id: i64,
    reference: String,
    amount: i64,
    inserted: bool,
}

const ORDERS: &str = "CREATE TABLE orders (id bigserial PRIMARY KEY, \
                      reference text NOT NULL UNIQUE, customer text NOT NULL, amount int8 NOT NULL, \
                      placed_at timestamptz NOT NULL DEFAULT now())";

fn order(n: usize) -> NewOrder {
    NewOrder {
        // Not sortable into input order: the references are a permutation.
        reference: format!("ref-{:05}", (n * 7919) % 10_007),
        customer: format!("customer {}", n % 97),
        amount: i64::try_from(n).unwrap() * 3,
    }
}

on_every_client! {
    async fn input_order_holds_on_a_partitioned_table(db, conn) {
        // With a unique key the returned rows are matched to the input by it; without one (the
        // second table), the rows are inserted and returned in input order by the one executor.
        for (table, unique) in [
            ("regional", ", UNIQUE (region, reference)"),
            ("regional_nokey", ""),
        ] {
            db.client()
                .batch_execute(&format!(
                    "CREATE TABLE {table} (id bigserial, region int4 NOT NULL, reference text NOT NULL, \
                     amount int8 NOT NULL{unique}) PARTITION BY LIST (region); \
                     CREATE TABLE {table}_0 PARTITION OF {table} FOR VALUES IN (0); \
                     CREATE TABLE {table}_1 PARTITION OF {table} FOR VALUES IN (1); \
                     CREATE TABLE {table}_23 PARTITION OF {table} FOR VALUES IN (2, 3) \
                     PARTITION BY HASH (reference); \
                     CREATE TABLE {table}_23a PARTITION OF {table}_23 FOR VALUES WITH (MODULUS 2, REMAINDER 0); \
                     CREATE TABLE {table}_23b PARTITION OF {table}_23 FOR VALUES WITH (MODULUS 2, REMAINDER 1)"
                ))
                .await
                .unwrap();
            let rows: Vec<Regional> = (0..4_000).map(regional).collect();
            let back: Vec<RegionalBack> = conn
                .bulk()
                .table(table)
                .copy_in_returning::<RegionalBack, _, _>(&rows)
                .in_input_order()
                .await
                .unwrap();
            assert_eq!(back.len(), rows.len(), "{table}");
            for (i, (got, sent)) in back.iter().zip(&rows).enumerate() {
                assert_eq!(
                    (got.region, &got.reference, got.amount),
                    (sent.region, &sent.reference, sent.amount),
                    "{table}: returned row {i} is not input row {i}"
                );
            }
            // The ids are the stored ones of those rows.
            let stored: Vec<RegionalBack> = conn
                .bulk()
                .copy_out_query::<RegionalBack>(format!(
                    "SELECT id, region, reference, amount FROM {table} ORDER BY id"
                ))
                .collect_vec()
                .await
                .unwrap();
            let mut by_id = back.clone();
            by_id.sort_by_key(|r| r.id);
            assert_eq!(stored, by_id, "{table}");
        }

        // Upsert: existing rows changed, unchanged and new, in reverse order of the table's; the
        // rows are matched to the input by the conflict key, and `inserted` says which are new.
        let rows: Vec<Regional> = (0..4_000).map(regional).collect();
        let mut batch: Vec<Regional> = rows[2_000..].to_vec();
        batch.extend((4_000..5_000).map(regional));
        for r in batch.iter_mut().take(2_000).step_by(2) {
            r.amount += 1_000_000;
        }
        batch.reverse();
        let back: Vec<Upserted2> = conn
            .bulk()
            .upsert_via_staging_returning::<Upserted2, _, _>(&batch)
            .in_input_order()
            .await
            .unwrap();
        let expected: Vec<(i32, &str, i64, bool)> = batch
            .iter()
            .filter(|r| r.amount >= 4_000)
            .map(|r| {
                let new = r.amount < 1_000_000;
                (r.region, r.reference.as_str(), r.amount, new)
            })
            .collect();
        let got: Vec<(i32, &str, i64, bool)> = back
            .iter()
            .map(|u| (u.region, u.reference.as_str(), u.amount, u.inserted))
            .collect();
        assert_eq!(got.len(), 2_000);
        assert_eq!(got, expected);
    }

    async fn copy_in_returning_ten_thousand_ids_in_input_order(db, conn) {
        db.client().batch_execute(ORDERS).await.unwrap();
        // Some ids are taken already, so the new ones do not start at 1.
        db.client()
            .batch_execute("SELECT setval('orders_id_seq', 41)")
            .await
            .unwrap();
        let rows: Vec<NewOrder> = (0..10_000).map(order).collect();
        let back: Vec<Inserted> = conn
            .bulk()
            .copy_in_returning::<Inserted, _, _>(&rows)
            .in_input_order()
            .await
            .unwrap();
        assert_eq!(back.len(), rows.len());
        for (i, (got, sent)) in back.iter().zip(&rows).enumerate() {
            assert_eq!(got.reference, sent.reference, "row {i} is out of order");
            assert_eq!(got.id, 42 + i64::try_from(i).unwrap(), "row {i}");
        }
        // The ids handed back are the ones stored.
        let stored: Vec<Inserted> = conn
            .bulk()
            .copy_out_query::<Inserted>("SELECT id, reference FROM orders ORDER BY id")
            .collect_vec()
            .await
            .unwrap();
        assert_eq!(stored, back);
        assert_eq!(scalar(&mut conn, STAGES_LEFT).await.unwrap(), 0);

        // A rejected row (duplicate reference) returns nothing and writes nothing.
        let err = conn
            .bulk()
            .copy_in_returning::<Inserted, _, _>(&rows[..10])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Db);
        assert_eq!(crate::count(&db, "orders").await, 10_000);
        assert_eq!(scalar(&mut conn, STAGES_LEFT).await.unwrap(), 0);
    }

    async fn upsert_returning_marks_inserted_and_updated_rows(db, conn) {
        db.client().batch_execute(ORDERS).await.unwrap();
        let rows: Vec<NewOrder> = (0..100).map(order).collect();
        conn.bulk().copy_in(&rows).await.unwrap();

        let ids_before: std::collections::HashMap<String, i64> = db
            .client()
            .query("SELECT reference, id FROM orders", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        assert_eq!(ids_before.len(), 100);

        let mut batch: Vec<NewOrder> = rows[..20].to_vec();
        for o in batch.iter_mut().step_by(2) {
            o.amount += 1;
        }
        batch.extend((100..105).map(order));
        let mut tx = begin(&mut conn).await;
        let back: Vec<Upserted> = tx
            .bulk()
            .upsert_via_staging_returning::<Upserted, _, _>(&batch)
            .in_input_order()
            .await
            .unwrap();
        tx.commit().await.unwrap();
        // Unchanged rows are not returned; the rest come back in input order.
        let expected: Vec<(&str, i64, bool)> = batch
            .iter()
            .enumerate()
            .filter(|(i, _)| *i >= 20 || i % 2 == 0)
            .map(|(i, o)| (o.reference.as_str(), o.amount, i >= 20))
            .collect();
        let got: Vec<(&str, i64, bool)> = back
            .iter()
            .map(|u| (u.reference.as_str(), u.amount, u.inserted))
            .collect();
        assert_eq!(got, expected);
        // Updated rows keep the id their reference had, inserted ones get new, distinct ones.
        let mut new_ids = std::collections::HashSet::new();
        for u in &back {
            if u.inserted {
                assert!(!ids_before.values().any(|&id| id == u.id), "{u:?}");
                assert!(new_ids.insert(u.id), "{u:?}");
            } else {
                assert_eq!(Some(&u.id), ids_before.get(&u.reference), "{u:?}");
            }
        }
        assert_eq!(new_ids.len(), 5);
        assert_eq!(scalar(&mut conn, STAGES_LEFT).await.unwrap(), 0);
    }
}

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "regional")]
struct Regional {
    #[copy(key)]
    region: i32,
    #[copy(key)]
    reference: String,
    amount: i64,
}

#[derive(CopyRow, Debug, Clone, PartialEq)]
struct RegionalBack {
    id: i64,
    region: i32,
    reference: String,
    amount: i64,
}

/// Input rows alternate between the four partitions, so any grouping by partition reorders them.
fn regional(n: usize) -> Regional {
    Regional {
        region: i32::try_from(n % 4).unwrap(),
        reference: format!("ref-{:05}", (n * 7919) % 10_007),
        amount: i64::try_from(n).unwrap(),
    }
}

#[derive(CopyRow, Debug, Clone, PartialEq)]
struct Upserted2 {
    region: i32,
    reference: String,
    amount: i64,
    inserted: bool,
}
