//! `upsert_via_staging`: binary COPY into a temporary staging table, then one
//! `INSERT .. SELECT .. ON CONFLICT` into the target.
//!
//! # How a call runs
//!
//! 1. The target is described and every field checked against its column (the `copy_in` plan).
//! 2. A scope opens: `BEGIN` on a client, `SAVEPOINT` inside a caller's transaction.
//! 3. The staging table is created in that scope: `CREATE TEMP TABLE pgbulk_stage_<pid>_<n>
//!    ON COMMIT DROP AS SELECT <the struct's columns>, NULL::int8 AS __pgbulk_ord FROM target
//!    WITH NO DATA`. It has exactly the struct's columns with the target's types (typmods and
//!    collations included) and no constraints: generated, identity and defaulted columns the
//!    struct does not carry are not in it, and are filled by the target when the rows are
//!    inserted. (`LIKE target` would also copy every other column and its `NOT NULL`.)
//! 4. The rows are sent with one binary `COPY`; each tuple gets its 0-based input position in
//!    `__pgbulk_ord`.
//! 5. One statement merges: `INSERT INTO target (cols) SELECT cols FROM stage [ORDER BY key]
//!    ON CONFLICT (key) DO UPDATE SET c = EXCLUDED.c, .. WHERE (target.c, ..) IS DISTINCT FROM
//!    (EXCLUDED.c, ..)`. While encoding, [`KeyScan`] looks at every key: only if one may repeat
//!    does a `DELETE` first drop the earlier occurrences from the stage (its row count is the
//!    duplicates), and only keys that did not arrive in ascending order are sorted (rows are
//!    locked in key order; `work_mem` is raised for that statement and restored). The
//!    `INSERT`'s row count is inserted + updated; the `WHERE` counts the updated rows in a
//!    transaction-local setting (see `Merge::insert`), which reads no system column (so
//!    partitioned tables work) and needs only the column privileges the statement itself needs.
//!    A key the server finds twice that the encoder could not see (`1.0` and `1.00`, a
//!    `NULLS NOT DISTINCT` index) undoes the attempt (a savepoint) and retries with the dedupe.
//! 6. The scope closes: `COMMIT`, or `DROP TABLE` + `RELEASE SAVEPOINT` inside a transaction.
//!
//! # Cleanup
//!
//! The staging table only ever exists inside the scope of step 2, so it cannot outlive the call:
//! on any error the scope is rolled back (`ROLLBACK`, or `ROLLBACK TO SAVEPOINT` + `RELEASE`),
//! which undoes the table's creation; if the future is dropped midway, a guard queues the same
//! rollback on the connection without waiting, as tokio-postgres' own `Transaction` does when
//! dropped. Inside a caller's transaction a failed call therefore leaves the transaction usable
//! and unchanged by the call.

use crate::bulk::{server_error, Bulk, Progress};
use crate::codec::put_be;
use crate::copy_start::start_copy_in;
use crate::error::{Error, Result};
use crate::format;
use crate::ident;
use crate::plan::{self, Plan};
use crate::row::{CopyRow, FromCopyRow};
use crate::scope::TxScope;
use crate::trace::{self, Op, OpKind};
use bytes::BytesMut;
use futures_util::SinkExt;
use postgres_types::{Kind, Type};
use std::fmt::{self, Write as _};
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, SimpleQueryMessage};

/// Name of the staging table's input-position column.
pub(crate) const ORD: &str = "__pgbulk_ord";

/// Alias of the target table inside the merge statement.
const TARGET_ALIAS: &str = "\"pgbulk_target\"";

/// Numbers staging tables and savepoints within this process (temporary tables are per session,
/// so process id + counter is unique on every connection this process holds).
static NEXT_STAGE: AtomicU64 = AtomicU64::new(1);

/// What an [`upsert_via_staging`](Bulk::upsert_via_staging) did, counted over the distinct keys
/// of the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct UpsertCounts {
    /// Rows whose key was not in the table: inserted.
    pub inserted: u64,
    /// Rows whose key was in the table with different values: rewritten.
    pub updated: u64,
    /// Rows whose key was in the table and whose values were already equal (not rewritten: no
    /// dead tuple, no WAL), or, with `DO NOTHING`, every row whose key was in the table.
    pub unchanged: u64,
    /// Input rows dropped because a later row of the same batch had the same key.
    pub duplicates: u64,
}

impl UpsertCounts {
    /// Rows passed in: `inserted + updated + unchanged + duplicates`.
    pub fn total(&self) -> u64 {
        self.inserted + self.updated + self.unchanged + self.duplicates
    }
}

impl fmt::Display for UpsertCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} inserted, {} updated, {} unchanged",
            self.inserted, self.updated, self.unchanged
        )?;
        if self.duplicates > 0 {
            write!(f, ", {} in-batch duplicates dropped", self.duplicates)?;
        }
        Ok(())
    }
}

/// The conflict target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Conflict {
    /// The `#[copy(key)]` fields.
    #[default]
    Keys,
    /// These columns (a unique index or constraint over exactly them must exist).
    Columns(Vec<String>),
    /// `ON CONFLICT ON CONSTRAINT name`.
    Constraint(String),
}

/// What happens to rows whose key exists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Action {
    /// `DO UPDATE SET` every copied non-key column.
    #[default]
    UpdateAll,
    /// `DO UPDATE SET` these columns.
    Update(Vec<String>),
    /// `DO NOTHING`.
    Nothing,
}

/// Options of an upsert: the conflict target and what to do on conflict.
///
/// The defaults: the `#[copy(key)]` fields are the conflict target, and every other copied
/// column is updated. The async builder [`Upsert`] has the same methods; the blocking API
/// (`sync` feature) takes this struct.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpsertOptions {
    conflict: Conflict,
    action: Action,
    overriding_system_value: bool,
}

impl UpsertOptions {
    /// The defaults: conflict on the `#[copy(key)]` fields, update every other column.
    pub fn new() -> Self {
        UpsertOptions::default()
    }

    /// Conflict on these columns instead of the `#[copy(key)]` fields: `ON CONFLICT (a, b)`.
    /// A unique index or constraint over exactly these columns must exist, and the struct must
    /// carry them (they are also the key for in-batch duplicates).
    #[must_use]
    pub fn conflict_columns<S: Into<String>>(
        mut self,
        columns: impl IntoIterator<Item = S>,
    ) -> Self {
        self.conflict = Conflict::Columns(columns.into_iter().map(Into::into).collect());
        self
    }

    /// Conflict on a named unique or primary key constraint: `ON CONFLICT ON CONSTRAINT name`.
    /// Its columns (looked up in `pg_constraint`) are the key for in-batch duplicates and must
    /// be carried by the struct.
    #[must_use]
    pub fn conflict_constraint(mut self, name: impl Into<String>) -> Self {
        self.conflict = Conflict::Constraint(name.into());
        self
    }

