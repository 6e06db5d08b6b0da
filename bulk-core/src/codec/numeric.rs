//! Codec: numeric, for `rust_decimal::Decimal`, in `numeric_send` layout:
//! `int16 ndigits, int16 weight, int16 sign, int16 dscale`, then `ndigits` base-10000 digits,
//! most significant first. The value is `Σ digit[i] · 10000^(weight − i)`.
//!
//! The scale is kept both ways: `Decimal` 1.50 is sent with dscale 2, and a numeric with
//! dscale 2 reads as a `Decimal` with scale 2. Digits are stripped as PostgreSQL does (no
//! leading or trailing zero base-10000 digits; zero has no digits, weight 0, sign +).
//!
//! Decoding never rounds: NaN and ±Infinity, a dscale above 28, or a magnitude above
//! `Decimal::MAX` are `DecodeError::OutOfRange`; malformed bytes are `DecodeError::Invalid`.
//! [`PgNumeric`] reads and writes NaN and ±Infinity too.

use super::{non_null, Decode, DecodeError, Encode, EncodeError, Reader};
use crate::codec::put_be;
use bytes::BytesMut;
use postgres_types::Type;
use rust_decimal::Decimal;

/// `sign` of a positive (or zero) numeric.
const NUMERIC_POS: u16 = 0x0000;
/// `sign` of a negative numeric.
const NUMERIC_NEG: u16 = 0x4000;
/// `sign` of NaN.
const NUMERIC_NAN: u16 = 0xC000;
/// `sign` of +Infinity.
const NUMERIC_PINF: u16 = 0xD000;
/// `sign` of −Infinity.
const NUMERIC_NINF: u16 = 0xF000;
/// The base of numeric digits.
const NBASE: u16 = 10_000;
/// Largest `Decimal` mantissa, 2^96 − 1.
const MAX_MANTISSA: u128 = (1 << 96) - 1;
/// Largest `Decimal` scale.
const MAX_SCALE: u16 = 28;

/// Splits `v < 10^16` into four base-10000 digits, least significant first.
#[inline]
fn base10000_u64(mut v: u64, out: &mut [u16; 4]) {
    for d in out {
        // The remainder is below 10000.
        #[allow(clippy::cast_possible_truncation)]
        let digit = (v % 10_000) as u16;
        *d = digit;
        v /= 10_000;
    }
}

/// Writes a NUMERIC field in `numeric_send` layout, keeping the `Decimal`'s scale as dscale.
#[inline]
#[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)] // see the bounds below
fn numeric_send(v: &Decimal, buf: &mut BytesMut) {
    let scale = v.scale(); // 0..=28
    let abs = v.mantissa().unsigned_abs(); // < 2^96

    // Pad the scale up to a multiple of 4 so the base-10000 digits line up with the decimal
    // point: abs · 10^pad < 2^96 · 1000 < 10^32, so it has at most 8 base-10000 digits.
    let pad = (4 - scale % 4) % 4;
    let padded = abs * 10u128.pow(pad);
    let frac_digits = (scale + pad) / 4; // 0..=7

    // Least significant first. Two halves below 10^16 keep u128 division to one.
    let mut lo = [0u16; 4];
    let mut hi = [0u16; 4];
    base10000_u64((padded % 10u128.pow(16)) as u64, &mut lo);
    base10000_u64((padded / 10u128.pow(16)) as u64, &mut hi);
    let mut digits = [0u16; 8];
    digits[..4].copy_from_slice(&lo);
    digits[4..].copy_from_slice(&hi);

    // Strip leading (top) and trailing (bottom) zero digits, as PostgreSQL's strip_var does.
    let top = digits.iter().rposition(|&d| d != 0).map_or(0, |i| i + 1);
    let bottom = digits[..top].iter().position(|&d| d != 0).unwrap_or(top);
    let ndigits = top - bottom; // 0..=8
    let (weight, sign) = if ndigits == 0 {
        (0, NUMERIC_POS) // zero: weight 0 and sign + whatever the Decimal's sign
    } else {
        let sign = if v.is_sign_negative() {
            NUMERIC_NEG
        } else {
            NUMERIC_POS
        };
        (top as i16 - frac_digits as i16 - 1, sign)
    };

    // The whole field (length, header, up to 8 digits) built on the stack, then one copy.
    let mut field = [0u8; 4 + 8 + 16];
    let len = 8 + 2 * ndigits;
    field[0..4].copy_from_slice(&(len as i32).to_be_bytes());
    field[4..6].copy_from_slice(&(ndigits as i16).to_be_bytes());
    field[6..8].copy_from_slice(&weight.to_be_bytes());
    field[8..10].copy_from_slice(&sign.to_be_bytes());
    field[10..12].copy_from_slice(&(scale as u16).to_be_bytes());
    for (i, &d) in digits[bottom..top].iter().rev().enumerate() {
        field[12 + 2 * i..14 + 2 * i].copy_from_slice(&d.to_be_bytes());
    }
    buf.extend_from_slice(&field[..4 + len]);
}

