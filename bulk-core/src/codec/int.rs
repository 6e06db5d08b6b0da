//! Codec: int.
