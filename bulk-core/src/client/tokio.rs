//! The tokio-postgres driver: `Client` and `Transaction` (and pooled clients, which
//! dereference to them).

use super::{
    BoundRows, BoxCopySink, CopyOutData, CopySink, CopyTarget, Described, DescribedAnd, Driver,
    Finished, Outcome, RawParam, TextRows,
};
use crate::error::{Error, Result};
use crate::server::{ServerFacts, SERVER_SQL};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, SinkExt, Stream, StreamExt};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio_postgres::{Client, CopyInSink, SimpleQueryMessage, Statement};

/// A tokio-postgres client, and whether it is a caller's transaction.
#[derive(Clone, Copy)]
pub(crate) struct TokioClient<'c> {
    pub(crate) client: &'c Client,
    pub(crate) in_transaction: bool,
    /// The COPY statement already prepared on this connection, used instead of the COPY text
    /// (one round trip fewer; see `PreparedCopyIn`).
    pub(crate) prepared: Option<&'c Statement>,
}

impl<'c> TokioClient<'c> {
    pub(crate) fn new(client: &'c Client, in_transaction: bool) -> Self {
        TokioClient {
            client,
            in_transaction,
            prepared: None,
        }
    }
}

impl TokioClient<'_> {
    /// Starts `plan`'s COPY TO STDOUT: [`copy_out::start`](crate::ops::copy_out::start)'s
    /// second half, written against this driver's own type (a boxed `Send` stream cannot be
    /// proven `Send` through the trait's generic lifetimes).
    pub(crate) async fn copy_out_stream<T>(
        self,
        plan: crate::plan::OutPlan,
    ) -> Result<(crate::engine::Decoder<T>, TokioCopyOut)> {
        let stream = self
            .client
            .copy_out(plan.copy_sql.as_str())
            .await
            .map_err(|e| Error::server(e).context("COPY TO STDOUT failed"))?;
        Ok((
            crate::ops::copy_out::decoder(plan),
            TokioCopyOut(Box::pin(stream)),
        ))
    }
}

