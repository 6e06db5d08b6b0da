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

use super::datetime::{
    beyond, checked_date, checked_timestamp, date_recv_days, time_recv_micros,
    timestamp_recv_micros, USECS_PER_DAY, USECS_PER_SEC,
};
use super::special::infinite;
use super::{non_null, Decode, DecodeError, Encode, EncodeError};
use bytes::BytesMut;
use chrono::{
    DateTime, Datelike, FixedOffset, Local, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc,
};
use postgres_types::Type;

/// `NaiveDate::num_days_from_ce` of 2000-01-01, PostgreSQL's epoch.
const EPOCH_DAYS_FROM_CE: i32 = 730_120;

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

/// Reads a TIME value.
#[inline]
fn time_recv(raw: &[u8]) -> Result<NaiveTime, DecodeError> {
    let micros = time_recv_micros(raw, "NaiveTime")?;
    naive_time(micros)
        .ok_or_else(|| DecodeError::Invalid(format!("time value {micros} µs is not a time")))
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

infinite!(date_infinity, date_infinity_of: NaiveDate);
infinite!(
    timestamp_infinity,
    timestamp_infinity_of: NaiveDateTime,
    DateTime<Utc>,
    DateTime<FixedOffset>,
    DateTime<Local>
);
