//! Field encoders and decoders, one file per type family.
//!
//! Every supported Rust type implements [`Encode`] (for `copy_in`) and, where it can own its
//! value, [`Decode`] (for `copy_out`). A codec writes or reads one field of a binary COPY tuple:
//! an `int32` length (`-1` for NULL) followed by the value in the type's `*_send` layout.
//!
//! Codecs never check the PostgreSQL type per value: the plan asked every field's
//! [`Encode::accepts`] / [`Decode::accepts`] once, before the first byte was sent, and the codec
//! may rely on that (it still must not panic when the assumption does not hold).

// Helpers shared by the codecs of optional crates (dates, numeric, json) go unused in builds
// without them; the default build (every codec) still reports dead code.
#![cfg_attr(
    not(all(
        feature = "chrono",
        feature = "uuid",
        feature = "rust_decimal",
        feature = "serde_json"
    )),
    allow(dead_code, unused_imports)
)]

use bytes::BytesMut;
use postgres_types::{Kind, Type};

/// Implements a codec trait for `&P`, `Box<P>` and `Cow<P>` with the given items, which hand
/// every call to the pointee `P`: each trait is written once for values and works through any
/// pointer. (Declared before the submodules, so `array` can use it too.)
macro_rules! for_pointers {
    (impl $trait:ident { $($item:item)* }) => {
        impl<P: $trait + ?Sized> $trait for &P {
            $($item)*
        }

        impl<P: $trait + ?Sized> $trait for Box<P> {
            $($item)*
        }

        impl<P: $trait + ToOwned + ?Sized> $trait for std::borrow::Cow<'_, P> {
            $($item)*
        }
    };
}

mod array;
mod bool;
mod bytea;
mod convert;
#[cfg(any(feature = "chrono", feature = "time"))]
mod datetime;
mod float;
mod int;
mod interval;
#[cfg(feature = "serde_json")]
mod json;
mod network;
#[cfg(feature = "rust_decimal")]
mod numeric;
mod option;
mod range;
mod special;
mod text;
#[cfg(feature = "chrono")]
mod time;
#[cfg(feature = "time")]
mod time_crate;
mod to_sql;
#[cfg(feature = "uuid")]
mod uuid;

pub(crate) use self::array::array_type_of;
pub use self::array::{DecodeElement, ElementReader, EncodeElement};
// Defined in `error` (a leaf module: it depends on nothing of the codecs); public as
// `pgbulk::EncodeError` / `pgbulk::DecodeError`.
pub use self::convert::TryFromField;
pub use self::interval::Interval;
#[cfg(feature = "serde_json")]
pub use self::json::{Json, JsonField};
pub use self::network::Inet;
#[cfg(feature = "rust_decimal")]
pub use self::numeric::PgNumeric;
pub use self::range::PgRange;
pub use self::special::{Infinite, Infinity};
pub use self::to_sql::{ToSqlField, ViaToSql};
pub(crate) use crate::error::{DecodeError, EncodeError};

#[cfg(all(
    test,
    feature = "chrono",
    feature = "uuid",
    feature = "rust_decimal",
    feature = "serde_json"
))]
mod tests;

/// Writes a value of this Rust type as one field of a binary COPY tuple.
///
/// Unsized types (`str`, `[u8]`, `[T]`) implement it too, so `&str`, `Box<str>`, `&[T]` and
/// friends all encode through one impl each.
///
/// # Your own type
///
/// A newtype usually hands each call to the type it wraps; its fields then derive as any
/// other (with `#[derive(CopyRow)]`, a field `price: Cents` reads and writes a `bigint`):
///
/// ```
/// use bulk_core::{Decode, DecodeError, Encode, EncodeError};
/// use bytes::BytesMut;
/// use postgres_types::Type;
///
/// /// An amount in cents, stored as `bigint`.
/// #[derive(Debug, PartialEq)]
/// struct Cents(i64);
///
/// impl Encode for Cents {
///     fn accepts(ty: &Type) -> bool {
///         *ty == Type::INT8
///     }
///
///     fn encode_field(&self, ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
///         self.0.encode_field(ty, buf)
///     }
/// }
///
/// impl Decode for Cents {
///     fn accepts(ty: &Type) -> bool {
///         *ty == Type::INT8
///     }
///
///     fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
///         i64::decode(ty, raw).map(Cents)
///     }
/// }
///
/// let mut buf = BytesMut::new();
/// Cents(1999).encode_field(&Type::INT8, &mut buf).unwrap();
/// // One field: the int32 length, then the value.
/// assert_eq!(&buf[..4], &8_i32.to_be_bytes());
/// assert_eq!(Cents::decode(&Type::INT8, Some(&buf[4..])).unwrap(), Cents(1999));
/// ```
#[diagnostic::on_unimplemented(
    message = "pgbulk cannot write `{Self}` to a PostgreSQL column: `{Self}` does not implement `Encode`",
    label = "no pgbulk codec for `{Self}`",
    note = "for a type with a postgres-types `ToSql` impl, mark the field `#[copy(to_sql)]`",
    note = "for a serde type stored as json or jsonb, mark the field `#[copy(json)]`",
    note = "to go through a type pgbulk knows, mark the field `#[copy(try_from = \"T\")]` (e.g. `T` = `i64`)",
    note = "or implement `pgbulk::Encode` for it"
)]
pub trait Encode {
    /// Whether values of this type can be written into a column of PostgreSQL type `ty`.
    fn accepts(ty: &Type) -> bool;

