//! A small upsert with its rows bound as parameters instead of staged: one array per column,
//! read by the merge through `unnest($1, .., $n)`.
//!
//! Below [`MERGE_MIN_ROWS`](sql::MERGE_MIN_ROWS) rows the staging table's fixed costs are most
//! of an upsert's time: the COPY's start waits a round trip before the data can follow, the
//! temporary table is written and truncated, and every call opens it. Bound as arrays, the
//! rows go with the merge itself, pipelined behind the scope's `BEGIN` and before its `COMMIT`:
//! one round trip after the describe on tokio-postgres, and no temporary table at all. The
//! merge statement is the staging path's ([`Merge::counts_batch`]) over
//! [`sql::bound_rows`] instead of the stage, so its counts, update filter and key order are
//! the same.
//!
//! The rows are encoded exactly as for the stage (with their ordinals), by the same encoder,
//! before anything is sent; the arrays are made from those tuples
//! ([`tuples_to_arrays`](crate::engine::tuples_to_arrays)). Whatever this path does not do
//! goes to the staging path with those same tuples: a batch in which a key may repeat (the
//! dedupe deletes from the stage), a server that finds a key twice the encoder could not see,
//! and an error in the data or an integrity error — which the stage's COPY names by row, field
//! and column where the bound statement cannot; the staging path then either fails naming the
//! row or succeeds. Columns only the server knows the array type of (enums, domains,
//! composites), array columns (`unnest` would flatten them) and Citus tables are always staged.

use super::key_scan::KeyScan;
use super::options::UpsertCounts;
use super::{retry_or_fail, MERGE_FAILED};
use crate::client::{Driver, RawParam};
use crate::engine::{tuples_to_arrays, Encoder};
use crate::error::{Error, Result};
use crate::ops::scope::TxScope;
use crate::ops::Options;
use crate::plan::Plan;
use crate::row::CopyRow;
use crate::sql::upsert::{self as sql, Attempt, Dedupe, Merge};
use bytes::Bytes;
use postgres_types::{Kind, Type};

/// Encoded bytes above which a batch is staged even if it has few rows: arrays are built
/// whole in memory on both sides, a COPY streams.
const MAX_BOUND_BYTES: u64 = 8 << 20;

/// A batch encoded whole before it is sent: staging tuples (each with its ordinal, no header).
pub(crate) struct Encoded {
    pub(crate) tuples: Bytes,
    pub(crate) rows: u64,
}

/// The array type each of `target`'s columns is bound as, when the batch of `rows` (the
/// input's upper bound, `None` if it does not say) may be bound at all.
pub(crate) fn array_types<T: CopyRow + ?Sized>(
    target: &Plan<T>,
    rows: Option<usize>,
) -> Option<Vec<Type>> {
    if rows.is_none_or(|n| n >= sql::MERGE_MIN_ROWS) || target.distribution().is_citus() {
        return None;
    }
    target
        .types()
        .iter()
        .map(|ty| match ty.kind() {
            Kind::Array(_) => None,
            _ => crate::codec::array_type_of(ty),
        })
        .collect()
}

/// Encodes `rows` for `target`'s stage, each with its ordinal, showing each tuple's keys to
/// `scan`. An encode error names the row and field; nothing was sent.
pub(crate) fn encode<T, I>(
    target: &Plan<T>,
    rows: I,
    scan: &mut KeyScan,
    options: &Options<'_>,
) -> Result<Encoded>
where
    T: CopyRow,
    I: IntoIterator<Item = T>,
{
    let mut encoder = Encoder::<T>::new(options.flush_bytes, 1).for_server(target.server());
    for row in rows {
        let ord = encoder.rows();
        encoder.push_with(&row, target.types(), super::staged(scan, ord))?;
    }
    let rows = encoder.rows();
    Ok(Encoded {
        tuples: encoder.into_tuples(),
        rows,
    })
}

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
    let bytes = encoded.tuples.len() as u64;
    if scan.duplicates || bytes > MAX_BOUND_BYTES {
        return Ok(None);
    }
    let rows = usize::try_from(encoded.rows).unwrap_or(usize::MAX);
    let params: Vec<RawParam> = tuples_to_arrays(&encoded.tuples, rows, target.types())
        .into_iter()
        .zip(arrays)
        .map(|(value, ty)| RawParam {
            ty,
            value: Some(value),
        })
        .collect();
    let relation = sql::bound_rows::<T>();
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
    let code = failed.code();
    let dedupe = merge
        .next_attempt(attempt, scan, code)
        .is_some_and(|next| next.dedupe != attempt.dedupe);
    dedupe || code.is_some_and(|c| matches!(&c.code()[..2], "22" | "23"))
}
