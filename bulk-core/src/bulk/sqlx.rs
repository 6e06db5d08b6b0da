//! [`SqlxBulk`]: pgbulk on sqlx 0.9 (feature `sqlx`) — `bulk()` on a `PgConnection`, a
//! `Transaction<'_, Postgres>`, a `PoolConnection<Postgres>` or a `&PgPool`, with the same
//! operations, checks and errors as on tokio-postgres, through the same code (`ops`).

use crate::bulk::upsert::{option_setters, setter_example};
use crate::client::sqlx::{Conn, SqlxConn};
use crate::client::Driver as _;
use crate::error::Result;
use crate::ops::copy_in::{write_rows, write_stream};
use crate::ops::copy_out::{self, Reading};
use crate::ops::quarantine::{self, QuarantineOutcome};
use crate::ops::replace_all;
use crate::ops::upsert::{self, options::UpsertCounts, options::UpsertOptions};
use crate::ops::{Options, Progress, ProgressFn};
use crate::plan::{self, Plan};
use crate::row::{CopyRow, FromCopyRow, FromCopyRowRef};
use crate::trace::{self, Op, OpKind};
use ::sqlx::pool::PoolConnection;
use ::sqlx::postgres::{PgConnection, PgPool, Postgres};
use ::sqlx::Transaction;
use futures_util::Stream;
use std::borrow::Borrow;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// Adds [`bulk`](SqlxBulkExt::bulk) to sqlx: `conn.bulk()` on a `PgConnection`, a
/// `Transaction<'_, Postgres>` or a `PoolConnection<Postgres>` (they are borrowed mutably for
/// the call, as sqlx's own queries borrow them), and `pool.bulk()` on a `PgPool`, which checks
/// out one connection for the whole operation and returns it afterwards.
///
/// ```no_run
/// # extern crate bulk_core as pgbulk;
/// # use bulk_derive::CopyRow;
/// use pgbulk::SqlxBulkExt;
///
/// #[derive(CopyRow)]
/// #[copy(table = "events")]
/// struct Event { #[copy(key)] id: i64, kind: String }
///
/// # async fn f(pool: sqlx::PgPool, events: Vec<Event>) -> pgbulk::Result<()> {
/// let written = pool.bulk().copy_in(&events).await?;
/// let counts = pool.bulk().upsert_via_staging(&events).await?;
/// let mut tx = pool.begin().await?;
/// tx.bulk().copy_in(&events).await?; // part of the transaction
/// # Ok(()) }
/// ```
pub trait SqlxBulkExt<'c> {
    /// A bulk-copy handle on this connection, transaction or pool.
    fn bulk(self) -> SqlxBulk<'c>;
}

impl<'c> SqlxBulkExt<'c> for &'c mut PgConnection {
    fn bulk(self) -> SqlxBulk<'c> {
        SqlxBulk::new(Conn::Borrowed(self), false)
    }
}

impl<'c> SqlxBulkExt<'c> for &'c mut Transaction<'_, Postgres> {
    fn bulk(self) -> SqlxBulk<'c> {
        SqlxBulk::new(Conn::Borrowed(self), true)
    }
}

impl<'c> SqlxBulkExt<'c> for &'c mut PoolConnection<Postgres> {
    fn bulk(self) -> SqlxBulk<'c> {
        SqlxBulk::new(Conn::Pooled(self), false)
    }
}

impl<'c> SqlxBulkExt<'c> for &'c PgPool {
    fn bulk(self) -> SqlxBulk<'c> {
        SqlxBulk::new(Conn::Pool(self, None), false)
    }
}

/// Typed binary COPY on one sqlx connection: the operations of [`Bulk`](crate::Bulk), each
/// consuming the handle (it borrows the connection mutably).
///
/// Get one with [`SqlxBulkExt::bulk`]. Everything works as on tokio-postgres — the plan's
/// checks and all-mismatches error, all-or-nothing COPY with the failing row, field and column
/// named, `upsert_via_staging` in its own transaction (or a savepoint inside a `Transaction`),
/// progress and `tracing` — with one difference sqlx forces: a future or stream dropped while
/// its COPY is open ends the connection's session instead of leaving sqlx out of step with the
/// server (sqlx's `PgCopyIn` drop and an unread `copy_out_raw` stream leave replies it never
/// reads, after which its queries return the previous query's rows). A pooled connection is
/// then closed, not returned; a `PgConnection` you hold reports the lost session on its next
/// call. Errors never leave a COPY open; only a drop does.
///
/// Over TCP, the first COPY on a connection sets `TCP_NODELAY` on its socket (Linux), which
/// sqlx leaves off: otherwise each `COPY .. FROM STDIN` waits about 40 ms for the server's
/// delayed ACK.
#[must_use = "a SqlxBulk handle does nothing until you call an operation on it"]
pub struct SqlxBulk<'c> {
    driver: SqlxConn<'c>,
    options: Options<'c>,
}

