//! Binary COPY framing: header, tuples, trailer.
//!
//! ```text
//! header:  "PGCOPY\n\xff\r\n\0"  int32 flags (0)  int32 header-extension length (0)
//! tuple:   int16 field count, then per field: int32 length (-1 = NULL) and the bytes
//! trailer: int16 -1
//! ```
//!
//! Writing is a few `put_*` calls (see [`write_header`], [`write_trailer`]); a tuple is
//! [`write_tuple`]: the field count, then the derive's `encode_row` writes the fields. Reading is [`TupleReader`], which takes the COPY data in
//! whatever pieces the server sends it (one tuple may span several messages, one message may
//! hold several tuples) and yields whole tuples.

use crate::codec::{put_be, EncodeError};
use crate::row::CopyRow;
use bytes::{Buf, Bytes, BytesMut};
use postgres_types::Type;

/// The 11-byte signature that starts every binary COPY stream.
pub const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// Length of the fixed part of the header: signature, flags, extension length.
pub const HEADER_LEN: usize = SIGNATURE.len() + 4 + 4;

/// Writes the binary COPY header (no OIDs, no header extension).
#[inline]
pub fn write_header(buf: &mut BytesMut) {
    buf.extend_from_slice(SIGNATURE);
    put_be(buf, i32::to_be_bytes(0));
    put_be(buf, i32::to_be_bytes(0));
}

/// Writes `row` as one tuple: the `int16` field count (`T::COLUMNS.len()`), then the fields
/// (`encode_row`). `types[i]` is the column type of `T::COLUMNS[i]`. On failure returns the
/// index into `T::COLUMNS` of the field that failed; `buf` may then hold a partial tuple.
#[inline]
pub fn write_tuple<T: CopyRow + ?Sized>(
    row: &T,
    types: &[Type],
    buf: &mut BytesMut,
) -> Result<(), (usize, EncodeError)> {
    // The plan refuses more columns than PostgreSQL allows (1600), so the count fits.
    let count = i16::try_from(T::COLUMNS.len()).unwrap_or(i16::MAX);
    put_be(buf, count.to_be_bytes());
    row.encode_row(types, buf)
}

/// Writes the binary COPY trailer (a field count of -1).
#[inline]
pub fn write_trailer(buf: &mut BytesMut) {
    put_be(buf, i16::to_be_bytes(-1));
}

/// Why COPY data could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError(pub String);

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid binary COPY data: {}", self.0)
    }
}

impl std::error::Error for FormatError {}

/// What [`TupleReader::next_tuple`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// A whole tuple is available: its field positions were written to the caller's slice and
    /// [`TupleReader::tuple_bytes`] holds its bytes until the next call.
    Tuple,
    /// More data is needed; call [`TupleReader::feed`] and try again.
    NeedMore,
    /// The trailer was read: the stream is complete.
    End,
}

/// Reads whole tuples out of binary COPY data arriving in arbitrary pieces.
///
/// Field positions are reported as `(offset, length)` pairs into [`tuple_bytes`](Self::tuple_bytes),
/// with length `-1` for NULL — the form [`RawRow`](crate::RawRow) takes.
#[derive(Debug)]
pub struct TupleReader {
    /// The piece being read in place, without copying (see [`feed_bytes`](Self::feed_bytes));
    /// empty while the data is in `spill`.
    piece: Bytes,
    /// Bytes kept across pieces: a tuple split between two pieces, or pieces given by
    /// [`feed`](Self::feed).
    spill: BytesMut,
    /// Bytes of the current data already consumed by earlier tuples.
    consumed: usize,
    /// Start and end of the last tuple returned, within the current data.
    tuple: (usize, usize),
    header_done: bool,
    ended: bool,
    columns: usize,
}

impl TupleReader {
    /// A reader for tuples of exactly `columns` fields.
    pub fn new(columns: usize) -> Self {
        TupleReader {
            piece: Bytes::new(),
            spill: BytesMut::new(),
            consumed: 0,
            tuple: (0, 0),
            header_done: false,
            ended: false,
            columns,
        }
    }

