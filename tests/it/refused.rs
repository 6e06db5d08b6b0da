//! A COPY the server refuses at its start (read-only session, no INSERT privilege, row-level
//! security, a generated column) returns the server's error and leaves the client in step: the
//! same client, and a pool's next checkout, runs a query and a further `copy_in` afterwards —
//! on every async client (`on_every_client!`); the prepared COPY, the pools and the sync client
//! are tokio-postgres' own.

use crate::unsized_rows;
use crate::{count, db};
use pgbulk::testkit::TestDb;
use pgbulk::{BulkExt, CopyRow, ErrorKind};
use tokio_postgres::Client;

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "notes")]
struct Note {
    #[copy(key)]
    id: i64,
    body: String,
}

/// A struct with a field for the generated column `notes_gen.twice`.
#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "notes_gen")]
struct WithGenerated {
    id: i64,
    twice: i64,
}

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "ok")]
struct Good {
    id: i64,
}

fn notes(n: i64) -> Vec<Note> {
    (0..n)
        .map(|id| Note {
            id,
            body: format!("note {id}"),
        })
        .collect()
}

/// The ways the server refuses a COPY into `notes` at its start, each with the statements
/// that set it up and undo it on the session.
#[derive(Clone, Copy, Debug)]
enum Refusal {
    ReadOnly,
    NoInsertPrivilege,
    RowLevelSecurity,
    GeneratedColumn,
}

const ALL: [Refusal; 4] = [
    Refusal::ReadOnly,
    Refusal::NoInsertPrivilege,
    Refusal::RowLevelSecurity,
    Refusal::GeneratedColumn,
];

impl Refusal {
    /// Session statements that make the next COPY into `notes` (or `notes_gen`) be refused.
    fn enter(self, role: &str) -> String {
        match self {
            Refusal::ReadOnly => "SET default_transaction_read_only = on".into(),
            Refusal::NoInsertPrivilege => format!("SET ROLE {role}_reader"),
            Refusal::RowLevelSecurity => format!("SET ROLE {role}_writer"),
            Refusal::GeneratedColumn => String::new(),
        }
    }

    fn leave(self) -> &'static str {
        match self {
            Refusal::ReadOnly => "RESET default_transaction_read_only",
            Refusal::NoInsertPrivilege | Refusal::RowLevelSecurity => "RESET ROLE",
            Refusal::GeneratedColumn => "",
        }
    }

    /// The refused calls: a `copy_in` through `client` of rows that do not say how many they
    /// are (a COPY), then of a slice (a small batch: one `INSERT` of bound arrays where the
    /// table takes it); the second's error.
    async fn copy_in(self, client: &impl BulkExt) -> pgbulk::Error {
        let copied = match self {
            Refusal::GeneratedColumn => client
                .bulk()
                .copy_in(unsized_rows([WithGenerated { id: 1, twice: 2 }]))
                .await
                .unwrap_err(),
            _ => client
                .bulk()
                .copy_in(unsized_rows(notes(3)))
                .await
                .unwrap_err(),
        };
        self.check(&copied);
        let err = match self {
            Refusal::GeneratedColumn => client
                .bulk()
                .copy_in(&[WithGenerated { id: 1, twice: 2 }])
                .await
                .unwrap_err(),
            _ => client.bulk().copy_in(&notes(3)).await.unwrap_err(),
        };
        self.check(&err);
        err
    }

    /// The refused call's error: the server's, in its words.
    fn check(self, err: &pgbulk::Error) {
        let expected = match self {
            Refusal::ReadOnly => "read-only transaction",
            Refusal::NoInsertPrivilege => "permission denied",
            Refusal::RowLevelSecurity => "row-level security",
            Refusal::GeneratedColumn => "generated column",
        };
        assert_eq!(err.kind(), ErrorKind::Db, "{self:?}: {err}");
        assert!(err.to_string().contains(expected), "{self:?}: {err}");
    }
}

/// Tables `notes` (with RLS enabled, which only binds `<role>_writer`), `notes_gen` and `ok`,
/// and the roles `<role>_reader` (SELECT only) and `<role>_writer` (INSERT, under RLS).
async fn setup(db: &TestDb) -> String {
    let role = db.dbname().to_owned();
    db.client()
        .batch_execute(&format!(
            "CREATE TABLE notes (id int8 PRIMARY KEY, body text NOT NULL);
             CREATE TABLE notes_gen (id int8, twice int8 GENERATED ALWAYS AS (id * 2) STORED);
             CREATE TABLE ok (id int8);
             ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
             CREATE POLICY everything ON notes USING (true);
             DROP ROLE IF EXISTS {role}_reader; DROP ROLE IF EXISTS {role}_writer;
             CREATE ROLE {role}_reader; CREATE ROLE {role}_writer;
             GRANT USAGE ON SCHEMA public TO {role}_reader, {role}_writer;
             GRANT SELECT ON notes TO {role}_reader;
             GRANT SELECT, INSERT ON notes TO {role}_writer;"
        ))
        .await
        .unwrap();
    role
}

