//! The one error type of pgbulk, with row / field / column context, and the codecs' own
//! [`EncodeError`] / [`DecodeError`]. A leaf: it depends on no other module of the crate.

use std::fmt;
use tokio_postgres::error::{DbError, SqlState};

/// What went wrong, for callers that need to branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// One or more struct fields do not match their columns; see [`Error::mismatches`].
    /// Nothing was sent.
    TypeMismatch,
    /// A value could not be encoded on the client (a NUL in text, an out-of-range date, …).
    /// The COPY was aborted: no row was written.
    Encode,
    /// A value read from the server could not be decoded into its field.
    Decode,
    /// The server rejected the statement or a row (constraint violation, missing table, …).
    /// For `copy_in` the COPY was aborted: no row was written.
    Db,
    /// The connection failed or was closed.
    Connection,
    /// The COPY data stream did not follow the binary COPY format.
    Protocol,
    /// The caller's input stream yielded an error; the COPY was aborted.
    Input,
    /// The call itself is invalid (an empty or malformed table name, a query with parameters …).
    Usage,
    /// Reading or writing a file (or other `std::io` reader / writer) failed; see
    /// [`pgcopy`](crate::pgcopy).
    Io,
    /// Quarantine mode set aside more rows than its
    /// [`max_rejected`](crate::Quarantine::max_rejected) limit; nothing was written. The first
    /// rejected row's error is the [`source`](std::error::Error::source).
    TooManyRejected,
}

/// A field whose Rust type does not match its column, as found by the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Mismatch {
    /// The struct field's name.
    pub field: &'static str,
    /// The struct field's Rust type, as written in the struct.
    pub rust_type: &'static str,
    /// The column's name.
    pub column: String,
    /// The column's PostgreSQL type, or `None` when the column does not exist.
    pub pg_type: Option<String>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pg_type {
            Some(ty) => write!(
                f,
                "field `{}` of type `{}` cannot be used with column \"{}\" of type {}",
                self.field, self.rust_type, self.column, ty
            ),
            None => write!(
                f,
                "field `{}` of type `{}` has no column \"{}\"",
                self.field, self.rust_type, self.column
            ),
        }
    }
}

/// The error type of pgbulk.
///
/// Opaque: ask it for what you need with [`kind`](Error::kind), [`row`](Error::row) (0-based
/// index into the rows you passed, or of the row read), [`field`](Error::field),
/// [`column`](Error::column), [`mismatches`](Error::mismatches) and
/// [`as_db_error`](Error::as_db_error). Its `Display` is a sentence meant for the person who
/// reads the log; [`source`](std::error::Error::source) chains to the underlying
/// tokio-postgres or codec error.
pub struct Error(Box<Inner>);

struct Inner {
    kind: ErrorKind,
    /// What pgbulk was doing ("COPY aborted, no row was written"), shown before the message.
    context: Option<String>,
    message: String,
    row: Option<u64>,
    field: Option<String>,
    column: Option<String>,
    mismatches: Vec<Mismatch>,
    connection_lost: bool,
    /// The server's error fields, whichever client reported them.
    server: Option<Box<ServerFields>>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// The fields of a server's `ErrorResponse` that pgbulk reads (the row and column a COPY
/// failed on, the SQLSTATE), kept the same way for every client library.
struct ServerFields {
    code: SqlState,
    detail: Option<String>,
    column: Option<String>,
    where_: Option<String>,
}

impl Error {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error(Box::new(Inner {
            kind,
            context: None,
            message: message.into(),
            row: None,
            field: None,
            column: None,
            mismatches: Vec::new(),
            connection_lost: false,
            server: None,
            source: None,
        }))
    }

