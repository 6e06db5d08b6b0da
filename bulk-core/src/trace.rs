//! `tracing` spans and events per operation, behind the default-on `tracing` feature.
//!
//! Every operation (`copy_in`, `copy_in_stream`, `copy_out`, `upsert_via_staging`,
//! `copy_in_returning`) runs inside an INFO span named after the
//! operation (`pgbulk.copy_in`, ...) with the fields `table`, `plan_reused`, and, recorded when
//! the operation ends, `rows`, `bytes` (where known: not for upserts) and `elapsed_ms`.
//! `plan_reused` is recorded by the describe step itself: it turns `false` when the operation
//! describes its table or query (a DEBUG event `described`, with the field `what`, marks each
//! describe round trip) and stays `true` when it ran on a kept plan. The end itself is a DEBUG event
//! (`copy_in finished`, with the same fields); a failure is a DEBUG event naming the error (the
//! caller gets the error itself and decides how loud to be), and an operation whose future or
//! stream is dropped before it finished ends with a DEBUG event saying so.
//!
//! Without the feature, [`Op`] is a zero-sized type whose methods are empty and inlined: the
//! operations pay nothing, not even an `Instant::now()`.

use std::future::Future;

/// Which operation an [`Op`] traces; it names the span.
///
/// Upserts and RETURNING loads run through [`traced_rows`]: they record rows and duration (their
/// COPY into the stage reports progress through `CopyWriter` already).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
    CopyIn,
    CopyInStream,
    CopyOut,
    Upsert,
    CopyInReturning,
}

#[cfg(feature = "tracing")]
mod imp {
    use super::OpKind;
    use std::future::Future;
    use std::time::Instant;
    use tracing::field::Empty;
    use tracing::Instrument;

    /// One traced operation: its span, start time, and whether it has ended.
    pub(crate) struct Op {
        kind: OpKind,
        span: tracing::Span,
        started: Instant,
        done: bool,
    }

    impl OpKind {
        fn name(self) -> &'static str {
            match self {
                OpKind::CopyIn => "copy_in",
                OpKind::CopyInStream => "copy_in_stream",
                OpKind::CopyOut => "copy_out",
                OpKind::Upsert => "upsert_via_staging",
                OpKind::CopyInReturning => "copy_in_returning",
            }
        }
    }

    impl Op {
        /// Opens the operation's span.
        pub(crate) fn start(kind: OpKind, table: &str) -> Op {
            // Span names must be literals, hence one arm per operation; the fields are the same.
            macro_rules! span {
                ($name:literal, $target:ident) => {
                    tracing::info_span!(
                        $name,
                        $target = table,
                        // Until the describe step says otherwise (`described`).
                        plan_reused = true,
                        rows = Empty,
                        bytes = Empty,
                        elapsed_ms = Empty
                    )
                };
            }
            let span = match kind {
                OpKind::CopyIn => span!("pgbulk.copy_in", table),
                OpKind::CopyInStream => span!("pgbulk.copy_in_stream", table),
                OpKind::CopyOut => span!("pgbulk.copy_out", query),
                OpKind::Upsert => span!("pgbulk.upsert_via_staging", table),
                OpKind::CopyInReturning => span!("pgbulk.copy_in_returning", table),
            };
            Op {
                kind,
                span,
                started: Instant::now(),
                done: false,
            }
        }

        /// Runs `fut` inside the span.
        pub(crate) fn instrument<F: Future>(&self, fut: F) -> impl Future<Output = F::Output> {
            fut.instrument(self.span.clone())
        }

        /// A handle on the span, to enter it while a stream is polled.
        pub(crate) fn handle(&self) -> SpanHandle {
            SpanHandle(self.span.clone())
        }

        fn elapsed_ms(&self) -> u64 {
            u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
        }

        /// Records the totals of a finished operation and emits its DEBUG event.
        pub(crate) fn finish(&mut self, rows: u64, bytes: u64) {
            self.done = true;
            let elapsed_ms = self.elapsed_ms();
            self.span.record("rows", rows);
            self.span.record("bytes", bytes);
            self.span.record("elapsed_ms", elapsed_ms);
            let op = self.kind.name();
            self.span.in_scope(|| {
                tracing::debug!(op, rows, bytes, elapsed_ms, "{op} finished");
            });
        }

        /// Records the row count of a finished operation whose byte count is not known, and
        /// emits its DEBUG event.
        pub(crate) fn finish_rows(&mut self, rows: u64) {
            self.done = true;
            let elapsed_ms = self.elapsed_ms();
            self.span.record("rows", rows);
            self.span.record("elapsed_ms", elapsed_ms);
            let op = self.kind.name();
            self.span.in_scope(|| {
                tracing::debug!(op, rows, elapsed_ms, "{op} finished");
            });
        }

        /// Emits the DEBUG event of a failed operation.
        pub(crate) fn fail(&mut self, error: &crate::Error) {
            self.done = true;
            let elapsed_ms = self.elapsed_ms();
            self.span.record("elapsed_ms", elapsed_ms);
            let op = self.kind.name();
            self.span.in_scope(|| {
                tracing::debug!(op, elapsed_ms, error = %error, "{op} failed");
            });
        }
    }

    /// The span of an [`Op`], entered around each `poll_next` of a stream.
    pub(crate) struct SpanHandle(tracing::Span);

    impl SpanHandle {
        /// Enters the span until the guard is dropped.
        pub(crate) fn enter(&self) -> tracing::span::Entered<'_> {
            self.0.enter()
        }
    }

    /// Marks a describe round trip (of a table, or a `copy_out` query): the current
    /// operation's span records `plan_reused = false`, and a DEBUG event `described` names
    /// `what`.
    pub(crate) fn described(what: &str) {
        tracing::Span::current().record("plan_reused", false);
        tracing::debug!(what, "described");
    }

    impl Drop for Op {
        fn drop(&mut self) {
            if !self.done {
                let elapsed_ms = self.elapsed_ms();
                let op = self.kind.name();
                self.span.in_scope(|| {
                    tracing::debug!(op, elapsed_ms, "{op} dropped before it finished");
                });
            }
        }
    }
}

