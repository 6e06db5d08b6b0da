//! The end-to-end comparison: pgbulk beside tokio-postgres' binary COPY, multi-row INSERT,
//! `unnest`, per-row INSERT and `psql \copy`, against a real PostgreSQL, in one run.
//!
//! ```text
//! cargo bench --bench e2e            # writes the tables into BENCHMARKS.md
//! cargo bench --bench e2e -- --quick # 2 repetitions, smaller shapes: a smoke run, no file
//! cargo bench --bench e2e -- --upsert # the upsert section alone, printed, no file
//! ```
//!
//! Without `DATABASE_URL` it starts the testkit's throwaway cluster. Every measurement is
//! preceded by `TRUNCATE` (writes) and a `CHECKPOINT`; contenders alternate, in a rotating
//! order, for one warm-up and five measured repetitions; medians are reported. Client CPU is
//! this process's CPU time (every thread, from `/proc/self/task/*/schedstat`) over the timed
//! section, or the child's (`/proc/self/stat` cutime + cstime) for `psql`.

// Bench code: unwraps, casts of small counts to f64, and long functions are the point.
#![allow(
    clippy::missing_panics_doc,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::too_many_lines,
    clippy::similar_names,
    clippy::cast_possible_wrap,
    clippy::doc_markdown,
    missing_docs
)]

#[macro_use]
mod common;
mod e2e_sqlx;
#[path = "e2e/upsert.rs"]
mod upsert;

