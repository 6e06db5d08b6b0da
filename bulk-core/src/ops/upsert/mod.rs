//! `upsert_via_staging`: binary COPY into a temporary staging table, then one
//! `INSERT .. SELECT .. ON CONFLICT` into the target.
//!
//! # How a call runs
//!
//! 1. The target is described and every field checked against its column (the `copy_in`
//!    plan); on a plain connection, the check that no transaction block is open there goes in
//!    the same round trip where the driver can pipeline.
//! 2. A scope opens: `BEGIN` on a client, `SAVEPOINT` inside a caller's transaction.
//! 3. In the same request, the staging table: `CREATE TEMP TABLE IF NOT EXISTS
//!    pgbulk_stage_r<hash> AS SELECT <the struct's columns>, NULL::int8 AS __pgbulk_ord FROM
//!    target WITH NO DATA`, made once per session and shape and reused (see
//!    [`Stage`](crate::sql::upsert::Stage); on sqlx, which reports no type modifiers, a table of
//!    the call's own, `ON COMMIT DROP`). It has exactly the struct's columns with the target's
//!    types (typmods and collations included) and no constraints: generated, identity and
//!    defaulted columns the struct does not carry are not in it, and are filled by the target
//!    when the rows are inserted. (`LIKE target` would also copy every other column and its
//!    `NOT NULL`.) The COPY's `Parse` goes in the same round trip too.
//! 4. The rows are sent with one binary `COPY`; each tuple gets its 0-based input position in
//!    `__pgbulk_ord`.
//! 5. One statement merges, sent right behind the COPY's end where the driver can pipeline it:
//!    `INSERT INTO target (cols) SELECT cols FROM stage [ORDER BY key]
//!    ON CONFLICT (key) DO UPDATE SET c = EXCLUDED.c, .. WHERE (target.c, ..) IS DISTINCT FROM
//!    (EXCLUDED.c, ..)`. While encoding, [`KeyScan`] looks at every key: only if one may repeat
//!    does a `DELETE` first drop the earlier occurrences from the stage (its row count is the
//!    duplicates), and only keys that did not arrive in ascending order are sorted (rows are
//!    locked in key order; `work_mem` is raised for that statement and restored). The
//!    `INSERT`'s row count is inserted + updated; the `WHERE` counts the updated rows in a
//!    transaction-local setting (see `Merge::insert`), which reads no system column (so
//!    partitioned tables work) and needs only the column privileges the statement itself needs.
//!    On a Citus table the shards run the `INSERT` and refuse a volatile `WHERE`; there the
//!    statement is wrapped to count its `RETURNING (xmax = 0)` rows instead.
//!    A key the server finds twice that the encoder could not see (`1.0` and `1.00`, a
//!    `NULLS NOT DISTINCT` index) undoes the attempt (a savepoint) and retries with the dedupe.
//!
//!    On PostgreSQL 15 and later, a counting upsert merges with `MERGE INTO target USING
//!    stage ON key = key WHEN MATCHED AND (changed) THEN UPDATE .. WHEN NOT MATCHED THEN
//!    INSERT ..` instead where that pays (see `Merge::merge`): it neither inserts each new row
//!    speculatively nor locks each identical row, and reads the target with one hash join
//!    (`work_mem` raised for it, as for a sort). When the input may hold
//!    [`MERGE_MIN_ROWS`](sql::MERGE_MIN_ROWS) or more, one catalog query sent with the
//!    describe (step 1) reads whether the target is eligible — a plain table without rules or
//!    row-level `BEFORE` triggers, with the unique index `ON CONFLICT` would infer, which
//!    `MERGE` itself does not check — and the size of its heap ([`MergeFacts`]); `MERGE` is
//!    used when that heap is at most twice the bytes staged (a larger target would be read
//!    whole for relatively few rows, where `ON CONFLICT`'s index probes win). `MERGE` is not
//!    safe against a concurrent insert of the same key (a unique violation rather than the
//!    conflict path) and locks rows in join order rather than key order: the attempt runs under
//!    the savepoint, and a failure (unique violation, deadlock, a feature or privilege only
//!    `MERGE` needs, ..) is undone and retried with `ON CONFLICT`, which then merges or fails
//!    with its own error. The `MERGE` counts the rows it inserts (a `WHEN NOT MATCHED`
//!    condition is evaluated once per row it inserts); the rows it updated are the rest of its
//!    row count.
//! 6. The scope closes, in the merge's request: `TRUNCATE` of a reused stage (or `DROP TABLE`
//!    of the call's own inside a transaction), then `COMMIT`, or `RELEASE SAVEPOINT`.
//!
//! A batch that says it holds fewer than [`MERGE_MIN_ROWS`](sql::MERGE_MIN_ROWS) rows skips
//! steps 3 and 4 where it can: its rows, encoded as for the stage, are bound to the step-5
//! statement as one array per column (see [`bound`]), and the scope's `BEGIN`, the merge and
//! the `COMMIT` go in one request — two round trips in all on tokio-postgres.
//!
//! On tokio-postgres that is four round trips (one more when a `MERGE` attempt is undone):
//! describe + check, `BEGIN` + `CREATE` + the COPY's `Parse`, the COPY's start, and its data +
//! end + merge + `COMMIT`.
//!
//! # Cleanup
//!
//! The staging table's rows only ever exist inside the scope of step 2, so they cannot outlive
//! the call: on any error the scope is rolled back (`ROLLBACK`, or `ROLLBACK TO SAVEPOINT` +
//! `RELEASE`), which undoes the COPY (and the table's creation, if this call made it); if the
//! future is dropped midway, a guard queues the same rollback on the connection without
//! waiting, as tokio-postgres' own `Transaction` does when dropped. Inside a caller's
//! transaction a failed call therefore leaves the transaction usable and unchanged by the
//! call. A reused staging table stays, empty, until the session ends.