    /// The data being read: the piece in place, or the spill buffer.
    #[inline]
    fn data(&self) -> &[u8] {
        if self.piece.is_empty() {
            &self.spill
        } else {
            &self.piece
        }
    }

    /// Appends the next piece of COPY data, copying it.
    pub fn feed(&mut self, data: &[u8]) {
        self.spill_unread();
        self.spill.extend_from_slice(data);
    }

    /// Appends the next piece of COPY data without copying it when no partial tuple is
    /// pending — the usual case for `COPY TO STDOUT`, where each message holds whole tuples;
    /// otherwise the piece joins the pending bytes.
    pub fn feed_bytes(&mut self, piece: Bytes) {
        if self.has_unread() {
            self.feed(&piece);
        } else {
            self.piece = piece;
            self.spill.clear();
            self.consumed = 0;
            self.tuple = (0, 0);
        }
    }

    /// Moves the unread bytes to the start of `spill`, so more can be appended after them.
    fn spill_unread(&mut self) {
        if self.piece.is_empty() {
            // Drop what earlier tuples used so the buffer does not grow with the stream.
            self.spill.advance(self.consumed);
        } else {
            self.spill.clear();
            self.spill.extend_from_slice(&self.piece[self.consumed..]);
            self.piece = Bytes::new();
        }
        self.consumed = 0;
        self.tuple = (0, 0);
    }

    /// Whether the trailer has been read.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Whether unread bytes remain (after the trailer this is a protocol error).
    pub fn has_unread(&self) -> bool {
        self.data().len() > self.consumed
    }

    /// The bytes of the tuple last returned by [`next_tuple`](Self::next_tuple).
    pub fn tuple_bytes(&self) -> &[u8] {
        &self.data()[self.tuple.0..self.tuple.1]
    }

    /// Reads the next tuple. Field `i` of the tuple is stored at `out[map[i]]` when
    /// `map[i] < out.len()`, and skipped otherwise (a column no field wants). Slots of `out`
    /// that no column maps to are left as they are.
    ///
    /// # Errors
    /// A bad signature, OIDs in the data, a field count other than the reader's column count,
    /// or a negative length other than -1.
    pub fn next_tuple(
        &mut self,
        map: &[usize],
        out: &mut [(u32, i32)],
    ) -> Result<Next, FormatError> {
        if self.ended {
            return Ok(Next::End);
        }
        if !self.header_done {
            let Some(n) = self.read_header()? else {
                return Ok(Next::NeedMore);
            };
            self.consumed += n;
            self.header_done = true;
        }
        let data = &self.data()[self.consumed..];
        if data.len() < 2 {
            return Ok(Next::NeedMore);
        }
        let count = i16::from_be_bytes([data[0], data[1]]);
        if count == -1 {
            self.consumed += 2;
            self.ended = true;
            return Ok(Next::End);
        }
        if usize::try_from(count).ok() != Some(self.columns) {
            return Err(FormatError(format!(
                "tuple has {count} fields, expected {}",
                self.columns
            )));
        }
        let mut pos = 2usize;
        for i in 0..self.columns {
            let Some(len_bytes) = data.get(pos..pos + 4) else {
                return Ok(Next::NeedMore);
            };
            let len = i32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
            pos += 4;
            let value_start = pos;
            if len >= 0 {
                // `len` is non-negative here, so the cast is lossless.
                #[allow(clippy::cast_sign_loss)]
                let n = len as usize;
                if data.len() - pos < n {
                    return Ok(Next::NeedMore);
                }
                pos += n;
            } else if len != -1 {
                return Err(FormatError(format!("field {i} has invalid length {len}")));
            }
            if let Some(slot) = map.get(i).and_then(|&f| out.get_mut(f)) {
                let off = u32::try_from(value_start)
                    .map_err(|_| FormatError("tuple larger than 4 GiB".to_owned()))?;
                *slot = (off, len);
            }
        }
        self.tuple = (self.consumed, self.consumed + pos);
        self.consumed += pos;
        Ok(Next::Tuple)
    }

