//! Quarantine mode: every good row is loaded, the bad ones come back with index and reason — on
//! every async client (`on_every_client!`).

use crate::count;
use pgbulk::{BulkExt, CopyRow, ErrorKind};
use rust_decimal::Decimal;
use tokio_postgres::error::SqlState;

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "items")]
struct Item {
    id: i32,
    account: i32,
    amount: Decimal,
    memo: Option<String>,
    grid: Vec<Vec<i32>>,
}

const ITEMS: &str = "
    CREATE TABLE accounts (id int4 PRIMARY KEY);
    INSERT INTO accounts SELECT generate_series(0, 9);
    CREATE TABLE items (
        id int4 PRIMARY KEY,
        account int4 NOT NULL REFERENCES accounts (id) DEFERRABLE INITIALLY DEFERRED,
        amount numeric(5, 2) NOT NULL CHECK (amount >= 0),
        memo text NOT NULL,
        grid int4[] NOT NULL
    )";

fn item(id: i32) -> Item {
    Item {
        id,
        account: id % 10,
        amount: Decimal::new(i64::from(id), 2),
        memo: Some(format!("item {id}")),
        grid: vec![vec![id, id + 1], vec![id + 2, id + 3]],
    }
}

/// How a row is spoiled, and what the rejection must say: error kind, SQLSTATE, and a
/// field or column it names (where the server or the encoder names one).
struct Bad {
    index: usize,
    spoil: fn(&mut Item),
    kind: ErrorKind,
    code: Option<SqlState>,
    field: Option<&'static str>,
}

fn bad_rows() -> Vec<Bad> {
    vec![
        Bad {
            index: 13,
            spoil: |i| i.id = 5,
            kind: ErrorKind::Db,
            code: Some(SqlState::UNIQUE_VIOLATION),
            field: Some("id"),
        },
        Bad {
            index: 150,
            spoil: |i| i.amount = Decimal::new(-1, 2),
            kind: ErrorKind::Db,
            code: Some(SqlState::CHECK_VIOLATION),
            field: None,
        },
        Bad {
            index: 333,
            spoil: |i| i.memo = Some("nul \0 here".into()),
            kind: ErrorKind::Encode,
            code: None,
            field: Some("memo"),
        },
        Bad {
            index: 512,
            spoil: |i| i.account = 99,
            kind: ErrorKind::Db,
            code: Some(SqlState::FOREIGN_KEY_VIOLATION),
            field: Some("account"),
        },
        Bad {
            index: 640,
            spoil: |i| i.memo = None,
            kind: ErrorKind::Db,
            code: Some(SqlState::NOT_NULL_VIOLATION),
            field: Some("memo"),
        },
        Bad {
            index: 777,
            spoil: |i| i.amount = Decimal::new(1_234_567, 2),
            kind: ErrorKind::Db,
            code: Some(SqlState::NUMERIC_VALUE_OUT_OF_RANGE),
            field: Some("amount"),
        },
        Bad {
            index: 901,
            spoil: |i| i.grid = vec![vec![1, 2], vec![3]],
            kind: ErrorKind::Encode,
            code: None,
            field: Some("grid"),
        },
    ]
}

fn rows_with_bad(n: i32) -> Vec<Item> {
    let mut rows: Vec<Item> = (0..n).map(item).collect();
    for bad in bad_rows() {
        (bad.spoil)(&mut rows[bad.index]);
    }
    rows
}

fn check_rejections(rejected: &[pgbulk::Rejected]) {
    let bad = bad_rows();
    assert_eq!(
        rejected.iter().map(|r| r.index).collect::<Vec<_>>(),
        bad.iter().map(|b| b.index).collect::<Vec<_>>(),
        "{rejected:#?}"
    );
    for (r, b) in rejected.iter().zip(&bad) {
        let e = &r.error;
        assert_eq!(e.kind(), b.kind, "row {}: {e}", b.index);
        assert_eq!(e.code(), b.code.as_ref(), "row {}: {e}", b.index);
        assert_eq!(e.row(), Some(b.index as u64), "row {}: {e}", b.index);
        if let Some(field) = b.field {
            assert_eq!(e.field(), Some(field), "row {}: {e}", b.index);
        }
    }
}

