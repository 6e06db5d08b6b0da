//! The generated impls at run time, without a server: table and column metadata, the bytes
//! `encode_row` writes, and `decode_row` round trips.

mod common;

use bytes::BytesMut;
use common::{split_fields, Bool, Fails, Nullable, Text, I32, I64};
use pgbulk::__private::RawRow;
use pgbulk::{CopyRow, EncodeError, FromCopyRow, FromCopyRowRef};
use postgres_types::Type;
use std::marker::PhantomData;

#[derive(CopyRow, Debug, PartialEq)]
#[copy(table = "app.events")]
struct Event {
    #[copy(key)]
    id: I64,
    #[copy(rename = "event_kind")]
    kind: I32,
    #[copy(skip)]
    cached: Text,
    active: Bool,
    score: Nullable<I32>,
}

const EVENT_TYPES: [Type; 4] = [Type::INT8, Type::INT4, Type::BOOL, Type::INT4];

fn event(score: Nullable<I32>) -> Event {
    Event {
        id: I64(0x0102_0304_0506_0708),
        kind: I32(-2),
        cached: Text("not copied".to_owned()),
        active: Bool::TRUE,
        score,
    }
}

fn encode<T: CopyRow>(row: &T, types: &[Type]) -> Result<Vec<u8>, (usize, EncodeError)> {
    let mut buf = BytesMut::new();
    row.encode_row(types, &mut buf)?;
    Ok(buf.to_vec())
}

fn round_trip<T: FromCopyRow>(row: &T, types: &[Type]) -> T {
    let tuple = encode(row, types).expect("encodes");
    let fields = split_fields(&tuple);
    assert_eq!(fields.len(), T::__PGBULK_COLUMNS.len());
    T::decode_row(types, &mut RawRow::new(&tuple, &fields)).expect("decodes")
}

#[test]
fn table_as_written() {
    assert_eq!(Event::__PGBULK_TABLE, "app.events");
}

#[test]
fn table_defaults_to_snake_case_struct_name() {
    #[derive(CopyRow)]
    struct UserAccount {
        id: I64,
    }
    #[derive(CopyRow)]
    #[allow(clippy::upper_case_acronyms)]
    struct HTTPLog {
        id: I64,
    }
    #[derive(CopyRow)]
    struct r#Raw {
        id: I64,
    }
    assert_eq!(UserAccount::__PGBULK_TABLE, "user_account");
    assert_eq!(HTTPLog::__PGBULK_TABLE, "http_log");
    assert_eq!(Raw::__PGBULK_TABLE, "raw");
}

#[test]
fn columns_are_copied_fields_in_order() {
    let columns: Vec<_> = Event::__PGBULK_COLUMNS
        .iter()
        .map(|c| (c.name(), c.field(), c.rust_type(), c.is_key()))
        .collect();
    assert_eq!(
        columns,
        [
            ("id", "id", "I64", true),
            ("event_kind", "kind", "I32", false),
            ("active", "active", "Bool", false),
            ("score", "score", "Nullable<I32>", false),
        ]
    );
}

#[test]
fn accepts_come_from_the_field_types() {
    let encode: Vec<bool> = Event::__PGBULK_COLUMNS
        .iter()
        .zip(&EVENT_TYPES)
        .map(|(c, ty)| c.accepts(ty))
        .collect();
    assert_eq!(encode, [true; 4]);
    assert!(!Event::__PGBULK_COLUMNS[0].accepts(&Type::INT4));
    assert!(!Event::__PGBULK_COLUMNS[3].accepts(&Type::TEXT));

    assert_eq!(Event::__PGBULK_ACCEPTS_DECODE.len(), 4);
    let decode: Vec<bool> = Event::__PGBULK_ACCEPTS_DECODE
        .iter()
        .zip(&EVENT_TYPES)
        .map(|(accepts, ty)| accepts(ty))
        .collect();
    assert_eq!(decode, [true; 4]);
    assert!(!(Event::__PGBULK_ACCEPTS_DECODE[2])(&Type::INT4));
}

#[test]
fn encode_row_writes_length_prefixed_fields_only() {
    let bytes = encode(&event(Nullable::Value(I32(7))), &EVENT_TYPES).unwrap();
    // No field count: the tuple's framing is the engine's.
    let expected: Vec<u8> = [
        &8_i32.to_be_bytes()[..],
        &[1, 2, 3, 4, 5, 6, 7, 8],
        &4_i32.to_be_bytes(),
        &(-2_i32).to_be_bytes(),
        &1_i32.to_be_bytes(),
        &[1],
        &4_i32.to_be_bytes(),
        &7_i32.to_be_bytes(),
    ]
    .concat();
    assert_eq!(bytes, expected);
}

#[test]
fn encode_row_writes_null_as_length_minus_one() {
    let bytes = encode(&event(Nullable::Null), &EVENT_TYPES).unwrap();
    assert_eq!(bytes.len(), 12 + 8 + 5 + 4);
    assert_eq!(bytes[bytes.len() - 4..], (-1_i32).to_be_bytes());
}

#[test]
fn encode_row_appends_to_the_buffer() {
    let mut buf = BytesMut::from(&b"before"[..]);
    event(Nullable::Null)
        .encode_row(&EVENT_TYPES, &mut buf)
        .unwrap();
    assert!(buf.starts_with(b"before\x00\x00\x00\x08"));
}

