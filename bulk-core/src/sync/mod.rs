//! The blocking API on the sync [`postgres`](https://docs.rs/postgres) crate's `Client` and
//! `Transaction` (feature `sync`): everything the async [`Bulk`](crate::Bulk) offers, with the
//! same checks, errors and guarantees.
//!
//! ```no_run
//! use bulk_core::sync::BulkExt;
//! # use bulk_core::CopyRow;
//! # fn run<T: bulk_core::FromCopyRow + Sync>(client: &mut postgres::Client, rows: Vec<T>) -> bulk_core::Result<()> {
//! client.bulk().copy_in(&rows)?;
//! let back: Vec<T> = client.bulk().copy_out::<T>()?;
//! for row in client.bulk().copy_out_iter::<T>()? {
//!     let row = row?;
//! }
//! let counts = client.bulk().upsert_via_staging(&rows)?;
//! # Ok(()) }
//! ```
//!
//! The operations are the async API's own, run to completion on the calling thread: the
//! target is checked before anything is sent, a COPY is all or nothing and returns the count
//! the server reports, and a staged operation runs in its own transaction on a `Client`
//! (refusing a transaction opened with a raw `BEGIN`, which it would otherwise commit) or a
//! savepoint on a `Transaction`.

use crate::client::sync::{block_on, SyncClient};
use crate::client::CopyOutData;
use crate::error::Result;
use crate::ops::copy_in::write_rows;
use crate::ops::copy_out::{self, Reading};
use crate::ops::quarantine::{self, QuarantineOutcome};
use crate::ops::upsert::{
    self,
    options::{UpsertCounts, UpsertOptions},
};
use crate::ops::{replace_all, Options, Progress};
use crate::plan::{self, Plan};
use crate::row::{CopyRow, FromCopyRow, FromCopyRowRef};
use postgres::GenericClient;
use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

/// Adds [`bulk`](BulkExt::bulk) to the sync `postgres` crate's `Client` and `Transaction`.
pub trait BulkExt: GenericClient + Send + Sized {
    /// A blocking bulk-copy handle on this client. Cheap: it borrows the client.
    fn bulk(&mut self) -> Bulk<'_, Self>;
}

impl BulkExt for postgres::Client {
    fn bulk(&mut self) -> Bulk<'_, Self> {
        Bulk::new(self, false)
    }
}

impl BulkExt for postgres::Transaction<'_> {
    fn bulk(&mut self) -> Bulk<'_, Self> {
        Bulk::new(self, true)
    }
}

/// Blocking typed binary COPY on one sync client; get one with [`BulkExt::bulk`].
#[must_use = "a Bulk handle does nothing until you call copy_in or copy_out on it"]
pub struct Bulk<'a, C> {
    driver: SyncClient<'a, C>,
    // 'static: a handle used as a temporary in a block's tail expression is dropped after the
    // block's locals, so it must not hold anything borrowed.
    options: Options<'static>,
}

