//! Stream a JSON-lines file (one JSON object per line) into PostgreSQL with constant memory:
//! `serde_json` parses each line into a `CopyRow` struct on a blocking thread,
//! `pgbulk::blocking_stream` hands the rows over a bounded channel, and `copy_in_stream`
//! sends them as one binary COPY.
//!
//! ```text
//! cargo run --release --example jsonl_load                     # generates a 1,000,000-line demo file
//! cargo run --release --example jsonl_load -- events.jsonl     # your file
//! ```
//!
//! Without `DATABASE_URL` it starts a throwaway PostgreSQL (`pgbulk::testkit`). With it, it
//! creates, loads and finally drops the table `pgbulk_jsonl_events` there.
//!
//! Lines are read one at a time into one reused buffer, so a line's number is exact, blank lines
//! are skipped, and a malformed line aborts the load (nothing is written) with an error such as
//!
//! ```text
//! error: row 1: the input stream failed: line 3: invalid type: string "x", expected i32 at line 1 column 32
//! ```

#[path = "support/mod.rs"]
mod support;

use clap::Parser;
use pgbulk::{BulkExt, CopyRow};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One event; JSON fields map to struct fields, which map to columns.
#[derive(CopyRow, Serialize, Deserialize, Debug)]
#[copy(table = "pgbulk_jsonl_events")]
struct Event {
    id: i64,
    kind: String,
    user_id: i32,
    /// Missing or `null` in the JSON: NULL.
    #[serde(default)]
    referrer: Option<String>,
    tags: Vec<String>,
    /// Missing in the JSON: 0.
    #[serde(default)]
    score: f64,
}

const DDL: &str = "
    DROP TABLE IF EXISTS pgbulk_jsonl_events;
    CREATE TABLE pgbulk_jsonl_events (
        id bigint PRIMARY KEY, kind text NOT NULL, user_id integer NOT NULL, referrer text,
        tags text[] NOT NULL, score double precision NOT NULL)";

#[derive(Parser)]
#[command(about = "Stream a JSON-lines file into PostgreSQL with binary COPY and constant memory")]
struct Args {
    /// JSON-lines file, one object per line with the fields of `Event`; without it, a demo
    /// file is generated.
    file: Option<PathBuf>,
    /// Lines in the generated demo file.
    #[arg(long, default_value_t = 1_000_000)]
    rows: i64,
}

use support::BoxError;

fn generate(path: &Path, rows: i64) -> Result<(), BoxError> {
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, std::fs::File::create(path)?);
    for i in 0..rows {
        let event = Event {
            id: i,
            kind: ["click", "view", "purchase"][usize::try_from(i % 3)?].to_owned(),
            user_id: i32::try_from(i % 50_000)?,
            referrer: (i % 4 == 0).then(|| format!("https://example.com/{}", i % 97)),
            tags: if i % 2 == 0 {
                vec!["a".into(), "ü".into()]
            } else {
                vec![]
            },
            score: f64::from(i32::try_from(i % 1000)?) / 8.0,
        };
        serde_json::to_writer(&mut out, &event)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// The file's events, parsed line by line; an error names its line.
fn events(path: &Path) -> Result<impl Iterator<Item = Result<Event, BoxError>>, BoxError> {
    let mut reader = std::io::BufReader::with_capacity(256 * 1024, std::fs::File::open(path)?);
    let mut line = String::new();
    let mut number = 0u64;
    Ok(std::iter::from_fn(move || loop {
        line.clear();
        number += 1;
        match reader.read_line(&mut line) {
            Ok(0) => return None,
            Ok(_) if line.trim().is_empty() => {}
            Ok(_) => {
                return Some(
                    serde_json::from_str::<Event>(&line)
                        .map_err(|e| format!("line {number}: {e}").into()),
                )
            }
            Err(e) => return Some(Err(format!("line {number}: {e}").into())),
        }
    }))
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
        "events.jsonl",
        args.rows,
        generate,
    )?;

    let db = support::Database::from_env().await?;
    let client: &tokio_postgres::Client = &db;
    client.batch_execute(DDL).await?;

    let started = Instant::now();
    let rows = pgbulk::blocking_stream(events(&path)?);
    let written = client.bulk().copy_in_stream(rows).await?;
    let secs = started.elapsed().as_secs_f64();

    #[allow(clippy::cast_precision_loss)] // display only
    let (rate, mib) = (written as f64 / secs, size as f64 / 1_048_576.0);
    println!(
        "loaded {written} rows ({mib:.0} MiB of JSON lines) in {secs:.2} s = {rate:.0} rows/s, {:.0} MiB/s",
        mib / secs
    );
    if let Some(peak) = support::peak_rss_mib() {
        println!("peak memory (RSS) of this process: {peak:.0} MiB");
    }
    if db.is_users() {
        client
            .batch_execute("DROP TABLE pgbulk_jsonl_events")
            .await?;
    }
    Ok(())
}
