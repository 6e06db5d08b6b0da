//! Codec: date, time, timestamp, timestamptz, for chrono's `NaiveDate`, `NaiveTime`,
//! `NaiveDateTime` and `DateTime<Utc>`/`DateTime<FixedOffset>`/`DateTime<Local>`.
//!
//! Layouts: date is `int32` days since 2000-01-01, time is `int64` µs since midnight,
//! timestamp and timestamptz are `int64` µs since 2000-01-01 00:00:00 (UTC for timestamptz).
//!
//! Decisions, where chrono and PostgreSQL differ:
//! - Sub-microsecond precision is truncated toward negative infinity (the nanoseconds of the
//!   second are cut to whole µs), so the calendar fields never change: `1999-12-31
//!   23:59:59.9999999` becomes `1999-12-31 23:59:59.999999`. (postgres-types truncates the
//!   duration since 2000 toward zero instead, which moves such a value into 2000.)
//! - A chrono leap second (nanoseconds >= 1e9, shown as `:60`) is counted forward, the way
//!   PostgreSQL itself reads `23:59:60`: it becomes the first instant of the next minute. For a
//!   `time`, `23:59:60` exactly becomes `24:00:00`; past that it is out of range.
//! - Values PostgreSQL cannot store (before 4714-11-24 BC) are an `EncodeError::OutOfRange`.
//! - Decoding `infinity`/`-infinity`, `time '24:00:00'` or anything outside chrono's range is a
//!   `DecodeError::OutOfRange`, never a clamped or changed value. [`Infinity<T>`](super::Infinity)
//!   reads and writes ±infinity.
//! - timestamptz stores an instant, not an offset: a `DateTime<FixedOffset>` is written as its
//!   UTC instant and reads back with offset +00:00 (equal as an instant); a `DateTime<Local>`
//!   reads back in the process's local time zone.

use super::{fixed, non_null, Decode, DecodeError, Encode, EncodeError};
use bytes::BytesMut;
use chrono::{
    DateTime, Datelike, FixedOffset, Local, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc,
};
use postgres_types::Type;
use std::fmt;

/// `NaiveDate::num_days_from_ce` of 2000-01-01, PostgreSQL's epoch.
const EPOCH_DAYS_FROM_CE: i32 = 730_120;
/// Microseconds in a day.
pub(super) const USECS_PER_DAY: i64 = 86_400_000_000;
/// Microseconds in a second.
pub(super) const USECS_PER_SEC: i64 = 1_000_000;
/// First valid date, in days since 2000-01-01: 4714-11-24 BC (Julian day 0).
const MIN_DATE: i32 = -2_451_545;
/// First date past the valid range (5874898-01-01), in days since 2000-01-01.
const END_DATE: i32 = 2_147_483_494 - 2_451_545;
/// First valid timestamp, in µs since 2000-01-01: 4714-11-24 00:00:00 BC.
const MIN_TIMESTAMP: i64 = -211_813_488_000_000_000;
/// First timestamp past the valid range (294277-01-01 00:00:00), in µs since 2000-01-01.
const END_TIMESTAMP: i64 = 9_223_367_961_600_000_000;

/// Checks days since 2000-01-01 against PostgreSQL's date range; `v` shows the value in the
/// error.
#[inline]
pub(super) fn checked_date(days: i64, v: &dyn fmt::Display) -> Result<i32, EncodeError> {
    match i32::try_from(days) {
        Ok(days) if (MIN_DATE..END_DATE).contains(&days) => Ok(days),
        _ => Err(EncodeError::OutOfRange(format!(
            "date {v} is outside PostgreSQL's date range (4714-11-24 BC to 5874897-12-31)"
        ))),
    }
}

/// µs since 2000-01-01 00:00:00 of `days` since 2000-01-01 and `time_micros` since midnight,
/// checked against PostgreSQL's timestamp range; `v` shows the value in the error.
#[inline]
pub(super) fn checked_timestamp(
    days: i64,
    time_micros: i64,
    pg_type: &str,
    v: &dyn fmt::Display,
) -> Result<i64, EncodeError> {
    let micros = days
        .checked_mul(USECS_PER_DAY)
        .and_then(|d| d.checked_add(time_micros))
        .filter(|us| (MIN_TIMESTAMP..END_TIMESTAMP).contains(us));
    micros.ok_or_else(|| {
        EncodeError::OutOfRange(format!(
            "{pg_type} {v} is outside PostgreSQL's range (4714-11-24 00:00:00 BC to 294276-12-31 23:59:59.999999)"
        ))
    })
}