impl std::fmt::Debug for SqlxBulk<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlxBulk")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<'c> SqlxBulk<'c> {
    fn new(conn: Conn<'c>, in_transaction: bool) -> Self {
        SqlxBulk {
            driver: SqlxConn::new(conn, in_transaction),
            options: Options::default(),
        }
    }

    /// Whether this handle runs inside a caller's transaction (it is a sqlx `Transaction`'s):
    /// operations then use savepoints instead of their own `BEGIN .. COMMIT`.
    pub fn in_transaction(&self) -> bool {
        self.driver.in_transaction()
    }

    /// Uses `table` instead of the row type's `#[copy(table = "..")]`; see
    /// [`Bulk::table`](crate::Bulk::table).
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::SqlxBulkExt;
    /// # #[derive(CopyRow)] #[copy(table = "users")] struct User { #[copy(key)] id: i64, email: String }
    /// # async fn f(pool: sqlx::PgPool, users: Vec<User>) -> pgbulk::Result<()> {
    /// pool.bulk().table("archive.users").copy_in(&users).await?;
    /// # Ok(()) }
    /// ```
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.options.table = Some(table.into());
        self
    }

    /// Chunk size of the COPY data (default 256 KiB, at least 4 KiB); see
    /// [`Bulk::flush_bytes`](crate::Bulk::flush_bytes).
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::SqlxBulkExt;
    /// # #[derive(CopyRow)] #[copy(table = "users")] struct User { #[copy(key)] id: i64, email: String }
    /// # async fn f(pool: sqlx::PgPool, users: Vec<User>) -> pgbulk::Result<()> {
    /// pool.bulk().flush_bytes(1 << 20).copy_in(&users).await?;
    /// # Ok(()) }
    /// ```
    pub fn flush_bytes(mut self, bytes: usize) -> Self {
        self.options.set_flush_bytes(bytes);
        self
    }

    /// Progress reports; see [`Bulk::on_progress`](crate::Bulk::on_progress).
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::SqlxBulkExt;
    /// # #[derive(CopyRow)] #[copy(table = "users")] struct User { #[copy(key)] id: i64, email: String }
    /// # async fn f(pool: sqlx::PgPool, users: Vec<User>) -> pgbulk::Result<()> {
    /// pool.bulk().on_progress(|p| eprintln!("{} rows sent", p.rows)).copy_in(&users).await?;
    /// # Ok(()) }
    /// ```
    pub fn on_progress(mut self, f: impl Fn(Progress) + Send + Sync + 'c) -> Self {
        self.options.progress = Some(Arc::new(f));
        self
    }

    /// Describes `T`'s table and checks every field against its column; see
    /// [`Bulk::plan`](crate::Bulk::plan).
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::SqlxBulkExt;
    /// # #[derive(CopyRow)] #[copy(table = "users")] struct User { #[copy(key)] id: i64, email: String }
    /// # async fn f(pool: sqlx::PgPool, users: Vec<User>) -> pgbulk::Result<()> {
    /// let plan = pool.bulk().plan::<User>().await?; // consumes the handle: take a new one
    /// for batch in users.chunks(1000) {
    ///     pool.bulk().copy_in_with_plan(&plan, batch).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn plan<T: CopyRow + ?Sized>(mut self) -> Result<Plan<T>> {
        let table = self.options.table_for::<T>().to_owned();
        plan::kept_plan::<_, T>(&mut self.driver, &table).await
    }

    /// Writes `rows` with one binary COPY; see [`Bulk::copy_in`](crate::Bulk::copy_in).
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::SqlxBulkExt;
    /// # #[derive(CopyRow)] #[copy(table = "users")] struct User { #[copy(key)] id: i64, email: String }
    /// # async fn f(pool: sqlx::PgPool, users: Vec<User>) -> pgbulk::Result<()> {
    /// let mut conn = pool.acquire().await?;
    /// let written = conn.bulk().copy_in(&users).await?;
    /// # Ok(()) }
    /// ```
    pub async fn copy_in<T, I>(mut self, rows: I) -> Result<u64>
    where
        T: CopyRow,
        I: IntoIterator<Item = T>,
    {
        let op = Op::start(OpKind::CopyIn, self.options.table_for::<T>());
        let (driver, options) = (&mut self.driver, &self.options);
        trace::traced(op, async move {
            let rows = rows.into_iter();
            let table = options.table_for::<T>();
            let plan = plan::plan_for_rows::<_, T>(driver, table, rows.size_hint().1).await?;
            write_rows(driver, &plan, options, rows).await
        })
        .await
    }

    /// [`copy_in`](SqlxBulk::copy_in) with a plan made earlier: no describe round trip.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::SqlxBulkExt;
    /// # #[derive(CopyRow)] #[copy(table = "users")] struct User { #[copy(key)] id: i64, email: String }
    /// # async fn f(pool: sqlx::PgPool, users: Vec<User>) -> pgbulk::Result<()> {
    /// let mut conn = pool.acquire().await?;
    /// let plan = conn.bulk().plan::<User>().await?;
    /// for batch in users.chunks(1000) {
    ///     conn.bulk().copy_in_with_plan(&plan, batch).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn copy_in_with_plan<T, I>(mut self, plan: &Plan<T>, rows: I) -> Result<u64>
    where
        T: CopyRow + ?Sized,
        I: IntoIterator,
        I::Item: Borrow<T>,
    {
        let op = Op::start(OpKind::CopyIn, plan.table());
        trace::traced(op, write_rows(&mut self.driver, plan, &self.options, rows)).await
    }

    /// Like [`copy_in`](SqlxBulk::copy_in), for an asynchronous source of rows; see
    /// [`Bulk::copy_in_stream`](crate::Bulk::copy_in_stream).
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::SqlxBulkExt;
    /// # #[derive(CopyRow)] #[copy(table = "users")] struct User { #[copy(key)] id: i64, email: String }
    /// # async fn f(pool: sqlx::PgPool, users: Vec<User>) -> pgbulk::Result<()> {
    /// let rows = futures_util::stream::iter(users.into_iter().map(Ok::<_, std::io::Error>));
    /// pool.bulk().copy_in_stream(rows).await?;
    /// # Ok(()) }
    /// ```
    pub async fn copy_in_stream<T, S, E>(mut self, rows: S) -> Result<u64>
    where
        T: CopyRow,
        S: Stream<Item = std::result::Result<T, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let op = Op::start(OpKind::CopyInStream, self.options.table_for::<T>());
        let (driver, options) = (&mut self.driver, &self.options);
        trace::traced(op, async move {
            let plan = plan::plan_copy_in::<_, T>(driver, options.table_for::<T>()).await?;
            write_stream(driver, &plan, options, rows).await
        })
        .await
    }

    /// Reads all of `T`'s table as a stream of rows; see [`Bulk::copy_out`](crate::Bulk::copy_out).
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::SqlxBulkExt;
    /// # #[derive(CopyRow)] #[copy(table = "users")] struct User { #[copy(key)] id: i64, email: String }
    /// # async fn f(pool: sqlx::PgPool) -> pgbulk::Result<()> {
    /// let users: Vec<User> = pool.bulk().copy_out::<User>().collect_vec().await?;
    /// # Ok(()) }
    /// ```
    pub fn copy_out<T>(self) -> SqlxCopyOutStream<'c, T>
    where
        T: FromCopyRow + Send + 'c,
    {
        match plan::select_all::<T>(self.options.table_for::<T>()) {
            Ok((query, quoted)) => self.copy_out_owned_query(query, Some(quoted), &[]),
            Err(e) => SqlxCopyOutStream::failed(e),
        }
    }

    /// Reads the rows of `query` into `T`; see
    /// [`Bulk::copy_out_query`](crate::Bulk::copy_out_query).
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::SqlxBulkExt;
    /// # #[derive(CopyRow)] #[copy(table = "users")] struct User { #[copy(key)] id: i64, email: String }
    /// # async fn f(pool: sqlx::PgPool) -> pgbulk::Result<()> {
    /// let some: Vec<User> = pool
    ///     .bulk()
    ///     .copy_out_query::<User>("SELECT id, email FROM users WHERE email LIKE '%@example.com'")
    ///     .collect_vec()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn copy_out_query<T>(self, query: impl Into<String>) -> SqlxCopyOutStream<'c, T>
    where
        T: FromCopyRow + Send + 'c,
    {
        self.copy_out_owned_query(query.into(), None, &[])
    }

    /// Reads the rows of `query` into `T`, with values for its `$n` parameters (postgres-types
    /// `ToSql` values, as tokio-postgres' `query` takes them), written into the statement
    /// safely; see [`Bulk::copy_out_query_params`](crate::Bulk::copy_out_query_params).
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::SqlxBulkExt;
    /// # #[derive(CopyRow)] struct User { id: i64 }
    /// # async fn f(pool: sqlx::PgPool) -> pgbulk::Result<()> {
    /// let users: Vec<User> = pool
    ///     .bulk()
    ///     .copy_out_query_params::<User>("SELECT id FROM users WHERE id > $1", &[&100_i64])
    ///     .collect_vec()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn copy_out_query_params<'p, T>(
        self,
        query: impl Into<String>,
        params: &'p [&'p (dyn postgres_types::ToSql + Sync)],
    ) -> SqlxCopyOutStream<'p, T>
    where
        'c: 'p,
        T: FromCopyRow + Send + 'p,
    {
        let bulk: SqlxBulk<'p> = self;
        bulk.copy_out_owned_query(query.into(), None, params)
    }

    /// Reads every row of `T`'s table, each borrowing its text and byte fields from the
    /// received data, handing each to `f`; returns the number of rows. See
    /// [`Bulk::copy_out_each`](crate::Bulk::copy_out_each).
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::SqlxBulkExt;
    ///
    /// #[derive(CopyRow)]
    /// #[copy(table = "events")]
    /// struct EventRef<'r> {
    ///     id: i64,
    ///     kind: &'r str,
    /// }
    ///
    /// # async fn f(pool: sqlx::PgPool) -> pgbulk::Result<()> {
    /// let mut longest = 0;
    /// pool.bulk()
    ///     .copy_out_each::<EventRef<'_>>(|event| longest = longest.max(event.kind.len()))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`copy_out`](SqlxBulk::copy_out); rows before a failing one have been handed to `f`.
    pub async fn copy_out_each<T>(self, f: impl for<'r> FnMut(T::Row<'r>) + Send) -> Result<u64>
    where
        T: FromCopyRowRef + 'c,
    {
        let (query, quoted) = plan::select_all::<T>(self.options.table_for::<T>())?;
        self.each::<T>(query, Some(quoted), f).await
    }

    /// [`copy_out_each`](SqlxBulk::copy_out_each) for the rows of `query`; see
    /// [`Bulk::copy_out_query_each`](crate::Bulk::copy_out_query_each).
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::SqlxBulkExt;
    ///
    /// #[derive(CopyRow)]
    /// struct Name<'r> {
    ///     name: &'r str,
    /// }
    ///
    /// # async fn f(pool: sqlx::PgPool) -> pgbulk::Result<()> {
    /// let mut bytes = 0;
    /// pool.bulk()
    ///     .copy_out_query_each::<Name<'_>>("SELECT name FROM users", |row| bytes += row.name.len())
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`copy_out_query`](SqlxBulk::copy_out_query).
    pub async fn copy_out_query_each<T>(
        self,
        query: impl Into<String>,
        f: impl for<'r> FnMut(T::Row<'r>) + Send,
    ) -> Result<u64>
    where
        T: FromCopyRowRef + 'c,
    {
        self.each::<T>(query.into(), None, f).await
    }

    /// The `_each` reads: the rows of `query`, decoded borrowing the data and handed to `f`
    /// as they are read (no channel: nothing outlives the call).
    async fn each<T>(
        self,
        query: String,
        table: Option<String>,
        f: impl for<'r> FnMut(T::Row<'r>) + Send,
    ) -> Result<u64>
    where
        T: FromCopyRowRef + 'c,
    {
        let SqlxBulk {
            mut driver,
            options,
        } = self;
        let read = async {
            let (decoder, stream) =
                copy_out::start::<_, T>(&mut driver, &query, table.as_deref()).await?;
            Reading::new(decoder, stream, &options)
                .each(&options, f)
                .await
        };
        trace::traced(Op::start(OpKind::CopyOut, &query), read).await
    }

    /// Reads `query`; `table` (quoted) when it is `copy_out`'s `SELECT` of a whole table.
    fn copy_out_owned_query<T>(
        self,
        query: String,
        table: Option<String>,
        params: &'c [&'c (dyn postgres_types::ToSql + Sync)],
    ) -> SqlxCopyOutStream<'c, T>
    where
        T: FromCopyRow + Send + 'c,
    {
        let SqlxBulk {
            mut driver,
            options,
        } = self;
        // The rows are read by a future that owns the driver (the COPY's stream borrows it) and
        // hands them over a small channel; dropping the stream drops that future, whose COPY
        // stream and driver then end the session as described on `SqlxBulk`.
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        // The reader runs up to the channel's size ahead of the rows handed out, so it does not
        // report progress itself: it queues each report with the rows, and the stream makes the
        // call when it gets there — reports never run ahead of the rows, as on tokio-postgres.
        let progress = options.progress.clone();
        let reports: Arc<Mutex<Vec<Progress>>> = Arc::default();
        let reader_options = Options {
            progress: progress.as_ref().map(|_| {
                let reports = Arc::clone(&reports);
                Arc::new(move |p| lock(&reports).push(p)) as ProgressFn<'c>
            }),
            ..options
        };
        let reader = async move {
            let options = reader_options;
            let mut op = Op::start(OpKind::CopyOut, &query);
            let read = async {
                let bound;
                let query = if params.is_empty() {
                    &query
                } else {
                    bound = copy_out::bind_params(&mut driver, &query, params).await?;
                    &bound
                };
                let (decoder, stream) =
                    copy_out::start::<_, T>(&mut driver, query, table.as_deref()).await?;
                let mut reading = Reading::new(decoder, stream, &options);
                loop {
                    let row = reading.next_row(&options).await;
                    let queued = std::mem::take(&mut *lock(&reports));
                    for p in queued {
                        if tx.send(Item::Progress(p)).await.is_err() {
                            return Ok(reading.totals());
                        }
                    }
                    let Some(row) = row? else { break };
                    if tx.send(Item::Row(Ok(row))).await.is_err() {
                        break;
                    }
                }
                Ok::<_, crate::Error>(reading.totals())
            };
            match op.instrument(read).await {
                Ok((rows, bytes)) => op.finish(rows, bytes),
                Err(e) => {
                    op.fail(&e);
                    let _ = tx.send(Item::Row(Err(e))).await;
                }
            }
        };
        SqlxCopyOutStream {
            reader: Some(Box::pin(reader)),
            rx,
            progress,
        }
    }

    /// Inserts `rows` or updates the rows with the same key, through a staging table; see
    /// [`Bulk::upsert_via_staging`](crate::Bulk::upsert_via_staging). On a plain connection it
    /// runs in a transaction of its own (and refuses to run inside a `BEGIN` sent as SQL); on a
    /// `Transaction`, in a savepoint.
    ///
    /// `.await` it for the counts; set another conflict target, a narrower update set or
    /// `DO NOTHING` on it first, as on tokio-postgres
    /// (`.conflict_constraint("users_email_key").update_columns(["name"])`), or ask for rows
    /// back with [`returning`](SqlxUpsert::returning).
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::SqlxBulkExt;
    /// # #[derive(CopyRow)] #[copy(table = "users")] struct User { #[copy(key)] id: i64, email: String }
    /// # async fn f(pool: sqlx::PgPool, users: Vec<User>) -> pgbulk::Result<()> {
    /// let counts = pool.bulk().upsert_via_staging(&users).await?;
    /// println!("{counts}");
    /// // Another conflict target, and DO NOTHING:
    /// let counts = pool
    ///     .bulk()
    ///     .upsert_via_staging(&users)
    ///     .conflict_columns(["email"])
    ///     .do_nothing()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn upsert_via_staging<T, I>(self, rows: I) -> SqlxUpsert<'c, T, I>
    where
        T: CopyRow,
        I: IntoIterator<Item = T>,
    {
        SqlxUpsert {
            bulk: self,
            rows,
            options: UpsertOptions::default(),
            _row: PhantomData,
        }
    }

    /// [`upsert_via_staging`](SqlxBulk::upsert_via_staging), handing back one `R` per inserted
    /// or updated row; see
    /// [`Bulk::upsert_via_staging_returning`](crate::Bulk::upsert_via_staging_returning).
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::SqlxBulkExt;
    /// # #[derive(CopyRow)] #[copy(table = "users")] struct User { #[copy(key)] id: i64, email: String }
    /// # #[derive(CopyRow)] struct Changed { id: i64, inserted: bool }
    /// # async fn f(pool: sqlx::PgPool, users: Vec<User>) -> pgbulk::Result<()> {
    /// let changed: Vec<Changed> = pool
    ///     .bulk()
    ///     .upsert_via_staging_returning(&users)
    ///     .update_columns(["email"])
    ///     .in_input_order()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn upsert_via_staging_returning<R, T, I>(self, rows: I) -> SqlxUpsertReturning<'c, T, I, R>
    where
        R: FromCopyRow,
        T: CopyRow,
        I: IntoIterator<Item = T>,
    {
        self.upsert_via_staging(rows).returning::<R>()
    }

    /// Inserts `rows` through a staging table (a small batch: one bound `INSERT`) and hands
    /// back one `R` per row (in input order with
    /// [`in_input_order`](SqlxCopyInReturning::in_input_order)); see
    /// [`Bulk::copy_in_returning`](crate::Bulk::copy_in_returning).
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::SqlxBulkExt;
    /// # #[derive(CopyRow)] #[copy(table = "users")] struct User { #[copy(key)] id: i64, email: String }
    /// # #[derive(CopyRow)] struct Id { id: i64 }
    /// # async fn f(pool: sqlx::PgPool, users: Vec<User>) -> pgbulk::Result<()> {
    /// let ids: Vec<Id> = pool.bulk().copy_in_returning(&users).in_input_order().await?;
    /// # Ok(()) }
    /// ```
    pub fn copy_in_returning<R, T, I>(self, rows: I) -> SqlxCopyInReturning<'c, T, I, R>
    where
        R: FromCopyRow,
        T: CopyRow,
        I: IntoIterator<Item = T>,
    {
        SqlxCopyInReturning {
            bulk: self,
            rows,
            input_order: false,
            _row: PhantomData,
        }
    }

    /// Quarantine mode: loads rows, setting aside the rows the server or the encoder refuses
    /// instead of failing the whole load; see [`Bulk::quarantine`](crate::Bulk::quarantine).
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::SqlxBulkExt;
    /// # #[derive(CopyRow)] #[copy(table = "users")] struct User { #[copy(key)] id: i64, email: String }
    /// # async fn f(pool: sqlx::PgPool, users: Vec<User>) -> pgbulk::Result<()> {
    /// let outcome = pool.bulk().quarantine().max_rejected(100).copy_in(&users).await?;
    /// for bad in &outcome.rejected {
    ///     eprintln!("user {} not loaded: {}", users[bad.index].id, bad.error);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn quarantine(self) -> SqlxQuarantine<'c> {
        SqlxQuarantine {
            bulk: self,
            max_rejected: None,
        }
    }
}

