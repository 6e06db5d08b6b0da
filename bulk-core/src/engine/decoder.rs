//! The read half of the engine: binary COPY bytes in, rows out.
//!
//! [`Decoder`] takes the data in whatever pieces it arrives (one tuple may span several
//! messages, one message may hold several tuples), checks the header, each tuple's field count
//! and the trailer, maps the columns onto the row type's fields and decodes each tuple. Every
//! reader of COPY data (`copy_out` on every client, `.pgcopy` files) is a loop around it.

use super::encoder::{HEADER_LEN, SIGNATURE};
use crate::error::{Error, Result};
use crate::row::{Fields, FromCopyRow, FromCopyRowRef, RawRow};
use bytes::{Buf, Bytes, BytesMut};
use postgres_types::Type;
use std::marker::PhantomData;

/// What [`Decoder::step`] found.
#[derive(Debug)]
pub enum Step<T> {
    /// The next row.
    Row(T),
    /// More data is needed: [`Decoder::feed`] the next piece, or, when the input has ended,
    /// call [`Decoder::end_of_input`].
    NeedMore,
    /// The trailer was read. The input must hold nothing more (feeding more is an error).
    End,
}

/// What [`Decoder::feed_step`] found.
#[derive(Debug)]
pub enum Fed<T> {
    /// The piece was exactly this row: feed the next piece.
    Drained(T),
    /// What [`Decoder::step`] found after feeding the piece; call `step` again after a row.
    Step(Step<T>),
}

/// Decodes the rows of one binary COPY stream into `T`.
pub struct Decoder<T> {
    reader: TupleReader,
    /// Per field of `T::__PGBULK_COLUMNS`: the type of the column feeding it.
    types: Vec<Type>,
    /// Per column of the data: the index of the field it feeds, or `usize::MAX` when none does.
    map: Vec<usize>,
    slots: Vec<(u32, i32)>,
    /// What is read, for messages: "the COPY data", "the pgcopy file".
    what: &'static str,
    row: u64,
    bytes: u64,
    _row: PhantomData<fn() -> T>,
}

/// What a [`Decoder`] makes of each tuple: an owned row ([`Owned`]: the stream and `Vec`
/// reads), or a row borrowing the tuple's bytes handed to a closure ([`Visit`]: the `_each`
/// reads). Decoding and delivering are two steps, so that a row decoded from a tuple that
/// turns out to be partial is dropped, never delivered.
pub trait RowSink {
    /// A decoded row, borrowing the data for `'r`.
    type Decoded<'r>;
    /// What the decoder returns per row.
    type Out;

    /// Decodes one tuple's fields; the error names row `row`, the field and its column.
    fn decode<'r, F: Fields<'r>>(
        &mut self,
        types: &[Type],
        fields: &mut F,
        row: u64,
    ) -> Result<Self::Decoded<'r>>;

    /// Hands over a row decoded from a whole tuple.
    fn deliver(&mut self, row: Self::Decoded<'_>) -> Self::Out;
}

/// Rows decoded into owned `T`s, returned.
pub struct Owned<T>(PhantomData<fn() -> T>);

impl<T> Owned<T> {
    /// The sink of owned rows.
    #[must_use]
    pub fn new() -> Self {
        Owned(PhantomData)
    }
}

impl<T> Default for Owned<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: FromCopyRow> RowSink for Owned<T> {
    type Decoded<'r> = T;
    type Out = T;

    #[inline]
    fn decode<'r, F: Fields<'r>>(&mut self, types: &[Type], fields: &mut F, row: u64) -> Result<T> {
        crate::row::decode_tuple::<T>(fields, types, row)
    }

