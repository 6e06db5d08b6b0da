//! The sqlx driver: [`Driver`] over a sqlx `PgConnection` — borrowed (`&mut PgConnection`, a
//! `Transaction`'s connection, a `PoolConnection` the caller holds) or checked out of a `PgPool`
//! for one operation.
//!
//! # A COPY abandoned half-way
//!
//! sqlx cannot end a COPY from a destructor and stay in step with the server. `PgCopyIn`'s
//! `Drop` queues a `CopyFail` but nothing counts the `ReadyForQuery` the server answers it with,
//! and a `copy_out_raw` stream dropped early leaves the rest of the data and its
//! `ReadyForQuery` unread. Either way every later call on that connection reads the previous
//! call's reply: after two errors, queries return the rows of the query before them (measured
//! on sqlx 0.9.0). The only messages sqlx lets pgbulk add without waiting are counted queries,
//! each of which brings one more `ReadyForQuery`, so the count cannot be mended from outside.
//!
//! So when a pgbulk future or stream is dropped while its COPY is open (the only way a COPY is
//! left unfinished: every error path finishes or aborts it), the driver ends the session
//! instead: it queues `SELECT pg_terminate_backend(pg_backend_pid())` (during a COPY FROM STDIN
//! the server reads that query as a protocol violation and ends the session itself). The next
//! call on that connection fails with the server's "terminating connection" error and the ones
//! after it with a closed connection, never with another query's rows; a connection checked out
//! of a pool is closed instead of being returned, so the pool's next user gets a fresh one.
//!
//! A `COPY .. TO STDOUT` the server refuses at its start (a missing privilege, a write in a
//! read-only session: errors its describe step cannot see) is the same case: sqlx's
//! `copy_out_raw` returns the error but leaves the `ReadyForQuery` after it unread. The session
//! is ended the same way, and the error says so (`Error::is_connection_lost`).
//!
//! A future dropped while its own transaction or savepoint is open, outside a COPY, queues the
//! rollback (a counted query): the connection stays usable.

use super::types;
use crate::client::{
    BoundRows, BoxCopySink, CopyOutData, CopySink, CopyTarget, Described, DescribedAnd, Driver,
    Outcome, RawParam, TextRows,
};
use crate::error::{Error, Result};
use crate::server::{self, ServerFacts};
use ::sqlx::pool::PoolConnection;
use ::sqlx::postgres::{PgConnection, PgCopyIn, PgPool, Postgres};
use ::sqlx::{AssertSqlSafe, Row as _, ValueRef as _};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt as _, Stream, StreamExt as _};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

/// What the driver ends an abandoned COPY's session with (see the module docs).
const END_SESSION: &str = "SELECT pg_terminate_backend(pg_backend_pid())";

