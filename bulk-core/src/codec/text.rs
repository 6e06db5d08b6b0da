//! Codec: text, varchar, bpchar (`char(n)`), name and the `citext` extension type.
//!
//! Encoding rejects a NUL byte on the client (PostgreSQL text cannot store it, and the server
//! would fail the whole COPY); decoding checks UTF-8 (the connection's `client_encoding` is
//! UTF8) and reports invalid bytes as an error.

use super::{non_null, put_len, Decode, DecodeError, Encode, EncodeError};
use bytes::{BufMut, BytesMut};
use postgres_types::Type;
use std::borrow::Cow;

/// Whether `ty` is one of the text types a Rust string maps to.
#[inline]
fn is_text(ty: &Type) -> bool {
    matches!(*ty, Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME) || ty.name() == "citext"
}

/// Writes a TEXT field: its length, then the UTF-8 bytes; a NUL byte is an error.
#[inline]
fn text_send(v: &str, buf: &mut BytesMut) -> Result<(), EncodeError> {
    let bytes = v.as_bytes();
    if let Some(offset) = memchr::memchr(0, bytes) {
        return Err(EncodeError::NulInText { offset });
    }
    put_len(buf, bytes.len())?;
    buf.put_slice(bytes);
    Ok(())
}

/// Reads a TEXT value, checking that it is UTF-8.
#[inline]
fn text_recv(raw: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(raw)
        .map_err(|e| DecodeError::Invalid(format!("text value is not valid UTF-8: {e}")))
}

impl Encode for str {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        is_text(ty)
    }

    #[inline]
    fn encode_field(&self, _ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        text_send(self, buf)
    }
}

impl Encode for String {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        is_text(ty)
    }

    #[inline]
    fn encode_field(&self, _ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        text_send(self, buf)
    }
}

impl Decode for String {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        is_text(ty)
    }

    #[inline]
    fn decode(_ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        text_recv(non_null(raw)?).map(str::to_owned)
    }
}

impl Decode for Box<str> {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        is_text(ty)
    }

    #[inline]
    fn decode(_ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        text_recv(non_null(raw)?).map(Box::from)
    }
}

impl Decode for Cow<'static, str> {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        is_text(ty)
    }

    #[inline]
    fn decode(_ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        text_recv(non_null(raw)?).map(|s| Cow::Owned(s.to_owned()))
    }
}
