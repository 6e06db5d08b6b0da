//! Binary COPY files (`.pgcopy`) without a server: write rows of a [`CopyRow`] type to a file
//! that `COPY .. FROM` / `psql \copy .. FROM .. WITH (FORMAT binary)` loads, and read a file
//! that `COPY .. TO .. (FORMAT binary)` wrote back into structs.
//!
//! Binary COPY data carries no column types, so the types are given up front, either
//! statically as [`postgres_types::Type`] constants (checked against every field's codec, all
//! mismatches reported at once), or from a [`Plan`] made earlier on a server. They must be
//! the types of the table the file will be loaded into (or was written from): binary COPY
//! applies no casts, so an `int4` file does not load into a `bigint` column.
//!
//! Columns are in the order of the row type's fields ([`CopyRow::__PGBULK_COLUMNS`]): load a file with
//! `\copy t (col1, col2, ..) FROM 'file' WITH (FORMAT binary)` naming the columns in that
//! order, and write one with `COPY (SELECT col1, col2, .. FROM t) TO ..` likewise.
//!
//! ```
//! # extern crate bulk_core as pgbulk;
//! # use bulk_derive::CopyRow;
//! use pgbulk::{pgcopy, CopyRow};
//! use tokio_postgres::types::Type;
//!
//! #[derive(CopyRow, Debug, PartialEq)]
//! #[copy(table = "events")]
//! struct Event {
//!     id: i64,
//!     kind: String,
//!     tags: Vec<String>,
//! }
//!
//! # fn main() -> Result<(), pgbulk::Error> {
//! let types = [Type::INT8, Type::TEXT, Type::TEXT_ARRAY];
//! let mut file = pgcopy::Writer::<_, Event>::new(Vec::new(), types.clone())?;
//! file.write(&Event { id: 1, kind: "click".into(), tags: vec!["a".into()] })?;
//! file.write(&Event { id: 2, kind: "view".into(), tags: vec![] })?;
//! let bytes: Vec<u8> = file.finish()?; // or a std::fs::File
//!
//! // `psql -c "\copy events (id, kind, tags) FROM 'events.pgcopy' WITH (FORMAT binary)"`
//! // loads such a file; reading it back needs no server either:
//! let events: Vec<Event> = pgcopy::Reader::new(&bytes[..], types)?.collect::<Result<_, _>>()?;
//! assert_eq!(events[1].kind, "view");
//! # Ok(()) }
//! ```
//!
//! Both are blocking `std::io` code: from async code, run them in
//! `tokio::task::spawn_blocking` (or write into a `Vec<u8>`).

use crate::engine::{Decoder, Encoder, Step};
use crate::error::{Error, Mismatch, Result};
use crate::plan::{short_type_name, Plan};
use crate::row::{CopyRow, FromCopyRow};
use postgres_types::Type;
use std::borrow::Borrow;
use std::fmt;
use std::io::{Read, Write};

/// Size of the pieces written to and read from the underlying writer or reader: 64 KiB.
const CHUNK: usize = 64 * 1024;

/// Checks that `types` has one type per field of `T` and that `accepts[i]` takes `types[i]`.
fn check_types<T: CopyRow + ?Sized>(
    types: Vec<Type>,
    accepts: impl Fn(usize) -> fn(&Type) -> bool,
    what: &str,
) -> Result<Vec<Type>> {
    if types.len() != T::__PGBULK_COLUMNS.len() {
        return Err(Error::usage(format!(
            "`{}` has {} copied field{} but {} column type{} {} given for the {what}",
            short_type_name::<T>(),
            T::__PGBULK_COLUMNS.len(),
            if T::__PGBULK_COLUMNS.len() == 1 {
                ""
            } else {
                "s"
            },
            types.len(),
            if types.len() == 1 { "" } else { "s" },
            if types.len() == 1 { "was" } else { "were" },
        )));
    }
    let mismatches: Vec<Mismatch> = T::__PGBULK_COLUMNS
        .iter()
        .zip(&types)
        .enumerate()
        .filter(|&(i, (_, ty))| !accepts(i)(ty))
        .map(|(_, (col, ty))| crate::plan::mismatch(col, Some(ty)))
        .collect();
    if mismatches.is_empty() {
        Ok(types)
    } else {
        Err(Error::mismatch(
            &format!("`{}` ({})", short_type_name::<T>(), what),
            mismatches,
        ))
    }
}

/// Writes rows of `T` to a binary COPY file (or any [`Write`]).
///
/// The header is written by [`new`](Writer::new), each row by [`write`](Writer::write), the
/// trailer by [`finish`](Writer::finish). A file whose writer was dropped without `finish`
/// has no trailer, and the server refuses to load it (no row is loaded), so an interrupted
/// export never passes for a complete one.
pub struct Writer<W: Write, T: ?Sized> {
    out: W,
    types: Vec<Type>,
    encoder: Encoder<T>,
}

