//! Instructions per row of the whole `copy_out` path for the narrow shape (one `bigint`, one
//! `double precision`, one `varchar` per row), tokio-postgres' transport included: what the
//! codec benchmark leaves out (message parsing, the channel from the connection task, the
//! stream and the row loop).
//!
//! `cargo bench --bench read_path` starts a throwaway server (the testkit), then runs this
//! binary once per read path under valgrind (`cachegrind`, no cache simulation) reading 1,000
//! and 101,000 rows; the difference divided by 100,000 is the path's instructions per row, for
//! the client process only (the server is another process). Exact and repeatable on a shared
//! host where timings drift. Paths:
//!
//! - `raw`: tokio-postgres' `copy_out` stream alone, each message looked at and dropped (what
//!   any reader on tokio-postgres pays);
//! - `borrowed`: pgbulk `copy_out_each` with rows borrowing their text;
//! - `owned`: pgbulk `copy_out(..).collect_vec()` into owned structs;
//! - `hand`: a hand-written decoder of tokio-postgres' `copy_out` messages into the same owned
//!   structs, with no checks (`common::hand_decode_narrow`): what owned reads can reach;
//! - `peer`: tokio-postgres' `BinaryCopyOutStream` into the same owned structs.

// The shapes' module also holds macros this benchmark does not use.
#[allow(unused_macros)]
mod common;

use common::{Narrow, NarrowRef};
use futures_util::TryStreamExt;
use pgbulk::BulkExt;
use std::hint::black_box;
use tokio_postgres::binary_copy::BinaryCopyOutStream;
use tokio_postgres::types::Type;

const PATHS: [&str; 5] = ["raw", "borrowed", "owned", "hand", "peer"];

const COPY: &str = "COPY (SELECT id, value, name FROM bench_narrow) TO STDOUT (FORMAT binary)";

/// Reads `rows` narrow rows by `path`, in a server of its own; returns the rows read.
async fn read(path: &str, rows: i64) -> Result<u64, Box<dyn std::error::Error>> {
    let db = pgbulk::testkit::TestDb::new().await?;
    let client = db.connect().await?;
    client
        .batch_execute(&format!(
            "CREATE TABLE bench_narrow (id bigint, value double precision, name varchar);
             INSERT INTO bench_narrow SELECT g, g * 0.25, 'name-' || lpad(g::text, 8, '0')
             FROM generate_series(1, {rows}) g"
        ))
        .await?;
    let read = match path {
        "raw" => {
            let mut stream = std::pin::pin!(client.copy_out(COPY).await?);
            let mut n = 0;
            while let Some(message) = stream.try_next().await? {
                black_box(&message);
                n += 1;
            }
            // One message per row, the header in the first one, and the trailer's own.
            n - 1
        }
        "borrowed" => {
            let mut bytes = 0;
            let n = client
                .bulk()
                .copy_out_each::<NarrowRef<'_>>(|row| {
                    bytes += row.name.len();
                    black_box(&row);
                })
                .await?;
            black_box(bytes);
            n
        }
        "owned" => {
            let rows: Vec<Narrow> = client.bulk().copy_out::<Narrow>().collect_vec().await?;
            u64::try_from(black_box(rows).len())?
        }
        "hand" => {
            let mut stream = std::pin::pin!(client.copy_out(COPY).await?);
            let mut rows = Vec::new();
            let mut first = true;
            while let Some(message) = stream.try_next().await? {
                rows.extend(common::hand_decode_narrow(&message, first));
                first = false;
            }
            u64::try_from(black_box(rows).len())?
        }
        _ => {
            let stream = client.copy_out(COPY).await?;
            let rows: Vec<Narrow> =
                BinaryCopyOutStream::new(stream, &[Type::INT8, Type::FLOAT8, Type::VARCHAR])
                    .map_ok(|row| Narrow {
                        id: row.get(0),
                        value: row.get(1),
                        name: row.get(2),
                    })
                    .try_collect()
                    .await?;
            u64::try_from(black_box(rows).len())?
        }
    };
    drop(client);
    drop(db);
    pgbulk::testkit::shutdown();
    Ok(read)
}

/// This binary's own run of `path` over `rows` rows under valgrind: its instruction count.
fn count(path: &str, rows: u64) -> u64 {
    common::instructions_of_self("PGBULK_READ_PATH", &format!("{path}:{rows}"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if let Ok(spec) = std::env::var("PGBULK_READ_PATH") {
        let (path, rows) = spec.split_once(':').expect("PGBULK_READ_PATH is path:rows");
        let rows: i64 = rows.parse()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let read = rt.block_on(read(path, rows))?;
        assert_eq!(read, u64::try_from(rows)?, "{path} read every row");
        return Ok(());
    }
    let per_row: Vec<(&str, u64)> = PATHS
        .iter()
        .map(|path| (*path, (count(path, 101_000) - count(path, 1_000)) / 100_000))
        .collect();
    let peer = per_row[PATHS.len() - 1].1;
    println!("| read path, narrow rows | instructions/row | × `BinaryCopyOutStream` |");
    println!("|---|---:|---:|");
    for (path, n) in per_row {
        #[allow(clippy::cast_precision_loss)]
        let ratio = n as f64 / peer as f64;
        println!("| {path} | {n} | {ratio:.2} |");
    }
    Ok(())
}