mod bound;
pub(crate) mod key_scan;
pub(crate) mod options;

use crate::client::Driver;
use crate::client::Outcome;
use crate::error::{Error, Result};
use crate::ops;
use crate::ops::bound::{Input, Small};
use crate::ops::copy_in::CopyWriter;
use crate::ops::distributed;
use crate::ops::scope::{self, TxScope};
use crate::ops::{copy_out, Options};
use crate::plan::{self, Plan};
use crate::row::{CopyRow, FromCopyRow};
use crate::sql::citus as citus_sql;
use crate::sql::ident;
use crate::sql::upsert::{self as sql, Attempt, Merge, MergeFacts, Stage};
use futures_util::future::BoxFuture;
use key_scan::KeyScan;
use options::{UpsertCounts, UpsertOptions};

/// The context of an error in the merge.
const MERGE_FAILED: &str = "upsert_via_staging: the merge failed, nothing was written";

// The three operations return boxed `Send` futures (see `CopyWriter` for why).

/// `upsert_via_staging`: the rows merged, counted.
pub(crate) fn counts<'a, D, T, I>(
    driver: &'a mut D,
    options: &'a Options<'_>,
    upsert: &'a UpsertOptions,
    rows: I,
) -> BoxFuture<'a, Result<UpsertCounts>>
where
    D: Driver,
    T: CopyRow + Send + 'a,
    I: IntoIterator<Item = T> + Send + 'a,
    I::IntoIter: Send,
{
    Box::pin(async move {
        // What `MERGE` needs to know of the target, read with its description, when the batch
        // may be large enough for `MERGE` to pay: the catalog query costs about half a
        // millisecond of server time.
        let rows = rows.into_iter();
        let large = rows.size_hint().1.is_none_or(|n| n >= sql::MERGE_MIN_ROWS);
        let facts_sql = Merge::merge_keys::<T>(upsert)
            .filter(|_| large)
            .zip(ident::quote_table(options.table_for::<T>()).ok())
            .map(|(keys, table)| sql::merge_facts_sql(&table, &keys));
        let (target, facts) = plan_checked::<D, T>(driver, options, facts_sql.as_deref()).await?;
        let merge = merge(driver, &target, upsert).await?.with_facts(facts);
        let mut scan = KeyScan::new(Some(merge.key_at().collect()), target.types());
        // A small batch is bound as arrays if it can be (see `bound`); otherwise, or if that
        // attempt hands it back, staged — the same tuples, encoded once.
        let input = match encode_staged(&target, rows, sql::MERGE_MIN_ROWS, options, &mut scan)? {
            Small::Bound(encoded, arrays) => {
                let bound =
                    bound::counts(driver, options, &target, &merge, &scan, &encoded, arrays);
                if let Some(counts) = bound.await? {
                    return Ok(counts);
                }
                Input::Encoded(encoded)
            }
            Small::Rows(rows) => Input::Rows(rows),
        };
        // The first attempt's statements go right behind the COPY's end, where the driver can
        // pipeline them.
        // The first attempt is chosen once, by what was staged when it is sent: its outcomes
        // are read as that attempt's.
        let chosen = std::sync::OnceLock::new();
        let first = |stage: &Stage, scan: &KeyScan, bytes: u64, in_tx: bool| {
            let attempt = *chosen.get_or_init(|| merge.first_attempt(scan, bytes));
            let batch = merge.counts_batch(&stage.table, attempt, scan, bytes);
            stage.before_close(&batch.sql(), in_tx)
        };
        let (mut scope, stage, (staged, bytes), mut pipelined) =
            stage(driver, options, &target, input, &mut scan, Some(&first)).await?;
        // Each attempt either finishes the call or is undone and retried: with `ON CONFLICT`
        // alone after a failed `MERGE`, with the next dedupe when the server found a key twice
        // that the encoder could not see (see `KeyScan`).
        let mut attempt = match chosen.get() {
            Some(attempt) => *attempt,
            None => merge.first_attempt(&scan, bytes),
        };
        loop {
            let batch = merge.counts_batch(&stage.table, attempt, &scan, bytes);
            let outcomes = if let Some(ran) = pipelined.take() {
                ran.inspect(|_| scope.closed())
            } else {
                let before = stage.before_close(&batch.sql(), scope.in_tx());
                scope.try_close_with(&before).await
            };
            let failed = match outcomes {
                Ok(outcomes) => return sql::parse_counts(&outcomes, &batch, staged),
                Err(e) => e.context(MERGE_FAILED),
            };
            attempt = retry_or_fail(&mut scope, &merge, &scan, attempt, failed).await?;
        }
    })
}

