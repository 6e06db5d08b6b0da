//! The SQL text of `upsert_via_staging` and `copy_in_returning`: the staging table, the
//! merge, the counts and the `RETURNING` lists. Text only: no I/O.

use crate::client::Outcome;
use crate::codec::put_be;
use crate::error::{Error, Result};
use crate::ops::upsert::key_scan::KeyScan;
use crate::ops::upsert::options::{Action, Conflict, UpsertCounts, UpsertOptions};
use crate::plan::{self, Plan};
use crate::row::CopyRow;
use crate::sql::{column_list, ident};
use bytes::BytesMut;
use postgres_types::{Kind, Type};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tokio_postgres::error::SqlState;

/// Name of the staging table's input-position column.
pub(crate) const ORD: &str = "__pgbulk_ord";

/// Alias of the target table inside the merge statement.
pub(crate) const TARGET_ALIAS: &str = "\"pgbulk_target\"";

/// Numbers savepoints within this process.
static NEXT_SAVEPOINT: AtomicU64 = AtomicU64::new(1);

/// The staging tables in use in this process, by name hash and slot (see [`Stage::new`]).
static IN_USE: Mutex<Vec<(u64, u32)>> = Mutex::new(Vec::new());

/// The statement listing the columns of `constraint` on the (quoted) `table`, in key order.
pub(crate) fn constraint_columns_sql(table: &str, constraint: &str) -> String {
    format!(
        "SELECT a.attname::text \
         FROM pg_constraint c \
         CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, n) \
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum \
         WHERE c.conrelid = {}::text::regclass AND c.conname = {} \
         ORDER BY k.n",
        ident::literal(table),
        ident::literal(constraint)
    )
}

/// The statement listing the (live) column names of the (quoted) `table`.
pub(crate) fn table_columns_sql(table: &str) -> String {
    format!(
        "SELECT attname::text FROM pg_attribute \
         WHERE attrelid = {}::text::regclass AND attnum > 0 AND NOT attisdropped",
        ident::literal(table)
    )
}

/// One staging table: its name and the statements that create and fill it.
///
/// Where the plan knows the target's type modifiers (every client: tokio-postgres and `postgres`
/// from the row description, sqlx from the catalog in the plan's server-facts query), a
/// staging table is made once per session and shape, and reused: `CREATE TEMP TABLE IF NOT
/// EXISTS`, in the same transaction as the COPY into it (so it also works where each
/// transaction may run on another server session, as behind PgBouncer in transaction mode).
/// Its name says its shape — a hash of the target, the struct's columns, their types and type
/// modifiers — so a target whose column types changed gets a new stage. Each call empties it
/// with a `TRUNCATE` before its scope closes (a failed call's rows go with its rollback), so it
/// is empty between calls; what stays is the empty table, until the session ends. (`ON COMMIT
/// DELETE ROWS` would empty it too, but PostgreSQL then truncates it at every commit that
/// touched a temporary table, measured at ~3 ms a commit against ~0.4 ms for the `TRUNCATE`.)
/// Two calls at once in this process (on one connection or several) never share one: each
/// holds a slot of its shape while it runs (`_1`, `_2`, .. after the first), released when
/// the [`Stage`] is dropped.
///
/// Otherwise (a plan without them: a reused stage of a stale `numeric(p, s)` or `varchar(n)`
/// would change values) each call makes its own: `pgbulk_stage_<pid>_<n>`, `ON COMMIT DROP`,
/// dropped before the scope closes inside a caller's transaction.
pub(crate) struct Stage {
    /// `pg_temp."pgbulk_stage_r<hash>[_<slot>]"`, or `pg_temp."pgbulk_stage_<pid>_<n>"`.
    pub(crate) table: String,
    /// Savepoint name used inside a caller's transaction.
    pub(crate) savepoint: String,
    /// The slot held in [`IN_USE`], for a reused stage.
    held: Option<(u64, u32)>,
}

