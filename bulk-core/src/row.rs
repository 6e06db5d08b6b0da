//! The [`CopyRow`] trait that `#[derive(CopyRow)]` implements, and column metadata.

use crate::codec::{DecodeError, EncodeError};
use bytes::BytesMut;
use postgres_types::Type;

/// One copied field of a [`CopyRow`] struct and the column it maps to.
///
/// Listed for a row type by [`columns_of`]; built by `#[derive(CopyRow)]`.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub(crate) name: &'static str,
    pub(crate) field: &'static str,
    pub(crate) rust_type: &'static str,
    pub(crate) key: bool,
    pub(crate) default: bool,
    pub(crate) accepts_encode: fn(&Type) -> bool,
}

impl Column {
    /// Used by the code `#[derive(CopyRow)]` generates. Not public API.
    #[doc(hidden)]
    #[must_use]
    pub const fn __new(
        name: &'static str,
        field: &'static str,
        rust_type: &'static str,
        key: bool,
        default: bool,
        accepts_encode: fn(&Type) -> bool,
    ) -> Self {
        Column {
            name,
            field,
            rust_type,
            key,
            default,
            accepts_encode,
        }
    }

    /// The column's name in PostgreSQL (the field name, or its `#[copy(rename = "..")]`).
    ///
    /// ```
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// #[derive(CopyRow)]
    /// struct Item {
    ///     #[copy(key, rename = "item_id")]
    ///     id: i64,
    ///     label: Option<String>,
    /// }
    ///
    /// let id = pgbulk::columns_of::<Item>()[0];
    /// assert_eq!((id.name(), id.field(), id.rust_type()), ("item_id", "id", "i64"));
    /// assert!(id.is_key() && !id.has_default());
    /// ```
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The Rust field's name.
    pub const fn field(&self) -> &'static str {
        self.field
    }

    /// The Rust field's type as written in the struct, for error messages.
    pub const fn rust_type(&self) -> &'static str {
        self.rust_type
    }

    /// Whether the field is marked `#[copy(key)]` (part of the conflict key for upserts).
    pub const fn is_key(&self) -> bool {
        self.key
    }

    /// Whether the field is marked `#[copy(default)]`: when a `copy_out` query does not return
    /// the column, the field is `Default::default()` instead of a mismatch.
    pub const fn has_default(&self) -> bool {
        self.default
    }

    /// Whether the field's type can be written into a column of PostgreSQL type `ty`.
    ///
    /// ```
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use postgres_types::Type;
    ///
    /// #[derive(CopyRow)]
    /// struct Item {
    ///     id: i64,
    /// }
    ///
    /// let id = pgbulk::columns_of::<Item>()[0];
    /// assert!(id.accepts(&Type::INT8) && !id.accepts(&Type::TEXT));
    /// ```
    pub fn accepts(&self, ty: &Type) -> bool {
        (self.accepts_encode)(ty)
    }
}

/// The default target table of a row type, as written in `#[copy(table = "..")]` (possibly
/// schema-qualified, unquoted), or the struct name in snake_case.
///
/// A free function rather than an associated const, so that it cannot clash with an item of
/// the same name from another trait the type implements.
///
/// ```
/// # extern crate bulk_core as pgbulk;
/// # use bulk_derive::CopyRow;
/// #[derive(CopyRow)]
/// #[copy(table = "app.users")]
/// struct User {
///     id: i64,
/// }
///
/// #[derive(CopyRow)]
/// struct OrderLine {
///     id: i64,
/// }
///
/// assert_eq!(pgbulk::table_of::<User>(), "app.users");
/// assert_eq!(pgbulk::table_of::<OrderLine>(), "order_line");
/// ```
pub const fn table_of<T: CopyRow + ?Sized>() -> &'static str {
    T::__PGBULK_TABLE
}

/// The copied fields of a row type and their columns, in struct order (flattened structs'
/// fields in place; `#[copy(skip)]` fields left out).
///
/// ```
/// # extern crate bulk_core as pgbulk;
/// # use bulk_derive::CopyRow;
/// #[derive(CopyRow)]
/// struct User {
///     #[copy(key)]
///     id: i64,
///     #[copy(rename = "display_name")]
///     name: String,
///     #[copy(skip)]
///     cached: Option<u32>,
/// }
///
/// let columns: Vec<_> = pgbulk::columns_of::<User>()
///     .iter()
///     .map(|c| (c.name(), c.is_key()))
///     .collect();
/// assert_eq!(columns, [("id", true), ("display_name", false)]);
/// ```
pub const fn columns_of<T: CopyRow + ?Sized>() -> &'static [Column] {
    T::__PGBULK_COLUMNS
}

