//! Quarantine mode: load every good row, set the bad ones aside with their index and reason.
//!
//! `client.bulk().quarantine().copy_in(&rows)` works like [`copy_in`](crate::Bulk::copy_in) until a
//! row fails; then, instead of failing the whole load, it finds the failing rows, leaves them
//! out and loads the rest, the way pgloader does:
//!
//! 1. **Fast path.** One transaction (a savepoint inside a caller's transaction), one `COPY` of
//!    every row. With no bad row this is a plain `copy_in` plus a `BEGIN`/`COMMIT` round trip.
//! 2. **Client-side errors are known up front.** A row that cannot be encoded (a NUL in text, a
//!    ragged array, an out-of-range date) is removed from the buffer as it is encoded and
//!    recorded; the COPY goes on without it.
//! 3. **Server-side errors.** Each COPY runs in its own savepoint. When the server rejects a row
//!    and says which (`COPY t, line N`: unique, CHECK, NOT NULL, out-of-range values), that
//!    row is set aside, the rows before it are loaded again (they were good), and the rows
//!    after it are loaded in chunks, so a later bad row costs a chunk, not the whole rest.
//!    When the server does not name a row (foreign keys, deferred constraints, which are
//!    checked after the last row), the segment is split in halves until the failing row is
//!    alone (bisection).
//! 4. **Deferred constraints are checked before commit**, so a `DEFERRABLE INITIALLY DEFERRED`
//!    foreign key cannot fail the final `COMMIT` and take the good rows with it: in pgbulk's
//!    own transaction with `SET CONSTRAINTS ALL IMMEDIATE`; inside a caller's transaction after
//!    each COPY in a savepoint that is then rolled back (so the caller's constraint modes are
//!    unchanged, and the deferred checks run again at the caller's commit).
//!
//! The good rows commit together or not at all. Only errors about the data of a row (SQLSTATE
//! classes 22 *data exception*, 23 *integrity constraint violation*, P0 *PL/pgSQL raise* from a
//! trigger, and 54 *program limit exceeded*) set a row aside; anything else (a lost connection, a
//! statement timeout, a missing table) rolls everything back and is returned as the call's error.
//!
//! Rows are sent more than once when some fail, so the input must be replayable: anything
//! `IntoIterator + Clone` whose iteration yields the same rows each time (`&Vec<T>`, `&[T]`, a
//! `Range` mapped by a pure function).

use crate::client::Driver;
use crate::error::{Error, ErrorKind, Result};
use crate::ops::copy_in::{server_error_in, CopyWriter};
use crate::ops::scope::TxScope;
use crate::ops::Options;
use crate::plan::Plan;
use crate::row::CopyRow;
use futures_util::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_SAVEPOINT: AtomicU64 = AtomicU64::new(0);

/// How the reason of a row rejected by the server starts.
const REJECTED: &str = "row rejected by the server";

/// Smallest chunk the rows after a rejected row are split into.
const MIN_CHUNK: usize = 1024;

/// Into how many chunks the rows after a rejected row are split (at least [`MIN_CHUNK`] rows
/// each).
const CHUNKS: usize = 16;

/// A row that quarantine mode set aside.
#[derive(Debug)]
#[non_exhaustive]
pub struct Rejected {
    /// The row's 0-based position in the rows passed to
    /// [`copy_in`](crate::Quarantine::copy_in).
    pub index: usize,
    /// Why it was rejected: an [`Encode`](ErrorKind::Encode) error (found on the client), or a
    /// [`Db`](ErrorKind::Db) error with the server's SQLSTATE, message and, where the server
    /// said, the column. Its [`row`](Error::row) is `index`.
    pub error: Error,
}

/// What a quarantined [`copy_in`](crate::Quarantine::copy_in) did.
#[derive(Debug)]
#[non_exhaustive]
pub struct QuarantineOutcome {
    /// Rows written (committed together).
    pub written: u64,
    /// Rows set aside, in input order.
    pub rejected: Vec<Rejected>,
}

/// The transaction (or, in a caller's transaction, the savepoint) the good rows commit in, and
/// the names of the savepoints used inside it.
struct Scope<'d, D: Driver> {
    tx: TxScope<'d, D>,
    /// The per-COPY savepoint.
    segment: String,
    /// The savepoint that checks deferred constraints.
    check: String,
}

