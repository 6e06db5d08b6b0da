//! Codec: text, varchar, bpchar (`char(n)`), name and the `citext` extension type; also
//! PostgreSQL enums (the label's text), and json/jsonb as raw JSON text (jsonb with its version
//! byte `1` in front; any other version on decode is an error).
//!
//! Encoding rejects a NUL byte on the client (PostgreSQL text cannot store it, and the server
//! would fail the whole COPY); decoding checks UTF-8 (the connection's `client_encoding` is
//! UTF8) and reports invalid bytes as an error.

use super::{non_null, put_len, Decode, DecodeError, Encode, EncodeError};
use bytes::{BufMut, BytesMut};
use postgres_types::{Kind, Type};
use std::borrow::Cow;

/// The version byte in front of jsonb's text in its binary form.
pub(crate) const JSONB_VERSION: u8 = 1;

/// Whether `ty` is one of the types a Rust string maps to: the text types, json/jsonb, enums.
#[inline]
fn is_text(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::JSON | Type::JSONB
    ) || matches!(ty.kind(), Kind::Enum(_))
        || ty.name() == "citext"
}

/// Writes a TEXT field (or an enum label, or json): its length, then the UTF-8 bytes; for
/// jsonb the version byte first. A NUL byte is an error.
#[inline]
fn text_send(v: &str, ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
    let bytes = v.as_bytes();
    // Short strings (the common case in bulk rows) are scanned inline: the call into memchr's
    // vectorized search costs more than it saves below a few dozen bytes.
    let nul = if bytes.len() < 32 {
        bytes.iter().position(|&b| b == 0)
    } else {
        memchr::memchr(0, bytes)
    };
    if let Some(offset) = nul {
        return Err(EncodeError::NulInText { offset });
    }
    if *ty == Type::JSONB {
        put_len(buf, bytes.len() + 1)?;
        buf.put_u8(JSONB_VERSION);
    } else {
        put_len(buf, bytes.len())?;
    }
    buf.put_slice(bytes);
    Ok(())
}

/// Strips jsonb's version byte, checking it.
#[inline]
pub(crate) fn jsonb_body(raw: &[u8]) -> Result<&[u8], DecodeError> {
    match raw.split_first() {
        Some((&JSONB_VERSION, body)) => Ok(body),
        Some((v, _)) => Err(DecodeError::Invalid(format!(
            "unsupported jsonb version number {v} (only 1 is known)"
        ))),
        None => Err(DecodeError::invalid(
            "jsonb value is empty (no version byte)",
        )),
    }
}

/// Reads a TEXT value (or an enum label, json, or jsonb without its version byte), checking
/// that it is UTF-8.
#[inline]
fn text_recv<'a>(ty: &Type, raw: &'a [u8]) -> Result<&'a str, DecodeError> {
    let raw = if *ty == Type::JSONB {
        jsonb_body(raw)?
    } else {
        raw
    };
    std::str::from_utf8(raw)
        .map_err(|e| DecodeError::Invalid(format!("text value is not valid UTF-8: {e}")))
}

impl Encode for str {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        is_text(ty)
    }

    #[inline]
    fn encode_field(&self, ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        text_send(self, ty, buf)
    }
}

impl Encode for String {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        is_text(ty)
    }

    #[inline]
    fn encode_field(&self, ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        text_send(self, ty, buf)
    }
}

impl Decode for String {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        is_text(ty)
    }

    #[inline]
    fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        text_recv(ty, non_null(raw)?).map(str::to_owned)
    }
}

impl Decode for Box<str> {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        is_text(ty)
    }

    #[inline]
    fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        text_recv(ty, non_null(raw)?).map(Box::from)
    }
}

impl Decode for Cow<'static, str> {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        is_text(ty)
    }

    #[inline]
    fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        text_recv(ty, non_null(raw)?).map(|s| Cow::Owned(s.to_owned()))
    }
}
