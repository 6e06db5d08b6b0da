//! Rough edges: a NUL byte in a table name, `copy_out` into a struct with fields the table
//! lacks, `replace_all` on a partitioned table — on every async client (`on_every_client!`).

use crate::{count, db};
use pgbulk::{BulkExt, CopyRow, ErrorKind};

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "events")]
struct Event {
    tenant: i32,
    id: i64,
    payload: String,
}

/// `events` has no `score` and no `tags`.
#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "events")]
struct Wider {
    id: i64,
    score: f64,
    payload: String,
    tags: Vec<String>,
}

fn events(tenant: i32, n: i64) -> Vec<Event> {
    (0..n)
        .map(|id| Event {
            tenant,
            id,
            payload: format!("event {id}"),
        })
        .collect()
}

const EVENTS: &str = "CREATE TABLE events (tenant int4, id int8, payload text, \
                      PRIMARY KEY (tenant, id)) PARTITION BY LIST (tenant);
                      CREATE TABLE events_1 PARTITION OF events FOR VALUES IN (1);
                      CREATE TABLE events_2 PARTITION OF events FOR VALUES IN (2);";

/// The blocking client names them too (its own test: it is neither async client).
#[tokio::test]
async fn copy_out_names_every_field_without_a_column_on_the_blocking_client() {
    let db = db().await;
    db.client().batch_execute(EVENTS).await.unwrap();
    db.client().bulk().copy_in(&events(1, 2)).await.unwrap();
    let conninfo = db.connection_string();
    tokio::task::spawn_blocking(move || {
        use pgbulk::sync::BulkExt as _;
        let mut client = postgres::Client::connect(&conninfo, postgres::NoTls).unwrap();
        let err = client.bulk().copy_out::<Wider>().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TypeMismatch, "{err}");
        assert_eq!(err.mismatches().len(), 2, "{err}");
        assert_eq!(client.bulk().copy_out::<Event>().unwrap().len(), 2);
    })
    .await
    .unwrap();
}

on_every_client! {
    async fn a_nul_byte_in_a_table_name_is_a_usage_error(db, conn) {
        db.client().batch_execute(EVENTS).await.unwrap();
        let err = conn
            .bulk()
            .table("events\0; DROP TABLE events")
            .copy_in(&events(1, 1))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Usage, "{err}");
        assert!(err.to_string().contains("NUL byte"), "{err}");
        let err = conn
            .bulk()
            .table("events\0")
            .copy_out::<Event>()
            .collect_vec()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Usage, "{err}");
        assert_eq!(conn.bulk().copy_in(&events(1, 3)).await.unwrap(), 3);
        assert_eq!(count(&db, "events").await, 3);
    }

    async fn copy_out_names_every_field_without_a_column(db, conn) {
        db.client().batch_execute(EVENTS).await.unwrap();
        conn.bulk().copy_in(&events(1, 2)).await.unwrap();
        let err = conn
            .bulk()
            .copy_out::<Wider>()
            .collect_vec()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TypeMismatch, "{err}");
        let fields: Vec<_> = err.mismatches().iter().map(|m| m.field).collect();
        assert_eq!(fields, ["score", "tags"]);
        let text = err.to_string();
        assert!(
            text.contains("field `score` of type `f64` has no column \"score\""),
            "{text}"
        );
        // The same client goes on.
        let back = conn
            .bulk()
            .copy_out::<Event>()
            .collect_vec()
            .await
            .unwrap();
        assert_eq!(back.len(), 2);
    }

    async fn replace_all_on_a_partitioned_table_copies_without_freeze(db, conn) {
        db.client().batch_execute(EVENTS).await.unwrap();
        conn.bulk().copy_in(&events(1, 10)).await.unwrap();
        let mut rows = events(1, 3);
        rows.extend(events(2, 4));
        let mut tx = begin(&mut conn).await;
        assert_eq!(tx.bulk().replace_all::<Event, _>(&rows).await.unwrap(), 7);
        tx.commit().await.unwrap();
        assert_eq!(count(&db, "events").await, 7);
        assert_eq!(count(&db, "events_1").await, 3);
        assert_eq!(count(&db, "events_2").await, 4);
        // A plain table still takes the FREEZE path.
        db.client()
            .batch_execute("CREATE TABLE plain (tenant int4, id int8, payload text)")
            .await
            .unwrap();
        let mut tx = begin(&mut conn).await;
        assert_eq!(
            tx.bulk()
                .table("plain")
                .replace_all::<Event, _>(&rows)
                .await
                .unwrap(),
            7
        );
        tx.commit().await.unwrap();
        assert_eq!(count(&db, "plain").await, 7);
    }
}
