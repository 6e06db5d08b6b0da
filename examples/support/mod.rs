//! Shared by the examples: where the database comes from, and how much memory was used.
//!
//! Each example includes this file with `#[path = "support/mod.rs"] mod support;` and uses the
//! parts it needs.
#![allow(dead_code)] // not every example uses every helper

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};

/// The examples' error type.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The database an example runs against.
pub enum Database {
    /// A server named by a connection string (`DATABASE_URL` or a flag).
    Url(tokio_postgres::Client),
    /// A throwaway cluster from the local PostgreSQL binaries, removed when the example exits.
    Throwaway(Box<pgbulk::testkit::TestDb>),
}

impl Database {
    /// Connects to `url` if given, else starts a throwaway PostgreSQL (`pgbulk::testkit`),
    /// saying which on stderr.
    pub async fn connect(url: Option<&str>) -> Result<Self, BoxError> {
        if let Some(url) = url {
            eprintln!("using the database from the connection string");
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    eprintln!("connection error: {e}");
                }
            });
            Ok(Database::Url(client))
        } else {
            eprintln!("no DATABASE_URL: starting a throwaway PostgreSQL (pgbulk::testkit)");
            Ok(Database::Throwaway(Box::new(
                pgbulk::testkit::TestDb::new().await?,
            )))
        }
    }

    /// [`Database::connect`] with `DATABASE_URL` if it is set.
    pub async fn from_env() -> Result<Self, BoxError> {
        Self::connect(std::env::var("DATABASE_URL").ok().as_deref()).await
    }

    /// Whether this is the user's own server (so the example drops what it created).
    pub fn is_users(&self) -> bool {
        matches!(self, Database::Url(_))
    }
}

impl Deref for Database {
    type Target = tokio_postgres::Client;

    fn deref(&self) -> &tokio_postgres::Client {
        match self {
            Database::Url(client) => client,
            Database::Throwaway(db) => db.client(),
        }
    }
}

/// Peak resident memory of this process in MiB (Linux: `VmHWM` of `/proc/self/status`).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

impl DerefMut for Database {
    fn deref_mut(&mut self) -> &mut tokio_postgres::Client {
        match self {
            Database::Url(client) => client,
            Database::Throwaway(db) => db.client_mut(),
        }
    }
}

/// An example's exit: its error on stderr and a failing exit code. Display, not Debug:
/// pgbulk's errors are sentences naming the row (and the input line), meant for a person.
pub fn exit(result: Result<(), BoxError>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The input file and its size: `file` if given, else `rows` rows written by `generate` into
/// `dir/name` (a demo input).
pub fn input_or_demo<N: std::fmt::Display + Copy>(
    file: Option<PathBuf>,
    dir: &Path,
    name: &str,
    rows: N,
    generate: impl FnOnce(&Path, N) -> Result<(), BoxError>,
) -> Result<(PathBuf, u64), BoxError> {
    let path = if let Some(file) = file {
        file
    } else {
        let path = dir.join(name);
        eprintln!("generating {rows} rows into {}", path.display());
        generate(&path, rows)?;
        path
    };
    let size = std::fs::metadata(&path)?.len();
    Ok((path, size))
}