impl<W: Write, T: ?Sized> fmt::Debug for Writer<W, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("pgcopy::Writer")
            .field("types", &self.types)
            .finish_non_exhaustive()
    }
}

impl<W: Write, T: CopyRow + ?Sized> Writer<W, T> {
    /// A writer for a file whose columns have `types`, one per field of `T` in field order.
    ///
    /// Every field's codec is asked whether it can write its column's type; all mismatches
    /// come back at once as an [`ErrorKind::TypeMismatch`](crate::ErrorKind) error, and a
    /// wrong number of types as [`ErrorKind::Usage`](crate::ErrorKind).
    pub fn new(out: W, types: impl IntoIterator<Item = Type>) -> Result<Self> {
        let types = check_types::<T>(
            types.into_iter().collect(),
            |i| T::__PGBULK_COLUMNS[i].accepts_encode,
            "pgcopy file",
        )?;
        Ok(Self::start(out, types))
    }

    /// A writer with the column types of a plan made on a server by
    /// [`Bulk::plan`](crate::Bulk::plan): the file loads into that plan's table.
    pub fn with_plan(out: W, plan: &Plan<T>) -> Self {
        Self::start(out, plan.types().to_vec())
    }

    fn start(out: W, types: Vec<Type>) -> Self {
        Writer {
            out,
            types,
            encoder: Encoder::new(CHUNK, 0),
        }
    }

    /// The column types the file is written with.
    pub fn types(&self) -> &[Type] {
        &self.types
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.encoder.rows()
    }

    /// Writes one row.
    ///
    /// If a value cannot be encoded, the error names the row (its 0-based position among the
    /// rows written) and the field, nothing of that row is written, and the writer can go on
    /// with the next row.
    pub fn write(&mut self, row: &T) -> Result<()> {
        self.encoder.push(row, &self.types)?;
        if self.encoder.is_full() {
            let chunk = self.encoder.take_chunk();
            self.write_chunk(&chunk)?;
            self.encoder.reclaim();
        }
        Ok(())
    }

    /// Writes every row of `rows` (`T` or `&T`); returns how many were written. Stops at the
    /// first error.
    pub fn write_all<I>(&mut self, rows: I) -> Result<u64>
    where
        I: IntoIterator,
        I::Item: Borrow<T>,
    {
        let before = self.rows();
        for row in rows {
            self.write(row.borrow())?;
        }
        Ok(self.rows() - before)
    }

    fn write_chunk(&mut self, chunk: &[u8]) -> Result<()> {
        self.out
            .write_all(chunk)
            .map_err(|e| Error::io("cannot write the pgcopy file", e))
    }

    /// Writes the trailer, flushes, and returns the underlying writer.
    pub fn finish(mut self) -> Result<W> {
        let last = self.encoder.finish();
        self.write_chunk(&last)?;
        self.out
            .flush()
            .map_err(|e| Error::io("cannot write the pgcopy file", e))?;
        Ok(self.out)
    }
}

/// Reads rows of `T` from a binary COPY file (or any [`Read`]), as an iterator of
/// `Result<T>`.
///
/// The file must end with the binary COPY trailer and hold nothing after it; a truncated or
/// corrupt file is an error naming the row where it went wrong, never a silently short read.
pub struct Reader<R: Read, T> {
    input: R,
    decoder: Decoder<T>,
    chunk: Vec<u8>,
    done: bool,
}

