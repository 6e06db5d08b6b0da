//! The sqlx driver (feature `sqlx`): pgbulk on sqlx 0.9's `PgConnection`, `Transaction`,
//! `PoolConnection` and `PgPool`.
//!
//! sqlx gives raw COPY only (`copy_in_raw` / `copy_out_raw`, bytes in and out). What pgbulk needs
//! beyond that lives here:
//!
//! - [`types`]: the plan's column types as full `postgres_types::Type`s (enums, composites,
//!   domains, ranges and arrays of them), read from the catalog, so the same `Encode`/`Decode`
//!   checks and the same all-mismatches error work as on tokio-postgres;
//! - [`nodelay`]: `TCP_NODELAY` on sqlx's socket, without which every `COPY .. FROM STDIN` over
//!   TCP waits about 40 ms for the server's delayed ACK.

mod driver;
pub(crate) mod nodelay;
pub(crate) mod types;

pub(crate) use driver::{Conn, SqlxConn};