#[cfg(not(feature = "tracing"))]
mod imp {
    use super::OpKind;
    use std::future::Future;

    /// Without the `tracing` feature: nothing, at no cost.
    pub(crate) struct Op;

    /// Without the `tracing` feature: nothing to enter.
    pub(crate) struct SpanHandle;

    /// Without the `tracing` feature: the guard of no span.
    pub(crate) struct Entered;

    /// Without the `tracing` feature: nothing to mark.
    #[inline]
    pub(crate) fn described(_what: &str) {}

    #[allow(clippy::unused_self)]
    impl SpanHandle {
        #[inline]
        pub(crate) fn enter(&self) -> Entered {
            Entered
        }
    }

    // Same signatures as the real implementation, so callers compile unchanged.
    #[allow(clippy::unused_self)]
    impl Op {
        #[inline]
        pub(crate) fn start(_kind: OpKind, _table: &str) -> Op {
            Op
        }

        #[inline]
        pub(crate) fn instrument<F: Future>(&self, fut: F) -> F {
            fut
        }

        #[inline]
        pub(crate) fn handle(&self) -> SpanHandle {
            SpanHandle
        }

        #[inline]
        pub(crate) fn finish(&mut self, _rows: u64, _bytes: u64) {}

        #[inline]
        pub(crate) fn finish_rows(&mut self, _rows: u64) {}

        #[inline]
        pub(crate) fn fail(&mut self, _error: &crate::Error) {}
    }
}

pub(crate) use imp::{described, Op, SpanHandle};

/// Runs `fut` (an operation returning its `(rows, bytes)` totals) inside `op`'s span, records
/// the outcome, and returns the row count.
pub(crate) async fn traced<F>(mut op: Op, fut: F) -> crate::Result<u64>
where
    F: Future<Output = crate::Result<(u64, u64)>>,
{
    match op.instrument(fut).await {
        Ok((rows, bytes)) => {
            op.finish(rows, bytes);
            Ok(rows)
        }
        Err(e) => {
            op.fail(&e);
            Err(e)
        }
    }
}

/// Runs `fut` inside `op`'s span and records its outcome, with the row count `rows` gives for
/// its value (for operations whose byte count is not known).
pub(crate) async fn traced_rows<F, T>(
    mut op: Op,
    fut: F,
    rows: impl FnOnce(&T) -> u64,
) -> crate::Result<T>
where
    F: Future<Output = crate::Result<T>>,
{
    match op.instrument(fut).await {
        Ok(value) => {
            op.finish_rows(rows(&value));
            Ok(value)
        }
        Err(e) => {
            op.fail(&e);
            Err(e)
        }
    }
}
