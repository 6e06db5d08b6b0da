//! `upsert_via_staging` through `MERGE` (PostgreSQL 15 and later, into a plain table with a
//! unique index on the key whose heap is at most twice the bytes staged): exact counts on the
//! benchmark's mixed workload, the fallback to `INSERT .. ON CONFLICT` when a key is inserted
//! concurrently, the caller's settings kept, and where `MERGE` is not used — on every async
//! client (`on_every_client!`).
//!
//! Which statement merged is read inside a caller's transaction from the transaction-local
//! counter of the rows `MERGE` inserted, `pgbulk.inserted`: set only when `MERGE` merged;
//! unset (empty) when `ON CONFLICT` merged, either from the start or after the `MERGE`
//! attempt failed and was rolled back to its savepoint (the setting with it).

use crate::upsert::{counts, STAGES_LEFT};
use pgbulk::testkit::TestDb;
use pgbulk::{BulkExt, CopyRow};

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "users_merge")]
struct UserRow {
    #[copy(key)]
    id: i64,
    email: String,
    name: String,
}

/// A key and a second unique index, as in the benchmark.
const USERS: &str = "CREATE TABLE users_merge (id int8 PRIMARY KEY, email text NOT NULL UNIQUE, \
                     name text NOT NULL)";

/// Rows in a batch: enough for `MERGE` (2,000 and more).
const N: i64 = 20_000;

fn user(id: i64, version: u32) -> UserRow {
    UserRow {
        id,
        email: format!("user{id}@example.com"),
        name: format!("user {id} v{version}"),
    }
}

/// The stored rows: ids `0..3N/4` at version 0.
fn stored() -> Vec<UserRow> {
    (0..N * 3 / 4).map(|i| user(i, 0)).collect()
}

/// The batch: ids `0..N`; the first `N/4` change, the next `N/2` stay, the last `N/4` are new.
fn batch() -> Vec<UserRow> {
    (0..N).map(|i| user(i, u32::from(i < N / 4))).collect()
}

