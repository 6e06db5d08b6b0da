//! The `time` crate's types (feature `time`) into date, time, timestamp and timestamptz, and
//! `Infinity<T>` of them. The cross-checks' other side is postgres-types' `with-time-0_3`.

use super::time::{date_theirs, infinity, timestamp_theirs};
use super::{eq, pair};
use pgbulk::Infinity;
use proptest::prelude::*;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};
use tokio_postgres::types::{Date as PgDate, Timestamp};

/// Microseconds in a day.
const USECS_PER_DAY: i64 = 86_400_000_000;
/// Julian day of 2000-01-01.
const EPOCH_JULIAN_DAY: i32 = 2_451_545;

/// 4714-11-24 BC (Julian day 0), PostgreSQL's first date; inside the `time` crate's range.
fn min_date() -> Date {
    Date::from_julian_day(0).unwrap()
}

fn ymd(y: i32, m: Month, d: u8) -> Date {
    Date::from_calendar_date(y, m, d).unwrap()
}

fn hms_micro(h: u8, m: u8, s: u8, us: u32) -> Time {
    Time::from_hms_micro(h, m, s, us).unwrap()
}

/// A date both the `time` crate and PostgreSQL hold.
pub fn date() -> impl Strategy<Value = Date> {
    (0..=Date::MAX.to_julian_day()).prop_map(|d| Date::from_julian_day(d).unwrap())
}

/// A time of day in whole microseconds.
pub fn time_of_day() -> impl Strategy<Value = Time> {
    (0u32..86_400, 0u32..1_000_000).prop_map(|(s, us)| {
        // s < 86400: hours < 24, minutes and seconds < 60, all fit in u8
        let [h, m, s] = [s / 3600, s / 60 % 60, s % 60].map(|v| u8::try_from(v).unwrap());
        hms_micro(h, m, s, us)
    })
}

/// µs since 2000-01-01 of a date and time.
fn since_2000(t: PrimitiveDateTime) -> i64 {
    let days = i64::from(t.date().to_julian_day() - EPOCH_JULIAN_DAY);
    let (h, m, s, us) = t.time().as_hms_micro();
    days * USECS_PER_DAY
        + (i64::from(h) * 3600 + i64::from(m) * 60 + i64::from(s)) * 1_000_000
        + i64::from(us)
}

/// A timestamp both the `time` crate and PostgreSQL hold, in whole microseconds.
pub fn timestamp() -> impl Strategy<Value = PrimitiveDateTime> {
    let min = since_2000(min_date().midnight());
    let max = since_2000(PrimitiveDateTime::new(
        Date::MAX,
        hms_micro(23, 59, 59, 999_999),
    ));
    (min..=max).prop_map(|us| {
        let date = Date::from_julian_day(
            i32::try_from(us.div_euclid(USECS_PER_DAY)).unwrap() + EPOCH_JULIAN_DAY,
        )
        .unwrap();
        let tod = us.rem_euclid(USECS_PER_DAY);
        PrimitiveDateTime::new(date, Time::MIDNIGHT + time::Duration::microseconds(tod))
    })
}

fn ts(y: i32, mo: Month, d: u8, h: u8, mi: u8, s: u8, us: u32) -> PrimitiveDateTime {
    PrimitiveDateTime::new(ymd(y, mo, d), hms_micro(h, mi, s, us))
}

fn ts_edges() -> Vec<PrimitiveDateTime> {
    vec![
        min_date().midnight(),
        PrimitiveDateTime::new(Date::MAX, hms_micro(23, 59, 59, 999_999)),
        ts(2000, Month::January, 1, 0, 0, 0, 0),
        ts(1999, Month::December, 31, 23, 59, 59, 999_999),
        ts(1970, Month::January, 1, 0, 0, 0, 0),
        ts(2024, Month::February, 29, 12, 34, 56, 789_012),
    ]
}

pair! {
    date_date: Date => "date";
    setup: "";
    strategy: date();
    edges: vec![min_date(), Date::MAX, ymd(2000, Month::January, 1), ymd(1999, Month::December, 31), ymd(0, Month::February, 29)];
    same: eq;
    theirs: Date = |v| *v, read: "v", write: "$2", same: eq;
    golden: [
        ("'2000-01-01'::date", ymd(2000, Month::January, 1)),
        ("'4714-11-24 BC'::date", min_date()),
        ("'1999-12-31'::date", ymd(1999, Month::December, 31)),
        ("'9999-12-31'::date", ymd(9999, Month::December, 31)),
    ];
}

pair! {
    time_time: Time => "time";
    setup: "";
    strategy: time_of_day();
    edges: vec![Time::MIDNIGHT, hms_micro(23, 59, 59, 999_999), hms_micro(12, 0, 0, 0)];
    same: eq;
    theirs: Time = |v| *v, read: "v", write: "$2", same: eq;
    golden: [
        ("'00:00'::time", Time::MIDNIGHT),
        ("'23:59:59.999999'::time", hms_micro(23, 59, 59, 999_999)),
        ("'12:34:56.5'::time", hms_micro(12, 34, 56, 500_000)),
    ];
}

