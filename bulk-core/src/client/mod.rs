//! The drivers: how pgbulk's operations reach a PostgreSQL connection.
//!
//! Every operation (`copy_in`, `copy_out`, upserts, quarantine, …) is written once, as an
//! `async fn` generic over [`Driver`]; a driver only runs statements, describes a query, and
//! opens a COPY in either direction. The framing, plans, SQL text, transactions and error
//! mapping are shared.
//!
//! - [`tokio`]: tokio-postgres `Client` / `Transaction` (and pools through them).
//! - `sync` (feature `sync`): the blocking `postgres` crate. Its driver's futures do their
//!   blocking call when polled and never return `Pending`, so the blocking API drives the same
//!   operations to completion on the calling thread (`block_on` below) — one implementation of
//!   each operation for both worlds.

use crate::error::Result;
use crate::server::ServerFacts;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use postgres_types::Type;

pub(crate) mod copy_start;
#[cfg(any(feature = "deadpool", feature = "bb8"))]
mod pools;
#[cfg(feature = "sqlx")]
pub(crate) mod sqlx;
#[cfg(feature = "sync")]
pub(crate) mod sync;
pub(crate) mod tokio;

/// The rows of a simple query, each value as text (`None` for NULL).
pub(crate) type TextRows = Vec<Vec<Option<String>>>;

/// What one statement of a simple query returned: its rows (as [`TextRows`]) and its row
/// count (`INSERT`, `DELETE`, `COPY`, `SELECT` ..; 0 for a statement without one).
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) rows: TextRows,
    pub(crate) count: u64,
}

/// A COPY's end and the statements sent right behind it: the COPY's result, and their
/// outcomes if they ran (see [`CopySink::finish_then`]).
pub(crate) type Finished<T> = (Result<T>, Option<Result<Vec<Outcome>>>);

/// A target's description and another query's rows, asked for in one round trip (see
/// [`Driver::describe_target_and`]).
pub(crate) type DescribedAnd = (Result<(Described, ServerFacts)>, Result<TextRows>);

/// One column of a described query: its name and its resolved type.
pub(crate) type DescribedColumn = (String, Type);

/// A described statement: its result columns and its number of `$n` parameters.
#[derive(Debug, Clone, Default)]
pub(crate) struct Described {
    /// The result columns, in order, with enums, composites, domains and arrays resolved to
    /// full `postgres_types::Type`s (a driver that only gets OIDs looks them up itself).
    pub(crate) columns: Vec<DescribedColumn>,
    /// How many `$n` parameters the statement takes.
    pub(crate) params: usize,
    /// The types the server inferred for them (resolved like the columns').
    pub(crate) param_types: Vec<Type>,
    /// Each result column's type modifier (`atttypmod`: `varchar(n)`'s length, `numeric(p, s)`'s
    /// precision and scale), where the client library reports them.
    pub(crate) typmods: Option<Vec<i32>>,
}

/// A parameter value already encoded in binary by its `ToSql` impl, with its type (`value`
/// `None`: NULL). Drivers bind it as it is.
#[derive(Debug)]
pub(crate) struct RawParam {
    pub(crate) ty: Type,
    pub(crate) value: Option<Vec<u8>>,
}

impl RawParam {
    /// `params` with their types, as the typed calls of tokio-postgres and `postgres` take
    /// them (`query_typed`, `query_typed_raw`).
    pub(crate) fn typed(
        params: &[RawParam],
    ) -> impl ExactSizeIterator<Item = (&(dyn postgres_types::ToSql + Sync), Type)> + Send + Sync
    {
        params
            .iter()
            .map(|p| (p as &(dyn postgres_types::ToSql + Sync), p.ty.clone()))
    }
}

/// What [`Driver::run_bound`] returns: `before`'s outcomes, the bound statement's (its row
/// count), then `after`'s; and the bound statement's rows, if they were asked for.
fn bound_outcomes(
    mut before: Vec<Outcome>,
    (count, rows): (u64, Option<BoundRows>),
    after: Vec<Outcome>,
) -> (Vec<Outcome>, Option<BoundRows>) {
    before.push(Outcome {
        rows: Vec::new(),
        count,
    });
    before.extend(after);
    (before, rows)
}

/// The rows a bound statement returned (its `RETURNING` rows), as one binary COPY stream for
/// the one decoder: a header, one tuple per row, the trailer. A `DataRow`'s body (binary
/// results) has the COPY tuple's layout — a 16-bit field count, then each field's 32-bit
/// length (-1 for NULL) and bytes — so each row is written as it came.
#[derive(Debug)]
pub(crate) struct BoundRows {
    /// The result columns (name and resolved type); empty when no row came back.
    pub(crate) columns: Vec<DescribedColumn>,
    /// The COPY stream.
    pub(crate) data: bytes::BytesMut,
}