impl Driver for TokioClient<'_> {
    fn in_transaction(&self) -> bool {
        self.in_transaction
    }

    fn describe<'a>(&'a mut self, sql: &'a str) -> BoxFuture<'a, Result<Described>> {
        Box::pin(async move {
            let stmt = self.client.prepare(sql).await.map_err(Error::server)?;
            Ok(Described::of(&stmt))
        })
    }

    fn describe_target<'a>(
        &'a mut self,
        sql: &'a str,
    ) -> BoxFuture<'a, Result<(Described, ServerFacts)>> {
        Box::pin(async move {
            // Both in one round trip: tokio-postgres pipelines requests polled together.
            let (stmt, facts) = futures_util::future::join(
                self.client.prepare(sql),
                self.client.simple_query(SERVER_SQL),
            )
            .await;
            let described = Described::of(&stmt.map_err(Error::server)?);
            let facts =
                facts.map_err(|e| Error::server(e).context("cannot read the server's version"))?;
            let rows: Vec<_> = outcomes(facts).into_iter().flat_map(|o| o.rows).collect();
            Ok((described, ServerFacts::from_rows(&rows)?))
        })
    }

    fn execute<'a>(&'a mut self, sql: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { self.client.batch_execute(sql).await.map_err(Error::server) })
    }

    fn query_batch<'a>(&'a mut self, sql: &'a str) -> BoxFuture<'a, Result<Vec<Outcome>>> {
        Box::pin(query_batch(self.client, sql))
    }

    fn query_params_text<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [RawParam],
    ) -> BoxFuture<'a, Result<TextRows>> {
        Box::pin(async move {
            let typed: Vec<_> = RawParam::typed(params).collect();
            let rows = self
                .client
                .query_typed(sql, &typed)
                .await
                .map_err(Error::server)?;
            text_rows(&rows)
        })
    }

    fn execute_params<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [RawParam],
        rows: bool,
    ) -> BoxFuture<'a, Result<(u64, Option<BoundRows>)>> {
        Box::pin(execute_typed(self.client, sql, params, rows))
    }

    /// The three requests polled together: tokio-postgres sends each when first polled, so
    /// they go out in one write, in order, and are answered in one round trip.
    fn run_bound<'a>(
        &'a mut self,
        before: &'a str,
        sql: &'a str,
        params: &'a [RawParam],
        rows: bool,
        after: &'a str,
    ) -> BoxFuture<'a, Result<(Vec<Outcome>, Option<BoundRows>)>> {
        let client = self.client;
        Box::pin(async move {
            let (before, bound, after) = futures_util::future::join3(
                query_batch(client, before),
                execute_typed(client, sql, params, rows),
                query_batch(client, after),
            )
            .await;
            Ok(super::bound_outcomes(before?, bound?, after?))
        })
    }

    fn copy_in<'a>(
        &'a mut self,
        target: &CopyTarget<'_>,
    ) -> BoxFuture<'a, Result<BoxCopySink<'a>>> {
        let (sql, table) = (target.sql.to_owned(), target.table.to_owned());
        let columns: Vec<String> = target.columns.iter().map(|&c| c.to_owned()).collect();
        let (own, checked) = (target.own, target.checked);
        Box::pin(async move {
            let target = CopyTarget {
                sql: &sql,
                table: &table,
                columns: columns.iter().map(String::as_str).collect(),
                own,
                checked,
            };
            let sink =
                super::copy_start::start_copy_in(self.client, &target, self.prepared).await?;
            let sink: BoxCopySink<'a> = Box::new(TokioCopyIn {
                sink: Box::pin(sink),
                client: self.client,
            });
            Ok(sink)
        })
    }

    fn copy_in_after<'a>(
        &'a mut self,
        before: &'a str,
        target: &CopyTarget<'_>,
    ) -> BoxFuture<'a, Result<BoxCopySink<'a>>> {
        let sql = target.sql.to_owned();
        Box::pin(async move {
            // `before` and the COPY's Parse in one round trip: a COPY's Parse does not look
            // the table up, so `before` may create it.
            let (before, statement) = futures_util::future::join(
                self.client.batch_execute(before),
                self.client.prepare(&sql),
            )
            .await;
            before.map_err(Error::server)?;
            let statement = statement.map_err(Error::server)?;
            let sink = super::copy_start::copy_in_prepared(self.client, &statement).await?;
            let sink: BoxCopySink<'a> = Box::new(TokioCopyIn {
                sink: Box::pin(sink),
                client: self.client,
            });
            Ok(sink)
        })
    }

    fn describe_target_and<'a>(
        &'a mut self,
        sql: &'a str,
        also: Option<&'a str>,
    ) -> BoxFuture<'a, DescribedAnd> {
        Box::pin(async move {
            let client = self.client;
            let mut this = *self;
            let Some(also) = also else {
                return (this.describe_target(sql).await, Ok(Vec::new()));
            };
            let (described, also) =
                futures_util::future::join(this.describe_target(sql), async move {
                    client.simple_query(also).await.map_err(Error::server)
                })
                .await;
            let also = also.map(|m| outcomes(m).into_iter().flat_map(|o| o.rows).collect());
            (described, also)
        })
    }

    fn copy_out<'a>(&'a mut self, sql: &str) -> BoxFuture<'a, Result<CopyOutData<'a>>> {
        let sql = sql.to_owned();
        Box::pin(async move {
            let stream = self
                .client
                .copy_out(sql.as_str())
                .await
                .map_err(Error::server)?;
            let data: CopyOutData<'a> = Box::pin(TokioCopyOut(Box::pin(stream)));
            Ok(data)
        })
    }

    fn queue_rollback(&mut self, sql: &str) {
        // The first poll hands the statement to the connection task; the response is then
        // dropped unread (tokio-postgres discards responses nobody waits for). This is what
        // tokio-postgres' own `Transaction` does when dropped unfinished, through public API.
        let _ = self.client.batch_execute(sql).now_or_never();
    }
}

impl Described {
    /// The description of a statement tokio-postgres (or `postgres`) prepared.
    pub(crate) fn of(stmt: &Statement) -> Self {
        Described {
            columns: stmt
                .columns()
                .iter()
                .map(|c| (c.name().to_owned(), c.type_().clone()))
                .collect(),
            params: stmt.params().len(),
            param_types: stmt.params().to_vec(),
            typmods: Some(
                stmt.columns()
                    .iter()
                    .map(tokio_postgres::Column::type_modifier)
                    .collect(),
            ),
        }
    }
}

