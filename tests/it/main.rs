//! Integration tests against a real PostgreSQL (the testkit's throwaway cluster, or
//! `DATABASE_URL`). One binary, so the server starts once; every test has its own database.

// Test code: long fixtures and unwraps are the point, not a smell.
#![allow(clippy::too_many_lines, clippy::missing_panics_doc)]

/// Defines each test body once and runs it on every async client: the bodies become tests in
/// the modules `tokio_postgres_client` and `sqlx_client`, each with a fresh test database as
/// `db` and a connection of that client to it as `conn` (see `conn.rs` for what else a body can
/// call). Where the clients must differ (a COPY dropped half-way), a body asks
/// `KEEPS_SESSION` or calls `after_abandoned_copy`.
macro_rules! on_every_client {
    (@client $module:ident, $conn:ident,
     $($(#[$attr:meta])* async fn $name:ident($db:ident, $c:ident) $body:block)*) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            #[allow(unused_imports)]
            use crate::conn::$conn::*;

            $(
                $(#[$attr])*
                #[tokio::test]
                #[allow(unused_mut, unused_variables)]
                async fn $name() {
                    let $db = crate::db().await;
                    let mut $c = connect(&$db).await;
                    $body
                }
            )*
        }
    };
    ($($tests:tt)*) => {
        on_every_client!(@client tokio_postgres_client, tokio_postgres, $($tests)*);
        on_every_client!(@client sqlx_client, sqlx, $($tests)*);
    };
}

mod clients;
mod conn;
mod copy_in;
mod copy_in_bound;
mod copy_out;
mod copy_out_each;
mod derive_attrs;
mod edges;
mod errors;
mod every_client;
mod faults;
mod fidelity;
mod files;
mod injection;
mod parallel;
mod parallel_read;
mod pgbouncer;
mod pgcopy;
mod progress;
mod quarantine;
mod query_params;
mod quoting;
mod ranges;
mod refused;
mod refused_reused;
mod returning;
mod returning_bound;
mod server;
mod soak;
mod to_sql_types;
mod types;
mod upsert;
mod upsert_bound;
mod upsert_edges;
mod upsert_merge;
mod web;

use pgbulk::testkit::TestDb;

/// `rows` as an input that does not say how many rows it holds: always copied by `copy_in` and
/// staged by `upsert_via_staging` (a small batch that says its size is sent as one statement
/// with the rows bound as arrays instead). Tests of the COPY and the stage pass their rows so.
pub fn unsized_rows<I: IntoIterator>(rows: I) -> impl Iterator<Item = I::Item> {
    rows.into_iter().chain(std::iter::from_fn(|| None))
}

/// A fresh database, or a test failure explaining why there is none.
pub async fn db() -> TestDb {
    TestDb::new()
        .await
        .unwrap_or_else(|e| panic!("no PostgreSQL for the tests: {e}"))
}

/// `SELECT count(*) FROM <table>`.
pub async fn count(db: &TestDb, table: &str) -> i64 {
    db.client()
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}