    /// Update only these columns of an existing row (default: every copied non-key column).
    /// Rows whose values in these columns are already equal are left alone.
    #[must_use]
    pub fn update_columns<S: Into<String>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.action = Action::Update(columns.into_iter().map(Into::into).collect());
        self
    }

    /// `ON CONFLICT .. DO NOTHING`: existing rows are never changed (counted as unchanged).
    #[must_use]
    pub fn do_nothing(mut self) -> Self {
        self.action = Action::Nothing;
        self
    }

    /// Writes the struct's values into `GENERATED ALWAYS AS IDENTITY` columns too
    /// (`INSERT .. OVERRIDING SYSTEM VALUE`), e.g. when such a column is the conflict key.
    /// Without it, PostgreSQL refuses any value for such a column, and the call fails with a
    /// [`Usage`](crate::ErrorKind::Usage) error that names this option.
    #[must_use]
    pub fn overriding_system_value(mut self) -> Self {
        self.overriding_system_value = true;
        self
    }

    /// The constraint name, when the conflict target is one (its columns must be looked up).
    pub(crate) fn constraint(&self) -> Option<&str> {
        match &self.conflict {
            Conflict::Constraint(name) => Some(name),
            _ => None,
        }
    }
}

/// The statement listing the columns of a constraint, in key order: `$1` the quoted table,
/// `$2` the constraint's name.
pub(crate) const CONSTRAINT_COLUMNS_SQL: &str = "SELECT a.attname::text \
     FROM pg_constraint c \
     CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, n) \
     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum \
     WHERE c.conrelid = $1::text::regclass AND c.conname = $2 \
     ORDER BY k.n";

/// The statement listing the (live) column names of a table: `$1` the quoted table.
pub(crate) const TABLE_COLUMNS_SQL: &str = "SELECT attname::text FROM pg_attribute \
     WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped";

/// One staging table: its name and the statements that create and fill it.
pub(crate) struct Stage {
    /// `pg_temp."pgbulk_stage_<pid>_<n>"`.
    pub(crate) table: String,
    /// Savepoint name used inside a caller's transaction.
    pub(crate) savepoint: String,
}

impl Stage {
    pub(crate) fn new() -> Stage {
        let n = NEXT_STAGE.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        Stage {
            table: format!(
                "pg_temp.{}",
                ident::quote(&format!("pgbulk_stage_{pid}_{n}"))
            ),
            savepoint: format!("pgbulk_upsert_{n}"),
        }
    }

    /// `CREATE TEMP TABLE .. ON COMMIT DROP AS SELECT <T's columns>, NULL::int8 AS ord FROM
    /// target WITH NO DATA`.
    pub(crate) fn create_sql<T: CopyRow + ?Sized>(&self, target: &str) -> String {
        format!(
            "CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {}, NULL::int8 AS {} FROM {target} \
             WITH NO DATA",
            self.table,
            column_list(T::COLUMNS.iter().map(|c| c.name)),
            ident::quote(ORD)
        )
    }

    /// The plan for copying `T` (plus the ordinal) into the staging table.
    pub(crate) fn plan<T: CopyRow + ?Sized>(&self, target: &Plan<T>) -> Plan<T> {
        let copy_sql = format!(
            "COPY {} ({}, {}) FROM STDIN (FORMAT binary)",
            self.table,
            column_list(T::COLUMNS.iter().map(|c| c.name)),
            ident::quote(ORD)
        );
        target.retarget(self.table.clone(), copy_sql)
    }

    /// What runs before the scope closes: `sql` (may be empty), then, inside a caller's
    /// transaction, dropping the staging table (`ON COMMIT DROP` only fires at its commit).
    pub(crate) fn before_close(&self, sql: &str, in_tx: bool) -> String {
        match (sql.is_empty(), in_tx) {
            (_, false) => sql.to_owned(),
            (true, true) => format!("DROP TABLE IF EXISTS {}", self.table),
            (false, true) => format!("{sql}; DROP TABLE IF EXISTS {}", self.table),
        }
    }
}

fn column_list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.map(ident::quote).collect::<Vec<_>>().join(", ")
}

/// Encodes `row` as a staging tuple: `T`'s fields, then the int8 ordinal, and shows its keys to
/// `scan`. On failure, returns the pgbulk error with the row index and field; the buffer then
/// holds a partial tuple.
#[inline]
pub(crate) fn encode_staged<T: CopyRow + ?Sized>(
    row: &T,
    plan: &Plan<T>,
    ord: u64,
    buf: &mut BytesMut,
    scan: &mut KeyScan,
) -> Result<()> {
    let start = buf.len();
    crate::row::encode_tuple(row, plan.types(), plan.server(), buf, ord)?;
    scan.observe(&buf[start..], ord);
    // `encode_tuple` wrote `T::COLUMNS.len()` as the tuple's field count; one more for the ordinal.
    let count = i16::from_be_bytes([buf[start], buf[start + 1]]);
    buf[start..start + 2].copy_from_slice(&(count + 1).to_be_bytes());
    put_be(buf, i32::to_be_bytes(8));
    put_be(
        buf,
        i64::to_be_bytes(i64::try_from(ord).unwrap_or(i64::MAX)),
    );
    Ok(())
}

/// The transaction-local setting the merge counts updated rows in (see [`Merge::insert`]).
const UPDATED: &str = "pgbulk.updated";
/// The transaction-local setting `RETURNING .. inserted` compares [`UPDATED`] with.
const SEEN: &str = "pgbulk.seen";
/// The transaction-local setting holding the caller's `work_mem` while the merge raises it.
const SAVED_WORK_MEM: &str = "pgbulk.work_mem";
/// The savepoint around a merge that may be retried with a stronger dedupe.
const MERGE_SAVEPOINT: &str = "pgbulk_merge";
/// Undoes a failed merge attempt (the staging table stays), ready for the next one.
pub(crate) const MERGE_RETRY_SQL: &str =
    "ROLLBACK TO SAVEPOINT pgbulk_merge; RELEASE SAVEPOINT pgbulk_merge";
/// Distinct keys [`KeyScan`] remembers before it stops looking and assumes duplicates
/// (bounds its memory: 8 bytes a key).
const KEY_SCAN_LIMIT: usize = 1 << 21;

/// How the merge removes in-batch duplicate keys (the last occurrence, by input order, wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dedupe {
    /// Not at all: the encoder saw no key twice.
    Skip,
    /// Rows with a NULL in the key are all kept, as a plain unique index does.
    NullsDistinct,
    /// Rows whose keys are NULL in the same places are one key (`NULLS NOT DISTINCT` index).
    NullsEqual,
}

/// What the encoder learnt about the batch's keys, to choose the merge's plan: whether any key
/// can repeat (else no dedupe), whether the keys arrive in ascending order (else the merge sorts
/// them: rows are locked in key order, which avoids deadlocks between concurrent upserts), and
/// the first input row with a NULL in each key column (named if the column is `NOT NULL`).
///
/// Keys are compared by their binary encoding. Equal bytes are equal keys; unequal bytes can
/// still be equal keys (a case-insensitive collation, numeric `1.0` and `1.00`, a
/// `NULLS NOT DISTINCT` index): the server then refuses the merge (cardinality violation) and it
/// is retried, in the same transaction, with the next [`Dedupe`].
pub(crate) struct KeyScan {
    /// Per staged column: its key number, if it is a key column.
    key_of: Vec<Option<usize>>,
    /// Width of the one integer key column (big-endian, signed), when that is the whole key.
    int_width: Option<usize>,
    /// Ascending so far (only tracked for an integer key): the first and the last key.
    ascending: Option<(i64, i64)>,
    /// Once the ascending run ended: its range (a later key inside it may repeat one).
    run: Option<(i64, i64)>,
    seen: std::collections::HashSet<u64, std::hash::BuildHasherDefault<KeyHasher>>,
    /// A key may occur twice.
    pub(crate) duplicates: bool,
    /// Every key arrived in strictly ascending order (and none was NULL).
    ordered: bool,
    first_null: Vec<Option<u64>>,
}

