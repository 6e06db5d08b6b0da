//! A throwaway PostgreSQL for tests and examples.
//!
//! [`TestDb::new`] gives each caller a fresh, empty database and a connection to it, so tests
//! run in parallel without seeing each other's tables:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use bulk_core::testkit::TestDb;
//!
//! let db = TestDb::new().await?;
//! db.client().batch_execute("CREATE TABLE t (id int8)").await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Where the server comes from
//!
//! * When `DATABASE_URL` is set (URL or `key=value` form, no TLS), that server is used. Each
//!   [`TestDb`] is a new database `pgbulk_t_<pid>_<n>` (from `template0`, UTF-8, `C` collation)
//!   when the role may create databases; otherwise a new schema of that name in the given
//!   database, set as `search_path` of every connection. Either is dropped when the `TestDb` is
//!   dropped (best effort).
//! * Otherwise the first call starts one throwaway cluster for the whole process from the local
//!   server binaries, found via `PG_BIN`, `pg_config --bindir`, `PATH`, then the highest
//!   `/usr/lib/postgresql/*/bin`. It lives in a temporary directory, listens on a unix socket
//!   there and on `127.0.0.1` (a free port, [`TestDb::tcp_config`]), runs with `fsync`, `full_page_writes` and `synchronous_commit` off and
//!   `timezone = 'UTC'`, and is stopped and deleted as soon as the process exits, however it
//!   exits (even `SIGKILL`), or at [`shutdown`]. When the process runs as root, the server runs as
//!   the `postgres` system user. Each [`TestDb`] is a new database `pgbulk_t_<n>`, dropped in the
//!   background when the `TestDb` is dropped.
//!
//! Connections use [`tokio_postgres::NoTls`]; their connection futures are spawned with
//! [`tokio::spawn`] on the runtime that makes them, so they live as long as that runtime.

#[cfg(not(unix))]
compile_error!("the pgbulk testkit needs a Unix system (unix sockets, `sh`, process ownership)");

#[cfg(feature = "testkit-citus")]
mod citus;
mod cluster;

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls};

use self::cluster::{Cluster, Node};

