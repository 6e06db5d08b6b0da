//! [`PreparedCopyIn`]: a plan's COPY statement prepared on one connection, owned (no borrow of
//! the client), checked against the connection it is used on.

use super::Bulk;
use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::row::CopyRow;
use std::borrow::Borrow;
use std::fmt;
use std::future::Future;
use std::sync::Mutex;
use tokio_postgres::{Client, Statement};

/// Who the server says this session is: its backend's process id, the backend's start time and
/// the postmaster's (epoch seconds, independent of `TimeZone`/`DateStyle`). Two live sessions
/// never share it; a later session reusing the process id differs in its start time.
const BACKEND_SQL: &str = "\
SELECT pg_backend_pid()::text || '/' ||
       coalesce((SELECT extract(epoch FROM backend_start)::text
                 FROM pg_stat_activity WHERE pid = pg_backend_pid()), '') || '/' ||
       extract(epoch FROM pg_postmaster_start_time())::text";

/// A plan's COPY statement prepared on one connection, from [`Bulk::prepare_copy_in`], for
/// many small batches into the same table: each [`Bulk::copy_in_prepared`] is a COPY that takes
/// one round trip fewer than a COPY through [`copy_in_with_plan`](Bulk::copy_in_with_plan).
/// (`copy_in_with_plan` sends most small batches as one `INSERT` with the rows bound as
/// arrays, one round trip in all; a prepared COPY always copies, for a table where that
/// matters, such as one with rules an `INSERT` would apply.)
///
/// It owns its statement and plan and borrows nothing, so it can be stored beside the client
/// (in an application's state, a struct with the client) and used on that client **or any
/// `Transaction` of it**. A prepared statement exists only on the connection that prepared
/// it, so every use is checked: used through another connection it is refused with an
/// [`ErrorKind::Usage`](crate::ErrorKind::Usage) error before anything is sent, never run as
/// another statement.
///
/// How the check works, and what it costs: tokio-postgres gives a `Client` no identity pgbulk
/// can read, so the statement keeps the server's identity of its session (backend process id
/// and start times, read in the same round trip that prepares it), and remembers the address
/// of the last `Client` it was confirmed on. A use through that same `Client` (directly or
/// through a `Transaction` of it) costs nothing extra; a use through a `Client` at another
/// address (another connection, or the same client after it was moved) asks the server who it
/// is first (one round trip) and refuses a different session. One case is not seen: a *new*
/// connection's `Client` put at the very address of the confirmed one (`*client =
/// reconnect().await`) — its COPY then fails at its start, as a statement the new session does
/// not have, and the error says that connection is lost
/// ([`Error::is_connection_lost`](crate::Error::is_connection_lost)); it never runs another
/// statement (tokio-postgres names statements uniquely within the process). Prepare again
/// after reconnecting.
///
/// Dropping it closes the statement on its connection. Through a pooler in transaction mode,
/// where consecutive calls may reach different server sessions, use
/// [`copy_in_with_plan`](Bulk::copy_in_with_plan) instead (a use on another session is
/// refused).
///
/// ```no_run
/// # extern crate bulk_core as pgbulk;
/// # use bulk_derive::CopyRow;
/// use pgbulk::{BulkExt, PreparedCopyIn};
///
/// #[derive(CopyRow)]
/// struct Event { id: i64, kind: String }
///
/// struct Sink {
///     client: tokio_postgres::Client,
///     events: PreparedCopyIn<Event>, // kept beside the client
/// }
///
/// # async fn f(mut sink: Sink, batches: Vec<Vec<Event>>) -> pgbulk::Result<()> {
/// for batch in &batches {
///     sink.client.bulk().copy_in_prepared(&sink.events, batch).await?;
/// }
/// // The same statement inside a transaction of the same client:
/// let tx = sink.client.transaction().await?;
/// tx.bulk().copy_in_prepared(&sink.events, &batches[0]).await?;
/// tx.commit().await?;
/// # Ok(()) }
/// ```
pub struct PreparedCopyIn<T: ?Sized> {
    plan: Plan<T>,
    statement: Statement,
    /// The server's identity of the session that prepared `statement` ([`BACKEND_SQL`]).
    backend: String,
    /// The address of the last `Client` confirmed to be that session.
    confirmed: Mutex<Option<usize>>,
}

impl<T: ?Sized> PreparedCopyIn<T> {
    /// The plan the statement was prepared from.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// # use pgbulk::BulkExt;
    /// # #[derive(CopyRow)] struct Event { id: i64 }
    /// # async fn f(client: &tokio_postgres::Client) -> pgbulk::Result<()> {
    /// let plan = client.bulk().plan::<Event>().await?;
    /// let prepared = client.bulk().prepare_copy_in(&plan).await?;
    /// assert_eq!(prepared.plan().copy_statement(), plan.copy_statement());
    /// # Ok(()) }
    /// ```
    pub fn plan(&self) -> &Plan<T> {
        &self.plan
    }

