//! Codec tests without a server: golden bytes, byte-for-byte comparison with postgres-types'
//! `ToSql`/`FromSql` (and `rust_decimal`'s), round trips, and proptests that feed arbitrary and
//! truncated bytes to every decoder.
//!
//! The golden bytes were checked against PostgreSQL 15's own
//! `COPY (SELECT ..) TO STDOUT (FORMAT binary)` output; `server_golden_bytes` holds fields
//! copied from it verbatim.

use super::{Decode, DecodeError, Encode, EncodeError};
use bytes::BytesMut;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use postgres_types::{FromSql, Kind, ToSql, Type};
use proptest::prelude::*;
use rust_decimal::Decimal;
use std::borrow::Cow;
use std::str::FromStr;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// helpers

/// The whole field (length prefix included) our codec writes for `v`.
fn field<T: Encode + ?Sized>(v: &T, ty: &Type) -> Vec<u8> {
    assert!(T::accepts(ty), "codec does not accept {ty}");
    let mut buf = BytesMut::new();
    v.encode_field(ty, &mut buf).expect("encode");
    buf.to_vec()
}

/// The error our codec returns for `v`.
fn encode_err<T: Encode + ?Sized>(v: &T, ty: &Type) -> EncodeError {
    let mut buf = BytesMut::new();
    v.encode_field(ty, &mut buf)
        .expect_err("encoding should fail")
}

/// Splits a field into its value bytes (`None` for NULL), checking the length prefix.
fn value_of(field: &[u8]) -> Option<&[u8]> {
    let (len, rest) = field.split_at(4);
    let len = i32::from_be_bytes(len.try_into().unwrap());
    if len == -1 {
        assert!(rest.is_empty());
        None
    } else {
        assert_eq!(usize::try_from(len).unwrap(), rest.len(), "length prefix");
        Some(rest)
    }
}

/// Our value bytes for `v` (no length prefix); panics on NULL.
fn ours<T: Encode + ?Sized>(v: &T, ty: &Type) -> Vec<u8> {
    value_of(&field(v, ty)).expect("not NULL").to_vec()
}

/// postgres-types' (or `rust_decimal`'s) value bytes for `v`.
fn theirs<T: ToSql>(v: &T, ty: &Type) -> Vec<u8> {
    let mut buf = BytesMut::new();
    v.to_sql(ty, &mut buf).expect("reference to_sql");
    buf.to_vec()
}

/// Decodes a whole field (length prefix included) with our codec.
fn decode_field<T: Decode>(ty: &Type, field: &[u8]) -> Result<T, DecodeError> {
    assert!(T::accepts(ty), "codec does not accept {ty}");
    T::decode(ty, value_of(field))
}

/// Encodes then decodes `v` with our codecs.
fn round_trip<E: Encode + ?Sized, D: Decode>(v: &E, ty: &Type) -> D {
    decode_field(ty, &field(v, ty)).expect("decode")
}

