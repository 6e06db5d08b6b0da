//! Starting `COPY .. FROM STDIN` so that a COPY the server refuses at its start does not leave
//! the connection out of step.
//!
//! tokio-postgres starts a COPY with `Bind`/`Execute`/`Sync`, and ends it (or, when the start
//! failed, abandons it) with `CopyDone` or `CopyFail` followed by a second `Sync`. Inside COPY
//! mode the server ignores the first `Sync`, so a COPY that runs is answered by one
//! `ReadyForQuery`. When the server refuses the COPY before entering COPY mode (read-only
//! transaction, missing INSERT privilege, row-level security, a generated column, a lock
//! timeout, ...) it answers both `Sync`s: one `ReadyForQuery` more than tokio-postgres expects.
//! The next request takes it as its own answer ("unexpected message from server") and the
//! connection falls apart ("the connection is closed").
//!
//! That extra answer cannot be taken back through tokio-postgres' public API: every request it
//! sends ends in a `Sync` or is a simple `Query`, each answered by a `ReadyForQuery`; the one
//! server state that answers neither is COPY-in mode, and only `CopyDone`/`CopyFail` leave it,
//! which tokio-postgres sends only after a `Bind` in the same request, and a `Bind` in COPY
//! mode is a protocol violation the server answers by closing the connection.
//!
//! So the refusal is found before the COPY is sent. [`start_copy_in`] asks the server, in the
//! same round trip as preparing the COPY, whether it would refuse it for the reasons a COPY is
//! refused at its start: a read-only transaction (a temporary table excepted), a column without
//! INSERT privilege, row-level security that applies to the session, a generated column. If so
//! it sends the COPY as a simple query, which the server refuses in step (one `ReadyForQuery`),
//! and returns that error: the server's own message and SQLSTATE. A kept plan
//! (`copy_in_with_plan`) that passed that check once asks only the session's read-only state
//! afterwards ([`READ_ONLY_SQL`], which the server need not plan: the full check cost a small
//! COPY about a third of a millisecond of server time), and the full check when it is on. Any
//! other refusal (a lock timeout, a table dropped since the plan, a privilege revoked or a role
//! changed since a kept plan passed the check, a COPY statement prepared earlier by
//! `PreparedCopyIn`, which skips the check to keep its round trip)
//! leaves the connection to be closed; the error then says so
//! (`Error::is_connection_lost`), and pools discard closed connections.

use super::CopyTarget;
use crate::error::{Error, Result};
use bytes::Bytes;
use futures_util::future;
use postgres_types::Type;
use std::time::{Duration, Instant};
use tokio_postgres::{Client, CopyInSink, SimpleQueryMessage, Statement};

/// Whether the server would refuse `COPY $1 (columns $2) FROM STDIN` before entering COPY mode;
/// the same conditions, in the same functions, as `DoCopy`/`BeginCopyFrom`.
pub(crate) const REFUSAL_SQL: &str = "\
SELECT (current_setting('transaction_read_only')::bool AND c.relpersistence <> 't')
    OR NOT coalesce(bool_and(has_column_privilege(c.oid, a.attnum, 'INSERT')), true)
    OR coalesce(row_security_active(c.oid), false)
    OR coalesce(bool_or(a.attgenerated <> ''), false)
FROM pg_class c
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = ANY ($2) AND NOT a.attisdropped
WHERE c.oid = $1::regclass
GROUP BY c.oid, c.relpersistence";

/// The part of [`REFUSAL_SQL`] that depends on the session rather than the table and the role:
/// what a plan that already passed the full check asks. A `SHOW` as a simple query: nothing
/// to parse into a plan or bind, one message each way (a 5-row `copy_in_with_plan` took 1.50×
/// `BinaryCopyInWriter`'s latency with the check as a typed `SELECT current_setting(..)`,
/// 1.25× with this, 1.10× with no check at all). When it is on, the full check runs (a
/// temporary table is still writable).
pub(crate) const READ_ONLY_SQL: &str = "SHOW transaction_read_only";