use common::{Narrow, Params, User, Wide};
use futures_util::TryStreamExt;
use pgbulk::{BulkExt, CopyRow, FromCopyRow, FromCopyRowRef, Plan};
use std::collections::hash_map::{Entry, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::pin::{pin, Pin};
use std::process::Command;
use std::time::{Duration, Instant};
use tokio_postgres::binary_copy::{BinaryCopyInWriter, BinaryCopyOutStream};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Client;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

// ---------------------------------------------------------------------------------------------
// Measuring
// ---------------------------------------------------------------------------------------------

/// CPU time of every thread of this process, from the scheduler's nanosecond counters.
fn self_cpu() -> Duration {
    let mut ns = 0u64;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(task.path().join("schedstat")) {
                ns += s
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    Duration::from_nanos(ns)
}

/// CPU time of waited-for children (`cutime + cstime`, in clock ticks of 10 ms).
fn children_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the `(comm)`; cutime and cstime are fields 16 and 17 (1-based).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // rest[0] is field 3 (state): field n is rest[n - 3].
    Duration::from_millis((ticks(13) + ticks(14)) * 10)
}

/// `VmHWM` or `VmRSS` of this process, in KiB.
fn status_kib(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Resets the peak RSS (`VmHWM`) to the current RSS (Linux `clear_refs`, value 5).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    wall: Duration,
    cpu: Duration,
    /// Peak RSS during the section, KiB (0: not measured).
    peak_kib: u64,
}

/// Times `f`: wall, this process's CPU (or, for `psql`, the child's), peak RSS.
async fn measure<F, Fut>(child: bool, f: F) -> Result<Sample, BoxError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), BoxError>>,
{
    reset_peak();
    let (cpu0, ccpu0) = (self_cpu(), children_cpu());
    let start = Instant::now();
    f().await?;
    let wall = start.elapsed();
    let cpu = if child {
        children_cpu().saturating_sub(ccpu0)
    } else {
        self_cpu().saturating_sub(cpu0)
    };
    Ok(Sample {
        wall,
        cpu,
        peak_kib: if child { 0 } else { status_kib("VmHWM:") },
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    if v.is_empty() {
        return Duration::ZERO;
    }
    v[v.len() / 2]
}

#[derive(Debug, Clone)]
struct Result_ {
    name: String,
    wall: Duration,
    cpu: Duration,
    peak_kib: u64,
}

fn summarize(name: &str, samples: &[Sample]) -> Result_ {
    Result_ {
        name: name.to_owned(),
        wall: median(samples.iter().map(|s| s.wall).collect()),
        cpu: median(samples.iter().map(|s| s.cpu).collect()),
        peak_kib: samples.iter().map(|s| s.peak_kib).max().unwrap_or(0),
    }
}

// ---------------------------------------------------------------------------------------------
// The shapes, as the contenders need them
// ---------------------------------------------------------------------------------------------

/// Decodes one `copy_out` message (`true` for the first, which holds the header) into a row;
/// `None` for the trailer.
type HandDecoder<T> = fn(&[u8], bool) -> Option<T>;

trait Shape: CopyRow + FromCopyRow + Params + Sync + Send + Clone + 'static {
    /// The same table read borrowing its texts (`copy_out_each`).
    type Ref: FromCopyRowRef + 'static;
    const DDL: &'static str;
    const TYPES: &'static [Type];
    /// A hand-written decoder of one `copy_out` message into the struct, where the shape has
    /// one (`common::hand_decode_narrow`): the floor reference for owned reads.
    const HAND: Option<HandDecoder<Self>> = None;
    /// `BinaryCopyInWriter::write` with the row's values in a stack array.
    fn write_to(
        &self,
        w: Pin<&mut BinaryCopyInWriter>,
    ) -> impl std::future::Future<Output = Result<(), tokio_postgres::Error>> + Send;
    /// `INSERT .. SELECT FROM unnest(..)`: the statement and one array per column.
    fn unnest(rows: &[Self]) -> Option<(String, Vec<Box<dyn ToSql + Sync + '_>>)>;
    /// Reads a struct from a `BinaryCopyOutRow`.
    fn from_copy_out(row: &tokio_postgres::binary_copy::BinaryCopyOutRow) -> Self;
    /// Reads a struct from a query `Row`.
    fn from_query(row: &tokio_postgres::Row) -> Self;
}

fn column_list<T: CopyRow>() -> String {
    pgbulk::columns_of::<T>()
        .iter()
        .map(pgbulk::Column::name)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Shape for Narrow {
    type Ref = common::NarrowRef<'static>;
    const DDL: &'static str = common::NARROW_DDL;
    const TYPES: &'static [Type] = common::NARROW_TYPES;
    const HAND: Option<HandDecoder<Self>> = Some(common::hand_decode_narrow);

    async fn write_to(&self, w: Pin<&mut BinaryCopyInWriter>) -> Result<(), tokio_postgres::Error> {
        w.write(&[&self.id, &self.value, &self.name]).await
    }

    fn unnest(rows: &[Self]) -> Option<(String, Vec<Box<dyn ToSql + Sync + '_>>)> {
        Some((
            "INSERT INTO bench_narrow (id, value, name) SELECT * FROM \
             unnest($1::int8[], $2::float8[], $3::varchar[])"
                .into(),
            vec![
                Box::new(rows.iter().map(|r| r.id).collect::<Vec<_>>()),
                Box::new(rows.iter().map(|r| r.value).collect::<Vec<_>>()),
                Box::new(rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>()),
            ],
        ))
    }

    fn from_copy_out(row: &tokio_postgres::binary_copy::BinaryCopyOutRow) -> Self {
        from_peer_row!(Narrow, row)
    }

    fn from_query(row: &tokio_postgres::Row) -> Self {
        from_peer_row!(Narrow, row)
    }
}

impl Shape for User {
    type Ref = common::UserRef<'static>;
    const DDL: &'static str = common::USERS_DDL;
    const TYPES: &'static [Type] = common::USERS_TYPES;

    async fn write_to(&self, w: Pin<&mut BinaryCopyInWriter>) -> Result<(), tokio_postgres::Error> {
        w.write(&[&self.id, &self.name, &self.email, &self.created_at])
            .await
    }

    fn unnest(rows: &[Self]) -> Option<(String, Vec<Box<dyn ToSql + Sync + '_>>)> {
        Some((
            "INSERT INTO bench_users (id, name, email, created_at) SELECT * FROM \
             unnest($1::int8[], $2::text[], $3::text[], $4::timestamptz[])"
                .into(),
            vec![
                Box::new(rows.iter().map(|r| r.id).collect::<Vec<_>>()),
                Box::new(rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>()),
                Box::new(rows.iter().map(|r| r.email.as_str()).collect::<Vec<_>>()),
                Box::new(rows.iter().map(|r| r.created_at).collect::<Vec<_>>()),
            ],
        ))
    }

    fn from_copy_out(row: &tokio_postgres::binary_copy::BinaryCopyOutRow) -> Self {
        User {
            id: row.get(0),
            name: row.get(1),
            email: row.get(2),
            created_at: row.get(3),
        }
    }

    fn from_query(row: &tokio_postgres::Row) -> Self {
        User {
            id: row.get(0),
            name: row.get(1),
            email: row.get(2),
            created_at: row.get(3),
        }
    }
}

impl Shape for Wide {
    type Ref = common::WideRef<'static>;
    const DDL: &'static str = common::WIDE_DDL;
    const TYPES: &'static [Type] = common::WIDE_TYPES;

    async fn write_to(&self, w: Pin<&mut BinaryCopyInWriter>) -> Result<(), tokio_postgres::Error> {
        w.write(&[
            &self.id,
            &self.uid,
            &self.amount,
            &self.tags,
            &self.scores,
            &self.payload,
            &self.created,
            &self.day,
            &self.flag,
            &self.note,
        ])
        .await
    }

    /// `unnest` flattens array arguments, so the `text[]` and `int4[]` columns cannot be
    /// passed as arrays of arrays: not applicable.
    fn unnest(_rows: &[Self]) -> Option<(String, Vec<Box<dyn ToSql + Sync + '_>>)> {
        None
    }

    fn from_copy_out(row: &tokio_postgres::binary_copy::BinaryCopyOutRow) -> Self {
        from_peer_row!(Wide, row)
    }

    fn from_query(row: &tokio_postgres::Row) -> Self {
        from_peer_row!(Wide, row)
    }
}

// ---------------------------------------------------------------------------------------------
// The server and psql
// ---------------------------------------------------------------------------------------------

struct Env {
    client: Client,
    /// libpq connection string for psql and extra connections.
    conninfo: String,
    psql: PathBuf,
    dir: tempfile::TempDir,
    quick: bool,
    reps: usize,
    /// Keeps the throwaway database alive.
    _db: Option<pgbulk::testkit::TestDb>,
}

impl Env {
    async fn exec(&self, sql: &str) -> Result<(), BoxError> {
        self.client.batch_execute(sql).await?;
        Ok(())
    }

    async fn reset(&self, table: &str) -> Result<(), BoxError> {
        self.exec(&format!("TRUNCATE {table}; CHECKPOINT")).await
    }

    async fn connect(&self) -> Result<Client, BoxError> {
        let (client, conn) = tokio_postgres::connect(&self.conninfo, tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                eprintln!("connection error: {e}");
            }
        });
        Ok(client)
    }

    /// Runs one psql command; its CPU is collected as a child's.
    fn psql(&self, command: &str) -> Result<(), BoxError> {
        let out = Command::new(&self.psql)
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &self.conninfo,
                "-c",
            ])
            .arg(command)
            .output()?;
        if !out.status.success() {
            return Err(format!("psql failed: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        Ok(())
    }
}

fn find_psql(bin_dir: Option<&Path>) -> PathBuf {
    if let Some(dir) = bin_dir {
        let p = dir.join("psql");
        if p.exists() {
            return p;
        }
    }
    PathBuf::from("psql")
}

// ---------------------------------------------------------------------------------------------
// Write contenders
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Writer {
    PgbulkFresh,
    PgbulkReused,
    PgbulkPrepared,
    BinaryCopyIn,
    MultiRowInsert,
    Unnest,
    PerRowInsert,
    Psql,
    /// `copy_in_returning`, the generated ids back (one call per batch).
    PgbulkReturning,
    /// `INSERT .. SELECT FROM unnest(..) RETURNING id`, prepared once (one call per batch).
    UnnestReturning,
}

/// The ids a `RETURNING` write hands back.
#[derive(CopyRow, Debug)]
struct Id {
    id: i64,
}

impl Writer {
    fn label(self) -> &'static str {
        match self {
            Writer::PgbulkFresh => "pgbulk `copy_in` (fresh plan)",
            Writer::PgbulkReused => "pgbulk `copy_in_with_plan` (reused plan)",
            Writer::PgbulkPrepared => "pgbulk `prepare_copy_in` (plan and statement kept)",
            Writer::BinaryCopyIn => "tokio-postgres `BinaryCopyInWriter`",
            Writer::MultiRowInsert => "multi-row `INSERT .. VALUES` (one tx)",
            Writer::Unnest => "`INSERT .. SELECT FROM unnest(..)`",
            Writer::PerRowInsert => "per-row `INSERT` (one tx per batch)",
            Writer::Psql => "floor: `psql \\copy .. FROM file (FORMAT binary)`",
            Writer::PgbulkReturning => "pgbulk `copy_in_returning` (ids back)",
            Writer::UnnestReturning => {
                "`INSERT .. SELECT FROM unnest(..) RETURNING id`, prepared (ids back)"
            }
        }
    }
}

/// One write of `batches` (each one COPY / statement group) into `T`'s table.
async fn write_batches<T: Shape>(
    env: &Env,
    how: Writer,
    plan: &Plan<T>,
    batches: &[&[T]],
    files: &[PathBuf],
) -> Result<(), BoxError> {
    let client = &env.client;
    let table = pgbulk::table_of::<T>();
    let cols = column_list::<T>();
    let ncols = pgbulk::columns_of::<T>().len();
    match how {
        Writer::PgbulkFresh => {
            for b in batches {
                client.bulk().copy_in(*b).await?;
            }
        }
        Writer::PgbulkReused => {
            for b in batches {
                client.bulk().copy_in_with_plan(plan, *b).await?;
            }
        }
        Writer::PgbulkPrepared => {
            let prepared = client.bulk().prepare_copy_in(plan).await?;
            for b in batches {
                client.bulk().copy_in_prepared(&prepared, *b).await?;
            }
        }
        Writer::BinaryCopyIn => {
            let sql = format!("COPY {table} ({cols}) FROM STDIN (FORMAT binary)");
            for b in batches {
                let sink = client.copy_in(&sql).await?;
                let mut w = pin!(BinaryCopyInWriter::new(sink, T::TYPES));
                for row in *b {
                    row.write_to(w.as_mut()).await?;
                }
                w.finish().await?;
            }
        }
        Writer::MultiRowInsert => {
            let per = 65_535 / ncols;
            let values = |n: usize| {
                let mut s = format!("INSERT INTO {table} ({cols}) VALUES ");
                for r in 0..n {
                    if r > 0 {
                        s.push(',');
                    }
                    s.push('(');
                    for c in 0..ncols {
                        if c > 0 {
                            s.push(',');
                        }
                        let _ = write!(s, "${}", r * ncols + c + 1);
                    }
                    s.push(')');
                }
                s
            };
            client.batch_execute("BEGIN").await?;
            let mut stmts = HashMap::new();
            for b in batches {
                for chunk in b.chunks(per) {
                    if let Entry::Vacant(slot) = stmts.entry(chunk.len()) {
                        slot.insert(client.prepare(&values(chunk.len())).await?);
                    }
                    let mut params: Vec<&(dyn ToSql + Sync)> =
                        Vec::with_capacity(chunk.len() * ncols);
                    for row in chunk {
                        row.extend_params(&mut params);
                    }
                    client.execute(&stmts[&chunk.len()], &params).await?;
                }
            }
            client.batch_execute("COMMIT").await?;
        }
        Writer::Unnest => {
            client.batch_execute("BEGIN").await?;
            for b in batches {
                for chunk in b.chunks(100_000) {
                    let (sql, arrays) = T::unnest(chunk).ok_or("not applicable")?;
                    let params: Vec<&(dyn ToSql + Sync)> =
                        arrays.iter().map(|a| &**a as &(dyn ToSql + Sync)).collect();
                    client.execute(&sql, &params).await?;
                }
            }
            client.batch_execute("COMMIT").await?;
        }
        Writer::PgbulkReturning => {
            for b in batches {
                let ids: Vec<Id> = client.bulk().copy_in_returning::<Id, _, _>(*b).await?;
                assert_eq!(ids.len(), b.len());
            }
        }
        Writer::UnnestReturning => {
            let mut stmts = HashMap::new();
            for b in batches {
                let (sql, arrays) = T::unnest(b).ok_or("not applicable")?;
                if let Entry::Vacant(slot) = stmts.entry(b.len()) {
                    slot.insert(client.prepare(&format!("{sql} RETURNING id")).await?);
                }
                let params: Vec<&(dyn ToSql + Sync)> =
                    arrays.iter().map(|a| &**a as &(dyn ToSql + Sync)).collect();
                let ids = client.query(&stmts[&b.len()], &params).await?;
                assert_eq!(ids.len(), b.len());
            }
        }
        Writer::PerRowInsert => {
            let placeholders = (1..=ncols)
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let stmt = client
                .prepare(&format!(
                    "INSERT INTO {table} ({cols}) VALUES ({placeholders})"
                ))
                .await?;
            for b in batches {
                client.batch_execute("BEGIN").await?;
                for row in *b {
                    let mut params = Vec::with_capacity(ncols);
                    row.extend_params(&mut params);
                    client.execute(&stmt, &params).await?;
                }
                client.batch_execute("COMMIT").await?;
            }
        }
        Writer::Psql => {
            for f in files {
                env.psql(&format!(
                    "\\copy {table} ({cols}) FROM '{}' WITH (FORMAT binary)",
                    f.display()
                ))?;
            }
        }
    }
    Ok(())
}

/// Writes each batch as a binary COPY file (for the psql floor).
fn copy_files<T: Shape>(env: &Env, tag: &str, plan: &Plan<T>, batches: &[&[T]]) -> Vec<PathBuf> {
    batches
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let path = env
                .dir
                .path()
                .join(format!("{}-{tag}-{i}.pgcopy", pgbulk::table_of::<T>()));
            let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
            let mut w = pgbulk::pgcopy::Writer::with_plan(file, plan);
            w.write_all(b.iter()).unwrap();
            w.finish().unwrap();
            path
        })
        .collect()
}