impl<R: Read, T: FromCopyRow> fmt::Debug for Reader<R, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("pgcopy::Reader")
            .field("types", &self.decoder.types())
            .field("row", &self.decoder.rows())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<R: Read, T: FromCopyRow> Reader<R, T> {
    /// A reader for a file whose columns have `types`, one per field of `T` in field order.
    ///
    /// Every field's codec is asked whether it can read its column's type; all mismatches come
    /// back at once as an [`ErrorKind::TypeMismatch`](crate::ErrorKind) error.
    pub fn new(input: R, types: impl IntoIterator<Item = Type>) -> Result<Self> {
        let types = check_types::<T>(
            types.into_iter().collect(),
            |i| {
                T::__PGBULK_ACCEPTS_DECODE
                    .get(i)
                    .copied()
                    .unwrap_or(|_| false)
            },
            "pgcopy file",
        )?;
        let map = (0..types.len()).collect();
        Ok(Reader {
            input,
            decoder: Decoder::new(types, map, "the pgcopy file"),
            chunk: vec![0; CHUNK],
            done: false,
        })
    }

    /// A reader with the column types of a plan made on a server by
    /// [`Bulk::plan`](crate::Bulk::plan), for a file written from that plan's table.
    pub fn with_plan(input: R, plan: &Plan<T>) -> Result<Self> {
        Self::new(input, plan.types().iter().cloned())
    }

    /// The column types the file is read with.
    pub fn types(&self) -> &[Type] {
        self.decoder.types()
    }

    /// Rows read so far.
    pub fn rows(&self) -> u64 {
        self.decoder.rows()
    }

    /// Reads the next row; `Ok(None)` after the trailer.
    pub fn read_row(&mut self) -> Result<Option<T>> {
        if self.done {
            return Ok(None);
        }
        let result = self.next_row();
        if !matches!(result, Ok(Some(_))) {
            self.done = true;
        }
        result
    }

    /// Reads the next piece of the input into the decoder; `false` at its end.
    fn fill(&mut self) -> Result<bool> {
        loop {
            match self.input.read(&mut self.chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.decoder.feed_slice(&self.chunk[..n])?;
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(
                        Error::io("cannot read the pgcopy file", e).with_row(self.decoder.rows())
                    )
                }
            }
        }
    }

    fn next_row(&mut self) -> Result<Option<T>> {
        loop {
            match self.decoder.step()? {
                Step::Row(row) => return Ok(Some(row)),
                Step::NeedMore => {
                    if !self.fill()? {
                        // Before the trailer: the one "ends before its trailer" error.
                        self.decoder.end_of_input()?;
                        return Ok(None);
                    }
                }
                // Nothing may follow the trailer: feeding more is an error.
                Step::End => {
                    while self.fill()? {}
                    return Ok(None);
                }
            }
        }
    }
}

impl<R: Read, T: FromCopyRow> Iterator for Reader<R, T> {
    type Item = Result<T>;

    /// The next row; after an error, `None`.
    fn next(&mut self) -> Option<Result<T>> {
        self.read_row().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{DecodeError, EncodeError};
    use crate::row::Column;
    use crate::row::{Fields, FromCopyRowRef};
    use bytes::BytesMut;

    /// A hand-written `CopyRow` (the derive lives in another crate): an `int4` and a `text`.
    #[derive(Debug, PartialEq)]
    struct Pair {
        n: i32,
        s: Option<String>,
    }

    impl CopyRow for Pair {
        const __PGBULK_TABLE: &'static str = "pair";
        const __PGBULK_COLUMNS: &'static [Column] = &[
            Column {
                name: "n",
                field: "n",
                rust_type: "i32",
                key: false,
                default: false,
                accepts_encode: <i32 as crate::Encode>::accepts,
            },
            Column {
                name: "s",
                field: "s",
                rust_type: "Option<String>",
                key: false,
                default: false,
                accepts_encode: <Option<String> as crate::Encode>::accepts,
            },
        ];

        fn encode_row(
            &self,
            types: &[Type],
            buf: &mut BytesMut,
        ) -> std::result::Result<(), (usize, EncodeError)> {
            crate::Encode::encode_field(&self.n, &types[0], buf).map_err(|e| (0, e))?;
            crate::Encode::encode_field(&self.s, &types[1], buf).map_err(|e| (1, e))
        }
    }

    impl FromCopyRowRef for Pair {
        type Row<'r> = Pair;

        const __PGBULK_ACCEPTS_DECODE: &'static [fn(&Type) -> bool] = &[
            <i32 as crate::Decode>::accepts,
            <Option<String> as crate::Decode>::accepts,
        ];

