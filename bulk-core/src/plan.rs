//! Describe the target on the server and verify every field against its column, before any
//! data is sent.

use crate::client::{Described, DescribedColumn, Driver, TextRows};
use crate::codec::accepted_type;
use crate::error::{Error, ErrorKind, Mismatch};
use crate::row::{Column, CopyRow, FromCopyRowRef, ABSENT};
use crate::server::{ServerFacts, ServerVersion};
use crate::sql::ident;
use postgres_types::{Kind, Type};
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};

/// A verified `copy_in` plan for row type `T`: the target table, each field's column type, and
/// the COPY statement.
///
/// [`Bulk::plan`](crate::Bulk::plan) makes one (one describe round trip);
/// [`Bulk::copy_in_with_plan`](crate::Bulk::copy_in_with_plan) reuses it, skipping the round
/// trip, for later batches. A plan stays valid as long as the table's columns do not change; if
/// they do, the server rejects the COPY and nothing is written.
pub struct Plan<T: ?Sized> {
    table: String,
    types: Vec<Type>,
    copy_sql: String,
    /// The server's version when a column's values must be checked against it
    /// ([`ServerVersion::needs_checks`]), otherwise unknown.
    server: ServerVersion,
    /// A hash of the copied columns' type modifiers, where the driver reports them (names a
    /// reusable staging table's shape: see `sql::upsert::Stage`).
    typmods: Option<u64>,
    /// How the target is stored: a Citus table or not (read from the catalog with the
    /// describe).
    distribution: Distribution,
    /// Whether the server runs `MERGE` (PostgreSQL 15 and later): a large upsert may merge
    /// with it (see `sql::upsert::Merge`).
    merges: bool,
    /// Whether a COPY with this plan has passed the full refusal check (see
    /// `client::copy_start`): later COPYs check only the session's read-only state.
    refusal_checked: AtomicBool,
    /// A small batch may be inserted with its rows bound as arrays instead of copied (see
    /// `ops::bound`): the plan was made to be kept ([`kept_plan`]) and its target was then a
    /// plain or partitioned table without rules or row-level security for this role — where
    /// an `INSERT` writes what the COPY would.
    inserts: bool,
    /// Every column of the target as described (name and type), for a `RETURNING` list
    /// checked before it runs; empty for a plan [`retarget`](Plan::retarget)ed elsewhere.
    table_columns: Vec<DescribedColumn>,
    _row: PhantomData<fn(&T)>,
}

/// How a plan's target table is stored, from the Citus catalog (`pg_dist_partition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Distribution {
    /// A table of this server (no Citus, or a table Citus does not manage; a staging table).
    Local,
    /// A Citus table whose rows live in shards, possibly on other nodes: hash- or
    /// range-distributed, a reference table, or a single-shard table. Each shard runs its part
    /// of a statement on its own: `RETURNING` rows come back per shard, a worker's errors come
    /// without the COPY's line context (see `ops::distributed`).
    Citus,
}

impl Distribution {
    /// Whether the target is a Citus table.
    pub(crate) fn is_citus(self) -> bool {
        self == Distribution::Citus
    }
}

impl<T: ?Sized> Clone for Plan<T> {
    fn clone(&self) -> Self {
        Plan {
            table: self.table.clone(),
            types: self.types.clone(),
            copy_sql: self.copy_sql.clone(),
            server: self.server,
            typmods: self.typmods,
            distribution: self.distribution,
            merges: self.merges,
            refusal_checked: AtomicBool::new(self.refusal_checked.load(Ordering::Relaxed)),
            inserts: self.inserts,
            table_columns: self.table_columns.clone(),
            _row: PhantomData,
        }
    }
}

impl<T: ?Sized> fmt::Debug for Plan<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plan")
            .field("table", &self.table)
            .field("types", &self.types)
            .field("copy_sql", &self.copy_sql)
            .field("server", &self.server)
            .field("typmods", &self.typmods)
            .field("distribution", &self.distribution)
            .field("merges", &self.merges)
            .field("refusal_checked", &self.refusal_checked)
            .field("inserts", &self.inserts)
            .field("table_columns", &self.table_columns)
            .finish()
    }
}