struct WriteTable {
    title: String,
    rows: usize,
    batch: usize,
    batches: usize,
    results: Vec<(Writer, Result_)>,
}

/// Runs every contender on `rows`, split into batches of `batch`, warm-up + reps, rotating.
async fn bench_writes<T: Shape>(
    env: &Env,
    title: &str,
    rows: &[T],
    batch: usize,
    contenders: &[Writer],
) -> Result<WriteTable, BoxError> {
    let plan = env.client.bulk().plan::<T>().await?;
    let batches: Vec<&[T]> = rows.chunks(batch).collect();
    let files = if contenders.contains(&Writer::Psql) {
        copy_files(env, "batches", &plan, &batches)
    } else {
        Vec::new()
    };
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); contenders.len()];
    for rep in 0..=env.reps {
        for k in 0..contenders.len() {
            let i = (k + rep) % contenders.len();
            let how = contenders[i];
            env.reset(pgbulk::table_of::<T>()).await?;
            let s = measure(how == Writer::Psql, || {
                write_batches(env, how, &plan, &batches, &files)
            })
            .await?;
            let n: i64 = env
                .client
                .query_one(
                    &format!("SELECT count(*) FROM {}", pgbulk::table_of::<T>()),
                    &[],
                )
                .await?
                .get(0);
            assert_eq!(n as usize, rows.len(), "{how:?} wrote every row");
            if rep > 0 {
                samples[i].push(s);
            }
        }
    }
    for f in files {
        let _ = std::fs::remove_file(f);
    }
    let results = contenders
        .iter()
        .zip(&samples)
        .map(|(w, s)| (*w, summarize(w.label(), s)))
        .collect();
    eprintln!("done: {title}");
    Ok(WriteTable {
        title: title.to_owned(),
        rows: rows.len(),
        batch,
        batches: batches.len(),
        results,
    })
}

