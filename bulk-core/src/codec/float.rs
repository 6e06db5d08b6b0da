//! Codec: float4, float8. Bit exact: NaN payloads, `-0.0` and infinities survive unchanged.

use super::{fixed, non_null, Decode, DecodeError, Encode, EncodeError};
use bytes::BytesMut;
use postgres_types::Type;

/// Writes a FLOAT4 field: length 4, then the IEEE 754 bits, big-endian.
#[inline]
fn float4_send(v: f32, buf: &mut BytesMut) {
    super::put_field4(buf, v.to_bits().to_be_bytes());
}

/// Writes a FLOAT8 field: length 8, then the IEEE 754 bits, big-endian.
#[inline]
fn float8_send(v: f64, buf: &mut BytesMut) {
    super::put_field8(buf, v.to_bits().to_be_bytes());
}

/// Reads a FLOAT4 value from its IEEE 754 bits.
#[inline]
fn float4_recv(raw: &[u8]) -> Result<f32, DecodeError> {
    fixed(raw, "float4").map(|b| f32::from_bits(u32::from_be_bytes(b)))
}

/// Reads a FLOAT8 value from its IEEE 754 bits.
#[inline]
fn float8_recv(raw: &[u8]) -> Result<f64, DecodeError> {
    fixed(raw, "float8").map(|b| f64::from_bits(u64::from_be_bytes(b)))
}

impl Encode for f32 {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        *ty == Type::FLOAT4
    }

    #[inline]
    fn encode_field(&self, _ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        float4_send(*self, buf);
        Ok(())
    }
}

impl Decode for f32 {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        *ty == Type::FLOAT4
    }

    #[inline]
    fn decode(_ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        float4_recv(non_null(raw)?)
    }
}

impl Encode for f64 {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        *ty == Type::FLOAT8
    }

    #[inline]
    fn encode_field(&self, _ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        float8_send(*self, buf);
        Ok(())
    }
}

impl Decode for f64 {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        *ty == Type::FLOAT8
    }

    #[inline]
    fn decode(_ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        float8_recv(non_null(raw)?)
    }
}
