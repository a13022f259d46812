//! The one error type: Docker's message, plus where in which file when the
//! problem has a node (Docker itself names no position).

use std::fmt;

/// A place in a compose file: the file as the caller named it, 1-based line
/// and column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComposeError {
    message: String,
    position: Option<Position>,
    /// a YAML syntax error reads `FILE: yaml: line L, column C: …`
    syntax: bool,
}

impl ComposeError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        ComposeError {
            message: message.into(),
            position: None,
            syntax: false,
        }
    }

    pub(crate) fn at(message: impl Into<String>, position: Option<Position>) -> Self {
        ComposeError {
            message: message.into(),
            position,
            syntax: false,
        }
    }

    pub(crate) fn syntax(file: &str, line: usize, column: usize, info: &str) -> Self {
        ComposeError {
            message: format!("yaml: line {line}, column {column}: {info}"),
            position: Some(Position {
                file: file.to_string(),
                line,
                column,
            }),
            syntax: true,
        }
    }

    /// Prefixes the message as Docker's wrapping errors do ("service web: …").
    pub(crate) fn context(mut self, prefix: &str) -> Self {
        self.message = format!("{prefix}: {}", self.message);
        self
    }

    /// The docker CLI's text for this error, without the position.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Where the offending node is, when there is one.
    pub fn position(&self) -> Option<&Position> {
        self.position.as_ref()
    }
}

impl fmt::Display for ComposeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.position, self.syntax) {
            (Some(p), true) => write!(f, "{}: {}", p.file, self.message),
            (Some(p), false) => {
                // Docker's multi-line messages end in a newline; keep it last
                let trimmed = self.message.trim_end_matches('\n');
                let tail = &self.message[trimmed.len()..];
                write!(f, "{trimmed} ({p}){tail}")
            }
            (None, _) => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ComposeError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos() -> Option<Position> {
        Some(Position {
            file: "f.yml".into(),
            line: 3,
            column: 5,
        })
    }

    #[test]
    fn display_adds_the_position_after_dockers_text() {
        let e = ComposeError::at("services.web Additional property foo is not allowed", pos());
        assert_eq!(
            e.to_string(),
            "services.web Additional property foo is not allowed (f.yml:3:5)"
        );
        assert_eq!(
            e.message(),
            "services.web Additional property foo is not allowed"
        );
        let multi = ComposeError::at("a:\n\nb\n", pos());
        assert_eq!(multi.to_string(), "a:\n\nb (f.yml:3:5)\n");
    }

    #[test]
    fn syntax_errors_are_prefixed_by_the_file() {
        let e = ComposeError::syntax(
            "f.yml",
            4,
            7,
            "mapping values are not allowed in this context",
        );
        assert_eq!(
            e.to_string(),
            "f.yml: yaml: line 4, column 7: mapping values are not allowed in this context"
        );
    }
}
