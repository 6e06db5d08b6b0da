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
use crate::client::{Described, Driver};
use crate::error::{Error, Result};
use crate::ops::bound::{self, Encoded};
use crate::ops::copy_out;
use crate::ops::scope::TxScope;
use crate::ops::Options;
use crate::plan::{self, Plan};
use crate::row::{CopyRow, FromCopyRow};
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
            .run_bound(&before, statement, &params, false, &after)
            .await;
        let failed = match ran {
            Ok((mut outcomes, _)) => {
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

/// `copy_in_returning` of `encoded` with its rows bound as `arrays`: one
/// `INSERT .. SELECT FROM unnest($1, ..) RETURNING ..` ([`sql::insert_returning_bound`]), its
/// rows read by the one decoder. `None` when it is to be staged instead, nothing of this
/// attempt left: too large to bind, or refused for a value or an integrity rule (the stage's
/// COPY names the row, field and column).
///
/// The `RETURNING` list is checked against `R` before anything is sent, from the columns the
/// plan described; the statement runs in the scope's transaction (a savepoint inside a
/// caller's), closed only once every returned row was decoded, so a row that cannot be read
/// into `R` leaves nothing written, as on the staging path (see [`read_back`]). Two round trips
/// on tokio-postgres (`BEGIN` and the statement pipelined, then the `COMMIT`); three on sqlx
/// and the blocking client, which cannot pipeline the `BEGIN`.
pub(crate) async fn returning<D, T, R>(
    driver: &mut D,
    options: &Options<'_>,
    target: &Plan<T>,
    input_order: bool,
    encoded: &Encoded,
    arrays: Vec<Type>,
) -> Result<Option<Vec<R>>>
where
    D: Driver,
    T: CopyRow,
    R: FromCopyRow,
{
    if encoded.bytes() > bound::MAX_BYTES {
        return Ok(None);
    }
    let Some((list, out_plan)) = returned::<T, R>(target, false, None) else {
        return Ok(None);
    };
    let statement =
        sql::insert_returning_sql::<T>(target.table(), &bound_stage::<T>(), &list, input_order);
    let params = encoded.params(target, arrays);
    let (mut scope, begin) = TxScope::begin(driver, INSERT_SAVEPOINT.to_owned());
    let ran = scope
        .driver()
        .run_bound(&begin, &statement, &params, true, "")
        .await;
    match ran {
        Ok((_, received)) => {
            read_back(scope, received, out_plan, options, encoded, INSERT_FAILED).await
        }
        Err(e) if bound::copy_instead(&e) || bound::replanned(&e) => {
            scope.roll_back().await;
            Ok(None)
        }
        Err(e) => {
            scope.roll_back().await;
            Err(e.context(INSERT_FAILED))
        }
    }
}

/// `upsert_via_staging_returning` of `encoded` with its rows bound as `arrays`: the staging
/// path's merge statement with its `RETURNING` list ([`Merge::returning_sql`]) over
/// [`crate::sql::bound_rows_numbered`] (the same columns as the stage: the row's, then its
/// ordinal) instead of the stage, in input order matched by `order_key` as there. `None` when
/// it is to be staged instead, nothing of this attempt left (see [`stage_instead`]). The
/// scope's `BEGIN`, the merge's settings and the statement go in one request; its `COMMIT`
/// only once every returned row was read into `R` (see [`returning`]).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn upsert_returning<D, T, R>(
    driver: &mut D,
    options: &Options<'_>,
    target: &Plan<T>,
    merge: &Merge,
    scan: &KeyScan,
    input_order: bool,
    order_key: Option<&[String]>,
    encoded: &Encoded,
    arrays: Vec<Type>,
) -> Result<Option<Vec<R>>>
where
    D: Driver,
    T: CopyRow,
    R: FromCopyRow,
{
    let bytes = encoded.bytes();
    if scan.duplicates || bytes > bound::MAX_BYTES {
        return Ok(None);
    }
    let Some((list, out_plan)) = returned::<T, R>(target, true, order_key) else {
        return Ok(None);
    };
    let relation = bound_stage::<T>();
    let params = encoded.params(target, arrays);
    let (mut scope, begin) = TxScope::begin(driver, sql::savepoint());
    let mut begin = Some(begin);
    let mut attempt = Attempt::on_conflict(Dedupe::Skip);
    loop {
        let (before, statement, after) =
            merge.returning_sql(&relation, &list, input_order, attempt.dedupe, scan, bytes);
        let statement = super::proven_order::<R>(statement, order_key, &relation);
        let before = match begin.take() {
            Some(begin) if before.is_empty() => begin,
            Some(begin) => format!("{begin}; {before}"),
            None => before,
        };
        let ran = scope
            .driver()
            .run_bound(&before, &statement, &params, true, &after)
            .await;
        let failed = match ran {
            Ok((_, received)) => {
                return read_back(scope, received, out_plan, options, encoded, MERGE_FAILED).await
            }
            Err(e) => e.context(MERGE_FAILED),
        };
        if stage_instead(merge, scan, attempt, &failed) || bound::replanned(&failed) {
            scope.roll_back().await;
            return Ok(None);
        }
        attempt = retry_or_fail(&mut scope, merge, scan, attempt, failed).await?;
    }
}

/// The bound arrays as the staging path's statements read the stage: `T`'s columns, then each
/// row's ordinal (from 1, in input order) in the stage's ordinal column.
fn bound_stage<T: CopyRow>() -> String {
    crate::sql::bound_rows_numbered::<T>(Some(&crate::sql::ident::quote(sql::ORD)))
}

/// The `RETURNING` list for `R` after a plain insert or (`merged`) a merge, with the columns of
/// `order_key` as the staging path adds them, from the target's columns as its plan described
/// them, and how `R` reads what it returns — each field's column, or `inserted` (`bool`) —
/// checked before anything is sent. `None` when that fails: the staging path, which reads the
/// columns from the catalog and describes its statement, then says why (or succeeds, where the
/// plan's description was stale, as sqlx's cached ones can be).
fn returned<T: CopyRow, R: FromCopyRow>(
    target: &Plan<T>,
    merged: bool,
    order_key: Option<&[String]>,
) -> Option<(String, plan::OutPlan)> {
    let columns = target.table_columns();
    let names: Vec<String> = columns.iter().map(|(name, _)| name.clone()).collect();
    let mut list = sql::returning_list::<R>(&names, target.table(), merged, false).ok()?;
    if let Some(key) = order_key {
        list.push_str(&crate::sql::citus::key_returning(sql::TARGET_ALIAS, key));
    }
    let returned = Described {
        columns: R::__PGBULK_COLUMNS
            .iter()
            .map(|c| {
                columns
                    .iter()
                    .find(|(name, _)| name == c.name)
                    .cloned()
                    .unwrap_or_else(|| (c.name.to_owned(), Type::BOOL))
            })
            .collect(),
        ..Described::default()
    };
    let out_plan = checked::<R>(&returned).ok()?;
    Some((list, out_plan))
}

/// `R` checked against `described`, the columns a `RETURNING` list returns, as a staged read
/// checks its query's (the plan's COPY text is not used: the rows arrive bound).
fn checked<R: FromCopyRow>(described: &Described) -> Result<plan::OutPlan> {
    plan::check_copy_out::<R>("RETURNING", described)
}

/// Reads `received`, the rows a bound statement returned inside `scope`, into `R` — as their
/// own description says, checked as a staged read's is (`out_plan`, checked before sending,
/// when no row came back) — then closes the scope (`COMMIT`, or `RELEASE SAVEPOINT`); rolls it
/// back if a row cannot be read. `None`, rolled back, when the description does not match `R`
/// (the staging path then says why). `context` for an error closing it.
async fn read_back<D: Driver, R: FromCopyRow>(
    mut scope: TxScope<'_, D>,
    received: Option<crate::client::BoundRows>,
    out_plan: plan::OutPlan,
    options: &Options<'_>,
    encoded: &Encoded,
    context: &str,
) -> Result<Option<Vec<R>>> {
    let Some(received) = received else {
        scope.roll_back().await;
        return Err(Error::protocol("the bound statement's rows were not read"));
    };
    let out_plan = if received.columns.is_empty() {
        out_plan
    } else {
        let described = Described {
            columns: received.columns,
            ..Described::default()
        };
        let Ok(plan) = checked::<R>(&described) else {
            scope.roll_back().await;
            return Ok(None);
        };
        plan
    };
    match copy_out::collect_received::<R>(out_plan, received.data.freeze(), options).await {
        Ok(rows) => {
            scope.close_with("", context).await?;
            options.report(encoded.rows, encoded.bytes());
            Ok(Some(rows))
        }
        Err(e) => {
            scope.roll_back().await;
            Err(e)
        }
    }
}

/// The savepoint of a bound `copy_in_returning` inside a caller's transaction.
const INSERT_SAVEPOINT: &str = "pgbulk_returning";

/// The context of a bound `copy_in_returning`'s error.
const INSERT_FAILED: &str = "copy_in_returning: the batch (sent as one INSERT of bound arrays) \
                             was refused, no row was written";