/// Value bytes from a hex string with optional spaces.
fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn ts(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

// ---------------------------------------------------------------------------------------------
// accepts

#[test]
fn accepts_exact_types_only() {
    assert!(<i16 as Encode>::accepts(&Type::INT2));
    assert!(!<i16 as Encode>::accepts(&Type::INT4));
    assert!(!<i32 as Encode>::accepts(&Type::INT8));
    assert!(!<i64 as Decode>::accepts(&Type::INT4));
    assert!(!<f64 as Encode>::accepts(&Type::FLOAT4));
    assert!(!<f32 as Decode>::accepts(&Type::NUMERIC));
    assert!(<bool as Decode>::accepts(&Type::BOOL));
    for ty in [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::NAME] {
        assert!(<str as Encode>::accepts(&ty));
        assert!(<String as Decode>::accepts(&ty));
    }
    let citext = Type::new("citext".into(), 91_234, Kind::Simple, "public".into());
    assert!(<&str as Encode>::accepts(&citext));
    assert!(<Cow<'static, str> as Decode>::accepts(&citext));
    assert!(!<String as Encode>::accepts(&Type::BYTEA));
    // json/jsonb as raw text (jsonb with its version byte), enums by label
    assert!(<String as Decode>::accepts(&Type::JSON));
    assert!(<&str as Encode>::accepts(&Type::JSONB));
    assert!(!<String as Decode>::accepts(&Type::INT4));
    assert!(<Vec<u8> as Encode>::accepts(&Type::BYTEA));
    assert!(!<Vec<u8> as Encode>::accepts(&Type::INT2_ARRAY));
    assert!(!<Vec<u8> as Decode>::accepts(&Type::TEXT));
    assert!(<Vec<i32> as Encode>::accepts(&Type::INT4_ARRAY));
    assert!(!<Vec<i32> as Encode>::accepts(&Type::INT8_ARRAY));
    assert!(!<Vec<i32> as Encode>::accepts(&Type::INT4));
    assert!(<Vec<Option<String>> as Decode>::accepts(
        &Type::VARCHAR_ARRAY
    ));
    assert!(<&[Option<i64>] as Encode>::accepts(&Type::INT8_ARRAY));
    assert!(<Option<Decimal> as Encode>::accepts(&Type::NUMERIC));
    assert!(!<Option<Decimal> as Decode>::accepts(&Type::FLOAT8));
    assert!(<DateTime<Utc> as Encode>::accepts(&Type::TIMESTAMPTZ));
    assert!(!<DateTime<Utc> as Encode>::accepts(&Type::TIMESTAMP));
    assert!(!<NaiveDateTime as Decode>::accepts(&Type::TIMESTAMPTZ));
    assert!(<Uuid as Decode>::accepts(&Type::UUID));
    assert!(!<Uuid as Decode>::accepts(&Type::TEXT));
}

// ---------------------------------------------------------------------------------------------
// golden bytes (whole fields, length prefix included)

#[test]
fn golden_scalars() {
    assert_eq!(field(&true, &Type::BOOL), hex("00000001 01"));
    assert_eq!(field(&false, &Type::BOOL), hex("00000001 00"));
    assert_eq!(field(&-2i16, &Type::INT2), hex("00000002 FFFE"));
    assert_eq!(
        field(&0x0102_0304i32, &Type::INT4),
        hex("00000004 01020304")
    );
    assert_eq!(
        field(&i64::MIN, &Type::INT8),
        hex("00000008 8000000000000000")
    );
    assert_eq!(field(&-0.0f32, &Type::FLOAT4), hex("00000004 80000000"));
    assert_eq!(
        field(&1.5f64, &Type::FLOAT8),
        hex("00000008 3FF8000000000000")
    );
    let nan = f64::from_bits(0x7FF8_0000_0000_0ABC);
    assert_eq!(field(&nan, &Type::FLOAT8), hex("00000008 7FF8000000000ABC"));
    assert_eq!(field("héllo", &Type::TEXT), hex("00000006 68C3A96C6C6F"));
    assert_eq!(field("", &Type::VARCHAR), hex("00000000"));
    assert_eq!(field(&b"\x00\xff"[..], &Type::BYTEA), hex("00000002 00FF"));
    assert_eq!(field(&None::<i32>, &Type::INT4), hex("FFFFFFFF"));
    assert_eq!(field(&Some(7i16), &Type::INT2), hex("00000002 0007"));
    let u = Uuid::from_str("a1a2a3a4-b1b2-c1c2-d1d2-d3d4d5d6d7d8").unwrap();
    assert_eq!(
        field(&u, &Type::UUID),
        hex("00000010 a1a2a3a4b1b2c1c2d1d2d3d4d5d6d7d8")
    );
}

#[test]
fn golden_time() {
    assert_eq!(
        field(&date(2000, 1, 1), &Type::DATE),
        hex("00000004 00000000")
    );
    assert_eq!(
        field(&date(1999, 12, 31), &Type::DATE),
        hex("00000004 FFFFFFFF")
    );
    assert_eq!(
        field(&date(2024, 2, 29), &Type::DATE),
        hex("00000004 00002279")
    );
    assert_eq!(
        field(&date(1970, 1, 1), &Type::DATE)[4..],
        (-10_957i32).to_be_bytes()
    );
    let t = NaiveTime::from_hms_micro_opt(12, 34, 56, 789_012).unwrap();
    assert_eq!(field(&t, &Type::TIME), hex("00000008 0000000A8BE62614"));
    assert_eq!(
        field(&ts("2000-01-01 00:00:00.000001"), &Type::TIMESTAMP),
        hex("00000008 0000000000000001")
    );
    assert_eq!(
        field(&ts("1999-12-31 23:59:59.999999"), &Type::TIMESTAMP),
        hex("00000008 FFFFFFFFFFFFFFFF")
    );
    let utc = ts("2000-01-02 00:00:00").and_utc();
    assert_eq!(
        field(&utc, &Type::TIMESTAMPTZ)[4..],
        86_400_000_000i64.to_be_bytes()
    );
}

#[test]
fn golden_numeric() {
    let cases: &[(&str, &str)] = &[
        // ndigits weight sign dscale digits…
        ("0", "0000 0000 0000 0000"),
        ("0.000", "0000 0000 0000 0003"),
        ("-0.00", "0000 0000 0000 0002"),
        ("1", "0001 0000 0000 0000 0001"),
        ("1.50", "0002 0000 0000 0002 0001 1388"),
        ("-12345.678", "0003 0001 4000 0003 0001 0929 1A7C"),
        ("10000", "0001 0001 0000 0000 0001"),
        ("100000000.0", "0001 0002 0000 0001 0001"),
        ("0.0001", "0001 FFFF 0000 0004 0001"),
        ("0.00001", "0001 FFFE 0000 0005 03E8"),
        ("0.00010000", "0001 FFFF 0000 0008 0001"),
        ("0.0000000000000000000000000001", "0001 FFF9 0000 001C 0001"),
        (
            "79228162514264337593543950335",
            "0008 0007 0000 0000 0007 240C 0659 0592 10F1 172F 112B 014F",
        ),
        (
            "-79228162514264337593543950335",
            "0008 0007 4000 0000 0007 240C 0659 0592 10F1 172F 112B 014F",
        ),
        (
            "7.9228162514264337593543950335",
            "0008 0000 0000 001C 0007 240C 0659 0592 10F1 172F 112B 014F",
        ),
    ];
    for (text, bytes) in cases {
        let d = dec(text);
        assert_eq!(ours(&d, &Type::NUMERIC), hex(bytes), "encoding {text}");
        let back: Decimal = Decimal::decode(&Type::NUMERIC, Some(&hex(bytes))).unwrap();
        assert_eq!(back, d, "decoding {text}");
        assert_eq!(back.scale(), d.scale(), "scale of {text}");
    }
    assert_eq!(Decimal::MAX, dec("79228162514264337593543950335"));
    assert_eq!(Decimal::MIN, dec("-79228162514264337593543950335"));
}

#[test]
fn golden_arrays() {
    // int4[] {1,NULL,3}
    let v = vec![Some(1i32), None, Some(3)];
    assert_eq!(
        field(&v, &Type::INT4_ARRAY),
        hex("00000028 00000001 00000001 00000017 00000003 00000001
             00000004 00000001 FFFFFFFF 00000004 00000003")
    );
    // empty text[]: ndim 0, no dimensions
    let empty: Vec<String> = Vec::new();
    assert_eq!(
        field(&empty, &Type::TEXT_ARRAY),
        hex("0000000C 00000000 00000000 00000019")
    );
    // varchar[] takes the element OID from the column (1043), not from the Rust type
    let names: &[&str] = &["a"];
    assert_eq!(
        field(&names, &Type::VARCHAR_ARRAY),
        hex("00000019 00000001 00000000 00000413 00000001 00000001 00000001 61")
    );
    // bytea is not an array of u8
    assert_eq!(field(&vec![1u8, 2], &Type::BYTEA), hex("00000002 0102"));
    // an array of bytea
    let blobs = vec![vec![1u8], vec![]];
    assert_eq!(
        field(&blobs, &Type::BYTEA_ARRAY),
        hex("0000001D 00000001 00000000 00000011 00000002 00000001 00000001 01 00000000")
    );
}

/// Fields copied verbatim from PostgreSQL 15.18's `COPY (SELECT <expr>) TO STDOUT (FORMAT
/// binary)`, read by our decoders.
#[test]
fn server_golden_bytes() {
    fn read<T: Decode>(ty: &Type, hex_field: &str) -> Result<T, DecodeError> {
        decode_field(ty, &hex(hex_field))
    }
    // '4714-11-24 BC'::date, the first PostgreSQL date
    assert_eq!(
        read::<NaiveDate>(&Type::DATE, "00000004 ffda97a7").unwrap(),
        date(-4713, 11, 24)
    );
    assert_eq!(
        field(&date(-4713, 11, 24), &Type::DATE),
        hex("00000004 ffda97a7")
    );
    // '4714-11-24 00:00:00 BC'::timestamp, the first PostgreSQL timestamp
    let first = date(-4713, 11, 24).and_hms_opt(0, 0, 0).unwrap();
    assert_eq!(
        field(&first, &Type::TIMESTAMP),
        hex("00000008 fd0f7cc1411fa000")
    );
    // '294276-12-31 23:59:59.999999'::timestamp and '5874897-12-31'::date: beyond chrono
    let err = read::<NaiveDateTime>(&Type::TIMESTAMP, "00000008 7fffff5bb3b29fff").unwrap_err();
    assert!(matches!(err, DecodeError::OutOfRange(_)), "{err}");
    let err = read::<NaiveDate>(&Type::DATE, "00000004 7fda970c").unwrap_err();
    assert!(matches!(err, DecodeError::OutOfRange(_)), "{err}");
    // 'infinity'::timestamp, '-infinity'::date
    let err = read::<NaiveDateTime>(&Type::TIMESTAMP, "00000008 7fffffffffffffff").unwrap_err();
    assert!(err.to_string().contains("'infinity'"), "{err}");
    let err = read::<NaiveDate>(&Type::DATE, "00000004 80000000").unwrap_err();
    assert!(err.to_string().contains("'-infinity'"), "{err}");
    // '24:00:00'::time
    let err = read::<NaiveTime>(&Type::TIME, "00000008 000000141dd76000").unwrap_err();
    assert!(err.to_string().contains("24:00:00"), "{err}");
    // 'NaN' / 'Infinity' / '-Infinity'::numeric (the server sends dscale 0x20 with infinities)
    for (bytes, name) in [
        ("00000008 00000000c0000000", "'NaN'"),
        ("00000008 00000000d0000020", "'Infinity'"),
        ("00000008 00000000f0000020", "'-Infinity'"),
    ] {
        let err = read::<Decimal>(&Type::NUMERIC, bytes).unwrap_err();
        assert!(matches!(err, DecodeError::OutOfRange(_)), "{err}");
        assert!(err.to_string().contains(name), "{err}");
    }
    // '{{1},{2}}'::int4[]
    let err = read::<Vec<i32>>(
        &Type::INT4_ARRAY,
        "0000002c 00000002 00000000 00000017 00000002 00000001 00000001 00000001
         00000004 00000001 00000004 00000002",
    )
    .unwrap_err();
    assert!(err.to_string().contains("ndim 2"), "{err}");
    // '[-5:-4]={NULL,9}'::int4[]
    let v = read::<Vec<Option<i32>>>(
        &Type::INT4_ARRAY,
        "00000020 00000001 00000001 00000017 00000002 fffffffb ffffffff 00000004 00000009",
    )
    .unwrap();
    assert_eq!(v, vec![None, Some(9)]);
}

// ---------------------------------------------------------------------------------------------
// agreement with postgres-types / rust_decimal

#[test]
fn matches_postgres_types() {
    fn check<T: Encode + ToSql + Decode + for<'a> FromSql<'a> + PartialEq + std::fmt::Debug>(
        v: &T,
        ty: &Type,
    ) {
        let mine = ours(v, ty);
        assert_eq!(mine, theirs(v, ty), "bytes of {v:?} as {ty}");
        assert_eq!(&T::from_sql(ty, &mine).unwrap(), v, "they read our {v:?}");
        assert_eq!(&<T as Decode>::decode(ty, Some(&mine)).unwrap(), v);
    }
    check(&true, &Type::BOOL);
    check(&i16::MIN, &Type::INT2);
    check(&i32::MAX, &Type::INT4);
    check(&i64::MIN, &Type::INT8);
    check(&f32::INFINITY, &Type::FLOAT4);
    check(&-0.0f64, &Type::FLOAT8);
    check(&String::from("ünïcødé ✓"), &Type::TEXT);
    check(&String::from("x"), &Type::BPCHAR);
    check(&vec![0u8, 1, 255], &Type::BYTEA);
    check(
        &Uuid::from_u128(0x0123_4567_89ab_cdef_0011_2233_4455_6677),
        &Type::UUID,
    );
    check(&date(1, 1, 1), &Type::DATE);
    check(&date(9999, 12, 31), &Type::DATE);
    check(
        &NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999).unwrap(),
        &Type::TIME,
    );
    check(&ts("1900-03-04 05:06:07.080910"), &Type::TIMESTAMP);
    check(
        &ts("2999-03-04 05:06:07.000001").and_utc(),
        &Type::TIMESTAMPTZ,
    );
    check(&vec![1i64, -2, i64::MAX], &Type::INT8_ARRAY);
    check(
        &vec![Some(String::from("a")), None, Some(String::new())],
        &Type::TEXT_ARRAY,
    );
    check(&vec![Some(dec("1.5")), None], &Type::NUMERIC_ARRAY);
    for text in [
        "1",
        "-1",
        "1.50",
        "-12345.678",
        "0.0001",
        "0.00001",
        "123456789.123456789",
        "0.0000000000000000000000000001",
        "79228162514264337593543950335",
        "-79228162514264337593543950335",
        "7.9228162514264337593543950335",
    ] {
        check(&dec(text), &Type::NUMERIC);
    }
}

#[test]
fn numeric_differs_from_rust_decimal_only_where_postgres_would() {
    // rust_decimal sends zero with dscale 0 and keeps trailing zero base-10000 digits in the
    // integer part; PostgreSQL (and we) keep the scale and strip them. Both read each other.
    for text in ["0.000", "10000", "100000000.0"] {
        let d = dec(text);
        let mine = ours(&d, &Type::NUMERIC);
        let reference = theirs(&d, &Type::NUMERIC);
        assert_ne!(mine, reference, "{text}: expected the known difference");
        assert_eq!(Decimal::from_sql(&Type::NUMERIC, &mine).unwrap(), d);
        assert_eq!(
            <Decimal as Decode>::decode(&Type::NUMERIC, Some(&reference)).unwrap(),
            d
        );
    }
}

#[test]
fn empty_array_differs_from_postgres_types_as_postgres_does() {
    // postgres-types writes ndim 1 with length 0; PostgreSQL's array_send writes ndim 0.
    let empty: Vec<i32> = Vec::new();
    let reference = theirs(&empty, &Type::INT4_ARRAY);
    assert_eq!(
        reference,
        hex("00000001 00000000 00000017 00000000 00000001")
    );
    assert_eq!(
        ours(&empty, &Type::INT4_ARRAY),
        hex("00000000 00000000 00000017")
    );
    let back: Vec<i32> = Decode::decode(&Type::INT4_ARRAY, Some(&reference)).unwrap();
    assert!(back.is_empty());
}

#[test]
fn sub_microsecond_truncates_toward_negative_infinity() {
    // 1999-12-31 23:59:59.9999999 stays in 1999 (postgres-types would move it to 2000).
    let t = ts("1999-12-31 23:59:59.9999999");
    assert_eq!(ours(&t, &Type::TIMESTAMP), (-1i64).to_be_bytes());
    assert_eq!(theirs(&t, &Type::TIMESTAMP), 0i64.to_be_bytes());
    let t = ts("2000-01-01 00:00:00.0000019");
    assert_eq!(ours(&t, &Type::TIMESTAMP), 1i64.to_be_bytes());
    let t = NaiveTime::from_hms_nano_opt(0, 0, 0, 999).unwrap();
    assert_eq!(ours(&t, &Type::TIME), 0i64.to_be_bytes());
}

// ---------------------------------------------------------------------------------------------
// round trips and edge values

#[test]
fn round_trip_scalars() {
    for v in [i16::MIN, -1, 0, i16::MAX] {
        assert_eq!(round_trip::<_, i16>(&v, &Type::INT2), v);
    }
    for v in [i32::MIN, 0, i32::MAX] {
        assert_eq!(round_trip::<_, i32>(&v, &Type::INT4), v);
    }
    for v in [i64::MIN, 0, i64::MAX] {
        assert_eq!(round_trip::<_, i64>(&v, &Type::INT8), v);
    }
    for bits in [
        0x7FC0_0001u32,
        0xFFC0_0000,
        0x8000_0000,
        0x7F80_0000,
        0xFF80_0000,
        1,
    ] {
        let back: f32 = round_trip(&f32::from_bits(bits), &Type::FLOAT4);
        assert_eq!(back.to_bits(), bits);
    }
    for v in [
        f64::NAN,
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MIN_POSITIVE,
    ] {
        let back: f64 = round_trip(&v, &Type::FLOAT8);
        assert_eq!(back.to_bits(), v.to_bits());
    }
    assert!(round_trip::<_, bool>(&true, &Type::BOOL));
    assert_eq!(round_trip::<_, String>("", &Type::TEXT), "");
    assert_eq!(
        round_trip::<_, String>(&"日本語 ✓", &Type::TEXT),
        "日本語 ✓"
    );
    let b: Box<str> = round_trip(&Box::<str>::from("boxed"), &Type::NAME);
    assert_eq!(&*b, "boxed");
    let c: Cow<'static, str> = round_trip(&Cow::Borrowed("cow"), &Type::VARCHAR);
    assert_eq!(c, "cow");
    let bytes: Box<[u8]> = round_trip(&Box::<[u8]>::from(&b"\0\x01"[..]), &Type::BYTEA);
    assert_eq!(&*bytes, b"\0\x01");
    let none: Option<String> = round_trip(&None::<&str>, &Type::TEXT);
    assert_eq!(none, None);
    let some: Option<i64> = round_trip(&Some(5i64), &Type::INT8);
    assert_eq!(some, Some(5));
    assert!(matches!(
        i32::decode(&Type::INT4, None),
        Err(DecodeError::UnexpectedNull)
    ));
}

#[test]
fn round_trip_arrays_times_numerics() {
    let empty: Vec<Option<i32>> = round_trip(&Vec::<i32>::new(), &Type::INT4_ARRAY);
    assert!(empty.is_empty());
    let with_nulls = vec![None, Some(String::from("x")), None];
    let back: Vec<Option<String>> = round_trip(&with_nulls, &Type::TEXT_ARRAY);
    assert_eq!(back, with_nulls);
    let slice: &[i16] = &[1, 2, 3];
    let back: Vec<i16> = round_trip(&slice, &Type::INT2_ARRAY);
    assert_eq!(back, slice);
    let boxed: Box<[Decimal]> = vec![dec("1.00"), dec("-0.5")].into_boxed_slice();
    let back: Box<[Decimal]> = round_trip(&boxed, &Type::NUMERIC_ARRAY);
    assert_eq!(back[0].scale(), 2);
    assert_eq!(back, boxed);
    let null_array: Option<Vec<i32>> = round_trip(&None::<Vec<i32>>, &Type::INT4_ARRAY);
    assert_eq!(null_array, None);

    // time edges
    for d in [date(-4713, 11, 24), date(1, 1, 1), NaiveDate::MAX] {
        assert_eq!(round_trip::<_, NaiveDate>(&d, &Type::DATE), d);
    }
    for t in [
        NaiveTime::MIN,
        NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999).unwrap(),
    ] {
        assert_eq!(round_trip::<_, NaiveTime>(&t, &Type::TIME), t);
    }
    for t in [
        date(-4713, 11, 24).and_hms_opt(0, 0, 0).unwrap(),
        ts("1969-12-31 23:59:59.999999"),
        NaiveDate::MAX
            .and_hms_micro_opt(23, 59, 59, 999_999)
            .unwrap(),
    ] {
        assert_eq!(round_trip::<_, NaiveDateTime>(&t, &Type::TIMESTAMP), t);
        let utc = t.and_utc();
        assert_eq!(
            round_trip::<_, DateTime<Utc>>(&utc, &Type::TIMESTAMPTZ),
            utc
        );
    }

    // numeric edges keep their scale
    for text in [
        "0",
        "0.000",
        "-0",
        "1.50",
        "-1.5000",
        "0.0000000000000000000000000001",
    ] {
        let d = dec(text);
        let back: Decimal = round_trip(&d, &Type::NUMERIC);
        assert_eq!(back, d);
        assert_eq!(back.scale(), d.scale(), "{text}");
    }
    for d in [
        Decimal::MAX,
        Decimal::MIN,
        Decimal::new(1, 28),
        Decimal::new(-1, 28),
    ] {
        assert_eq!(round_trip::<_, Decimal>(&d, &Type::NUMERIC), d);
    }
}

#[test]
fn text_rejects_nul() {
    let err = encode_err("ab\0c", &Type::TEXT);
    assert!(matches!(err, EncodeError::NulInText { offset: 2 }), "{err}");
    let err = encode_err(&String::from("\0"), &Type::VARCHAR);
    assert!(matches!(err, EncodeError::NulInText { offset: 0 }));
    // inside an array too
    let err = encode_err(&vec!["ok", "no\0"], &Type::TEXT_ARRAY);
    assert!(matches!(err, EncodeError::NulInText { offset: 2 }));
}

#[test]
fn text_rejects_invalid_utf8() {
    let err = String::decode(&Type::TEXT, Some(b"\xff\xfe")).unwrap_err();
    assert!(matches!(err, DecodeError::Invalid(_)));
    assert!(err.to_string().contains("UTF-8"), "{err}");
}

#[test]
fn time_out_of_range_encode() {
    let err = encode_err(&date(-4713, 11, 23), &Type::DATE);
    assert!(matches!(err, EncodeError::OutOfRange(_)), "{err}");
    assert!(err.to_string().contains("date"), "{err}");
    let before = date(-4713, 11, 23)
        .and_hms_micro_opt(23, 59, 59, 999_999)
        .unwrap();
    let err = encode_err(&before, &Type::TIMESTAMP);
    assert!(matches!(err, EncodeError::OutOfRange(_)), "{err}");
    let err = encode_err(&NaiveDateTime::MIN.and_utc(), &Type::TIMESTAMPTZ);
    assert!(err.to_string().starts_with("timestamptz"), "{err}");
    // the extremes chrono can hold at the top are inside PostgreSQL's range
    assert_eq!(field(&NaiveDateTime::MAX, &Type::TIMESTAMP).len(), 12);
    assert_eq!(field(&NaiveDate::MAX, &Type::DATE).len(), 8);
}

#[test]
fn leap_seconds() {
    // 23:59:60.5 on a date rolls into the next day, as PostgreSQL reads '23:59:60.5'.
    let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
        .unwrap()
        .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
        .unwrap();
    let back: NaiveDateTime = round_trip(&leap, &Type::TIMESTAMP);
    assert_eq!(back, ts("2017-01-01 00:00:00.5"));
    // time 23:59:60 is 24:00:00 …
    let t = NaiveTime::from_hms_nano_opt(23, 59, 59, 1_000_000_000).unwrap();
    assert_eq!(ours(&t, &Type::TIME), 86_400_000_000i64.to_be_bytes());
    // … and past that is out of range
    let t = NaiveTime::from_hms_nano_opt(23, 59, 59, 1_000_001_000).unwrap();
    assert!(matches!(
        encode_err(&t, &Type::TIME),
        EncodeError::OutOfRange(_)
    ));
    // a leap second elsewhere counts forward too
    let t = NaiveTime::from_hms_nano_opt(12, 0, 59, 1_250_000_000).unwrap();
    let back: NaiveTime = round_trip(&t, &Type::TIME);
    assert_eq!(back, NaiveTime::from_hms_milli_opt(12, 1, 0, 250).unwrap());
}

#[test]
fn time_infinities_and_out_of_range_decode() {
    let err = NaiveDateTime::decode(&Type::TIMESTAMP, Some(&i64::MAX.to_be_bytes())).unwrap_err();
    assert!(matches!(err, DecodeError::OutOfRange(_)));
    assert!(
        err.to_string()
            .starts_with("timestamp 'infinity' cannot be held by NaiveDateTime; "),
        "{err}"
    );
    let err =
        DateTime::<Utc>::decode(&Type::TIMESTAMPTZ, Some(&i64::MIN.to_be_bytes())).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("timestamptz '-infinity' cannot be held by DateTime<Utc>"),
        "{err}"
    );
    let err = NaiveDate::decode(&Type::DATE, Some(&i32::MAX.to_be_bytes())).unwrap_err();
    assert!(err.to_string().starts_with("date 'infinity'"), "{err}");
    let err = NaiveDate::decode(&Type::DATE, Some(&i32::MIN.to_be_bytes())).unwrap_err();
    assert!(err.to_string().starts_with("date '-infinity'"), "{err}");
    // valid in PostgreSQL, beyond chrono: 294276-12-31 and 5874897-12-31
    let err = NaiveDateTime::decode(
        &Type::TIMESTAMP,
        Some(&9_223_367_961_599_999_999i64.to_be_bytes()),
    )
    .unwrap_err();
    assert!(matches!(err, DecodeError::OutOfRange(_)), "{err}");
    let err = NaiveDate::decode(&Type::DATE, Some(&2_145_031_948i32.to_be_bytes())).unwrap_err();
    assert!(matches!(err, DecodeError::OutOfRange(_)), "{err}");
    // time 24:00:00 is valid in PostgreSQL but NaiveTime would have to call it a leap second
    let err = NaiveTime::decode(&Type::TIME, Some(&86_400_000_000i64.to_be_bytes())).unwrap_err();
    assert!(matches!(err, DecodeError::OutOfRange(_)), "{err}");
    let err = NaiveTime::decode(&Type::TIME, Some(&(-1i64).to_be_bytes())).unwrap_err();
    assert!(matches!(err, DecodeError::Invalid(_)), "{err}");
}

