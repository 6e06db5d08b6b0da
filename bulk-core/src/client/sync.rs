//! The driver for the blocking `postgres` crate (feature `sync`), and the tiny executor the
//! blocking API runs the shared operations with.
//!
//! The operations are `async fn`s generic over [`Driver`]. This driver's futures make their
//! blocking call when first polled and are then ready: they never return `Pending`. So the
//! blocking API runs an operation's future to completion on the calling thread with
//! [`block_on`], and the sync and async APIs share every line of the operations themselves.
//! (The `postgres` crate does not hand out its inner tokio-postgres client, so this cannot be
//! the async driver run on a runtime.)

use super::copy_start::{read_only, READ_ONLY_SQL, REFUSAL_SQL};
use super::{
    BoundRows, BoxCopySink, CopyOutData, CopySink, CopyTarget, Described, Driver, Outcome,
    RawParam, TextRows,
};
use crate::error::{Error, ErrorKind, Result};
use crate::server::{ServerFacts, SERVER_SQL};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::Stream;
use postgres::{CopyInWriter, CopyOutReader, GenericClient};
use postgres_types::Type;
use std::future::Future;
use std::io::{BufRead, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// Runs `future` to completion on this thread. The sync driver's futures never wait, so this
/// polls once; should a future wait anyway, the thread parks until it is woken.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(out) => return out,
            Poll::Pending => std::thread::park(),
        }
    }
}

/// A `postgres` crate client or transaction, and whether it is a caller's transaction.
pub(crate) struct SyncClient<'a, C> {
    pub(crate) client: &'a mut C,
    pub(crate) in_transaction: bool,
}

impl<C: GenericClient + Send> Driver for SyncClient<'_, C> {
    fn in_transaction(&self) -> bool {
        self.in_transaction
    }

    fn describe<'a>(&'a mut self, sql: &'a str) -> BoxFuture<'a, Result<Described>> {
        Box::pin(async move {
            let stmt = self.client.prepare(sql).map_err(Error::server)?;
            Ok(Described::of(&stmt))
        })
    }

    fn describe_target<'a>(
        &'a mut self,
        sql: &'a str,
    ) -> BoxFuture<'a, Result<(Described, ServerFacts)>> {
        Box::pin(async move {
            let stmt = self.client.prepare(sql).map_err(Error::server)?;
            let described = Described::of(&stmt);
            // A blocking client cannot pipeline: a round trip of its own.
            let facts = self
                .client
                .simple_query(SERVER_SQL)
                .map_err(|e| Error::server(e).context("cannot read the server's version"))?;
            let rows: Vec<_> = super::tokio::outcomes(facts)
                .into_iter()
                .flat_map(|o| o.rows)
                .collect();
            Ok((described, ServerFacts::from_rows(&rows)?))
        })
    }

    fn execute<'a>(&'a mut self, sql: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { self.client.batch_execute(sql).map_err(Error::server) })
    }

    fn query_batch<'a>(&'a mut self, sql: &'a str) -> BoxFuture<'a, Result<Vec<Outcome>>> {
        Box::pin(async move {
            let messages = self.client.simple_query(sql).map_err(Error::server)?;
            Ok(super::tokio::outcomes(messages))
        })
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
                .map_err(Error::server)?;
            super::tokio::text_rows(&rows)
        })
    }

    fn execute_params<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [RawParam],
        keep: bool,
    ) -> BoxFuture<'a, Result<(u64, Option<BoundRows>)>> {
        Box::pin(async move {
            let mut rows = self
                .client
                .query_typed_raw(sql, RawParam::typed(params))
                .map_err(Error::server)?;
            let mut kept = keep.then(BoundRows::new);
            while let Some(row) = postgres::fallible_iterator::FallibleIterator::next(&mut rows)
                .map_err(Error::server)?
            {
                if let Some(kept) = &mut kept {
                    kept.push_row(&row)?;
                }
            }
            Ok((
                rows.rows_affected().unwrap_or(0),
                kept.map(BoundRows::finish),
            ))
        })
    }

    fn copy_in<'a>(
        &'a mut self,
        target: &CopyTarget<'_>,
    ) -> BoxFuture<'a, Result<BoxCopySink<'a>>> {
        // Blocking: done before the (ready) future is returned.
        let writer = start_copy_in(self.client, target);
        Box::pin(std::future::ready(writer.map(|w| {
            let sink: BoxCopySink<'a> = Box::new(SyncCopyIn(w));
            sink
        })))
    }

    fn copy_out<'a>(&'a mut self, sql: &str) -> BoxFuture<'a, Result<CopyOutData<'a>>> {
        let reader = self.client.copy_out(sql).map_err(Error::server);
        Box::pin(std::future::ready(reader.map(|r| {
            let data: CopyOutData<'a> = Box::pin(SyncCopyOut(r));
            data
        })))
    }

    fn queue_rollback(&mut self, sql: &str) {
        // Only reached if an operation panicked midway (block_on runs every operation to its
        // end): best effort.
        let _ = self.client.batch_execute(sql);
    }
}

