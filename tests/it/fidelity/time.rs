//! chrono types into date, time, timestamp and timestamptz; `Infinity<T>`; `Interval`.

use super::{eq, pair};
use chrono::{DateTime, FixedOffset, Local, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use pgbulk::{Infinity, Interval};
use proptest::prelude::*;
use tokio_postgres::types::{Date, Timestamp};

/// Microseconds since 1970 of 4714-11-24 00:00:00 BC, PostgreSQL's first timestamp.
const MIN_MICROS: i64 = -210_866_803_200_000_000;

fn min_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(-4713, 11, 24).unwrap()
}

/// A timestamp both chrono and PostgreSQL hold, in whole microseconds.
pub fn timestamp() -> impl Strategy<Value = NaiveDateTime> {
    let max = NaiveDateTime::MAX.and_utc().timestamp_micros();
    (MIN_MICROS..=max).prop_map(|us| DateTime::from_timestamp_micros(us).unwrap().naive_utc())
}

/// A date both chrono and PostgreSQL hold.
pub fn date() -> impl Strategy<Value = NaiveDate> {
    let min = min_date().num_days_from_ce_();
    (min..=NaiveDate::MAX.num_days_from_ce_())
        .prop_map(|d| NaiveDate::from_num_days_from_ce_opt(d).unwrap())
}

/// `Datelike::num_days_from_ce` without importing the trait into every module.
trait DaysFromCe {
    fn num_days_from_ce_(&self) -> i32;
}

impl DaysFromCe for NaiveDate {
    fn num_days_from_ce_(&self) -> i32 {
        chrono::Datelike::num_days_from_ce(self)
    }
}

fn ts(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
}

fn ts_edges() -> Vec<NaiveDateTime> {
    vec![
        min_date().and_hms_opt(0, 0, 0).unwrap(),
        NaiveDateTime::MAX.with_nanosecond_(999_999_000),
        ts("2000-01-01 00:00:00"),
        ts("1999-12-31 23:59:59.999999"),
        ts("1970-01-01 00:00:00"),
        ts("2024-02-29 12:34:56.789012"),
    ]
}

trait WithNanos {
    fn with_nanosecond_(self, n: u32) -> Self;
}

impl WithNanos for NaiveDateTime {
    fn with_nanosecond_(self, n: u32) -> Self {
        chrono::Timelike::with_nanosecond(&self, n).unwrap()
    }
}

pair! {
    naive_date_date: NaiveDate => "date";
    setup: "";
    strategy: date();
    edges: vec![min_date(), NaiveDate::MAX, NaiveDate::from_ymd_opt(2000, 1, 1).unwrap(), NaiveDate::from_ymd_opt(1999, 12, 31).unwrap(), NaiveDate::from_ymd_opt(0, 2, 29).unwrap()];
    same: eq;
    theirs: NaiveDate = |v| *v, read: "v", write: "$2", same: eq;
    golden: [
        ("'2000-01-01'::date", NaiveDate::from_ymd_opt(2000, 1, 1).unwrap()),
        ("'4714-11-24 BC'::date", min_date()),
        ("'1999-12-31'::date", NaiveDate::from_ymd_opt(1999, 12, 31).unwrap()),
        ("'262142-12-31'::date", NaiveDate::MAX),
    ];
}

pair! {
    naive_time_time: NaiveTime => "time";
    setup: "";
    strategy: (0u32..86_400, 0u32..1_000_000).prop_map(|(s, us)| NaiveTime::from_num_seconds_from_midnight_opt(s, us * 1000).unwrap());
    edges: vec![NaiveTime::MIN, NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999).unwrap(), NaiveTime::from_hms_opt(12, 0, 0).unwrap()];
    same: eq;
    theirs: NaiveTime = |v| *v, read: "v", write: "$2", same: eq;
    golden: [
        ("'00:00'::time", NaiveTime::MIN),
        ("'23:59:59.999999'::time", NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999).unwrap()),
        ("'12:34:56.5'::time", NaiveTime::from_hms_milli_opt(12, 34, 56, 500).unwrap()),
    ];
}

pair! {
    naive_date_time_timestamp: NaiveDateTime => "timestamp";
    setup: "";
    strategy: timestamp();
    edges: ts_edges();
    same: eq;
    theirs: NaiveDateTime = |v| *v, read: "v", write: "$2", same: eq;
    golden: [
        ("'2000-01-01 00:00:00'::timestamp", ts("2000-01-01 00:00:00")),
        ("'1999-12-31 23:59:59.999999'::timestamp", ts("1999-12-31 23:59:59.999999")),
        ("'4714-11-24 00:00:00 BC'::timestamp", min_date().and_hms_opt(0, 0, 0).unwrap()),
        ("'2024-02-29 12:34:56.789012'::timestamp", ts("2024-02-29 12:34:56.789012")),
    ];
}

