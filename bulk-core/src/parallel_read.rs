//! [`copy_out_parallel`]: one table read over several connections that all see one snapshot.

use crate::bulk::BulkExt;
use crate::error::{Error, Result};
use crate::plan;
use crate::row::FromCopyRow;
use crate::sql::ident;
use futures_util::FutureExt;
use std::fmt::Display;
use std::sync::PoisonError;
use tokio_postgres::{Client, SimpleQueryMessage};

/// How the table is cut into parts.
#[derive(Debug, Clone)]
enum Split {
    /// One range of physical blocks per connection (TID range scans, PostgreSQL 14+).
    Blocks,
    /// Ranges of a key column: the bounds, as SQL literals, in ascending order.
    Key { column: String, bounds: Vec<String> },
}

/// A parallel read being set up; see [`copy_out_parallel`].
#[derive(Debug)]
#[must_use = "a parallel read does nothing until one of its reading methods is awaited"]
pub struct ParallelRead<'a> {
    clients: &'a [&'a Client],
    table: Option<String>,
    split: Split,
}

/// Reads a whole table into `T` over several connections at once, every connection seeing the
/// **same snapshot**: the result is exactly what one `copy_out` at one instant would return,
/// even while other sessions write to the table.
///
/// How: the first connection opens a `REPEATABLE READ READ ONLY` transaction and exports its
/// snapshot (`pg_export_snapshot()`); the others open the same kind of transaction and import
/// it (`SET TRANSACTION SNAPSHOT`). The table is cut into one part per connection — by default
/// ranges of its physical blocks, sized from the relation's current size on disk
/// (`pg_relation_size`, not the planner's possibly stale `relpages`), the last range
/// open-ended, each read with a TID range scan (`WHERE ctid >= '(a,0)' AND ctid < '(b,0)'`,
/// PostgreSQL 14 or later) — or, with [`key_ranges`](ParallelRead::key_ranges), ranges of a
/// key column the caller names. Each part is one binary `COPY (SELECT ..) TO STDOUT` on its
/// connection, all running concurrently on the calling task. The transactions end (read-only:
/// rolled back) when the read ends, on error too, and when the future is dropped.
///
/// **Order is not promised**: rows arrive interleaved across parts. Use
/// [`for_each`](ParallelRead::for_each) (each row with its part index, as it arrives),
/// [`collect_parts`](ParallelRead::collect_parts) (one `Vec` per part) or
/// [`collect_vec`](ParallelRead::collect_vec) (every row, as they arrive).
///
/// The connections must be distinct and not inside a transaction. Through a pooler in
/// transaction mode (PgBouncer) it works as each part runs inside its own transaction; a
/// pooler in statement mode refuses the transactions, which is returned as an error. On a
/// server older than PostgreSQL 14 the block split is refused with an
/// [`ErrorKind::Usage`](crate::ErrorKind::Usage) error (no TID range scans there); use
/// [`key_ranges`](ParallelRead::key_ranges).
///
/// Whether it is faster depends on where the time goes: each part costs a server backend and
/// client decoding, so it helps when the server (or the network) is the limit and cores are
/// free; see BENCHMARKS.md for measurements.
///
/// ```no_run
/// # extern crate bulk_core as pgbulk;
/// # use bulk_derive::CopyRow;
/// #[derive(CopyRow)]
/// struct Event { id: i64, kind: String }
///
/// # async fn f(a: &tokio_postgres::Client, b: &tokio_postgres::Client) -> pgbulk::Result<()> {
/// let events: Vec<Event> = pgbulk::copy_out_parallel(&[a, b]).collect_vec().await?;
/// # Ok(()) }
/// ```
pub fn copy_out_parallel<'a>(clients: &'a [&'a Client]) -> ParallelRead<'a> {
    ParallelRead {
        clients,
        table: None,
        split: Split::Blocks,
    }
}

impl<'a> ParallelRead<'a> {
    /// Reads this table instead of the row type's own.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// # #[derive(CopyRow)] #[copy(table = "events")] struct Event { id: i64, kind: String }
    /// # async fn f(a: &tokio_postgres::Client, b: &tokio_postgres::Client) -> pgbulk::Result<()> {
    /// let old: Vec<Event> = pgbulk::copy_out_parallel(&[a, b]).table("archive.events").collect_vec().await?;
    /// # Ok(()) }
    /// ```
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = Some(table.into());
        self
    }

    /// Cuts the table by ranges of `column` instead of physical blocks: `bounds` (ascending)
    /// make `bounds.len() + 1` parts — `column < b0`, `b0 <= column < b1`, …, `column >= bn`;
    /// rows whose `column` is NULL are read with the last part. Each bound is sent as an SQL
    /// literal the server converts to the column's type (`1000`, `"2024-01-01"`). Parts are
    /// dealt to the connections in turn; a connection reads its parts one after another.
    /// Works on any supported server version.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// # #[derive(CopyRow)] #[copy(table = "events")] struct Event { id: i64, kind: String }
    /// # async fn f(a: &tokio_postgres::Client, b: &tokio_postgres::Client) -> pgbulk::Result<()> {
    /// // Three parts: id < 1000000, 1000000 <= id < 2000000, id >= 2000000 (and NULL ids).
    /// let events: Vec<Event> = pgbulk::copy_out_parallel(&[a, b])
    ///     .key_ranges("id", [1_000_000, 2_000_000])
    ///     .collect_vec()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn key_ranges<B: Display>(
        mut self,
        column: &str,
        bounds: impl IntoIterator<Item = B>,
    ) -> Self {
        self.split = Split::Key {
            column: column.to_owned(),
            bounds: bounds
                .into_iter()
                .map(|b| ident::literal(&b.to_string()))
                .collect(),
        };
        self
    }

    /// Reads every row, calling `f(part, row)` as each arrives; returns the rows read per
    /// part. Stops at the first error (of any part).
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// # #[derive(CopyRow)] #[copy(table = "events")] struct Event { id: i64, kind: String }
    /// # async fn f(a: &tokio_postgres::Client, b: &tokio_postgres::Client) -> pgbulk::Result<()> {
    /// let mut clicks = 0;
    /// let per_part = pgbulk::copy_out_parallel(&[a, b])
    ///     .for_each(|_part, event: Event| clicks += u64::from(event.kind == "click"))
    ///     .await?;
    /// println!("{clicks} clicks in {} rows", per_part.iter().sum::<u64>());
    /// # Ok(()) }
    /// ```
    pub async fn for_each<T, F>(self, mut f: F) -> Result<Vec<u64>>
    where
        T: FromCopyRow + Send + 'a,
        F: FnMut(usize, T),
    {
        if self.clients.is_empty() {
            return Err(Error::usage(
                "copy_out_parallel needs at least one connection",
            ));
        }
        let table = self
            .table
            .as_deref()
            .unwrap_or(T::__PGBULK_TABLE)
            .to_owned();
        let (select, quoted) = plan::select_all::<T>(&table)?;
        let mut open = Open {
            clients: self.clients,
            begun: 0,
        };
        let queries = open.begin(&quoted, &self.split, &select).await?;
        // One lane per connection runs its parts one after another; the lanes run together,
        // polled by this task. Each lane hands over every row that has arrived per wake-up
        // under one lock (one task: never contended), not one merged-stream poll per row.
        let merged = std::sync::Mutex::new((&mut f, vec![0u64; queries.len()]));
        let lanes = (0..self.clients.len()).map(|lane| {
            let (client, queries, merged) = (self.clients[lane], &queries, &merged);
            async move {
                for part in (lane..queries.len()).step_by(self.clients.len()) {
                    let rows = client.bulk().copy_out_query::<T>(queries[part].clone());
                    rows.for_each_batch(BATCH, |batch| {
                        let mut merged = merged.lock().unwrap_or_else(PoisonError::into_inner);
                        let (f, counts) = &mut *merged;
                        counts[part] += batch.len() as u64;
                        for row in batch.drain(..) {
                            f(part, row);
                        }
                    })
                    .await
                    .map_err(|e| e.context(format!("parallel read, part {part}")))?;
                }
                Ok::<(), Error>(())
            }
        });
        // The first error drops the other lanes, which stops their reads.
        let read = futures_util::future::try_join_all(lanes).await;
        let counts = merged
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
            .1;
        let ended = open.end().await;
        read?;
        ended.map(|()| counts)
    }

    /// Reads every row into one `Vec` per part (block ranges in table order, or key ranges
    /// in bound order).
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// # #[derive(CopyRow)] #[copy(table = "events")] struct Event { id: i64, kind: String }
    /// # async fn f(a: &tokio_postgres::Client, b: &tokio_postgres::Client) -> pgbulk::Result<()> {
    /// let parts: Vec<Vec<Event>> = pgbulk::copy_out_parallel(&[a, b]).collect_parts().await?;
    /// # Ok(()) }
    /// ```
    pub async fn collect_parts<T>(self) -> Result<Vec<Vec<T>>>
    where
        T: FromCopyRow + Send + 'a,
    {
        let mut parts: Vec<Vec<T>> = Vec::new();
        self.for_each(|part, row| {
            if parts.len() <= part {
                parts.resize_with(part + 1, Vec::new);
            }
            parts[part].push(row);
        })
        .await
        .map(|counts| {
            parts.resize_with(counts.len(), Vec::new);
            parts
        })
    }

    /// Reads every row into one `Vec`, in the order they arrive (interleaved across parts;
    /// within a part, the order the server sent).
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// # #[derive(CopyRow)] #[copy(table = "events")] struct Event { id: i64, kind: String }
    /// # async fn f(a: &tokio_postgres::Client, b: &tokio_postgres::Client) -> pgbulk::Result<()> {
    /// let events: Vec<Event> = pgbulk::copy_out_parallel(&[a, b]).collect_vec().await?;
    /// # Ok(()) }
    /// ```
    pub async fn collect_vec<T>(self) -> Result<Vec<T>>
    where
        T: FromCopyRow + Send + 'a,
    {
        let mut rows = Vec::new();
        self.for_each(|_, row| rows.push(row)).await?;
        Ok(rows)
    }
}

