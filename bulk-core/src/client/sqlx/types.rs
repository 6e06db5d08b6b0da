//! Column types through sqlx, resolved the way tokio-postgres resolves them.
//!
//! sqlx describes a statement with type OIDs and its own `PgTypeInfo`, whose names are
//! `regtype` text (`"My Type"`, `other_schema.mood`) rather than the catalog's `typname`, and
//! which carries no schema. pgbulk's plan checks, and the `#[copy(to_sql)]` fields'
//! `ToSql::accepts` (postgres-types' derive compares `typname`), need
//! `postgres_types::Type` exactly as tokio-postgres builds it:
//! `Type::new(typname, oid, kind, nspname)` with `Kind::Enum` (labels in sort order),
//! `Kind::Composite` (attributes in order), `Kind::Domain`, `Kind::Array`, `Kind::Range`,
//! `Kind::Pseudo` or `Kind::Simple`, decided in tokio-postgres' order.
//!
//! Built-in OIDs need no query (`Type::from_oid`). The others are read from `pg_type`,
//! `pg_namespace`, `pg_range`, `pg_enum` and `pg_attribute`, all the OIDs of one level in one
//! query (a domain over an array of a composite takes three). There is no cache: sqlx offers no
//! place to keep one per connection, and a process-wide one keyed by OID would be wrong across
//! databases and after `ALTER TYPE .. ADD VALUE`. Tables of built-in types never query.

use ::sqlx::postgres::{PgColumn, PgConnection};
use ::sqlx::{AssertSqlSafe, Column as _, Either, Executor as _, SqlSafeStr as _, Statement as _};
use postgres_types::{Field, Kind, Type};
use std::collections::HashMap;

/// One `pg_type` row and what its kind needs.
#[derive(Debug)]
struct CatalogType {
    name: String,
    schema: String,
    typtype: String,
    elem: u32,
    range_subtype: Option<u32>,
    base: u32,
    relid: u32,
    enum_labels: Vec<String>,
    attributes: Vec<(String, u32)>,
}

impl CatalogType {
    /// The OIDs this type is built from, in the order tokio-postgres would look them up.
    fn dependencies(&self) -> Vec<u32> {
        match self.typtype.as_str() {
            "e" | "p" => Vec::new(),
            _ if self.base != 0 => vec![self.base],
            _ if self.elem != 0 => vec![self.elem],
            _ if self.relid != 0 => self.attributes.iter().map(|(_, oid)| *oid).collect(),
            _ => self.range_subtype.into_iter().collect(),
        }
    }
}

/// Every type in `oids` (and what they are built from) that is not built in.
const CATALOG_QUERY: &str =
    "SELECT t.oid::int8, t.typname::text, n.nspname::text, t.typtype::text, \
        t.typelem::int8, r.rngsubtype::int8, t.typbasetype::int8, t.typrelid::int8, \
        ARRAY(SELECT e.enumlabel::text FROM pg_catalog.pg_enum e \
              WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder), \
        ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a \
              WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped \
              ORDER BY a.attnum), \
        ARRAY(SELECT a.atttypid::int8 FROM pg_catalog.pg_attribute a \
              WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped \
              ORDER BY a.attnum) \
     FROM pg_catalog.pg_type t \
     JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace \
     LEFT JOIN pg_catalog.pg_range r ON r.rngtypid = t.oid \
     WHERE t.oid = ANY($1::int8[]::oid[])";

/// The OID as PostgreSQL's unsigned 32-bit value (the query sends them as `int8`).
fn oid(v: i64) -> Result<u32, ::sqlx::Error> {
    u32::try_from(v).map_err(|_| ::sqlx::Error::Protocol(format!("type OID {v} out of range")))
}

/// Reads the catalog rows of `oids` and of every non-built-in type they are built from.
async fn read_catalog(
    conn: &mut PgConnection,
    oids: &[u32],
) -> Result<HashMap<u32, CatalogType>, ::sqlx::Error> {
    let mut found: HashMap<u32, CatalogType> = HashMap::new();
    let mut wanted: Vec<u32> = oids.to_vec();
    // Each level of nesting is one query; PostgreSQL forbids a type containing itself, so this
    // ends. The bound is a guard against a catalog that says otherwise.
    for _ in 0..64 {
        wanted.retain(|o| Type::from_oid(*o).is_none() && !found.contains_key(o));
        wanted.sort_unstable();
        wanted.dedup();
        if wanted.is_empty() {
            return Ok(found);
        }
        let ids: Vec<i64> = wanted.iter().map(|o| i64::from(*o)).collect();
        let rows: Vec<CatalogRow> = ::sqlx::query_as(CATALOG_QUERY)
            .bind(ids)
            .fetch_all(&mut *conn)
            .await?;
        let mut next = Vec::new();
        for row in rows {
            let (oid_, ty) = row.into_catalog_type()?;
            next.extend(ty.dependencies());
            found.insert(oid_, ty);
        }
        if let Some(missing) = wanted.iter().find(|o| !found.contains_key(o)) {
            return Err(::sqlx::Error::Protocol(format!(
                "type OID {missing} is not in pg_type (dropped while in use?)"
            )));
        }
        wanted = next;
    }
    Err(::sqlx::Error::Protocol(
        "type definitions nest more than 64 levels deep".to_owned(),
    ))
}

