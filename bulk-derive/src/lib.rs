//! `#[derive(CopyRow)]` for [pgbulk](https://docs.rs/pgbulk): a binary `COPY` encoder and
//! decoder for a struct, generated field by field.
//!
//! Use it through the `pgbulk` crate, which re-exports the macro next to the traits it
//! implements.

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
/// - `#[copy(crate = "path")]`: where the runtime is, for code that depends on `bulk_core`
///   directly or re-exports pgbulk. Default: `::pgbulk`.
///
/// On a field:
///
/// - `#[copy(rename = "col")]`: the column the field maps to. Default: the field's name.
/// - `#[copy(key)]`: the column is part of the conflict key of `upsert_via_staging`.
/// - `#[copy(skip)]`: the field is not a column. `copy_out` fills it with
///   `Default::default()`.
///
/// `FromCopyRow` (reading rows back) is implemented only when the struct has no lifetime
/// parameters and no copied field is a reference: decoding builds an owned value.
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
/// assert_eq!(User::TABLE, "app.users");
/// let columns: Vec<_> = User::COLUMNS.iter().map(|c| (c.name, c.key)).collect();
/// assert_eq!(columns, [("id", true), ("display_name", false)]);
/// ```
#[proc_macro_derive(CopyRow, attributes(copy))]
pub fn derive_copy_row(input: TokenStream) -> TokenStream {
    expand::derive(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
