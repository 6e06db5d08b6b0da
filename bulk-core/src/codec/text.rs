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
    utf8(raw).map_err(|e| DecodeError::Invalid(format!("text value is not valid UTF-8: {e}")))
}

/// Whether every byte of `raw` is below 0x80. From 4 to 63 bytes (names, codes, keys, emails)
/// the bytes are OR-ed together a word at a time, the last word overlapping, with one test at
/// the end; std's `is_ascii` below 64 bytes checks a word and then the rest byte by byte (46
/// instructions for a 13-byte value as compiled, against about 15 this way). Longer values go
/// to std, which has its own fast path for them.
#[inline]
fn is_ascii(raw: &[u8]) -> bool {
    const HIGH8: u64 = 0x8080_8080_8080_8080;
    const HIGH4: u32 = 0x8080_8080;
    match raw.len() {
        8..=63 => {
            let Some(last) = raw.last_chunk::<8>() else {
                return raw.is_ascii();
            };
            let mut any = u64::from_ne_bytes(*last);
            for word in raw.chunks_exact(8) {
                any |= u64::from_ne_bytes(word.try_into().unwrap_or([0x80; 8]));
            }
            any & HIGH8 == 0
        }
        4..=7 => match (raw.first_chunk::<4>(), raw.last_chunk::<4>()) {
            (Some(a), Some(b)) => (u32::from_ne_bytes(*a) | u32::from_ne_bytes(*b)) & HIGH4 == 0,
            _ => raw.is_ascii(),
        },
        _ => raw.is_ascii(),
    }
}

/// `raw` as UTF-8 text, checked. An ASCII-only value (the usual case) is checked a word at a
/// time ([`is_ascii`]); anything else by `std::str::from_utf8`, whose error it returns.
///
/// Why not `from_utf8` alone: for values under 16 bytes (names, codes, emails' parts) std's
/// validator goes byte by byte, ~10 instructions a byte — 134 of the 1,163 instructions per
/// row of a narrow `copy_out` (`cargo bench --bench read_path`; 1,036 with this check). This is
/// the crate's one `unsafe` block (the workspace lint is `deny`, not `forbid`, for it).
#[inline]
#[allow(unsafe_code)]
pub(crate) fn utf8(raw: &[u8]) -> Result<&str, std::str::Utf8Error> {
    if is_ascii(raw) {
        // SAFETY: a byte sequence whose every byte is below 0x80 is valid UTF-8 (each byte is
        // a one-byte code point), which is `from_utf8_unchecked`'s only precondition.
        Ok(unsafe { std::str::from_utf8_unchecked(raw) })
    } else {
        std::str::from_utf8(raw)
    }
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
    use super::{find_nul, utf8};
    use proptest::prelude::*;

    proptest! {
        /// The ASCII fast path accepts exactly what `std::str::from_utf8` accepts, with the same
        /// text and the same error (position of the first bad byte).
        #[test]
        fn utf8_agrees_with_std(raw in prop::collection::vec(any::<u8>(), 0..80)) {
            prop_assert_eq!(utf8(&raw), std::str::from_utf8(&raw));
        }

        #[test]
        fn utf8_agrees_with_std_on_text(text in "\\PC{0,40}", cut in 0usize..200) {
            let raw = text.as_bytes();
            prop_assert_eq!(utf8(raw), Ok(text.as_str()));
            // A cut inside a multi-byte character is an error for both.
            let raw = &raw[..cut.min(raw.len())];
            prop_assert_eq!(utf8(raw), std::str::from_utf8(raw));
        }
    }

    #[test]
    fn utf8_checks_every_position_of_short_values() {
        // Each length across the word-at-a-time checks (std's past 63 bytes), a non-ASCII or
        // invalid byte at each position: an ASCII-looking value with one bad byte must not pass
        // as ASCII.
        for len in 0..72 {
            let clean = vec![b'a'; len];
            assert_eq!(utf8(&clean), Ok(std::str::from_utf8(&clean).unwrap()));
            for at in 0..len {
                for bad in [0x80u8, 0xc3, 0xff] {
                    let mut v = clean.clone();
                    v[at] = bad;
                    assert!(utf8(&v).is_err(), "len {len} at {at} byte {bad:#x}");
                    assert_eq!(utf8(&v), std::str::from_utf8(&v));
                }
                if at + 1 < len {
                    let mut v = clean.clone();
                    v[at] = 0xc3;
                    v[at + 1] = 0xa9; // é
                    assert_eq!(utf8(&v), std::str::from_utf8(&v));
                    assert!(utf8(&v).is_ok());
                }
            }
        }
    }

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
