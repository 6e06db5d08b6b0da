//! The [`Bulk`] handle on a tokio-postgres client: `copy_in`, `copy_in_stream`, `copy_out`,
//! `copy_out_query`, and the entry points of the other operations.

mod prepared;
mod quarantine;
mod replace_all;
#[cfg(feature = "sqlx")]
mod sqlx;
mod upsert;

pub use prepared::PreparedCopyIn;
pub use quarantine::Quarantine;
#[cfg(feature = "sqlx")]
pub use sqlx::{
    SqlxBulk, SqlxBulkExt, SqlxCopyInReturning, SqlxCopyOutStream, SqlxQuarantine, SqlxUpsert,
    SqlxUpsertReturning,
};
pub use upsert::{CopyInReturning, Upsert, UpsertReturning};

use crate::client::tokio::{TokioClient, TokioCopyOut};
use crate::error::{Error, Result};
use crate::ops::copy_in::{write_rows, write_stream};
use crate::ops::copy_out::{bind_params, Reading};
use crate::ops::{Options, Progress};
use crate::plan::{self, Plan};
use crate::row::{CopyRow, FromCopyRow, FromCopyRowRef};
use crate::trace::{self, Op, OpKind, SpanHandle};
use futures_util::Stream;
use postgres_types::ToSql;
use std::borrow::Borrow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio_postgres::{Client, Statement, Transaction};

/// Adds [`bulk`](BulkExt::bulk) to tokio-postgres clients and transactions, and to anything
/// that dereferences to them (pooled connections).
pub trait BulkExt {
    /// A bulk-copy handle on this client. Cheap: it borrows the client.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::BulkExt;
    ///
    /// #[derive(CopyRow)]
    /// struct Event { id: i64, kind: String }
    ///
    /// # async fn f(mut client: tokio_postgres::Client, events: Vec<Event>) -> pgbulk::Result<()> {
    /// client.bulk().copy_in(&events).await?;
    /// // On a transaction, the COPY is part of it:
    /// let tx = client.transaction().await?;
    /// tx.bulk().copy_in(&events).await?;
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    fn bulk(&self) -> Bulk<'_>;
}

impl BulkExt for Client {
    fn bulk(&self) -> Bulk<'_> {
        Bulk::new(TokioClient::new(self, false))
    }
}

impl BulkExt for Transaction<'_> {
    fn bulk(&self) -> Bulk<'_> {
        Bulk::new(TokioClient::new(self.client(), true))
    }
}

/// Typed binary COPY on one client: [`copy_in`](Bulk::copy_in), [`copy_out`](Bulk::copy_out)
/// and their variants, with per-call options.
///
/// Get one with [`BulkExt::bulk`]: `client.bulk().copy_in(&rows).await?`.
#[must_use = "a Bulk handle does nothing until you call copy_in or copy_out on it"]
#[derive(Clone)]
pub struct Bulk<'c> {
    pub(crate) driver: TokioClient<'c>,
    pub(crate) options: Options<'c>,
}

impl fmt::Debug for Bulk<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bulk")
            .field("in_transaction", &self.driver.in_transaction)
            .field("table", &self.options.table)
            .field("flush_bytes", &self.options.flush_bytes)
            .field("progress", &self.options.progress.is_some())
            .finish_non_exhaustive()
    }
}

impl<'c> Bulk<'c> {
    pub(crate) fn new(driver: TokioClient<'c>) -> Self {
        Bulk {
            driver,
            options: Options::default(),
        }
    }