#[test]
fn numeric_decode_never_rounds() {
    fn numeric(ndigits: u16, weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [ndigits, weight.cast_unsigned(), sign, dscale] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        for d in digits {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }
    let decode = |raw: &[u8]| Decimal::decode(&Type::NUMERIC, Some(raw));
    for (sign, name) in [
        (0xC000, "'NaN'"),
        (0xD000, "'Infinity'"),
        (0xF000, "'-Infinity'"),
    ] {
        let err = decode(&numeric(0, 0, sign, 0, &[])).unwrap_err();
        assert!(matches!(err, DecodeError::OutOfRange(_)), "{err}");
        assert!(err.to_string().contains(name), "{err}");
    }
    // dscale 29
    let err = decode(&numeric(1, 0, 0, 29, &[1])).unwrap_err();
    assert!(matches!(err, DecodeError::OutOfRange(_)), "{err}");
    // 2^96 = 79228162514264337593543950336
    let err = decode(&numeric(
        8,
        7,
        0,
        0,
        &[7, 9228, 1625, 1426, 4337, 5935, 4395, 336],
    ))
    .unwrap_err();
    assert!(matches!(err, DecodeError::OutOfRange(_)), "{err}");
    // 1e44: one digit, large weight
    let err = decode(&numeric(1, 11, 0, 0, &[1])).unwrap_err();
    assert!(matches!(err, DecodeError::OutOfRange(_)), "{err}");
    // 29 significant digits that need scale 28: more than 96 bits
    let err = decode(&numeric(
        8,
        0,
        0,
        28,
        &[9, 9999, 9999, 9999, 9999, 9999, 9999, 9999],
    ))
    .unwrap_err();
    assert!(matches!(err, DecodeError::OutOfRange(_)), "{err}");
    // huge weight with zero digit values is still zero
    assert_eq!(
        decode(&numeric(1, 30_000, 0, 0, &[0])).unwrap(),
        Decimal::ZERO
    );
    // malformed: digit >= 10000, length mismatch, bad sign, digits beyond dscale
    for raw in [
        numeric(1, 0, 0, 0, &[10_000]),
        numeric(2, 0, 0, 0, &[1]),
        numeric(1, 0, 0, 0, &[1, 2]),
        numeric(0, 0, 0x8000, 0, &[]),
        numeric(2, 0, 0, 0, &[1, 5000]),
        numeric(1, -1, 0, 2, &[1234]),
        numeric(0, 0, 0, 0xC000, &[]),
        vec![0, 0, 0],
    ] {
        let err = decode(&raw).unwrap_err();
        assert!(matches!(err, DecodeError::Invalid(_)), "{raw:?}: {err}");
    }
    // negative zero on the wire reads as zero
    let z = decode(&numeric(0, 0, 0x4000, 1, &[])).unwrap();
    assert!(z.is_zero() && !z.is_sign_negative() && z.scale() == 1);
}

#[test]
fn array_decode_errors() {
    let int4 = |v: i32| v.to_be_bytes();
    let build = |parts: &[[u8; 4]]| parts.concat();
    let decode = |raw: &[u8]| Vec::<Option<i32>>::decode(&Type::INT4_ARRAY, Some(raw));

    // 2-D
    let raw = build(&[
        int4(2),
        int4(0),
        int4(23),
        int4(1),
        int4(1),
        int4(1),
        int4(1),
        int4(4),
        int4(7),
    ]);
    let err = decode(&raw).unwrap_err();
    assert_eq!(
        err.to_string(),
        "multi-dimensional array (ndim 2) cannot be read into a 1-D Vec"
    );
    // wrong element OID (int8)
    let err = decode(&build(&[int4(0), int4(0), int4(20)])).unwrap_err();
    assert!(err.to_string().contains("OID 20"), "{err}");
    // negative ndim, bad flags, huge length, negative element length, truncated, trailing
    for raw in [
        build(&[int4(-1), int4(0), int4(23)]),
        build(&[int4(0), int4(2), int4(23)]),
        build(&[int4(1), int4(0), int4(23), int4(i32::MAX), int4(1)]),
        build(&[int4(1), int4(0), int4(23), int4(-1), int4(1)]),
        build(&[int4(1), int4(0), int4(23), int4(1), int4(1), int4(-2)]),
        build(&[int4(1), int4(0), int4(23), int4(1), int4(1), int4(4)]),
        build(&[int4(0), int4(0), int4(23), int4(0)]),
        build(&[int4(0), int4(0)]),
    ] {
        let err = decode(&raw).unwrap_err();
        assert!(matches!(err, DecodeError::Invalid(_)), "{raw:?}: {err}");
    }
    // a huge length is refused before any allocation, by the bytes that follow
    let err = decode(&build(&[
        int4(1),
        int4(0),
        int4(23),
        int4(i32::MAX),
        int4(1),
    ]))
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("array of dimensions [2147483647] does not fit in the 0 bytes"),
        "{err}"
    );
    // lower bound other than 1 is fine
    let raw = build(&[
        int4(1),
        int4(1),
        int4(23),
        int4(2),
        int4(-5),
        int4(-1),
        int4(4),
        int4(9),
    ]);
    assert_eq!(decode(&raw).unwrap(), vec![None, Some(9)]);
    // NULL element into a non-Option element type
    let err = Vec::<i32>::decode(&Type::INT4_ARRAY, Some(&raw)).unwrap_err();
    assert!(err.to_string().contains("Vec<Option<T>>"), "{err}");
    // element error names the element
    let raw = build(&[
        int4(1),
        int4(0),
        int4(23),
        int4(1),
        int4(1),
        int4(2),
        [0, 0, 0, 0],
    ]);
    let err = decode(&raw[..raw.len() - 2]).unwrap_err();
    assert!(err.to_string().starts_with("array element 0: "), "{err}");
    // not an array column
    assert!(decode(&[]).is_err());
    assert!(Vec::<i32>::decode(&Type::INT4, Some(&build(&[int4(0), int4(0), int4(23)]))).is_err());
    assert!(matches!(
        vec![1i32].encode_field(&Type::INT4, &mut BytesMut::new()),
        Err(EncodeError::Other(_))
    ));
}