impl SqlxBulk<'_> {
    /// Replaces the whole contents of `T`'s table with `rows` (`TRUNCATE`, then one
    /// `COPY .. FREEZE`); only on a `Transaction`, see
    /// [`Bulk::replace_all`](crate::Bulk::replace_all).
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::SqlxBulkExt;
    /// # #[derive(CopyRow)] #[copy(table = "users")] struct User { #[copy(key)] id: i64, email: String }
    /// # async fn f(pool: sqlx::PgPool, users: Vec<User>) -> pgbulk::Result<()> {
    /// let mut tx = pool.begin().await?;
    /// tx.bulk().replace_all::<User, _>(&users).await?;
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    pub async fn replace_all<T, I>(mut self, rows: I) -> Result<u64>
    where
        T: CopyRow,
        I: IntoIterator,
        I::Item: Borrow<T>,
    {
        // Traced as the COPY it is (the `pgbulk.copy_in` span, rows and bytes), as on tokio-postgres.
        let op = Op::start(OpKind::CopyIn, self.options.table_for::<T>());
        let (driver, options) = (&mut self.driver, &self.options);
        trace::traced(
            op,
            async move { replace_all::run(driver, options, rows).await },
        )
        .await
    }
}

type BoxFuture<'c, O> = Pin<Box<dyn Future<Output = O> + Send + 'c>>;

