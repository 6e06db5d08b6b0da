//! `export`: run a query through binary COPY and write the rows to a CSV file (or a `.pgcopy`
//! binary COPY file), with progress on stderr. In the spirit of
//! `arrowjet export --query … --to file`.
//!
//! ```text
//! cargo run --release --example export -- --help
//! cargo run --release --example export -- --demo 1000000 --to orders.csv
//! cargo run --release --example export -- --database-url "host=/run/postgresql dbname=shop" \
//!     --query "SELECT * FROM orders WHERE placed_on >= '2024-01-01'" --to orders.csv
//! cargo run --release --example export -- --table orders --format pgcopy --to orders.pgcopy
//! ```
//!
//! Without `--database-url` / `DATABASE_URL` it starts a throwaway PostgreSQL
//! (`pgbulk::testkit`), where only `--demo` (a generated table) or a self-contained query
//! (`SELECT * FROM generate_series(1, 10)`) has anything to export.
//!
//! # How an arbitrary query is exported
//!
//! `copy_out_query::<T>` decodes into a row type known at compile time; a command-line tool
//! gets its query, and so its columns, at run time. So the export describes the query first,
//! then reads `SELECT q.c1::text, q.c2::text, … FROM (<query>) AS q(c1, c2, …)` with binary
//! COPY through tokio-postgres' `BinaryCopyOutStream` (pgbulk's own `copy_out` wants a row
//! type known at compile time; here every column is `text`). Every value
//! is then PostgreSQL's own text for it (the output function `psql \copy … CSV` would use, in
//! the session's `DateStyle` and `TimeZone`: dates, numerics, arrays and bytea come out
//! exactly as the server prints them, with no Rust-side formatting to disagree with), and the
//! CSV is written the way PostgreSQL writes CSV: a NULL is an empty unquoted field, an empty
//! string is `""`, fields with a comma, quote or line break are quoted. The output is byte for
//! byte what `psql -c "\copy (<query>) TO 'file' WITH (FORMAT csv, HEADER)"` writes, and loads
//! back with `\copy t FROM 'file' WITH (FORMAT csv, HEADER)` with NULLs intact.
//!
//! The query must be a `SELECT`, `VALUES` or `TABLE` (it becomes a subquery), without `$n`
//! parameters.
//!
//! `--format pgcopy` writes the query's binary COPY data as it arrives (no casts): a file for
//! `\copy … FROM … WITH (FORMAT binary)` or for `pgbulk::pgcopy::Reader`.
//!
//! Parquet is not offered: the arrow/parquet crates take minutes to compile on a small machine
//! (a heavy cost for an example), and a faithful Parquet file needs a per-type mapping from
//! PostgreSQL types to Arrow types, which text casts would throw away. That is a feature of its
//! own, not a flag on this example.

#[path = "support/mod.rs"]
mod support;

use clap::{Parser, ValueEnum};
use futures_util::TryStreamExt;
use pgbulk::{BulkExt, CopyRow};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio_postgres::binary_copy::BinaryCopyOutStream;
use tokio_postgres::types::Type;

#[derive(Parser)]
#[command(
    about = "Export a PostgreSQL query to a CSV (or binary .pgcopy) file with binary COPY",
    after_help = "Without --database-url or DATABASE_URL, a throwaway PostgreSQL is started: \
                  use --demo N to export a generated table from it."
)]
struct Args {
    /// The query to export (SELECT, VALUES or TABLE; no $n parameters).
    #[arg(long, conflicts_with = "table")]
    query: Option<String>,
    /// Export this table (`schema.table`) instead of a query.
    #[arg(long)]
    table: Option<String>,
    /// Create a demo table `pgbulk_export_demo` with this many rows and export it (unless
    /// --query or --table says otherwise).
    #[arg(long, value_name = "ROWS")]
    demo: Option<u32>,
    /// Output file; `-` for stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    to: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    format: Format,
    /// Leave out the CSV header line.
    #[arg(long)]
    no_header: bool,
    /// libpq-style connection string or URL; without it, a throwaway PostgreSQL is started.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Comma-separated values, as PostgreSQL's `COPY … (FORMAT csv)` writes them.
    Csv,
    /// Binary COPY data (`COPY … (FORMAT binary)`), for `\copy … FROM` or `pgbulk::pgcopy`.
    Pgcopy,
}

