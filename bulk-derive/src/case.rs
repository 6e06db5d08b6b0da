//! The default table name: the struct name in snake case.

/// Converts a Rust type name to snake case: `UserAccount` -> `user_account`,
/// `HTTPLog` -> `http_log`, `Log2Entry` -> `log2_entry`.
///
/// A word starts at an uppercase letter that follows a lowercase letter or a digit, and at the
/// last uppercase letter of an acronym when a lowercase letter follows it (`HTTPLog`).
pub(crate) fn to_snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1).copied();
            let starts_word = match prev {
                None | Some('_') => false,
                Some(p) if p.is_lowercase() || p.is_numeric() => true,
                Some(p) => p.is_uppercase() && next.is_some_and(char::is_lowercase),
            };
            if starts_word {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::to_snake_case;

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
}