    /// Writes the field: its `int32` length (`-1` for NULL), then the value's bytes.
    ///
    /// `ty` is the column's type, already accepted by [`Encode::accepts`].
    fn encode_field(&self, ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError>;

    /// Whether this value is SQL NULL (only `Option::None` is). Arrays use it to set their
    /// has-null flag before writing the elements.
    #[inline]
    fn is_null(&self) -> bool {
        false
    }
}

/// Reads one field of a binary COPY tuple into this Rust type.
#[diagnostic::on_unimplemented(
    message = "pgbulk cannot read `{Self}` from a PostgreSQL column: `{Self}` does not implement `Decode`",
    label = "no pgbulk codec for `{Self}`",
    note = "for a type with a postgres-types `FromSql` impl, mark the field `#[copy(to_sql)]`",
    note = "for a serde type stored as json or jsonb, mark the field `#[copy(json)]`",
    note = "to go through a type pgbulk knows, mark the field `#[copy(try_from = \"T\")]` (e.g. `T` = `i64`)",
    note = "or implement `pgbulk::Decode` for it"
)]
pub trait Decode: Sized {
    /// Whether a column of PostgreSQL type `ty` can be read into this type.
    fn accepts(ty: &Type) -> bool;

    /// Reads the field's value; `raw` is `None` for SQL NULL and otherwise exactly the value's
    /// bytes (the length prefix already removed). `ty` is the column's type.
    fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError>;
}

/// A field type of a borrowing row ([`FromCopyRowRef`](crate::FromCopyRowRef)): every
/// [`Decode`] type (owned, as usual), plus `&'r str` and `&'r [u8]` (and `Option`s of them),
/// which borrow the value's bytes from the received data instead of copying them.
///
/// `&'r str` reads the text types (as `String` does; for `jsonb`, the JSON text after its
/// version byte), `&'r [u8]` reads `bytea`.
pub trait DecodeRef<'r>: Sized {
    /// Whether a column of PostgreSQL type `ty` can be read into this type.
    fn accepts(ty: &Type) -> bool;

    /// Reads the field's value, as [`Decode::decode`], possibly borrowing from `raw`.
    fn decode_ref(ty: &Type, raw: Option<&'r [u8]>) -> Result<Self, DecodeError>;
}

impl<'r, T: Decode> DecodeRef<'r> for T {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        T::accepts(ty)
    }

    #[inline]
    fn decode_ref(ty: &Type, raw: Option<&'r [u8]>) -> Result<Self, DecodeError> {
        T::decode(ty, raw)
    }
}

/// The type a domain is based on, through any number of domains; `ty` itself otherwise.
///
/// Binary COPY reads and writes a domain column with its base type's `send`/`recv`, so a
/// domain column is handled by the base type's codec.
pub fn base_type(ty: &Type) -> &Type {
    let mut ty = ty;
    while let Kind::Domain(base) = ty.kind() {
        ty = base;
    }
    ty
}

/// The type a codec should be handed for a column of type `ty`: `ty` itself when the codec
/// accepts it (a `ToSql` type may accept the domain by name), otherwise the first base type
/// (through domains) it accepts; `None` when it accepts none of them.
pub fn accepted_type(ty: &Type, accepts: impl Fn(&Type) -> bool) -> Option<&Type> {
    let mut ty = ty;
    loop {
        if accepts(ty) {
            return Some(ty);
        }
        match ty.kind() {
            Kind::Domain(base) => ty = base,
            _ => return None,
        }
    }
}

/// Appends `bytes` (a value's big-endian bytes, `v.to_be_bytes()`) to `buf`.
///
/// Use this rather than `BufMut::put_i32` and friends in an [`Encode`] impl: `bytes`'
/// `put_slice` for `BytesMut` is not `#[inline]`, so each `put_*` is a call into another crate
/// and a `memcpy` call, which made up most of the instructions of encoding a narrow row. This
/// is one capacity check and a fixed-size copy, inlined.
#[inline]
pub fn put_be<const N: usize>(buf: &mut BytesMut, bytes: [u8; N]) {
    buf.extend_from_slice(&bytes);
}