/// Days since 2000-01-01 of a date, checked against PostgreSQL's date range.
#[inline]
fn date_days(v: NaiveDate) -> Result<i32, EncodeError> {
    // chrono's range (about ±262,000 years) keeps this subtraction far from overflow.
    checked_date(i64::from(v.num_days_from_ce() - EPOCH_DAYS_FROM_CE), &v)
}

/// µs since midnight of a time of day, counting a leap second (nanos >= 1e9) forward.
#[inline]
fn time_of_day_micros(v: NaiveTime) -> i64 {
    i64::from(v.num_seconds_from_midnight()) * USECS_PER_SEC + i64::from(v.nanosecond() / 1000)
}

/// µs since 2000-01-01 00:00:00 of a date and time, checked against PostgreSQL's range.
#[inline]
fn timestamp_micros(v: NaiveDateTime, pg_type: &str) -> Result<i64, EncodeError> {
    let days = i64::from(v.date().num_days_from_ce() - EPOCH_DAYS_FROM_CE);
    checked_timestamp(days, time_of_day_micros(v.time()), pg_type, &v)
}

/// Writes a DATE field: length 4, then days since 2000-01-01.
#[inline]
fn date_send(v: NaiveDate, buf: &mut BytesMut) -> Result<(), EncodeError> {
    let days = date_days(v)?;
    super::put_field4(buf, days.to_be_bytes());
    Ok(())
}

/// Writes a TIME field: length 8, then µs since midnight.
#[inline]
fn time_send(v: NaiveTime, buf: &mut BytesMut) -> Result<(), EncodeError> {
    let micros = time_of_day_micros(v);
    if micros > USECS_PER_DAY {
        return Err(EncodeError::OutOfRange(format!(
            "time {v} (a leap second) is past 24:00:00, the largest PostgreSQL time"
        )));
    }
    super::put_field8(buf, micros.to_be_bytes());
    Ok(())
}

/// Writes a TIMESTAMP or TIMESTAMPTZ field: length 8, then µs since 2000-01-01 00:00:00.
#[inline]
fn timestamp_send(v: NaiveDateTime, pg_type: &str, buf: &mut BytesMut) -> Result<(), EncodeError> {
    let micros = timestamp_micros(v, pg_type)?;
    super::put_field8(buf, micros.to_be_bytes());
    Ok(())
}

/// The error for an infinite date or timestamp.
fn infinite(pg_type: &str, value: &str, rust: &str) -> DecodeError {
    DecodeError::OutOfRange(format!(
        "{pg_type} '{value}' cannot be held by {rust}; map it to NULL in the query \
         (e.g. NULLIF(col, '{value}')) and read an Option, or filter it out"
    ))
}

/// The error for a date or timestamp outside the Rust type's range.
pub(super) fn beyond(
    pg_type: &str,
    amount: &dyn fmt::Display,
    rust: &str,
    range: &str,
) -> DecodeError {
    DecodeError::OutOfRange(format!(
        "{pg_type} {amount} from 2000-01-01 is outside {rust}'s range ({range})"
    ))
}

/// Reads a DATE value's days since 2000-01-01; ±infinity is an error naming `rust`.
#[inline]
pub(super) fn date_recv_days(raw: &[u8], rust: &str) -> Result<i32, DecodeError> {
    match fixed(raw, "date").map(i32::from_be_bytes)? {
        i32::MAX => Err(infinite("date", "infinity", rust)),
        i32::MIN => Err(infinite("date", "-infinity", rust)),
        days => Ok(days),
    }
}

/// Reads a DATE value.
#[inline]
fn date_recv(raw: &[u8]) -> Result<NaiveDate, DecodeError> {
    let days = date_recv_days(raw, "NaiveDate")?;
    days.checked_add(EPOCH_DAYS_FROM_CE)
        .and_then(NaiveDate::from_num_days_from_ce_opt)
        .ok_or_else(|| {
            beyond(
                "date",
                &format_args!("{days} days"),
                "NaiveDate",
                "about 262000 BC to 262000 AD",
            )
        })
}

/// Splits µs since midnight (`0..USECS_PER_DAY`) into a `NaiveTime`.
#[inline]
fn naive_time(micros: i64) -> Option<NaiveTime> {
    let secs = u32::try_from(micros / USECS_PER_SEC).ok()?;
    let nanos = u32::try_from(micros % USECS_PER_SEC * 1000).ok()?;
    NaiveTime::from_num_seconds_from_midnight_opt(secs, nanos)
}

