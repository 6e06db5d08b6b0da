//! Codec: text.