impl Stage {
    /// The stage for `T` shaped after `target`: the reused one of its shape (a free slot of
    /// it) when `target` knows its type modifiers, otherwise one of its own.
    pub(crate) fn new<T: CopyRow + ?Sized>(target: &Plan<T>) -> Stage {
        let n = NEXT_SAVEPOINT.fetch_add(1, Ordering::Relaxed);
        let savepoint = savepoint_named(n);
        let Some(typmods) = target.typmods() else {
            let pid = std::process::id();
            return Stage {
                table: format!(
                    "pg_temp.{}",
                    ident::quote(&format!("pgbulk_stage_{pid}_{n}"))
                ),
                savepoint,
                held: None,
            };
        };
        let hash = shape_hash(
            target.table(),
            T::__PGBULK_COLUMNS.iter().map(|c| c.name),
            target.types(),
            typmods,
        );
        let slot = {
            let mut in_use = IN_USE
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // At most `in_use.len()` slots of this shape are taken: one of the first
            // `len + 1` is free.
            let slot = (0..=u32::try_from(in_use.len()).unwrap_or(u32::MAX))
                .find(|s| !in_use.contains(&(hash, *s)))
                .unwrap_or(u32::MAX);
            in_use.push((hash, slot));
            slot
        };
        let name = match slot {
            0 => format!("pgbulk_stage_r{hash:016x}"),
            s => format!("pgbulk_stage_r{hash:016x}_{s}"),
        };
        Stage {
            table: format!("pg_temp.{}", ident::quote(&name)),
            savepoint,
            held: Some((hash, slot)),
        }
    }

    /// Creates the staging table. A reused one unless this session has it: `CREATE TEMP
    /// TABLE IF NOT EXISTS .. AS SELECT <T's columns>, NULL::int8 AS ord FROM target WITH NO
    /// DATA`, with `client_min_messages` raised around it (its "already
    /// exists, skipping" notice would reach the client's log on every call) and restored;
    /// otherwise the same `ON COMMIT DROP`.
    pub(crate) fn create_sql<T: CopyRow + ?Sized>(&self, target: &str) -> String {
        let select = format!(
            "AS SELECT {}, NULL::int8 AS {} FROM {target} WITH NO DATA",
            column_list(T::__PGBULK_COLUMNS.iter().map(|c| c.name)),
            ident::quote(ORD)
        );
        if self.held.is_none() {
            return format!("CREATE TEMP TABLE {} ON COMMIT DROP {select}", self.table);
        }
        format!(
            "SELECT set_config('{SAVED_MESSAGES}', current_setting('client_min_messages'), true), \
             set_config('client_min_messages', 'warning', true); \
             CREATE TEMP TABLE IF NOT EXISTS {} {select}; \
             SELECT set_config('client_min_messages', current_setting('{SAVED_MESSAGES}'), true)",
            self.table
        )
    }

    /// The plan for copying `T` (plus the ordinal) into the staging table.
    pub(crate) fn plan<T: CopyRow + ?Sized>(&self, target: &Plan<T>) -> Plan<T> {
        let copy_sql = crate::sql::copy_in(
            &self.table,
            T::__PGBULK_COLUMNS.iter().map(|c| c.name).chain([ORD]),
            false,
        );
        target.retarget(self.table.clone(), copy_sql).local()
    }

    /// What runs before the scope closes: `sql` (may be empty), then emptying a reused staging
    /// table, or, inside a caller's transaction, dropping one of its own (`ON COMMIT DROP` only
    /// acts at the caller's commit).
    pub(crate) fn before_close(&self, sql: &str, in_tx: bool) -> String {
        let end = match (self.held.is_some(), in_tx) {
            (true, _) => format!("TRUNCATE {}", self.table),
            (false, true) => format!("DROP TABLE IF EXISTS {}", self.table),
            (false, false) => return sql.to_owned(),
        };
        if sql.is_empty() {
            end
        } else {
            format!("{sql}; {end}")
        }
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        let Some(held) = self.held else { return };
        let mut in_use = IN_USE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(at) = in_use.iter().position(|h| *h == held) {
            in_use.swap_remove(at);
        }
    }
}

/// The savepoint an upsert's scope is inside a caller's transaction: one name per call.
fn savepoint_named(n: u64) -> String {
    format!("pgbulk_upsert_{n}")
}

/// A savepoint name for a call that stages nothing (see [`bound_rows`]).
pub(crate) fn savepoint() -> String {
    savepoint_named(NEXT_SAVEPOINT.fetch_add(1, Ordering::Relaxed))
}

/// FNV-1a over the (quoted) target, the column names, the type OIDs and the hash of the type
/// modifiers: names a reused stage's shape.
fn shape_hash<'c>(
    target: &str,
    columns: impl Iterator<Item = &'c str>,
    types: &[Type],
    typmods: u64,
) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        // A separator, so that ("ab", "c") and ("a", "bc") differ.
        h = (h ^ 0xff).wrapping_mul(0x0000_0100_0000_01b3);
    };
    eat(target.as_bytes());
    for c in columns {
        eat(c.as_bytes());
    }
    for t in types {
        eat(&t.oid().to_be_bytes());
    }
    eat(&typmods.to_be_bytes());
    h
}