    /// The same error as another kind (a server error that is the caller's mistake).
    pub(crate) fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.0.kind = kind;
        self
    }

    pub(crate) fn with_row(mut self, row: u64) -> Self {
        self.0.row = Some(row);
        self
    }

    pub(crate) fn with_field(mut self, field: impl Into<String>) -> Self {
        self.0.field = Some(field.into());
        self
    }

    pub(crate) fn with_column(mut self, column: impl Into<String>) -> Self {
        self.0.column = Some(column.into());
        self
    }

    fn with_source(mut self, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        self.0.source = Some(source.into());
        self
    }

    /// Sets what pgbulk was doing when the error happened (replacing an earlier context: a
    /// COPY error that, in quarantine mode, rejected one row instead of the whole load).
    pub(crate) fn context(mut self, context: impl Into<String>) -> Self {
        self.0.context = Some(context.into());
        self
    }

    /// The same error as a [`Usage`](ErrorKind::Usage) error with `message` (the source, and
    /// so [`code`](Error::code), stay).
    pub(crate) fn into_usage(mut self, message: impl Into<String>) -> Self {
        self.0.kind = ErrorKind::Usage;
        self.0.message = message.into();
        self
    }

    /// Marks the error as one after which the connection cannot be used again; `why` is
    /// appended to the message.
    pub(crate) fn connection_lost(mut self, why: &str) -> Self {
        self.0.connection_lost = true;
        self.0.message = format!("{}; {why}", self.0.message);
        self
    }

    pub(crate) fn mismatch(what: &str, mismatches: Vec<Mismatch>) -> Self {
        let n = mismatches.len();
        let mut e = Error::new(
            ErrorKind::TypeMismatch,
            format!(
                "{n} field{} of {what} do not match the server's columns; nothing was sent",
                if n == 1 { "" } else { "s" }
            ),
        );
        e.0.mismatches = mismatches;
        e
    }

    pub(crate) fn encode(row: u64, field: &str, column: &str, err: EncodeError) -> Self {
        Error::new(ErrorKind::Encode, err.to_string())
            .with_row(row)
            .with_field(field)
            .with_column(column)
            .with_source(err)
    }

    pub(crate) fn decode(row: u64, field: &str, column: &str, err: DecodeError) -> Self {
        Error::new(ErrorKind::Decode, err.to_string())
            .with_row(row)
            .with_field(field)
            .with_column(column)
            .with_source(err)
    }

    pub(crate) fn protocol(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Protocol, message)
    }

    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Usage, message)
    }

    pub(crate) fn input(row: u64, err: Box<dyn std::error::Error + Send + Sync>) -> Self {
        Error::new(ErrorKind::Input, format!("the input stream failed: {err}"))
            .with_row(row)
            .with_source(err)
    }

    /// Quarantine gave up: more than `limit` rows were rejected. `first` is the first rejection.
    pub(crate) fn too_many_rejected(limit: usize, first: Error) -> Self {
        Error::new(
            ErrorKind::TooManyRejected,
            format!(
                "quarantine: more than {limit} rows were rejected, so nothing was written; the \
                 first: {first}"
            ),
        )
        .with_source(first)
    }

    /// Wraps an I/O error; `context` says what pgbulk was doing.
    pub(crate) fn io(context: &str, err: std::io::Error) -> Self {
        Error::new(ErrorKind::Io, err.to_string())
            .with_source(err)
            .context(context)
    }

    /// Wraps a tokio-postgres error; `context` says what pgbulk was doing.
    pub(crate) fn pg(context: &str, err: tokio_postgres::Error) -> Self {
        Error::server(err).context(context)
    }

    /// Wraps a tokio-postgres (or `postgres`) error as a driver returns it, with no context
    /// yet.
    pub(crate) fn server(err: tokio_postgres::Error) -> Self {
        let (kind, message) = match err.as_db_error() {
            Some(db) => {
                let mut m = worker_message(db.message(), db.code(), db.where_(), db.file());
                if let Some(detail) = db.detail() {
                    m.push_str(" (");
                    m.push_str(detail);
                    m.push(')');
                }
                (ErrorKind::Db, m)
            }
            None if err.is_closed() => {
                (ErrorKind::Connection, "the connection is closed".to_owned())
            }
            None => (ErrorKind::Connection, err.to_string()),
        };
        let server = err.as_db_error().map(|db| ServerFields {
            code: db.code().clone(),
            detail: db.detail().map(str::to_owned),
            column: db.column().map(str::to_owned),
            where_: db.where_().map(str::to_owned),
        });
        Error::from_server(kind, message, server, err)
    }

    /// An error with the server's fields (if the server reported one) and `source`.
    fn from_server(
        kind: ErrorKind,
        message: String,
        server: Option<ServerFields>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        let mut e = Error::new(kind, message).with_source(source);
        e.0.column = server.as_ref().and_then(|s| s.column.clone());
        e.0.server = server.map(Box::new);
        e
    }

    /// Wraps a sqlx error, as [`Error::server`] wraps a tokio-postgres one: a server error
    /// keeps its SQLSTATE, detail, column and `where` context; `source()` is the sqlx error.
    #[cfg(feature = "sqlx")]
    pub(crate) fn sqlx(err: ::sqlx::Error) -> Self {
        let db = err
            .as_database_error()
            .and_then(|d| d.try_downcast_ref::<::sqlx::postgres::PgDatabaseError>());
        let (kind, message, server) = match db {
            Some(db) => {
                let code = SqlState::from_code(db.code());
                let mut m = worker_message(db.message(), &code, db.r#where(), db.file());
                if let Some(detail) = db.detail() {
                    m.push_str(" (");
                    m.push_str(detail);
                    m.push(')');
                }
                let server = ServerFields {
                    code,
                    detail: db.detail().map(str::to_owned),
                    column: db.column().map(str::to_owned),
                    where_: db.r#where().map(str::to_owned),
                };
                (ErrorKind::Db, m, Some(server))
            }
            None => match &err {
                ::sqlx::Error::Io(_) | ::sqlx::Error::PoolClosed | ::sqlx::Error::PoolTimedOut => {
                    (ErrorKind::Connection, err.to_string(), None)
                }
                _ => (ErrorKind::Protocol, err.to_string(), None),
            },
        };
        Error::from_server(kind, message, server, err)
    }

    /// The server's `where` context (`COPY t, line 3, column c`), if it sent one.
    pub(crate) fn server_where(&self) -> Option<&str> {
        self.0.server.as_ref()?.where_.as_deref()
    }

    /// The server's `column` field, if it sent one.
    pub(crate) fn server_column(&self) -> Option<&str> {
        self.0.server.as_ref()?.column.as_deref()
    }

    /// The server's `detail` field, if it sent one.
    pub(crate) fn server_detail(&self) -> Option<&str> {
        self.0.server.as_ref()?.detail.as_deref()
    }

    /// What kind of error this is.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// # use pgbulk::BulkExt;
    /// # #[derive(CopyRow)] #[copy(table = "users")] struct User { #[copy(key)] id: i64, email: String }
    /// # async fn f(client: &tokio_postgres::Client, users: Vec<User>) -> pgbulk::Result<()> {
    /// use pgbulk::ErrorKind;
    ///
    /// match client.bulk().copy_in(&users).await {
    ///     Ok(n) => println!("{n} users written"),
    ///     Err(e) if e.kind() == ErrorKind::TypeMismatch => eprintln!("the struct is out of date:\n{e}"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The 0-based index of the row the error is about: for `copy_in`, the position in the rows
    /// the caller passed; for `copy_out`, the position in the rows read.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// # use pgbulk::BulkExt;
    /// # #[derive(CopyRow)] #[copy(table = "users")] struct User { #[copy(key)] id: i64, email: String }
    /// # async fn f(client: &tokio_postgres::Client, users: Vec<User>) -> pgbulk::Result<()> {
    /// if let Err(e) = client.bulk().copy_in(&users).await {
    ///     // Nothing was written; say which input row was bad.
    ///     if let Some(row) = e.row() {
    ///         eprintln!("user {} was refused: {e}", users[row as usize].id);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn row(&self) -> Option<u64> {
        self.0.row
    }

    /// The name of the struct field the error is about.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// # use pgbulk::BulkExt;
    /// # #[derive(CopyRow)] #[copy(table = "users")] struct User { #[copy(key)] id: i64, email: String }
    /// # async fn f(client: &tokio_postgres::Client, users: Vec<User>) -> pgbulk::Result<()> {
    /// if let Err(e) = client.bulk().copy_in(&users).await {
    ///     // e.g. an `email` with a NUL byte, which no text column can store
    ///     if let (Some(row), Some(field)) = (e.row(), e.field()) {
    ///         eprintln!("row {row}: bad value in field `{field}`");
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn field(&self) -> Option<&str> {
        self.0.field.as_deref()
    }

    /// The name of the column the error is about.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// # use pgbulk::BulkExt;
    /// # #[derive(CopyRow)] #[copy(table = "users")] struct User { #[copy(key)] id: i64, email: String }
    /// # async fn f(client: &tokio_postgres::Client, users: Vec<User>) -> pgbulk::Result<()> {
    /// if let Err(e) = client.bulk().copy_in(&users).await {
    ///     // e.g. a NOT NULL violation: the server names the column
    ///     if let Some(column) = e.column() {
    ///         eprintln!("column {column:?}: {e}");
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn column(&self) -> Option<&str> {
        self.0.column.as_deref()
    }

    /// For [`ErrorKind::TypeMismatch`]: every field that does not match its column.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// # use pgbulk::BulkExt;
    /// # #[derive(CopyRow)] #[copy(table = "users")] struct User { #[copy(key)] id: i64, email: String }
    /// # async fn f(client: &tokio_postgres::Client, users: Vec<User>) -> pgbulk::Result<()> {
    /// if let Err(e) = client.bulk().plan::<User>().await {
    ///     for m in e.mismatches() {
    ///         match &m.pg_type {
    ///             Some(pg) => eprintln!("{}: {} cannot hold a {pg}", m.field, m.rust_type),
    ///             None => eprintln!("{}: no column {:?}", m.field, m.column),
    ///         }
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn mismatches(&self) -> &[Mismatch] {
        &self.0.mismatches
    }

    /// Whether the connection this error happened on cannot be used again (it is being
    /// closed), whatever the [`kind`](Error::kind). Errors of kind
    /// [`Connection`](ErrorKind::Connection) also mean a lost connection. A pooled connection
    /// is discarded by the pool once closed.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// # use pgbulk::BulkExt;
    /// # #[derive(CopyRow)] #[copy(table = "users")] struct User { #[copy(key)] id: i64, email: String }
    /// # async fn f(client: &tokio_postgres::Client, users: Vec<User>) -> pgbulk::Result<()> {
    /// match client.bulk().copy_in(&users).await {
    ///     Ok(_) => {}
    ///     // This client is done for: open a new connection before the next call.
    ///     Err(e) if e.is_connection_lost() => return Err(e),
    ///     Err(e) => eprintln!("load failed, the connection is still usable: {e}"),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn is_connection_lost(&self) -> bool {
        self.0.connection_lost || self.0.kind == ErrorKind::Connection
    }

    /// The server's error as tokio-postgres reported it (`None` for an error from another
    /// client library, such as sqlx: its error is the [`source`](std::error::Error::source)).
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// # use pgbulk::BulkExt;
    /// # #[derive(CopyRow)] #[copy(table = "users")] struct User { #[copy(key)] id: i64, email: String }
    /// # async fn f(client: &tokio_postgres::Client, users: Vec<User>) -> pgbulk::Result<()> {
    /// if let Err(e) = client.bulk().copy_in(&users).await {
    ///     if let Some(db) = e.as_db_error() {
    ///         eprintln!("{} (constraint {:?}, detail {:?})", db.message(), db.constraint(), db.detail());
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn as_db_error(&self) -> Option<&DbError> {
        self.0
            .source
            .as_ref()
            .and_then(|s| s.downcast_ref::<tokio_postgres::Error>())
            .and_then(tokio_postgres::Error::as_db_error)
    }

    /// The server's SQLSTATE code, if the server reported an error (through any client).
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// # use pgbulk::BulkExt;
    /// # #[derive(CopyRow)] #[copy(table = "users")] struct User { #[copy(key)] id: i64, email: String }
    /// # async fn f(client: &tokio_postgres::Client, users: Vec<User>) -> pgbulk::Result<()> {
    /// use tokio_postgres::error::SqlState;
    ///
    /// match client.bulk().copy_in(&users).await {
    ///     Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
    ///         // Some users exist already: merge instead.
    ///         client.bulk().upsert_via_staging(&users).await?;
    ///     }
    ///     other => { other?; }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn code(&self) -> Option<&SqlState> {
        self.0.server.as_ref().map(|s| &s.code)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.0.kind)
            .field("context", &self.0.context)
            .field("message", &self.0.message)
            .field("row", &self.0.row)
            .field("field", &self.0.field)
            .field("column", &self.0.column)
            .field("mismatches", &self.0.mismatches)
            .field("connection_lost", &self.0.connection_lost)
            .field("source", &self.0.source)
            .finish()
    }
}

