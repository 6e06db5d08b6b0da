//! Fuzzing the COPY OUT path on stable: binary COPY streams — valid ones, mutated ones and
//! arbitrary bytes — cut into arbitrary pieces, read with the engine's `Decoder` (what
//! every `copy_out` and `.pgcopy` reader runs) into a real derived struct (text, numeric, 1-D and 2-D arrays with NULLs,
//! timestamps, uuid, jsonb). The reader and the decoders must never panic or loop on damaged
//! input or arbitrary bytes, must report a stream cut short as truncated (never as complete
//! with fewer rows), and must give back exactly the rows that were encoded for intact input,
//! however it is cut. Damaged input in general is only promised not to panic or loop: binary
//! COPY has no checksums, so a flipped bit inside a value can be another valid value.
//!
//! `cargo test -p bulk-core --test decode_fuzz` runs a short round (2,000 cases per property);
//! `PGBULK_FUZZ_CASES=1000000 cargo test --release -p bulk-core --test decode_fuzz` a long one.

use bulk_core::__private::{Decoder, Encoder, Fed, Step};
use bulk_core::PgNumeric;
use postgres_types::Type;
use proptest::prelude::*;
use rust_decimal::Decimal;

#[derive(bulk_derive::CopyRow, Debug, Clone, PartialEq)]
#[copy(crate = "bulk_core", table = "fuzz")]
struct Fuzzed {
    id: i64,
    name: String,
    note: Option<String>,
    amount: Decimal,
    special: PgNumeric,
    tags: Vec<String>,
    grid: Vec<Vec<Option<i32>>>,
    at: Option<chrono::DateTime<chrono::Utc>>,
    key: uuid::Uuid,
}

fn types() -> Vec<Type> {
    vec![
        Type::INT8,
        Type::TEXT,
        Type::VARCHAR,
        Type::NUMERIC,
        Type::NUMERIC,
        Type::TEXT_ARRAY,
        Type::INT4_ARRAY,
        Type::TIMESTAMPTZ,
        Type::UUID,
    ]
}

fn cases() -> u32 {
    std::env::var("PGBULK_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000)
}

fn text() -> impl Strategy<Value = String> {
    // No NUL: text cannot hold it (the encoder rejects it).
    proptest::string::string_regex("[^\u{0}]{0,12}").unwrap()
}

fn fuzzed() -> impl Strategy<Value = Fuzzed> {
    (
        any::<i64>(),
        text(),
        proptest::option::of(text()),
        (any::<i64>(), 0u32..=18).prop_map(|(m, s)| Decimal::new(m, s)),
        prop_oneof![
            Just(PgNumeric::NaN),
            Just(PgNumeric::PosInfinity),
            Just(PgNumeric::NegInfinity),
            any::<i32>().prop_map(|v| PgNumeric::Value(Decimal::from(v))),
        ],
        proptest::collection::vec(text(), 0..4),
        // Rectangular, and no empty inner dimension (PostgreSQL has none: that is `{}`).
        (0usize..3, 1usize..3).prop_flat_map(|(rows, cols)| {
            proptest::collection::vec(
                proptest::collection::vec(proptest::option::of(any::<i32>()), cols),
                rows,
            )
        }),
        proptest::option::of(
            (-10_000_000_000i64..10_000_000_000)
                .prop_map(|s| chrono::DateTime::from_timestamp(s, 0).unwrap()),
        ),
        any::<u128>().prop_map(uuid::Uuid::from_u128),
    )
        .prop_map(
            |(id, name, note, amount, special, tags, grid, at, key)| Fuzzed {
                id,
                name,
                note,
                amount,
                special,
                tags,
                grid,
                at,
                key,
            },
        )
}

/// The binary COPY stream of `rows` (header, tuples, trailer).
fn encode(rows: &[Fuzzed], types: &[Type]) -> Vec<u8> {
    let mut encoder = Encoder::<Fuzzed>::new(1 << 20, 0);
    for r in rows {
        encoder.push(r, types).unwrap();
    }
    encoder.finish().to_vec()
}

/// The header alone.
fn header_bytes() -> Vec<u8> {
    let mut encoder = Encoder::<Fuzzed>::new(1 << 20, 0);
    encoder.take_chunk().to_vec()
}

/// Splits `data` at the given piece lengths (the last piece takes the rest).
fn pieces<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    for &c in cuts {
        let (a, b) = rest.split_at(c.min(rest.len()));
        out.push(a);
        rest = b;
    }
    out.push(rest);
    out
}

/// How a read ended.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// The trailer was read: these rows.
    Complete(Vec<Fuzzed>),
    /// The data ran out before the trailer.
    Truncated,
    /// A format or decode error.
    Failed,
}

