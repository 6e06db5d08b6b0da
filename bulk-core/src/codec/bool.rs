//! Codec: bool.
