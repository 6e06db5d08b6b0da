//! Loading files: a generated 1,000,000-line CSV streamed through serde and
//! `blocking_stream` into `copy_in_stream`, checked exactly; malformed lines named by line.

use crate::{count, db};
use futures_util::TryStreamExt;
use pgbulk::{BulkExt, CopyRow, ErrorKind};
use serde::Deserialize;
use std::path::Path;

#[derive(CopyRow, Deserialize, Debug, Clone, PartialEq)]
#[copy(table = "people")]
struct Person {
    id: i64,
    name: String,
    qty: i32,
    price: f64,
    active: bool,
    note: Option<String>,
}

const PEOPLE: &str = "CREATE TABLE people (
    id int8 PRIMARY KEY, name text NOT NULL, qty int4, price float8, active bool, note text)";

/// Person `i`: some names need CSV quoting (commas, quotes, a line break), some are not ASCII.
fn person(i: i64) -> Person {
    Person {
        id: i * 3 - 7,
        name: match i % 1000 {
            0 => format!("Smith, \"J\" #{i}"),
            1 => format!("two\nlines {i}"),
            2 => format!("émigré ☃ {i}"),
            _ => format!("person {i}"),
        },
        qty: i32::try_from(i % 2000).unwrap() - 1000,
        // Multiples of 1/4: exact in binary, so sums do not depend on the order of addition.
        price: f64::from(i32::try_from(i % 100_000).unwrap()) / 4.0,
        active: i % 3 == 0,
        note: (i % 5 != 0).then(|| format!("n{i}")),
    }
}

/// What the test knows about the file it wrote, per column, to compare with the table.
#[derive(Debug, Default, PartialEq)]
struct Sums {
    rows: i64,
    id: i128,
    qty: i64,
    price: f64,
    active: i64,
    notes: i64,
    name_bytes: i64,
    note_bytes: i64,
    multiline: i64,
}

/// Writes people `0..n` as CSV with a header, quoting by hand (RFC 4180) so the test does not
/// check the csv crate against itself. Returns the line each record starts on, and the sums.
fn write_csv(path: &Path, n: i64, bad: Option<i64>) -> (Vec<u64>, Sums) {
    use std::io::Write;
    let mut w = std::io::BufWriter::with_capacity(256 * 1024, std::fs::File::create(path).unwrap());
    writeln!(w, "id,name,qty,price,active,note").unwrap();
    let mut line = 2;
    let mut lines = Vec::with_capacity(usize::try_from(n).unwrap());
    let mut sums = Sums::default();
    for i in 0..n {
        let p = person(i);
        lines.push(line);
        line += 1 + p.name.matches('\n').count() as u64;
        let name = if p.name.contains([',', '"', '\n']) {
            format!("\"{}\"", p.name.replace('"', "\"\""))
        } else {
            p.name.clone()
        };
        let qty = if Some(i) == bad {
            // Not a number where `qty: i32` is expected.
            "12x".to_owned()
        } else {
            p.qty.to_string()
        };
        writeln!(
            w,
            "{},{name},{qty},{},{},{}",
            p.id,
            p.price,
            p.active,
            p.note.as_deref().unwrap_or("")
        )
        .unwrap();
        sums.rows += 1;
        sums.id += i128::from(p.id);
        sums.qty += i64::from(p.qty);
        sums.price += p.price;
        sums.active += i64::from(p.active);
        sums.notes += i64::from(p.note.is_some());
        sums.name_bytes += i64::try_from(p.name.len()).unwrap();
        sums.note_bytes += p
            .note
            .as_ref()
            .map_or(0, |s| i64::try_from(s.len()).unwrap());
        sums.multiline += i64::from(p.name.contains('\n'));
    }
    w.flush().unwrap();
    (lines, sums)
}

/// The CSV's rows as a stream for `copy_in_stream`: parsed by the csv crate on a blocking
/// thread, handed over through a bounded channel (constant memory).
fn csv_rows(path: &Path) -> pgbulk::BlockingStream<Person, csv::Error> {
    let reader = csv::ReaderBuilder::new()
        .buffer_capacity(256 * 1024)
        .from_path(path)
        .unwrap();
    pgbulk::blocking_stream(reader.into_deserialize::<Person>())
}

#[tokio::test]
async fn million_line_csv_loads_exactly() {
    let db = db().await;
    db.client().batch_execute(PEOPLE).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("people.csv");
    let n = 1_000_000;
    let (lines, expect) = write_csv(&path, n, None);
    // The quoted line breaks make the file longer than one line per record.
    assert_eq!(
        *lines.last().unwrap(),
        (n.unsigned_abs() + 1) + n.unsigned_abs() / 1000
    );

    let written = db
        .client()
        .bulk()
        .copy_in_stream(csv_rows(&path))
        .await
        .unwrap();
    assert_eq!(written, n.unsigned_abs());

    // Per column, the server's aggregates against the same computed in Rust.
    let r = db
        .client()
        .query_one(
            "SELECT count(*), sum(id)::text, sum(qty)::int8, sum(price), \
             count(*) FILTER (WHERE active), count(note), sum(octet_length(name))::int8, \
             coalesce(sum(octet_length(note)), 0)::int8, \
             count(*) FILTER (WHERE name LIKE E'%\\n%') FROM people",
            &[],
        )
        .await
        .unwrap();
    let got = Sums {
        rows: r.get(0),
        id: r.get::<_, String>(1).parse().unwrap(),
        qty: r.get(2),
        price: r.get(3),
        active: r.get(4),
        notes: r.get(5),
        name_bytes: r.get(6),
        note_bytes: r.get(7),
        multiline: r.get(8),
    };
    assert_eq!(got, expect);

    // And the text exactly, row by row (sums cannot see a swapped character).
    let mut back = db
        .client()
        .bulk()
        .copy_out_query::<Text>("SELECT id, name, note FROM people ORDER BY id");
    let mut i = 0;
    while let Some(row) = back.try_next().await.unwrap() {
        let want = person(i);
        assert!(
            row.id == want.id && row.name == want.name && row.note == want.note,
            "row {i}: read {row:?}, expected {want:?}"
        );
        i += 1;
    }
    assert_eq!(i, n);
}

/// The text columns of `people`.
#[derive(CopyRow, Debug)]
struct Text {
    id: i64,
    name: String,
    note: Option<String>,
}

#[tokio::test]
async fn malformed_line_is_named_and_nothing_is_written() {
    let db = db().await;
    db.client().batch_execute(PEOPLE).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.csv");
    // Well past the first 256 KiB chunk, so rows were already sent when the error comes.
    let bad = 40_000;
    let (lines, _) = write_csv(&path, 50_000, Some(bad));
    let line = lines[usize::try_from(bad).unwrap()];
    assert!(
        line > bad.unsigned_abs() + 2,
        "quoted line breaks come before it"
    );

    let err = db
        .client()
        .bulk()
        .copy_in_stream(csv_rows(&path))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Input);
    assert_eq!(err.row(), Some(bad.unsigned_abs()));
    let csv_err = std::error::Error::source(&err)
        .and_then(|s| s.downcast_ref::<csv::Error>())
        .expect("the csv error is the source");
    assert_eq!(csv_err.position().map(csv::Position::line), Some(line));
    let message = err.to_string();
    assert!(message.contains(&format!("line: {line}")), "{message}");
    assert!(
        message.contains("field 2"),
        "names the qty field: {message}"
    );
    assert_eq!(count(&db, "people").await, 0);
}
