//! Codec: bool.

use super::{fixed, non_null, Decode, DecodeError, Encode, EncodeError};
use bytes::BytesMut;
use postgres_types::Type;

/// Writes a BOOL field: length 1, then `1` or `0`.
#[inline]
fn bool_send(v: bool, buf: &mut BytesMut) {
    super::put_field1(buf, [u8::from(v)]);
}

/// Reads a BOOL value; like PostgreSQL's `boolrecv`, any non-zero byte is true.
#[inline]
fn bool_recv(raw: &[u8]) -> Result<bool, DecodeError> {
    let [b] = fixed::<1>(raw, "bool")?;
    Ok(b != 0)
}

impl Encode for bool {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        *ty == Type::BOOL
    }

    #[inline]
    fn encode_field(&self, _ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        bool_send(*self, buf);
        Ok(())
    }
}

impl Decode for bool {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        *ty == Type::BOOL
    }

    #[inline]
    fn decode(_ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        bool_recv(non_null(raw)?)
    }
}
