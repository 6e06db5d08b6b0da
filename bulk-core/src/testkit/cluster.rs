//! The throwaway local cluster: finding the server binaries, `initdb`, the watchdog that owns
//! the server process, and waiting until the server accepts connections.
//!
//! # Lifetime
//!
//! No server may outlive the process that started it, even when that process is killed with
//! `SIGKILL` or leaves through `std::process::exit` (as the libtest harness does, without
//! dropping statics). `unsafe_code` is forbidden, so there is no `atexit` handler. Instead a
//! small `sh` watchdog is spawned right after the temporary directory exists, in its own process
//! group (terminal signals do not reach it) and with null stdout/stderr (it never holds a pipe
//! that `cargo test` waits on). Its stdin is a pipe whose only write end stays in this process
//! (std creates it close-on-exec, so no other child inherits it). The watchdog:
//!
//! 1. waits for the line `start`, then starts `postgres` as its own child (so it can reap it;
//!    an orphaned server would otherwise become a zombie of PID 1);
//! 2. reads its stdin until end of file, which happens the moment this process exits, for any
//!    reason, or [`Cluster::stop`] closes the pipe;
//! 3. sends `SIGQUIT` (immediate shutdown) to the server, `SIGKILL` after 10 s, waits for it,
//!    and removes the whole temporary directory.
//!
//! When this process runs as root, the directory is handed to the `postgres` user and initdb, the
//! watchdog and the server run as that user (PostgreSQL refuses to run as root).

use std::fmt::Write as _;
use std::fs;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Error;

/// The superuser `initdb` creates.
pub(super) const SUPERUSER: &str = "postgres";

/// How long the server may take to accept connections after `initdb`.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest unix socket path (`sun_path` is 108 bytes on Linux, 104 on macOS, with the NUL).
const MAX_SOCKET_PATH: usize = 103;

/// Environment variables that would change what `initdb` or `postgres` do.
const SCRUBBED_ENV: &[&str] = &[
    "PGDATA",
    "PGPORT",
    "PGHOST",
    "PGHOSTADDR",
    "PGOPTIONS",
    "PGUSER",
    "PGDATABASE",
    "PGDATESTYLE",
    "PGCLIENTENCODING",
    "PGTZ",
];

/// The watchdog, run as `sh -c WATCHDOG pgbulk-testkit-watchdog DIR POSTGRES DATA`.
const WATCHDOG: &str = r#"
dir=$1; postgres=$2; data=$3
alive() {
  if [ -r "/proc/$1/status" ]; then
    ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
  else
    kill -0 "$1" 2>/dev/null
  fi
}
if read -r cmd && [ "$cmd" = start ]; then
  "$postgres" -D "$data" </dev/null >>"$dir/postgres.log" 2>&1 &
  pg=$!
  echo "$pg" >"$dir/watchdog-postgres.pid"
  cat >/dev/null
  kill -QUIT "$pg" 2>/dev/null
  i=0
  while alive "$pg"; do
    i=$((i + 1))
    if [ "$i" -eq 200 ]; then kill -KILL "$pg" 2>/dev/null; fi
    if [ "$i" -ge 400 ]; then break; fi
    sleep 0.05
  done
  wait "$pg" 2>/dev/null
fi
rm -rf "$dir"
"#;

/// What differs between the servers the testkit starts: the plain throwaway cluster, or a node
/// of a Citus cluster (which preloads the extension).
pub(super) struct Node {
    /// Lines appended to `postgresql.conf` after the testkit's own.
    pub(super) settings: &'static str,
    /// A server library (`<name>.so` in `pg_config --pkglibdir`) the binaries must come with:
    /// only an installation that has it is used.
    pub(super) library: Option<&'static str>,
}

impl Node {
    /// The plain throwaway cluster: no extra settings, any installation.
    pub(super) const PLAIN: Node = Node {
        settings: "",
        library: None,
    };
}

/// A running throwaway cluster.
pub(super) struct Cluster {
    /// The temporary directory holding everything: `data/`, the socket, `postgres.log`.
    pub(super) dir: PathBuf,
    /// The data directory (`dir/data`).
    pub(super) data_dir: PathBuf,
    /// Where `initdb` and `postgres` were found.
    pub(super) bin_dir: PathBuf,
    /// The server's log.
    pub(super) log_file: PathBuf,
    /// The port: the server also listens on `127.0.0.1` there (a free port when the cluster
    /// started), and it is the number in the unix socket's file name.
    pub(super) port: u16,
    /// The watchdog; `None` once stopped.
    watchdog: Mutex<Option<Watchdog>>,
}

