//! The connection a shared test body runs on: one module per async client, with the same names,
//! so that `on_every_client!` (in `main.rs`) can instantiate each body once per client.
//!
//! A body sees its client as `conn` and calls `conn.bulk()` — the one API both clients share — and
//! reaches the few other calls it needs through these functions, on the same connection:
//! `scalar` / `text` (a one-value query), `execute` (statements, simple query protocol),
//! `begin` (a transaction whose `.bulk()`, `.commit()` and `.rollback()` it then calls),
//! `connect` (another connection to the test database), `pool` / `checkout` (a pool of that
//! client's kind), and `after_abandoned_copy` (what a connection is worth after a COPY was
//! dropped half-way; see `KEEPS_SESSION`).
//!
//! Setup and checks of what the database holds go through the test database's own
//! tokio-postgres client (`db.client()`, `crate::count`): another session, which sees only
//! committed data.

/// tokio-postgres: `Client`, `Transaction`, a deadpool pool.
// Each file's bodies use some of these; the compiler sees the rest as unused.
#[allow(dead_code)]
pub mod tokio_postgres {
    use pgbulk::testkit::TestDb;
    pub use pgbulk::BulkExt as _;
    use tokio_postgres::GenericClient;

    /// The client's name, for messages.
    pub const CLIENT: &str = "tokio-postgres";

    /// A connection stays usable after a COPY dropped half-way (tokio-postgres aborts it) or a
    /// `COPY .. TO STDOUT` refused at its start.
    pub const KEEPS_SESSION: bool = true;

    /// What pgbulk's usage errors tell a caller to open a transaction with.
    pub const BEGIN_HINT: &str = "`client.transaction()`";

    pub type Conn = tokio_postgres::Client;
    pub type Pool = deadpool_postgres::Pool;

    /// Another connection to the test database.
    pub async fn connect(db: &TestDb) -> Conn {
        db.connect().await.unwrap()
    }

    /// A transaction on `conn`.
    pub async fn begin(c: &mut Conn) -> tokio_postgres::Transaction<'_> {
        c.transaction().await.unwrap()
    }

    /// The first value of `sql`'s first row, an `int8`.
    pub async fn scalar<C: GenericClient>(c: &mut C, sql: &str) -> pgbulk::Result<i64> {
        Ok(c.query_one(sql, &[]).await?.get(0))
    }

    /// The first value of `sql`'s first row, a `text`.
    pub async fn text<C: GenericClient>(c: &mut C, sql: &str) -> pgbulk::Result<String> {
        Ok(c.query_one(sql, &[]).await?.get(0))
    }

    /// Runs `sql` (one or more statements) with the simple query protocol.
    pub async fn execute<C: GenericClient>(c: &mut C, sql: &str) -> pgbulk::Result<()> {
        Ok(c.batch_execute(sql).await?)
    }

    /// A pool of at most `size` connections to the test database.
    #[allow(clippy::unused_async)] // async as the sqlx twin is: the bodies call both alike
    pub async fn pool(db: &TestDb, size: usize) -> Pool {
        use deadpool_postgres::{Manager, ManagerConfig, RecyclingMethod};
        let manager = Manager::from_config(
            db.config().clone(),
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        Pool::builder(manager).max_size(size).build().unwrap()
    }

    /// One connection out of `pool`.
    pub async fn checkout(pool: &Pool) -> deadpool_postgres::Object {
        pool.get().await.unwrap()
    }

    /// After a COPY on `conn` was dropped half-way: the same connection answers at once.
    pub async fn after_abandoned_copy(c: &mut Conn, _db: &TestDb) {
        assert_eq!(scalar(c, "SELECT 41::int8 + 1").await.unwrap(), 42);
        assert_eq!(scalar(c, "SELECT 43::int8").await.unwrap(), 43);
    }

    /// Whether `conn`'s connection is gone (its backend ended).
    #[allow(clippy::unused_async)] // async as the sqlx twin is: the bodies call both alike
    pub async fn is_gone(c: &mut Conn) -> bool {
        c.is_closed()
    }
}