    #[inline]
    fn deliver(&mut self, row: T) -> T {
        row
    }
}

/// Rows decoded into `T::Row<'r>`, borrowing the data, each handed to `f` and dropped after.
pub struct Visit<T, F> {
    f: F,
    _row: PhantomData<fn() -> T>,
}

impl<T, F> Visit<T, F> {
    /// The sink handing each row to `f`.
    pub fn new(f: F) -> Self {
        Visit {
            f,
            _row: PhantomData,
        }
    }
}

impl<T: FromCopyRowRef, F: for<'r> FnMut(T::Row<'r>)> RowSink for Visit<T, F> {
    type Decoded<'r> = T::Row<'r>;
    type Out = ();

    #[inline]
    fn decode<'r, S: Fields<'r>>(
        &mut self,
        types: &[Type],
        fields: &mut S,
        row: u64,
    ) -> Result<T::Row<'r>> {
        T::decode_row_ref(types, fields)
            .map_err(|(field, e)| crate::row::decode_error::<T>(row, field, e))
    }

    #[inline]
    fn deliver(&mut self, row: T::Row<'_>) {
        (self.f)(row);
    }
}

impl<T: FromCopyRow> Decoder<T> {
    /// [`feed_step_with`](Self::feed_step_with), the rows decoded into `T`.
    ///
    /// # Errors
    /// As [`feed`](Self::feed) and [`step`](Self::step).
    #[inline]
    pub fn feed_step(&mut self, piece: Bytes) -> Result<Fed<T>> {
        self.feed_step_with(piece, &mut Owned::new())
    }

    /// [`step_with`](Self::step_with), the rows decoded into `T`.
    ///
    /// # Errors
    /// Damaged framing (the error names the row), a value its field cannot take, data after
    /// the trailer.
    #[inline]
    pub fn step(&mut self) -> Result<Step<T>> {
        self.step_with(&mut Owned::new())
    }
}

impl<T> Decoder<T> {
    /// A decoder for data whose column `i` feeds field `map[i]` of `T` (`usize::MAX`: skipped),
    /// with `types[f]` the type of the column feeding field `f`. `what` names the data in
    /// messages.
    pub fn new(types: Vec<Type>, map: Vec<usize>, what: &'static str) -> Self {
        Decoder {
            reader: TupleReader::new(map.len()),
            slots: vec![(0, -1); types.len()],
            types,
            map,
            what,
            row: 0,
            bytes: 0,
            _row: PhantomData,
        }
    }

    /// Starts the field slots at `slots` (one per field of `T::__PGBULK_COLUMNS`) instead of all NULL:
    /// a slot no column of the data feeds keeps its value for every row, which is how a
    /// `#[copy(default)]` field the query does not return stays absent.
    pub(crate) fn with_slots(mut self, slots: Vec<(u32, i32)>) -> Self {
        debug_assert_eq!(slots.len(), self.slots.len());
        self.slots = slots;
        self
    }

    /// Takes the next piece of data (kept without copying when no tuple is pending).
    ///
    /// # Errors
    /// Data after the trailer.
    #[inline]
    pub fn feed(&mut self, piece: Bytes) -> Result<()> {
        if self.reader.is_ended() && !piece.is_empty() {
            return Err(self.after_trailer());
        }
        self.bytes += piece.len() as u64;
        self.reader.feed_bytes(piece);
        Ok(())
    }