    /// Parses the header if it is complete; returns its length.
    fn read_header(&self) -> Result<Option<usize>, FormatError> {
        let data = &self.data()[self.consumed..];
        let check = data.len().min(SIGNATURE.len());
        if data[..check] != SIGNATURE[..check] {
            return Err(FormatError("missing the PGCOPY signature".to_owned()));
        }
        if data.len() < HEADER_LEN {
            return Ok(None);
        }
        let flags = i32::from_be_bytes([data[11], data[12], data[13], data[14]]);
        if flags & (1 << 16) != 0 {
            return Err(FormatError(
                "the data includes OIDs, which pgbulk does not read".to_owned(),
            ));
        }
        let ext = u32::from_be_bytes([data[15], data[16], data[17], data[18]]) as usize;
        if data.len() - HEADER_LEN < ext {
            return Ok(None);
        }
        Ok(Some(HEADER_LEN + ext))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut b = BytesMut::new();
        write_header(&mut b);
        for (i, s) in [(1i32, Some("a")), (2, None), (3, Some("ccc"))] {
            put_be(&mut b, i16::to_be_bytes(2));
            put_be(&mut b, i32::to_be_bytes(4));
            put_be(&mut b, i32::to_be_bytes(i));
            match s {
                Some(s) => {
                    put_be(&mut b, i32::to_be_bytes(i32::try_from(s.len()).unwrap()));
                    b.extend_from_slice(s.as_bytes());
                }
                None => put_be(&mut b, i32::to_be_bytes(-1)),
            }
        }
        write_trailer(&mut b);
        b.to_vec()
    }

    /// How a test hands pieces to the reader: copied, in place, or alternating.
    #[derive(Clone, Copy, Debug)]
    enum Feed {
        Copy,
        InPlace,
        Mixed,
    }

    fn give(r: &mut TupleReader, how: Feed, n: usize, piece: &[u8]) {
        let copy = match how {
            Feed::Copy => true,
            Feed::InPlace => false,
            Feed::Mixed => n.is_multiple_of(2),
        };
        if copy {
            r.feed(piece);
        } else {
            r.feed_bytes(Bytes::copy_from_slice(piece));
        }
    }

    fn read_all(pieces: &[&[u8]]) -> Result<Vec<(i32, Option<String>)>, FormatError> {
        let results: Vec<_> = [Feed::Copy, Feed::InPlace, Feed::Mixed]
            .into_iter()
            .map(|how| read_all_fed(pieces, how))
            .collect();
        // However the pieces are handed over, the reader sees the same stream.
        assert_eq!(results[0], results[1]);
        assert_eq!(results[0], results[2]);
        results.into_iter().next().unwrap()
    }

    fn read_all_fed(
        pieces: &[&[u8]],
        how: Feed,
    ) -> Result<Vec<(i32, Option<String>)>, FormatError> {
        let mut r = TupleReader::new(2);
        let mut rows = Vec::new();
        let mut out = [(0u32, 0i32); 2];
        let map = [0, 1];
        let mut pieces = pieces.iter();
        let mut fed = 0;
        loop {
            match r.next_tuple(&map, &mut out)? {
                Next::Tuple => {
                    let row = crate::RawRow::new(r.tuple_bytes(), &out);
                    let id = i32::from_be_bytes(row.get(0).unwrap().try_into().unwrap());
                    let s = row.get(1).map(|b| String::from_utf8(b.to_vec()).unwrap());
                    rows.push((id, s));
                }
                Next::NeedMore => match pieces.next() {
                    Some(p) => {
                        fed += 1;
                        give(&mut r, how, fed, p);
                    }
                    None => return Err(FormatError("truncated".into())),
                },
                Next::End => return Ok(rows),
            }
        }
    }

    #[test]
    fn reads_whole_stream_and_byte_by_byte() {
        let data = sample();
        let expect = vec![(1, Some("a".into())), (2, None), (3, Some("ccc".into()))];
        assert_eq!(read_all(&[&data]).unwrap(), expect);
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        assert_eq!(read_all(&bytes).unwrap(), expect);
        let sevens: Vec<&[u8]> = data.chunks(7).collect();
        assert_eq!(read_all(&sevens).unwrap(), expect);
    }

