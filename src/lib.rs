//! # pgbulk: typed, binary-format PostgreSQL `COPY` for Rust
//!
//! Derive [`CopyRow`](macro@CopyRow) on a struct and bulk-load it with binary
//! `COPY .. FROM STDIN`, read it back with `COPY .. TO STDOUT`, on any tokio-postgres
//! [`Client`](tokio_postgres::Client) or [`Transaction`](tokio_postgres::Transaction):
//!
//! - [`copy_in`](Bulk::copy_in) writes any iterable of rows (or `&rows`), streamed in chunks with
//!   bounded memory; [`copy_in_stream`](Bulk::copy_in_stream) does the same for a `Stream`. A
//!   small batch (fewer than 1,000 rows, and the input says so) goes as one `INSERT .. SELECT *
//!   FROM unnest($1, ..)` of bound arrays where that writes what the COPY would: one round trip
//!   instead of three (see [`copy_in_with_plan`](Bulk::copy_in_with_plan)).
//! - [`copy_out`](Bulk::copy_out) / [`copy_out_query`](Bulk::copy_out_query) read a table or a
//!   query into structs, as a `Stream` of rows;
//!   [`copy_out_query_params`](Bulk::copy_out_query_params) takes values for the query's `$n`
//!   parameters (written into the COPY safely, see its docs);
//!   [`copy_out_each`](Bulk::copy_out_each) / [`copy_out_query_each`](Bulk::copy_out_query_each)
//!   hand each row to a closure, its `&str` / `&[u8]` fields borrowed from the received data
//!   (a struct with one lifetime parameter, see [`FromCopyRowRef`]).
//! - [`upsert_via_staging`](Bulk::upsert_via_staging) copies rows into a temporary staging table and
//!   merges with one `INSERT .. ON CONFLICT`, returning inserted / updated / unchanged counts;
//!   [`copy_in_returning`](Bulk::copy_in_returning) and
//!   [`upsert_via_staging_returning`](Bulk::upsert_via_staging_returning) hand back rows (e.g.
//!   generated ids) through `COPY (INSERT .. RETURNING ..) TO STDOUT`. A small batch of any of
//!   the three skips the staging table: its rows are bound as arrays to the same statement, and
//!   returned rows are read by the same decoder.
//! - Features `deadpool` and `bb8` implement [`BulkExt`] for pooled clients; `sync` adds the
//!   blocking API on the `postgres` crate (`pgbulk::sync`).
//!
//! Before a byte is sent, the target is described on the server and every field is checked
//! against its column's type; all mismatches are reported at once. Values are encoded by
//! code generated per struct (no `dyn ToSql`, no per-row allocation). A failed COPY — a value
//! that cannot be encoded, a row the server rejects, a dropped future — writes no row, and the
//! [`Error`] names the input row index, the field and the column.
//!
//! # Example
//!
//! ```no_run
//! use pgbulk::{BulkExt, CopyRow};
//!
//! #[derive(CopyRow, Debug)]
//! #[copy(table = "users")]
//! struct User {
//!     #[copy(key)]
//!     id: i64,
//!     name: String,
//!     email: Option<String>,
//!     tags: Vec<String>,
//!     balance: rust_decimal::Decimal,
//!     created_at: chrono::DateTime<chrono::Utc>,
//!     #[copy(rename = "external_id")]
//!     external: uuid::Uuid,
//! }
//!
//! # async fn run(client: &tokio_postgres::Client, users: Vec<User>) -> Result<(), pgbulk::Error> {
//! let written: u64 = client.bulk().copy_in(&users).await?;
//! let back: Vec<User> = client.bulk().copy_out::<User>().collect_vec().await?;
//! let recent: Vec<User> = client
//!     .bulk()
//!     .copy_out_query::<User>("SELECT * FROM users WHERE id > 100")
//!     .collect_vec()
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! # The derive
//!
//! `#[derive(CopyRow)]` works on structs with named fields:
//!
//! | attribute | on | meaning |
//! |---|---|---|
//! | `#[copy(table = "schema.table")]` | struct | target table (default: the struct name in snake_case) |
//! | `#[copy(rename_all = "camelCase")]` | struct | column names from field names by a serde case rule: `lowercase`, `UPPERCASE`, `PascalCase`, `camelCase`, `snake_case`, `SCREAMING_SNAKE_CASE`, `kebab-case`, `SCREAMING-KEBAB-CASE` (`rename` wins) |
//! | `#[copy(crate = "path")]` | struct | path to pgbulk (default `::pgbulk`) |
//! | `#[copy(rename = "col")]` | field | column name (default: the field name) |
//! | `#[copy(skip)]` | field | not copied; `Default::default()` when reading |
//! | `#[copy(key)]` | field | part of the conflict key (see [`Column::key`]) |
//! | `#[copy(to_sql)]` | field | encoded and decoded through the type's postgres-types `ToSql`/`FromSql` |
//! | `#[copy(json)]` | field | (feature `serde_json`) any `Serialize + DeserializeOwned` type as `json` / `jsonb` (as [`Json<T>`], without the wrapper); an `Option`'s `None` is written as JSON `null`, and SQL NULL reads as `None` |
//! | `#[copy(try_from = "T")]` | field | written as `T::try_from(field.clone())` with `T`'s codec, read as `T` then `TryFrom` (e.g. `u64` through `i64`); a failed conversion is an error naming row and field |
//! | `#[copy(default)]` | field | when a `copy_out_query` does not return the column, `Default::default()` instead of a mismatch; written as usual |
//! | `#[copy(flatten)]` | field | a nested `CopyRow` struct: its fields are columns of this one, with their own `rename`, `key`, `default` (not in generic structs) |
//!
//! Table and column names are taken literally and always quoted: `Users` is the table
//! `"Users"`, not `users`.
//!
//! ```
//! use pgbulk::CopyRow;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Settings { theme: String }
//!
//! #[derive(CopyRow)]
//! struct Address {
//!     street: String,
//!     #[copy(rename = "zip")]
//!     postal_code: String,
//! }
//!
//! #[derive(CopyRow)]
//! #[copy(table = "customers", rename_all = "camelCase")]
//! struct Customer {
//!     #[copy(key, try_from = "i64")]
//!     customer_id: u64,            // column "customerId", int8
//!     #[copy(json)]
//!     settings: Settings,          // json or jsonb
//!     #[copy(default)]
//!     last_seen: Option<i64>,      // None when a query leaves "lastSeen" out
//!     #[copy(flatten)]
//!     address: Address,            // columns "street" and "zip"
//! }
//!
//! let columns: Vec<_> = pgbulk::columns_of::<Customer>().iter().map(pgbulk::Column::name).collect();
//! assert_eq!(columns, ["customerId", "settings", "lastSeen", "street", "zip"]);
//! ```
//!
//! A field type pgbulk has no codec for is a compile error at the field that names these
//! routes: `#[copy(to_sql)]`, `#[copy(json)]`, `#[copy(try_from = "..")]`, or an
//! [`Encode`] / [`Decode`] impl of your own.
//!
//! # Supported types
//!
//! | Rust | PostgreSQL |
//! |---|---|
//! | `bool` | `boolean` |
//! | `i16`, `i32`, `i64` | `smallint`, `integer`, `bigint` |
//! | `i8` | `"char"` |
//! | `u32` | `oid` |
//! | `f32`, `f64` | `real`, `double precision` |
//! | `String`, `&str`, `Box<str>`, `Cow<str>` | `text`, `varchar`, `char(n)`, `name`, `citext`, enums, `json`, `jsonb` |
//! | `serde_json::Value`, [`Json<T>`] (feature `serde_json`) | `json`, `jsonb` |
//! | `Vec<u8>`, `&[u8]`, `Box<[u8]>` | `bytea` |
//! | `chrono::NaiveDate` (feature `chrono`, as every chrono type) | `date` |
//! | `chrono::NaiveTime` | `time` |
//! | `chrono::NaiveDateTime` | `timestamp` |
//! | `chrono::DateTime<Utc>`, `DateTime<FixedOffset>`, `DateTime<Local>` | `timestamptz` |
//! | [`Infinity<T>`] of the date/time types above | the same, with `±infinity` |
//! | `time::Date`, `Time`, `PrimitiveDateTime`, `OffsetDateTime` (feature `time`) | `date`, `time`, `timestamp`, `timestamptz` |
//! | [`Interval`] | `interval` |
//! | `uuid::Uuid` (feature `uuid`) | `uuid` |
//! | `rust_decimal::Decimal` (feature `rust_decimal`) | `numeric` (scale kept) |
//! | [`PgNumeric`] (feature `rust_decimal`) | `numeric`, with `NaN` and `±Infinity` |
//! | `std::net::IpAddr`, [`Inet`] | `inet`, `cidr` |
//! | [`PgRange<T>`] of the scalar types above | `int4range`, `int8range`, `numrange`, `tsrange`, `tstzrange`, `daterange` |
//! | `Option<T>` | NULL |
//! | `Vec<T>`, `&[T]`, `Vec<Option<T>>` | 1-D arrays of the above (enums included) |
//! | `Vec<Vec<T>>` … 6 levels | 2-D … 6-D arrays (rectangular) |
//! | domains | the base type's Rust types |
//! | `T: ToSql + FromSql` with `#[copy(to_sql)]`, or [`ViaToSql<T>`] | what `T` accepts (derived enums, composites) |
//!
//! The codecs for the chrono, uuid, `rust_decimal` and `serde_json` crates are the default-on features `chrono`,
//! `uuid`, `rust_decimal` and `serde_json` (as postgres-types has them): with
//! `default-features = false` a build compiles only the ones it names.
//!
//! Types with no codec here go through their postgres-types impls with `#[copy(to_sql)]`:
//! `cidr::IpCidr` (`cidr`), `HashMap<String, Option<String>>` (`hstore`), `String` (`ltree`),
//! `bit_vec::BitVec` (`varbit`), `geo_types::Point`/`Rect`/`LineString` (`point`/`box`/`path`),
//! `pgvector::Vector` (`vector`), each with its crate's postgres-types feature (the README
//! lists them):
//!
//! ```
//! # use pgbulk::CopyRow;
//! #[derive(CopyRow)]
//! #[copy(table = "attrs")]
//! struct Attrs {
//!     id: i32,
//!     #[copy(to_sql)]
//!     tags: std::collections::HashMap<String, Option<String>>, // an hstore column
//!     #[copy(to_sql)]
//!     path: String, // an ltree column
//! }
//! ```
//!
//! # Upsert
//!
//! [`Bulk::upsert_via_staging`] COPYs the rows into a temporary staging table, then merges
//! them with one `INSERT .. SELECT .. ON CONFLICT`, keyed on the `#[copy(key)]` fields unless
//! the call names other columns or a constraint. Rows equal to the stored row are not
//! rewritten; duplicate keys within one batch are resolved first (the last occurrence in input
//! order wins); the staged rows are gone afterwards, on success and on every error (the empty
//! staging table stays for the session's next call of the same row shape). On
//! PostgreSQL 15 and later, large batches into a table not much larger than the batch merge
//! with `MERGE` instead (falling back to `ON CONFLICT` on a concurrent insert of a key), with the
//! same result and counts. A batch of fewer than 2,000 rows (and the input says so) is not
//! staged where it need not be: its rows are bound to the same merge statement as arrays and
//! sent with the transaction's `BEGIN` and `COMMIT` in one request.
//!
//! ```no_run
//! use pgbulk::{BulkExt, CopyRow};
//!
//! #[derive(CopyRow)]
//! #[copy(table = "products")]
//! struct Product {
//!     #[copy(key)]
//!     sku: String,
//!     name: String,
//!     price: rust_decimal::Decimal,
//! }
//!
//! # async fn run(client: &tokio_postgres::Client, feed: Vec<Product>) -> Result<(), pgbulk::Error> {
//! let counts = client.bulk().upsert_via_staging(&feed).await?;
//! println!("{} new, {} changed, {} unchanged", counts.inserted, counts.updated, counts.unchanged);
//! // Only refresh prices, keyed on another unique constraint:
//! client
//!     .bulk()
//!     .upsert_via_staging(&feed)
//!     .conflict_constraint("products_name_key")
//!     .update_columns(["price"])
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! # Progress and observability
//!
//! [`Bulk::on_progress`] is called with the [`Progress`] (rows and bytes so far) of a
//! `copy_in` after every chunk sent, of a `copy_out` each time about as much has arrived, and
//! once at the end of both. With the default-on `tracing` feature, every operation runs in a
//! `tracing` span (`pgbulk.copy_in`, `pgbulk.copy_in_stream`, `pgbulk.copy_out`,
//! `pgbulk.upsert_via_staging`, `pgbulk.copy_in_returning`) carrying the
//! table (or query), whether a kept [`Plan`] was reused (`plan_reused`, turned `false` by the
//! describe step itself, which also emits a DEBUG event `described`), and at the end the rows,
//! bytes and elapsed milliseconds, followed by a DEBUG event saying whether it finished, failed
//! or was dropped. `default-features = false` removes all of it, at no cost.
//!
//! ```no_run
//! # use pgbulk::{BulkExt, CopyRow};
//! # #[derive(CopyRow)] struct User { id: i64 }
//! # async fn run(client: &tokio_postgres::Client) -> Result<(), pgbulk::Error> {
//! let users = (0..10_000_000).map(|id| User { id });
//! client
//!     .bulk()
//!     .on_progress(|p| eprintln!("{} rows, {} bytes sent", p.rows, p.bytes))
//!     .copy_in(users)
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! # With sqlx
//!
//! With the feature `sqlx`, `SqlxBulkExt::bulk` gives the same operations on sqlx 0.9's
//! `PgConnection`, `Transaction<'_, Postgres>`, `PoolConnection<Postgres>` and `&PgPool`, run
//! by the same code as on tokio-postgres: the plan's type checks (enums, composites, domains,
//! ranges and arrays of them, read from the catalog), all-or-nothing COPY with the failing row,
//! field and column named, upserts in their own transaction or a savepoint inside a sqlx
//! `Transaction`, progress and tracing. sqlx is used with its `postgres` feature only.
//!
//! Two things differ because of what sqlx allows:
//!
//! - **Nagle's algorithm.** sqlx never sets `TCP_NODELAY` and ends a COPY with a separate small
//!   write, which waits for the server's delayed ACK (about 40 ms per COPY over TCP). pgbulk
//!   sets `TCP_NODELAY` on the connection's socket, once per connection, on Linux (the socket is
//!   found through `pidfd_getfd(2)` by the client address the server reports). Through a pooler
//!   or NAT, or where that call is refused, the delay stays.
//! - **A COPY abandoned half-way** (its future or stream dropped) cannot be ended by sqlx in
//!   step with the server: `PgCopyIn`'s drop sends a `CopyFail` whose answer sqlx never reads,
//!   and an unread `copy_out_raw` stream leaves its data behind; that connection's later queries
//!   then read the replies of the queries before them. pgbulk ends such a connection's session
//!   instead: a pooled connection is closed rather than returned to the pool, and a
//!   `PgConnection` you hold reports the lost session on its next call (reconnect). Errors
//!   never leave a COPY open; only a drop does — and one refusal: a `copy_out_query` the server
//!   refuses at the start of its COPY (a missing privilege, a write in a read-only session),
//!   whose answer sqlx reads only in part. That session is ended the same way, and the error
//!   says so ([`Error::is_connection_lost`]).
//!
// Compiled by `cargo test` without this crate's `sqlx` feature too: the test build turns on
// bulk-core's `sqlx` (root dev-dependencies) and the facade re-exports bulk-core's items.
//! ```no_run
//! use pgbulk::{CopyRow, SqlxBulkExt};
//!
//! #[derive(CopyRow)]
//! #[copy(table = "products")]
//! struct Product {
//!     #[copy(key)]
//!     sku: String,
//!     stock: i32,
//! }
//!
//! # async fn run(pool: sqlx::PgPool, feed: Vec<Product>) -> Result<(), pgbulk::Error> {
//! let counts = pool.bulk().upsert_via_staging(&feed).await?;
//! println!("{} inserted, {} updated", counts.inserted, counts.updated);
//! # Ok(()) }
//! ```
//!
//! # Files
//!
//! - **Loading a large file** with constant memory: parse it on a blocking thread and stream
//!   the rows with [`blocking_stream`] into [`copy_in_stream`](Bulk::copy_in_stream). A
//!   malformed record aborts the COPY (nothing is written); the error names the row, and its
//!   [`source`](std::error::Error::source) is the parser's error (for `csv`, with the line).
//!
//!   ```no_run
//!   # use pgbulk::{BulkExt, CopyRow};
//!   #[derive(CopyRow, serde::Deserialize)]
//!   #[copy(table = "people")]
//!   struct Person { id: i64, name: String, note: Option<String> }
//!
//!   # async fn run(client: &tokio_postgres::Client) -> Result<(), Box<dyn std::error::Error>> {
//!   let csv = csv::Reader::from_path("people.csv")?; // header: id,name,note
//!   let rows = pgbulk::blocking_stream(csv.into_deserialize::<Person>());
//!   let written = client.bulk().copy_in_stream(rows).await?;
//!   # Ok(()) }
//!   ```
//! - **Binary COPY files** without a server: [`pgcopy::Writer`] writes rows to a file that
//!   `psql -c "\copy t FROM 'f.pgcopy' WITH (FORMAT binary)"` loads, and [`pgcopy::Reader`]
//!   reads files written by `COPY .. TO .. (FORMAT binary)` back into structs.
//! - **Exporting a query** to CSV: see the `export` example below.
//!
//! # Examples
//!
//! Runnable programs in `examples/` (each starts a throwaway PostgreSQL when `DATABASE_URL`
//! is not set):
//!
//! - `cargo run --release --example quickstart`: load 1,000,000 typed rows with `copy_in`
//!   (with a progress bar), read and verify them with `copy_out`, compare with per-row
//!   `INSERT`.
//! - `cargo run --release --example csv_load` / `jsonl_load`: stream a large CSV / JSON-lines
//!   file through serde into `copy_in_stream`, with constant memory.
//! - `cargo run --release --example export -- --help`: export a query or table to CSV (the same
//!   bytes `psql \copy .. (FORMAT csv, HEADER)` writes) or to a `.pgcopy` file.
//!
//! # Errors
//!
//! Every call returns [`Error`]: see [`ErrorKind`] for the cases, and [`Error::row`],
//! [`Error::field`], [`Error::column`], [`Error::mismatches`] for the context.
//!
//! # Faults: what is guaranteed
//!
//! A `copy_in` is one `COPY` statement: atomic. Whatever goes wrong — a value that cannot be
//! encoded (error at that row, before it is sent), the server rejecting a row (the error names
//! the row index and, where the server says, the column), the future dropped or its task
//! aborted, the row source panicking or failing, a `statement_timeout`, the backend terminated
//! or the server crashing — no row of that call is visible afterwards, and the client is
//! usable again unless the server closed the connection.
//!
//! **A COPY the server refuses at its start** (a read-only transaction, no INSERT privilege,
//! row-level security, a generated column in the struct) returns the server's own error and
//! leaves the client in step, also inside a transaction and on pooled and sync clients. (A
//! small batch sent as one `INSERT` is refused in step like any statement.)
//! tokio-postgres cannot recover from such a refusal once the COPY is sent (its COPY start
//! leaves an extra `ReadyForQuery` behind), so pgbulk asks the server first, in the round trip
//! that prepares the COPY, and lets it refuse the statement as a simple query. A refusal it
//! cannot foresee (a lock timeout, a table dropped since a kept plan, a COPY prepared earlier
//! with [`Bulk::prepare_copy_in`], which skips the check to keep its round trip) closes the
//! connection: [`Error::is_connection_lost`] says so, and pools discard closed connections. A `copy_out` that loses its
//! connection or is cut short ends with an error, never as if it were complete. The tests in
//! `tests/it/faults.rs` and `tests/restart.rs` prove each of these.
//!
//! **When a server-side rejection is seen.** tokio-postgres reads the server's reply to a
//! `COPY FROM STDIN` only when the copy is finished, so a row the server rejects halfway
//! through is reported after the client has sent the rest of its input (the server discards
//! it). A bounded load therefore fails at its end; a load fed from an endless source never
//! sees the rejection, nor a `statement_timeout` that cancelled the COPY: the server then
//! discards the data it is sent until the end of the COPY, and tokio-postgres' `CopyInSink`
//! offers no way to look at the server's answer before `finish`, so pgbulk cannot notice it
//! between chunks either. Bound such loads (batches, or a timeout around the future: dropping
//! it aborts the COPY). A lost connection is seen at the next chunk sent.
//!
//! When pgbulk aborts a COPY it sends no message text of its own (tokio-postgres' `CopyFail`
//! is empty), so no server limit on message size can be hit; lengths that do not fit the
//! protocol's `int32` are an [`ErrorKind::Encode`] error ("value too large to transmit"),
//! never a truncated cast.
//!
//! # Quarantine: set bad rows aside
//!
//! `client.bulk().quarantine().copy_in(&rows)` loads every good row (committed together, in
//! one transaction, or in a savepoint of the caller's) and returns the bad ones with their
//! input index and reason, instead of failing the whole load:
//!
//! ```no_run
//! # use pgbulk::{BulkExt, CopyRow};
//! # #[derive(CopyRow)] struct User { id: i64 }
//! # async fn run(client: &tokio_postgres::Client, users: Vec<User>) -> Result<(), pgbulk::Error> {
//! let outcome = client.bulk().quarantine().max_rejected(1_000).copy_in(&users).await?;
//! println!("{} rows loaded", outcome.written);
//! for bad in &outcome.rejected {
//!     eprintln!("input row {}: {}", bad.index, bad.error); // e.g. a duplicate key, a NUL in text
//! }
//! # Ok(()) }
//! ```
//!
//! The first attempt is one plain COPY (with no bad row it costs a `BEGIN`/`COMMIT` more than
//! `copy_in`: see BENCHMARKS.md). Rows that cannot be encoded are skipped while encoding. When
//! the server rejects a row and names it (unique, CHECK, NOT NULL, out-of-range values, a
//! trigger's `RAISE`), that row is set aside and the rest retried; when it names none (foreign
//! keys, `DEFERRABLE` constraints, which pgbulk checks before committing), the failing part is
//! bisected. Errors that are not about a row's data (connection lost, `statement_timeout`,
//! missing table, permissions) fail the whole call and write nothing. The rows are sent again
//! on retries, so the input must be replayable: `&Vec<T>`, `&[T]`, or any `Clone` iterator
//! that yields the same rows each time.
//!
//! # Testing against a real server
//!
//! With the `testkit` feature, `testkit::TestDb` gives each test a fresh database on a
//! throwaway cluster started from the local PostgreSQL binaries (or on `DATABASE_URL`), and
//! removes it all when the process ends:
//!
//! ```no_run
//! # use pgbulk::{BulkExt, CopyRow};
//! # #[derive(CopyRow, Debug, PartialEq)] #[copy(table = "users")] struct User { id: i64 }
//! #[tokio::test]
//! async fn loads_users() {
//!     let db = pgbulk::testkit::TestDb::new().await.unwrap();
//!     db.client().batch_execute("CREATE TABLE users (id int8)").await.unwrap();
//!     db.client().bulk().copy_in([User { id: 1 }]).await.unwrap();
//!     let back = db.client().bulk().copy_out::<User>().collect_vec().await.unwrap();
//!     assert_eq!(back, [User { id: 1 }]);
//! }
//! ```

#![forbid(unsafe_code)]
// docs.rs builds with `--cfg docsrs`: show which feature each item needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc(inline)]
pub use bulk_core::*;
pub use bulk_derive::CopyRow;

/// The tokio-postgres crate pgbulk works with, re-exported so the versions match.
pub use tokio_postgres;

#[cfg(feature = "testkit")]
#[doc(inline)]
pub use bulk_core::testkit;

/// The README's code examples, compiled as doctests so the README stays true to the code.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
