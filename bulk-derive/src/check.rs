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
        check_via(cx, field);
        check_flatten(cx, cont, field);
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

/// The attributes of a field that say something about its column, as written, each with its
/// form for messages (`rename = \"..\"`).
fn column_attrs<'f>(field: &'f Field<'_>) -> Vec<(&'f syn::Path, &'static str)> {
    let attrs = &field.attrs;
    [
        attrs.rename.as_ref().map(|a| (&a.path, "rename = \"..\"")),
        attrs.key.as_ref().map(|a| (&a.path, "key")),
        attrs.to_sql.as_ref().map(|a| (&a.path, "to_sql")),
        attrs.json.as_ref().map(|a| (&a.path, "json")),
        attrs.default.as_ref().map(|a| (&a.path, "default")),
        attrs.flatten.as_ref().map(|a| (&a.path, "flatten")),
        attrs
            .try_from
            .as_ref()
            .map(|a| (&a.path, "try_from = \"..\"")),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// A skipped field is not a column, so the attributes that describe a column mean nothing on
/// it.
fn check_skip(cx: &Ctxt, field: &Field<'_>) {
    if field.attrs.skip.is_none() {
        return;
    }
    for (path, form) in column_attrs(field) {
        cx.error_spanned_by(
            path,
            format!(
                "`#[copy(skip)]` cannot be combined with `#[copy({form})]`: \
                 a skipped field is not a column"
            ),
        );
    }
}

/// A field is written one way: at most one of `to_sql`, `json`, `try_from` and `flatten`.
fn check_via(cx: &Ctxt, field: &Field<'_>) {
    let ways: Vec<_> = column_attrs(field)
        .into_iter()
        .filter(|(_, form)| {
            matches!(*form, "to_sql" | "json" | "flatten") || form.starts_with("try_from")
        })
        .collect();
    if let [(_, first), rest @ ..] = ways.as_slice() {
        for (path, form) in rest {
            cx.error_spanned_by(
                path,
                format!(
                    "`#[copy({form})]` cannot be combined with `#[copy({first})]`: \
                     a field is written and read one way"
                ),
            );
        }
    }
}

/// A flattened field stands for its struct's columns: it has no column of its own to rename,
/// key or default (its struct's fields can be), and the columns of a generic struct cannot be
/// spliced together at compile time.
fn check_flatten(cx: &Ctxt, cont: &Container<'_>, field: &Field<'_>) {
    let Some(flatten) = &field.attrs.flatten else {
        return;
    };
    for (path, form) in column_attrs(field) {
        if matches!(form, "rename = \"..\"" | "key" | "default") {
            cx.error_spanned_by(
                path,
                format!(
                    "`#[copy(flatten)]` cannot be combined with `#[copy({form})]`: \
                     a flattened field is not one column\n\
                     help: put `#[copy({form})]` on the fields of the flattened struct"
                ),
            );
        }
    }
    if !cont.generics.params.is_empty() {
        cx.error_spanned_by(
            &flatten.path,
            "`#[copy(flatten)]` cannot be used in a struct with generic parameters: \
             its columns are put together at compile time",
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
        if field.is_flatten() {
            // Its struct's columns; a name it shares with another is reported by the plan.
            continue;
        }
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
