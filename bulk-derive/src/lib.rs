//! `#[derive(CopyRow)]` for pgbulk.
use proc_macro::TokenStream;

/// Derives `CopyRow` (and `FromCopyRow`).
#[proc_macro_derive(CopyRow, attributes(copy))]
pub fn derive_copy_row(_input: TokenStream) -> TokenStream {
    TokenStream::new()
}
