//! pgbulk: typed, binary-format PostgreSQL `COPY` for Rust.

#[doc(inline)]
pub use bulk_core::*;
pub use bulk_derive::CopyRow;
