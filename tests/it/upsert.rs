//! `upsert_via_staging`: counts, unchanged rows, in-batch duplicates, conflict targets, generated
//! columns, failures, transactions, cancellation and concurrency — on every async client
//! (`on_every_client!`).

use crate::{count, unsized_rows};
use futures_util::FutureExt as _;
use pgbulk::testkit::TestDb;
use pgbulk::{BulkExt, CopyRow, ErrorKind, UpsertCounts};
use rust_decimal::Decimal;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio_postgres::error::SqlState;

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "products")]
struct Product {
    #[copy(key)]
    id: i64,
    name: String,
    price: Decimal,
    stock: i32,
}

const PRODUCTS: &str = "CREATE TABLE products (id int8 PRIMARY KEY, name text NOT NULL, \
                        price numeric(12,2) NOT NULL, stock int4 NOT NULL CHECK (stock >= 0))";

fn product(id: i64) -> Product {
    Product {
        id,
        name: format!("product {id}"),
        price: Decimal::new(id * 100 + 99, 2),
        stock: i32::try_from(id % 50).unwrap(),
    }
}

async fn all_products(db: &TestDb) -> Vec<Product> {
    let mut rows = db
        .client()
        .bulk()
        .copy_out::<Product>()
        .collect_vec()
        .await
        .unwrap();
    rows.sort_by_key(|p| p.id);
    rows
}

/// Staging tables a call left behind, asked on the session the calls ran on (shared bodies:
/// `scalar(&mut conn, STAGES_LEFT)`): a per-call one (`pgbulk_stage_<pid>_<n>`, which sqlx
/// uses) in any session, or this session's reused one (`pgbulk_stage_r<hash>`) that still holds
/// rows.
pub const STAGES_LEFT: &str = "SELECT count(*) FROM pg_class WHERE relpersistence = 't' AND \
    (relname ~ '^pgbulk_stage_[0-9]+_[0-9]+$' OR (relname LIKE 'pgbulk\\_stage\\_r%' \
    AND relnamespace = pg_my_temp_schema() AND (xpath('/row/n/text()', query_to_xml( \
    format('SELECT count(*) AS n FROM pg_temp.%I', relname), false, true, '')))[1] \
    ::text::int8 > 0))";

/// Staging tables a call left behind: a per-call one (`pgbulk_stage_<pid>_<n>`, which sqlx
/// uses) in any session, or a reused one (`pgbulk_stage_r<hash>`, which stays, empty, for the
/// session's next call) of `db.client()`'s session that still holds rows.
pub async fn staging_tables(db: &TestDb) -> i64 {
    let client = db.client();
    let per_call: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relname ~ '^pgbulk_stage_[0-9]+_[0-9]+$'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let reused: Vec<String> = client
        .query(
            "SELECT relname::text FROM pg_class WHERE relname LIKE 'pgbulk\\_stage\\_r%' \
             AND relnamespace = pg_my_temp_schema()",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut holding = 0;
    for name in reused {
        let rows: i64 = client
            .query_one(&format!("SELECT count(*) FROM pg_temp.\"{name}\""), &[])
            .await
            .unwrap()
            .get(0);
        holding += i64::from(rows > 0);
    }
    per_call + holding
}

/// `xmin` of each row, by id: changes exactly when the row is rewritten.
async fn xmins(db: &TestDb) -> Vec<(i64, String)> {
    db.client()
        .query("SELECT id, xmin::text FROM products ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

pub fn counts(inserted: u64, updated: u64, unchanged: u64, duplicates: u64) -> UpsertCounts {
    let mut c = UpsertCounts::default();
    c.inserted = inserted;
    c.updated = updated;
    c.unchanged = unchanged;
    c.duplicates = duplicates;
    c
}

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "stock")]
struct StockLevel {
    #[copy(key)]
    warehouse: String,
    #[copy(key)]
    sku: i32,
    qty: i64,
    tags: Vec<String>,
}

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "catalog")]
struct CatalogEntry {
    code: String,
    title: String,
    price: Decimal,
    qty: i32,
}

