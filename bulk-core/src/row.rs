//! The [`CopyRow`] trait that `#[derive(CopyRow)]` implements, and column metadata.

use crate::codec::{DecodeError, EncodeError};
use crate::server::ServerVersion;
use bytes::BytesMut;
use postgres_types::Type;

/// One copied field of a [`CopyRow`] struct and the column it maps to.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// The column's name in PostgreSQL (the field name, or its `#[copy(rename = "..")]`).
    pub name: &'static str,
    /// The Rust field's name.
    pub field: &'static str,
    /// The Rust field's type as written in the struct, for error messages.
    pub rust_type: &'static str,
    /// Whether the field is marked `#[copy(key)]` (part of the conflict key for upserts).
    pub key: bool,
    /// Whether the field is marked `#[copy(default)]`: when a `copy_out` query does not return
    /// the column, the field is `Default::default()` instead of a mismatch.
    pub default: bool,
    /// Whether the field's type can be written into a column of the given type.
    pub accepts_encode: fn(&Type) -> bool,
}

/// A struct whose values can be written with binary `COPY .. FROM STDIN`.
///
/// Implement it with `#[derive(CopyRow)]`; the methods are an implementation detail of the
/// derive and of [`Bulk`](crate::Bulk). Fields marked `#[copy(skip)]` are not columns.
pub trait CopyRow {
    /// The default target table as written in `#[copy(table = "..")]` (possibly
    /// schema-qualified, unquoted), or the struct name in snake_case.
    const TABLE: &'static str;

    /// The copied fields, in struct order.
    const COLUMNS: &'static [Column];

    /// Writes this row's fields, one per entry of `COLUMNS`, each as its `int32` length and
    /// bytes (the caller writes the tuple's `int16` field count, `COLUMNS.len()`).
    /// `types[i]` is the PostgreSQL type of `COLUMNS[i]`'s column, as checked by the plan.
    ///
    /// On failure returns the index into `COLUMNS` of the field that failed; the buffer may then
    /// hold a partial tuple, which the caller discards.
    fn encode_row(&self, types: &[Type], buf: &mut BytesMut) -> Result<(), (usize, EncodeError)>;
}

impl<T: CopyRow + ?Sized> CopyRow for &T {
    const TABLE: &'static str = T::TABLE;
    const COLUMNS: &'static [Column] = T::COLUMNS;

    #[inline]
    fn encode_row(&self, types: &[Type], buf: &mut BytesMut) -> Result<(), (usize, EncodeError)> {
        (**self).encode_row(types, buf)
    }
}

impl<T: CopyRow + ?Sized> CopyRow for Box<T> {
    const TABLE: &'static str = T::TABLE;
    const COLUMNS: &'static [Column] = T::COLUMNS;

    #[inline]
    fn encode_row(&self, types: &[Type], buf: &mut BytesMut) -> Result<(), (usize, EncodeError)> {
        (**self).encode_row(types, buf)
    }
}

/// The fields of one binary COPY tuple, as handed to [`FromCopyRow::decode_row`].
///
/// `get(i)` returns the raw bytes of the column that maps to `COLUMNS[i]` (`None` for NULL).
#[derive(Debug, Clone, Copy)]
pub struct RawRow<'a> {
    buf: &'a [u8],
    /// Per field: (offset into `buf`, length or -1 for NULL).
    fields: &'a [(u32, i32)],
}

impl<'a> RawRow<'a> {
    /// A row over `buf` with per-field `(offset, length)` pairs; a negative length is NULL.
    /// Offsets and lengths must lie within `buf` (the tuple reader guarantees it).
    pub fn new(buf: &'a [u8], fields: &'a [(u32, i32)]) -> Self {
        RawRow { buf, fields }
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether the row has no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The raw bytes of field `i`, or `None` if it is NULL.
    ///
    /// # Panics
    /// If `i` is out of range (generated code only asks for its own fields).
    #[inline]
    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        let (off, len) = self.fields[i];
        let len = usize::try_from(len).ok()?;
        let off = off as usize;
        Some(&self.buf[off..off + len])
    }

    /// Whether field `i` has no column in the query at all (a `#[copy(default)]` field the
    /// query does not return), as opposed to a NULL value.
    ///
    /// # Panics
    /// If `i` is out of range.
    #[inline]
    pub fn is_absent(&self, i: usize) -> bool {
        self.fields[i].1 == ABSENT
    }

