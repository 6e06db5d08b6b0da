//! One body per behaviour, run on every async client (`on_every_client!`, `main.rs`): the
//! core of each operation, end to end, on tokio-postgres (`Client`) and sqlx (`PgConnection`).
//! The feature files (`copy_in`, `copy_out`, `upsert`, `returning`, `faults`, `errors`, ..) run
//! their client-facing tests the same way.
//!
//! Where the clients must differ, the body asks `KEEPS_SESSION`: tokio-postgres stays usable
//! after a COPY dropped half-way; sqlx cannot (see the crate docs, "With sqlx"), so pgbulk
//! ends the session and the next call on that connection says so — never another query's rows.

use crate::{count, db};
use futures_util::{stream, StreamExt};
use pgbulk::CopyRow;
use std::time::Duration;

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "ledger")]
struct Entry {
    #[copy(key)]
    id: i64,
    account: String,
    cents: i64,
}

#[derive(CopyRow, Debug, Clone, PartialEq)]
struct Id {
    id: i64,
}

const LEDGER: &str = "CREATE TABLE ledger (id int8 PRIMARY KEY, account text NOT NULL, \
     cents int8 NOT NULL CHECK (cents > -1000000))";

fn entry(id: i64) -> Entry {
    Entry {
        id,
        account: format!("acct-{}", id % 13),
        cents: id * 3,
    }
}

/// A source that yields `n` rows, then never ends: a COPY fed by it is open until dropped.
fn endless(n: i64) -> impl futures_util::Stream<Item = Result<Entry, std::io::Error>> {
    stream::iter((0..n).map(|i| Ok(entry(i)))).chain(stream::pending())
}

