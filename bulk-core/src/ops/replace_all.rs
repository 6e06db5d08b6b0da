//! `replace_all`: `TRUNCATE`, then one `COPY .. FREEZE`, in the caller's transaction.

use crate::client::Driver;
use crate::error::{Error, Result};
use crate::ops::copy_in::write_rows;
use crate::ops::Options;
use crate::plan;
use crate::row::CopyRow;
use std::borrow::Borrow;

/// Replaces the contents of `T`'s table with `rows`; returns the rows written.
pub(crate) async fn run<D, T, I>(driver: &mut D, options: &Options<'_>, rows: I) -> Result<u64>
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
    let freeze = plan.retarget(
        plan.table().to_owned(),
        crate::sql::copy_in(plan.table(), T::COLUMNS.iter().map(|c| c.name), true),
    );
    driver
        .execute(&format!("TRUNCATE {}", plan.table()))
        .await
        .map_err(|e| e.context("TRUNCATE failed"))?;
    let (written, _) = write_rows(driver, &freeze, options, rows).await?;
    Ok(written)
}
