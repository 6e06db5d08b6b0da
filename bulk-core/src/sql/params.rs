//! `$n` parameters of a `copy_out` query, written into its text as literals (COPY cannot bind
//! parameters). SQL text only: finding the parameters and spelling the literals.
//!
//! The values' text comes from the server (each bound as a real parameter of its type and cast
//! to `text`, see `ops::copy_out::bind_params`); here it is written as an escape string with
//! every `\` and `'` doubled — read the same whatever `standard_conforming_strings` is — and
//! cast explicitly to the parameter's type, named by quoted schema and name. The parameters
//! are found by a scanner that follows PostgreSQL's own lexer for everything a `$` may hide in:
//! string constants (plain, `E''`, `U&''`, `B''`, `X''`), quoted identifiers, dollar-quoted
//! strings, comments (nested `/* */` too) and identifiers (which may contain `$`).

use crate::error::Error;
use crate::sql::ident;
use postgres_types::Type;

/// `"schema"."type"`: a type named exactly, whatever the `search_path`.
pub(crate) fn type_name(ty: &Type) -> String {
    format!("{}.{}", ident::quote(ty.schema()), ident::quote(ty.name()))
}

/// `(E'text'::"schema"."type")`, or `(NULL::"schema"."type")` for `None`.
pub(crate) fn typed_literal(text: Option<&str>, ty: &Type) -> String {
    let ty = type_name(ty);
    let Some(text) = text else {
        return format!("(NULL::{ty})");
    };
    let mut out = String::with_capacity(text.len() + ty.len() + 8);
    out.push_str("(E'");
    for c in text.chars() {
        if c == '\'' || c == '\\' {
            out.push(c);
        }
        out.push(c);
    }
    out.push_str("'::");
    out.push_str(&ty);
    out.push(')');
    out
}

