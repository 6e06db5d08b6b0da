//! What quarantine mode costs: 1,000,000 rows loaded with plain `copy_in` and with
//! `quarantine().copy_in`, alternating, median of several runs each; then the quarantined load
//! with 10 bad rows among the 1,000,000 (5 duplicate keys, 4 CHECK violations, 1 foreign key).
//!
//! ```text
//! cargo run --release --example quarantine_bench            # 7 runs each
//! PGBULK_BENCH_RUNS=11 PGBULK_BENCH_ROWS=2000000 cargo run --release --example quarantine_bench
//! ```
//!
//! Without `DATABASE_URL` it starts a throwaway PostgreSQL (`pgbulk::testkit`) and removes it on
//! exit. With `DATABASE_URL` it creates (and afterwards drops) the tables
//! `pgbulk_bench_quarantine` and `pgbulk_bench_quarantine_accounts` there.

use pgbulk::{BulkExt, CopyRow};
use std::time::{Duration, Instant};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const TABLE: &str = "pgbulk_bench_quarantine";

#[derive(CopyRow, Debug, Clone)]
#[copy(table = "pgbulk_bench_quarantine")]
struct Order {
    id: i64,
    account: i32,
    qty: i32,
    price: f64,
    note: String,
    placed: chrono::DateTime<chrono::Utc>,
}

fn order(id: i64) -> Order {
    Order {
        id,
        account: i32::try_from(id % 100).unwrap(),
        qty: i32::try_from(id % 50).unwrap(),
        price: 0.25 * f64::from(i32::try_from(id % 4000).unwrap()),
        note: format!("order number {id}"),
        placed: chrono::DateTime::from_timestamp(1_700_000_000 + id, 0).unwrap(),
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

// One linear script: setup, the two timed series, the bad-row series.
#[allow(clippy::too_many_lines)]
#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let rows_n = env_usize("PGBULK_BENCH_ROWS", 1_000_000);
    let runs = env_usize("PGBULK_BENCH_RUNS", 7).max(1);
    let mut testdb = None;
    let client = if let Ok(url) = std::env::var("DATABASE_URL") {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                eprintln!("connection error: {e}");
            }
        });
        client
    } else {
        let db = pgbulk::testkit::TestDb::new().await?;
        let client = db.connect().await?;
        testdb = Some(db);
        client
    };
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {TABLE};
             DROP TABLE IF EXISTS {TABLE}_accounts;
             CREATE TABLE {TABLE}_accounts (id int4 PRIMARY KEY);
             INSERT INTO {TABLE}_accounts SELECT generate_series(0, 99);
             CREATE TABLE {TABLE} (
                 id      int8 PRIMARY KEY,
                 account int4 NOT NULL REFERENCES {TABLE}_accounts (id),
                 qty     int4 NOT NULL CHECK (qty >= 0),
                 price   float8 NOT NULL,
                 note    text NOT NULL,
                 placed  timestamptz NOT NULL
             )"
        ))
        .await?;
    let n = i64::try_from(rows_n)?;
    let good: Vec<Order> = (0..n).map(order).collect();
    println!("{rows_n} rows, {runs} runs each, alternating (plain first, then quarantine)");

    let mut plain = Vec::new();
    let mut quarantined = Vec::new();
    // One untimed warm-up of each.
    for round in 0..=runs {
        for q in [false, true] {
            client.batch_execute(&format!("TRUNCATE {TABLE}")).await?;
            let t = Instant::now();
            let written = if q {
                let outcome = client.bulk().quarantine().copy_in(&good).await?;
                assert!(outcome.rejected.is_empty());
                outcome.written
            } else {
                client.bulk().copy_in(&good).await?
            };
            let took = t.elapsed();
            assert_eq!(written, n.unsigned_abs());
            if round > 0 {
                if q {
                    quarantined.push(took);
                } else {
                    plain.push(took);
                }
            }
        }
    }
    let (p, q) = (median(plain.clone()), median(quarantined.clone()));
    let fmt = |v: &[Duration]| {
        v.iter()
            .map(|d| format!("{:.0}", ms(*d)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!("plain copy_in           runs (ms): {}", fmt(&plain));
    println!("quarantine, 0 bad rows  runs (ms): {}", fmt(&quarantined));
    println!(
        "median: plain {:.0} ms, quarantine {:.0} ms, overhead {:+.1}%",
        ms(p),
        ms(q),
        (ms(q) / ms(p) - 1.0) * 100.0
    );

    // 10 bad rows spread over the input: 5 duplicate keys, 4 CHECK violations (the server names
    // their row), 1 foreign key (it does not: found by bisection).
    let mut bad = good.clone();
    let step = rows_n / 11;
    let mut spoiled = Vec::new();
    for k in 1..=10 {
        let i = k * step;
        match k {
            1..=5 => bad[i].id = 0,
            6..=9 => bad[i].qty = -1,
            _ => bad[i].account = 1_000,
        }
        spoiled.push(i);
    }
    let mut with_bad = Vec::new();
    for _ in 0..runs.min(3) {
        client.batch_execute(&format!("TRUNCATE {TABLE}")).await?;
        let t = Instant::now();
        let outcome = client.bulk().quarantine().copy_in(&bad).await?;
        with_bad.push(t.elapsed());
        let idx: Vec<usize> = outcome.rejected.iter().map(|r| r.index).collect();
        assert_eq!(idx, spoiled);
        assert_eq!(outcome.written, n.unsigned_abs() - 10);
    }
    let b = median(with_bad.clone());
    println!(
        "quarantine, 10 bad rows runs (ms): {} — median {:.0} ms, {:.2}x plain copy_in",
        fmt(&with_bad),
        ms(b),
        ms(b) / ms(p)
    );

    client
        .batch_execute(&format!("DROP TABLE {TABLE}; DROP TABLE {TABLE}_accounts"))
        .await?;
    drop(testdb);
    Ok(())
}