    /// Uses `table` instead of the row type's `#[copy(table = "..")]` for this handle's calls.
    ///
    /// Names are taken literally (case-sensitive); `schema.table` is schema-qualified; a part in
    /// double quotes may contain dots or quotes (`"odd.schema"."t"`). Every name is quoted
    /// when sent.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::BulkExt;
    ///
    /// #[derive(CopyRow)]
    /// #[copy(table = "events")]
    /// struct Event { id: i64, kind: String }
    ///
    /// # async fn f(client: &tokio_postgres::Client, old: Vec<Event>) -> pgbulk::Result<()> {
    /// // Into "archive"."events_2023" instead of "events":
    /// client.bulk().table("archive.events_2023").copy_in(&old).await?;
    /// # Ok(()) }
    /// ```
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.options.table = Some(table.into());
        self
    }

    /// Hands COPY data to the server in chunks of about `bytes` (default 256 KiB, at least
    /// 4 KiB). Memory use of `copy_in` is bounded by a few chunks, whatever the row count.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::BulkExt;
    ///
    /// #[derive(CopyRow)]
    /// struct Event { id: i64, payload: Vec<u8> }
    ///
    /// # async fn f(client: &tokio_postgres::Client, events: Vec<Event>) -> pgbulk::Result<()> {
    /// // Wide rows: hand the server 1 MiB at a time.
    /// client.bulk().flush_bytes(1 << 20).copy_in(&events).await?;
    /// # Ok(()) }
    /// ```
    pub fn flush_bytes(mut self, bytes: usize) -> Self {
        self.options.set_flush_bytes(bytes);
        self
    }

    /// Calls `f` with the rows and bytes so far: during `copy_in` after each chunk handed to the
    /// server (see [`flush_bytes`](Bulk::flush_bytes)), during `copy_out` each time about
    /// `flush_bytes` more data has arrived; and once at the end of both, with the totals.
    ///
    /// `f` runs on the task driving the copy, between chunks: keep it cheap (update a counter
    /// or a progress bar, not a blocking write).
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::BulkExt;
    ///
    /// #[derive(CopyRow)]
    /// struct Event { id: i64, kind: String }
    ///
    /// # async fn f(client: &tokio_postgres::Client, events: Vec<Event>) -> pgbulk::Result<()> {
    /// let total = events.len();
    /// client
    ///     .bulk()
    ///     .on_progress(|p| eprintln!("{}/{total} rows, {} bytes", p.rows, p.bytes))
    ///     .copy_in(&events)
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn on_progress(mut self, f: impl Fn(Progress) + Send + Sync + 'c) -> Self {
        self.options.progress = Some(Arc::new(f));
        self
    }

    /// Whether this handle runs inside a caller's transaction: `true` for a handle on a
    /// `Transaction`, `false` for one on a `Client`.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// use pgbulk::BulkExt;
    ///
    /// # async fn f(mut client: tokio_postgres::Client) -> pgbulk::Result<()> {
    /// assert!(!client.bulk().in_transaction());
    /// let tx = client.transaction().await?;
    /// assert!(tx.bulk().in_transaction());
    /// # Ok(()) }
    /// ```
    pub fn in_transaction(&self) -> bool {
        self.driver.in_transaction
    }

    /// The underlying client (for a handle on a `Transaction`, the transaction's connection).
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::Bulk;
    ///
    /// #[derive(CopyRow)]
    /// #[copy(table = "events")]
    /// struct Event { id: i64, kind: String }
    ///
    /// async fn reload(bulk: Bulk<'_>, events: &[Event]) -> pgbulk::Result<u64> {
    ///     bulk.client().execute("DELETE FROM events WHERE kind = 'test'", &[]).await?;
    ///     bulk.copy_in(events).await
    /// }
    /// ```
    pub fn client(&self) -> &'c Client {
        self.driver.client
    }

    pub(crate) fn table_for<T: CopyRow + ?Sized>(&self) -> &str {
        self.options.table_for::<T>()
    }

    /// Describes `T`'s table on the server and checks every field against its column.
    ///
    /// Returns all mismatches at once as an [`ErrorKind::TypeMismatch`](crate::ErrorKind)
    /// error. Keep the plan to skip this round trip for later batches with
    /// [`copy_in_with_plan`](Bulk::copy_in_with_plan). In the same round trip it reads whether
    /// the table takes small batches as one `INSERT` (see
    /// [`copy_in_with_plan`](Bulk::copy_in_with_plan)); make a new plan after adding rules or
    /// row-level security to the table.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::{BulkExt, ErrorKind};
    ///
    /// #[derive(CopyRow)]
    /// struct Event { id: i64, kind: String }
    ///
    /// # async fn f(client: &tokio_postgres::Client) -> pgbulk::Result<()> {
    /// match client.bulk().plan::<Event>().await {
    ///     Ok(plan) => println!("ready: {}", plan.copy_statement()),
    ///     Err(e) if e.kind() == ErrorKind::TypeMismatch => {
    ///         for m in e.mismatches() {
    ///             eprintln!("{m}");
    ///         }
    ///     }
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn plan<T: CopyRow + ?Sized>(
        &self,
    ) -> impl Future<Output = Result<Plan<T>>> + Send + use<'c, T> {
        let mut driver = self.driver;
        let table = self.table_for::<T>().to_owned();
        async move { plan::kept_plan::<_, T>(&mut driver, &table).await }
    }

    /// Writes `rows` with one binary `COPY .. FROM STDIN` and returns the number written.
    ///
    /// `rows` is anything iterable over `T` or `&T` (`&Vec<T>`, `Vec<T>`, a lazy iterator); it
    /// is consumed as it is sent, so memory does not grow with the row count. The table is
    /// described and checked first; nothing is sent if a field does not match its column.
    ///
    /// All or nothing: if a value cannot be encoded (the error names its row index and field),
    /// the server rejects a row (the error names the row index and, where the server says, the
    /// column), or this future is dropped, the COPY is aborted and no row is written.
    ///
    /// A small batch (fewer than 1,000 rows, and the input says so) is sent as one `INSERT` with
    /// the rows bound as arrays where that writes what the COPY would, with the same result and
    /// errors: see [`copy_in_with_plan`](Bulk::copy_in_with_plan). The describe then also reads
    /// whether the table takes it, in the same round trip.
    ///
    /// The returned future does not borrow this handle, only the client: it can be stored,
    /// joined or selected on.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::BulkExt;
    ///
    /// #[derive(CopyRow)]
    /// #[copy(table = "users")]
    /// struct User { id: i64, name: String, email: Option<String> }
    ///
    /// # async fn f(client: &tokio_postgres::Client, users: Vec<User>) -> pgbulk::Result<()> {
    /// let written = client.bulk().copy_in(&users).await?;
    /// // A lazy iterator works too: rows are encoded as they are sent.
    /// let generated = (0..1_000_000).map(|id| User { id, name: format!("user {id}"), email: None });
    /// client.bulk().copy_in(generated).await?;
    /// # Ok(()) }
    /// ```
    pub fn copy_in<T, I>(&self, rows: I) -> impl Future<Output = Result<u64>> + use<'c, T, I>
    where
        T: CopyRow,
        I: IntoIterator<Item = T>,
    {
        let Bulk {
            mut driver,
            options,
        } = self.clone();
        let op = Op::start(OpKind::CopyIn, self.table_for::<T>());
        trace::traced(op, async move {
            let rows = rows.into_iter();
            let table = options.table_for::<T>();
            let plan = plan::plan_for_rows::<_, T>(&mut driver, table, rows.size_hint().1).await?;
            write_rows(&mut driver, &plan, &options, rows).await
        })
    }

    /// [`copy_in`](Bulk::copy_in) with a plan made earlier by [`plan`](Bulk::plan): no
    /// describe round trip. The plan's table is used (not [`table`](Bulk::table)). `rows` may
    /// yield `T` or `&T`.
    ///
    /// A small batch — one that says it holds fewer than 1,000 rows (a slice, a `Vec`, an
    /// iterator whose `size_hint` has an upper bound), of columns of built-in types other than
    /// arrays — is sent as one `INSERT INTO t (..) OVERRIDING SYSTEM VALUE SELECT * FROM
    /// unnest($1, ..)` with the rows bound as one array per column: parsed, bound and run in
    /// one round trip, where a COPY takes three (tokio-postgres prepares it, starts it, then
    /// sends the data). It writes what the COPY would (identity values given, defaults, rows a
    /// trigger skips not counted), and it is used only where that holds: the plan found a plain
    /// or partitioned table without rules (which an `INSERT` applies and a COPY ignores) and
    /// without row-level security for this role (which a COPY refuses) when it was made. A batch
    /// the server refuses for a value is then copied, so that the error names the row, field
    /// and column as always. Everything else is copied. The `INSERT` is one request: dropping
    /// the future before it is sent writes nothing, after it is sent the server runs it (as it
    /// does a COPY whose end was sent).
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::BulkExt;
    ///
    /// #[derive(CopyRow)]
    /// struct Event { id: i64, kind: String }
    ///
    /// # async fn f(client: &tokio_postgres::Client, batches: Vec<Vec<Event>>) -> pgbulk::Result<()> {
    /// let plan = client.bulk().plan::<Event>().await?; // described and checked once
    /// for batch in &batches {
    ///     client.bulk().copy_in_with_plan(&plan, batch).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn copy_in_with_plan<'p, T, I>(
        &self,
        plan: &'p Plan<T>,
        rows: I,
    ) -> impl Future<Output = Result<u64>> + use<'c, 'p, T, I>
    where
        T: CopyRow + ?Sized,
        I: IntoIterator,
        I::Item: Borrow<T>,
    {
        self.copy_in_traced(plan, None, rows)
    }

    /// `copy_in` with a kept plan (and, from [`PreparedCopyIn`], its prepared statement), in
    /// its `tracing` span.
    fn copy_in_traced<'p, T, I>(
        &self,
        plan: &'p Plan<T>,
        statement: Option<&'p Statement>,
        rows: I,
    ) -> impl Future<Output = Result<u64>> + use<'c, 'p, T, I>
    where
        T: CopyRow + ?Sized,
        I: IntoIterator,
        I::Item: Borrow<T>,
    {
        let Bulk { driver, options } = self.clone();
        let op = Op::start(OpKind::CopyIn, plan.table());
        trace::traced(op, async move {
            let mut driver = TokioClient {
                prepared: statement,
                ..driver
            };
            write_rows(&mut driver, plan, &options, rows).await
        })
    }

    /// Like [`copy_in`](Bulk::copy_in), for an asynchronous source of rows. An `Err` from the
    /// stream aborts the COPY (no row is written) and is returned as
    /// [`ErrorKind::Input`](crate::ErrorKind::Input) with the row index.
    ///
    /// For a blocking source (a file, a CSV reader), wrap it in
    /// [`blocking_stream`](crate::blocking_stream).
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use futures_util::stream;
    /// use pgbulk::BulkExt;
    ///
    /// #[derive(CopyRow)]
    /// struct Event { id: i64, kind: String }
    ///
    /// # async fn f(client: &tokio_postgres::Client) -> pgbulk::Result<()> {
    /// // Any `Stream` of `Result<Event, E>`, e.g. rows arriving from a channel or a socket.
    /// let events = stream::iter((1..=3).map(|id| Ok::<_, std::io::Error>(Event { id, kind: "click".into() })));
    /// let written = client.bulk().copy_in_stream(events).await?;
    /// assert_eq!(written, 3);
    /// # Ok(()) }
    /// ```
    pub fn copy_in_stream<T, S, E>(
        &self,
        rows: S,
    ) -> impl Future<Output = Result<u64>> + use<'c, T, S, E>
    where
        T: CopyRow,
        S: Stream<Item = std::result::Result<T, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let Bulk {
            mut driver,
            options,
        } = self.clone();
        let op = Op::start(OpKind::CopyInStream, self.table_for::<T>());
        trace::traced(op, async move {
            let plan = plan::plan_copy_in::<_, T>(&mut driver, options.table_for::<T>()).await?;
            write_stream(&mut driver, &plan, &options, rows).await
        })
    }

    /// Reads all of `T`'s table (or the [`table`](Bulk::table) override), as a stream of rows.
    ///
    /// Nothing happens until the stream is polled; the query is described and each field
    /// checked against its column first. Collect with
    /// [`collect_vec`](CopyOutStream::collect_vec) or any `TryStreamExt` method.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use futures_util::TryStreamExt;
    /// use pgbulk::BulkExt;
    ///
    /// #[derive(CopyRow)]
    /// #[copy(table = "events")]
    /// struct Event { id: i64, kind: String }
    ///
    /// # async fn f(client: &tokio_postgres::Client) -> pgbulk::Result<()> {
    /// let all: Vec<Event> = client.bulk().copy_out::<Event>().collect_vec().await?;
    /// // Or one row at a time, without holding the whole table in memory:
    /// let mut rows = client.bulk().copy_out::<Event>();
    /// while let Some(event) = rows.try_next().await? {
    ///     println!("{} {}", event.id, event.kind);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn copy_out<T>(&self) -> CopyOutStream<'c, T>
    where
        T: FromCopyRow + Send + 'c,
    {
        match plan::select_all::<T>(self.table_for::<T>()) {
            Ok((query, quoted)) => self.copy_out_owned_query::<T>(query, Some(quoted), &[]),
            Err(e) => CopyOutStream::failed(e),
        }
    }

    /// Reads the rows of `query` (a `SELECT`, `VALUES`, `TABLE`, or `INSERT/UPDATE/DELETE ..
    /// RETURNING`) into `T`. Columns are matched to fields by name, in whatever order the query
    /// returns them; columns no field wants are read and skipped. For `$n` parameters use
    /// [`copy_out_query_params`](Bulk::copy_out_query_params) (never `format!` values into
    /// the text).
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// # use pgbulk::BulkExt;
    /// #[derive(CopyRow)]
    /// struct Total { account: String, cents: i64 }
    ///
    /// # async fn f(client: &tokio_postgres::Client) -> pgbulk::Result<()> {
    /// let totals: Vec<Total> = client
    ///     .bulk()
    ///     .copy_out_query::<Total>("SELECT account, sum(cents)::int8 AS cents FROM ledger GROUP BY 1")
    ///     .collect_vec()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn copy_out_query<T>(&self, query: impl Into<String>) -> CopyOutStream<'c, T>
    where
        T: FromCopyRow + Send + 'c,
    {
        self.copy_out_owned_query::<T>(query.into(), None, &[])
    }

    /// [`copy_out_query`](Bulk::copy_out_query) with values for the query's `$n` parameters,
    /// typed as for tokio-postgres' `query`: `&[&(dyn ToSql + Sync)]`.
    ///
    /// `COPY` cannot bind parameters, so pgbulk writes the values into the statement, safely:
    /// the query is described first (the server infers each parameter's type; the count must
    /// match); each value is encoded by its `ToSql` impl for that type (a Rust type the
    /// parameter does not accept is an [`ErrorKind::Usage`](crate::ErrorKind::Usage) error) and
    /// bound as a real parameter of `SELECT $n::text`, so the server itself gives its text
    /// form; that text goes in place of `$n` as `(E'..'::"schema"."type")`, with every `\`
    /// and `'` doubled — the same whatever `standard_conforming_strings` is — and cast
    /// explicitly to the parameter's type. `$n` is replaced only where PostgreSQL's own
    /// scanner sees a parameter (not in strings, quoted identifiers, dollar quotes, comments),
    /// and the rewritten query is described again: it must take no parameters and return the
    /// same columns and types, or nothing runs. A value the server refuses (text with a NUL
    /// byte, an out-of-range number) fails the call before the COPY.
    ///
    /// Cost: three round trips more than `copy_out_query` (describe, text form, check). The
    /// values appear in the statement's text, so they can appear in the server's log
    /// (`log_statement`) as any literal would; the `tracing` span records the query with its
    /// `$n`, without the values.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// # use pgbulk::BulkExt;
    /// #[derive(CopyRow)]
    /// struct User { id: i64, name: String }
    ///
    /// # async fn f(client: &tokio_postgres::Client, min_id: i64, name: &str) -> pgbulk::Result<()> {
    /// let users: Vec<User> = client
    ///     .bulk()
    ///     .copy_out_query_params::<User>(
    ///         "SELECT id, name FROM users WHERE id > $1 AND name <> $2",
    ///         &[&min_id, &name],
    ///     )
    ///     .collect_vec()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn copy_out_query_params<'p, T>(
        &self,
        query: impl Into<String>,
        params: &'p [&'p (dyn ToSql + Sync)],
    ) -> CopyOutStream<'p, T>
    where
        'c: 'p,
        T: FromCopyRow + Send + 'p,
    {
        let bulk: Bulk<'p> = self.clone();
        bulk.copy_out_owned_query::<T>(query.into(), None, params)
    }

    /// Reads every row of `T`'s table (as [`copy_out`](Bulk::copy_out)), each borrowing its
    /// text and byte fields from the received data, handing each to `f`; returns the number
    /// of rows. See [`FromCopyRowRef`] for the row types this takes (any derived row type, and
    /// structs with one lifetime parameter whose `&'r str` / `&'r [u8]` fields borrow).
    ///
    /// Nothing is copied out of the data for a borrowed field and no row is collected: for
    /// readers that aggregate, filter or forward rows without keeping them. A row lives for
    /// one call of `f`; copy what you keep (`.to_owned()`). To stop early, use a query with a
    /// `LIMIT` ([`copy_out_query_each`](Bulk::copy_out_query_each)).
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::BulkExt;
    ///
    /// #[derive(CopyRow)]
    /// #[copy(table = "events")]
    /// struct EventRef<'r> {
    ///     id: i64,
    ///     kind: &'r str,
    /// }
    ///
    /// # async fn f(client: &tokio_postgres::Client) -> pgbulk::Result<()> {
    /// let mut logins = 0;
    /// let rows = client
    ///     .bulk()
    ///     .copy_out_each::<EventRef<'_>>(|event| logins += usize::from(event.kind == "login"))
    ///     .await?;
    /// println!("{logins} logins in {rows} events");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`copy_out`](Bulk::copy_out); rows before a failing one have been handed to `f`.
    pub async fn copy_out_each<T>(&self, f: impl for<'r> FnMut(T::Row<'r>) + Send) -> Result<u64>
    where
        T: FromCopyRowRef + 'c,
    {
        let (query, quoted) = plan::select_all::<T>(self.table_for::<T>())?;
        self.each::<T>(query, Some(quoted), f).await
    }

    /// [`copy_out_each`](Bulk::copy_out_each) for the rows of `query`, matched to `T`'s fields
    /// as [`copy_out_query`](Bulk::copy_out_query) matches them.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::BulkExt;
    ///
    /// #[derive(CopyRow)]
    /// struct Line<'r> {
    ///     sku: &'r str,
    ///     qty: i32,
    /// }
    ///
    /// # async fn f(client: &tokio_postgres::Client, out: &mut Vec<u8>) -> pgbulk::Result<()> {
    /// client
    ///     .bulk()
    ///     .copy_out_query_each::<Line<'_>>("SELECT sku, qty FROM order_lines", |line| {
    ///         out.extend_from_slice(line.sku.as_bytes());
    ///         out.extend_from_slice(format!(",{}\n", line.qty).as_bytes());
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`copy_out_query`](Bulk::copy_out_query).
    pub async fn copy_out_query_each<T>(
        &self,
        query: impl Into<String>,
        f: impl for<'r> FnMut(T::Row<'r>) + Send,
    ) -> Result<u64>
    where
        T: FromCopyRowRef + 'c,
    {
        self.each::<T>(query.into(), None, f).await
    }

    /// The `_each` reads: the rows of `query`, decoded borrowing the data and handed to `f`
    /// (the same `Reading::each` loop as sqlx and the blocking client).
    async fn each<T>(
        &self,
        query: String,
        table: Option<String>,
        f: impl for<'r> FnMut(T::Row<'r>) + Send,
    ) -> Result<u64>
    where
        T: FromCopyRowRef + 'c,
    {
        let Bulk {
            mut driver,
            options,
        } = self.clone();
        let read = async {
            let plan = plan::plan_copy_out::<_, T>(&mut driver, &query, table.as_deref()).await?;
            let (decoder, stream) = driver.copy_out_stream(plan).await?;
            Reading::new(decoder, stream, &options)
                .each(&options, f)
                .await
        };
        trace::traced(Op::start(OpKind::CopyOut, &query), read).await
    }

    /// Reads `query` (with `params` written in, if any); `table` (quoted) when it is
    /// `copy_out`'s `SELECT` of a whole table.
    fn copy_out_owned_query<T>(
        &self,
        query: String,
        table: Option<String>,
        params: &'c [&'c (dyn ToSql + Sync)],
    ) -> CopyOutStream<'c, T>
    where
        T: FromCopyRow + Send + 'c,
    {
        let Bulk {
            mut driver,
            options,
        } = self.clone();
        let mut op = Op::start(OpKind::CopyOut, &query);
        let span = op.handle();
        let setup = async move {
            let started = async {
                let bound;
                let query = if params.is_empty() {
                    &query
                } else {
                    bound = bind_params(&mut driver, &query, params).await?;
                    &bound
                };
                let plan =
                    plan::plan_copy_out::<_, T>(&mut driver, query, table.as_deref()).await?;
                driver.copy_out_stream(plan).await
            };
            match started.await {
                Ok((decoder, stream)) => Ok(OutState {
                    reading: Reading::new(decoder, stream, &options),
                    options,
                    op,
                }),
                Err(e) => {
                    op.fail(&e);
                    Err(e)
                }
            }
        };
        CopyOutStream {
            inner: Box::pin(CopyOutRows::Starting(Box::pin(setup))),
            span,
        }
    }
}

