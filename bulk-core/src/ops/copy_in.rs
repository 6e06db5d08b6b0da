//! `copy_in`: the one write loop — rows through the engine's [`Encoder`] into a driver's COPY
//! sink — and the mapping of the server's COPY errors back to input rows.

use crate::client::{BoxCopySink, CopyTarget, Driver, Finished};
use crate::engine::Encoder;
use crate::error::{Error, Result};
use crate::ops::bound::{self, Encoded, Input, Small};
use crate::ops::distributed::KeyTrail;
use crate::ops::Options;
use crate::plan::Plan;
use crate::row::CopyRow;
use crate::sql::ident;
use bytes::BytesMut;
use futures_util::future::BoxFuture;
use futures_util::{Stream, StreamExt};
use std::borrow::Borrow;
use tokio_postgres::error::SqlState;

/// The context of an error that aborted a COPY.
pub(crate) const ABORTED: &str = "COPY aborted, no row was written";

/// An open `COPY .. FROM STDIN`: rows are encoded into one reused buffer and handed to the
/// driver's sink in chunks.
///
/// A loop over rows is `writer.push(row)?` (synchronous: the encoder), then
/// `if writer.is_full() { writer.flush().await? }`. End it with
/// [`finish`](CopyWriter::finish), or with [`fail`](CopyWriter::fail) on an error (every
/// driver's COPY is then aborted explicitly).
///
/// The methods that wait return boxed futures. (The operations hold rows across these awaits
/// and are called from code that knows the concrete driver; with plain `async fn`s nested two
/// deep over a driver that borrows its client, the compiler cannot prove the operation's
/// future `Send` — "implementation of `Send` is not general enough". A boxed `Send` future is
/// checked once, here, for any driver.)
pub(crate) struct CopyWriter<'a, T: ?Sized> {
    sink: BoxCopySink<'a>,
    encoder: Encoder<T>,
    types: &'a [postgres_types::Type],
    options: &'a Options<'a>,
    /// Into a Citus table: the key fingerprints that name the input row of a worker's key
    /// violation (which comes without the COPY's line context).
    keys: Option<KeyTrail>,
}

