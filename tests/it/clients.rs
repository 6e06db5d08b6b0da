//! Every client users hold: deadpool-postgres `Object` and `Transaction`, bb8-postgres
//! `PooledConnection`, and the sync `postgres` crate's `Client` and `Transaction`.

use crate::upsert::staging_tables;
use crate::{count, db};
use pgbulk::{BulkExt, CopyRow, UpsertOptions};

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "accounts")]
struct Account {
    #[copy(key)]
    id: i64,
    owner: String,
    balance: i64,
}

const ACCOUNTS: &str =
    "CREATE TABLE accounts (id int8 PRIMARY KEY, owner text NOT NULL, balance int8 NOT NULL)";

fn account(id: i64) -> Account {
    Account {
        id,
        owner: format!("owner {id}"),
        balance: id * 10,
    }
}

/// Works on anything that implements `BulkExt` (with the pool features, pooled types do).
async fn load(client: &impl BulkExt, rows: &[Account]) -> u64 {
    client.bulk().copy_in(rows).await.unwrap()
}

#[tokio::test]
async fn deadpool_object_and_transaction() {
    use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
    let db = db().await;
    db.client().batch_execute(ACCOUNTS).await.unwrap();
    let manager = Manager::from_config(
        db.config().clone(),
        tokio_postgres::NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager).max_size(2).build().unwrap();
    let mut object = pool.get().await.unwrap();
    let rows: Vec<Account> = (0..100).map(account).collect();
    // Generic over BulkExt: the pooled Object itself implements it.
    assert_eq!(load(&object, &rows[..50]).await, 50);
    let counts = object.bulk().upsert_via_staging(&rows).await.unwrap();
    assert_eq!((counts.inserted, counts.unchanged), (50, 50));
    let back = object
        .bulk()
        .copy_out::<Account>()
        .collect_vec()
        .await
        .unwrap();
    assert_eq!(back.len(), 100);

    let tx = object.transaction().await.unwrap();
    assert_eq!(load(&tx, &[account(100)]).await, 1);
    let mut changed = rows[..10].to_vec();
    changed[0].balance = -1;
    let counts = tx.bulk().upsert_via_staging(&changed).await.unwrap();
    assert_eq!((counts.updated, counts.unchanged), (1, 9));
    tx.rollback().await.unwrap();
    assert_eq!(count(&db, "accounts").await, 100);
    let balance: i64 = db
        .client()
        .query_one("SELECT balance FROM accounts WHERE id = 0", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(balance, 0);
}

#[tokio::test]
async fn bb8_pooled_connection() {
    use bb8_postgres::PostgresConnectionManager;
    let db = db().await;
    db.client().batch_execute(ACCOUNTS).await.unwrap();
    let manager = PostgresConnectionManager::new(db.config().clone(), tokio_postgres::NoTls);
    let pool = bb8::Pool::builder()
        .max_size(2)
        .build(manager)
        .await
        .unwrap();
    let conn = pool.get().await.unwrap();
    let rows: Vec<Account> = (0..100).map(account).collect();
    assert_eq!(load(&conn, &rows).await, 100);
    let mut changed = rows.clone();
    changed[5].owner = "someone else".into();
    let counts = conn.bulk().upsert_via_staging(&changed).await.unwrap();
    assert_eq!(
        (counts.inserted, counts.updated, counts.unchanged),
        (0, 1, 99)
    );
    let back = conn
        .bulk()
        .copy_out_query::<Account>("SELECT * FROM accounts ORDER BY id")
        .collect_vec()
        .await
        .unwrap();
    assert_eq!(back, changed);
}

#[tokio::test]
async fn sync_postgres_client_and_transaction() {
    use pgbulk::sync::BulkExt as _;
    let db = db().await;
    db.client().batch_execute(ACCOUNTS).await.unwrap();
    let conninfo = db.connection_string();
    // The sync client runs its own runtime: use it off this runtime's thread.
    let back = tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&conninfo, postgres::NoTls).unwrap();
        let rows: Vec<Account> = (0..1000).map(account).collect();
        assert_eq!(client.bulk().copy_in(&rows[..600]).unwrap(), 600);
        let counts = client.bulk().upsert_via_staging(&rows).unwrap();
        assert_eq!(
            (counts.inserted, counts.updated, counts.unchanged),
            (400, 0, 600)
        );

        // A small flush size: many chunks.
        let more: Vec<Account> = (1000..3000).map(account).collect();
        assert_eq!(
            client
                .bulk()
                .flush_bytes(4096)
                .copy_in(more.iter())
                .unwrap(),
            2000
        );

        let mut tx = client.transaction().unwrap();
        let mut changed = rows[..10].to_vec();
        changed[3].balance += 1;
        changed.push(account(5000));
        let counts = tx
            .bulk()
            .upsert_via_staging_with(&changed, &UpsertOptions::new().update_columns(["balance"]))
            .unwrap();
        assert_eq!(
            (counts.inserted, counts.updated, counts.unchanged),
            (1, 1, 9)
        );
        // A bad row: the COPY fails, the savepoint is rolled back, the transaction goes on.
        let mut bad = rows[..3].to_vec();
        bad[1].owner = "nul\0".into();
        let err = tx.bulk().upsert_via_staging(&bad).unwrap_err();
        assert_eq!(err.row(), Some(1));
        assert_eq!(err.field(), Some("owner"));
        // A value only the server refuses (a small batch is bound as arrays; the staging
        // COPY then names the row): the same, and nothing of the call stays.
        tx.batch_execute("ALTER TABLE accounts ALTER owner TYPE varchar(20)")
            .unwrap();
        let mut long = rows[..4].to_vec();
        long[2].owner = "an owner far too long for twenty".into();
        let err = tx.bulk().upsert_via_staging(&long).unwrap_err();
        assert_eq!(err.row(), Some(2), "{err}");
        assert_eq!(err.field(), Some("owner"));
        assert_eq!(err.column(), Some("owner"));
        let in_tx = tx.bulk().copy_out::<Account>().unwrap();
        assert_eq!(in_tx.len(), 3001);
        tx.commit().unwrap();

        // Errors carry row and field like the async API.
        let err = client.bulk().copy_in(&bad).unwrap_err();
        assert_eq!(err.row(), Some(1));
        client
            .bulk()
            .copy_out_query::<Account>("SELECT * FROM accounts WHERE id IN (3, 5000) ORDER BY id")
            .unwrap()
    })
    .await
    .unwrap();
    let mut expected = vec![account(3), account(5000)];
    expected[0].balance += 1;
    assert_eq!(back, expected);
    assert_eq!(count(&db, "accounts").await, 3001);
    assert_eq!(staging_tables(&db).await, 0);
}

