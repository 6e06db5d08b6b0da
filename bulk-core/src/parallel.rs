//! Past one stream: [`copy_in_parallel`] splits one input across several connections.

use crate::bulk::BulkExt;
use crate::error::Result;
use crate::plan::Plan;
use crate::row::CopyRow;
use futures_util::future::join_all;
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
#[non_exhaustive]
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
