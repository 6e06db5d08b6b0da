//! Codec: text, varchar, bpchar (`char(n)`), name and the `citext` extension type; also
//! PostgreSQL enums (the label's text), and json/jsonb as raw JSON text (jsonb with its version
//! byte `1` in front; any other version on decode is an error).
//!
//! Encoding rejects a NUL byte on the client (PostgreSQL text cannot store it, and the server
//! would fail the whole COPY); decoding checks UTF-8 (the connection's `client_encoding` is
//! UTF8) and reports invalid bytes as an error.

use super::{non_null, put_len, Decode, DecodeError, DecodeRef, Encode, EncodeError};
use crate::codec::put_be;
use bytes::BytesMut;
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
    if let Some(offset) = find_nul(bytes) {
        return Err(EncodeError::NulInText { offset });
    }
    if *ty == Type::JSONB {
        put_len(buf, bytes.len() + 1)?;
        put_be(buf, [JSONB_VERSION]);
    } else {
        put_len(buf, bytes.len())?;
    }
    buf.extend_from_slice(bytes);
    Ok(())
}

/// The offset of the first NUL byte in `bytes`.
///
/// Short strings (the common case in bulk rows) are scanned eight bytes at a time inline: the
/// call into memchr's vectorized search costs more than it saves below a few dozen bytes, and
/// a byte-by-byte loop is five instructions a byte.
#[inline]
pub(crate) fn find_nul(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    if bytes.len() >= 32 {
        return memchr::memchr(0, bytes);
    }
    let mut words = bytes.chunks_exact(8);
    for (n, word) in words.by_ref().enumerate() {
        let x = u64::from_ne_bytes(word.try_into().unwrap_or_default());
        // Sets a high bit for (at least) every zero byte, and never when there is none.
        if x.wrapping_sub(ONES) & !x & HIGHS != 0 {
            return word.iter().position(|&b| b == 0).map(|i| n * 8 + i);
        }
    }
    let rest = words.remainder();
    let at = bytes.len() - rest.len();
    rest.iter().position(|&b| b == 0).map(|i| at + i)
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

impl<'r> DecodeRef<'r> for &'r str {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        is_text(ty)
    }

    #[inline]
    fn decode_ref(ty: &Type, raw: Option<&'r [u8]>) -> Result<Self, DecodeError> {
        text_recv(ty, non_null(raw)?)
    }
}

impl<'r> DecodeRef<'r> for Option<&'r str> {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        is_text(ty)
    }

    #[inline]
    fn decode_ref(ty: &Type, raw: Option<&'r [u8]>) -> Result<Self, DecodeError> {
        raw.map(|raw| text_recv(ty, raw)).transpose()
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

#[cfg(test)]
mod tests {
    use super::find_nul;

    #[test]
    fn find_nul_agrees_with_a_plain_scan() {
        // Every length across the word-at-a-time and memchr paths, a NUL at every position,
        // two NULs, and bytes next to zero (0x01, 0x80, 0xff) that a wrong bit trick would flag.
        for len in 0..48 {
            for fill in [b'a', 0x01, 0x80, 0xff] {
                let clean = vec![fill; len];
                assert_eq!(find_nul(&clean), None, "len {len} fill {fill:#x}");
                for at in 0..len {
                    let mut v = clean.clone();
                    v[at] = 0;
                    assert_eq!(find_nul(&v), Some(at), "len {len} at {at} fill {fill:#x}");
                    if at + 3 < len {
                        v[at + 3] = 0;
                        assert_eq!(find_nul(&v), Some(at), "len {len} at {at}, two NULs");
                    }
                }
            }
        }
    }
}
