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

#[cfg(test)]
mod tests {
    use super::*;

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
}