/// Whether the answer to [`READ_ONLY_SQL`] says the transaction is read-only.
pub(crate) fn read_only(answer: &[SimpleQueryMessage]) -> bool {
    answer
        .iter()
        .any(|message| matches!(message, SimpleQueryMessage::Row(row) if row.get(0) == Some("on")))
}

/// Starts `target`'s `COPY .. FROM STDIN`, or `prepared`, the same statement already prepared
/// on `client`. A COPY the server would refuse at its start is refused in step instead (see
/// the module docs) and the server's error returned (without context: the caller adds it).
pub(crate) async fn start_copy_in(
    client: &Client,
    target: &CopyTarget<'_>,
    prepared: Option<&Statement>,
) -> Result<CopyInSink<Bytes>> {
    let parsed;
    let statement = if let Some(statement) = prepared {
        statement
    } else if target.own {
        // Nothing refuses a COPY into the operation's own temporary table: no check.
        parsed = client.prepare(target.sql).await.map_err(Error::server)?;
        &parsed
    } else {
        // Prepared here rather than by tokio-postgres (which prepares a COPY given as text
        // the same way), pipelined with the refusal check: no extra round trip.
        let full = async {
            let rows = client
                .query_typed(
                    REFUSAL_SQL,
                    &[
                        (&target.table, Type::TEXT),
                        (&target.columns, Type::TEXT_ARRAY),
                    ],
                )
                .await?;
            Ok::<_, tokio_postgres::Error>(rows.first().is_some_and(|row| row.get::<_, bool>(0)))
        };
        let check = async {
            if target.checked {
                // A plan that passed the full check: the session's read-only state only, and
                // the full check when it is on.
                if !read_only(&client.simple_query(READ_ONLY_SQL).await?) {
                    return Ok(false);
                }
            }
            full.await
        };
        let (statement, refused) = future::join(client.prepare(target.sql), check).await;
        let statement = statement.map_err(Error::server)?;
        if refused.map_err(Error::server)? {
            return Err(refuse_in_step(client, target.sql).await);
        }
        parsed = statement;
        &parsed
    };
    copy_in_prepared(client, statement).await
}

/// Starts the COPY `statement`, prepared on `client`.
pub(crate) async fn copy_in_prepared(
    client: &Client,
    statement: &Statement,
) -> Result<CopyInSink<Bytes>> {
    match client.copy_in::<_, Bytes>(statement).await {
        Ok(sink) => Ok(sink),
        // A server error at the start: the abandoned COPY's second `Sync` is answered too.
        Err(e) if e.as_db_error().is_some() => Err(out_of_step(client, Error::server(e)).await),
        Err(e) => Err(Error::server(e)),
    }
}

/// Sends `copy_sql` as a simple query, which the server refuses with one `ReadyForQuery`;
/// returns its error.
async fn refuse_in_step(client: &Client, copy_sql: &str) -> Error {
    match client.simple_query(copy_sql).await {
        Err(e) if e.as_db_error().is_some() => Error::server(e),
        // Accepted after all (the session changed since the check): the server now waits in
        // COPY mode for data that a simple query cannot send. Any message but copy data ends
        // the session there, which is what `out_of_step` waits for.
        accepted => {
            let _ = client.simple_query("").await;
            let err = match accepted {
                Err(e) => Error::server(e),
                Ok(_) => Error::protocol("the server started a COPY it was expected to refuse"),
            };
            out_of_step(client, err).await
        }
    }
}

/// `err`, marked as lost, once `client`'s connection has closed (bounded wait): tokio-postgres
/// closes it when the unmatched answer arrives, so a pool that checks `is_closed` when the
/// connection comes back discards it rather than handing it to its next user.
async fn out_of_step(client: &Client, err: Error) -> Error {
    let deadline = Instant::now() + CLOSE_WAIT;
    while !client.is_closed() && Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
    err.connection_lost(
        "the refused COPY left the connection out of step with the server, so it is closed; \
         use another connection",
    )
}

/// How long [`out_of_step`] waits for the connection to close.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