impl<T: CopyRow + ?Sized> Plan<T> {
    /// The target table, quoted as sent to the server.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::BulkExt;
    ///
    /// #[derive(CopyRow)]
    /// #[copy(table = "app.events")]
    /// struct Event { id: i64, kind: String }
    ///
    /// # async fn f(client: &tokio_postgres::Client) -> pgbulk::Result<()> {
    /// let plan = client.bulk().plan::<Event>().await?;
    /// assert_eq!(plan.table(), r#""app"."events""#);
    /// # Ok(()) }
    /// ```
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The PostgreSQL type of each copied field's column, in the order of `T::__PGBULK_COLUMNS`.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::BulkExt;
    /// use postgres_types::Type;
    ///
    /// #[derive(CopyRow)]
    /// #[copy(table = "app.events")]
    /// struct Event { id: i64, kind: String }
    ///
    /// # async fn f(client: &tokio_postgres::Client) -> pgbulk::Result<()> {
    /// let plan = client.bulk().plan::<Event>().await?;
    /// assert_eq!(plan.types(), [Type::INT8, Type::TEXT]); // if `kind` is a `text` column
    /// # Ok(()) }
    /// ```
    pub fn types(&self) -> &[Type] {
        &self.types
    }

    /// The `COPY .. FROM STDIN (FORMAT binary)` statement this plan runs.
    ///
    /// ```no_run
    /// # extern crate bulk_core as pgbulk;
    /// # use bulk_derive::CopyRow;
    /// use pgbulk::BulkExt;
    ///
    /// #[derive(CopyRow)]
    /// #[copy(table = "app.events")]
    /// struct Event { id: i64, kind: String }
    ///
    /// # async fn f(client: &tokio_postgres::Client) -> pgbulk::Result<()> {
    /// let plan = client.bulk().plan::<Event>().await?;
    /// assert_eq!(
    ///     plan.copy_statement(),
    ///     r#"COPY "app"."events" ("id", "kind") FROM STDIN (FORMAT binary)"#
    /// );
    /// # Ok(()) }
    /// ```
    pub fn copy_statement(&self) -> &str {
        &self.copy_sql
    }

    /// Whether a COPY with this plan has passed the full refusal check.
    pub(crate) fn refusal_checked(&self) -> bool {
        self.refusal_checked.load(Ordering::Relaxed)
    }

    /// Records that a COPY with this plan passed the full refusal check.
    pub(crate) fn mark_refusal_checked(&self) {
        self.refusal_checked.store(true, Ordering::Relaxed);
    }

    /// What the server takes, for the [`Encoder`](crate::engine::Encoder)'s checks.
    pub(crate) fn server(&self) -> ServerVersion {
        self.server
    }

    /// How the target is stored (a Citus table or not).
    pub(crate) fn distribution(&self) -> Distribution {
        self.distribution
    }

    /// This plan, checking values against `server` where its columns need it.
    pub(crate) fn for_server(mut self, server: ServerVersion) -> Plan<T> {
        if server.needs_checks(&self.types) {
            self.server = server;
        }
        self
    }

    /// Whether the server runs `MERGE` (PostgreSQL 15 and later).
    pub(crate) fn merges(&self) -> bool {
        self.merges
    }

    /// A hash of the copied columns' type modifiers, if the driver reported them.
    pub(crate) fn typmods(&self) -> Option<u64> {
        self.typmods
    }

    /// This plan, knowing the type modifiers of `described`'s columns (when reported).
    fn with_typmods(mut self, described: &Described) -> Plan<T> {
        let Some(typmods) = &described.typmods else {
            return self;
        };
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for col in T::__PGBULK_COLUMNS {
            let at = described
                .columns
                .iter()
                .position(|(name, _)| name == col.name);
            let typmod = at.and_then(|at| typmods.get(at)).copied().unwrap_or(-1);
            for b in typmod.to_be_bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        self.typmods = Some(h);
        self
    }

    /// The same field types, copied into another (quoted) table with another COPY statement:
    /// the staging table of `upsert_via_staging`, `replace_all`'s `FREEZE` (same table, same
    /// distribution).
    pub(crate) fn retarget(&self, table: String, copy_sql: String) -> Plan<T> {
        Plan {
            table,
            types: self.types.clone(),
            copy_sql,
            server: self.server,
            typmods: self.typmods,
            distribution: self.distribution,
            merges: self.merges,
            refusal_checked: AtomicBool::new(false),
            inserts: false,
            table_columns: Vec::new(),
            _row: PhantomData,
        }
    }

    /// Whether a small batch may be inserted with bound arrays (see [`Plan::inserts`]).
    pub(crate) fn inserts(&self) -> bool {
        self.inserts
    }

    /// Every column of the target as described: name and type.
    pub(crate) fn table_columns(&self) -> &[DescribedColumn] {
        &self.table_columns
    }

    /// This plan, its small batches always copied.
    pub(crate) fn copying(mut self) -> Plan<T> {
        self.inserts = false;
        self
    }

    /// This plan for a table of this session (a temporary staging table).
    pub(crate) fn local(mut self) -> Plan<T> {
        self.distribution = Distribution::Local;
        self
    }
}

/// The short name of a Rust type, for messages: `User` rather than `my_app::model::User`.
pub(crate) fn short_type_name<T: ?Sized>() -> &'static str {
    let full = std::any::type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}