async fn loaded_ids(db: &pgbulk::testkit::TestDb) -> Vec<i32> {
    db.client()
        .query("SELECT id FROM items ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn expected_ids(n: i32) -> Vec<i32> {
    let bad: Vec<i32> = bad_rows()
        .iter()
        .map(|b| i32::try_from(b.index).unwrap())
        .collect();
    (0..n).filter(|i| !bad.contains(i)).collect()
}

on_every_client! {
    async fn thousand_rows_seven_bad_loads_993_and_returns_the_7(db, conn) {
        db.client().batch_execute(ITEMS).await.unwrap();
        let rows = rows_with_bad(1_000);

        // Without quarantine the load fails as a whole.
        let err = conn.bulk().copy_in(&rows).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Encode, "{err}");
        assert_eq!(count(&db, "items").await, 0);

        let outcome = conn
            .bulk()
            .quarantine()
            .copy_in(&rows)
            .await
            .unwrap();
        assert_eq!(outcome.written, 993);
        check_rejections(&outcome.rejected);
        assert_eq!(loaded_ids(&db).await, expected_ids(1_000));
        // The loaded rows are the good input rows, unchanged.
        let back = conn
            .bulk()
            .copy_out_query::<Item>("SELECT * FROM items ORDER BY id")
            .collect_vec()
            .await
            .unwrap();
        let good: Vec<Item> = rows
            .iter()
            .enumerate()
            .filter(|(i, _)| !bad_rows().iter().any(|b| b.index == *i))
            .map(|(_, r)| r.clone())
            .collect();
        assert_eq!(back, good);
        // The connection is not left in a transaction: this statement starts its own.
        // (A transaction left open by the load would have an id.)
        let open = "SELECT (pg_current_xact_id_if_assigned() IS NOT NULL)::int4::int8";
        assert_eq!(scalar(&mut conn, open).await.unwrap(), 0);
        // and the rows are committed: another session sees them.
        let mut other = connect(&db).await;
        let seen = scalar(&mut other, "SELECT count(*) FROM items").await.unwrap();
        assert_eq!(seen, 993);
    }

    async fn no_bad_rows_is_one_plain_copy(db, conn) {
        db.client().batch_execute(ITEMS).await.unwrap();
        let rows: Vec<Item> = (0..5_000).map(item).collect();
        let outcome = conn
            .bulk()
            .quarantine()
            .copy_in(&rows)
            .await
            .unwrap();
        assert_eq!(outcome.written, 5_000);
        assert!(outcome.rejected.is_empty());
        assert_eq!(count(&db, "items").await, 5_000);
        // Rows as an owned, replayable iterator (not a slice) work too.
        db.client().batch_execute("TRUNCATE items").await.unwrap();
        let outcome = conn
            .bulk()
            .quarantine()
            .copy_in((0..3_000).map(|i| {
                let mut r = item(i);
                if i == 2_999 {
                    r.account = 42;
                }
                r
            }))
            .await
            .unwrap();
        assert_eq!(outcome.written, 2_999);
        assert_eq!(outcome.rejected.len(), 1);
        assert_eq!(outcome.rejected[0].index, 2_999);
    }

    async fn inside_a_callers_transaction_uses_savepoints_and_keeps_its_modes(db, conn) {
        db.client().batch_execute(ITEMS).await.unwrap();
        let rows = rows_with_bad(1_000);

        let mut tx = begin(&mut conn).await;
        execute(&mut tx, "INSERT INTO items VALUES (5000, 1, 1, 'mine', '{}')").await.unwrap();
        let outcome = tx.bulk().quarantine().copy_in(&rows).await.unwrap();
        assert_eq!(outcome.written, 993);
        check_rejections(&outcome.rejected);
        // The caller's own row is still there, and its foreign key is still deferred: a bad
        // account is accepted until commit.
        execute(&mut tx, "INSERT INTO items VALUES (5001, 77, 1, 'later', '{}')").await.unwrap();
        execute(&mut tx, "DELETE FROM items WHERE id = 5001").await.unwrap();
        tx.commit().await.unwrap();
        let mut expect = expected_ids(1_000);
        expect.push(5000);
        assert_eq!(loaded_ids(&db).await, expect);

        // A caller's rollback undoes the quarantined load.
        db.client().batch_execute("TRUNCATE items").await.unwrap();
        let mut tx = begin(&mut conn).await;
        let outcome = tx.bulk().quarantine().copy_in(&rows).await.unwrap();
        assert_eq!(outcome.written, 993);
        tx.rollback().await.unwrap();
        assert_eq!(count(&db, "items").await, 0);

        // The caller's transaction already violates a deferred constraint: an error, not 1,000
        // rejected rows.
        let mut tx = begin(&mut conn).await;
        execute(&mut tx, "INSERT INTO items VALUES (6000, 77, 1, 'orphan', '{}')").await.unwrap();
        let err = tx.bulk().quarantine().copy_in(&rows).await.unwrap_err();
        assert_eq!(err.code(), Some(&SqlState::FOREIGN_KEY_VIOLATION), "{err}");
        assert!(err.to_string().contains("already holds rows"), "{err}");
        // The transaction is still usable (the error was contained in a savepoint).
        execute(&mut tx, "DELETE FROM items WHERE id = 6000").await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(count(&db, "items").await, 0);
    }

    async fn too_many_rejected_writes_nothing(db, conn) {
        db.client().batch_execute(ITEMS).await.unwrap();
        let rows = rows_with_bad(1_000);
        let err = conn
            .bulk()
            .quarantine()
            .max_rejected(3)
            .copy_in(&rows)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TooManyRejected, "{err}");
        assert!(err.to_string().contains("more than 3 rows"), "{err}");
        assert_eq!(count(&db, "items").await, 0);
        // Exactly at the limit is fine.
        let outcome = conn
            .bulk()
            .quarantine()
            .max_rejected(7)
            .copy_in(&rows)
            .await
            .unwrap();
        assert_eq!(outcome.written, 993);
    }

    async fn errors_not_about_a_row_fail_the_whole_load(db, conn) {
        db.client().batch_execute(ITEMS).await.unwrap();
        // A trigger that fails with a non-data error (insufficient privilege class 42) on one row:
        // not a bad row, so the whole load fails and nothing is written.
        db.client()
            .batch_execute(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN
                   IF NEW.id = 700 THEN
                     RAISE EXCEPTION 'no' USING ERRCODE = 'insufficient_privilege';
                   END IF;
                   RETURN NEW;
                 END $$;
                 CREATE TRIGGER refuse BEFORE INSERT ON items FOR EACH ROW EXECUTE FUNCTION refuse();",
            )
            .await
            .unwrap();
        let rows: Vec<Item> = (0..1_000).map(item).collect();
        let err = conn
            .bulk()
            .quarantine()
            .copy_in(&rows)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(&SqlState::INSUFFICIENT_PRIVILEGE), "{err}");
        assert_eq!(count(&db, "items").await, 0);
        // A trigger's data error (RAISE, class P0) is a bad row.
        db.client()
            .batch_execute(
                "CREATE OR REPLACE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN
                   IF NEW.id % 100 = 42 THEN RAISE EXCEPTION 'id % is unlucky', NEW.id; END IF;
                   RETURN NEW;
                 END $$;",
            )
            .await
            .unwrap();
        let outcome = conn
            .bulk()
            .quarantine()
            .copy_in(&rows)
            .await
            .unwrap();
        assert_eq!(outcome.written, 990);
        let idx: Vec<usize> = outcome.rejected.iter().map(|r| r.index).collect();
        assert_eq!(idx, (0..10).map(|i| i * 100 + 42).collect::<Vec<_>>());
        let reason = outcome.rejected[3].error.to_string();
        assert!(reason.contains("id 342 is unlucky"), "{reason}");
        assert!(
            reason.starts_with("row 342: row rejected by the server"),
            "{reason}"
        );
    }
}