/// `upsert_via_staging_returning`: the rows merged, one `R` per inserted or updated row.
pub(crate) fn returning<'a, D, T, I, R>(
    driver: &'a mut D,
    options: &'a Options<'_>,
    upsert: &'a UpsertOptions,
    input_order: bool,
    rows: I,
) -> BoxFuture<'a, Result<Vec<R>>>
where
    D: Driver,
    T: CopyRow + Send + 'a,
    I: IntoIterator<Item = T> + Send + 'a,
    I::IntoIter: Send,
    R: FromCopyRow + Send + 'a,
{
    Box::pin(async move {
        let (target, _) = plan_checked::<D, T>(driver, options, None).await?;
        let merge = merge(driver, &target, upsert).await?;
        let order_key = order_key(driver, &target, Some(&merge), input_order).await?;
        let mut scan = KeyScan::new(Some(merge.key_at().collect()), target.types());
        // As in `counts`: a small batch is bound as arrays if it can be; otherwise, or if that
        // attempt hands it back, staged — the same tuples, encoded once.
        let input = match encode_staged(&target, rows, sql::MERGE_MIN_ROWS, options, &mut scan)? {
            Small::Bound(encoded, arrays) => {
                let bound = bound::upsert_returning::<D, T, R>(
                    driver,
                    options,
                    &target,
                    &merge,
                    &scan,
                    input_order,
                    order_key.as_deref(),
                    &encoded,
                    arrays,
                );
                if let Some(out) = bound.await? {
                    return Ok(out);
                }
                Input::Encoded(encoded)
            }
            Small::Rows(rows) => Input::Rows(rows),
        };
        let list = returning_list::<D, T, R>(driver, &target, true, order_key.as_deref()).await?;
        let (mut scope, stage, (_, bytes), _) =
            stage(driver, options, &target, input, &mut scan, None).await?;
        // As in `counts`: retried with the next dedupe when the server finds a key twice.
        let mut attempt = Attempt::on_conflict(Merge::first_dedupe(&scan));
        loop {
            let (before, insert, after) = merge.returning_sql(
                &stage.table,
                &list,
                input_order,
                attempt.dedupe,
                &scan,
                bytes,
            );
            let insert = proven_order::<R>(insert, order_key.as_deref(), &stage.table);
            let ran = match scope.driver().execute(&before).await {
                Ok(()) => copy_out::collect::<D, R>(scope.driver(), &insert, options).await,
                Err(e) => Err(e.context(MERGE_FAILED)),
            };
            let failed = match ran {
                Ok(out) => return commit(scope, &stage, &after, out).await,
                Err(e) => e,
            };
            attempt = retry_or_fail(&mut scope, &merge, &scan, attempt, failed).await?;
        }
    })
}