impl<'a, T: CopyRow + ?Sized + 'a> CopyWriter<'a, T> {
    /// Starts `plan`'s COPY on `driver`. `extra` trailing columns are written by
    /// [`push_with`](CopyWriter::push_with)'s closure (see [`Encoder::push_with`]).
    pub(crate) fn start<D: Driver>(
        driver: &'a mut D,
        plan: &'a Plan<T>,
        extra: usize,
        options: &'a Options<'a>,
    ) -> BoxFuture<'a, Result<Self>> {
        Box::pin(async move {
            let target = Self::target(plan, false);
            let sink = driver
                .copy_in(&target)
                .await
                .map_err(|e| e.context("COPY FROM STDIN failed"))?;
            plan.mark_refusal_checked();
            Ok(Self::new(sink, plan, extra, options))
        })
    }

    /// [`start`](CopyWriter::start) into the operation's own temporary table, after `before`
    /// (which may create it), pipelined where the driver can
    /// ([`Driver::copy_in_after`]). An error of `before` is returned without context.
    pub(crate) fn start_after<D: Driver>(
        driver: &'a mut D,
        before: &'a str,
        plan: &'a Plan<T>,
        extra: usize,
        options: &'a Options<'a>,
    ) -> BoxFuture<'a, Result<Self>> {
        Box::pin(async move {
            let sink = driver
                .copy_in_after(before, &Self::target(plan, true))
                .await?;
            Ok(Self::new(sink, plan, extra, options))
        })
    }

    /// What `plan`'s COPY writes, for the driver's refusal check: `own` for the operation's
    /// own temporary table (nothing to check).
    fn target(plan: &'a Plan<T>, own: bool) -> CopyTarget<'a> {
        CopyTarget {
            sql: plan.copy_statement(),
            table: plan.table(),
            columns: T::__PGBULK_COLUMNS.iter().map(|c| c.name).collect(),
            own,
            checked: own || plan.refusal_checked(),
        }
    }

    /// The writer over a started COPY `sink`.
    fn new(
        sink: BoxCopySink<'a>,
        plan: &'a Plan<T>,
        extra: usize,
        options: &'a Options<'a>,
    ) -> Self {
        CopyWriter {
            sink,
            encoder: Encoder::new(options.flush_bytes, extra).for_server(plan.server()),
            types: plan.types(),
            options,
            keys: if plan.distribution().is_citus() {
                KeyTrail::new::<T>(plan.types())
            } else {
                None
            },
        }
    }

    /// Encodes one row. After an [`Encode`](crate::ErrorKind::Encode) error nothing of the row
    /// was kept, so the caller may skip it and go on (quarantine), or
    /// [`fail`](CopyWriter::fail).
    #[inline]
    pub(crate) fn push(&mut self, row: &T) -> Result<()> {
        match &mut self.keys {
            None => self.encoder.push(row, self.types),
            Some(keys) => self
                .encoder
                .push_with(row, self.types, |buf, start| keys.record(&buf[start..])),
        }
    }

    /// [`push`](CopyWriter::push) with the extra trailing columns written by `extra`.
    #[inline]
    pub(crate) fn push_with(
        &mut self,
        row: &T,
        extra: impl FnOnce(&mut BytesMut, usize),
    ) -> Result<()> {
        match &mut self.keys {
            None => self.encoder.push_with(row, self.types, extra),
            Some(keys) => self.encoder.push_with(row, self.types, |buf, start| {
                keys.record(&buf[start..]);
                extra(buf, start);
            }),
        }
    }

    /// Takes `input`'s tuples if it was encoded already (by a bound attempt, for this COPY's
    /// row type and extra columns); its rows to push otherwise.
    pub(crate) fn take_encoded<I>(&mut self, input: Input<I>) -> Option<I> {
        match input {
            Input::Rows(rows) => Some(rows),
            Input::Encoded(encoded) => {
                self.encoder.extend_encoded(&encoded.tuples, encoded.rows);
                None
            }
        }
    }

    /// Whether a chunk is ready to [`flush`](CopyWriter::flush).
    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.encoder.is_full()
    }

    /// Sends the buffered chunk, waiting until the connection has taken the previous one
    /// (back-pressure), and reports progress.
    pub(crate) fn flush(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let chunk = self.encoder.take_chunk();
            if let Err(e) = self.sink.send(chunk).await {
                return Err(self.server_error(e));
            }
            self.encoder.reclaim();
            self.options
                .report(self.encoder.rows(), self.encoder.bytes());
            Ok(())
        })
    }

    /// Rows encoded so far.
    pub(crate) fn rows(&self) -> u64 {
        self.encoder.rows()
    }

    /// Ends the COPY; returns the rows the server reports written (a trigger may skip some)
    /// and the bytes sent.
    pub(crate) fn finish(mut self) -> BoxFuture<'a, Result<(u64, u64)>> {
        Box::pin(async move {
            let last = self.encoder.finish();
            if let Err(e) = self.sink.send(last).await {
                let e = self.server_error(e);
                return Err(self.fail(e).await);
            }
            let written = match self.sink.finish().await {
                Ok(written) => written,
                Err(e) => {
                    let row = trail_row(self.keys.as_ref(), &e);
                    return Err(with_row(server_error::<T>(e), row));
                }
            };
            self.options
                .report(self.encoder.rows(), self.encoder.bytes());
            Ok((written, self.encoder.bytes()))
        })
    }

    /// [`finish`](CopyWriter::finish), and runs `then` right behind the COPY's end where the
    /// driver can pipeline it ([`CopySink::finish_then`](crate::client::CopySink::finish_then)): its outcomes, or `None` when it did
    /// not run.
    pub(crate) fn finish_then(mut self, then: String) -> BoxFuture<'a, Finished<(u64, u64)>> {
        Box::pin(async move {
            let last = self.encoder.finish();
            if let Err(e) = self.sink.send(last).await {
                let e = self.server_error(e);
                return (Err(self.fail(e).await), None);
            }
            let bytes = self.encoder.bytes();
            let (written, then) = self.sink.finish_then(then).await;
            match written {
                Ok(written) => {
                    self.options.report(self.encoder.rows(), bytes);
                    (Ok((written, bytes)), then)
                }
                Err(e) => {
                    let row = trail_row(self.keys.as_ref(), &e);
                    (Err(with_row(server_error::<T>(e), row)), None)
                }
            }
        })
    }

    /// Bytes encoded so far (sent, and buffered to send).
    pub(crate) fn bytes(&self) -> u64 {
        self.encoder.encoded_bytes()
    }

    /// [`server_error`], and the input row of a Citus worker's key violation, which has no
    /// line context: the last row sent with the key of the error's detail.
    fn server_error(&self, err: Error) -> Error {
        let row = trail_row(self.keys.as_ref(), &err);
        with_row(server_error::<T>(err), row)
    }

    /// Aborts the COPY because of `error` (nothing is written) and returns the error.
    pub(crate) fn fail(self, error: Error) -> BoxFuture<'a, Error> {
        Box::pin(async move {
            self.sink.abort(&error.to_string()).await;
            error
        })
    }
}

