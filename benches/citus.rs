//! pgbulk on a Citus cluster (the testkit's coordinator + 2 workers, `TestDb::citus`): bulk
//! loads into a hash-distributed table beside a local table on the coordinator, and 5-row
//! batches whose rows share one tenant (one shard) beside batches spread over five tenants.
//!
//! ```text
//! cargo bench --features testkit-citus --bench citus            # writes the tables into BENCHMARKS.md
//! cargo bench --features testkit-citus --bench citus -- --quick # a smoke run at a tenth of the sizes, no file
//! ```
//!
//! Every load is preceded by `TRUNCATE`; the two contenders alternate, one warm-up and three
//! measured repetitions, medians reported. Needs Citus installed for the local PostgreSQL.

// Bench code: unwraps, casts of small counts to f64, and long functions are the point.
#![allow(
    clippy::missing_panics_doc,
    clippy::cast_precision_loss,
    clippy::too_many_lines,
    missing_docs
)]

// The shared shapes; their peer-side macro is for the e2e harness.
#[allow(unused_macros)]
mod common;

use common::{narrows, Narrow, NARROW_DDL};
use pgbulk::testkit::TestDb;
use pgbulk::{BulkExt, CopyRow};
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

/// A row of the batch table: the tenant is the distribution column.
#[derive(CopyRow, Debug, Clone)]
#[copy(table = "bench_tenant")]
struct Tenanted {
    tenant_id: i64,
    id: i64,
    value: f64,
    name: String,
}

const TENANT_DDL: &str = "CREATE TABLE bench_tenant (tenant_id int8 NOT NULL, id int8 NOT NULL, \
     value float8, name text); SELECT create_distributed_table('bench_tenant', 'tenant_id')";

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn fmt_duration(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{:.3} s", d.as_secs_f64())
    } else if d >= Duration::from_millis(1) {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{} µs", d.as_micros())
    }
}

fn fmt_rate(rows: f64, d: Duration) -> String {
    let r = rows / d.as_secs_f64();
    if r >= 1e6 {
        format!("{:.2} M", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.1} k", r / 1e3)
    } else {
        format!("{r:.0}")
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rows_n, batches, reps) = if quick {
        (100_000, 40, 2)
    } else {
        (1_000_000, 200, 3)
    };
    let db = TestDb::citus()
        .await
        .expect("a Citus cluster (is Citus installed?)");
    let client = db.client();
    client.batch_execute(NARROW_DDL).await.unwrap();
    client
        .batch_execute("SELECT create_distributed_table('bench_narrow', 'id')")
        .await
        .unwrap();
    client
        .batch_execute(&NARROW_DDL.replace("bench_narrow", "bench_narrow_local"))
        .await
        .unwrap();
    client.batch_execute(TENANT_DDL).await.unwrap();
    let shards: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'bench_narrow'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let version: String = client
        .query_one(
            "SELECT current_setting('server_version') || ', Citus ' || \
             (SELECT extversion FROM pg_extension WHERE extname = 'citus')",
            &[],
        )
        .await
        .unwrap()
        .get(0);

    // 1. The bulk load: a distributed table beside a local one on the coordinator.
    let rows: Vec<Narrow> = narrows(rows_n);
    let mut walls: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    let tables = ["bench_narrow", "bench_narrow_local"];
    for rep in 0..=reps {
        for (i, table) in tables.iter().enumerate() {
            client
                .batch_execute(&format!("TRUNCATE {table}"))
                .await
                .unwrap();
            let start = Instant::now();
            let n = client.bulk().table(*table).copy_in(&rows).await.unwrap();
            let wall = start.elapsed();
            assert_eq!(n, rows_n as u64);
            if rep > 0 {
                walls[i].push(wall);
            }
        }
    }
    let distributed = median(walls[0].clone());
    let local = median(walls[1].clone());

    // 2. 5-row batches, one plan reused: all rows of a batch on one tenant, or on five.
    let plan = client.bulk().plan::<Tenanted>().await.unwrap();
    let batch = |b: i64, spread: bool| -> Vec<Tenanted> {
        (0..5)
            .map(|k| Tenanted {
                tenant_id: if spread { b * 5 + k } else { b },
                id: b * 5 + k,
                value: (b * 5 + k) as f64,
                name: format!("row {}", b * 5 + k),
            })
            .collect()
    };
    let mut per_batch: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    for rep in 0..=reps {
        for (i, spread) in [false, true].into_iter().enumerate() {
            client.batch_execute("TRUNCATE bench_tenant").await.unwrap();
            for b in 0..batches {
                let rows = batch(b, spread);
                let start = Instant::now();
                client.bulk().copy_in_with_plan(&plan, &rows).await.unwrap();
                if rep > 0 {
                    per_batch[i].push(start.elapsed());
                }
            }
        }
    }
    let grouped = median(per_batch[0].clone());
    let spread = median(per_batch[1].clone());
    let shards_hit: i64 = client
        .query_one(
            "SELECT count(DISTINCT get_shard_id_for_distribution_column('bench_tenant', tenant_id)) \
             FROM bench_tenant WHERE id < 5",
            &[],
        )
        .await
        .unwrap()
        .get(0);

    let mut out = String::new();
    let _ = writeln!(
        out,
        "Machine: {} cores, PostgreSQL {version}: a coordinator and 2 workers on one host \
         (the testkit's `TestDb::citus`), {shards} shards per distributed table, {}.\n",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    let _ = writeln!(
        out,
        "Command: `cargo bench --features testkit-citus --bench citus`. Median of {reps} \
         repetitions after one warm-up, contenders alternating, TRUNCATE before each.\n"
    );
    let _ = writeln!(out, "### narrow, {rows_n} rows, `copy_in`\n");
    let _ = writeln!(
        out,
        "| target | median wall | rows/s | × local |\n|---|---:|---:|---:|"
    );
    for (name, wall) in [
        (
            "distributed table (`create_distributed_table(.., 'id')`)",
            distributed,
        ),
        ("local table on the coordinator", local),
    ] {
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {:.2}× |",
            fmt_duration(wall),
            fmt_rate(rows_n as f64, wall),
            wall.as_secs_f64() / local.as_secs_f64()
        );
    }
    let _ = writeln!(
        out,
        "\n### batches of 5 rows into a distributed table, `copy_in_with_plan`, {batches} \
         batches per repetition\n"
    );
    let _ = writeln!(
        out,
        "| batch | median per batch | rows/s | × grouped |\n|---|---:|---:|---:|"
    );
    for (name, wall) in [
        ("grouped: all 5 rows of one tenant (one shard)", grouped),
        (
            &*format!("spread: 5 tenants ({shards_hit} shards, both workers, for the first batch)"),
            spread,
        ),
    ] {
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {:.1}× |",
            fmt_duration(wall),
            fmt_rate(5.0, wall),
            wall.as_secs_f64() / grouped.as_secs_f64()
        );
    }
    print!("{out}");
    if quick {
        return;
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let (begin, end) = ("<!-- citus:begin -->", "<!-- citus:end -->");
    let (Some(b), Some(e)) = (text.find(begin), text.find(end)) else {
        panic!("BENCHMARKS.md has no {begin} .. {end} section");
    };
    let updated = format!("{}{begin}\n{out}{}", &text[..b], &text[e..]);
    std::fs::write(&path, updated).unwrap();
    println!("wrote {}", path.display());
}