impl KeyScan {
    /// A scan for `merge`'s keys over tuples of `types` (the staged columns, ordinal excluded).
    /// `merge` is `None` for a staged insert: nothing to learn.
    pub(crate) fn new(merge: Option<&Merge>, types: &[Type]) -> KeyScan {
        let mut key_of = vec![None; types.len()];
        let mut first_null = Vec::new();
        let mut int_width = None;
        if let Some(merge) = merge {
            let key_at: Vec<usize> = merge.key_at().collect();
            for (k, &at) in key_at.iter().enumerate() {
                key_of[at] = Some(k);
            }
            first_null = vec![None; key_at.len()];
            if let [at] = key_at[..] {
                int_width = match types[at] {
                    Type::INT2 => Some(2),
                    Type::INT4 => Some(4),
                    Type::INT8 => Some(8),
                    _ => None,
                };
            }
        }
        KeyScan {
            key_of,
            int_width,
            ascending: None,
            run: None,
            seen: std::collections::HashSet::default(),
            duplicates: false,
            ordered: int_width.is_some(),
            first_null,
        }
    }

    /// Looks at the keys of one staged tuple (as [`encode_staged`] wrote it), input row `row`.
    #[inline]
    pub(crate) fn observe(&mut self, tuple: &[u8], row: u64) {
        if self.first_null.is_empty() {
            return;
        }
        let mut hasher = KeyHasher::default();
        let mut null = false;
        let mut int = None;
        let mut at = 2;
        for key in &self.key_of {
            let len = i32::from_be_bytes([tuple[at], tuple[at + 1], tuple[at + 2], tuple[at + 3]]);
            at += 4;
            let len = usize::try_from(len).ok();
            if let Some(k) = *key {
                match len {
                    None => {
                        null = true;
                        self.first_null[k].get_or_insert(row);
                    }
                    Some(len) => {
                        let bytes = &tuple[at..at + len];
                        if self.int_width == Some(len) {
                            int = Some(match len {
                                2 => i64::from(i16::from_be_bytes([bytes[0], bytes[1]])),
                                4 => i64::from(i32::from_be_bytes([
                                    bytes[0], bytes[1], bytes[2], bytes[3],
                                ])),
                                _ => i64::from_be_bytes(bytes.try_into().unwrap_or([0; 8])),
                            });
                        }
                        std::hash::Hasher::write_usize(&mut hasher, len);
                        std::hash::Hasher::write(&mut hasher, bytes);
                    }
                }
            }
            at += len.unwrap_or(0);
        }
        if null {
            // NULLs are distinct in a plain unique index: such a row never repeats a key.
            self.ordered = false;
            return;
        }
        if self.duplicates {
            return;
        }
        if let Some(v) = int {
            match self.ascending {
                _ if !self.ordered => {}
                None => {
                    self.ascending = Some((v, v));
                    return;
                }
                Some((first, last)) if v > last => {
                    self.ascending = Some((first, v));
                    return;
                }
                Some(run) => {
                    self.ordered = false;
                    self.run = Some(run);
                }
            }
            if matches!(self.run, Some((first, last)) if (first..=last).contains(&v)) {
                self.duplicates = true;
                return;
            }
        }
        self.ordered = false;
        if !self.seen.insert(std::hash::Hasher::finish(&hasher)) || self.seen.len() > KEY_SCAN_LIMIT
        {
            self.duplicates = true;
            self.seen = std::collections::HashSet::default();
        }
    }

    fn has_nulls(&self) -> bool {
        self.first_null.iter().any(Option::is_some)
    }
}

/// `FxHash`'s mixing step: fast, and collisions only cost a dedupe the batch did not need.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.write_u64(u64::from_le_bytes([
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
            ]));
        }
        let mut last = [0u8; 8];
        last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.write_u64(u64::from_le_bytes(last));
    }

    #[inline]
    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// The merge: conflict target, key columns and the columns to update, resolved against `T`.
pub(crate) struct Merge {
    target: String,
    columns: Vec<&'static str>,
    /// Per copied column: its struct field (for errors).
    fields: Vec<&'static str>,
    /// Per copied column: compare as text (types without an equality operator, such as json).
    as_text: Vec<bool>,
    keys: Vec<&'static str>,
    conflict: String,
    update: Vec<&'static str>,
    overriding_system_value: bool,
}

/// The statements of one merge attempt and where their results are.
pub(crate) struct MergeBatch {
    /// The statements, `; `-separated.
    pub(crate) sql: String,
    /// Statement number of the dedupe `DELETE` (its row count is the duplicates).
    delete_at: Option<usize>,
    /// Statement number of the `INSERT` (its row count is inserted + updated).
    insert_at: usize,
    /// Statement number of the `SELECT` reading the updated-rows counter.
    counter_at: usize,
}

