//! The [`Bulk`] handle: `copy_in`, `copy_in_stream`, `copy_out`, `copy_out_query`.

use crate::copy_start::start_copy_in;
use crate::error::{Error, Result};
use crate::format::{self, Next, TupleReader};
use crate::ident;
use crate::plan::{self, OutPlan, Plan};
use crate::row::{CopyRow, FromCopyRow, RawRow};
use crate::trace::{self, Op, OpKind, SpanHandle};
use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, Stream, StreamExt, TryStreamExt};
use std::borrow::Borrow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tokio_postgres::{Client, CopyInSink, Statement, Transaction};

/// Default size of the chunks handed to the COPY sink: 256 KiB.
pub const DEFAULT_FLUSH_BYTES: usize = 256 * 1024;

/// How far a long `copy_in` or `copy_out` has got, as passed to [`Bulk::on_progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// `copy_in`: rows encoded and handed to the server so far. `copy_out`: rows decoded so
    /// far.
    pub rows: u64,
    /// Bytes of binary COPY data handed to the server (`copy_in`) or received from it
    /// (`copy_out`) so far, header and trailer included.
    pub bytes: u64,
}

type ProgressFn<'c> = Arc<dyn Fn(Progress) + Send + Sync + 'c>;

/// Adds [`bulk`](BulkExt::bulk) to tokio-postgres clients and transactions, and to anything
/// that dereferences to them (pooled connections).
pub trait BulkExt {
    /// A bulk-copy handle on this client. Cheap: it borrows the client.
    fn bulk(&self) -> Bulk<'_>;
}

impl BulkExt for Client {
    fn bulk(&self) -> Bulk<'_> {
        Bulk::new(self, false)
    }
}

impl BulkExt for Transaction<'_> {
    fn bulk(&self) -> Bulk<'_> {
        Bulk::new(self.client(), true)
    }
}

/// Typed binary COPY on one client: [`copy_in`](Bulk::copy_in), [`copy_out`](Bulk::copy_out)
/// and their variants, with per-call options.
///
/// Get one with [`BulkExt::bulk`]: `client.bulk().copy_in(&rows).await?`.
#[must_use = "a Bulk handle does nothing until you call copy_in or copy_out on it"]
#[derive(Clone)]
pub struct Bulk<'c> {
    pub(crate) client: &'c Client,
    pub(crate) in_transaction: bool,
    pub(crate) table: Option<String>,
    pub(crate) flush_bytes: usize,
    pub(crate) progress: Option<ProgressFn<'c>>,
}

impl fmt::Debug for Bulk<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bulk")
            .field("in_transaction", &self.in_transaction)
            .field("table", &self.table)
            .field("flush_bytes", &self.flush_bytes)
            .field("progress", &self.progress.is_some())
            .finish_non_exhaustive()
    }
}

impl<'c> Bulk<'c> {
    fn new(client: &'c Client, in_transaction: bool) -> Self {
        Bulk {
            client,
            in_transaction,
            table: None,
            flush_bytes: DEFAULT_FLUSH_BYTES,
            progress: None,
        }
    }