#[test]
fn array_has_null_flag_from_elements() {
    let flag = |f: &[u8]| i32::from_be_bytes(f[8..12].try_into().unwrap());
    assert_eq!(flag(&field(&vec![Some(1i32)], &Type::INT4_ARRAY)), 0);
    assert_eq!(flag(&field(&vec![Some(1i32), None], &Type::INT4_ARRAY)), 1);
    assert_eq!(
        flag(&field(
            &vec![Some(Some(1i32)), Some(None)],
            &Type::INT4_ARRAY
        )),
        1
    );
    assert_eq!(flag(&field(&[&None::<i32>][..], &Type::INT4_ARRAY)), 1);
}

#[test]
fn fixed_width_decoders_check_length() {
    assert!(i32::decode(&Type::INT4, Some(&[0, 0, 0])).is_err());
    assert!(i16::decode(&Type::INT2, Some(&[0, 0, 0])).is_err());
    assert!(bool::decode(&Type::BOOL, Some(&[])).is_err());
    assert!(bool::decode(&Type::BOOL, Some(&[2])).unwrap());
    assert!(Uuid::decode(&Type::UUID, Some(&[0; 15])).is_err());
    assert!(f64::decode(&Type::FLOAT8, Some(&[0; 9])).is_err());
    let err = i64::decode(&Type::INT8, Some(&[0; 4])).unwrap_err();
    assert_eq!(err.to_string(), "int8 value must be 8 bytes, got 4");
}

