//! Codec: float.