/// The name of a PostgreSQL type as a person writes it in SQL, with the internal name beside it
/// where they differ: `integer (int4)`, `text[]`.
pub(crate) fn pg_type_name(ty: &Type) -> String {
    fn sql_name(ty: &Type) -> String {
        let friendly = match ty.name() {
            "int2" => "smallint",
            "int4" => "integer",
            "int8" => "bigint",
            "float4" => "real",
            "float8" => "double precision",
            "bool" => "boolean",
            "varchar" => "character varying",
            "bpchar" => "character",
            "timestamptz" => "timestamp with time zone",
            "timestamp" => "timestamp without time zone",
            "timetz" => "time with time zone",
            "time" => "time without time zone",
            _ => "",
        };
        match (friendly, ty.kind()) {
            ("", Kind::Array(elem)) => format!("{}[]", sql_name(elem)),
            ("", _) if ty.schema() != "pg_catalog" && ty.schema() != "public" => {
                format!("{}.{}", ty.schema(), ty.name())
            }
            ("", _) => ty.name().to_owned(),
            (f, _) => f.to_owned(),
        }
    }
    let sql = sql_name(ty);
    if sql == ty.name() || matches!(ty.kind(), Kind::Array(_)) || sql.contains('.') {
        sql
    } else {
        format!("{sql} ({})", ty.name())
    }
}

/// The mismatch of `col`'s field with a column of type `pg_type` (`None`: no such column).
pub(crate) fn mismatch(col: &Column, pg_type: Option<&Type>) -> Mismatch {
    Mismatch {
        field: col.field,
        rust_type: col.rust_type,
        column: col.name.to_owned(),
        pg_type: pg_type.map(pg_type_name),
    }
}

/// Refuses a row type without copied fields (a COPY needs at least one column).
pub(crate) fn require_fields<T: CopyRow + ?Sized>() -> Result<(), Error> {
    if T::__PGBULK_COLUMNS.is_empty() {
        return Err(Error::usage(format!(
            "`{}` has no copied fields",
            short_type_name::<T>()
        )));
    }
    Ok(())
}

/// Describes `table` on `driver` and checks `T`'s fields against its columns.
pub(crate) async fn plan_copy_in<D: Driver, T: CopyRow + ?Sized>(
    driver: &mut D,
    table: &str,
) -> Result<Plan<T>, Error> {
    let quoted = ident::quote_table(table)?;
    require_fields::<T>()?;
    crate::trace::described(&quoted);
    // The server's version and whether it has Citus in the same round trip where the driver
    // can pipeline.
    let described = driver.describe_target(&describe_table_sql(&quoted)).await;
    plan_from::<D, T>(driver, quoted, described).await
}

/// The plan for one `copy_in` of at most `rows` rows (`None`: the input does not say): for a
/// batch small enough to be inserted with bound arrays, [`kept_plan`], which also reads whether
/// the table takes it (in the same round trip where the driver can pipeline); otherwise
/// [`plan_copy_in`].
pub(crate) async fn plan_for_rows<D: Driver, T: CopyRow + ?Sized>(
    driver: &mut D,
    table: &str,
    rows: Option<usize>,
) -> Result<Plan<T>, Error> {
    if rows.is_some_and(|n| n < crate::ops::bound::MAX_ROWS) {
        kept_plan::<D, T>(driver, table).await
    } else {
        plan_copy_in::<D, T>(driver, table).await
    }
}

