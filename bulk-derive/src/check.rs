//! Rules that span several attributes or fields, checked after parsing.

use crate::ast::{Container, Field};
use crate::ctxt::Ctxt;
use proc_macro2::TokenStream;
use quote::ToTokens;
use std::collections::HashMap;

/// The most columns a table can have (the server's `MaxHeapAttributeNumber`).
const MAX_COLUMNS: usize = 1600;

/// The longest identifier PostgreSQL keeps, in bytes (`NAMEDATALEN - 1`); longer ones are
/// truncated, so a longer name would never match the column the server reports.
const MAX_IDENTIFIER: usize = 63;

/// `name` cut to what PostgreSQL keeps of it: at most 63 bytes, at a character boundary.
fn truncated(name: &str) -> &str {
    let mut end = MAX_IDENTIFIER.min(name.len());
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// Records every rule the container breaks.
pub(crate) fn check(cx: &Ctxt, cont: &Container<'_>) {
    check_table(cx, cont);
    for field in &cont.fields {
        check_skip(cx, field);
        check_rename(cx, field);
    }
    check_columns(cx, cont);
}

/// `#[copy(table = "..")]` names a table: not empty, no empty part around a `.`, no NUL.
fn check_table(cx: &Ctxt, cont: &Container<'_>) {
    let Some(table) = &cont.attrs.table else {
        return;
    };
    let name = table.value.value();
    if name.is_empty() {
        cx.error_spanned_by(
            &table.value,
            "table name cannot be empty\n\
             help: the correct format looks like `#[copy(table = \"schema.table\")]`",
        );
    } else if name.split('.').any(str::is_empty) {
        cx.error_spanned_by(
            &table.value,
            format!(
                "table name `{name}` has an empty part\n\
                 help: the correct format looks like `#[copy(table = \"schema.table\")]`"
            ),
        );
    } else if name.contains('\0') {
        cx.error_spanned_by(&table.value, "table name cannot contain a NUL character");
    } else if let Some(part) = name.split('.').find(|p| p.len() > MAX_IDENTIFIER) {
        cx.error_spanned_by(
            &table.value,
            format!(
                "`{part}` is {} bytes long, but PostgreSQL truncates names to {MAX_IDENTIFIER} \
                 bytes: it would be `{}`\nhelp: use the name as PostgreSQL stores it",
                part.len(),
                truncated(part),
            ),
        );
    }
}

/// A skipped field is not a column, so `rename` and `key` on it mean nothing.
fn check_skip(cx: &Ctxt, field: &Field<'_>) {
    if field.attrs.skip.is_none() {
        return;
    }
    if let Some(rename) = &field.attrs.rename {
        cx.error_spanned_by(
            &rename.path,
            "`#[copy(skip)]` cannot be combined with `#[copy(rename = \"..\")]`: \
             a skipped field is not a column",
        );
    }
    if let Some(key) = &field.attrs.key {
        cx.error_spanned_by(
            &key.path,
            "`#[copy(skip)]` cannot be combined with `#[copy(key)]`: \
             a skipped field is not a column",
        );
    }
    if let Some(to_sql) = &field.attrs.to_sql {
        cx.error_spanned_by(
            &to_sql.path,
            "`#[copy(skip)]` cannot be combined with `#[copy(to_sql)]`: \
             a skipped field is not a column",
        );
    }
}

/// `#[copy(rename = "..")]` names a column: not empty, no NUL.
fn check_rename(cx: &Ctxt, field: &Field<'_>) {
    let Some(rename) = &field.attrs.rename else {
        return;
    };
    let name = rename.value.value();
    if name.is_empty() {
        cx.error_spanned_by(
            &rename.value,
            "column name cannot be empty\n\
             help: the correct format looks like `#[copy(rename = \"name\")]`",
        );
    } else if name.contains('\0') {
        cx.error_spanned_by(&rename.value, "column name cannot contain a NUL character");
    }
}

/// At least one and at most 1600 columns, each named once.
fn check_columns(cx: &Ctxt, cont: &Container<'_>) {
    let mut seen: HashMap<String, &Field<'_>> = HashMap::new();
    let mut count = 0;
    for field in cont.copied_fields() {
        count += 1;
        let column = field.column();
        if column.is_empty() {
            continue; // reported by `check_rename`
        }
        if column.len() > MAX_IDENTIFIER {
            cx.error_spanned_by(
                column_tokens(field),
                format!(
                    "column name `{column}` is {} bytes long, but PostgreSQL truncates names to \
                     {MAX_IDENTIFIER} bytes: the column would be `{}`\n\
                     help: name the column as PostgreSQL stores it with \
                     `#[copy(rename = \"..\")]`",
                    column.len(),
                    truncated(&column),
                ),
            );
        }
        if let Some(first) = seen.get(&column) {
            cx.error_spanned_by(
                column_tokens(field),
                format!(
                    "duplicate column `{column}`: fields `{}` and `{}` both map to it\n\
                     help: give one of them another column with `#[copy(rename = \"..\")]`, \
                     or leave one out with `#[copy(skip)]`",
                    first.name(),
                    field.name(),
                ),
            );
        } else {
            seen.insert(column, field);
        }
    }

    if count == 0 {
        cx.error_spanned_by(
            cont.ident,
            "`CopyRow` needs at least one column, but this struct has none\n\
             help: every field that is not `#[copy(skip)]` is a column",
        );
    } else if count > MAX_COLUMNS {
        cx.error_spanned_by(
            cont.ident,
            format!(
                "`CopyRow` struct has {count} columns, more than PostgreSQL's limit of \
                 {MAX_COLUMNS}\nhelp: leave fields out with `#[copy(skip)]`"
            ),
        );
    }
}

/// Where a field's column name is written: its `rename` literal, or else its name.
fn column_tokens(field: &Field<'_>) -> TokenStream {
    match &field.attrs.rename {
        Some(rename) => rename.value.to_token_stream(),
        None => field.ident.to_token_stream(),
    }
}
