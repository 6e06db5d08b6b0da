//! `TCP_NODELAY` on the socket of a sqlx connection.
//!
//! # Why
//!
//! sqlx 0.9 never sets `TCP_NODELAY`, and `PgCopyIn` writes the last `CopyData` and the
//! `CopyDone` that ends the COPY in two separate writes (`send` and `finish` each flush). With
//! Nagle's algorithm on, the kernel holds the small `CopyDone` back until the segment before it
//! is acknowledged, and the server, which has nothing to send until the COPY ends, delays that
//! ACK: every `COPY .. FROM STDIN` of a few hundred rows over TCP then takes about 40-48 ms on
//! Linux, whatever its size (measured: 48 ms for 5 or 500 rows over loopback TCP, 0.07 ms and
//! 0.44 ms with `TCP_NODELAY`). A unix socket has no Nagle; tokio-postgres and libpq set
//! `TCP_NODELAY` on every TCP connection.
//!
//! # How
//!
//! The two writes cannot be joined from outside sqlx (its write buffer is private and every
//! public COPY call flushes), and sqlx has neither a connect option for the socket nor a way to
//! reach it. So, on Linux, pgbulk finds the socket itself, once per connection:
//!
//! 1. the server says which client address and port it sees (`inet_client_addr()`,
//!    `inet_client_port()`; `NULL` on a unix socket, where there is nothing to do);
//! 2. each socket of this process is duplicated with `pidfd_getfd(2)` (a process may always
//!    duplicate its own descriptors; the duplicate shares the socket), and the one whose local
//!    address is that address and port gets `TCP_NODELAY`.
//!
//! "Once per connection": the query is kept in sqlx's statement cache, whose size
//! ([`Connection::cached_statements_size`](::sqlx::Connection::cached_statements_size)) grows
//! the first time it is prepared on a connection; later calls cost nothing. When the client's
//! address is not the one the server sees (a pooler such as PgBouncer, or NAT, in between),
//! when `pidfd_getfd` is refused (kernels before 5.6, a seccomp profile), or on other systems,
//! nothing changes and the COPY still works, at sqlx's usual speed.

use ::sqlx::postgres::PgConnection;
use ::sqlx::{Connection as _, Executor as _, SqlSafeStr as _};

/// The marker query: the client's address and port as the server sees them.
const CLIENT_ADDRESS: &str =
    "SELECT host(inet_client_addr()), inet_client_port() /* pgbulk: TCP_NODELAY */";

/// Sets `TCP_NODELAY` on `conn`'s socket the first time it is called for that connection (see
/// the module docs). Returns whether it set it now.
pub(crate) async fn ensure(conn: &mut PgConnection) -> Result<bool, ::sqlx::Error> {
    let before = conn.cached_statements_size();
    (&mut *conn).prepare(CLIENT_ADDRESS.into_sql_str()).await?;
    let after = conn.cached_statements_size();
    if after > 0 && after == before {
        // Prepared before on this connection: done then.
        return Ok(false);
    }
    let (host, port): (Option<String>, Option<i32>) = ::sqlx::query_as(CLIENT_ADDRESS)
        .fetch_one(&mut *conn)
        .await?;
    let (Some(host), Some(port)) = (host, port) else {
        return Ok(false); // a unix socket
    };
    let (Ok(ip), Ok(port)) = (host.parse::<std::net::IpAddr>(), u16::try_from(port)) else {
        return Ok(false);
    };
    Ok(set_on_local(std::net::SocketAddr::new(ip, port)))
}

/// The client's address as the server sees it (`None` on a unix socket). Its own statement
/// text: [`CLIENT_ADDRESS`] in sqlx's cache is what [`ensure`] looks for.
#[cfg(all(test, feature = "testkit"))]
async fn client_address(conn: &mut PgConnection) -> Option<std::net::SocketAddr> {
    let (host, port): (Option<String>, Option<i32>) =
        ::sqlx::query_as("SELECT host(inet_client_addr()), inet_client_port()")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    Some(std::net::SocketAddr::new(
        host?.parse().unwrap(),
        u16::try_from(port?).unwrap(),
    ))
}