/// The most rows a lane hands over at once (a bound on the rows held per lane).
const BATCH: usize = 1024;

/// How each connection's transaction starts.
const BEGIN: &str = "BEGIN; SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY";

/// The context of an error starting a transaction or importing the snapshot.
const BEGIN_FAILED: &str = "parallel read: starting a snapshot transaction failed (each \
     connection must be distinct and outside any transaction)";

/// The transactions of a parallel read: rolled back by [`end`](Open::end), or queued for
/// rollback when dropped before it (a future dropped mid-read).
struct Open<'a> {
    clients: &'a [&'a Client],
    /// How many of `clients` (from the first) have a transaction open.
    begun: usize,
}

impl Open<'_> {
    /// Opens the snapshot on every connection; returns each part's query.
    /// `quoted`: the table's quoted name.
    async fn begin(&mut self, quoted: &str, split: &Split, select: &str) -> Result<Vec<String>> {
        let first = self.clients[0];
        // `SET TRANSACTION` fails when the connection was already inside a transaction that
        // ran a query (a plain `BEGIN` would only warn, and the read would not be one snapshot).
        self.begun = 1;
        first
            .batch_execute(BEGIN)
            .await
            .map_err(|e| Error::pg(BEGIN_FAILED, e))?;
        let sql = format!(
            "SELECT pg_export_snapshot(), current_setting('server_version_num'), \
             pg_relation_size({}::regclass) / current_setting('block_size')::int8",
            ident::literal(quoted)
        );
        let row = first
            .simple_query(&sql)
            .await
            .map_err(|e| Error::pg("parallel read: exporting the snapshot failed", e))?
            .into_iter()
            .find_map(|m| match m {
                SimpleQueryMessage::Row(row) => Some(
                    (0..3)
                        .map(|i| row.get(i).unwrap_or_default().to_owned())
                        .collect::<Vec<_>>(),
                ),
                _ => None,
            })
            .ok_or_else(|| Error::protocol("parallel read: the snapshot query returned no row"))?;
        let (snapshot, version, blocks) = (&row[0], &row[1], &row[2]);
        let version: u32 = version.parse().unwrap_or(0);
        let blocks: u64 = blocks.parse().unwrap_or(0);
        let queries = match split {
            Split::Blocks if version < 140_000 => {
                return Err(Error::usage(format!(
                    "parallel read by block ranges needs PostgreSQL 14 or later (TID range \
                     scans); the server is version {version}: use key_ranges"
                )))
            }
            Split::Blocks => block_queries(select, blocks, self.clients.len()),
            Split::Key { column, bounds } => key_queries(select, &ident::quote(column), bounds),
        };
        let import = format!(
            "{BEGIN}; SET TRANSACTION SNAPSHOT {}",
            ident::literal(snapshot)
        );
        let others = &self.clients[1..];
        let imported =
            futures_util::future::join_all(others.iter().map(|c| c.batch_execute(&import))).await;
        // Every connection that ran BEGIN has a transaction to end, whatever its import did.
        self.begun = self.clients.len();
        for result in imported {
            result.map_err(|e| Error::pg(BEGIN_FAILED, e))?;
        }
        Ok(queries)
    }

    /// Ends every transaction; the first failure is returned.
    async fn end(mut self) -> Result<()> {
        let begun = std::mem::take(&mut self.begun);
        let ended = futures_util::future::join_all(
            self.clients[..begun]
                .iter()
                .map(|c| c.batch_execute("ROLLBACK")),
        )
        .await;
        for result in ended {
            result.map_err(|e| Error::pg("parallel read: ending its transaction failed", e))?;
        }
        Ok(())
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        for client in &self.clients[..self.begun] {
            // Queued without waiting, as the drivers do for an operation's own transaction.
            let _ = client.batch_execute("ROLLBACK").now_or_never();
        }
    }
}

