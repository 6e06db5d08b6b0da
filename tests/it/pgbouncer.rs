//! Through PgBouncer in transaction pooling mode: `copy_in`, `copy_out`, `copy_in_returning` and
//! `upsert_via_staging` on a `Transaction`, and `copy_out_parallel` (each part its own transaction).
//!
//! The constraint this shows: in transaction pooling mode a client gets a server connection
//! only for the length of a transaction, and pgbulk's describe step prepares a *named*
//! statement (tokio-postgres' `prepare`). Inside one transaction that is the same server
//! connection, so everything works; outside one, the named statement may land on another
//! client's server connection. Use a `Transaction` through PgBouncer in transaction mode.
//!
//! PgBouncer (the Debian package `pgbouncer`; `.ci/run` installs it) runs in front of the
//! test server on a unix socket in its own temporary directory, as the `postgres` user when
//! the tests run as root (it refuses to run as root). A `sh` watchdog owns it: the watchdog
//! reads its stdin, a pipe from this process, until end of file — when the test ends, or
//! when this process exits however it exits — then stops PgBouncer and removes the directory.

use crate::upsert::staging_tables;
use crate::{count, db};
use pgbulk::{BulkExt, CopyRow};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_postgres::config::Host;

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "events")]
struct Event {
    #[copy(key)]
    id: i64,
    kind: String,
    payload: Vec<u8>,
}

#[derive(CopyRow, Debug, Clone, PartialEq)]
struct Serial {
    seq: i64,
    id: i64,
}

fn event(id: i64) -> Event {
    Event {
        id,
        kind: format!("kind {}", id % 7),
        payload: id.to_be_bytes().to_vec(),
    }
}

const WATCHDOG: &str = r#"
dir=$1; bin=$2
"$bin" "$dir/pgbouncer.ini" </dev/null >>"$dir/pgbouncer.out" 2>&1 &
pid=$!
cat >/dev/null
kill -TERM "$pid" 2>/dev/null
i=0
while kill -0 "$pid" 2>/dev/null; do
  i=$((i + 1))
  if [ "$i" -eq 40 ]; then kill -KILL "$pid" 2>/dev/null; fi
  if [ "$i" -ge 80 ]; then break; fi
  sleep 0.05
done
wait "$pid" 2>/dev/null
rm -rf "$dir"
"#;

/// A running PgBouncer; dropping it stops it and removes its directory.
struct PgBouncer {
    dir: PathBuf,
    port: u16,
    watchdog: Child,
    stdin: Option<ChildStdin>,
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.watchdog.wait();
    }
}

fn find_pgbouncer() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([
            "/usr/sbin".into(),
            "/usr/bin".into(),
            "/usr/local/bin".into(),
        ])
        .map(|d| d.join("pgbouncer"))
        .find(|p| p.is_file())
}

/// uid and gid of the `postgres` user, when this process runs as root.
fn run_as() -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt as _;
    if std::fs::metadata("/proc/self").ok()?.uid() != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 4 || f[0] != "postgres" {
            return None;
        }
        Some((f[2].parse().ok()?, f[3].parse().ok()?))
    })
}