/// `Refusal::copy_in` on a connection of the client a shared body runs on (a macro: the two
/// clients' `bulk()` handles are different types).
macro_rules! refused_copy_in {
    ($refusal:expr, $conn:expr) => {{
        // A COPY (rows that do not say how many), then a small batch (see `Refusal::copy_in`).
        refused_copy_in!($refusal, $conn, copied);
        refused_copy_in!($refusal, $conn, small)
    }};
    ($refusal:expr, $conn:expr, copied) => {{
        let refusal: Refusal = $refusal;
        let copied = match refusal {
            Refusal::GeneratedColumn => $conn
                .bulk()
                .copy_in(unsized_rows([WithGenerated { id: 1, twice: 2 }]))
                .await
                .unwrap_err(),
            _ => $conn
                .bulk()
                .copy_in(unsized_rows(notes(3)))
                .await
                .unwrap_err(),
        };
        refusal.check(&copied);
        copied
    }};
    ($refusal:expr, $conn:expr, small) => {{
        let refusal: Refusal = $refusal;
        let err = match refusal {
            Refusal::GeneratedColumn => $conn
                .bulk()
                .copy_in(&[WithGenerated { id: 1, twice: 2 }])
                .await
                .unwrap_err(),
            _ => $conn.bulk().copy_in(&notes(3)).await.unwrap_err(),
        };
        refusal.check(&err);
        err
    }};
}

/// `assert_in_step` on a connection of the client a shared body runs on.
macro_rules! assert_in_step {
    ($conn:expr, $n:expr) => {{
        let n: i64 = $n;
        let answer = scalar($conn, &format!("SELECT {n}::int8 + 1"))
            .await
            .unwrap();
        assert_eq!(answer, n + 1);
        let rows: Vec<Good> = (0..n).map(|id| Good { id }).collect();
        assert_eq!(
            $conn.bulk().copy_in(&rows).await.unwrap(),
            u64::try_from(n).unwrap()
        );
        let again = text($conn, "SELECT 'still ' || 'here'").await.unwrap();
        assert_eq!(again, "still here");
    }};
}

/// `assert_in_step` for a read-only session: a query, and a `copy_out`.
macro_rules! assert_in_step_read_only {
    ($conn:expr) => {{
        assert_eq!(scalar($conn, "SELECT 41::int8 + 1").await.unwrap(), 42);
        let none = $conn.bulk().copy_out::<Note>().collect_vec().await.unwrap();
        assert!(none.is_empty());
    }};
}

/// The client answers a query with its own answer and takes a further `copy_in`.
async fn assert_in_step(client: &Client, n: i64) {
    let answer: i64 = client
        .query_one("SELECT $1::int8 + 1", &[&n])
        .await
        .unwrap()
        .get(0);
    assert_eq!(answer, n + 1);
    let rows: Vec<Good> = (0..n).map(|id| Good { id }).collect();
    assert_eq!(
        client.bulk().copy_in(&rows).await.unwrap(),
        u64::try_from(n).unwrap()
    );
    let again: String = client
        .query_one("SELECT 'still ' || $1::text", &[&"here"])
        .await
        .unwrap()
        .get(0);
    assert_eq!(again, "still here");
}

/// Prepares the COPY into `notes` on `client`, makes the session read-only, and returns the
/// error of the prepared COPY.
async fn refused_prepared_copy_in(client: &Client) -> pgbulk::Error {
    let plan = client.bulk().plan::<Note>().await.unwrap();
    let prepared = client.bulk().prepare_copy_in(&plan).await.unwrap();
    client
        .batch_execute("SET default_transaction_read_only = on")
        .await
        .unwrap();
    client
        .bulk()
        .copy_in_prepared(&prepared, &notes(2))
        .await
        .unwrap_err()
}

/// A COPY statement prepared earlier skips the refusal check (that keeps its one round trip):
/// refused, the connection cannot be kept in step; the error says so, and it is closed.
#[tokio::test]
async fn a_refused_prepared_copy_reports_the_connection_lost_and_closes_it() {
    let db = db().await;
    setup(&db).await;
    let client = db.connect().await.unwrap();
    let err = refused_prepared_copy_in(&client).await;
    assert_eq!(err.kind(), ErrorKind::Db);
    assert!(err.to_string().contains("read-only"), "{err}");
    assert!(err.is_connection_lost(), "{err}");
    assert!(err.to_string().contains("use another connection"), "{err}");
    assert!(client.is_closed());
    assert_eq!(count(&db, "notes").await, 0);
}