/// [`plan_copy_in`] for a plan the caller keeps (`plan()`, for many small batches), and
/// whether its small batches may be inserted with bound arrays ([`Plan::inserts`]), read in
/// the same round trip where the driver can pipeline them: once per kept plan, not per call.
pub(crate) async fn kept_plan<D: Driver, T: CopyRow + ?Sized>(
    driver: &mut D,
    table: &str,
) -> Result<Plan<T>, Error> {
    let quoted = ident::quote_table(table)?;
    let also = inserts_sql(&quoted);
    let (mut plan, rows) = plan_copy_in_and::<D, T>(driver, table, Some(&also)).await?;
    plan.inserts = rows.is_ok_and(|rows| {
        rows.first()
            .and_then(|row| row.first())
            .is_some_and(|v| v.as_deref() == Some("t"))
    });
    Ok(plan)
}

/// Whether an `INSERT` into the (quoted) table `quoted` writes what a COPY would: a plain or
/// partitioned table (not a view or a foreign table), without rules (an `INSERT` applies them,
/// a COPY does not), without row-level security for this role (a COPY refuses it).
fn inserts_sql(quoted: &str) -> String {
    format!(
        "SELECT c.relkind IN ('r', 'p') AND NOT c.relhasrules \
         AND NOT coalesce(row_security_active(c.oid), false) \
         FROM pg_class c WHERE c.oid = to_regclass({})",
        ident::literal(quoted)
    )
}

/// [`plan_copy_in`] for an operation that stages its rows (see
/// [`Driver::describe_target_and`]), and `also` (a simple query) in the same round trip where
/// the driver can pipeline them: the plan and `also`'s rows (none without `also`).
pub(crate) async fn plan_copy_in_and<D: Driver, T: CopyRow + ?Sized>(
    driver: &mut D,
    table: &str,
    also: Option<&str>,
) -> Result<(Plan<T>, Result<TextRows, Error>), Error> {
    let quoted = ident::quote_table(table)?;
    require_fields::<T>()?;
    crate::trace::described(&quoted);
    let (described, rows) = driver
        .describe_target_and(&describe_table_sql(&quoted), also)
        .await;
    Ok((plan_from::<D, T>(driver, quoted, described).await?, rows))
}

/// The plan from the target's description.
async fn plan_from<D: Driver, T: CopyRow + ?Sized>(
    driver: &mut D,
    quoted: String,
    described: Result<(Described, ServerFacts), Error>,
) -> Result<Plan<T>, Error> {
    let (described, facts) =
        described.map_err(|e| e.context(format!("cannot describe table {quoted}")))?;
    let mut plan = check_copy_in(quoted, &described.columns)?
        .for_server(facts.version)
        .with_typmods(&described);
    plan.merges = facts.version.runs_merge();
    // On a server with Citus, one more round trip: is the target one of its tables?
    if facts.citus {
        plan.distribution = distribution(driver, &plan.table).await?;
    }
    Ok(plan)
}

/// How the (quoted) `table` is stored, on a server that has the Citus catalog: a Citus table
/// when `pg_dist_partition` lists it.
async fn distribution<D: Driver>(driver: &mut D, table: &str) -> Result<Distribution, Error> {
    let rows = driver
        .query_text(&crate::sql::citus::is_citus_table_sql(table))
        .await
        .map_err(|e| e.context(format!("cannot read how {table} is distributed")))?;
    let listed = rows
        .first()
        .and_then(|r| r.first())
        .and_then(Option::as_deref)
        == Some("t");
    Ok(if listed {
        Distribution::Citus
    } else {
        Distribution::Local
    })
}

/// The statement whose description gives the columns of the (quoted) `table`.
pub(crate) fn describe_table_sql(quoted: &str) -> String {
    format!("SELECT * FROM {quoted} LIMIT 0")
}

/// Checks `T`'s fields against `columns`, the description of the (quoted) table `quoted`.
fn check_copy_in<T: CopyRow + ?Sized>(
    quoted: String,
    columns: &[DescribedColumn],
) -> Result<Plan<T>, Error> {
    check_column_names::<T>()?;
    let mut types = Vec::with_capacity(T::__PGBULK_COLUMNS.len());
    let mut mismatches = Vec::new();
    for col in T::__PGBULK_COLUMNS {
        match columns.iter().find(|(name, _)| name == col.name) {
            None => mismatches.push(mismatch(col, None)),
            // A domain column is written with its base type's codec (binary COPY uses the
            // base type's recv), unless the field's codec accepts the domain itself.
            Some((_, ty)) => match accepted_type(ty, col.accepts_encode) {
                Some(ty) => types.push(ty.clone()),
                None => mismatches.push(mismatch(col, Some(ty))),
            },
        }
    }
    if !mismatches.is_empty() {
        return Err(Error::mismatch(
            &format!("`{}` (table {quoted})", short_type_name::<T>()),
            mismatches,
        ));
    }
    let copy_sql = crate::sql::copy_in(&quoted, T::__PGBULK_COLUMNS.iter().map(|c| c.name), false);
    Ok(Plan {
        table: quoted,
        types,
        copy_sql,
        server: ServerVersion::UNKNOWN,
        typmods: None,
        distribution: Distribution::Local,
        merges: false,
        refusal_checked: AtomicBool::new(false),
        inserts: false,
        table_columns: columns.to_vec(),
        _row: PhantomData,
    })
}