/// `copy_in_returning`: the rows inserted through a staging table, one `R` per row.
pub(crate) fn insert_returning<'a, D, T, I, R>(
    driver: &'a mut D,
    options: &'a Options<'_>,
    input_order: bool,
    rows: I,
) -> BoxFuture<'a, Result<Vec<R>>>
where
    D: Driver,
    T: CopyRow + Send + 'a,
    I: IntoIterator<Item = T> + Send + 'a,
    I::IntoIter: Send,
    R: FromCopyRow + Send + 'a,
{
    Box::pin(async move {
        let (target, _) = plan_checked::<D, T>(driver, options, None).await?;
        let mut scan = KeyScan::new(None, target.types());
        // A small batch is bound as arrays if it can be (see `bound::returning`); otherwise, or
        // if that attempt hands it back, staged — the same tuples, encoded once.
        let input = match encode_staged(&target, rows, ops::bound::MAX_ROWS, options, &mut scan)? {
            Small::Bound(encoded, arrays) => {
                let bound = bound::returning::<D, T, R>(
                    driver,
                    options,
                    &target,
                    input_order,
                    &encoded,
                    arrays,
                );
                if let Some(out) = bound.await? {
                    return Ok(out);
                }
                Input::Encoded(encoded)
            }
            Small::Rows(rows) => Input::Rows(rows),
        };
        let order_key = order_key(driver, &target, None, input_order).await?;
        let list = returning_list::<D, T, R>(driver, &target, false, order_key.as_deref()).await?;
        let (mut scope, stage, _, _) =
            stage(driver, options, &target, input, &mut scan, None).await?;
        let sql = sql::insert_returning_sql::<T>(target.table(), &stage.table, &list, input_order);
        let sql = proven_order::<R>(sql, order_key.as_deref(), &stage.table);
        match copy_out::collect::<D, R>(scope.driver(), &sql, options).await {
            Ok(out) => commit(scope, &stage, "", out).await,
            Err(e) => {
                scope.rollback().await;
                Err(e)
            }
        }
    })
}