/// The testkit's error: what went wrong, in words, with the underlying error as its source.
///
/// `Display` (and `Debug`, so `unwrap()` reads well) show the whole chain of causes.
pub struct Error {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// An error without an underlying cause.
    fn msg(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
            source: None,
        }
    }

    /// An error caused by `source`.
    fn with(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Error {
        Error {
            message: message.into(),
            source: Some(source.into()),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        let mut cause = std::error::Error::source(self);
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Where the server behind the testkit lives, for tools that need to reach it directly
/// (PgBouncer, `psql`, ...).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerInfo {
    /// Connection settings for the maintenance database: `postgres` on the local cluster, the
    /// `DATABASE_URL` database otherwise.
    pub config: Config,
    /// Directory of the unix socket (local cluster only).
    pub socket_dir: Option<PathBuf>,
    /// Port: on the local cluster, the number in the socket's file name and the TCP port on
    /// `127.0.0.1`.
    pub port: u16,
    /// Directory of the server binaries (local cluster only).
    pub bin_dir: Option<PathBuf>,
    /// Data directory (local cluster only).
    pub data_dir: Option<PathBuf>,
    /// Server log (local cluster only).
    pub log_file: Option<PathBuf>,
}

/// The server all `TestDb`s of this process use.
enum Server {
    /// The throwaway cluster.
    Local(Cluster),
    /// `DATABASE_URL`.
    External(Config),
}

impl Server {
    fn info(&self) -> ServerInfo {
        match self {
            Server::Local(c) => ServerInfo {
                config: c.config("postgres"),
                socket_dir: Some(c.dir.clone()),
                port: c.port,
                bin_dir: Some(c.bin_dir.clone()),
                data_dir: Some(c.data_dir.clone()),
                log_file: Some(c.log_file.clone()),
            },
            Server::External(config) => ServerInfo {
                config: config.clone(),
                socket_dir: None,
                port: config.get_ports().first().copied().unwrap_or(5432),
                bin_dir: None,
                data_dir: None,
                log_file: None,
            },
        }
    }
}

/// Set by [`use_local_cluster`]: ignore `DATABASE_URL`.
static FORCE_LOCAL: AtomicBool = AtomicBool::new(false);

/// Makes this process's testkit start its own throwaway cluster even when `DATABASE_URL` is
/// set: for tests that crash or restart their server, which must never be someone else's.
/// Call it before the first [`TestDb::new`] (or [`server_info`]); once the server is chosen,
/// it stays.
pub fn use_local_cluster() {
    FORCE_LOCAL.store(true, Ordering::SeqCst);
}

/// A process-wide server: not yet started, running, or failed to start (the message, so every
/// later caller fails fast with the same words).
type Slot<T> = Mutex<Option<Result<Arc<T>, String>>>;

/// The server of [`TestDb::new`].
static SERVER: Slot<Server> = Mutex::new(None);

/// Numbers the databases and schemas of this process.
static NEXT_DB: AtomicU64 = AtomicU64::new(1);

/// With `DATABASE_URL`: 0 = not known yet, 1 = may create databases, 2 = uses schemas.
static EXTERNAL_MODE: AtomicU8 = AtomicU8::new(0);
const MODE_DATABASES: u8 = 1;
const MODE_SCHEMAS: u8 = 2;

/// Returns the server of `slot`, starting it with `start` on first use. Blocks while it starts.
fn started<T>(slot: &Slot<T>, start: fn() -> Result<T, Error>) -> Result<Arc<T>, Error> {
    let mut state = slot.lock().unwrap_or_else(PoisonError::into_inner);
    match &*state {
        Some(Ok(server)) => return Ok(Arc::clone(server)),
        Some(Err(message)) => return Err(Error::msg(message.clone())),
        None => {}
    }
    let result = start().map(Arc::new);
    *state = Some(match &result {
        Ok(server) => Ok(Arc::clone(server)),
        Err(e) => Err(e.to_string()),
    });
    result
}

/// Returns the server, starting it on first use. Blocks while the cluster starts.
fn server() -> Result<Arc<Server>, Error> {
    started(&SERVER, start_server)
}

fn start_server() -> Result<Server, Error> {
    if FORCE_LOCAL.load(Ordering::SeqCst) {
        return Cluster::start(&Node::PLAIN).map(Server::Local);
    }
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => url
            .parse::<Config>()
            .map(Server::External)
            .map_err(|e| Error::with("testkit: DATABASE_URL is not a valid connection string", e)),
        _ => Cluster::start(&Node::PLAIN).map(Server::Local),
    }
}

/// Describes where the server is, starting the throwaway cluster if it is not running yet.
///
/// This blocks while the cluster starts (about a second); from async code call it after
/// [`TestDb::new`], or through [`tokio::task::spawn_blocking`].
pub fn server_info() -> Result<ServerInfo, Error> {
    server().map(|s| s.info())
}

/// Stops the throwaway cluster now and deletes its files, instead of when the process exits;
/// waits until that is done. Every connection to it breaks. A later [`TestDb::new`] starts a new
/// cluster. Does nothing with `DATABASE_URL`.
///
/// Calling it is optional: the cluster never outlives the process anyway.
pub fn shutdown() {
    let server = SERVER.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(Ok(server)) = server {
        if let Server::Local(cluster) = &*server {
            cluster.stop();
        }
    }
    #[cfg(feature = "testkit-citus")]
    citus::shutdown();
}

/// One fresh database (or, on a `DATABASE_URL` server where the role may not create
/// databases, one fresh schema) and a connection to it.
///
/// Dropping it drops the database or schema: keep it alive while you use connections to it.
pub struct TestDb {
    client: Client,
    config: Config,
    dbname: String,
    schema: Option<String>,
    /// What to drop when this `TestDb` is dropped, in order (one database per Citus node).
    cleanup: Vec<Cleanup>,
}

impl fmt::Debug for TestDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestDb")
            .field("dbname", &self.dbname)
            .field("schema", &self.schema)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl TestDb {
    /// Starts the throwaway cluster if needed (or uses `DATABASE_URL`), creates a fresh
    /// database and connects to it.
    ///
    /// Safe to call from many tests at once, each on its own runtime.
    pub async fn new() -> Result<TestDb, Error> {
        let server = tokio::task::spawn_blocking(server)
            .await
            .map_err(|e| Error::with("testkit: the task starting the server failed", e))??;
        let n = NEXT_DB.fetch_add(1, Ordering::Relaxed);
        let (config, dbname, schema, cleanup) = match &*server {
            Server::Local(cluster) => {
                let name = format!("pgbulk_t_{n}");
                let admin = cluster.config("postgres");
                let client = connect_with(&admin).await?;
                client
                    .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE template0"))
                    .await
                    .map_err(|e| {
                        Error::with(format!("testkit: cannot create database {name}"), e)
                    })?;
                let cleanup = Cleanup {
                    admin,
                    target: Target::Database(name.clone()),
                    wait: false,
                };
                (cluster.config(&name), name, None, cleanup)
            }
            Server::External(base) => {
                let name = format!("pgbulk_t_{}_{n}", std::process::id());
                new_external(base, name).await?
            }
        };
        let client = connect_with(&config).await?;
        Ok(TestDb {
            client,
            config,
            dbname,
            schema,
            cleanup: vec![cleanup],
        })
    }

    /// The connection made by [`TestDb::new`].
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The connection made by [`TestDb::new`], mutably (for [`Client::transaction`]).
    pub fn client_mut(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Opens another connection to the same database; its connection future is spawned on the
    /// current tokio runtime.
    pub async fn connect(&self) -> Result<Client, Error> {
        connect_with(&self.config).await
    }

    /// Connection settings for this database (for pools such as deadpool or bb8). In schema
    /// mode they carry `-c search_path=<schema>` in `options`.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Connection settings for this database over TCP: `127.0.0.1` on the local cluster, and
    /// with `DATABASE_URL` its settings when they name a TCP host (`None` for a unix socket).
    pub fn tcp_config(&self) -> Option<Config> {
        match &*server().ok()? {
            Server::Local(cluster) => Some(cluster.tcp_config(&self.dbname)),
            Server::External(_) => matches!(self.config.get_hosts().first(), Some(Host::Tcp(_)))
                .then(|| self.config.clone()),
        }
    }

    /// [`TestDb::config`] as sqlx connect options (feature `sqlx`).
    #[cfg(feature = "sqlx")]
    pub fn sqlx_options(&self) -> sqlx::postgres::PgConnectOptions {
        sqlx_options(&self.config)
    }

    /// The settings of [`TestDb::config`] in libpq `key=value` form, for example
    /// `host=/tmp/pgbulk-testkit-AbC123 port=5432 user=postgres dbname=pgbulk_t_3`.
    /// Includes the password, if the server needs one.
    pub fn connection_string(&self) -> String {
        connection_string(&self.config, true)
    }

    /// The database's name (with `DATABASE_URL` in schema mode: the given database's).
    pub fn dbname(&self) -> &str {
        &self.dbname
    }

    /// The fresh schema, in schema mode (a `DATABASE_URL` role that may not create databases);
    /// `None` when the whole database is fresh.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        for cleanup in self.cleanup.drain(..) {
            cleanup.run();
        }
    }
}

