//! bool, integers, floats, `"char"` and oid.

use super::{eq, pair};
use proptest::prelude::*;

/// Floats compare by their bits: NaN payloads and −0.0 must survive.
fn same_f32(a: &f32, b: &f32) -> bool {
    a.to_bits() == b.to_bits()
}

/// Doubles compare by their bits.
fn same_f64(a: &f64, b: &f64) -> bool {
    a.to_bits() == b.to_bits()
}

pair! {
    bool_bool: bool => "bool";
    setup: "";
    strategy: any::<bool>();
    edges: vec![true, false];
    same: eq;
    theirs: bool = |v| *v, read: "v", write: "$2", same: eq;
    golden: [("true", true), ("false", false)];
}

pair! {
    i16_int2: i16 => "int2";
    setup: "";
    strategy: any::<i16>();
    edges: vec![i16::MIN, i16::MAX, 0, -1, 1];
    same: eq;
    theirs: i16 = |v| *v, read: "v", write: "$2", same: eq;
    golden: [("0::int2", 0), ("(-32768)::int2", i16::MIN), ("32767::int2", i16::MAX), ("(-2)::int2", -2)];
}

pair! {
    i32_int4: i32 => "int4";
    setup: "";
    strategy: any::<i32>();
    edges: vec![i32::MIN, i32::MAX, 0, -1, 1];
    same: eq;
    theirs: i32 = |v| *v, read: "v", write: "$2", same: eq;
    golden: [("0::int4", 0), ("(-2147483648)::int4", i32::MIN), ("2147483647::int4", i32::MAX), ("258::int4", 258)];
}

pair! {
    i64_int8: i64 => "int8";
    setup: "";
    strategy: any::<i64>();
    edges: vec![i64::MIN, i64::MAX, 0, -1, 1];
    same: eq;
    theirs: i64 = |v| *v, read: "v", write: "$2", same: eq;
    golden: [
        ("0::int8", 0),
        ("(-9223372036854775808)::int8", i64::MIN),
        ("9223372036854775807::int8", i64::MAX),
        ("1234567890123::int8", 1_234_567_890_123),
    ];
}

pair! {
    i8_char: i8 => "\"char\"";
    setup: "";
    strategy: any::<i8>();
    edges: vec![i8::MIN, i8::MAX, 0, -1, 1, b'a'.cast_signed()];
    same: eq;
    theirs: i8 = |v| *v, read: "v", write: "$2", same: eq;
    golden: [
        ("'a'::\"char\"", 97),
        ("(-128)::int4::\"char\"", i8::MIN),
        ("127::int4::\"char\"", i8::MAX),
        ("(-1)::int4::\"char\"", -1),
    ];
}

pair! {
    u32_oid: u32 => "oid";
    setup: "";
    strategy: any::<u32>();
    edges: vec![0, 1, u32::MAX, 2_147_483_648];
    same: eq;
    theirs: u32 = |v| *v, read: "v", write: "$2", same: eq;
    golden: [("0::oid", 0), ("4294967295::oid", u32::MAX), ("2147483648::oid", 2_147_483_648), ("26::oid", 26)];
}

pair! {
    f32_float4: f32 => "float4";
    setup: "";
    strategy: any::<u32>().prop_map(f32::from_bits);
    edges: vec![
        f32::NAN, -f32::NAN, f32::from_bits(0x7f80_0001), f32::INFINITY, f32::NEG_INFINITY,
        0.0, -0.0, f32::MIN, f32::MAX, f32::MIN_POSITIVE, f32::from_bits(1), f32::EPSILON,
    ];
    same: same_f32;
    theirs: f32 = |v| *v, read: "v", write: "$2", same: same_f32;
    golden: [
        ("1.5::float4", 1.5),
        ("'-0'::float4", -0.0),
        ("'NaN'::float4", f32::NAN),
        ("'Infinity'::float4", f32::INFINITY),
        ("'-Infinity'::float4", f32::NEG_INFINITY),
        ("'3.4028235e38'::float4", f32::MAX),
        ("'1e-45'::float4", f32::from_bits(1)),
    ];
}

pair! {
    f64_float8: f64 => "float8";
    setup: "";
    strategy: any::<u64>().prop_map(f64::from_bits);
    edges: vec![
        f64::NAN, -f64::NAN, f64::from_bits(0x7ff0_0000_0000_0001), f64::INFINITY,
        f64::NEG_INFINITY, 0.0, -0.0, f64::MIN, f64::MAX, f64::MIN_POSITIVE, f64::from_bits(1),
    ];
    same: same_f64;
    theirs: f64 = |v| *v, read: "v", write: "$2", same: same_f64;
    golden: [
        ("(-2.25)::float8", -2.25),
        ("'-0'::float8", -0.0),
        ("'NaN'::float8", f64::NAN),
        ("'Infinity'::float8", f64::INFINITY),
        ("'-Infinity'::float8", f64::NEG_INFINITY),
        ("'1.7976931348623157e308'::float8", f64::MAX),
        ("'5e-324'::float8", f64::from_bits(1)),
        ("0.1::float8", 0.1),
    ];
}

pair! {
    option_i32_int4_null: Option<i32> => "int4";
    setup: "";
    strategy: any::<Option<i32>>();
    edges: vec![None, Some(0), Some(i32::MIN)];
    same: eq;
    theirs: Option<i32> = |v| *v, read: "v", write: "$2", same: eq;
    golden: [("NULL::int4", None), ("7::int4", Some(7))];
}

pair! {
    uuid_uuid: uuid::Uuid => "uuid";
    setup: "";
    strategy: any::<u128>().prop_map(uuid::Uuid::from_u128);
    edges: vec![uuid::Uuid::nil(), uuid::Uuid::max()];
    same: eq;
    theirs: uuid::Uuid = |v| *v, read: "v", write: "$2", same: eq;
    golden: [
        ("'00000000-0000-0000-0000-000000000000'::uuid", uuid::Uuid::nil()),
        ("'67e55044-10b1-426f-9247-bb680e5fe0c8'::uuid", uuid::Uuid::from_u128(0x67e5_5044_10b1_426f_9247_bb68_0e5f_e0c8)),
    ];
}
