//! Quoting of SQL identifiers: every table and column name pgbulk sends is quoted.

use crate::error::Error;

/// Quotes one identifier: `my "col"` becomes `"my ""col"""`.
pub(crate) fn quote(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Quotes a string literal: `it's` becomes `'it''s'`, and a text with a backslash is written
/// `E'..'` with the backslash doubled, so it reads the same whatever
/// `standard_conforming_strings` is.
pub(crate) fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 3);
    if text.contains('\\') {
        out.push('E');
    }
    out.push('\'');
    for c in text.chars() {
        if c == '\'' || c == '\\' {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// Parses a possibly schema-qualified table name and returns it quoted.
///
/// Names are taken literally (case-sensitive, no folding to lower case): `Users` is the table
/// `"Users"`. A `.` separates schema and table; a part written in double quotes may contain dots
/// and doubled quotes (`"my.schema"."a ""b"""`).
pub(crate) fn quote_table(name: &str) -> Result<String, Error> {
    let parts = split_qualified(name)?;
    Ok(parts.iter().map(|p| quote(p)).collect::<Vec<_>>().join("."))
}

/// Splits `schema.table` (with optional double-quoted parts) into its unquoted parts.
pub(crate) fn split_qualified(name: &str) -> Result<Vec<String>, Error> {
    let bad = |why: &str| Error::usage(format!("invalid table name `{name}`: {why}"));
    // The server would refuse it too, but only after tokio-postgres failed to encode the
    // statement, which reads as a connection error.
    if name.contains('\0') {
        return Err(Error::usage(format!(
            "invalid table name `{}`: it contains a NUL byte",
            name.escape_debug()
        )));
    }
    let mut parts = Vec::new();
    let mut chars = name.chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    Some('"') => break,
                    Some(c) => part.push(c),
                    None => return Err(bad("unterminated double quote")),
                }
            }
            match chars.peek() {
                None | Some('.') => {}
                Some(_) => return Err(bad("text after a closing double quote")),
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' {
                    break;
                }
                part.push(c);
                chars.next();
            }
        }
        if part.is_empty() {
            return Err(bad("empty name part"));
        }
        parts.push(part);
        match chars.next() {
            None => break,
            Some('.') => {}
            Some(_) => unreachable!("parts end at a dot or the end"),
        }
    }
    if parts.len() > 3 {
        return Err(bad("more than database.schema.table"));
    }
    Ok(parts)
}

/// The column list of a `Key (a, b)=(..) already exists.` detail, unquoted (the server quotes
/// names that need it: `Key ("My ""Col""")=(1)`), joined with `, `.
pub(crate) fn key_columns(detail: &str) -> Option<String> {
    let mut rest = detail.strip_prefix("Key (")?.chars().peekable();
    let mut names = Vec::new();
    let mut name = String::new();
    loop {
        match rest.next()? {
            '"' => loop {
                match rest.next()? {
                    '"' if rest.peek() == Some(&'"') => {
                        rest.next();
                        name.push('"');
                    }
                    '"' => break,
                    c => name.push(c),
                }
            },
            ',' => {
                names.push(std::mem::take(&mut name));
                while rest.peek() == Some(&' ') {
                    rest.next();
                }
            }
            ')' => {
                names.push(name);
                return (rest.next() == Some('=')).then(|| names.join(", "));
            }
            c => name.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_literals() {
        assert_eq!(literal("plain"), "'plain'");
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(literal(r"a\b"), r"E'a\\b'");
    }

    #[test]
    fn quotes_identifiers() {
        assert_eq!(quote("id"), "\"id\"");
        assert_eq!(quote("My \"Col\""), "\"My \"\"Col\"\"\"");
    }

    #[test]
    fn quotes_tables() {
        assert_eq!(quote_table("users").unwrap(), "\"users\"");
        assert_eq!(quote_table("Sales.Orders").unwrap(), "\"Sales\".\"Orders\"");
        assert_eq!(
            quote_table("\"my.schema\".\"a \"\"b\"\"\"").unwrap(),
            "\"my.schema\".\"a \"\"b\"\"\""
        );
        assert_eq!(quote_table("select").unwrap(), "\"select\"");
        assert!(quote_table("").is_err());
        assert!(quote_table("a..b").is_err());
        assert!(quote_table("\"a").is_err());
        assert!(quote_table("\"a\"b").is_err());
        assert!(quote_table("a.b.c.d").is_err());
        let nul = quote_table("bad\0name").unwrap_err();
        assert_eq!(nul.kind(), crate::ErrorKind::Usage);
        assert!(nul.to_string().contains("NUL byte"), "{nul}");
    }

    #[test]
    fn parses_key_detail() {
        assert_eq!(
            key_columns("Key (id)=(4999) already exists."),
            Some("id".into())
        );
        assert_eq!(
            key_columns("Key (a, b)=(1, 2) already exists."),
            Some("a, b".into())
        );
        assert_eq!(key_columns("Failing row contains (1)."), None);
        assert_eq!(
            key_columns(r#"Key ("Group ""By"" Key", "a, b")=(90, 1) already exists."#),
            Some("Group \"By\" Key, a, b".into())
        );
    }
}