/// Defines a writer for a fixed-width field: the `int32` length and the value's bytes as one
/// [`put_be`] (one capacity check and one copy instead of two of each).
macro_rules! put_field {
    ($name:ident, $n:literal) => {
        #[doc = concat!("Writes a ", stringify!($n), "-byte field: length ", stringify!($n), ", then `value`.")]
        #[inline]
        pub(crate) fn $name(buf: &mut BytesMut, value: [u8; $n]) {
            let mut field = [0u8; 4 + $n];
            field[..4].copy_from_slice(&($n as i32).to_be_bytes());
            field[4..].copy_from_slice(&value);
            put_be(buf, field);
        }
    };
}

put_field!(put_field1, 1);
put_field!(put_field2, 2);
put_field!(put_field4, 4);
put_field!(put_field8, 8);
put_field!(put_field16, 16);

/// Writes a length prefix, checking that it fits in an `int32`.
#[inline]
pub fn put_len(buf: &mut BytesMut, len: usize) -> Result<(), EncodeError> {
    let len = i32::try_from(len).map_err(|_| EncodeError::TooLarge { len })?;
    put_be(buf, i32::to_be_bytes(len));
    Ok(())
}

/// Writes a NULL field (length `-1`).
#[inline]
pub fn put_null(buf: &mut BytesMut) {
    put_be(buf, i32::to_be_bytes(-1));
}

/// Returns the bytes of a non-NULL field, or `DecodeError::UnexpectedNull`.
#[inline]
pub fn non_null(raw: Option<&[u8]>) -> Result<&[u8], DecodeError> {
    // A match, not `ok_or`: `ok_or` builds the error value eagerly and drops it on every
    // non-NULL field (a call to `drop_in_place::<DecodeError>` per value in the profile).
    match raw {
        Some(raw) => Ok(raw),
        None => Err(DecodeError::UnexpectedNull),
    }
}

/// Reserves a length prefix to be filled in by [`finish_len`] once the value is written;
/// returns the position of the prefix. For variable-length values whose size is not known
/// before writing (arrays, numeric); fixed-width values write their length directly.
#[inline]
pub fn begin_len(buf: &mut BytesMut) -> usize {
    let at = buf.len();
    put_be(buf, i32::to_be_bytes(0));
    at
}

/// Fills in the length prefix reserved by [`begin_len`] at `at`.
#[inline]
pub fn finish_len(buf: &mut BytesMut, at: usize) -> Result<(), EncodeError> {
    let len = buf.len() - at - 4;
    let len = i32::try_from(len).map_err(|_| EncodeError::TooLarge { len })?;
    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// Takes a fixed-width value's bytes, or `DecodeError::Invalid` naming the PostgreSQL type.
#[inline]
pub(crate) fn fixed<const N: usize>(raw: &[u8], pg_type: &str) -> Result<[u8; N], DecodeError> {
    raw.try_into().map_err(|_| {
        DecodeError::Invalid(format!(
            "{pg_type} value must be {N} bytes, got {}",
            raw.len()
        ))
    })
}

/// A cursor over a field's bytes whose reads fail with `DecodeError::Invalid` instead of
/// panicking when the bytes run out.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    /// What is being read, for error messages (`"numeric"`, `"array"`).
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// Starts reading `buf`, a value of PostgreSQL type `what`.
    #[inline]
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, what }
    }

    /// Bytes not read yet.
    #[inline]
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Takes the next `n` bytes.
    #[inline]
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.buf.len() {
            return Err(DecodeError::Invalid(format!(
                "{} value is truncated: needed {n} more bytes, {} left",
                self.what,
                self.buf.len()
            )));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Takes the next `N` bytes as an array.
    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N)?;
        // `take` returned exactly N bytes.
        bytes
            .try_into()
            .map_err(|_| DecodeError::invalid("internal: short read"))
    }

    /// Reads a big-endian `int16`.
    #[inline]
    pub(crate) fn i16(&mut self) -> Result<i16, DecodeError> {
        self.array().map(i16::from_be_bytes)
    }

    /// Reads a big-endian `uint16`.
    #[inline]
    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        self.array().map(u16::from_be_bytes)
    }

    /// Reads a big-endian `int32`.
    #[inline]
    pub(crate) fn i32(&mut self) -> Result<i32, DecodeError> {
        self.array().map(i32::from_be_bytes)
    }

    /// Reads a big-endian `uint32` (an OID).
    #[inline]
    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array().map(u32::from_be_bytes)
    }

    /// Fails unless every byte was read.
    #[inline]
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Invalid(format!(
                "{} value has {} unexpected trailing bytes",
                self.what,
                self.buf.len()
            )))
        }
    }
}

for_pointers! {
    impl Encode {
        #[inline]
        fn accepts(ty: &Type) -> bool {
            P::accepts(ty)
        }

        #[inline]
        fn encode_field(&self, ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
            (**self).encode_field(ty, buf)
        }

        #[inline]
        fn is_null(&self) -> bool {
            (**self).is_null()
        }
    }
}