/// sqlx: `PgConnection`, `Transaction<'_, Postgres>`, a `PgPool`.
#[allow(dead_code)]
pub mod sqlx {
    use pgbulk::testkit::TestDb;
    pub use pgbulk::SqlxBulkExt as _;
    use sqlx::{AssertSqlSafe, Connection as _, PgConnection};

    /// The client's name, for messages.
    pub const CLIENT: &str = "sqlx";

    /// sqlx cannot end a COPY dropped half-way, or take back a `COPY .. TO STDOUT` refused at
    /// its start, in step with the server, so pgbulk ends that session instead (crate docs,
    /// "With sqlx"): the connection reports the lost session.
    pub const KEEPS_SESSION: bool = false;

    /// What pgbulk's usage errors tell a caller to open a transaction with.
    pub const BEGIN_HINT: &str = "`conn.begin()`";

    pub type Conn = PgConnection;
    pub type Pool = sqlx::PgPool;

    /// Another connection to the test database.
    pub async fn connect(db: &TestDb) -> Conn {
        PgConnection::connect_with(&db.sqlx_options())
            .await
            .unwrap()
    }

    /// A transaction on `conn`.
    pub async fn begin(c: &mut Conn) -> sqlx::Transaction<'_, sqlx::Postgres> {
        c.begin().await.unwrap()
    }

    /// The first value of `sql`'s first row, an `int8`.
    pub async fn scalar(c: &mut PgConnection, sql: &str) -> pgbulk::Result<i64> {
        Ok(sqlx::query_scalar(AssertSqlSafe(sql.to_owned()))
            .fetch_one(c)
            .await?)
    }

    /// The first value of `sql`'s first row, a `text`.
    pub async fn text(c: &mut PgConnection, sql: &str) -> pgbulk::Result<String> {
        Ok(sqlx::query_scalar(AssertSqlSafe(sql.to_owned()))
            .fetch_one(c)
            .await?)
    }

    /// Runs `sql` (one or more statements) with the simple query protocol.
    pub async fn execute(c: &mut PgConnection, sql: &str) -> pgbulk::Result<()> {
        sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
            .execute(c)
            .await?;
        Ok(())
    }

    /// A pool of at most `size` connections to the test database.
    pub async fn pool(db: &TestDb, size: u32) -> Pool {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(size)
            .connect_with(db.sqlx_options())
            .await
            .unwrap()
    }

    /// One connection out of `pool`.
    pub async fn checkout(pool: &Pool) -> sqlx::pool::PoolConnection<sqlx::Postgres> {
        pool.acquire().await.unwrap()
    }

    /// After an operation on `conn` was dropped half-way: when the drop caught a COPY in
    /// flight, pgbulk ended the session, so the next call fails; when it fell between
    /// statements (the staged COPY already finished), the session is in step. Either way no
    /// call gets another query's reply; then `conn` is replaced by a new connection for the
    /// rest of the test.
    pub async fn after_abandoned_copy(c: &mut Conn, db: &TestDb) {
        if let Ok(next) = scalar(c, "SELECT 41::int8 + 1").await {
            assert_eq!(
                next, 42,
                "a call after the dropped COPY got another query's reply"
            );
        }
        for v in 100..103_i64 {
            // The server words the end of the session by what it read first (and by version):
            // a later call may read that error or find the connection closed. If it answers,
            // the answer is its own.
            if let Ok(got) = scalar(c, &format!("SELECT {v}::int8")).await {
                assert_eq!(got, v, "a later call got another query's reply");
            }
        }
        *c = connect(db).await;
    }

    /// Whether `conn`'s connection is gone (its backend ended): a query on it fails.
    pub async fn is_gone(c: &mut Conn) -> bool {
        scalar(c, "SELECT 1::int8").await.is_err()
    }
}
