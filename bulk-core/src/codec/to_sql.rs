//! Adapter: any type with a postgres-types `ToSql` (for `copy_in`) or `FromSql` (for
//! `copy_out`) impl, such as `#[derive(ToSql, FromSql)]` enums, composites and domains.
//!
//! Two ways in: `#[copy(to_sql)]` on a struct field makes the derive call [`ToSqlField`]'s
//! functions for it; the [`ViaToSql`] wrapper does the same for a value (and can be an array
//! element). Both write the `int32` length, then whatever `ToSql::to_sql` writes (binary format),
//! and hand `FromSql::from_sql` the value's bytes. Type checks are the impl's own `accepts`,
//! asked once by the plan.

use super::{
    begin_len, finish_len, Decode, DecodeElement, DecodeError, Encode, EncodeElement, EncodeError,
};
use bytes::BytesMut;
use postgres_types::{FromSql, IsNull, ToSql, Type, WasNull};
use std::marker::PhantomData;

/// A value written and read through its postgres-types `ToSql`/`FromSql` impls.
///
/// `#[copy(to_sql)]` on a field is usually handier; this wrapper is for places an attribute
/// cannot reach, such as `Vec<ViaToSql<T>>` (though a `Vec<T>` with `#[copy(to_sql)]` works
/// too: postgres-types writes arrays itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct ViaToSql<T>(pub T);

/// The functions the derive calls for a `#[copy(to_sql)]` field of type `T`.
///
/// Not constructed: `ToSqlField::<T>::encode_field(&value, ty, buf)`.
#[derive(Debug)]
pub struct ToSqlField<T: ?Sized>(PhantomData<T>);

// The bounds are on each function, not on the impl: a field whose type lacks `ToSql` gets
// "the trait bound `X: ToSql` is not satisfied" at the field.
impl<T> ToSqlField<T> {
    /// Whether `T::to_sql` can write a column of type `ty` (its `ToSql::accepts`).
    #[inline]
    pub fn accepts_encode(ty: &Type) -> bool
    where
        T: ToSql,
    {
        T::accepts(ty)
    }

    /// Writes `v` as one field: its length (`-1` when `to_sql` says NULL), then its bytes.
    #[inline]
    pub fn encode_field(v: &T, ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError>
    where
        T: ToSql,
    {
        let at = begin_len(buf);
        match v.to_sql(ty, buf) {
            Ok(IsNull::No) => finish_len(buf, at),
            Ok(IsNull::Yes) => {
                buf.truncate(at);
                super::put_null(buf);
                Ok(())
            }
            Err(e) => {
                buf.truncate(at);
                Err(EncodeError::Other(e))
            }
        }
    }

    /// Whether `T::from_sql` can read a column of type `ty` (its `FromSql::accepts`).
    #[inline]
    pub fn accepts_decode(ty: &Type) -> bool
    where
        T: for<'a> FromSql<'a>,
    {
        <T as FromSql<'_>>::accepts(ty)
    }

    /// Reads a field with `FromSql::from_sql` (`from_sql_null` for NULL).
    #[inline]
    pub fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<T, DecodeError>
    where
        T: for<'a> FromSql<'a>,
    {
        match raw {
            Some(raw) => T::from_sql(ty, raw),
            None => T::from_sql_null(ty),
        }
        .map_err(|e| {
            if e.is::<WasNull>() {
                DecodeError::UnexpectedNull
            } else {
                DecodeError::Other(e)
            }
        })
    }
}

impl<T: ToSql> Encode for ViaToSql<T> {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        ToSqlField::<T>::accepts_encode(ty)
    }

    #[inline]
    fn encode_field(&self, ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        ToSqlField::<T>::encode_field(&self.0, ty, buf)
    }
}

impl<T: for<'a> FromSql<'a>> Decode for ViaToSql<T> {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        ToSqlField::<T>::accepts_decode(ty)
    }

    #[inline]
    fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        ToSqlField::<T>::decode(ty, raw).map(ViaToSql)
    }
}

impl<T: ToSql> EncodeElement for ViaToSql<T> {}
impl<T: for<'a> FromSql<'a>> DecodeElement for ViaToSql<T> {}
