//! The derive input as the rest of the macro sees it: a struct with named fields and the
//! parsed `#[copy(...)]` attributes. Borrows from the syn tree, so errors can be spanned on the
//! user's own tokens.

use crate::attr;
use crate::case::{to_snake_case, RenameRule};
use crate::ctxt::Ctxt;
use syn::ext::IdentExt;
use syn::{Data, DeriveInput, Fields, Generics, Ident, Type};

/// A struct deriving `CopyRow`.
pub(crate) struct Container<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) attrs: attr::Container,
    /// All fields, copied and skipped, in struct order.
    pub(crate) fields: Vec<Field<'a>>,
    pub(crate) generics: &'a Generics,
}

/// One named field of the struct.
pub(crate) struct Field<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) ty: &'a Type,
    pub(crate) attrs: attr::Field,
    /// The struct's `rename_all` rule, which names the column unless `rename` does.
    rename_all: Option<RenameRule>,
}

/// How a field's value is written and read.
pub(crate) enum Via<'a> {
    /// pgbulk's own `Encode` / `Decode` for the field's type.
    Native,
    /// `#[copy(to_sql)]`: postgres-types' `ToSql` / `FromSql`.
    ToSql,
    /// `#[copy(json)]`: serde, as json or jsonb.
    Json,
    /// `#[copy(try_from = "T")]`: `T`'s codec, converted with `TryFrom` both ways.
    TryFrom(&'a Type),
    /// `#[copy(flatten)]`: the field's own `CopyRow` impl, whose columns are spliced in.
    Flatten,
}

impl<'a> Container<'a> {
    /// Reads the input, recording every problem in `cx`. Returns `None` when the input is not a
    /// struct with named fields (the error is recorded).
    pub(crate) fn from_ast(cx: &Ctxt, input: &'a DeriveInput) -> Option<Self> {
        // Read the container attributes whatever the shape, so their errors are reported too.
        let attrs = attr::Container::from_ast(cx, &input.attrs);
        let rename_all = attrs.rename_all.as_ref().map(|rule| rule.value);

        let fields = match &input.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(fields) => &fields.named,
                Fields::Unnamed(fields) => {
                    cx.error_spanned_by(fields, SHAPE_ERROR);
                    return None;
                }
                Fields::Unit => {
                    cx.error_spanned_by(&input.ident, SHAPE_ERROR);
                    return None;
                }
            },
            Data::Enum(data) => {
                cx.error_spanned_by(data.enum_token, SHAPE_ERROR);
                return None;
            }
            Data::Union(data) => {
                cx.error_spanned_by(data.union_token, SHAPE_ERROR);
                return None;
            }
        };

        let fields = fields
            .iter()
            .filter_map(|field| {
                Some(Field {
                    // Always `Some` for named fields.
                    ident: field.ident.as_ref()?,
                    ty: &field.ty,
                    attrs: attr::Field::from_ast(cx, &field.attrs),
                    rename_all,
                })
            })
            .collect();

        Some(Container {
            ident: &input.ident,
            attrs,
            fields,
            generics: &input.generics,
        })
    }

    /// The target table as written in `#[copy(table = "..")]`, or the struct name in snake case.
    pub(crate) fn table(&self) -> String {
        match &self.attrs.table {
            Some(table) => table.value.value(),
            None => to_snake_case(&self.ident.unraw().to_string()),
        }
    }

    /// The path generated code reaches the runtime through: `#[copy(crate = "..")]` or
    /// `::pgbulk`.
    pub(crate) fn crate_path(&self) -> syn::Path {
        match &self.attrs.crate_path {
            Some(path) => path.value.clone(),
            None => syn::parse_quote!(::pgbulk),
        }
    }

    /// The fields that are columns (not `#[copy(skip)]`), in struct order.
    pub(crate) fn copied_fields(&self) -> impl Iterator<Item = &Field<'a>> {
        self.fields.iter().filter(|field| field.is_copied())
    }
}

const SHAPE_ERROR: &str = "`CopyRow` can only be derived for structs with named fields\n\
                           help: a row is a struct like `struct User { id: i64, name: String }`";

impl Field<'_> {
    /// Whether the field is a column (it is not `#[copy(skip)]`).
    pub(crate) fn is_copied(&self) -> bool {
        self.attrs.skip.is_none()
    }

    /// The field's name without `r#`.
    pub(crate) fn name(&self) -> String {
        self.ident.unraw().to_string()
    }

    /// The column the field maps to: `#[copy(rename = "..")]`, or the field's name under the
    /// struct's `rename_all` rule, or the field's name.
    pub(crate) fn column(&self) -> String {
        match (&self.attrs.rename, self.rename_all) {
            (Some(rename), _) => rename.value.value(),
            (None, Some(rule)) => rule.apply(&self.name()),
            (None, None) => self.name(),
        }
    }

    /// How the field is written and read. `check` allows at most one of `to_sql`, `json`,
    /// `try_from` and `flatten`.
    pub(crate) fn via(&self) -> Via<'_> {
        let attrs = &self.attrs;
        if attrs.flatten.is_some() {
            Via::Flatten
        } else if attrs.to_sql.is_some() {
            Via::ToSql
        } else if attrs.json.is_some() {
            Via::Json
        } else if let Some(target) = &attrs.try_from {
            Via::TryFrom(&target.value)
        } else {
            Via::Native
        }
    }

    /// Whether the field is `#[copy(flatten)]`: it stands for its type's columns.
    pub(crate) fn is_flatten(&self) -> bool {
        self.attrs.flatten.is_some()
    }

    /// Whether the field is marked `#[copy(default)]`.
    pub(crate) fn is_default(&self) -> bool {
        self.attrs.default.is_some()
    }

    /// Whether the field is marked `#[copy(key)]`.
    pub(crate) fn is_key(&self) -> bool {
        self.attrs.key.is_some()
    }
}
