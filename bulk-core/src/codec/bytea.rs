//! Codec: bytea.