// ---------------------------------------------------------------------------------------------
// Read contenders
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Reader {
    Pgbulk,
    /// `copy_out_each` with `Shape::Ref` rows borrowing their texts.
    Borrowed,
    /// `copy_out_parallel` over this many connections (one snapshot, block ranges).
    Parallel(usize),
    BinaryCopyOut,
    Query,
    Psql,
    /// tokio-postgres' `copy_out` messages, each looked at and dropped: what every reader on
    /// that transport pays before decoding anything.
    Transport,
    /// `Shape::HAND` over tokio-postgres' `copy_out` messages.
    Hand,
}

impl Reader {
    fn label(self) -> &'static str {
        match self {
            Reader::Pgbulk => "pgbulk `copy_out` into structs",
            Reader::Borrowed => "pgbulk `copy_out_each`, rows borrowing their texts",
            Reader::Parallel(2) => "pgbulk `copy_out_parallel`, 2 connections",
            Reader::Parallel(_) => "pgbulk `copy_out_parallel`, 4 connections",
            Reader::BinaryCopyOut => "tokio-postgres `BinaryCopyOutStream` into structs",
            Reader::Query => "tokio-postgres `query()` into structs",
            Reader::Psql => "floor: `psql \\copy (..) TO '/dev/null' (FORMAT binary)`",
            Reader::Transport => {
                "reference: tokio-postgres `copy_out` messages alone, nothing decoded"
            }
            Reader::Hand => {
                "reference: hand-written decoder of those messages into structs, no checks"
            }
        }
    }
}

async fn read_all<T: Shape>(
    env: &Env,
    readers: &[Client],
    how: Reader,
    expect: usize,
) -> Result<(), BoxError> {
    let select = format!(
        "SELECT {} FROM {}",
        column_list::<T>(),
        pgbulk::table_of::<T>()
    );
    let n = match how {
        Reader::Pgbulk => {
            let rows: Vec<T> = env.client.bulk().copy_out::<T>().collect_vec().await?;
            rows.len()
        }
        Reader::Borrowed => {
            let mut seen = 0;
            let n = env
                .client
                .bulk()
                .copy_out_each::<T::Ref>(|row| {
                    std::hint::black_box(&row);
                    seen += 1;
                })
                .await?;
            assert_eq!(n, seen);
            usize::try_from(n)?
        }
        Reader::Parallel(n) => {
            let clients: Vec<&Client> = readers[..n].iter().collect();
            let rows: Vec<T> = pgbulk::copy_out_parallel(&clients)
                .collect_vec::<T>()
                .await?;
            rows.len()
        }
        Reader::BinaryCopyOut => {
            let stream = env
                .client
                .copy_out(&format!("COPY ({select}) TO STDOUT (FORMAT binary)"))
                .await?;
            let rows: Vec<T> = BinaryCopyOutStream::new(stream, T::TYPES)
                .map_ok(|row| T::from_copy_out(&row))
                .try_collect()
                .await?;
            rows.len()
        }
        Reader::Query => {
            let rows: Vec<T> = env
                .client
                .query(&select, &[])
                .await?
                .iter()
                .map(T::from_query)
                .collect();
            rows.len()
        }
        Reader::Transport => {
            let stream = env
                .client
                .copy_out(&format!("COPY ({select}) TO STDOUT (FORMAT binary)"))
                .await?;
            let mut stream = std::pin::pin!(stream);
            let mut messages = 0;
            while let Some(message) = stream.try_next().await? {
                std::hint::black_box(&message);
                messages += 1;
            }
            // One message per row (the header in front of the first), and the trailer's.
            messages - 1
        }
        Reader::Hand => {
            let decode = T::HAND.expect("a hand-written decoder for this shape");
            let stream = env
                .client
                .copy_out(&format!("COPY ({select}) TO STDOUT (FORMAT binary)"))
                .await?;
            let mut stream = std::pin::pin!(stream);
            let mut rows: Vec<T> = Vec::new();
            let mut first = true;
            while let Some(message) = stream.try_next().await? {
                rows.extend(decode(&message, first));
                first = false;
            }
            rows.len()
        }
        Reader::Psql => {
            env.psql(&format!(
                "\\copy ({select}) TO '/dev/null' WITH (FORMAT binary)"
            ))?;
            expect
        }
    };
    assert_eq!(n, expect, "{how:?} read every row");
    Ok(())
}

/// One read table: its title, its row count, and each contender's result.
type Reads = (String, usize, Vec<(Reader, Result_)>);

async fn bench_reads<T: Shape>(env: &Env, title: &str, rows: &[T]) -> Result<Reads, BoxError> {
    let mut contenders = vec![
        Reader::Pgbulk,
        Reader::Borrowed,
        Reader::Parallel(2),
        Reader::Parallel(4),
        Reader::BinaryCopyOut,
        Reader::Query,
        Reader::Psql,
        Reader::Transport,
    ];
    if T::HAND.is_some() {
        contenders.push(Reader::Hand);
    }
    // The parallel reads' connections, opened outside the timed sections.
    let mut readers = Vec::new();
    for _ in 0..4 {
        readers.push(env.connect().await?);
    }
    env.reset(pgbulk::table_of::<T>()).await?;
    env.client.bulk().copy_in(rows).await?;
    env.exec(&format!("VACUUM ANALYZE {}", pgbulk::table_of::<T>()))
        .await?;
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); contenders.len()];
    for rep in 0..=env.reps {
        for k in 0..contenders.len() {
            let i = (k + rep) % contenders.len();
            let how = contenders[i];
            env.exec("CHECKPOINT").await?;
            let s = measure(how == Reader::Psql, || {
                read_all::<T>(env, &readers, how, rows.len())
            })
            .await?;
            if rep > 0 {
                samples[i].push(s);
            }
        }
    }
    eprintln!("done: {title}");
    Ok((
        title.to_owned(),
        rows.len(),
        contenders
            .iter()
            .zip(&samples)
            .map(|(r, s)| (*r, summarize(r.label(), s)))
            .collect(),
    ))
}

