//! Runtime of [pgbulk](https://docs.rs/pgbulk): binary COPY framing, field codecs, the
//! server-checked plan and the [`Bulk`] handle.
//!
//! Most users depend on the `pgbulk` facade crate instead, which re-exports this crate and the
//! `#[derive(CopyRow)]` macro.

// docs.rs builds with `--cfg docsrs`: show which feature each item needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod codec;
pub mod format;
pub mod pgcopy;
pub mod row;

mod bulk;
mod copy_start;
mod error;
mod ident;
mod parallel;
mod plan;
#[cfg(any(feature = "deadpool", feature = "bb8"))]
mod pools;
mod quarantine;
mod scope;
mod server;
mod session;
mod upsert;

mod source;
#[cfg(feature = "sync")]
pub mod sync;
mod trace;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use crate::bulk::{
    Bulk, BulkExt, CopyOutStream, PreparedCopyIn, Progress, DEFAULT_FLUSH_BYTES,
};
pub use crate::codec::{
    Decode, DecodeElement, DecodeError, Encode, EncodeElement, EncodeError, Inet, Infinity,
    Interval, Json, PgNumeric, PgRange, ViaToSql,
};
pub use crate::error::{Error, ErrorKind, Mismatch, Result};
pub use crate::parallel::{copy_in_parallel, ParallelOutcome, ParallelPart};
pub use crate::plan::Plan;
pub use crate::quarantine::{Quarantine, QuarantineOutcome, Rejected};
pub use crate::row::{Column, CopyRow, FromCopyRow, RawRow};
pub use crate::source::{blocking_stream, BlockingStream};
pub use crate::upsert::{CopyInReturning, Upsert, UpsertCounts, UpsertOptions, UpsertReturning};

/// Items used by the code `#[derive(CopyRow)]` generates. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::codec::{
        put_be, Decode, DecodeError, Encode, EncodeError, JsonField, ToSqlField, TryFromField,
    };
    pub use crate::row::{concat_accepts, concat_columns, Column, CopyRow, FromCopyRow, RawRow};
    pub use bytes::{BufMut, BytesMut};
    pub use core::clone::Clone;
    pub use core::convert::{Into, TryFrom};
    pub use core::default::Default;
    pub use core::result::Result;

    /// The error a `#[copy(try_from = "..")]` conversion may fail with, boxed.
    pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
    pub use postgres_types::{FromSqlOwned, ToSql, Type};
    pub use serde::{de::DeserializeOwned, Serialize};
}