impl<'d, D: Driver> Scope<'d, D> {
    async fn open(driver: &'d mut D) -> Result<Scope<'d, D>> {
        let in_tx = driver.in_transaction();
        let n = NEXT_SAVEPOINT.fetch_add(1, Ordering::Relaxed);
        let check = format!("pgbulk_quarantine_{n}_check");
        let (then, context) = if in_tx {
            // Deferred-constraint events the caller queued before this call must be good,
            // otherwise every segment's check would fail and every row would be set aside.
            (
                check_sql(&check),
                "quarantine: the transaction already holds rows that violate a deferred \
                 constraint",
            )
        } else {
            (
                "SET CONSTRAINTS ALL IMMEDIATE".to_owned(),
                "quarantine: cannot open the transaction",
            )
        };
        let tx = TxScope::open(
            driver,
            format!("pgbulk_quarantine_{n}"),
            "quarantine",
            &then,
            context,
        )
        .await?;
        Ok(Scope {
            tx,
            segment: format!("pgbulk_quarantine_{n}_segment"),
            check,
        })
    }

    /// See [`check_sql`].
    fn check_sql(&self) -> String {
        check_sql(&self.check)
    }

    async fn rollback(self) {
        self.tx.rollback().await;
    }

    async fn commit(self, release_segment: bool) -> Result<()> {
        let release = if release_segment {
            format!("RELEASE SAVEPOINT {}", self.segment)
        } else {
            String::new()
        };
        self.tx
            .close_with(&release, "quarantine: cannot commit, nothing was written")
            .await
            .map(drop)
    }
}

/// In a caller's transaction: check deferred constraints now, in a savepoint rolled back
/// afterwards so that the caller's `SET CONSTRAINTS` modes and pending checks are restored.
fn check_sql(savepoint: &str) -> String {
    format!(
        "SAVEPOINT {savepoint}; SET CONSTRAINTS ALL IMMEDIATE; ROLLBACK TO SAVEPOINT {savepoint}; \
         RELEASE SAVEPOINT {savepoint}"
    )
}

/// Whether a server error is about the data of the row it names (or of some row in the
/// segment): data exceptions, integrity violations, trigger raises, program limits.
fn is_row_error(e: &Error) -> bool {
    e.kind() == ErrorKind::Db
        && e.code()
            .is_some_and(|c| matches!(&c.code()[..2], "22" | "23" | "P0" | "54"))
}

/// The input index of the `n`-th (0-based) row sent for segment `lo..hi`, given the rows
/// already set aside (which were not sent).
fn nth_sent(lo: usize, hi: usize, rejected: &BTreeMap<usize, Error>, n: usize) -> Option<usize> {
    let mut idx = lo.checked_add(n)?;
    for &r in rejected.range(lo..hi).map(|(k, _)| k) {
        if r <= idx {
            idx += 1;
        } else {
            break;
        }
    }
    (idx < hi).then_some(idx)
}

/// Rows of `lo..hi` not yet set aside.
fn live(lo: usize, hi: usize, rejected: &BTreeMap<usize, Error>) -> usize {
    (hi - lo) - rejected.range(lo..hi).count()
}

/// Quarantine mode's `copy_in` of `rows` with `plan` on `driver`. (A boxed `Send` future:
/// see `CopyWriter` for why.)
pub(crate) fn run<'a, D, T, I>(
    driver: &'a mut D,
    plan: &'a Plan<T>,
    options: &'a Options<'_>,
    rows: I,
    max_rejected: Option<usize>,
) -> BoxFuture<'a, Result<QuarantineOutcome>>
where
    D: Driver,
    T: CopyRow + Send + 'a,
    I: IntoIterator<Item = T> + Clone + Send + Sync + 'a,
    I::IntoIter: Send,
{
    Box::pin(run_boxed(driver, plan, options, rows, max_rejected))
}