        fn decode_row_ref<'r, F: Fields<'r>>(
            types: &[Type],
            row: &mut F,
        ) -> std::result::Result<Self, (usize, DecodeError)> {
            Self::decode_row(types, row)
        }
    }

    impl FromCopyRow for Pair {
        fn decode_row<'a, F: Fields<'a>>(
            types: &[Type],
            row: &mut F,
        ) -> std::result::Result<Self, (usize, DecodeError)> {
            Ok(Pair {
                n: crate::Decode::decode(&types[0], row.next()).map_err(|e| (0, e))?,
                s: crate::Decode::decode(&types[1], row.next()).map_err(|e| (1, e))?,
            })
        }
    }

    fn pair(n: i32) -> Pair {
        Pair {
            n,
            s: (n % 3 != 0).then(|| format!("value {n}")),
        }
    }

    const TYPES: [Type; 2] = [Type::INT4, Type::TEXT];

    fn file(rows: i32) -> Vec<u8> {
        let mut w = Writer::<_, Pair>::new(Vec::new(), TYPES).unwrap();
        assert_eq!(
            w.write_all((0..rows).map(pair)).unwrap(),
            u64::from(rows.unsigned_abs())
        );
        w.finish().unwrap()
    }

    #[test]
    fn round_trip_across_chunks() {
        // About 20 bytes a row: several 64 KiB chunks each way.
        let bytes = file(20_000);
        assert_eq!(&bytes[..11], crate::engine::SIGNATURE);
        assert_eq!(&bytes[bytes.len() - 2..], &[0xff, 0xff]);
        let back: Vec<Pair> = Reader::new(&bytes[..], TYPES)
            .unwrap()
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(back, (0..20_000).map(pair).collect::<Vec<_>>());
        let empty = file(0);
        assert_eq!(empty.len(), crate::engine::HEADER_LEN + 2);
        assert_eq!(
            Reader::<_, Pair>::new(&empty[..], TYPES).unwrap().count(),
            0
        );
    }

    #[test]
    fn types_are_checked_all_at_once() {
        let e = Writer::<_, Pair>::new(Vec::new(), [Type::INT8, Type::BYTEA]).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::TypeMismatch);
        let fields: Vec<&str> = e.mismatches().iter().map(|m| m.field).collect();
        assert_eq!(fields, ["n", "s"]);
        assert!(e.to_string().contains("bigint (int8)"), "{e}");
        let e = Reader::<_, Pair>::new(&[][..], [Type::INT4]).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Usage);
        assert!(
            e.to_string()
                .contains("2 copied fields but 1 column type was given"),
            "{e}"
        );
    }

    #[test]
    fn a_bad_value_skips_only_its_row() {
        let mut w = Writer::<_, Pair>::new(Vec::new(), TYPES).unwrap();
        w.write(&pair(1)).unwrap();
        let bad = Pair {
            n: 2,
            s: Some("nul\0here".into()),
        };
        let e = w.write(&bad).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Encode);
        assert_eq!((e.row(), e.field()), (Some(1), Some("s")));
        w.write(&pair(3)).unwrap();
        let bytes = w.finish().unwrap();
        let back: Vec<Pair> = Reader::new(&bytes[..], TYPES)
            .unwrap()
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(back, [pair(1), pair(3)]);
    }

    #[test]
    fn truncated_and_trailing_data_are_errors() {
        let bytes = file(100);
        for cut in [0, 5, crate::engine::HEADER_LEN, 200, bytes.len() - 1] {
            let mut r = Reader::<_, Pair>::new(&bytes[..cut], TYPES).unwrap();
            let e = r.find_map(std::result::Result::err).expect("an error");
            assert_eq!(e.kind(), crate::ErrorKind::Protocol, "cut at {cut}: {e}");
            assert!(r.next().is_none(), "nothing after the error");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        let e = Reader::<_, Pair>::new(&longer[..], TYPES)
            .unwrap()
            .find_map(std::result::Result::err)
            .expect("an error");
        assert!(e.to_string().contains("continues after its trailer"), "{e}");
        assert_eq!(e.row(), Some(100));
        // Declared types `Pair` cannot read are refused before any row is read.
        let e = Reader::<_, Pair>::new(&bytes[..], [Type::INT4, Type::INT4]);
        assert!(e.is_err(), "Option<String> cannot read int4");
        // A file whose data was written for other types than the ones declared is a decode
        // error naming the row and the field: an int8 where `n` is read as int4, non-UTF-8
        // bytes (a bytea) where `s` is read as text.
        let raw_file = |rows: &[[&[u8]; 2]]| {
            let mut out = BytesMut::new();
            crate::engine::write_header(&mut out);
            for row in rows {
                out.extend_from_slice(&2i16.to_be_bytes());
                for field in row {
                    out.extend_from_slice(&i32::try_from(field.len()).unwrap().to_be_bytes());
                    out.extend_from_slice(field);
                }
            }
            crate::engine::write_trailer(&mut out);
            out.to_vec()
        };
        let good: [&[u8]; 2] = [&7i32.to_be_bytes(), b"ok"];
        let wide_n: [&[u8]; 2] = [&7i64.to_be_bytes(), b"ok"];
        let bytea_s: [&[u8]; 2] = [&7i32.to_be_bytes(), &[0xff, 0xfe]];
        for (rows, at, field) in [
            (vec![good, wide_n], 1, "n"),
            (vec![good, good, bytea_s], 2, "s"),
        ] {
            let data = raw_file(&rows);
            let mut r = Reader::<_, Pair>::new(&data[..], TYPES).unwrap();
            for _ in 0..at {
                let ok = r.next().unwrap().unwrap();
                assert_eq!(
                    ok,
                    Pair {
                        n: 7,
                        s: Some("ok".into())
                    }
                );
            }
            let e = r.next().unwrap().unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Decode, "{e}");
            assert_eq!((e.row(), e.field()), (Some(at), Some(field)), "{e}");
        }
    }
}