/// The watchdog process and the write end of its stdin pipe.
struct Watchdog {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Watchdog {
    /// Closes the pipe and waits until the watchdog has stopped the server and removed the files.
    fn finish(mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

impl Cluster {
    /// Finds the binaries, runs `initdb`, starts the server and waits until it is ready.
    pub(super) fn start(node: &Node) -> Result<Cluster, Error> {
        let bin_dir = find_bin_dir(node.library)?;
        let owner = if is_root() {
            Some(lookup_user(SUPERUSER)?)
        } else {
            None
        };
        let dir = make_dir(owner)?;
        let data_dir = dir.join("data");
        let log_file = dir.join("postgres.log");

        let mut watchdog = match spawn_watchdog(&dir, &bin_dir, &data_dir, owner) {
            Ok(w) => w,
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let mut port = 0;
        let result = initdb(&bin_dir, &dir, &data_dir, owner)
            .and_then(|()| {
                port = free_port()?;
                write_settings(&dir, &data_dir, port, node.settings)
            })
            .and_then(|()| {
                let stdin = watchdog.stdin.as_mut().expect("watchdog stdin is open");
                stdin
                    .write_all(b"start\n")
                    .and_then(|()| stdin.flush())
                    .map_err(|e| Error::with("testkit: cannot talk to the watchdog process", e))
            })
            .and_then(|()| wait_ready(&dir, &data_dir, &log_file, &mut watchdog.child));
        if let Err(e) = result {
            watchdog.finish();
            return Err(e);
        }
        Ok(Cluster {
            dir,
            data_dir,
            bin_dir,
            log_file,
            port,
            watchdog: Mutex::new(Some(watchdog)),
        })
    }

    /// Stops the server and removes the directory; waits until both are done.
    pub(super) fn stop(&self) {
        let watchdog = self
            .watchdog
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(w) = watchdog {
            w.finish();
        }
    }

    /// Connection settings for database `dbname` of this cluster.
    pub(super) fn config(&self, dbname: &str) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(&self.dir)
            .port(self.port)
            .user(SUPERUSER)
            .dbname(dbname);
        config
    }

    /// Connection settings for database `dbname` over TCP (`127.0.0.1`).
    pub(super) fn tcp_config(&self, dbname: &str) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(self.port)
            .user(SUPERUSER)
            .dbname(dbname);
        config
    }
}

/// A system user to run the server as: uid and gid.
#[derive(Clone, Copy)]
struct Owner {
    uid: u32,
    gid: u32,
}

/// Runs `cmd` as `owner` when there is one.
fn run_as(cmd: &mut Command, owner: Option<Owner>) -> &mut Command {
    for var in SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    if let Some(o) = owner {
        cmd.uid(o.uid).gid(o.gid);
    }
    cmd
}

/// Whether this process runs with effective uid 0.
fn is_root() -> bool {
    // `/proc/self` belongs to the effective uid; no `unsafe` `geteuid()` needed.
    if let Ok(meta) = fs::metadata("/proc/self") {
        return meta.uid() == 0;
    }
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Looks up `name` in `/etc/passwd`, then with `id`.
fn lookup_user(name: &str) -> Result<Owner, Error> {
    if let Ok(passwd) = fs::read_to_string("/etc/passwd") {
        for line in passwd.lines() {
            let mut fields = line.split(':');
            if fields.next() == Some(name) {
                let uid = fields.nth(1).and_then(|f| f.parse().ok());
                let gid = fields.next().and_then(|f| f.parse().ok());
                if let (Some(uid), Some(gid)) = (uid, gid) {
                    return Ok(Owner { uid, gid });
                }
            }
        }
    }
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, name]).output().ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    match (id("-u"), id("-g")) {
        (Some(uid), Some(gid)) => Ok(Owner { uid, gid }),
        _ => Err(Error::msg(format!(
            "testkit: running as root, and PostgreSQL refuses to run as root, but there is no \
             `{name}` system user to run it as: create one (installing the postgresql package \
             does), run the tests as another user, or set DATABASE_URL"
        ))),
    }
}

/// Finds a directory holding `initdb` and `postgres`: `PG_BIN`, `pg_config --bindir`, `PATH`,
/// then the highest `/usr/lib/postgresql/*/bin` (and a few other usual places).
fn find_bin_dir(library: Option<&str>) -> Result<PathBuf, Error> {
    let has_server = |dir: &Path| {
        dir.join("initdb").is_file()
            && dir.join("postgres").is_file()
            && library.is_none_or(|name| has_library(dir, name))
    };

    if let Some(dir) = std::env::var_os("PG_BIN").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        if has_server(&dir) {
            return Ok(dir);
        }
        return Err(Error::msg(match library {
            Some(name) => format!(
                "testkit: PG_BIN={} does not contain both `initdb` and `postgres`, or its \
                 installation has no `{name}` library",
                dir.display()
            ),
            None => format!(
                "testkit: PG_BIN={} does not contain both `initdb` and `postgres`",
                dir.display()
            ),
        }));
    }

