//! Codec: array.
