//! Codec: json and jsonb, for `serde_json::Value` and [`Json<T>`] (any serde type).
//!
//! json's binary form is its text; jsonb's is a version byte `1` followed by the text. Values
//! are serialized straight into the COPY buffer. (`String`/`&str` also read and write json and
//! jsonb, as raw JSON text: see `text.rs`.)
//!
//! Note on jsonb: the server normalizes what it stores (object keys sorted and deduplicated,
//! whitespace dropped, numbers kept as numeric), and it rejects the escape `\u0000`, which
//! `serde_json` writes for a NUL character in a string.

use super::text::{jsonb_body, JSONB_VERSION};
use super::{
    begin_len, finish_len, non_null, Decode, DecodeElement, DecodeError, Encode, EncodeElement,
    EncodeError,
};
use crate::codec::put_be;
use bytes::BytesMut;
use postgres_types::Type;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;

/// A value stored as `json` or `jsonb` through serde: `Json(my_struct)`.
///
/// Any `T: Serialize` can be written and any `T: DeserializeOwned` read. For untyped JSON use
/// `serde_json::Value`, or `String` for the raw text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Json<T>(pub T);

/// Whether `ty` is json or jsonb.
#[inline]
fn is_json(ty: &Type) -> bool {
    matches!(*ty, Type::JSON | Type::JSONB)
}

/// Writes a JSON or JSONB field: the length, jsonb's version byte, then `v` serialized.
#[inline]
fn json_send<T: Serialize + ?Sized>(
    v: &T,
    ty: &Type,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    let at = begin_len(buf);
    if *ty == Type::JSONB {
        put_be(buf, [JSONB_VERSION]);
    }
    serde_json::to_writer(BufWriter(buf), v).map_err(|e| {
        EncodeError::Other(format!("cannot serialize the value as JSON: {e}").into())
    })?;
    finish_len(buf, at)
}

/// `io::Write` into a `BytesMut`, inlined (`BufMut::writer` goes through the non-inlined
/// `put_slice` and a `memcpy` call for every token `serde_json` writes).
struct BufWriter<'a>(&'a mut BytesMut);

impl std::io::Write for BufWriter<'_> {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    #[inline]
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }

    #[inline]
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads a JSON or JSONB value (checking jsonb's version byte) and deserializes it.
#[inline]
fn json_recv<T: DeserializeOwned>(ty: &Type, raw: &[u8]) -> Result<T, DecodeError> {
    let text = if *ty == Type::JSONB {
        jsonb_body(raw)?
    } else {
        raw
    };
    serde_json::from_slice(text)
        .map_err(|e| DecodeError::Other(format!("cannot deserialize the {ty} value: {e}").into()))
}

impl Encode for serde_json::Value {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        is_json(ty)
    }

    #[inline]
    fn encode_field(&self, ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        json_send(self, ty, buf)
    }
}

impl Decode for serde_json::Value {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        is_json(ty)
    }

    #[inline]
    fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        json_recv(ty, non_null(raw)?)
    }
}

impl<T: Serialize> Encode for Json<T> {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        is_json(ty)
    }

    #[inline]
    fn encode_field(&self, ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        json_send(&self.0, ty, buf)
    }
}

impl<T: DeserializeOwned> Decode for Json<T> {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        is_json(ty)
    }

    #[inline]
    fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        json_recv(ty, non_null(raw)?).map(Json)
    }
}

impl<T: Serialize> EncodeElement for Json<T> {}
impl<T: DeserializeOwned> DecodeElement for Json<T> {}

/// The functions the derive calls for a `#[copy(json)]` field of type `T`: the [`Json<T>`]
/// codec, without the wrapper in the struct.
///
/// Not constructed: `JsonField::<T>::encode_field(&value, ty, buf)`.
#[derive(Debug)]
pub struct JsonField<T: ?Sized>(PhantomData<T>);

// Bounds per function, as `TryFromField`'s: a missing `Serialize` is reported at the field.
impl<T: ?Sized> JsonField<T> {
    /// Whether the field can be written to or read from a column of type `ty`: json or jsonb.
    #[inline]
    pub fn accepts(ty: &Type) -> bool {
        is_json(ty)
    }

    /// Writes `v` serialized as one json or jsonb field. An `Option::None` is JSON `null`, as
    /// with [`Json<T>`].
    #[inline]
    pub fn encode_field(v: &T, ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError>
    where
        T: Serialize,
    {
        json_send(v, ty, buf)
    }

    /// Reads a json or jsonb field. SQL NULL reads as JSON `null` would: `None` for an
    /// `Option`, an error ([`DecodeError::UnexpectedNull`]) for a type that cannot be null.
    #[inline]
    pub fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<T, DecodeError>
    where
        T: DeserializeOwned + Sized,
    {
        match raw {
            Some(raw) => json_recv(ty, raw),
            None => {
                T::deserialize(serde_json::Value::Null).map_err(|_| DecodeError::UnexpectedNull)
            }
        }
    }
}