/// Reads a TIME value's µs since midnight, `0..USECS_PER_DAY`; `24:00:00` is an error naming
/// `rust`.
#[inline]
pub(super) fn time_recv_micros(raw: &[u8], rust: &str) -> Result<i64, DecodeError> {
    let micros = fixed(raw, "time").map(i64::from_be_bytes)?;
    if micros == USECS_PER_DAY {
        return Err(DecodeError::OutOfRange(format!(
            "time 24:00:00 cannot be held by {rust}; map it in the query \
             (e.g. NULLIF(col, '24:00:00')) and read an Option"
        )));
    }
    if !(0..USECS_PER_DAY).contains(&micros) {
        return Err(DecodeError::Invalid(format!(
            "time value {micros} µs is outside 00:00:00..=24:00:00"
        )));
    }
    Ok(micros)
}

/// Reads a TIME value.
#[inline]
fn time_recv(raw: &[u8]) -> Result<NaiveTime, DecodeError> {
    let micros = time_recv_micros(raw, "NaiveTime")?;
    naive_time(micros)
        .ok_or_else(|| DecodeError::Invalid(format!("time value {micros} µs is not a time")))
}

/// Reads a TIMESTAMP or TIMESTAMPTZ value's µs since 2000-01-01 00:00:00; ±infinity is an
/// error naming `rust`.
#[inline]
pub(super) fn timestamp_recv_micros(
    raw: &[u8],
    pg_type: &str,
    rust: &str,
) -> Result<i64, DecodeError> {
    match fixed(raw, pg_type).map(i64::from_be_bytes)? {
        i64::MAX => Err(infinite(pg_type, "infinity", rust)),
        i64::MIN => Err(infinite(pg_type, "-infinity", rust)),
        micros => Ok(micros),
    }
}

/// Reads a TIMESTAMP or TIMESTAMPTZ value as a UTC/naive date and time.
#[inline]
fn timestamp_recv(raw: &[u8], pg_type: &str, rust: &str) -> Result<NaiveDateTime, DecodeError> {
    let micros = timestamp_recv_micros(raw, pg_type, rust)?;
    let days = micros.div_euclid(USECS_PER_DAY);
    let date = i32::try_from(days)
        .ok()
        .and_then(|d| d.checked_add(EPOCH_DAYS_FROM_CE))
        .and_then(NaiveDate::from_num_days_from_ce_opt);
    let time = naive_time(micros.rem_euclid(USECS_PER_DAY));
    match (date, time) {
        (Some(date), Some(time)) => Ok(NaiveDateTime::new(date, time)),
        _ => Err(beyond(
            pg_type,
            &format_args!("{micros} µs"),
            rust,
            "about 262000 BC to 262000 AD",
        )),
    }
}

impl Encode for NaiveDate {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        *ty == Type::DATE
    }

    #[inline]
    fn encode_field(&self, _ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        date_send(*self, buf)
    }
}

impl Decode for NaiveDate {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        *ty == Type::DATE
    }

    #[inline]
    fn decode(_ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        date_recv(non_null(raw)?)
    }
}

impl Encode for NaiveTime {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIME
    }

    #[inline]
    fn encode_field(&self, _ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        time_send(*self, buf)
    }
}

impl Decode for NaiveTime {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIME
    }

    #[inline]
    fn decode(_ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        time_recv(non_null(raw)?)
    }
}

impl Encode for NaiveDateTime {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMP
    }

    #[inline]
    fn encode_field(&self, _ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        timestamp_send(*self, "timestamp", buf)
    }
}

impl Decode for NaiveDateTime {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMP
    }

    #[inline]
    fn decode(_ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        timestamp_recv(non_null(raw)?, "timestamp", "NaiveDateTime")
    }
}

impl Encode for DateTime<Utc> {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ
    }

    #[inline]
    fn encode_field(&self, _ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        timestamp_send(self.naive_utc(), "timestamptz", buf)
    }
}

impl Decode for DateTime<Utc> {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ
    }

    #[inline]
    fn decode(_ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        timestamp_recv(non_null(raw)?, "timestamptz", "DateTime<Utc>").map(|t| t.and_utc())
    }
}

impl Encode for DateTime<FixedOffset> {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ
    }

    #[inline]
    fn encode_field(&self, _ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        timestamp_send(self.naive_utc(), "timestamptz", buf)
    }
}

impl Decode for DateTime<FixedOffset> {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ
    }

    /// The instant, with offset +00:00 (PostgreSQL does not store the offset).
    #[inline]
    fn decode(_ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        timestamp_recv(non_null(raw)?, "timestamptz", "DateTime<FixedOffset>")
            .map(|t| t.and_utc().fixed_offset())
    }
}

impl Encode for DateTime<Local> {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ
    }

    #[inline]
    fn encode_field(&self, _ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        timestamp_send(self.naive_utc(), "timestamptz", buf)
    }
}

impl Decode for DateTime<Local> {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ
    }

    /// The instant, in the process's local time zone.
    #[inline]
    fn decode(_ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        timestamp_recv(non_null(raw)?, "timestamptz", "DateTime<Local>")
            .map(|t| t.and_utc().with_timezone(&Local))
    }
}