/// A sqlx [`upsert_via_staging`](SqlxBulk::upsert_via_staging) call being set up; `.await` it
/// for the [`UpsertCounts`]. The same builder as tokio-postgres' [`Upsert`](crate::Upsert).
#[must_use = "an upsert does nothing until it is awaited"]
pub struct SqlxUpsert<'c, T, I> {
    bulk: SqlxBulk<'c>,
    rows: I,
    options: UpsertOptions,
    _row: PhantomData<fn() -> T>,
}

impl<T, I> std::fmt::Debug for SqlxUpsert<'_, T, I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlxUpsert")
            .field("bulk", &self.bulk)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<'c, T, I> SqlxUpsert<'c, T, I> {
    option_setters!(
        options,
        "upsert_via_staging(&users)",
        "counts",
        "",
        "SqlxBulkExt",
        "pool: &sqlx::PgPool",
        "pool"
    );

    /// Replaces all options at once.
    pub fn options(mut self, options: UpsertOptions) -> Self {
        self.options = options;
        self
    }

    /// Hands back one `R` per inserted or updated row instead of counts.
    pub fn returning<R: FromCopyRow>(self) -> SqlxUpsertReturning<'c, T, I, R> {
        SqlxUpsertReturning {
            upsert: self,
            input_order: false,
            _row: PhantomData,
        }
    }
}

