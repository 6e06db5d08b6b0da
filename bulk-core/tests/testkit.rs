//! Tests of the testkit itself, against the real (throwaway or `DATABASE_URL`) server.

use bulk_core::testkit::{self, TestDb};

type Result<T = (), E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

#[tokio::test]
async fn select_version_works() -> Result {
    let db = TestDb::new().await?;
    let version: String = db.client().query_one("SELECT version()", &[]).await?.get(0);
    assert!(version.starts_with("PostgreSQL "), "{version}");
    Ok(())
}

#[tokio::test]
async fn two_testdbs_get_different_databases() -> Result {
    let a = TestDb::new().await?;
    let b = TestDb::new().await?;
    assert_ne!(
        (a.dbname(), a.schema()),
        (b.dbname(), b.schema()),
        "two TestDbs share a database"
    );
    let current = "SELECT current_database() || '/' || current_schema()";
    let in_a: String = a.client().query_one(current, &[]).await?.get(0);
    let in_b: String = b.client().query_one(current, &[]).await?.get(0);
    assert_ne!(in_a, in_b);

    // A table made in one is not visible in the other.
    a.client()
        .batch_execute("CREATE TABLE only_in_a (x int4)")
        .await?;
    let seen: i64 = b
        .client()
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relname = 'only_in_a' \
             AND relnamespace = current_schema()::regnamespace",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(seen, 0);
    Ok(())
}

#[tokio::test]
async fn connect_gives_a_second_working_connection() -> Result {
    let mut db = TestDb::new().await?;
    db.client()
        .batch_execute("CREATE TABLE shared (x int4); INSERT INTO shared VALUES (41)")
        .await?;

    let other = db.connect().await?;
    let pid_a: i32 = db
        .client()
        .query_one("SELECT pg_backend_pid()", &[])
        .await?
        .get(0);
    let pid_b: i32 = other
        .query_one("SELECT pg_backend_pid()", &[])
        .await?
        .get(0);
    assert_ne!(pid_a, pid_b, "connect() reused the first session");
    let x: i32 = other
        .query_one("SELECT x + 1 FROM shared", &[])
        .await?
        .get(0);
    assert_eq!(x, 42);

    // client_mut() is there for transactions.
    let tx = db.client_mut().transaction().await?;
    tx.batch_execute("INSERT INTO shared VALUES (1)").await?;
    tx.rollback().await?;
    let n: i64 = other
        .query_one("SELECT count(*) FROM shared", &[])
        .await?
        .get(0);
    assert_eq!(n, 1);
    Ok(())
}

#[tokio::test]
async fn config_and_connection_string_reach_the_same_database() -> Result {
    let db = TestDb::new().await?;
    let s = db.connection_string();
    assert!(s.contains(&format!("dbname={}", db.dbname())), "{s}");

    let (client, connection) = s
        .parse::<tokio_postgres::Config>()?
        .connect(tokio_postgres::NoTls)
        .await?;
    tokio::spawn(connection);
    let name: String = client
        .query_one("SELECT current_database()", &[])
        .await?
        .get(0);
    assert_eq!(name, db.dbname());

    let (client, connection) = db.config().connect(tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let name: String = client
        .query_one("SELECT current_database()", &[])
        .await?
        .get(0);
    assert_eq!(name, db.dbname());
    Ok(())
}

#[tokio::test]
async fn server_info_describes_the_server() -> Result {
    let db = TestDb::new().await?;
    let info = tokio::task::spawn_blocking(testkit::server_info).await??;
    // Its settings reach the very server the `TestDb` is on, on the port it names.
    let (maintenance, connection) = info.config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let identity =
        "SELECT system_identifier::text, current_setting('port') FROM pg_control_system()";
    let (id, port): (String, String) = {
        let row = maintenance.query_one(identity, &[]).await?;
        (row.get(0), row.get(1))
    };
    let row = db.client().query_one(identity, &[]).await?;
    assert_eq!(
        id,
        row.get::<_, String>(0),
        "server_info names another cluster"
    );
    assert_eq!(port, info.port.to_string());
    assert_eq!(port, row.get::<_, String>(1));

    if std::env::var_os("DATABASE_URL").is_none() {
        let socket_dir = info.socket_dir.expect("local cluster has a socket dir");
        assert!(socket_dir.join(format!(".s.PGSQL.{}", info.port)).exists());
        assert!(info.bin_dir.expect("bin dir").join("postgres").is_file());
        let data_dir = info.data_dir.expect("data dir");
        assert!(data_dir.join("PG_VERSION").is_file());
        let data_dir_setting: String = maintenance
            .query_one("SELECT current_setting('data_directory')", &[])
            .await?
            .get(0);
        assert_eq!(std::path::Path::new(&data_dir_setting), data_dir);
        assert!(info.log_file.expect("log file").is_file());
        assert_eq!(info.config.get_dbname(), Some("postgres"));
    } else {
        // The given server: nothing local to describe, and its database is the URL's.
        assert_eq!(
            (info.socket_dir, info.bin_dir, info.data_dir, info.log_file),
            (None, None, None, None)
        );
        let url = std::env::var("DATABASE_URL")?;
        let given: tokio_postgres::Config = url.parse()?;
        assert_eq!(info.config.get_dbname(), given.get_dbname());
    }
    Ok(())
}

/// Eight tests, each creating a table with the same name in its own database.
macro_rules! parallel_tests {
    ($($name:ident),*) => {$(
        #[tokio::test]
        async fn $name() -> Result {
            let db = TestDb::new().await?;
            db.client()
                .batch_execute(
                    "CREATE TABLE items (id int8 PRIMARY KEY, name text);
                     INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100) g",
                )
                .await?;
            let n: i64 = db.client().query_one("SELECT count(*) FROM items", &[]).await?.get(0);
            assert_eq!(n, 100);
            Ok(())
        }
    )*};
}

parallel_tests!(
    parallel_1, parallel_2, parallel_3, parallel_4, parallel_5, parallel_6, parallel_7, parallel_8
);
