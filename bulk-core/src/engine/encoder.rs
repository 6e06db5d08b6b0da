//! The write half of the engine: rows in, binary COPY chunks out.

use crate::codec::put_be;
use crate::error::Result;
use crate::row::CopyRow;
use crate::server::ServerVersion;
use bytes::{Bytes, BytesMut};
use postgres_types::Type;
use std::marker::PhantomData;

/// The 11-byte signature that starts every binary COPY stream.
pub(crate) const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// Length of the fixed part of the header: signature, flags, extension length.
pub(crate) const HEADER_LEN: usize = SIGNATURE.len() + 4 + 4;

/// Writes the binary COPY header (no OIDs, no header extension).
#[inline]
pub(crate) fn write_header(buf: &mut BytesMut) {
    buf.extend_from_slice(SIGNATURE);
    put_be(buf, i32::to_be_bytes(0));
    put_be(buf, i32::to_be_bytes(0));
}

/// Writes the binary COPY trailer (a field count of -1).
#[inline]
pub(crate) fn write_trailer(buf: &mut BytesMut) {
    put_be(buf, i16::to_be_bytes(-1));
}

/// Encodes rows of `T` as one binary COPY stream, handed out in chunks of about
/// `flush_bytes`.
///
/// It owns the whole framing: the header (written on creation), each tuple's field count, the
/// trailer ([`finish`](Encoder::finish)). The row type writes only its fields. An extra trailing
/// column (upsert's staging ordinal) is declared at creation and written by
/// [`push_with`](Encoder::push_with)'s closure.
///
/// Sans-IO: the caller moves the chunks ([`take_chunk`](Encoder::take_chunk) when
/// [`is_full`](Encoder::is_full)) to a COPY sink, a file, or anywhere else.
pub struct Encoder<T: ?Sized> {
    buf: BytesMut,
    flush_bytes: usize,
    /// The tuple's field count, big-endian: `T`'s columns plus the extra ones.
    field_count: [u8; 2],
    rows: u64,
    bytes: u64,
    /// A server whose limits each tuple is checked against (numeric infinities only from
    /// PostgreSQL 14); `None` when nothing needs checking (a recent server, or a file), so the
    /// per-row cost is one predictable branch.
    checked: Option<ServerVersion>,
    _row: PhantomData<fn(&T)>,
}

impl<T: CopyRow + ?Sized> Encoder<T> {
    /// An encoder for `T` with `extra` trailing columns written by
    /// [`push_with`](Encoder::push_with). The header is written at once.
    pub fn new(flush_bytes: usize, extra: usize) -> Self {
        // The derive limits a row to 1,600 columns (PostgreSQL's own limit), which fits.
        let count = i16::try_from(T::__PGBULK_COLUMNS.len() + extra).unwrap_or(i16::MAX);
        let mut buf = BytesMut::with_capacity(flush_bytes + flush_bytes / 4);
        write_header(&mut buf);
        Encoder {
            buf,
            flush_bytes,
            field_count: count.to_be_bytes(),
            rows: 0,
            bytes: 0,
            checked: None,
            _row: PhantomData,
        }
    }

    /// This encoder, refusing values `server` does not take (a plan's
    /// [`server`](crate::Plan::server)): each row is checked as it is encoded, and refused
    /// with an [`Encode`](crate::ErrorKind::Encode) error naming the row, field and column.
    pub(crate) fn for_server(mut self, server: ServerVersion) -> Self {
        self.checked = server.predates_numeric_infinity().then_some(server);
        self
    }

    /// Encodes one row; `types[i]` is the type of the column of `T::__PGBULK_COLUMNS[i]`, as checked
    /// by a plan. On error nothing of the row stays in the buffer (the stream can go on
    /// without it), and the error names the row's index and the field.
    #[inline]
    pub fn push(&mut self, row: &T, types: &[Type]) -> Result<()> {
        self.push_with(row, types, |_, _| {})
    }

    /// [`push`](Encoder::push), then `extra` writes the extra trailing columns (each with its
    /// length) declared in [`new`](Encoder::new). `extra` gets the buffer and where the tuple
    /// starts in it (at its field count), so it can also look at the encoded fields.
    #[inline]
    pub fn push_with(
        &mut self,
        row: &T,
        types: &[Type],
        extra: impl FnOnce(&mut BytesMut, usize),
    ) -> Result<()> {
        let start = self.buf.len();
        put_be(&mut self.buf, self.field_count);
        let mut encoded = row.encode_row(types, &mut self.buf);
        if let (Ok(()), Some(server)) = (&encoded, self.checked) {
            encoded = server.check_tuple(types, &self.buf[start..]);
        }
        if let Err((field, e)) = encoded {
            self.buf.truncate(start);
            return Err(crate::row::encode_error::<T>(self.rows, field, e));
        }
        extra(&mut self.buf, start);
        self.rows += 1;
        Ok(())
    }

    /// Appends `rows` tuples encoded earlier by an encoder of the same row type and extra
    /// columns ([`into_tuples`](Encoder::into_tuples)), as they are.
    pub(crate) fn extend_encoded(&mut self, tuples: &[u8], rows: u64) {
        self.buf.extend_from_slice(tuples);
        self.rows += rows;
    }

    /// The tuples encoded so far, without the header, for an encoder nothing was handed out
    /// of yet: a batch encoded whole before it is known how it will be sent (bound as arrays,
    /// or copied through [`extend_encoded`](Encoder::extend_encoded)).
    pub(crate) fn into_tuples(mut self) -> Bytes {
        debug_assert_eq!(self.bytes, 0, "a chunk was handed out already");
        let _header = self.buf.split_to(HEADER_LEN.min(self.buf.len()));
        self.buf.freeze()
    }

    /// Whether a chunk is ready: the buffer holds at least `flush_bytes`.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.buf.len() >= self.flush_bytes
    }

    /// Hands out what is buffered. Call [`reclaim`](Encoder::reclaim) once the chunk has been
    /// handed on, so the buffer's allocation is reused when the chunk is already released.
    pub fn take_chunk(&mut self) -> Bytes {
        let chunk = self.buf.split().freeze();
        self.bytes += chunk.len() as u64;
        chunk
    }

    /// Makes room for the next chunk (reusing the allocation if the last chunk is gone).
    pub fn reclaim(&mut self) {
        self.buf.reserve(self.flush_bytes + self.flush_bytes / 4);
    }

    /// Writes the trailer and hands out the last chunk.
    pub fn finish(&mut self) -> Bytes {
        write_trailer(&mut self.buf);
        let chunk = self.buf.split().freeze();
        self.bytes += chunk.len() as u64;
        chunk
    }

    /// Rows encoded so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes handed out so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Bytes encoded so far: handed out, and still buffered.
    pub fn encoded_bytes(&self) -> u64 {
        self.bytes + self.buf.len() as u64
    }
}
