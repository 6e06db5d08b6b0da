//! Codec: one-dimensional arrays, in `array_send` layout:
//! `int32 ndim, int32 has-null flag, uint32 element OID`, then per dimension
//! `int32 length, int32 lower bound`, then each element as a field (`int32` length or `-1`,
//! then its bytes). An empty array has `ndim = 0` and no dimensions.
//!
//! The element OID is taken from the column's type (`Kind::Array(elem)`), never guessed from
//! the Rust type: `text[]` and `varchar[]` differ. `[u8]`/`Vec<u8>` are bytea, not arrays; `u8`
//! implements neither `Encode` nor `Decode`, which keeps these impls from overlapping.

use super::{begin_len, finish_len, non_null, Decode, DecodeError, Encode, EncodeError, Reader};
use bytes::{BufMut, BytesMut};
use postgres_types::{Kind, Type};

/// The element type of an array column type, if it is one.
#[inline]
fn element_type(ty: &Type) -> Option<&Type> {
    match ty.kind() {
        Kind::Array(elem) => Some(elem),
        _ => None,
    }
}

/// Writes a one-dimensional ARRAY field in `array_send` layout; lower bound 1.
#[inline]
fn array_send<T: Encode>(elems: &[T], ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
    let Some(elem) = element_type(ty) else {
        return Err(EncodeError::Other(
            format!("column type {ty} is not an array type").into(),
        ));
    };
    let at = begin_len(buf);
    if elems.is_empty() {
        buf.put_i32(0); // ndim
        buf.put_i32(0); // has-null flag
        buf.put_u32(elem.oid());
    } else {
        let len = i32::try_from(elems.len()).map_err(|_| {
            EncodeError::OutOfRange(format!(
                "array of {} elements is too long for PostgreSQL",
                elems.len()
            ))
        })?;
        buf.put_i32(1);
        buf.put_i32(i32::from(elems.iter().any(Encode::is_null)));
        buf.put_u32(elem.oid());
        buf.put_i32(len);
        buf.put_i32(1); // lower bound
        for v in elems {
            v.encode_field(elem, buf)?;
        }
    }
    finish_len(buf, at)
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

/// Reads a one-dimensional ARRAY value, decoding each element with `T`.
#[inline]
fn array_recv<T: Decode>(ty: &Type, raw: &[u8]) -> Result<Vec<T>, DecodeError> {
    let Some(elem) = element_type(ty) else {
        return Err(DecodeError::Invalid(format!(
            "column type {ty} is not an array type"
        )));
    };
    let mut r = Reader::new(raw, "array");
    let ndim = r.i32()?;
    let flags = r.i32()?;
    let oid = r.u32()?;
    if ndim < 0 {
        return Err(DecodeError::Invalid(format!(
            "array has a negative dimension count {ndim}"
        )));
    }
    if ndim > 1 {
        return Err(DecodeError::OutOfRange(format!(
            "multi-dimensional array (ndim {ndim}) cannot be read into a 1-D Vec"
        )));
    }
    if flags != 0 && flags != 1 {
        return Err(DecodeError::Invalid(format!(
            "array has invalid flags {flags}"
        )));
    }
    if oid != elem.oid() {
        return Err(DecodeError::Invalid(format!(
            "array element type OID {oid} does not match the column's element type {elem} (OID {})",
            elem.oid()
        )));
    }
    if ndim == 0 {
        r.finish()?;
        return Ok(Vec::new());
    }
    let len = r.i32()?;
    let _lower_bound = r.i32()?;
    // Every element takes at least its 4-byte length: bound the allocation by the bytes.
    let len = usize::try_from(len)
        .ok()
        .filter(|&n| n <= r.remaining() / 4)
        .ok_or_else(|| {
            DecodeError::Invalid(format!(
                "array length {len} does not fit in the {} bytes that follow",
                r.remaining()
            ))
        })?;
    let mut out = Vec::with_capacity(len);
    for index in 0..len {
        let elen = r.i32()?;
        let value = if elen == -1 {
            None
        } else {
            let n = usize::try_from(elen).map_err(|_| {
                DecodeError::Invalid(format!(
                    "array element {index} has an invalid length {elen}"
                ))
            })?;
            Some(r.take(n)?)
        };
        out.push(T::decode(elem, value).map_err(|e| in_element(index, e))?);
    }
    r.finish()?;
    Ok(out)
}

impl<T: Encode> Encode for [T] {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        element_type(ty).is_some_and(T::accepts)
    }

    #[inline]
    fn encode_field(&self, ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        array_send(self, ty, buf)
    }
}

impl<T: Encode> Encode for Vec<T> {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        <[T]>::accepts(ty)
    }

    #[inline]
    fn encode_field(&self, ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        array_send(self, ty, buf)
    }
}

impl<T: Decode> Decode for Vec<T> {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        element_type(ty).is_some_and(T::accepts)
    }

    #[inline]
    fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        array_recv(ty, non_null(raw)?)
    }
}

impl<T: Decode> Decode for Box<[T]> {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        element_type(ty).is_some_and(T::accepts)
    }

    #[inline]
    fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        array_recv(ty, non_null(raw)?).map(Vec::into_boxed_slice)
    }
}