pair! {
    primitive_date_time_timestamp: PrimitiveDateTime => "timestamp";
    setup: "";
    strategy: timestamp();
    edges: ts_edges();
    same: eq;
    theirs: PrimitiveDateTime = |v| *v, read: "v", write: "$2", same: eq;
    golden: [
        ("'2000-01-01 00:00:00'::timestamp", ts(2000, Month::January, 1, 0, 0, 0, 0)),
        ("'1999-12-31 23:59:59.999999'::timestamp", ts(1999, Month::December, 31, 23, 59, 59, 999_999)),
        ("'4714-11-24 00:00:00 BC'::timestamp", min_date().midnight()),
        ("'2024-02-29 12:34:56.789012'::timestamp", ts(2024, Month::February, 29, 12, 34, 56, 789_012)),
    ];
}

/// Offsets survive as instants only: PostgreSQL stores no offset.
fn same_instant(a: &OffsetDateTime, b: &OffsetDateTime) -> bool {
    a == b // `OffsetDateTime`'s `==` compares instants
}

/// `t` (UTC) seen at `offset_secs`, if the local time stays inside the crate's range.
fn at_offset(t: PrimitiveDateTime, offset_secs: i32) -> Option<OffsetDateTime> {
    t.assume_utc()
        .checked_to_offset(UtcOffset::from_whole_seconds(offset_secs).ok()?)
}

pair! {
    offset_date_time_timestamptz: OffsetDateTime => "timestamptz";
    setup: "";
    strategy: (timestamp(), -93_599i32..93_600).prop_filter_map("in range", |(t, o)| at_offset(t, o));
    edges: vec![
        ts(2000, Month::January, 1, 0, 0, 0, 0).assume_utc(),
        at_offset(ts(2000, Month::January, 1, 0, 0, 0, 0), 3600).unwrap(),
        at_offset(ts(1999, Month::December, 31, 23, 59, 59, 999_999), -86_399).unwrap(),
        min_date().midnight().assume_utc(),
    ];
    same: same_instant;
    theirs: OffsetDateTime = |v| *v, read: "v", write: "$2", same: same_instant;
    golden: [
        ("'2000-01-01 00:00:00+00'::timestamptz", ts(2000, Month::January, 1, 0, 0, 0, 0).assume_utc()),
        ("'2000-01-01 01:00:00+01'::timestamptz", at_offset(ts(2000, Month::January, 1, 0, 0, 0, 0), 3600).unwrap()),
        ("'2024-02-29 12:34:56.789012-08'::timestamptz", at_offset(ts(2024, Month::February, 29, 20, 34, 56, 789_012), -8 * 3600).unwrap()),
    ];
}

pair! {
    infinity_date_date: Infinity<Date> => "date";
    setup: "";
    strategy: infinity(date());
    edges: vec![Infinity::NegInfinity, Infinity::PosInfinity, Infinity::Value(min_date()), Infinity::Value(Date::MAX)];
    same: eq;
    theirs: PgDate<Date> = date_theirs, read: "v", write: "$2", same: eq;
    golden: [
        ("'infinity'::date", Infinity::PosInfinity),
        ("'-infinity'::date", Infinity::NegInfinity),
        ("'2000-01-02'::date", Infinity::Value(ymd(2000, Month::January, 2))),
    ];
}

pair! {
    infinity_primitive_date_time_timestamp: Infinity<PrimitiveDateTime> => "timestamp";
    setup: "";
    strategy: infinity(timestamp());
    edges: vec![Infinity::NegInfinity, Infinity::PosInfinity, Infinity::Value(ts(2000, Month::January, 1, 0, 0, 0, 0))];
    same: eq;
    theirs: Timestamp<PrimitiveDateTime> = timestamp_theirs, read: "v", write: "$2", same: eq;
    golden: [
        ("'infinity'::timestamp", Infinity::PosInfinity),
        ("'-infinity'::timestamp", Infinity::NegInfinity),
        ("'2000-01-01 00:00:01'::timestamp", Infinity::Value(ts(2000, Month::January, 1, 0, 0, 1, 0))),
    ];
}

pair! {
    infinity_offset_date_time_timestamptz: Infinity<OffsetDateTime> => "timestamptz";
    setup: "";
    strategy: infinity(timestamp().prop_map(PrimitiveDateTime::assume_utc));
    edges: vec![Infinity::NegInfinity, Infinity::PosInfinity];
    same: eq;
    theirs: Timestamp<OffsetDateTime> = timestamp_theirs, read: "v", write: "$2", same: eq;
    golden: [
        ("'infinity'::timestamptz", Infinity::PosInfinity),
        ("'-infinity'::timestamptz", Infinity::NegInfinity),
        ("'1970-01-01 00:00:00+00'::timestamptz", Infinity::Value(OffsetDateTime::UNIX_EPOCH)),
    ];
}