    /// Uses `table` instead of the row type's `#[copy(table = "..")]` for this handle's calls.
    ///
    /// Names are taken literally (case-sensitive); `schema.table` is schema-qualified; a part in
    /// double quotes may contain dots or quotes (`"odd.schema"."t"`). Every name is quoted
    /// when sent.
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = Some(table.into());
        self
    }

    /// Hands COPY data to the server in chunks of about `bytes` (default 256 KiB, at least
    /// 4 KiB). Memory use of `copy_in` is bounded by a few chunks, whatever the row count.
    pub fn flush_bytes(mut self, bytes: usize) -> Self {
        self.flush_bytes = bytes.max(4096);
        self
    }

    /// Calls `f` with the rows and bytes so far: during `copy_in` after each chunk handed to the
    /// server (see [`flush_bytes`](Bulk::flush_bytes)), during `copy_out` each time about
    /// `flush_bytes` more data has arrived; and once at the end of both, with the totals.
    ///
    /// `f` runs on the task driving the copy, between chunks: keep it cheap (update a counter
    /// or a progress bar, not a blocking write).
    pub fn on_progress(mut self, f: impl Fn(Progress) + Send + Sync + 'c) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }

    /// Whether this handle runs inside a caller's transaction.
    pub fn in_transaction(&self) -> bool {
        self.in_transaction
    }

    /// The underlying client.
    pub fn client(&self) -> &'c Client {
        self.client
    }

    pub(crate) fn table_for<T: CopyRow + ?Sized>(&self) -> &str {
        self.table.as_deref().unwrap_or(T::TABLE)
    }

    /// Describes `T`'s table on the server and checks every field against its column.
    ///
    /// Returns all mismatches at once as an [`ErrorKind::TypeMismatch`](crate::ErrorKind)
    /// error. Keep the plan to skip this round trip for later batches with
    /// [`copy_in_with_plan`](Bulk::copy_in_with_plan).
    pub fn plan<T: CopyRow + ?Sized>(
        &self,
    ) -> impl Future<Output = Result<Plan<T>>> + Send + use<'c, T> {
        let client = self.client;
        let table = self.table_for::<T>().to_owned();
        async move { plan::plan_copy_in::<T>(client, &table).await }
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
    /// The returned future does not borrow this handle, only the client: it can be stored,
    /// joined or selected on.
    pub fn copy_in<T, I>(&self, rows: I) -> impl Future<Output = Result<u64>> + use<'c, T, I>
    where
        T: CopyRow,
        I: IntoIterator<Item = T>,
    {
        let bulk = self.clone();
        let op = Op::start(OpKind::CopyIn, self.table_for::<T>());
        trace::traced(op, async move {
            let plan = bulk.plan::<T>().await?;
            bulk.write_rows(&plan, None, rows).await
        })
    }

    /// [`copy_in`](Bulk::copy_in) with a plan made earlier by [`plan`](Bulk::plan): no
    /// describe round trip. The plan's table is used (not [`table`](Bulk::table)). `rows` may
    /// yield `T` or `&T`.
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
        let bulk = self.clone();
        let op = Op::start(OpKind::CopyIn, plan.table());
        trace::traced(
            op,
            async move { bulk.write_rows(plan, statement, rows).await },
        )
    }

    /// Writes `rows`; returns the rows written and the bytes sent. `statement` is the plan's
    /// COPY statement prepared on this connection, if there is one (one round trip fewer).
    async fn write_rows<T, I>(
        &self,
        plan: &Plan<T>,
        statement: Option<&Statement>,
        rows: I,
    ) -> Result<(u64, u64)>
    where
        T: CopyRow + ?Sized,
        I: IntoIterator,
        I::Item: Borrow<T>,
    {
        let mut writer = CopyWriter::start(self, plan, statement).await?;
        for row in rows {
            writer.push(row.borrow()).await?;
        }
        writer.finish().await
    }

    /// Prepares `plan`'s COPY statement on this connection, for many small batches: each
    /// [`PreparedCopyIn::copy_in`] then takes one round trip fewer than
    /// [`copy_in_with_plan`](Bulk::copy_in_with_plan) (tokio-postgres prepares a COPY given as
    /// text on every call, then runs it).
    ///
    /// The result borrows this handle's client (or transaction), so it can only be used on the
    /// connection the statement was prepared on; dropping it closes the statement.
    pub fn prepare_copy_in<T: CopyRow + ?Sized>(
        &self,
        plan: &Plan<T>,
    ) -> impl Future<Output = Result<PreparedCopyIn<'c, T>>> + use<'c, T> {
        let bulk = self.clone();
        let plan = plan.clone();
        async move {
            let statement = bulk
                .client
                .prepare(plan.copy_statement())
                .await
                .map_err(|e| Error::pg("could not prepare the COPY statement", e))?;
            Ok(PreparedCopyIn {
                bulk,
                plan,
                statement,
            })
        }
    }

    /// Like [`copy_in`](Bulk::copy_in), for an asynchronous source of rows. An `Err` from the
    /// stream aborts the COPY (no row is written) and is returned as
    /// [`ErrorKind::Input`](crate::ErrorKind::Input) with the row index.
    pub fn copy_in_stream<T, S, E>(
        &self,
        rows: S,
    ) -> impl Future<Output = Result<u64>> + use<'c, T, S, E>
    where
        T: CopyRow,
        S: Stream<Item = std::result::Result<T, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let bulk = self.clone();
        let op = Op::start(OpKind::CopyInStream, self.table_for::<T>());
        trace::traced(op, async move {
            let plan = bulk.plan::<T>().await?;
            let mut writer = CopyWriter::start(&bulk, &plan, None).await?;
            let mut rows = std::pin::pin!(rows);
            while let Some(row) = rows.next().await {
                match row {
                    Ok(row) => writer.push(&row).await?,
                    Err(e) => return Err(Error::input(writer.rows, e.into())),
                }
            }
            writer.finish().await
        })
    }

    /// Reads all of `T`'s table (or the [`table`](Bulk::table) override), as a stream of rows.
    ///
    /// Nothing happens until the stream is polled; the query is described and each field
    /// checked against its column first. Collect with
    /// [`collect_vec`](CopyOutStream::collect_vec) or any `TryStreamExt` method.
    pub fn copy_out<T>(&self) -> CopyOutStream<'c, T>
    where
        T: FromCopyRow + Send + 'c,
    {
        let table = self.table_for::<T>();
        match (plan::select_all::<T>(table), ident::quote_table(table)) {
            (Ok(query), Ok(quoted)) => self.copy_out_owned_query::<T>(query, Some(quoted)),
            (Err(e), _) | (_, Err(e)) => CopyOutStream::failed(e),
        }
    }

    /// Reads the rows of `query` (a `SELECT`, `VALUES`, `TABLE`, or `INSERT/UPDATE/DELETE ..
    /// RETURNING`) into `T`. Columns are matched to fields by name, in whatever order the query
    /// returns them; columns no field wants are read and skipped. The query cannot take `$n`
    /// parameters (COPY cannot bind them).
    pub fn copy_out_query<T>(&self, query: impl Into<String>) -> CopyOutStream<'c, T>
    where
        T: FromCopyRow + Send + 'c,
    {
        self.copy_out_owned_query::<T>(query.into(), None)
    }

    /// Reads `query`; `table` (quoted) when it is `copy_out`'s `SELECT` of a whole table.
    fn copy_out_owned_query<T>(&self, query: String, table: Option<String>) -> CopyOutStream<'c, T>
    where
        T: FromCopyRow + Send + 'c,
    {
        let client = self.client;
        let mut op = Op::start(OpKind::CopyOut, &query);
        let span = op.handle();
        let progress = self.progress.clone();
        let report_every = self.flush_bytes as u64;
        let setup = async move {
            let started = async {
                let plan = match (plan::plan_copy_out::<T>(client, &query).await, table) {
                    (Err(e), Some(table)) if plan::is_undefined_column(&e) => {
                        let described = client
                            .prepare(&plan::describe_table_sql(&table))
                            .await
                            .map_err(|e| Error::pg(&format!("cannot describe table {table}"), e))?;
                        return Err(plan::missing_columns::<T>(&table, described.columns(), e));
                    }
                    (plan, _) => plan?,
                };
                let stream = client
                    .copy_out(plan.copy_sql.as_str())
                    .await
                    .map_err(|e| Error::pg("COPY TO STDOUT failed", e))?;
                Ok((plan, stream))
            };
            let (plan, stream) = match started.await {
                Ok(started) => started,
                Err(e) => {
                    op.fail(&e);
                    return Err(e);
                }
            };
            let columns = plan.map.len();
            Ok(OutState::<T> {
                stream: Box::pin(stream),
                reader: TupleReader::new(columns),
                slots: plan.slots(),
                plan,
                row: 0,
                bytes: 0,
                reported: 0,
                report_every,
                progress,
                op,
                _row: std::marker::PhantomData,
            })
        };
        let rows = CopyOutRows::Starting(Box::pin(setup));
        CopyOutStream {
            inner: Box::pin(rows),
            span,
        }
    }
}

