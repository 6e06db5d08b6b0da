//! Adapter: a field written and read through another type's codec, converted with
//! `TryFrom` both ways (`#[copy(try_from = "T")]`).

use super::{Decode, DecodeError, Encode, EncodeError};
use bytes::BytesMut;
use postgres_types::Type;
use std::error::Error as StdError;
use std::fmt;
use std::marker::PhantomData;

/// The functions the derive calls for a field of type `F` marked `#[copy(try_from = "T")]`:
/// `F` is written as `T::try_from(field.clone())` with `T`'s [`Encode`], and read with `T`'s
/// [`Decode`], then `F::try_from`.
///
/// Not constructed: `TryFromField::<F, T>::encode_field(&value, ty, buf)`.
#[derive(Debug)]
pub struct TryFromField<F, T>(PhantomData<(F, T)>);

// The bounds are on each function, not on the impl: a field whose types lack one gets
// "the trait bound `X: Encode` is not satisfied" at the field, not "function exists but its
// trait bounds were not satisfied".
impl<F, T> TryFromField<F, T> {
    /// Whether `T` can be written into a column of type `ty`.
    #[inline]
    pub fn accepts_encode(ty: &Type) -> bool
    where
        T: Encode,
    {
        T::accepts(ty)
    }

    /// Whether a column of type `ty` can be read into `T`.
    #[inline]
    pub fn accepts_decode(ty: &Type) -> bool
    where
        T: Decode,
    {
        T::accepts(ty)
    }

    /// Converts `v` to `T` and writes it with `T`'s codec.
    #[inline]
    pub fn encode_field(v: &F, ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError>
    where
        F: Clone,
        T: Encode + TryFrom<F>,
        T::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        match T::try_from(v.clone()) {
            Ok(value) => value.encode_field(ty, buf),
            Err(e) => Err(EncodeError::Other(Box::new(ConvertError::new::<F, T>(
                e.into(),
            )))),
        }
    }

    /// Reads the field with `T`'s codec and converts the value to `F`.
    #[inline]
    pub fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<F, DecodeError>
    where
        T: Decode,
        F: TryFrom<T>,
        F::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        let value = T::decode(ty, raw)?;
        F::try_from(value)
            .map_err(|e| DecodeError::Other(Box::new(ConvertError::new::<T, F>(e.into()))))
    }
}

/// A `TryFrom` conversion that failed: which types, and the conversion's own error.
#[derive(Debug)]
struct ConvertError {
    from: &'static str,
    to: &'static str,
    source: Box<dyn StdError + Send + Sync>,
}

impl ConvertError {
    fn new<From, To>(source: Box<dyn StdError + Send + Sync>) -> Self {
        ConvertError {
            from: std::any::type_name::<From>(),
            to: std::any::type_name::<To>(),
            source,
        }
    }
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot convert the {} value to {}: {}",
            self.from, self.to, self.source
        )
    }
}

impl StdError for ConvertError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}