use support::BoxError;

/// The demo table's rows.
#[derive(CopyRow)]
#[copy(table = "pgbulk_export_demo")]
struct DemoOrder {
    id: i64,
    customer: String,
    note: Option<String>,
    amount: rust_decimal::Decimal,
    placed_at: chrono::DateTime<chrono::Utc>,
    tags: Vec<String>,
}

async fn create_demo(client: &tokio_postgres::Client, rows: u32) -> Result<(), BoxError> {
    client
        .batch_execute(
            "DROP TABLE IF EXISTS pgbulk_export_demo;
             CREATE TABLE pgbulk_export_demo (id bigint PRIMARY KEY, customer text NOT NULL,
                 note text, amount numeric(12, 2), placed_at timestamptz, tags text[])",
        )
        .await?;
    let base = chrono::DateTime::from_timestamp(1_700_000_000, 0).ok_or("bad timestamp")?;
    let orders = (0..i64::from(rows)).map(|i| DemoOrder {
        id: i,
        customer: match i % 10 {
            0 => format!("Smith, \"J\" {i}"),
            1 => format!("two\nlines {i}"),
            _ => format!("customer {i}"),
        },
        note: match i % 3 {
            0 => None,
            1 => Some(String::new()),
            _ => Some(format!("note {i}")),
        },
        amount: rust_decimal::Decimal::new(i * 7 % 1_000_000, 2),
        placed_at: base + chrono::Duration::seconds(i),
        tags: if i % 2 == 0 {
            vec!["a".into(), "b c".into()]
        } else {
            vec![]
        },
    });
    let written = client.bulk().copy_in(orders).await?;
    eprintln!("demo: wrote {written} rows into pgbulk_export_demo");
    Ok(())
}

/// Progress on stderr: a live line on a terminal, a plain line every few seconds otherwise
/// (CI logs, redirected output).
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {elapsed_precise} {human_pos} rows exported {msg}",
                )
                .expect("valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Progress {
            bar,
            started: Instant::now(),
            last_line: Instant::now(),
        }
    }

    fn update(&mut self, rows: u64, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(rows);
            bar.set_message(format!("({})", indicatif::HumanBytes(bytes)));
        } else if self.last_line.elapsed() >= Duration::from_secs(2) {
            self.last_line = Instant::now();
            eprintln!(
                "  {rows} rows, {} written, {:.1} s",
                indicatif::HumanBytes(bytes),
                self.started.elapsed().as_secs_f64()
            );
        }
    }

    fn finish(&self, rows: u64, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let secs = self.started.elapsed().as_secs_f64();
        #[allow(clippy::cast_precision_loss)] // display only
        let rate = rows as f64 / secs;
        eprintln!(
            "exported {rows} rows ({}) in {secs:.2} s = {rate:.0} rows/s",
            indicatif::HumanBytes(bytes)
        );
    }
}

