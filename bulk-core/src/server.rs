//! What the connected server's version allows: read once per plan from `server_version_num`,
//! decided by number (never by an error's text), checked on the client before a row is sent.
//!
//! Only one difference matters to the bytes pgbulk writes today: numeric `Infinity` and
//! `-Infinity` exist from PostgreSQL 14 on. A PostgreSQL 13 server rejects them in the middle
//! of the COPY with "invalid sign in external numeric value"; pgbulk instead refuses the row
//! before sending it, naming the row, the field and the version.

use crate::codec::EncodeError;
use crate::error::{Error, Result};
use postgres_types::{Kind, Type};

/// The query whose one row is what a plan needs to know of the server: its version as a
/// number (`170004` for 17.4), and whether it has the Citus catalog (`t` / `f`; see
/// [`ServerFacts::citus`]). One statement, valid on every server, so a driver sends it in the
/// describe's round trip where it can pipeline.
pub(crate) const SERVER_SQL: &str = "SELECT current_setting('server_version_num'), \
     to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL";

/// [`SERVER_SQL`] with a third column: the type modifier (`atttypmod`) of each table column in
/// `origins` (`(table OID, attribute number)`, `(0, 0)` for none: `-1`), in order, as an
/// array's text. For a driver that learns where a result column comes from but not its
/// modifier (sqlx); the numbers are written into the text (nothing else is).
#[cfg(feature = "sqlx")]
pub(crate) fn facts_and_typmods_sql(origins: &[(u32, i16)]) -> String {
    use std::fmt::Write as _;
    let (mut tables, mut attributes) = (String::new(), String::new());
    for (i, (table, attribute)) in origins.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(tables, "{sep}{table}");
        let _ = write!(attributes, "{sep}{attribute}");
    }
    format!(
        "{SERVER_SQL}, ARRAY(SELECT coalesce(a.atttypmod, -1) \
         FROM unnest('{{{tables}}}'::pg_catalog.oid[], '{{{attributes}}}'::pg_catalog.int2[]) \
         WITH ORDINALITY AS u(rel, att, ord) \
         LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = u.rel AND a.attnum = u.att \
         ORDER BY u.ord)::text"
    )
}

/// The type modifiers [`facts_and_typmods_sql`] read (the third column of its one row), if
/// there is one per column.
#[cfg(feature = "sqlx")]
pub(crate) fn typmods_from_rows(rows: &[Vec<Option<String>>], columns: usize) -> Option<Vec<i32>> {
    let text = rows.first()?.get(2)?.as_deref()?;
    let inner = text.strip_prefix('{')?.strip_suffix('}')?;
    let typmods: Vec<i32> = if inner.is_empty() {
        Vec::new()
    } else {
        inner
            .split(',')
            .map(|n| n.trim().parse().ok())
            .collect::<Option<_>>()?
    };
    (typmods.len() == columns).then_some(typmods)
}

/// What a plan reads of the server with [`SERVER_SQL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ServerFacts {
    /// The server's version.
    pub(crate) version: ServerVersion,
    /// Whether the server has the Citus catalog (`pg_dist_partition`): only then can a table be
    /// distributed, and only then does the plan look the target up in it.
    pub(crate) citus: bool,
}

impl ServerFacts {
    /// Reads the facts from the rows of [`SERVER_SQL`] (each value as text).
    pub(crate) fn from_rows(rows: &[Vec<Option<String>>]) -> Result<ServerFacts> {
        let row = rows.first();
        let value = |i: usize| row.and_then(|r| r.get(i)).and_then(Option::as_deref);
        let version = value(0)
            .and_then(|v| v.trim().parse().ok())
            .map(ServerVersion::new)
            .ok_or_else(|| Error::protocol("`server_version_num` returned no number"))?;
        Ok(ServerFacts {
            version,
            citus: value(1) == Some("t"),
        })
    }
}

/// The first `server_version_num` whose numeric type holds `Infinity` and `-Infinity`.
const NUMERIC_INFINITY_SINCE: u32 = 140_000;
/// The first `server_version_num` with `MERGE`.
const MERGE_SINCE: u32 = 150_000;

/// NUMERIC sign words of ±Infinity (`numeric.c`: `NUMERIC_PINF`, `NUMERIC_NINF`).
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;

/// The version of the server a plan was made against, when pgbulk needed to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ServerVersion(Option<u32>);