/// Writes a staging tuple's extra column: the row's input position, as `int8`.
#[inline]
pub(crate) fn put_ordinal(buf: &mut BytesMut, ord: u64) {
    put_be(buf, i32::to_be_bytes(8));
    put_be(
        buf,
        i64::to_be_bytes(i64::try_from(ord).unwrap_or(i64::MAX)),
    );
}

/// The transaction-local setting the merge counts updated rows in (see [`Merge::insert`]).
const UPDATED: &str = "pgbulk.updated";
/// The transaction-local setting the `MERGE` counts inserted rows in (see [`Merge::merge`]).
const INSERTED: &str = "pgbulk.inserted";
/// Rows from which an upsert reads [`MergeFacts`] (and may merge with `MERGE`), when the
/// input says its size (a slice or `Vec` does; a lazy iterator that cannot say counts as
/// large): below, the catalog query (~0.5 ms of server time) costs about what `MERGE` saves
/// over `ON CONFLICT` (~1 µs a row on the benchmark's mix).
pub(crate) const MERGE_MIN_ROWS: usize = 2_000;
/// `MERGE` joins the whole target (a hash join reads every row of it); it pays while the
/// target's heap is at most this many times the bytes staged (see [`Merge::first_attempt`]).
const MERGE_TARGET_RATIO: u64 = 2;
/// The transaction-local setting `RETURNING .. inserted` compares [`UPDATED`] with.
const SEEN: &str = "pgbulk.seen";
/// The transaction-local setting holding the caller's `work_mem` while the merge raises it.
const SAVED_WORK_MEM: &str = "pgbulk.work_mem";
/// The transaction-local setting holding the caller's `client_min_messages` while the stage
/// is created.
const SAVED_MESSAGES: &str = "pgbulk.client_min_messages";
/// The savepoint around a merge that may be retried with a stronger dedupe.
const MERGE_SAVEPOINT: &str = "pgbulk_merge";
/// Undoes a failed merge attempt (the staging table stays), ready for the next one.
pub(crate) const MERGE_RETRY_SQL: &str =
    "ROLLBACK TO SAVEPOINT pgbulk_merge; RELEASE SAVEPOINT pgbulk_merge";

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

/// One attempt at the merge: how in-batch duplicates are removed, and whether `MERGE` is tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Attempt {
    pub(crate) dedupe: Dedupe,
    /// The staged rows go through `MERGE` where it pays ([`Merge::merge`]), the others
    /// through `INSERT .. ON CONFLICT`; a failed attempt is retried with `ON CONFLICT` alone.
    pub(crate) merge: bool,
    /// A deadlock was retried already (see [`Merge::next_attempt`]).
    retried: bool,
}

impl Attempt {
    /// An attempt with `INSERT .. ON CONFLICT` alone.
    pub(crate) fn on_conflict(dedupe: Dedupe) -> Attempt {
        Attempt {
            dedupe,
            merge: false,
            retried: false,
        }
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
    /// The target is a Citus table: its rows are written by the shards, which neither see this
    /// session's settings nor run a volatile function in `ON CONFLICT .. WHERE` ("functions in
    /// ON CONFLICT WHERE must be IMMUTABLE"), so the merge counts with `RETURNING (xmax = 0)`
    /// (a plain table on each shard) instead of the counter of [`Merge::insert`].
    citus: bool,
    /// The server runs `MERGE`, the target is not a Citus table and the conflict target is a
    /// list of columns (not a named constraint, which may be an exclusion constraint).
    merges: bool,
    /// Whether `MERGE` can merge into the target, and the size of its heap, read with the
    /// target's description ([`merge_facts_sql`]); `None`: not read.
    facts: Option<MergeFacts>,
}

/// What the catalog says about merging into the target with `MERGE` (see
/// [`merge_facts_sql`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MergeFacts {
    /// A plain table without rules or row-level `BEFORE` triggers, with a valid, immediate,
    /// non-partial unique index on exactly the key columns.
    pub(crate) eligible: bool,
    /// The size of its heap, in bytes (dead rows included).
    pub(crate) heap_bytes: u64,
}

