//! `copy_in_with_plan` of a small batch (one that says it holds fewer than 1,000 rows) through a
//! kept plan, and `copy_in` of one: sent as one `INSERT .. SELECT * FROM unnest($1, ..)` with the rows bound as
//! arrays, writing what the COPY writes — identity values, defaults, NULLs, rows a trigger
//! skips — and handing to the COPY what it must: a refused value (named by row, field and
//! column), a table with rules (which a COPY ignores) — on every async client
//! (`on_every_client!`), and the blocking one.

use crate::unsized_rows;
use pgbulk::{BulkExt, CopyRow};
use tokio_postgres::error::SqlState;

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "ledger")]
struct Entry {
    id: i64,
    account: String,
    memo: Option<String>,
    cents: i64,
}

/// A `GENERATED ALWAYS` identity column the struct writes (as a COPY may), a default the
/// struct leaves to the table, a `varchar(n)` only the server checks, a unique key.
const LEDGER: &str = "CREATE TABLE ledger (id int8 GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
                      account varchar(10) NOT NULL, memo text, cents int8 NOT NULL, \
                      booked date NOT NULL DEFAULT '2026-01-01')";

fn entry(id: i64) -> Entry {
    Entry {
        id,
        account: format!("acct{}", id % 7),
        memo: (id % 2 == 0).then(|| format!("memo {id} ✓")),
        cents: id * 100 - 5,
    }
}