    /// The `len` fields starting at `start`, as a row of their own: what a
    /// `#[copy(flatten)]` field's own `decode_row` reads.
    ///
    /// # Panics
    /// If the range is out of bounds.
    #[inline]
    #[must_use]
    pub fn columns(&self, start: usize, len: usize) -> RawRow<'a> {
        RawRow {
            buf: self.buf,
            fields: &self.fields[start..start + len],
        }
    }
}

/// The length a field slot holds when its column is absent from the query (NULL is `-1`).
pub(crate) const ABSENT: i32 = i32::MIN;

/// `COLUMNS` of a struct with `#[copy(flatten)]` fields: its own entries and each flattened
/// struct's, in field order, as one array (`N` is their total length).
///
/// # Panics
/// At compile time (the derive calls it in a `const`), if the parts do not add up to `N`.
#[doc(hidden)]
pub const fn concat_columns<const N: usize>(parts: &[&[Column]]) -> [Column; N] {
    const FILL: Column = Column {
        name: "",
        field: "",
        rust_type: "",
        key: false,
        default: false,
        accepts_encode: accepts_nothing,
    };
    concat(parts, FILL)
}

/// `ACCEPTS_DECODE` of a struct with `#[copy(flatten)]` fields, built as [`concat_columns`]
/// builds `COLUMNS`.
#[doc(hidden)]
pub const fn concat_accepts<const N: usize>(parts: &[&[Accepts]]) -> [Accepts; N] {
    concat(parts, accepts_nothing)
}

/// Whether a field's codec takes a column of the given type.
type Accepts = fn(&Type) -> bool;

fn accepts_nothing(_: &Type) -> bool {
    false
}

/// The elements of `parts`, in order, as one array of exactly `N`.
const fn concat<T: Copy, const N: usize>(parts: &[&[T]], fill: T) -> [T; N] {
    let mut out = [fill; N];
    let mut at = 0;
    let mut p = 0;
    while p < parts.len() {
        let part = parts[p];
        let mut i = 0;
        while i < part.len() {
            assert!(at < N, "flattened columns do not add up");
            out[at] = part[i];
            at += 1;
            i += 1;
        }
        p += 1;
    }
    assert!(at == N, "flattened columns do not add up");
    out
}

/// A struct that can be read from binary `COPY .. TO STDOUT`, field by field.
///
/// `#[derive(CopyRow)]` implements it for structs without lifetime parameters. Columns are
/// matched to fields by name; `#[copy(skip)]` fields are filled with `Default::default()`.
pub trait FromCopyRow: CopyRow + Sized {
    /// Per entry of [`CopyRow::COLUMNS`]: whether the field's type can be read from a column of
    /// the given type.
    const ACCEPTS_DECODE: &'static [fn(&Type) -> bool];

    /// Builds a value from one tuple. `row.get(i)` and `types[i]` belong to `COLUMNS[i]`.
    ///
    /// On failure returns the index into `COLUMNS` of the field that failed.
    fn decode_row(types: &[Type], row: RawRow<'_>) -> Result<Self, (usize, DecodeError)>;
}

/// Encodes `row` as one tuple at the end of `buf`, and checks it against what `server` takes
/// (numeric infinities before PostgreSQL 14). On failure the partial tuple is removed from
/// `buf`, and the error names the input row `index`, the field and its column.
#[inline]
pub(crate) fn encode_tuple<T: CopyRow + ?Sized>(
    row: &T,
    types: &[Type],
    server: ServerVersion,
    buf: &mut BytesMut,
    index: u64,
) -> Result<(), crate::Error> {
    let start = buf.len();
    crate::format::write_tuple(row, types, buf)
        .and_then(|()| server.check_tuple(types, &buf[start..]))
        .map_err(|(field, e)| {
            buf.truncate(start);
            let (field, column) = field_names(T::COLUMNS, field);
            crate::Error::encode(index, field, column, e)
        })
}

/// Decodes one tuple into `T`; the error names the row `index`, the field and its column.
#[inline]
pub(crate) fn decode_tuple<T: FromCopyRow>(
    raw: RawRow<'_>,
    types: &[Type],
    index: u64,
) -> Result<T, crate::Error> {
    T::decode_row(types, raw).map_err(|(field, e)| {
        let (field, column) = field_names(T::COLUMNS, field);
        crate::Error::decode(index, field, column, e)
    })
}

/// The field and column names of `columns[i]`, for an error.
fn field_names(columns: &[Column], i: usize) -> (&'static str, &'static str) {
    columns.get(i).map_or(("?", "?"), |c| (c.field, c.name))
}