/// Rows whose every column is `text`, as [`TextRows`].
pub(crate) fn text_rows(rows: &[tokio_postgres::Row]) -> Result<TextRows> {
    rows.iter()
        .map(|row| {
            (0..row.len())
                .map(|i| row.try_get::<_, Option<String>>(i).map_err(Error::server))
                .collect()
        })
        .collect()
}

/// Runs `sql` (one or more statements; none when empty) with the simple query protocol: each
/// statement's outcome.
async fn query_batch(client: &Client, sql: &str) -> Result<Vec<Outcome>> {
    if sql.is_empty() {
        return Ok(Vec::new());
    }
    let messages = client.simple_query(sql).await.map_err(Error::server)?;
    Ok(outcomes(messages))
}

/// Runs `sql` with `params` bound in binary with their own types (`query_typed_raw`: Parse,
/// Bind and Execute in one request, no prepare round trip); its row count and, with `keep`,
/// its rows.
async fn execute_typed(
    client: &Client,
    sql: &str,
    params: &[RawParam],
    keep: bool,
) -> Result<(u64, Option<BoundRows>)> {
    let rows = client
        .query_typed_raw(sql, RawParam::typed(params))
        .await
        .map_err(Error::server)?;
    let mut rows = std::pin::pin!(rows);
    let mut kept = keep.then(BoundRows::new);
    while let Some(row) = rows.next().await {
        let row = row.map_err(Error::server)?;
        if let Some(kept) = &mut kept {
            kept.push_row(&row)?;
        }
    }
    Ok((
        rows.rows_affected().unwrap_or(0),
        kept.map(BoundRows::finish),
    ))
}

/// Each statement's outcome from a simple query's messages (rows come before their
/// statement's `CommandComplete`).
pub(crate) fn outcomes(messages: Vec<SimpleQueryMessage>) -> Vec<Outcome> {
    let mut out = Vec::new();
    let mut current = Outcome::default();
    for m in messages {
        match m {
            SimpleQueryMessage::Row(row) => current.rows.push(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_owned))
                    .collect(),
            ),
            SimpleQueryMessage::CommandComplete(count) => {
                current.count = count;
                out.push(std::mem::take(&mut current));
            }
            _ => {}
        }
    }
    out
}

/// tokio-postgres' COPY sink, and its client (to pipeline a statement behind its end).
/// Dropping it unfinished aborts the COPY.
pub(crate) struct TokioCopyIn<'a> {
    sink: Pin<Box<CopyInSink<Bytes>>>,
    client: &'a Client,
}

impl<'a> CopySink<'a> for TokioCopyIn<'a> {
    fn send(&mut self, data: Bytes) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.sink.send(data).await.map_err(Error::server) })
    }

    fn finish(mut self: Box<Self>) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move { self.sink.as_mut().finish().await.map_err(Error::server) })
    }

    fn finish_then(mut self: Box<Self>, then: String) -> BoxFuture<'a, Finished<u64>>
    where
        Self: 'a,
    {
        Box::pin(async move {
            let client = self.client;
            // Polled in this order, the COPY's end is queued before `then`, and tokio-postgres
            // sends a request only after the COPY before it has ended.
            let (written, then) = futures_util::future::join(
                async { self.sink.as_mut().finish().await.map_err(Error::server) },
                async { client.simple_query(&then).await.map_err(Error::server) },
            )
            .await;
            (written, Some(then.map(outcomes)))
        })
    }

    fn abort(self: Box<Self>, _reason: &str) -> BoxFuture<'a, ()> {
        // Dropping the sink sends CopyFail.
        drop(self);
        Box::pin(std::future::ready(()))
    }
}

/// tokio-postgres' COPY OUT stream.
pub(crate) struct TokioCopyOut(Pin<Box<tokio_postgres::CopyOutStream>>);

impl Stream for TokioCopyOut {
    type Item = Result<Bytes>;

    // Called once per row: inlined into the read loop, and the error mapped only when there
    // is one.
    #[inline]
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.0.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(piece))) => Poll::Ready(Some(Ok(piece))),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Error::server(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}