/// The row of [`CATALOG_QUERY`].
type CatalogRow = (
    i64,
    String,
    String,
    String,
    i64,
    Option<i64>,
    i64,
    i64,
    Vec<String>,
    Vec<String>,
    Vec<i64>,
);

trait IntoCatalogType {
    fn into_catalog_type(self) -> Result<(u32, CatalogType), ::sqlx::Error>;
}

impl IntoCatalogType for CatalogRow {
    fn into_catalog_type(self) -> Result<(u32, CatalogType), ::sqlx::Error> {
        let (id, name, schema, typtype, elem, range, base, relid, labels, att_names, att_types) =
            self;
        let attributes = att_names
            .into_iter()
            .zip(att_types)
            .map(|(n, t)| Ok((n, oid(t)?)))
            .collect::<Result<Vec<_>, ::sqlx::Error>>()?;
        Ok((
            oid(id)?,
            CatalogType {
                name,
                schema,
                typtype,
                elem: oid(elem)?,
                range_subtype: range.map(oid).transpose()?,
                base: oid(base)?,
                relid: oid(relid)?,
                enum_labels: labels,
                attributes,
            },
        ))
    }
}

/// Builds the `Type` of `oid` from the catalog rows, as tokio-postgres' `get_type` does.
fn build(
    oid: u32,
    catalog: &HashMap<u32, CatalogType>,
    built: &mut HashMap<u32, Type>,
) -> Result<Type, ::sqlx::Error> {
    if let Some(ty) = Type::from_oid(oid).or_else(|| built.get(&oid).cloned()) {
        return Ok(ty);
    }
    let row = catalog
        .get(&oid)
        .ok_or_else(|| ::sqlx::Error::Protocol(format!("type OID {oid} was not read")))?;
    let kind = match row.typtype.as_str() {
        "e" => Kind::Enum(row.enum_labels.clone()),
        "p" => Kind::Pseudo,
        _ if row.base != 0 => Kind::Domain(build(row.base, catalog, built)?),
        _ if row.elem != 0 => Kind::Array(build(row.elem, catalog, built)?),
        _ if row.relid != 0 => Kind::Composite(
            row.attributes
                .iter()
                .map(|(name, ty)| Ok(Field::new(name.clone(), build(*ty, catalog, built)?)))
                .collect::<Result<_, ::sqlx::Error>>()?,
        ),
        _ => match row.range_subtype {
            Some(sub) => Kind::Range(build(sub, catalog, built)?),
            None => Kind::Simple,
        },
    };
    let ty = Type::new(row.name.clone(), oid, kind, row.schema.clone());
    built.insert(oid, ty.clone());
    Ok(ty)
}

/// The `Type` of each OID in `oids`, in order; one catalog query per level of nesting when
/// some are not built in, none otherwise.
pub(crate) async fn resolve(
    conn: &mut PgConnection,
    oids: &[u32],
) -> Result<Vec<Type>, ::sqlx::Error> {
    let catalog = read_catalog(conn, oids).await?;
    let mut built = HashMap::new();
    oids.iter()
        .map(|o| build(*o, &catalog, &mut built))
        .collect()
}

/// The OID of `col`'s type.
fn column_oid(col: &PgColumn) -> Result<u32, ::sqlx::Error> {
    col.type_info().oid().map(|o| o.0).ok_or_else(|| {
        ::sqlx::Error::Protocol(format!("column \"{}\" has no type OID", col.name()))
    })
}

/// Each of `columns`' name and resolved type (as [`describe`] resolves them: no query when all
/// are built in).
pub(crate) async fn resolve_columns(
    conn: &mut PgConnection,
    columns: &[PgColumn],
) -> Result<Vec<(String, Type)>, ::sqlx::Error> {
    let oids = columns
        .iter()
        .map(column_oid)
        .collect::<Result<Vec<_>, _>>()?;
    let types = resolve(conn, &oids).await?;
    Ok(columns
        .iter()
        .map(|c| c.name().to_owned())
        .zip(types)
        .collect())
}

/// A statement described through sqlx: its result columns (name and resolved type) and its
/// number of `$n` parameters.
#[derive(Debug, Clone)]
pub(crate) struct Described {
    /// The result columns in order.
    pub(crate) columns: Vec<(String, Type)>,
    /// How many `$n` parameters the statement takes.
    pub(crate) params: usize,
    /// Their types, resolved like the columns' (empty if sqlx did not report them).
    pub(crate) param_types: Vec<Type>,
    /// Per result column, the table column it reads, as `(table OID, attribute number)`, or
    /// `(0, 0)` for a computed one: where its type modifier can be looked up (sqlx does not
    /// hand out the row description's modifiers themselves).
    pub(crate) origins: Vec<(u32, i16)>,
}

