//! Codec: arrays of 1 to 6 dimensions, in `array_send` layout:
//! `int32 ndim, int32 has-null flag, uint32 element OID`, then per dimension
//! `int32 length, int32 lower bound`, then every element in row-major order as a field
//! (`int32` length or `-1`, then its bytes). An empty array has `ndim = 0` and no dimensions.
//!
//! `Vec<T>`/`[T]` of a scalar `T` is 1-D; `Vec<Vec<T>>` is 2-D, and so on up to PostgreSQL's
//! limit of 6. Nested input must be rectangular: a ragged one is an encode error, as is one with
//! an empty inner dimension (`[[], []]`, which PostgreSQL would silently store as `{}`). A value
//! with more or fewer dimensions than the Rust type is a decode error, never a flattening.
//!
//! The element OID is taken from the column's type (`Kind::Array(elem)`), never guessed from
//! the Rust type: `text[]` and `varchar[]` differ, and an enum's OID is only known to the
//! server. Elements of a domain type are written with the base type's codec, under the domain's
//! OID. `[u8]`/`Vec<u8>` are bytea, not arrays; `u8` implements neither [`EncodeElement`] nor
//! [`DecodeElement`], which keeps these impls from overlapping.

use super::{
    accepted_type, begin_len, finish_len, non_null, Decode, DecodeError, Encode, EncodeError,
    Reader,
};
use crate::codec::put_be;
use bytes::BytesMut;
use postgres_types::{Kind, Type};

/// PostgreSQL's limit on array dimensions (`MAXDIM`).
pub const MAX_DIMS: usize = 6;

/// The element type of an array column type, if it is one.
#[inline]
fn element_type(ty: &Type) -> Option<&Type> {
    match ty.kind() {
        Kind::Array(elem) => Some(elem),
        _ => None,
    }
}

/// The built-in array type of `elem` (`int8` → `int8[]`), if `elem` is a built-in type that
/// has one (postgres-types knows every built-in type; an enum's, a domain's or a composite's
/// array type is only known to the server).
pub(crate) fn array_type_of(elem: &Type) -> Option<Type> {
    static ARRAYS: std::sync::OnceLock<std::collections::HashMap<u32, Type>> =
        std::sync::OnceLock::new();
    ARRAYS
        .get_or_init(|| {
            // Built-in types have OIDs below 10,000 (PostgreSQL's `FirstGenbkiObjectId`).
            (0..10_000)
                .filter_map(Type::from_oid)
                .filter_map(|t| match t.kind() {
                    // `_int8`, not `int2vector`, whose elements are `int2` too.
                    Kind::Array(e) if t.name() == format!("_{}", e.name()) => {
                        Some((e.oid(), t.clone()))
                    }
                    _ => None,
                })
                .collect()
        })
        .get(&elem.oid())
        .filter(|array| matches!(array.kind(), Kind::Array(e) if e == elem))
        .cloned()
}

/// The OIDs an array of `elem` may carry as its element type: `elem`'s, then its domains' bases.
fn element_oids(elem: &Type) -> impl Iterator<Item = u32> + '_ {
    std::iter::successors(Some(elem), |t| match t.kind() {
        Kind::Domain(base) => Some(base),
        _ => None,
    })
    .map(Type::oid)
}

/// A value that can be an element of an array written with `copy_in`: a scalar (every
/// [`Encode`] type of pgbulk), or a nested `Vec`/slice that is one more dimension.
///
/// To put your own [`Encode`] type into arrays, implement it with the defaults:
/// `impl EncodeElement for MyType {}`.
pub trait EncodeElement: Encode {
    /// How many array dimensions this value spans: 0 for a scalar element, one more than its
    /// element's for a nested `Vec`.
    const NDIM: usize = 0;

    /// Whether this value can be an element (or sub-array) of an array whose element type is
    /// `elem`.
    #[inline]
    fn accepts_element(elem: &Type) -> bool {
        Self::NDIM == 0 && Self::accepts(elem)
    }