/// A struct whose values can be written with binary `COPY .. FROM STDIN`.
///
/// Implement it with `#[derive(CopyRow)]`; its items are an implementation detail of the
/// derive and of [`Bulk`](crate::Bulk) (hidden, and named so they cannot clash with your own
/// traits' items). [`table_of`] and [`columns_of`] read what the derive recorded. Fields marked
/// `#[copy(skip)]` are not columns.
pub trait CopyRow {
    /// The default target table (see [`table_of`]).
    #[doc(hidden)]
    const __PGBULK_TABLE: &'static str;

    /// The copied fields, in struct order (see [`columns_of`]).
    #[doc(hidden)]
    const __PGBULK_COLUMNS: &'static [Column];

    /// Writes this row's fields, each as its `int32` length and bytes (the tuple's framing,
    /// field count included, is the engine's). `types[i]` is the PostgreSQL type of
    /// `__PGBULK_COLUMNS[i]`'s column, as checked by the plan.
    ///
    /// On failure returns the index into `__PGBULK_COLUMNS` of the field that failed; the
    /// buffer may then hold a partial tuple, which the caller discards.
    #[doc(hidden)]
    fn encode_row(&self, types: &[Type], buf: &mut BytesMut) -> Result<(), (usize, EncodeError)>;
}

impl<T: CopyRow + ?Sized> CopyRow for &T {
    const __PGBULK_TABLE: &'static str = T::__PGBULK_TABLE;
    const __PGBULK_COLUMNS: &'static [Column] = T::__PGBULK_COLUMNS;

    #[inline]
    fn encode_row(&self, types: &[Type], buf: &mut BytesMut) -> Result<(), (usize, EncodeError)> {
        (**self).encode_row(types, buf)
    }
}

impl<T: CopyRow + ?Sized> CopyRow for Box<T> {
    const __PGBULK_TABLE: &'static str = T::__PGBULK_TABLE;
    const __PGBULK_COLUMNS: &'static [Column] = T::__PGBULK_COLUMNS;

    #[inline]
    fn encode_row(&self, types: &[Type], buf: &mut BytesMut) -> Result<(), (usize, EncodeError)> {
        (**self).encode_row(types, buf)
    }
}

/// Where a derived [`FromCopyRow::decode_row`] reads a tuple's fields from, in field order: one
/// call to [`next`](Fields::next) per copied field (a `#[copy(flatten)]` field's struct reads
/// its own fields from the same source), preceded by [`absent`](Fields::absent) for a
/// `#[copy(default)]` field.
///
/// Two sources exist, and the generated code is the same for both: [`RawRow`] (the fields'
/// positions were found first, for data whose columns are not the row type's fields in order)
/// and the engine's sequential reader (the usual read: the columns are the fields in order, so
/// each field's bytes are read straight off the tuple).
#[doc(hidden)]
pub trait Fields<'a> {
    /// The next field's bytes, or `None` for SQL NULL.
    fn next(&mut self) -> Option<&'a [u8]>;

    /// Whether the next field has no column in the query at all (a `#[copy(default)]` field
    /// the query does not return); if so it is passed over.
    fn absent(&mut self) -> bool;
}

/// The fields of one binary COPY tuple whose positions were found first, as handed to
/// [`FromCopyRow::decode_row`] field by field.
///
/// Field `i` is `(offset, length)` into the tuple's bytes, length `-1` for NULL.
#[derive(Debug, Clone, Copy)]
pub struct RawRow<'a> {
    buf: &'a [u8],
    /// Per field: (offset into `buf`, length or -1 for NULL).
    fields: &'a [(u32, i32)],
    /// The field [`Fields::next`] reads next.
    at: usize,
}

impl<'a> RawRow<'a> {
    /// A row over `buf` with per-field `(offset, length)` pairs; a negative length is NULL.
    /// Offsets and lengths must lie within `buf` (the tuple reader guarantees it).
    #[doc(hidden)]
    pub fn new(buf: &'a [u8], fields: &'a [(u32, i32)]) -> Self {
        RawRow { buf, fields, at: 0 }
    }

    /// The raw bytes of field `i`, or `None` if it is NULL (or absent).
    ///
    /// # Panics
    /// If `i` is out of range.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        let (off, len) = self.fields[i];
        let len = usize::try_from(len).ok()?;
        let off = off as usize;
        Some(&self.buf[off..off + len])
    }
}