async fn pid(client: &Client) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn deadpool_fast_recycling_hands_out_a_working_connection() {
    use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
    let db = db().await;
    setup(&db).await;
    let manager = Manager::from_config(
        db.config().clone(),
        tokio_postgres::NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager).max_size(1).build().unwrap();
    let object = pool.get().await.unwrap();
    let first = pid(&object).await;
    Refusal::GeneratedColumn.copy_in(&object).await;
    drop(object);
    // Kept in step: the same connection comes back and works.
    let object = pool.get().await.unwrap();
    assert_eq!(pid(&object).await, first);
    assert_in_step(&object, 3).await;
    drop(object);

    // A refused prepared COPY loses the connection: the pool discards it and opens another.
    let object = pool.get().await.unwrap();
    let err = refused_prepared_copy_in(&object).await;
    assert!(err.is_connection_lost(), "{err}");
    drop(object);
    let object = pool.get().await.unwrap();
    assert_ne!(pid(&object).await, first);
    assert_in_step(&object, 4).await;
    assert_eq!(count(&db, "ok").await, 7);
}

#[tokio::test]
async fn bb8_connection_stays_in_step() {
    use bb8_postgres::PostgresConnectionManager;
    let db = db().await;
    let role = setup(&db).await;
    let manager = PostgresConnectionManager::new(db.config().clone(), tokio_postgres::NoTls);
    let pool = bb8::Pool::builder()
        .max_size(1)
        .build(manager)
        .await
        .unwrap();
    let conn = pool.get().await.unwrap();
    conn.batch_execute(&Refusal::NoInsertPrivilege.enter(&role))
        .await
        .unwrap();
    Refusal::NoInsertPrivilege.copy_in(&conn).await;
    conn.batch_execute("RESET ROLE").await.unwrap();
    assert_in_step(&conn, 2).await;
    drop(conn);
    let conn = pool.get().await.unwrap();
    assert_in_step(&conn, 3).await;
}

#[tokio::test]
async fn sync_client_and_transaction_stay_in_step() {
    use pgbulk::sync::BulkExt as _;
    let db = db().await;
    let role = setup(&db).await;
    let conninfo = db.connection_string();
    // The sync client runs its own runtime: use it off this runtime's thread.
    tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&conninfo, postgres::NoTls).unwrap();
        for (n, refusal) in (1..).zip(ALL) {
            client.batch_execute(&refusal.enter(&role)).unwrap();
            // A COPY (rows that do not say how many), then a small batch.
            let copied = match refusal {
                Refusal::GeneratedColumn => client
                    .bulk()
                    .copy_in(unsized_rows([WithGenerated { id: 1, twice: 2 }]))
                    .unwrap_err(),
                _ => client.bulk().copy_in(unsized_rows(notes(3))).unwrap_err(),
            };
            refusal.check(&copied);
            let err = match refusal {
                Refusal::GeneratedColumn => client
                    .bulk()
                    .copy_in(&[WithGenerated { id: 1, twice: 2 }])
                    .unwrap_err(),
                _ => client.bulk().copy_in(notes(3)).unwrap_err(),
            };
            assert_eq!(err.kind(), ErrorKind::Db, "{refusal:?}: {err}");
            assert!(!err.is_connection_lost(), "{refusal:?}: {err}");
            client.batch_execute(refusal.leave()).unwrap();
            let answer: i64 = client.query_one("SELECT 41::int8 + 1", &[]).unwrap().get(0);
            assert_eq!(answer, 42);
            let rows: Vec<Good> = (0..n).map(|id| Good { id }).collect();
            assert_eq!(client.bulk().copy_in(&rows).unwrap(), n.unsigned_abs());
        }
        // In a transaction, and through upsert's staging COPY.
        let mut tx = client.transaction().unwrap();
        tx.batch_execute("SET TRANSACTION READ ONLY").unwrap();
        let err = tx.bulk().upsert_via_staging(notes(2)).unwrap_err();
        assert!(err.to_string().contains("read-only"), "{err}");
        assert!(!err.is_connection_lost(), "{err}");
        tx.rollback().unwrap();
        let answer: i64 = client
            .query_one("SELECT count(*) FROM ok", &[])
            .unwrap()
            .get(0);
        assert_eq!(answer, 10);
    })
    .await
    .unwrap();
    assert_eq!(count(&db, "notes").await, 0);
}

