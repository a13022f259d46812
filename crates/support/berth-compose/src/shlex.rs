//! google/shlex's Split, which the loader uses for string `command` and
//! `entrypoint`: quotes and backslashes as a POSIX shell, `#` comments.

#[derive(Clone, Copy, PartialEq)]
enum State {
    Start,
    Word,
    Escaping,
    EscapingQuoted,
    QuotingEscaping,
    Quoting,
    Comment,
}

pub(crate) fn split(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut state = State::Start;
    for c in s.chars().map(Some).chain(std::iter::once(None)) {
        match (state, c) {
            (State::Start, None) => break,
            (State::Start, Some(' ' | '\t' | '\r' | '\n')) => {}
            (State::Start, Some('"')) => state = State::QuotingEscaping,
            (State::Start, Some('\'')) => state = State::Quoting,
            (State::Start, Some('\\')) => state = State::Escaping,
            (State::Start, Some('#')) => state = State::Comment,
            (State::Start, Some(ch)) => {
                word.push(ch);
                state = State::Word;
            }
            (State::Word, None | Some(' ' | '\t' | '\r' | '\n')) => {
                words.push(std::mem::take(&mut word));
                state = State::Start;
                if c.is_none() {
                    break;
                }
            }
            (State::Word, Some('"')) => state = State::QuotingEscaping,
            (State::Word, Some('\'')) => state = State::Quoting,
            (State::Word, Some('\\')) => state = State::Escaping,
            (State::Word, Some(ch)) => word.push(ch),
            (State::Escaping | State::EscapingQuoted, None) => {
                return Err("EOF found after escape character".into());
            }
            (State::Escaping, Some(ch)) => {
                word.push(ch);
                state = State::Word;
            }
            (State::EscapingQuoted, Some(ch)) => {
                word.push(ch);
                state = State::QuotingEscaping;
            }
            (State::QuotingEscaping | State::Quoting, None) => {
                return Err("EOF found when expecting closing quote".into());
            }
            (State::QuotingEscaping, Some('"')) => state = State::Word,
            (State::QuotingEscaping, Some('\\')) => state = State::EscapingQuoted,
            (State::Quoting, Some('\'')) => state = State::Word,
            (State::QuotingEscaping | State::Quoting, Some(ch)) => word.push(ch),
            (State::Comment, None) => break,
            (State::Comment, Some('\n')) => {
                word.clear();
                state = State::Start;
            }
            (State::Comment, Some(_)) => {}
        }
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn splits_like_google_shlex() {
        assert_eq!(split("a  b\tc").unwrap(), ["a", "b", "c"]);
        assert_eq!(
            split(r#"sh -c "echo \"hi\" $X""#).unwrap(),
            ["sh", "-c", r#"echo "hi" $X"#]
        );
        assert_eq!(split("'a b'c d\\ e").unwrap(), ["a bc", "d e"]);
        assert_eq!(split("a # comment\nb").unwrap(), ["a", "b"]);
        assert_eq!(split("a#b").unwrap(), ["a#b"]);
        assert_eq!(split("\"\"").unwrap(), [""]);
        assert!(split("").unwrap().is_empty());
        assert_eq!(
            split("a \"b").unwrap_err(),
            "EOF found when expecting closing quote"
        );
        assert_eq!(
            split("x \\").unwrap_err(),
            "EOF found after escape character"
        );
    }
}