impl Merge {
    /// Resolves `options` for `T`. `constraint_keys` are the columns of the named constraint
    /// when the conflict target is one.
    pub(crate) fn new<T: CopyRow + ?Sized>(
        plan: &Plan<T>,
        options: &UpsertOptions,
        constraint_keys: Option<Vec<String>>,
    ) -> Result<Merge> {
        let type_name = plan::short_type_name::<T>();
        let find = |name: &str, what: &str| -> Result<&'static str> {
            T::COLUMNS
                .iter()
                .find(|c| c.name == name)
                .map(|c| c.name)
                .ok_or_else(|| {
                    Error::usage(format!(
                        "{what} \"{name}\" is not a column `{type_name}` copies (its columns: {})",
                        T::COLUMNS
                            .iter()
                            .map(|c| c.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })
        };
        if T::COLUMNS.iter().any(|c| c.name == ORD) {
            return Err(Error::usage(format!(
                "`{type_name}` has a column named {ORD}, which upsert_via_staging uses itself"
            )));
        }
        let (keys, conflict) = match (&options.conflict, constraint_keys) {
            (Conflict::Constraint(name), Some(cols)) => {
                if cols.is_empty() {
                    return Err(Error::usage(format!(
                        "table {} has no constraint named \"{name}\"",
                        plan.table()
                    )));
                }
                let keys = cols
                    .iter()
                    .map(|c| find(c, "conflict constraint column"))
                    .collect::<Result<Vec<_>>>()?;
                (keys, format!("ON CONSTRAINT {}", ident::quote(name)))
            }
            (Conflict::Constraint(name), None) => {
                return Err(Error::usage(format!(
                    "the columns of constraint \"{name}\" were not looked up"
                )))
            }
            (Conflict::Columns(cols), _) => {
                let keys = cols
                    .iter()
                    .map(|c| find(c, "conflict column"))
                    .collect::<Result<Vec<_>>>()?;
                let list = format!("({})", column_list(keys.iter().copied()));
                (keys, list)
            }
            (Conflict::Keys, _) => {
                let keys: Vec<&'static str> = T::COLUMNS
                    .iter()
                    .filter(|c| c.key)
                    .map(|c| c.name)
                    .collect();
                let list = format!("({})", column_list(keys.iter().copied()));
                (keys, list)
            }
        };
        if keys.is_empty() {
            return Err(Error::usage(format!(
                "upsert_via_staging needs a conflict key: mark the key fields of `{type_name}` \
                 with #[copy(key)], or call conflict_columns([..]) or conflict_constraint(\"..\")"
            )));
        }
        let update = match &options.action {
            Action::Nothing => Vec::new(),
            Action::UpdateAll => T::COLUMNS
                .iter()
                .map(|c| c.name)
                .filter(|c| !keys.contains(c))
                .collect(),
            Action::Update(cols) => {
                let mut update = Vec::with_capacity(cols.len());
                for c in cols {
                    let c = find(c, "update column")?;
                    if keys.contains(&c) {
                        return Err(Error::usage(format!(
                            "update column \"{c}\" is part of the conflict key"
                        )));
                    }
                    update.push(c);
                }
                update
            }
        };
        let as_text = plan.types().iter().map(compare_as_text).collect();
        Ok(Merge {
            target: plan.table().to_owned(),
            columns: T::COLUMNS.iter().map(|c| c.name).collect(),
            fields: T::COLUMNS.iter().map(|c| c.field).collect(),
            as_text,
            keys,
            conflict,
            update,
            overriding_system_value: options.overriding_system_value,
        })
    }

    /// Position of each key column among the copied columns.
    fn key_at(&self) -> impl Iterator<Item = usize> + '_ {
        self.keys
            .iter()
            .map(|k| self.columns.iter().position(|c| c == k).unwrap_or(0))
    }

    /// The first dedupe to try for a batch the encoder scanned.
    pub(crate) fn first_dedupe(scan: &KeyScan) -> Dedupe {
        match (scan.duplicates, scan.has_nulls()) {
            (false, _) => Dedupe::Skip,
            (true, true) => Dedupe::NullsDistinct,
            // No NULL keys: both dedupes are the same; the simpler one.
            (true, false) => Dedupe::NullsEqual,
        }
    }

    /// The dedupe to retry with when the server found a key twice after `tried`.
    /// `DO NOTHING` never finds one (the later row is just skipped): no retry.
    pub(crate) fn next_dedupe(&self, tried: Dedupe, scan: &KeyScan) -> Option<Dedupe> {
        if self.update.is_empty() {
            return None;
        }
        match tried {
            Dedupe::Skip if scan.has_nulls() => Some(Dedupe::NullsDistinct),
            Dedupe::Skip | Dedupe::NullsDistinct => Some(Dedupe::NullsEqual),
            Dedupe::NullsEqual => None,
        }
    }

    /// `DELETE`s every staged row whose key occurs again later in the input.
    fn dedupe_sql(&self, stage: &str, dedupe: Dedupe) -> Option<String> {
        let ord = ident::quote(ORD);
        let mut partition = column_list(self.keys.iter().copied());
        match dedupe {
            Dedupe::Skip => return None,
            Dedupe::NullsEqual => {}
            Dedupe::NullsDistinct => {
                // A row with a NULL in its key gets a partition of its own.
                let any_null = self
                    .keys
                    .iter()
                    .map(|k| format!("{} IS NULL", ident::quote(k)))
                    .collect::<Vec<_>>()
                    .join(" OR ");
                let _ = write!(partition, ", (CASE WHEN {any_null} THEN {ord} END)");
            }
        }
        Some(format!(
            "DELETE FROM {stage} AS \"pgbulk_d\" USING (SELECT {ord}, row_number() OVER \
             (PARTITION BY {partition} ORDER BY {ord} DESC) AS n FROM {stage}) AS \"pgbulk_w\" \
             WHERE \"pgbulk_d\".{ord} = \"pgbulk_w\".{ord} AND \"pgbulk_w\".n > 1"
        ))
    }

    /// The staged rows in the order the merge takes them: input order (what a sequential scan
    /// of the staging table returns), or key order, sorted only if they did not arrive in it.
    fn source(&self, stage: &str, input_order: bool, scan: &KeyScan) -> String {
        let cols = column_list(self.columns.iter().copied());
        if input_order || scan.ordered {
            format!("SELECT {cols} FROM {stage}")
        } else {
            let keys = column_list(self.keys.iter().copied());
            format!("SELECT {cols} FROM {stage} ORDER BY {keys}")
        }
    }

    /// `INSERT INTO target (cols) <source> ON CONFLICT .. DO UPDATE .. WHERE changed`.
    ///
    /// The `WHERE` also counts the rows it lets through in the transaction-local setting
    /// [`UPDATED`]: PostgreSQL evaluates it once for each conflicting row, after locking that
    /// row and only then (`ExecOnConflictUpdate`: a row changed concurrently is not evaluated
    /// but retried from the start), and every row it passes is updated. The `CASE` makes the
    /// count happen only after the distinctness test passed. Unlike `RETURNING (xmax = 0)`,
    /// this reads no system column (refused through partition routing) and needs no
    /// table-level `SELECT` privilege.
    fn insert(&self, source: &str, returning: &str) -> String {
        let cols = column_list(self.columns.iter().copied());
        let action = if self.update.is_empty() {
            "DO NOTHING".to_owned()
        } else {
            let set = self
                .update
                .iter()
                .map(|c| {
                    let q = ident::quote(c);
                    format!("{q} = EXCLUDED.{q}")
                })
                .collect::<Vec<_>>()
                .join(", ");
            let side = |prefix: &str| {
                self.update
                    .iter()
                    .map(|c| {
                        let at = self.columns.iter().position(|x| x == c).unwrap_or(0);
                        let cast = if self.as_text[at] { "::text" } else { "" };
                        format!("{prefix}.{}{cast}", ident::quote(c))
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            // ROW(..) so that a single column compares as a row too.
            format!(
                "DO UPDATE SET {set} WHERE CASE WHEN ROW({}) IS DISTINCT FROM ROW({}) THEN \
                 set_config('{UPDATED}', (current_setting('{UPDATED}')::int8 + 1)::text, true) \
                 IS NOT NULL ELSE false END",
                side(TARGET_ALIAS),
                side("EXCLUDED")
            )
        };
        let overriding = if self.overriding_system_value {
            " OVERRIDING SYSTEM VALUE"
        } else {
            ""
        };
        format!(
            "INSERT INTO {} AS {TARGET_ALIAS} ({cols}){overriding} {source} ON CONFLICT {} \
             {action}{returning}",
            self.target, self.conflict
        )
    }

    /// The statements before the merge: a savepoint if a retry may follow, the counters, a
    /// larger `work_mem` if the merge sorts (`staged_bytes` sized; never lowered; the caller's
    /// value saved), and the dedupe.
    fn prelude(
        &self,
        stage: &str,
        dedupe: Dedupe,
        scan: &KeyScan,
        staged_bytes: u64,
        input_order: bool,
    ) -> Vec<String> {
        let mut out = Vec::new();
        if self.next_dedupe(dedupe, scan).is_some() {
            out.push(format!("SAVEPOINT {MERGE_SAVEPOINT}"));
        }
        let mut settings =
            format!("SELECT set_config('{UPDATED}', '0', true), set_config('{SEEN}', '0', true)");
        if Merge::sorts(dedupe, scan, input_order) {
            // A sort of the staged rows in memory instead of an external merge on disk: about
            // twice their size, at least 4 MB, at most 1 GB.
            let kb = (staged_bytes / 512).clamp(4096, 1 << 20);
            let _ = write!(
                settings,
                ", set_config('{SAVED_WORK_MEM}', current_setting('work_mem'), true), \
                 set_config('work_mem', greatest(pg_size_bytes(current_setting('work_mem')) \
                 / 1024, {kb})::text || 'kB', true)"
            );
        }
        out.push(settings);
        out.extend(self.dedupe_sql(stage, dedupe));
        out
    }

    /// Whether the merge sorts: to dedupe, or to take unordered rows in key order.
    fn sorts(dedupe: Dedupe, scan: &KeyScan, input_order: bool) -> bool {
        dedupe != Dedupe::Skip || !(input_order || scan.ordered)
    }

    /// The statements after the merge: `work_mem` restored (inside a caller's transaction a
    /// `SET LOCAL` would outlive the call), the savepoint released.
    fn epilogue(&self, dedupe: Dedupe, scan: &KeyScan, input_order: bool) -> Vec<String> {
        let mut out = Vec::new();
        if Merge::sorts(dedupe, scan, input_order) {
            out.push(format!(
                "SELECT set_config('work_mem', current_setting('{SAVED_WORK_MEM}'), true)"
            ));
        }
        if self.next_dedupe(dedupe, scan).is_some() {
            out.push(format!("RELEASE SAVEPOINT {MERGE_SAVEPOINT}"));
        }
        out
    }

    /// One attempt of the counting merge, with `dedupe`; read it with [`parse_counts`].
    pub(crate) fn counts_batch(
        &self,
        stage: &str,
        dedupe: Dedupe,
        scan: &KeyScan,
        staged_bytes: u64,
    ) -> MergeBatch {
        let mut statements = self.prelude(stage, dedupe, scan, staged_bytes, false);
        let delete_at = (dedupe != Dedupe::Skip).then(|| statements.len() - 1);
        let insert_at = statements.len();
        statements.push(self.insert(&self.source(stage, false, scan), ""));
        let counter_at = statements.len();
        statements.push(format!("SELECT current_setting('{UPDATED}')"));
        statements.extend(self.epilogue(dedupe, scan, false));
        MergeBatch {
            sql: statements.join("; "),
            delete_at,
            insert_at,
            counter_at,
        }
    }

    /// One attempt of the merge returning `returning` for each inserted or updated row:
    /// the statements to run first, the `INSERT .. RETURNING`, the statements to run after.
    pub(crate) fn returning_sql(
        &self,
        stage: &str,
        returning: &str,
        input_order: bool,
        dedupe: Dedupe,
        scan: &KeyScan,
        staged_bytes: u64,
    ) -> (String, String, String) {
        let before = self.prelude(stage, dedupe, scan, staged_bytes, input_order);
        let insert = self.insert(
            &self.source(stage, input_order, scan),
            &format!(" RETURNING {returning}"),
        );
        let after = self.epilogue(dedupe, scan, input_order);
        (before.join("; "), insert, after.join("; "))
    }

    /// Refines the error of a failed merge: a `GENERATED ALWAYS` identity column says which
    /// option writes it; a NULL in a `NOT NULL` key names the first input row with one.
    pub(crate) fn refine_error(&self, scan: &KeyScan, err: Error) -> Error {
        if err.code() == Some(&SqlState::GENERATED_ALWAYS) {
            let message = format!(
                "{err}: {} has a GENERATED ALWAYS identity column among the struct's columns; \
                 call overriding_system_value() to write the struct's values into it, or leave \
                 the field out to let the table generate it",
                self.target
            );
            return err.into_usage(message);
        }
        if err.code() != Some(&SqlState::NOT_NULL_VIOLATION) {
            return err;
        }
        let Some(k) = err
            .column()
            .and_then(|c| self.keys.iter().position(|k| *k == c))
        else {
            return err;
        };
        match scan.first_null.get(k).copied().flatten() {
            Some(row) => err
                .with_row(row)
                .with_field(self.fields[self.key_at().nth(k).unwrap_or(0)])
                .with_column(self.keys[k]),
            None => err,
        }
    }
}

/// Whether `e` is the server finding one key twice in a merge (`ON CONFLICT DO UPDATE command
/// cannot affect row a second time`): the merge is retried with the next [`Dedupe`].
pub(crate) fn is_key_twice(code: Option<&SqlState>) -> bool {
    code == Some(&SqlState::CARDINALITY_VIOLATION)
}

/// Whether values of `ty` are compared as text (no default equality operator).
fn compare_as_text(ty: &Type) -> bool {
    match ty.kind() {
        Kind::Array(elem) => compare_as_text(elem),
        Kind::Domain(base) => compare_as_text(base),
        _ => matches!(*ty, Type::JSON | Type::XML | Type::POINT | Type::BOX),
    }
}

/// The counts from the messages of a [`MergeBatch`], given the number of rows staged.
pub(crate) fn parse_counts(
    messages: &[SimpleQueryMessage],
    batch: &MergeBatch,
    staged: u64,
) -> Result<UpsertCounts> {
    let (mut statement, mut duplicates, mut affected, mut updated) = (0, 0, None, None);
    for m in messages {
        match m {
            SimpleQueryMessage::Row(row) if statement == batch.counter_at => {
                updated = row.get(0).and_then(|v| v.parse::<u64>().ok());
            }
            SimpleQueryMessage::CommandComplete(n) => {
                if Some(statement) == batch.delete_at {
                    duplicates = *n;
                } else if statement == batch.insert_at {
                    affected = Some(*n);
                }
                statement += 1;
            }
            _ => {}
        }
    }
    let (Some(affected), Some(updated)) = (affected, updated) else {
        return Err(Error::protocol("the upsert merge returned no counts"));
    };
    let distinct = staged.saturating_sub(duplicates);
    let inserted = affected.saturating_sub(updated);
    Ok(UpsertCounts {
        inserted,
        updated,
        unchanged: distinct.saturating_sub(affected),
        duplicates,
    })
}

/// The `RETURNING` list for `R`: each field's column of the target, or, for a field
/// `inserted` that is not a column of the target, whether the row was inserted: the merge's
/// updated-rows counter ([`Merge::insert`]) moved since the previous returned row exactly when
/// this row was updated (`RETURNING` is evaluated right after each row's insert or update).
pub(crate) fn returning_list<R: CopyRow + ?Sized>(
    table_columns: &[String],
    target: &str,
) -> Result<String> {
    let mut out = Vec::with_capacity(R::COLUMNS.len());
    for c in R::COLUMNS {
        if table_columns.iter().any(|t| t == c.name) {
            out.push(format!("{TARGET_ALIAS}.{}", ident::quote(c.name)));
        } else if c.name == "inserted" {
            out.push(format!(
                "CASE WHEN current_setting('{UPDATED}') = current_setting('{SEEN}') THEN true \
                 ELSE set_config('{SEEN}', current_setting('{UPDATED}'), true) IS NULL END \
                 AS \"inserted\""
            ));
        } else {
            return Err(Error::usage(format!(
                "field `{}` of `{}` is not a column of {target} (nor `inserted`, which reads \
                 whether the row was inserted)",
                c.field,
                plan::short_type_name::<R>()
            )));
        }
    }
    Ok(out.join(", "))
}

/// `INSERT INTO target (cols) SELECT cols FROM stage [ORDER BY ord] RETURNING ..`.
pub(crate) fn insert_returning_sql<T: CopyRow + ?Sized>(
    target: &str,
    stage: &str,
    returning: &str,
    input_order: bool,
) -> String {
    let cols = column_list(T::COLUMNS.iter().map(|c| c.name));
    let order = if input_order {
        format!(" ORDER BY {}", ident::quote(ORD))
    } else {
        String::new()
    };
    format!(
        "INSERT INTO {target} AS {TARGET_ALIAS} ({cols}) SELECT {cols} FROM {stage}{order} \
         RETURNING {returning}"
    )
}

// ---------------------------------------------------------------------------------------------
// The async driver.

/// An open staging scope on an async client: the transaction or savepoint, and the staging
/// table created in it.
struct Scope<'c> {
    tx: TxScope<'c>,
    stage: Stage,
}

impl<'c> Scope<'c> {
    /// Opens the scope and creates the staging table for `T` shaped after `target`.
    async fn open<T: CopyRow + ?Sized>(
        client: &'c Client,
        in_tx: bool,
        target: &str,
    ) -> Result<Scope<'c>> {
        let stage = Stage::new();
        let tx = TxScope::open(
            client,
            in_tx,
            stage.savepoint.clone(),
            "upsert_via_staging",
            &stage.create_sql::<T>(target),
            "cannot create the staging table",
        )
        .await?;
        Ok(Scope { tx, stage })
    }

    /// Undoes the scope (best effort: the error being returned matters more).
    async fn rollback(self) {
        self.tx.rollback().await;
    }

    /// Runs `sql` (a merge attempt) and closes the scope in the same round trip. On failure the
    /// scope stays open, for a retry or a rollback.
    async fn try_finish_with(
        &mut self,
        sql: &str,
    ) -> std::result::Result<Vec<SimpleQueryMessage>, tokio_postgres::Error> {
        let before = self.stage.before_close(sql, self.tx.in_tx());
        self.tx.try_close_with(&before).await
    }

    /// Runs `sql` (may be empty) and commits.
    async fn commit_with(self, sql: &str) -> Result<()> {
        let before = self.stage.before_close(sql, self.tx.in_tx());
        self.tx
            .close_with(&before, "cannot commit the staged write")
            .await
            .map(drop)
    }
}

/// Sends `rows` into the staging table with their input positions, showing their keys to
/// `scan`; returns the row count and the bytes sent.
async fn copy_into_stage<T, I>(
    bulk: &Bulk<'_>,
    plan: &Plan<T>,
    rows: I,
    scan: &mut KeyScan,
) -> Result<(u64, u64)>
where
    T: CopyRow,
    I: IntoIterator<Item = T>,
{
    let sink = start_copy_in(
        bulk.client,
        plan,
        None,
        "COPY into the staging table failed",
    )
    .await?;
    let mut sink = Box::pin(sink);
    let flush = bulk.flush_bytes;
    let mut buf = BytesMut::with_capacity(flush + flush / 4);
    format::write_header(&mut buf);
    let (mut n, mut bytes) = (0u64, 0u64);
    for row in rows {
        encode_staged(&row, plan, n, &mut buf, scan)?;
        n += 1;
        if buf.len() >= flush {
            bytes += buf.len() as u64;
            sink.send(buf.split().freeze())
                .await
                .map_err(server_error::<T>)?;
            buf.reserve(flush + flush / 4);
            if let Some(progress) = &bulk.progress {
                progress(Progress { rows: n, bytes });
            }
        }
    }
    format::write_trailer(&mut buf);
    bytes += buf.len() as u64;
    sink.send(buf.split().freeze())
        .await
        .map_err(server_error::<T>)?;
    sink.as_mut().finish().await.map_err(server_error::<T>)?;
    if let Some(progress) = &bulk.progress {
        progress(Progress { rows: n, bytes });
    }
    Ok((n, bytes))
}

/// The columns of `constraint` on the (quoted) `table`, in key order.
async fn constraint_columns(client: &Client, table: &str, constraint: &str) -> Result<Vec<String>> {
    let rows = client
        .query(CONSTRAINT_COLUMNS_SQL, &[&table, &constraint])
        .await
        .map_err(|e| Error::pg("cannot look up the conflict constraint", e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The live column names of the (quoted) `table`.
async fn table_columns(client: &Client, table: &str) -> Result<Vec<String>> {
    let rows = client
        .query(TABLE_COLUMNS_SQL, &[&table])
        .await
        .map_err(|e| Error::pg(&format!("cannot list the columns of {table}"), e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

type BoxFuture<'c, O> = Pin<Box<dyn Future<Output = O> + Send + 'c>>;

/// What a staged call does after the COPY.
enum Finish<R> {
    Counts(UpsertOptions),
    Upsert(UpsertOptions, bool, PhantomData<fn() -> R>),
    Insert(bool),
}

/// The context of a failed merge's error.
pub(crate) const MERGE_FAILED: &str = "upsert_via_staging: the merge failed, nothing was written";

/// The whole staged call; `Out` is `UpsertCounts` or `Vec<R>`.
async fn run_staged<'c, T, I, R>(
    bulk: Bulk<'c>,
    rows: I,
    finish: Finish<R>,
) -> Result<(Option<UpsertCounts>, Vec<R>)>
where
    T: CopyRow,
    I: IntoIterator<Item = T>,
    R: FromCopyRow + Send + 'c,
{
    let client = bulk.client;
    let target_plan = plan::plan_copy_in::<T>(client, bulk.table_for::<T>()).await?;
    let target = target_plan.table().to_owned();
    let merge = match &finish {
        Finish::Counts(o) | Finish::Upsert(o, ..) => {
            let keys = match o.constraint() {
                Some(name) => Some(constraint_columns(client, &target, name).await?),
                None => None,
            };
            Some(Merge::new(&target_plan, o, keys)?)
        }
        Finish::Insert(_) => None,
    };
    let returning = match &finish {
        Finish::Counts(_) => None,
        _ => Some(returning_list::<R>(
            &table_columns(client, &target).await?,
            &target,
        )?),
    };
    let mut scan = KeyScan::new(merge.as_ref(), target_plan.types());
    let mut scope = Scope::open::<T>(client, bulk.in_transaction, &target).await?;
    let stage_plan = scope.stage.plan(&target_plan);
    let (staged, bytes) = match copy_into_stage(&bulk, &stage_plan, rows, &mut scan).await {
        Ok(n) => n,
        Err(e) => {
            scope.rollback().await;
            return Err(e);
        }
    };
    let stage = scope.stage.table.clone();
    let (merge, order) = match (finish, merge, returning) {
        (Finish::Insert(order), _, Some(returning)) => {
            let sql = insert_returning_sql::<T>(&target, &stage, &returning, order);
            return read_then_commit(&bulk, scope, sql, String::new()).await;
        }
        (Finish::Counts(_), Some(merge), _) => (merge, None),
        (Finish::Upsert(_, order, _), Some(merge), Some(returning)) => {
            (merge, Some((order, returning)))
        }
        _ => unreachable!("merge and returning are made for the finish that needs them"),
    };
    // Each attempt either finishes the call or, when the server found a key twice that the
    // encoder could not see (see `KeyScan`), is undone and retried with the next dedupe.
    let mut dedupe = Merge::first_dedupe(&scan);
    loop {
        let failed = match &order {
            None => {
                let batch = merge.counts_batch(&stage, dedupe, &scan, bytes);
                match scope.try_finish_with(&batch.sql).await {
                    Ok(messages) => {
                        return Ok((Some(parse_counts(&messages, &batch, staged)?), Vec::new()))
                    }
                    Err(e) => Error::pg(MERGE_FAILED, e),
                }
            }
            Some((order, returning)) => {
                let (before, insert, after) =
                    merge.returning_sql(&stage, returning, *order, dedupe, &scan, bytes);
                match client.batch_execute(&before).await {
                    Err(e) => Error::pg(MERGE_FAILED, e),
                    Ok(()) => match bulk.copy_out_query::<R>(insert).collect_vec().await {
                        Ok(out) => {
                            scope.commit_with(&after).await?;
                            return Ok((None, out));
                        }
                        Err(e) => e,
                    },
                }
            }
        };
        match merge.next_dedupe(dedupe, &scan) {
            Some(next) if is_key_twice(failed.code()) => {
                if let Err(e) = client.batch_execute(MERGE_RETRY_SQL).await {
                    scope.rollback().await;
                    return Err(Error::pg(MERGE_FAILED, e));
                }
                dedupe = next;
            }
            _ => {
                scope.rollback().await;
                return Err(merge.refine_error(&scan, failed));
            }
        }
    }
}

async fn read_then_commit<'c, R: FromCopyRow + Send + 'c>(
    bulk: &Bulk<'c>,
    scope: Scope<'c>,
    sql: String,
    after: String,
) -> Result<(Option<UpsertCounts>, Vec<R>)> {
    match bulk.copy_out_query::<R>(sql).collect_vec().await {
        Ok(out) => {
            scope.commit_with(&after).await?;
            Ok((None, out))
        }
        Err(e) => {
            scope.rollback().await;
            Err(e)
        }
    }
}

impl<'c> Bulk<'c> {
    /// Inserts `rows`, or updates the rows with the same key, at COPY speed: the rows are
    /// copied into a temporary staging table, then merged with one
    /// `INSERT .. SELECT .. ON CONFLICT (key) DO UPDATE`. Await it for the [`UpsertCounts`].
    ///
    /// - The conflict target is the `#[copy(key)]` fields, or
    ///   [`conflict_columns`](Upsert::conflict_columns) /
    ///   [`conflict_constraint`](Upsert::conflict_constraint). Existing rows get every copied
    ///   non-key column, or [`update_columns`](Upsert::update_columns), or nothing
    ///   ([`do_nothing`](Upsert::do_nothing)).
    /// - A row equal to the existing one is not rewritten (no dead tuple, no WAL) and counts
    ///   as unchanged.
    /// - **Duplicate keys in one batch: the last occurrence in input order wins**; the others
    ///   are dropped before the merge and counted in [`UpsertCounts::duplicates`]. Rows with a
    ///   NULL in the key follow the unique index, as a plain `INSERT` would: all kept (NULLs
    ///   are distinct), or one key under `NULLS NOT DISTINCT`. A NULL in a `NOT NULL` key fails
    ///   the call with an error naming the first such input row.
    /// - A `GENERATED ALWAYS AS IDENTITY` column among the struct's columns needs
    ///   [`overriding_system_value`](Upsert::overriding_system_value).
    /// - On a `Client` the merge is one statement inside a short transaction of its own: all or
    ///   nothing. If a transaction block is already open on that client (a `BEGIN` sent as SQL,
    ///   which tokio-postgres does not track), the call refuses with
    ///   [`ErrorKind::Usage`](crate::ErrorKind::Usage) instead of committing it. On a `Transaction` it runs inside the caller's transaction (a savepoint), and
    ///   a rollback undoes it; a failed call rolls back to the savepoint, so the caller's
    ///   transaction stays usable.
    /// - The staging table (only the struct's columns, typed like the target's; generated,
    ///   identity and default columns the struct does not carry are left to the target) is gone
    ///   when the call returns, on success or error, and when the future is dropped (the scope
    ///   is rolled back).
    ///
    /// Do not run other statements on the same connection while the call runs: they would land
    /// inside its scope. (Through PgBouncer in transaction pooling mode, call it on a
    /// `Transaction`: the describe step prepares a named statement.)
    pub fn upsert_via_staging<T, I>(&self, rows: I) -> Upsert<'c, T, I>
    where
        T: CopyRow,
        I: IntoIterator<Item = T>,
    {
        Upsert {
            bulk: self.clone(),
            rows,
            options: UpsertOptions::default(),
            _row: PhantomData,
        }
    }

    /// [`upsert_via_staging`](Bulk::upsert_via_staging), handing back one `R` per inserted or
    /// updated row (unchanged rows are not returned) instead of counts. `R`'s fields name
    /// columns of the target (e.g. a generated `id`), and a field `inserted: bool` that is not
    /// a column reads whether the row was inserted (exact on partitioned tables and under
    /// column-level privileges too: it does not read `xmax`). The rows come back in binary
    /// through `COPY (INSERT .. RETURNING ..) TO STDOUT`; in input order with
    /// [`in_input_order`](UpsertReturning::in_input_order).
    pub fn upsert_via_staging_returning<R, T, I>(&self, rows: I) -> UpsertReturning<'c, T, I, R>
    where
        R: FromCopyRow,
        T: CopyRow,
        I: IntoIterator<Item = T>,
    {
        self.upsert_via_staging(rows).returning::<R>()
    }

    /// Inserts `rows` (through a staging table) and hands back one `R` per row, e.g. the ids
    /// the table generated: `COPY (INSERT INTO t SELECT .. FROM stage RETURNING ..) TO STDOUT`.
    /// `R` is read like [`upsert_via_staging_returning`](Bulk::upsert_via_staging_returning)'s.
    /// All or nothing; in input order with [`in_input_order`](CopyInReturning::in_input_order)
    /// (rows are then inserted in input order, so serial and identity values follow it too).
    pub fn copy_in_returning<R, T, I>(&self, rows: I) -> CopyInReturning<'c, T, I, R>
    where
        R: FromCopyRow,
        T: CopyRow,
        I: IntoIterator<Item = T>,
    {
        CopyInReturning {
            bulk: self.clone(),
            rows,
            input_order: false,
            _row: PhantomData,
        }
    }
}

/// An [`upsert_via_staging`](Bulk::upsert_via_staging) call being set up; `.await` it.
#[must_use = "an upsert does nothing until it is awaited"]
pub struct Upsert<'c, T, I> {
    bulk: Bulk<'c>,
    rows: I,
    options: UpsertOptions,
    _row: PhantomData<fn() -> T>,
}

impl<T, I> fmt::Debug for Upsert<'_, T, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upsert")
            .field("bulk", &self.bulk)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The option setters of an upsert builder, forwarding to the [`UpsertOptions`] at
/// `self.<path>`.
macro_rules! option_setters {
    ($($path:ident).+) => {
        /// See [`UpsertOptions::conflict_columns`].
        pub fn conflict_columns<S: Into<String>>(
            mut self,
            columns: impl IntoIterator<Item = S>,
        ) -> Self {
            self.$($path).+ = self.$($path).+.conflict_columns(columns);
            self
        }

        /// See [`UpsertOptions::conflict_constraint`].
        pub fn conflict_constraint(mut self, name: impl Into<String>) -> Self {
            self.$($path).+ = self.$($path).+.conflict_constraint(name);
            self
        }

        /// See [`UpsertOptions::update_columns`].
        pub fn update_columns<S: Into<String>>(
            mut self,
            columns: impl IntoIterator<Item = S>,
        ) -> Self {
            self.$($path).+ = self.$($path).+.update_columns(columns);
            self
        }

        /// See [`UpsertOptions::do_nothing`].
        pub fn do_nothing(mut self) -> Self {
            self.$($path).+ = self.$($path).+.do_nothing();
            self
        }

        /// See [`UpsertOptions::overriding_system_value`].
        pub fn overriding_system_value(mut self) -> Self {
            self.$($path).+ = self.$($path).+.overriding_system_value();
            self
        }
    };
}

impl<'c, T, I> Upsert<'c, T, I> {
    option_setters!(options);

    /// Replaces all options at once.
    pub fn options(mut self, options: UpsertOptions) -> Self {
        self.options = options;
        self
    }

    /// Hands back one `R` per inserted or updated row instead of counts; see
    /// [`Bulk::upsert_via_staging_returning`].
    pub fn returning<R: FromCopyRow>(self) -> UpsertReturning<'c, T, I, R> {
        UpsertReturning {
            upsert: self,
            input_order: false,
            _row: PhantomData,
        }
    }
}

impl<'c, T, I> IntoFuture for Upsert<'c, T, I>
where
    T: CopyRow + Send + 'c,
    I: IntoIterator<Item = T> + Send + 'c,
    I::IntoIter: Send,
{
    type Output = Result<UpsertCounts>;
    type IntoFuture = BoxFuture<'c, Result<UpsertCounts>>;

    fn into_future(self) -> Self::IntoFuture {
        let op = Op::start(OpKind::Upsert, self.bulk.table_for::<T>());
        Box::pin(trace::traced_rows(
            op,
            async move {
                let (counts, _) =
                    run_staged::<T, I, NoRows>(self.bulk, self.rows, Finish::Counts(self.options))
                        .await?;
                counts.ok_or_else(|| Error::protocol("the upsert returned no counts"))
            },
            UpsertCounts::total,
        ))
    }
}

/// An [`upsert_via_staging_returning`](Bulk::upsert_via_staging_returning) call being set up;
/// `.await` it for the rows.
#[must_use = "an upsert does nothing until it is awaited"]
pub struct UpsertReturning<'c, T, I, R> {
    upsert: Upsert<'c, T, I>,
    input_order: bool,
    _row: PhantomData<fn() -> R>,
}

impl<T, I, R> fmt::Debug for UpsertReturning<'_, T, I, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpsertReturning")
            .field("upsert", &self.upsert)
            .field("input_order", &self.input_order)
            .finish()
    }
}

impl<T, I, R> UpsertReturning<'_, T, I, R> {
    /// Returns the rows in the input order of the rows that won (the last of each key), rather
    /// than in key order. Rows are then also locked in that order, which makes deadlocks with
    /// concurrent upserts of overlapping keys possible; key order (the default) avoids them.
    pub fn in_input_order(mut self) -> Self {
        self.input_order = true;
        self
    }

    option_setters!(upsert.options);
}

impl<'c, T, I, R> IntoFuture for UpsertReturning<'c, T, I, R>
where
    T: CopyRow + Send + 'c,
    I: IntoIterator<Item = T> + Send + 'c,
    I::IntoIter: Send,
    R: FromCopyRow + Send + 'c,
{
    type Output = Result<Vec<R>>;
    type IntoFuture = BoxFuture<'c, Result<Vec<R>>>;

    fn into_future(self) -> Self::IntoFuture {
        let op = Op::start(OpKind::Upsert, self.upsert.bulk.table_for::<T>());
        Box::pin(trace::traced_rows(
            op,
            async move {
                let finish = Finish::Upsert(self.upsert.options, self.input_order, PhantomData);
                let (_, rows) =
                    run_staged::<T, I, R>(self.upsert.bulk, self.upsert.rows, finish).await?;
                Ok(rows)
            },
            |rows: &Vec<R>| rows.len() as u64,
        ))
    }
}

/// A [`copy_in_returning`](Bulk::copy_in_returning) call being set up; `.await` it for the
/// rows.
#[must_use = "copy_in_returning does nothing until it is awaited"]
pub struct CopyInReturning<'c, T, I, R> {
    bulk: Bulk<'c>,
    rows: I,
    input_order: bool,
    _row: PhantomData<fn() -> (T, R)>,
}