/// After the merge attempt `tried` failed with `failed`: undoes the attempt and returns the
/// next one ([`Merge::next_attempt`]: `ON CONFLICT` alone after a failed `MERGE`, a stronger
/// dedupe when the server found a key twice); otherwise rolls the scope back and returns the
/// (refined) error.
async fn retry_or_fail<D: Driver>(
    scope: &mut TxScope<'_, D>,
    merge: &Merge,
    scan: &KeyScan,
    tried: Attempt,
    failed: Error,
) -> Result<Attempt> {
    let failed = match merge.next_attempt(tried, scan, failed.code()) {
        Some(next) => match scope.driver().execute(sql::MERGE_RETRY_SQL).await {
            Ok(()) => return Ok(next),
            Err(e) => e.context(MERGE_FAILED),
        },
        _ => merge.refine_error(scan, failed),
    };
    scope.roll_back().await;
    Err(failed)
}

/// Resolves the conflict target and update set of `upsert` for `T` (looking up a named
/// constraint's columns).
async fn merge<D: Driver, T: CopyRow>(
    driver: &mut D,
    target: &Plan<T>,
    upsert: &UpsertOptions,
) -> Result<Merge> {
    let keys = match upsert.constraint() {
        Some(name) => Some(
            column_names(
                driver,
                &sql::constraint_columns_sql(target.table(), name),
                "cannot look up the conflict constraint",
            )
            .await?,
        ),
        None => None,
    };
    Merge::new(target, upsert, keys)
}

/// The `RETURNING` list for `R` on `target`, after a merge or (`merged` false) a plain
/// insert, with the `order_key` columns that prove the input order added to it
/// ([`order_key`]).
async fn returning_list<D: Driver, T: CopyRow, R: FromCopyRow>(
    driver: &mut D,
    target: &Plan<T>,
    merged: bool,
    order_key: Option<&[String]>,
) -> Result<String> {
    let table = target.table();
    let columns = column_names(
        driver,
        &sql::table_columns_sql(table),
        &format!("cannot list the columns of {table}"),
    )
    .await?;
    let citus = target.distribution().is_citus();
    let mut list = sql::returning_list::<R>(&columns, table, merged, citus)?;
    if let Some(key) = order_key {
        list.push_str(&citus_sql::key_returning(sql::TARGET_ALIAS, key));
    }
    Ok(list)
}

/// The unique key that proves `in_input_order()`: for an upsert (`merge`) its conflict key,
/// for `copy_in_returning` any unique key whose columns `T` copies; all `NOT NULL`. `None`
/// when the order was not asked for, or when there is no such key on a table of this server
/// (its one executor inserts and returns the rows in input order). On a Citus table without
/// one the call is refused, before anything is sent: no order could be proven there.
async fn order_key<D: Driver, T: CopyRow>(
    driver: &mut D,
    target: &Plan<T>,
    merge: Option<&Merge>,
    input_order: bool,
) -> Result<Option<Vec<String>>> {
    if !input_order {
        return Ok(None);
    }
    let table = target.table();
    let key = match merge {
        None => {
            distributed::order_key(driver, table, |cols| {
                cols.iter()
                    .all(|c| T::__PGBULK_COLUMNS.iter().any(|t| t.name == c))
            })
            .await?
        }
        Some(merge) => {
            distributed::order_key(driver, table, |cols| {
                cols.len() == merge.keys().len()
                    && cols.iter().all(|c| merge.keys().contains(&c.as_str()))
            })
            .await?
        }
    };
    if key.is_none() && target.distribution().is_citus() {
        let what = match merge {
            None => "a primary key or unique constraint",
            Some(_) => "the conflict key to be a primary key or unique constraint",
        };
        return Err(Error::usage(format!(
            "in_input_order() on {table}, a Citus table, cannot be proven: every shard returns \
             its own rows and the coordinator concatenates them, so pgbulk matches returned rows \
             to input rows by a unique key, and needs {what} whose columns are all NOT NULL and \
             copied by `{}` (on a distributed table it includes the distribution column); add \
             one, or call without in_input_order() and match the rows yourself",
            plan::short_type_name::<T>()
        )));
    }
    Ok(key)
}