struct OutState<'c, T> {
    reading: Reading<T, TokioCopyOut>,
    options: Options<'c>,
    op: Op,
}

type SetupFuture<'c, T> = Pin<Box<dyn Future<Output = Result<OutState<'c, T>>> + Send + 'c>>;

/// The rows of a `copy_out` as a hand-written stream: the setup (describe, check, start the
/// COPY), then every tuple decoded synchronously as soon as its bytes are there. (A
/// `try_unfold` + `try_flatten` chain built a new step future per row and moved the whole
/// state in and out of it; this costs one match per row.)
// The large variant is the one every row uses, and the enum lives in one box already.
#[allow(clippy::large_enum_variant)]
enum CopyOutRows<'c, T> {
    Starting(SetupFuture<'c, T>),
    Running(OutState<'c, T>),
    Done,
}

impl<T: FromCopyRow> CopyOutRows<'_, T> {
    /// Polls rows into `push` while it returns `true` (it returns `false` once it wants no
    /// more for now). `Ok(true)`: `push` stopped; `Ok(false)`: the rows have ended.
    /// `copy_out`'s one loop, behind both the stream (one row per poll) and
    /// [`CopyOutStream::collect_vec`] (every row that has arrived, per poll).
    #[inline]
    fn poll_rows(
        &mut self,
        cx: &mut Context<'_>,
        push: &mut impl FnMut(T) -> bool,
    ) -> Poll<Result<bool>> {
        loop {
            match self {
                CopyOutRows::Starting(setup) => match setup.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(state)) => *self = CopyOutRows::Running(state),
                    Poll::Ready(Err(e)) => {
                        *self = CopyOutRows::Done;
                        return Poll::Ready(Err(e));
                    }
                },
                CopyOutRows::Running(state) => loop {
                    match state.reading.poll_row(cx, &state.options) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Ok(Some(row))) => {
                            if !push(row) {
                                return Poll::Ready(Ok(true));
                            }
                        }
                        Poll::Ready(Ok(None)) => {
                            let (rows, bytes) = state.reading.totals();
                            state.op.finish(rows, bytes);
                            *self = CopyOutRows::Done;
                            return Poll::Ready(Ok(false));
                        }
                        Poll::Ready(Err(e)) => {
                            state.op.fail(&e);
                            *self = CopyOutRows::Done;
                            return Poll::Ready(Err(e));
                        }
                    }
                },
                CopyOutRows::Done => return Poll::Ready(Ok(false)),
            }
        }
    }
}