    /// [`feed`](Self::feed) then [`step_with`](Self::step_with) in one call, with a fast path for the
    /// usual `COPY TO STDOUT` message: exactly one whole tuple, nothing pending before it. It
    /// is decoded straight from `piece` (no bookkeeping of the piece, no second call to learn
    /// that the piece is used up); [`Fed::Drained`] says so. Anything else takes the general
    /// path ([`Fed::Step`]; call [`step_with`](Self::step_with) for further rows).
    ///
    /// # Errors
    /// As [`feed`](Self::feed) and [`step`](Self::step).
    #[inline]
    pub fn feed_step_with<K: RowSink>(
        &mut self,
        piece: Bytes,
        sink: &mut K,
    ) -> Result<Fed<K::Out>> {
        if self.reader.ready_for_whole() {
            if self.reader.is_identity(&self.map, &self.slots) {
                // Delivered before `piece` moves on: the decoded row borrows it.
                let found = in_order(sink, &piece, self.reader.columns, &self.types, self.row)
                    .map(|(value, len)| (value.map(|value| sink.deliver(value)), len));
                if let Some((value, len)) = found {
                    let value = value?;
                    self.row += 1;
                    self.bytes += piece.len() as u64;
                    if len == piece.len() {
                        return Ok(Fed::Drained(value));
                    }
                    self.reader.feed_bytes_from(piece, len);
                    return Ok(Fed::Step(Step::Row(value)));
                }
            } else if let Ok(Parsed::Tuple(len)) = parse_tuple(
                &piece,
                self.reader.columns,
                false,
                &self.map,
                &mut self.slots,
            ) {
                if len == piece.len() {
                    self.bytes += piece.len() as u64;
                    let value = from_slots(sink, &piece, &self.slots, &self.types, &mut self.row)?;
                    return Ok(Fed::Drained(value));
                }
            }
        }
        self.feed(piece)?;
        self.step_with(sink).map(Fed::Step)
    }

    /// Takes the next piece of data by copying it.
    pub fn feed_slice(&mut self, piece: &[u8]) -> Result<()> {
        if self.reader.is_ended() && !piece.is_empty() {
            return Err(self.after_trailer());
        }
        self.bytes += piece.len() as u64;
        self.reader.feed(piece);
        Ok(())
    }

    fn after_trailer(&self) -> Error {
        Error::protocol(format!("{} continues after its trailer", self.what)).with_row(self.row)
    }

    /// The next row, or what the decoder needs.
    ///
    /// # Errors
    /// Damaged framing (the error names the row), a value its field cannot take, data after
    /// the trailer.
    #[inline]
    pub fn step_with<K: RowSink>(&mut self, sink: &mut K) -> Result<Step<K::Out>> {
        if self.reader.in_tuples() && self.reader.is_identity(&self.map, &self.slots) {
            let data = &self.reader.data()[self.reader.consumed..];
            let found = in_order(sink, data, self.reader.columns, &self.types, self.row)
                .map(|(value, len)| (value.map(|value| sink.deliver(value)), len));
            if let Some((value, len)) = found {
                let value = value?;
                self.reader.consumed += len;
                self.row += 1;
                return Ok(Step::Row(value));
            }
        }
        let next = self
            .reader
            .next_tuple(&self.map, &mut self.slots)
            .map_err(|e| {
                Error::protocol(format!("invalid binary COPY data: {e}")).with_row(self.row)
            })?;
        match next {
            Next::Tuple => {
                let tuple = self.reader.tuple_bytes();
                from_slots(sink, tuple, &self.slots, &self.types, &mut self.row).map(Step::Row)
            }
            Next::NeedMore => Ok(Step::NeedMore),
            Next::End if self.reader.has_unread() => Err(self.after_trailer()),
            Next::End => Ok(Step::End),
        }
    }

    /// The input has ended: fine after the trailer, otherwise the one "ends before its trailer"
    /// error.
    pub fn end_of_input(&self) -> Result<()> {
        if self.reader.is_ended() {
            Ok(())
        } else {
            Err(
                Error::protocol(format!("{} ends before its trailer (truncated)", self.what))
                    .with_row(self.row),
            )
        }
    }

    /// Rows decoded so far.
    pub fn rows(&self) -> u64 {
        self.row
    }

    /// Bytes fed so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The type of the column feeding each field.
    pub fn types(&self) -> &[Type] {
        &self.types
    }
}

/// What [`TupleReader::next_tuple`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
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
/// with length `-1` for NULL — the form [`RawRow`](crate::row::RawRow) takes.
#[derive(Debug)]
pub(crate) struct TupleReader {
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
    /// Whether the caller's map sends column `i` to slot `i` of a slice of exactly `columns`
    /// slots; found on the first tuple (a reader is always read with one map).
    identity: Option<bool>,
}

