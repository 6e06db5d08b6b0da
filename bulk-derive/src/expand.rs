//! Code generation: the `CopyRow` impl and, for owned structs, the `FromCopyRow` impl.

use crate::ast::{Container, Field, Via};
use crate::check;
use crate::ctxt::Ctxt;
use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned, ToTokens};
use std::collections::HashSet;
use syn::spanned::Spanned;
use syn::{DeriveInput, Ident};

/// Expands `#[derive(CopyRow)]` on `input`, or returns every error found in it, combined.
pub(crate) fn derive(input: TokenStream) -> syn::Result<TokenStream> {
    let input: DeriveInput = syn::parse2(input)?;
    let cx = Ctxt::new();
    let cont = Container::from_ast(&cx, &input);
    if let Some(cont) = &cont {
        check::check(&cx, cont);
    }
    cx.check()?;
    let Some(cont) = cont else {
        // `from_ast` records an error whenever it gives `None`, so `check` returned it above.
        return Err(syn::Error::new(
            Span::call_site(),
            "`CopyRow` can only be derived for structs with named fields",
        ));
    };
    Ok(expand(&cont))
}

/// Generates the impls for a container that passed every check.
fn expand(cont: &Container<'_>) -> TokenStream {
    let krate = cont.crate_path();
    let private = quote!(#krate::__private);
    let copy_row = impl_copy_row(cont, &private);
    let from_copy_row = match reading(cont) {
        Some(reading) => impl_from_copy_row(cont, &private, reading),
        None => TokenStream::new(),
    };
    quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals, unused_qualifications)]
        const _: () = {
            #copy_row
            #from_copy_row
        };
    }
}

/// The functions that write and read one (non-flattened) field, spanned on its type so a
/// missing trait impl is reported at the field. Each path starts with a `<` spanned on the
/// field's type (`<JsonField<T>>::decode`), as the compiler reports an unmet bound of a
/// function at the path's first token.
struct Codec {
    /// `fn(&Type) -> bool`: whether the value can be written into a column of that type.
    accepts_encode: TokenStream,
    /// `fn(&FieldTy, &Type, &mut BytesMut) -> Result<(), EncodeError>`
    encode: TokenStream,
    /// `fn(&Type) -> bool`: whether a column of that type can be read into the field.
    accepts_decode: TokenStream,
    /// `fn(&Type, Option<&[u8]>) -> Result<FieldTy, DecodeError>`
    decode: TokenStream,
}