// ---------------------------------------------------------------------------------------------
// Upsert
// ---------------------------------------------------------------------------------------------

// In `e2e/upsert.rs`.

// ---------------------------------------------------------------------------------------------
// Past one stream: parallel load, replace_all
// ---------------------------------------------------------------------------------------------

async fn bench_parallel(
    env: &Env,
    rows: &[Narrow],
) -> Result<(Vec<(String, Result_)>, Vec<String>), BoxError> {
    let c2 = env.connect().await?;
    let plan = env.client.bulk().plan::<Narrow>().await?;
    let files = copy_files(env, "whole", &plan, &[rows]);
    let names = [
        "floor: `psql \\copy` (one stream)",
        "pgbulk `copy_in` (one stream)",
        "pgbulk `copy_in_parallel`, 2 connections",
        "2 × `psql \\copy` of half the rows, concurrently",
    ];
    let half = rows.len() / 2;
    let halves = copy_files(env, "halves", &plan, &[&rows[..half], &rows[half..]]);
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); names.len()];
    let mut per_conn = Vec::new();
    for rep in 0..=env.reps {
        for k in 0..names.len() {
            let i = (k + rep) % names.len();
            env.reset("bench_narrow").await?;
            let s = measure(i == 0 || i == 3, || async {
                match i {
                    0 => env.psql(&format!(
                        "\\copy bench_narrow (id, value, name) FROM '{}' WITH (FORMAT binary)",
                        files[0].display()
                    ))?,
                    1 => {
                        env.client.bulk().copy_in_with_plan(&plan, rows).await?;
                    }
                    2 => {
                        let outcome = env
                            .client
                            .bulk()
                            .copy_in_parallel_with_plan(&plan, &[&c2], rows)
                            .await?;
                        if rep == env.reps {
                            per_conn = outcome
                                .parts()
                                .iter()
                                .map(|p| {
                                    format!(
                                        "connection {}: rows {}..{}, {} written in {:.3} s",
                                        p.connection,
                                        p.rows.start,
                                        p.rows.end,
                                        p.result.as_ref().map_or(0, |n| *n),
                                        p.elapsed.as_secs_f64()
                                    )
                                })
                                .collect();
                        }
                        outcome.into_result()?;
                    }
                    _ => {
                        let spawn = |f: &PathBuf| {
                            Command::new(&env.psql)
                                .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &env.conninfo, "-c"])
                                .arg(format!(
                                    "\\copy bench_narrow (id, value, name) FROM '{}' WITH (FORMAT binary)",
                                    f.display()
                                ))
                                .spawn()
                        };
                        let mut a = spawn(&halves[0])?;
                        let mut b = spawn(&halves[1])?;
                        assert!(a.wait()?.success() && b.wait()?.success());
                    }
                }
                Ok(())
            })
            .await?;
            let n: i64 = env
                .client
                .query_one("SELECT count(*) FROM bench_narrow", &[])
                .await?
                .get(0);
            assert_eq!(n as usize, rows.len(), "{} wrote every row", names[i]);
            if rep > 0 {
                samples[i].push(s);
            }
        }
    }
    for f in files.iter().chain(&halves) {
        let _ = std::fs::remove_file(f);
    }
    eprintln!("done: parallel");
    Ok((
        names
            .iter()
            .zip(&samples)
            .map(|(n, s)| ((*n).to_owned(), summarize(n, s)))
            .collect(),
        per_conn,
    ))
}