impl<'a> Fields<'a> for RawRow<'a> {
    /// # Panics
    /// Past the last field (generated code reads only its own fields).
    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        let field = self.get(self.at);
        self.at += 1;
        field
    }

    #[inline]
    fn absent(&mut self) -> bool {
        let absent = self.fields[self.at].1 == ABSENT;
        self.at += usize::from(absent);
        absent
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
    const FILL: Column = Column::__new("", "", "", false, false, accepts_nothing);
    concat(parts, FILL)
}

/// `__PGBULK_ACCEPTS_DECODE` of a struct with `#[copy(flatten)]` fields, built as [`concat_columns`]
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
/// `#[derive(CopyRow)]` implements it for structs without lifetime parameters (a struct with
/// one lifetime parameter is read borrowing instead: [`FromCopyRowRef`]). Columns are matched
/// to fields by name; `#[copy(skip)]` fields are filled with `Default::default()`.
pub trait FromCopyRow: FromCopyRowRef + Sized {
    /// Builds a value from one tuple, reading field `i` (of `COLUMNS`, in order) from `row`;
    /// `types[i]` is the type of its column.
    ///
    /// On failure returns the index into `COLUMNS` of the field that failed.
    #[doc(hidden)]
    fn decode_row<'a, F: Fields<'a>>(
        types: &[Type],
        row: &mut F,
    ) -> Result<Self, (usize, DecodeError)>;
}

/// A row type that can be read with its text and byte fields borrowed from the received COPY
/// data, for [`Bulk::copy_out_each`](crate::Bulk::copy_out_each) and its siblings: each row is
/// handed to a closure and lives only for that call, so nothing is copied out of the data or
/// allocated for a `&str` or `&[u8]` field.
///
/// `#[derive(CopyRow)]` implements it:
/// - on a struct with one lifetime parameter `'r`, whose fields may be `&'r str` (any text
///   column), `&'r [u8]` (`bytea`), `Option`s of those, or any owned type the derive reads
///   (`Row<'x>` is the struct with `'r` replaced by `'x`);
/// - on every struct it implements [`FromCopyRow`] for (`Row<'x>` is the struct itself), so the
///   same calls take owned rows too.
///
/// ```
/// # extern crate bulk_core as pgbulk;
/// # use bulk_derive::CopyRow;
/// #[derive(CopyRow)]
/// #[copy(table = "events")]
/// struct EventRef<'r> {
///     id: i64,
///     kind: &'r str,
///     payload: Option<&'r [u8]>,
/// }
/// # fn takes<T: pgbulk::FromCopyRowRef>() {}
/// # takes::<EventRef<'static>>();
/// ```
pub trait FromCopyRowRef: CopyRow {
    /// The row as read from data that lives for `'r`.
    type Row<'r>;

    /// Per entry of [`columns_of`]: whether the field's type can be read from a column of the
    /// given type.
    #[doc(hidden)]
    const __PGBULK_ACCEPTS_DECODE: &'static [fn(&Type) -> bool];

    /// Builds a row borrowing from one tuple's bytes; as [`FromCopyRow::decode_row`].
    #[doc(hidden)]
    fn decode_row_ref<'r, F: Fields<'r>>(
        types: &[Type],
        row: &mut F,
    ) -> Result<Self::Row<'r>, (usize, DecodeError)>;
}

/// The error for field `field` (an index into `T::__PGBULK_COLUMNS`) of input row `index` that could
/// not be encoded.
#[cold]
pub(crate) fn encode_error<T: CopyRow + ?Sized>(
    index: u64,
    field: usize,
    e: EncodeError,
) -> crate::Error {
    let (field, column) = field_names(T::__PGBULK_COLUMNS, field);
    crate::Error::encode(index, field, column, e)
}

/// Decodes one tuple into `T`; the error names the row `index`, the field and its column.
#[inline]
pub(crate) fn decode_tuple<'a, T: FromCopyRow>(
    raw: &mut impl Fields<'a>,
    types: &[Type],
    index: u64,
) -> Result<T, crate::Error> {
    T::decode_row(types, raw).map_err(|(field, e)| decode_error::<T>(index, field, e))
}

/// The error for field `field` (an index into `T::__PGBULK_COLUMNS`) of row `index` that
/// could not be decoded.
#[cold]
pub(crate) fn decode_error<T: CopyRow + ?Sized>(
    index: u64,
    field: usize,
    e: DecodeError,
) -> crate::Error {
    let (field, column) = field_names(T::__PGBULK_COLUMNS, field);
    crate::Error::decode(index, field, column, e)
}

/// The field and column names of `columns[i]`, for an error.
fn field_names(columns: &[Column], i: usize) -> (&'static str, &'static str) {
    columns.get(i).map_or(("?", "?"), |c| (c.field, c.name))
}