impl PgBouncer {
    /// Starts PgBouncer in transaction pooling mode in front of the testkit's server.
    fn start() -> PgBouncer {
        // One directory per PgBouncer: tests in this process may each run their own.
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let bin = find_pgbouncer().expect(
            "pgbouncer not found: install it (Debian/Ubuntu: apt-get install pgbouncer; .ci/run \
             does) to run the PgBouncer test",
        );
        let info = pgbulk::testkit::server_info().unwrap();
        let (host, port) = match &info.socket_dir {
            Some(dir) => (dir.to_string_lossy().into_owned(), info.port),
            None => match info.config.get_hosts().first() {
                Some(Host::Tcp(h)) => (h.clone(), info.port),
                Some(Host::Unix(p)) => (p.to_string_lossy().into_owned(), info.port),
                None => ("localhost".to_owned(), info.port),
            },
        };
        let user = info.config.get_user().unwrap_or("postgres").to_owned();
        let password = info
            .config
            .get_password()
            .map(|p| format!(" password={}", String::from_utf8_lossy(p)))
            .unwrap_or_default();
        let owner = run_as();
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("pgbulk-pgbouncer-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // A port number only names the socket file: it lives in our own directory.
        let listen = 6432;
        let ini = format!(
            "[databases]\n\
             * = host={host} port={port} user={user}{password}\n\
             [pgbouncer]\n\
             listen_addr =\n\
             listen_port = {listen}\n\
             unix_socket_dir = {dir}\n\
             auth_type = trust\n\
             auth_file = {dir}/userlist.txt\n\
             admin_users = {user}\n\
             pool_mode = transaction\n\
             max_client_conn = 50\n\
             default_pool_size = 2\n\
             ignore_startup_parameters = extra_float_digits\n\
             logfile = {dir}/pgbouncer.log\n",
            dir = dir.display()
        );
        std::fs::write(dir.join("pgbouncer.ini"), ini).unwrap();
        std::fs::write(dir.join("userlist.txt"), format!("\"{user}\" \"\"\n")).unwrap();
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(WATCHDOG)
            .arg("pgbulk-pgbouncer-watchdog")
            .arg(&dir)
            .arg(&bin)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        if let Some((uid, gid)) = owner {
            for entry in ["", "pgbouncer.ini", "userlist.txt"] {
                std::os::unix::fs::chown(dir.join(entry), Some(uid), Some(gid)).unwrap();
            }
            cmd.uid(uid).gid(gid);
        }
        let mut watchdog = cmd.spawn().unwrap();
        let stdin = watchdog.stdin.take();
        PgBouncer {
            dir,
            port: listen,
            watchdog,
            stdin,
        }
    }

    fn config(&self, dbname: &str) -> tokio_postgres::Config {
        let user = pgbulk::testkit::server_info()
            .ok()
            .and_then(|i| i.config.get_user().map(str::to_owned))
            .unwrap_or_else(|| "postgres".into());
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(&self.dir)
            .port(self.port)
            .user(&user)
            .dbname(dbname);
        config
    }

    fn log(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        read(&self.dir.join("pgbouncer.out")) + &read(&self.dir.join("pgbouncer.log"))
    }

    /// Connects through PgBouncer, retrying while it starts.
    async fn connect(&self, dbname: &str) -> tokio_postgres::Client {
        let started = Instant::now();
        loop {
            match self.config(dbname).connect(tokio_postgres::NoTls).await {
                Ok((client, connection)) => {
                    tokio::spawn(connection);
                    return client;
                }
                Err(e) if started.elapsed() > Duration::from_secs(20) => {
                    panic!("cannot connect through PgBouncer: {e}\n{}", self.log())
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

#[tokio::test]
async fn copy_and_upsert_on_a_transaction_through_pgbouncer() {
    let db = db().await;
    db.client()
        .batch_execute(
            "CREATE TABLE events (id int8 PRIMARY KEY, kind text NOT NULL, payload bytea, \
             seq bigserial NOT NULL)",
        )
        .await
        .unwrap();
    let bouncer = tokio::task::spawn_blocking(PgBouncer::start).await.unwrap();
    let mut client = bouncer.connect(db.dbname()).await;
    // It really is PgBouncer, in transaction pooling mode: ask its admin console.
    let admin = bouncer.connect("pgbouncer").await;
    let pool_mode = admin
        .simple_query("SHOW CONFIG")
        .await
        .unwrap()
        .into_iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) if r.get("key") == Some("pool_mode") => {
                r.get("value").map(str::to_owned)
            }
            _ => None,
        });
    assert_eq!(pool_mode.as_deref(), Some("transaction"));
    drop(admin);

    let rows: Vec<Event> = (0..5000).map(event).collect();
    let tx = client.transaction().await.unwrap();
    assert_eq!(tx.bulk().copy_in(&rows[..3000]).await.unwrap(), 3000);
    let back = tx.bulk().copy_out::<Event>().collect_vec().await.unwrap();
    assert_eq!(back.len(), 3000);
    let mut changed = rows.clone();
    changed[10].kind = "changed".into();
    let counts = tx.bulk().upsert_via_staging(&changed).await.unwrap();
    assert_eq!(
        (counts.inserted, counts.updated, counts.unchanged),
        (2000, 1, 2999)
    );
    let serials: Vec<Serial> = tx
        .bulk()
        .copy_in_returning::<Serial, _, _>((5000..5100).map(event))
        .in_input_order()
        .await
        .unwrap();
    assert_eq!(serials.len(), 100);
    assert!(serials
        .windows(2)
        .all(|w| w[0].seq < w[1].seq && w[0].id + 1 == w[1].id));
    tx.commit().await.unwrap();

    // Committed, seen from a direct connection; no staging table anywhere.
    assert_eq!(count(&db, "events").await, 5100);
    let kind: String = db
        .client()
        .query_one("SELECT kind FROM events WHERE id = 10", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(kind, "changed");
    assert_eq!(staging_tables(&db).await, 0);

    // A second transaction on the same PgBouncer client, possibly another server connection.
    let tx = client.transaction().await.unwrap();
    let again = tx.bulk().upsert_via_staging(&changed).await.unwrap();
    assert_eq!(again.unchanged, 5000);
    tx.commit().await.unwrap();

    drop(client);
    let dir = bouncer.dir.clone();
    drop(bouncer);
    assert!(!dir.exists(), "the watchdog removes PgBouncer's directory");
}

/// `copy_out_parallel` through PgBouncer in transaction mode: every part runs inside its own
/// transaction, so each holds one server connection for the read and the snapshot import
/// lands where the read runs — the right rows, not a silently different snapshot.
#[tokio::test]
async fn parallel_read_through_pgbouncer_reads_one_snapshot() {
    let db = db().await;
    db.client()
        .batch_execute(
            "CREATE TABLE events (id int8 PRIMARY KEY, kind text NOT NULL, payload bytea); \
             INSERT INTO events SELECT g, 'kind ' || g % 7, int8send(g) \
             FROM generate_series(0, 9999) g",
        )
        .await
        .unwrap();
    let bouncer = tokio::task::spawn_blocking(PgBouncer::start).await.unwrap();
    // Two clients: the pool has two server connections (`default_pool_size = 2`).
    let a = bouncer.connect(db.dbname()).await;
    let b = bouncer.connect(db.dbname()).await;
    let clients = [&a, &b];
    let mut read = pgbulk::copy_out_parallel(&clients);
    if crate::server::version_num_of(&db).await < 140_000 {
        // No block split before PostgreSQL 14 (no TID range scans): split by key instead.
        read = read.key_ranges("id", [5_000]);
    }
    let mut rows = read.collect_vec::<Event>().await.unwrap();
    rows.sort_by_key(|e| e.id);
    assert_eq!(rows, (0..10_000).map(event).collect::<Vec<_>>());
    // Both PgBouncer clients are out of their transactions and usable (in a transaction, as
    // pgbulk's describe step needs through PgBouncer; see the top of this file).
    for mut c in [a, b] {
        let tx = c.transaction().await.unwrap();
        let back = tx.bulk().copy_out::<Event>().collect_vec().await.unwrap();
        assert_eq!(back.len(), 10_000);
        tx.commit().await.unwrap();
    }
}
