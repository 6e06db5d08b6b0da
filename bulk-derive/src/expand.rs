//! Code generation: the `CopyRow` impl and, for owned structs, the `FromCopyRow` impl.

use crate::ast::{Container, Field};
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
    let from_copy_row = if decodable(cont) {
        impl_from_copy_row(cont, &private)
    } else {
        TokenStream::new()
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

fn impl_copy_row(cont: &Container<'_>, private: &TokenStream) -> TokenStream {
    let ident = cont.ident;
    let (impl_generics, ty_generics, _) = cont.generics.split_for_impl();
    let where_clause = where_clause(
        cont,
        cont.copied_fields()
            .filter_map(|field| bound(cont, field, &encode_trait(field, private))),
    );
    let table = cont.table();
    let copied: Vec<&Field<'_>> = cont.copied_fields().collect();

    let columns = copied.iter().map(|field| {
        let ty = field.ty;
        let name = field.column();
        let field_name = field.name();
        let rust_type = type_string(ty);
        let key = field.is_key();
        let accepts = if field.is_to_sql() {
            quote_spanned!(ty.span()=> #private::ToSqlField::<#ty>::accepts_encode)
        } else {
            quote_spanned!(ty.span()=> <#ty as #private::Encode>::accepts)
        };
        quote! {
            #private::Column {
                name: #name,
                field: #field_name,
                rust_type: #rust_type,
                key: #key,
                accepts_encode: #accepts,
            }
        }
    });

    let encodes = copied.iter().enumerate().map(|(i, field)| {
        let ty = field.ty;
        let member = field.ident;
        let encode = if field.is_to_sql() {
            quote_spanned!(ty.span()=> #private::ToSqlField::<#ty>::encode_field)
        } else {
            quote_spanned!(ty.span()=> <#ty as #private::Encode>::encode_field)
        };
        quote! {
            if let ::core::result::Result::Err(__e) = #encode(&self.#member, &__types[#i], __buf) {
                return ::core::result::Result::Err((#i, __e));
            }
        }
    });

    quote! {
        #[automatically_derived]
        impl #impl_generics #private::CopyRow for #ident #ty_generics #where_clause {
            const TABLE: &'static ::core::primitive::str = #table;

            const COLUMNS: &'static [#private::Column] = &[#(#columns),*];

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

fn impl_from_copy_row(cont: &Container<'_>, private: &TokenStream) -> TokenStream {
    let ident = cont.ident;
    let (impl_generics, ty_generics, _) = cont.generics.split_for_impl();
    let default = quote!(#private::Default);
    // `FromCopyRow: CopyRow`, so the `CopyRow` impl's bounds come first. The rest are lenient:
    // a struct whose field type can be encoded but not decoded still derives, and only
    // `copy_out` of it is an error, one that names the field.
    let bounds = cont
        .copied_fields()
        .filter_map(|field| bound(cont, field, &encode_trait(field, private)))
        .chain(cont.fields.iter().map(|field| {
            let trait_path = if field.is_copied() {
                decode_trait(field, private)
            } else {
                default.clone()
            };
            lenient_bound(field, &trait_path)
        }));
    let where_clause = where_clause(cont, bounds);

    let accepts = cont.copied_fields().map(|field| {
        let ty = field.ty;
        if field.is_to_sql() {
            quote_spanned!(ty.span()=> #private::ToSqlField::<#ty>::accepts_decode)
        } else {
            quote_spanned!(ty.span()=> <#ty as #private::Decode>::accepts)
        }
    });

    let mut index = 0_usize;
    let inits = cont.fields.iter().map(|field| {
        let ty = field.ty;
        let member = field.ident;
        if field.is_copied() {
            let i = index;
            index += 1;
            let decode = if field.is_to_sql() {
                quote_spanned!(ty.span()=> #private::ToSqlField::<#ty>::decode)
            } else {
                quote_spanned!(ty.span()=> <#ty as #private::Decode>::decode)
            };
            quote! {
                #member: match #decode(&__types[#i], #private::RawRow::get(&__row, #i)) {
                    ::core::result::Result::Ok(__value) => __value,
                    ::core::result::Result::Err(__e) => return ::core::result::Result::Err((#i, __e)),
                }
            }
        } else {
            let default = quote_spanned!(ty.span()=> <#ty as #private::Default>::default);
            quote!(#member: #default())
        }
    });

    quote! {
        #[automatically_derived]
        impl #impl_generics #private::FromCopyRow for #ident #ty_generics #where_clause {
            const ACCEPTS_DECODE: &'static [fn(&#private::Type) -> ::core::primitive::bool] =
                &[#(#accepts),*];

            #[inline]
            fn decode_row(
                __types: &[#private::Type],
                __row: #private::RawRow<'_>,
            ) -> #private::Result<Self, (::core::primitive::usize, #private::DecodeError)> {
                ::core::result::Result::Ok(Self { #(#inits),* })
            }
        }
    }
}

/// The trait a field's type needs for `copy_in`: pgbulk's `Encode`, or postgres-types' `ToSql`
/// for a `#[copy(to_sql)]` field.
fn encode_trait(field: &Field<'_>, private: &TokenStream) -> TokenStream {
    if field.is_to_sql() {
        quote!(#private::ToSql)
    } else {
        quote!(#private::Encode)
    }
}

/// The trait a field's type needs for `copy_out`: pgbulk's `Decode`, or postgres-types'
/// `FromSqlOwned` for a `#[copy(to_sql)]` field.
fn decode_trait(field: &Field<'_>, private: &TokenStream) -> TokenStream {
    if field.is_to_sql() {
        quote!(#private::FromSqlOwned)
    } else {
        quote!(#private::Decode)
    }
}

/// Whether to implement `FromCopyRow`: decoding builds an owned value, so not for a struct that
/// borrows (has lifetime parameters).
fn decodable(cont: &Container<'_>) -> bool {
    cont.generics.lifetimes().next().is_none()
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

/// `FieldTy: Trait`, spanned on the field's type, if the type mentions a type parameter of the
/// struct. Other field types need no bound: the trait is checked where the impl uses it, with
/// the error on the field.
fn bound(cont: &Container<'_>, field: &Field<'_>, trait_path: &TokenStream) -> Option<TokenStream> {
    let params: HashSet<&Ident> = cont
        .generics
        .type_params()
        .map(|param| &param.ident)
        .collect();
    let ty = field.ty;
    mentions(ty.to_token_stream(), &params).then(|| quote_spanned!(ty.span()=> #ty: #trait_path))
}

/// `for<'__de> FieldTy: Trait`, spanned on the field's type, for every field.
///
/// A bound on a type without parameters (`Fails: Decode`) must hold where it is written, or the
/// impl does not compile; under a `for<..>` binder it is checked where the impl is used instead,
/// so the impl exists exactly when every field type has the trait (`&'static str` has no
/// `Decode`: such a struct is `CopyRow` only).
fn lenient_bound(field: &Field<'_>, trait_path: &TokenStream) -> TokenStream {
    let ty = field.ty;
    quote_spanned!(ty.span()=> for<'__de> #ty: #trait_path)
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
        assert!(out.contains("const TABLE : & 'static :: core :: primitive :: str = \"user\""));
        // The tuple's field count is the engine's framing, not the derive's.
        assert!(!out.contains("to_be_bytes"), "{out}");
        assert!(out.contains("cache : < u8 as :: pgbulk :: __private :: Default > :: default ()"));
    }

    #[test]
    fn borrowing_struct_gets_no_decode_impl() {
        let out = derive(quote! {
            #[copy(crate = "bulk_core")]
            struct Named<'a> { name: &'a str }
        })
        .unwrap()
        .to_string();
        assert!(
            out.contains("bulk_core :: __private :: CopyRow for Named < 'a >"),
            "{out}"
        );
        assert!(!out.contains("FromCopyRow"), "{out}");
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