/// For `copy_out` of a whole table whose `SELECT` the server refused with `err`: if fields of
/// `T` have no column in `columns` (the description of the quoted `table`), the all-mismatches
/// error `copy_in` gives, rather than the server's complaint about the first one.
fn missing_columns<T: CopyRow + ?Sized>(
    table: &str,
    columns: &[DescribedColumn],
    err: Error,
) -> Error {
    let missing: Vec<Mismatch> = T::__PGBULK_COLUMNS
        .iter()
        .filter(|col| !columns.iter().any(|(name, _)| name == col.name))
        .map(|col| mismatch(col, None))
        .collect();
    if missing.is_empty() {
        return err;
    }
    Error::mismatch(
        &format!("`{}` (table {table})", short_type_name::<T>()),
        missing,
    )
}

/// Whether `err` is the server's "column does not exist".
fn is_undefined_column(err: &Error) -> bool {
    err.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_COLUMN)
}

/// A verified `copy_out` plan: which query column feeds which field, and the field types.
pub(crate) struct OutPlan {
    pub(crate) copy_sql: String,
    /// Per field of `T::__PGBULK_COLUMNS`: the type of the column feeding it.
    pub(crate) types: Vec<Type>,
    /// Per query column: the index of the field it feeds, or `usize::MAX` when none does.
    pub(crate) map: Vec<usize>,
    /// The `#[copy(default)]` fields the query does not return (indexes into `T::__PGBULK_COLUMNS`).
    pub(crate) absent: Vec<usize>,
}

/// The `SELECT` that reads `T`'s columns from `table`, and the quoted table.
pub(crate) fn select_all<T: CopyRow + ?Sized>(table: &str) -> Result<(String, String), Error> {
    let quoted = ident::quote_table(table)?;
    let columns = crate::sql::column_list(T::__PGBULK_COLUMNS.iter().map(|c| c.name));
    Ok((format!("SELECT {columns} FROM {quoted}"), quoted))
}

/// Describes `query` on `driver` and matches its columns to `T`'s fields by name. `table`
/// (quoted) when `query` is `copy_out`'s `SELECT` of a whole table: fields without a column
/// are then all named at once, as `copy_in` does, rather than the server's first complaint.
pub(crate) async fn plan_copy_out<D: Driver, T: FromCopyRowRef>(
    driver: &mut D,
    query: &str,
    table: Option<&str>,
) -> Result<OutPlan, Error> {
    let query = query.trim().trim_end_matches(';').trim_end();
    require_fields::<T>()?;
    crate::trace::described(query);
    let described = match (driver.describe(query).await, table) {
        (Err(e), Some(table)) if is_undefined_column(&e) => {
            let columns = driver
                .describe(&describe_table_sql(table))
                .await
                .map_err(|e| e.context(format!("cannot describe table {table}")))?
                .columns;
            return Err(missing_columns::<T>(table, &columns, describe_error(e)));
        }
        (described, _) => described.map_err(describe_error)?,
    };
    check_copy_out::<T>(query, &described)
}

/// The error for a `copy_out` query the server could not prepare. A syntax error (which is
/// also what several statements, or text that closes the `COPY (..)` early such as
/// `SELECT 1) TO PROGRAM 'x' --`, give) is the caller's [`Usage`](crate::ErrorKind::Usage)
/// error; anything else (a missing table, a permission) is the server's.
///
/// The query is prepared on its own before it is wrapped in `COPY (..) TO STDOUT`: a text that
/// is one whole statement by itself has balanced parentheses, closed quotes and closed block
/// comments, so it cannot end the `COPY (` early; the wrapping puts it between newlines so a
/// trailing `--` comment cannot swallow the closing parenthesis.
fn describe_error(e: Error) -> Error {
    if e.code() == Some(&tokio_postgres::error::SqlState::SYNTAX_ERROR) {
        return e.with_kind(ErrorKind::Usage).context(
            "copy_out_query takes exactly one query (a SELECT, VALUES, TABLE, or INSERT / \
             UPDATE / DELETE .. RETURNING), which the server could not read as one",
        );
    }
    e.context("cannot describe the copy_out query")
}

