//! Stand-in field types for the derive's tests.
//!
//! The derive must not depend on bulk-core's own codecs, so the tests use these: fixed-width
//! big-endian integers and a bool (each accepting only its own column type), text, a NULL-able
//! wrapper, and a type whose encoding always fails.

#![allow(dead_code)] // each test binary uses a different subset

use bulk_core::__private::{non_null, put_len, put_null};
use bulk_core::{Decode, DecodeError, Encode, EncodeError};
use bytes::{BufMut, BytesMut};
use postgres_types::Type;

macro_rules! fixed_width {
    ($(#[$doc:meta] $name:ident($inner:ty) as $pg:ident, $put:ident;)*) => {$(
        #[$doc]
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
        pub struct $name(pub $inner);

        impl Encode for $name {
            fn accepts(ty: &Type) -> bool {
                *ty == Type::$pg
            }

            fn encode_field(&self, _: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
                put_len(buf, std::mem::size_of::<$inner>())?;
                buf.$put(self.0.into());
                Ok(())
            }
        }

        impl Decode for $name {
            fn accepts(ty: &Type) -> bool {
                *ty == Type::$pg
            }

            fn decode(_: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
                let bytes = non_null(raw)?
                    .try_into()
                    .map_err(|_| DecodeError::invalid(concat!("bad ", stringify!($pg), " length")))?;
                Ok($name(<$inner>::from_be_bytes(bytes)))
            }
        }
    )*};
}

fixed_width! {
    /// An `int4`.
    I32(i32) as INT4, put_i32;
    /// An `int8`.
    I64(i64) as INT8, put_i64;
    /// A `bool`, sent as one byte.
    Bool(u8) as BOOL, put_u8;
}

impl Bool {
    pub const TRUE: Bool = Bool(1);
    pub const FALSE: Bool = Bool(0);
}

/// A `text` value.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl Encode for Text {
    fn accepts(ty: &Type) -> bool {
        *ty == Type::TEXT
    }

    fn encode_field(&self, _: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        put_len(buf, self.0.len())?;
        buf.put_slice(self.0.as_bytes());
        Ok(())
    }
}

impl Decode for Text {
    fn accepts(ty: &Type) -> bool {
        *ty == Type::TEXT
    }

    fn decode(_: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        let text =
            std::str::from_utf8(non_null(raw)?).map_err(|e| DecodeError::invalid(e.to_string()))?;
        Ok(Text(text.to_owned()))
    }
}

/// Like `Option<T>`: `Null` is SQL NULL.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Nullable<T> {
    #[default]
    Null,
    Value(T),
}

impl<T: Encode> Encode for Nullable<T> {
    fn accepts(ty: &Type) -> bool {
        T::accepts(ty)
    }

    fn encode_field(&self, ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            Nullable::Null => {
                put_null(buf);
                Ok(())
            }
            Nullable::Value(value) => value.encode_field(ty, buf),
        }
    }

    fn is_null(&self) -> bool {
        matches!(self, Nullable::Null)
    }
}

impl<T: Decode> Decode for Nullable<T> {
    fn accepts(ty: &Type) -> bool {
        T::accepts(ty)
    }

    fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        match raw {
            None => Ok(Nullable::Null),
            Some(_) => T::decode(ty, raw).map(Nullable::Value),
        }
    }
}

/// Always fails to encode, with `EncodeError::OutOfRange("always fails")`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Fails;

impl Encode for Fails {
    fn accepts(_: &Type) -> bool {
        true
    }

    fn encode_field(&self, _: &Type, _: &mut BytesMut) -> Result<(), EncodeError> {
        Err(EncodeError::OutOfRange("always fails".to_owned()))
    }
}

/// Splits the fields `encode_row` wrote (without the tuple's int16 field count, which is the
/// engine's framing) into `(offset, length)` pairs for `RawRow::new`, the way the tuple reader does.
pub fn split_fields(tuple: &[u8]) -> Vec<(u32, i32)> {
    let mut at = 0;
    let mut fields = Vec::new();
    while at < tuple.len() {
        let len = i32::from_be_bytes(tuple[at..at + 4].try_into().unwrap());
        at += 4;
        fields.push((u32::try_from(at).unwrap(), len));
        at += usize::try_from(len).unwrap_or(0);
    }
    assert_eq!(at, tuple.len(), "a field runs past the end of the tuple");
    fields
}
