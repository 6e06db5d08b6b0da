//! Codec: interval, for [`Interval`], in `interval_send` layout: `int64` microseconds,
//! `int32` days, `int32` months. The three parts are kept apart, as PostgreSQL keeps them:
//! `1 month`, `30 days` and `720 hours` are three different values.

use super::{fixed, non_null, Decode, DecodeError, Encode, EncodeError};
use crate::codec::put_be;
use bytes::BytesMut;
use postgres_types::Type;

/// A PostgreSQL `interval`: months, days and microseconds, each kept as PostgreSQL keeps it
/// (no normalization between the parts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Interval {
    /// Whole months (a year is 12).
    pub months: i32,
    /// Whole days.
    pub days: i32,
    /// Microseconds (hours, minutes and seconds).
    pub microseconds: i64,
}

impl Interval {
    /// An interval of `months`, `days` and `microseconds`.
    pub const fn new(months: i32, days: i32, microseconds: i64) -> Self {
        Interval {
            months,
            days,
            microseconds,
        }
    }
}

/// Writes an INTERVAL field: length 16, then µs, days, months.
#[inline]
fn interval_send(v: Interval, buf: &mut BytesMut) {
    put_be(buf, i32::to_be_bytes(16));
    put_be(buf, i64::to_be_bytes(v.microseconds));
    put_be(buf, i32::to_be_bytes(v.days));
    put_be(buf, i32::to_be_bytes(v.months));
}

/// Reads an INTERVAL value.
#[inline]
fn interval_recv(raw: &[u8]) -> Result<Interval, DecodeError> {
    let b: [u8; 16] = fixed(raw, "interval")?;
    let mut us = [0u8; 8];
    let mut days = [0u8; 4];
    let mut months = [0u8; 4];
    us.copy_from_slice(&b[..8]);
    days.copy_from_slice(&b[8..12]);
    months.copy_from_slice(&b[12..]);
    Ok(Interval {
        months: i32::from_be_bytes(months),
        days: i32::from_be_bytes(days),
        microseconds: i64::from_be_bytes(us),
    })
}

impl Encode for Interval {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        *ty == Type::INTERVAL
    }

    #[inline]
    fn encode_field(&self, _ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        interval_send(*self, buf);
        Ok(())
    }
}

impl Decode for Interval {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        *ty == Type::INTERVAL
    }

    #[inline]
    fn decode(_ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        interval_recv(non_null(raw)?)
    }
}
