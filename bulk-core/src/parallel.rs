//! Past one stream: [`Bulk::copy_in_parallel`] splits one input across several connections.

use crate::bulk::{Bulk, BulkExt};
use crate::error::{Error, Result};
use crate::ops::{Options, Progress};
use crate::plan::{self, Plan};
use crate::row::CopyRow;
use futures_util::future::join_all;
use std::future::Future;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::Client;

/// One connection's share of a [`copy_in_parallel`](Bulk::copy_in_parallel) load.
#[derive(Debug)]
#[non_exhaustive]
pub struct ParallelPart {
    /// Index of the connection: 0 is the handle's own client, `1..` the `others` in order.
    pub connection: usize,
    /// The rows of the input this connection wrote (indexes into the input slice).
    pub rows: Range<usize>,
    /// The rows the server reports written, or why this connection's COPY failed (then none of
    /// *its* rows were written; row indexes in the error are relative to `rows.start`).
    pub result: Result<u64>,
    /// Wall time of this connection's COPY.
    pub elapsed: Duration,
}

/// What a [`copy_in_parallel`](Bulk::copy_in_parallel) load did, per connection.
///
/// `#[must_use]`: a part may have failed while the others wrote their rows; look at
/// [`is_complete`](ParallelOutcome::is_complete) or turn it into a `Result` with
/// [`into_result`](ParallelOutcome::into_result). Awaiting a parallel load and dropping what
/// it returns is a warning (an error under `#![deny(unused_must_use)]`):
///
/// ```compile_fail
/// # #![deny(unused_must_use)]
/// # extern crate bulk_core as pgbulk;
/// # use bulk_derive::CopyRow;
/// # use pgbulk::BulkExt;
/// # #[derive(CopyRow)] struct Event { id: i64 }
/// # async fn f(a: &tokio_postgres::Client, b: &tokio_postgres::Client, events: Vec<Event>) -> pgbulk::Result<()> {
/// a.bulk().copy_in_parallel(&[b], &events).await?; // error: unused `ParallelOutcome`
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[non_exhaustive]
#[must_use = "some parts of a parallel load may have failed: check `is_complete()` or call `into_result()`"]
pub struct ParallelOutcome {
    parts: Vec<ParallelPart>,
}

impl ParallelOutcome {
    /// Every connection's share, in connection order.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// # use pgbulk::BulkExt;
    /// # #[derive(CopyRow)] struct Event { id: i64, kind: String }
    /// # async fn f(a: &tokio_postgres::Client, b: &tokio_postgres::Client, events: Vec<Event>) -> pgbulk::Result<()> {
    /// let outcome = a.bulk().copy_in_parallel(&[b], &events).await?;
    /// for part in outcome.parts() {
    ///     if let Err(e) = &part.result {
    ///         eprintln!("connection {}: rows {:?} not written: {e}", part.connection, part.rows);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn parts(&self) -> &[ParallelPart] {
        &self.parts
    }

    /// Rows written by the connections that succeeded.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// # use pgbulk::BulkExt;
    /// # #[derive(CopyRow)] struct Event { id: i64, kind: String }
    /// # async fn f(a: &tokio_postgres::Client, b: &tokio_postgres::Client, events: Vec<Event>) -> pgbulk::Result<()> {
    /// let outcome = a.bulk().copy_in_parallel(&[b], &events).await?;
    /// println!("{} of {} rows written", outcome.written(), events.len());
    /// # Ok(()) }
    /// ```
    pub fn written(&self) -> u64 {
        self.parts
            .iter()
            .filter_map(|p| p.result.as_ref().ok())
            .sum()
    }

    /// Whether every connection's COPY succeeded.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// # use pgbulk::BulkExt;
    /// # #[derive(CopyRow)] struct Event { id: i64, kind: String }
    /// # async fn f(a: &tokio_postgres::Client, b: &tokio_postgres::Client, events: Vec<Event>) -> pgbulk::Result<()> {
    /// let outcome = a.bulk().copy_in_parallel(&[b], &events).await?;
    /// if !outcome.is_complete() {
    ///     // Some parts are written, others not: clean up or retry the failed parts.
    ///     eprintln!("partial load: {} rows written", outcome.written());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn is_complete(&self) -> bool {
        self.parts.iter().all(|p| p.result.is_ok())
    }

    /// The total written if every connection succeeded, otherwise the first failure (with its
    /// row index made absolute). Note that the other connections' rows stay written.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// # use pgbulk::BulkExt;
    /// # #[derive(CopyRow)] struct Event { id: i64, kind: String }
    /// # async fn f(a: &tokio_postgres::Client, b: &tokio_postgres::Client, events: Vec<Event>) -> pgbulk::Result<()> {
    /// let written = a.bulk().copy_in_parallel(&[b], &events).await?.into_result()?;
    /// assert_eq!(written, events.len() as u64);
    /// # Ok(()) }
    /// ```
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