pair! {
    date_time_utc_timestamptz: DateTime<Utc> => "timestamptz";
    setup: "";
    strategy: timestamp().prop_map(|t| t.and_utc());
    edges: ts_edges().into_iter().map(|t| t.and_utc()).collect();
    same: eq;
    theirs: DateTime<Utc> = |v| *v, read: "v", write: "$2", same: eq;
    golden: [
        ("'2000-01-01 00:00:00+00'::timestamptz", ts("2000-01-01 00:00:00").and_utc()),
        ("'2024-02-29 12:34:56.789012-08'::timestamptz", ts("2024-02-29 20:34:56.789012").and_utc()),
    ];
}

/// Offsets survive as instants only: PostgreSQL stores no offset.
fn same_instant<Tz: chrono::TimeZone>(a: &DateTime<Tz>, b: &DateTime<Tz>) -> bool {
    a.naive_utc() == b.naive_utc()
}

fn fixed(t: NaiveDateTime, offset_secs: i32) -> DateTime<FixedOffset> {
    t.and_utc()
        .with_timezone(&FixedOffset::east_opt(offset_secs).unwrap())
}

pair! {
    date_time_fixed_offset_timestamptz: DateTime<FixedOffset> => "timestamptz";
    setup: "";
    // offsets keep the local time inside chrono's range
    strategy: (timestamp(), -86_399i32..86_400).prop_filter_map("in range", |(t, o)| {
        let utc = t.and_utc();
        FixedOffset::east_opt(o).and_then(|off| utc.checked_add_offset_(off))
    });
    edges: vec![fixed(ts("2000-01-01 00:00:00"), 3600), fixed(ts("1999-12-31 23:59:59.999999"), -86_399)];
    same: same_instant;
    theirs: DateTime<FixedOffset> = |v| *v, read: "v", write: "$2", same: same_instant;
    golden: [
        ("'2000-01-01 01:00:00+01'::timestamptz", fixed(ts("2000-01-01 00:00:00"), 3600)),
        ("'2024-02-29 12:34:56.789012-08'::timestamptz", fixed(ts("2024-02-29 20:34:56.789012"), -8 * 3600)),
    ];
}

trait AddOffset {
    fn checked_add_offset_(self, off: FixedOffset) -> Option<DateTime<FixedOffset>>;
}

impl AddOffset for DateTime<Utc> {
    fn checked_add_offset_(self, off: FixedOffset) -> Option<DateTime<FixedOffset>> {
        let local = self
            .naive_utc()
            .checked_add_signed(chrono::TimeDelta::seconds(i64::from(off.local_minus_utc())))?;
        (local >= min_date().and_hms_opt(0, 0, 0).unwrap()).then(|| self.with_timezone(&off))
    }
}

pair! {
    date_time_local_timestamptz: DateTime<Local> => "timestamptz";
    setup: "";
    // years 1900..9999: the local zone's offset is defined there
    strategy: (-2_208_988_800_000_000i64..253_402_300_799_000_000).prop_map(|us| DateTime::from_timestamp_micros(us).unwrap().with_timezone(&Local));
    edges: vec![ts("2000-01-01 00:00:00").and_utc().with_timezone(&Local)];
    same: same_instant;
    theirs: DateTime<Local> = |v| *v, read: "v", write: "$2", same: same_instant;
    golden: [("'2000-01-01 00:00:00+00'::timestamptz", ts("2000-01-01 00:00:00").and_utc().with_timezone(&Local))];
}

/// `Infinity<T>` as tokio-postgres' `Date<T>`/`Timestamp<T>` (for chrono's types and the
/// `time` crate's).
pub fn date_theirs<T: Copy>(v: &Infinity<T>) -> Date<T> {
    match v {
        Infinity::NegInfinity => Date::NegInfinity,
        Infinity::Value(d) => Date::Value(*d),
        Infinity::PosInfinity => Date::PosInfinity,
    }
}

pub fn timestamp_theirs<T: Copy>(v: &Infinity<T>) -> Timestamp<T> {
    match v {
        Infinity::NegInfinity => Timestamp::NegInfinity,
        Infinity::Value(d) => Timestamp::Value(*d),
        Infinity::PosInfinity => Timestamp::PosInfinity,
    }
}

/// Mostly finite values of `s`, sometimes ±infinity.
pub fn infinity<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> impl Strategy<Value = Infinity<T>> {
    prop_oneof![
        1 => Just(Infinity::NegInfinity),
        1 => Just(Infinity::PosInfinity),
        8 => s.prop_map(Infinity::Value),
    ]
}

