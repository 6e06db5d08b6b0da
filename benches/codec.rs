//! Encode and decode throughput with no server: pgbulk's derived encoder and decoder beside
//! tokio-postgres' binary copy path, on the narrow, users and wide shapes.
//!
//! ```text
//! cargo bench --bench codec
//! PGBULK_INSTRUCTIONS=1 cargo bench --bench codec   # instructions per row, under valgrind
//! ```
//!
//! tokio-postgres' `BinaryCopyInWriter` needs a `CopyInSink` and `BinaryCopyOutStream` a
//! `CopyOutStream`, and neither can be made without a server. So the peer side here is their
//! code path written out with the same public pieces: `ToSql::to_sql_checked` per value with
//! the writer's length back-patch and its 4 KiB `split().freeze()` hand-off, and the stream's
//! per-message parse (a `Vec` of ranges and an `Arc` of the types per row) followed by
//! `try_get`'s `FromSql::accepts` check and `from_sql` per value. The end-to-end harness
//! (`benches/e2e.rs`) measures the real types against a server.

// Bench code: unwraps and casts on known-small numbers are the point.
#![allow(
    clippy::missing_panics_doc,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::doc_markdown
)]
// `criterion_group!` generates an undocumented function.
#![allow(missing_docs)]

#[macro_use]
mod common;

use bytes::{BufMut, Bytes, BytesMut};
use common::{Narrow, Params, User, Wide};
use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use pgbulk::format::{self, Next, TupleReader};
use pgbulk::{CopyRow, FromCopyRow, RawRow};
use std::hint::black_box;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::types::{FromSql, IsNull, Type};

const ROWS: usize = 10_000;

/// pgbulk's `CopyWriter` loop: encode into one buffer, hand off a chunk every 256 KiB.
fn pgbulk_encode<T: CopyRow>(rows: &[T], types: &[Type]) -> usize {
    let flush = pgbulk::DEFAULT_FLUSH_BYTES;
    let mut buf = BytesMut::with_capacity(flush + flush / 4);
    let mut sent = 0;
    format::write_header(&mut buf);
    for row in rows {
        format::write_tuple(row, types, &mut buf).unwrap();
        if buf.len() >= flush {
            let chunk = buf.split().freeze();
            sent += chunk.len();
            drop(black_box(chunk));
            buf.reserve(flush + flush / 4);
        }
    }
    format::write_trailer(&mut buf);
    sent + buf.len()
}

/// `BinaryCopyInWriter::write` per row: `to_sql_checked` per value with a back-patched length,
/// a chunk handed off whenever the buffer passes 4 KiB.
fn peer_encode<T: Params>(rows: &[T], types: &[Type]) -> usize {
    let mut buf = BytesMut::new();
    let mut sent = 0;
    format::write_header(&mut buf);
    for row in rows {
        row.with_params(|values| {
            assert!(values.len() == types.len());
            buf.put_i16(types.len() as i16);
            for (value, ty) in values.iter().zip(types) {
                let idx = buf.len();
                buf.put_i32(0);
                let len = match value.to_sql_checked(ty, &mut buf).unwrap() {
                    IsNull::Yes => -1,
                    IsNull::No => i32::try_from(buf.len() - idx - 4).unwrap(),
                };
                buf[idx..idx + 4].copy_from_slice(&len.to_be_bytes());
            }
        });
        if buf.len() > 4096 {
            let chunk = buf.split().freeze();
            sent += chunk.len();
            drop(black_box(chunk));
        }
    }
    buf.put_i16(-1);
    sent + buf.len()
}

/// The COPY data as the server sends it: one CopyData message per tuple, the header in front
/// of the first, the trailer alone at the end.
fn messages<T: CopyRow>(rows: &[T], types: &[Type]) -> Vec<Bytes> {
    let mut out = Vec::with_capacity(rows.len() + 1);
    let mut buf = BytesMut::new();
    format::write_header(&mut buf);
    for row in rows {
        format::write_tuple(row, types, &mut buf).unwrap();
        out.push(buf.split().freeze());
    }
    format::write_trailer(&mut buf);
    out.push(buf.split().freeze());
    out
}

