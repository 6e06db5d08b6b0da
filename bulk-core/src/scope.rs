//! The transaction pgbulk opens around a multi-statement write (upsert, quarantine): its own
//! `BEGIN .. COMMIT` on a plain client, or a savepoint inside the caller's transaction.

use crate::error::{Error, Result};
use tokio_postgres::{Client, SimpleQueryMessage};

/// An open scope. Every error path rolls it back; dropped while still open (the call's future
/// was dropped), it queues the rollback on the connection without waiting, as tokio-postgres'
/// own `Transaction` does when dropped unfinished.
pub(crate) struct TxScope<'c> {
    client: &'c Client,
    in_tx: bool,
    savepoint: String,
    armed: bool,
}

impl<'c> TxScope<'c> {
    /// Opens the scope — `BEGIN` on a plain client (after checking that no transaction block is
    /// open there: see [`refuse_open_transaction`](crate::session::refuse_open_transaction)),
    /// `SAVEPOINT savepoint` inside a caller's transaction — and runs `then` in the same round
    /// trip. On failure the scope is rolled back and the error says `context`.
    pub(crate) async fn open(
        client: &'c Client,
        in_tx: bool,
        savepoint: String,
        what: &str,
        then: &str,
        context: &str,
    ) -> Result<TxScope<'c>> {
        if !in_tx {
            crate::session::refuse_open_transaction(client, what).await?;
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
            client,
            in_tx,
            savepoint,
            armed: true,
        };
        if let Err(e) = client.batch_execute(&sql).await {
            let e = Error::pg(context, e);
            scope.rollback().await;
            return Err(e);
        }
        Ok(scope)
    }

    /// Whether the scope is a savepoint inside a caller's transaction.
    pub(crate) fn in_tx(&self) -> bool {
        self.in_tx
    }

    /// Undoes the scope (best effort: the error being returned matters more).
    pub(crate) async fn rollback(mut self) {
        self.armed = false;
        let sql = if self.in_tx {
            format!(
                "ROLLBACK TO SAVEPOINT {0}; RELEASE SAVEPOINT {0}",
                self.savepoint
            )
        } else {
            "ROLLBACK".to_owned()
        };
        let _ = self.client.batch_execute(&sql).await;
    }

    /// Runs `before` (may be empty) and closes the scope — `COMMIT`, or `RELEASE SAVEPOINT` —
    /// in one round trip; returns what `before` returned. On failure the scope stays open (and
    /// armed): the caller retries or rolls back.
    pub(crate) async fn try_close_with(
        &mut self,
        before: &str,
    ) -> std::result::Result<Vec<SimpleQueryMessage>, tokio_postgres::Error> {
        let close = if self.in_tx {
            format!("RELEASE SAVEPOINT {}", self.savepoint)
        } else {
            "COMMIT".to_owned()
        };
        let sql = if before.is_empty() {
            close
        } else {
            format!("{before}; {close}")
        };
        let messages = self.client.simple_query(&sql).await?;
        self.armed = false;
        Ok(messages)
    }

    /// [`try_close_with`](TxScope::try_close_with); on failure the scope is rolled back and the
    /// error says `context`.
    pub(crate) async fn close_with(
        mut self,
        before: &str,
        context: &str,
    ) -> Result<Vec<SimpleQueryMessage>> {
        match self.try_close_with(before).await {
            Ok(messages) => Ok(messages),
            Err(e) => {
                let e = Error::pg(context, e);
                self.rollback().await;
                Err(e)
            }
        }
    }
}

impl Drop for TxScope<'_> {
    fn drop(&mut self) {
        if self.armed {
            // The same (hidden, but public) call tokio-postgres' `Transaction` makes when it is
            // dropped unfinished: it queues the rollback without waiting.
            self.client.__private_api_rollback(if self.in_tx {
                Some(self.savepoint.as_str())
            } else {
                None
            });
        }
    }
}