    /// Records this value's length in each of its [`NDIM`](Self::NDIM) dimensions into
    /// `dims`, following the first sub-array at each level. Scalars record nothing.
    #[inline]
    fn shape(&self, dims: &mut [usize]) {
        let _ = dims;
    }

    /// Writes the elements, checking that this value has exactly the lengths `dims`; sets
    /// `has_null` when an element is NULL. A scalar writes itself as one field.
    #[inline]
    fn encode_elements(
        &self,
        dims: &[usize],
        elem: &Type,
        buf: &mut BytesMut,
        has_null: &mut bool,
    ) -> Result<(), EncodeError> {
        let _ = dims;
        *has_null |= self.is_null();
        self.encode_field(elem, buf)
    }
}

/// A value that can be an element of an array read with `copy_out`: a scalar (every
/// [`Decode`] type of pgbulk), or a nested `Vec` that is one more dimension.
///
/// To read your own [`Decode`] type from arrays, implement it with the defaults:
/// `impl DecodeElement for MyType {}`.
pub trait DecodeElement: Decode {
    /// How many array dimensions this value spans: 0 for a scalar element, one more than its
    /// element's for a nested `Vec`.
    const NDIM: usize = 0;

    /// Whether this value can be read from an element (or sub-array) of an array whose element
    /// type is `elem`.
    #[inline]
    fn accepts_element(elem: &Type) -> bool {
        Self::NDIM == 0 && Self::accepts(elem)
    }

    /// Reads a value of the lengths `dims` from the array's elements. A scalar reads one
    /// element field. (The default is right for every scalar type.)
    #[doc(hidden)]
    #[inline]
    fn decode_elements(
        dims: &[usize],
        elem: &Type,
        elements: &mut ElementReader<'_>,
    ) -> Result<Self, DecodeError> {
        let _ = dims;
        let (index, raw) = elements.next_field()?;
        Self::decode(elem, raw).map_err(|e| in_element(index, e))
    }
}

/// The elements of an array value being read, one field after another (see
/// [`DecodeElement`]).
#[derive(Debug)]
pub struct ElementReader<'a> {
    reader: Reader<'a>,
    /// Index of the next element, in row-major order.
    index: usize,
}

impl<'a> ElementReader<'a> {
    /// The next element's index and bytes (`None` for NULL).
    pub fn next_field(&mut self) -> Result<(usize, Option<&'a [u8]>), DecodeError> {
        let index = self.index;
        let len = self.reader.i32()?;
        let raw = if len == -1 {
            None
        } else {
            let n = usize::try_from(len).map_err(|_| {
                DecodeError::Invalid(format!("array element {index} has an invalid length {len}"))
            })?;
            Some(self.reader.take(n)?)
        };
        self.index += 1;
        Ok((index, raw))
    }
}

/// Adds the element's index to an element's decode error.
fn in_element(index: usize, e: DecodeError) -> DecodeError {
    match e {
        DecodeError::UnexpectedNull => DecodeError::OutOfRange(format!(
            "array element {index} (0-based) is NULL but the element type cannot hold NULL \
             (use Vec<Option<T>>)"
        )),
        DecodeError::Invalid(m) => DecodeError::Invalid(format!("array element {index}: {m}")),
        DecodeError::OutOfRange(m) => {
            DecodeError::OutOfRange(format!("array element {index}: {m}"))
        }
        other => other,
    }
}

/// The error for a ragged nested `Vec`.
fn ragged(depth: usize, len: usize, expected: usize) -> EncodeError {
    EncodeError::OutOfRange(format!(
        "array is not rectangular: a sub-array at depth {depth} has {len} elements where the \
         first one has {expected}; PostgreSQL arrays must be rectangular"
    ))
}