/// Whether `b` may continue an identifier (PostgreSQL's `ident_cont`; bytes of non-ASCII
/// characters included).
fn ident_cont(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// Whether `b` may start an identifier or a dollar-quote tag.
fn ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

/// Replaces every `$n` parameter of `query` with `literals[n - 1]`.
/// `standard_conforming_strings`: the session's setting (off: a backslash escapes in plain
/// `'..'` strings too). Fails on a `$n` beyond `literals`, or text the scanner cannot end (an
/// unterminated string, identifier or comment), rather than guess.
pub(crate) fn substitute(
    query: &str,
    literals: &[String],
    standard_conforming_strings: bool,
) -> Result<String, Error> {
    let b = query.as_bytes();
    let mut out =
        String::with_capacity(query.len() + literals.iter().map(String::len).sum::<usize>());
    let mut copied = 0; // bytes of `query` already in `out`
    let mut i = 0;
    let unterminated =
        |what: &str| Error::usage(format!("the copy_out query has an unterminated {what}"));
    while i < b.len() {
        let c = b[i];
        match c {
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = b[i..]
                    .iter()
                    .position(|&x| x == b'\n' || x == b'\r')
                    .map_or(b.len(), |p| i + p);
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = end_of_comment(b, i).ok_or_else(|| unterminated("comment"))?;
            }
            b'\'' => {
                i = end_of_string(b, i, !standard_conforming_strings)
                    .ok_or_else(|| unterminated("string"))?;
            }
            b'"' => {
                i = end_of_quoted(b, i, b'"').ok_or_else(|| unterminated("quoted identifier"))?;
            }
            b'$' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let start = i;
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                let n: usize = query[start + 1..i]
                    .parse()
                    .ok()
                    .filter(|&n| n >= 1 && n <= literals.len())
                    .ok_or_else(|| {
                        Error::usage(format!(
                            "the copy_out query uses {}, but {} parameter(s) were given",
                            &query[start..i],
                            literals.len()
                        ))
                    })?;
                out.push_str(&query[copied..start]);
                out.push_str(&literals[n - 1]);
                copied = i;
            }
            b'$' => {
                i = end_of_dollar_quote(b, i)
                    .ok_or_else(|| unterminated("dollar-quoted string"))?;
            }
            _ if ident_start(c) => {
                let start = i;
                while i < b.len() && ident_cont(b[i]) {
                    i += 1;
                }
                let word = &b[start..i];
                // A string constant with a prefix: E'..' (backslash escapes), B'..', X'..',
                // N'..' (plain), U&'..' and U&".." (no backslash escapes of the quote).
                if b.get(i) == Some(&b'\'') && word.len() == 1 {
                    let escapes = match word[0].to_ascii_lowercase() {
                        b'e' => true,
                        b'b' | b'x' => false,
                        b'n' => !standard_conforming_strings,
                        _ => continue,
                    };
                    i = end_of_string(b, i, escapes).ok_or_else(|| unterminated("string"))?;
                } else if word.len() == 1
                    && word[0].eq_ignore_ascii_case(&b'u')
                    && b.get(i) == Some(&b'&')
                    && matches!(b.get(i + 1), Some(b'\'' | b'"'))
                {
                    let quote = b[i + 1];
                    i = end_of_quoted(b, i + 1, quote).ok_or_else(|| unterminated("string"))?;
                }
            }
            _ if c.is_ascii_digit() => {
                // A number (with what may trail it, as PostgreSQL reads `1e5`, `0x1F`, `1_000`).
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.')
                {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    out.push_str(&query[copied..]);
    Ok(out)
}

/// The index after the (possibly nested) `/* .. */` comment starting at `start`.
fn end_of_comment(b: &[u8], mut i: usize) -> Option<usize> {
    let mut depth = 0usize;
    loop {
        if i + 1 >= b.len() {
            return None;
        }
        if b[i] == b'/' && b[i + 1] == b'*' {
            depth += 1;
            i += 2;
        } else if b[i] == b'*' && b[i + 1] == b'/' {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return Some(i);
            }
        } else {
            i += 1;
        }
    }
}

/// At a `$` that does not start a parameter: the index after the dollar-quoted string
/// `$tag$ .. $tag$` starting there (the tag may be empty), or after the `$` if it starts none.
/// `None` if the string does not end.
fn end_of_dollar_quote(b: &[u8], start: usize) -> Option<usize> {
    let mut j = start + 1;
    if j < b.len() && ident_start(b[j]) {
        j += 1;
        while j < b.len() && ident_cont(b[j]) && b[j] != b'$' {
            j += 1;
        }
    }
    if b.get(j) != Some(&b'$') {
        return Some(start + 1);
    }
    let tag = &b[start..=j];
    let body = j + 1;
    let end = b[body..].windows(tag.len()).position(|w| w == tag)?;
    Some(body + end + tag.len())
}

/// The index after the `'..'` string starting at `start`; with `escapes`, a backslash escapes
/// the next byte. `None` if it does not end.
fn end_of_string(b: &[u8], start: usize, escapes: bool) -> Option<usize> {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' if escapes => i += 2,
            b'\'' if b.get(i + 1) == Some(&b'\'') => i += 2,
            b'\'' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// The index after the `quote`d text starting at `start` (a doubled quote stands for one).
fn end_of_quoted(b: &[u8], start: usize, quote: u8) -> Option<usize> {
    let mut i = start + 1;
    while i < b.len() {
        if b[i] == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return Some(i + 1);
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lits(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("<{i}>")).collect()
    }

    fn sub(q: &str, scs: bool) -> String {
        substitute(q, &lits(3), scs).unwrap()
    }

    #[test]
    fn only_real_parameters_are_replaced() {
        assert_eq!(
            sub("SELECT $1, $2 FROM t WHERE a = $3", true),
            "SELECT <1>, <2> FROM t WHERE a = <3>"
        );
        assert_eq!(
            sub("SELECT '$1', \"$2\", $$ $3 $$, $q$ $1 $q$, $1", true),
            "SELECT '$1', \"$2\", $$ $3 $$, $q$ $1 $q$, <1>"
        );
        assert_eq!(
            sub("SELECT a$1, $1 -- $2\n, /* $2 /* $3 */ $2 */ $2", true),
            "SELECT a$1, <1> -- $2\n, /* $2 /* $3 */ $2 */ <2>"
        );
        assert_eq!(sub("SELECT E'\\' $1', $2", true), "SELECT E'\\' $1', <2>");
        // A backslash escapes in a plain string only with standard_conforming_strings off.
        assert_eq!(sub("SELECT 'a\\', $1 --'", true), "SELECT 'a\\', <1> --'");
        assert_eq!(
            sub("SELECT 'a\\', $1 --', $2", false),
            "SELECT 'a\\', $1 --', <2>"
        );
        assert_eq!(
            sub("SELECT U&'\\0041' || $1, U&\"a$1\"", true),
            "SELECT U&'\\0041' || <1>, U&\"a$1\""
        );
        assert_eq!(
            sub("SELECT x'1F', b'01', n'$1', $1::int8, 1e5, ($2)", true),
            "SELECT x'1F', b'01', n'$1', <1>::int8, 1e5, (<2>)"
        );
        assert_eq!(sub("SELECT 'it''s $1', $1", true), "SELECT 'it''s $1', <1>");
    }

    #[test]
    fn unknown_parameters_and_unterminated_text_are_refused() {
        assert!(substitute("SELECT $4", &lits(3), true).is_err());
        assert!(substitute("SELECT $0", &lits(3), true).is_err());
        for q in [
            "SELECT 'a",
            "SELECT \"a",
            "SELECT $$a",
            "SELECT /* a",
            "SELECT E'\\'",
        ] {
            assert!(substitute(q, &lits(1), true).is_err(), "{q}");
        }
    }

    #[test]
    fn literals_are_escape_strings_with_a_cast() {
        assert_eq!(
            typed_literal(Some("it's \\ ok"), &Type::TEXT),
            "(E'it''s \\\\ ok'::\"pg_catalog\".\"text\")"
        );
        assert_eq!(
            typed_literal(None, &Type::INT8_ARRAY),
            "(NULL::\"pg_catalog\".\"_int8\")"
        );
    }
}
