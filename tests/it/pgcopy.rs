//! Offline binary COPY files: written without a server and loaded with `psql \copy`, written by
//! the server and read back into structs.

use crate::{count, db};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use pgbulk::testkit::TestDb;
use pgbulk::tokio_postgres::types::Type;
use pgbulk::{pgcopy, BulkExt, CopyRow};
use rust_decimal::Decimal;
use std::path::{Path, PathBuf};
use uuid::Uuid;

#[derive(CopyRow, Debug, Clone, PartialEq)]
#[copy(table = "trades")]
struct Trade {
    id: i64,
    symbol: String,
    note: Option<String>,
    price: Decimal,
    qty: i32,
    side: i16,
    ratio: f64,
    open: bool,
    day: NaiveDate,
    at: DateTime<Utc>,
    ref_id: Uuid,
    tags: Vec<String>,
    raw: Vec<u8>,
}

const TRADES: &str = "CREATE TABLE trades (
    id int8 PRIMARY KEY, symbol text NOT NULL, note varchar(40), price numeric(12, 2) NOT NULL,
    qty int4, side int2, ratio float8, open bool, day date, at timestamptz, ref_id uuid,
    tags text[], raw bytea)";

/// The column types of `trades`, given statically, in `Trade`'s field order.
const TYPES: [Type; 13] = [
    Type::INT8,
    Type::TEXT,
    Type::VARCHAR,
    Type::NUMERIC,
    Type::INT4,
    Type::INT2,
    Type::FLOAT8,
    Type::BOOL,
    Type::DATE,
    Type::TIMESTAMPTZ,
    Type::UUID,
    Type::TEXT_ARRAY,
    Type::BYTEA,
];

const COLUMNS: &str = "id, symbol, note, price, qty, side, ratio, open, day, at, ref_id, tags, raw";

/// Trade `g`, by the same formulas as [`TRADES_SQL`] uses on the server.
fn trade(g: i64) -> Trade {
    let small = i32::try_from(g % 1000).unwrap();
    Trade {
        id: g,
        symbol: format!("S{}", g % 50),
        note: (g % 3 != 0).then(|| format!("note {g}")),
        price: Decimal::new(g * 7 % 100_000, 2),
        qty: small,
        side: i16::try_from(g % 5).unwrap(),
        ratio: f64::from(small) / 4.0,
        open: g % 2 == 0,
        day: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + Duration::days(g % 365),
        at: DateTime::from_timestamp(1_700_000_000, 0).unwrap()
            + Duration::microseconds(g * 1_234_567),
        ref_id: Uuid::from_u128(u128::from(g.unsigned_abs())),
        tags: match g % 3 {
            0 => vec![],
            1 => vec!["new".to_owned()],
            _ => vec!["vip".to_owned(), "émigré".to_owned()],
        },
        raw: g.to_be_bytes().to_vec(),
    }
}

/// Fills `trades` with rows 1..=n computed by the server itself (no pgbulk encoder involved).
fn trades_sql(n: i64) -> String {
    format!(
        "INSERT INTO trades SELECT
            g, 'S' || (g % 50), CASE WHEN g % 3 = 0 THEN NULL ELSE 'note ' || g END,
            (g * 7 % 100000) * 0.01, g % 1000, g % 5, (g % 1000) / 4.0, g % 2 = 0,
            date '2024-01-01' + (g % 365)::int,
            to_timestamp(1700000000) + (g * 1234567) * interval '1 microsecond',
            ('00000000-0000-0000-0000-' || lpad(to_hex(g), 12, '0'))::uuid,
            CASE g % 3 WHEN 0 THEN '{{}}'::text[] WHEN 1 THEN ARRAY['new'] ELSE ARRAY['vip', 'émigré'] END,
            int8send(g)
         FROM generate_series(1::int8, {n}) g"
    )
}