async fn bench_replace_all(
    env: &mut Env,
    rows: &[Narrow],
) -> Result<Vec<(String, Result_)>, BoxError> {
    let names = [
        "pgbulk `replace_all` (TRUNCATE + COPY FREEZE, one tx)",
        "TRUNCATE + pgbulk `copy_in`, one tx",
    ];
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); names.len()];
    for rep in 0..=env.reps {
        for k in 0..names.len() {
            let i = (k + rep) % names.len();
            env.reset("bench_narrow").await?;
            env.client.bulk().copy_in(&rows[..rows.len() / 2]).await?;
            env.exec("CHECKPOINT").await?;
            let client = &mut env.client;
            reset_peak();
            let (cpu0, start) = (self_cpu(), Instant::now());
            if i == 0 {
                let tx = client.transaction().await?;
                tx.bulk().replace_all::<Narrow, _>(rows).await?;
                tx.commit().await?;
            } else {
                let tx = client.transaction().await?;
                tx.batch_execute("TRUNCATE bench_narrow").await?;
                tx.bulk().copy_in(rows).await?;
                tx.commit().await?;
            }
            let s = Sample {
                wall: start.elapsed(),
                cpu: self_cpu().saturating_sub(cpu0),
                peak_kib: status_kib("VmHWM:"),
            };
            let n: i64 = env
                .client
                .query_one("SELECT count(*) FROM bench_narrow", &[])
                .await?
                .get(0);
            assert_eq!(n as usize, rows.len());
            if rep > 0 {
                samples[i].push(s);
            }
        }
    }
    eprintln!("done: replace_all");
    Ok(names
        .iter()
        .zip(&samples)
        .map(|(n, s)| ((*n).to_owned(), summarize(n, s)))
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Memory: a 10M-row streaming load in a child process
// ---------------------------------------------------------------------------------------------

/// The child: connect, note the idle RSS, `copy_in` `n` lazily made rows, report the peak.
async fn memory_child(conninfo: &str, n: i64) -> Result<(), BoxError> {
    let (client, conn) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    client
        .batch_execute("TRUNCATE bench_narrow; CHECKPOINT")
        .await?;
    let plan = client.bulk().plan::<Narrow>().await?;
    let idle = status_kib("VmRSS:");
    reset_peak();
    let start = Instant::now();
    let written = client
        .bulk()
        .copy_in_with_plan(&plan, (0..n).map(common::narrow))
        .await?;
    let wall = start.elapsed();
    assert_eq!(written, n as u64);
    println!(
        "idle_kib={idle} peak_kib={} wall_ms={}",
        status_kib("VmHWM:"),
        wall.as_millis()
    );
    Ok(())
}

fn memory(env: &Env, n: i64) -> Result<(u64, u64, Duration), BoxError> {
    let out = Command::new(std::env::current_exe()?)
        .args(["--memory-child", &env.conninfo, &n.to_string()])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |k: &str| -> u64 {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    if !out.status.success() {
        return Err(format!(
            "memory child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    eprintln!("done: memory");
    Ok((
        field("idle_kib="),
        field("peak_kib="),
        Duration::from_millis(field("wall_ms=")),
    ))
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 {
        format!("{s:.3} s")
    } else if s >= 0.001 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.0} µs", s * 1e6)
    }
}

fn rate(rows: usize, d: Duration) -> String {
    let r = rows as f64 / d.as_secs_f64();
    if r >= 1e6 {
        format!("{:.2} M", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.0} k", r / 1e3)
    } else {
        format!("{r:.0}")
    }
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

fn mib(kib: u64) -> String {
    if kib == 0 {
        "—".into()
    } else {
        format!("{:.0} MiB", kib as f64 / 1024.0)
    }
}

fn write_table(out: &mut String, t: &WriteTable) {
    let floor = t
        .results
        .iter()
        .find(|(w, _)| *w == Writer::Psql)
        .map(|(_, r)| r.wall);
    let bciw = t
        .results
        .iter()
        .find(|(w, _)| *w == Writer::BinaryCopyIn)
        .map(|(_, r)| r.cpu);
    let per_batch = t.batches > 1;
    let _ = writeln!(out, "### {}\n", t.title);
    if per_batch {
        let _ = writeln!(
            out,
            "{} batches of {} rows per repetition; times are per batch (median of the \
             repetitions' means).\n",
            t.batches, t.batch
        );
    }
    let _ = writeln!(
        out,
        "| contender | median wall | rows/s | × floor | client CPU | CPU × BinaryCopyInWriter | peak RSS |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
    let k = t.batches as u32;
    for (_, r) in &t.results {
        let fl = floor.map_or("—".into(), |f| format!("{:.2}×", ratio(r.wall, f)));
        let cpu_ratio = bciw.map_or("—".into(), |b| format!("{:.2}×", ratio(r.cpu, b)));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.name,
            secs(r.wall / k),
            rate(t.rows, r.wall),
            fl,
            secs(r.cpu / k),
            cpu_ratio,
            mib(r.peak_kib)
        );
    }
    out.push('\n');
}

fn read_table(out: &mut String, title: &str, rows: usize, results: &[(Reader, Result_)]) {
    let floor = results
        .iter()
        .find(|(r, _)| *r == Reader::Psql)
        .map(|(_, r)| r.wall);
    let peer = &results
        .iter()
        .find(|(r, _)| *r == Reader::BinaryCopyOut)
        .unwrap()
        .1;
    let _ = writeln!(out, "### {title}\n");
    let _ = writeln!(
        out,
        "| contender | median wall | rows/s | × floor | wall × BinaryCopyOutStream | client CPU | CPU × BinaryCopyOutStream | peak RSS |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for (_, r) in results {
        let fl = floor.map_or("—".into(), |f| format!("{:.2}×", ratio(r.wall, f)));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.2}× | {} | {:.2}× | {} |",
            r.name,
            secs(r.wall),
            rate(rows, r.wall),
            fl,
            ratio(r.wall, peer.wall),
            secs(r.cpu),
            ratio(r.cpu, peer.cpu),
            mib(r.peak_kib)
        );
    }
    out.push('\n');
}

fn simple_table(out: &mut String, title: &str, rows: usize, results: &[(String, Result_)]) {
    let base = results[0].1.wall;
    let _ = writeln!(out, "### {title}\n");
    let _ = writeln!(
        out,
        "| contender | median wall | rows/s | × first row | client CPU | peak RSS |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    for (_, r) in results {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.2}× | {} | {} |",
            r.name,
            secs(r.wall),
            rate(rows, r.wall),
            ratio(r.wall, base),
            secs(r.cpu),
            mib(r.peak_kib)
        );
    }
    out.push('\n');
}

fn find<'a, K: PartialEq>(v: &'a [(K, Result_)], k: &K) -> &'a Result_ {
    &v.iter().find(|(x, _)| x == k).unwrap().1
}

fn target(out: &mut String, what: &str, value: f64, limit: &str, ok: bool) {
    let _ = writeln!(
        out,
        "| {what} | {value:.2} | {limit} | {} |",
        if ok { "holds" } else { "**does not hold**" }
    );
}

fn machine_line(pg_version: &str) -> String {
    let nproc = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC");
    format!("{nproc} cores ({cpu}), PostgreSQL {pg_version}, {date}")
}