/// A plan's COPY statement prepared on one connection, from
/// [`Bulk::prepare_copy_in`]: for many small batches into the same table.
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
/// let plan = client.bulk().plan::<Event>().await?;
/// let events = client.bulk().prepare_copy_in(&plan).await?;
/// for batch in &batches {
///     events.copy_in(batch).await?; // one round trip fewer than copy_in_with_plan
/// }
/// # Ok(()) }
/// ```
pub struct PreparedCopyIn<'c, T: ?Sized> {
    bulk: Bulk<'c>,
    plan: Plan<T>,
    statement: Statement,
}

impl<'c, T: CopyRow + ?Sized> PreparedCopyIn<'c, T> {
    /// [`Bulk::copy_in_with_plan`] through the prepared statement: the same checks, errors and
    /// all-or-nothing behaviour, one round trip fewer. `rows` may yield `T` or `&T`.
    pub fn copy_in<'s, I>(
        &'s self,
        rows: I,
    ) -> impl Future<Output = Result<u64>> + use<'s, 'c, T, I>
    where
        I: IntoIterator,
        I::Item: Borrow<T>,
    {
        self.bulk
            .copy_in_traced(&self.plan, Some(&self.statement), rows)
    }

    /// The plan the statement was prepared from.
    pub fn plan(&self) -> &Plan<T> {
        &self.plan
    }
}