impl BoundRows {
    /// No rows yet: the header only.
    pub(crate) fn new() -> Self {
        let mut data = bytes::BytesMut::new();
        crate::engine::write_header(&mut data);
        BoundRows {
            columns: Vec::new(),
            data,
        }
    }

    /// Starts a row of `fields` fields; each follows with [`field`](Self::field).
    pub(crate) fn row(&mut self, fields: usize) -> Result<()> {
        let count = i16::try_from(fields).map_err(|_| too_large())?;
        self.data.extend_from_slice(&count.to_be_bytes());
        Ok(())
    }

    /// Appends the row's next field: its bytes, or `None` for NULL.
    pub(crate) fn field(&mut self, value: Option<&[u8]>) -> Result<()> {
        match value {
            None => self.data.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(bytes) => {
                let len = i32::try_from(bytes.len()).map_err(|_| too_large())?;
                self.data.extend_from_slice(&len.to_be_bytes());
                self.data.extend_from_slice(bytes);
            }
        }
        Ok(())
    }

    /// Appends a row of tokio-postgres (or `postgres`, the same type), taking the columns from
    /// the first.
    pub(crate) fn push_row(&mut self, row: &tokio_postgres::Row) -> Result<()> {
        if self.columns.is_empty() {
            self.columns = row
                .columns()
                .iter()
                .map(|c| (c.name().to_owned(), c.type_().clone()))
                .collect();
        }
        self.row(row.len())?;
        for i in 0..row.len() {
            let value = row
                .try_get::<_, RawField<'_>>(i)
                .map_err(crate::error::Error::server)?;
            self.field(value.0)?;
        }
        Ok(())
    }

    /// The stream, its trailer written.
    pub(crate) fn finish(mut self) -> Self {
        crate::engine::write_trailer(&mut self.data);
        self
    }
}

/// The error for a returned row or value past the COPY format's limits.
fn too_large() -> crate::error::Error {
    crate::error::Error::protocol("a returned row is too large to read")
}

/// A result field's bytes as the server sent them, for [`BoundRows`]: any type, read as is.
struct RawField<'a>(Option<&'a [u8]>);

impl<'a> postgres_types::FromSql<'a> for RawField<'a> {
    fn from_sql(
        _: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawField(Some(raw)))
    }

    fn from_sql_null(
        _: &Type,
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawField(None))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

impl postgres_types::ToSql for RawParam {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<postgres_types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match &self.value {
            None => Ok(postgres_types::IsNull::Yes),
            Some(value) => {
                out.extend_from_slice(value);
                Ok(postgres_types::IsNull::No)
            }
        }
    }

    // Encoded for its own type already: the driver binds it with exactly that type.
    fn accepts(_: &Type) -> bool {
        true
    }

    postgres_types::to_sql_checked!();
}

/// A `COPY .. FROM STDIN` to start: its text, and the (quoted) table and the column names it
/// writes, with which a driver checks whether the server would refuse it at its start (see
/// [`copy_start`]).
pub(crate) struct CopyTarget<'s> {
    pub(crate) sql: &'s str,
    pub(crate) table: &'s str,
    pub(crate) columns: Vec<&'s str>,
    /// A temporary table the operation itself just made (a staging table): nothing refuses a
    /// COPY into it at its start, so no check is needed.
    pub(crate) own: bool,
    /// The plan already passed the full refusal check on an earlier COPY: only the session's
    /// read-only state is checked (a cheap query the server need not plan), the full check
    /// only when it is on. Privileges, row-level security and generated columns are the
    /// table's and the role's; a reused plan assumes they have not changed (if they have, the
    /// refused COPY loses the connection and says so).
    pub(crate) checked: bool,
}

