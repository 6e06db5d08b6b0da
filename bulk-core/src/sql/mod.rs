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
