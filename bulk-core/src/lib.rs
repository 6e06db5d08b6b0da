//! Runtime of [pgbulk](https://docs.rs/pgbulk): binary COPY framing, field codecs, the
//! server-checked plan and the [`Bulk`] handle.
//!
//! Most users depend on the `pgbulk` facade crate instead, which re-exports this crate and the
//! `#[derive(CopyRow)]` macro.

// docs.rs builds with `--cfg docsrs`: show which feature each item needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod pgcopy;

mod bulk;
mod client;
mod codec;
mod engine;
mod error;
mod ops;
mod parallel;
mod parallel_read;
mod plan;
mod row;
mod server;
mod source;
mod sql;
#[cfg(feature = "sync")]
pub mod sync;
mod trace;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use crate::bulk::{
    Bulk, BulkExt, CopyInReturning, CopyOutStream, PreparedCopyIn, Quarantine, Upsert,
    UpsertReturning,
};
#[cfg(feature = "sqlx")]
pub use crate::bulk::{
    SqlxBulk, SqlxBulkExt, SqlxCopyInReturning, SqlxCopyOutStream, SqlxQuarantine, SqlxUpsert,
    SqlxUpsertReturning,
};
#[cfg(feature = "serde_json")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde_json")))]
pub use crate::codec::Json;
#[cfg(feature = "rust_decimal")]
#[cfg_attr(docsrs, doc(cfg(feature = "rust_decimal")))]
pub use crate::codec::PgNumeric;
pub use crate::codec::{
    Decode, DecodeElement, DecodeRef, Encode, EncodeElement, Inet, Infinite, Infinity, Interval,
    PgRange, ViaToSql,
};
pub use crate::error::{DecodeError, EncodeError, Error, ErrorKind, Mismatch, Result};
pub use crate::ops::quarantine::{QuarantineOutcome, Rejected};
pub use crate::ops::upsert::options::{UpsertCounts, UpsertOptions};
pub use crate::ops::{Progress, DEFAULT_FLUSH_BYTES};
pub use crate::parallel::{ParallelOutcome, ParallelPart};
pub use crate::parallel_read::{copy_out_parallel, ParallelRead};
pub use crate::plan::Plan;
pub use crate::row::{columns_of, table_of, Column, CopyRow, FromCopyRow, FromCopyRowRef};
pub use crate::source::{blocking_stream, BlockingStream};

/// Items used by the code `#[derive(CopyRow)]` generates. Not public API.
#[doc(hidden)]
pub mod __private {
    #[cfg(feature = "serde_json")]
    pub use crate::codec::JsonField;
    pub use crate::codec::{
        accepted_type, base_type, begin_len, finish_len, non_null, put_be, put_len, put_null,
        Decode, DecodeRef, ElementReader, Encode, ToSqlField, TryFromField,
    };
    /// The sans-IO COPY engine, for the benchmarks and the decoder fuzz test.
    pub use crate::engine::{Decoder, Encoder, Fed, Owned, RowSink, Step, Visit};
    pub use crate::error::{DecodeError, EncodeError};
    pub use crate::row::{
        concat_accepts, concat_columns, Column, CopyRow, Fields, FromCopyRow, FromCopyRowRef,
        RawRow,
    };
    pub use bytes::{BufMut, BytesMut};
    pub use core::clone::Clone;
    pub use core::convert::{Into, TryFrom};
    pub use core::default::Default;
    pub use core::result::Result;

    /// The error a `#[copy(try_from = "..")]` conversion may fail with, boxed.
    pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
    pub use postgres_types::{FromSqlOwned, ToSql, Type};
    #[cfg(feature = "serde_json")]
    pub use serde::{de::DeserializeOwned, Serialize};
}