/// Describes `sql` without running it.
///
/// sqlx prepares it as a named statement and keeps it in the connection's statement cache, as
/// it does for the application's own queries: describing the same text again on that
/// connection costs no round trip (and, as for any cached sqlx statement, does not see a table
/// altered since on that connection).
pub(crate) async fn describe(
    conn: &mut PgConnection,
    sql: &str,
) -> Result<Described, ::sqlx::Error> {
    let stmt = (&mut *conn)
        .prepare(AssertSqlSafe(sql.to_owned()).into_sql_str())
        .await?;
    let (params, param_oids) = match stmt.parameters() {
        Some(Either::Left(types)) => {
            let oids = types
                .iter()
                .map(|t| {
                    t.oid().map(|o| o.0).ok_or_else(|| {
                        ::sqlx::Error::Protocol("a parameter has no type OID".to_owned())
                    })
                })
                .collect::<Result<Vec<u32>, _>>()?;
            (types.len(), oids)
        }
        Some(Either::Right(n)) => (n, Vec::new()),
        None => (0, Vec::new()),
    };
    let mut names = Vec::with_capacity(stmt.columns().len());
    let mut oids = Vec::with_capacity(stmt.columns().len());
    let origins = stmt
        .columns()
        .iter()
        .map(
            |col| match (col.relation_id(), col.relation_attribute_no()) {
                (Some(table), Some(attribute)) => (table.0, attribute),
                _ => (0, 0),
            },
        )
        .collect();
    for col in stmt.columns() {
        names.push(col.name().to_owned());
        oids.push(column_oid(col)?);
    }
    let columns = oids.len();
    oids.extend_from_slice(&param_oids);
    let mut types = resolve(conn, &oids).await?;
    let param_types = types.split_off(columns);
    Ok(Described {
        columns: names.into_iter().zip(types).collect(),
        params,
        param_types,
        origins,
    })
}

#[cfg(all(test, feature = "testkit"))]
mod tests {
    use super::describe;
    use crate::testkit::TestDb;
    use ::sqlx::Connection as _;

    /// Every kind of column type, including nested ones, resolves to exactly the `Type`
    /// tokio-postgres builds for the same statement (name, OID, kind, schema).
    #[tokio::test]
    async fn resolves_as_tokio_postgres_does() {
        let db = TestDb::new().await.unwrap();
        db.client()
            .batch_execute(
                "CREATE SCHEMA other;
                 CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
                 ALTER TYPE mood ADD VALUE 'meh' BEFORE 'ok';
                 CREATE TYPE other.\"Point 3\" AS (x float8, y float8, z float8);
                 CREATE DOMAIN posint AS int4 CHECK (VALUE > 0);
                 CREATE DOMAIN moods AS mood[];
                 CREATE TYPE pair AS (m mood, p other.\"Point 3\"[], d posint);
                 CREATE TYPE floatrange AS RANGE (subtype = float8);
                 CREATE TABLE t (
                     id int8, name text, tags varchar[], m mood, ms mood[], p other.\"Point 3\",
                     ps other.\"Point 3\"[], d posint, dm moods, pr pair, prs pair[],
                     r floatrange, rs floatrange[], ir int4range, j jsonb
                 );",
            )
            .await
            .unwrap();
        let sql = "SELECT * FROM t LIMIT 0";
        let expected: Vec<(String, postgres_types::Type)> = db
            .client()
            .prepare(sql)
            .await
            .unwrap()
            .columns()
            .iter()
            .map(|c| (c.name().to_owned(), c.type_().clone()))
            .collect();
        let mut conn = ::sqlx::PgConnection::connect_with(&db.sqlx_options())
            .await
            .unwrap();
        let described = describe(&mut conn, sql).await.unwrap();
        assert_eq!(described.params, 0);
        assert_eq!(described.columns.len(), 15);
        for ((name, ty), (want_name, want)) in described.columns.iter().zip(&expected) {
            assert_eq!(name, want_name);
            assert_eq!(ty, want, "column {name}");
            assert_eq!(ty.schema(), want.schema(), "column {name}");
            assert_eq!(format!("{:?}", ty.kind()), format!("{:?}", want.kind()));
        }
        // Spot checks that the comparison above compared something.
        let find = |n: &str| &described.columns.iter().find(|(c, _)| c == n).unwrap().1;
        assert_eq!(
            find("m").kind(),
            &postgres_types::Kind::Enum(vec![
                "sad".into(),
                "meh".into(),
                "ok".into(),
                "happy".into()
            ])
        );
        assert_eq!(find("p").name(), "Point 3");
        assert_eq!(find("p").schema(), "other");
        match find("prs").kind() {
            postgres_types::Kind::Array(pair) => match pair.kind() {
                postgres_types::Kind::Composite(fields) => {
                    assert_eq!(fields[2].type_().name(), "posint");
                }
                k => panic!("pair is {k:?}"),
            },
            k => panic!("prs is {k:?}"),
        }
        // Parameters are counted; the same statement again costs no catalog error.
        let d = describe(&mut conn, "SELECT id FROM t WHERE id = $1 AND name = $2")
            .await
            .unwrap();
        assert_eq!(d.params, 2);
    }
}
