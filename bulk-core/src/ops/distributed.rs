//! Operations on a Citus table (see [`Distribution`](crate::plan::Distribution)): the two
//! things that differ from one server, and what pgbulk does about them.
//!
//! - **RETURNING order.** Each shard runs its own `INSERT .. RETURNING` and the coordinator
//!   concatenates the results, so an `ORDER BY` in the source orders nothing. The returning
//!   operations match returned rows to staged rows by a unique key ([`order_key`]) and order
//!   them by input position ([`in_input_order`](crate::sql::citus::in_input_order)); on a
//!   Citus table without such a key, `in_input_order()` is refused.
//! - **Errors raised on a worker** reach the client as SQLSTATE `XX000` without the
//!   `COPY t, line N` context (a worker's line numbers count rows per shard, not input rows),
//!   with shard names (`events_102016`). The error keeps the server's message with the shard
//!   suffixes stripped (see `Error::server`), and a key violation is mapped back to its input
//!   row from the key values in its detail ([`KeyTrail`]).

use crate::client::Driver;
use crate::error::Result;
use crate::row::CopyRow;
use postgres_types::Type;
use std::hash::{Hash, Hasher};

/// The first unique key of the (quoted) `table` whose columns are all `NOT NULL` and for which
/// `usable` holds (its column names, in key order): such a key identifies one returned row per
/// staged row, so returned rows can be matched to their input rows.
pub(crate) async fn order_key<D: Driver>(
    driver: &mut D,
    table: &str,
    usable: impl Fn(&[String]) -> bool,
) -> Result<Option<Vec<String>>> {
    let rows = driver
        .query_text(&crate::sql::citus::unique_keys_sql(table))
        .await
        .map_err(|e| e.context(format!("cannot list the unique keys of {table}")))?;
    let rows: Vec<(String, String, bool)> = rows
        .into_iter()
        .filter_map(|r| {
            let mut r = r.into_iter();
            let (index, column, not_null) = (r.next()??, r.next()??, r.next()??);
            Some((index, column, not_null == "t"))
        })
        .collect();
    Ok(pick_order_key(&rows, usable))
}

/// From the rows of [`unique_keys_sql`](crate::sql::citus::unique_keys_sql) (index, column,
/// not null): the first key whose columns are all `NOT NULL` and for which `usable` holds.
fn pick_order_key(
    rows: &[(String, String, bool)],
    usable: impl Fn(&[String]) -> bool,
) -> Option<Vec<String>> {
    let mut keys: Vec<(&str, Vec<String>, bool)> = Vec::new();
    for (index, column, not_null) in rows {
        match keys.last_mut() {
            Some((i, cols, all)) if i == index => {
                cols.push(column.clone());
                *all &= *not_null;
            }
            _ => keys.push((index, vec![column.clone()], *not_null)),
        }
    }
    keys.into_iter()
        .find(|(_, cols, not_null)| *not_null && usable(cols))
        .map(|(_, cols, _)| cols)
}

/// Fingerprints of the key fields (`#[copy(key)]`) of every row sent to a Citus table, so that
/// a worker's `Key (..)=(..) already exists.` can name the input row the coordinator cannot.
/// Eight bytes per row; kept only for Citus targets whose key fields are all integers, text or
/// uuid.
pub(crate) struct KeyTrail {
    /// Position in the tuple and type of each key field, in `T::__PGBULK_COLUMNS` order.
    fields: Vec<(usize, Type)>,
    /// The key fields' column names, joined with `, ` as in the detail.
    columns: String,
    /// One fingerprint per row sent, in input order.
    seen: Vec<u64>,
}

impl KeyTrail {
    /// A trail for `T` with column `types`, when `T` has key fields of supported types.
    pub(crate) fn new<T: CopyRow + ?Sized>(types: &[Type]) -> Option<KeyTrail> {
        let fields: Vec<(usize, Type)> = T::__PGBULK_COLUMNS
            .iter()
            .enumerate()
            .filter(|(_, c)| c.key)
            .map(|(i, _)| (i, types.get(i).cloned().unwrap_or(Type::UNKNOWN)))
            .collect();
        if fields.is_empty() || !fields.iter().all(|(_, ty)| from_text(ty, "0").is_some()) {
            return None;
        }
        let columns = T::__PGBULK_COLUMNS
            .iter()
            .filter(|c| c.key)
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(", ");
        Some(KeyTrail {
            fields,
            columns,
            seen: Vec::new(),
        })
    }