on_every_client! {
    async fn copy_in_and_copy_out_round_trip(db, conn) {
        db.client().batch_execute(LEDGER).await.unwrap();
        let rows: Vec<Entry> = (0..10_000).map(entry).collect();
        assert_eq!(conn.bulk().flush_bytes(4096).copy_in(&rows).await.unwrap(), 10_000);
        let plan = conn.bulk().plan::<Entry>().await.unwrap();
        assert_eq!(conn.bulk().copy_in_with_plan(&plan, (10_000..10_005).map(entry)).await.unwrap(), 5);
        let mut back: Vec<Entry> = conn.bulk().copy_out::<Entry>().collect_vec().await.unwrap();
        back.sort_by_key(|e| e.id);
        assert_eq!(back.len(), 10_005);
        assert_eq!(&back[..10_000], &rows[..]);
        let ids: Vec<Id> = conn
            .bulk()
            .copy_out_query::<Id>("SELECT id FROM ledger WHERE id % 1000 = 0 ORDER BY id")
            .collect_vec()
            .await
            .unwrap();
        assert_eq!(ids.iter().map(|i| i.id).collect::<Vec<_>>(), (0..=10).map(|i| i * 1000).collect::<Vec<_>>());
        let streamed = stream::iter((20_000..20_100).map(|i| Ok::<_, std::io::Error>(entry(i))));
        assert_eq!(conn.bulk().copy_in_stream(streamed).await.unwrap(), 100);
        assert_eq!(scalar(&mut conn, "SELECT count(*) FROM ledger").await.unwrap(), 10_105);
    }

    async fn unique_violation_names_row_4999_writes_nothing_and_the_connection_is_reused(db, conn) {
        db.client().batch_execute(LEDGER).await.unwrap();
        let mut rows: Vec<Entry> = (0..10_000).map(entry).collect();
        rows[4_999].id = 10; // the same key as row 10
        let err = conn.bulk().copy_in(&rows).await.unwrap_err();
        assert_eq!(err.kind(), pgbulk::ErrorKind::Db, "{err}");
        assert_eq!(err.row(), Some(4_999), "{err}");
        assert_eq!(err.code(), Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION));
        assert!(std::error::Error::source(&err).is_some());
        assert_eq!(count(&db, "ledger").await, 0);
        // The same connection, right away.
        assert_eq!(scalar(&mut conn, "SELECT count(*) FROM ledger").await.unwrap(), 0);
        assert_eq!(conn.bulk().copy_in((0..3).map(entry)).await.unwrap(), 3);
        // A check constraint: the row and the column are named.
        let mut bad: Vec<Entry> = (100..200).map(entry).collect();
        bad[42].cents = -5_000_000;
        let err = conn.bulk().copy_in(&bad).await.unwrap_err();
        assert_eq!(err.row(), Some(42), "{err}");
        assert_eq!(count(&db, "ledger").await, 3);
    }

    async fn all_mismatches_at_once_and_nothing_sent(db, conn) {
        #[derive(CopyRow, Debug)]
        #[copy(table = "ledger")]
        struct Wrong {
            id: i32,
            account: i64,
            cents: i64,
            missing: String,
        }
        db.client().batch_execute(LEDGER).await.unwrap();
        let err = conn.bulk().copy_in([Wrong { id: 1, account: 2, cents: 3, missing: String::new() }]).await.unwrap_err();
        assert_eq!(err.kind(), pgbulk::ErrorKind::TypeMismatch, "{err}");
        let fields: Vec<&str> = err.mismatches().iter().map(|m| m.field).collect();
        assert_eq!(fields, ["id", "account", "missing"], "{err}");
        assert_eq!(scalar(&mut conn, "SELECT count(*) FROM ledger").await.unwrap(), 0);
    }

    async fn upsert_counts_and_returning(db, conn) {
        db.client().batch_execute(LEDGER).await.unwrap();
        let first: Vec<Entry> = (0..100).map(entry).collect();
        let counts = conn.bulk().upsert_via_staging(first.clone()).await.unwrap();
        assert_eq!((counts.inserted, counts.updated, counts.unchanged), (100, 0, 0));
        let mut second: Vec<Entry> = (50..150).map(entry).collect();
        for e in &mut second[..10] {
            e.cents += 1;
        }
        second.push(entry(149)); // a duplicate key: the last one wins
        let counts = conn.bulk().upsert_via_staging(second).await.unwrap();
        assert_eq!(
            (counts.inserted, counts.updated, counts.unchanged, counts.duplicates),
            (50, 10, 40, 1)
        );
        let changed: Vec<Id> = conn
            .bulk()
            .upsert_via_staging_returning::<Id, _, _>((0..3).map(|i| Entry { cents: 7, ..entry(i) }))
            .await
            .unwrap();
        let mut ids: Vec<i64> = changed.iter().map(|i| i.id).collect();
        ids.sort_unstable();
        assert_eq!(ids, [0, 1, 2]);
        assert_eq!(scalar(&mut conn, "SELECT count(*) FROM ledger").await.unwrap(), 150);
        assert_eq!(scalar(&mut conn, "SELECT sum(cents)::int8 FROM ledger WHERE id < 3").await.unwrap(), 21);
        // No staging table is left behind: no per-call one (any session), and this session's
        // reused one, if the client has one, holds no rows.
        assert_eq!(
            scalar(&mut conn, "SELECT count(*) FROM pg_class WHERE relpersistence = 't' AND \
                (relname ~ '^pgbulk_stage_[0-9]+_[0-9]+$' OR (relname LIKE 'pgbulk\\_stage\\_r%' \
                AND relnamespace = pg_my_temp_schema() AND (xpath('/row/n/text()', query_to_xml( \
                format('SELECT count(*) AS n FROM pg_temp.%I', relname), false, true, '')))[1] \
                ::text::int8 > 0))").await.unwrap(),
            0
        );
    }

    async fn upsert_refuses_a_raw_begin_and_leaves_it_alone(db, conn) {
        db.client().batch_execute(LEDGER).await.unwrap();
        execute(&mut conn, "BEGIN; INSERT INTO ledger VALUES (999, 'caller', 1)").await.unwrap();
        let err = conn.bulk().upsert_via_staging((0..10).map(entry)).await.unwrap_err();
        assert_eq!(err.kind(), pgbulk::ErrorKind::Usage, "{err}");
        // The hint names this client's way to open a transaction.
        assert!(err.to_string().contains(BEGIN_HINT), "{err}");
        // The caller's transaction is untouched and still theirs to end.
        assert_eq!(scalar(&mut conn, "SELECT count(*) FROM ledger").await.unwrap(), 1);
        execute(&mut conn, "ROLLBACK").await.unwrap();
        assert_eq!(scalar(&mut conn, "SELECT count(*) FROM ledger").await.unwrap(), 0);
        assert_eq!(count(&db, "ledger").await, 0);
    }

    async fn a_copy_in_dropped_half_way_writes_nothing(db, conn) {
        db.client().batch_execute(LEDGER).await.unwrap();
        let load = conn.bulk().flush_bytes(4096).copy_in_stream(endless(5_000));
        tokio::select! {
            r = load => panic!("the load finished: {r:?}"),
            () = tokio::time::sleep(Duration::from_millis(300)) => {}
        }
        assert_eq!(count(&db, "ledger").await, 0);
        // A query on the same connection (sqlx: it reports the lost session; see `conn.rs`).
        after_abandoned_copy(&mut conn, &db).await;
        assert_eq!(conn.bulk().copy_in((0..3).map(entry)).await.unwrap(), 3);
        assert_eq!(count(&db, "ledger").await, 3);
    }

    async fn a_copy_out_stream_dropped_early_never_hands_back_wrong_rows(db, conn) {
        db.client().batch_execute(LEDGER).await.unwrap();
        db.client().batch_execute("INSERT INTO ledger SELECT g, 'a', g FROM generate_series(1, 200000) g").await.unwrap();
        {
            let mut rows = conn.bulk().copy_out::<Entry>();
            assert!(rows.next().await.unwrap().is_ok());
        }
        // A query on the same connection (sqlx: it reports the lost session; see `conn.rs`).
        after_abandoned_copy(&mut conn, &db).await;
        assert_eq!(scalar(&mut conn, "SELECT count(*) FROM ledger").await.unwrap(), 200_000);
    }
}

