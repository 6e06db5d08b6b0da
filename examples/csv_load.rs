//! Stream a large CSV file into PostgreSQL with constant memory: the `csv` crate parses it
//! through serde into `CopyRow` structs on a blocking thread, `pgbulk::blocking_stream` hands
//! the rows over a bounded channel, and `copy_in_stream` sends them as one binary COPY.
//!
//! ```text
//! cargo run --release --example csv_load                       # generates a 1,000,000-row demo file
//! cargo run --release --example csv_load -- --rows 5000000     # a bigger one: memory stays the same
//! cargo run --release --example csv_load -- people.csv         # your file (header: id,name,qty,price,active,note)
//! ```
//!
//! Without `DATABASE_URL` it starts a throwaway PostgreSQL (`pgbulk::testkit`). With it, it
//! creates, loads and finally drops the table `pgbulk_csv_people` there.
//!
//! A malformed line aborts the load, nothing is written, and the error names the line (here
//! the third record, on line 5 because a quoted field before it spans two lines):
//!
//! ```text
//! error: row 2: the input stream failed: CSV deserialize error: record 3 (line: 5, byte: 73):
//! field 2: invalid digit found in string
//! ```

#[path = "support/mod.rs"]
mod support;

use clap::Parser;
use pgbulk::{BulkExt, CopyRow};
use serde::Deserialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// One CSV record; the header names the fields.
#[derive(CopyRow, Deserialize, Debug)]
#[copy(table = "pgbulk_csv_people")]
struct Person {
    id: i64,
    name: String,
    qty: i32,
    price: f64,
    active: bool,
    /// An empty field is `None` (NULL).
    note: Option<String>,
}

const DDL: &str = "
    DROP TABLE IF EXISTS pgbulk_csv_people;
    CREATE TABLE pgbulk_csv_people (
        id bigint PRIMARY KEY, name text NOT NULL, qty integer, price double precision,
        active boolean, note text)";

#[derive(Parser)]
#[command(about = "Stream a CSV file into PostgreSQL with binary COPY and constant memory")]
struct Args {
    /// CSV file with the header `id,name,qty,price,active,note`; without it, a demo file is
    /// generated.
    file: Option<PathBuf>,
    /// Rows in the generated demo file.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
}

use support::BoxError;

/// Writes `rows` demo records, some needing CSV quoting.
fn generate(path: &Path, rows: u64) -> Result<(), BoxError> {
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, std::fs::File::create(path)?);
    writeln!(out, "id,name,qty,price,active,note")?;
    for i in 0..rows {
        let name = match i % 100 {
            0 => format!("\"Smith, J. \"\"Jr\"\" {i}\""),
            1 => format!("émigré {i}"),
            _ => format!("person {i}"),
        };
        let note = if i % 5 == 0 {
            String::new()
        } else {
            format!("note {i}")
        };
        let price = f64::from(u32::try_from(i % 100_000)?) / 4.0;
        writeln!(out, "{i},{name},{},{price},{},{note}", i % 1000, i % 3 == 0)?;
    }
    out.flush()?;
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    support::exit(run(Args::parse()).await)
}

async fn run(args: Args) -> Result<(), BoxError> {
    let demo_dir = tempfile::tempdir()?;
    let (path, size) = support::input_or_demo(
        args.file,
        demo_dir.path(),
        "people.csv",
        args.rows,
        generate,
    )?;

    // DATABASE_URL if given, otherwise a throwaway cluster from the local binaries.
    let db = support::Database::from_env().await?;
    let client: &tokio_postgres::Client = &db;
    client.batch_execute(DDL).await?;

    let started = Instant::now();
    // The csv reader does its own buffering; it runs on a blocking thread.
    let reader = csv::ReaderBuilder::new()
        .buffer_capacity(256 * 1024)
        .from_path(&path)?;
    let rows = pgbulk::blocking_stream(reader.into_deserialize::<Person>());
    let next_report = AtomicU64::new(0);
    let written = client
        .bulk()
        .on_progress(|p| {
            // Called after every 256 KiB chunk; print about every 16 MiB, on stderr.
            if p.bytes >= next_report.load(Ordering::Relaxed) {
                next_report.store(p.bytes + (16 << 20), Ordering::Relaxed);
                eprintln!("  {:>10} rows sent", p.rows);
            }
        })
        .copy_in_stream(rows)
        .await?;
    let secs = started.elapsed().as_secs_f64();

    #[allow(clippy::cast_precision_loss)] // display only
    let (rate, mib) = (written as f64 / secs, size as f64 / 1_048_576.0);
    println!(
        "loaded {written} rows ({mib:.0} MiB of CSV) in {secs:.2} s = {rate:.0} rows/s, {:.0} MiB/s",
        mib / secs
    );
    if let Some(peak) = support::peak_rss_mib() {
        println!("peak memory (RSS) of this process: {peak:.0} MiB");
    }
    if db.is_users() {
        client.batch_execute("DROP TABLE pgbulk_csv_people").await?;
    }
    Ok(())
}
