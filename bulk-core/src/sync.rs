//! Blocking `copy_in`, `copy_out` and `upsert_via_staging` on the sync
//! [`postgres`](https://docs.rs/postgres) crate's `Client` and `Transaction` (feature `sync`).
//!
//! ```no_run
//! use bulk_core::sync::BulkExt;
//! # use bulk_core::CopyRow;
//! # fn run<T: bulk_core::FromCopyRow>(client: &mut postgres::Client, rows: Vec<T>) -> bulk_core::Result<()> {
//! client.bulk().copy_in(&rows)?;
//! let back: Vec<T> = client.bulk().copy_out::<T>()?;
//! let counts = client.bulk().upsert_via_staging(&rows)?;
//! # Ok(()) }
//! ```
//!
//! The same plans, codecs, SQL and guarantees as the async [`Bulk`](crate::Bulk): the target is
//! checked before anything is sent, a COPY is all or nothing, and an upsert runs in its own
//! transaction on a `Client` or a savepoint on a `Transaction`, so its staging table is gone
//! when it returns (dropping the `postgres` transaction rolls it back).
//!
//! The `postgres` crate does not hand out its inner tokio-postgres client, so this is its own
//! blocking driver over `postgres::GenericClient` (`CopyInWriter` / `CopyOutReader`), not the
//! async code run on a runtime.

use crate::bulk::{server_error, DEFAULT_FLUSH_BYTES};
use crate::copy_start::{refusal_columns, REFUSAL_SQL};
use crate::error::{Error, Result};
use crate::format::{self, Next, TupleReader};
use crate::ident;
use crate::plan::{self, Plan};
use crate::row::{CopyRow, FromCopyRow, RawRow};
use crate::server::{self, ServerVersion};
use crate::upsert::{self, KeyScan, Merge, Stage, UpsertCounts, UpsertOptions};
use bytes::BytesMut;
use postgres::GenericClient;
use postgres_types::Type;
use std::borrow::Borrow;
use std::fmt;
use std::io::{BufRead, Write};

/// Adds [`bulk`](BulkExt::bulk) to the sync `postgres` crate's `Client` and `Transaction`.
pub trait BulkExt: GenericClient + Sized {
    /// A blocking bulk-copy handle on this client. Cheap: it borrows the client.
    fn bulk(&mut self) -> Bulk<'_, Self>;
}

impl BulkExt for postgres::Client {
    fn bulk(&mut self) -> Bulk<'_, Self> {
        Bulk::new(self)
    }
}

impl BulkExt for postgres::Transaction<'_> {
    fn bulk(&mut self) -> Bulk<'_, Self> {
        Bulk::new(self)
    }
}

/// Blocking typed binary COPY on one sync client; get one with [`BulkExt::bulk`].
#[must_use = "a Bulk handle does nothing until you call copy_in or copy_out on it"]
pub struct Bulk<'a, C> {
    client: &'a mut C,
    table: Option<String>,
    flush_bytes: usize,
}

impl<C> fmt::Debug for Bulk<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bulk")
            .field("table", &self.table)
            .field("flush_bytes", &self.flush_bytes)
            .finish_non_exhaustive()
    }
}

impl<'a, C: GenericClient> Bulk<'a, C> {
    fn new(client: &'a mut C) -> Self {
        Bulk {
            client,
            table: None,
            flush_bytes: DEFAULT_FLUSH_BYTES,
        }
    }

