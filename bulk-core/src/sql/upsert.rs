//! The SQL text of `upsert_via_staging` and `copy_in_returning`: the staging table, the
//! merge, the counts and the `RETURNING` lists. Text only: no I/O.

use crate::codec::put_be;
use crate::error::{Error, Result};
use crate::ops::upsert::options::{Action, Conflict, UpsertCounts, UpsertOptions};
use crate::plan::{self, Plan};
use crate::row::CopyRow;
use crate::sql::{column_list, ident};
use bytes::BytesMut;
use postgres_types::{Kind, Type};
use std::sync::atomic::{AtomicU64, Ordering};

/// Name of the staging table's input-position column.
pub(crate) const ORD: &str = "__pgbulk_ord";

/// Alias of the target table inside the merge statement.
const TARGET_ALIAS: &str = "\"pgbulk_target\"";

/// Numbers staging tables and savepoints within this process (temporary tables are per session,
/// so process id + counter is unique on every connection this process holds).
static NEXT_STAGE: AtomicU64 = AtomicU64::new(1);

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
        let copy_sql = crate::sql::copy_in(
            &self.table,
            T::COLUMNS.iter().map(|c| c.name).chain([ORD]),
            false,
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

/// Writes a staging tuple's extra column: the row's input position, as `int8`.
#[inline]
pub(crate) fn put_ordinal(buf: &mut BytesMut, ord: u64) {
    put_be(buf, i32::to_be_bytes(8));
    put_be(
        buf,
        i64::to_be_bytes(i64::try_from(ord).unwrap_or(i64::MAX)),
    );
}

/// The merge: conflict target, key columns and the columns to update, resolved against `T`.
pub(crate) struct Merge {
    target: String,
    columns: Vec<&'static str>,
    /// Per copied column: compare as text (types without an equality operator, such as json).
    as_text: Vec<bool>,
    keys: Vec<&'static str>,
    conflict: String,
    update: Vec<&'static str>,
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
            as_text,
            keys,
            conflict,
            update,
        })
    }

    /// The deduplicated rows of the staging table: the last occurrence of each key.
    /// With `input_order`, sorted by input position (else by key).
    fn source(&self, stage: &str, input_order: bool) -> String {
        let cols = column_list(self.columns.iter().copied());
        let keys = column_list(self.keys.iter().copied());
        let ord = ident::quote(ORD);
        let distinct = format!(
            "SELECT DISTINCT ON ({keys}) {cols}, {ord} FROM {stage} ORDER BY {keys}, {ord} DESC"
        );
        if input_order {
            format!("SELECT {cols} FROM ({distinct}) AS \"pgbulk_source\" ORDER BY {ord}")
        } else {
            format!("SELECT {cols} FROM ({distinct}) AS \"pgbulk_source\" ORDER BY {keys}")
        }
    }

    /// `INSERT INTO target (cols) <source> ON CONFLICT .. DO UPDATE .. WHERE changed`.
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
                "DO UPDATE SET {set} WHERE ROW({}) IS DISTINCT FROM ROW({})",
                side(TARGET_ALIAS),
                side("EXCLUDED")
            )
        };
        format!(
            "INSERT INTO {} AS {TARGET_ALIAS} ({cols}) {source} ON CONFLICT {} {action}{returning}",
            self.target, self.conflict
        )
    }

    /// The merge that reports `(distinct rows, inserted, updated)` as one row.
    pub(crate) fn counts_sql(&self, stage: &str) -> String {
        let insert = self.insert("SELECT * FROM src", " RETURNING (xmax = 0) AS ins");
        format!(
            "WITH src AS MATERIALIZED ({}), m AS ({insert}) \
             SELECT (SELECT count(*) FROM src), count(*) FILTER (WHERE ins), \
             count(*) FILTER (WHERE NOT ins) FROM m",
            self.source(stage, false)
        )
    }

    /// The merge returning `returning` for each inserted or updated row.
    pub(crate) fn returning_sql(&self, stage: &str, returning: &str, input_order: bool) -> String {
        self.insert(
            &self.source(stage, input_order),
            &format!(" RETURNING {returning}"),
        )
    }
}

/// Whether values of `ty` are compared as text (no default equality operator).
fn compare_as_text(ty: &Type) -> bool {
    match ty.kind() {
        Kind::Array(elem) => compare_as_text(elem),
        Kind::Domain(base) => compare_as_text(base),
        _ => matches!(*ty, Type::JSON | Type::XML | Type::POINT | Type::BOX),
    }
}

/// The counts from the merge's one row, given the number of rows staged.
pub(crate) fn parse_counts(rows: &[Vec<Option<String>>], staged: u64) -> Result<UpsertCounts> {
    let row = rows
        .first()
        .ok_or_else(|| Error::protocol("the upsert merge returned no counts"))?;
    let get = |i: usize| -> Result<u64> {
        row.get(i)
            .and_then(|v| v.as_deref()?.parse::<u64>().ok())
            .ok_or_else(|| Error::protocol("the upsert merge returned unreadable counts"))
    };
    let (distinct, inserted, updated) = (get(0)?, get(1)?, get(2)?);
    Ok(UpsertCounts {
        inserted,
        updated,
        unchanged: distinct.saturating_sub(inserted + updated),
        duplicates: staged.saturating_sub(distinct),
    })
}

/// The `RETURNING` list for `R`: each field's column of the target, or `(xmax = 0) AS
/// inserted` for a field `inserted` that is not a column of the target.
pub(crate) fn returning_list<R: CopyRow + ?Sized>(
    table_columns: &[String],
    target: &str,
) -> Result<String> {
    let mut out = Vec::with_capacity(R::COLUMNS.len());
    for c in R::COLUMNS {
        if table_columns.iter().any(|t| t == c.name) {
            out.push(format!("{TARGET_ALIAS}.{}", ident::quote(c.name)));
        } else if c.name == "inserted" {
            out.push("(xmax = 0) AS \"inserted\"".to_owned());
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