impl TupleReader {
    /// A reader for tuples of exactly `columns` fields.
    pub(crate) fn new(columns: usize) -> Self {
        TupleReader {
            piece: Bytes::new(),
            spill: BytesMut::new(),
            consumed: 0,
            tuple: (0, 0),
            header_done: false,
            ended: false,
            columns,
            identity: None,
        }
    }

    /// Whether `map` and `out` are the identity mapping (see [`parse_tuple`]), worked out once.
    #[inline]
    fn is_identity(&mut self, map: &[usize], out: &[(u32, i32)]) -> bool {
        let columns = self.columns;
        *self.identity.get_or_insert_with(|| {
            out.len() == columns
                && map.len() == columns
                && map.iter().enumerate().all(|(i, &f)| i == f)
        })
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
    pub(crate) fn feed(&mut self, data: &[u8]) {
        self.spill_unread();
        self.spill.extend_from_slice(data);
    }

    /// Appends the next piece of COPY data without copying it when no partial tuple is
    /// pending — the usual case for `COPY TO STDOUT`, where each message holds whole tuples;
    /// otherwise the piece joins the pending bytes.
    pub(crate) fn feed_bytes(&mut self, piece: Bytes) {
        if self.has_unread() {
            self.feed(&piece);
        } else {
            self.piece = piece;
            self.spill.clear();
            self.consumed = 0;
            self.tuple = (0, 0);
        }
    }

    /// Takes `piece` in place, as [`feed_bytes`](Self::feed_bytes) does when nothing is
    /// pending, with its first `consumed` bytes already read (a tuple decoded straight off it).
    fn feed_bytes_from(&mut self, piece: Bytes, consumed: usize) {
        debug_assert!(!self.has_unread() && consumed <= piece.len());
        self.piece = piece;
        self.spill.clear();
        self.consumed = consumed;
        self.tuple = (0, 0);
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
    pub(crate) fn is_ended(&self) -> bool {
        self.ended
    }

    /// Whether unread bytes remain (after the trailer this is a protocol error).
    pub(crate) fn has_unread(&self) -> bool {
        self.data().len() > self.consumed
    }

    /// The bytes of the tuple last returned by [`next_tuple`](Self::next_tuple).
    pub(crate) fn tuple_bytes(&self) -> &[u8] {
        &self.data()[self.tuple.0..self.tuple.1]
    }

    /// Reads the next tuple. Field `i` of the tuple is stored at `out[map[i]]` when
    /// `map[i] < out.len()`, and skipped otherwise (a column no field wants). Slots of `out`
    /// that no column maps to are left as they are.
    ///
    /// # Errors
    /// A bad signature, OIDs in the data, a field count other than the reader's column count,
    /// or a negative length other than -1.
    pub(crate) fn next_tuple(
        &mut self,
        map: &[usize],
        out: &mut [(u32, i32)],
    ) -> Result<Next, String> {
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
        let identity = self.is_identity(map, out);
        let data = &self.data()[self.consumed..];
        match parse_tuple(data, self.columns, identity, map, out)? {
            Parsed::Tuple(len) => {
                self.tuple = (self.consumed, self.consumed + len);
                self.consumed += len;
                Ok(Next::Tuple)
            }
            Parsed::NeedMore => Ok(Next::NeedMore),
            Parsed::End => {
                self.consumed += 2;
                self.ended = true;
                Ok(Next::End)
            }
        }
    }

    /// Whether the next piece may be read in place as a whole tuple: the header is read, the
    /// trailer not yet, and nothing is pending.
    #[inline]
    fn ready_for_whole(&self) -> bool {
        self.in_tuples() && !self.has_unread()
    }

    /// Whether the data read next is a tuple or the trailer: the header is read, the trailer
    /// not yet.
    #[inline]
    fn in_tuples(&self) -> bool {
        self.header_done && !self.ended
    }

    /// Parses the header if it is complete; returns its length.
    fn read_header(&self) -> Result<Option<usize>, String> {
        let data = &self.data()[self.consumed..];
        let check = data.len().min(SIGNATURE.len());
        if data[..check] != SIGNATURE[..check] {
            return Err("missing the PGCOPY signature".to_owned());
        }
        if data.len() < HEADER_LEN {
            return Ok(None);
        }
        let flags = i32::from_be_bytes([data[11], data[12], data[13], data[14]]);
        if flags & (1 << 16) != 0 {
            return Err("the data includes OIDs, which pgbulk does not read".to_owned());
        }
        let ext = u32::from_be_bytes([data[15], data[16], data[17], data[18]]) as usize;
        if data.len() - HEADER_LEN < ext {
            return Ok(None);
        }
        Ok(Some(HEADER_LEN + ext))
    }
}

/// Decodes and hands over the whole tuple `tuple` whose fields' positions are in `slots`
/// (the general path), counting it in `row`.
#[inline]
fn from_slots<K: RowSink>(
    sink: &mut K,
    tuple: &[u8],
    slots: &[(u32, i32)],
    types: &[Type],
    row: &mut u64,
) -> Result<K::Out> {
    let value = sink.decode(types, &mut RawRow::new(tuple, slots), *row)?;
    *row += 1;
    Ok(sink.deliver(value))
}

/// Decodes the tuple at the start of `data` straight into a row, its fields read in order (the
/// identity column map: see [`TupleReader::is_identity`]), without finding their positions
/// first. `Some((decoded, length))` when `data` starts with a whole tuple of `columns` fields;
/// `None` otherwise (a partial tuple, the trailer, damaged framing), for the general path to
/// say which. A field that cannot be decoded is that field's error: the tuple may then be
/// partial (its length is unknown), which does not matter as the read ends there.
#[inline]
fn in_order<'r, K: RowSink>(
    sink: &mut K,
    data: &'r [u8],
    columns: usize,
    types: &[Type],
    row: u64,
) -> Option<(Result<K::Decoded<'r>>, usize)> {
    let mut fields = InOrder::start(data, columns)?;
    let value = sink.decode(types, &mut fields, row);
    if fields.short {
        return None;
    }
    Some((value, fields.pos))
}

/// A tuple's fields read in order straight off its bytes: the [`Fields`] source of the usual
/// read. Running out of data, or a length other than -1 below zero, marks the tuple `short`
/// (and reads as NULL): the caller then discards what was decoded and takes the general path.
struct InOrder<'a> {
    data: &'a [u8],
    pos: usize,
    short: bool,
}