/// The rows of a [`copy_out`](Bulk::copy_out), as a `Stream` of `Result<T>`.
///
/// Rows are decoded as they arrive. Dropping the stream early stops reading; the client stays
/// usable.
#[must_use = "streams do nothing unless polled"]
pub struct CopyOutStream<'c, T> {
    inner: Pin<Box<CopyOutRows<'c, T>>>,
    /// The operation's `tracing` span, entered while the stream is polled.
    span: SpanHandle,
}

impl<'c, T: FromCopyRow + Send + 'c> CopyOutStream<'c, T> {
    fn failed(e: Error) -> Self {
        let mut op = Op::start(OpKind::CopyOut, "");
        op.fail(&e);
        CopyOutStream {
            inner: Box::pin(CopyOutRows::Starting(Box::pin(async move { Err(e) }))),
            span: op.handle(),
        }
    }

    /// Reads every row into a `Vec`, stopping at the first error. Each wake-up decodes every
    /// row that has arrived in one loop (cheaper per row than polling the stream row by row).
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::BulkExt;
    ///
    /// #[derive(CopyRow)]
    /// #[copy(table = "users")]
    /// struct User { id: i64, name: String }
    ///
    /// # async fn f(client: &tokio_postgres::Client) -> pgbulk::Result<()> {
    /// let users: Vec<User> = client.bulk().copy_out::<User>().collect_vec().await?;
    /// # Ok(()) }
    /// ```
    pub async fn collect_vec(mut self) -> Result<Vec<T>> {
        let mut out = Vec::new();
        std::future::poll_fn(|cx| {
            let _entered = self.span.enter();
            self.inner.as_mut().get_mut().poll_rows(cx, &mut |row| {
                out.push(row);
                true
            })
        })
        .await?;
        Ok(out)
    }
}

