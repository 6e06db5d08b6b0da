//! Case conversions: the default table name (the struct name in snake case) and the
//! `#[copy(rename_all = "..")]` rules, with serde's names for them.
//!
//! The word splitting is `heck`'s (the crate postgres-derive and sqlx use for the same job):
//! `HTTPLog` is `http` + `log`, `Log2Entry` is `log2` + `entry`.

use heck::{
    ToKebabCase, ToLowerCamelCase, ToShoutyKebabCase, ToShoutySnakeCase, ToSnakeCase,
    ToUpperCamelCase,
};

/// Converts a Rust type name to snake case: `UserAccount` -> `user_account`,
/// `HTTPLog` -> `http_log`, `Log2Entry` -> `log2_entry`.
pub(crate) fn to_snake_case(name: &str) -> String {
    name.to_snake_case()
}

/// A `rename_all` rule, named as serde names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RenameRule {
    /// `lowercase`
    Lower,
    /// `UPPERCASE`
    Upper,
    /// `PascalCase`
    Pascal,
    /// `camelCase`
    Camel,
    /// `snake_case`
    Snake,
    /// `SCREAMING_SNAKE_CASE`
    ScreamingSnake,
    /// `kebab-case`
    Kebab,
    /// `SCREAMING-KEBAB-CASE`
    ScreamingKebab,
}

/// Every rule with its name, in the order the help lists them.
pub(crate) const RULES: &[(&str, RenameRule)] = &[
    ("lowercase", RenameRule::Lower),
    ("UPPERCASE", RenameRule::Upper),
    ("PascalCase", RenameRule::Pascal),
    ("camelCase", RenameRule::Camel),
    ("snake_case", RenameRule::Snake),
    ("SCREAMING_SNAKE_CASE", RenameRule::ScreamingSnake),
    ("kebab-case", RenameRule::Kebab),
    ("SCREAMING-KEBAB-CASE", RenameRule::ScreamingKebab),
];

impl RenameRule {
    /// The rule named `name` exactly as serde spells it.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        RULES
            .iter()
            .find(|(rule, _)| *rule == name)
            .map(|&(_, rule)| rule)
    }

    /// The column a field named `field` (snake case, as Rust fields are) maps to.
    pub(crate) fn apply(self, field: &str) -> String {
        match self {
            RenameRule::Lower => field.to_lowercase(),
            RenameRule::Upper => field.to_uppercase(),
            RenameRule::Pascal => field.to_upper_camel_case(),
            RenameRule::Camel => field.to_lower_camel_case(),
            RenameRule::Snake => field.to_snake_case(),
            RenameRule::ScreamingSnake => field.to_shouty_snake_case(),
            RenameRule::Kebab => field.to_kebab_case(),
            RenameRule::ScreamingKebab => field.to_shouty_kebab_case(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{to_snake_case, RenameRule, RULES};

    #[test]
    fn snake_case() {
        for (input, expected) in [
            ("User", "user"),
            ("UserAccount", "user_account"),
            ("HTTPLog", "http_log"),
            ("HttpLog", "http_log"),
            ("LogHTTP", "log_http"),
            ("Log2Entry", "log2_entry"),
            ("ABC", "abc"),
            ("already_snake", "already_snake"),
            ("Mixed_Case", "mixed_case"),
            ("A", "a"),
            ("IOError", "io_error"),
        ] {
            assert_eq!(to_snake_case(input), expected, "{input}");
        }
    }

    #[test]
    fn rename_rules_as_serde_applies_them_to_fields() {
        let expected = [
            ("lowercase", "user_id", "user_id"),
            ("UPPERCASE", "user_id", "USER_ID"),
            ("PascalCase", "user_id", "UserId"),
            ("camelCase", "user_id", "userId"),
            ("snake_case", "user_id", "user_id"),
            ("SCREAMING_SNAKE_CASE", "user_id", "USER_ID"),
            ("kebab-case", "user_id", "user-id"),
            ("SCREAMING-KEBAB-CASE", "user_id", "USER-ID"),
            ("camelCase", "id", "id"),
            ("PascalCase", "created_at_utc", "CreatedAtUtc"),
            ("camelCase", "line2_text", "line2Text"),
        ];
        for (name, field, column) in expected {
            let rule = RenameRule::from_name(name).unwrap();
            assert_eq!(rule.apply(field), column, "{name} {field}");
        }
        assert_eq!(RULES.len(), 8);
        assert_eq!(RenameRule::from_name("camelcase"), None);
        assert_eq!(RenameRule::from_name(""), None);
    }
}