/// The input row `keys` (kept on a Citus table) finds for `err`'s key detail.
fn trail_row(keys: Option<&KeyTrail>, err: &Error) -> Option<u64> {
    keys?.row_of(err.server_detail()?)
}

/// `err` naming input row `row` when the server's context did not name one.
fn with_row(err: Error, row: Option<u64>) -> Error {
    match row {
        Some(row) if err.row().is_none() => err.with_row(row),
        _ => err,
    }
}

/// Writes `rows` with one COPY of `plan`; returns the rows the server wrote and the bytes
/// sent.
pub(crate) async fn write_rows<D, T, I>(
    driver: &mut D,
    plan: &Plan<T>,
    options: &Options<'_>,
    rows: I,
) -> Result<(u64, u64)>
where
    D: Driver,
    T: CopyRow + ?Sized,
    I: IntoIterator,
    I::Item: Borrow<T>,
{
    // A small batch through a kept plan that allows it: one `INSERT` with the rows bound as
    // arrays (see `ops::bound`), or, if that hands them back, the COPY of the same tuples.
    let small = if plan.inserts() {
        bound::encode_small::<T, _>(plan, rows, bound::MAX_ROWS, 0, options, |_, _, _| {})?
    } else {
        Small::Rows(rows.into_iter())
    };
    let (input, refused) = match small {
        Small::Bound(encoded, arrays) => {
            match insert_bound(driver, plan, options, &encoded, arrays).await? {
                Ok(done) => return Ok(done),
                Err(refused) => (Input::Encoded(encoded), refused),
            }
        }
        Small::Rows(rows) => (Input::Rows(rows), None),
    };
    match (copy_rows(driver, plan, options, input).await, refused) {
        // The refused INSERT ran inside a transaction block pgbulk did not know of (a `BEGIN`
        // sent as SQL), which it aborted: its own error says more than the COPY's.
        (Err(e), Some(refused)) if e.code() == Some(&SqlState::IN_FAILED_SQL_TRANSACTION) => {
            Err(server_error_in::<T>(INSERT_FAILED, refused))
        }
        (copied, _) => copied,
    }
}

/// The COPY of [`write_rows`]: `input`'s rows (or tuples) with one COPY of `plan`.
async fn copy_rows<D, T, I>(
    driver: &mut D,
    plan: &Plan<T>,
    options: &Options<'_>,
    input: Input<I>,
) -> Result<(u64, u64)>
where
    D: Driver,
    T: CopyRow + ?Sized,
    I: Iterator,
    I::Item: Borrow<T>,
{
    let mut writer = CopyWriter::start(driver, plan, 0, options).await?;
    if let Some(rows) = writer.take_encoded(input) {
        for row in rows {
            let pushed = match writer.push(row.borrow()) {
                Ok(()) if writer.is_full() => writer.flush().await,
                other => other,
            };
            if let Err(e) = pushed {
                return Err(writer.fail(e).await);
            }
        }
    }
    writer.finish().await
}

/// The savepoint around a bound `INSERT` inside a caller's transaction, so that a refused
/// batch can be copied after all.
const BOUND_SAVEPOINT: &str = "pgbulk_bound";

/// The context of a bound `INSERT`'s error.
const INSERT_FAILED: &str = "the batch (sent as one INSERT of bound arrays) was refused, no row \
                             was written";

