//! The async builder of quarantine mode, [`Quarantine`]. What it runs is `ops::quarantine`.

use crate::bulk::Bulk;
use crate::error::Result;
use crate::ops::quarantine::{self, QuarantineOutcome};
use crate::plan;
use crate::row::CopyRow;
use std::future::Future;

impl<'c> Bulk<'c> {
    /// Quarantine mode for the next `copy_in`: load every good row and return the bad ones with
    /// their index and reason instead of failing the whole load. See [`Quarantine`].
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::BulkExt;
    ///
    /// #[derive(CopyRow)]
    /// #[copy(table = "users")]
    /// struct User { id: i64, email: String }
    ///
    /// # async fn f(client: &tokio_postgres::Client, users: Vec<User>) -> pgbulk::Result<()> {
    /// let outcome = client.bulk().quarantine().copy_in(&users).await?;
    /// println!("{} written, {} set aside", outcome.written, outcome.rejected.len());
    /// # Ok(()) }
    /// ```
    pub fn quarantine(&self) -> Quarantine<'c> {
        Quarantine {
            bulk: self.clone(),
            max_rejected: None,
        }
    }
}

/// A `copy_in` that sets bad rows aside instead of failing; get one with
/// [`Bulk::quarantine`].
///
/// ```no_run
/// # async fn demo(client: &tokio_postgres::Client) -> bulk_core::Result<()> {
/// # use bulk_core::BulkExt;
/// # #[derive(bulk_derive::CopyRow)]
/// # #[copy(crate = "bulk_core", table = "users")]
/// # struct User { id: i64 }
/// let users: Vec<User> = Vec::new();
/// let outcome = client.bulk().quarantine().max_rejected(100).copy_in(&users).await?;
/// for bad in &outcome.rejected {
///     eprintln!("row {} was not loaded: {}", bad.index, bad.error);
/// }
/// # Ok(())
/// # }
/// ```
///
/// How it works, what it costs and which errors count as a bad row: see the crate docs'
/// "Quarantine" section. In short: with no bad row it is one COPY in a transaction; each bad
/// row costs about one more COPY of part of the rows.
#[must_use = "a Quarantine does nothing until you call copy_in on it"]
#[derive(Debug, Clone)]
pub struct Quarantine<'c> {
    bulk: Bulk<'c>,
    max_rejected: Option<usize>,
}

impl<'c> Quarantine<'c> {
    /// Gives up (writing nothing, returning an [`ErrorKind::TooManyRejected`](crate::ErrorKind::TooManyRejected) error) once more
    /// than `n` rows have been rejected. Without a limit, a load where most rows are bad costs
    /// about two COPYs per bad row.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::{BulkExt, ErrorKind};
    ///
    /// #[derive(CopyRow)]
    /// #[copy(table = "users")]
    /// struct User { id: i64, email: String }
    ///
    /// # async fn f(client: &tokio_postgres::Client, users: Vec<User>) -> pgbulk::Result<()> {
    /// match client.bulk().quarantine().max_rejected(10).copy_in(&users).await {
    ///     Ok(outcome) => println!("{} written", outcome.written),
    ///     // More than 10 bad rows: nothing was written.
    ///     Err(e) if e.kind() == ErrorKind::TooManyRejected => eprintln!("input looks broken: {e}"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn max_rejected(mut self, n: usize) -> Self {
        self.max_rejected = Some(n);
        self
    }

    /// Writes the good rows of `rows` (all of them committed together) and returns them counted,
    /// with the rejected ones' indexes and errors.
    ///
    /// `rows` is iterated once when all rows are good, and again for each retry, so it must
    /// yield the same rows every time it is cloned and iterated (`&Vec<T>` and `&[T]` do).
    ///
    /// On an error that is not about a row (the connection is lost, a statement timeout, the
    /// table does not exist, too many rejected rows) nothing is written and that error is
    /// returned. If the future is dropped, the transaction (or savepoint) is rolled back.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::BulkExt;
    ///
    /// #[derive(CopyRow)]
    /// #[copy(table = "users")]
    /// struct User { id: i64, email: String }
    ///
    /// # async fn f(client: &tokio_postgres::Client, users: Vec<User>) -> pgbulk::Result<()> {
    /// let outcome = client.bulk().quarantine().copy_in(&users).await?;
    /// for bad in &outcome.rejected {
    ///     // `index` is the position in `users`; `error` says why (and where the server said, the column).
    ///     eprintln!("{} not loaded: {}", users[bad.index].email, bad.error);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn copy_in<T, I>(
        &self,
        rows: I,
    ) -> impl Future<Output = Result<QuarantineOutcome>> + use<'c, T, I>
    where
        T: CopyRow + Send,
        I: IntoIterator<Item = T> + Clone + Send + Sync,
        I::IntoIter: Send,
    {
        let Bulk {
            mut driver,
            options,
        } = self.bulk.clone();
        let max_rejected = self.max_rejected;
        async move {
            let plan = plan::plan_copy_in::<_, T>(&mut driver, options.table_for::<T>()).await?;
            quarantine::run(&mut driver, &plan, &options, rows, max_rejected).await
        }
    }
}