impl<C> fmt::Debug for Bulk<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bulk")
            .field("in_transaction", &self.driver.in_transaction)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<'a, C: GenericClient + Send> Bulk<'a, C> {
    fn new(client: &'a mut C, in_transaction: bool) -> Self {
        Bulk {
            driver: SyncClient {
                client,
                in_transaction,
            },
            options: Options::default(),
        }
    }

    /// Uses `table` instead of the row type's `#[copy(table = "..")]`; see
    /// [`crate::Bulk::table`].
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.options.table = Some(table.into());
        self
    }

    /// Hands COPY data to the server in chunks of about `bytes` (default 256 KiB, at least
    /// 4 KiB).
    pub fn flush_bytes(mut self, bytes: usize) -> Self {
        self.options.set_flush_bytes(bytes);
        self
    }

    /// Calls `f` with the rows and bytes so far; see [`crate::Bulk::on_progress`].
    pub fn on_progress(mut self, f: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        self.options.progress = Some(Arc::new(f));
        self
    }

    /// Whether this handle runs inside a caller's transaction.
    pub fn in_transaction(&self) -> bool {
        self.driver.in_transaction
    }

    /// Describes `T`'s table and checks every field against its column; see
    /// [`crate::Bulk::plan`].
    pub fn plan<T: CopyRow + ?Sized>(&mut self) -> Result<Plan<T>> {
        let table = self.options.table_for::<T>().to_owned();
        block_on(plan::kept_plan::<_, T>(&mut self.driver, &table))
    }

    /// Writes `rows` with one binary `COPY .. FROM STDIN` and returns the number the server
    /// wrote; see [`crate::Bulk::copy_in`].
    pub fn copy_in<T, I>(&mut self, rows: I) -> Result<u64>
    where
        T: CopyRow,
        I: IntoIterator<Item = T>,
    {
        let rows = rows.into_iter();
        let table = self.options.table_for::<T>().to_owned();
        let hint = rows.size_hint().1;
        let plan = block_on(plan::plan_for_rows::<_, T>(&mut self.driver, &table, hint))?;
        self.copy_in_with_plan(&plan, rows)
    }

    /// [`copy_in`](Bulk::copy_in) with a plan made earlier by [`plan`](Bulk::plan).
    pub fn copy_in_with_plan<T, I>(&mut self, plan: &Plan<T>, rows: I) -> Result<u64>
    where
        T: CopyRow + ?Sized,
        I: IntoIterator,
        I::Item: Borrow<T>,
    {
        let (written, _) = block_on(write_rows(&mut self.driver, plan, &self.options, rows))?;
        Ok(written)
    }

    /// Reads all of `T`'s table (or the [`table`](Bulk::table) override); see
    /// [`crate::Bulk::copy_out`].
    pub fn copy_out<T: FromCopyRow>(&mut self) -> Result<Vec<T>> {
        self.copy_out_iter::<T>()?.collect()
    }

    /// Reads the rows of `query` into `T`; see [`crate::Bulk::copy_out_query`].
    pub fn copy_out_query<T: FromCopyRow>(&mut self, query: &str) -> Result<Vec<T>> {
        self.copy_out_query_iter::<T>(query)?.collect()
    }

    /// Reads the rows of `query` into `T`, with values for its `$n` parameters, written into
    /// the statement safely; see [`crate::Bulk::copy_out_query_params`].
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// use pgbulk::sync::BulkExt;
    /// # #[derive(bulk_derive::CopyRow)] struct User { id: i64 }
    /// # fn run(client: &mut postgres::Client) -> bulk_core::Result<()> {
    /// let users: Vec<User> =
    ///     client.bulk().copy_out_query_params::<User>("SELECT id FROM users WHERE id > $1", &[&100_i64])?;
    /// # Ok(()) }
    /// ```
    pub fn copy_out_query_params<T: FromCopyRow>(
        &mut self,
        query: &str,
        params: &[&(dyn postgres_types::ToSql + Sync)],
    ) -> Result<Vec<T>> {
        self.copy_out_query_params_iter::<T>(query, params)?
            .collect()
    }

    /// [`copy_out_query_params`](Bulk::copy_out_query_params) as an iterator: rows are decoded
    /// as they arrive.
    pub fn copy_out_query_params_iter<T: FromCopyRow>(
        &mut self,
        query: &str,
        params: &[&(dyn postgres_types::ToSql + Sync)],
    ) -> Result<CopyOutIter<'_, T>> {
        let bound = block_on(copy_out::bind_params(&mut self.driver, query, params))?;
        self.read_iter(&bound, None)
    }

    /// [`copy_out`](Bulk::copy_out) as an iterator: rows are decoded as they arrive.
    pub fn copy_out_iter<T: FromCopyRow>(&mut self) -> Result<CopyOutIter<'_, T>> {
        let (query, quoted) = plan::select_all::<T>(self.options.table_for::<T>())?;
        self.read_iter(&query, Some(&quoted))
    }

    /// [`copy_out_query`](Bulk::copy_out_query) as an iterator: rows are decoded as they
    /// arrive. Dropping it early stops reading; the client stays usable.
    pub fn copy_out_query_iter<T: FromCopyRow>(
        &mut self,
        query: &str,
    ) -> Result<CopyOutIter<'_, T>> {
        self.read_iter(query, None)
    }

    /// Reads every row of `T`'s table, each borrowing its text and byte fields from the
    /// received data, handing each to `f`; returns the number of rows. See
    /// [`crate::Bulk::copy_out_each`].
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// use pgbulk::sync::BulkExt;
    /// #[derive(bulk_derive::CopyRow)]
    /// #[copy(table = "users")]
    /// struct UserRef<'r> {
    ///     id: i64,
    ///     email: &'r str,
    /// }
    /// # fn run(client: &mut postgres::Client) -> bulk_core::Result<()> {
    /// let mut gmail = 0;
    /// client
    ///     .bulk()
    ///     .copy_out_each::<UserRef<'_>>(|user| gmail += usize::from(user.email.ends_with("@gmail.com")))?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`copy_out`](Bulk::copy_out); rows before a failing one have been handed to `f`.
    pub fn copy_out_each<T: FromCopyRowRef>(
        &mut self,
        f: impl for<'r> FnMut(T::Row<'r>),
    ) -> Result<u64> {
        let (query, quoted) = plan::select_all::<T>(self.options.table_for::<T>())?;
        self.each::<T>(&query, Some(&quoted), f)
    }

    /// [`copy_out_each`](Bulk::copy_out_each) for the rows of `query`; see
    /// [`crate::Bulk::copy_out_query_each`].
    ///
    /// # Errors
    /// As [`copy_out_query`](Bulk::copy_out_query).
    pub fn copy_out_query_each<T: FromCopyRowRef>(
        &mut self,
        query: &str,
        f: impl for<'r> FnMut(T::Row<'r>),
    ) -> Result<u64> {
        self.each::<T>(query, None, f)
    }

    /// The `_each` reads: the rows of `query`, decoded borrowing the data and handed to `f`.
    fn each<T: FromCopyRowRef>(
        &mut self,
        query: &str,
        table: Option<&str>,
        f: impl for<'r> FnMut(T::Row<'r>),
    ) -> Result<u64> {
        let (decoder, stream) = block_on(copy_out::start::<_, T>(&mut self.driver, query, table))?;
        let options = &self.options;
        let (rows, _) = block_on(Reading::new(decoder, stream, options).each(options, f))?;
        Ok(rows)
    }

    /// Reads `query`; `table` (quoted) when it is `copy_out`'s `SELECT` of a whole table.
    fn read_iter<T: FromCopyRow>(
        &mut self,
        query: &str,
        table: Option<&str>,
    ) -> Result<CopyOutIter<'_, T>> {
        let (decoder, stream) = block_on(copy_out::start::<_, T>(&mut self.driver, query, table))?;
        Ok(CopyOutIter {
            reading: Reading::new(decoder, stream, &self.options),
            options: self.options.clone(),
            done: false,
        })
    }

    /// Inserts `rows` or updates the rows with the same key, with the default
    /// [`UpsertOptions`]; see [`crate::Bulk::upsert_via_staging`].
    pub fn upsert_via_staging<T, I>(&mut self, rows: I) -> Result<UpsertCounts>
    where
        T: CopyRow + Send,
        I: IntoIterator<Item = T> + Send,
        I::IntoIter: Send,
    {
        self.upsert_via_staging_with(rows, &UpsertOptions::default())
    }

    /// [`upsert_via_staging`](Bulk::upsert_via_staging) with the conflict target and update
    /// set of `upsert` (what the async [`Upsert`](crate::Upsert) builder sets).
    pub fn upsert_via_staging_with<T, I>(
        &mut self,
        rows: I,
        upsert: &UpsertOptions,
    ) -> Result<UpsertCounts>
    where
        T: CopyRow + Send,
        I: IntoIterator<Item = T> + Send,
        I::IntoIter: Send,
    {
        block_on(upsert::counts(
            &mut self.driver,
            &self.options,
            upsert,
            rows,
        ))
    }

    /// Upserts like [`upsert_via_staging_with`](Bulk::upsert_via_staging_with) and hands back
    /// one `R` per inserted or updated row; see [`crate::Bulk::upsert_via_staging_returning`].
    /// With `input_order`, in the input order of the rows that won (see
    /// [`UpsertReturning::in_input_order`](crate::UpsertReturning::in_input_order)).
    pub fn upsert_via_staging_returning<R, T, I>(
        &mut self,
        rows: I,
        upsert: &UpsertOptions,
        input_order: bool,
    ) -> Result<Vec<R>>
    where
        R: FromCopyRow + Send,
        T: CopyRow + Send,
        I: IntoIterator<Item = T> + Send,
        I::IntoIter: Send,
    {
        block_on(upsert::returning(
            &mut self.driver,
            &self.options,
            upsert,
            input_order,
            rows,
        ))
    }

    /// Inserts `rows` through a staging table (a small batch: one bound `INSERT`) and hands
    /// back one `R` per row; see
    /// [`crate::Bulk::copy_in_returning`]. With `input_order`, rows are inserted and returned
    /// in input order.
    pub fn copy_in_returning<R, T, I>(&mut self, rows: I, input_order: bool) -> Result<Vec<R>>
    where
        R: FromCopyRow + Send,
        T: CopyRow + Send,
        I: IntoIterator<Item = T> + Send,
        I::IntoIter: Send,
    {
        block_on(upsert::insert_returning(
            &mut self.driver,
            &self.options,
            input_order,
            rows,
        ))
    }

    /// Quarantine mode: writes the good rows of `rows` and returns the bad ones with their
    /// index and reason; see [`crate::Quarantine::copy_in`]. `max_rejected` is
    /// [`Quarantine::max_rejected`](crate::Quarantine::max_rejected).
    pub fn quarantine_copy_in<T, I>(
        &mut self,
        rows: I,
        max_rejected: Option<usize>,
    ) -> Result<QuarantineOutcome>
    where
        T: CopyRow + Send,
        I: IntoIterator<Item = T> + Clone + Send + Sync,
        I::IntoIter: Send,
    {
        let plan = self.plan::<T>()?;
        block_on(quarantine::run(
            &mut self.driver,
            &plan,
            &self.options,
            rows,
            max_rejected,
        ))
    }

    /// Replaces the contents of `T`'s table with `rows` (`TRUNCATE`, then `COPY .. FREEZE`);
    /// on a `Transaction` only. See [`crate::Bulk::replace_all`].
    pub fn replace_all<T, I>(&mut self, rows: I) -> Result<u64>
    where
        T: CopyRow,
        I: IntoIterator,
        I::Item: Borrow<T>,
    {
        block_on(replace_all::run::<_, T, I>(
            &mut self.driver,
            &self.options,
            rows,
        ))
        .map(|(rows, _)| rows)
    }
}

/// The rows of a blocking [`copy_out_iter`](Bulk::copy_out_iter), as an iterator of
/// `Result<T>`; after an error, `None`.
pub struct CopyOutIter<'b, T> {
    reading: Reading<T, CopyOutData<'b>>,
    options: Options<'b>,
    done: bool,
}

impl<T: FromCopyRow> Iterator for CopyOutIter<'_, T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        if self.done {
            return None;
        }
        let next = block_on(self.reading.next_row(&self.options)).transpose();
        if !matches!(next, Some(Ok(_))) {
            self.done = true;
        }
        next
    }
}

impl<T> fmt::Debug for CopyOutIter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CopyOutIter")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}