impl<T: ?Sized> fmt::Debug for PreparedCopyIn<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedCopyIn")
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
}

/// Encodes rows into one reused buffer and hands it to the COPY sink in chunks.
pub(crate) struct CopyWriter<'a, 'c, T: ?Sized> {
    bulk: &'a Bulk<'c>,
    plan: &'a Plan<T>,
    sink: Pin<Box<CopyInSink<Bytes>>>,
    buf: BytesMut,
    rows: u64,
    bytes: u64,
}

impl<'a, 'c, T: CopyRow + ?Sized> CopyWriter<'a, 'c, T> {
    /// Starts the COPY: through `statement`, the plan's COPY statement already prepared on
    /// `bulk`'s connection, if there is one (one round trip fewer), else its text.
    pub(crate) async fn start(
        bulk: &'a Bulk<'c>,
        plan: &'a Plan<T>,
        statement: Option<&Statement>,
    ) -> Result<Self> {
        let sink = start_copy_in(bulk.client, plan, statement, "COPY FROM STDIN failed").await?;
        let mut buf = BytesMut::with_capacity(bulk.flush_bytes + bulk.flush_bytes / 4);
        format::write_header(&mut buf);
        Ok(CopyWriter {
            bulk,
            plan,
            sink: Box::pin(sink),
            buf,
            rows: 0,
            bytes: 0,
        })
    }

    /// Encodes one row; sends a chunk when the buffer is full. On error the writer is usually
    /// dropped by the caller, which aborts the COPY; after an [`Encode`](crate::ErrorKind)
    /// error the partial tuple has been removed, so quarantine can skip the row and go on.
    #[inline]
    pub(crate) async fn push(&mut self, row: &T) -> Result<()> {
        crate::row::encode_tuple(
            row,
            self.plan.types(),
            self.plan.server(),
            &mut self.buf,
            self.rows,
        )?;
        self.rows += 1;
        if self.buf.len() >= self.bulk.flush_bytes {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        let chunk = self.buf.split().freeze();
        self.bytes += chunk.len() as u64;
        // Sending waits until the connection has taken the previous chunk: back-pressure.
        if let Err(e) = self.sink.send(chunk).await {
            return Err(server_error::<T>(e));
        }
        // Reuse the allocation once the connection has released the chunk.
        self.buf
            .reserve(self.bulk.flush_bytes + self.bulk.flush_bytes / 4);
        if let Some(progress) = &self.bulk.progress {
            progress(Progress {
                rows: self.rows,
                bytes: self.bytes,
            });
        }
        Ok(())
    }

    /// Ends the COPY; returns the rows the server reports written and the bytes sent.
    pub(crate) async fn finish(mut self) -> Result<(u64, u64)> {
        format::write_trailer(&mut self.buf);
        self.flush().await?;
        let written = self
            .sink
            .as_mut()
            .finish()
            .await
            .map_err(server_error::<T>)?;
        Ok((written, self.bytes))
    }
}

/// Maps a server error during `COPY FROM STDIN` to the caller's row index and field, from the
/// error's `COPY t, line N, column c` context (N counts tuples from 1) or its key detail.
pub(crate) fn server_error<T: CopyRow + ?Sized>(err: tokio_postgres::Error) -> Error {
    server_error_in::<T>("COPY aborted, no row was written", err)
}

/// [`server_error`] with another `context` for the message.
pub(crate) fn server_error_in<T: CopyRow + ?Sized>(
    context: &str,
    err: tokio_postgres::Error,
) -> Error {
    let mut located = (None, None);
    if let Some(db) = err.as_db_error() {
        if let Some(context) = db.where_() {
            located = parse_copy_context(context);
        }
        if located.1.is_none() {
            located.1 = db
                .column()
                .map(str::to_owned)
                .or_else(|| db.detail().and_then(key_columns));
        }
    }
    let mut e = Error::pg(context, err);
    if let Some(line) = located.0 {
        e = e.with_row(line.saturating_sub(1));
    }
    if let Some(column) = located.1 {
        if let Some(c) = T::COLUMNS.iter().find(|c| c.name == column) {
            e = e.with_field(c.field);
        } else if let Some(c) = T::COLUMNS
            .iter()
            .find(|c| column.split(", ").next() == Some(c.name))
        {
            e = e.with_field(c.field);
        }
        e = e.with_column(column);
    }
    e
}

/// Parses `COPY t, line N[, column c[: "value"]]` into `(N, c)`.
fn parse_copy_context(context: &str) -> (Option<u64>, Option<String>) {
    // The context may have several lines (e.g. from a trigger); the COPY line is one of them.
    for line in context.lines() {
        if !line.starts_with("COPY ") {
            continue;
        }
        // Search from the right: the table name itself may contain ", line ".
        let mut search = line;
        while let Some(at) = search.rfind(", line ") {
            let rest = &line[at + ", line ".len()..];
            let digits: &str = &rest[..rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len())];
            if let Ok(n) = digits.parse::<u64>() {
                let after = &rest[digits.len()..];
                let column = after.strip_prefix(", column ").map(|c| {
                    // Text-format errors append `: "value"`; binary ones do not.
                    c.split_once(": ").map_or(c, |(name, _)| name).to_owned()
                });
                return (Some(n), column);
            }
            search = &line[..at];
        }
    }
    (None, None)
}

