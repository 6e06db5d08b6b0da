//! The generated code names nothing the user's scope could shadow (serde's `test_gen.rs`).

#![deny(warnings)]

mod common;

mod shadowed {
    #![allow(dead_code, non_camel_case_types, clippy::all, clippy::pedantic)]

    // Every name the expansion could be tempted to use unqualified.
    pub struct Result;
    pub struct Ok;
    pub struct Err;
    pub struct Option;
    pub struct Some;
    pub struct None;
    pub struct Vec;
    pub struct String;
    pub struct Box;
    pub struct Default;
    pub struct Self_;
    pub struct Type;
    pub struct Column;
    pub struct BytesMut;
    pub struct BufMut;
    pub struct Encode;
    pub struct Decode;
    pub struct RawRow;
    pub struct str;
    pub struct bool;
    pub struct usize;
    pub struct i16;
    pub mod core {}
    pub mod bulk_core {}
    pub mod bytes {}
    pub mod postgres_types {}
    pub fn put_i16() {}
    pub fn encode_field() {}
    pub fn decode() {}
    pub fn accepts() {}
    pub fn default() {}
    pub fn get() {}
}

// No prelude either: the expansion must not rely on one. And lints users commonly deny, beyond
// the default set, must stay quiet.
#[no_implicit_prelude]
#[deny(
    unused_lifetimes,
    single_use_lifetimes,
    unused_qualifications,
    trivial_casts,
    trivial_numeric_casts,
    unused_results,
    clippy::pedantic,
    clippy::nursery
)]
mod derives {
    use super::common::{Nullable, Text, I32, I64};
    #[allow(unused_imports)]
    use super::shadowed::*;

    #[derive(::pgbulk::CopyRow)]
    #[copy(table = "s.t")]
    pub struct Owned {
        #[copy(key)]
        pub id: I64,
        #[copy(rename = "label")]
        pub name: Text,
        pub maybe: Nullable<I32>,
        #[copy(skip)]
        pub skipped: Text,
    }

    #[derive(::pgbulk::CopyRow)]
    pub struct Borrowed<'a> {
        #[copy(key)]
        pub id: I32,
        pub name: &'a Text,
        #[copy(skip)]
        pub skipped: &'a Text,
    }

    #[derive(::pgbulk::CopyRow)]
    pub struct Generic<T, const N: ::core::primitive::usize>
    where
        T: ::core::clone::Clone,
    {
        pub value: T,
        #[copy(skip)]
        pub marker: ::core::marker::PhantomData<[T; N]>,
    }

    #[derive(::bulk_derive::CopyRow)]
    #[copy(crate = "::bulk_core")]
    pub struct Direct {
        pub r#type: I32,
    }

    /// Every field attribute at once, under the same shadowing.
    #[derive(::pgbulk::CopyRow)]
    #[copy(rename_all = "camelCase")]
    pub struct Attrs {
        #[copy(key)]
        pub user_id: I64,
        #[copy(json)]
        pub tags: ::std::vec::Vec<::std::string::String>,
        #[copy(default)]
        pub note_text: Text,
        #[copy(flatten)]
        pub inner: Direct,
        #[copy(try_from = "I32")]
        pub small: Small,
    }

    #[derive(::core::clone::Clone)]
    pub struct Small(pub I32);

    impl ::core::convert::From<Small> for I32 {
        fn from(small: Small) -> Self {
            small.0
        }
    }

    impl ::core::convert::From<I32> for Small {
        fn from(value: I32) -> Self {
            Self(value)
        }
    }
}

#[test]
fn shadowing_names_does_not_break_the_derive() {
    use bulk_core::{CopyRow, FromCopyRow, FromCopyRowRef};

    assert_eq!(derives::Owned::__PGBULK_TABLE, "s.t");
    assert_eq!(derives::Owned::__PGBULK_COLUMNS[1].name(), "label");
    assert_eq!(derives::Owned::__PGBULK_ACCEPTS_DECODE.len(), 3);
    assert_eq!(derives::Borrowed::__PGBULK_COLUMNS.len(), 2);
    assert_eq!(
        <derives::Generic<common::I32, 2>>::__PGBULK_COLUMNS[0].rust_type(),
        "T"
    );
    assert_eq!(derives::Direct::__PGBULK_COLUMNS[0].name(), "type");
    assert_eq!(derives::Direct::__PGBULK_COLUMNS[0].field(), "type");
    let columns: Vec<_> = derives::Attrs::__PGBULK_COLUMNS
        .iter()
        .map(bulk_core::Column::name)
        .collect();
    assert_eq!(columns, ["userId", "tags", "noteText", "type", "small"]);
    assert_eq!(derives::Attrs::__PGBULK_ACCEPTS_DECODE.len(), 5);

    let row = derives::Owned {
        id: common::I64(1),
        name: common::Text("n".to_owned()),
        maybe: common::Nullable::Null,
        skipped: common::Text("skipped".to_owned()),
    };
    let types = [
        postgres_types::Type::INT8,
        postgres_types::Type::TEXT,
        postgres_types::Type::INT4,
    ];
    let mut buf = bytes::BytesMut::new();
    row.encode_row(&types, &mut buf).unwrap();
    let fields = common::split_fields(&buf);
    let back = derives::Owned::decode_row(
        &types,
        &mut bulk_core::__private::RawRow::new(&buf, &fields),
    )
    .unwrap();
    assert_eq!(
        (back.id, back.name, back.maybe),
        (row.id, row.name, row.maybe)
    );
    assert_eq!(back.skipped, common::Text::default());
    assert_eq!(row.skipped.0, "skipped");

    let name = common::Text("b".to_owned());
    let borrowed = derives::Borrowed {
        id: common::I32(2),
        name: &name,
        skipped: &name,
    };
    let mut buf = bytes::BytesMut::new();
    borrowed
        .encode_row(
            &[postgres_types::Type::INT4, postgres_types::Type::TEXT],
            &mut buf,
        )
        .unwrap();
    assert_eq!(buf.len(), 8 + 5);
    assert_eq!(borrowed.skipped.0, "b");
}

/// A user's own trait with the associated items a row-metadata trait would naturally have: a
/// generic function bounded by both that trait and `CopyRow` reads `S::TABLE` / `S::COLUMNS`
/// without "multiple applicable items" (E0034), because the derive's items have other names.
mod own_trait {
    pub trait Meta {
        const TABLE: &'static str;
        const COLUMNS: &'static [&'static str];
        const ACCEPTS_DECODE: bool;
    }

    #[derive(bulk_derive::CopyRow)]
    #[copy(crate = "bulk_core", table = "derived_name")]
    pub struct Row {
        pub id: i64,
    }

    impl Meta for Row {
        const TABLE: &'static str = "own_name";
        const COLUMNS: &'static [&'static str] = &["own"];
        const ACCEPTS_DECODE: bool = true;
    }

    pub fn names<S: Meta + bulk_core::FromCopyRow>() -> (&'static str, &'static str, usize, bool) {
        (
            S::TABLE,
            bulk_core::table_of::<S>(),
            S::COLUMNS.len() + bulk_core::columns_of::<S>().len(),
            S::ACCEPTS_DECODE,
        )
    }
}

#[test]
fn the_derives_items_cannot_clash_with_a_users_trait() {
    assert_eq!(
        own_trait::names::<own_trait::Row>(),
        ("own_name", "derived_name", 2, true)
    );
}
