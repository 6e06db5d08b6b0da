//! `copy_out`: the one read loop — a driver's COPY data through the engine's [`Decoder`] into
//! rows.

use crate::client::{CopyOutData, Driver};
use crate::engine::{Decoder, Fed, Step};
use crate::engine::{Owned, RowSink};
use crate::error::Result;
use crate::ops::Options;
use crate::plan;
use crate::row::FromCopyRow;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use std::task::{ready, Context, Poll};

/// Describes `query`, checks it against `T` and starts its `COPY (..) TO STDOUT` on `driver`;
/// `table` as in [`plan::plan_copy_out`].
pub(crate) async fn start<'a, D: Driver, T: crate::row::FromCopyRowRef>(
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
pub(crate) fn decoder<T>(plan: plan::OutPlan) -> Decoder<T> {
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

impl<T, S: Stream<Item = Result<Bytes>> + Unpin> Reading<T, S> {
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

    /// The next row: decoded from data already received, or after polling for more, and
    /// handed to `sink`. `Ok(None)` after the trailer, once the stream has ended.
    #[inline]
    pub(crate) fn poll_row_with<K: RowSink>(
        &mut self,
        cx: &mut Context<'_>,
        options: &Options<'_>,
        sink: &mut K,
    ) -> Poll<Result<Option<K::Out>>> {
        loop {
            if self.pending {
                match self.decoder.step_with(sink)? {
                    Step::Row(row) => return Poll::Ready(Ok(Some(row))),
                    Step::NeedMore | Step::End => self.pending = false,
                }
            }
            match ready!(self.stream.poll_next_unpin(cx)) {
                Some(Ok(piece)) => {
                    let fed = self.decoder.feed_step_with(piece, sink)?;
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
}

impl<T: crate::row::FromCopyRowRef, S: Stream<Item = Result<Bytes>> + Unpin> Reading<T, S> {
    /// Reads every row, each decoded borrowing the data and handed to `f` (the `_each`
    /// reads of every client); returns the rows and bytes read.
    pub(crate) async fn each(
        &mut self,
        options: &Options<'_>,
        f: impl for<'r> FnMut(T::Row<'r>),
    ) -> Result<(u64, u64)> {
        let mut sink = crate::engine::Visit::<T, _>::new(f);
        // Every row that has arrived in one poll: no future per row.
        std::future::poll_fn(|cx| loop {
            if ready!(self.poll_row_with(cx, options, &mut sink))?.is_none() {
                return Poll::Ready(Ok::<_, crate::Error>(()));
            }
        })
        .await?;
        Ok(self.totals())
    }
}

impl<T: FromCopyRow, S: Stream<Item = Result<Bytes>> + Unpin> Reading<T, S> {
    /// The next row, decoded into `T`.
    #[inline]
    pub(crate) fn poll_row(
        &mut self,
        cx: &mut Context<'_>,
        options: &Options<'_>,
    ) -> Poll<Result<Option<T>>> {
        self.poll_row_with(cx, options, &mut Owned::new())
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
    read_all(Reading::new(decoder, stream, options), options).await
}

/// Reads every row of `data`, a whole binary COPY stream already received (a bound
/// statement's `RETURNING` rows: see [`BoundRows`](crate::client::BoundRows)), as `plan`
/// says: the same read loop as a COPY's.
pub(crate) async fn collect_received<T: FromCopyRow>(
    plan: plan::OutPlan,
    data: Bytes,
    options: &Options<'_>,
) -> Result<Vec<T>> {
    let stream = futures_util::stream::iter([Ok(data)]);
    read_all(Reading::new(decoder(plan), stream, options), options).await
}

/// Every row of `reading`, in a `Vec`.
async fn read_all<T: FromCopyRow, S: Stream<Item = Result<Bytes>> + Unpin>(
    mut reading: Reading<T, S>,
    options: &Options<'_>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    while let Some(row) = reading.next_row(options).await? {
        out.push(row);
    }
    Ok(out)
}

/// The values of a `copy_out` query's `$n` parameters, as tokio-postgres' `query` takes them.
pub(crate) type Params<'p> = &'p [&'p (dyn postgres_types::ToSql + Sync)];

/// `query` with its `$n` parameters written in as literals, for a `COPY (..) TO STDOUT` (which
/// cannot bind parameters). The one route every client takes:
///
/// 1. `query` is described: the server infers each parameter's type (as for a prepared
///    statement), and the count must match `params`.
/// 2. Each value is encoded by its `ToSql` impl for that type (a Rust type the parameter's type
///    does not accept is refused here, as tokio-postgres' `query` would), bound as a real
///    parameter of `SELECT $n::text`, and the server hands back its own text form of it.
/// 3. That text is written as `(E'..'::"schema"."type")` — every `\` and `'` doubled, so it
///    reads the same whatever `standard_conforming_strings` is — in place of each `$n` token
///    found by a scanner that skips strings, quoted identifiers, dollar quotes and comments
///    (`sql::params`).
/// 4. The result is described again: it must take no parameters and return the same columns
///    with the same types, or the call fails (the text is never run otherwise).
pub(crate) async fn bind_params<D: Driver>(
    driver: &mut D,
    query: &str,
    params: Params<'_>,
) -> Result<String> {
    use crate::client::RawParam;
    use crate::error::Error;
    use crate::sql::params::{substitute, type_name, typed_literal};
    use std::fmt::Write as _;

    let described = driver
        .describe(query)
        .await
        .map_err(|e| e.context("cannot describe the copy_out query"))?;
    if described.params != params.len() {
        return Err(Error::usage(format!(
            "the copy_out query takes {} parameter(s), but {} were given",
            described.params,
            params.len()
        )));
    }
    if described.param_types.len() != params.len() {
        return Err(Error::protocol(
            "the server did not report the types of the copy_out query's parameters",
        ));
    }
    let mut raw = Vec::with_capacity(params.len());
    for (i, (value, ty)) in params.iter().zip(&described.param_types).enumerate() {
        let mut buf = bytes::BytesMut::new();
        let value = match value.to_sql_checked(ty, &mut buf) {
            Ok(postgres_types::IsNull::Yes) => None,
            Ok(postgres_types::IsNull::No) => Some(buf.to_vec()),
            Err(e) => {
                return Err(Error::usage(format!(
                    "parameter ${} of the copy_out query (type {}): {e}",
                    i + 1,
                    plan::pg_type_name(ty)
                )))
            }
        };
        raw.push(RawParam {
            ty: ty.clone(),
            value,
        });
    }
    // Each parameter's type is spelled in the text too: a client that caches statements by
    // their text (sqlx) then never reuses one prepared for other types.
    let mut text_sql = String::from("SELECT current_setting('standard_conforming_strings')");
    for (i, ty) in described.param_types.iter().enumerate() {
        let _ = write!(text_sql, ", ${}::{}::text", i + 1, type_name(ty));
    }
    let row = driver
        .query_params_text(&text_sql, &raw)
        .await
        .map_err(|e| e.context("a parameter of the copy_out query was refused"))?
        .into_iter()
        .next()
        .filter(|row| row.len() == params.len() + 1)
        .ok_or_else(|| Error::protocol("no text form of the copy_out query's parameters"))?;
    let standard_conforming_strings = row[0].as_deref() != Some("off");
    let literals: Vec<String> = row[1..]
        .iter()
        .zip(&described.param_types)
        .map(|(text, ty)| typed_literal(text.as_deref(), ty))
        .collect();
    let bound = substitute(query, &literals, standard_conforming_strings)?;
    let again = driver
        .describe(&bound)
        .await
        .map_err(|e| e.context("the copy_out query with its parameters written in failed"))?;
    if again.params != 0 || again.columns != described.columns {
        return Err(Error::usage(
            "the copy_out query's parameters could not be written into it safely (its text \
             with the values in place does not describe as the query does); please report \
             the query",
        ));
    }
    Ok(bound)
}