/// The column list of a `Key (a, b)=(..) already exists.` detail, unquoted (the server quotes
/// names that need it: `Key ("My ""Col""")=(1)`), joined with `, `.
fn key_columns(detail: &str) -> Option<String> {
    let mut rest = detail.strip_prefix("Key (")?.chars().peekable();
    let mut names = Vec::new();
    let mut name = String::new();
    loop {
        match rest.next()? {
            '"' => loop {
                match rest.next()? {
                    '"' if rest.peek() == Some(&'"') => {
                        rest.next();
                        name.push('"');
                    }
                    '"' => break,
                    c => name.push(c),
                }
            },
            ',' => {
                names.push(std::mem::take(&mut name));
                while rest.peek() == Some(&' ') {
                    rest.next();
                }
            }
            ')' => {
                names.push(name);
                return (rest.next() == Some('=')).then(|| names.join(", "));
            }
            c => name.push(c),
        }
    }
}

struct OutState<'c, T> {
    stream: Pin<Box<tokio_postgres::CopyOutStream>>,
    reader: TupleReader,
    plan: OutPlan,
    slots: Vec<(u32, i32)>,
    /// Rows decoded so far.
    row: u64,
    /// Bytes of COPY data received so far, and at the last progress report.
    bytes: u64,
    reported: u64,
    report_every: u64,
    progress: Option<ProgressFn<'c>>,
    op: Op,
    _row: std::marker::PhantomData<fn() -> T>,
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

impl<T: FromCopyRow> Stream for CopyOutRows<'_, T> {
    type Item = Result<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match this {
                CopyOutRows::Starting(setup) => match setup.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(state)) => *this = CopyOutRows::Running(state),
                    Poll::Ready(Err(e)) => {
                        *this = CopyOutRows::Done;
                        return Poll::Ready(Some(Err(e)));
                    }
                },
                CopyOutRows::Running(state) => {
                    return match state.poll_row(cx) {
                        Poll::Pending => Poll::Pending,
                        Poll::Ready(Ok(Some(row))) => Poll::Ready(Some(Ok(row))),
                        Poll::Ready(Ok(None)) => {
                            state.report();
                            state.op.finish(state.row, state.bytes);
                            *this = CopyOutRows::Done;
                            Poll::Ready(None)
                        }
                        Poll::Ready(Err(e)) => {
                            state.op.fail(&e);
                            *this = CopyOutRows::Done;
                            Poll::Ready(Some(Err(e)))
                        }
                    };
                }
                CopyOutRows::Done => return Poll::Ready(None),
            }
        }
    }
}