on_every_client! {
    async fn client_stays_in_step_after_each_refused_copy_in(db, conn) {
        let role = setup(&db).await;
        let mut loaded = 0;
        for (n, refusal) in (1..).zip(ALL) {
            execute(&mut conn, &refusal.enter(&role)).await.unwrap();
            let err = refused_copy_in!(refusal, conn);
            assert!(!err.is_connection_lost(), "{refusal:?}: {err}");
            execute(&mut conn, refusal.leave()).await.unwrap();
            assert_in_step!(&mut conn, n);
            loaded += n;
        }
        // The refused rows are nowhere; the good ones all arrived.
        assert_eq!(count(&db, "notes").await, 0);
        assert_eq!(count(&db, "notes_gen").await, 0);
        assert_eq!(count(&db, "ok").await, loaded);
        // Twice in a row.
        execute(&mut conn, "SET default_transaction_read_only = on").await.unwrap();
        refused_copy_in!(Refusal::ReadOnly, conn);
        refused_copy_in!(Refusal::ReadOnly, conn);
        execute(&mut conn, "RESET default_transaction_read_only").await.unwrap();
        assert_in_step!(&mut conn, 7);
    }

    async fn a_transaction_stays_in_step_and_can_be_rolled_back(db, conn) {
        let role = setup(&db).await;
        for (refusal, small) in ALL.into_iter().flat_map(|r| [(r, false), (r, true)]) {
            let mut tx = begin(&mut conn).await;
            let enter = match refusal {
                // The session default does not change a transaction already begun.
                Refusal::ReadOnly => "SET TRANSACTION READ ONLY".to_owned(),
                _ => refusal.enter(&role),
            };
            execute(&mut tx, &enter).await.unwrap();
            // A COPY, or a small batch (see `Refusal::copy_in`): the first refusal aborts the
            // transaction.
            let err = if small {
                refused_copy_in!(refusal, tx, small)
            } else {
                refused_copy_in!(refusal, tx, copied)
            };
            assert!(!err.is_connection_lost(), "{refusal:?}: {err}");
            // The refused COPY aborted the transaction, as any error does.
            let aborted = scalar(&mut tx, "SELECT 1::int8").await.unwrap_err();
            assert_eq!(
                aborted.code(),
                Some(&tokio_postgres::error::SqlState::IN_FAILED_SQL_TRANSACTION),
                "{aborted:?}"
            );
            tx.rollback().await.unwrap();
            assert_in_step!(&mut conn, 2);
        }
        assert_eq!(count(&db, "notes").await, 0);
        assert_eq!(count(&db, "ok").await, 16);
    }

    async fn upsert_quarantine_returning_and_copy_out_stay_in_step_when_refused(db, conn) {
        setup(&db).await;
        execute(&mut conn, "SET default_transaction_read_only = on").await.unwrap();
        let err = conn
            .bulk()
            .upsert_via_staging(notes(3))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("read-only"), "{err}");
        assert!(!err.is_connection_lost(), "{err}");
        assert_in_step_read_only!(&mut conn);
        let err = conn
            .bulk()
            .quarantine()
            .copy_in(&notes(3))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("read-only"), "{err}");
        assert_in_step_read_only!(&mut conn);
        // A small batch is bound (one INSERT), rows that do not say how many are staged: both
        // refused in step.
        let err = conn
            .bulk()
            .copy_in_returning::<Note, _, _>(notes(3))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("read-only"), "{err}");
        assert_in_step_read_only!(&mut conn);
        let err = conn
            .bulk()
            .copy_in_returning::<Note, _, _>(unsized_rows(notes(3)))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("read-only"), "{err}");
        assert_in_step_read_only!(&mut conn);
        let err = conn
            .bulk()
            .upsert_via_staging(unsized_rows(notes(3)))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("read-only"), "{err}");
        assert_in_step_read_only!(&mut conn);
        // copy_out of a query the server refuses (a write in a read-only session).
        let err = conn
            .bulk()
            .copy_out_query::<Note>("INSERT INTO notes VALUES (1, 'x') RETURNING id, body")
            .collect_vec()
            .await
            .unwrap_err();
        assert!(err.to_string().contains("read-only"), "{err}");
        // sqlx leaves the refusal's ReadyForQuery unread: pgbulk ends that session and the
        // error says so (see `conn.rs`); tokio-postgres stays in step.
        assert_eq!(err.is_connection_lost(), !KEEPS_SESSION, "{err}");
        if KEEPS_SESSION {
            assert_in_step_read_only!(&mut conn);
        } else {
            after_abandoned_copy(&mut conn, &db).await;
        }
        execute(&mut conn, "RESET default_transaction_read_only").await.unwrap();
        assert_in_step!(&mut conn, 5);
        assert_eq!(count(&db, "notes").await, 0);
    }
}