// ---------------------------------------------------------------------------------------------
// proptests

/// Decoder calls made by the fuzz proptests (printed with `--nocapture`, for the record).
static DECODE_CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Prints the running total of fuzzed decoder calls.
fn report_calls(test: &str) {
    eprintln!(
        "{test}: {} decoder calls so far in this process",
        DECODE_CALLS.load(std::sync::atomic::Ordering::Relaxed)
    );
}

/// Multi-dimensional array bytes: 0 to 7 dimensions of small lengths, elements of any length.
fn md_array_like(oid: u32) -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![0..8i32, any::<i32>()],
        prop_oneof![Just(0i32), Just(1)],
        prop_oneof![Just(oid), any::<u32>()],
        proptest::collection::vec((prop_oneof![0..4i32, any::<i32>()], any::<i32>()), 0..8),
        proptest::collection::vec(
            (
                prop_oneof![Just(-1i32), 0..6i32, any::<i32>()],
                proptest::collection::vec(any::<u8>(), 0..6),
            ),
            0..40,
        ),
    )
        .prop_map(|(ndim, flags, oid, dims, elems)| {
            let mut v = Vec::new();
            v.extend_from_slice(&ndim.to_be_bytes());
            v.extend_from_slice(&flags.to_be_bytes());
            v.extend_from_slice(&oid.to_be_bytes());
            for (len, lb) in dims {
                v.extend_from_slice(&len.to_be_bytes());
                v.extend_from_slice(&lb.to_be_bytes());
            }
            for (elen, bytes) in elems {
                v.extend_from_slice(&elen.to_be_bytes());
                v.extend_from_slice(&bytes);
            }
            v
        })
}

