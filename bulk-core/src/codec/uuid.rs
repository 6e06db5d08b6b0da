//! Codec: uuid.
