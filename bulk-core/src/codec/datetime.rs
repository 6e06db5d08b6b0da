//! What the date and time codecs of every date-time crate share (chrono's in `time`, the `time`
//! crate's in `time_crate`): PostgreSQL's ranges and epoch arithmetic, and reading the raw
//! day and microsecond counts with the errors for values no Rust type can hold.

use super::{fixed, DecodeError, EncodeError};
use std::fmt;

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