/// Runs every decoder on `raw`; none may panic (errors are fine).
fn decode_everything(raw: Option<&[u8]>) {
    fn run<T: Decode>(ty: &Type, raw: Option<&[u8]>) {
        DECODE_CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _ = T::decode(ty, raw);
    }
    run::<bool>(&Type::BOOL, raw);
    run::<i16>(&Type::INT2, raw);
    run::<i32>(&Type::INT4, raw);
    run::<i64>(&Type::INT8, raw);
    run::<f32>(&Type::FLOAT4, raw);
    run::<f64>(&Type::FLOAT8, raw);
    run::<String>(&Type::TEXT, raw);
    run::<Box<str>>(&Type::VARCHAR, raw);
    run::<Cow<'static, str>>(&Type::NAME, raw);
    run::<Vec<u8>>(&Type::BYTEA, raw);
    run::<Box<[u8]>>(&Type::BYTEA, raw);
    run::<Uuid>(&Type::UUID, raw);
    run::<NaiveDate>(&Type::DATE, raw);
    run::<NaiveTime>(&Type::TIME, raw);
    run::<NaiveDateTime>(&Type::TIMESTAMP, raw);
    run::<DateTime<Utc>>(&Type::TIMESTAMPTZ, raw);
    run::<Decimal>(&Type::NUMERIC, raw);
    run::<Option<Decimal>>(&Type::NUMERIC, raw);
    run::<Vec<i32>>(&Type::INT4_ARRAY, raw);
    run::<Vec<Option<i32>>>(&Type::INT4_ARRAY, raw);
    run::<Vec<Option<String>>>(&Type::TEXT_ARRAY, raw);
    run::<Vec<Option<Decimal>>>(&Type::NUMERIC_ARRAY, raw);
    run::<Vec<Option<NaiveDateTime>>>(&Type::TIMESTAMP_ARRAY, raw);
    run::<Vec<Vec<u8>>>(&Type::BYTEA_ARRAY, raw);
    run::<Option<Vec<Option<Uuid>>>>(&Type::UUID_ARRAY, raw);
    run::<Box<[Option<i64>]>>(&Type::INT8_ARRAY, raw);
    // the types added for type fidelity
    let mood = Type::new(
        "mood".into(),
        90_001,
        Kind::Enum(vec!["a".into()]),
        "public".into(),
    );
    run::<i8>(&Type::CHAR, raw);
    run::<u32>(&Type::OID, raw);
    run::<String>(&Type::JSON, raw);
    run::<String>(&Type::JSONB, raw);
    run::<String>(&mood, raw);
    run::<serde_json::Value>(&Type::JSON, raw);
    run::<serde_json::Value>(&Type::JSONB, raw);
    run::<super::Json<Vec<i64>>>(&Type::JSONB, raw);
    run::<std::net::IpAddr>(&Type::INET, raw);
    run::<super::Inet>(&Type::CIDR, raw);
    run::<super::Interval>(&Type::INTERVAL, raw);
    run::<super::PgNumeric>(&Type::NUMERIC, raw);
    run::<super::Infinity<NaiveDate>>(&Type::DATE, raw);
    run::<super::Infinity<NaiveDateTime>>(&Type::TIMESTAMP, raw);
    run::<super::Infinity<DateTime<Utc>>>(&Type::TIMESTAMPTZ, raw);
    run::<DateTime<chrono::FixedOffset>>(&Type::TIMESTAMPTZ, raw);
    run::<DateTime<chrono::Local>>(&Type::TIMESTAMPTZ, raw);
    run::<super::ViaToSql<i32>>(&Type::INT4, raw);
    run::<super::ViaToSql<String>>(&Type::TEXT, raw);
    run::<super::ViaToSql<Vec<Option<i32>>>>(&Type::INT4_ARRAY, raw);
    run::<Vec<Vec<i32>>>(&Type::INT4_ARRAY, raw);
    run::<Vec<Vec<Vec<Vec<Vec<Vec<Option<i16>>>>>>>>(&Type::INT2_ARRAY, raw);
    run::<Vec<Vec<Option<String>>>>(&Type::JSONB_ARRAY, raw);
    run::<Vec<Option<super::Inet>>>(&Type::INET_ARRAY, raw);
    // a column type the codec did not accept must not panic either
    run::<Vec<i32>>(&Type::INT4, raw);
    run::<Vec<Option<String>>>(&Type::INT4_ARRAY, raw);
}

