//! What pgbulk checks about the connection's session before it opens a transaction of its own.

use crate::error::{Error, Result};
use tokio_postgres::{Client, SimpleQueryMessage};

/// Fails with [`ErrorKind::Usage`](crate::ErrorKind::Usage) when a transaction block is already
/// open on `client` — a raw `BEGIN` sent with `batch_execute`, which tokio-postgres does not
/// track. `what` (say `upsert_via_staging`) runs in a `BEGIN .. COMMIT` of its own on a plain
/// client, and that `COMMIT` would silently commit the caller's open transaction.
///
/// Inside a transaction block `now()` is the block's start, earlier than the statement's own
/// start; outside one, every statement is its own transaction and the two are equal.
pub(crate) async fn refuse_open_transaction(client: &Client, what: &str) -> Result<()> {
    let messages = client
        .simple_query("SELECT now() = statement_timestamp()")
        .await
        .map_err(|e| Error::pg(&format!("{what}: cannot check the session"), e))?;
    let outside = messages.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => row.get(0).map(|v| v == "t"),
        _ => None,
    });
    match outside {
        Some(true) => Ok(()),
        Some(false) => Err(Error::usage(format!(
            "{what}: a transaction is already open on this client (a BEGIN sent as SQL); its \
             own COMMIT would commit yours. Use `client.transaction()` and call `bulk()` on the \
             Transaction, or COMMIT/ROLLBACK first"
        ))),
        None => Err(Error::protocol(format!(
            "{what}: the session check returned no row"
        ))),
    }
}