/// Sets `TCP_NODELAY` on this process's socket bound to `local`; whether one was found.
#[cfg(target_os = "linux")]
fn set_on_local(local: std::net::SocketAddr) -> bool {
    socket_bound_to(local).is_some_and(|s| rustix::net::sockopt::set_tcp_nodelay(&s, true).is_ok())
}

/// A duplicate of this process's socket whose local address is `local`, if there is one and
/// `pidfd_getfd` is allowed.
#[cfg(target_os = "linux")]
fn socket_bound_to(local: std::net::SocketAddr) -> Option<rustix::fd::OwnedFd> {
    use rustix::process::{getpid, pidfd_getfd, pidfd_open, PidfdFlags, PidfdGetfdFlags};
    use std::os::unix::ffi::OsStrExt as _;

    let pidfd = pidfd_open(getpid(), PidfdFlags::empty()).ok()?;
    let dir = std::fs::read_dir("/proc/self/fd").ok()?;
    for entry in dir.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        match std::fs::read_link(entry.path()) {
            Ok(target) if target.as_os_str().as_bytes().starts_with(b"socket:") => {}
            _ => continue,
        }
        let Ok(dup) = pidfd_getfd(&pidfd, fd, PidfdGetfdFlags::empty()) else {
            continue;
        };
        let Ok(addr) = rustix::net::getsockname(&dup) else {
            continue;
        };
        let Ok(addr) = std::net::SocketAddr::try_from(addr) else {
            continue;
        };
        if addr.port() == local.port() && addr.ip().to_canonical() == local.ip().to_canonical() {
            return Some(dup);
        }
    }
    None
}

/// Other systems: sqlx's socket cannot be reached.
#[cfg(not(target_os = "linux"))]
fn set_on_local(_local: std::net::SocketAddr) -> bool {
    false
}

#[cfg(all(test, feature = "testkit", target_os = "linux"))]
mod tests {
    use super::{client_address, ensure, socket_bound_to};
    use crate::testkit::{sqlx_options, TestDb};
    use ::sqlx::Connection as _;

    /// Whether the socket bound to `local` has `TCP_NODELAY`.
    fn nodelay(local: std::net::SocketAddr) -> bool {
        let socket = socket_bound_to(local).expect("the connection's socket is found");
        rustix::net::sockopt::tcp_nodelay(&socket).unwrap()
    }

    #[tokio::test]
    async fn sets_nodelay_once_per_tcp_connection() {
        let db = TestDb::new().await.unwrap();
        let tcp = db.tcp_config().expect("the testkit server listens on TCP");
        let mut a = ::sqlx::PgConnection::connect_with(&sqlx_options(&tcp))
            .await
            .unwrap();
        let mut b = ::sqlx::PgConnection::connect_with(&sqlx_options(&tcp))
            .await
            .unwrap();
        let (addr_a, addr_b) = (
            client_address(&mut a).await.unwrap(),
            client_address(&mut b).await.unwrap(),
        );
        assert!(!nodelay(addr_a), "sqlx leaves Nagle on");
        assert!(ensure(&mut a).await.unwrap(), "set on first use");
        assert!(nodelay(addr_a));
        assert!(!nodelay(addr_b), "only the connection it was given");
        assert!(!ensure(&mut a).await.unwrap(), "once per connection");
        assert!(ensure(&mut b).await.unwrap());
        assert!(nodelay(addr_b));

        // A unix socket: nothing to do, and the connection still works.
        let mut unix = ::sqlx::PgConnection::connect_with(&db.sqlx_options())
            .await
            .unwrap();
        assert!(client_address(&mut unix).await.is_none());
        assert!(!ensure(&mut unix).await.unwrap());
        unix.ping().await.unwrap();
    }
}