/// Array bytes with a plausible header for `oid`, so fuzzing gets past the header checks.
fn array_like(oid: u32) -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![Just(0i32), Just(1), -1..3i32],
        prop_oneof![Just(0i32), Just(1), any::<i32>()],
        prop_oneof![Just(oid), any::<u32>()],
        prop_oneof![0..6i32, any::<i32>()],
        any::<i32>(),
        proptest::collection::vec(
            (
                prop_oneof![Just(-1i32), 0..20i32, any::<i32>()],
                proptest::collection::vec(any::<u8>(), 0..20),
            ),
            0..6,
        ),
    )
        .prop_map(|(ndim, flags, oid, len, lower, elems)| {
            let mut v = Vec::new();
            for x in [ndim, flags] {
                v.extend_from_slice(&x.to_be_bytes());
            }
            v.extend_from_slice(&oid.to_be_bytes());
            v.extend_from_slice(&len.to_be_bytes());
            v.extend_from_slice(&lower.to_be_bytes());
            for (elen, bytes) in elems {
                v.extend_from_slice(&elen.to_be_bytes());
                v.extend_from_slice(&bytes);
            }
            v
        })
}

/// Numeric bytes with a plausible header, so fuzzing reaches the digit arithmetic.
fn numeric_like() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<i16>(),
        prop_oneof![
            Just(0u16),
            Just(0x4000),
            Just(0xC000),
            Just(0xD000),
            Just(0xF000),
            any::<u16>()
        ],
        prop_oneof![0..32u16, any::<u16>()],
        proptest::collection::vec(prop_oneof![0..10_000u16, any::<u16>()], 0..12),
        prop_oneof![Just(0i32), -2..3i32],
    )
        .prop_map(|(weight, sign, dscale, digits, skew)| {
            let n = i32::try_from(digits.len()).unwrap() + skew;
            let mut v = Vec::new();
            v.extend_from_slice(&u16::try_from(n.max(0)).unwrap().to_be_bytes());
            v.extend_from_slice(&weight.to_be_bytes());
            v.extend_from_slice(&sign.to_be_bytes());
            v.extend_from_slice(&dscale.to_be_bytes());
            for d in digits {
                v.extend_from_slice(&d.to_be_bytes());
            }
            v
        })
}

/// Any `Decimal`: 96-bit mantissa, either sign, scale 0..=28.
fn any_decimal() -> impl Strategy<Value = Decimal> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<bool>(),
        0..=28u32,
    )
        .prop_map(|(lo, mid, hi, neg, scale)| Decimal::from_parts(lo, mid, hi, neg, scale))
}

