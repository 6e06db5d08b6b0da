//! The SQL text pgbulk needs on a Citus coordinator: whether a table is a Citus table, which
//! unique keys can prove a `RETURNING` order, and the statement that proves it. Text only.

use crate::sql::ident;
use std::fmt::Write as _;

/// Whether the (quoted) `table` is a Citus table: one row, `t` or `f`. Run only where the
/// server has the Citus catalog ([`ServerFacts::citus`](crate::server::ServerFacts)): the
/// catalog table does not exist otherwise.
pub(crate) fn is_citus_table_sql(table: &str) -> String {
    format!(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition \
         WHERE logicalrelid = {}::text::regclass)",
        ident::literal(table)
    )
}

/// The key columns of every unique index of the (quoted) `table` that can prove an order: no
/// expressions, no predicate. One row per (index, column), in key order: index, column name,
/// whether the column is `NOT NULL` (`t` / `f`); primary keys first.
pub(crate) fn unique_keys_sql(table: &str) -> String {
    format!(
        "SELECT i.indexrelid::text, a.attname::text, a.attnotnull \
         FROM pg_catalog.pg_index i \
         CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n) \
         JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
         WHERE i.indrelid = {}::text::regclass AND i.indisunique AND i.indpred IS NULL \
         AND i.indexprs IS NULL AND k.n <= i.indnkeyatts \
         ORDER BY i.indisprimary DESC, i.indexrelid, k.n",
        ident::literal(table)
    )
}

/// The name under which [`key_returning`] returns the `i`-th key column.
fn key_alias(i: usize) -> String {
    ident::quote(&format!("__pgbulk_key_{i}"))
}

/// The `key` columns of `alias` (the target in the statement) as extra `RETURNING` items named
/// for [`in_input_order`]: `, alias."k" AS "__pgbulk_key_0", ..`.
pub(crate) fn key_returning(alias: &str, key: &[String]) -> String {
    let mut out = String::new();
    for (i, c) in key.iter().enumerate() {
        let _ = write!(out, ", {alias}.{} AS {}", ident::quote(c), key_alias(i));
    }
    out
}

/// `statement` (an `INSERT .. RETURNING <returned>` whose `RETURNING` list also carries the
/// `key` columns as [`key_returning`] adds them) wrapped so that its rows come back in input
/// order, proven rather than assumed: each returned row is matched by its key to the staged
/// rows of `stage` with that key (the last of them, as the merge keeps the last), and the
/// result is ordered by that row's input position `ord`. `returned` are the output column names.
pub(crate) fn in_input_order(
    statement: &str,
    returned: &[&str],
    key: &[String],
    stage: &str,
    ord: &str,
) -> String {
    let q = ident::quote;
    let out = returned
        .iter()
        .map(|c| format!("r.{}", q(c)))
        .collect::<Vec<_>>()
        .join(", ");
    let key_list = key.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ");
    let on = key
        .iter()
        .enumerate()
        .map(|(i, c)| format!("r.{} = s.{}", key_alias(i), q(c)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let ord = q(ord);
    format!(
        "WITH \"pgbulk_returned\" AS ({statement}) SELECT {out} FROM \"pgbulk_returned\" r \
         JOIN (SELECT {key_list}, max({ord}) AS {ord} FROM {stage} GROUP BY {key_list}) s \
         ON {on} ORDER BY s.{ord}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_order_joins_on_the_key_and_sorts_by_the_ordinal() {
        let key = vec!["tenant_id".to_owned(), "ref".to_owned()];
        let returning = format!("RETURNING t.\"id\"{}", key_returning("t", &key));
        assert_eq!(
            returning,
            "RETURNING t.\"id\", t.\"tenant_id\" AS \"__pgbulk_key_0\", t.\"ref\" AS \
             \"__pgbulk_key_1\""
        );
        let sql = in_input_order("INSERT ..", &["id"], &key, "pg_temp.\"s\"", "__pgbulk_ord");
        assert_eq!(
            sql,
            "WITH \"pgbulk_returned\" AS (INSERT ..) SELECT r.\"id\" FROM \"pgbulk_returned\" r \
             JOIN (SELECT \"tenant_id\", \"ref\", max(\"__pgbulk_ord\") AS \"__pgbulk_ord\" FROM \
             pg_temp.\"s\" GROUP BY \"tenant_id\", \"ref\") s ON r.\"__pgbulk_key_0\" = \
             s.\"tenant_id\" AND r.\"__pgbulk_key_1\" = s.\"ref\" ORDER BY s.\"__pgbulk_ord\""
        );
    }
}