/// Writes an ARRAY field of `T::NDIM + 1` dimensions in `array_send` layout; lower bounds 1.
fn array_send<T: EncodeElement>(
    elems: &[T],
    ty: &Type,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    let Some(elem) = element_type(ty) else {
        return Err(EncodeError::Other(
            format!("column type {ty} is not an array type").into(),
        ));
    };
    // The element codec gets the domain's base type if that is what it accepts.
    let codec_elem = accepted_type(elem, T::accepts_element).unwrap_or(elem);
    let ndim = T::NDIM + 1;
    if ndim > MAX_DIMS {
        return Err(EncodeError::OutOfRange(format!(
            "array of {ndim} dimensions: PostgreSQL allows at most {MAX_DIMS}"
        )));
    }
    let at = begin_len(buf);
    if elems.is_empty() {
        put_be(buf, i32::to_be_bytes(0)); // ndim
        put_be(buf, i32::to_be_bytes(0)); // has-null flag
        put_be(buf, u32::to_be_bytes(elem.oid()));
        return finish_len(buf, at);
    }
    let mut dims = [0usize; MAX_DIMS];
    elems.shape(&mut dims[..ndim]);
    let dims = &dims[..ndim];
    if let Some(depth) = dims.iter().position(|&d| d == 0) {
        return Err(EncodeError::OutOfRange(format!(
            "array has an empty dimension (at depth {depth}); PostgreSQL would store it as an \
             empty array '{{}}': pass an empty outer Vec instead"
        )));
    }
    // PostgreSQL's own limit (MaxArraySize) is lower still; the server reports it.
    let total = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    if total.and_then(|n| i32::try_from(n).ok()).is_none() {
        return Err(EncodeError::OutOfRange(format!(
            "array of dimensions {dims:?} has too many elements for PostgreSQL"
        )));
    }
    put_be(buf, i32::to_be_bytes(i32::try_from(ndim).unwrap_or(0)));
    let flag_at = buf.len();
    put_be(buf, i32::to_be_bytes(0)); // has-null flag, set below
    put_be(buf, u32::to_be_bytes(elem.oid()));
    for &d in dims {
        // Every dimension is at most the total, which fits in an i32.
        put_be(buf, i32::to_be_bytes(i32::try_from(d).unwrap_or(0)));
        put_be(buf, i32::to_be_bytes(1)); // lower bound
    }
    let mut has_null = false;
    elems.encode_elements(dims, codec_elem, buf, &mut has_null)?;
    if has_null {
        buf[flag_at..flag_at + 4].copy_from_slice(&1i32.to_be_bytes());
    }
    finish_len(buf, at)
}

/// Reads an ARRAY value of exactly `T::NDIM + 1` dimensions (or an empty one).
fn array_recv<T: DecodeElement>(ty: &Type, raw: &[u8]) -> Result<Vec<T>, DecodeError> {
    let Some(elem) = element_type(ty) else {
        return Err(DecodeError::Invalid(format!(
            "column type {ty} is not an array type"
        )));
    };
    let codec_elem = accepted_type(elem, T::accepts_element).unwrap_or(elem);
    let expected = T::NDIM + 1;
    let mut r = Reader::new(raw, "array");
    let ndim = r.i32()?;
    let flags = r.i32()?;
    let oid = r.u32()?;
    let ndim = usize::try_from(ndim)
        .ok()
        .filter(|&n| n <= MAX_DIMS)
        .ok_or_else(|| {
            DecodeError::Invalid(format!(
                "array has an invalid dimension count {ndim} (PostgreSQL allows 0..={MAX_DIMS})"
            ))
        })?;
    if ndim != 0 && ndim != expected {
        return Err(DecodeError::OutOfRange(if expected == 1 {
            format!("multi-dimensional array (ndim {ndim}) cannot be read into a 1-D Vec")
        } else {
            format!(
                "array of {ndim} dimension{} cannot be read into a {expected}-D nested Vec",
                if ndim == 1 { "" } else { "s" }
            )
        }));
    }
    if flags != 0 && flags != 1 {
        return Err(DecodeError::Invalid(format!(
            "array has invalid flags {flags}"
        )));
    }
    // An array of a domain may carry the domain's OID or, when it was built by a cast
    // (`ARRAY[1, 2]::posint[]`), its base type's.
    if !element_oids(elem).any(|o| o == oid) {
        return Err(DecodeError::Invalid(format!(
            "array element type OID {oid} does not match the column's element type {elem} (OID {})",
            elem.oid()
        )));
    }
    if ndim == 0 {
        r.finish()?;
        return Ok(Vec::new());
    }
    let mut dims = [0usize; MAX_DIMS];
    for d in &mut dims[..ndim] {
        let len = r.i32()?;
        let _lower_bound = r.i32()?;
        *d = usize::try_from(len).map_err(|_| {
            DecodeError::Invalid(format!("array has a negative dimension length {len}"))
        })?;
    }
    let dims = &dims[..ndim];
    if dims.contains(&0) {
        // PostgreSQL treats an array with an empty dimension as the empty array.
        r.finish()?;
        return Ok(Vec::new());
    }
    // Every element takes at least its 4-byte length: bound the allocation by the bytes.
    let fits = dims
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .is_some_and(|n| n <= r.remaining() / 4);
    if !fits {
        return Err(DecodeError::Invalid(format!(
            "array of dimensions {dims:?} does not fit in the {} bytes that follow",
            r.remaining()
        )));
    }
    let mut elements = ElementReader {
        reader: r,
        index: 0,
    };
    let out = Vec::<T>::decode_elements(dims, codec_elem, &mut elements)?;
    elements.reader.finish()?;
    Ok(out)
}