/// Writes one field as PostgreSQL's CSV output does: NULL is nothing, and a value is quoted
/// when it is empty or holds a comma, a quote or a line break; `\.` is quoted when it is the
/// only column (a line of just `\.` would read as the end-of-data marker).
fn write_csv_field(out: &mut Vec<u8>, value: Option<&[u8]>, single_column: bool) {
    let Some(v) = value else { return };
    let quote = v.is_empty()
        || (single_column && v == b"\\.")
        || v.iter().any(|&b| matches!(b, b',' | b'"' | b'\n' | b'\r'));
    if !quote {
        out.extend_from_slice(v);
        return;
    }
    out.push(b'"');
    for &b in v {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// Quotes an identifier for SQL.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

async fn export(
    client: &tokio_postgres::Client,
    query: &str,
    args: &Args,
    out: &mut dyn Write,
) -> Result<(), BoxError> {
    let query = query.trim().trim_end_matches(';');
    // Describe the query: its column names (for the header) and count.
    let stmt = client.prepare(query).await?;
    if !stmt.params().is_empty() {
        return Err("the query has $n parameters, which COPY cannot take".into());
    }
    let names: Vec<String> = stmt.columns().iter().map(|c| c.name().to_owned()).collect();
    let copy = match args.format {
        Format::Pgcopy => format!("COPY ({query}) TO STDOUT (FORMAT binary)"),
        Format::Csv => {
            // Positional aliases: duplicate or odd column names do not matter.
            let aliases: Vec<String> = (1..=names.len()).map(|i| format!("c{i}")).collect();
            let select: Vec<String> = aliases.iter().map(|a| format!("q.{a}::text")).collect();
            format!(
                "COPY (SELECT {} FROM ({query}) AS q({})) TO STDOUT (FORMAT binary)",
                select.join(", "),
                aliases.join(", ")
            )
        }
    };
    let stream = client.copy_out(&copy).await?;

    let mut progress = Progress::new();
    let mut buf = Vec::with_capacity(256 * 1024);
    let (mut rows, mut bytes) = (0u64, 0u64);
    if args.format == Format::Pgcopy {
        let mut stream = std::pin::pin!(stream);
        while let Some(chunk) = stream.try_next().await? {
            out.write_all(&chunk)?;
            bytes += chunk.len() as u64;
            // COPY TO sends one message per row; the header and trailer come with the first
            // and last.
            rows += 1;
            progress.update(rows, bytes);
        }
        out.flush()?;
        progress.finish(rows.saturating_sub(1), bytes);
        return Ok(());
    }

    let single = names.len() == 1;
    if !args.no_header {
        for (i, name) in names.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            write_csv_field(&mut buf, Some(name.as_bytes()), single);
        }
        buf.push(b'\n');
    }
    let types = vec![Type::TEXT; names.len()];
    let mut tuples = std::pin::pin!(BinaryCopyOutStream::new(stream, &types));
    while let Some(row) = tuples.try_next().await? {
        for i in 0..names.len() {
            if i > 0 {
                buf.push(b',');
            }
            let value: Option<&str> = row.try_get(i)?;
            write_csv_field(&mut buf, value.map(str::as_bytes), single);
        }
        buf.push(b'\n');
        rows += 1;
        if buf.len() >= 256 * 1024 {
            out.write_all(&buf)?;
            bytes += buf.len() as u64;
            buf.clear();
            progress.update(rows, bytes);
        }
    }
    out.write_all(&buf)?;
    out.flush()?;
    bytes += buf.len() as u64;
    progress.finish(rows, bytes);
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    support::exit(run(Args::parse()).await)
}

async fn run(args: Args) -> Result<(), BoxError> {
    let query = match (&args.query, &args.table, args.demo) {
        (Some(q), _, _) => q.clone(),
        (None, Some(t), _) => format!(
            "SELECT * FROM {}",
            t.split('.').map(quote_ident).collect::<Vec<_>>().join(".")
        ),
        (None, None, Some(_)) => "SELECT * FROM pgbulk_export_demo ORDER BY id".to_owned(),
        (None, None, None) => return Err("say what to export: --query, --table or --demo".into()),
    };

    let db = support::Database::connect(args.database_url.as_deref()).await?;
    let client: &tokio_postgres::Client = &db;
    if let Some(rows) = args.demo {
        create_demo(client, rows).await?;
    }

    if args.to.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        export(client, &query, &args, &mut out).await
    } else {
        let mut out = std::fs::File::create(&args.to)?;
        export(client, &query, &args, &mut out).await?;
        eprintln!("wrote {}", args.to.display());
        Ok(())
    }
}