/// Where the driver's connection comes from.
pub(crate) enum Conn<'c> {
    /// A connection the caller holds (`PgConnection`, a `Transaction`'s).
    Borrowed(&'c mut PgConnection),
    /// A pooled connection the caller holds: closed, not returned, after an abandoned COPY.
    Pooled(&'c mut PoolConnection<Postgres>),
    /// A pool: one connection is checked out at the operation's first statement and kept for
    /// the whole operation.
    Pool(&'c PgPool, Option<PoolConnection<Postgres>>),
}

/// A sqlx connection, and whether it is a caller's transaction.
pub(crate) struct SqlxConn<'c> {
    conn: Conn<'c>,
    in_transaction: bool,
    /// Set by a COPY sink or stream dropped while its COPY was open.
    abandoned: Arc<AtomicBool>,
}

impl<'c> SqlxConn<'c> {
    pub(crate) fn new(conn: Conn<'c>, in_transaction: bool) -> Self {
        SqlxConn {
            conn,
            in_transaction,
            abandoned: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The connection, checked out of the pool on first use.
    async fn conn(&mut self) -> Result<&mut PgConnection> {
        Ok(match &mut self.conn {
            Conn::Borrowed(c) => c,
            Conn::Pooled(c) => c,
            Conn::Pool(pool, slot) => {
                if slot.is_none() {
                    *slot = Some(pool.acquire().await.map_err(Error::sqlx)?);
                }
                slot.as_mut().expect("checked out above")
            }
        })
    }

    /// The connection if there is one now (`Drop` cannot check one out).
    fn conn_now(&mut self) -> Option<&mut PgConnection> {
        match &mut self.conn {
            Conn::Borrowed(c) => Some(c),
            Conn::Pooled(c) => Some(c),
            Conn::Pool(_, slot) => slot.as_deref_mut(),
        }
    }
}

/// Sends `sql` as a simple query without waiting for it: one poll of sqlx's `execute` writes
/// and flushes the query and counts its `ReadyForQuery`, which the connection's next call
/// reads. (sqlx has no call that only queues; this is the effect its own `Transaction` drop has.)
fn queue(conn: &mut PgConnection, sql: &str) {
    let query = ::sqlx::raw_sql(AssertSqlSafe(sql.to_owned()));
    let _ = query.execute(conn).now_or_never();
}

impl Drop for SqlxConn<'_> {
    fn drop(&mut self) {
        if !self.abandoned.load(Ordering::Acquire) {
            return;
        }
        match &mut self.conn {
            Conn::Pooled(c) => c.close_on_drop(),
            Conn::Pool(_, Some(c)) => c.close_on_drop(),
            _ => {}
        }
        if let Some(conn) = self.conn_now() {
            queue(conn, END_SESSION);
        }
    }
}

impl Driver for SqlxConn<'_> {
    fn in_transaction(&self) -> bool {
        self.in_transaction
    }

    fn begin_hint(&self) -> &'static str {
        "`conn.begin()` (or `pool.begin()`)"
    }

    fn describe<'a>(&'a mut self, sql: &'a str) -> BoxFuture<'a, Result<Described>> {
        Box::pin(async move {
            let conn = self.conn().await?;
            let d = types::describe(conn, sql).await.map_err(Error::sqlx)?;
            Ok(Described {
                columns: d.columns,
                params: d.params,
                param_types: d.param_types,
                // sqlx does not hand out the row description's type modifiers
                // (`describe_target` looks them up).
                typmods: None,
            })
        })
    }

    fn query_params_text<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [RawParam],
    ) -> BoxFuture<'a, Result<TextRows>> {
        Box::pin(async move {
            let conn = self.conn().await?;
            let rows = with_params(sql, params)
                .fetch_all(conn)
                .await
                .map_err(Error::sqlx)?;
            rows.iter()
                .map(|row| {
                    (0..row.len())
                        .map(|i| row.try_get::<Option<String>, _>(i).map_err(Error::sqlx))
                        .collect()
                })
                .collect()
        })
    }

    fn execute_params<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [RawParam],
        keep: bool,
    ) -> BoxFuture<'a, Result<(u64, Option<BoundRows>)>> {
        Box::pin(async move {
            let conn = self.conn().await?;
            if !keep {
                let done = with_params(sql, params)
                    .execute(conn)
                    .await
                    .map_err(Error::sqlx)?;
                return Ok((done.rows_affected(), None));
            }
            let rows = with_params(sql, params)
                .fetch_all(&mut *conn)
                .await
                .map_err(Error::sqlx)?;
            let mut kept = BoundRows::new();
            if let Some(first) = rows.first() {
                kept.columns = types::resolve_columns(conn, first.columns())
                    .await
                    .map_err(Error::sqlx)?;
            }
            for row in &rows {
                kept.row(row.len())?;
                for i in 0..row.len() {
                    let value = row.try_get_raw(i).map_err(Error::sqlx)?;
                    let bytes = if value.is_null() {
                        None
                    } else {
                        Some(value.as_bytes().map_err(|e| {
                            Error::protocol(format!("a returned value is not binary: {e}"))
                        })?)
                    };
                    kept.field(bytes)?;
                }
            }
            let count = u64::try_from(rows.len()).unwrap_or(u64::MAX);
            Ok((count, Some(kept.finish())))
        })
    }

    fn execute<'a>(&'a mut self, sql: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let conn = self.conn().await?;
            ::sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(conn)
                .await
                .map_err(Error::sqlx)?;
            Ok(())
        })
    }

    fn describe_target<'a>(
        &'a mut self,
        sql: &'a str,
    ) -> BoxFuture<'a, Result<(Described, ServerFacts)>> {
        Box::pin(async move {
            let described = self.describe(sql).await?;
            // sqlx cannot pipeline two requests: a round trip of its own.
            let rows = self
                .query_text(server::SERVER_SQL)
                .await
                .map_err(|e| e.context("cannot read the server's version"))?;
            Ok((described, ServerFacts::from_rows(&rows)?))
        })
    }

    /// The describe, then one simple query of two statements: the server's facts with the
    /// target columns' type modifiers, and `also`. The modifiers are read here, not in every
    /// [`describe_target`](Driver::describe_target): only the operations that ask for more
    /// (the upserts, whose staging table is reused when its shape, modifiers included, is
    /// known) pay for the catalog join (≈ 0.15 ms of server time); sqlx reports which table
    /// column each result column reads, not its modifier. One round trip fewer than the
    /// facts and `also` apart.
    fn describe_target_and<'a>(
        &'a mut self,
        sql: &'a str,
        also: Option<&'a str>,
    ) -> BoxFuture<'a, DescribedAnd> {
        Box::pin(async move {
            let d = match self.conn().await {
                Ok(conn) => types::describe(conn, sql).await.map_err(Error::sqlx),
                Err(e) => Err(e),
            };
            let d = match d {
                Ok(d) => d,
                Err(e) => return (Err(e), Ok(Vec::new())),
            };
            let facts_sql = server::facts_and_typmods_sql(&d.origins);
            let batch = match also {
                Some(also) => format!("{facts_sql}; {also}"),
                None => facts_sql,
            };
            let statements = 1 + usize::from(also.is_some());
            let (facts, also_rows) = match self.query_batch(&batch).await {
                Ok(mut outcomes) if outcomes.len() == statements => {
                    let also_rows = outcomes.get_mut(1).map(|o| std::mem::take(&mut o.rows));
                    (
                        std::mem::take(&mut outcomes[0].rows),
                        Ok(also_rows.unwrap_or_default()),
                    )
                }
                // Apart, so that each keeps its own outcome.
                _ => match self.query_text(server::SERVER_SQL).await {
                    Ok(facts) => match also {
                        Some(also) => (facts, self.query_text(also).await),
                        None => (facts, Ok(Vec::new())),
                    },
                    Err(e) => {
                        return (
                            Err(e.context("cannot read the server's version")),
                            Ok(Vec::new()),
                        )
                    }
                },
            };
            let described = Described {
                typmods: server::typmods_from_rows(&facts, d.origins.len()),
                columns: d.columns,
                params: d.params,
                param_types: d.param_types,
            };
            (
                ServerFacts::from_rows(&facts).map(|server| (described, server)),
                also_rows,
            )
        })
    }

    fn query_batch<'a>(&'a mut self, sql: &'a str) -> BoxFuture<'a, Result<Vec<Outcome>>> {
        Box::pin(async move {
            let conn = self.conn().await?;
            let mut results = ::sqlx::raw_sql(AssertSqlSafe(sql)).fetch_many(conn);
            let (mut outcomes, mut current) = (Vec::new(), Outcome::default());
            while let Some(item) = results.next().await {
                match item.map_err(Error::sqlx)? {
                    ::sqlx::Either::Left(done) => {
                        current.count = done.rows_affected();
                        outcomes.push(std::mem::take(&mut current));
                    }
                    ::sqlx::Either::Right(row) => current.rows.push(text_row(&row)?),
                }
            }
            Ok(outcomes)
        })
    }

    fn copy_in<'a>(
        &'a mut self,
        target: &CopyTarget<'_>,
    ) -> BoxFuture<'a, Result<BoxCopySink<'a>>> {
        // sqlx starts a COPY with the simple query protocol: a COPY the server refuses at its
        // start is refused in step (one ErrorResponse, one ReadyForQuery), no check needed.
        let sql = target.sql.to_owned();
        let abandoned = Arc::clone(&self.abandoned);
        Box::pin(async move {
            let conn = self.conn().await?;
            // Nagle's algorithm would hold the COPY's last message ~40 ms over TCP.
            super::nodelay::ensure(conn).await.map_err(Error::sqlx)?;
            let copy = conn.copy_in_raw(&sql).await.map_err(Error::sqlx)?;
            let sink: BoxCopySink<'a> = Box::new(SqlxCopyIn {
                copy: Some(copy),
                abandoned,
            });
            Ok(sink)
        })
    }

    fn copy_out<'a>(&'a mut self, sql: &str) -> BoxFuture<'a, Result<CopyOutData<'a>>> {
        let sql = sql.to_owned();
        let abandoned = Arc::clone(&self.abandoned);
        Box::pin(async move {
            let conn = self.conn().await?;
            let stream = match conn.copy_out_raw(&sql).await {
                Ok(stream) => stream,
                // Refused at its start (a missing privilege, a write in a read-only session):
                // sqlx reads the server's error but not the `ReadyForQuery` after it, which the
                // connection's next call would then take for its own answer. As for a COPY
                // abandoned half-way (module docs), the session is ended instead, and the error
                // says so. (tokio-postgres stays in step here.)
                Err(e @ ::sqlx::Error::Database(_)) => {
                    abandoned.store(true, Ordering::Release);
                    return Err(Error::sqlx(e).connection_lost(
                        "sqlx cannot take a refused COPY .. TO STDOUT back in step, so pgbulk \
                         ends this connection's session; use another connection",
                    ));
                }
                Err(e) => return Err(Error::sqlx(e)),
            };
            let data: CopyOutData<'a> = Box::pin(SqlxCopyOut {
                stream: Some(stream),
                abandoned,
            });
            Ok(data)
        })
    }

    fn queue_rollback(&mut self, sql: &str) {
        if let Some(conn) = self.conn_now() {
            queue(conn, sql);
        }
    }
}