impl<T: FromCopyRow> CopyOutStream<'_, T> {
    /// Reads every row, handing them to `f` in batches: each wake-up decodes every row that
    /// has arrived (up to `max` at a time) into one `Vec`, which `f` drains. For readers that
    /// merge several streams (`copy_out_parallel`) at the cost of one call per batch rather
    /// than one stream poll per row.
    pub(crate) async fn for_each_batch(
        mut self,
        max: usize,
        mut f: impl FnMut(&mut Vec<T>),
    ) -> Result<()> {
        let mut batch = Vec::new();
        std::future::poll_fn(|cx| loop {
            let polled = {
                let _entered = self.span.enter();
                self.inner.as_mut().get_mut().poll_rows(cx, &mut |row| {
                    batch.push(row);
                    batch.len() < max
                })
            };
            if !batch.is_empty() {
                f(&mut batch);
                batch.clear();
            }
            match polled {
                // `push` stopped at `max`: go on at once.
                Poll::Ready(Ok(true)) => {}
                Poll::Ready(Ok(false)) => return Poll::Ready(Ok(())),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        })
        .await
    }
}

impl<T: FromCopyRow> Stream for CopyOutStream<'_, T> {
    type Item = Result<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let _entered = this.span.enter();
        let mut next = None;
        let polled = this.inner.as_mut().get_mut().poll_rows(cx, &mut |row| {
            next = Some(row);
            false
        });
        match polled {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(_)) => Poll::Ready(next.map(Ok)),
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
        }
    }
}

impl<T> fmt::Debug for CopyOutStream<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CopyOutStream").finish_non_exhaustive()
    }
}