/// A connection (or transaction) that pgbulk's operations run on.
///
/// # Implementing a driver
///
/// A driver is a thin adapter over a client library. It must:
///
/// - [`describe`](Driver::describe) a statement without running it: the result columns'
///   names and `postgres_types::Type`s (resolved: enums, composites, domains, arrays of them)
///   and the parameter count; [`describe_target`](Driver::describe_target) also runs
///   [`SERVER_SQL`](crate::server::SERVER_SQL) (the server's version, whether it has Citus),
///   in the same round trip where the client can pipeline;
/// - [`execute`](Driver::execute) one or more `;`-separated statements with the simple query
///   protocol, and [`query_batch`](Driver::query_batch) for ones whose rows or row counts it
///   needs (as text);
/// - open a `COPY .. FROM STDIN` ([`copy_in`](Driver::copy_in)) returning a boxed
///   [`CopySink`] — a COPY the server would refuse at its start must be refused in step, so
///   the connection stays usable (see [`copy_start`]) — and a `COPY .. TO STDOUT` ([`copy_out`](Driver::copy_out)) returning a boxed
///   stream of data pieces;
/// - say whether it runs inside the caller's transaction ([`in_transaction`](Driver::in_transaction)):
///   operations then use savepoints, otherwise their own `BEGIN .. COMMIT`;
/// - [`queue_rollback`](Driver::queue_rollback): send a statement without waiting, from
///   `Drop`, when an operation's future is dropped while its transaction is open.
///
/// Errors are returned as [`Error`](crate::Error)s made from the client's error without any
/// context (pgbulk adds what it was doing); server errors must keep the server's SQLSTATE,
/// detail, column and `where` context, which pgbulk reads to name the failing row.
///
/// The methods return boxed `Send` futures (so the operations built on them are `Send`, which
/// async callers need to spawn them; an `impl Future + Send` in the trait runs into the
/// compiler's "not general enough" limits with a driver that borrows its client). They may do
/// blocking work when polled (the sync driver does), but must not need a particular runtime
/// beyond what the client library itself needs.
pub(crate) trait Driver: Send {
    /// Whether this driver runs inside a caller's transaction.
    fn in_transaction(&self) -> bool;

    /// How a caller opens a transaction on this client, as error messages name it.
    fn begin_hint(&self) -> &'static str {
        "`client.transaction()`"
    }

    /// Describes `sql` (prepares it without running it).
    fn describe<'a>(&'a mut self, sql: &'a str) -> BoxFuture<'a, Result<Described>>;

    /// [`describe`](Driver::describe)s `sql`, a table's `SELECT *`, and reads the
    /// [`ServerFacts`] with [`SERVER_SQL`](crate::server::SERVER_SQL) (pipelined with the
    /// describe where the client can).
    fn describe_target<'a>(
        &'a mut self,
        sql: &'a str,
    ) -> BoxFuture<'a, Result<(Described, ServerFacts)>>;

    /// Runs `sql`, one or more statements, with the simple query protocol.
    fn execute<'a>(&'a mut self, sql: &'a str) -> BoxFuture<'a, Result<()>>;

    /// Runs `sql` with the simple query protocol; returns each statement's [`Outcome`].
    fn query_batch<'a>(&'a mut self, sql: &'a str) -> BoxFuture<'a, Result<Vec<Outcome>>>;

    /// Runs `sql` with the simple query protocol; returns every row of every statement, each
    /// value as text (`None` for NULL).
    fn query_text<'a>(&'a mut self, sql: &'a str) -> BoxFuture<'a, Result<TextRows>> {
        Box::pin(async move {
            let outcomes = self.query_batch(sql).await?;
            Ok(outcomes.into_iter().flat_map(|o| o.rows).collect())
        })
    }

    /// Runs `sql`, one statement, with the extended protocol, binding `params` (each with its
    /// type); returns its rows, every column being `text` (`None` for NULL).
    fn query_params_text<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [RawParam],
    ) -> BoxFuture<'a, Result<TextRows>>;

    /// Runs `sql`, one statement, with the extended protocol, binding `params` in binary with
    /// their types given (no round trip to prepare it where the client can skip one); returns
    /// its row count and, with `rows`, the rows it returned (results in binary).
    fn execute_params<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [RawParam],
        rows: bool,
    ) -> BoxFuture<'a, Result<(u64, Option<BoundRows>)>>;

    /// Runs `before` (simple query protocol; may be empty), then `sql` with `params` bound
    /// ([`execute_params`](Driver::execute_params), `rows` as there), then `after` (simple
    /// query; may be empty), in one round trip where the driver can pipeline them. Returns the
    /// outcomes of `before`'s statements, then `sql`'s (its row count), then `after`'s, and
    /// `sql`'s rows if asked for. An error of any part is returned; the parts after it do not
    /// run, or fail in the aborted transaction.
    fn run_bound<'a>(
        &'a mut self,
        before: &'a str,
        sql: &'a str,
        params: &'a [RawParam],
        rows: bool,
        after: &'a str,
    ) -> BoxFuture<'a, Result<(Vec<Outcome>, Option<BoundRows>)>> {
        Box::pin(async move {
            let before = if before.is_empty() {
                Vec::new()
            } else {
                self.query_batch(before).await?
            };
            let bound = self.execute_params(sql, params, rows).await?;
            let after = if after.is_empty() {
                Vec::new()
            } else {
                self.query_batch(after).await?
            };
            Ok(bound_outcomes(before, bound, after))
        })
    }

    /// Starts `target`'s `COPY .. FROM STDIN (FORMAT binary)`, refusing in step one the server
    /// would refuse at its start. (The future owns what it needs of `target`: the sink may
    /// outlive it.)
    fn copy_in<'a>(&'a mut self, target: &CopyTarget<'_>)
        -> BoxFuture<'a, Result<BoxCopySink<'a>>>;

    /// Runs `before` (one or more statements, simple query protocol), then starts `target`'s
    /// COPY (an [`own`](CopyTarget::own) table, which `before` may create), in one round trip
    /// where the driver can pipeline them. An error of `before` is returned as is; the COPY is
    /// then not started.
    fn copy_in_after<'a>(
        &'a mut self,
        before: &'a str,
        target: &CopyTarget<'_>,
    ) -> BoxFuture<'a, Result<BoxCopySink<'a>>> {
        let (sql, table) = (target.sql.to_owned(), target.table.to_owned());
        let columns: Vec<String> = target.columns.iter().map(|&c| c.to_owned()).collect();
        let (own, checked) = (target.own, target.checked);
        Box::pin(async move {
            self.execute(before).await?;
            let target = CopyTarget {
                sql: &sql,
                table: &table,
                columns: columns.iter().map(String::as_str).collect(),
                own,
                checked,
            };
            self.copy_in(&target).await
        })
    }

    /// [`describe_target`](Driver::describe_target) for an operation that stages its rows
    /// (the description then includes the type modifiers, which name the staging table's
    /// shape, where the driver can learn them), and `also` (a simple query whose rows are
    /// wanted; none: no rows), in one round trip where the driver can pipeline them. Each has
    /// its own result.
    fn describe_target_and<'a>(
        &'a mut self,
        sql: &'a str,
        also: Option<&'a str>,
    ) -> BoxFuture<'a, DescribedAnd> {
        Box::pin(async move {
            let described = self.describe_target(sql).await;
            let Some(also) = also.filter(|_| described.is_ok()) else {
                return (described, Ok(Vec::new()));
            };
            (described, self.query_text(also).await)
        })
    }

    /// Starts `sql`, a `COPY .. TO STDOUT (FORMAT binary)`. (The future owns a copy of `sql`
    /// if it needs it.)
    fn copy_out<'a>(&'a mut self, sql: &str) -> BoxFuture<'a, Result<CopyOutData<'a>>>;

    /// Sends `sql` without waiting for its result: called from `Drop` when an operation's
    /// future is dropped while its own transaction or savepoint is open. Best effort.
    fn queue_rollback(&mut self, sql: &str);
}