impl<T: EncodeElement> EncodeElement for [T] {
    const NDIM: usize = T::NDIM + 1;

    #[inline]
    fn accepts_element(elem: &Type) -> bool {
        T::accepts_element(elem)
    }

    #[inline]
    fn shape(&self, dims: &mut [usize]) {
        if let Some((d, rest)) = dims.split_first_mut() {
            *d = self.len();
            if let Some(first) = self.first() {
                first.shape(rest);
            }
        }
    }

    fn encode_elements(
        &self,
        dims: &[usize],
        elem: &Type,
        buf: &mut BytesMut,
        has_null: &mut bool,
    ) -> Result<(), EncodeError> {
        let Some((&len, rest)) = dims.split_first() else {
            return Err(EncodeError::OutOfRange(
                "internal: array shape has fewer dimensions than the value".to_owned(),
            ));
        };
        if self.len() != len {
            return Err(ragged(T::NDIM + 1, self.len(), len));
        }
        for v in self {
            v.encode_elements(rest, elem, buf, has_null)?;
        }
        Ok(())
    }
}

/// Implements `EncodeElement` for a container that derefs to `[T]`.
macro_rules! slice_like_element {
    ($($ty:ty),*) => {$(
        impl<T: EncodeElement> EncodeElement for $ty {
            const NDIM: usize = T::NDIM + 1;

            #[inline]
            fn accepts_element(elem: &Type) -> bool {
                T::accepts_element(elem)
            }

            #[inline]
            fn shape(&self, dims: &mut [usize]) {
                <[T]>::shape(self, dims);
            }

            #[inline]
            fn encode_elements(
                &self,
                dims: &[usize],
                elem: &Type,
                buf: &mut BytesMut,
                has_null: &mut bool,
            ) -> Result<(), EncodeError> {
                <[T]>::encode_elements(self, dims, elem, buf, has_null)
            }
        }
    )*};
}

slice_like_element!(Vec<T>);

for_pointers! {
    impl EncodeElement {
        const NDIM: usize = P::NDIM;

        #[inline]
        fn accepts_element(elem: &Type) -> bool {
            P::accepts_element(elem)
        }

        #[inline]
        fn shape(&self, dims: &mut [usize]) {
            (**self).shape(dims);
        }

        #[inline]
        fn encode_elements(
            &self,
            dims: &[usize],
            elem: &Type,
            buf: &mut BytesMut,
            has_null: &mut bool,
        ) -> Result<(), EncodeError> {
            (**self).encode_elements(dims, elem, buf, has_null)
        }
    }
}

/// `Option<T>` is a (possibly NULL) scalar element; `Option` of a sub-array is not accepted
/// (PostgreSQL has no NULL sub-arrays).
impl<T: EncodeElement> EncodeElement for Option<T> {
    #[inline]
    fn accepts_element(elem: &Type) -> bool {
        T::NDIM == 0 && T::accepts_element(elem)
    }
}