/// One query per part: `parts` ranges of `blocks` blocks, the last open-ended (the table may
/// have grown since its size was read; rows past the snapshot are not visible anyway).
fn block_queries(select: &str, blocks: u64, parts: usize) -> Vec<String> {
    let parts = parts as u64;
    let per = blocks.div_ceil(parts).max(1);
    (0..parts)
        .map(|i| {
            let from = i * per;
            let lower = format!("ctid >= '({from},0)'::tid");
            if i + 1 == parts {
                if i == 0 {
                    select.to_owned()
                } else {
                    format!("{select} WHERE {lower}")
                }
            } else {
                let to = (i + 1) * per;
                let upper = format!("ctid < '({to},0)'::tid");
                if i == 0 {
                    format!("{select} WHERE {upper}")
                } else {
                    format!("{select} WHERE {lower} AND {upper}")
                }
            }
        })
        .collect()
}

/// One query per key range: below the first bound, between each pair, from the last bound
/// on (with the NULLs).
fn key_queries(select: &str, column: &str, bounds: &[String]) -> Vec<String> {
    let mut queries = Vec::with_capacity(bounds.len() + 1);
    let mut lower: Option<&String> = None;
    for bound in bounds {
        queries.push(match lower {
            None => format!("{select} WHERE {column} < {bound}"),
            Some(l) => format!("{select} WHERE {column} >= {l} AND {column} < {bound}"),
        });
        lower = Some(bound);
    }
    queries.push(match lower {
        None => select.to_owned(),
        Some(l) => format!("{select} WHERE {column} >= {l} OR {column} IS NULL"),
    });
    queries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_ranges_cover_the_table_and_the_last_is_open() {
        let q = block_queries("SELECT a FROM t", 10, 3);
        assert_eq!(
            q,
            [
                "SELECT a FROM t WHERE ctid < '(4,0)'::tid",
                "SELECT a FROM t WHERE ctid >= '(4,0)'::tid AND ctid < '(8,0)'::tid",
                "SELECT a FROM t WHERE ctid >= '(8,0)'::tid",
            ]
        );
        assert_eq!(block_queries("S", 0, 1), ["S"]);
        // An empty table still gets one query per connection, the last open-ended.
        assert_eq!(block_queries("S", 0, 2)[1], "S WHERE ctid >= '(1,0)'::tid");
    }

    #[test]
    fn key_ranges_cover_every_value_and_null() {
        let q = key_queries("S", "\"id\"", &["10".into(), "20".into()]);
        assert_eq!(
            q,
            [
                "S WHERE \"id\" < 10",
                "S WHERE \"id\" >= 10 AND \"id\" < 20",
                "S WHERE \"id\" >= 20 OR \"id\" IS NULL",
            ]
        );
    }
}