    if let Ok(out) = Command::new("pg_config")
        .arg("--bindir")
        .stderr(Stdio::null())
        .output()
    {
        if out.status.success() {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if has_server(&dir) {
                return Ok(dir);
            }
        }
    }

    if let Some(path) = std::env::var_os("PATH") {
        if let Some(dir) = std::env::split_paths(&path).find(|d| has_server(d)) {
            return Ok(dir);
        }
    }

    // Debian/Ubuntu: /usr/lib/postgresql/<version>/bin; RHEL: /usr/pgsql-<version>/bin.
    let mut candidates: Vec<(Vec<u32>, PathBuf)> = Vec::new();
    for (parent, prefix, suffix) in [
        ("/usr/lib/postgresql", "", "bin"),
        ("/usr", "pgsql-", "bin"),
    ] {
        let Ok(entries) = fs::read_dir(parent) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(version) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
                continue;
            };
            let Some(key) = version
                .split('.')
                .map(|p| p.parse().ok())
                .collect::<Option<Vec<u32>>>()
            else {
                continue;
            };
            let dir = entry.path().join(suffix);
            if has_server(&dir) {
                candidates.push((key, dir));
            }
        }
    }
    candidates.sort();
    if let Some((_, dir)) = candidates.pop() {
        return Ok(dir);
    }
    let fixed = Path::new("/usr/local/pgsql/bin");
    if has_server(fixed) {
        return Ok(fixed.to_path_buf());
    }

    if let Some(name) = library {
        return Err(Error::msg(format!(
            "testkit: no PostgreSQL installation with the `{name}` server library found: install \
             {name} for the local PostgreSQL or set PG_BIN to the binaries of one that has it \
             (looked at PG_BIN, `pg_config --bindir`, PATH, /usr/lib/postgresql/*/bin, \
             /usr/pgsql-*/bin and /usr/local/pgsql/bin)"
        )));
    }
    Err(Error::msg(
        "PostgreSQL server binaries not found: install postgresql or set PG_BIN / DATABASE_URL \
         (looked at PG_BIN, `pg_config --bindir`, PATH, /usr/lib/postgresql/*/bin, \
         /usr/pgsql-*/bin and /usr/local/pgsql/bin for `initdb` and `postgres`)",
    ))
}

/// Whether the installation of the server binaries in `bin_dir` has the server library `name`:
/// `<name>.so` in its `pg_config --pkglibdir` (or, without a `pg_config` there, in `../lib`).
fn has_library(bin_dir: &Path, name: &str) -> bool {
    let pkglibdir = Command::new(bin_dir.join("pg_config"))
        .arg("--pkglibdir")
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map_or_else(
            || bin_dir.join("../lib"),
            |out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()),
        );
    pkglibdir.join(format!("{name}.so")).is_file()
}

/// Whether a user can search (traverse) `dir` and all its ancestors.
fn traversable(dir: &Path, owner: Owner) -> bool {
    dir.ancestors().all(|d| {
        let Ok(meta) = fs::metadata(d) else {
            return false;
        };
        let mode = meta.permissions().mode();
        if meta.uid() == owner.uid {
            mode & 0o100 != 0
        } else if meta.gid() == owner.gid {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        }
    })
}

/// Creates the temporary directory (kept: the watchdog removes it), owned by `owner`.
fn make_dir(owner: Option<Owner>) -> Result<PathBuf, Error> {
    // `pgbulk-testkit-XXXXXX/.s.PGSQL.5432` must fit in a unix socket path.
    let fits = |base: &Path| base.as_os_str().len() + 40 <= MAX_SOCKET_PATH;
    let mut base = std::env::temp_dir();
    if !fits(&base) || owner.is_some_and(|o| !traversable(&base, o)) {
        base = PathBuf::from("/tmp");
    }
    let dir = tempfile::Builder::new()
        .prefix("pgbulk-testkit-")
        .tempdir_in(&base)
        .map_err(|e| {
            Error::with(
                format!(
                    "testkit: cannot create a temporary directory in {}",
                    base.display()
                ),
                e,
            )
        })?
        .keep();
    if let Some(o) = owner {
        if let Err(e) = std::os::unix::fs::chown(&dir, Some(o.uid), Some(o.gid)) {
            let _ = fs::remove_dir_all(&dir);
            return Err(Error::with(
                format!(
                    "testkit: cannot hand {} to the `{SUPERUSER}` user",
                    dir.display()
                ),
                e,
            ));
        }
    }
    Ok(dir)
}

