//! The transaction pgbulk opens around a multi-statement write (upsert, quarantine): its own
//! `BEGIN .. COMMIT` on a plain connection, or a savepoint inside the caller's transaction.

use crate::client::{Driver, Outcome, TextRows};
use crate::error::{Error, Result};

/// An open scope on a driver. Every error path rolls it back; dropped while still open (the
/// call's future was dropped), it asks the driver to queue the rollback without waiting
/// ([`Driver::queue_rollback`]).
pub(crate) struct TxScope<'d, D: Driver> {
    driver: &'d mut D,
    savepoint: String,
    armed: bool,
}

impl<'d, D: Driver> TxScope<'d, D> {
    /// Opens the scope — `BEGIN` on a plain connection (after checking that no transaction
    /// block is open there: see [`refuse_open_transaction`]), `SAVEPOINT savepoint` inside a
    /// caller's transaction — and runs `then` in the same round trip. On failure the scope is
    /// rolled back and the error says `context`.
    pub(crate) async fn open(
        driver: &'d mut D,
        savepoint: String,
        what: &str,
        then: &str,
        context: &str,
    ) -> Result<TxScope<'d, D>> {
        let in_tx = driver.in_transaction();
        if !in_tx {
            refuse_open_transaction(driver, what).await?;
        }
        let begin = if in_tx {
            format!("SAVEPOINT {savepoint}")
        } else {
            "BEGIN".to_owned()
        };
        let sql = if then.is_empty() {
            begin
        } else {
            format!("{begin}; {then}")
        };
        // Armed before the first poll, which queues the statements: from then on a drop must
        // roll back.
        let scope = TxScope {
            driver,
            savepoint,
            armed: true,
        };
        if let Err(e) = scope.driver.execute(&sql).await {
            let e = e.context(context);
            scope.rollback().await;
            return Err(e);
        }
        Ok(scope)
    }

    /// The scope, armed, before anything is sent, and the statement that opens it (`BEGIN`, or
    /// `SAVEPOINT savepoint` inside a caller's transaction), which the caller sends first in
    /// its next request. On a plain connection the caller must have checked that no
    /// transaction block is open there ([`check_session`]).
    pub(crate) fn begin(driver: &'d mut D, savepoint: String) -> (TxScope<'d, D>, String) {
        let begin = if driver.in_transaction() {
            format!("SAVEPOINT {savepoint}")
        } else {
            "BEGIN".to_owned()
        };
        let scope = TxScope {
            driver,
            savepoint,
            armed: true,
        };
        (scope, begin)
    }

    /// The driver, to run the scope's statements on.
    pub(crate) fn driver(&mut self) -> &mut D {
        self.driver
    }

    /// Whether the scope is a savepoint inside a caller's transaction.
    pub(crate) fn in_tx(&self) -> bool {
        self.driver.in_transaction()
    }

    fn rollback_sql(&self) -> String {
        if self.in_tx() {
            format!(
                "ROLLBACK TO SAVEPOINT {0}; RELEASE SAVEPOINT {0}",
                self.savepoint
            )
        } else {
            "ROLLBACK".to_owned()
        }
    }

    /// Undoes the scope (best effort: the error being returned matters more).
    pub(crate) async fn rollback(mut self) {
        self.roll_back().await;
    }

    /// [`rollback`](TxScope::rollback) through a borrow: the scope is closed afterwards, and
    /// only dropping it is left.
    pub(crate) async fn roll_back(&mut self) {
        self.armed = false;
        let sql = self.rollback_sql();
        let _ = self.driver.execute(&sql).await;
    }

    /// Runs `before` (may be empty) and closes the scope — `COMMIT`, or `RELEASE SAVEPOINT` —
    /// in one round trip; returns what `before`'s statements returned. On failure the scope
    /// stays open (and armed): the caller retries or rolls back.
    pub(crate) async fn try_close_with(&mut self, before: &str) -> Result<Vec<Outcome>> {
        let sql = self.close_sql(before);
        let outcomes = self.driver.query_batch(&sql).await?;
        self.armed = false;
        Ok(outcomes)
    }

    /// `before` (may be empty) and the statement that closes the scope — `COMMIT`, or
    /// `RELEASE SAVEPOINT` — as [`try_close_with`](TxScope::try_close_with) sends them, for a
    /// caller that sends them itself (then [`closed`](TxScope::closed) once they ran).
    pub(crate) fn close_sql(&self, before: &str) -> String {
        let close = if self.in_tx() {
            format!("RELEASE SAVEPOINT {}", self.savepoint)
        } else {
            "COMMIT".to_owned()
        };
        if before.is_empty() {
            close
        } else {
            format!("{before}; {close}")
        }
    }

    /// The [`close_sql`](TxScope::close_sql) the caller sent ran: the scope is closed.
    pub(crate) fn closed(&mut self) {
        self.armed = false;
    }

    /// [`try_close_with`](TxScope::try_close_with); on failure the scope is rolled back and the
    /// error says `context`.
    pub(crate) async fn close_with(mut self, before: &str, context: &str) -> Result<Vec<Outcome>> {
        match self.try_close_with(before).await {
            Ok(outcomes) => Ok(outcomes),
            Err(e) => {
                let e = e.context(context);
                self.rollback().await;
                Err(e)
            }
        }
    }
}

impl<D: Driver> Drop for TxScope<'_, D> {
    fn drop(&mut self) {
        if self.armed {
            let sql = self.rollback_sql();
            self.driver.queue_rollback(&sql);
        }
    }
}

/// Fails with [`ErrorKind::Usage`](crate::ErrorKind::Usage) when a transaction block is already
/// open on `driver` — a raw `BEGIN` sent as SQL, which no client library tracks. `what` (say
/// `upsert_via_staging`) runs in a `BEGIN .. COMMIT` of its own on a plain connection, and
/// that `COMMIT` would silently commit the caller's open transaction.
///
/// Inside a transaction block `now()` is the block's start, earlier than the statement's own
/// start; outside one, every statement is its own transaction and the two are equal.
pub(crate) async fn refuse_open_transaction<D: Driver>(driver: &mut D, what: &str) -> Result<()> {
    let rows = driver.query_text(SESSION_CHECK_SQL).await;
    check_session(rows, what, driver.begin_hint())
}

/// The query [`check_session`] reads: whether no transaction block is open.
pub(crate) const SESSION_CHECK_SQL: &str = "SELECT now() = statement_timestamp()";

/// [`refuse_open_transaction`] from `rows`, the reply to [`SESSION_CHECK_SQL`] (sent by the
/// caller, e.g. pipelined with another request); `begin_hint` is the driver's
/// [`begin_hint`](Driver::begin_hint).
pub(crate) fn check_session(rows: Result<TextRows>, what: &str, begin_hint: &str) -> Result<()> {
    let rows = rows.map_err(|e| e.context(format!("{what}: cannot check the session")))?;
    match rows.first().and_then(|r| r.first()).map(|v| v.as_deref()) {
        Some(Some("t")) => Ok(()),
        Some(Some(_)) => Err(Error::usage(format!(
            "{what}: a transaction is already open on this client (a BEGIN sent as SQL); its \
             own COMMIT would commit yours. Use {begin_hint} and call `bulk()` on the Transaction, or \
             COMMIT/ROLLBACK first"
        ))),
        _ => Err(Error::protocol(format!(
            "{what}: the session check returned no row"
        ))),
    }
}
