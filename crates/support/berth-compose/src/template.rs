//! Variable substitution in one string, as the docker CLI's
//! `cli/compose/template` does it, quirks included:
//! - `$VAR` may carry a default too (`$VAR-x` is `${VAR-x}`);
//! - the modifiers are tried in the order `:-`, `-`, `:?`, `?` on the whole
//!   text, so `${A:?a-b}` is a default of `b` for a variable named `A:?a`;
//! - only the last substitution's error counts (Go reuses one variable).

/// The failing template text, as Docker quotes it in its error.
#[derive(Debug, PartialEq)]
pub(crate) struct InvalidTemplate(pub String);

/// One `$…` occurrence.
enum Piece<'a> {
    Escaped,
    Substitution(&'a str),
    Invalid,
}

pub(crate) fn substitute(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InvalidTemplate> {
    let mut out = String::with_capacity(template.len());
    let mut last_error = None;
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let (piece, len) = scan(&rest[at..]);
        rest = &rest[at + len..];
        match piece {
            Piece::Escaped => out.push('$'),
            Piece::Invalid => last_error = Some(InvalidTemplate(template.to_string())),
            Piece::Substitution(s) => match apply(s, lookup) {
                Ok(value) => {
                    last_error = None;
                    out.push_str(&value);
                }
                Err(e) => last_error = Some(e),
            },
        }
    }
    out.push_str(rest);
    match last_error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Matches Docker's pattern at a `$`; returns the piece and its length.
fn scan(text: &str) -> (Piece<'_>, usize) {
    let after = &text[1..];
    match after.chars().next() {
        Some('$') => (Piece::Escaped, 2),
        Some(c) if is_name_start(c) => {
            let len = name_with_modifier(after, false).unwrap_or(0);
            (Piece::Substitution(&after[..len]), 1 + len)
        }
        Some('{') => match name_with_modifier(&after[1..], true) {
            Some(len) => (Piece::Substitution(&after[1..1 + len]), 2 + len + 1),
            None => (Piece::Invalid, 1),
        },
        _ => (Piece::Invalid, 1),
    }
}

fn is_name_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}

/// `[_a-z][_a-z0-9]*(?::?[-?][^}]*)?`, followed by `}` when braced. Returns
/// the length of the substitution text (without the braces).
fn name_with_modifier(text: &str, braced: bool) -> Option<usize> {
    let bytes = text.as_bytes();
    if !bytes.first().is_some_and(|b| is_name_start(*b as char)) {
        return None;
    }
    let mut i = 1;
    while i < bytes.len() && (bytes[i] == b'_' || bytes[i].is_ascii_alphanumeric()) {
        i += 1;
    }
    let modifier = if bytes.get(i) == Some(&b':') && matches!(bytes.get(i + 1), Some(b'-' | b'?')) {
        2
    } else if matches!(bytes.get(i), Some(b'-' | b'?')) {
        1
    } else {
        0
    };
    if modifier > 0 {
        i += modifier;
        while i < bytes.len() && bytes[i] != b'}' {
            i += 1;
        }
    }
    if braced && bytes.get(i) != Some(&b'}') {
        return None;
    }
    Some(i)
}

fn apply(
    substitution: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InvalidTemplate> {
    if let Some((name, default)) = substitution.split_once(":-") {
        return Ok(lookup(name)
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| default.to_string()));
    }
    if let Some((name, default)) = substitution.split_once('-') {
        return Ok(lookup(name).unwrap_or_else(|| default.to_string()));
    }
    for (sep, non_empty) in [(":?", true), ("?", false)] {
        if let Some((name, message)) = substitution.split_once(sep) {
            return match lookup(name) {
                Some(v) if !non_empty || !v.is_empty() => Ok(v),
                _ => Err(InvalidTemplate(format!(
                    "required variable {name} is missing a value: {message}"
                ))),
            };
        }
    }
    Ok(lookup(substitution).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SET" => Some("value".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn sub(t: &str) -> Result<String, InvalidTemplate> {
        substitute(t, &env)
    }

    #[test]
    fn plain_and_braced_variables() {
        assert_eq!(sub("a $SET b ${SET}c"), Ok("a value b valuec".into()));
        assert_eq!(sub("$UNSET ${UNSET}."), Ok(" .".into()));
        assert_eq!(sub("$$SET $$"), Ok("$SET $".into()));
        assert_eq!(sub("${set}"), Ok(String::new()));
    }

    #[test]
    fn defaults_and_requirements() {
        assert_eq!(sub("${UNSET:-d}"), Ok("d".into()));
        assert_eq!(sub("${EMPTY:-d}"), Ok("d".into()));
        assert_eq!(sub("${EMPTY-d}"), Ok(String::new()));
        assert_eq!(sub("${UNSET-d}"), Ok("d".into()));
        assert_eq!(sub("${SET:?oops}"), Ok("value".into()));
        assert_eq!(sub("${EMPTY?oops}"), Ok(String::new()));
        assert_eq!(
            sub("${EMPTY:?oops}"),
            Err(InvalidTemplate(
                "required variable EMPTY is missing a value: oops".into()
            ))
        );
        assert_eq!(
            sub("${UNSET?}"),
            Err(InvalidTemplate(
                "required variable UNSET is missing a value: ".into()
            ))
        );
    }

    #[test]
    fn dockers_quirks_are_kept() {
        // the unbraced form takes a default that runs to the end
        assert_eq!(sub("$UNSET-a b"), Ok("a b".into()));
        // '-' is tried before ':?'
        assert_eq!(sub("${UNSET:?a-b}"), Ok("b".into()));
        // a later good substitution clears an earlier error
        assert_eq!(sub("${UNSET:?x} $SET"), Ok(" value".into()));
        // defaults do not nest
        assert_eq!(sub("${UNSET:-${SET}}"), Ok("${SET}".into()));
    }

    #[test]
    fn invalid_dollars_name_the_whole_template() {
        for t in ["$", "a $ b", "${", "${1}", "${SET x}", "$-"] {
            assert_eq!(sub(t), Err(InvalidTemplate(t.into())), "{t}");
        }
    }
}