/// A `BEFORE INSERT` trigger that returns NULL for odd ids skips those rows: the sync
/// `copy_in` returns the count the server reports (as the async one does), not the rows sent.
#[tokio::test]
async fn sync_copy_in_returns_the_servers_count_when_a_trigger_skips_rows() {
    use pgbulk::sync::BulkExt as _;
    let db = db().await;
    db.client()
        .batch_execute(&format!(
            "{ACCOUNTS}; \
             CREATE FUNCTION skip_odd() RETURNS trigger LANGUAGE plpgsql AS \
               $$ BEGIN IF NEW.id % 2 = 1 THEN RETURN NULL; END IF; RETURN NEW; END $$; \
             CREATE TRIGGER skip_odd BEFORE INSERT ON accounts \
               FOR EACH ROW EXECUTE FUNCTION skip_odd()"
        ))
        .await
        .unwrap();
    let conninfo = db.connection_string();
    let (written, written_async) = tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&conninfo, postgres::NoTls).unwrap();
        let rows: Vec<Account> = (0..10).map(account).collect();
        let written = client.bulk().copy_in(&rows).unwrap();
        // The client works afterwards, and reads back what the server kept.
        let back = client.bulk().copy_out::<Account>().unwrap();
        assert_eq!(back.len(), 5);
        (written, back.len())
    })
    .await
    .unwrap();
    assert_eq!(written, 5);
    assert_eq!(written_async, 5);
    // The async API agrees on the same table.
    let rows: Vec<Account> = (10..20).map(account).collect();
    assert_eq!(db.client().bulk().copy_in(&rows).await.unwrap(), 5);
    assert_eq!(count(&db, "accounts").await, 10);
}

