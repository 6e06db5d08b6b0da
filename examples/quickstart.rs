//! pgbulk quickstart: bulk-load 1,000,000 typed rows with `copy_in`, read them back with
//! `copy_out`, verify every one, and compare with one INSERT per row.
//!
//! ```text
//! cargo run --release --example quickstart
//! DATABASE_URL="host=/var/run/postgresql user=me dbname=scratch" cargo run --release --example quickstart
//! ```
//!
//! Without `DATABASE_URL` it starts a throwaway PostgreSQL from the local server binaries
//! (`pgbulk::testkit`) and removes it on exit. With `DATABASE_URL` it uses that server and
//! creates (and afterwards drops) the table `pgbulk_quickstart_orders` there.

#[path = "support/mod.rs"]
mod support;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use futures_util::TryStreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use pgbulk::{BulkExt, CopyRow, Progress};
use rust_decimal::Decimal;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use uuid::Uuid;

const ROWS: i64 = 1_000_000;
const INSERT_ROWS: i64 = 10_000;
const TABLE: &str = "pgbulk_quickstart_orders";

/// An order, as an application would model it.
#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "pgbulk_quickstart_orders")]
struct Order {
    #[copy(key)]
    id: i64,
    customer: String,
    email: Option<String>,
    amount: Decimal,
    paid: bool,
    weight: f64,
    quantity: i32,
    priority: i16,
    placed_on: NaiveDate,
    created_at: DateTime<Utc>,
    #[copy(rename = "external_id")]
    external: Uuid,
    tags: Vec<String>,
    scores: Vec<Option<i32>>,
    payload: Vec<u8>,
}

const DDL: &str = "
    DROP TABLE IF EXISTS pgbulk_quickstart_orders;
    CREATE TABLE pgbulk_quickstart_orders (
        id          bigint PRIMARY KEY,
        customer    text NOT NULL,
        email       varchar(200),
        amount      numeric(14, 2) NOT NULL,
        paid        boolean NOT NULL,
        weight      double precision NOT NULL,
        quantity    integer NOT NULL,
        priority    smallint NOT NULL,
        placed_on   date NOT NULL,
        created_at  timestamptz NOT NULL,
        external_id uuid NOT NULL,
        tags        text[] NOT NULL,
        scores      integer[] NOT NULL,
        payload     bytea NOT NULL
    )";

/// The order with id `id`: deterministic, so the read-back can be checked without keeping the
/// million rows in memory.
fn order(id: i64) -> Order {
    let base = DateTime::from_timestamp(1_700_000_000, 0).expect("valid timestamp");
    let small = i32::try_from(id % 10_000).expect("below 10,000");
    Order {
        id,
        customer: format!("customer-{}", id % 50_000),
        email: (id % 3 != 0).then(|| format!("c{id}@example.com")),
        amount: Decimal::new(id * 7 % 1_000_000, 2),
        paid: id % 2 == 0,
        weight: f64::from(small) / 8.0,
        quantity: small,
        priority: i16::try_from(id % 5).expect("below 5"),
        placed_on: NaiveDate::from_ymd_opt(2024, 1, 1).expect("valid date")
            + Duration::days(id % 365),
        created_at: base + Duration::microseconds(id * 1_234_567),
        external: Uuid::from_u128(
            0x5eed_0000_0000_0000_0000_0000_0000_0000 | u128::from(id.unsigned_abs()),
        ),
        tags: match id % 3 {
            0 => vec![],
            1 => vec!["new".to_owned()],
            _ => vec!["vip".to_owned(), "émigré".to_owned()],
        },
        scores: vec![Some(small), None, Some(-small)],
        payload: id.to_le_bytes().to_vec(),
    }
}

/// Rows per second, for display (precision loss in the float conversion is irrelevant here).
#[allow(clippy::cast_precision_loss)]
fn per_sec(rows: i64, secs: f64) -> f64 {
    rows as f64 / secs
}

/// Megabytes, for display.
#[allow(clippy::cast_precision_loss)]
fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

use support::BoxError;

/// Progress of a long copy: a bar on stderr when it is a terminal; otherwise (CI logs, output
/// piped to a file) a plain line about every 10%, since a bar redrawn in place makes no sense
/// there.
struct Reporter {
    verb: &'static str,
    bar: Option<ProgressBar>,
    total: u64,
    next_line: AtomicU64,
    started: Instant,
}