impl<'c, T, I> IntoFuture for SqlxUpsert<'c, T, I>
where
    T: CopyRow + Send + 'c,
    I: IntoIterator<Item = T> + Send + 'c,
    I::IntoIter: Send,
{
    type Output = Result<UpsertCounts>;
    type IntoFuture = BoxFuture<'c, Result<UpsertCounts>>;

    fn into_future(self) -> Self::IntoFuture {
        let op = Op::start(OpKind::Upsert, self.bulk.options.table_for::<T>());
        let SqlxBulk {
            mut driver,
            options,
        } = self.bulk;
        let (upsert, rows) = (self.options, self.rows);
        Box::pin(trace::traced_rows(
            op,
            async move { upsert::counts(&mut driver, &options, &upsert, rows).await },
            UpsertCounts::total,
        ))
    }
}

/// A sqlx upsert that hands back rows; `.await` it for the `Vec<R>`. The same builder as
/// tokio-postgres' [`UpsertReturning`](crate::UpsertReturning).
#[must_use = "an upsert does nothing until it is awaited"]
pub struct SqlxUpsertReturning<'c, T, I, R> {
    upsert: SqlxUpsert<'c, T, I>,
    input_order: bool,
    _row: PhantomData<fn() -> R>,
}

impl<T, I, R> std::fmt::Debug for SqlxUpsertReturning<'_, T, I, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlxUpsertReturning")
            .field("upsert", &self.upsert)
            .field("input_order", &self.input_order)
            .finish()
    }
}