    /// Records the row whose encoded tuple (from its field count on) is `tuple`.
    pub(crate) fn record(&mut self, tuple: &[u8]) {
        let mut values = Vec::with_capacity(self.fields.len());
        let mut pos = 2;
        let mut field = 0;
        for &(index, _) in &self.fields {
            // Walk the length-prefixed fields up to this one.
            loop {
                let Some(len) = tuple
                    .get(pos..pos + 4)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map(i32::from_be_bytes)
                else {
                    self.seen.push(0);
                    return;
                };
                pos += 4;
                let value = usize::try_from(len)
                    .ok()
                    .and_then(|len| tuple.get(pos..pos + len));
                pos += value.map_or(0, <[u8]>::len);
                field += 1;
                if field == index + 1 {
                    values.push(value);
                    break;
                }
            }
        }
        self.seen.push(fingerprint(values.into_iter()));
    }

    /// The input row of a `Key (..)=(..)` `detail` on the key fields: the last row sent with
    /// those values (for duplicates within the batch, the later one is the row that failed).
    pub(crate) fn row_of(&self, detail: &str) -> Option<u64> {
        let (columns, values) = key_detail(detail, self.fields.len())?;
        if columns != self.columns {
            return None;
        }
        let encoded: Vec<Vec<u8>> = self
            .fields
            .iter()
            .zip(&values)
            .map(|((_, ty), text)| from_text(ty, text))
            .collect::<Option<_>>()?;
        let wanted = fingerprint(encoded.iter().map(|v| Some(v.as_slice())));
        let at = self.seen.iter().rposition(|&f| f == wanted)?;
        u64::try_from(at).ok()
    }
}

/// A fingerprint of a row's key values (binary, `None` for NULL).
fn fingerprint<'a>(values: impl Iterator<Item = Option<&'a [u8]>>) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    for value in values {
        value.hash(&mut hasher);
    }
    hasher.finish()
}

/// The binary form of `text`, a value of type `ty` as the server prints it, for the key types
/// the trail supports.
fn from_text(ty: &Type, text: &str) -> Option<Vec<u8>> {
    match *ty {
        Type::INT2 => text.parse::<i16>().ok().map(|v| v.to_be_bytes().to_vec()),
        Type::INT4 => text.parse::<i32>().ok().map(|v| v.to_be_bytes().to_vec()),
        Type::INT8 => text.parse::<i64>().ok().map(|v| v.to_be_bytes().to_vec()),
        Type::TEXT | Type::VARCHAR => Some(text.as_bytes().to_vec()),
        Type::UUID => {
            if text == "0" {
                // The probe of `KeyTrail::new`: the type is supported.
                return Some(Vec::new());
            }
            uuid_bytes(text)
        }
        _ => None,
    }
}

/// The 16 bytes of a uuid as the server prints it (`a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11`,
/// hyphens anywhere accepted), without depending on the `uuid` crate.
fn uuid_bytes(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|&b| b != b'-')
        .map(|b| {
            char::from(b)
                .to_digit(16)
                .and_then(|d| u8::try_from(d).ok())
        })
        .collect::<Option<_>>()?;
    (digits.len() == 32).then(|| digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect())
}

