//! Codec: uuid (16 bytes, in the UUID's own byte order).

use super::{fixed, non_null, Decode, DecodeError, Encode, EncodeError};
use bytes::BytesMut;
use postgres_types::Type;
use uuid::Uuid;

/// Writes a UUID field: length 16, then the 16 bytes.
#[inline]
fn uuid_send(v: &Uuid, buf: &mut BytesMut) {
    super::put_field16(buf, *v.as_bytes());
}

/// Reads a UUID value.
#[inline]
fn uuid_recv(raw: &[u8]) -> Result<Uuid, DecodeError> {
    fixed(raw, "uuid").map(Uuid::from_bytes)
}

impl Encode for Uuid {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        *ty == Type::UUID
    }

    #[inline]
    fn encode_field(&self, _ty: &Type, buf: &mut BytesMut) -> Result<(), EncodeError> {
        uuid_send(self, buf);
        Ok(())
    }
}

impl Decode for Uuid {
    #[inline]
    fn accepts(ty: &Type) -> bool {
        *ty == Type::UUID
    }

    #[inline]
    fn decode(_ty: &Type, raw: Option<&[u8]>) -> Result<Self, DecodeError> {
        uuid_recv(non_null(raw)?)
    }
}