impl<T, I, R> SqlxUpsertReturning<'_, T, I, R> {
    /// Returns the rows in the order of the input (the inserted and updated ones).
    pub fn in_input_order(mut self) -> Self {
        self.input_order = true;
        self
    }

    option_setters!(
        upsert.options,
        "upsert_via_staging_returning(&users)",
        "changed: Vec<Changed>",
        "\n #[derive(CopyRow)]\n struct Changed { id: i64, inserted: bool }\n",
        "SqlxBulkExt",
        "pool: &sqlx::PgPool",
        "pool"
    );
}

impl<'c, T, I, R> IntoFuture for SqlxUpsertReturning<'c, T, I, R>
where
    T: CopyRow + Send + 'c,
    I: IntoIterator<Item = T> + Send + 'c,
    I::IntoIter: Send,
    R: FromCopyRow + Send + 'c,
{
    type Output = Result<Vec<R>>;
    type IntoFuture = BoxFuture<'c, Result<Vec<R>>>;

    fn into_future(self) -> Self::IntoFuture {
        let op = Op::start(OpKind::Upsert, self.upsert.bulk.options.table_for::<T>());
        let SqlxBulk {
            mut driver,
            options,
        } = self.upsert.bulk;
        let (upsert, rows, input_order) = (self.upsert.options, self.upsert.rows, self.input_order);
        Box::pin(trace::traced_rows(
            op,
            async move { upsert::returning(&mut driver, &options, &upsert, input_order, rows).await },
            |rows: &Vec<R>| rows.len() as u64,
        ))
    }
}