impl Reporter {
    fn new(verb: &'static str, total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(&format!(
                    "{verb} [{{bar:40}}] {{human_pos}}/{{human_len}} rows, {{msg}}, eta {{eta}}"
                ))
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar
        });
        Reporter {
            verb,
            bar,
            total,
            next_line: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    /// Called by `on_progress` after each 256 KiB chunk: cheap either way.
    fn update(&self, p: Progress) {
        if let Some(bar) = &self.bar {
            bar.set_position(p.rows);
            bar.set_message(format!("{:.0} MiB", mib(p.bytes)));
        } else if p.rows >= self.next_line.load(Ordering::Relaxed) {
            self.next_line
                .store(p.rows + self.total / 10, Ordering::Relaxed);
            println!(
                "  {} {:>9} rows, {:>6.1} MiB, {:>5.1} s",
                self.verb,
                p.rows,
                mib(p.bytes),
                self.started.elapsed().as_secs_f64()
            );
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// 1. `copy_in`: a lazy iterator of a million rows, streamed in 256 KiB chunks. Returns seconds.
async fn load(client: &tokio_postgres::Client) -> Result<f64, BoxError> {
    println!("copy_in: writing {ROWS} rows into {TABLE}");
    let started = Instant::now();
    let progress = Reporter::new("copy_in ", ROWS.unsigned_abs());
    let written = client
        .bulk()
        .on_progress(|p| progress.update(p))
        .copy_in((0..ROWS).map(order))
        .await?;
    progress.finish();
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(written, ROWS.unsigned_abs());
    Ok(secs)
}

/// 2. `copy_out`: stream the table back into structs and check every row. Returns seconds.
async fn read_back(client: &tokio_postgres::Client) -> Result<f64, BoxError> {
    let started = Instant::now();
    let progress = Reporter::new("copy_out", ROWS.unsigned_abs());
    let mut rows = client
        .bulk()
        .on_progress(|p| progress.update(p))
        .copy_out_query::<Order>(format!("SELECT * FROM {TABLE} ORDER BY id"));
    let mut read = 0i64;
    while let Some(row) = rows.try_next().await? {
        if row != order(read) {
            return Err(
                format!("row {read} differs: read {row:?}, wrote {:?}", order(read)).into(),
            );
        }
        read += 1;
    }
    drop(rows);
    progress.finish();
    let secs = started.elapsed().as_secs_f64();
    if read != ROWS {
        return Err(format!("read back {read} rows, wrote {ROWS}").into());
    }
    println!("copy_out: read and verified {read} rows");
    Ok(secs)
}

/// 3. The usual alternative: one prepared INSERT per row, each its own transaction.
async fn insert_per_row(client: &tokio_postgres::Client) -> Result<f64, BoxError> {
    client.batch_execute(&format!("TRUNCATE {TABLE}")).await?;
    let insert = client
        .prepare(&format!(
            "INSERT INTO {TABLE} (id, customer, email, amount, paid, weight, quantity, priority, \
             placed_on, created_at, external_id, tags, scores, payload) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .await?;
    let started = Instant::now();
    for id in 0..INSERT_ROWS {
        let o = order(id);
        client
            .execute(
                &insert,
                &[
                    &o.id,
                    &o.customer,
                    &o.email,
                    &o.amount,
                    &o.paid,
                    &o.weight,
                    &o.quantity,
                    &o.priority,
                    &o.placed_on,
                    &o.created_at,
                    &o.external,
                    &o.tags,
                    &o.scores,
                    &o.payload,
                ],
            )
            .await?;
    }
    Ok(started.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // Connect: DATABASE_URL if given, otherwise a throwaway cluster from the local binaries
    // (see examples/support/mod.rs: `tokio_postgres::connect`, or `pgbulk::testkit::TestDb`).
    let db = support::Database::from_env().await?;
    let client: &tokio_postgres::Client = &db;
    client.batch_execute(DDL).await?;

    let copy_in_secs = load(client).await?;
    let copy_out_secs = read_back(client).await?;
    let insert_secs = insert_per_row(client).await?;

    let copy_in_rate = per_sec(ROWS, copy_in_secs);
    let copy_out_rate = per_sec(ROWS, copy_out_secs);
    let insert_rate = per_sec(INSERT_ROWS, insert_secs);
    println!();
    println!("copy_in     {ROWS:>9} rows in {copy_in_secs:>7.2} s = {copy_in_rate:>11.0} rows/s");
    println!("copy_out    {ROWS:>9} rows in {copy_out_secs:>7.2} s = {copy_out_rate:>11.0} rows/s");
    println!(
        "INSERT/row  {INSERT_ROWS:>9} rows in {insert_secs:>7.2} s = {insert_rate:>11.0} rows/s"
    );
    println!(
        "copy_in is {:.0}x the per-row INSERT rate",
        copy_in_rate / insert_rate
    );

    if db.is_users() {
        client.batch_execute(&format!("DROP TABLE {TABLE}")).await?;
    }
    Ok(())
}
