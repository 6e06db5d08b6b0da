//! A kept plan (`copy_in_with_plan`) that already passed the full refusal check asks only the
//! session's read-only state on later COPYs: a COPY refused because the session became read-only
//! still returns the server's error and leaves the client in step, and a temporary table stays
//! writable in a read-only transaction — on every async client (`on_every_client!`). Its small
//! batches that say their size are sent as one bound `INSERT` instead: refused the same way.

use pgbulk::{BulkExt, CopyRow, ErrorKind};

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "kept")]
struct Kept {
    id: i64,
}

fn rows(from: i64, n: i64) -> Vec<Kept> {
    (from..from + n).map(|id| Kept { id }).collect()
}

/// The server's own refusal of a write in a read-only session, the connection kept.
fn read_only_refusal(err: &pgbulk::Error) {
    assert_eq!(err.kind(), ErrorKind::Db, "{err}");
    assert!(err.to_string().contains("read-only transaction"), "{err}");
    assert!(!err.is_connection_lost(), "{err}");
}

/// `rows`, as an input that does not say its size: always copied (a kept plan's small batch
/// that says it is one is inserted with bound arrays).
fn copied(from: i64, n: i64) -> impl Iterator<Item = Kept> {
    crate::unsized_rows(rows(from, n))
}

on_every_client! {
    async fn a_kept_plan_refused_in_a_read_only_session_stays_in_step(db, conn) {
        execute(&mut conn, "CREATE TABLE kept (id int8 PRIMARY KEY)")
            .await
            .unwrap();
        let plan = conn.bulk().plan::<Kept>().await.unwrap();
        // First COPY: the full check; later ones with the same plan: the read-only state only.
        assert_eq!(
            conn
                .bulk()
                .copy_in_with_plan(&plan, copied(0, 3))
                .await
                .unwrap(),
            3
        );
        assert_eq!(
            conn
                .bulk()
                .copy_in_with_plan(&plan, copied(3, 3))
                .await
                .unwrap(),
            3
        );

        execute(&mut conn, "SET default_transaction_read_only = on").await.unwrap();
        let err = conn
            .bulk()
            .copy_in_with_plan(&plan, copied(6, 3))
            .await
            .unwrap_err();
        read_only_refusal(&err);
        // In step: the next query gets its own answer.
        let n = scalar(&mut conn, "SELECT count(*) FROM kept").await.unwrap();
        assert_eq!(n, 6);
        // The bound INSERT of a small batch: the same error.
        let err = conn
            .bulk()
            .copy_in_with_plan(&plan, &rows(6, 3))
            .await
            .unwrap_err();
        read_only_refusal(&err);
        let n = scalar(&mut conn, "SELECT count(*) FROM kept").await.unwrap();
        assert_eq!(n, 6);

        // A temporary table is writable in a read-only transaction: the full check says so.
        execute(&mut conn, "RESET default_transaction_read_only").await.unwrap();
        execute(&mut conn, "CREATE TEMP TABLE kept (id int8)").await.unwrap();
        let temp = conn.bulk().plan::<Kept>().await.unwrap();
        assert_eq!(
            conn
                .bulk()
                .copy_in_with_plan(&temp, copied(0, 2))
                .await
                .unwrap(),
            2
        );
        execute(&mut conn, "SET default_transaction_read_only = on").await.unwrap();
        assert_eq!(
            conn
                .bulk()
                .copy_in_with_plan(&temp, copied(2, 2))
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            conn
                .bulk()
                .copy_in_with_plan(&temp, &rows(4, 2))
                .await
                .unwrap(),
            2
        );
        execute(&mut conn, "RESET default_transaction_read_only").await.unwrap();
        let n = scalar(&mut conn, "SELECT count(*) FROM pg_temp.kept").await.unwrap();
        assert_eq!(n, 6);
    }
}

#[tokio::test]
async fn blocking_client_kept_plan_refused_in_a_read_only_session_stays_in_step() {
    use pgbulk::sync::BulkExt as _;
    let db = crate::db().await;
    let conninfo = db.connection_string();
    tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&conninfo, postgres::NoTls).unwrap();
        client
            .batch_execute("CREATE TABLE kept (id int8 PRIMARY KEY)")
            .unwrap();
        let plan = client.bulk().plan::<Kept>().unwrap();
        assert_eq!(
            client
                .bulk()
                .copy_in_with_plan(&plan, copied(0, 3))
                .unwrap(),
            3
        );
        assert_eq!(
            client
                .bulk()
                .copy_in_with_plan(&plan, copied(3, 3))
                .unwrap(),
            3
        );
        client
            .batch_execute("SET default_transaction_read_only = on")
            .unwrap();
        let err = client
            .bulk()
            .copy_in_with_plan(&plan, copied(6, 3))
            .unwrap_err();
        read_only_refusal(&err);
        let n: i64 = client
            .query_one("SELECT count(*) FROM kept", &[])
            .unwrap()
            .get(0);
        assert_eq!(n, 6);
        // The bound INSERT of a small batch: the same error.
        let err = client
            .bulk()
            .copy_in_with_plan(&plan, rows(6, 3))
            .unwrap_err();
        read_only_refusal(&err);
        let n: i64 = client
            .query_one("SELECT count(*) FROM kept", &[])
            .unwrap()
            .get(0);
        assert_eq!(n, 6);
    })
    .await
    .unwrap();
}
