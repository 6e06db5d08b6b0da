//! `upsert_via_staging` where counting through `xmax` failed or the batch is unusual:
//! partitioned tables, column-level privileges, identity keys, NULL keys, keys equal in SQL but
//! not in bytes, concurrent updates, `work_mem` inside a caller's transaction, and the mixed
//! workload of the benchmark — on every async client (`on_every_client!`).

use crate::upsert::{counts, STAGES_LEFT};
use pgbulk::testkit::TestDb;
use pgbulk::{BulkExt, CopyRow, ErrorKind};
use rust_decimal::Decimal;

async fn rows_of(db: &TestDb, sql: &str) -> Vec<(i64, Option<String>)> {
    db.client()
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "events")]
struct Event {
    #[copy(key)]
    tenant: i32,
    #[copy(key)]
    id: i64,
    payload: String,
}

#[derive(CopyRow, Debug, Clone, PartialEq)]
struct EventBack {
    tenant: i32,
    id: i64,
    inserted: bool,
}

const EVENTS: &str = "CREATE TABLE events (tenant int4, id int8, payload text, \
                      PRIMARY KEY (tenant, id)) PARTITION BY LIST (tenant); \
                      CREATE TABLE events_1 PARTITION OF events FOR VALUES IN (1); \
                      CREATE TABLE events_2 PARTITION OF events FOR VALUES IN (2)";

fn event(tenant: i32, id: i64, payload: &str) -> Event {
    Event {
        tenant,
        id,
        payload: payload.to_owned(),
    }
}

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "notes")]
struct Note {
    #[copy(key)]
    id: i64,
    body: String,
}

#[derive(CopyRow, Debug, Clone, PartialEq)]
struct NoteBack {
    id: i64,
    inserted: bool,
}

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "accounts")]
struct Account {
    #[copy(key)]
    id: i64,
    owner: String,
}

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "codes")]
struct Code {
    #[copy(key)]
    code: Option<String>,
    n: i64,
}

fn code(code: Option<&str>, n: i64) -> Code {
    Code {
        code: code.map(str::to_owned),
        n,
    }
}

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "prices")]
struct Price {
    #[copy(key)]
    amount: Decimal,
    label: String,
}

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "users_mix")]
struct UserRow {
    #[copy(key)]
    id: i64,
    email: String,
    name: String,
}

const USERS_MIX: &str = "CREATE TABLE users_mix (id int8 PRIMARY KEY, email text NOT NULL UNIQUE, \
                         name text NOT NULL)";

fn user(id: i64, version: u32) -> UserRow {
    UserRow {
        id,
        email: format!("user{id}@example.com"),
        name: format!("user {id} v{version}"),
    }
}