/// Inserts `encoded` into `plan`'s table with one `INSERT .. SELECT * FROM unnest($1, ..)`, its
/// columns bound as `arrays`: the rows the server wrote and the bytes encoded. `Err` when it is
/// to be copied instead, nothing of the attempt left: too large to bind, or refused for a value
/// or an integrity rule (see [`bound::copy_instead`]: the COPY names the row), with that error.
async fn insert_bound<D, T>(
    driver: &mut D,
    plan: &Plan<T>,
    options: &Options<'_>,
    encoded: &Encoded,
    arrays: Vec<postgres_types::Type>,
) -> Result<std::result::Result<(u64, u64), Option<Error>>>
where
    D: Driver,
    T: CopyRow + ?Sized,
{
    let bytes = encoded.bytes();
    if bytes > bound::MAX_BYTES {
        return Ok(Err(None));
    }
    let params = encoded.params(plan, arrays);
    let sql = crate::sql::insert_bound::<T>(plan.table());
    // Inside a caller's transaction a savepoint keeps it usable for the COPY after a refusal.
    let in_tx = driver.in_transaction();
    let (before, after) = if in_tx {
        (
            format!("SAVEPOINT {BOUND_SAVEPOINT}"),
            format!("RELEASE SAVEPOINT {BOUND_SAVEPOINT}"),
        )
    } else {
        (String::new(), String::new())
    };
    match driver
        .run_bound(&before, &sql, &params, false, &after)
        .await
    {
        Ok((outcomes, _)) => {
            let written = outcomes.get(usize::from(in_tx)).map_or(0, |o| o.count);
            options.report(encoded.rows, bytes);
            Ok(Ok((written, bytes)))
        }
        Err(e) if bound::copy_instead(&e) => {
            if in_tx {
                driver
                    .execute(&format!(
                        "ROLLBACK TO SAVEPOINT {BOUND_SAVEPOINT}; RELEASE SAVEPOINT {BOUND_SAVEPOINT}"
                    ))
                    .await
                    .map_err(|undo| undo.context(INSERT_FAILED))?;
            }
            Ok(Err(Some(e)))
        }
        // As a refused COPY would, this leaves a caller's transaction aborted.
        Err(e) => Err(server_error_in::<T>(INSERT_FAILED, e)),
    }
}

/// Writes the rows of the stream `rows` with one COPY of `plan`. An `Err` from the stream
/// aborts the COPY and is returned as [`ErrorKind::Input`](crate::ErrorKind::Input) with the
/// row index.
pub(crate) async fn write_stream<D, T, S, E>(
    driver: &mut D,
    plan: &Plan<T>,
    options: &Options<'_>,
    rows: S,
) -> Result<(u64, u64)>
where
    D: Driver,
    T: CopyRow,
    S: Stream<Item = std::result::Result<T, E>>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut writer = CopyWriter::start(driver, plan, 0, options).await?;
    let mut rows = std::pin::pin!(rows);
    while let Some(row) = rows.next().await {
        let pushed = match row.map(|row| writer.push(&row)) {
            Ok(Ok(())) if writer.is_full() => writer.flush().await,
            Ok(pushed) => pushed,
            Err(e) => Err(Error::input(writer.rows(), e.into())),
        };
        if let Err(e) = pushed {
            return Err(writer.fail(e).await);
        }
    }
    writer.finish().await
}

/// Maps a server error during `COPY FROM STDIN` to the caller's row index and field, from the
/// error's `COPY t, line N, column c` context (N counts tuples from 1) or its key detail.
pub(crate) fn server_error<T: CopyRow + ?Sized>(err: Error) -> Error {
    server_error_in::<T>(ABORTED, err)
}

/// [`server_error`] with another `context` for the message.
pub(crate) fn server_error_in<T: CopyRow + ?Sized>(context: &str, err: Error) -> Error {
    let mut located = err.server_where().map_or((None, None), parse_copy_context);
    if located.1.is_none() {
        located.1 = err
            .server_column()
            .map(str::to_owned)
            .or_else(|| err.server_detail().and_then(ident::key_columns));
    }
    let mut e = err.context(context);
    if let Some(line) = located.0 {
        e = e.with_row(line.saturating_sub(1));
    }
    if let Some(column) = located.1 {
        if let Some(c) = T::__PGBULK_COLUMNS.iter().find(|c| c.name == column) {
            e = e.with_field(c.field);
        } else if let Some(c) = T::__PGBULK_COLUMNS
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
}