impl<T: DecodeElement> DecodeElement for Vec<T> {
    const NDIM: usize = T::NDIM + 1;

    #[inline]
    fn accepts_element(elem: &Type) -> bool {
        T::accepts_element(elem)
    }

    fn decode_elements(
        dims: &[usize],
        elem: &Type,
        elements: &mut ElementReader<'_>,
    ) -> Result<Self, DecodeError> {
        let Some((&len, rest)) = dims.split_first() else {
            return Err(DecodeError::invalid(
                "internal: array shape has fewer dimensions than the Vec",
            ));
        };
        // `array_recv` checked that all elements fit in the remaining bytes.
        let mut out = Vec::with_capacity(len.min(elements.reader.remaining() / 4));
        for _ in 0..len {
            out.push(T::decode_elements(rest, elem, elements)?);
        }
        Ok(out)
    }
}

/// `Option<T>` is a (possibly NULL) scalar element.
impl<T: DecodeElement> DecodeElement for Option<T> {
    #[inline]
    fn accepts_element(elem: &Type) -> bool {
        T::NDIM == 0 && T::accepts_element(elem)
    }
}

/// Whether `T` can be an array of column type `ty` (1 to 6 dimensions, element accepted
/// directly or through its domain's base type).
#[inline]
fn accepts_array(ty: &Type, ndim: usize, accepts_element: fn(&Type) -> bool) -> bool {
    ndim <= MAX_DIMS
        && element_type(ty).is_some_and(|e| accepted_type(e, accepts_element).is_some())
}

impl<T: EncodeElement> Encode for [T] {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        accepts_array(ty, T::NDIM + 1, T::accepts_element)
    }

    #[inline]
    fn encode_field(&self, ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        array_send(self, ty, buf)
    }
}

impl<T: EncodeElement> Encode for Vec<T> {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        <[T]>::accepts(ty)
    }

    #[inline]
    fn encode_field(&self, ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        array_send(self, ty, buf)
    }
}

impl<T: DecodeElement> Decode for Vec<T> {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        accepts_array(ty, T::NDIM + 1, T::accepts_element)
    }

    #[inline]
    fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        array_recv(ty, non_null(raw)?)
    }
}

impl<T: DecodeElement> Decode for Box<[T]> {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        accepts_array(ty, T::NDIM + 1, T::accepts_element)
    }

    #[inline]
    fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        array_recv(ty, non_null(raw)?).map(Vec::into_boxed_slice)
    }
}

/// Marks pgbulk's own scalar types as array elements (both directions where both exist).
macro_rules! scalar_elements {
    (encode: $($e:ty),*; decode: $($d:ty),*) => {
        $(impl EncodeElement for $e {})*
        $(impl DecodeElement for $d {})*
    };
}

scalar_elements!(
    encode: bool, i8, i16, i32, i64, u32, f32, f64, str, String, [u8], Vec<u8>,
        std::net::IpAddr, super::Inet, super::Interval;
    decode: bool, i8, i16, i32, i64, u32, f32, f64, String, Box<str>, std::borrow::Cow<'static, str>,
        Vec<u8>, Box<[u8]>, std::net::IpAddr, super::Inet, super::Interval
);

#[cfg(feature = "chrono")]
scalar_elements!(
    encode: chrono::NaiveDate, chrono::NaiveTime, chrono::NaiveDateTime,
        chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::FixedOffset>,
        chrono::DateTime<chrono::Local>;
    decode: chrono::NaiveDate, chrono::NaiveTime, chrono::NaiveDateTime,
        chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::FixedOffset>,
        chrono::DateTime<chrono::Local>
);

#[cfg(feature = "uuid")]
scalar_elements!(encode: uuid::Uuid; decode: uuid::Uuid);

#[cfg(feature = "rust_decimal")]
scalar_elements!(
    encode: rust_decimal::Decimal, super::PgNumeric;
    decode: rust_decimal::Decimal, super::PgNumeric
);

#[cfg(feature = "serde_json")]
scalar_elements!(encode: serde_json::Value; decode: serde_json::Value);