/// sqlx pools: a pooled connection whose COPY was abandoned is closed, not returned, so the next
/// user gets a fresh one; eight upserts run at once through one pool.
mod sqlx_pool {
    use super::*;
    use pgbulk::SqlxBulkExt as _;
    use sqlx::postgres::PgPoolOptions;

    #[tokio::test]
    async fn abandoned_copy_does_not_reach_the_next_user_and_eight_upserts_share_a_pool() {
        let db = db().await;
        db.client().batch_execute(LEDGER).await.unwrap();
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(db.sqlx_options())
            .await
            .unwrap();
        for _ in 0..2 {
            let load = pool.bulk().copy_in_stream(endless(3_000));
            tokio::select! {
                r = load => panic!("the load finished: {r:?}"),
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            let mut rows = pool
                .bulk()
                .copy_out_query::<Id>("SELECT g::int8 AS id FROM generate_series(1, 100000) g");
            assert!(rows.next().await.unwrap().is_ok());
        }
        // The one pooled connection: its answers are its own.
        for i in 0..5_i64 {
            let v: i64 = sqlx::query_scalar("SELECT $1::int8 * 2")
                .bind(i)
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!(v, i * 2);
        }
        assert_eq!(count(&db, "ledger").await, 0);

        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect_with(db.sqlx_options())
            .await
            .unwrap();
        let upserts = (0..8_i64).map(|k| {
            let pool = pool.clone();
            // Overlapping key ranges: each upsert also rewrites part of its neighbour's.
            tokio::spawn(async move {
                pool.bulk()
                    .upsert_via_staging((k * 1_000..k * 1_000 + 1_500).map(entry))
                    .await
            })
        });
        let mut total = 0;
        for r in futures_util::future::join_all(upserts).await {
            let counts = r.unwrap().unwrap();
            assert_eq!(counts.inserted + counts.updated + counts.unchanged, 1_500);
            total += counts.inserted;
        }
        assert_eq!(total, 8_500);
        assert_eq!(count(&db, "ledger").await, 8_500);
    }

    #[tokio::test]
    async fn inside_a_sqlx_transaction_upsert_is_part_of_it() {
        let db = db().await;
        db.client().batch_execute(LEDGER).await.unwrap();
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect_with(db.sqlx_options())
            .await
            .unwrap();
        let mut tx = pool.begin().await.unwrap();
        assert_eq!(tx.bulk().copy_in((0..10).map(entry)).await.unwrap(), 10);
        let counts = tx
            .bulk()
            .upsert_via_staging((5..20).map(entry))
            .await
            .unwrap();
        assert_eq!((counts.inserted, counts.unchanged), (10, 5));
        // A failing upsert rolls back to its savepoint: the transaction goes on.
        let mut bad: Vec<Entry> = (20..30).map(entry).collect();
        bad[3].cents = -9_000_000;
        assert!(tx.bulk().upsert_via_staging(bad).await.is_err());
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(n, 20);
        assert_eq!(count(&db, "ledger").await, 0, "not committed yet");
        tx.rollback().await.unwrap();
        assert_eq!(count(&db, "ledger").await, 0);
        let mut conn = pool.acquire().await.unwrap();
        assert_eq!(conn.bulk().copy_in((0..4).map(entry)).await.unwrap(), 4);
        assert_eq!(count(&db, "ledger").await, 4);
    }

    #[tokio::test]
    async fn quarantine_and_replace_all_on_sqlx() {
        let db = db().await;
        db.client().batch_execute(LEDGER).await.unwrap();
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect_with(&db.sqlx_options())
            .await
            .unwrap();
        let mut rows: Vec<Entry> = (0..1_000).map(entry).collect();
        rows[17].cents = -7_000_000;
        rows[640].cents = -8_000_000;
        let outcome = conn
            .bulk()
            .quarantine()
            .max_rejected(10)
            .copy_in(&rows)
            .await
            .unwrap();
        assert_eq!(outcome.written, 998);
        let rejected: Vec<usize> = outcome.rejected.iter().map(|r| r.index).collect();
        assert_eq!(rejected, [17, 640]);
        assert_eq!(outcome.rejected[0].error.row(), Some(17));
        assert_eq!(count(&db, "ledger").await, 998);

        // replace_all wants a transaction, and says so on a plain connection.
        let err = conn
            .bulk()
            .replace_all((0..5).map(entry))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), pgbulk::ErrorKind::Usage, "{err}");
        let mut tx = sqlx::Connection::begin(&mut conn).await.unwrap();
        assert_eq!(tx.bulk().replace_all((0..5).map(entry)).await.unwrap(), 5);
        tx.commit().await.unwrap();
        assert_eq!(count(&db, "ledger").await, 5);
    }
}
