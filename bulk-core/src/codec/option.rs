//! Codec: `Option<T>`, SQL NULL. `None` writes length `-1`; a NULL field reads as `None`.

use super::{put_null, Decode, DecodeError, Encode, EncodeError};
use bytes::BytesMut;
use postgres_types::Type;

impl<T: Encode> Encode for Option<T> {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        T::accepts(ty)
    }

    #[inline]
    fn encode_field(&self, ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        if let Some(v) = self {
            v.encode_field(ty, buf)
        } else {
            put_null(buf);
            Ok(())
        }
    }

    #[inline]
    fn is_null(&self) -> bool {
        self.as_ref().is_none_or(Encode::is_null)
    }
}

impl<T: Decode> Decode for Option<T> {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        T::accepts(ty)
    }

    #[inline]
    fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        match raw {
            None => Ok(None),
            Some(_) => T::decode(ty, raw).map(Some),
        }
    }
}
