//! Codec: ±infinity for date, timestamp and timestamptz, values no chrono (or `time`) type can hold, as
//! [`Infinity<T>`]. PostgreSQL stores them as the extreme values of the field:
//! `date` ±infinity is `i32::MAX`/`i32::MIN` days, `timestamp[tz]` ±infinity is
//! `i64::MAX`/`i64::MIN` µs. (numeric NaN and ±Infinity are [`PgNumeric`](super::PgNumeric).)

use super::{
    fixed, non_null, Decode, DecodeElement, DecodeError, Encode, EncodeElement, EncodeError,
};
use crate::codec::put_be;
use bytes::BytesMut;
use postgres_types::Type;

/// A date or timestamp that may also be `-infinity` or `infinity`, which PostgreSQL's date,
/// timestamp and timestamptz can store and chrono (or the `time` crate) cannot.
///
/// `Infinity<NaiveDate>` reads and writes `date`, `Infinity<NaiveDateTime>` `timestamp`,
/// `Infinity<DateTime<Utc>>` (or `FixedOffset`, `Local`) `timestamptz`. With the `time`
/// feature, `Infinity<time::Date>`, `Infinity<time::PrimitiveDateTime>` and
/// `Infinity<time::OffsetDateTime>` do the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Infinity<T> {
    /// `-infinity`: before every other value.
    NegInfinity,
    /// A finite value.
    Value(T),
    /// `infinity`: after every other value.
    PosInfinity,
}

impl<T> Infinity<T> {
    /// The finite value, if this is one.
    pub fn value(&self) -> Option<&T> {
        match self {
            Infinity::Value(v) => Some(v),
            _ => None,
        }
    }

    /// The finite value, if this is one.
    pub fn into_value(self) -> Option<T> {
        match self {
            Infinity::Value(v) => Some(v),
            _ => None,
        }
    }
}

impl<T> From<T> for Infinity<T> {
    fn from(v: T) -> Self {
        Infinity::Value(v)
    }
}

/// A chrono type whose PostgreSQL type has ±infinity: the types [`Infinity<T>`] wraps.
pub trait Infinite: Encode + Decode {
    /// Writes `infinity` (or `-infinity` when `positive` is false) as a whole field.
    fn encode_infinity(positive: bool, buf: &mut BytesMut);

    /// `Some(true)` for the bytes of `infinity`, `Some(false)` for `-infinity`, `None`
    /// otherwise.
    fn infinity_of(raw: &[u8]) -> Option<bool>;
}

/// Writes a date's ±infinity: length 4, then `i32::MAX` or `i32::MIN`.
#[inline]
pub(super) fn date_infinity(positive: bool, buf: &mut BytesMut) {
    put_be(buf, i32::to_be_bytes(4));
    put_be(
        buf,
        i32::to_be_bytes(if positive { i32::MAX } else { i32::MIN }),
    );
}

/// Writes a timestamp's ±infinity: length 8, then `i64::MAX` or `i64::MIN`.
#[inline]
pub(super) fn timestamp_infinity(positive: bool, buf: &mut BytesMut) {
    put_be(buf, i32::to_be_bytes(8));
    put_be(
        buf,
        i64::to_be_bytes(if positive { i64::MAX } else { i64::MIN }),
    );
}

/// `Some(true)` for a date's `infinity` bytes, `Some(false)` for `-infinity`, `None` otherwise.
#[inline]
pub(super) fn date_infinity_of(raw: &[u8]) -> Option<bool> {
    match fixed(raw, "date").map(i32::from_be_bytes) {
        Ok(i32::MAX) => Some(true),
        Ok(i32::MIN) => Some(false),
        _ => None,
    }
}

/// `Some(true)` for a timestamp's `infinity` bytes, `Some(false)` for `-infinity`, `None`
/// otherwise.
#[inline]
pub(super) fn timestamp_infinity_of(raw: &[u8]) -> Option<bool> {
    match fixed(raw, "timestamp").map(i64::from_be_bytes) {
        Ok(i64::MAX) => Some(true),
        Ok(i64::MIN) => Some(false),
        _ => None,
    }
}

/// Implements `Infinite` for types whose ±infinity `$write` writes and `$read` recognizes
/// (chrono's in `time`, the `time` crate's in `time_crate`).
#[allow(unused_macros)] // without both date-time features
macro_rules! infinite {
    ($write:ident, $read:ident: $($ty:ty),*) => {$(
        impl $crate::codec::Infinite for $ty {
            #[inline]
            fn encode_infinity(positive: bool, buf: &mut ::bytes::BytesMut) {
                $crate::codec::special::$write(positive, buf);
            }

            #[inline]
            fn infinity_of(raw: &[u8]) -> Option<bool> {
                $crate::codec::special::$read(raw)
            }
        }
    )*};
}

// Used by `time` (chrono, feature `chrono`) and `time_crate` (feature `time`).
#[allow(unused_imports)]
pub(super) use infinite;

impl<T: Infinite> Encode for Infinity<T> {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        <T as Encode>::accepts(ty)
    }

    #[inline]
    fn encode_field(&self, ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            Infinity::NegInfinity => T::encode_infinity(false, buf),
            Infinity::PosInfinity => T::encode_infinity(true, buf),
            Infinity::Value(v) => return v.encode_field(ty, buf),
        }
        Ok(())
    }
}

impl<T: Infinite> Decode for Infinity<T> {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        <T as Decode>::accepts(ty)
    }

    #[inline]
    fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        match T::infinity_of(non_null(raw)?) {
            Some(true) => Ok(Infinity::PosInfinity),
            Some(false) => Ok(Infinity::NegInfinity),
            None => T::decode(ty, raw).map(Infinity::Value),
        }
    }
}

impl<T: Infinite> EncodeElement for Infinity<T> {}
impl<T: Infinite> DecodeElement for Infinity<T> {}