/// A PostgreSQL `numeric` that may also be `NaN`, `Infinity` or `-Infinity`, which
/// `rust_decimal::Decimal` cannot hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PgNumeric {
    /// A finite value (its scale is kept, as for `Decimal`).
    Value(Decimal),
    /// `NaN` (PostgreSQL's NaN equals itself and sorts above every other value).
    NaN,
    /// `Infinity`.
    PosInfinity,
    /// `-Infinity`.
    NegInfinity,
}

impl From<Decimal> for PgNumeric {
    fn from(v: Decimal) -> Self {
        PgNumeric::Value(v)
    }
}

/// Writes a NUMERIC NaN or ±Infinity: no digits, weight 0, the special sign, and the dscale
/// PostgreSQL's own `numeric_send` writes for it: 0 for NaN, 32 for ±Infinity (its short
/// header's dscale bits read from the special sign; `numeric_recv` ignores them).
#[inline]
fn numeric_special_send(sign: u16, buf: &mut BytesMut) {
    put_be(buf, i32::to_be_bytes(8));
    put_be(buf, u16::to_be_bytes(0)); // ndigits
    put_be(buf, i16::to_be_bytes(0)); // weight
    put_be(buf, u16::to_be_bytes(sign));
    put_be(
        buf,
        u16::to_be_bytes(if sign == NUMERIC_NAN { 0 } else { 32 }),
    ); // dscale
}

/// The error for a numeric a `Decimal` cannot hold, or that is malformed.
fn too_big() -> DecodeError {
    DecodeError::OutOfRange(format!(
        "numeric value is outside Decimal's range (±{}); read it as text or round it in the query",
        Decimal::MAX
    ))
}