/// Splits `Key (a, b)=(1, x) already exists.` into the column list (`a, b`, unquoted) and `n`
/// values (the last may contain `, `).
fn key_detail(detail: &str, n: usize) -> Option<(String, Vec<String>)> {
    let columns = crate::sql::ident::key_columns(detail)?;
    let (_, values) = detail.split_once(")=(")?;
    let values = values
        .strip_suffix(") already exists.")
        .or_else(|| values.strip_suffix(") is duplicated."))?;
    let values: Vec<String> = values.splitn(n, ", ").map(str::to_owned).collect();
    (values.len() == n).then_some((columns, values))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::Column;

    #[test]
    fn uuid_text_to_bytes() {
        let bytes = uuid_bytes("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").unwrap();
        assert_eq!(
            bytes,
            [
                0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38,
                0x0a, 0x11
            ]
        );
        assert_eq!(uuid_bytes("A0EEBC999C0B4EF8BB6D6BB9BD380A11"), Some(bytes));
        assert_eq!(uuid_bytes("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1"), None);
        assert_eq!(uuid_bytes("g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), None);
    }

    /// A row type with key fields (tenant int8, reference text) and a value.
    struct Keyed;

    impl CopyRow for Keyed {
        const __PGBULK_TABLE: &'static str = "t";
        const __PGBULK_COLUMNS: &'static [Column] = &[
            Column {
                name: "tenant",
                field: "tenant",
                rust_type: "i64",
                key: true,
                default: false,
                accepts_encode: |_| true,
            },
            Column {
                name: "value",
                field: "value",
                rust_type: "f64",
                key: false,
                default: false,
                accepts_encode: |_| true,
            },
            Column {
                name: "reference",
                field: "reference",
                rust_type: "String",
                key: true,
                default: false,
                accepts_encode: |_| true,
            },
        ];

        fn encode_row(
            &self,
            _: &[Type],
            _: &mut bytes::BytesMut,
        ) -> std::result::Result<(), (usize, crate::error::EncodeError)> {
            Ok(())
        }
    }

    fn tuple(tenant: i64, reference: &str) -> Vec<u8> {
        let mut t = 3i16.to_be_bytes().to_vec();
        t.extend(8i32.to_be_bytes());
        t.extend(tenant.to_be_bytes());
        t.extend(8i32.to_be_bytes());
        t.extend(1.5f64.to_be_bytes());
        t.extend(i32::try_from(reference.len()).unwrap().to_be_bytes());
        t.extend(reference.as_bytes());
        t
    }

    #[test]
    fn a_key_detail_names_the_last_row_with_that_key() {
        let types = [Type::INT8, Type::FLOAT8, Type::TEXT];
        let mut trail = KeyTrail::new::<Keyed>(&types).unwrap();
        for (tenant, reference) in [(1, "a"), (2, "b, c"), (1, "a"), (3, "x")] {
            trail.record(&tuple(tenant, reference));
        }
        assert_eq!(
            trail.row_of("Key (tenant, reference)=(1, a) already exists."),
            Some(2)
        );
        assert_eq!(
            trail.row_of("Key (tenant, reference)=(2, b, c) already exists."),
            Some(1)
        );
        assert_eq!(
            trail.row_of("Key (tenant, reference)=(9, a) already exists."),
            None
        );
        // Another key, or not a key detail: no row.
        assert_eq!(trail.row_of("Key (reference)=(a) already exists."), None);
        assert_eq!(trail.row_of("Failing row contains (1, 1.5, a)."), None);
        // Unsupported key types keep no trail.
        assert!(KeyTrail::new::<Keyed>(&[Type::NUMERIC, Type::FLOAT8, Type::TEXT]).is_none());
    }

    #[test]
    fn the_order_key_is_the_first_not_null_unique_key_that_fits() {
        let row = |i: &str, c: &str, nn: bool| (i.to_owned(), c.to_owned(), nn);
        let rows = vec![
            row("1", "id", true),
            row("2", "tenant", true),
            row("2", "email", false),
            row("3", "tenant", true),
            row("3", "reference", true),
        ];
        // `id` is generated (not copied): the nullable (tenant, email) key is skipped too.
        let copied = ["tenant", "email", "reference"];
        let key = pick_order_key(&rows, |cols| {
            cols.iter().all(|c| copied.contains(&c.as_str()))
        });
        assert_eq!(key, Some(vec!["tenant".to_owned(), "reference".to_owned()]));
        assert_eq!(pick_order_key(&rows, |_| false), None);
    }
}