    /// Uses `table` instead of the row type's `#[copy(table = "..")]`; see
    /// [`crate::Bulk::table`].
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = Some(table.into());
        self
    }

    /// Hands COPY data to the server in chunks of about `bytes` (default 256 KiB, at least
    /// 4 KiB).
    pub fn flush_bytes(mut self, bytes: usize) -> Self {
        self.flush_bytes = bytes.max(4096);
        self
    }

    fn table_for<T: CopyRow + ?Sized>(&self) -> &str {
        self.table.as_deref().unwrap_or(T::TABLE)
    }

    /// Describes `T`'s table and checks every field against its column; see
    /// [`crate::Bulk::plan`].
    pub fn plan<T: CopyRow + ?Sized>(&mut self) -> Result<Plan<T>> {
        let quoted = ident::quote_table(self.table_for::<T>())?;
        if T::COLUMNS.is_empty() {
            return Err(Error::usage(format!(
                "`{}` has no copied fields",
                plan::short_type_name::<T>()
            )));
        }
        let stmt = self
            .client
            .prepare(&plan::describe_table_sql(&quoted))
            .map_err(|e| Error::pg(&format!("cannot describe table {quoted}"), e))?;
        let plan = plan::check_copy_in::<T>(quoted, stmt.columns())?;
        // A blocking client cannot pipeline: ask only when a column's values depend on it.
        if !server::version_matters(plan.types()) {
            return Ok(plan);
        }
        let version = self
            .client
            .simple_query(server::VERSION_SQL)
            .map_err(|e| Error::pg("cannot read the server's version", e))?;
        Ok(plan.for_server(ServerVersion::from_reply(&version)?))
    }

    /// Writes `rows` with one binary `COPY .. FROM STDIN`; see [`crate::Bulk::copy_in`].
    pub fn copy_in<T, I>(&mut self, rows: I) -> Result<u64>
    where
        T: CopyRow,
        I: IntoIterator<Item = T>,
    {
        let plan = self.plan::<T>()?;
        self.copy_in_with_plan(&plan, rows)
    }

    /// [`copy_in`](Bulk::copy_in) with a plan made earlier by [`plan`](Bulk::plan).
    pub fn copy_in_with_plan<T, I>(&mut self, plan: &Plan<T>, rows: I) -> Result<u64>
    where
        T: CopyRow + ?Sized,
        I: IntoIterator,
        I::Item: Borrow<T>,
    {
        let flush = self.flush_bytes;
        write_copy(&mut *self.client, plan, flush, rows, |row, buf, n| {
            crate::row::encode_tuple::<T>(row.borrow(), plan.types(), plan.server(), buf, n)
        })
    }

    /// Reads all of `T`'s table (or the [`table`](Bulk::table) override); see
    /// [`crate::Bulk::copy_out`].
    pub fn copy_out<T: FromCopyRow>(&mut self) -> Result<Vec<T>> {
        let table = self.table_for::<T>();
        let query = plan::select_all::<T>(table)?;
        let quoted = ident::quote_table(table)?;
        match read_copy(&mut *self.client, &query) {
            Err(e) if plan::is_undefined_column(&e) => {
                let described = self
                    .client
                    .prepare(&plan::describe_table_sql(&quoted))
                    .map_err(|e| Error::pg(&format!("cannot describe table {quoted}"), e))?;
                Err(plan::missing_columns::<T>(&quoted, described.columns(), e))
            }
            read => read,
        }
    }

    /// Reads the rows of `query` into `T`; see [`crate::Bulk::copy_out_query`].
    pub fn copy_out_query<T: FromCopyRow>(&mut self, query: &str) -> Result<Vec<T>> {
        read_copy(&mut *self.client, query)
    }

    /// Inserts `rows` or updates the rows with the same key, with the default
    /// [`UpsertOptions`]; see [`crate::Bulk::upsert_via_staging`] for what it does.
    pub fn upsert_via_staging<T, I>(&mut self, rows: I) -> Result<UpsertCounts>
    where
        T: CopyRow,
        I: IntoIterator<Item = T>,
    {
        self.upsert_via_staging_with(rows, &UpsertOptions::default())
    }

    /// [`upsert_via_staging`](Bulk::upsert_via_staging) with a conflict target or update set
    /// of your choice.
    pub fn upsert_via_staging_with<T, I>(
        &mut self,
        rows: I,
        options: &UpsertOptions,
    ) -> Result<UpsertCounts>
    where
        T: CopyRow,
        I: IntoIterator<Item = T>,
    {
        let target_plan = self.plan::<T>()?;
        let target = target_plan.table().to_owned();
        let keys = match options.constraint() {
            Some(name) => Some(
                self.client
                    .query(upsert::CONSTRAINT_COLUMNS_SQL, &[&target, &name])
                    .map_err(|e| Error::pg("cannot look up the conflict constraint", e))?
                    .iter()
                    .map(|r| r.get(0))
                    .collect(),
            ),
            None => None,
        };
        let merge = Merge::new(&target_plan, options, keys)?;
        let stage = Stage::new();
        let flush = self.flush_bytes;
        // BEGIN on a client, SAVEPOINT in a transaction; dropped on error = rolled back, which
        // also undoes the staging table's creation.
        let mut tx = self
            .client
            .transaction()
            .map_err(|e| Error::pg("cannot open the upsert's transaction", e))?;
        tx.batch_execute(&stage.create_sql::<T>(&target))
            .map_err(|e| Error::pg("cannot create the staging table", e))?;
        let stage_plan = stage.plan(&target_plan);
        let mut scan = KeyScan::new(Some(&merge), target_plan.types());
        let mut bytes = 0u64;
        let staged = write_copy(&mut tx, &stage_plan, flush, rows, |row, buf, n| {
            let start = buf.len();
            let encoded = upsert::encode_staged(&row, &stage_plan, n, buf, &mut scan);
            bytes += (buf.len() - start) as u64;
            encoded
        })?;
        // As the async driver: retried with the next dedupe when the server finds a key twice.
        let mut dedupe = Merge::first_dedupe(&scan);
        let (messages, batch) = loop {
            let batch = merge.counts_batch(&stage.table, dedupe, &scan, bytes);
            let sql = format!("{}; DROP TABLE {}", batch.sql, stage.table);
            let failed = match tx.simple_query(&sql) {
                Ok(messages) => break (messages, batch),
                Err(e) => Error::pg(upsert::MERGE_FAILED, e),
            };
            match merge.next_dedupe(dedupe, &scan) {
                Some(next) if upsert::is_key_twice(failed.code()) => {
                    tx.batch_execute(upsert::MERGE_RETRY_SQL)
                        .map_err(|e| Error::pg(upsert::MERGE_FAILED, e))?;
                    dedupe = next;
                }
                _ => return Err(merge.refine_error(&scan, failed)),
            }
        };
        let counts = upsert::parse_counts(&messages, &batch, staged)?;
        tx.commit()
            .map_err(|e| Error::pg("cannot commit the upsert", e))?;
        Ok(counts)
    }
}