/// What the table holds: `(id, name)` in key order.
async fn names(db: &TestDb) -> Vec<(i64, String)> {
    db.client()
        .query("SELECT id, name FROM users_merge ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// The rows `MERGE` inserted in the current transaction, empty if it did not merge (see the
/// module docs).
const MERGED: &str = "SELECT coalesce(current_setting('pgbulk.inserted', true), '')";

/// What [`MERGED`] reads after `MERGE` inserted 5,000 rows: empty before PostgreSQL 15, which
/// has no `MERGE` (`ON CONFLICT` merges, with the same counts).
const MERGED_5000: &str = "SELECT CASE WHEN current_setting('server_version_num')::int >= 150000 \
                           THEN '5000' ELSE '' END";

on_every_client! {
    /// The mixed workload through `MERGE`: exact counts, the rows as written, duplicates
    /// dropped (last one wins), and the caller's `work_mem` unchanged after the call, inside
    /// its transaction and on the plain connection.
    async fn merge_counts_the_mixed_workload_exactly(db, conn) {
        db.client().batch_execute(USERS).await.unwrap();
        conn.bulk().copy_in(&stored()).await.unwrap();

        let mut tx = begin(&mut conn).await;
        execute(&mut tx, "SET LOCAL work_mem = '1234kB'").await.unwrap();
        let c = tx.bulk().upsert_via_staging(&batch()).await.unwrap();
        assert_eq!(c, counts(5_000, 5_000, 10_000, 0));
        assert_eq!(
            text(&mut tx, MERGED).await.unwrap(),
            text(&mut tx, MERGED_5000).await.unwrap()
        );
        assert_eq!(text(&mut tx, "SHOW work_mem").await.unwrap(), "1234kB");
        tx.commit().await.unwrap();
        let expected: Vec<(i64, String)> =
            batch().into_iter().map(|u| (u.id, u.name)).collect();
        assert_eq!(names(&db).await, expected);

        // Shuffled, with every tenth key given twice (the later row, version 3, wins), and
        // N/4 more new keys, on the plain connection.
        let mut rows: Vec<UserRow> = (0..N + N / 4).map(|i| user(i, 2)).collect();
        rows.extend((0..N).step_by(10).map(|i| user(i, 3)));
        let len = rows.len();
        for i in 0..len / 2 {
            rows.swap(i, (i * 7_919) % (len / 2));
        }
        let before = text(&mut conn, "SHOW work_mem").await.unwrap();
        let c = conn.bulk().upsert_via_staging(&rows).await.unwrap();
        assert_eq!(c, counts(5_000, 20_000, 0, 2_000));
        assert_eq!(text(&mut conn, "SHOW work_mem").await.unwrap(), before);
        let expected: Vec<(i64, String)> = (0..N + N / 4)
            .map(|i| (i, user(i, if i < N && i % 10 == 0 { 3 } else { 2 }).name))
            .collect();
        assert_eq!(names(&db).await, expected);

        // DO NOTHING, on the stored rows again (the updates above left the heap more than
        // twice the batch, where MERGE would not pay): only the N/4 new keys are written.
        execute(&mut conn, "TRUNCATE users_merge").await.unwrap();
        conn.bulk().copy_in(&stored()).await.unwrap();
        let mut tx = begin(&mut conn).await;
        let c = tx.bulk().upsert_via_staging(&batch()).do_nothing().await.unwrap();
        assert_eq!(c, counts(5_000, 0, 15_000, 0));
        assert_eq!(
            text(&mut tx, MERGED).await.unwrap(),
            text(&mut tx, MERGED_5000).await.unwrap()
        );
        tx.commit().await.unwrap();
        let expected: Vec<(i64, String)> = (0..N).map(|i| (i, user(i, 0).name)).collect();
        assert_eq!(names(&db).await, expected);
        assert_eq!(scalar(&mut conn, STAGES_LEFT).await.unwrap(), 0);
    }

    /// A key of the batch inserted by another session while the `MERGE` runs: the `MERGE`
    /// waits for that session, then fails on the key (`MERGE` does not take the conflict
    /// path); the attempt is rolled back to its savepoint and `ON CONFLICT` merges instead,
    /// counting the row as updated. Nothing of the failed attempt is left and the counts are
    /// exact.
    async fn a_key_inserted_concurrently_falls_back_to_on_conflict(db, conn) {
        db.client().batch_execute(USERS).await.unwrap();
        conn.bulk().copy_in(&stored()).await.unwrap();
        // Another session inserts one of the batch's new keys and keeps its transaction open.
        let key = N - 1;
        let mut other = db.connect().await.unwrap();
        let other_tx = other.transaction().await.unwrap();
        other_tx
            .execute(
                "INSERT INTO users_merge VALUES ($1, $2, 'inserted concurrently')",
                &[&key, &user(key, 0).email],
            )
            .await
            .unwrap();

        let waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
                       AND datname = current_database()";
        let watcher = db.client();
        let upsert = async {
            let mut tx = begin(&mut conn).await;
            let c = tx.bulk().upsert_via_staging(&batch()).await.unwrap();
            let merged = text(&mut tx, MERGED).await.unwrap();
            tx.commit().await.unwrap();
            (c, merged)
        };
        let commit_other = async {
            // Once the upsert waits for the other session's key, that session commits.
            let started = std::time::Instant::now();
            loop {
                let n: i64 = watcher.query_one(waiting, &[]).await.unwrap().get(0);
                if n > 0 {
                    break;
                }
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(60),
                    "the upsert never waited for the concurrent insert"
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            other_tx.commit().await.unwrap();
        };
        let ((c, merged), ()) = futures_util::future::join(upsert, commit_other).await;
        // The concurrent row differs from the batch's: updated, not inserted.
        assert_eq!(c, counts(5_000 - 1, 5_000 + 1, 10_000, 0));
        // The MERGE attempt was rolled back: its setting with it.
        assert_eq!(merged, "");
        let expected: Vec<(i64, String)> =
            batch().into_iter().map(|u| (u.id, u.name)).collect();
        assert_eq!(names(&db).await, expected);
        assert_eq!(scalar(&mut conn, STAGES_LEFT).await.unwrap(), 0);
    }

    /// `MERGE` is not used where it would not pay or could not count exactly: a target much
    /// larger than the batch (a hash join would read all of it), and a target with a row-level
    /// `BEFORE` trigger (which may skip a row `MERGE` counted). The counts stay exact.
    async fn merge_is_not_used_on_a_large_target_or_with_a_before_trigger(db, conn) {
        db.client().batch_execute(USERS).await.unwrap();
        // 8 times the batch's keys stored: the heap is far more than twice the batch.
        let large: Vec<UserRow> = (N..N * 9).map(|i| user(i, 0)).collect();
        conn.bulk().copy_in(&stored()).await.unwrap();
        conn.bulk().copy_in(&large).await.unwrap();
        let mut tx = begin(&mut conn).await;
        let c = tx.bulk().upsert_via_staging(&batch()).await.unwrap();
        assert_eq!(c, counts(5_000, 5_000, 10_000, 0));
        assert_eq!(text(&mut tx, MERGED).await.unwrap(), "");
        tx.rollback().await.unwrap();

        execute(
            &mut conn,
            &format!(
                "DROP TABLE users_merge; {USERS}; \
                 CREATE FUNCTION keep_row() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RETURN NEW; END $$; \
                 CREATE TRIGGER keep BEFORE INSERT OR UPDATE ON users_merge \
                 FOR EACH ROW EXECUTE FUNCTION keep_row()"
            ),
        )
        .await
        .unwrap();
        conn.bulk().copy_in(&stored()).await.unwrap();
        let mut tx = begin(&mut conn).await;
        let c = tx.bulk().upsert_via_staging(&batch()).await.unwrap();
        assert_eq!(c, counts(5_000, 5_000, 10_000, 0));
        assert_eq!(text(&mut tx, MERGED).await.unwrap(), "");
        tx.commit().await.unwrap();
    }
}