async fn stored(
    db: &pgbulk::testkit::TestDb,
    table: &str,
) -> Vec<(i64, String, Option<String>, i64, String)> {
    db.client()
        .query(
            &format!(
                "SELECT id, account::text, memo, cents, booked::text FROM {table} ORDER BY id"
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect()
}

on_every_client! {
    /// The bound batch and the copied one store the same rows.
    async fn inserted_and_copied_batches_store_the_same_rows(db, conn) {
        db.client().batch_execute(LEDGER).await.unwrap();
        db.client()
            .batch_execute(&LEDGER.replace("TABLE ledger", "TABLE ledger_copy"))
            .await
            .unwrap();
        // A statement trigger records the statement each write ran as.
        db.client()
            .batch_execute(
                "CREATE TABLE ran (n serial, statement text); \
                 CREATE FUNCTION log_statement() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                 INSERT INTO ran (statement) VALUES (TG_TABLE_NAME || ' ' || \
                 split_part(ltrim(current_query()), ' ', 1)); RETURN NULL; END $$; \
                 CREATE TRIGGER log_statement AFTER INSERT ON ledger FOR EACH STATEMENT \
                 EXECUTE FUNCTION log_statement(); \
                 CREATE TRIGGER log_statement AFTER INSERT ON ledger_copy FOR EACH STATEMENT \
                 EXECUTE FUNCTION log_statement()",
            )
            .await
            .unwrap();
        let plan = conn.bulk().plan::<Entry>().await.unwrap();
        let copy_plan = conn.bulk().table("ledger_copy").plan::<Entry>().await.unwrap();
        let batch: Vec<Entry> = (1..=40).map(entry).collect();
        assert_eq!(conn.bulk().copy_in_with_plan(&plan, &batch).await.unwrap(), 40);
        assert_eq!(
            conn.bulk()
                .table("ledger_copy")
                .copy_in_with_plan(&copy_plan, unsized_rows(&batch))
                .await
                .unwrap(),
            40
        );
        // What the server ran for each: one INSERT, one COPY.
        let ran: Vec<String> = db
            .client()
            .query("SELECT statement FROM ran ORDER BY n", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(ran, ["ledger INSERT", "ledger_copy COPY"]);
        // A plain `copy_in` (a fresh plan) of a small batch is one INSERT too; of rows that
        // do not say how many, a COPY.
        let more: Vec<Entry> = (41..=45).map(entry).collect();
        assert_eq!(conn.bulk().copy_in(&more).await.unwrap(), 5);
        let rest: Vec<Entry> = (46..=50).map(entry).collect();
        assert_eq!(conn.bulk().copy_in(unsized_rows(&rest)).await.unwrap(), 5);
        let ran: Vec<String> = db
            .client()
            .query("SELECT statement FROM ran ORDER BY n OFFSET 2", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(ran, ["ledger INSERT", "ledger COPY"]);
        let inserted = stored(&db, "ledger").await;
        assert_eq!(inserted.len(), 50);
        assert_eq!(inserted[..40], stored(&db, "ledger_copy").await[..]);
        assert_eq!(inserted[1], (2, "acct2".into(), Some("memo 2 ✓".into()), 195, "2026-01-01".into()));
        assert_eq!(inserted[2].2, None);
    }

    /// A value only the server refuses: named by row, field and column (the batch is copied
    /// after all to find it), nothing written, the connection usable.
    async fn a_value_the_server_refuses_is_named(db, conn) {
        db.client().batch_execute(LEDGER).await.unwrap();
        let plan = conn.bulk().plan::<Entry>().await.unwrap();
        let mut batch: Vec<Entry> = (1..=30).map(entry).collect();
        batch[21].account = "an account name too long".into();
        let err = conn.bulk().copy_in_with_plan(&plan, &batch).await.unwrap_err();
        assert_eq!(err.code(), Some(&SqlState::STRING_DATA_RIGHT_TRUNCATION), "{err}");
        assert_eq!(err.row(), Some(21), "{err}");
        assert_eq!(err.field(), Some("account"), "{err}");
        assert_eq!(err.column(), Some("account"), "{err}");
        assert_eq!(crate::count(&db, "ledger").await, 0);
        // A duplicate key: named by row too.
        batch[21].account = "short".into();
        batch[25].id = 3;
        let err = conn.bulk().copy_in_with_plan(&plan, &batch).await.unwrap_err();
        assert_eq!(err.code(), Some(&SqlState::UNIQUE_VIOLATION), "{err}");
        assert_eq!(err.row(), Some(25), "{err}");
        assert_eq!(crate::count(&db, "ledger").await, 0);
        batch[25].id = 26;
        assert_eq!(conn.bulk().copy_in_with_plan(&plan, &batch).await.unwrap(), 30);
    }

    /// Inside a caller's transaction: the bound batch is part of it, and a refused one is
    /// named and rolled back with it.
    async fn in_a_transaction(db, conn) {
        db.client().batch_execute(LEDGER).await.unwrap();
        let plan = conn.bulk().plan::<Entry>().await.unwrap();
        let mut tx = begin(&mut conn).await;
        let batch: Vec<Entry> = (1..=10).map(entry).collect();
        assert_eq!(tx.bulk().copy_in_with_plan(&plan, &batch).await.unwrap(), 10);
        assert_eq!(scalar(&mut tx, "SELECT count(*) FROM ledger").await.unwrap(), 10);
        let mut bad: Vec<Entry> = (11..=20).map(entry).collect();
        bad[4].account = "much too long for it".into();
        let err = tx.bulk().copy_in_with_plan(&plan, &bad).await.unwrap_err();
        assert_eq!(err.row(), Some(4), "{err}");
        assert_eq!(err.field(), Some("account"), "{err}");
        tx.rollback().await.unwrap();
        assert_eq!(crate::count(&db, "ledger").await, 0);
        assert_eq!(conn.bulk().copy_in_with_plan(&plan, &batch).await.unwrap(), 10);
    }

    /// Inside a transaction block opened with a raw `BEGIN` (which no client library tracks):
    /// the refused INSERT aborted it, so the COPY that would name the row cannot run; the
    /// INSERT's own error is returned, not "current transaction is aborted".
    async fn a_raw_begin_gets_the_inserts_own_error(db, conn) {
        db.client().batch_execute(LEDGER).await.unwrap();
        execute(&mut conn, "BEGIN").await.unwrap();
        let mut batch: Vec<Entry> = (1..=10).map(entry).collect();
        batch[6].account = "an account name too long".into();
        let err = conn.bulk().copy_in(&batch).await.unwrap_err();
        assert_eq!(err.code(), Some(&SqlState::STRING_DATA_RIGHT_TRUNCATION), "{err}");
        execute(&mut conn, "ROLLBACK").await.unwrap();
        assert_eq!(crate::count(&db, "ledger").await, 0);
    }

    /// Rows a `BEFORE` trigger skips are not counted, as with a COPY.
    async fn rows_a_trigger_skips_are_not_counted(db, conn) {
        db.client()
            .batch_execute(&format!(
                "{LEDGER}; CREATE FUNCTION skip_odd() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN IF NEW.id % 2 = 1 THEN RETURN NULL; END IF; RETURN NEW; END $$; \
                 CREATE TRIGGER skip_odd BEFORE INSERT ON ledger FOR EACH ROW EXECUTE FUNCTION skip_odd()"
            ))
            .await
            .unwrap();
        let plan = conn.bulk().plan::<Entry>().await.unwrap();
        let batch: Vec<Entry> = (1..=10).map(entry).collect();
        assert_eq!(conn.bulk().copy_in_with_plan(&plan, &batch).await.unwrap(), 5);
        assert_eq!(crate::count(&db, "ledger").await, 5);
    }

    /// A table with a rule: an `INSERT` would apply it, a COPY does not — so it is copied.
    async fn a_table_with_rules_is_copied(db, conn) {
        db.client()
            .batch_execute(&format!(
                "{LEDGER}; CREATE TABLE diverted (LIKE ledger); \
                 CREATE RULE divert AS ON INSERT TO ledger DO INSTEAD \
                 INSERT INTO diverted VALUES (NEW.*)"
            ))
            .await
            .unwrap();
        let plan = conn.bulk().plan::<Entry>().await.unwrap();
        let batch: Vec<Entry> = (1..=10).map(entry).collect();
        assert_eq!(conn.bulk().copy_in_with_plan(&plan, &batch).await.unwrap(), 10);
        assert_eq!(crate::count(&db, "ledger").await, 10);
        assert_eq!(crate::count(&db, "diverted").await, 0);
    }
}

#[tokio::test]
async fn blocking_client_inserts_small_batches_and_names_a_refused_value() {
    use pgbulk::sync::BulkExt as _;
    let db = crate::db().await;
    db.client().batch_execute(LEDGER).await.unwrap();
    let conninfo = db.connection_string();
    tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&conninfo, postgres::NoTls).unwrap();
        let plan = client.bulk().plan::<Entry>().unwrap();
        let mut batch: Vec<Entry> = (1..=20).map(entry).collect();
        batch[7].account = "an account name too long".into();
        let err = client.bulk().copy_in_with_plan(&plan, &batch).unwrap_err();
        assert_eq!(err.row(), Some(7), "{err}");
        assert_eq!(err.field(), Some("account"), "{err}");
        batch[7].account = "fine".into();
        assert_eq!(client.bulk().copy_in_with_plan(&plan, &batch).unwrap(), 20);
    })
    .await
    .unwrap();
    assert_eq!(crate::count(&db, "ledger").await, 20);
}