/// The codec functions of a field, by how it is written and read.
fn codec(field: &Field<'_>, private: &TokenStream) -> Codec {
    let ty = field.ty;
    let span = ty.span();
    let (encode_path, decode_path) = match field.via() {
        Via::Native | Via::Flatten => (
            quote_spanned!(span=> <#ty as #private::Encode>),
            quote_spanned!(span=> <#ty as #private::Decode>),
        ),
        Via::ToSql => {
            let path = quote_spanned!(span=> <#private::ToSqlField<#ty>>);
            return Codec {
                accepts_encode: quote_spanned!(span=> #path::accepts_encode),
                encode: quote_spanned!(span=> #path::encode_field),
                accepts_decode: quote_spanned!(span=> #path::accepts_decode),
                decode: quote_spanned!(span=> #path::decode),
            };
        }
        Via::Json => {
            let path = quote_spanned!(span=> <#private::JsonField<#ty>>);
            (path.clone(), path)
        }
        Via::TryFrom(target) => {
            let path = quote_spanned!(span=> <#private::TryFromField<#ty, #target>>);
            return Codec {
                accepts_encode: quote_spanned!(span=> #path::accepts_encode),
                encode: quote_spanned!(span=> #path::encode_field),
                accepts_decode: quote_spanned!(span=> #path::accepts_decode),
                decode: quote_spanned!(span=> #path::decode),
            };
        }
    };
    Codec {
        accepts_encode: quote_spanned!(span=> #encode_path::accepts),
        encode: quote_spanned!(span=> #encode_path::encode_field),
        accepts_decode: quote_spanned!(span=> #decode_path::accepts),
        decode: quote_spanned!(span=> #decode_path::decode),
    }
}

/// Where each copied field's columns start in `COLUMNS`, as an expression: a literal, or a
/// sum with the column counts of the `#[copy(flatten)]` fields before it. The last entry is
/// the total.
fn positions(copied: &[&Field<'_>], private: &TokenStream) -> Vec<TokenStream> {
    let mut fixed = 0_usize;
    let mut flattened: Vec<&syn::Type> = Vec::new();
    let mut out = Vec::with_capacity(copied.len() + 1);
    let at = |fixed: usize, flattened: &[&syn::Type]| {
        if flattened.is_empty() {
            quote!(#fixed)
        } else {
            quote!((#fixed #(+ <#flattened as #private::CopyRow>::__PGBULK_COLUMNS.len())*))
        }
    };
    for field in copied {
        out.push(at(fixed, &flattened));
        if field.is_flatten() {
            flattened.push(field.ty);
        } else {
            fixed += 1;
        }
    }
    out.push(at(fixed, &flattened));
    out
}

/// An array of per-column entries as a `&'static [T]`: the entries themselves, or, with
/// `#[copy(flatten)]` fields, `concat` of the parts (each field's entry, or its struct's list).
fn spliced(
    parts: Vec<(TokenStream, bool)>,
    total: &TokenStream,
    concat: &TokenStream,
) -> TokenStream {
    if parts.iter().any(|(_, flattened)| *flattened) {
        let parts = parts.into_iter().map(
            |(part, flattened)| {
                if flattened {
                    part
                } else {
                    quote!(&[#part])
                }
            },
        );
        quote!(&#concat::<{ #total }>(&[#(#parts),*]))
    } else {
        let parts = parts.into_iter().map(|(part, _)| part);
        quote!(&[#(#parts),*])
    }
}

fn impl_copy_row(cont: &Container<'_>, private: &TokenStream) -> TokenStream {
    let ident = cont.ident;
    let (impl_generics, ty_generics, _) = cont.generics.split_for_impl();
    let where_clause = where_clause(
        cont,
        cont.copied_fields()
            .filter(|field| mentions_params(cont, field))
            .flat_map(|field| encode_predicates(field, private)),
    );
    let table = cont.table();
    let copied: Vec<&Field<'_>> = cont.copied_fields().collect();
    let at = positions(&copied, private);

    let columns = copied
        .iter()
        .map(|field| {
            if field.is_flatten() {
                let ty = field.ty;
                return (quote!(<#ty as #private::CopyRow>::__PGBULK_COLUMNS), true);
            }
            let name = field.column();
            let field_name = field.name();
            let rust_type = rust_type(field);
            let key = field.is_key();
            let default = field.is_default();
            let accepts = codec(field, private).accepts_encode;
            let column = quote! {
                #private::Column::__new(
                    #name,
                    #field_name,
                    #rust_type,
                    #key,
                    #default,
                    #accepts,
                )
            };
            (column, false)
        })
        .collect();
    let columns = spliced(
        columns,
        &at[copied.len()],
        &quote!(#private::concat_columns),
    );

    let encodes = copied.iter().zip(&at).map(|(field, i)| {
        let ty = field.ty;
        let member = field.ident;
        if field.is_flatten() {
            let copy_row = quote_spanned!(ty.span()=> <#ty as #private::CopyRow>);
            return quote! {
                if let ::core::result::Result::Err((__j, __e)) = #copy_row::encode_row(
                    &self.#member,
                    &__types[#i..#i + #copy_row::__PGBULK_COLUMNS.len()],
                    __buf,
                ) {
                    return ::core::result::Result::Err((#i + __j, __e));
                }
            };
        }
        let encode = codec(field, private).encode;
        // The whole call on the field, so an unmet bound of the codec function is reported there.
        let call = quote_spanned!(ty.span()=> #encode(&self.#member, &__types[#i], __buf));
        quote! {
            if let ::core::result::Result::Err(__e) = #call {
                return ::core::result::Result::Err((#i, __e));
            }
        }
    });

    quote! {
        #[automatically_derived]
        impl #impl_generics #private::CopyRow for #ident #ty_generics #where_clause {
            const __PGBULK_TABLE: &'static ::core::primitive::str = #table;

            const __PGBULK_COLUMNS: &'static [#private::Column] = #columns;

            #[inline]
            fn encode_row(
                &self,
                __types: &[#private::Type],
                __buf: &mut #private::BytesMut,
            ) -> #private::Result<(), (::core::primitive::usize, #private::EncodeError)> {
                #(#encodes)*
                ::core::result::Result::Ok(())
            }
        }
    }
}

/// How the struct is read back.
#[derive(Clone, Copy)]
enum Reading<'a> {
    /// An owned struct: `FromCopyRow`, and `FromCopyRowRef` with `Row<'r> = Self`.
    Owned,
    /// A struct with this one lifetime parameter: `FromCopyRowRef` only, its `&'r str` and
    /// `&'r [u8]` fields borrowed from the data (`Row<'x>` is the struct at `'x`).
    Borrowed(&'a Ident),
}

/// The lifetime `'__r` a borrowed row is read at.
const ROW_LIFETIME: &str = "__r";

fn impl_from_copy_row(
    cont: &Container<'_>,
    private: &TokenStream,
    reading: Reading<'_>,
) -> TokenStream {
    let ident = cont.ident;
    let (impl_generics, ty_generics, _) = cont.generics.split_for_impl();
    // `FromCopyRow: CopyRow`, so the `CopyRow` impl's bounds come first. The rest are lenient:
    // a struct whose field type can be encoded but not decoded still derives, and only
    // `copy_out` of it is an error, one that names the field.
    let bounds = cont
        .copied_fields()
        .filter(|field| mentions_params(cont, field))
        .flat_map(|field| encode_predicates(field, private))
        .chain(cont.fields.iter().flat_map(|field| {
            match reading {
                Reading::Owned => decode_predicates(field, private)
                    .into_iter()
                    .map(|predicate| quote!(for<'__de> #predicate))
                    .collect::<Vec<_>>(),
                Reading::Borrowed(lt) => borrowed_predicates(field, private, lt),
            }
        }));
    let where_clause = where_clause(cont, bounds);
    let copied: Vec<&Field<'_>> = cont.copied_fields().collect();
    let at = positions(&copied, private);

    let accepts = copied
        .iter()
        .map(|field| {
            let ty = field.ty;
            if field.is_flatten() {
                (
                    quote!(<#ty as #private::FromCopyRowRef>::__PGBULK_ACCEPTS_DECODE),
                    true,
                )
            } else if let (Reading::Borrowed(lt), Via::Native) = (reading, field.via()) {
                let lt = syn::Lifetime::new(&format!("'{lt}"), Span::call_site());
                let path = quote_spanned!(ty.span()=> <#ty as #private::DecodeRef<#lt>>);
                (quote_spanned!(ty.span()=> #path::accepts), false)
            } else {
                (codec(field, private).accepts_decode, false)
            }
        })
        .collect();
    let accepts = spliced(
        accepts,
        &at[copied.len()],
        &quote!(#private::concat_accepts),
    );

    let inits = decode_inits(cont, private, reading, &at);

    let result = quote!(#private::Result<Self, (::core::primitive::usize, #private::DecodeError)>);
    let accepts_ty = quote!(&'static [fn(&#private::Type) -> ::core::primitive::bool]);
    match reading {
        Reading::Owned => quote! {
            #[automatically_derived]
            impl #impl_generics #private::FromCopyRow for #ident #ty_generics #where_clause {
                #[inline]
                fn decode_row<'__a, __F: #private::Fields<'__a>>(
                    __types: &[#private::Type],
                    __row: &mut __F,
                ) -> #result {
                    ::core::result::Result::Ok(Self { #(#inits),* })
                }
            }

            #[automatically_derived]
            impl #impl_generics #private::FromCopyRowRef for #ident #ty_generics #where_clause {
                type Row<'__r> = Self;

                const __PGBULK_ACCEPTS_DECODE: #accepts_ty = #accepts;

                #[inline]
                fn decode_row_ref<'__r, __F: #private::Fields<'__r>>(
                    __types: &[#private::Type],
                    __row: &mut __F,
                ) -> #result {
                    <Self as #private::FromCopyRow>::decode_row(__types, __row)
                }
            }
        },
        Reading::Borrowed(lt) => {
            let row = relifetime(quote!(#ident #ty_generics), lt, ROW_LIFETIME);
            quote! {
                #[automatically_derived]
                impl #impl_generics #private::FromCopyRowRef for #ident #ty_generics #where_clause {
                    type Row<'__r> = #row;

                    const __PGBULK_ACCEPTS_DECODE: #accepts_ty = #accepts;

                    #[inline]
                    fn decode_row_ref<'__r, __F: #private::Fields<'__r>>(
                        __types: &[#private::Type],
                        __row: &mut __F,
                    ) -> #private::Result<
                        Self::Row<'__r>,
                        (::core::primitive::usize, #private::DecodeError),
                    > {
                        ::core::result::Result::Ok(#ident { #(#inits),* })
                    }
                }
            }
        }
    }
}

/// The field initializers of the decoding `Self { .. }`: each copied field read from the
/// `__row` source in order (a borrowed row's own-codec fields at `'__r`), skipped fields
/// defaulted.
fn decode_inits(
    cont: &Container<'_>,
    private: &TokenStream,
    reading: Reading<'_>,
    at: &[TokenStream],
) -> Vec<TokenStream> {
    // A type as the decoding code names it: in a borrowed row, at the lifetime it is read at.
    let at_row = |ty: &syn::Type| match reading {
        Reading::Owned => ty.to_token_stream(),
        Reading::Borrowed(lt) => relifetime(ty.to_token_stream(), lt, ROW_LIFETIME),
    };
    let mut copied_at = at.iter();
    cont.fields.iter().map(|field| {
        let ty = field.ty;
        let ty_row = at_row(ty);
        let member = field.ident;
        let i = if field.is_copied() {
            copied_at.next()
        } else {
            None
        };
        let Some(i) = i else {
            let default = quote_spanned!(ty.span()=> <#ty_row as #private::Default>::default);
            return quote!(#member: #default());
        };
        let value = if field.is_flatten() {
            let from_copy_row = quote_spanned!(ty.span()=> <#ty as #private::FromCopyRow>);
            let len = quote!(<#ty as #private::CopyRow>::__PGBULK_COLUMNS.len());
            quote! {
                match #from_copy_row::decode_row(&__types[#i..#i + #len], __row) {
                    ::core::result::Result::Ok(__value) => __value,
                    ::core::result::Result::Err((__j, __e)) => {
                        return ::core::result::Result::Err((#i + __j, __e))
                    }
                }
            }
        } else {
            let decode = match (reading, field.via()) {
                (Reading::Borrowed(_), Via::Native) => {
                    let lt = syn::Lifetime::new(&format!("'{ROW_LIFETIME}"), Span::call_site());
                    quote_spanned!(ty.span()=> <#ty_row as #private::DecodeRef<#lt>>::decode_ref)
                }
                _ => codec(field, private).decode,
            };
            let call = quote_spanned!(ty.span()=>
                #decode(&__types[#i], #private::Fields::next(__row))
            );
            quote! {
                match #call {
                    ::core::result::Result::Ok(__value) => __value,
                    ::core::result::Result::Err(__e) => return ::core::result::Result::Err((#i, __e)),
                }
            }
        };
        if field.is_default() {
            let default = quote_spanned!(ty.span()=> <#ty_row as #private::Default>::default);
            quote! {
                #member: if #private::Fields::absent(__row) { #default() } else { #value }
            }
        } else {
            quote!(#member: #value)
        }
    }).collect()
}

/// What a borrowed row's field types need for `copy_out_each`, each under a `for<'__de>`
/// binder with the struct's lifetime `lt` as `'__de` (so the impl exists exactly when every
/// field can be read at any lifetime): `DecodeRef` for a field read by its own codec, as
/// [`decode_predicates`] otherwise.
fn borrowed_predicates(field: &Field<'_>, private: &TokenStream, lt: &Ident) -> Vec<TokenStream> {
    let own = match (field.is_copied(), field.via()) {
        (true, Via::Native) => {
            let ty = relifetime(field.ty.to_token_stream(), lt, "__de");
            let mut own = vec![quote_spanned!(field.ty.span()=> #ty: #private::DecodeRef<'__de>)];
            if field.is_default() {
                own.push(quote_spanned!(field.ty.span()=> #ty: #private::Default));
            }
            own
        }
        _ => decode_predicates(field, private),
    };
    own.into_iter()
        .map(|predicate| relifetime(quote!(for<'__de> #predicate), lt, "__de"))
        .collect()
}

/// `tokens` with every use of the lifetime `'from` written as `'to`.
fn relifetime(tokens: TokenStream, from: &Ident, to: &str) -> TokenStream {
    let mut after_quote = false;
    tokens
        .into_iter()
        .map(|token| {
            let quoted = std::mem::take(&mut after_quote);
            match token {
                TokenTree::Group(group) => {
                    let mut out = proc_macro2::Group::new(
                        group.delimiter(),
                        relifetime(group.stream(), from, to),
                    );
                    out.set_span(group.span());
                    TokenTree::Group(out)
                }
                TokenTree::Punct(punct) if punct.as_char() == '\'' => {
                    after_quote = true;
                    TokenTree::Punct(punct)
                }
                TokenTree::Ident(name) if quoted && name == *from => {
                    TokenTree::Ident(Ident::new(to, name.span()))
                }
                other => other,
            }
        })
        .collect()
}

/// The field's type for messages: as written, and the type it goes through where that is not
/// the field's own codec (`u64 (as i64)`, `Settings (as json)`).
fn rust_type(field: &Field<'_>) -> String {
    let ty = type_string(field.ty);
    match field.via() {
        Via::Native | Via::Flatten => ty,
        Via::ToSql => format!("{ty} (as ToSql)"),
        Via::Json => format!("{ty} (as json)"),
        Via::TryFrom(target) => format!("{ty} (as {})", type_string(target)),
    }
}

/// What a copied field's types need for `copy_in`, one predicate each, spanned on the field's
/// type: pgbulk's `Encode`, postgres-types' `ToSql` (`to_sql`), serde's `Serialize` (`json`),
/// the conversion to the `try_from` type and its `Encode`, or `CopyRow` (`flatten`).
fn encode_predicates(field: &Field<'_>, private: &TokenStream) -> Vec<TokenStream> {
    let ty = field.ty;
    match field.via() {
        Via::Native => vec![predicate(ty, &quote!(#private::Encode))],
        Via::ToSql => vec![predicate(ty, &quote!(#private::ToSql))],
        Via::Json => vec![predicate(ty, &quote!(#private::Serialize))],
        Via::Flatten => vec![predicate(ty, &quote!(#private::CopyRow))],
        Via::TryFrom(target) => vec![
            predicate(ty, &quote!(#private::Clone)),
            predicate(target, &quote!(#private::Encode + #private::TryFrom<#ty>)),
            predicate(
                &syn::parse_quote!(<#target as #private::TryFrom<#ty>>::Error),
                &quote!(#private::Into<#private::BoxError>),
            ),
        ],
    }
}

/// What a field's types need for `copy_out`: as [`encode_predicates`], the reading side
/// (`Decode`, `FromSqlOwned`, `DeserializeOwned`, `FromCopyRow`), plus `Default` for a field
/// that is skipped or `#[copy(default)]`.
fn decode_predicates(field: &Field<'_>, private: &TokenStream) -> Vec<TokenStream> {
    let ty = field.ty;
    let default = predicate(ty, &quote!(#private::Default));
    if !field.is_copied() {
        return vec![default];
    }
    let mut predicates = match field.via() {
        Via::Native => vec![predicate(ty, &quote!(#private::Decode))],
        Via::ToSql => vec![predicate(ty, &quote!(#private::FromSqlOwned))],
        Via::Json => vec![predicate(ty, &quote!(#private::DeserializeOwned))],
        Via::Flatten => vec![predicate(ty, &quote!(#private::FromCopyRow))],
        Via::TryFrom(target) => vec![
            predicate(target, &quote!(#private::Decode)),
            predicate(ty, &quote!(#private::TryFrom<#target>)),
            predicate(
                &syn::parse_quote!(<#ty as #private::TryFrom<#target>>::Error),
                &quote!(#private::Into<#private::BoxError>),
            ),
        ],
    };
    if field.is_default() {
        predicates.push(default);
    }
    predicates
}

/// `ty: bounds`, the `:` spanned on `ty` so an unmet bound is reported at the field. The bounds
/// keep the macro's span: lints about where clauses (`type_repetition_in_bounds`) then see
/// generated code and stay quiet.
fn predicate(ty: &syn::Type, bounds: &TokenStream) -> TokenStream {
    quote_spanned!(ty.span()=> #ty: #bounds)
}

/// How the struct can be read back: owned (no lifetime parameters), borrowed (exactly one),
/// or not at all (more).
fn reading<'a>(cont: &Container<'a>) -> Option<Reading<'a>> {
    let mut lifetimes = cont.generics.lifetimes();
    match (lifetimes.next(), lifetimes.next()) {
        (None, _) => Some(Reading::Owned),
        (Some(lt), None) => Some(Reading::Borrowed(&lt.lifetime.ident)),
        (Some(_), Some(_)) => None,
    }
}

/// The struct's own where clause plus `extra` predicates. An empty `where` is valid Rust.
fn where_clause(cont: &Container<'_>, extra: impl Iterator<Item = TokenStream>) -> TokenStream {
    let own = cont
        .generics
        .where_clause
        .iter()
        .flat_map(|clause| clause.predicates.iter());
    quote!(where #(#own,)* #(#extra,)*)
}

/// Whether the field's type (or the type it converts through) mentions a type parameter of
/// the struct: only then does the `CopyRow` impl carry its predicates. Other field types need
/// no bound: the trait is checked where the impl uses it, with the error on the field.
///
/// `FromCopyRow`'s predicates are all written under a `for<..>` binder instead: a bound on a
/// type without parameters (`Fails: Decode`) must hold where it is written, or the impl does
/// not compile; under the binder it is checked where the impl is used, so the impl exists
/// exactly when every field type has the trait (`&'static str` has no `Decode`: such a struct
/// is `CopyRow` only).
fn mentions_params(cont: &Container<'_>, field: &Field<'_>) -> bool {
    let params: HashSet<&Ident> = cont
        .generics
        .type_params()
        .map(|param| &param.ident)
        .collect();
    let mut tokens = field.ty.to_token_stream();
    if let Via::TryFrom(target) = field.via() {
        target.to_tokens(&mut tokens);
    }
    mentions(tokens, &params)
}

/// Whether `tokens` name one of `params`.
fn mentions(tokens: TokenStream, params: &HashSet<&Ident>) -> bool {
    tokens.into_iter().any(|token| match token {
        TokenTree::Ident(ident) => params.contains(&ident),
        TokenTree::Group(group) => mentions(group.stream(), params),
        TokenTree::Punct(_) | TokenTree::Literal(_) => false,
    })
}

/// The field's type as written, tidied for messages: `Option<String>`, `&'a str`,
/// `Vec<Option<i32>>`, `[u8; 16]`, `Box<dyn Fn(i32) -> i32 + Send>`.
///
/// `TokenStream::to_string` spaces every token (`Option < String >`), so the tokens are printed
/// here with the spacing rustfmt would use.
pub(crate) fn type_string(ty: &syn::Type) -> String {
    let mut out = String::new();
    print_tokens(ty.to_token_stream(), &mut out);
    out
}

fn print_tokens(tokens: TokenStream, out: &mut String) {
    for token in tokens {
        match token {
            TokenTree::Ident(ident) => {
                let word = ident.to_string();
                if ends_word(out) {
                    out.push(' ');
                }
                out.push_str(&word);
            }
            TokenTree::Literal(literal) => {
                if ends_word(out) {
                    out.push(' ');
                }
                out.push_str(&literal.to_string());
            }
            TokenTree::Punct(punct) => match punct.as_char() {
                ',' | ';' => {
                    out.push(punct.as_char());
                    out.push(' ');
                }
                '+' | '=' => {
                    push_spaced(out, punct.as_char());
                }
                '-' if punct.spacing() == proc_macro2::Spacing::Joint => {
                    // `->`: the `>` follows as its own token.
                    if !out.ends_with(' ') {
                        out.push(' ');
                    }
                    out.push('-');
                }
                '>' if out.ends_with('-') => out.push_str("> "),
                '\'' => {
                    // A lifetime's quote; its name follows as an ident.
                    if ends_word(out) {
                        out.push(' ');
                    }
                    out.push('\'');
                }
                c => out.push(c),
            },
            TokenTree::Group(group) => {
                let (open, close) = match group.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::Brace => ("{ ", " }"),
                    Delimiter::None => ("", ""),
                };
                if !open.is_empty() && spaced_before_group(out) {
                    out.push(' ');
                }
                out.push_str(open);
                print_tokens(group.stream(), out);
                while out.ends_with(' ') {
                    out.pop();
                }
                out.push_str(close);
            }
        }
    }
    while out.ends_with(' ') {
        out.pop();
    }
}

/// Whether the text so far ends in a word (an ident, a literal or a lifetime), so that another
/// word needs a space before it.
fn ends_word(out: &str) -> bool {
    out.chars()
        .last()
        .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '"')
}

/// Whether a `(` or `[` goes after a space: after a lifetime (`&'a [u8]`) or a keyword
/// (`&mut [u8]`, `dyn (Fn())`), but not after a name (`Fn(i32)`, `fn(i32)`).
fn spaced_before_group(out: &str) -> bool {
    let start = out
        .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    let word = &out[start..];
    let lifetime = !word.is_empty() && out[..start].ends_with('\'');
    lifetime || matches!(word, "mut" | "const" | "dyn" | "impl" | "as")
}

fn push_spaced(out: &mut String, c: char) {
    if !out.ends_with(' ') {
        out.push(' ');
    }
    out.push(c);
    out.push(' ');
}

#[cfg(test)]
mod tests {
    use super::{derive, type_string};
    use quote::quote;

    fn errors(input: proc_macro2::TokenStream) -> Vec<String> {
        match derive(input) {
            Ok(tokens) => panic!("expected errors, got {tokens}"),
            Err(err) => err.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn output_is_wrapped_and_qualified() {
        let out = derive(quote! {
            struct User { #[copy(key)] id: i64, #[copy(skip)] cache: u8 }
        })
        .unwrap()
        .to_string();
        assert!(out.starts_with("# [doc (hidden)]"), "{out}");
        assert!(out.contains("const _ : () ="), "{out}");
        assert!(
            out.contains(":: pgbulk :: __private :: CopyRow for User"),
            "{out}"
        );
        assert!(
            out.contains(":: pgbulk :: __private :: FromCopyRow for User"),
            "{out}"
        );
        assert!(
            out.contains("const __PGBULK_TABLE : & 'static :: core :: primitive :: str = \"user\"")
        );
        // The tuple's field count is the engine's framing, not the derive's.
        assert!(!out.contains("to_be_bytes"), "{out}");
        assert!(out.contains("cache : < u8 as :: pgbulk :: __private :: Default > :: default ()"));
    }

    #[test]
    fn flatten_splices_columns_and_offsets_indexes() {
        let out = derive(quote! {
            struct Outer { a: i64, #[copy(flatten)] inner: Inner, b: i32 }
        })
        .unwrap()
        .to_string();
        // COLUMNS and __PGBULK_ACCEPTS_DECODE are put together from the parts at compile time.
        assert!(out.contains("concat_columns :: < { (2usize + < Inner as :: pgbulk :: __private :: CopyRow > :: __PGBULK_COLUMNS . len ()) } >"), "{out}");
        assert!(
            out.contains(
                "< Inner as :: pgbulk :: __private :: FromCopyRowRef > :: __PGBULK_ACCEPTS_DECODE"
            ),
            "{out}"
        );
        // The field after the flattened one is at 1 + the inner struct's column count.
        assert!(out.contains("& __types [(1usize + < Inner as :: pgbulk :: __private :: CopyRow > :: __PGBULK_COLUMNS . len ())]"), "{out}");
        // Without `flatten`, the lists stay plain literals.
        let plain = derive(quote! { struct Plain { a: i64 } })
            .unwrap()
            .to_string();
        assert!(!plain.contains("concat_"), "{plain}");
    }

    #[test]
    fn default_fields_check_for_an_absent_column() {
        let out = derive(quote! {
            struct Row { id: i64, #[copy(default)] note: String }
        })
        .unwrap()
        .to_string();
        assert!(
            out.contains("\"note\" , \"String\" , false , true ,"),
            "{out}"
        );
        assert!(out.contains("Fields :: absent (__row)"), "{out}");
        assert!(
            out.contains("for < '__de > String : :: pgbulk :: __private :: Default"),
            "{out}"
        );
    }

    #[test]
    fn borrowing_struct_gets_only_the_borrowing_decode_impl() {
        let out = derive(quote! {
            #[copy(crate = "bulk_core")]
            struct Named<'a> { name: &'a str, id: i64 }
        })
        .unwrap()
        .to_string();
        assert!(
            out.contains("bulk_core :: __private :: CopyRow for Named < 'a >"),
            "{out}"
        );
        assert!(!out.contains("FromCopyRow for"), "{out}");
        assert!(
            out.contains("bulk_core :: __private :: FromCopyRowRef for Named < 'a >"),
            "{out}"
        );
        // The row at the lifetime it is read at, and each field read at it.
        assert!(out.contains("type Row < '__r > = Named < '__r >"), "{out}");
        assert!(
            out.contains(
                "< & '__r str as bulk_core :: __private :: DecodeRef < '__r >> :: decode_ref"
            ),
            "{out}"
        );
        // The impl exists only where every field reads at any lifetime.
        assert!(
            out.contains(
                "for < '__de > & '__de str : bulk_core :: __private :: DecodeRef < '__de >"
            ),
            "{out}"
        );
        // Two lifetimes: written only.
        let two = derive(quote! {
            struct Two<'a, 'b> { a: &'a str, b: &'b str }
        })
        .unwrap()
        .to_string();
        assert!(!two.contains("FromCopyRow"), "{two}");
    }

    #[test]
    fn generic_params_get_bounds() {
        let out = derive(quote! {
            struct Pair<T: Clone> where T: Copy { a: T, b: i32, #[copy(skip)] c: Vec<T> }
        })
        .unwrap()
        .to_string();
        assert!(out.contains("where T : Copy , T : :: pgbulk :: __private :: Encode , {"));
        assert!(out.contains("for < '__de > T : :: pgbulk :: __private :: Decode"));
        assert!(out.contains("for < '__de > Vec < T > : :: pgbulk :: __private :: Default"));
        assert!(
            !out.contains("i32 : :: pgbulk :: __private :: Encode"),
            "{out}"
        );
    }

    #[test]
    fn all_errors_are_reported() {
        let errors = errors(quote! {
            #[copy(tabel = "x")]
            struct User { #[copy(renam = "a", key, key)] id: i64, #[copy(skip, key)] b: i64 }
        });
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(errors[0].starts_with("unknown copy container attribute `tabel`"));
        assert!(errors[1].starts_with("unknown copy field attribute `renam`"));
        assert_eq!(errors[2], "duplicate copy attribute `key`");
        assert!(errors[3].starts_with("`#[copy(skip)]` cannot be combined with `#[copy(key)]`"));
    }

    #[test]
    fn non_structs_are_errors_not_panics() {
        for input in [
            quote!(
                struct S(i32);
            ),
            quote!(
                struct S;
            ),
            quote!(
                enum E {
                    A,
                }
            ),
            quote!(union U { a: u8 }),
        ] {
            let errors = errors(input);
            assert_eq!(errors.len(), 1);
            assert!(errors[0].starts_with("`CopyRow` can only be derived for structs"));
        }
        // Not an item a derive could be on: syn's parse error.
        assert!(derive(quote!(
            fn f() {}
        ))
        .is_err());
        assert!(derive(quote!()).is_err());
    }

    #[test]
    fn type_strings_are_tidy() {
        for (ty, expected) in [
            (quote!(i64), "i64"),
            (quote!(Option<String>), "Option<String>"),
            (quote!(Vec<Option<i32>>), "Vec<Option<i32>>"),
            (quote!(&'a str), "&'a str"),
            (quote!(&'a mut [u8]), "&'a mut [u8]"),
            (quote!(&'static str), "&'static str"),
            (quote!(::std::string::String), "::std::string::String"),
            (
                quote!(chrono::DateTime<chrono::Utc>),
                "chrono::DateTime<chrono::Utc>",
            ),
            (quote!([u8; 16]), "[u8; 16]"),
            (quote!((i32, String)), "(i32, String)"),
            (quote!(HashMap<String, Vec<u8>>), "HashMap<String, Vec<u8>>"),
            (quote!(<T as Trait>::Assoc), "<T as Trait>::Assoc"),
            (
                quote!(Box<dyn Fn(i32) -> i32 + Send>),
                "Box<dyn Fn(i32) -> i32 + Send>",
            ),
            (quote!(Cow<'a, str>), "Cow<'a, str>"),
            (quote!(*const u8), "*const u8"),
            (quote!(r#type), "r#type"),
            (quote!(&'a (i32, i32)), "&'a (i32, i32)"),
            (quote!(&mut [u8]), "&mut [u8]"),
            (quote!(fn(i32) -> bool), "fn(i32) -> bool"),
        ] {
            let ty: syn::Type = syn::parse2(ty).unwrap();
            assert_eq!(type_string(&ty), expected);
        }
    }
}