/// A timestamp inside both chrono's and PostgreSQL's range, in whole microseconds.
fn any_timestamp() -> impl Strategy<Value = NaiveDateTime> {
    let min = date(-4713, 11, 24)
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_micros();
    let max = NaiveDateTime::MAX.and_utc().timestamp_micros();
    (min..=max).prop_map(|us| DateTime::from_timestamp_micros(us).unwrap().naive_utc())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(raw in proptest::collection::vec(any::<u8>(), 0..64)) {
        decode_everything(Some(&raw));
        for cut in 0..raw.len() {
            decode_everything(Some(&raw[..cut]));
        }
        decode_everything(None);
        report_calls("decoders_never_panic_on_arbitrary_bytes");
    }

    #[test]
    fn multi_dimensional_array_decoders_never_panic(raw in md_array_like(23)) {
        for cut in 0..=raw.len() {
            let r = Some(&raw[..cut]);
            let _ = Vec::<Vec<Option<i32>>>::decode(&Type::INT4_ARRAY, r);
            let _ = Vec::<Vec<Vec<i32>>>::decode(&Type::INT4_ARRAY, r);
            let _ = Vec::<Vec<Vec<Vec<Vec<Vec<Option<i32>>>>>>>::decode(&Type::INT4_ARRAY, r);
            let _ = Vec::<Option<i32>>::decode(&Type::INT4_ARRAY, r);
            DECODE_CALLS.fetch_add(4, std::sync::atomic::Ordering::Relaxed);
        }
        // a value that decodes re-encodes to the same bytes (lower bounds aside: all 1 here)
        if let Ok(v) = Vec::<Vec<Option<i32>>>::decode(&Type::INT4_ARRAY, Some(&raw)) {
            let back: Vec<Vec<Option<i32>>> = round_trip(&v, &Type::INT4_ARRAY);
            prop_assert_eq!(back, v);
        }
        report_calls("multi_dimensional_array_decoders_never_panic");
    }

    #[test]
    fn array_decoders_never_panic(raw in array_like(23)) {
        for cut in 0..=raw.len() {
            let _ = Vec::<Option<i32>>::decode(&Type::INT4_ARRAY, Some(&raw[..cut]));
            let _ = Vec::<i32>::decode(&Type::INT4_ARRAY, Some(&raw[..cut]));
        }
    }

    #[test]
    fn text_array_decoders_never_panic(raw in array_like(25)) {
        for cut in 0..=raw.len() {
            let _ = Vec::<Option<String>>::decode(&Type::TEXT_ARRAY, Some(&raw[..cut]));
        }
    }

    #[test]
    fn numeric_decoder_never_panics_and_never_rounds(raw in numeric_like()) {
        for cut in 0..=raw.len() {
            let _ = Decimal::decode(&Type::NUMERIC, Some(&raw[..cut]));
        }
        if let Ok(d) = Decimal::decode(&Type::NUMERIC, Some(&raw)) {
            // what we accepted re-encodes to a value that reads back identically …
            let back: Decimal = round_trip(&d, &Type::NUMERIC);
            prop_assert_eq!(back, d);
            prop_assert_eq!(back.scale(), d.scale());
            // … and rust_decimal reads the same bytes to the same value.
            let reference = std::panic::catch_unwind(|| Decimal::from_sql(&Type::NUMERIC, &raw));
            if let Ok(Ok(r)) = reference {
                prop_assert_eq!(r, d);
            }
        }
    }

    #[test]
    fn encoded_values_truncated_never_panic(d in any_decimal(), t in any_timestamp(), s in "[^\u{0}]{0,8}", n in any::<i64>()) {
        let fields = [
            field(&d, &Type::NUMERIC),
            field(&t, &Type::TIMESTAMP),
            field(&vec![Some(d), None], &Type::NUMERIC_ARRAY),
            field(&vec![Some(s.as_str()), None], &Type::TEXT_ARRAY),
            field(&vec![n], &Type::INT8_ARRAY),
        ];
        for f in &fields {
            for cut in 4..f.len() {
                decode_everything(Some(&f[4..cut]));
            }
        }
    }

    #[test]
    fn ints_round_trip(a in any::<i16>(), b in any::<i32>(), c in any::<i64>()) {
        prop_assert_eq!(round_trip::<_, i16>(&a, &Type::INT2), a);
        prop_assert_eq!(round_trip::<_, i32>(&b, &Type::INT4), b);
        prop_assert_eq!(round_trip::<_, i64>(&c, &Type::INT8), c);
        prop_assert_eq!(ours(&c, &Type::INT8), theirs(&c, &Type::INT8));
    }

    #[test]
    fn floats_round_trip_by_bits(a in any::<u32>(), b in any::<u64>()) {
        let back: f32 = round_trip(&f32::from_bits(a), &Type::FLOAT4);
        prop_assert_eq!(back.to_bits(), a);
        let back: f64 = round_trip(&f64::from_bits(b), &Type::FLOAT8);
        prop_assert_eq!(back.to_bits(), b);
    }

    #[test]
    fn strings_round_trip(s in "[^\u{0}]*") {
        let back: String = round_trip(s.as_str(), &Type::TEXT);
        prop_assert_eq!(&back, &s);
        prop_assert_eq!(ours(s.as_str(), &Type::TEXT), theirs(&s.as_str(), &Type::TEXT));
    }

    #[test]
    fn decimals_round_trip_and_match_rust_decimal(d in any_decimal()) {
        let mine = ours(&d, &Type::NUMERIC);
        let back: Decimal = round_trip(&d, &Type::NUMERIC);
        prop_assert_eq!(back, d);
        prop_assert_eq!(back.scale(), d.scale());
        // rust_decimal reads our bytes to the same value and scale
        let r = Decimal::from_sql(&Type::NUMERIC, &mine).unwrap();
        prop_assert_eq!(r, d);
        prop_assert_eq!(r.scale(), d.scale());
        // we read theirs to the same value
        let reference = theirs(&d, &Type::NUMERIC);
        prop_assert_eq!(Decimal::decode(&Type::NUMERIC, Some(&reference)).unwrap(), d);
        // and the bytes agree except where rust_decimal is not canonical
        if !d.is_zero() && d.mantissa() % 10_000 != 0 {
            prop_assert_eq!(mine, reference);
        }
    }

    #[test]
    fn timestamps_round_trip_and_match_postgres_types(t in any_timestamp()) {
        let back: NaiveDateTime = round_trip(&t, &Type::TIMESTAMP);
        prop_assert_eq!(back, t);
        prop_assert_eq!(ours(&t, &Type::TIMESTAMP), theirs(&t, &Type::TIMESTAMP));
        let utc = t.and_utc();
        let back: DateTime<Utc> = round_trip(&utc, &Type::TIMESTAMPTZ);
        prop_assert_eq!(back, utc);
        prop_assert_eq!(ours(&utc, &Type::TIMESTAMPTZ), theirs(&utc, &Type::TIMESTAMPTZ));
        let d = t.date();
        let back: NaiveDate = round_trip(&d, &Type::DATE);
        prop_assert_eq!(back, d);
        prop_assert_eq!(ours(&d, &Type::DATE), theirs(&d, &Type::DATE));
        let tm = t.time();
        let back: NaiveTime = round_trip(&tm, &Type::TIME);
        prop_assert_eq!(back, tm);
        prop_assert_eq!(ours(&tm, &Type::TIME), theirs(&tm, &Type::TIME));
    }

    #[test]
    fn arrays_round_trip(v in proptest::collection::vec(proptest::option::of(any::<i64>()), 0..40),
                         s in proptest::collection::vec("[^\u{0}]{0,6}", 1..10)) {
        let back: Vec<Option<i64>> = round_trip(&v, &Type::INT8_ARRAY);
        prop_assert_eq!(&back, &v);
        let back: Vec<String> = round_trip(&s, &Type::VARCHAR_ARRAY);
        prop_assert_eq!(&back, &s);
        prop_assert_eq!(ours(&s, &Type::VARCHAR_ARRAY), theirs(&s, &Type::VARCHAR_ARRAY));
        if !v.is_empty() {
            prop_assert_eq!(ours(&v, &Type::INT8_ARRAY), theirs(&v, &Type::INT8_ARRAY));
        }
    }
}

#[test]
fn array_types_of_built_in_types() {
    use super::array_type_of;
    assert_eq!(array_type_of(&Type::INT8), Some(Type::INT8_ARRAY));
    assert_eq!(array_type_of(&Type::INT2), Some(Type::INT2_ARRAY));
    assert_eq!(
        array_type_of(&Type::TIMESTAMPTZ),
        Some(Type::TIMESTAMPTZ_ARRAY)
    );
    assert_eq!(array_type_of(&Type::VARCHAR), Some(Type::VARCHAR_ARRAY));
    // An array's own array type, and a type the server alone knows, are not found.
    assert_eq!(array_type_of(&Type::INT8_ARRAY), None);
    let custom = Type::new(
        "mood".into(),
        16_400,
        postgres_types::Kind::Enum(vec![]),
        "public".into(),
    );
    assert_eq!(array_type_of(&custom), None);
}