/// Reads a NUMERIC value in `numeric_send` layout into a `Decimal` with scale = dscale.
#[inline]
fn numeric_recv(raw: &[u8]) -> Result<Decimal, DecodeError> {
    let mut r = Reader::new(raw, "numeric");
    let ndigits = r.u16()?;
    let weight = r.i16()?;
    let sign = r.u16()?;
    let dscale = r.u16()?;
    let negative = match sign {
        NUMERIC_POS => false,
        NUMERIC_NEG => true,
        NUMERIC_NAN | NUMERIC_PINF | NUMERIC_NINF => {
            let name = match sign {
                NUMERIC_NAN => "NaN",
                NUMERIC_PINF => "Infinity",
                _ => "-Infinity",
            };
            return Err(DecodeError::OutOfRange(format!(
                "numeric '{name}' cannot be held by Decimal; map it to NULL in the query \
                 (e.g. NULLIF(col, '{name}')) and read an Option"
            )));
        }
        other => {
            return Err(DecodeError::Invalid(format!(
                "numeric has an invalid sign 0x{other:04X}"
            )))
        }
    };
    if dscale & 0xC000 != 0 {
        return Err(DecodeError::Invalid(format!(
            "numeric has an invalid dscale {dscale}"
        )));
    }
    let body = r.take(usize::from(ndigits) * 2)?;
    r.finish()?;
    if body
        .chunks_exact(2)
        .any(|d| u16::from_be_bytes([d[0], d[1]]) >= NBASE)
    {
        return Err(DecodeError::invalid("numeric has a digit outside 0..=9999"));
    }
    if dscale > MAX_SCALE {
        return Err(DecodeError::OutOfRange(format!(
            "numeric with {dscale} digits after the decimal point cannot be held by Decimal \
             (at most 28); round it in the query, e.g. round(col, 28)"
        )));
    }

    // Digit i is worth digit · 10^(4·(weight − i)); the mantissa at scale dscale is the value
    // times 10^dscale. All in i64: |weight| ≤ 2^15, i < 2^16, dscale ≤ 28.
    let mut mantissa: u128 = 0;
    for (i, pair) in (0i64..).zip(body.chunks_exact(2)) {
        let digit = u128::from(u16::from_be_bytes([pair[0], pair[1]]));
        if digit == 0 {
            continue;
        }
        let exp = 4 * (i64::from(weight) - i) + i64::from(dscale);
        let part = if exp >= 0 {
            let pow = u32::try_from(exp)
                .ok()
                .and_then(|e| 10u128.checked_pow(e))
                .ok_or_else(too_big)?;
            digit.checked_mul(pow).ok_or_else(too_big)?
        } else {
            // A digit below the dscale: PostgreSQL never sends one (numeric_recv truncates
            // them); accept only zeros there rather than round.
            let div = u32::try_from(-exp)
                .ok()
                .filter(|&e| e < 4)
                .map(|e| 10u128.pow(e));
            match div {
                Some(div) if digit % div == 0 => digit / div,
                _ => {
                    return Err(DecodeError::invalid(
                        "numeric has non-zero digits beyond its dscale",
                    ))
                }
            }
        };
        mantissa = mantissa.checked_add(part).ok_or_else(too_big)?;
    }
    if mantissa > MAX_MANTISSA {
        return Err(too_big());
    }
    // Masks keep each part in 32 bits; the mantissa is below 2^96.
    #[allow(clippy::cast_possible_truncation)]
    let (lo, mid, hi) = (
        mantissa as u32,
        (mantissa >> 32) as u32,
        (mantissa >> 64) as u32,
    );
    Ok(Decimal::from_parts(
        lo,
        mid,
        hi,
        negative && mantissa != 0,
        u32::from(dscale),
    ))
}

impl Encode for PgNumeric {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }

    #[inline]
    fn encode_field(&self, _ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            PgNumeric::Value(v) => numeric_send(v, buf),
            PgNumeric::NaN => numeric_special_send(NUMERIC_NAN, buf),
            PgNumeric::PosInfinity => numeric_special_send(NUMERIC_PINF, buf),
            PgNumeric::NegInfinity => numeric_special_send(NUMERIC_NINF, buf),
        }
        Ok(())
    }
}

impl Decode for PgNumeric {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }

    #[inline]
    fn decode(_ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        let raw = non_null(raw)?;
        let mut r = Reader::new(raw, "numeric");
        let _ndigits = r.u16()?;
        let _weight = r.i16()?;
        let special = match r.u16()? {
            NUMERIC_NAN => PgNumeric::NaN,
            NUMERIC_PINF => PgNumeric::PosInfinity,
            NUMERIC_NINF => PgNumeric::NegInfinity,
            _ => return numeric_recv(raw).map(PgNumeric::Value),
        };
        // numeric_recv on the server ignores the rest of a special value; be strict instead.
        let _dscale = r.u16()?;
        r.finish()?;
        Ok(special)
    }
}

impl Encode for Decimal {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }

    #[inline]
    fn encode_field(&self, _ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        numeric_send(self, buf);
        Ok(())
    }
}

impl Decode for Decimal {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }

    #[inline]
    fn decode(_ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        numeric_recv(non_null(raw)?)
    }
}
