//! Rough edges: a NUL byte in a table name, `copy_out` into a struct with fields the table
//! lacks, `replace_all` on a partitioned table.

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

#[tokio::test]
async fn a_nul_byte_in_a_table_name_is_a_usage_error() {
    let db = db().await;
    db.client().batch_execute(EVENTS).await.unwrap();
    let client = db.client();
    let err = client
        .bulk()
        .table("events\0; DROP TABLE events")
        .copy_in(&events(1, 1))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Usage, "{err}");
    assert!(err.to_string().contains("NUL byte"), "{err}");
    let err = client
        .bulk()
        .table("events\0")
        .copy_out::<Event>()
        .collect_vec()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Usage, "{err}");
    assert_eq!(client.bulk().copy_in(&events(1, 3)).await.unwrap(), 3);
    assert_eq!(count(&db, "events").await, 3);
}

#[tokio::test]
async fn copy_out_names_every_field_without_a_column() {
    let db = db().await;
    db.client().batch_execute(EVENTS).await.unwrap();
    let client = db.client();
    client.bulk().copy_in(&events(1, 2)).await.unwrap();
    let err = client
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
    let back = client
        .bulk()
        .copy_out::<Event>()
        .collect_vec()
        .await
        .unwrap();
    assert_eq!(back.len(), 2);

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

#[tokio::test]
async fn replace_all_on_a_partitioned_table_copies_without_freeze() {
    let db = db().await;
    db.client().batch_execute(EVENTS).await.unwrap();
    let mut client = db.connect().await.unwrap();
    client.bulk().copy_in(&events(1, 10)).await.unwrap();
    let mut rows = events(1, 3);
    rows.extend(events(2, 4));
    let tx = client.transaction().await.unwrap();
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
    let tx = client.transaction().await.unwrap();
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