/// Reads `pieces` like `copy_out` does (the map is the identity: one column per field): every
/// other piece is handed over in place with `feed_step` (which decodes a piece that starts
/// with a whole tuple straight off it), the rest copied with `feed_slice`.
fn read(pieces: &[&[u8]], types: &[Type]) -> Outcome {
    let columns = bulk_core::columns_of::<Fuzzed>().len();
    let map: Vec<usize> = (0..columns).collect();
    let mut decoder = Decoder::<Fuzzed>::new(types.to_vec(), map, "the fuzzed data");
    let mut rows = Vec::new();
    let mut pieces = pieces.iter().enumerate();
    let total: usize = pieces.clone().map(|(_, p)| p.len()).sum();
    // Each step returns a tuple (at least 2 bytes), takes a piece, or stops.
    for _ in 0..=total + pieces.len() + 2 {
        let step = match decoder.step() {
            Ok(Step::NeedMore) => {
                let Some((n, p)) = pieces.next() else {
                    assert!(decoder.end_of_input().is_err(), "ended early yet complete");
                    return Outcome::Truncated;
                };
                if n % 2 == 0 {
                    if decoder.feed_slice(p).is_err() {
                        return Outcome::Failed;
                    }
                    continue;
                }
                match decoder.feed_step(bytes::Bytes::copy_from_slice(p)) {
                    Ok(Fed::Drained(row)) => {
                        rows.push(row);
                        continue;
                    }
                    Ok(Fed::Step(step)) => Ok(step),
                    Err(e) => Err(e),
                }
            }
            other => other,
        };
        match step {
            Ok(Step::Row(row)) => rows.push(row),
            Ok(Step::NeedMore) => {}
            Ok(Step::End) => {
                // Like copy_out: data after the trailer is an error.
                for (_, p) in pieces {
                    if decoder.feed_slice(p).is_err() {
                        return Outcome::Failed;
                    }
                }
                return match decoder.end_of_input() {
                    Ok(()) => Outcome::Complete(rows),
                    Err(_) => Outcome::Failed,
                };
            }
            Err(_) => return Outcome::Failed,
        }
    }
    panic!("the reader did not make progress");
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Intact streams decode to exactly the rows encoded, however they are cut.
    #[test]
    fn intact_streams_round_trip_in_any_pieces(
        rows in proptest::collection::vec(fuzzed(), 0..6),
        cuts in proptest::collection::vec(0usize..64, 0..24),
    ) {
        let types = types();
        let data = encode(&rows, &types);
        prop_assert_eq!(read(&pieces(&data, &cuts), &types), Outcome::Complete(rows));
    }

    /// Damaged streams (bytes flipped, inserted, removed; cut short) never panic or loop.
    #[test]
    /// Pieces cut at tuple boundaries, as `COPY TO STDOUT` sends them (one tuple per message)
    /// and as larger reads hold them (several whole tuples): each is decoded straight off the
    /// piece, and the rows are the rows encoded — also when a damaged byte is in one of them.
    fn whole_tuple_pieces_round_trip(
        rows in proptest::collection::vec(fuzzed(), 1..8),
        per_piece in 1usize..4,
        trailer_alone in any::<bool>(),
    ) {
        let types = types();
        let data = encode(&rows, &types);
        // Tuple boundaries: where each prefix's stream ends before its 2-byte trailer.
        let mut ends = vec![header_bytes().len()];
        ends.extend((1..=rows.len()).map(|k| encode(&rows[..k], &types).len() - 2));
        let mut cuts = Vec::new();
        let mut at = 0;
        for end in ends.iter().step_by(per_piece).chain(ends.last()) {
            if *end > at {
                cuts.push(end - at);
                at = *end;
            }
        }
        if !trailer_alone {
            cuts.pop();
        }
        prop_assert_eq!(read(&pieces(&data, &cuts), &types), Outcome::Complete(rows));
    }

    #[test]
    fn damaged_streams_never_panic(
        rows in proptest::collection::vec(fuzzed(), 1..4),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..6),
        cuts in proptest::collection::vec(0usize..64, 0..24),
        truncate in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let types = types();
        let mut data = encode(&rows, &types);
        for (at, byte, op) in edits {
            let i = at.index(data.len());
            match op {
                0 => data[i] = byte,
                1 => data[i] ^= 1 << (byte % 8),
                2 => data.insert(i, byte),
                _ => { data.remove(i); }
            }
            if data.is_empty() {
                break;
            }
        }
        if let Some(t) = truncate {
            data.truncate(t.index(data.len() + 1));
        }
        // `read` itself fails the case if the reader stops making progress.
        let _ = read(&pieces(&data, &cuts), &types);
    }

    /// Arbitrary bytes, with or without a valid header, in arbitrary pieces.
    #[test]
    fn arbitrary_bytes_never_panic(
        header in proptest::bool::weighted(0.9),
        body in proptest::collection::vec(any::<u8>(), 0..400),
        cuts in proptest::collection::vec(0usize..64, 0..24),
    ) {
        let types = types();
        let mut data = Vec::new();
        if header {
            data.extend_from_slice(&header_bytes());
        }
        data.extend_from_slice(&body);
        let _ = read(&pieces(&data, &cuts), &types);
    }
}

/// Cutting an intact stream anywhere before its end is reported as truncated, never as a
/// complete read with fewer rows.
#[test]
fn every_truncation_is_detected() {
    let types = types();
    let rows: Vec<Fuzzed> = (0..3)
        .map(|i| Fuzzed {
            id: i,
            name: format!("n{i}"),
            note: (i % 2 == 0).then(|| "note".to_owned()),
            amount: Decimal::new(12_345 * i, 2),
            special: PgNumeric::NaN,
            tags: vec!["a".into(), String::new()],
            grid: vec![vec![Some(1), None], vec![None, Some(4)]],
            at: chrono::DateTime::from_timestamp(1_700_000_000, 0),
            key: uuid::Uuid::from_u128(u128::from(i.unsigned_abs())),
        })
        .collect();
    let data = encode(&rows, &types);
    assert_eq!(read(&[&data], &types), Outcome::Complete(rows));
    for cut in 0..data.len() {
        // Whole pieces or the same bytes in small ones: the same outcome.
        let cut_short = &data[..cut];
        assert_eq!(
            read(&[cut_short], &types),
            Outcome::Truncated,
            "cut at {cut}"
        );
        let small: Vec<&[u8]> = cut_short.chunks(7).collect();
        assert_eq!(
            read(&small, &types),
            Outcome::Truncated,
            "cut at {cut}, in pieces"
        );
    }
}