/// Starts `target`'s COPY; a COPY the server would refuse at its start is refused in step, as
/// with the async driver (see [`copy_start`](super::copy_start)). The blocking client cannot
/// pipeline, so the check costs a round trip of its own.
fn start_copy_in<'c, C: GenericClient>(
    client: &'c mut C,
    target: &CopyTarget<'_>,
) -> Result<CopyInWriter<'c>> {
    // Nothing refuses a COPY into the operation's own temporary table: no check.
    // A plan that passed the full check asks only the session's read-only state, and runs
    // the full check when it is on (see `copy_start::READ_ONLY_SQL`).
    let full_check = !target.own
        && (!target.checked
            || read_only(&client.simple_query(READ_ONLY_SQL).map_err(Error::server)?));
    let refused = full_check
        && client
            .query_typed_one(
                REFUSAL_SQL,
                &[
                    (&target.table, Type::TEXT),
                    (&target.columns, Type::TEXT_ARRAY),
                ],
            )
            .map_err(Error::server)?
            .get::<_, bool>(0);
    if refused {
        // Refused as a simple query: one answer, the server's own error.
        return Err(match client.simple_query(target.sql) {
            Err(e) if e.as_db_error().is_some() => Error::server(e),
            Err(e) => Error::server(e).connection_lost(LOST),
            Ok(_) => Error::protocol("the server started a COPY it was expected to refuse")
                .connection_lost(LOST),
        });
    }
    client.copy_in(target.sql).map_err(|e| {
        let err = Error::server(e);
        // Refused after all (a lock timeout, ..): the server answered the abandoned COPY's
        // second `Sync` too, and no later answer on this client would be its own.
        if err.kind() == ErrorKind::Db {
            err.connection_lost(LOST)
        } else {
            err
        }
    })
}

/// Why a sync client cannot be used after some refused COPYs.
const LOST: &str = "the refused COPY left the connection out of step with the server; drop this \
                    client and connect again";

/// The error inside an I/O error of the `postgres` crate's COPY reader or writer.
fn io_error(e: std::io::Error) -> Error {
    let text = e.to_string();
    match e
        .into_inner()
        .map(<dyn std::error::Error + Send + Sync>::downcast::<postgres::Error>)
    {
        Some(Ok(pg)) => Error::server(*pg),
        _ => Error::protocol(text),
    }
}

/// The `postgres` crate's COPY writer. Dropping it unfinished aborts the COPY.
pub(crate) struct SyncCopyIn<'a>(CopyInWriter<'a>);

impl<'a> CopySink<'a> for SyncCopyIn<'a> {
    fn send(&mut self, data: Bytes) -> BoxFuture<'_, Result<()>> {
        Box::pin(std::future::ready(
            self.0.write_all(&data).map_err(io_error),
        ))
    }

    fn finish(self: Box<Self>) -> BoxFuture<'a, Result<u64>> {
        Box::pin(std::future::ready(self.0.finish().map_err(Error::server)))
    }

    fn abort(self: Box<Self>, _reason: &str) -> BoxFuture<'a, ()> {
        // Dropping the writer sends CopyFail.
        drop(self);
        Box::pin(std::future::ready(()))
    }
}

/// The `postgres` crate's COPY reader, as a stream of pieces.
pub(crate) struct SyncCopyOut<'a>(CopyOutReader<'a>);

impl Stream for SyncCopyOut<'_> {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let piece = match self.0.fill_buf() {
            Ok([]) => return Poll::Ready(None),
            Ok(piece) => Bytes::copy_from_slice(piece),
            Err(e) => return Poll::Ready(Some(Err(io_error(e)))),
        };
        self.0.consume(piece.len());
        Poll::Ready(Some(Ok(piece)))
    }
}