/// pgbulk's `copy_out` loop: the tuple reader over the arriving messages, `decode_row` per
/// tuple.
fn pgbulk_decode<T: FromCopyRow>(messages: &[Bytes], types: &[Type]) -> Vec<T> {
    let columns = types.len();
    let map: Vec<usize> = (0..columns).collect();
    let mut slots = vec![(0u32, -1i32); columns];
    let mut reader = TupleReader::new(columns);
    let mut out = Vec::with_capacity(messages.len());
    let mut messages = messages.iter();
    loop {
        match reader.next_tuple(&map, &mut slots).unwrap() {
            Next::Tuple => {
                let raw = RawRow::new(reader.tuple_bytes(), &slots);
                out.push(T::decode_row(types, raw).map_err(|(_, e)| e).unwrap());
            }
            // tokio-postgres hands over each message as an owned `Bytes`, which the reader
            // keeps and reads in place; the clone (a reference count) stands for that.
            Next::NeedMore => reader.feed_bytes(messages.next().unwrap().clone()),
            Next::End => return out,
        }
    }
}

/// One row as `BinaryCopyOutStream` yields it.
struct PeerRow {
    buf: Bytes,
    ranges: Vec<Option<Range<usize>>>,
    types: Arc<Vec<Type>>,
}

impl PeerRow {
    /// `BinaryCopyOutRow::get`: the type check, then `from_sql` or `from_sql_null`.
    fn get<'a, T: FromSql<'a>>(&'a self, idx: usize) -> T {
        let ty = &self.types[idx];
        assert!(T::accepts(ty), "wrong type");
        match &self.ranges[idx] {
            Some(range) => T::from_sql(ty, &self.buf[range.clone()]),
            None => T::from_sql_null(ty),
        }
        .unwrap()
    }
}

/// `BinaryCopyOutStream::poll_next` per message: header once, then one tuple per message.
fn peer_rows(messages: &[Bytes], types: &[Type], mut each: impl FnMut(PeerRow)) {
    let types = Arc::new(types.to_vec());
    for (i, message) in messages.iter().enumerate() {
        let mut chunk = std::io::Cursor::new(message.clone());
        if i == 0 {
            assert!(message.starts_with(format::SIGNATURE));
            chunk.set_position(format::HEADER_LEN as u64);
        }
        let data = chunk.get_ref();
        let mut pos = chunk.position() as usize;
        let count = i16::from_be_bytes([data[pos], data[pos + 1]]);
        pos += 2;
        if count == -1 {
            return;
        }
        assert_eq!(count as usize, types.len());
        let mut ranges = vec![];
        for _ in 0..count {
            let len = i32::from_be_bytes(data[pos..pos + 4].try_into().unwrap());
            pos += 4;
            if len == -1 {
                ranges.push(None);
            } else {
                let len = len as usize;
                ranges.push(Some(pos..pos + len));
                pos += len;
            }
        }
        each(PeerRow {
            buf: chunk.into_inner(),
            ranges,
            types: types.clone(),
        });
    }
}

fn peer_decode_narrow(messages: &[Bytes]) -> Vec<Narrow> {
    let mut out = Vec::with_capacity(messages.len());
    peer_rows(messages, common::NARROW_TYPES, |row| {
        out.push(from_peer_row!(Narrow, row));
    });
    out
}

fn peer_decode_users(messages: &[Bytes]) -> Vec<User> {
    let mut out = Vec::with_capacity(messages.len());
    peer_rows(messages, common::USERS_TYPES, |row| {
        out.push(User {
            id: row.get(0),
            name: row.get(1),
            email: row.get(2),
            created_at: row.get(3),
        });
    });
    out
}

fn peer_decode_wide(messages: &[Bytes]) -> Vec<Wide> {
    let mut out = Vec::with_capacity(messages.len());
    peer_rows(messages, common::WIDE_TYPES, |row| {
        out.push(from_peer_row!(Wide, row));
    });
    out
}

fn shape<T, D>(c: &mut Criterion, name: &str, rows: &[T], types: &[Type], peer_decode: D)
where
    T: FromCopyRow + Params + PartialEq + std::fmt::Debug,
    D: Fn(&[Bytes]) -> Vec<T>,
{
    let bytes = pgbulk_encode(rows, types) as u64;
    assert_eq!(bytes, peer_encode(rows, types) as u64, "same bytes");
    let msgs = messages(rows, types);
    assert_eq!(pgbulk_decode::<T>(&msgs, types), rows);
    assert_eq!(peer_decode(&msgs), rows);

    let mut group = c.benchmark_group(name);
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (unit, throughput) in [
        ("rows", Throughput::Elements(rows.len() as u64)),
        ("bytes", Throughput::Bytes(bytes)),
    ] {
        group.throughput(throughput);
        group.bench_function(BenchmarkId::new("encode/pgbulk", unit), |b| {
            b.iter(|| pgbulk_encode(black_box(rows), types));
        });
        group.bench_function(BenchmarkId::new("encode/tokio-postgres", unit), |b| {
            b.iter(|| peer_encode(black_box(rows), types));
        });
        group.bench_function(BenchmarkId::new("decode/pgbulk", unit), |b| {
            b.iter(|| pgbulk_decode::<T>(black_box(&msgs), types));
        });
        group.bench_function(BenchmarkId::new("decode/tokio-postgres", unit), |b| {
            b.iter(|| peer_decode(black_box(&msgs)));
        });
    }
    group.finish();
}

