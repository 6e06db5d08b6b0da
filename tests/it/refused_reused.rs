//! A kept plan (`copy_in_with_plan`) that already passed the full refusal check asks only the
//! session's read-only state on later COPYs: a COPY refused because the session became read-only
//! still returns the server's error and leaves the client in step, and a temporary table stays
//! writable in a read-only transaction.

use crate::db;
use pgbulk::{BulkExt, CopyRow, ErrorKind};

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "kept")]
struct Kept {
    id: i64,
}

fn rows(from: i64, n: i64) -> Vec<Kept> {
    (from..from + n).map(|id| Kept { id }).collect()
}

#[tokio::test]
async fn a_kept_plan_refused_in_a_read_only_session_stays_in_step() {
    let db = db().await;
    let client = db.client();
    client
        .batch_execute("CREATE TABLE kept (id int8 PRIMARY KEY)")
        .await
        .unwrap();
    let plan = client.bulk().plan::<Kept>().await.unwrap();
    // First COPY: the full check; later ones with the same plan: the read-only state only.
    assert_eq!(
        client
            .bulk()
            .copy_in_with_plan(&plan, &rows(0, 3))
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        client
            .bulk()
            .copy_in_with_plan(&plan, &rows(3, 3))
            .await
            .unwrap(),
        3
    );

    client
        .batch_execute("SET default_transaction_read_only = on")
        .await
        .unwrap();
    let err = client
        .bulk()
        .copy_in_with_plan(&plan, &rows(6, 3))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Db, "{err}");
    assert!(err.to_string().contains("read-only transaction"), "{err}");
    assert!(!err.is_connection_lost(), "{err}");
    // In step: the next query gets its own answer.
    let n: i64 = client
        .query_one("SELECT count(*) FROM kept", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 6);

    // A temporary table is writable in a read-only transaction: the full check says so.
    client
        .batch_execute("RESET default_transaction_read_only")
        .await
        .unwrap();
    client
        .batch_execute("CREATE TEMP TABLE kept (id int8)")
        .await
        .unwrap();
    let temp = client.bulk().plan::<Kept>().await.unwrap();
    assert_eq!(
        client
            .bulk()
            .copy_in_with_plan(&temp, &rows(0, 2))
            .await
            .unwrap(),
        2
    );
    client
        .batch_execute("SET default_transaction_read_only = on")
        .await
        .unwrap();
    assert_eq!(
        client
            .bulk()
            .copy_in_with_plan(&temp, &rows(2, 2))
            .await
            .unwrap(),
        2
    );
    client
        .batch_execute("RESET default_transaction_read_only")
        .await
        .unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM pg_temp.kept", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 4);
}