/// A transaction opened with a raw `BEGIN` on a sync client: a sync upsert refuses with
/// `Usage` instead of committing it, and the caller's work is untouched (their `ROLLBACK`
/// still undoes it).
#[tokio::test]
async fn sync_upsert_refuses_a_raw_begin_and_leaves_the_callers_work_alone() {
    use pgbulk::sync::BulkExt as _;
    let db = db().await;
    db.client().batch_execute(ACCOUNTS).await.unwrap();
    let conninfo = db.connection_string();
    tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&conninfo, postgres::NoTls).unwrap();
        client
            .batch_execute("BEGIN; INSERT INTO accounts VALUES (1, 'mine', 1)")
            .unwrap();
        let rows: Vec<Account> = (2..5).map(account).collect();
        let err = client.bulk().upsert_via_staging(&rows).unwrap_err();
        assert_eq!(err.kind(), pgbulk::ErrorKind::Usage, "{err}");
        let err = client.bulk().quarantine_copy_in(&rows, None).unwrap_err();
        assert_eq!(err.kind(), pgbulk::ErrorKind::Usage, "{err}");
        // Still inside the caller's transaction, which sees its own row only.
        let n: i64 = client
            .query_one("SELECT count(*) FROM accounts", &[])
            .unwrap()
            .get(0);
        assert_eq!(n, 1);
        client.batch_execute("ROLLBACK").unwrap();
        let n: i64 = client
            .query_one("SELECT count(*) FROM accounts", &[])
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "the caller's ROLLBACK undid their INSERT");
        // On a real Transaction the same upsert runs (in a savepoint).
        let mut tx = client.transaction().unwrap();
        let counts = tx.bulk().upsert_via_staging(&rows).unwrap();
        assert_eq!(counts.inserted, 3);
        tx.rollback().unwrap();
    })
    .await
    .unwrap();
    assert_eq!(count(&db, "accounts").await, 0);
}

/// The sync API reaches what the async one has: iterator reads, upsert options and
/// `RETURNING` rows, `copy_in_returning`, quarantine.
#[tokio::test]
async fn sync_api_matches_the_async_one() {
    use pgbulk::sync::BulkExt as _;

    #[derive(CopyRow, Debug, PartialEq)]
    #[copy(table = "accounts")]
    struct Returned {
        id: i64,
        inserted: bool,
    }

    let db = db().await;
    db.client().batch_execute(ACCOUNTS).await.unwrap();
    let conninfo = db.connection_string();
    tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&conninfo, postgres::NoTls).unwrap();
        let rows: Vec<Account> = (0..100).map(account).collect();
        let back: Vec<Returned> = client.bulk().copy_in_returning(&rows[..50], true).unwrap();
        assert_eq!(back.len(), 50);
        assert_eq!(back[49].id, 49);

        let mut changed: Vec<Account> = (40..60).map(account).collect();
        for a in &mut changed {
            a.balance += 1;
        }
        let back: Vec<Returned> = client
            .bulk()
            .upsert_via_staging_returning(&changed, &UpsertOptions::new(), true)
            .unwrap();
        assert_eq!(back.len(), 20);
        assert_eq!(back.iter().filter(|r| r.inserted).count(), 10);
        let counts = client
            .bulk()
            .upsert_via_staging_with(&rows, &UpsertOptions::new().do_nothing())
            .unwrap();
        assert_eq!((counts.inserted, counts.unchanged), (40, 60));

        let mut bad: Vec<Account> = (100..110).map(account).collect();
        bad[3].owner = "nul\0".to_owned();
        let outcome = client.bulk().quarantine_copy_in(&bad, None).unwrap();
        assert_eq!(outcome.written, 9);
        assert_eq!(outcome.rejected[0].index, 3);

        let mut n = 0;
        for row in client
            .bulk()
            .copy_out_query_iter::<Account>("SELECT * FROM accounts ORDER BY id")
            .unwrap()
        {
            assert_eq!(row.unwrap().id, if n < 103 { n } else { n + 1 });
            n += 1;
        }
        assert_eq!(n, 109);
    })
    .await
    .unwrap();
}