/// Creates the database or schema `name` on the `DATABASE_URL` server.
async fn new_external(
    base: &Config,
    name: String,
) -> Result<(Config, String, Option<String>, Cleanup), Error> {
    let admin = connect_with(base).await?;
    if EXTERNAL_MODE.load(Ordering::Relaxed) != MODE_SCHEMAS {
        let sql = format!(
            "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
        );
        match admin.batch_execute(&sql).await {
            Ok(()) => {
                EXTERNAL_MODE.store(MODE_DATABASES, Ordering::Relaxed);
                let mut config = base.clone();
                config.dbname(&name);
                let cleanup = Cleanup {
                    admin: base.clone(),
                    target: Target::Database(name.clone()),
                    wait: true,
                };
                return Ok((config, name, None, cleanup));
            }
            Err(e) if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) => {
                EXTERNAL_MODE.store(MODE_SCHEMAS, Ordering::Relaxed);
            }
            Err(e) => {
                return Err(Error::with(
                    format!("testkit: cannot create database {name}"),
                    e,
                ))
            }
        }
    }
    admin
        .batch_execute(&format!("CREATE SCHEMA {name}"))
        .await
        .map_err(|e| Error::with(format!("testkit: cannot create schema {name}"), e))?;
    let mut config = base.clone();
    let options = match base.get_options() {
        Some(o) if !o.trim().is_empty() => format!("{o} -c search_path={name}"),
        _ => format!("-c search_path={name}"),
    };
    // The application name lets the cleanup find (and end) this schema's sessions.
    config.options(options).application_name(&name);
    let dbname = base.get_dbname().or(base.get_user()).unwrap_or("postgres");
    let cleanup = Cleanup {
        admin: base.clone(),
        target: Target::Schema(name.clone()),
        wait: true,
    };
    Ok((config, dbname.to_owned(), Some(name), cleanup))
}