/// One row of a simple query, each value as text (`None` for NULL).
fn text_row(row: &::sqlx::postgres::PgRow) -> Result<Vec<Option<String>>> {
    (0..row.len())
        .map(|i| {
            let v = row.try_get_raw(i).map_err(Error::sqlx)?;
            if v.is_null() {
                return Ok(None);
            }
            // The simple query protocol sends every value as text.
            v.as_str()
                .map(|s| Some(s.to_owned()))
                .map_err(|e| Error::protocol(format!("a value of a simple query is not text: {e}")))
        })
        .collect()
}

/// sqlx's COPY sink. Dropped unfinished, it leaves `PgCopyIn` undropped (its `CopyFail` would
/// put sqlx out of step) and marks the driver, whose `Drop` ends the session.
struct SqlxCopyIn<'a> {
    copy: Option<PgCopyIn<&'a mut PgConnection>>,
    abandoned: Arc<AtomicBool>,
}

impl Drop for SqlxCopyIn<'_> {
    fn drop(&mut self) {
        if let Some(copy) = self.copy.take() {
            self.abandoned.store(true, Ordering::Release);
            // Leaks its small response record (the column formats): the price of not sending
            // the CopyFail sqlx cannot account for.
            std::mem::forget(copy);
        }
    }
}

impl<'a> CopySink<'a> for SqlxCopyIn<'a> {
    fn send(&mut self, data: Bytes) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let copy = self
                .copy
                .as_mut()
                .expect("a COPY sink is used until finished");
            copy.send(data).await.map_err(Error::sqlx)?;
            Ok(())
        })
    }

    fn finish(mut self: Box<Self>) -> BoxFuture<'a, Result<u64>> {
        let copy = self.copy.take().expect("a COPY sink is finished once");
        Box::pin(async move { copy.finish().await.map_err(Error::sqlx) })
    }

    fn abort(mut self: Box<Self>, reason: &str) -> BoxFuture<'a, ()> {
        let copy = self.copy.take().expect("a COPY sink is aborted once");
        let reason = reason.to_owned();
        Box::pin(async move {
            // The server's answer is an error, which sqlx's `abort` reads; only an unexpected
            // one is returned, and the error being reported matters more.
            let _ = copy.abort(reason).await;
        })
    }
}

