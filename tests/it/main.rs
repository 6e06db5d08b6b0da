//! Integration tests against a real PostgreSQL (the testkit's throwaway cluster, or
//! `DATABASE_URL`). One binary, so the server starts once; every test has its own database.

// Test code: long fixtures and unwraps are the point, not a smell.
#![allow(clippy::too_many_lines, clippy::missing_panics_doc)]

mod clients;
mod copy_in;
mod copy_out;
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
mod server;
mod soak;
mod to_sql_types;
mod types;
mod upsert;
mod upsert_edges;
mod web;

use pgbulk::testkit::TestDb;

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