pair! {
    infinity_naive_date_date: Infinity<NaiveDate> => "date";
    setup: "";
    strategy: infinity(date());
    edges: vec![Infinity::NegInfinity, Infinity::PosInfinity, Infinity::Value(min_date()), Infinity::Value(NaiveDate::MAX)];
    same: eq;
    theirs: Date<NaiveDate> = date_theirs, read: "v", write: "$2", same: eq;
    golden: [
        ("'infinity'::date", Infinity::PosInfinity),
        ("'-infinity'::date", Infinity::NegInfinity),
        ("'2000-01-02'::date", Infinity::Value(NaiveDate::from_ymd_opt(2000, 1, 2).unwrap())),
    ];
}

pair! {
    infinity_naive_date_time_timestamp: Infinity<NaiveDateTime> => "timestamp";
    setup: "";
    strategy: infinity(timestamp());
    edges: vec![Infinity::NegInfinity, Infinity::PosInfinity, Infinity::Value(ts("2000-01-01 00:00:00"))];
    same: eq;
    theirs: Timestamp<NaiveDateTime> = timestamp_theirs, read: "v", write: "$2", same: eq;
    golden: [
        ("'infinity'::timestamp", Infinity::PosInfinity),
        ("'-infinity'::timestamp", Infinity::NegInfinity),
        ("'2000-01-01 00:00:01'::timestamp", Infinity::Value(ts("2000-01-01 00:00:01"))),
    ];
}

pair! {
    infinity_date_time_utc_timestamptz: Infinity<DateTime<Utc>> => "timestamptz";
    setup: "";
    strategy: infinity(timestamp().prop_map(|t| t.and_utc()));
    edges: vec![Infinity::NegInfinity, Infinity::PosInfinity];
    same: eq;
    theirs: Timestamp<DateTime<Utc>> = timestamp_theirs, read: "v", write: "$2", same: eq;
    golden: [
        ("'infinity'::timestamptz", Infinity::PosInfinity),
        ("'-infinity'::timestamptz", Infinity::NegInfinity),
        ("'1970-01-01 00:00:00+00'::timestamptz", Infinity::Value(DateTime::UNIX_EPOCH)),
    ];
}

/// An interval as the server's text input reads it, field by field.
fn interval_text(v: &Interval) -> String {
    format!(
        "{} months {} days {} microseconds",
        v.months, v.days, v.microseconds
    )
}

/// The largest time part (µs) the cross-check's other side (the server's text input and
/// `extract`) handles exactly; binary COPY itself takes any `int8` on every version. From
/// PostgreSQL 15 on, all of `i64`. Before, the text input reads each field into an `int`
/// ("interval field value out of range" past `i32::MAX` microseconds), `interval2tm` holds
/// the hours in an `int` ("interval out of range") and, on 13, `extract` returns `float8`.
/// The pair's values are shared by its checks, so on 13 and 14 the round trip uses the
/// narrower range too; 15 to 18 run the whole range.
fn interval_time_limit() -> i64 {
    if crate::server::version_num() >= 150_000 {
        i64::MAX
    } else {
        i64::from(i32::MAX)
    }
}

fn interval_edges() -> Vec<Interval> {
    let max = interval_time_limit();
    let min = if max == i64::MAX { i64::MIN } else { -max };
    vec![
        Interval::default(),
        Interval::new(i32::MAX, i32::MIN, max),
        Interval::new(i32::MIN, i32::MAX, min),
        Interval::new(1, 0, 0),
        Interval::new(0, 30, 0),
        Interval::new(0, 0, max.min(30 * 86_400_000_000)),
    ]
}

pair! {
    interval_interval: Interval => "interval";
    setup: "";
    strategy: {
        let limit = interval_time_limit();
        (any::<i32>(), any::<i32>(), -limit..=limit).prop_map(|(m, d, us)| Interval::new(m, d, us))
    };
    edges: interval_edges();
    same: eq;
    // tokio-postgres has no interval type: the server's own field extraction and text input
    // are the other side.
    theirs: String = interval_text,
        read: "format('%s months %s days %s microseconds', \
               (extract(year from v) * 12 + extract(month from v))::int8, extract(day from v)::int8, \
               (extract(hour from v) * 3600000000 + extract(minute from v) * 60000000 \
                + extract(microseconds from v))::int8)",
        write: "$2::text::interval", same: eq;
    golden: [
        ("'1 year 2 mons 3 days 04:05:06.000007'::interval", Interval::new(14, 3, 14_706_000_007)),
        ("'-1 days'::interval", Interval::new(0, -1, 0)),
        ("'0'::interval", Interval::default()),
    ];
}
