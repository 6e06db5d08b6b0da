//! Codec: time.