impl<'c> Bulk<'c> {
    /// Writes `rows` into `T`'s table over several connections at once: this handle's client
    /// and `others`. The input is split into one contiguous part per connection (this client
    /// takes the first), each part is one binary COPY on its connection, and all run
    /// concurrently on the calling task (encoding is cheap next to the server's work).
    ///
    /// The table is described once, on this handle's client, and checked as for
    /// [`copy_in`](Bulk::copy_in); [`table`](Bulk::table), [`flush_bytes`](Bulk::flush_bytes)
    /// and [`on_progress`](Bulk::on_progress) apply to every part (progress is reported as the
    /// sum over the connections).
    ///
    /// **Not atomic across connections.** Each part commits (or fails) on its own: if one
    /// connection's COPY fails, the parts of the others are still written. The outer `Result`
    /// fails only before any data is sent (the describe step, a type mismatch, or a
    /// [`Usage`](crate::ErrorKind::Usage) error: the same connection given twice, or a handle
    /// on a `Transaction`, which could not span the other connections). Otherwise the
    /// [`ParallelOutcome`] (`#[must_use]`) says what each connection did: check
    /// [`is_complete`](ParallelOutcome::is_complete) or call
    /// [`into_result`](ParallelOutcome::into_result). Use it for bulk loads that can be
    /// repeated or cleaned up, where the server's one backend per connection is the limit.
    ///
    /// The connections may come from a pool (`&*pooled` dereferences to a `Client`) or be
    /// opened for the load.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::BulkExt;
    ///
    /// #[derive(CopyRow)]
    /// struct Event { id: i64, kind: String }
    ///
    /// # async fn f(a: &tokio_postgres::Client, b: &tokio_postgres::Client,
    /// #            c: &tokio_postgres::Client, events: Vec<Event>) -> pgbulk::Result<()> {
    /// let outcome = a.bulk().copy_in_parallel(&[b, c], &events).await?;
    /// for part in outcome.parts() {
    ///     println!("connection {}: rows {:?} in {:?}", part.connection, part.rows, part.elapsed);
    /// }
    /// let written: u64 = outcome.into_result()?; // the first failed part, if any
    /// # Ok(()) }
    /// ```
    pub fn copy_in_parallel<'a, T>(
        &self,
        others: &'a [&'a Client],
        rows: &'a [T],
    ) -> impl Future<Output = Result<ParallelOutcome>> + Send + use<'a, 'c, T>
    where
        T: CopyRow + Sync,
    {
        let bulk = self.clone();
        async move {
            bulk.check_parallel(others)?;
            let mut driver = bulk.driver;
            let plan =
                plan::plan_copy_in::<_, T>(&mut driver, bulk.options.table_for::<T>()).await?;
            Ok(run(&bulk, others, &plan, rows).await)
        }
    }

    /// [`copy_in_parallel`](Bulk::copy_in_parallel) with a plan made earlier by
    /// [`plan`](Bulk::plan) (on any of the connections): no describe round trip.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::BulkExt;
    ///
    /// #[derive(CopyRow)]
    /// struct Event { id: i64, kind: String }
    ///
    /// # async fn f(a: &tokio_postgres::Client, b: &tokio_postgres::Client,
    /// #            batches: Vec<Vec<Event>>) -> pgbulk::Result<()> {
    /// let plan = a.bulk().plan::<Event>().await?;
    /// for batch in &batches {
    ///     a.bulk().copy_in_parallel_with_plan(&plan, &[b], batch).await?.into_result()?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn copy_in_parallel_with_plan<'a, T>(
        &self,
        plan: &'a Plan<T>,
        others: &'a [&'a Client],
        rows: &'a [T],
    ) -> impl Future<Output = Result<ParallelOutcome>> + Send + use<'a, 'c, T>
    where
        T: CopyRow + Sync,
    {
        let bulk = self.clone();
        async move {
            bulk.check_parallel(others)?;
            Ok(run(&bulk, others, plan, rows).await)
        }
    }

    /// Refuses a parallel load on a transaction's handle, or with one connection given twice.
    fn check_parallel(&self, others: &[&Client]) -> Result<()> {
        if self.in_transaction() {
            return Err(Error::usage(
                "copy_in_parallel runs one COPY per connection, each committed on its own: \
                 call it on a Client, not a Transaction (the other connections' parts could \
                 not be part of the transaction)",
            ));
        }
        let all: Vec<&Client> = std::iter::once(self.client())
            .chain(others.iter().copied())
            .collect();
        for (i, a) in all.iter().enumerate() {
            if let Some(j) = all[..i].iter().position(|b| std::ptr::eq(*a, *b)) {
                return Err(Error::usage(format!(
                    "copy_in_parallel got the same connection twice (connections {j} and {i}): \
                     give it distinct connections"
                )));
            }
        }
        Ok(())
    }
}

/// The parallel load itself: one `copy_in_with_plan` per connection, joined.
async fn run<T: CopyRow + Sync>(
    bulk: &Bulk<'_>,
    others: &[&Client],
    plan: &Plan<T>,
    rows: &[T],
) -> ParallelOutcome {
    let clients: Vec<&Client> = std::iter::once(bulk.client())
        .chain(others.iter().copied())
        .collect();
    let n = clients.len();
    let per = rows.len().div_ceil(n);
    let progress = bulk.options.progress.clone().map(|report| {
        let slots: Arc<[(AtomicU64, AtomicU64)]> = (0..n)
            .map(|_| (AtomicU64::new(0), AtomicU64::new(0)))
            .collect();
        (report, slots)
    });
    let parts = clients.iter().enumerate().map(|(connection, &client)| {
        let start = (connection * per).min(rows.len());
        let end = (start + per).min(rows.len());
        let mut options: Options<'_> = bulk.options.clone();
        // Each part reports its own totals; the caller sees the sum over the parts.
        options.progress = progress.clone().map(|(report, slots)| {
            let f: crate::ops::ProgressFn<'_> = Arc::new(move |p: Progress| {
                slots[connection].0.store(p.rows, Ordering::Relaxed);
                slots[connection].1.store(p.bytes, Ordering::Relaxed);
                let (rows, bytes) = slots.iter().fold((0, 0), |(r, b), (sr, sb)| {
                    (
                        r + sr.load(Ordering::Relaxed),
                        b + sb.load(Ordering::Relaxed),
                    )
                });
                report(Progress { rows, bytes });
            });
            f
        });
        let part = Bulk {
            options,
            ..client.bulk()
        };
        async move {
            let began = Instant::now();
            let result = part.copy_in_with_plan(plan, &rows[start..end]).await;
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
