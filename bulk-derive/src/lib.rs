//! `#[derive(CopyRow)]` for [pgbulk](https://docs.rs/pgbulk): a binary `COPY` encoder and
//! decoder for a struct, generated field by field.
//!
//! Use it through the `pgbulk` crate, which re-exports the macro next to the traits it
//! implements.

#![forbid(unsafe_code)]

mod ast;
mod attr;
mod case;
mod check;
mod ctxt;
mod expand;

use proc_macro::TokenStream;

/// Derives `CopyRow` and, for structs without borrowed fields, `FromCopyRow`.
///
/// Every named field is a column of the target table, in struct order. The field's type must
/// implement `Encode` (for `copy_in`) and `Decode` (for `copy_out`).
///
/// # Attributes
///
/// On the struct:
///
/// - `#[copy(table = "schema.table")]`: the target table, as written (unquoted, possibly
///   schema-qualified). Default: the struct name in snake case (`UserAccount` -> `user_account`).
/// - `#[copy(rename_all = "camelCase")]`: every column is named from its field by a serde case
///   rule: `lowercase`, `UPPERCASE`, `PascalCase`, `camelCase`, `snake_case`,
///   `SCREAMING_SNAKE_CASE`, `kebab-case`, `SCREAMING-KEBAB-CASE`. A field's `rename` wins.
/// - `#[copy(crate = "path")]`: where the runtime is, for code that depends on `bulk_core`
///   directly or re-exports pgbulk. Default: `::pgbulk`.
///
/// On a field:
///
/// - `#[copy(rename = "col")]`: the column the field maps to. Default: the field's name.
/// - `#[copy(key)]`: the column is part of the conflict key of `upsert_via_staging`.
/// - `#[copy(skip)]`: the field is not a column. `copy_out` fills it with
///   `Default::default()`.
/// - `#[copy(to_sql)]`: written and read through the type's postgres-types `ToSql` /
///   `FromSql` impls.
/// - `#[copy(json)]`: any `Serialize + DeserializeOwned` type, as `json` or `jsonb`. An
///   `Option`'s `None` is written as JSON `null`; SQL NULL reads as JSON `null` would (`None`
///   for an `Option`, an error otherwise).
/// - `#[copy(try_from = "T")]`: written as `T::try_from(field.clone())` with `T`'s codec, read
///   as `T` and converted with `TryFrom`. A failed conversion is an error naming row and field.
/// - `#[copy(default)]`: when a `copy_out_query` does not return the column, the field is
///   `Default::default()` instead of a mismatch. Written as usual.
/// - `#[copy(flatten)]`: the field's type derives `CopyRow` too, and its columns (with their
///   own `rename`, `key`, `default`) are this struct's, in place of the field. Not in a
///   struct with generic parameters: the columns are put together at compile time.
///
/// At most one of `to_sql`, `json`, `try_from` and `flatten` per field.
///
/// Reading rows back: `FromCopyRow` (owned rows, for `copy_out` and every read that returns
/// rows) is implemented when the struct has no lifetime parameters, and `FromCopyRowRef`
/// (rows handed to a closure by `copy_out_each`) for those and for structs with exactly one
/// lifetime parameter `'r`, whose `&'r str`, `&'r [u8]` and `Option`s of them borrow from the
/// received data. A struct with more lifetime parameters is written only.
///
/// # Example
///
/// ```
/// use pgbulk::{CopyRow, FromCopyRow};
///
/// #[derive(CopyRow)]
/// #[copy(table = "app.users")]
/// struct User {
///     #[copy(key)]
///     id: i64,
///     #[copy(rename = "display_name")]
///     name: String,
///     #[copy(skip)]
///     cached_score: Option<u32>,
/// }
///
/// assert_eq!(pgbulk::table_of::<User>(), "app.users");
/// let columns: Vec<_> = pgbulk::columns_of::<User>().iter().map(|c| (c.name(), c.is_key())).collect();
/// assert_eq!(columns, [("id", true), ("display_name", false)]);
/// ```
#[proc_macro_derive(CopyRow, attributes(copy))]
pub fn derive_copy_row(input: TokenStream) -> TokenStream {
    expand::derive(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