impl MergeFacts {
    /// The facts from the values of [`merge_facts_sql`]'s two columns, as text.
    pub(crate) fn from_text(eligible: Option<&str>, heap_bytes: Option<&str>) -> MergeFacts {
        MergeFacts {
            eligible: eligible == Some("t"),
            heap_bytes: heap_bytes.and_then(|b| b.parse().ok()).unwrap_or(u64::MAX),
        }
    }
}

/// Two expressions (for a `SELECT` list) saying whether `MERGE` can merge into the (quoted)
/// `target` on `keys` exactly as `INSERT .. ON CONFLICT (keys)` would, and the size of its
/// heap: a plain table (not partitioned, not a view) without rules (`MERGE` refuses them) or
/// row-level `BEFORE` triggers (which may skip a row `MERGE` counted as written), with a
/// valid, immediate, non-partial unique index on exactly the key columns (the arbiter
/// `ON CONFLICT` would infer; `MERGE` itself needs none, and would update every row of a
/// repeated key). Read with the target's description, in the same round trip; a missing
/// target is not eligible (the describe reports it).
pub(crate) fn merge_facts_sql(target: &str, keys: &[&str]) -> String {
    let target = format!("to_regclass({})", ident::literal(target));
    let keys = keys
        .iter()
        .map(|k| ident::literal(k))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "coalesce((SELECT c.relkind = 'r' AND NOT c.relhasrules \
         AND NOT EXISTS (SELECT FROM pg_trigger g WHERE g.tgrelid = c.oid \
         AND NOT g.tgisinternal AND g.tgtype & 3 = 3) \
         AND EXISTS (SELECT FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique \
         AND i.indimmediate AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL \
         AND (SELECT array_agg(k ORDER BY k) FROM unnest((i.indkey::int2[])[0:i.indnkeyatts - 1]) k) \
         = (SELECT array_agg(a.attnum ORDER BY a.attnum) FROM pg_attribute a \
         WHERE a.attrelid = c.oid AND a.attname = ANY (ARRAY[{keys}]::name[]) AND NOT a.attisdropped)) \
         FROM pg_class c WHERE c.oid = {target}), false), \
         coalesce(pg_relation_size({target}), 0)"
    )
}

/// The statements of one merge attempt and where their results are.
pub(crate) struct MergeBatch {
    /// The statements.
    statements: Vec<String>,
    /// Statement number of the dedupe `DELETE` (its row count is the duplicates).
    delete_at: Option<usize>,
    /// Statement number of the `INSERT` or `MERGE` (its row count is inserted + updated).
    insert_at: usize,
    /// The statement at `insert_at` is a `MERGE`, and the counter it reads counts the rows it
    /// inserted (not the rows updated).
    merged: bool,
    /// Statement number of the `SELECT` reading the updated-rows counter (and, after a
    /// `MERGE`, the inserted-rows counter); on a Citus target
    /// (see [`Merge::citus`]) the `INSERT` at `insert_at` returns one row itself,
    /// `(affected, updated)`, and there is no counter.
    counter_at: Option<usize>,
}

impl MergeBatch {
    /// The statements, `; `-separated, for one simple query.
    pub(crate) fn sql(&self) -> String {
        self.statements.join("; ")
    }

    /// The statements before the `INSERT` (or `MERGE`), that statement, and those after it,
    /// each part `; `-separated: for a batch whose merge statement binds parameters
    /// ([`Driver::run_bound`](crate::client::Driver::run_bound)).
    pub(crate) fn split(&self) -> (String, &str, String) {
        let (before, rest) = self.statements.split_at(self.insert_at);
        let (insert, after) = rest
            .split_first()
            .map_or(("", &[][..]), |(i, a)| (i.as_str(), a));
        (before.join("; "), insert, after.join("; "))
    }
}