impl<'a> InOrder<'a> {
    /// A reader of the tuple at the start of `data`, when its field count is `columns`.
    #[inline]
    fn start(data: &'a [u8], columns: usize) -> Option<Self> {
        let count = data.get(..2)?;
        let count = i16::from_be_bytes([count[0], count[1]]);
        (usize::try_from(count).ok() == Some(columns)).then_some(InOrder {
            data,
            pos: 2,
            short: false,
        })
    }
}

impl<'a> Fields<'a> for InOrder<'a> {
    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        let Some(len) = self.data.get(self.pos..self.pos + 4) else {
            self.short = true;
            return None;
        };
        let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        self.pos += 4;
        let Ok(n) = usize::try_from(len) else {
            self.short |= len != -1;
            return None;
        };
        if let Some(value) = self.data.get(self.pos..self.pos + n) {
            self.pos += n;
            Some(value)
        } else {
            self.short = true;
            None
        }
    }

    #[inline]
    fn absent(&mut self) -> bool {
        false
    }
}

/// What [`parse_tuple`] found at the start of its data.
enum Parsed {
    /// A whole tuple of this many bytes.
    Tuple(usize),
    /// The data ends inside the tuple (or before its field count).
    NeedMore,
    /// The trailer (2 bytes).
    End,
}

