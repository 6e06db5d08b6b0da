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
use pgbulk::__private::{Decoder, Encoder, Fed, RowSink, Step, Visit};
use pgbulk::{CopyRow, FromCopyRow, FromCopyRowRef};
use std::hint::black_box;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::types::{FromSql, IsNull, Type};

const ROWS: usize = 10_000;

/// The binary COPY signature (the peer path writes and reads its own framing).
const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// pgbulk's write loop (`CopyWriter`): the engine's encoder, a chunk handed off every 256 KiB.
fn pgbulk_encode<T: CopyRow>(rows: &[T], types: &[Type]) -> usize {
    let mut encoder = Encoder::<T>::new(pgbulk::DEFAULT_FLUSH_BYTES, 0);
    let mut sent = 0;
    for row in rows {
        encoder.push(row, types).unwrap();
        if encoder.is_full() {
            let chunk = encoder.take_chunk();
            sent += chunk.len();
            drop(black_box(chunk));
            encoder.reclaim();
        }
    }
    sent + encoder.finish().len()
}

/// `BinaryCopyInWriter::write` per row: `to_sql_checked` per value with a back-patched length,
/// a chunk handed off whenever the buffer passes 4 KiB.
fn peer_encode<T: Params>(rows: &[T], types: &[Type]) -> usize {
    let mut buf = BytesMut::new();
    let mut sent = 0;
    buf.extend_from_slice(SIGNATURE);
    buf.extend_from_slice(&[0; 8]); // flags, header extension length
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
    let mut encoder = Encoder::<T>::new(0, 0);
    for row in rows {
        encoder.push(row, types).unwrap();
        out.push(encoder.take_chunk());
    }
    out.push(encoder.finish());
    out
}

/// pgbulk's `copy_out` loop (`Reading::poll_row`): the engine's decoder over the arriving
/// messages, each fed with `feed_step` (a message that is exactly one row is decoded in place
/// and used up; otherwise `step` until it needs more).
fn pgbulk_decode<T: FromCopyRow>(messages: &[Bytes], types: &[Type]) -> Vec<T> {
    let mut out = Vec::with_capacity(messages.len());
    // tokio-postgres hands over each message as an owned `Bytes`, which the decoder keeps or
    // reads in place; the clone (a reference count) stands for that.
    pgbulk_read::<T, _>(
        messages,
        types,
        &mut pgbulk::__private::Owned::<T>::new(),
        |row| out.push(row),
    );
    out
}

/// `pgbulk_decode`'s loop with any sink (`copy_out`'s `Reading::poll_row_with`).
fn pgbulk_read<T, K: RowSink>(
    messages: &[Bytes],
    types: &[Type],
    sink: &mut K,
    mut each: impl FnMut(K::Out),
) {
    let map: Vec<usize> = (0..types.len()).collect();
    let mut decoder = Decoder::<T>::new(types.to_vec(), map, "the COPY data");
    let mut pending = true;
    for message in messages {
        if pending {
            while let Step::Row(row) = decoder.step_with(sink).unwrap() {
                each(row);
            }
        }
        match decoder.feed_step_with(message.clone(), sink).unwrap() {
            Fed::Drained(row) => {
                pending = false;
                each(row);
            }
            Fed::Step(Step::Row(row)) => {
                pending = true;
                each(row);
            }
            Fed::Step(Step::NeedMore | Step::End) => pending = false,
        }
    }
    decoder.end_of_input().unwrap();
}

/// pgbulk's borrowing read (`copy_out_each`): each row, its texts borrowed from the message,
/// handed to a closure that looks at it; returns the rows seen.
fn pgbulk_borrow<R: FromCopyRowRef>(messages: &[Bytes], types: &[Type]) -> usize {
    let mut seen = 0;
    {
        let mut sink = Visit::<R, _>::new(|row: R::Row<'_>| {
            black_box(&row);
            seen += 1;
        });
        pgbulk_read::<R, _>(messages, types, &mut sink, |()| {});
    }
    seen
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
            assert!(message.starts_with(SIGNATURE));
            chunk.set_position(SIGNATURE.len() as u64 + 8);
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

/// `BinaryCopyOutStream` read borrowing: `row.get::<&str>` borrows from the row's buffer.
fn peer_borrow_narrow(messages: &[Bytes]) -> usize {
    let mut seen = 0;
    peer_rows(messages, common::NARROW_TYPES, |row| {
        let id: i64 = row.get(0);
        let value: f64 = row.get(1);
        let name: &str = row.get(2);
        black_box((id, value, name));
        seen += 1;
    });
    seen
}