// ---------------------------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------------------------

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if let Some(i) = args.iter().position(|a| a == "--memory-child") {
        let n = args[i + 2].parse()?;
        return rt.block_on(memory_child(&args[i + 1], n));
    }
    let quick = args.iter().any(|a| a == "--quick");
    // `-- --upsert`: only the upserts; `-- --reads`: only the reads (narrow and wide); both
    // printed. `-- sqlx`: only the sqlx section (benches/e2e_sqlx), into its own part of the
    // file.
    let only = if args.iter().any(|a| a == "--upsert") {
        Only::Upsert
    } else if args.iter().any(|a| a == "--reads") {
        Only::Reads
    } else if args.iter().any(|a| a == "sqlx") {
        Only::Sqlx
    } else {
        Only::All
    };
    let (only_upsert, only_reads, sqlx_only) = (
        only == Only::Upsert,
        only == Only::Reads,
        only == Only::Sqlx,
    );
    let started = Instant::now();
    let result = rt.block_on(run(quick, only));
    pgbulk::testkit::shutdown();
    let (report, sqlx_report) = result?;
    eprintln!("total {:.0} s", started.elapsed().as_secs_f64());
    if quick || only_upsert || only_reads {
        println!("{report}{sqlx_report}");
    } else {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md");
        let mut text = std::fs::read_to_string(&path).unwrap_or_default();
        if !sqlx_only {
            text = replace_section(&text, "e2e", &report);
        }
        text = replace_section(&text, "e2e-sqlx", &sqlx_report);
        std::fs::write(&path, text)?;
        println!("{report}{sqlx_report}");
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// The read targets: client CPU of owned and borrowed reads × `BinaryCopyOutStream`'s.
fn read_targets(targets: &mut String, reads: [&Reads; 2]) {
    for (title, _, results) in reads {
        let shape = title.split(',').next().unwrap_or("");
        let ours = find(results, &Reader::Pgbulk);
        let borrowed = find(results, &Reader::Borrowed);
        let peer = find(results, &Reader::BinaryCopyOut);
        let c = ratio(ours.cpu, peer.cpu);
        target(
            targets,
            &format!("read {shape} into owned structs: client CPU × BinaryCopyOutStream"),
            c,
            "≤ 0.75",
            c <= 0.75,
        );
        let b = ratio(borrowed.cpu, peer.cpu);
        target(
            targets,
            &format!("read {shape} borrowing (`copy_out_each`): client CPU × BinaryCopyOutStream"),
            b,
            "≤ 0.55",
            b <= 0.55,
        );
        // What the transport alone costs every reader, and what a decoder with no checks
        // reaches on it: the floors the two targets above sit against.
        for (how, what) in [
            (
                Reader::Transport,
                "tokio-postgres `copy_out` messages alone",
            ),
            (Reader::Hand, "hand-written decoder into owned structs"),
        ] {
            if let Some((_, r)) = results.iter().find(|(r, _)| *r == how) {
                let _ = writeln!(
                    targets,
                    "| reference, read {shape}: {what}: client CPU × BinaryCopyOutStream | {:.2} | — | reference |",
                    ratio(r.cpu, peer.cpu)
                );
            }
        }
    }
}

/// `text` with the part between `<!-- name:begin -->` and `<!-- name:end -->` replaced by
/// `body` (appended when the markers are missing).
fn replace_section(text: &str, name: &str, body: &str) -> String {
    let (begin, end) = (
        format!("<!-- {name}:begin -->"),
        format!("<!-- {name}:end -->"),
    );
    match (text.find(&begin), text.find(&end)) {
        (Some(b), Some(e)) => format!("{}{begin}\n{body}{}", &text[..b], &text[e..]),
        _ if text.is_empty() => format!("# Benchmarks\n\n{begin}\n{body}{end}\n"),
        _ => format!("{text}\n{begin}\n{body}{end}\n"),
    }
}

/// Which sections a run measures.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Only {
    All,
    Upsert,
    Reads,
    Sqlx,
}

