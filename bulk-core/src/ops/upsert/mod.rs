//! `upsert_via_staging`: binary COPY into a temporary staging table, then one
//! `INSERT .. SELECT .. ON CONFLICT` into the target.
//!
//! # How a call runs
//!
//! 1. The target is described and every field checked against its column (the `copy_in` plan).
//! 2. A scope opens: `BEGIN` on a client, `SAVEPOINT` inside a caller's transaction.
//! 3. The staging table is created in that scope: `CREATE TEMP TABLE pgbulk_stage_<pid>_<n>
//!    ON COMMIT DROP AS SELECT <the struct's columns>, NULL::int8 AS __pgbulk_ord FROM target
//!    WITH NO DATA`. It has exactly the struct's columns with the target's types (typmods and
//!    collations included) and no constraints: generated, identity and defaulted columns the
//!    struct does not carry are not in it, and are filled by the target when the rows are
//!    inserted. (`LIKE target` would also copy every other column and its `NOT NULL`.)
//! 4. The rows are sent with one binary `COPY`; each tuple gets its 0-based input position in
//!    `__pgbulk_ord`.
//! 5. One statement merges: `INSERT INTO target (cols) SELECT DISTINCT ON (key) cols FROM stage
//!    ORDER BY key, __pgbulk_ord DESC ON CONFLICT (key) DO UPDATE SET c = EXCLUDED.c, ..
//!    WHERE (target.c, ..) IS DISTINCT FROM (EXCLUDED.c, ..)`, counting inserted vs updated rows
//!    with `RETURNING (xmax = 0)`.
//! 6. The scope closes: `COMMIT`, or `DROP TABLE` + `RELEASE SAVEPOINT` inside a transaction.
//!
//! # Cleanup
//!
//! The staging table only ever exists inside the scope of step 2, so it cannot outlive the call:
//! on any error the scope is rolled back (`ROLLBACK`, or `ROLLBACK TO SAVEPOINT` + `RELEASE`),
//! which undoes the table's creation; if the future is dropped midway, a guard queues the same
//! rollback on the connection without waiting, as tokio-postgres' own `Transaction` does when
//! dropped. Inside a caller's transaction a failed call therefore leaves the transaction usable
//! and unchanged by the call.

pub(crate) mod options;

use crate::client::Driver;
use crate::error::Result;
use crate::ops::copy_in::CopyWriter;
use crate::ops::scope::TxScope;
use crate::ops::{copy_out, Options};
use crate::plan::{self, Plan};
use crate::row::{CopyRow, FromCopyRow};
use crate::sql::upsert::{self as sql, Merge, Stage};
use futures_util::future::BoxFuture;
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
        let target = plan::plan_copy_in::<D, T>(driver, options.table_for::<T>()).await?;
        let merge = merge(driver, &target, upsert).await?;
        let (scope, stage, staged) = stage(driver, options, &target, rows).await?;
        let before = stage.before_close(&merge.counts_sql(&stage.table), scope.in_tx());
        let rows = scope.close_with(&before, MERGE_FAILED).await?;
        sql::parse_counts(&rows, staged)
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
        let target = plan::plan_copy_in::<D, T>(driver, options.table_for::<T>()).await?;
        let merge = merge(driver, &target, upsert).await?;
        let list = returning_list::<D, R>(driver, target.table()).await?;
        let (scope, stage, _) = stage(driver, options, &target, rows).await?;
        let sql = merge.returning_sql(&stage.table, &list, input_order);
        read_then_commit(scope, &stage, options, &sql).await
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
        let target = plan::plan_copy_in::<D, T>(driver, options.table_for::<T>()).await?;
        let list = returning_list::<D, R>(driver, target.table()).await?;
        let (scope, stage, _) = stage(driver, options, &target, rows).await?;
        let sql = sql::insert_returning_sql::<T>(target.table(), &stage.table, &list, input_order);
        read_then_commit(scope, &stage, options, &sql).await
    })
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

/// The `RETURNING` list for `R` on the (quoted) `target`.
async fn returning_list<D: Driver, R: FromCopyRow>(driver: &mut D, target: &str) -> Result<String> {
    let columns = column_names(
        driver,
        &sql::table_columns_sql(target),
        &format!("cannot list the columns of {target}"),
    )
    .await?;
    sql::returning_list::<R>(&columns, target)
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

/// Opens the scope, creates the staging table for `T` shaped after `target`, and copies
/// `rows` into it with their input positions. Returns the open scope, the stage and the
/// number of rows staged; on error the scope is rolled back.
async fn stage<'d, D, T, I>(
    driver: &'d mut D,
    options: &Options<'_>,
    target: &Plan<T>,
    rows: I,
) -> Result<(TxScope<'d, D>, Stage, u64)>
where
    D: Driver,
    T: CopyRow,
    I: IntoIterator<Item = T>,
{
    let stage = Stage::new();
    let mut scope = TxScope::open(
        driver,
        stage.savepoint.clone(),
        "upsert_via_staging",
        &stage.create_sql::<T>(target.table()),
        "cannot create the staging table",
    )
    .await?;
    let plan = stage.plan(target);
    match copy_into_stage(scope.driver(), &plan, options, rows).await {
        Ok(staged) => Ok((scope, stage, staged)),
        Err(e) => {
            scope.rollback().await;
            Err(e)
        }
    }
}

/// Sends `rows` into the staging table, each with its input position; returns the row count.
async fn copy_into_stage<D, T, I>(
    driver: &mut D,
    plan: &Plan<T>,
    options: &Options<'_>,
    rows: I,
) -> Result<u64>
where
    D: Driver,
    T: CopyRow,
    I: IntoIterator<Item = T>,
{
    let mut writer = CopyWriter::start(driver, plan, 1, options)
        .await
        .map_err(|e| e.context("COPY into the staging table failed"))?;
    for row in rows {
        let ord = writer.rows();
        let pushed = match writer.push_with(&row, |buf| sql::put_ordinal(buf, ord)) {
            Ok(()) if writer.is_full() => writer.flush().await,
            other => other,
        };
        if let Err(e) = pushed {
            return Err(writer.fail(e).await);
        }
    }
    let staged = writer.rows();
    writer.finish().await?;
    Ok(staged)
}

/// Reads the rows of `sql` (a `RETURNING` statement) through `COPY (..) TO STDOUT`, then
/// closes the scope.
async fn read_then_commit<D: Driver, R: FromCopyRow>(
    mut scope: TxScope<'_, D>,
    stage: &Stage,
    options: &Options<'_>,
    sql: &str,
) -> Result<Vec<R>> {
    match copy_out::collect::<D, R>(scope.driver(), sql, options).await {
        Ok(out) => {
            let before = stage.before_close("", scope.in_tx());
            scope
                .close_with(&before, "cannot commit the staged write")
                .await?;
            Ok(out)
        }
        Err(e) => {
            scope.rollback().await;
            Err(e)
        }
    }
}