/// Spawns the watchdog (see the module docs).
fn spawn_watchdog(
    dir: &Path,
    bin_dir: &Path,
    data_dir: &Path,
    owner: Option<Owner>,
) -> Result<Watchdog, Error> {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(WATCHDOG)
        .arg("pgbulk-testkit-watchdog")
        .arg(dir)
        .arg(bin_dir.join("postgres"))
        .arg(data_dir)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    let mut child = run_as(&mut cmd, owner)
        .spawn()
        .map_err(|e| Error::with("testkit: cannot spawn the watchdog process (`sh`)", e))?;
    let stdin = child.stdin.take();
    Ok(Watchdog { child, stdin })
}

/// Runs `initdb`.
fn initdb(bin_dir: &Path, dir: &Path, data_dir: &Path, owner: Option<Owner>) -> Result<(), Error> {
    let initdb = bin_dir.join("initdb");
    let mut cmd = Command::new(&initdb);
    cmd.arg("-D")
        .arg(data_dir)
        .args([
            "-A",
            "trust",
            "-U",
            SUPERUSER,
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ])
        .current_dir(dir)
        .stdin(Stdio::null());
    let out = run_as(&mut cmd, owner)
        .output()
        .map_err(|e| Error::with(format!("testkit: cannot run {}", initdb.display()), e))?;
    if out.status.success() {
        return Ok(());
    }
    Err(Error::msg(format!(
        "testkit: {} failed ({}):\n{}{}",
        initdb.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )))
}

/// A TCP port on `127.0.0.1` that nothing listens on now (the kernel's choice). Taken right
/// before the server starts, so the window for another process to take it is short.
fn free_port() -> Result<u16, Error> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Error::with("testkit: cannot find a free TCP port on 127.0.0.1", e))
}

/// Appends the test-speed settings to `postgresql.conf`. The server listens on the unix socket
/// in `dir` and on `127.0.0.1:port` (tests of what only TCP shows, such as Nagle's algorithm).
/// `extra` (a node's own settings) comes after the testkit's.
fn write_settings(dir: &Path, data_dir: &Path, port: u16, extra: &str) -> Result<(), Error> {
    let quoted_dir = dir.to_string_lossy().replace('\'', "''");
    let mut settings = String::from(
        "\n# pgbulk testkit: a throwaway cluster, tuned for test speed, never for durability.\n",
    );
    let _ = write!(
        settings,
        "listen_addresses = '127.0.0.1'\n\
         unix_socket_directories = '{quoted_dir}'\n\
         port = {port}\n\
         max_connections = 200\n\
         shared_buffers = 256MB\n\
         fsync = off\n\
         synchronous_commit = off\n\
         full_page_writes = off\n\
         timezone = 'UTC'\n\
         log_timezone = 'UTC'\n{extra}"
    );
    let conf = data_dir.join("postgresql.conf");
    fs::OpenOptions::new()
        .append(true)
        .open(&conf)
        .and_then(|mut f| f.write_all(settings.as_bytes()))
        .map_err(|e| Error::with(format!("testkit: cannot write {}", conf.display()), e))
}

/// Polls `postmaster.pid` until the server reports `ready`, like `pg_ctl -w` but every 10 ms.
fn wait_ready(
    dir: &Path,
    data_dir: &Path,
    log_file: &Path,
    watchdog: &mut Child,
) -> Result<(), Error> {
    let started = Instant::now();
    let pid_file = data_dir.join("postmaster.pid");
    let spawned_file = dir.join("watchdog-postgres.pid");
    loop {
        if let Ok(contents) = fs::read_to_string(&pid_file) {
            if contents.lines().nth(7).map(str::trim) == Some("ready") {
                return Ok(());
            }
        }
        let failure = if let Ok(Some(status)) = watchdog.try_wait() {
            Some(format!("the watchdog process exited ({status})"))
        } else if let Some(pid) = fs::read_to_string(&spawned_file)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        {
            (!process_alive(pid)).then(|| "the server exited during startup".to_owned())
        } else {
            None
        };
        let failure = failure.or_else(|| {
            (started.elapsed() > START_TIMEOUT).then(|| {
                format!(
                    "the server did not accept connections within {} s",
                    START_TIMEOUT.as_secs()
                )
            })
        });
        if let Some(why) = failure {
            return Err(Error::msg(format!(
                "testkit: cannot start PostgreSQL: {why}; end of {}:\n{}",
                log_file.display(),
                log_tail(log_file)
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether `pid` exists and is not a zombie (Linux; elsewhere assume it lives).
fn process_alive(pid: u32) -> bool {
    let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
        return !Path::new("/proc/self").exists();
    };
    !status
        .lines()
        .any(|l| l.starts_with("State:") && l[6..].trim_start().starts_with('Z'))
}

/// The last lines of the server log, for error messages.
fn log_tail(log_file: &Path) -> String {
    let mut text = String::new();
    if fs::File::open(log_file)
        .and_then(|mut f| f.read_to_string(&mut text))
        .is_err()
    {
        return "(no log)".to_owned();
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