/// A sqlx [`copy_in_returning`](SqlxBulk::copy_in_returning) call being set up; `.await` it
/// for the `Vec<R>`. The same builder as tokio-postgres' [`CopyInReturning`](crate::CopyInReturning).
#[must_use = "copy_in_returning does nothing until it is awaited"]
pub struct SqlxCopyInReturning<'c, T, I, R> {
    bulk: SqlxBulk<'c>,
    rows: I,
    input_order: bool,
    _row: PhantomData<fn() -> (T, R)>,
}

impl<T, I, R> std::fmt::Debug for SqlxCopyInReturning<'_, T, I, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlxCopyInReturning")
            .field("bulk", &self.bulk)
            .field("input_order", &self.input_order)
            .finish_non_exhaustive()
    }
}

impl<T, I, R> SqlxCopyInReturning<'_, T, I, R> {
    /// Inserts and returns the rows in the order of the input.
    pub fn in_input_order(mut self) -> Self {
        self.input_order = true;
        self
    }
}

impl<'c, T, I, R> IntoFuture for SqlxCopyInReturning<'c, T, I, R>
where
    T: CopyRow + Send + 'c,
    I: IntoIterator<Item = T> + Send + 'c,
    I::IntoIter: Send,
    R: FromCopyRow + Send + 'c,
{
    type Output = Result<Vec<R>>;
    type IntoFuture = BoxFuture<'c, Result<Vec<R>>>;

    fn into_future(self) -> Self::IntoFuture {
        let op = Op::start(OpKind::CopyInReturning, self.bulk.options.table_for::<T>());
        let SqlxBulk {
            mut driver,
            options,
        } = self.bulk;
        let (rows, input_order) = (self.rows, self.input_order);
        Box::pin(trace::traced_rows(
            op,
            async move { upsert::insert_returning(&mut driver, &options, input_order, rows).await },
            |rows: &Vec<R>| rows.len() as u64,
        ))
    }
}