/// One binary COPY of `rows` through `encode` (which writes one tuple for the `n`-th row).
fn write_copy<C, T, I>(
    client: &mut C,
    plan: &Plan<T>,
    flush: usize,
    rows: I,
    mut encode: impl FnMut(I::Item, &mut BytesMut, u64) -> Result<()>,
) -> Result<u64>
where
    C: GenericClient,
    T: CopyRow + ?Sized,
    I: IntoIterator,
{
    let mut writer = start_copy_in(client, plan)?;
    let mut buf = BytesMut::with_capacity(flush + flush / 4);
    format::write_header(&mut buf);
    let mut count = 0u64;
    let io = |e: std::io::Error| match pg_error(e) {
        Ok(pg) => server_error::<T>(pg),
        Err(other) => Error::protocol(format!("COPY FROM STDIN failed: {other}")),
    };
    for (n, row) in (0u64..).zip(rows) {
        encode(row, &mut buf, n)?;
        count = n + 1;
        if buf.len() >= flush {
            writer.write_all(&buf).map_err(io)?;
            buf.clear();
        }
    }
    format::write_trailer(&mut buf);
    writer.write_all(&buf).map_err(io)?;
    let written = writer.finish().map_err(server_error::<T>)?;
    debug_assert_eq!(written, count);
    Ok(count)
}

