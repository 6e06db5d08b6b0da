//! `testkit::shutdown` stops the cluster and removes its files; the next `TestDb` starts another.
//! A test binary of its own: shutting down would break the other tests' databases. It runs
//! whether `DATABASE_URL` is set or not (with its own cluster either way).

use bulk_core::testkit::{self, TestDb};

#[tokio::test]
async fn shutdown_removes_the_cluster_and_a_new_one_starts() {
    // Always a throwaway cluster of this process's own, even when `DATABASE_URL` names a
    // server: that one is never ours to shut down.
    testkit::use_local_cluster();
    let db = TestDb::new().await.unwrap();
    let info = tokio::task::spawn_blocking(testkit::server_info)
        .await
        .unwrap()
        .unwrap();
    let socket_dir = info.socket_dir.unwrap();
    assert!(socket_dir.exists());

    tokio::task::spawn_blocking(testkit::shutdown)
        .await
        .unwrap();
    assert!(
        !socket_dir.exists(),
        "{} still exists",
        socket_dir.display()
    );
    assert!(db.client().query_one("SELECT 1", &[]).await.is_err());
    drop(db);

    let db = TestDb::new().await.unwrap();
    let one: i32 = db.client().query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    let info = tokio::task::spawn_blocking(testkit::server_info)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(info.socket_dir.unwrap(), socket_dir);
    tokio::task::spawn_blocking(testkit::shutdown)
        .await
        .unwrap();
}