fn codecs(c: &mut Criterion) {
    shape(
        c,
        "narrow",
        &common::narrows(ROWS),
        common::NARROW_TYPES,
        peer_decode_narrow,
    );
    shape(
        c,
        "users",
        &common::users(0..ROWS as i64, 0),
        common::USERS_TYPES,
        peer_decode_users,
    );
    shape(
        c,
        "wide",
        &common::wides(ROWS),
        common::WIDE_TYPES,
        peer_decode_wide,
    );
}

criterion_group!(benches, codecs);

/// `run_loop` for one shape.
fn go<T: FromCopyRow + Params>(
    op: &str,
    side: &str,
    rows: &[T],
    types: &[Type],
    iters: usize,
    peer_decode: fn(&[Bytes]) -> Vec<T>,
) {
    let msgs = messages(rows, types);
    for _ in 0..iters {
        match (op, side) {
            ("encode", "pgbulk") => drop(black_box(pgbulk_encode(rows, types))),
            ("encode", _) => drop(black_box(peer_encode(rows, types))),
            ("decode", "pgbulk") => drop(black_box(pgbulk_decode::<T>(&msgs, types))),
            _ => drop(black_box(peer_decode(&msgs))),
        }
    }
}

/// One encode or decode loop, `iters` times over `ROWS` rows; the instruction count's unit.
fn run_loop(spec: &str) {
    let parts: Vec<&str> = spec.split(':').collect();
    let [shape, op, side, iters] = parts[..] else {
        panic!("PGBULK_CODEC_LOOP is shape:op:side:iters, got {spec}");
    };
    let iters: usize = iters.parse().expect("iters");
    match shape {
        "narrow" => go(
            op,
            side,
            &common::narrows(ROWS),
            common::NARROW_TYPES,
            iters,
            peer_decode_narrow,
        ),
        "users" => go(
            op,
            side,
            &common::users(0..ROWS as i64, 0),
            common::USERS_TYPES,
            iters,
            peer_decode_users,
        ),
        _ => go(
            op,
            side,
            &common::wides(ROWS),
            common::WIDE_TYPES,
            iters,
            peer_decode_wide,
        ),
    }
}

/// Instructions per row of each loop, counted by valgrind (`cachegrind`, no cache simulation):
/// exact and repeatable on a shared host where timings drift. Each loop runs in a child under
/// valgrind with 0 and 5 iterations; the difference divided by the rows is the loop's cost.
fn instructions() {
    let exe = std::env::current_exe().expect("own path");
    let count = |spec: &str| -> u64 {
        let out = std::process::Command::new("valgrind")
            .args([
                "--tool=cachegrind",
                "--cache-sim=no",
                "--cachegrind-out-file=/dev/null",
            ])
            .arg(&exe)
            .env("PGBULK_CODEC_LOOP", spec)
            .output()
            .expect("valgrind (apt install valgrind) runs");
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err
            .lines()
            .find(|l| l.contains("I   refs:"))
            .unwrap_or_else(|| panic!("{err}"));
        line.rsplit(' ')
            .next()
            .unwrap()
            .replace(',', "")
            .parse()
            .unwrap()
    };
    println!("| shape | op | pgbulk instr/row | tokio-postgres instr/row | ratio |");
    println!("|---|---|---:|---:|---:|");
    for shape in ["narrow", "users", "wide"] {
        for op in ["encode", "decode"] {
            let per_row = |side: &str| {
                let base = count(&format!("{shape}:{op}:{side}:0"));
                let five = count(&format!("{shape}:{op}:{side}:5"));
                (five - base) / (5 * ROWS as u64)
            };
            let (ours, peer) = (per_row("pgbulk"), per_row("peer"));
            println!(
                "| {shape} | {op} | {ours} | {peer} | {:.2} |",
                f64::from(u32::try_from(ours).unwrap()) / f64::from(u32::try_from(peer).unwrap())
            );
        }
    }
}

fn main() {
    if let Ok(spec) = std::env::var("PGBULK_CODEC_LOOP") {
        run_loop(&spec);
    } else if std::env::var_os("PGBULK_INSTRUCTIONS").is_some() {
        instructions();
    } else {
        benches();
        Criterion::default().configure_from_args().final_summary();
    }
}