/// `statement` (an `INSERT .. RETURNING`) wrapped to return its rows in input order by matching
/// them to the staged rows by `key` (see [`citus_sql::in_input_order`]); as it is without one.
fn proven_order<R: FromCopyRow>(statement: String, key: Option<&[String]>, stage: &str) -> String {
    match key {
        Some(key) => citus_sql::in_input_order(
            &statement,
            &R::__PGBULK_COLUMNS
                .iter()
                .map(|c| c.name)
                .collect::<Vec<_>>(),
            key,
            stage,
            sql::ORD,
        ),
        None => statement,
    }
}

/// The first column of every row of `sql`.
async fn column_names<D: Driver>(driver: &mut D, sql: &str, context: &str) -> Result<Vec<String>> {
    let rows = driver
        .query_text(sql)
        .await
        .map_err(|e| e.context(context))?;
    Ok(rows
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect())
}

/// The statements that end the first merge attempt, from the stage, what the encoder saw, the
/// bytes staged and whether the scope is a savepoint: run right behind the COPY's end.
type FirstAttempt<'f> = dyn Fn(&Stage, &KeyScan, u64, bool) -> String + Sync + 'f;

/// The plan for `T`'s target, and, on a plain connection, the check that no transaction block
/// is open there (see [`refuse_open_transaction`](crate::ops::scope::refuse_open_transaction)),
/// in the same round trip where the driver can pipeline them; with `facts` (the select list
/// of [`sql::merge_facts_sql`]), those too, read into [`MergeFacts`].
async fn plan_checked<D: Driver, T: CopyRow>(
    driver: &mut D,
    options: &Options<'_>,
    facts: Option<&str>,
) -> Result<(Plan<T>, Option<MergeFacts>)> {
    let table = options.table_for::<T>();
    let in_tx = driver.in_transaction();
    let also = match (in_tx, facts) {
        (true, None) => None,
        (true, Some(facts)) => Some(format!("SELECT {facts}")),
        (false, None) => Some(scope::SESSION_CHECK_SQL.to_owned()),
        (false, Some(facts)) => Some(format!("{}, {facts}", scope::SESSION_CHECK_SQL)),
    };
    let (target, rows) = plan::plan_copy_in_and::<D, T>(driver, table, also.as_deref()).await?;
    // The facts follow the session check's one column, if it was asked.
    let skip = usize::from(!in_tx);
    let facts = match (&rows, facts) {
        (Ok(rows), Some(_)) => rows.first().map(|row| {
            let at = |i: usize| row.get(skip + i).and_then(Option::as_deref);
            MergeFacts::from_text(at(0), at(1))
        }),
        _ => None,
    };
    if !in_tx {
        scope::check_session(rows, "upsert_via_staging", driver.begin_hint())?;
    }
    Ok((target, facts))
}

/// Opens the scope, creates the staging table for `T` shaped after `target` (or finds this
/// session's) and copies `rows` into it with their input positions, showing their keys to
/// `scan` — the scope's `BEGIN`, the `CREATE` and the COPY's start in one round trip where the
/// driver can pipeline them. With `first`, its statements and the scope's close are sent right
/// behind the COPY's end where the driver can pipeline them: then their outcomes are returned
/// too (the scope is still open; mark it closed if they ran). Returns the open scope, the
/// stage, the rows and bytes staged; on error the scope is rolled back.
async fn stage<'d, D, T, I>(
    driver: &'d mut D,
    options: &Options<'_>,
    target: &Plan<T>,
    rows: Input<I>,
    scan: &mut KeyScan,
    first: Option<&FirstAttempt<'_>>,
) -> Result<(
    TxScope<'d, D>,
    Stage,
    (u64, u64),
    Option<Result<Vec<Outcome>>>,
)>
where
    D: Driver,
    T: CopyRow,
    I: IntoIterator<Item = T>,
{
    let stage = Stage::new(target);
    let (mut scope, begin) = TxScope::begin(driver, stage.savepoint.clone());
    let in_tx = scope.in_tx();
    let close = scope.close_sql("");
    let before = format!("{begin}; {}", stage.create_sql::<T>(target.table()));
    let plan = stage.plan(target);
    let then = |scan: &KeyScan, bytes: u64| {
        first.map(|first| format!("{}; {close}", first(&stage, scan, bytes, in_tx)))
    };
    match copy_into_stage(scope.driver(), &before, &plan, options, rows, scan, then).await {
        Ok((staged, pipelined)) => Ok((scope, stage, staged, pipelined)),
        Err(e) => {
            scope.rollback().await;
            Err(e)
        }
    }
}