impl<T, I, R> fmt::Debug for CopyInReturning<'_, T, I, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CopyInReturning")
            .field("bulk", &self.bulk)
            .field("input_order", &self.input_order)
            .finish_non_exhaustive()
    }
}

impl<T, I, R> CopyInReturning<'_, T, I, R> {
    /// Inserts the rows in input order and returns them in that order: the `n`-th returned
    /// row belongs to the `n`-th input row.
    pub fn in_input_order(mut self) -> Self {
        self.input_order = true;
        self
    }
}

impl<'c, T, I, R> IntoFuture for CopyInReturning<'c, T, I, R>
where
    T: CopyRow + Send + 'c,
    I: IntoIterator<Item = T> + Send + 'c,
    I::IntoIter: Send,
    R: FromCopyRow + Send + 'c,
{
    type Output = Result<Vec<R>>;
    type IntoFuture = BoxFuture<'c, Result<Vec<R>>>;

    fn into_future(self) -> Self::IntoFuture {
        let op = Op::start(OpKind::CopyInReturning, self.bulk.table_for::<T>());
        Box::pin(trace::traced_rows(
            op,
            async move {
                let (_, rows) =
                    run_staged::<T, I, R>(self.bulk, self.rows, Finish::Insert(self.input_order))
                        .await?;
                Ok(rows)
            },
            |rows: &Vec<R>| rows.len() as u64,
        ))
    }
}

/// The "no rows" row type of a counting upsert.
struct NoRows;

impl CopyRow for NoRows {
    const TABLE: &'static str = "";
    const COLUMNS: &'static [crate::row::Column] = &[];

    fn encode_row(
        &self,
        _: &[Type],
        _: &mut BytesMut,
    ) -> std::result::Result<(), (usize, crate::codec::EncodeError)> {
        Ok(())
    }
}

impl FromCopyRow for NoRows {
    const ACCEPTS_DECODE: &'static [fn(&Type) -> bool] = &[];

    fn decode_row(
        _: &[Type],
        _: crate::row::RawRow<'_>,
    ) -> std::result::Result<Self, (usize, crate::codec::DecodeError)> {
        Ok(NoRows)
    }
}