on_every_client! {
    /// Counting and `RETURNING .. inserted` through partition routing (which refuses `xmax`).
    async fn partitioned_table_counts_and_returning_inserted(db, conn) {
        db.client().batch_execute(EVENTS).await.unwrap();
        db.client()
            .bulk()
            .copy_in([event(1, 1, "old"), event(1, 2, "same"), event(2, 1, "old")])
            .await
            .unwrap();
        let batch = vec![
            event(1, 1, "new"),  // updated
            event(1, 2, "same"), // unchanged
            event(2, 1, "new"),  // updated
            event(2, 2, "x"),    // inserted
            event(1, 3, "x"),    // inserted
            event(1, 3, "y"),    // the same key again: this one wins
        ];
        let c = conn.bulk().upsert_via_staging(&batch).await.unwrap();
        assert_eq!(c, counts(2, 2, 1, 1));
        let stored: Vec<(i32, i64, String)> = db
            .client()
            .query(
                "SELECT tenant, id, payload FROM events ORDER BY tenant, id",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        assert_eq!(
            stored,
            [
                (1, 1, "new".to_owned()),
                (1, 2, "same".to_owned()),
                (1, 3, "y".to_owned()),
                (2, 1, "new".to_owned()),
                (2, 2, "x".to_owned()),
            ]
        );
        // The `_returning` form with `inserted`, in input order: unchanged rows are not returned.
        let back: Vec<EventBack> = conn
            .bulk()
            .upsert_via_staging_returning::<EventBack, _, _>(vec![
                event(2, 9, "a"),
                event(1, 1, "newer"),
                event(1, 2, "same"),
                event(1, 8, "b"),
                event(2, 2, "changed"),
            ])
            .in_input_order()
            .await
            .unwrap();
        let flags: Vec<(i32, i64, bool)> = back.iter().map(|b| (b.tenant, b.id, b.inserted)).collect();
        assert_eq!(
            flags,
            [(2, 9, true), (1, 1, false), (1, 8, true), (2, 2, false)]
        );
        assert_eq!(crate::count(&db, "events_1").await, 4);
        assert_eq!(scalar(&mut conn, STAGES_LEFT).await.unwrap(), 0);
        assert_eq!(scalar(&mut conn, "SELECT 1::int8").await.unwrap(), 1);
    }

    /// With only `SELECT (id, body), INSERT (id, body), UPDATE (body)` granted, as that role.
    async fn column_level_privileges_suffice(db, conn) {
        // Roles belong to the cluster, which the tests share: a name of this test's own.
        let role = format!(
            "pgbulk_r_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        db.client()
            .batch_execute(&format!(
                "CREATE TABLE notes (id int8 PRIMARY KEY, body text NOT NULL, \
                 secret text DEFAULT 'hidden'); \
                 INSERT INTO notes (id, body) VALUES (1, 'one'), (2, 'two'); \
                 CREATE ROLE {role}; \
                 GRANT SELECT (id, body), INSERT (id, body), UPDATE (body) ON notes TO {role}"
            ))
            .await
            .unwrap();
        execute(&mut conn, &format!("SET ROLE {role}")).await.unwrap();
        let note = |id: i64, body: &str| Note {
            id,
            body: body.to_owned(),
        };
        let c = conn
            .bulk()
            .upsert_via_staging(vec![note(1, "one"), note(2, "TWO"), note(3, "three")])
            .await
            .unwrap();
        assert_eq!(c, counts(1, 1, 1, 0));
        let back: Vec<NoteBack> = conn
            .bulk()
            .upsert_via_staging_returning::<NoteBack, _, _>(vec![note(3, "3"), note(4, "four")])
            .await
            .unwrap();
        assert_eq!(
            back,
            [
                NoteBack {
                    id: 3,
                    inserted: false
                },
                NoteBack {
                    id: 4,
                    inserted: true
                }
            ]
        );
        // Whole-row access is still refused to this role: the privileges really are per column.
        let denied = execute(&mut conn, "SELECT * FROM notes").await.unwrap_err();
        assert_eq!(
            denied.code(),
            Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE)
        );
        execute(&mut conn, "RESET ROLE").await.unwrap();
        db.client()
            .batch_execute(&format!("DROP OWNED BY {role}; DROP ROLE {role}"))
            .await
            .unwrap();
        assert_eq!(
            rows_of(&db, "SELECT id, body FROM notes ORDER BY id").await,
            [
                (1, Some("one".into())),
                (2, Some("TWO".into())),
                (3, Some("3".into())),
                (4, Some("four".into()))
            ]
        );
        assert_eq!(scalar(&mut conn, "SELECT 1::int8").await.unwrap(), 1);
    }

    /// A `GENERATED ALWAYS AS IDENTITY` key: a clear error naming the option, then the option.
    async fn identity_key_needs_overriding_system_value(db, conn) {
        db.client()
            .batch_execute(
                "CREATE TABLE accounts (id int8 GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
                 owner text NOT NULL); INSERT INTO accounts (owner) VALUES ('a'), ('b')",
            )
            .await
            .unwrap();
        let rows = vec![
            Account {
                id: 2,
                owner: "B".into(),
            },
            Account {
                id: 7,
                owner: "g".into(),
            },
        ];
        let err = conn
            .bulk()
            .upsert_via_staging(&rows)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Usage, "{err}");
        assert!(
            err.to_string().contains("overriding_system_value()"),
            "{err}"
        );
        assert_eq!(
            err.code(),
            Some(&tokio_postgres::error::SqlState::GENERATED_ALWAYS)
        );
        assert_eq!(scalar(&mut conn, STAGES_LEFT).await.unwrap(), 0);
        assert_eq!(scalar(&mut conn, "SELECT 1::int8").await.unwrap(), 1);
        let c = conn
            .bulk()
            .upsert_via_staging(&rows)
            .overriding_system_value()
            .await
            .unwrap();
        assert_eq!(c, counts(1, 1, 0, 0));
        assert_eq!(
            rows_of(&db, "SELECT id, owner FROM accounts ORDER BY id").await,
            [
                (1, Some("a".into())),
                (2, Some("B".into())),
                (7, Some("g".into()))
            ]
        );
    }

    /// NULL keys follow the index: distinct in a plain unique index (every row stored, none a
    /// duplicate), one key under `NULLS NOT DISTINCT` (the last wins); a NULL in a `NOT NULL` key
    /// is an error naming the input row.
    async fn null_keys_follow_the_unique_index(db, conn) {
        let batch = vec![
            code(Some("a"), 1),
            code(None, 2),
            code(Some("b"), 3),
            code(None, 4),
            code(None, 5),
        ];
        // Plain unique index: NULLs are distinct, as for a plain INSERT.
        db.client()
            .batch_execute("CREATE TABLE codes (code text UNIQUE, n int8)")
            .await
            .unwrap();
        let c = conn.bulk().upsert_via_staging(&batch).await.unwrap();
        assert_eq!(c, counts(5, 0, 0, 0));
        // Again, with a real duplicate too: the NULL rows are still all new rows.
        let mut again = batch.clone();
        again.push(code(Some("a"), 9));
        let c = conn.bulk().upsert_via_staging(&again).await.unwrap();
        assert_eq!(c, counts(3, 1, 1, 1));
        assert_eq!(crate::count(&db, "codes WHERE code IS NULL").await, 6);

        // NULLS NOT DISTINCT (PostgreSQL 15+; older servers refuse the index, and every NULL key
        // is a new row, as above): the NULL rows are one key.
        if crate::server::version_num_of(&db).await >= 150_000 {
            db.client()
                .batch_execute(
                    "DROP TABLE codes; CREATE TABLE codes (code text, n int8); \
                     CREATE UNIQUE INDEX codes_code ON codes (code) NULLS NOT DISTINCT",
                )
                .await
                .unwrap();
            let c = conn
                .bulk()
                .upsert_via_staging(&batch)
                .conflict_columns(["code"])
                .await
                .unwrap();
            assert_eq!(c, counts(3, 0, 0, 2));
            assert_eq!(
                rows_of(&db, "SELECT n, code FROM codes ORDER BY n").await,
                [(1, Some("a".into())), (3, Some("b".into())), (5, None)]
            );
            let c = conn
                .bulk()
                .upsert_via_staging(vec![code(None, 6), code(Some("a"), 1)])
                .await
                .unwrap();
            assert_eq!(c, counts(0, 1, 1, 0));
            assert_eq!(scalar(&mut conn, STAGES_LEFT).await.unwrap(), 0);
        }

        // A NOT NULL key: the error names the first input row with a NULL, its field and column.
        db.client()
            .batch_execute("DROP TABLE codes; CREATE TABLE codes (code text PRIMARY KEY, n int8)")
            .await
            .unwrap();
        let err = conn
            .bulk()
            .upsert_via_staging(&batch)
            .await
            .unwrap_err();
        assert_eq!(err.row(), Some(1), "{err}");
        assert_eq!(err.field(), Some("code"), "{err}");
        assert_eq!(err.column(), Some("code"), "{err}");
        assert_eq!(
            err.code(),
            Some(&tokio_postgres::error::SqlState::NOT_NULL_VIOLATION)
        );
        assert_eq!(crate::count(&db, "codes").await, 0);
        assert_eq!(scalar(&mut conn, "SELECT 1::int8").await.unwrap(), 1);
    }

    /// `1.0` and `1.00` are one numeric key but different bytes: the encoder cannot see the
    /// duplicate, the server does, and the merge is retried with the dedupe — last one wins.
    async fn keys_equal_in_sql_but_not_in_bytes_are_still_deduplicated(db, conn) {
        db.client()
            .batch_execute(
                "CREATE TABLE prices (amount numeric PRIMARY KEY, label text NOT NULL); \
                 INSERT INTO prices VALUES (2, 'two')",
            )
            .await
            .unwrap();
        let price = |amount: Decimal, label: &str| Price {
            amount,
            label: label.to_owned(),
        };
        let batch = vec![
            price(Decimal::new(10, 1), "first"),
            price(Decimal::new(2, 0), "TWO"),
            price(Decimal::new(100, 2), "last"),
        ];
        // Inside a caller's transaction too: the retry must not disturb it.
        let mut tx = begin(&mut conn).await;
        let c = tx.bulk().upsert_via_staging(&batch).await.unwrap();
        assert_eq!(c, counts(1, 1, 0, 1));
        tx.commit().await.unwrap();
        let stored: Vec<(String, String)> = db
            .client()
            .query(
                "SELECT amount::text, label FROM prices ORDER BY amount",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        assert_eq!(
            stored,
            [
                ("1.00".to_owned(), "last".to_owned()),
                ("2".to_owned(), "TWO".to_owned())
            ]
        );
        assert_eq!(scalar(&mut conn, STAGES_LEFT).await.unwrap(), 0);
    }

    /// The benchmark's workload: 25% new keys, 25% changed, 50% identical, against a key and a
    /// second unique index; in key order and shuffled (the merge then sorts), and with `work_mem`
    /// set by the caller's transaction, which must hold it again afterwards.
    async fn mixed_workload_counts_and_work_mem_restored(db, conn) {
        db.client().batch_execute(USERS_MIX).await.unwrap();
        let n = 4_000i64;
        // Stored: ids 0..3n/4, version 0.
        let stored: Vec<UserRow> = (0..n * 3 / 4).map(|i| user(i, 0)).collect();
        conn.bulk().copy_in(&stored).await.unwrap();
        // The batch, ids 0..n: the first n/4 change, the next n/2 stay, the last n/4 are new.
        let batch: Vec<UserRow> = (0..n).map(|i| user(i, u32::from(i < n / 4))).collect();
        let c = conn.bulk().upsert_via_staging(&batch).await.unwrap();
        assert_eq!(c, counts(1_000, 1_000, 2_000, 0));

        // Shuffled, inside a transaction with its own work_mem.
        let mut shuffled: Vec<UserRow> = (0..n + 1_000)
            .map(|i| user(i, 2 * u32::from(i % 4 == 0)))
            .collect();
        let len = shuffled.len();
        for i in 0..len {
            shuffled.swap(i, (i * 7_919) % len);
        }
        let mut tx = begin(&mut conn).await;
        execute(&mut tx, "SET LOCAL work_mem = '1234kB'")
            .await
            .unwrap();
        let c = tx.bulk().upsert_via_staging(&shuffled).await.unwrap();
        // ids 0..n/4 are at v1: all change (to v2 or back to v0). ids n/4..n are at v0: those
        // ≡ 0 (mod 4) change to v2, the rest stay. ids n..n+1000 are new.
        assert_eq!(c, counts(1_000, 1_000 + 750, 2_250, 0));
        let work_mem = text(&mut tx, "SHOW work_mem").await.unwrap();
        assert_eq!(work_mem, "1234kB");
        tx.commit().await.unwrap();
        let expected: Vec<(i64, Option<String>)> = (0..n + 1_000)
            .map(|i| (i, Some(user(i, 2 * u32::from(i % 4 == 0)).name)))
            .collect();
        assert_eq!(
            rows_of(&db, "SELECT id, name FROM users_mix ORDER BY id").await,
            expected
        );
        // On a plain client the session's value is untouched too.
        let before = text(&mut conn, "SHOW work_mem").await.unwrap();
        shuffled.reverse();
        conn.bulk().upsert_via_staging(&shuffled).await.unwrap();
        let after = text(&mut conn, "SHOW work_mem").await.unwrap();
        assert_eq!(before, after);
    }

    /// Eight connections update the same keys at once, each with its own values: every row of
    /// every call is counted as updated exactly once, although rows locked by another call are
    /// re-checked and retried by the server.
    async fn concurrent_updates_are_counted_exactly(db, conn) {
        db.client().batch_execute(USERS_MIX).await.unwrap();
        let keys = 3_000i64;
        let stored: Vec<UserRow> = (0..keys).map(|i| user(i, 0)).collect();
        conn.bulk().copy_in(&stored).await.unwrap();
        let mut clients = Vec::new();
        for _ in 0..8 {
            clients.push(connect(&db).await);
        }
        let tasks: Vec<_> = clients
            .into_iter()
            .enumerate()
            .map(|(t, mut client)| {
                tokio::spawn(async move {
                    let version = u32::try_from(t).unwrap() + 1;
                    let rows: Vec<UserRow> = (0..keys).map(|i| user(i, version)).collect();
                    client.bulk().upsert_via_staging(&rows).await.unwrap()
                })
            })
            .collect();
        for t in tasks {
            // Each call finds the value of the initial load or of another call: always different.
            assert_eq!(t.await.unwrap(), counts(0, 3_000, 0, 0));
        }
        let versions: i64 = db
            .client()
            .query_one(
                "SELECT count(DISTINCT substring(name from ' v[0-9]+$')) FROM users_mix",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        // Calls lock rows in key order and commit whole: a later call overwrote every row.
        assert_eq!(versions, 1);
    }
}
