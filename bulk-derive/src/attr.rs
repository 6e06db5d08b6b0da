//! Parsing of `#[copy(...)]` attributes into plain values, one struct per place they may appear.
//!
//! Every problem is recorded in the [`Ctxt`] and parsing goes on, so a user sees all bad
//! attributes of a derive at once. Rules that involve more than one attribute (`skip` with
//! `rename`, duplicate column names, ...) live in `check.rs`.

use crate::case::{RenameRule, RULES};
use crate::ctxt::Ctxt;
use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::{Attribute, Expr, ExprLit, Lit, LitStr, Token};

/// An attribute that was given: the key as written (for spans) and its value.
pub(crate) struct Attr<T> {
    /// The key, e.g. the `rename` of `rename = "col"`.
    pub(crate) path: syn::Path,
    pub(crate) value: T,
}

/// Builds an `Option<Attr<T>>`, reporting a second occurrence of the same key.
struct Slot<'c, T> {
    cx: &'c Ctxt,
    name: &'static str,
    attr: Option<Attr<T>>,
}

impl<'c, T> Slot<'c, T> {
    fn new(cx: &'c Ctxt, name: &'static str) -> Self {
        Slot {
            cx,
            name,
            attr: None,
        }
    }

    fn set(&mut self, path: &syn::Path, value: T) {
        if self.attr.is_some() {
            self.cx
                .error_spanned_by(path, format!("duplicate copy attribute `{}`", self.name));
        } else {
            self.attr = Some(Attr {
                path: path.clone(),
                value,
            });
        }
    }

    fn get(self) -> Option<Attr<T>> {
        self.attr
    }
}

/// Attributes on the struct itself.
pub(crate) struct Container {
    /// `#[copy(table = "schema.table")]`
    pub(crate) table: Option<Attr<LitStr>>,
    /// `#[copy(crate = "path")]`
    pub(crate) crate_path: Option<Attr<syn::Path>>,
    /// `#[copy(rename_all = "camelCase")]`
    pub(crate) rename_all: Option<Attr<RenameRule>>,
}

impl Container {
    pub(crate) fn from_ast(cx: &Ctxt, attrs: &[Attribute]) -> Self {
        let mut table = Slot::new(cx, "table");
        let mut crate_path = Slot::new(cx, "crate");
        let mut rename_all = Slot::new(cx, "rename_all");

        for attr in attrs.iter().filter(|attr| attr.path().is_ident("copy")) {
            let result = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("table") {
                    // #[copy(table = "schema.table")]
                    if let Some(lit) = string_value(cx, &meta, r#"table = "schema.table""#)? {
                        table.set(&meta.path, lit);
                    }
                } else if meta.path.is_ident("crate") {
                    // #[copy(crate = "path")]
                    if let Some(lit) = string_value(cx, &meta, r#"crate = "pgbulk""#)? {
                        match lit.parse::<syn::Path>() {
                            Ok(path) => crate_path.set(&meta.path, path),
                            Err(_) => cx.error_spanned_by(
                                &lit,
                                format!(
                                    "expected a path to the pgbulk crate, found `{}`\n{}",
                                    lit.value(),
                                    help(r#"crate = "pgbulk""#)
                                ),
                            ),
                        }
                    }
                } else if meta.path.is_ident("rename_all") {
                    // #[copy(rename_all = "camelCase")]
                    if let Some(lit) = string_value(cx, &meta, r#"rename_all = "camelCase""#)? {
                        match RenameRule::from_name(&lit.value()) {
                            Some(rule) => rename_all.set(&meta.path, rule),
                            None => cx.error_spanned_by(&lit, unknown_rule(&lit.value())),
                        }
                    }
                } else {
                    cx.error_spanned_by(
                        &meta.path,
                        unknown_key(&meta.path, "container", &["table", "crate", "rename_all"]),
                    );
                    skip_value(&meta)?;
                }
                Ok(())
            });
            if let Err(err) = result {
                cx.syn_error(err);
            }
        }

        Container {
            table: table.get(),
            crate_path: crate_path.get(),
            rename_all: rename_all.get(),
        }
    }
}