/// Quarantine mode on sqlx ([`SqlxBulk::quarantine`]): the same as tokio-postgres'
/// [`Quarantine`](crate::Quarantine).
#[must_use = "a SqlxQuarantine does nothing until you call copy_in on it"]
#[derive(Debug)]
pub struct SqlxQuarantine<'c> {
    bulk: SqlxBulk<'c>,
    max_rejected: Option<usize>,
}

impl SqlxQuarantine<'_> {
    /// Fails the load (nothing written) once more than `n` rows are rejected.
    pub fn max_rejected(mut self, n: usize) -> Self {
        self.max_rejected = Some(n);
        self
    }

    /// Loads `rows`, setting the refused ones aside; see
    /// [`Quarantine::copy_in`](crate::Quarantine::copy_in).
    pub async fn copy_in<T, I>(self, rows: I) -> Result<QuarantineOutcome>
    where
        T: CopyRow + Send,
        I: IntoIterator<Item = T> + Clone + Send + Sync,
        I::IntoIter: Send,
    {
        let SqlxBulk {
            mut driver,
            options,
        } = self.bulk;
        let plan = plan::plan_copy_in::<_, T>(&mut driver, options.table_for::<T>()).await?;
        quarantine::run(&mut driver, &plan, &options, rows, self.max_rejected).await
    }
}

type Reader<'c> = Pin<Box<dyn Future<Output = ()> + Send + 'c>>;

/// What the reader of a [`SqlxCopyOutStream`] hands over, in order.
enum Item<T> {
    Row(Result<T>),
    Progress(Progress),
}

/// The reader's queue of progress reports (a report made while the lock was poisoned is kept:
/// the queue is only ever pushed to and taken whole).
fn lock(reports: &Mutex<Vec<Progress>>) -> std::sync::MutexGuard<'_, Vec<Progress>> {
    reports
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The rows of [`SqlxBulk::copy_out`] / [`copy_out_query`](SqlxBulk::copy_out_query).
///
/// Nothing happens until it is polled. Dropped before its end, it ends the connection's
/// session (see [`SqlxBulk`]).
#[must_use = "a stream does nothing until polled"]
pub struct SqlxCopyOutStream<'c, T> {
    reader: Option<Reader<'c>>,
    rx: tokio::sync::mpsc::Receiver<Item<T>>,
    progress: Option<ProgressFn<'c>>,
}

impl<T> std::fmt::Debug for SqlxCopyOutStream<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlxCopyOutStream").finish_non_exhaustive()
    }
}

impl<'c, T: Send + 'c> SqlxCopyOutStream<'c, T> {
    fn failed(e: crate::Error) -> Self {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let _ = tx.try_send(Item::Row(Err(e)));
        SqlxCopyOutStream {
            reader: None,
            rx,
            progress: None,
        }
    }

    /// Reads every row into a `Vec`.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::SqlxBulkExt;
    /// # #[derive(CopyRow)] #[copy(table = "users")] struct User { #[copy(key)] id: i64, email: String }
    /// # async fn f(pool: sqlx::PgPool) -> pgbulk::Result<()> {
    /// let users: Vec<User> = pool.bulk().copy_out::<User>().collect_vec().await?;
    /// # Ok(()) }
    /// ```
    pub async fn collect_vec(self) -> Result<Vec<T>> {
        futures_util::TryStreamExt::try_collect(self).await
    }
}

impl<T> SqlxCopyOutStream<'_, T> {
    /// Takes one item the reader sent: a row is handed out, a progress report is made now.
    fn take(&self, item: Option<Item<T>>) -> Option<Poll<Option<Result<T>>>> {
        match item {
            Some(Item::Progress(p)) => {
                if let Some(progress) = &self.progress {
                    progress(p);
                }
                None
            }
            Some(Item::Row(row)) => Some(Poll::Ready(Some(row))),
            None => Some(Poll::Ready(None)),
        }
    }
}

impl<T> Stream for SqlxCopyOutStream<'_, T> {
    type Item = Result<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Poll::Ready(item) = this.rx.poll_recv(cx) {
                match this.take(item) {
                    Some(poll) => return poll,
                    None => continue,
                }
            }
            // Nothing buffered: let the reader run until it sends something or ends.
            match this.reader.as_mut() {
                Some(reader) => match reader.as_mut().poll(cx) {
                    Poll::Ready(()) => this.reader = None,
                    Poll::Pending => {
                        // It may have sent before pending (the channel had room).
                        match this.rx.poll_recv(cx) {
                            Poll::Ready(item) => {
                                if let Some(poll) = this.take(item) {
                                    return poll;
                                }
                            }
                            Poll::Pending => return Poll::Pending,
                        }
                    }
                },
                // The reader has ended and dropped its sender: the channel ends too.
                None => return Poll::Pending,
            }
        }
    }
}