/// The sqlx connect options for `config`'s first host (feature `sqlx`): host or unix socket
/// directory, port, user, password, database and `options` (schema mode's `search_path`).
#[cfg(feature = "sqlx")]
pub fn sqlx_options(config: &Config) -> sqlx::postgres::PgConnectOptions {
    let mut o = sqlx::postgres::PgConnectOptions::new_without_pgpass()
        .port(config.get_ports().first().copied().unwrap_or(5432));
    o = match config.get_hosts().first() {
        Some(Host::Unix(dir)) => o.socket(dir),
        Some(Host::Tcp(host)) => o.host(host),
        None => o.host("localhost"),
    };
    if let Some(user) = config.get_user() {
        o = o.username(user);
    }
    if let Some(password) = config.get_password() {
        o = o.password(&String::from_utf8_lossy(password));
    }
    if let Some(dbname) = config.get_dbname() {
        o = o.database(dbname);
    }
    if let Some(options) = config.get_options() {
        // `-c name=value` pairs, as schema mode writes them.
        let pairs: Vec<(String, String)> = options
            .split_whitespace()
            .filter(|w| *w != "-c")
            .filter_map(|w| w.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
            .collect();
        o = o.options(pairs);
    }
    o
}

/// Connects and spawns the connection future on the current runtime.
async fn connect_with(config: &Config) -> Result<Client, Error> {
    let (client, connection) = config.connect(NoTls).await.map_err(|e| {
        Error::with(
            format!(
                "testkit: cannot connect to `{}`",
                connection_string(config, false)
            ),
            e,
        )
    })?;
    tokio::spawn(async move {
        // Errors here surface on the client's next call.
        let _ = connection.await;
    });
    Ok(client)
}

/// libpq `key=value` form of `config`.
fn connection_string(config: &Config, with_password: bool) -> String {
    fn quote(value: &str) -> String {
        if !value.is_empty()
            && !value
                .chars()
                .any(|c| c.is_whitespace() || c == '\'' || c == '\\')
        {
            return value.to_owned();
        }
        let mut out = String::with_capacity(value.len() + 2);
        out.push('\'');
        for c in value.chars() {
            if c == '\'' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('\'');
        out
    }

    let mut parts = Vec::new();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path.to_string_lossy().into_owned(),
        })
        .collect();
    if !hosts.is_empty() {
        parts.push(format!("host={}", quote(&hosts.join(","))));
    }
    let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
    if !ports.is_empty() {
        parts.push(format!("port={}", ports.join(",")));
    }
    if let Some(user) = config.get_user() {
        parts.push(format!("user={}", quote(user)));
    }
    if with_password {
        if let Some(password) = config.get_password() {
            parts.push(format!(
                "password={}",
                quote(&String::from_utf8_lossy(password))
            ));
        }
    }
    if let Some(dbname) = config.get_dbname() {
        parts.push(format!("dbname={}", quote(dbname)));
    }
    if let Some(options) = config.get_options() {
        parts.push(format!("options={}", quote(options)));
    }
    if let Some(name) = config.get_application_name() {
        parts.push(format!("application_name={}", quote(name)));
    }
    parts.join(" ")
}