async fn run(quick: bool, only: Only) -> Result<(String, String), BoxError> {
    let (only_upsert, only_reads, sqlx_only) = (
        only == Only::Upsert,
        only == Only::Reads,
        only == Only::Sqlx,
    );
    let (client, conninfo, db, bin_dir) = if let Ok(url) = std::env::var("DATABASE_URL") {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        (client, url, None, None)
    } else {
        let db = pgbulk::testkit::TestDb::new().await?;
        let info = pgbulk::testkit::server_info()?;
        let client = db.connect().await?;
        let conninfo = db.connection_string();
        (client, conninfo, Some(db), info.bin_dir)
    };
    // The sqlx section connects over the unix socket and over TCP (the testkit's 127.0.0.1
    // listener, or DATABASE_URL when it names a TCP host).
    let sqlx_unix: tokio_postgres::Config = match &db {
        Some(db) => db.config().clone(),
        None => conninfo.parse()?,
    };
    let sqlx_tcp = match &db {
        Some(db) => db.tcp_config(),
        None => matches!(
            sqlx_unix.get_hosts().first(),
            Some(tokio_postgres::config::Host::Tcp(_))
        )
        .then(|| sqlx_unix.clone()),
    };
    let mut env = Env {
        client,
        conninfo,
        psql: find_psql(bin_dir.as_deref()),
        dir: tempfile::tempdir()?,
        quick,
        reps: if quick { 2 } else { 5 },
        _db: db,
    };
    let scale = if env.quick { 10 } else { 1 };
    for ddl in [
        "DROP TABLE IF EXISTS bench_narrow, bench_users, bench_wide",
        Narrow::DDL,
        User::DDL,
        Wide::DDL,
    ] {
        env.exec(ddl).await?;
    }
    let pg_version: String = env
        .client
        .query_one("SHOW server_version", &[])
        .await?
        .get(0);
    if only_upsert {
        let (mut tables, mut targets) = (String::new(), String::new());
        upsert::report(&mut tables, &mut targets, &upsert::bench_all(&env).await?);
        let report = format!(
            "Machine: {}.\n\n{targets}\n{tables}",
            machine_line(&pg_version)
        );
        return Ok((report, String::new()));
    }
    if only_reads {
        let scale = if env.quick { 10 } else { 1 };
        let narrow = common::narrows(1_000_000 / scale);
        let wide = common::wides(200_000 / scale);
        let narrow = bench_reads(&env, &format!("narrow, {} rows", narrow.len()), &narrow).await?;
        let wide = bench_reads(&env, &format!("wide, {} rows", wide.len()), &wide).await?;
        let mut targets = String::new();
        read_targets(&mut targets, [&narrow, &wide]);
        let mut report = format!("Machine: {}.\n\n{targets}\n", machine_line(&pg_version));
        read_table(&mut report, &narrow.0, narrow.1, &narrow.2);
        read_table(&mut report, &wide.0, wide.1, &wide.2);
        return Ok((report, String::new()));
    }
    let sqlx_report = format!(
        "Machine: {}.\n\n{}",
        machine_line(&pg_version),
        e2e_sqlx::run(&env, sqlx_unix, sqlx_tcp).await?
    );
    if sqlx_only {
        return Ok((String::new(), sqlx_report));
    }
    let narrow = common::narrows(1_000_000 / scale);
    let wide = common::wides(200_000 / scale);
    let all = [
        Writer::PgbulkFresh,
        Writer::PgbulkReused,
        Writer::BinaryCopyIn,
        Writer::MultiRowInsert,
        Writer::Unnest,
        Writer::Psql,
    ];
    let mut writes = Vec::new();
    writes.push(
        bench_writes(
            &env,
            &format!("narrow, {} rows", narrow.len()),
            &narrow,
            narrow.len(),
            &all,
        )
        .await?,
    );
    let wide_writers: Vec<Writer> = all
        .iter()
        .copied()
        .filter(|w| *w != Writer::Unnest)
        .collect();
    writes.push(
        bench_writes(
            &env,
            &format!("wide, {} rows", wide.len()),
            &wide,
            wide.len(),
            &wide_writers,
        )
        .await?,
    );
    for (batch, count) in [(5, 200), (500, 20), (5_000, 4), (50_000, 1)] {
        let rows = common::users(0..batch * count, 0);
        let mut contenders = vec![
            Writer::PgbulkFresh,
            Writer::PgbulkReused,
            Writer::PgbulkPrepared,
            Writer::BinaryCopyIn,
            Writer::MultiRowInsert,
            Writer::Unnest,
        ];
        if batch <= 5_000 {
            contenders.push(Writer::PerRowInsert);
        }
        contenders.extend([Writer::PgbulkReturning, Writer::UnnestReturning]);
        if batch >= 5_000 {
            contenders.push(Writer::Psql);
        }
        writes.push(
            bench_writes(
                &env,
                &format!("users, batches of {batch}"),
                &rows,
                batch as usize,
                &contenders,
            )
            .await?,
        );
    }
    let reads_narrow =
        bench_reads(&env, &format!("narrow, {} rows", narrow.len()), &narrow).await?;
    let reads_wide = bench_reads(&env, &format!("wide, {} rows", wide.len()), &wide).await?;
    let upserts = upsert::bench_all(&env).await?;
    let (parallel, per_conn) = bench_parallel(&env, &narrow).await?;
    let replace = bench_replace_all(&mut env, &narrow).await?;
    drop(wide);
    let mem_rows = 10_000_000 / scale as i64;
    let (idle, peak, mem_wall) = memory(&env, mem_rows)?;

    // ---- the report ----
    let mut out = String::new();
    let _ = writeln!(out, "Machine: {}.\n", machine_line(&pg_version));
    let _ = writeln!(
        out,
        "Command: `cargo bench --bench e2e` (testkit server: fsync, full_page_writes and \
         synchronous_commit off; client on one tokio current-thread runtime). Median of {} \
         repetitions after one warm-up, contenders alternating; TRUNCATE (writes) and \
         CHECKPOINT before each. Client CPU: this process's CPU time over the timed section \
         (psql: the child's, 10 ms resolution). Peak RSS: the process's high-water mark over \
         the section, input rows included (psql: not measured).\n",
        env.reps
    );

    let mut targets = String::new();
    let _ = writeln!(targets, "### Targets\n");
    let _ = writeln!(targets, "| target | measured | limit | |");
    let _ = writeln!(targets, "|---|---:|---:|---|");
    for t in &writes[..2] {
        let shape = t.title.split(',').next().unwrap_or("");
        let reused = find(&t.results, &Writer::PgbulkReused);
        let fresh = find(&t.results, &Writer::PgbulkFresh);
        let floor = find(&t.results, &Writer::Psql);
        let bciw = find(&t.results, &Writer::BinaryCopyIn);
        let w = ratio(fresh.wall, floor.wall);
        target(
            &mut targets,
            &format!("write {shape}: wall × psql floor (copy_in)"),
            w,
            "≤ 1.00",
            w <= 1.0,
        );
        let c = ratio(fresh.cpu, bciw.cpu);
        target(
            &mut targets,
            &format!("write {shape}: client CPU × BinaryCopyInWriter"),
            c,
            "≤ 0.33",
            c <= 0.33,
        );
        let _ = reused;
    }
    for (how, label) in [
        (Writer::PgbulkReused, "reused plan (`copy_in_with_plan`)"),
        (Writer::PgbulkPrepared, "prepared (`prepare_copy_in`)"),
    ] {
        let t = &writes[2];
        let r = ratio(
            find(&t.results, &how).wall,
            find(&t.results, &Writer::BinaryCopyIn).wall,
        );
        target(
            &mut targets,
            &format!("users 5-row batch, {label}: latency × BinaryCopyInWriter"),
            r,
            "≤ 1.00",
            r <= 1.0,
        );
    }
    read_targets(&mut targets, [&reads_narrow, &reads_wide]);
    let extra = peak.saturating_sub(idle) as f64 / 1024.0;
    target(
        &mut targets,
        "10M streaming copy_in: peak RSS above idle (MiB)",
        extra,
        "≤ 64",
        extra <= 64.0,
    );
    let par = ratio(parallel[2].1.wall, parallel[0].1.wall);
    target(
        &mut targets,
        "narrow, 2 connections: wall × single-stream floor",
        par,
        "≤ 0.75",
        par <= 0.75,
    );
    let mut upsert_tables = String::new();
    upsert::report(&mut upsert_tables, &mut targets, &upserts);
    out.push_str(&targets);
    out.push('\n');

    let _ = writeln!(out, "## Writes\n");
    for t in &writes {
        write_table(&mut out, t);
    }
    let _ = writeln!(out, "## Reads\n");
    read_table(&mut out, &reads_narrow.0, reads_narrow.1, &reads_narrow.2);
    read_table(&mut out, &reads_wide.0, reads_wide.1, &reads_wide.2);
    let _ = writeln!(out, "## Upsert\n");
    let _ = writeln!(
        out,
        "Command: `cargo bench --bench e2e -- --upsert` (this section alone; \
         `PGBULK_E2E_UPSERT_1M=1` adds the 1,000,000-row batch). What runs: `benches/e2e/upsert.rs`.\n"
    );
    out.push_str(&upsert_tables);
    let _ = writeln!(out, "## Memory\n");
    let _ = writeln!(
        out,
        "`copy_in_with_plan` of {mem_rows} narrow rows from a lazy iterator, in a child process: \
         idle RSS {} (connected, plan made), peak RSS {}, **{extra:.1} MiB above idle**; \
         {} ({} rows/s).\n",
        mib(idle),
        mib(peak),
        secs(mem_wall),
        rate(mem_rows as usize, mem_wall)
    );
    let _ = writeln!(out, "## Past one stream\n");
    simple_table(
        &mut out,
        &format!("narrow, {} rows, parallel load", narrow.len()),
        narrow.len(),
        &parallel,
    );
    if !per_conn.is_empty() {
        let _ = writeln!(
            out,
            "Per connection (last repetition of `copy_in_parallel`):\n"
        );
        for l in &per_conn {
            let _ = writeln!(out, "- {l}");
        }
        out.push('\n');
    }
    simple_table(
        &mut out,
        &format!(
            "narrow, {} rows replacing {} rows",
            narrow.len(),
            narrow.len() / 2
        ),
        narrow.len(),
        &replace,
    );
    env.exec("DROP TABLE IF EXISTS bench_narrow, bench_users, bench_wide")
        .await?;
    Ok((out, sqlx_report))
}
