//! `copy_out`: the one read loop — a driver's COPY data through the engine's [`Decoder`] into
//! rows.

use crate::client::{CopyOutData, Driver};
use crate::engine::{Decoder, Fed, Step};
use crate::error::Result;
use crate::ops::Options;
use crate::plan;
use crate::row::FromCopyRow;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use std::task::{ready, Context, Poll};

/// Describes `query`, checks it against `T` and starts its `COPY (..) TO STDOUT` on `driver`;
/// `table` as in [`plan::plan_copy_out`].
pub(crate) async fn start<'a, D: Driver, T: FromCopyRow>(
    driver: &'a mut D,
    query: &str,
    table: Option<&str>,
) -> Result<(Decoder<T>, CopyOutData<'a>)> {
    let plan = plan::plan_copy_out::<D, T>(driver, query, table).await?;
    let stream = driver
        .copy_out(&plan.copy_sql)
        .await
        .map_err(|e| e.context("COPY TO STDOUT failed"))?;
    Ok((decoder(plan), stream))
}

/// The decoder for the COPY data of `plan`.
pub(crate) fn decoder<T: FromCopyRow>(plan: plan::OutPlan) -> Decoder<T> {
    let slots = plan.slots();
    Decoder::new(plan.types, plan.map, "the COPY data").with_slots(slots)
}

/// A running `copy_out`: the decoder, the driver's data stream and the progress reports.
pub(crate) struct Reading<T, S> {
    decoder: Decoder<T>,
    stream: S,
    reported: u64,
    report_every: u64,
    /// Whether the decoder may hold rows not yet returned (false after a piece that was
    /// exactly one row: then the next row needs the next piece).
    pending: bool,
}

impl<T: FromCopyRow, S: Stream<Item = Result<Bytes>> + Unpin> Reading<T, S> {
    pub(crate) fn new(decoder: Decoder<T>, stream: S, options: &Options<'_>) -> Self {
        Reading {
            decoder,
            stream,
            reported: 0,
            report_every: options.flush_bytes as u64,
            pending: true,
        }
    }

    /// Rows and bytes read so far.
    pub(crate) fn totals(&self) -> (u64, u64) {
        (self.decoder.rows(), self.decoder.bytes())
    }

    /// The next row: decoded from data already received, or after polling for more.
    /// `Ok(None)` after the trailer, once the stream has ended.
    #[inline]
    pub(crate) fn poll_row(
        &mut self,
        cx: &mut Context<'_>,
        options: &Options<'_>,
    ) -> Poll<Result<Option<T>>> {
        loop {
            if self.pending {
                match self.decoder.step()? {
                    Step::Row(row) => return Poll::Ready(Ok(Some(row))),
                    Step::NeedMore | Step::End => self.pending = false,
                }
            }
            match ready!(self.stream.poll_next_unpin(cx)) {
                Some(Ok(piece)) => {
                    let fed = self.decoder.feed_step(piece)?;
                    let bytes = self.decoder.bytes();
                    if bytes - self.reported >= self.report_every {
                        self.reported = bytes;
                        options.report(self.decoder.rows(), bytes);
                    }
                    match fed {
                        Fed::Drained(row) => return Poll::Ready(Ok(Some(row))),
                        Fed::Step(Step::Row(row)) => {
                            self.pending = true;
                            return Poll::Ready(Ok(Some(row)));
                        }
                        Fed::Step(Step::NeedMore | Step::End) => {}
                    }
                }
                Some(Err(e)) => {
                    return Poll::Ready(Err(e
                        .context("COPY TO STDOUT failed")
                        .with_row(self.decoder.rows())))
                }
                None => {
                    // Before the trailer this is the "ends before its trailer" error.
                    self.decoder.end_of_input()?;
                    options.report(self.decoder.rows(), self.decoder.bytes());
                    return Poll::Ready(Ok(None));
                }
            }
        }
    }

    /// The next row, awaited.
    pub(crate) async fn next_row(&mut self, options: &Options<'_>) -> Result<Option<T>> {
        std::future::poll_fn(|cx| self.poll_row(cx, options)).await
    }
}

/// Reads every row of `query` into a `Vec` (the `RETURNING` rows of the staged operations).
pub(crate) async fn collect<D: Driver, T: FromCopyRow>(
    driver: &mut D,
    query: &str,
    options: &Options<'_>,
) -> Result<Vec<T>> {
    let (decoder, stream) = start::<D, T>(driver, query, None).await?;
    let mut reading = Reading::new(decoder, stream, options);
    let mut out = Vec::new();
    while let Some(row) = reading.next_row(options).await? {
        out.push(row);
    }
    Ok(out)
}
