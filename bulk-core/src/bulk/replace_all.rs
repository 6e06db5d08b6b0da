//! [`Bulk::replace_all`]; what it runs is `ops::replace_all`.

use crate::bulk::Bulk;
use crate::error::Result;
use crate::ops::replace_all;
use crate::row::CopyRow;
use crate::trace::{self, Op, OpKind};
use std::borrow::Borrow;
use std::future::Future;

impl<'c> Bulk<'c> {
    /// Replaces the whole contents of `T`'s table (or the [`table`](Bulk::table) override) with
    /// `rows`: `TRUNCATE`, then one `COPY .. FROM STDIN (FORMAT binary, FREEZE)`.
    ///
    /// Must be called on a transaction (`client.transaction().await?.bulk()`): the old rows
    /// disappear and the new ones appear when it commits, and readers see one or the other.
    /// `FREEZE` writes the rows already frozen (no later hint-bit or anti-wraparound rewrite),
    /// which PostgreSQL allows only because the table was truncated in the same transaction.
    /// PostgreSQL refuses `FREEZE` on a partitioned table, so there the `COPY` goes without it
    /// (the rows are routed to the partitions as in any `copy_in`). `TRUNCATE` takes an
    /// `ACCESS EXCLUSIVE` lock until commit.
    ///
    /// Returns the rows written. On a plain client (not a transaction) it fails with
    /// [`ErrorKind::Usage`](crate::ErrorKind) and sends nothing.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::BulkExt;
    ///
    /// #[derive(CopyRow)]
    /// #[copy(table = "prices")]
    /// struct Price { sku: String, cents: i64 }
    ///
    /// # async fn f(client: &mut tokio_postgres::Client, prices: Vec<Price>) -> pgbulk::Result<()> {
    /// let tx = client.transaction().await?;
    /// let written = tx.bulk().replace_all::<Price, _>(&prices).await?;
    /// tx.commit().await?; // the old prices give way to the new ones here, at once
    /// # Ok(()) }
    /// ```
    pub fn replace_all<T, I>(&self, rows: I) -> impl Future<Output = Result<u64>> + use<'c, T, I>
    where
        T: CopyRow,
        I: IntoIterator,
        I::Item: Borrow<T>,
    {
        let Bulk {
            mut driver,
            options,
        } = self.clone();
        // Traced as the COPY it is (the `pgbulk.copy_in` span, rows and bytes).
        let op = Op::start(OpKind::CopyIn, self.table_for::<T>());
        trace::traced(op, async move {
            replace_all::run(&mut driver, &options, rows).await
        })
    }
}