#[test]
fn encode_row_reports_the_failing_column_index() {
    #[derive(CopyRow)]
    struct Failing {
        ok: I32,
        #[copy(skip)]
        skipped: Fails,
        bad: Fails,
        never: I32,
    }
    let row = Failing {
        ok: I32(1),
        skipped: Fails,
        bad: Fails,
        never: I32(2),
    };
    let types = [Type::INT4, Type::INT4, Type::INT4];
    let (index, err) = encode(&row, &types).unwrap_err();
    // An index into COLUMNS: the skipped field does not count.
    assert_eq!(index, 1);
    assert_eq!(Failing::__PGBULK_COLUMNS[index].field(), "bad");
    assert!(matches!(err, EncodeError::OutOfRange(ref m) if m == "always fails"));
    // `Fails` has no `Decode`: the struct still derives (it compiled), as `CopyRow` only.
    assert!(!Probe::<Failing>(PhantomData).is_from_copy_row());
    let _ = (row.ok, row.skipped, row.never);
}

#[test]
fn decode_row_round_trips_and_defaults_skipped_fields() {
    for score in [Nullable::Value(I32(i32::MIN)), Nullable::Null] {
        let row = event(score);
        let back = round_trip(&row, &EVENT_TYPES);
        assert_eq!(
            back,
            Event {
                cached: Text::default(),
                ..row
            }
        );
    }
}

#[test]
fn decode_row_reports_the_failing_column_index() {
    let tuple = encode(&event(Nullable::Null), &EVENT_TYPES).unwrap();
    let mut fields = split_fields(&tuple);
    fields[1].1 = -1; // `event_kind` is NULL, which `I32` cannot hold
    let (index, err) =
        Event::decode_row(&EVENT_TYPES, &mut RawRow::new(&tuple, &fields)).unwrap_err();
    assert_eq!(index, 1);
    assert!(matches!(err, pgbulk::DecodeError::UnexpectedNull));
}

#[test]
fn generic_struct() {
    #[derive(CopyRow, Debug, PartialEq)]
    struct Pair<A, B: Clone>
    where
        A: Copy,
    {
        a: A,
        b: B,
        plain: I32,
        #[copy(skip)]
        marker: PhantomData<B>,
    }
    let row = Pair {
        a: I64(5),
        b: Text("b".to_owned()),
        plain: I32(6),
        marker: PhantomData,
    };
    assert_eq!(Pair::<I64, Text>::__PGBULK_TABLE, "pair");
    assert_eq!(Pair::<I64, Text>::__PGBULK_COLUMNS[0].rust_type(), "A");
    assert_eq!(round_trip(&row, &[Type::INT8, Type::TEXT, Type::INT4]), row);
}

#[test]
fn borrowed_fields_encode_but_do_not_decode() {
    #[derive(CopyRow)]
    #[copy(table = "texts")]
    struct Borrowed<'a> {
        #[copy(key)]
        id: I32,
        name: &'a Text,
        maybe: Nullable<&'a Text>,
    }
    #[derive(CopyRow)]
    struct Static {
        name: &'static Text,
    }

    let name = Text("ab".to_owned());
    let row = Borrowed {
        id: I32(1),
        name: &name,
        maybe: Nullable::Null,
    };
    let bytes = encode(&row, &[Type::INT4, Type::TEXT, Type::TEXT]).unwrap();
    assert_eq!(
        bytes,
        b"\x00\x00\x00\x04\x00\x00\x00\x01\x00\x00\x00\x02ab\xff\xff\xff\xff"
    );
    assert_eq!(Borrowed::__PGBULK_COLUMNS[1].rust_type(), "&'a Text");
    assert_eq!(
        Borrowed::__PGBULK_COLUMNS[2].rust_type(),
        "Nullable<&'a Text>"
    );
    assert_eq!(Static::__PGBULK_COLUMNS[0].rust_type(), "&'static Text");

    assert!(!Probe::<Borrowed<'_>>(PhantomData).is_from_copy_row());
    assert!(!Probe::<Static>(PhantomData).is_from_copy_row());
    assert!(Probe::<Event>(PhantomData).is_from_copy_row());
}

#[test]
fn crate_path_can_be_overridden() {
    mod direct {
        use bulk_core::CopyRow;

        #[derive(bulk_derive::CopyRow)]
        #[copy(crate = "bulk_core", table = "direct")]
        pub struct Direct {
            pub id: super::I32,
        }

        pub fn table<T: CopyRow>() -> &'static str {
            T::__PGBULK_TABLE
        }
    }
    assert_eq!(direct::table::<direct::Direct>(), "direct");
    let row = direct::Direct { id: I32(3) };
    assert_eq!(round_trip(&row, &[Type::INT4]).id, I32(3));
}

/// Tells at run time whether `T: FromCopyRow`: the inherent method applies only when the bound
/// holds, otherwise method lookup falls back to the trait's.
struct Probe<T>(PhantomData<T>);

impl<T: FromCopyRow> Probe<T> {
    #[allow(clippy::unused_self)] // `self` is what makes method lookup pick this or the trait's
    fn is_from_copy_row(&self) -> bool {
        true
    }
}

trait NotFromCopyRow {
    fn is_from_copy_row(&self) -> bool {
        false
    }
}

impl<T> NotFromCopyRow for Probe<T> {}
