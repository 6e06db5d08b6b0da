//! Past one stream: [`copy_in_parallel`] splits one input across several connections, and
//! [`Bulk::replace_all`] replaces a table's contents with `TRUNCATE` and `COPY .. FREEZE` in
//! one transaction.

use crate::bulk::Bulk;
use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::row::CopyRow;
use crate::BulkExt;
use futures_util::future::join_all;
use std::borrow::Borrow;
use std::future::Future;
use std::ops::Range;
use std::time::{Duration, Instant};
use tokio_postgres::Client;

/// One connection's share of a [`copy_in_parallel`] load.
#[derive(Debug)]
#[non_exhaustive]
pub struct ParallelPart {
    /// Index of the connection in the slice passed to [`copy_in_parallel`].
    pub connection: usize,
    /// The rows of the input this connection wrote (indexes into the input slice).
    pub rows: Range<usize>,
    /// The rows the server reports written, or why this connection's COPY failed (then none of
    /// *its* rows were written; row indexes in the error are relative to `rows.start`).
    pub result: Result<u64>,
    /// Wall time of this connection's COPY.
    pub elapsed: Duration,
}

/// What a [`copy_in_parallel`] load did, per connection.
#[derive(Debug)]
pub struct ParallelOutcome {
    parts: Vec<ParallelPart>,
}

impl ParallelOutcome {
    /// Every connection's share, in connection order.
    pub fn parts(&self) -> &[ParallelPart] {
        &self.parts
    }

    /// Rows written by the connections that succeeded.
    pub fn written(&self) -> u64 {
        self.parts
            .iter()
            .filter_map(|p| p.result.as_ref().ok())
            .sum()
    }

    /// Whether every connection's COPY succeeded.
    pub fn is_complete(&self) -> bool {
        self.parts.iter().all(|p| p.result.is_ok())
    }

    /// The total written if every connection succeeded, otherwise the first failure (with its
    /// row index made absolute). Note that the other connections' rows stay written.
    pub fn into_result(self) -> Result<u64> {
        let mut total = 0;
        for part in self.parts {
            match part.result {
                Ok(n) => total += n,
                Err(e) => {
                    return Err(match e.row() {
                        Some(row) => e.with_row(row + part.rows.start as u64),
                        None => e,
                    })
                }
            }
        }
        Ok(total)
    }
}

/// Writes `rows` into `plan`'s table over several connections at once: the input is split into
/// one contiguous part per connection, and each part is one binary COPY on its connection.
///
/// **Not atomic across connections.** Each part commits (or fails) on its own: if one
/// connection's COPY fails, the parts of the others are still written. Look at
/// [`ParallelOutcome::parts`] to see which rows went in, or load into a staging table and
/// merge. Use it for bulk loads that can be repeated or cleaned up, where the server's single
/// backend per connection is the limit.
///
/// The connections may come from a pool (`&*pooled` derefs to a `Client`) or be opened for the
/// load; they must not be inside a transaction you expect to span all of them. The plan can be
/// made on any of them (`clients[0].bulk().plan::<T>()`). The COPYs run concurrently on the
/// calling task; encoding is cheap next to the server's work, so one task keeps up.
pub async fn copy_in_parallel<T>(clients: &[&Client], plan: &Plan<T>, rows: &[T]) -> ParallelOutcome
where
    T: CopyRow + Sync,
{
    let n = clients.len().max(1);
    let per = rows.len().div_ceil(n);
    let parts = clients.iter().enumerate().map(|(connection, client)| {
        let start = (connection * per).min(rows.len());
        let end = (start + per).min(rows.len());
        async move {
            let began = Instant::now();
            let result = client
                .bulk()
                .copy_in_with_plan(plan, &rows[start..end])
                .await;
            ParallelPart {
                connection,
                rows: start..end,
                result,
                elapsed: began.elapsed(),
            }
        }
    });
    ParallelOutcome {
        parts: join_all(parts).await,
    }
}

impl<'c> Bulk<'c> {
    /// Replaces the whole contents of `T`'s table (or the [`table`](Bulk::table) override) with
    /// `rows`: `TRUNCATE`, then one `COPY .. FROM STDIN (FORMAT binary, FREEZE)`.
    ///
    /// Must be called on a transaction (`client.transaction().await?.bulk()`): the old rows
    /// disappear and the new ones appear when it commits, and readers see one or the other.
    /// `FREEZE` writes the rows already frozen (no later hint-bit or anti-wraparound rewrite),
    /// which PostgreSQL allows only because the table was truncated in the same transaction.
    /// PostgreSQL refuses `FREEZE` on a partitioned table, so there the `COPY` goes without it
    /// (the rows are routed to the partitions as in any `copy_in`). `TRUNCATE` takes an `ACCESS EXCLUSIVE` lock until commit.
    ///
    /// Returns the rows written. On a plain client (not a transaction) it fails with
    /// [`ErrorKind::Usage`](crate::ErrorKind) and sends nothing.
    pub fn replace_all<T, I>(&self, rows: I) -> impl Future<Output = Result<u64>> + use<'c, T, I>
    where
        T: CopyRow,
        I: IntoIterator,
        I::Item: Borrow<T>,
    {
        let bulk = self.clone();
        async move {
            if !bulk.in_transaction() {
                return Err(Error::usage(
                    "replace_all needs a transaction: call it as \
                     `client.transaction().await?.bulk().replace_all(rows)` and commit",
                ));
            }
            let plan = bulk.plan::<T>().await?;
            let table = plan.table();
            // Pipelined: one round trip for both.
            let (truncated, partitioned) = futures_util::future::join(
                bulk.client().batch_execute(&format!("TRUNCATE {table}")),
                bulk.client().query_typed(
                    "SELECT relkind = 'p' FROM pg_class WHERE oid = $1::regclass",
                    &[(&table, postgres_types::Type::TEXT)],
                ),
            )
            .await;
            truncated.map_err(|e| Error::pg("TRUNCATE failed", e))?;
            let partitioned = partitioned
                .map_err(|e| Error::pg("cannot look up the table", e))?
                .first()
                .is_some_and(|row| row.get::<_, bool>(0));
            // PostgreSQL refuses FREEZE on a partitioned table (its rows go to the partitions
            // through tuple routing): there, a plain COPY.
            if partitioned {
                return bulk.copy_in_with_plan(&plan, rows).await;
            }
            let statement = plan.copy_statement();
            let head = statement
                .strip_suffix(" (FORMAT binary)")
                .unwrap_or(statement);
            let freeze = plan.retarget(
                plan.table().to_owned(),
                format!("{head} (FORMAT binary, FREEZE)"),
            );
            bulk.copy_in_with_plan(&freeze, rows).await
        }
    }
}