/// Matches the columns of `described`, the described `query` (trimmed), to `T`'s fields by
/// name.
pub(crate) fn check_copy_out<T: FromCopyRowRef>(
    query: &str,
    described: &crate::client::Described,
) -> Result<OutPlan, Error> {
    if described.params > 0 {
        return Err(Error::usage(
            "the copy_out query has $n parameters, which COPY cannot bind: pass their values \
             with copy_out_query_params",
        ));
    }
    let cols = &described.columns;
    let mut map = vec![usize::MAX; cols.len()];
    let mut types = Vec::with_capacity(T::__PGBULK_COLUMNS.len());
    let mut mismatches = Vec::new();
    let mut absent = Vec::new();
    check_column_names::<T>()?;
    for (i, col) in T::__PGBULK_COLUMNS.iter().enumerate() {
        let mut found = cols
            .iter()
            .enumerate()
            .filter(|(_, (name, _))| name == col.name);
        match (found.next(), found.next()) {
            (None, _) if col.default => {
                // No slot of the reader is ever set for it, so it stays `ABSENT`; the type is
                // never read.
                absent.push(i);
                types.push(Type::UNKNOWN);
            }
            (None, _) => mismatches.push(mismatch(col, None)),
            (Some(_), Some(_)) => {
                return Err(Error::usage(format!(
                    "the copy_out query returns more than one column named \"{}\" (for field \
                     `{}`); alias them apart",
                    col.name, col.field
                )))
            }
            (Some((at, (_, ty))), None) => {
                let accepts = T::__PGBULK_ACCEPTS_DECODE
                    .get(i)
                    .copied()
                    .unwrap_or(|_| false);
                if let Some(accepted) = accepted_type(ty, accepts) {
                    map[at] = i;
                    types.push(accepted.clone());
                } else {
                    mismatches.push(mismatch(col, Some(ty)));
                }
            }
        }
    }
    if !mismatches.is_empty() {
        return Err(Error::mismatch(
            &format!("`{}` (copy_out query)", short_type_name::<T>()),
            mismatches,
        ));
    }
    Ok(OutPlan {
        // Newlines: a trailing `--` comment in the query ends at the first one (see
        // `describe_error`).
        copy_sql: format!("COPY (\n{query}\n) TO STDOUT (FORMAT binary)"),
        types,
        map,
        absent,
    })
}

impl OutPlan {
    /// Fresh field slots for the tuple reader: NULL, or `ABSENT` for a `#[copy(default)]`
    /// field the query does not return (no query column maps to it, so it stays so).
    pub(crate) fn slots(&self) -> Vec<(u32, i32)> {
        let mut slots = vec![(0, -1); self.types.len()];
        for &i in &self.absent {
            slots[i].1 = ABSENT;
        }
        slots
    }
}

/// Refuses a row type whose columns PostgreSQL could not take: a column named twice (two
/// `#[copy(flatten)]` structs, or one and the outer struct, both have it) or more than 1600.
fn check_column_names<T: CopyRow + ?Sized>() -> Result<(), Error> {
    if T::__PGBULK_COLUMNS.len() > MAX_COLUMNS {
        return Err(Error::usage(format!(
            "`{}` has {} columns, more than PostgreSQL's limit of {MAX_COLUMNS}",
            short_type_name::<T>(),
            T::__PGBULK_COLUMNS.len()
        )));
    }
    for (i, col) in T::__PGBULK_COLUMNS.iter().enumerate() {
        if let Some(other) = T::__PGBULK_COLUMNS[..i].iter().find(|c| c.name == col.name) {
            return Err(Error::usage(format!(
                "`{}` maps fields `{}` and `{}` to the same column \"{}\"; rename one of them \
                 (`#[copy(rename = \"..\")]`)",
                short_type_name::<T>(),
                other.field,
                col.field,
                col.name
            )));
        }
    }
    Ok(())
}

/// The most columns a table can have (the server's `MaxHeapAttributeNumber`).
const MAX_COLUMNS: usize = 1600;