/// An open `COPY .. FROM STDIN`, boxed: drivers' sinks differ in type, the operations hold one
/// behind this (no associated types in [`Driver`]: they defeat the compiler's `Send` checks of
/// the operations' futures).
pub(crate) type BoxCopySink<'a> = Box<dyn CopySink<'a> + 'a>;

/// An open `COPY .. TO STDOUT`: the data in pieces, as the server sends it.
pub(crate) type CopyOutData<'a> = BoxStream<'a, Result<Bytes>>;

/// The sending side of an open `COPY .. FROM STDIN`; `'a` is the borrow of the connection.
///
/// Every COPY is ended by exactly one of [`finish`](CopySink::finish) and
/// [`abort`](CopySink::abort); pgbulk calls `abort` on each of its error paths. (Dropping a
/// sink unfinished must not leave the connection unusable: the tokio-postgres and `postgres`
/// sinks abort on drop.)
pub(crate) trait CopySink<'a>: Send {
    /// Sends one piece of COPY data, waiting while the connection is busy (back-pressure).
    fn send(&mut self, data: Bytes) -> BoxFuture<'_, Result<()>>;

    /// Ends the COPY; returns the number of rows the server reports written.
    fn finish(self: Box<Self>) -> BoxFuture<'a, Result<u64>>;

    /// Aborts the COPY (`CopyFail` with `reason`): nothing is written.
    fn abort(self: Box<Self>, reason: &str) -> BoxFuture<'a, ()>;

    /// [`finish`](CopySink::finish), and runs `then` (simple query protocol) right behind the
    /// COPY's end without waiting for it, where the driver can: then the second result is
    /// `then`'s [`Outcome`]s (an error if the COPY failed: `then` ran in the failed
    /// transaction). `None`: `then` did not run; the caller runs it.
    fn finish_then(self: Box<Self>, then: String) -> BoxFuture<'a, Finished<u64>>
    where
        Self: 'a,
    {
        let _ = then;
        Box::pin(async move { (self.finish().await, None) })
    }
}