/// Starts `plan`'s COPY; a COPY the server would refuse at its start is refused in step, as
/// in the async API (see `copy_start`). The sync client cannot pipeline, so the check costs
/// a round trip of its own.
fn start_copy_in<'c, C, T>(client: &'c mut C, plan: &Plan<T>) -> Result<postgres::CopyInWriter<'c>>
where
    C: GenericClient,
    T: CopyRow + ?Sized,
{
    const FAILED: &str = "COPY FROM STDIN failed";
    let table = plan.table();
    let columns = refusal_columns::<T>();
    let refused = client
        .query_typed_one(
            REFUSAL_SQL,
            &[(&table, Type::TEXT), (&columns, Type::TEXT_ARRAY)],
        )
        .map_err(|e| Error::pg(FAILED, e))?
        .get::<_, bool>(0);
    if refused {
        // Refused as a simple query: one answer, the server's own error.
        return Err(match client.simple_query(plan.copy_statement()) {
            Err(e) if e.as_db_error().is_some() => Error::pg(FAILED, e),
            Err(e) => Error::pg(FAILED, e).connection_lost(LOST),
            Ok(_) => Error::protocol(format!(
                "{FAILED}: the server started a COPY it was expected to refuse"
            ))
            .connection_lost(LOST),
        });
    }
    client.copy_in(plan.copy_statement()).map_err(|e| {
        let err = Error::pg(FAILED, e);
        // Refused after all (a lock timeout, ..): the server answered the abandoned COPY's
        // second `Sync` too, and no later answer on this client would be its own.
        if err.kind() == crate::ErrorKind::Db {
            err.connection_lost(LOST)
        } else {
            err
        }
    })
}

/// Why a sync client cannot be used after some refused COPYs.
const LOST: &str = "the refused COPY left the connection out of step with the server; drop this \
                    client and connect again";

/// The tokio-postgres error inside an I/O error of the `postgres` crate's COPY reader/writer.
fn pg_error(e: std::io::Error) -> std::result::Result<tokio_postgres::Error, String> {
    let text = e.to_string();
    match e
        .into_inner()
        .map(<dyn std::error::Error + Send + Sync>::downcast)
    {
        Some(Ok(pg)) => Ok(*pg),
        _ => Err(text),
    }
}

/// Reads `query` with binary `COPY (query) TO STDOUT` into `T`s.
fn read_copy<C: GenericClient, T: FromCopyRow>(client: &mut C, query: &str) -> Result<Vec<T>> {
    let query = query.trim().trim_end_matches(';').trim_end();
    if T::COLUMNS.is_empty() {
        return Err(Error::usage(format!(
            "`{}` has no copied fields",
            plan::short_type_name::<T>()
        )));
    }
    let stmt = client.prepare(query).map_err(plan::describe_error)?;
    let plan = plan::check_copy_out::<T>(query, &stmt)?;
    drop(stmt);
    let mut reader = client
        .copy_out(plan.copy_sql.as_str())
        .map_err(|e| Error::pg("COPY TO STDOUT failed", e))?;
    let mut tuples = TupleReader::new(plan.map.len());
    let mut slots = plan.slots();
    let mut out = Vec::new();
    loop {
        let row = out.len() as u64;
        let next = tuples
            .next_tuple(&plan.map, &mut slots)
            .map_err(|e| Error::protocol(e.to_string()).with_row(row))?;
        match next {
            Next::Tuple => {
                let raw = RawRow::new(tuples.tuple_bytes(), &slots);
                out.push(crate::row::decode_tuple::<T>(raw, &plan.types, row)?);
            }
            Next::NeedMore | Next::End => {
                let chunk = reader.fill_buf().map_err(|e| match pg_error(e) {
                    Ok(pg) => Error::pg("COPY TO STDOUT failed", pg).with_row(row),
                    Err(other) => {
                        Error::protocol(format!("COPY TO STDOUT failed: {other}")).with_row(row)
                    }
                })?;
                if chunk.is_empty() {
                    if next == Next::End {
                        return Ok(out);
                    }
                    return Err(Error::protocol("COPY data ended before its trailer").with_row(row));
                }
                if next == Next::End {
                    return Err(Error::protocol("COPY data continues after its trailer"));
                }
                tuples.feed(chunk);
                let len = chunk.len();
                reader.consume(len);
            }
        }
    }
}
