//! SQL text: quoting, and the statements of the staged operations. No I/O.

pub(crate) mod citus;
pub(crate) mod ident;
pub(crate) mod params;
pub(crate) mod upsert;

/// `"a", "b", ..`: the quoted names, comma-separated.
pub(crate) fn column_list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    names
        .into_iter()
        .map(ident::quote)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `COPY table (columns) FROM STDIN (FORMAT binary[, FREEZE])` for the (quoted) `table`.
pub(crate) fn copy_in<'a>(
    table: &str,
    columns: impl IntoIterator<Item = &'a str>,
    freeze: bool,
) -> String {
    let freeze = if freeze { ", FREEZE" } else { "" };
    format!(
        "COPY {table} ({}) FROM STDIN (FORMAT binary{freeze})",
        column_list(columns)
    )
}

/// The rows of a batch bound as parameters, one array per column of `T` (`$1` .. `$n`, in
/// `T`'s column order), as a relation the merge reads in place of a staging table:
/// `unnest($1, .., $n) AS "pgbulk_rows"(<T's columns>)` — rows in input order.
pub(crate) fn bound_rows<T: crate::row::CopyRow + ?Sized>() -> String {
    bound_rows_numbered::<T>(None)
}

/// [`bound_rows`], with `ordinal` (a quoted column name) numbering the rows from 1 in input
/// order (`WITH ORDINALITY`) when given.
pub(crate) fn bound_rows_numbered<T: crate::row::CopyRow + ?Sized>(
    ordinal: Option<&str>,
) -> String {
    let params = (1..=T::__PGBULK_COLUMNS.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let columns = column_list(T::__PGBULK_COLUMNS.iter().map(|c| c.name));
    match ordinal {
        Some(ord) => {
            format!("unnest({params}) WITH ORDINALITY AS \"pgbulk_rows\"({columns}, {ord})")
        }
        None => format!("unnest({params}) AS \"pgbulk_rows\"({columns})"),
    }
}

/// `INSERT INTO table (<T's columns>) OVERRIDING SYSTEM VALUE SELECT * FROM` [`bound_rows`]: a
/// batch bound as arrays, inserted as a COPY would write it (a COPY writes the values given for
/// identity columns, `GENERATED ALWAYS` ones included).
pub(crate) fn insert_bound<T: crate::row::CopyRow + ?Sized>(table: &str) -> String {
    format!(
        "INSERT INTO {table} ({}) OVERRIDING SYSTEM VALUE SELECT * FROM {}",
        column_list(T::__PGBULK_COLUMNS.iter().map(|c| c.name)),
        bound_rows::<T>()
    )
}
