//! Codec: numeric.
