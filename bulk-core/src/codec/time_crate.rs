//! Codec (feature `time`): date, time, timestamp, timestamptz for the `time` crate's `Date`,
//! `Time`, `PrimitiveDateTime` and `OffsetDateTime`.
//!
//! The layouts and the decisions are chrono's (see the chrono codec): µs precision, finer
//! nanoseconds truncated toward negative infinity (the calendar fields never change); values
//! PostgreSQL cannot store (before 4714-11-24 BC) are an `EncodeError::OutOfRange`; decoding
//! ±infinity, `time '24:00:00'` or a value outside the `time` crate's range (±9999 years, or
//! ±999999 with its `large-dates` feature) is a `DecodeError::OutOfRange`, never a clamped
//! value; [`Infinity<T>`](super::Infinity) reads and writes ±infinity. timestamptz stores an
//! instant: an `OffsetDateTime` is written as its UTC instant and reads back at offset UTC.

use super::datetime::{
    beyond, checked_date, checked_timestamp, date_recv_days, time_recv_micros,
    timestamp_recv_micros, USECS_PER_DAY, USECS_PER_SEC,
};
use super::special::infinite;
use super::{non_null, Decode, DecodeElement, DecodeError, Encode, EncodeElement, EncodeError};
use bytes::BytesMut;
use postgres_types::Type;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time};

/// Julian day of 2000-01-01, PostgreSQL's epoch.
const EPOCH_JULIAN_DAY: i32 = 2_451_545;
/// Unix time of 2000-01-01 00:00:00 UTC, in µs.
const EPOCH_UNIX_MICROS: i128 = 946_684_800_000_000;
/// The `time` crate's range, for decode errors.
const RANGE: &str = "9999 BC to 9999 AD without its `large-dates` feature";

/// Days since 2000-01-01 of a date.
#[inline]
fn date_days(v: Date) -> i64 {
    i64::from(v.to_julian_day()) - i64::from(EPOCH_JULIAN_DAY)
}

/// µs since midnight of a time of day, sub-µs truncated.
#[inline]
fn time_micros(v: Time) -> i64 {
    let (h, m, s, nanos) = v.as_hms_nano();
    (i64::from(h) * 3600 + i64::from(m) * 60 + i64::from(s)) * USECS_PER_SEC
        + i64::from(nanos / 1000)
}

/// Writes a DATE field: length 4, then days since 2000-01-01.
#[inline]
fn date_send(v: Date, buf: &mut BytesMut) -> Result<(), EncodeError> {
    let days = checked_date(date_days(v), &v)?;
    super::put_field4(buf, days.to_be_bytes());
    Ok(())
}

/// Writes a TIMESTAMP or TIMESTAMPTZ field from days since 2000-01-01 and µs since midnight.
#[inline]
fn timestamp_send(
    days: i64,
    micros: i64,
    pg_type: &str,
    v: &dyn std::fmt::Display,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    let micros = checked_timestamp(days, micros, pg_type, v)?;
    super::put_field8(buf, micros.to_be_bytes());
    Ok(())
}

/// A date from days since 2000-01-01, if the `time` crate holds it.
#[inline]
fn date_of(days: i64) -> Option<Date> {
    let julian = i32::try_from(days + i64::from(EPOCH_JULIAN_DAY)).ok()?;
    Date::from_julian_day(julian).ok()
}

/// A time of day from µs since midnight (`0..USECS_PER_DAY`).
#[inline]
fn time_of(micros: i64) -> Option<Time> {
    let secs = micros / USECS_PER_SEC;
    let h = u8::try_from(secs / 3600).ok()?;
    let m = u8::try_from(secs / 60 % 60).ok()?;
    let s = u8::try_from(secs % 60).ok()?;
    let us = u32::try_from(micros % USECS_PER_SEC).ok()?;
    Time::from_hms_micro(h, m, s, us).ok()
}

/// Reads a TIMESTAMP or TIMESTAMPTZ value as a date and time (UTC for timestamptz).
#[inline]
fn timestamp_recv(raw: &[u8], pg_type: &str, rust: &str) -> Result<PrimitiveDateTime, DecodeError> {
    let micros = timestamp_recv_micros(raw, pg_type, rust)?;
    let date = date_of(micros.div_euclid(USECS_PER_DAY));
    let time = time_of(micros.rem_euclid(USECS_PER_DAY));
    match (date, time) {
        (Some(date), Some(time)) => Ok(PrimitiveDateTime::new(date, time)),
        _ => Err(beyond(pg_type, &format_args!("{micros} µs"), rust, RANGE)),
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "time")))]
impl Encode for Date {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        *ty == Type::DATE
    }

    #[inline]
    fn encode_field(&self, _ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        date_send(*self, buf)
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "time")))]
impl Decode for Date {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        *ty == Type::DATE
    }

    #[inline]
    fn decode(_ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        let days = date_recv_days(non_null(raw)?, "time::Date")?;
        date_of(i64::from(days))
            .ok_or_else(|| beyond("date", &format_args!("{days} days"), "time::Date", RANGE))
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "time")))]
impl Encode for Time {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIME
    }

    #[inline]
    fn encode_field(&self, _ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        // 23:59:59.999999999 at most: always a valid PostgreSQL time.
        super::put_field8(buf, time_micros(*self).to_be_bytes());
        Ok(())
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "time")))]
impl Decode for Time {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIME
    }

    #[inline]
    fn decode(_ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        let micros = time_recv_micros(non_null(raw)?, "time::Time")?;
        time_of(micros)
            .ok_or_else(|| DecodeError::Invalid(format!("time value {micros} µs is not a time")))
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "time")))]
impl Encode for PrimitiveDateTime {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMP
    }

    #[inline]
    fn encode_field(&self, _ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        let (days, micros) = (date_days(self.date()), time_micros(self.time()));
        timestamp_send(days, micros, "timestamp", self, buf)
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "time")))]
impl Decode for PrimitiveDateTime {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMP
    }

    #[inline]
    fn decode(_ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        timestamp_recv(non_null(raw)?, "timestamp", "time::PrimitiveDateTime")
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "time")))]
impl Encode for OffsetDateTime {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ
    }

    #[inline]
    fn encode_field(&self, _ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        // The UTC instant, from the Unix time (no offset arithmetic that could leave the
        // crate's range); floor division truncates sub-µs toward negative infinity.
        let micros = self.unix_timestamp_nanos().div_euclid(1000) - EPOCH_UNIX_MICROS;
        // The crate's range (at most ±999999 years) keeps both parts far inside i64.
        let days = i64::try_from(micros.div_euclid(i128::from(USECS_PER_DAY))).unwrap_or(i64::MAX);
        let time = i64::try_from(micros.rem_euclid(i128::from(USECS_PER_DAY))).unwrap_or(0);
        timestamp_send(days, time, "timestamptz", self, buf)
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "time")))]
impl Decode for OffsetDateTime {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ
    }

    /// The instant, at offset UTC (PostgreSQL does not store the offset).
    #[inline]
    fn decode(_ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        timestamp_recv(non_null(raw)?, "timestamptz", "time::OffsetDateTime")
            .map(PrimitiveDateTime::assume_utc)
    }
}