/// sqlx's COPY OUT stream. Dropped before its end, it marks the driver, whose `Drop` ends the
/// session (the rest of the data would otherwise be read by the connection's next call).
struct SqlxCopyOut<'a> {
    stream: Option<futures_util::stream::BoxStream<'a, std::result::Result<Bytes, ::sqlx::Error>>>,
    abandoned: Arc<AtomicBool>,
}

impl Stream for SqlxCopyOut<'_> {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(stream) = self.stream.as_mut() else {
            return Poll::Ready(None);
        };
        match stream.poll_next_unpin(cx) {
            Poll::Ready(None) => {
                self.stream = None;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                // sqlx has read the error's ReadyForQuery: the COPY is over.
                self.stream = None;
                Poll::Ready(Some(Err(Error::sqlx(e))))
            }
            other => other.map(|item| item.map(|r| r.map_err(Error::sqlx))),
        }
    }
}

impl Drop for SqlxCopyOut<'_> {
    fn drop(&mut self) {
        if self.stream.take().is_some() {
            self.abandoned.store(true, Ordering::Release);
        }
    }
}

/// `sql` (one statement, prepared and cached by sqlx) with `params` bound.
fn with_params<'q>(
    sql: &str,
    params: &'q [RawParam],
) -> ::sqlx::query::Query<'q, Postgres, ::sqlx::postgres::PgArguments> {
    params
        .iter()
        .fold(::sqlx::query(AssertSqlSafe(sql.to_owned())), |query, p| {
            query.bind(SqlxRawParam(p))
        })
}

