//! The operations, each written once against [`Driver`](crate::client::Driver): the async
//! handles and the blocking API are thin layers over these.

pub(crate) mod bound;
pub(crate) mod copy_in;
pub(crate) mod copy_out;
pub(crate) mod distributed;
pub(crate) mod quarantine;
pub(crate) mod replace_all;
pub(crate) mod scope;
pub(crate) mod upsert;

use std::sync::Arc;

/// Default size of the chunks handed to the COPY sink: 256 KiB.
pub const DEFAULT_FLUSH_BYTES: usize = 256 * 1024;

/// How far a long `copy_in` or `copy_out` has got, as passed to
/// [`Bulk::on_progress`](crate::Bulk::on_progress).
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

pub(crate) type ProgressFn<'c> = Arc<dyn Fn(Progress) + Send + Sync + 'c>;

/// The per-call options every handle carries (async and blocking alike).
#[derive(Clone)]
pub(crate) struct Options<'c> {
    /// The table instead of the row type's own.
    pub(crate) table: Option<String>,
    pub(crate) flush_bytes: usize,
    pub(crate) progress: Option<ProgressFn<'c>>,
}

impl Options<'_> {
    /// The smallest chunk a handle's `flush_bytes` accepts: below it, per-message overhead
    /// dominates. One rule for every client's handle.
    const MIN_FLUSH_BYTES: usize = 4096;

    /// Sets the chunk size, at least [`MIN_FLUSH_BYTES`](Self::MIN_FLUSH_BYTES).
    pub(crate) fn set_flush_bytes(&mut self, bytes: usize) {
        self.flush_bytes = bytes.max(Self::MIN_FLUSH_BYTES);
    }
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            table: None,
            flush_bytes: DEFAULT_FLUSH_BYTES,
            progress: None,
        }
    }
}

impl Options<'_> {
    /// The target table for `T`: the override, or `T`'s own.
    pub(crate) fn table_for<T: crate::row::CopyRow + ?Sized>(&self) -> &str {
        self.table.as_deref().unwrap_or(T::__PGBULK_TABLE)
    }

    /// Reports `rows` and `bytes` to the progress callback, if there is one.
    pub(crate) fn report(&self, rows: u64, bytes: u64) {
        if let Some(progress) = &self.progress {
            progress(Progress { rows, bytes });
        }
    }
}

impl std::fmt::Debug for Options<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("table", &self.table)
            .field("flush_bytes", &self.flush_bytes)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}