/// Attributes on one field.
pub(crate) struct Field {
    /// `#[copy(rename = "col")]`
    pub(crate) rename: Option<Attr<LitStr>>,
    /// `#[copy(skip)]`
    pub(crate) skip: Option<Attr<()>>,
    /// `#[copy(key)]`
    pub(crate) key: Option<Attr<()>>,
    /// `#[copy(to_sql)]`: encode and decode through the field type's postgres-types
    /// `ToSql`/`FromSql` impls instead of pgbulk's own codecs.
    pub(crate) to_sql: Option<Attr<()>>,
    /// `#[copy(json)]`: the value is stored as json or jsonb through serde.
    pub(crate) json: Option<Attr<()>>,
    /// `#[copy(default)]`: reading, a column the query does not return is `Default::default()`.
    pub(crate) default: Option<Attr<()>>,
    /// `#[copy(flatten)]`: the field is a `CopyRow` struct whose columns are this struct's.
    pub(crate) flatten: Option<Attr<()>>,
    /// `#[copy(try_from = "i64")]`: written and read as that type, converted with `TryFrom`.
    pub(crate) try_from: Option<Attr<syn::Type>>,
}

/// The keys a field attribute may have, for "unknown attribute" help.
const FIELD_KEYS: &[&str] = &[
    "rename", "skip", "key", "to_sql", "json", "default", "flatten", "try_from",
];

impl Field {
    pub(crate) fn from_ast(cx: &Ctxt, attrs: &[Attribute]) -> Self {
        let mut rename = Slot::new(cx, "rename");
        let mut skip = Slot::new(cx, "skip");
        let mut key = Slot::new(cx, "key");
        let mut to_sql = Slot::new(cx, "to_sql");
        let mut json = Slot::new(cx, "json");
        let mut default = Slot::new(cx, "default");
        let mut flatten = Slot::new(cx, "flatten");
        let mut try_from = Slot::new(cx, "try_from");

        for attr in attrs.iter().filter(|attr| attr.path().is_ident("copy")) {
            let result = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("rename") {
                    // #[copy(rename = "col")]
                    if let Some(lit) = string_value(cx, &meta, r#"rename = "name""#)? {
                        rename.set(&meta.path, lit);
                    }
                } else if meta.path.is_ident("skip") {
                    // #[copy(skip)]
                    if flag(cx, &meta, "skip")? {
                        skip.set(&meta.path, ());
                    }
                } else if meta.path.is_ident("key") {
                    // #[copy(key)]
                    if flag(cx, &meta, "key")? {
                        key.set(&meta.path, ());
                    }
                } else if meta.path.is_ident("to_sql") {
                    // #[copy(to_sql)]
                    if flag(cx, &meta, "to_sql")? {
                        to_sql.set(&meta.path, ());
                    }
                } else if meta.path.is_ident("json") {
                    // #[copy(json)]
                    if flag(cx, &meta, "json")? {
                        json.set(&meta.path, ());
                    }
                } else if meta.path.is_ident("default") {
                    // #[copy(default)]
                    if flag(cx, &meta, "default")? {
                        default.set(&meta.path, ());
                    }
                } else if meta.path.is_ident("flatten") {
                    // #[copy(flatten)]
                    if flag(cx, &meta, "flatten")? {
                        flatten.set(&meta.path, ());
                    }
                } else if meta.path.is_ident("try_from") {
                    // #[copy(try_from = "i64")]
                    if let Some(lit) = string_value(cx, &meta, r#"try_from = "i64""#)? {
                        match lit.parse::<syn::Type>() {
                            Ok(ty) => try_from.set(&meta.path, ty),
                            Err(_) => cx.error_spanned_by(
                                &lit,
                                format!(
                                    "expected a type for `try_from`, found `{}`\n{}",
                                    lit.value(),
                                    help(r#"try_from = "i64""#)
                                ),
                            ),
                        }
                    }
                } else {
                    cx.error_spanned_by(&meta.path, unknown_key(&meta.path, "field", FIELD_KEYS));
                    skip_value(&meta)?;
                }
                Ok(())
            });
            if let Err(err) = result {
                cx.syn_error(err);
            }
        }

        Field {
            rename: rename.get(),
            skip: skip.get(),
            key: key.get(),
            to_sql: to_sql.get(),
            json: json.get(),
            default: default.get(),
            flatten: flatten.get(),
            try_from: try_from.get(),
        }
    }
}

