//! Codec: bytea. `[u8]`, `Vec<u8>` and `Box<[u8]>` are bytea, never arrays: `u8` implements
//! neither `Encode` nor `Decode`, which is what keeps these impls apart from the array ones.

use super::{non_null, put_len, Decode, DecodeError, DecodeRef, Encode, EncodeError};
use bytes::BytesMut;
use postgres_types::Type;

/// Writes a BYTEA field: its length, then the bytes as they are.
#[inline]
fn bytea_send(v: &[u8], buf: &mut BytesMut) -> Result<(), EncodeError> {
    put_len(buf, v.len())?;
    buf.extend_from_slice(v);
    Ok(())
}

/// Whether `ty` is BYTEA.
#[inline]
fn is_bytea(ty: &Type) -> bool {
    *ty == Type::BYTEA
}

impl Encode for [u8] {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        is_bytea(ty)
    }

    #[inline]
    fn encode_field(&self, _ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        bytea_send(self, buf)
    }
}

impl Encode for Vec<u8> {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        is_bytea(ty)
    }

    #[inline]
    fn encode_field(&self, _ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        bytea_send(self, buf)
    }
}

impl Decode for Vec<u8> {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        is_bytea(ty)
    }

    #[inline]
    fn decode(_ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        Ok(non_null(raw)?.to_vec())
    }
}

impl<'r> DecodeRef<'r> for &'r [u8] {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        is_bytea(ty)
    }

    #[inline]
    fn decode_ref(_ty: &Type, raw: Option<&'r [u8]>) -> Result<Self, DecodeError> {
        non_null(raw)
    }
}

impl<'r> DecodeRef<'r> for Option<&'r [u8]> {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        is_bytea(ty)
    }

    #[inline]
    fn decode_ref(_ty: &Type, raw: Option<&'r [u8]>) -> Result<Self, DecodeError> {
        Ok(raw)
    }
}

impl Decode for Box<[u8]> {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        is_bytea(ty)
    }

    #[inline]
    fn decode(_ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        Ok(non_null(raw)?.into())
    }
}
