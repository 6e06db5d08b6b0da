//! `copy_in`, `copy_out`, failing loads, parallel loads and `replace_all` on distributed and reference
//! tables.

use crate::{
    count, db, event, events, events_where, refused, sorted, stored, workers_with_rows, Citus,
    Event,
};
use pgbulk::{BulkExt, CopyRow, ErrorKind};

#[tokio::test]
async fn copy_in_and_copy_out_round_trip() {
    let db = db().await;
    let rows: Vec<Event> = (0..20_000).map(event).collect();
    for kind in Citus::BOTH {
        let table = events(&db, kind).await;
        let written = db
            .client()
            .bulk()
            .table(&table)
            .copy_in(&rows)
            .await
            .unwrap();
        assert_eq!(written, 20_000, "{kind:?}");
        if kind == Citus::Distributed {
            assert_eq!(
                workers_with_rows(&db, &table).await,
                2,
                "rows on both workers"
            );
        }

        // The whole table, and a multi-shard query, read back in binary.
        assert_eq!(stored(&db, &table).await, sorted(&rows), "{kind:?}");
        let some = events_where(&db, &table, "amount % 1000 = 7").await;
        let expected: Vec<Event> = rows
            .iter()
            .filter(|e| e.amount % 1000 == 7)
            .cloned()
            .collect();
        assert_eq!(some, expected, "{kind:?}");
        // A single-shard query (one tenant) routed to one worker.
        let tenant = events_where(&db, &table, "tenant_id = 5").await;
        let expected: Vec<Event> = rows.iter().filter(|e| e.tenant_id == 5).cloned().collect();
        assert_eq!(tenant, expected, "{kind:?}");
    }
}

#[derive(CopyRow, Debug, Clone)]
#[copy(table = "notes")]
struct Note {
    tenant_id: i64,
    body: String,
}

#[tokio::test]
async fn errors_the_coordinator_raises_name_row_field_and_code() {
    let db = db().await;
    for kind in Citus::BOTH {
        let table = kind.name("notes");
        kind.create(
            &db,
            &table,
            "(tenant_id int8 NOT NULL, body varchar(5) NOT NULL)",
        )
        .await;
        let mut rows: Vec<Note> = (0..5_000)
            .map(|i| Note {
                tenant_id: i % 37,
                body: "ok".into(),
            })
            .collect();
        // The coordinator reads every tuple to route it: varchar(5) is checked there.
        rows[3_210].body = "longer than five".into();
        let err = refused(&db, &table, &rows).await;
        assert_eq!(err.kind(), ErrorKind::Db, "{err}");
        assert_eq!(err.row(), Some(3_210), "{kind:?}: {err}");
        assert_eq!(err.field(), Some("body"), "{err}");
        assert_eq!(
            err.code(),
            Some(&tokio_postgres::error::SqlState::STRING_DATA_RIGHT_TRUNCATION),
            "{err}"
        );
        // A NUL in text is refused on the client, before the server sees the row.
        rows[3_210].body = "a\0b".into();
        let err = refused(&db, &table, &rows).await;
        assert_eq!(err.kind(), ErrorKind::Encode, "{err}");
        assert_eq!(err.row(), Some(3_210), "{err}");
        assert_eq!(count(&db, &table).await, 0, "{kind:?}");
    }
}

#[tokio::test]
async fn a_worker_s_unique_violation_names_the_input_row() {
    let db = db().await;
    for kind in Citus::BOTH {
        let table = events(&db, kind).await;
        let rows: Vec<Event> = (0..10_000).map(event).collect();
        db.client()
            .bulk()
            .table(&table)
            .copy_in(&rows[..100])
            .await
            .unwrap();

        // Input row 4,321 repeats a key that is in the table already.
        let mut batch: Vec<Event> = rows[100..].to_vec();
        batch[4_321] = rows[42].clone();
        let err = refused(&db, &table, &batch).await;
        assert_eq!(err.kind(), ErrorKind::Db, "{err}");
        assert_eq!(err.row(), Some(4_321), "{kind:?}: {err}");
        assert_eq!(err.column(), Some("tenant_id, reference"), "{err}");
        assert_eq!(err.field(), Some("tenant_id"), "{err}");
        // The constraint's name, not its shard's, and the original words.
        let message = err.to_string();
        let constraint = format!("\"{table}_tenant_id_reference_key\"");
        assert!(message.contains(&constraint), "{message}");
        assert!(
            message.contains("duplicate key value violates unique constraint"),
            "{message}"
        );
        assert_eq!(
            count(&db, &table).await,
            100,
            "{kind:?}: nothing of the batch stays"
        );

        // Two rows of one batch with the same key: the later one is the row named.
        let mut batch: Vec<Event> = rows[100..].to_vec();
        batch[7_000] = batch[1_234].clone();
        let err = refused(&db, &table, &batch).await;
        assert_eq!(err.row(), Some(7_000), "{kind:?}: {err}");
        assert_eq!(count(&db, &table).await, 100, "{kind:?}");

        // A CHECK a worker enforces: the relation is named without its shard suffix.
        let mut batch: Vec<Event> = rows[100..].to_vec();
        batch[999].amount = -1;
        let err = refused(&db, &table, &batch).await;
        let message = err.to_string();
        assert!(
            message.contains(&format!(
                "new row for relation \"{table}\" violates check constraint"
            )),
            "{message}"
        );
        assert_eq!(count(&db, &table).await, 100, "{kind:?}");
        // The connection works afterwards.
        db.client()
            .bulk()
            .table(&table)
            .copy_in(&rows[100..200])
            .await
            .unwrap();
        assert_eq!(count(&db, &table).await, 200, "{kind:?}");
    }
}

#[tokio::test]
async fn parallel_load_and_replace_all() {
    let mut db = db().await;
    let rows: Vec<Event> = (0..9_001).map(event).collect();
    for kind in Citus::BOTH {
        let table = events(&db, kind).await;
        let second = db.connect().await.unwrap();
        let third = db.connect().await.unwrap();
        let plan = db
            .client()
            .bulk()
            .table(&table)
            .plan::<Event>()
            .await
            .unwrap();
        let outcome = db
            .client()
            .bulk()
            .copy_in_parallel_with_plan(&plan, &[&second, &third], &rows)
            .await
            .unwrap();
        assert!(outcome.is_complete(), "{kind:?}");
        assert_eq!(outcome.into_result().unwrap(), 9_001);
        assert_eq!(count(&db, &table).await, 9_001);
        if kind == Citus::Distributed {
            assert_eq!(workers_with_rows(&db, &table).await, 2);
        }

        let tx = db.client_mut().transaction().await.unwrap();
        let written = tx
            .bulk()
            .table(&table)
            .replace_all::<Event, _>(&rows[..500])
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(written, 500);
        assert_eq!(stored(&db, &table).await, sorted(&rows[..500]), "{kind:?}");
    }
}