impl ServerVersion {
    /// Not known (a `.pgcopy` file, read later by any server): nothing is refused up front.
    pub(crate) const UNKNOWN: ServerVersion = ServerVersion(None);

    /// A server whose `server_version_num` is `num`.
    pub(crate) fn new(num: u32) -> ServerVersion {
        ServerVersion(Some(num))
    }

    /// Whether this server is known to predate numeric `Infinity`/`-Infinity` (PostgreSQL 14).
    pub(crate) fn predates_numeric_infinity(self) -> bool {
        self.0.is_some_and(|n| n < NUMERIC_INFINITY_SINCE)
    }

    /// Whether this server runs `MERGE` (PostgreSQL 15 and later).
    pub(crate) fn runs_merge(self) -> bool {
        self.0.is_some_and(|n| n >= MERGE_SINCE)
    }

    /// Whether values of the plan's column `types` must be checked against this version: only
    /// when the server is known to predate numeric infinities and a column is numeric-based.
    pub(crate) fn needs_checks(self, types: &[Type]) -> bool {
        self.predates_numeric_infinity() && version_matters(types)
    }

    /// The version as people write it: `13.23`, `17.4` (`9.6.24` before 10).
    fn display(num: u32) -> String {
        if num >= 100_000 {
            format!("{}.{}", num / 10_000, num % 10_000)
        } else {
            format!("{}.{}.{}", num / 10_000, num / 100 % 100, num % 100)
        }
    }

    /// Checks one encoded tuple (`tuple` starts at its field count) against what this server
    /// accepts, when [`needs_checks`](ServerVersion::needs_checks) says so. The error carries
    /// the index of the offending field.
    pub(crate) fn check_tuple(
        self,
        types: &[Type],
        tuple: &[u8],
    ) -> std::result::Result<(), (usize, EncodeError)> {
        let Some(num) = self.0.filter(|&n| n < NUMERIC_INFINITY_SINCE) else {
            return Ok(());
        };
        let mut pos = 2; // the int16 field count
        for (i, ty) in types.iter().enumerate() {
            let Some(len) = read_i32(tuple, pos) else {
                return Ok(());
            };
            pos += 4;
            let Ok(len) = usize::try_from(len) else {
                continue; // NULL
            };
            let value = tuple.get(pos..pos + len).unwrap_or_default();
            pos += len;
            let sign = match numeric_depth(ty) {
                Some(0) => infinite_sign(value),
                Some(_) => array_elements(value).find_map(infinite_sign),
                None => None,
            };
            if let Some(sign) = sign {
                let name = if sign == NUMERIC_PINF {
                    "Infinity"
                } else {
                    "-Infinity"
                };
                return Err((
                    i,
                    EncodeError::OutOfRange(format!(
                        "numeric '{name}' needs PostgreSQL 14 or later, and the server is {}, \
                         whose numeric has no infinities; write NULL or NaN instead",
                        ServerVersion::display(num)
                    )),
                ));
            }
        }
        Ok(())
    }
}

/// Whether some server version refuses values of these column `types` that others take.
pub(crate) fn version_matters(types: &[Type]) -> bool {
    types.iter().any(|t| numeric_depth(t).is_some())
}

/// `Some(0)` for numeric (or a domain over it), `Some(n)` for an array type n levels above
/// numeric elements, `None` for anything else.
fn numeric_depth(ty: &Type) -> Option<u32> {
    match ty.kind() {
        Kind::Domain(base) => numeric_depth(base),
        Kind::Array(elem) => numeric_depth(elem).map(|d| d + 1),
        _ => (*ty == Type::NUMERIC).then_some(0),
    }
}

/// The sign word of a numeric value in `numeric_send` layout, when it is ±Infinity.
fn infinite_sign(value: &[u8]) -> Option<u16> {
    let sign = u16::from_be_bytes([*value.get(4)?, *value.get(5)?]);
    matches!(sign, NUMERIC_PINF | NUMERIC_NINF).then_some(sign)
}

/// The non-NULL elements of an `array_send` value, flattened over all dimensions.
fn array_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    let ndim = read_i32(value, 0).and_then(|n| usize::try_from(n).ok());
    let mut pos = ndim.map_or(usize::MAX, |n| 12 + 8 * n);
    std::iter::from_fn(move || loop {
        let len = read_i32(value, pos)?;
        pos += 4;
        if let Ok(len) = usize::try_from(len) {
            let element = value.get(pos..pos + len)?;
            pos += len;
            return Some(element);
        }
    })
}

