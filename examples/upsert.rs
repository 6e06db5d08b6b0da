//! pgbulk upsert: sync a 100,000-row product catalog in which 10% of the rows changed and 5% are
//! new, with `upsert_via_staging`, beside the same sync done with one
//! `INSERT .. ON CONFLICT` per row, pipelined in one transaction.
//!
//! ```text
//! cargo run --release --example upsert
//! ```
//!
//! Without `DATABASE_URL` it starts a throwaway PostgreSQL (`pgbulk::testkit`) and removes it on
//! exit. With `DATABASE_URL` it creates (and afterwards drops) the tables
//! `pgbulk_example_catalog` and `pgbulk_example_catalog_rowwise` there.

#[path = "support/mod.rs"]
mod support;

use futures_util::future::try_join_all;
use pgbulk::{BulkExt, CopyRow};
use rust_decimal::Decimal;
use std::time::Instant;

use support::BoxError;

const ROWS: i64 = 100_000;
const TABLE: &str = "pgbulk_example_catalog";
const ROWWISE: &str = "pgbulk_example_catalog_rowwise";

/// A product as the upstream feed delivers it.
#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "pgbulk_example_catalog")]
struct Product {
    #[copy(key)]
    sku: i64,
    name: String,
    description: String,
    category: String,
    price: Decimal,
    stock: i32,
    tags: Vec<String>,
}

fn ddl(table: &str) -> String {
    format!(
        "DROP TABLE IF EXISTS {table};
         CREATE TABLE {table} (
             sku         bigint PRIMARY KEY,
             name        text NOT NULL,
             description text NOT NULL,
             category    text NOT NULL,
             price       numeric(12, 2) NOT NULL,
             stock       integer NOT NULL,
             tags        text[] NOT NULL,
             synced_at   timestamptz NOT NULL DEFAULT now()
         )"
    )
}

fn product(sku: i64, version: i64) -> Product {
    Product {
        sku,
        name: format!("Product {sku}"),
        description: format!("A fine product, number {sku}, revision {version}"),
        category: ["tools", "garden", "kitchen", "toys", "books"]
            [usize::try_from(sku % 5).unwrap()]
        .to_owned(),
        price: Decimal::new(sku % 10_000 * 7 + 99 + version * 100, 2),
        stock: i32::try_from((sku * 31 + version) % 500).unwrap(),
        tags: vec![format!("t{}", sku % 13), format!("r{version}")],
    }
}

/// Today's feed: every row of yesterday's, 10% of them changed, plus 5% new ones.
fn feed() -> Vec<Product> {
    (0..ROWS + ROWS / 20)
        .map(|sku| product(sku, i64::from(sku % 10 == 7)))
        .collect()
}

/// The same sync with one `INSERT .. ON CONFLICT` per row, pipelined in one transaction
/// (tokio-postgres sends the queries of concurrent futures on one connection back to back).
async fn sync_rowwise(
    client: &mut tokio_postgres::Client,
    rows: &[Product],
) -> Result<(u64, u64), BoxError> {
    let tx = client.transaction().await?;
    let stmt = tx
        .prepare(&format!(
            "INSERT INTO {ROWWISE} (sku, name, description, category, price, stock, tags) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (sku) DO UPDATE SET name = EXCLUDED.name, \
               description = EXCLUDED.description, category = EXCLUDED.category, \
               price = EXCLUDED.price, stock = EXCLUDED.stock, tags = EXCLUDED.tags \
             WHERE ({ROWWISE}.name, {ROWWISE}.description, {ROWWISE}.category, \
                    {ROWWISE}.price, {ROWWISE}.stock, {ROWWISE}.tags) \
               IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.description, EXCLUDED.category, \
                    EXCLUDED.price, EXCLUDED.stock, EXCLUDED.tags) \
             RETURNING (xmax = 0) AS inserted"
        ))
        .await?;
    let (mut inserted, mut updated) = (0, 0);
    for chunk in rows.chunks(2_000) {
        let (tx, stmt) = (&tx, &stmt);
        let results = try_join_all(chunk.iter().map(|p| async move {
            tx.query_opt(
                stmt,
                &[
                    &p.sku,
                    &p.name,
                    &p.description,
                    &p.category,
                    &p.price,
                    &p.stock,
                    &p.tags,
                ],
            )
            .await
        }))
        .await?;
        for row in results.into_iter().flatten() {
            if row.get::<_, bool>(0) {
                inserted += 1;
            } else {
                updated += 1;
            }
        }
    }
    tx.commit().await?;
    Ok((inserted, updated))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut db = support::Database::from_env().await?;
    let client: &mut tokio_postgres::Client = &mut db;
    client.batch_execute(&ddl(TABLE)).await?;
    client.batch_execute(&ddl(ROWWISE)).await?;

    // Yesterday's catalog, in both tables.
    let yesterday: Vec<Product> = (0..ROWS).map(|sku| product(sku, 0)).collect();
    client.bulk().copy_in(&yesterday).await?;
    client.bulk().table(ROWWISE).copy_in(&yesterday).await?;
    for table in [TABLE, ROWWISE] {
        client
            .batch_execute(&format!("VACUUM ANALYZE {table}"))
            .await?;
    }
    let today = feed();
    println!(
        "catalog: {ROWS} products; today's feed: {} rows ({} changed, {} new)",
        today.len(),
        ROWS / 10,
        ROWS / 20
    );

    let started = Instant::now();
    let counts = client.bulk().upsert_via_staging(&today).await?;
    let staged_secs = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let (inserted, updated) = sync_rowwise(client, &today).await?;
    let rowwise_secs = started.elapsed().as_secs_f64();
    let unchanged = u64::try_from(today.len())? - inserted - updated;

    // Both ways give the same table.
    let read = |table: &'static str| {
        client
            .bulk()
            .copy_out_query::<Product>(format!("SELECT * FROM {table} ORDER BY sku"))
            .collect_vec()
    };
    let (a, b) = (read(TABLE).await?, read(ROWWISE).await?);
    assert_eq!(a, b, "the two syncs disagree");
    assert_eq!(a, today, "the catalog is not today's feed");

    println!();
    println!(
        "upsert_via_staging      {:>6} inserted {:>6} updated {:>6} unchanged  in {staged_secs:>6.3} s",
        counts.inserted, counts.updated, counts.unchanged
    );
    println!(
        "INSERT .. ON CONFLICT   {inserted:>6} inserted {updated:>6} updated {unchanged:>6} unchanged  in {rowwise_secs:>6.3} s  (one per row, pipelined, one transaction)"
    );
    println!(
        "upsert_via_staging is {:.1}x faster; both tables hold today's feed exactly",
        rowwise_secs / staged_secs
    );

    if db.is_users() {
        db.batch_execute(&format!("DROP TABLE {TABLE}; DROP TABLE {ROWWISE}"))
            .await?;
    }
    Ok(())
}