// One retry loop over segments: split up, it would pass the same six pieces of state around.
#[allow(clippy::too_many_lines)]
async fn run_boxed<D, T, I>(
    driver: &mut D,
    plan: &Plan<T>,
    options: &Options<'_>,
    rows: I,
    max_rejected: Option<usize>,
) -> Result<QuarantineOutcome>
where
    D: Driver,
    T: CopyRow,
    I: IntoIterator<Item = T> + Clone,
{
    let total = {
        let iter = rows.clone().into_iter();
        match iter.size_hint() {
            (lo, Some(hi)) if lo == hi => lo,
            _ => iter.count(),
        }
    };
    let mut scope = Scope::open(driver).await?;
    let in_tx = scope.tx.in_tx();
    let mut rejected: BTreeMap<usize, Error> = BTreeMap::new();
    let mut written = 0u64;
    // Segments still to load, the next one last.
    let mut todo = vec![(0usize, total)];
    // The last successful segment's savepoint is released together with the next statement.
    let mut release_pending = false;
    while let Some((lo, hi)) = todo.pop() {
        if live(lo, hi, &rejected) == 0 {
            continue;
        }
        let open = if release_pending {
            format!("RELEASE SAVEPOINT {0}; SAVEPOINT {0}", scope.segment)
        } else {
            format!("SAVEPOINT {}", scope.segment)
        };
        if let Err(e) = scope.tx.driver().execute(&open).await {
            let e = e.context("quarantine: cannot open a savepoint");
            scope.rollback().await;
            return Err(e);
        }
        let mut found = Vec::new();
        let mut result = copy_segment(
            scope.tx.driver(),
            plan,
            options,
            &rows,
            (lo, hi),
            &rejected,
            &mut found,
        )
        .await;
        if result.is_ok() && in_tx {
            let check = scope.check_sql();
            if let Err(e) = scope.tx.driver().execute(&check).await {
                result = Err(server_error_in::<T>(REJECTED, e));
            }
        }
        for (i, e) in found {
            rejected.insert(i, e);
        }
        match result {
            Ok(n) => {
                written += n;
                release_pending = true;
            }
            Err(e) => {
                release_pending = false;
                let undo = format!(
                    "ROLLBACK TO SAVEPOINT {0}; RELEASE SAVEPOINT {0}",
                    scope.segment
                );
                if !is_row_error(&e) || scope.tx.driver().execute(&undo).await.is_err() {
                    scope.rollback().await;
                    return Err(e);
                }
                let named = e
                    .row()
                    .and_then(|n| usize::try_from(n).ok())
                    .and_then(|n| nth_sent(lo, hi, &rejected, n));
                let e = e.context(REJECTED);
                if let Some(k) = named {
                    let e = e.with_row(k as u64);
                    rejected.insert(k, e);
                    // The rows after `k` in chunks, then the rows before it (good) first.
                    let chunk = (live(k + 1, hi, &rejected) / CHUNKS).max(MIN_CHUNK);
                    let mut end = hi;
                    while end > k + 1 {
                        let start = end.saturating_sub(chunk).max(k + 1);
                        todo.push((start, end));
                        end = start;
                    }
                    todo.push((lo, k));
                } else if live(lo, hi, &rejected) == 1 {
                    let k = (lo..hi)
                        .find(|i| !rejected.contains_key(i))
                        .expect("one live row");
                    rejected.insert(k, e.with_row(k as u64));
                } else {
                    // No row named: bisect.
                    let mid = lo + (hi - lo) / 2;
                    todo.push((mid, hi));
                    todo.push((lo, mid));
                }
            }
        }
        if let Some(max) = max_rejected {
            if rejected.len() > max {
                scope.rollback().await;
                let first = rejected.into_values().next().expect("rows were rejected");
                return Err(Error::too_many_rejected(max, first));
            }
        }
    }
    scope.commit(release_pending).await?;
    Ok(QuarantineOutcome {
        written,
        rejected: rejected
            .into_iter()
            .map(|(index, error)| Rejected { index, error })
            .collect(),
    })
}

/// One COPY of the rows of `lo..hi` not yet rejected. Rows that cannot be encoded are left out
/// and pushed onto `found`.
async fn copy_segment<D, T, I>(
    driver: &mut D,
    plan: &Plan<T>,
    options: &Options<'_>,
    rows: &I,
    (lo, hi): (usize, usize),
    rejected: &BTreeMap<usize, Error>,
    found: &mut Vec<(usize, Error)>,
) -> Result<u64>
where
    D: Driver,
    T: CopyRow,
    I: IntoIterator<Item = T> + Clone,
{
    let mut writer = CopyWriter::start(driver, plan, 0, options).await?;
    // A plain Vec (no iterator adapter with a closure is held across the awaits below: that
    // would make the future not `Send` for spawning).
    let skip: Vec<usize> = rejected.range(lo..hi).map(|(&k, _)| k).collect();
    let mut next_skip = 0;
    for (i, row) in rows.clone().into_iter().enumerate().skip(lo).take(hi - lo) {
        if skip.get(next_skip) == Some(&i) {
            next_skip += 1;
            continue;
        }
        let pushed = match writer.push(&row) {
            Ok(()) if writer.is_full() => writer.flush().await,
            Err(e) if e.kind() == ErrorKind::Encode => {
                found.push((i, e.with_row(i as u64)));
                continue;
            }
            other => other,
        };
        if let Err(e) = pushed {
            return Err(writer.fail(e).await);
        }
    }
    let (written, _bytes) = writer.finish().await?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(keys: &[usize]) -> BTreeMap<usize, Error> {
        keys.iter().map(|&k| (k, Error::usage("test"))).collect()
    }

    #[test]
    fn maps_sent_rows_to_input_indexes() {
        let none = set(&[]);
        assert_eq!(nth_sent(0, 10, &none, 0), Some(0));
        assert_eq!(nth_sent(5, 10, &none, 4), Some(9));
        assert_eq!(nth_sent(5, 10, &none, 5), None);
        let some = set(&[0, 2, 3, 7, 20]);
        // sent: 1, 4, 5, 6, 8, 9
        let sent: Vec<_> = (0..7).map(|n| nth_sent(0, 10, &some, n)).collect();
        assert_eq!(
            sent,
            [Some(1), Some(4), Some(5), Some(6), Some(8), Some(9), None]
        );
        // within a segment: 3..8 sends 4, 5, 6
        assert_eq!(nth_sent(3, 8, &some, 0), Some(4));
        assert_eq!(nth_sent(3, 8, &some, 2), Some(6));
        assert_eq!(nth_sent(3, 8, &some, 3), None);
        assert_eq!(live(0, 10, &some), 6);
        assert_eq!(live(3, 8, &some), 3);
    }
}