impl Merge {
    /// Resolves `options` for `T`. `constraint_keys` are the columns of the named constraint
    /// when the conflict target is one.
    pub(crate) fn new<T: CopyRow + ?Sized>(
        plan: &Plan<T>,
        options: &UpsertOptions,
        constraint_keys: Option<Vec<String>>,
    ) -> Result<Merge> {
        let citus = plan.distribution().is_citus();
        let type_name = plan::short_type_name::<T>();
        let find = |name: &str, what: &str| -> Result<&'static str> {
            T::__PGBULK_COLUMNS
                .iter()
                .find(|c| c.name == name)
                .map(|c| c.name)
                .ok_or_else(|| {
                    Error::usage(format!(
                        "{what} \"{name}\" is not a column `{type_name}` copies (its columns: {})",
                        T::__PGBULK_COLUMNS
                            .iter()
                            .map(|c| c.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })
        };
        if T::__PGBULK_COLUMNS.iter().any(|c| c.name == ORD) {
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
            // The named columns, or the `#[copy(key)]` fields.
            (Conflict::Columns(_) | Conflict::Keys, _) => {
                let keys = Merge::merge_keys::<T>(options)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| find(c, "conflict column"))
                    .collect::<Result<Vec<_>>>()?;
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
            Action::UpdateAll => T::__PGBULK_COLUMNS
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
        let merges =
            plan.merges() && !citus && !matches!(options.conflict, Conflict::Constraint(_));
        Ok(Merge {
            target: plan.table().to_owned(),
            columns: T::__PGBULK_COLUMNS.iter().map(|c| c.name).collect(),
            fields: T::__PGBULK_COLUMNS.iter().map(|c| c.field).collect(),
            as_text,
            keys,
            conflict,
            update,
            overriding_system_value: options.overriding_system_value,
            citus,
            merges,
            facts: None,
        })
    }

    /// The conflict key's columns.
    pub(crate) fn keys(&self) -> &[&'static str] {
        &self.keys
    }

    /// Position of each key column among the copied columns.
    pub(crate) fn key_at(&self) -> impl Iterator<Item = usize> + '_ {
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

    /// This merge, knowing `facts` about its target.
    pub(crate) fn with_facts(mut self, facts: Option<MergeFacts>) -> Merge {
        self.facts = facts;
        self
    }

    /// The conflict key's columns as `options` name them (the `#[copy(key)]` fields by
    /// default), unless it is a named constraint (`MERGE` is then not used: it may be an
    /// exclusion constraint).
    pub(crate) fn merge_keys<T: CopyRow + ?Sized>(options: &UpsertOptions) -> Option<Vec<&str>> {
        match &options.conflict {
            Conflict::Constraint(_) => None,
            Conflict::Columns(cols) => Some(cols.iter().map(String::as_str).collect()),
            Conflict::Keys => Some(
                T::__PGBULK_COLUMNS
                    .iter()
                    .filter(|c| c.key)
                    .map(|c| c.name)
                    .collect(),
            ),
        }
    }

    /// The first attempt for a batch the encoder scanned, of `staged_bytes`: with `MERGE`
    /// where the server runs it, the target is eligible ([`MergeFacts`]) and its heap at most
    /// [`MERGE_TARGET_RATIO`] times the bytes staged — a larger target would be read whole by
    /// a hash join for relatively few rows, where `ON CONFLICT`'s index probes cost less.
    pub(crate) fn first_attempt(&self, scan: &KeyScan, staged_bytes: u64) -> Attempt {
        let pays = self.facts.is_some_and(|f| {
            f.eligible && f.heap_bytes <= staged_bytes.saturating_mul(MERGE_TARGET_RATIO)
        });
        Attempt {
            dedupe: Merge::first_dedupe(scan),
            merge: self.merges && pays,
            retried: false,
        }
    }

    /// The attempt to make after `tried` failed with `code`, if any: `ON CONFLICT` after a
    /// failed `MERGE` (see [`is_merge_fallback`]); the same once more after a deadlock (upserts
    /// through `ON CONFLICT` take rows in key order and do not deadlock with each other, but a
    /// concurrent `MERGE` upsert does not: see [`Merge::merge`]); the next dedupe when the
    /// server found a key twice.
    pub(crate) fn next_attempt(
        &self,
        tried: Attempt,
        scan: &KeyScan,
        code: Option<&SqlState>,
    ) -> Option<Attempt> {
        if tried.merge && is_merge_fallback(code) {
            return Some(Attempt::on_conflict(tried.dedupe));
        }
        if code == Some(&SqlState::T_R_DEADLOCK_DETECTED) && !tried.retried {
            return Some(Attempt {
                retried: true,
                ..tried
            });
        }
        if !is_key_twice(code) {
            return None;
        }
        self.next_dedupe(tried.dedupe, scan).map(|dedupe| Attempt {
            dedupe,
            merge: false,
            ..tried
        })
    }

    /// Whether an attempt after `attempt` is possible: it runs under a savepoint.
    fn may_retry(&self, attempt: Attempt, scan: &KeyScan) -> bool {
        attempt.merge || !attempt.retried || self.next_dedupe(attempt.dedupe, scan).is_some()
    }

    /// The dedupe to retry with when the server found a key twice after `tried`.
    /// `DO NOTHING` never finds one (the later row is just skipped): no retry.
    fn next_dedupe(&self, tried: Dedupe, scan: &KeyScan) -> Option<Dedupe> {
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
            let set = self.set_list("EXCLUDED");
            let changed = self.changed("EXCLUDED");
            if self.citus {
                format!("DO UPDATE SET {set} WHERE {changed}")
            } else {
                format!(
                    "DO UPDATE SET {set} WHERE CASE WHEN {changed} THEN {} ELSE false END",
                    count_in(UPDATED)
                )
            }
        };
        format!(
            "INSERT INTO {} AS {TARGET_ALIAS} ({cols}){} {source} ON CONFLICT {} \
             {action}{returning}",
            self.target,
            self.overriding(),
            self.conflict
        )
    }

    /// `MERGE INTO target USING (<source>) ON key = key WHEN MATCHED AND changed THEN UPDATE
    /// .. WHEN NOT MATCHED THEN INSERT ..`: the same merge as [`Merge::insert`]'s, without
    /// its costs on a large batch — no speculative insertion of each new row, no lock (and its
    /// WAL record) on each identical row; the target is read with one join instead of an index
    /// probe per row. It counts the rows it inserts in the transaction-local setting
    /// [`INSERTED`]: PostgreSQL evaluates a `WHEN NOT MATCHED` condition once per row it then
    /// inserts or fails the statement on (a concurrent insert of the key is a unique violation,
    /// not a retry), while `WHEN MATCHED` conditions are evaluated again when a row changed
    /// concurrently, so the updated rows are the rest of the command's row count.
    ///
    /// Unlike `ON CONFLICT` it is not safe against a concurrent insert of the same key, needs
    /// no unique index (so it is only used where [`MergeFacts`] found the one `ON CONFLICT`
    /// would use), and locks rows in the join's order, which is key order only where the join
    /// keeps the staged rows' order: it runs under a savepoint, and a failure (a deadlock
    /// included) is retried with `ON CONFLICT` ([`Merge::next_attempt`]), as is, once, an
    /// `ON CONFLICT` attempt of another upsert that deadlocked with it.
    fn merge(&self, source: &str) -> String {
        const SOURCE: &str = "\"pgbulk_source\"";
        let cols = column_list(self.columns.iter().copied());
        let on = self
            .keys
            .iter()
            .map(|k| {
                let k = ident::quote(k);
                format!("{TARGET_ALIAS}.{k} = {SOURCE}.{k}")
            })
            .collect::<Vec<_>>()
            .join(" AND ");
        let matched = if self.update.is_empty() {
            String::new()
        } else {
            format!(
                " WHEN MATCHED AND {} THEN UPDATE SET {}",
                self.changed(SOURCE),
                self.set_list(SOURCE)
            )
        };
        let values = qualified(SOURCE, self.columns.iter().copied(), |_| "");
        format!(
            "MERGE INTO {} AS {TARGET_ALIAS} USING ({source}) AS {SOURCE} ON {on}{matched} \
             WHEN NOT MATCHED AND {} THEN INSERT ({cols}){} VALUES ({values})",
            self.target,
            count_in(INSERTED),
            self.overriding()
        )
    }

    /// `c = <source>.c, ..` for the updated columns.
    fn set_list(&self, source: &str) -> String {
        self.update
            .iter()
            .map(|c| {
                let q = ident::quote(c);
                format!("{q} = {source}.{q}")
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether the target row differs from `source`'s in an updated column:
    /// `ROW(target.c, ..) IS DISTINCT FROM ROW(<source>.c, ..)` (`ROW(..)` so that a single
    /// column compares as a row too).
    fn changed(&self, source: &str) -> String {
        let cast = |c: &str| {
            let at = self.columns.iter().position(|x| *x == c).unwrap_or(0);
            if self.as_text[at] {
                "::text"
            } else {
                ""
            }
        };
        let side = |prefix: &str| qualified(prefix, self.update.iter().copied(), cast);
        format!(
            "ROW({}) IS DISTINCT FROM ROW({})",
            side(TARGET_ALIAS),
            side(source)
        )
    }

    /// ` OVERRIDING SYSTEM VALUE` when asked for.
    fn overriding(&self) -> &'static str {
        if self.overriding_system_value {
            " OVERRIDING SYSTEM VALUE"
        } else {
            ""
        }
    }

    /// The statements before the merge: a savepoint if a retry may follow, the counters, a
    /// larger `work_mem` if the merge sorts or joins with `MERGE` (`staged_bytes` sized; never
    /// lowered; the caller's value saved), and the dedupe.
    fn prelude(
        &self,
        stage: &str,
        attempt: Attempt,
        scan: &KeyScan,
        staged_bytes: u64,
        input_order: bool,
    ) -> Vec<String> {
        let mut out = Vec::new();
        if self.may_retry(attempt, scan) {
            out.push(format!("SAVEPOINT {MERGE_SAVEPOINT}"));
        }
        let mut settings =
            format!("SELECT set_config('{UPDATED}', '0', true), set_config('{SEEN}', '0', true)");
        if attempt.merge {
            let _ = write!(settings, ", set_config('{INSERTED}', '0', true)");
        }
        if Merge::needs_memory(attempt, scan, input_order) {
            // A sort of the staged rows, or `MERGE`'s hash join, in memory instead of on disk:
            // about twice their size, at least 4 MB, at most 1 GB.
            let kb = (staged_bytes / 512).clamp(4096, 1 << 20);
            let _ = write!(
                settings,
                ", set_config('{SAVED_WORK_MEM}', current_setting('work_mem'), true), \
                 set_config('work_mem', greatest(pg_size_bytes(current_setting('work_mem')) \
                 / 1024, {kb})::text || 'kB', true)"
            );
        }
        out.push(settings);
        out.extend(self.dedupe_sql(stage, attempt.dedupe));
        out
    }

    /// Whether the merge raises `work_mem`: to sort (to dedupe, or to take unordered rows in
    /// key order), or for `MERGE`'s join.
    fn needs_memory(attempt: Attempt, scan: &KeyScan, input_order: bool) -> bool {
        attempt.merge || attempt.dedupe != Dedupe::Skip || !(input_order || scan.ordered)
    }

    /// The statements after the merge: `work_mem` restored (inside a caller's transaction a
    /// `SET LOCAL` would outlive the call), the savepoint released.
    fn epilogue(&self, attempt: Attempt, scan: &KeyScan, input_order: bool) -> Vec<String> {
        let mut out = Vec::new();
        if Merge::needs_memory(attempt, scan, input_order) {
            out.push(format!(
                "SELECT set_config('work_mem', current_setting('{SAVED_WORK_MEM}'), true)"
            ));
        }
        if self.may_retry(attempt, scan) {
            out.push(format!("RELEASE SAVEPOINT {MERGE_SAVEPOINT}"));
        }
        out
    }

    /// One attempt of the counting merge; read it with [`parse_counts`].
    pub(crate) fn counts_batch(
        &self,
        stage: &str,
        attempt: Attempt,
        scan: &KeyScan,
        staged_bytes: u64,
    ) -> MergeBatch {
        let mut statements = self.prelude(stage, attempt, scan, staged_bytes, false);
        let delete_at = (attempt.dedupe != Dedupe::Skip).then(|| statements.len() - 1);
        let insert_at = statements.len();
        let counter_at = if attempt.merge {
            // In key order, as `ON CONFLICT` takes them: where the join keeps the staged rows'
            // order (a hash join probing with them), rows are written in key order and
            // concurrent upserts of the same keys wait for each other rather than deadlock.
            statements.push(self.merge(&self.source(stage, false, scan)));
            statements.push(format!("SELECT current_setting('{INSERTED}')"));
            Some(insert_at + 1)
        } else if self.citus {
            statements.push(format!(
                "WITH \"pgbulk_merged\" AS ({}) SELECT count(*), count(*) FILTER (WHERE NOT ins) \
                 FROM \"pgbulk_merged\"",
                self.insert(
                    &self.source(stage, false, scan),
                    " RETURNING (xmax = 0) AS ins"
                )
            ));
            None
        } else {
            statements.push(self.insert(&self.source(stage, false, scan), ""));
            statements.push(format!("SELECT current_setting('{UPDATED}')"));
            Some(insert_at + 1)
        };
        statements.extend(self.epilogue(attempt, scan, false));
        MergeBatch {
            statements,
            delete_at,
            insert_at,
            merged: attempt.merge,
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
        let attempt = Attempt::on_conflict(dedupe);
        let before = self.prelude(stage, attempt, scan, staged_bytes, input_order);
        let insert = self.insert(
            &self.source(stage, input_order, scan),
            &format!(" RETURNING {returning}"),
        );
        let after = self.epilogue(attempt, scan, input_order);
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

/// Whether a failed `MERGE` attempt is retried with `INSERT .. ON CONFLICT` alone (which then
/// either succeeds or fails with its own error, as without `MERGE`): a unique or other
/// integrity violation (a key inserted concurrently, a `NULLS NOT DISTINCT` key), a row found
/// twice, a feature or privilege `MERGE` needs and `ON CONFLICT` does not (reading the key
/// columns), and a deadlock (`MERGE` does not lock rows in key order). Not a cancel, a
/// connection or resource failure, or a serialization failure, which `ON CONFLICT` would meet
/// again.
fn is_merge_fallback(code: Option<&SqlState>) -> bool {
    let Some(code) = code else { return false };
    let class = &code.code()[..2];
    matches!(class, "23" | "21" | "0A" | "42") || *code == SqlState::T_R_DEADLOCK_DETECTED
}

/// `prefix."c"<suffix>, ..` for `columns`, each with its `suffix` (a cast, or nothing).
fn qualified<'c>(
    prefix: &str,
    columns: impl Iterator<Item = &'c str>,
    suffix: impl Fn(&str) -> &'static str,
) -> String {
    columns
        .map(|c| format!("{prefix}.{}{}", ident::quote(c), suffix(c)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A condition that adds one to the transaction-local counter `setting` and is true.
fn count_in(setting: &str) -> String {
    format!(
        "set_config('{setting}', (current_setting('{setting}')::int8 + 1)::text, true) IS NOT NULL"
    )
}

/// Whether values of `ty` are compared as text (no default equality operator).
fn compare_as_text(ty: &Type) -> bool {
    match ty.kind() {
        Kind::Array(elem) => compare_as_text(elem),
        Kind::Domain(base) => compare_as_text(base),
        _ => matches!(*ty, Type::JSON | Type::XML | Type::POINT | Type::BOX),
    }
}

/// The counts from the outcomes of a [`MergeBatch`]'s statements, given the number of rows
/// staged.
pub(crate) fn parse_counts(
    outcomes: &[Outcome],
    batch: &MergeBatch,
    staged: u64,
) -> Result<UpsertCounts> {
    let duplicates = batch
        .delete_at
        .and_then(|at| outcomes.get(at))
        .map_or(0, |o| o.count);
    let value = |at: usize, column: usize| {
        outcomes
            .get(at)
            .and_then(|o| o.rows.first()?.get(column)?.as_deref()?.parse::<u64>().ok())
    };
    let count = outcomes.get(batch.insert_at).map(|o| o.count);
    let (affected, updated) = match batch.counter_at {
        // The `MERGE`'s counter is of the rows it inserted; it updated the rest.
        Some(counter_at) if batch.merged => (
            count,
            count
                .zip(value(counter_at, 0))
                .map(|(count, inserted)| count.saturating_sub(inserted)),
        ),
        Some(counter_at) => (count, value(counter_at, 0)),
        // A Citus target: the merge's own row.
        None => (value(batch.insert_at, 0), value(batch.insert_at, 1)),
    };
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
/// After a plain insert (`merged` false) every row was inserted.
///
/// On a Citus table (`citus`) the shards evaluate `RETURNING` and never see the counter: there
/// `inserted` reads `xmax = 0` of the row on its shard (a plain table).
pub(crate) fn returning_list<R: CopyRow + ?Sized>(
    table_columns: &[String],
    target: &str,
    merged: bool,
    citus: bool,
) -> Result<String> {
    let mut out = Vec::with_capacity(R::__PGBULK_COLUMNS.len());
    for c in R::__PGBULK_COLUMNS {
        if table_columns.iter().any(|t| t == c.name) {
            out.push(format!("{TARGET_ALIAS}.{}", ident::quote(c.name)));
        } else if c.name == "inserted" && !merged {
            out.push("true AS \"inserted\"".to_owned());
        } else if c.name == "inserted" && citus {
            out.push("(xmax = 0) AS \"inserted\"".to_owned());
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

/// `INSERT INTO target (cols) SELECT cols FROM stage [ORDER BY ord] RETURNING ..`; `stage` is a
/// staging table, or the bound arrays with the stage's columns (`ops::upsert::bound`).
pub(crate) fn insert_returning_sql<T: CopyRow + ?Sized>(
    target: &str,
    stage: &str,
    returning: &str,
    input_order: bool,
) -> String {
    let cols = column_list(T::__PGBULK_COLUMNS.iter().map(|c| c.name));
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