infinite!(date_infinity, date_infinity_of: Date);
infinite!(
    timestamp_infinity,
    timestamp_infinity_of: PrimitiveDateTime,
    OffsetDateTime
);

impl EncodeElement for Date {}
impl DecodeElement for Date {}
impl EncodeElement for Time {}
impl DecodeElement for Time {}
impl EncodeElement for PrimitiveDateTime {}
impl DecodeElement for PrimitiveDateTime {}
impl EncodeElement for OffsetDateTime {}
impl DecodeElement for OffsetDateTime {}

/// Without a server: the `time` crate's bytes equal chrono's (whose codec the server-side
/// fidelity tests check) for the same value, and no input bytes make a decoder panic.
#[cfg(test)]
mod tests {
    use super::super::{Decode, Encode};
    use bytes::BytesMut;
    use postgres_types::Type;
    use proptest::prelude::*;
    use time::{Date, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

    fn field<T: Encode>(v: &T, ty: &Type) -> Vec<u8> {
        let mut buf = BytesMut::new();
        v.encode_field(ty, &mut buf).unwrap();
        buf.to_vec()
    }

    /// Microseconds since 1970 of 4714-11-24 BC and of 9999-12-31 23:59:59.999999.
    const MIN_UNIX_MICROS: i64 = -210_866_803_200_000_000;
    const MAX_UNIX_MICROS: i64 = 253_402_300_799_999_999;

    proptest! {
        #[test]
        fn bytes_equal_chrono_s(us in MIN_UNIX_MICROS..=MAX_UNIX_MICROS, offset in -86_399i32..86_400) {
            let ours = OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000).unwrap();
            let chrono = chrono::DateTime::from_timestamp_micros(us).unwrap();
            let (utc, naive) = (field(&ours, &Type::TIMESTAMPTZ), field(&chrono, &Type::TIMESTAMPTZ));
            prop_assert_eq!(&utc, &naive);
            // the offset changes nothing: the instant is written
            if let Some(shifted) = ours.checked_to_offset(UtcOffset::from_whole_seconds(offset).unwrap()) {
                prop_assert_eq!(field(&shifted, &Type::TIMESTAMPTZ), utc.clone());
            }
            let local = PrimitiveDateTime::new(ours.date(), ours.time());
            prop_assert_eq!(field(&local, &Type::TIMESTAMP), field(&chrono.naive_utc(), &Type::TIMESTAMP));
            prop_assert_eq!(field(&ours.date(), &Type::DATE), field(&chrono.date_naive(), &Type::DATE));
            prop_assert_eq!(field(&ours.time(), &Type::TIME), field(&chrono.time(), &Type::TIME));
            // and reads back
            prop_assert_eq!(OffsetDateTime::decode(&Type::TIMESTAMPTZ, Some(&utc[4..])).unwrap(), ours);
        }

        #[test]
        fn any_bytes_decode_without_panicking(raw in proptest::collection::vec(any::<u8>(), 0..12)) {
            let _ = Date::decode(&Type::DATE, Some(&raw));
            let _ = Time::decode(&Type::TIME, Some(&raw));
            let _ = PrimitiveDateTime::decode(&Type::TIMESTAMP, Some(&raw));
            let _ = OffsetDateTime::decode(&Type::TIMESTAMPTZ, Some(&raw));
        }
    }

    #[test]
    fn extremes_are_errors_not_panics() {
        // i64::MAX - 1 µs: a finite PostgreSQL-shaped value far past the crate's range
        let far = (i64::MAX - 1).to_be_bytes();
        let err = PrimitiveDateTime::decode(&Type::TIMESTAMP, Some(&far)).unwrap_err();
        assert!(
            err.to_string()
                .contains("outside time::PrimitiveDateTime's range"),
            "{err}"
        );
        let day = 86_400_000_000i64.to_be_bytes();
        let err = Time::decode(&Type::TIME, Some(&day)).unwrap_err();
        assert!(err.to_string().contains("24:00:00"), "{err}");
        let mut buf = BytesMut::new();
        let before = Date::from_julian_day(-1).unwrap();
        assert!(before.encode_field(&Type::DATE, &mut buf).is_err());
    }
}