/// Runs one `psql` command against the test database; returns its output.
fn psql(db: &TestDb, command: &str) -> String {
    let bin = pgbulk::testkit::server_info()
        .ok()
        .and_then(|info| info.bin_dir)
        .map(|dir| dir.join("psql"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("psql"));
    let out = std::process::Command::new(&bin)
        .args(["-X", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(db.connection_string())
        .args(["-c", command])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "psql {command:?} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn write_file(path: &Path, rows: impl Iterator<Item = Trade>) -> u64 {
    let file = std::fs::File::create(path).unwrap();
    let mut w = pgcopy::Writer::<_, Trade>::new(file, TYPES).unwrap();
    let n = w.write_all(rows).unwrap();
    w.finish().unwrap();
    n
}

#[tokio::test]
async fn file_written_offline_loads_with_psql_copy() {
    let db = db().await;
    db.client().batch_execute(TRADES).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trades.pgcopy");
    let n = 20_000;
    assert_eq!(write_file(&path, (1..=n).map(trade)), n.unsigned_abs());

    let out = psql(
        &db,
        &format!(
            "\\copy trades ({COLUMNS}) FROM '{}' WITH (FORMAT binary)",
            path.display()
        ),
    );
    assert_eq!(out.trim(), format!("COPY {n}"));
    assert_eq!(count(&db, "trades").await, n);

    // The server's own view of some values (text output, independent of pgbulk's decoder).
    let row = db
        .client()
        .query_one(
            "SELECT symbol, note, price::text, ratio::text, day::text, \
             to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), ref_id::text, \
             tags::text, encode(raw, 'hex') FROM trades WHERE id = 12345",
            &[],
        )
        .await
        .unwrap();
    let cells: Vec<Option<String>> = (0..9).map(|i| row.get(i)).collect();
    let t = trade(12345);
    assert_eq!(
        cells,
        [
            Some(t.symbol.clone()),
            None, // 12345 % 3 == 0
            Some(t.price.to_string()),
            Some(t.ratio.to_string()),
            Some(t.day.to_string()),
            Some(t.at.format("%Y-%m-%d %H:%M:%S%.6f").to_string()),
            Some(t.ref_id.to_string()),
            Some("{}".to_owned()),
            Some("0000000000003039".to_owned()),
        ]
    );
    let sums: (i64, i64, Decimal) = {
        let r = db
            .client()
            .query_one(
                "SELECT count(note), sum(qty)::int8, sum(price) FROM trades",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    let rows: Vec<Trade> = (1..=n).map(trade).collect();
    assert_eq!(
        sums,
        (
            i64::try_from(rows.iter().filter(|t| t.note.is_some()).count()).unwrap(),
            rows.iter().map(|t| i64::from(t.qty)).sum(),
            rows.iter().map(|t| t.price).sum(),
        )
    );
    // And every row, read back.
    let back = db
        .client()
        .bulk()
        .copy_out_query::<Trade>("SELECT * FROM trades ORDER BY id")
        .collect_vec()
        .await
        .unwrap();
    assert_eq!(back, rows);
}

#[tokio::test]
async fn file_written_by_psql_copy_to_reads_back() {
    let db = db().await;
    db.client().batch_execute(TRADES).await.unwrap();
    let n = 20_000;
    db.client().batch_execute(&trades_sql(n)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("from-server.pgcopy");
    let out = psql(
        &db,
        &format!(
            "\\copy (SELECT {COLUMNS} FROM trades ORDER BY id) TO '{}' WITH (FORMAT binary)",
            path.display()
        ),
    );
    assert_eq!(out.trim(), format!("COPY {n}"));

    let file = std::fs::File::open(&path).unwrap();
    let mut reader = pgcopy::Reader::<_, Trade>::new(file, TYPES).unwrap();
    let mut expect = 1..=n;
    for row in &mut reader {
        let row = row.unwrap();
        assert_eq!(row, trade(expect.next().unwrap()));
    }
    assert_eq!(expect.next(), None, "the file ended early");
    assert_eq!(reader.rows(), n.unsigned_abs());

    // A file cut short is an error, not a short read.
    let bytes = std::fs::read(&path).unwrap();
    let cut = &bytes[..bytes.len() / 2];
    let results: Vec<_> = pgcopy::Reader::<_, Trade>::new(cut, TYPES)
        .unwrap()
        .collect();
    let err = results.last().unwrap().as_ref().unwrap_err();
    assert_eq!(err.kind(), pgbulk::ErrorKind::Protocol);
    assert_eq!(err.row(), Some(results.len() as u64 - 1));
}

/// The types can also come from a plan made on the server; raw `COPY .. TO STDOUT` bytes make a
/// file as well as `psql` does.
#[tokio::test]
async fn types_from_a_plan_and_raw_copy_out_bytes() {
    use futures_util::TryStreamExt;
    let db = db().await;
    db.client().batch_execute(TRADES).await.unwrap();
    db.client().batch_execute(&trades_sql(5_000)).await.unwrap();
    let plan = db.client().bulk().plan::<Trade>().await.unwrap();
    assert_eq!(plan.types(), TYPES);

    let mut file = Vec::new();
    let mut stream = std::pin::pin!(db
        .client()
        .copy_out(&format!(
            "COPY (SELECT {COLUMNS} FROM trades ORDER BY id) TO STDOUT (FORMAT binary)"
        ))
        .await
        .unwrap());
    while let Some(chunk) = stream.try_next().await.unwrap() {
        file.extend_from_slice(&chunk);
    }
    let rows: Vec<Trade> = pgcopy::Reader::with_plan(&file[..], &plan)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows, (1..=5_000).map(trade).collect::<Vec<_>>());

    // Writing with the plan's types gives the server's bytes exactly (same encodings).
    let mut w = pgcopy::Writer::with_plan(Vec::new(), &plan);
    w.write_all(&rows).unwrap();
    assert!(
        w.finish().unwrap() == file,
        "pgbulk's file differs from the server's"
    );
}
