//! `replace_all`: `TRUNCATE`, then one `COPY .. FREEZE` (without `FREEZE` into a partitioned
//! table, which PostgreSQL refuses it for), in the caller's transaction.

use crate::client::Driver;
use crate::error::{Error, Result};
use crate::ops::copy_in::write_rows;
use crate::ops::Options;
use crate::plan;
use crate::row::CopyRow;
use crate::sql::ident;
use std::borrow::Borrow;

/// Replaces the contents of `T`'s table with `rows`; returns the rows written and the bytes
/// sent.
pub(crate) async fn run<D, T, I>(
    driver: &mut D,
    options: &Options<'_>,
    rows: I,
) -> Result<(u64, u64)>
where
    D: Driver,
    T: CopyRow,
    I: IntoIterator,
    I::Item: Borrow<T>,
{
    if !driver.in_transaction() {
        return Err(Error::usage(
            "replace_all needs a transaction: call it on the client's transaction (`bulk()` on \
             it) and commit",
        ));
    }
    let plan = plan::plan_copy_in::<D, T>(driver, options.table_for::<T>()).await?;
    let table = plan.table();
    // One round trip: the TRUNCATE, and whether the table is partitioned.
    let partitioned = driver
        .query_text(&format!(
            "TRUNCATE {table}; SELECT relkind = 'p' FROM pg_class WHERE oid = {}::regclass",
            ident::literal(table)
        ))
        .await
        .map_err(|e| e.context("TRUNCATE failed"))?
        .first()
        .and_then(|row| row.first().cloned().flatten())
        .is_some_and(|v| v == "t");
    // PostgreSQL refuses FREEZE on a partitioned table (its rows go to the partitions through
    // tuple routing): there, a plain COPY.
    let freeze;
    let plan = if partitioned {
        &plan
    } else {
        freeze = plan.retarget(
            table.to_owned(),
            crate::sql::copy_in(table, T::__PGBULK_COLUMNS.iter().map(|c| c.name), true),
        );
        &freeze
    };
    write_rows(driver, plan, options, rows).await
}