/// A [`RawParam`] bound through sqlx: its bytes as they are, with its type's OID.
struct SqlxRawParam<'p>(&'p RawParam);

impl ::sqlx::Type<Postgres> for SqlxRawParam<'_> {
    fn type_info() -> ::sqlx::postgres::PgTypeInfo {
        // Every value says its own type (`produces`); this is never what is sent.
        ::sqlx::postgres::PgTypeInfo::with_name("unknown")
    }

    fn compatible(_: &::sqlx::postgres::PgTypeInfo) -> bool {
        true
    }
}

impl ::sqlx::Encode<'_, Postgres> for SqlxRawParam<'_> {
    fn encode_by_ref(
        &self,
        buf: &mut ::sqlx::postgres::PgArgumentBuffer,
    ) -> std::result::Result<::sqlx::encode::IsNull, ::sqlx::error::BoxDynError> {
        match &self.0.value {
            None => Ok(::sqlx::encode::IsNull::Yes),
            Some(value) => {
                buf.extend_from_slice(value);
                Ok(::sqlx::encode::IsNull::No)
            }
        }
    }

    fn produces(&self) -> Option<::sqlx::postgres::PgTypeInfo> {
        Some(::sqlx::postgres::PgTypeInfo::with_oid(
            ::sqlx::postgres::types::Oid(self.0.ty.oid()),
        ))
    }
}