/// The server's `message`, with the shard suffixes stripped when a Citus worker raised it
/// ([`from_worker`]): a worker names its shards (`events_102016`,
/// `events_tenant_id_reference_key_102016`), the caller knows the tables and constraints.
fn worker_message(
    message: &str,
    code: &SqlState,
    where_: Option<&str>,
    file: Option<&str>,
) -> String {
    if from_worker(code, where_, file) {
        strip_shard_suffixes(message)
    } else {
        message.to_owned()
    }
}

/// Whether an error was raised on a Citus worker and passed on by the coordinator: `XX000` from
/// the coordinator's COPY (`multi_copy.c`), or an error "while executing command on" a node.
/// (Read from the error's fields, never from its message.)
fn from_worker(code: &SqlState, where_: Option<&str>, file: Option<&str>) -> bool {
    where_.is_some_and(|w| w.contains("while executing command on"))
        || (*code == SqlState::INTERNAL_ERROR && file == Some("multi_copy.c"))
}

/// `message` with the shard suffix removed from every double-quoted name that has one: Citus
/// names a shard and its constraints `<name>_<shard id>` (shard ids are at least 102008).
fn strip_shard_suffixes(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(open) = rest.find('"') {
        out.push_str(&rest[..=open]);
        rest = &rest[open + 1..];
        let Some(close) = rest.find('"') else {
            break;
        };
        let name = &rest[..close];
        out.push_str(shard_base(name).unwrap_or(name));
        out.push('"');
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// The name without its shard suffix, when `name` ends in `_<shard id>`.
fn shard_base(name: &str) -> Option<&str> {
    let (base, id) = name.rsplit_once('_')?;
    let id: u64 = id.parse().ok()?;
    (!base.is_empty() && id >= 102_008 && !id.to_string().starts_with('0')).then_some(base)
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut wrote_context = false;
        if let Some(row) = self.0.row {
            write!(f, "row {row}")?;
            wrote_context = true;
        }
        if let Some(field) = &self.0.field {
            f.write_str(if wrote_context { ", " } else { "" })?;
            write!(f, "field `{field}`")?;
            wrote_context = true;
        }
        if let Some(column) = &self.0.column {
            f.write_str(if wrote_context { ", " } else { "" })?;
            write!(f, "column \"{column}\"")?;
            wrote_context = true;
        }
        if wrote_context {
            f.write_str(": ")?;
        }
        if let Some(context) = &self.0.context {
            write!(f, "{context}: ")?;
        }
        f.write_str(&self.0.message)?;
        for m in &self.0.mismatches {
            write!(f, "\n  - {m}")?;
        }
        Ok(())
    }
}

/// So `?` works on tokio-postgres calls in code that returns `pgbulk::Result` (a
/// [`ErrorKind::Db`] or [`ErrorKind::Connection`] error, with the original as its source).
impl From<tokio_postgres::Error> for Error {
    fn from(err: tokio_postgres::Error) -> Self {
        Error::pg("PostgreSQL", err)
    }
}

/// So `?` works on sqlx calls in code that returns `pgbulk::Result` (feature `sqlx`).
#[cfg(feature = "sqlx")]
impl From<::sqlx::Error> for Error {
    fn from(err: ::sqlx::Error) -> Self {
        Error::sqlx(err).context("PostgreSQL")
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_ref()
            .map(|s| &**s as &(dyn std::error::Error + 'static))
    }
}

/// Result with pgbulk's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a value could not be encoded.
#[derive(Debug)]
#[non_exhaustive]
pub enum EncodeError {
    /// Text contained a NUL byte, which PostgreSQL text types cannot store.
    NulInText {
        /// Byte offset of the first NUL in the string.
        offset: usize,
    },
    /// A value's encoded length does not fit in the `int32` length field.
    TooLarge {
        /// The length that did not fit.
        len: usize,
    },
    /// A value cannot be represented in the column's PostgreSQL type.
    OutOfRange(String),
    /// Any other failure, described for the person reading it.
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::NulInText { offset } => write!(
                f,
                "text contains a NUL byte (0x00) at byte {offset}; PostgreSQL text cannot store it"
            ),
            EncodeError::TooLarge { len } => write!(
                f,
                "value of {len} bytes is too large to transmit (the limit is {} bytes)",
                i32::MAX
            ),
            EncodeError::OutOfRange(msg) => f.write_str(msg),
            EncodeError::Other(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for EncodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EncodeError::Other(e) => Some(&**e),
            _ => None,
        }
    }
}

/// Why a field's bytes could not be decoded.
#[derive(Debug)]
#[non_exhaustive]
pub enum DecodeError {
    /// The column was NULL but the Rust type cannot hold NULL (use `Option<T>`).
    UnexpectedNull,
    /// The bytes are not a valid value of the type (truncated, wrong length, bad header).
    Invalid(String),
    /// The value is valid in PostgreSQL but cannot be held by the Rust type.
    OutOfRange(String),
    /// Any other failure, described for the person reading it.
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl DecodeError {
    /// A `DecodeError::Invalid` with the given message.
    pub fn invalid(msg: impl Into<String>) -> Self {
        DecodeError::Invalid(msg.into())
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnexpectedNull => {
                f.write_str("column is NULL but the field's type cannot hold NULL (use Option<T>)")
            }
            DecodeError::Invalid(msg) | DecodeError::OutOfRange(msg) => f.write_str(msg),
            DecodeError::Other(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DecodeError::Other(e) => Some(&**e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_suffixes_are_stripped_from_quoted_names_only() {
        assert_eq!(
            strip_shard_suffixes(
                "duplicate key value violates unique constraint \
                 \"events_tenant_id_reference_key_102016\""
            ),
            "duplicate key value violates unique constraint \"events_tenant_id_reference_key\""
        );
        assert_eq!(
            strip_shard_suffixes(
                "new row for relation \"events_102023\" violates check constraint \
                 \"events_amount_check\""
            ),
            "new row for relation \"events\" violates check constraint \"events_amount_check\""
        );
        // Not a shard id: small numbers, no underscore, text after the digits.
        assert_eq!(
            strip_shard_suffixes("\"t_1\" \"t2024\" \"t_102016x\" 102016"),
            "\"t_1\" \"t2024\" \"t_102016x\" 102016"
        );
        // An unbalanced quote is left as it is.
        assert_eq!(strip_shard_suffixes("a \"b_102016"), "a \"b_102016");
    }

    #[test]
    fn worker_errors_are_told_by_their_fields() {
        let internal = SqlState::INTERNAL_ERROR;
        assert!(from_worker(&internal, None, Some("multi_copy.c")));
        assert!(from_worker(
            &SqlState::UNIQUE_VIOLATION,
            Some("while executing command on 127.0.0.1:5433"),
            None
        ));
        assert!(!from_worker(&internal, None, Some("nbtinsert.c")));
        assert!(!from_worker(&SqlState::UNIQUE_VIOLATION, None, None));
        assert_eq!(
            worker_message("x \"t_102016\"", &SqlState::UNIQUE_VIOLATION, None, None),
            "x \"t_102016\""
        );
    }
}