/// Parses the tuple (or trailer) at the start of `data`: field `i`'s position is stored at
/// `out[map[i]]` when that slot exists (see [`TupleReader::next_tuple`]). `identity` says that
/// `map[i] == i` for every column and `out` has one slot per column
/// ([`TupleReader::is_identity`]).
#[inline]
fn parse_tuple(
    data: &[u8],
    columns: usize,
    identity: bool,
    map: &[usize],
    out: &mut [(u32, i32)],
) -> Result<Parsed, String> {
    // The usual read (every column feeds the field of the same index) skips the lookup.
    if identity {
        parse::<true>(data, columns, map, out)
    } else {
        parse::<false>(data, columns, map, out)
    }
}

/// [`parse_tuple`], with `IDENTITY` when `map[i] == i` for every column and `out` has one slot
/// per column.
#[inline]
fn parse<const IDENTITY: bool>(
    data: &[u8],
    columns: usize,
    map: &[usize],
    out: &mut [(u32, i32)],
) -> Result<Parsed, String> {
    if data.len() < 2 {
        return Ok(Parsed::NeedMore);
    }
    let count = i16::from_be_bytes([data[0], data[1]]);
    if count == -1 {
        return Ok(Parsed::End);
    }
    if usize::try_from(count).ok() != Some(columns) {
        return Err(format!("tuple has {count} fields, expected {columns}"));
    }
    let mut pos = 2usize;
    for i in 0..columns {
        let Some(len_bytes) = data.get(pos..pos + 4) else {
            return Ok(Parsed::NeedMore);
        };
        let len = i32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
        pos += 4;
        // Offsets are relative to the tuple's start; a tuple past 4 GiB is refused below,
        // before any offset is used.
        #[allow(clippy::cast_possible_truncation)]
        let slot = (pos as u32, len);
        if len >= 0 {
            // `len` is non-negative here, so the cast is lossless.
            #[allow(clippy::cast_sign_loss)]
            let n = len as usize;
            if data.len() - pos < n {
                return Ok(Parsed::NeedMore);
            }
            pos += n;
        } else if len != -1 {
            return Err(format!("field {i} has invalid length {len}"));
        }
        if IDENTITY {
            out[i] = slot;
        } else if let Some(field) = map.get(i).and_then(|&f| out.get_mut(f)) {
            *field = slot;
        }
    }
    if u32::try_from(pos).is_err() {
        return Err("tuple larger than 4 GiB".to_owned());
    }
    Ok(Parsed::Tuple(pos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::put_be;
    use crate::engine::encoder::{write_header, write_trailer};

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

    fn read_all(pieces: &[&[u8]]) -> Result<Vec<(i32, Option<String>)>, String> {
        let results: Vec<_> = [Feed::Copy, Feed::InPlace, Feed::Mixed]
            .into_iter()
            .map(|how| read_all_fed(pieces, how))
            .collect();
        // However the pieces are handed over, the reader sees the same stream.
        assert_eq!(results[0], results[1]);
        assert_eq!(results[0], results[2]);
        results.into_iter().next().unwrap()
    }

    fn read_all_fed(pieces: &[&[u8]], how: Feed) -> Result<Vec<(i32, Option<String>)>, String> {
        let mut r = TupleReader::new(2);
        let mut rows = Vec::new();
        let mut out = [(0u32, 0i32); 2];
        let map = [0, 1];
        let mut pieces = pieces.iter();
        let mut fed = 0;
        loop {
            match r.next_tuple(&map, &mut out)? {
                Next::Tuple => {
                    let row = RawRow::new(r.tuple_bytes(), &out);
                    let id = i32::from_be_bytes(row.get(0).unwrap().try_into().unwrap());
                    let s = row.get(1).map(|b| String::from_utf8(b.to_vec()).unwrap());
                    rows.push((id, s));
                }
                Next::NeedMore => match pieces.next() {
                    Some(p) => {
                        fed += 1;
                        give(&mut r, how, fed, p);
                    }
                    None => return Err("truncated".into()),
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
                        let row = RawRow::new(r.tuple_bytes(), &out);
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