fn peer_borrow_users(messages: &[Bytes]) -> usize {
    let mut seen = 0;
    peer_rows(messages, common::USERS_TYPES, |row| {
        let id: i64 = row.get(0);
        let name: &str = row.get(1);
        let email: &str = row.get(2);
        let at: chrono::DateTime<chrono::Utc> = row.get(3);
        black_box((id, name, email, at));
        seen += 1;
    });
    seen
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

/// The loops of one shape, for `run_loop`.
struct Loops<T> {
    peer_decode: fn(&[Bytes]) -> Vec<T>,
    /// pgbulk's borrowing read.
    borrow: fn(&[Bytes], &[Type]) -> usize,
    /// The peer reading borrowed `&str`s, where its `FromSql` impls can (not `jsonb`).
    peer_borrow: Option<fn(&[Bytes]) -> usize>,
}

/// `run_loop` for one shape.
fn go<T: FromCopyRow + Params>(
    op: &str,
    side: &str,
    rows: &[T],
    types: &[Type],
    iters: usize,
    loops: &Loops<T>,
) {
    let msgs = messages(rows, types);
    for _ in 0..iters {
        match (op, side) {
            ("encode", "pgbulk") => drop(black_box(pgbulk_encode(rows, types))),
            ("encode", _) => drop(black_box(peer_encode(rows, types))),
            ("decode", "pgbulk") => drop(black_box(pgbulk_decode::<T>(&msgs, types))),
            ("borrow", "pgbulk") => assert_eq!((loops.borrow)(&msgs, types), rows.len()),
            ("borrow", _) => {
                let peer = loops.peer_borrow.expect("a borrowing peer loop");
                assert_eq!(peer(&msgs), rows.len());
            }
            _ => drop(black_box((loops.peer_decode)(&msgs))),
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
            &Loops {
                peer_decode: peer_decode_narrow,
                borrow: pgbulk_borrow::<common::NarrowRef<'static>>,
                peer_borrow: Some(peer_borrow_narrow),
            },
        ),
        "users" => go(
            op,
            side,
            &common::users(0..ROWS as i64, 0),
            common::USERS_TYPES,
            iters,
            &Loops {
                peer_decode: peer_decode_users,
                borrow: pgbulk_borrow::<common::UserRef<'static>>,
                peer_borrow: Some(peer_borrow_users),
            },
        ),
        _ => go(
            op,
            side,
            &common::wides(ROWS),
            common::WIDE_TYPES,
            iters,
            &Loops {
                peer_decode: peer_decode_wide,
                borrow: pgbulk_borrow::<common::WideRef<'static>>,
                peer_borrow: None,
            },
        ),
    }
}

/// Instructions per row of each loop, counted by valgrind (`cachegrind`, no cache simulation):
/// exact and repeatable on a shared host where timings drift. Each loop runs in a child under
/// valgrind with 0 and 5 iterations; the difference divided by the rows is the loop's cost.
fn instructions() {
    let count = |spec: &str| common::instructions_of_self("PGBULK_CODEC_LOOP", spec);
    let per_row = |shape: &str, op: &str, side: &str| {
        let base = count(&format!("{shape}:{op}:{side}:0"));
        let five = count(&format!("{shape}:{op}:{side}:5"));
        (five - base) / (5 * ROWS as u64)
    };
    let ratio = |ours: u64, peer: u64| {
        f64::from(u32::try_from(ours).unwrap()) / f64::from(u32::try_from(peer).unwrap())
    };
    println!("| shape | op | pgbulk instr/row | tokio-postgres instr/row | ratio |");
    println!("|---|---|---:|---:|---:|");
    for shape in ["narrow", "users", "wide"] {
        for op in ["encode", "decode"] {
            let (ours, peer) = (per_row(shape, op, "pgbulk"), per_row(shape, op, "peer"));
            println!(
                "| {shape} | {op} | {ours} | {peer} | {:.2} |",
                ratio(ours, peer)
            );
        }
        // The borrowing read against the peer's owned decode (what it replaces) and, where
        // the peer's `FromSql` can borrow every field, against the peer borrowing too.
        let ours = per_row(shape, "borrow", "pgbulk");
        let owned = per_row(shape, "decode", "peer");
        println!(
            "| {shape} | borrowed read ÷ peer's owned decode | {ours} | {owned} | {:.2} |",
            ratio(ours, owned)
        );
        if shape != "wide" {
            let peer = per_row(shape, "borrow", "peer");
            println!(
                "| {shape} | borrowed read ÷ peer borrowing (`get::<&str>`) | {ours} | {peer} | {:.2} |",
                ratio(ours, peer)
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
