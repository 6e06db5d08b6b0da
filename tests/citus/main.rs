//! pgbulk on a Citus cluster: a coordinator and two workers started by the testkit
//! (`TestDb::citus`), with hash-distributed and reference tables. Run with
//! `cargo test --features testkit-citus --test citus` (Citus installed for the local PostgreSQL).

// Test code: long fixtures and unwraps are the point, not a smell.
#![allow(clippy::too_many_lines, clippy::missing_panics_doc)]

mod clients;
mod copy;
mod returning;
mod upsert;

use pgbulk::testkit::TestDb;
use pgbulk::{BulkExt, CopyRow};

/// A fresh database on the Citus cluster, or a test failure explaining why there is none.
pub async fn db() -> TestDb {
    TestDb::citus()
        .await
        .unwrap_or_else(|e| panic!("no Citus cluster for the tests: {e}"))
}

/// `SELECT count(*) FROM <table>`.
pub async fn count(db: &TestDb, table: &str) -> i64 {
    db.client()
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

/// How Citus holds a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Citus {
    /// `create_distributed_table(t, 'tenant_id')`: hash-distributed over the workers' shards.
    Distributed,
    /// `create_reference_table(t)`: one shard, copied to every node.
    Reference,
}

impl Citus {
    /// Both kinds, for tests that run the same body on each.
    pub const BOTH: [Citus; 2] = [Citus::Distributed, Citus::Reference];

    /// Creates table `name` with `columns` (a column list in parentheses) and hands it to Citus.
    pub async fn create(self, db: &TestDb, name: &str, columns: &str) {
        let hand_over = match self {
            Citus::Distributed => format!("SELECT create_distributed_table('{name}', 'tenant_id')"),
            Citus::Reference => format!("SELECT create_reference_table('{name}')"),
        };
        db.client()
            .batch_execute(&format!("CREATE TABLE {name} {columns}; {hand_over}"))
            .await
            .unwrap();
    }

    /// A table name for this kind: `events_distributed`, `events_reference`.
    pub fn name(self, base: &str) -> String {
        match self {
            Citus::Distributed => format!("{base}_distributed"),
            Citus::Reference => format!("{base}_reference"),
        }
    }
}

/// The events table of most tests: a generated id, the tenant (the distribution column), a
/// natural key that includes it, and a CHECK the workers enforce.
pub const EVENTS: &str = "(id bigserial, tenant_id int8 NOT NULL, reference text NOT NULL, \
     amount int8 NOT NULL CHECK (amount >= 0), note text, UNIQUE (tenant_id, reference))";

/// A row of [`EVENTS`] without the generated id.
#[derive(CopyRow, Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
#[copy(table = "events")]
pub struct Event {
    /// The distribution column.
    #[copy(key)]
    pub tenant_id: i64,
    /// Unique per tenant.
    #[copy(key)]
    pub reference: String,
    /// `n` for [`event`]`(n)`.
    pub amount: i64,
    /// Sometimes NULL.
    pub note: Option<String>,
}

/// Event `n`: 37 tenants, references that do not sort into input order.
pub fn event(n: usize) -> Event {
    Event {
        tenant_id: i64::try_from(n % 37).unwrap(),
        reference: format!("ref-{:06}", (n * 7919) % 1_000_003),
        amount: i64::try_from(n).unwrap(),
        note: n.is_multiple_of(3).then(|| format!("note {n}")),
    }
}

/// Creates the events table as `kind` and returns its name.
pub async fn events(db: &TestDb, kind: Citus) -> String {
    let name = kind.name("events");
    kind.create(db, &name, EVENTS).await;
    name
}

/// [`events`], loaded with `rows`.
pub async fn events_with(db: &TestDb, kind: Citus, rows: &[Event]) -> String {
    let name = events(db, kind).await;
    db.client().bulk().table(&name).copy_in(rows).await.unwrap();
    name
}

/// The events of `table` matching `filter` (SQL), in `amount` order, read with a query.
pub async fn events_where(db: &TestDb, table: &str, filter: &str) -> Vec<Event> {
    db.client()
        .bulk()
        .copy_out_query::<Event>(format!(
            "SELECT tenant_id, reference, amount, note FROM {table} WHERE {filter} ORDER BY amount"
        ))
        .collect_vec()
        .await
        .unwrap()
}

/// The workers (node groups) holding at least one row of the distributed `table`.
pub async fn workers_with_rows(db: &TestDb, table: &str) -> i64 {
    db.client()
        .query_one(
            &format!(
                "SELECT count(DISTINCT p.groupid) FROM \
                 (SELECT DISTINCT get_shard_id_for_distribution_column('{table}', tenant_id) \
                  AS shardid FROM {table}) s JOIN pg_dist_placement p USING (shardid)"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// Staging tables left on the coordinator.
pub async fn staging_tables(db: &TestDb) -> i64 {
    // A per-call stage (`pgbulk_stage_<pid>_<n>`) in any session, or the session's reused
    // stage (`pgbulk_stage_r<hash>`, kept empty for its next call) still holding rows.
    db.client()
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relpersistence = 't' AND \
             (relname ~ '^pgbulk_stage_[0-9]+_[0-9]+$' OR (relname LIKE 'pgbulk\\_stage\\_r%' \
             AND relnamespace = pg_my_temp_schema() AND (xpath('/row/n/text()', query_to_xml( \
             format('SELECT count(*) AS n FROM pg_temp.%I', relname), false, true, '')))[1] \
             ::text::int8 > 0))",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// Every row of the events `table`, sorted.
pub async fn stored(db: &TestDb, table: &str) -> Vec<Event> {
    let mut rows: Vec<Event> = db
        .client()
        .bulk()
        .table(table)
        .copy_out::<Event>()
        .collect_vec()
        .await
        .unwrap();
    rows.sort();
    rows
}

/// `rows`, sorted.
pub fn sorted(rows: &[Event]) -> Vec<Event> {
    let mut rows = rows.to_vec();
    rows.sort();
    rows
}

/// The error of a `copy_in` of `rows` into `table` that must fail.
pub async fn refused<T: CopyRow + Sync>(db: &TestDb, table: &str, rows: &[T]) -> pgbulk::Error {
    db.client()
        .bulk()
        .table(table)
        .copy_in(rows)
        .await
        .unwrap_err()
}