/// A table with an identity key the struct does not carry, a natural key under a named
/// constraint, a generated column and defaults.
const CATALOG: &str = "CREATE TABLE catalog (
    id int8 GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code text NOT NULL CONSTRAINT catalog_code_key UNIQUE,
    title text NOT NULL,
    price numeric(10,2) NOT NULL,
    qty int4 NOT NULL,
    total numeric GENERATED ALWAYS AS (price * qty) STORED,
    note text NOT NULL DEFAULT 'none',
    created_at timestamptz NOT NULL DEFAULT now()
)";

fn entry(code: &str, price: i64, qty: i32) -> CatalogEntry {
    CatalogEntry {
        code: code.to_owned(),
        title: format!("title {code}"),
        price: Decimal::new(price, 2),
        qty,
    }
}

on_every_client! {
    async fn counts_inserted_updated_unchanged_and_skips_equal_rows(db, conn) {
        db.client().batch_execute(PRODUCTS).await.unwrap();
        let mut rows: Vec<Product> = (0..1000).map(product).collect();

        let first = conn.bulk().upsert_via_staging(&rows).await.unwrap();
        assert_eq!(first, counts(1000, 0, 0, 0));
        assert_eq!(all_products(&db).await, rows);

        // The same rows again: nothing is rewritten.
        let before = xmins(&db).await;
        let again = conn.bulk().upsert_via_staging(&rows).await.unwrap();
        assert_eq!(again, counts(0, 0, 1000, 0));
        assert_eq!(xmins(&db).await, before, "equal rows must not be rewritten");

        // 10% changed (every 10th), 5% new.
        for p in rows.iter_mut().filter(|p| p.id % 10 == 3) {
            p.price += Decimal::ONE;
            p.name.push_str(" v2");
        }
        rows.extend((1000..1050).map(product));
        let sync = conn.bulk().upsert_via_staging(&rows).await.unwrap();
        assert_eq!(sync, counts(50, 100, 900, 0));
        assert_eq!(sync.total(), 1050);
        assert_eq!(all_products(&db).await, rows);
        let after = xmins(&db).await;
        for ((id, old), (id2, new)) in before.iter().zip(&after) {
            assert_eq!(id, id2);
            assert_eq!(
                old != new,
                id % 10 == 3,
                "row {id} rewritten: {}",
                old != new
            );
        }
        assert_eq!(scalar(&mut conn, STAGES_LEFT).await.unwrap(), 0);
    }

    async fn do_nothing_and_update_columns(db, conn) {
        db.client().batch_execute(PRODUCTS).await.unwrap();
        let rows: Vec<Product> = (0..100).map(product).collect();
        conn.bulk().copy_in(&rows).await.unwrap();

        let mut changed = rows.clone();
        for p in &mut changed {
            p.name = format!("renamed {}", p.id);
            p.stock += 1;
        }
        changed.extend((100..110).map(product));

        // DO NOTHING: existing rows stay as they are, new ones are inserted.
        let c = conn
            .bulk()
            .upsert_via_staging(&changed)
            .do_nothing()
            .await
            .unwrap();
        assert_eq!(c, counts(10, 0, 100, 0));
        let now = all_products(&db).await;
        assert_eq!(&now[..100], &rows[..]);
        assert_eq!(now.len(), 110);

        // Only `stock` is updated; `name` keeps its old value.
        let c = conn
            .bulk()
            .upsert_via_staging(&changed)
            .update_columns(["stock"])
            .await
            .unwrap();
        assert_eq!(c, counts(0, 100, 10, 0));
        let now = all_products(&db).await;
        for (p, old) in now.iter().zip(&rows) {
            assert_eq!(p.name, old.name);
            assert_eq!(p.stock, old.stock + 1);
        }

        // A key column cannot be updated; an unknown column is named.
        let err = conn
            .bulk()
            .upsert_via_staging(&changed)
            .update_columns(["id"])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Usage);
        let err = conn
            .bulk()
            .upsert_via_staging(&changed)
            .update_columns(["nope"])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Usage);
        assert!(err.to_string().contains("\"nope\""), "{err}");
    }

    async fn in_batch_duplicates_last_occurrence_wins(db, conn) {
        db.client().batch_execute(PRODUCTS).await.unwrap();
        conn.bulk().copy_in([product(1)]).await.unwrap();
        let named = |id: i64, name: &str| Product {
            name: name.to_owned(),
            ..product(id)
        };
        let batch = vec![
            named(1, "first"),
            named(2, "a"),
            named(1, "second"),
            named(3, "x"),
            named(2, "b"),
            named(1, "third"),
            named(2, "c"),
        ];
        let c = conn.bulk().upsert_via_staging(&batch).await.unwrap();
        assert_eq!(c, counts(2, 1, 0, 4));
        let names: Vec<(i64, String)> = all_products(&db)
            .await
            .into_iter()
            .map(|p| (p.id, p.name))
            .collect();
        assert_eq!(
            names,
            [(1, "third".into()), (2, "c".into()), (3, "x".into())]
        );
        // A batch whose last occurrence equals the stored row is unchanged, even if earlier
        // occurrences differ.
        let c = conn
            .bulk()
            .upsert_via_staging(vec![named(3, "y"), named(3, "x")])
            .await
            .unwrap();
        assert_eq!(c, counts(0, 0, 1, 1));
    }

    async fn composite_keys(db, conn) {
        db.client()
            .batch_execute(
                "CREATE TABLE stock (warehouse text, sku int4, qty int8 NOT NULL, tags text[], \
                 PRIMARY KEY (warehouse, sku))",
            )
            .await
            .unwrap();
        let level = |w: &str, sku: i32, qty: i64| StockLevel {
            warehouse: w.to_owned(),
            sku,
            qty,
            tags: vec![w.to_owned()],
        };
        let first: Vec<StockLevel> = ["north", "south"]
            .iter()
            .flat_map(|w| (0..50).map(move |s| level(w, s, i64::from(s))))
            .collect();
        let c = conn.bulk().upsert_via_staging(&first).await.unwrap();
        assert_eq!(c, counts(100, 0, 0, 0));
        // Same sku in another warehouse is another key; same (warehouse, sku) twice: last wins.
        let second = vec![
            level("north", 1, 1),    // unchanged
            level("north", 2, 20),   // updated
            level("east", 2, 5),     // new
            level("south", 2, 7),    // replaced below
            level("south", 2, 2),    // = stored: unchanged after the duplicate is dropped
            level("south", 3, 1000), // updated
        ];
        let c = conn
            .bulk()
            .upsert_via_staging(&second)
            .await
            .unwrap();
        assert_eq!(c, counts(1, 2, 2, 1));
        let rows = conn
            .bulk()
            .copy_out_query::<StockLevel>("SELECT * FROM stock WHERE sku IN (2, 3) ORDER BY 1, 2")
            .collect_vec()
            .await
            .unwrap();
        assert_eq!(
            rows,
            [
                level("east", 2, 5),
                level("north", 2, 20),
                level("north", 3, 3),
                level("south", 2, 2),
                level("south", 3, 1000),
            ]
        );
    }

    async fn named_constraint_with_generated_identity_and_default_columns(db, conn) {
        db.client().batch_execute(CATALOG).await.unwrap();
        let rows = vec![entry("a", 150, 2), entry("b", 1000, 1), entry("c", 1, 0)];
        let c = conn
            .bulk()
            .upsert_via_staging(&rows)
            .conflict_constraint("catalog_code_key")
            .await
            .unwrap();
        assert_eq!(c, counts(3, 0, 0, 0));
        db.client()
            .batch_execute("UPDATE catalog SET note = 'kept' WHERE code = 'a'")
            .await
            .unwrap();

        let rows = vec![entry("a", 200, 3), entry("b", 1000, 1), entry("d", 5, 5)];
        let c = conn
            .bulk()
            .upsert_via_staging(&rows)
            .conflict_constraint("catalog_code_key")
            .await
            .unwrap();
        assert_eq!(c, counts(1, 1, 1, 0));
        // The same with the columns instead of the constraint's name.
        let c = conn
            .bulk()
            .upsert_via_staging(&rows)
            .conflict_columns(["code"])
            .await
            .unwrap();
        assert_eq!(c, counts(0, 0, 3, 0));

        let mut got: Vec<(i64, String, Decimal, String)> = db
            .client()
            .query(
                "SELECT id, code, total, note FROM catalog ORDER BY code",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect();
        // ON CONFLICT draws an identity value for every proposed row, conflicting or not: the new
        // row's id is past the ones drawn for the three conflicting rows of the first batch.
        assert!(got[3].0 > 3, "{got:?}");
        got[3].0 = 4;
        assert_eq!(
            got,
            [
                // identity kept on update, generated column recomputed, defaults filled and kept.
                (1, "a".into(), Decimal::new(600, 2), "kept".into()),
                (2, "b".into(), Decimal::new(1000, 2), "none".into()),
                (3, "c".into(), Decimal::new(0, 2), "none".into()),
                (4, "d".into(), Decimal::new(2500, 4), "none".into()),
            ]
        );

        // A struct without #[copy(key)] and no conflict target is a usage error; so is an unknown
        // constraint.
        let err = conn
            .bulk()
            .upsert_via_staging(&rows)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Usage);
        assert!(err.to_string().contains("#[copy(key)]"), "{err}");
        let err = conn
            .bulk()
            .upsert_via_staging(&rows)
            .conflict_constraint("no_such_constraint")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Usage);
        assert_eq!(scalar(&mut conn, STAGES_LEFT).await.unwrap(), 0);
    }

    async fn check_violation_leaves_target_untouched_and_no_staging_table(db, conn) {
        db.client().batch_execute(PRODUCTS).await.unwrap();
        let rows: Vec<Product> = (0..500).map(product).collect();
        conn.bulk().copy_in(&rows).await.unwrap();
        let before = all_products(&db).await;

        // Row 300 updates into a CHECK violation; rows before it would be valid updates.
        let mut bad: Vec<Product> = rows
            .iter()
            .map(|p| Product {
                stock: p.stock + 1,
                ..p.clone()
            })
            .collect();
        bad[300].stock = -1;
        bad.extend((500..600).map(product));
        let err = conn
            .bulk()
            .upsert_via_staging(&bad)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Db);
        assert_eq!(err.code(), Some(&SqlState::CHECK_VIOLATION));
        assert_eq!(all_products(&db).await, before);
        assert_eq!(scalar(&mut conn, STAGES_LEFT).await.unwrap(), 0);
        // The client is usable, and not left inside a transaction.
        let c = conn
            .bulk()
            .upsert_via_staging(&rows[..10])
            .await
            .unwrap();
        assert_eq!(c, counts(0, 0, 10, 0));

        // Inside a caller's transaction: the failed call is rolled back to its savepoint, the
        // transaction stays usable, and what it did before survives its commit.
        let mut tx = begin(&mut conn).await;
        tx.bulk().copy_in([product(1000)]).await.unwrap();
        let err = tx.bulk().upsert_via_staging(&bad).await.unwrap_err();
        assert_eq!(err.code(), Some(&SqlState::CHECK_VIOLATION));
        let c = tx.bulk().upsert_via_staging([product(1001)]).await.unwrap();
        assert_eq!(c, counts(1, 0, 0, 0));
        tx.commit().await.unwrap();
        let now = all_products(&db).await;
        assert_eq!(&now[..500], &before[..]);
        assert_eq!(now.len(), 502);
        assert_eq!(scalar(&mut conn, STAGES_LEFT).await.unwrap(), 0);

        // A bad row in the COPY itself (an encode error) also leaves nothing behind.
        let mut nul = rows.clone();
        nul[7].name = "bad\0name".into();
        let err = conn
            .bulk()
            .upsert_via_staging(&nul)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Encode);
        assert_eq!(err.row(), Some(7));
        assert_eq!(err.field(), Some("name"));
        assert_eq!(scalar(&mut conn, STAGES_LEFT).await.unwrap(), 0);
    }

    async fn a_changed_type_modifier_gets_a_stage_of_its_own(db, conn) {
        // The stage is reused per session and shape, the shape including each column's type
        // modifier: after `numeric(12,2)` becomes `numeric(12,4)`, a reused stage of the old
        // shape would round 1.2345 to 1.23 on its way through.
        db.client().batch_execute(PRODUCTS).await.unwrap();
        let first = conn
            .bulk()
            .upsert_via_staging(unsized_rows([product(1)]))
            .await
            .unwrap();
        assert_eq!(first, counts(1, 0, 0, 0));
        db.client()
            .batch_execute("ALTER TABLE products ALTER price TYPE numeric(12,4)")
            .await
            .unwrap();
        let precise = Product {
            price: Decimal::new(12_345, 4),
            ..product(1)
        };
        let second = conn
            .bulk()
            .upsert_via_staging(unsized_rows([precise.clone()]))
            .await
            .unwrap();
        assert_eq!(second, counts(0, 1, 0, 0));
        assert_eq!(all_products(&db).await, std::slice::from_ref(&precise));
        // Bound as arrays (no stage), the column's new modifier applies as well.
        let finer = Product {
            price: Decimal::new(12_346, 4),
            ..product(1)
        };
        let third = conn
            .bulk()
            .upsert_via_staging(std::slice::from_ref(&finer))
            .await
            .unwrap();
        assert_eq!(third, counts(0, 1, 0, 0));
        assert_eq!(all_products(&db).await, [finer]);
    }

    async fn in_a_transaction_rollback_undoes_it(db, conn) {
        db.client().batch_execute(PRODUCTS).await.unwrap();
        db.client()
            .bulk()
            .copy_in((0..10).map(product))
            .await
            .unwrap();
        let mut tx = begin(&mut conn).await;
        let changed: Vec<Product> = (5..20)
            .map(|id| Product {
                stock: 49,
                ..product(id)
            })
            .collect();
        // A batch that says its size, under 2,000 rows: bound as arrays, no staging table.
        let c = tx.bulk().upsert_via_staging(&changed).await.unwrap();
        assert_eq!(c, counts(10, 5, 0, 0));
        let n = scalar(&mut tx, "SELECT count(*) FROM products").await.unwrap();
        assert_eq!(n, 20);
        let this_session = "FROM pg_class WHERE relname LIKE 'pgbulk\\_stage\\_%' \
                            AND relnamespace = pg_my_temp_schema()";
        let stages = scalar(&mut tx, &format!("SELECT count(*) {this_session}"))
            .await
            .unwrap();
        assert_eq!(stages, 0);
        // Through the staging table: the changes are visible inside the transaction, and the
        // staging table is already empty (it stays, for the session's next call).
        let restocked: Vec<Product> = changed
            .iter()
            .map(|p| Product {
                stock: 48,
                ..p.clone()
            })
            .collect();
        let c = tx
            .bulk()
            .upsert_via_staging(unsized_rows(&restocked))
            .await
            .unwrap();
        assert_eq!(c, counts(0, 15, 0, 0));
        let stages = scalar(&mut tx, &format!("SELECT count(*) {this_session}"))
            .await
            .unwrap();
        assert_eq!(stages, 1);
        let stage = text(&mut tx, &format!("SELECT relname::text {this_session}"))
            .await
            .unwrap();
        let staged = scalar(&mut tx, &format!("SELECT count(*) FROM pg_temp.\"{stage}\""))
            .await
            .unwrap();
        assert_eq!(staged, 0);
        // A second call in the same transaction starts from the empty stage.
        let c = tx
            .bulk()
            .upsert_via_staging(unsized_rows(&restocked[..3]))
            .await
            .unwrap();
        assert_eq!(c, counts(0, 0, 3, 0));
        tx.rollback().await.unwrap();
        assert_eq!(count(&db, "products").await, 10);
        assert_eq!(
            all_products(&db).await,
            (0..10).map(product).collect::<Vec<_>>()
        );
    }

    async fn dropped_future_rolls_back_and_leaves_no_staging_table(db, conn) {
        db.client().batch_execute(PRODUCTS).await.unwrap();
        let rows: Vec<Product> = (0..400_000).map(product).collect();
        // Dropped while the staging COPY is sending rows, at a point fixed by the call itself:
        // the first progress report panics (deliberately), the panic unwinds out of the poll
        // that made it, and the future is dropped there — mid-COPY, before its COMMIT can have
        // been sent. (Gates that waited for the report in a `select!` dropped it only at the
        // upsert's next `Pending`: where a driver need not wait while sending, as sqlx, that
        // could come after its COMMIT was sent.)
        let sent = AtomicU64::new(0);
        let upsert = conn
            .bulk()
            .flush_bytes(64 * 1024)
            .on_progress(|p| {
                if p.rows < 400_000 {
                    sent.store(p.rows, Ordering::SeqCst);
                    panic!("deliberate: drops the upsert mid-COPY (not a failure)");
                }
            })
            .upsert_via_staging(&rows);
        let dropped = std::panic::AssertUnwindSafe(std::future::IntoFuture::into_future(upsert))
            .catch_unwind()
            .await;
        assert!(dropped.is_err(), "the upsert finished before it was dropped: {dropped:?}");
        assert!(sent.load(Ordering::SeqCst) > 0);
        // sqlx: the session was ended, and a new connection goes on (see `conn.rs`).
        after_abandoned_copy(&mut conn, &db).await;
        // The connection is usable and not inside a leftover transaction: this commits for real.
        let c = conn
            .bulk()
            .upsert_via_staging(&rows[..100])
            .await
            .unwrap();
        assert_eq!(c, counts(100, 0, 0, 0));
        let mut other = connect(&db).await;
        let n = scalar(&mut other, "SELECT count(*) FROM products").await.unwrap();
        assert_eq!(n, 100);
        assert_eq!(scalar(&mut conn, STAGES_LEFT).await.unwrap(), 0);
    }

    /// Eight upserts at once through one pool (deadpool on tokio-postgres, a `PgPool` on sqlx).
    async fn concurrent_upserts_on_a_pool_into_one_table(db, conn) {
        db.client().batch_execute(PRODUCTS).await.unwrap();
        let pool = pool(&db, 8).await;
        // Every task writes the shared keys 0..2000 with the same values, plus 500 keys of its
        // own, in its own order: each key must be inserted exactly once, never updated.
        let tasks: Vec<_> = (0..8i64)
            .map(|t| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    let mut rows: Vec<Product> = (0..2000).map(product).collect();
                    rows.extend((10_000 + t * 500..10_000 + (t + 1) * 500).map(product));
                    rows.rotate_left(usize::try_from(t).unwrap() * 300);
                    let mut pooled = checkout(&pool).await;
                    let counts = pooled.bulk().upsert_via_staging(&rows).await.unwrap();
                    counts
                })
            })
            .collect();
        let mut total = UpsertCounts::default();
        for t in tasks {
            let c = t.await.unwrap();
            assert_eq!(c.inserted + c.unchanged, 2500, "{c:?}");
            total.inserted += c.inserted;
            total.updated += c.updated;
            total.unchanged += c.unchanged;
        }
        assert_eq!(total.inserted, 2000 + 8 * 500);
        assert_eq!(total.updated, 0);
        assert_eq!(total.unchanged, 7 * 2000);
        let mut expected: Vec<Product> = (0..2000).map(product).collect();
        expected.extend((10_000..14_000).map(product));
        assert_eq!(all_products(&db).await, expected);
        assert_eq!(scalar(&mut conn, STAGES_LEFT).await.unwrap(), 0);
    }

    /// A `BEGIN` sent as SQL on a plain client: the upsert's own `COMMIT` would commit the caller's
    /// transaction, so the call refuses, and the caller's transaction is still theirs to roll back.
    async fn refuses_to_commit_a_transaction_opened_with_raw_begin(db, conn) {
        db.client().batch_execute(PRODUCTS).await.unwrap();
        execute(&mut conn, "BEGIN; INSERT INTO products VALUES (1, 'mine', 1, 1)")
            .await
            .unwrap();
        let err = conn
            .bulk()
            .upsert_via_staging((2..5).map(product))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Usage, "{err}");
        // The hint names this client's way to open a transaction.
        assert!(err.to_string().contains(BEGIN_HINT), "{err}");
        let quarantined = conn
            .bulk()
            .quarantine()
            .copy_in(&(2..5).map(product).collect::<Vec<_>>())
            .await
            .unwrap_err();
        assert_eq!(quarantined.kind(), ErrorKind::Usage, "{quarantined}");
        // The caller's transaction is untouched: its row, and only its row.
        assert_eq!(scalar(&mut conn, "SELECT count(*) FROM products").await.unwrap(), 1);
        execute(&mut conn, "ROLLBACK").await.unwrap();
        // Nothing was committed behind the caller's back: the rolled-back row is gone, and no
        // upserted row arrived.
        assert_eq!(count(&db, "products").await, 0);
        // Outside a transaction block the same call works.
        let counts = conn
            .bulk()
            .upsert_via_staging((2..5).map(product))
            .await
            .unwrap();
        assert_eq!(counts.inserted, 3);
    }
}
