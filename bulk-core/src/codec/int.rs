//! Codec: int2, int4, int8 (exact widths only: `i64` never goes into `int4`), `"char"` (the
//! one-byte internal type, as `i8`) and oid (as `u32`).

use super::{fixed, non_null, Decode, DecodeError, Encode, EncodeError};
use bytes::BytesMut;
use postgres_types::Type;

/// Writes an INT2 field: length 2, then the big-endian value.
#[inline]
fn int2_send(v: i16, buf: &mut BytesMut) {
    super::put_field2(buf, v.to_be_bytes());
}

/// Writes an INT4 field: length 4, then the big-endian value.
#[inline]
fn int4_send(v: i32, buf: &mut BytesMut) {
    super::put_field4(buf, v.to_be_bytes());
}

/// Writes an INT8 field: length 8, then the big-endian value.
#[inline]
fn int8_send(v: i64, buf: &mut BytesMut) {
    super::put_field8(buf, v.to_be_bytes());
}

/// Writes a `"char"` field: length 1, then the byte.
#[inline]
fn char_send(v: i8, buf: &mut BytesMut) {
    super::put_field1(buf, v.to_be_bytes());
}

/// Writes an OID field: length 4, then the big-endian unsigned value.
#[inline]
fn oid_send(v: u32, buf: &mut BytesMut) {
    super::put_field4(buf, v.to_be_bytes());
}

/// Reads a `"char"` value.
#[inline]
fn char_recv(raw: &[u8]) -> Result<i8, DecodeError> {
    fixed(raw, "\"char\"").map(i8::from_be_bytes)
}

/// Reads an OID value.
#[inline]
fn oid_recv(raw: &[u8]) -> Result<u32, DecodeError> {
    fixed(raw, "oid").map(u32::from_be_bytes)
}

/// Reads an INT2 value.
#[inline]
fn int2_recv(raw: &[u8]) -> Result<i16, DecodeError> {
    fixed(raw, "int2").map(i16::from_be_bytes)
}

/// Reads an INT4 value.
#[inline]
fn int4_recv(raw: &[u8]) -> Result<i32, DecodeError> {
    fixed(raw, "int4").map(i32::from_be_bytes)
}

/// Reads an INT8 value.
#[inline]
fn int8_recv(raw: &[u8]) -> Result<i64, DecodeError> {
    fixed(raw, "int8").map(i64::from_be_bytes)
}

/// Implements `Encode` and `Decode` for one integer type and its PostgreSQL type.
macro_rules! int_codec {
    ($rust:ty, $pg:expr, $send:ident, $recv:ident) => {
        impl Encode for $rust {
            #[inline]
            fn accepts(ty: &Type) -> bool {
                *ty == $pg
            }

            #[inline]
            fn encode_field(&self, _ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
                $send(*self, buf);
                Ok(())
            }
        }

        impl Decode for $rust {
            #[inline]
            fn accepts(ty: &Type) -> bool {
                *ty == $pg
            }

            #[inline]
            fn decode(_ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
                $recv(non_null(raw)?)
            }
        }
    };
}

int_codec!(i8, Type::CHAR, char_send, char_recv);
int_codec!(u32, Type::OID, oid_send, oid_recv);
int_codec!(i16, Type::INT2, int2_send, int2_recv);
int_codec!(i32, Type::INT4, int4_send, int4_recv);
int_codec!(i64, Type::INT8, int8_send, int8_recv);