    #[test]
    fn whole_tuples_fed_in_place_are_not_copied() {
        let data = sample();
        // The first tuple: field count, then 4 + 4 bytes of id and 4 + 1 of text.
        let (head, tail) = data.split_at(HEADER_LEN + 15);
        let mut r = TupleReader::new(2);
        let mut out = [(0u32, 0i32); 2];
        let map = [0, 1];
        // Header and first tuple in one piece, the rest in another: both read in place.
        r.feed_bytes(Bytes::copy_from_slice(head));
        assert_eq!(r.next_tuple(&map, &mut out), Ok(Next::Tuple));
        assert_eq!(r.next_tuple(&map, &mut out), Ok(Next::NeedMore));
        r.feed_bytes(Bytes::copy_from_slice(tail));
        assert_eq!(r.next_tuple(&map, &mut out), Ok(Next::Tuple));
        assert_eq!(r.next_tuple(&map, &mut out), Ok(Next::Tuple));
        assert_eq!(r.next_tuple(&map, &mut out), Ok(Next::End));
        assert_eq!(r.spill.capacity(), 0, "nothing was copied");
        // A piece ending inside a tuple: only then are bytes kept across pieces.
        let mut r = TupleReader::new(2);
        r.feed_bytes(Bytes::copy_from_slice(&data[..HEADER_LEN + 5]));
        assert_eq!(r.next_tuple(&map, &mut out), Ok(Next::NeedMore));
        r.feed_bytes(Bytes::copy_from_slice(&data[HEADER_LEN + 5..]));
        assert_eq!(r.next_tuple(&map, &mut out), Ok(Next::Tuple));
        assert!(r.spill.capacity() > 0);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Arbitrary bytes after a valid header (or instead of one), fed in arbitrary pieces:
        /// the reader returns tuples, asks for more, ends or fails — never panics or loops, and
        /// never reserves memory for a length it has not been given the bytes of.
        #[test]
        fn tuple_reader_never_panics_on_arbitrary_bytes(
            header in proptest::bool::weighted(0.9),
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            cuts in proptest::collection::vec(1usize..40, 0..10),
            columns in 0usize..4,
        ) {
            let mut data = Vec::new();
            if header {
                let mut b = BytesMut::new();
                write_header(&mut b);
                data.extend_from_slice(&b);
            }
            data.extend_from_slice(&body);
            let mut r = TupleReader::new(columns);
            let map: Vec<usize> = (0..columns).collect();
            let mut out = vec![(0u32, 0i32); columns];
            let mut pieces = Vec::new();
            let mut rest = &data[..];
            for c in cuts {
                let (a, b) = rest.split_at(c.min(rest.len()));
                pieces.push(a);
                rest = b;
            }
            pieces.push(rest);
            let mut pieces = pieces.into_iter();
            let mut fed = 0;
            // every step consumes a tuple or a piece, or stops: bounded by the input
            for _ in 0..=data.len() + 20 {
                match r.next_tuple(&map, &mut out) {
                    Ok(Next::Tuple) => {
                        let row = crate::RawRow::new(r.tuple_bytes(), &out);
                        for i in 0..columns {
                            let _ = row.get(i);
                        }
                    }
                    Ok(Next::NeedMore) => match pieces.next() {
                        Some(p) => {
                            fed += 1;
                            give(&mut r, Feed::Mixed, fed, p);
                        }
                        None => break,
                    },
                    Ok(Next::End) | Err(_) => break,
                }
            }
            proptest::prop_assert!(r.spill.len() <= data.len());
        }
    }

    #[test]
    fn truncated_and_corrupt_data_are_errors() {
        let data = sample();
        for cut in 0..data.len() {
            assert!(read_all(&[&data[..cut]]).is_err(), "cut at {cut}");
        }
        let mut bad = data.clone();
        bad[0] = b'X';
        assert!(read_all(&[&bad]).is_err());
        let mut bad_count = data.clone();
        bad_count[HEADER_LEN + 1] = 3;
        assert!(read_all(&[&bad_count]).is_err());
        let mut bad_len = data;
        bad_len[HEADER_LEN + 2..HEADER_LEN + 6].copy_from_slice(&(-7i32).to_be_bytes());
        assert!(read_all(&[&bad_len]).is_err());
    }
}