/// The big-endian `int32` at `pos`, if the bytes are there.
fn read_i32(bytes: &[u8], pos: usize) -> Option<i32> {
    let b = bytes.get(pos..pos.checked_add(4)?)?;
    Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Encode, PgNumeric};
    use bytes::BytesMut;
    use rust_decimal::Decimal;

    /// The type modifiers come back one per column, or not at all.
    #[cfg(feature = "sqlx")]
    #[test]
    fn typmods_are_read_one_per_column() {
        let row = |typmods: &str| {
            vec![vec![
                Some("150000".to_owned()),
                Some("f".to_owned()),
                Some(typmods.to_owned()),
            ]]
        };
        assert_eq!(
            typmods_from_rows(&row("{-1,65540}"), 2),
            Some(vec![-1, 65_540])
        );
        assert_eq!(typmods_from_rows(&row("{}"), 0), Some(vec![]));
        assert_eq!(typmods_from_rows(&row("{-1}"), 2), None);
        assert_eq!(typmods_from_rows(&row("{x}"), 1), None);
        assert_eq!(typmods_from_rows(&[], 1), None);
        // The numbers are all the statement carries.
        let sql = facts_and_typmods_sql(&[(16_384, 2), (0, 0)]);
        assert!(sql.starts_with(SERVER_SQL), "{sql}");
        assert!(
            sql.contains("unnest('{16384,0}'::pg_catalog.oid[], '{2,0}'::pg_catalog.int2[])"),
            "{sql}"
        );
    }

    /// Writes one field for the column type it is given.
    type Field<'a> = &'a dyn Fn(&Type, &mut BytesMut);

    /// One tuple of `fields`, each encoded for its type.
    fn tuple(fields: &[(Field<'_>, Type)]) -> (Vec<Type>, BytesMut) {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&i16::try_from(fields.len()).unwrap().to_be_bytes());
        for (encode, ty) in fields {
            encode(ty, &mut buf);
        }
        (fields.iter().map(|(_, t)| t.clone()).collect(), buf)
    }

    fn field<T: Encode>(v: T) -> impl Fn(&Type, &mut BytesMut) {
        move |ty, buf| v.encode_field(ty, buf).unwrap()
    }

    #[test]
    fn infinity_is_refused_before_14_naming_the_field_and_version() {
        let values = [PgNumeric::Value(Decimal::ONE), PgNumeric::NegInfinity];
        let (types, buf) = tuple(&[
            (&field(1i32), Type::INT4),
            (&field(PgNumeric::NaN), Type::NUMERIC),
            (&field(values.to_vec()), Type::NUMERIC_ARRAY),
            (&field(PgNumeric::PosInfinity), Type::NUMERIC),
        ]);
        let v13 = ServerVersion::new(130_023);
        assert!(v13.needs_checks(&types));
        let (i, e) = v13.check_tuple(&types, &buf).unwrap_err();
        assert_eq!(i, 2, "the array holding -Infinity is the first offender");
        assert_eq!(
            e.to_string(),
            "numeric '-Infinity' needs PostgreSQL 14 or later, and the server is 13.23, whose \
             numeric has no infinities; write NULL or NaN instead"
        );
        // the other side: 14 and later take them, and an unknown server is not second-guessed
        for ok in [ServerVersion::new(140_000), ServerVersion::UNKNOWN] {
            assert!(!ok.needs_checks(&types));
        }
    }

    #[test]
    fn finite_nan_null_and_other_types_pass_before_14() {
        let (types, buf) = tuple(&[
            (&field(PgNumeric::NaN), Type::NUMERIC),
            (&field(Option::<PgNumeric>::None), Type::NUMERIC),
            (
                &field(vec![Some(PgNumeric::NaN), None]),
                Type::NUMERIC_ARRAY,
            ),
            (&field(vec![f64::INFINITY]), Type::FLOAT8_ARRAY),
            (&field(Decimal::MAX), Type::NUMERIC),
        ]);
        let v13 = ServerVersion::new(130_000);
        assert!(v13.needs_checks(&types));
        v13.check_tuple(&types, &buf).unwrap();
        assert!(!v13.needs_checks(&[Type::FLOAT8, Type::INT4_ARRAY]));
    }

    #[test]
    fn version_reads_as_people_write_it() {
        assert_eq!(ServerVersion::display(130_023), "13.23");
        assert_eq!(ServerVersion::display(180_004), "18.4");
        assert_eq!(ServerVersion::display(90_624), "9.6.24");
    }
}