/// The edges the pairs above cannot show: values one side holds and the other does not.
mod edges {
    use super::{hms_micro, ts, ymd};
    use crate::fidelity::Row;
    use pgbulk::{BulkExt, ErrorKind};
    use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

    #[tokio::test]
    async fn values_the_time_crate_cannot_hold_are_decode_errors_naming_row_and_column() {
        let db = crate::db().await;
        for (sql, rust) in [
            ("SELECT 1 AS id, 'infinity'::date AS v", "time::Date"),
            (
                "SELECT 1 AS id, '-infinity'::timestamp AS v",
                "time::PrimitiveDateTime",
            ),
            (
                "SELECT 1 AS id, 'infinity'::timestamptz AS v",
                "time::OffsetDateTime",
            ),
            ("SELECT 1 AS id, '24:00:00'::time AS v", "time::Time"),
        ] {
            let err = match rust {
                "time::Date" => db
                    .client()
                    .bulk()
                    .copy_out_query::<Row<Date>>(sql)
                    .collect_vec()
                    .await
                    .map(drop),
                "time::PrimitiveDateTime" => db
                    .client()
                    .bulk()
                    .copy_out_query::<Row<PrimitiveDateTime>>(sql)
                    .collect_vec()
                    .await
                    .map(drop),
                "time::OffsetDateTime" => db
                    .client()
                    .bulk()
                    .copy_out_query::<Row<OffsetDateTime>>(sql)
                    .collect_vec()
                    .await
                    .map(drop),
                _ => db
                    .client()
                    .bulk()
                    .copy_out_query::<Row<Time>>(sql)
                    .collect_vec()
                    .await
                    .map(drop),
            }
            .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Decode, "{sql}: {err}");
            assert_eq!(err.row(), Some(0), "{sql}: {err}");
            assert_eq!(err.column(), Some("v"), "{sql}: {err}");
            assert!(
                err.to_string()
                    .contains(&format!("cannot be held by {rust}")),
                "{sql}: {err}"
            );
        }
        // past the crate's last date (9999-12-31 unless its `large-dates` feature is on)
        let sql = "SELECT 1 AS id, '10000-01-01'::date AS v";
        let got = db
            .client()
            .bulk()
            .copy_out_query::<Row<Date>>(sql)
            .collect_vec()
            .await;
        if Date::MAX.year() == 9999 {
            let err = got.unwrap_err();
            assert_eq!(err.column(), Some("v"), "{err}");
            assert!(
                err.to_string().contains("outside time::Date's range"),
                "{err}"
            );
        } else {
            assert_eq!(got.unwrap()[0].v, ymd(10_000, Month::January, 1));
        }
    }

    #[tokio::test]
    async fn dates_before_postgresql_s_first_are_encode_errors_and_nothing_is_written() {
        let db = crate::db().await;
        db.client()
            .batch_execute("CREATE TABLE fidelity (id int4, v timestamptz)")
            .await
            .unwrap();
        let first = ts(2000, Month::January, 1, 0, 0, 0, 0).assume_utc();
        // 4714-11-23 BC, the day before PostgreSQL's first date
        let before = Date::from_julian_day(-1).unwrap().midnight().assume_utc();
        let rows = [Row { id: 0, v: first }, Row { id: 1, v: before }];
        let err = db.client().bulk().copy_in(&rows).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Encode, "{err}");
        assert_eq!(err.row(), Some(1), "{err}");
        assert_eq!(err.field(), Some("v"), "{err}");
        assert!(
            err.to_string().contains("outside PostgreSQL's range"),
            "{err}"
        );
        assert_eq!(crate::count(&db, "fidelity").await, 0);
        // the client works afterwards
        db.client().bulk().copy_in(&rows[..1]).await.unwrap();
    }

    #[tokio::test]
    async fn sub_microseconds_are_truncated_toward_negative_infinity() {
        let db = crate::db().await;
        db.client()
            .batch_execute("CREATE TABLE fidelity (id int4, v timestamp)")
            .await
            .unwrap();
        // before 2000, so truncating the duration since 2000 toward zero would move it into 2000
        let late = PrimitiveDateTime::new(
            ymd(1999, Month::December, 31),
            Time::from_hms_nano(23, 59, 59, 999_999_900).unwrap(),
        );
        db.client()
            .bulk()
            .copy_in(&[Row { id: 0, v: late }])
            .await
            .unwrap();
        let text: String = db
            .client()
            .query_one("SELECT v::text FROM fidelity", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(text, "1999-12-31 23:59:59.999999");
        let back = db
            .client()
            .bulk()
            .copy_out_query::<Row<PrimitiveDateTime>>("SELECT id, v FROM fidelity")
            .collect_vec()
            .await
            .unwrap();
        assert_eq!(
            back[0].v,
            ts(1999, Month::December, 31, 23, 59, 59, 999_999)
        );
        assert_eq!(back[0].v.time(), hms_micro(23, 59, 59, 999_999));
    }
}