/// What a dropped `TestDb` leaves to clean up.
struct Cleanup {
    /// Where to connect to drop it.
    admin: Config,
    target: Target,
    /// Whether `Drop` waits for it (with `DATABASE_URL`, which outlives the process; the local
    /// cluster is deleted at exit anyway).
    wait: bool,
}

enum Target {
    Database(String),
    Schema(String),
}

/// How long a dropped `TestDb` waits for its database to be dropped on a `DATABASE_URL` server.
const CLEANUP_WAIT: Duration = Duration::from_secs(10);

impl Cleanup {
    /// Hands the cleanup to the janitor thread; waits (bounded) when `wait` is set.
    fn run(self) {
        let Some(janitor) = janitor() else {
            return;
        };
        if self.wait {
            let (done, finished) = mpsc::sync_channel(1);
            if janitor.send((self, Some(done))).is_ok() {
                let _ = finished.recv_timeout(CLEANUP_WAIT);
            }
        } else {
            let _ = janitor.send((self, None));
        }
    }

    /// Drops the database or schema (best effort).
    async fn execute(self) {
        let Ok(client) = connect_with(&self.admin).await else {
            return;
        };
        match self.target {
            Target::Database(name) => {
                let force = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                if let Err(e) = client.batch_execute(&force).await {
                    // Servers before 13 have no FORCE.
                    if e.code() == Some(&SqlState::SYNTAX_ERROR) {
                        let _ = client
                            .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
                            .await;
                    }
                }
            }
            Target::Schema(name) => {
                let _ = client
                    .execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE application_name = $1 AND pid <> pg_backend_pid()",
                        &[&name],
                    )
                    .await;
                let _ = client
                    .batch_execute(&format!(
                        "SET lock_timeout = '5s'; DROP SCHEMA IF EXISTS {name} CASCADE"
                    ))
                    .await;
            }
        }
    }
}

type Job = (Cleanup, Option<mpsc::SyncSender<()>>);

/// The janitor: one thread with its own runtime that drops what dropped `TestDb`s leave, so
/// `Drop` never needs the (possibly single-threaded, possibly ending) runtime of the test.
/// Jobs run concurrently: `DROP DATABASE .. WITH (FORCE)` waits at least 100 ms for the
/// sessions it ends.
static JANITOR: Mutex<Option<tokio::sync::mpsc::UnboundedSender<Job>>> = Mutex::new(None);

fn janitor() -> Option<tokio::sync::mpsc::UnboundedSender<Job>> {
    let mut janitor = JANITOR.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(sender) = &*janitor {
        return Some(sender.clone());
    }
    let (sender, mut jobs) = tokio::sync::mpsc::unbounded_channel::<Job>();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    std::thread::Builder::new()
        .name("pgbulk-testkit-janitor".to_owned())
        .spawn(move || {
            runtime.block_on(async move {
                while let Some((cleanup, done)) = jobs.recv().await {
                    tokio::spawn(async move {
                        cleanup.execute().await;
                        if let Some(done) = done {
                            let _ = done.send(());
                        }
                    });
                }
            });
        })
        .ok()?;
    *janitor = Some(sender.clone());
    Some(sender)
}