    fn confirmed(&self) -> Option<usize> {
        *self
            .confirmed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn confirm(&self, address: Option<usize>) {
        *self
            .confirmed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = address;
    }

    /// Checks that `client` is the session the statement was prepared on.
    async fn check(&self, client: &Client) -> Result<()> {
        let address = std::ptr::from_ref(client) as usize;
        if self.confirmed() == Some(address) {
            return Ok(());
        }
        let backend = backend(client).await?;
        if backend != self.backend {
            return Err(Error::usage(format!(
                "this PreparedCopyIn was prepared on another connection (server session {}, \
                 this one is {backend}); a prepared statement exists only on its own \
                 connection: prepare it on this one, or use copy_in_with_plan",
                self.backend
            )));
        }
        self.confirm(Some(address));
        Ok(())
    }
}

/// The server's identity of `client`'s session.
async fn backend(client: &Client) -> Result<String> {
    let rows = client
        .simple_query(BACKEND_SQL)
        .await
        .map_err(|e| Error::pg("cannot read the server session's identity", e))?;
    crate::client::tokio::outcomes(rows)
        .into_iter()
        .flat_map(|o| o.rows)
        .next()
        .and_then(|row| row.into_iter().next().flatten())
        .ok_or_else(|| Error::protocol("no answer to the server session's identity query"))
}

impl<'c> Bulk<'c> {
    /// Prepares `plan`'s COPY statement on this connection, for many batches that must be
    /// COPYs: each [`copy_in_prepared`](Bulk::copy_in_prepared) then takes one round trip
    /// fewer than a COPY through [`copy_in_with_plan`](Bulk::copy_in_with_plan)
    /// (tokio-postgres prepares a COPY given as text on every call, then runs it). For small
    /// batches `copy_in_with_plan` is usually faster still: it sends them as one `INSERT` of
    /// bound arrays where that writes what the COPY would.
    ///
    /// The result owns the statement (see [`PreparedCopyIn`]): keep it beside the client and
    /// use it on this client or a `Transaction` of it.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::BulkExt;
    ///
    /// #[derive(CopyRow)]
    /// struct Event { id: i64, kind: String }
    ///
    /// # async fn f(client: &tokio_postgres::Client, batches: Vec<Vec<Event>>) -> pgbulk::Result<()> {
    /// let plan = client.bulk().plan::<Event>().await?;
    /// let events = client.bulk().prepare_copy_in(&plan).await?;
    /// for batch in &batches {
    ///     client.bulk().copy_in_prepared(&events, batch).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn prepare_copy_in<T: CopyRow + ?Sized>(
        &self,
        plan: &Plan<T>,
    ) -> impl Future<Output = Result<PreparedCopyIn<T>>> + Send + use<'c, T> {
        let client = self.client();
        // A prepared COPY copies every batch (see `Plan::inserts`).
        let plan = plan.clone().copying();
        async move {
            // Both in one round trip: tokio-postgres pipelines requests polled together.
            let (statement, backend) =
                futures_util::future::join(client.prepare(plan.copy_statement()), backend(client))
                    .await;
            let statement =
                statement.map_err(|e| Error::pg("could not prepare the COPY statement", e))?;
            Ok(PreparedCopyIn {
                plan,
                statement,
                backend: backend?,
                confirmed: Mutex::new(Some(std::ptr::from_ref(client) as usize)),
            })
        }
    }

    /// [`copy_in_with_plan`](Bulk::copy_in_with_plan) through a statement prepared earlier
    /// with [`prepare_copy_in`](Bulk::prepare_copy_in) on this connection, always as a COPY:
    /// the same checks, errors and all-or-nothing behaviour. `rows` may yield `T` or
    /// `&T`. This handle's [`flush_bytes`](Bulk::flush_bytes) and
    /// [`on_progress`](Bulk::on_progress) apply; the table is the plan's.
    ///
    /// Used through another connection, it is refused with an
    /// [`ErrorKind::Usage`](crate::ErrorKind::Usage) error and nothing is sent (see
    /// [`PreparedCopyIn`] for how that is checked).
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// # use pgbulk::BulkExt;
    /// # #[derive(CopyRow)] struct Event { id: i64 }
    /// # async fn f(mut client: tokio_postgres::Client, events: Vec<Event>) -> pgbulk::Result<()> {
    /// let plan = client.bulk().plan::<Event>().await?;
    /// let prepared = client.bulk().prepare_copy_in(&plan).await?;
    /// client.bulk().copy_in_prepared(&prepared, &events[..10]).await?;
    /// let tx = client.transaction().await?;
    /// tx.bulk().copy_in_prepared(&prepared, &events[10..]).await?;
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    pub fn copy_in_prepared<'p, T, I>(
        &self,
        prepared: &'p PreparedCopyIn<T>,
        rows: I,
    ) -> impl Future<Output = Result<u64>> + use<'c, 'p, T, I>
    where
        T: CopyRow + ?Sized,
        I: IntoIterator,
        I::Item: Borrow<T>,
    {
        let bulk = self.clone();
        async move {
            prepared.check(bulk.client()).await?;
            let result = bulk
                .copy_in_traced(&prepared.plan, Some(&prepared.statement), rows)
                .await;
            if result.as_ref().is_err_and(Error::is_connection_lost) {
                prepared.confirm(None);
            }
            result
        }
    }
}

impl<T: ?Sized> fmt::Debug for PreparedCopyIn<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedCopyIn")
            .field("plan", &self.plan)
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}