/// "unknown copy field attribute `renam`", with the likely meant key or the list of keys.
fn unknown_key(path: &syn::Path, place: &str, known: &[&str]) -> String {
    let name = path_to_string(path);
    let help = if let Some(key) = known.iter().find(|key| edit_distance(&name, key) <= 2) {
        format!("help: did you mean `{key}`?")
    } else {
        let list: Vec<String> = known.iter().map(|key| format!("`{key}`")).collect();
        let whose = if place == "container" {
            "struct"
        } else {
            place
        };
        format!(
            "help: the copy attributes of a {whose} are {}",
            list.join(", ")
        )
    };
    format!("unknown copy {place} attribute `{name}`\n{help}")
}

/// "unknown rename rule `camelcase`", with the likely meant rule or the list of rules.
fn unknown_rule(name: &str) -> String {
    let near = RULES
        .iter()
        .map(|&(rule, _)| rule)
        .find(|rule| rule.eq_ignore_ascii_case(name) || edit_distance(name, rule) <= 2);
    let help = if let Some(rule) = near {
        format!("help: did you mean `{rule}`?")
    } else {
        let list: Vec<String> = RULES.iter().map(|(rule, _)| format!("`{rule}`")).collect();
        format!("help: the rules are {}", list.join(", "))
    };
    format!("unknown rename rule `{name}` for `rename_all`\n{help}")
}

/// The Levenshtein distance between two short strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// The help line that shows an attribute's correct form, e.g. for `rename = "name"`.
fn help(form: &str) -> String {
    format!("help: the correct format looks like `#[copy({form})]`")
}

/// Reads the `= "string"` of `key = "string"`. A missing or non-string value is recorded (and
/// skipped over, so parsing continues) and gives `None`; only a syntax error is returned.
fn string_value(cx: &Ctxt, meta: &ParseNestedMeta<'_>, form: &str) -> syn::Result<Option<LitStr>> {
    let name = path_to_string(&meta.path);
    if !meta.input.peek(Token![=]) {
        cx.error_spanned_by(
            &meta.path,
            format!("expected a value for `{name}`\n{}", help(form)),
        );
        skip_value(meta)?;
        return Ok(None);
    }
    let expr: Expr = meta.value()?.parse()?;
    match ungroup(&expr) {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Ok(Some(lit.clone())),
        other => {
            cx.error_spanned_by(
                other,
                format!("expected a string literal for `{name}`\n{}", help(form)),
            );
            Ok(None)
        }
    }
}

/// Checks that a flag such as `skip` has no value. Records an error (and skips the value) if it
/// has one; returns whether the flag is well-formed.
fn flag(cx: &Ctxt, meta: &ParseNestedMeta<'_>, name: &str) -> syn::Result<bool> {
    match value_tokens(meta)? {
        None => Ok(true),
        Some(value) => {
            cx.error_spanned_by(value, format!("`{name}` takes no value\n{}", help(name)));
            Ok(false)
        }
    }
}

/// Consumes whatever value follows a key (`= expr` or `(...)`), so parsing can go on after an
/// error about the key.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    value_tokens(meta).map(drop)
}

/// Parses the value that follows a key, if there is one: `= expr` or a parenthesized list.
fn value_tokens(meta: &ParseNestedMeta<'_>) -> syn::Result<Option<TokenStream>> {
    if meta.input.peek(Token![=]) {
        let expr: Expr = meta.value()?.parse()?;
        Ok(Some(expr.into_token_stream()))
    } else if meta.input.peek(syn::token::Paren) {
        let group: proc_macro2::Group = meta.input.parse()?;
        Ok(Some(group.into_token_stream()))
    } else {
        Ok(None)
    }
}

/// Looks through the invisible groups that `macro_rules!` puts around interpolated expressions.
fn ungroup(mut expr: &Expr) -> &Expr {
    while let Expr::Group(group) = expr {
        expr = &group.expr;
    }
    expr
}

/// A path as written, without the spaces `to_string` puts around `::`.
fn path_to_string(path: &syn::Path) -> String {
    let mut out = String::new();
    if path.leading_colon.is_some() {
        out.push_str("::");
    }
    for (i, segment) in path.segments.iter().enumerate() {
        if i > 0 {
            out.push_str("::");
        }
        out.push_str(&segment.ident.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::edit_distance;

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("renam", "rename"), 1);
        assert_eq!(edit_distance("tabel", "table"), 2);
        assert_eq!(edit_distance("key", "key"), 0);
        assert_eq!(edit_distance("", "skip"), 4);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("schema", "table"), 6);
    }
}