impl<T: FromCopyRow> OutState<'_, T> {
    fn report(&mut self) {
        if let Some(progress) = &self.progress {
            self.reported = self.bytes;
            progress(Progress {
                rows: self.row,
                bytes: self.bytes,
            });
        }
    }

    /// The next row: decoded from bytes already received, or after polling for more.
    #[inline]
    fn poll_row(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<T>>> {
        loop {
            let next = self
                .reader
                .next_tuple(&self.plan.map, &mut self.slots)
                .map_err(|e| Error::protocol(e.to_string()).with_row(self.row))?;
            match next {
                Next::Tuple => {
                    let raw = RawRow::new(self.reader.tuple_bytes(), &self.slots);
                    let value = crate::row::decode_tuple::<T>(raw, &self.plan.types, self.row)?;
                    self.row += 1;
                    return Poll::Ready(Ok(Some(value)));
                }
                Next::NeedMore | Next::End => match ready!(self.stream.as_mut().poll_next(cx)) {
                    Some(Ok(chunk)) => {
                        if next == Next::End && !chunk.is_empty() {
                            return Poll::Ready(Err(Error::protocol(
                                "COPY data continues after its trailer",
                            )));
                        }
                        self.bytes += chunk.len() as u64;
                        if self.bytes - self.reported >= self.report_every {
                            self.report();
                        }
                        self.reader.feed_bytes(chunk);
                    }
                    Some(Err(e)) => {
                        return Poll::Ready(Err(
                            Error::pg("COPY TO STDOUT failed", e).with_row(self.row)
                        ))
                    }
                    None if next == Next::End => return Poll::Ready(Ok(None)),
                    None => {
                        return Poll::Ready(Err(Error::protocol(
                            "COPY data ended before its trailer",
                        )
                        .with_row(self.row)))
                    }
                },
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
    inner: Pin<Box<dyn Stream<Item = Result<T>> + Send + 'c>>,
    /// The operation's `tracing` span, entered while the stream is polled.
    span: SpanHandle,
}

impl<'c, T: Send + 'c> CopyOutStream<'c, T> {
    fn failed(e: Error) -> Self {
        let mut op = Op::start(OpKind::CopyOut, "");
        op.fail(&e);
        CopyOutStream {
            inner: Box::pin(futures_util::stream::once(async move { Err(e) })),
            span: op.handle(),
        }
    }

    /// Reads every row into a `Vec`, stopping at the first error.
    pub async fn collect_vec(self) -> Result<Vec<T>> {
        self.try_collect().await
    }
}

impl<T> Stream for CopyOutStream<'_, T> {
    type Item = Result<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let _entered = this.span.enter();
        this.inner.as_mut().poll_next(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<T> fmt::Debug for CopyOutStream<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CopyOutStream").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_copy_context() {
        assert_eq!(parse_copy_context("COPY t, line 5000"), (Some(5000), None));
        assert_eq!(
            parse_copy_context("COPY t, line 3, column id"),
            (Some(3), Some("id".into()))
        );
        assert_eq!(
            parse_copy_context("COPY t, line 3, column name: \"x\""),
            (Some(3), Some("name".into()))
        );
        assert_eq!(
            parse_copy_context("COPY weird, line 9, name, line 12, column a"),
            (Some(12), Some("a".into()))
        );
        assert_eq!(
            parse_copy_context("PL/pgSQL function f() line 3 at RAISE\nCOPY t, line 7"),
            (Some(7), None)
        );
        assert_eq!(parse_copy_context("SQL statement"), (None, None));
    }

    #[test]
    fn parses_key_detail() {
        assert_eq!(
            key_columns("Key (id)=(4999) already exists."),
            Some("id".into())
        );
        assert_eq!(
            key_columns("Key (a, b)=(1, 2) already exists."),
            Some("a, b".into())
        );
        assert_eq!(key_columns("Failing row contains (1)."), None);
        assert_eq!(
            key_columns(r#"Key ("Group ""By"" Key", "a, b")=(90, 1) already exists."#),
            Some("Group \"By\" Key, a, b".into())
        );
    }
}
