//! A small upsert with its rows bound as parameters instead of staged: one array per column,
//! read by the merge through `unnest($1, .., $n)`.
//!
//! Below [`MERGE_MIN_ROWS`](sql::MERGE_MIN_ROWS) rows the staging table's fixed costs are most
//! of an upsert's time: the COPY's start waits a round trip before the data can follow, the
//! temporary table is written and truncated, and every call opens it. Bound as arrays, the
//! rows go with the merge itself, pipelined behind the scope's `BEGIN` and before its `COMMIT`:
//! one round trip after the describe on tokio-postgres, and no temporary table at all. The
//! merge statement is the staging path's ([`Merge::counts_batch`]) over
//! [`crate::sql::bound_rows`] instead of the stage, so its counts, update filter and key order are
//! the same.
//!
//! The rows are encoded exactly as for the stage (with their ordinals), before anything is
//! sent (see [`crate::ops::bound`]). Whatever this path does not do goes to the staging path
//! with those same tuples: a batch in which a key may repeat (the
//! dedupe deletes from the stage), a server that finds a key twice the encoder could not see,
//! and an error in the data or an integrity error — which the stage's COPY names by row, field
//! and column where the bound statement cannot; the staging path then either fails naming the
//! row or succeeds. Columns only the server knows the array type of (enums, domains,
//! composites), array columns (`unnest` would flatten them) and Citus tables are always staged.

use super::key_scan::KeyScan;
use super::options::UpsertCounts;
use super::{retry_or_fail, MERGE_FAILED};
use crate::client::Driver;
use crate::error::{Error, Result};
use crate::ops::bound::{self, Encoded};
use crate::ops::scope::TxScope;
use crate::ops::Options;
use crate::plan::Plan;
use crate::row::CopyRow;
use crate::sql::upsert::{self as sql, Attempt, Dedupe, Merge};
use postgres_types::Type;

/// The upsert of `encoded` with its rows bound as `arrays`; `None` when it is to be staged
/// instead (see the module's docs; nothing of this attempt is left then).
pub(crate) async fn counts<D: Driver, T: CopyRow>(
    driver: &mut D,
    options: &Options<'_>,
    target: &Plan<T>,
    merge: &Merge,
    scan: &KeyScan,
    encoded: &Encoded,
    arrays: Vec<Type>,
) -> Result<Option<UpsertCounts>> {
    let bytes = encoded.bytes();
    if scan.duplicates || bytes > bound::MAX_BYTES {
        return Ok(None);
    }
    let params = encoded.params(target, arrays);
    let relation = crate::sql::bound_rows::<T>();
    let (mut scope, begin) = TxScope::begin(driver, sql::savepoint());
    // The scope opens in the first attempt's request; its outcome is not the merge's.
    let mut begin = Some(begin);
    let mut attempt = Attempt::on_conflict(Dedupe::Skip);
    loop {
        let batch = merge.counts_batch(&relation, attempt, scan, bytes);
        let (before, statement, after) = batch.split();
        let opened = begin.take();
        let before = match &opened {
            Some(begin) if before.is_empty() => begin.clone(),
            Some(begin) => format!("{begin}; {before}"),
            None => before,
        };
        let after = scope.close_sql(&after);
        let ran = scope
            .driver()
            .run_bound(&before, statement, &params, &after)
            .await;
        let failed = match ran {
            Ok(mut outcomes) => {
                scope.closed();
                outcomes.drain(..usize::from(opened.is_some()));
                options.report(encoded.rows, bytes);
                return sql::parse_counts(&outcomes, &batch, encoded.rows).map(Some);
            }
            Err(e) => e.context(MERGE_FAILED),
        };
        if stage_instead(merge, scan, attempt, &failed) {
            scope.roll_back().await;
            return Ok(None);
        }
        attempt = retry_or_fail(&mut scope, merge, scan, attempt, failed).await?;
    }
}

/// Whether the failed `attempt` is to be made again through the staging table: the server
/// found a key twice (the dedupe needs the stage), or the data or an integrity rule was
/// refused (the stage's COPY names the row).
fn stage_instead(merge: &Merge, scan: &KeyScan, attempt: Attempt, failed: &Error) -> bool {
    let dedupe = merge
        .next_attempt(attempt, scan, failed.code())
        .is_some_and(|next| next.dedupe != attempt.dedupe);
    dedupe || bound::copy_instead(failed)
}
