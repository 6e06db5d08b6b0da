//! Small batches bound as parameters instead of copied: one array per column, read by the
//! statement through `unnest($1, .., $n)`, sent in one request with what runs around it.
//!
//! A COPY costs round trips a small batch cannot hide: tokio-postgres prepares it (or a
//! staging table is made first), then starts it and waits for the server's `CopyInResponse`
//! before any data may follow, then ends it. A statement with bound arrays is parsed, bound
//! and run in one request. The rows are encoded by the same [`Encoder`] as for a COPY, before
//! anything is sent, and the arrays made from those tuples
//! ([`tuples_to_arrays`](crate::engine::tuples_to_arrays)): a COPY field and an array element
//! are framed alike. Whatever the bound statement cannot do well goes to the COPY with those
//! same tuples ([`Encoded`]); in particular a value the server refuses is named by row, field
//! and column only by the COPY's line context, so such an error is retried through the COPY.
//!
//! Used by `upsert_via_staging` for batches of fewer than
//! [`MERGE_MIN_ROWS`](crate::sql::upsert::MERGE_MIN_ROWS) rows (see `ops::upsert::bound`), by
//! `copy_in_returning` for batches of fewer than [`MAX_ROWS`] rows (its `RETURNING` rows come
//! back as `DataRow`s, whose body is a COPY tuple: see `client::BoundRows`), and by `copy_in`
//! and `copy_in_with_plan` for batches of fewer than [`MAX_ROWS`] rows (see `ops::copy_in`).

use crate::client::RawParam;
use crate::engine::{tuples_to_arrays, Encoder};
use crate::error::{Error, Result};
use crate::ops::Options;
use crate::plan::Plan;
use crate::row::CopyRow;
use bytes::{Bytes, BytesMut};
use postgres_types::{Kind, Type};
use std::borrow::Borrow;

/// Rows below which a `copy_in` batch is bound (when its plan allows: see [`Plan::inserts`]).
/// Kept-plan batches of the benchmark's `users` rows, bound against copied, alternating (two
/// runs of a probe): 50 rows 0.88–0.90×, 200 0.97–0.99×, 500 1.00–1.02×, 1,000 0.88–0.91×, 1,999
/// 1.08–1.11× — the round trips saved stop paying between 1,000 and 2,000 rows.
pub(crate) const MAX_ROWS: usize = 1_000;

/// Encoded bytes above which a batch is copied even if it has few rows: arrays are built whole
/// in memory on both sides, a COPY streams.
pub(crate) const MAX_BYTES: u64 = 8 << 20;

/// A batch encoded whole before it is sent: binary COPY tuples, no header or trailer.
pub(crate) struct Encoded {
    pub(crate) tuples: Bytes,
    pub(crate) rows: u64,
}

impl Encoded {
    /// Bytes encoded.
    pub(crate) fn bytes(&self) -> u64 {
        self.tuples.len() as u64
    }

    /// The first `plan.types().len()` fields of every tuple as one parameter each, an array of
    /// `arrays[c]` (from [`array_types`]).
    pub(crate) fn params<T: CopyRow + ?Sized>(
        &self,
        plan: &Plan<T>,
        arrays: Vec<Type>,
    ) -> Vec<RawParam> {
        let rows = usize::try_from(self.rows).unwrap_or(usize::MAX);
        tuples_to_arrays(&self.tuples, rows, plan.types())
            .into_iter()
            .zip(arrays)
            .map(|(value, ty)| RawParam {
                ty,
                value: Some(value),
            })
            .collect()
    }
}

/// A batch ready for a bound attempt — encoded whole, with the array type each column is bound
/// as — or, when it may not be bound, its rows untouched (see [`encode_small`]).
pub(crate) enum Small<I> {
    Bound(Encoded, Vec<Type>),
    Rows(I),
}

/// `rows` encoded by [`encode`] (`extra`, `each` as there) when a batch of their size may be
/// bound ([`array_types`], under the caller's `max_rows`); otherwise handed back as they are.
pub(crate) fn encode_small<T, I>(
    plan: &Plan<T>,
    rows: I,
    max_rows: usize,
    extra: usize,
    options: &Options<'_>,
    each: impl FnMut(&mut BytesMut, usize, u64),
) -> Result<Small<I::IntoIter>>
where
    T: CopyRow + ?Sized,
    I: IntoIterator,
    I::Item: Borrow<T>,
{
    let rows = rows.into_iter();
    Ok(match array_types(plan, rows.size_hint().1, max_rows) {
        Some(arrays) => Small::Bound(encode(plan, rows, extra, options, each)?, arrays),
        None => Small::Rows(rows),
    })
}

/// Rows to send through a COPY: rows to encode, or tuples a bound attempt encoded already.
pub(crate) enum Input<I> {
    Rows(I),
    Encoded(Encoded),
}

/// The array type each of `plan`'s columns is bound as, when a batch of at most `rows` rows
/// (an input's upper bound; `None`: it does not say) under `max_rows` may be bound at all:
/// built-in column types only (an enum's, a domain's or a composite's array type is known only
/// to the server), no array columns (`unnest` would flatten them), not a Citus table.
pub(crate) fn array_types<T: CopyRow + ?Sized>(
    plan: &Plan<T>,
    rows: Option<usize>,
    max_rows: usize,
) -> Option<Vec<Type>> {
    if rows.is_none_or(|n| n >= max_rows) || plan.distribution().is_citus() {
        return None;
    }
    plan.types()
        .iter()
        .map(|ty| match ty.kind() {
            Kind::Array(_) => None,
            _ => crate::codec::array_type_of(ty),
        })
        .collect()
}

/// Encodes `rows` whole for `plan` with `extra` trailing columns, each written by `each` (the
/// buffer, where the tuple starts, the row's index), as [`Encoder::push_with`] does. An encode
/// error names the row and field; nothing was sent.
pub(crate) fn encode<T, I>(
    plan: &Plan<T>,
    rows: I,
    extra: usize,
    options: &Options<'_>,
    mut each: impl FnMut(&mut BytesMut, usize, u64),
) -> Result<Encoded>
where
    T: CopyRow + ?Sized,
    I: IntoIterator,
    I::Item: Borrow<T>,
{
    let mut encoder = Encoder::<T>::new(options.flush_bytes, extra).for_server(plan.server());
    for row in rows {
        let ord = encoder.rows();
        encoder.push_with(row.borrow(), plan.types(), |buf, start| {
            each(buf, start, ord);
        })?;
    }
    let rows = encoder.rows();
    Ok(Encoded {
        tuples: encoder.into_tuples(),
        rows,
    })
}

/// Whether `failed`, a bound statement's error that returns rows, is the server refusing a
/// statement prepared before its table changed ("cached plan must not change result type",
/// SQLSTATE 0A000): sqlx keeps bound statements prepared per connection, and a `RETURNING` list
/// whose column types changed since cannot run again on it. The staging path's statements
/// are others, so the batch is staged instead (and is on every later call on that
/// connection).
pub(crate) fn replanned(failed: &Error) -> bool {
    failed.code() == Some(&tokio_postgres::error::SqlState::FEATURE_NOT_SUPPORTED)
}

/// Whether `failed`, the bound statement's error, is to be retried through the COPY: a value
/// or an integrity rule the server refused (SQLSTATE classes 22 and 23), which the COPY names
/// by row, field and column (or, written differently, accepts).
pub(crate) fn copy_instead(failed: &Error) -> bool {
    failed
        .code()
        .is_some_and(|c| matches!(&c.code()[..2], "22" | "23"))
}