/// Starts the COPY into the staging table after `before` (the scope's `BEGIN` and the
/// `CREATE`), sends `rows`, each with its input position, showing each tuple's keys to `scan`,
/// and ends the COPY, with `then`'s statements behind it where the driver can pipeline them.
/// Returns the rows and bytes sent, and `then`'s outcomes if it ran.
async fn copy_into_stage<D, T, I>(
    driver: &mut D,
    before: &str,
    plan: &Plan<T>,
    options: &Options<'_>,
    rows: Input<I>,
    scan: &mut KeyScan,
    then: impl FnOnce(&KeyScan, u64) -> Option<String>,
) -> Result<((u64, u64), Option<Result<Vec<Outcome>>>)>
where
    D: Driver,
    T: CopyRow,
    I: IntoIterator<Item = T>,
{
    let mut writer = CopyWriter::start_after(driver, before, plan, 1, options)
        .await
        .map_err(|e| e.context("cannot create the staging table or start the COPY into it"))?;
    // Tuples encoded already were shown to `scan` then.
    if let Some(rows) = writer.take_encoded(rows) {
        for row in rows {
            let ord = writer.rows();
            let pushed = match writer.push_with(&row, staged(scan, ord)) {
                Ok(()) if writer.is_full() => writer.flush().await,
                other => other,
            };
            if let Err(e) = pushed {
                return Err(writer.fail(e).await);
            }
        }
    }
    let staged = writer.rows();
    if let Some(then) = then(scan, writer.bytes()) {
        let (finished, ran) = writer.finish_then(then).await;
        let (_, bytes) = finished?;
        Ok(((staged, bytes), ran))
    } else {
        let (_, bytes) = writer.finish().await?;
        Ok(((staged, bytes), None))
    }
}

/// A batch of fewer than `max_rows` rows encoded whole as it would be staged (each tuple with
/// its ordinal, its keys shown to `scan`), for a bound attempt whose fallback stages the same
/// tuples; see [`ops::bound::encode_small`].
fn encode_staged<T: CopyRow, I: IntoIterator<Item = T>>(
    target: &Plan<T>,
    rows: I,
    max_rows: usize,
    options: &Options<'_>,
    scan: &mut KeyScan,
) -> Result<Small<I::IntoIter>> {
    ops::bound::encode_small::<T, _>(target, rows, max_rows, 1, options, |b, at, ord| {
        staged(scan, ord)(b, at);
    })
}

/// What follows each staged tuple's fields: `scan` looks at its keys, then its ordinal `ord`
/// (input row) is written.
#[inline]
fn staged(scan: &mut KeyScan, ord: u64) -> impl FnOnce(&mut bytes::BytesMut, usize) + '_ {
    move |buf, start| {
        scan.observe(&buf[start..], ord);
        sql::put_ordinal(buf, ord);
    }
}

/// Runs `after` (may be empty) and closes the scope, handing back `out`, the rows read.
async fn commit<D: Driver, R>(
    scope: TxScope<'_, D>,
    stage: &Stage,
    after: &str,
    out: Vec<R>,
) -> Result<Vec<R>> {
    let before = stage.before_close(after, scope.in_tx());
    scope
        .close_with(&before, "cannot commit the staged write")
        .await?;
    Ok(out)
}
