//! The variables interpolation sees (the process environment and, berth's
//! addition, a `.env` file), and the docker CLI's `env_file` format.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{ComposeError, Position};
use crate::template;

/// Variables for `${VAR}` interpolation and for `environment`/`env_file`
/// entries without a value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// The variables of this process (entries that are not UTF-8 are skipped).
    pub fn from_process() -> Env {
        Env {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .filter(|(k, _)| !k.is_empty())
                .collect(),
        }
    }

    /// Exactly these variables.
    pub fn from_vars<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Env {
        Env {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// What `berth stack deploy` uses: the process environment plus the
    /// `.env` file of `working_dir` when there is one.
    pub fn for_stack(working_dir: &Path) -> Result<Env, ComposeError> {
        Env::from_process().with_dotenv_dir(working_dir)
    }

    /// Adds `working_dir/.env` when it exists; variables already set win.
    pub fn with_dotenv_dir(self, working_dir: &Path) -> Result<Env, ComposeError> {
        let path = working_dir.join(".env");
        match std::fs::read(&path) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                self.with_dotenv(&path.to_string_lossy(), &text)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(self),
            Err(e) => Err(ComposeError::new(format!(
                "{}: {e}",
                path.to_string_lossy()
            ))),
        }
    }

    /// Adds the variables of a `.env` text (`file` names it in errors);
    /// variables already set win.
    pub fn with_dotenv(mut self, file: &str, text: &str) -> Result<Env, ComposeError> {
        for (key, value) in parse_dotenv(file, text, &self)? {
            self.vars.entry(key).or_insert(value);
        }
        Ok(self)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }

    pub(crate) fn lookup(&self, key: &str) -> Option<String> {
        self.vars.get(key).cloned()
    }
}

/// The compose-spec `.env` format: `[export ]KEY=VALUE`; single quotes are
/// literal, double quotes take `\n`-style escapes, both may span lines;
/// unquoted values lose a ` #` comment and surrounding blanks. Unquoted and
/// double-quoted values interpolate `${VAR}` from the environment and the
/// lines before.
fn parse_dotenv(file: &str, text: &str, env: &Env) -> Result<Vec<(String, String)>, ComposeError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut vars: Vec<(String, String)> = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut index = 0;
    while index < lines.len() {
        let number = index + 1;
        let line = lines[index].trim_start();
        index += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |msg: String| {
            ComposeError::at(
                msg,
                Some(Position {
                    file: file.to_string(),
                    line: number,
                    column: 1,
                }),
            )
        };
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let Some((key, raw)) = line.split_once('=') else {
            return Err(at(format!("invalid .env line: {line}")));
        };
        let key = key.trim_end();
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err(at(format!(
                "invalid variable name {}",
                berth_units::go_quote(key)
            )));
        }
        let raw = raw.trim_start();
        let lookup = |name: &str| {
            vars.iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .or_else(|| env.lookup(name))
        };
        let value = match raw.chars().next() {
            Some(q @ ('\'' | '"')) => {
                let mut body = raw[1..].to_string();
                while !closes(&body, q) && index < lines.len() {
                    body.push('\n');
                    body.push_str(lines[index]);
                    index += 1;
                }
                let end = closing_quote(&body, q)
                    .ok_or_else(|| at(format!("unterminated quoted value for {key}")))?;
                let inner = &body[..end];
                if q == '\'' {
                    inner.to_string()
                } else {
                    let unescaped = unescape(inner);
                    expand(&unescaped, &lookup).map_err(at)?
                }
            }
            _ => {
                let bare = match raw.find(" #") {
                    Some(i) => &raw[..i],
                    None => raw,
                };
                expand(bare.trim_end(), &lookup).map_err(at)?
            }
        };
        vars.push((key.to_string(), value));
    }
    Ok(vars)
}

fn closes(body: &str, quote: char) -> bool {
    closing_quote(body, quote).is_some()
}

fn closing_quote(body: &str, quote: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        if quote == '"' && c == '\\' && !escaped {
            escaped = true;
            continue;
        }
        if c == quote && !escaped {
            return Some(i);
        }
        escaped = false;
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

fn expand(value: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    template::substitute(value, lookup).map_err(|e| {
        format!(
            "invalid interpolation format in .env: {}",
            berth_units::go_quote(&e.0)
        )
    })
}

/// The docker CLI's `pkg/kvfile` (env_file): comments and blank lines are
/// skipped, leading blanks trimmed, quotes kept literally; a bare `KEY`
/// takes the environment's value and is dropped when there is none.
pub(crate) fn parse_env_file(path: &str, env: &Env) -> Result<Vec<String>, String> {
    let bytes = crate::gofmt::read_file(path)?;
    let invalid = |e: String| format!("invalid env file ({path}): {e}");
    let mut lines = Vec::new();
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let raw = if i == 0 {
            raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw)
        } else {
            raw
        };
        let Ok(text) = std::str::from_utf8(raw) else {
            return Err(invalid(format!(
                "invalid utf8 bytes at line {}: {raw:?}",
                i + 1
            )));
        };
        let line = text.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, has_value) = match line.split_once('=') {
            Some((k, _)) => (k, true),
            None => (line, false),
        };
        if key.is_empty() {
            return Err(invalid(format!("no variable name on line '{line}'")));
        }
        if key.contains([' ', '\t']) {
            return Err(invalid(format!("variable '{key}' contains whitespaces")));
        }
        if has_value {
            lines.push(line.to_string());
        } else if let Some(value) = env.get(line) {
            lines.push(format!("{key}={value}"));
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_values_lose_quotes_comments_and_blanks() {
        let env = Env::from_vars([("HOME_DIR", "/home/x"), ("KEEP", "process")]);
        let text = concat!(
            "\u{feff}# comment\n",
            "A=plain value # a comment\n",
            "export B = 'single $HOME_DIR'\n",
            "C=\"double\\n${HOME_DIR}\"\n",
            "D=\"multi\nline\"\n",
            "KEEP=dotenv\n",
            "E=${A}!\n",
            "\n",
        );
        let env = env.with_dotenv(".env", text).expect("parses");
        assert_eq!(env.get("A"), Some("plain value"));
        assert_eq!(env.get("B"), Some("single $HOME_DIR"));
        assert_eq!(env.get("C"), Some("double\n/home/x"));
        assert_eq!(env.get("D"), Some("multi\nline"));
        assert_eq!(env.get("KEEP"), Some("process"), "the process env wins");
        assert_eq!(env.get("E"), Some("plain value!"));
    }

    #[test]
    fn dotenv_errors_name_the_line() {
        let e = Env::default()
            .with_dotenv(".env", "A=1\nnot a line\n")
            .unwrap_err();
        assert_eq!(e.to_string(), "invalid .env line: not a line (.env:2:1)");
        let e = Env::default().with_dotenv(".env", "A='open\n").unwrap_err();
        assert_eq!(e.message(), "unterminated quoted value for A");
    }

    #[test]
    fn env_files_follow_kvfile() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("app.env");
        std::fs::write(
            &path,
            "\u{feff}# c\n  A=1 \nB=\"q\"\nFROM_ENV\nMISSING\nC=x=y\r\n",
        )
        .expect("write");
        let env = Env::from_vars([("FROM_ENV", "e")]);
        let p = path.to_string_lossy().into_owned();
        let lines = parse_env_file(&p, &env).expect("parses");
        assert_eq!(lines, ["A=1 ", "B=\"q\"", "FROM_ENV=e", "C=x=y"]);

        std::fs::write(&path, "=x\n").expect("write");
        assert_eq!(
            parse_env_file(&p, &env).unwrap_err(),
            format!("invalid env file ({p}): no variable name on line '=x'")
        );
        std::fs::write(&path, "A B=1\n").expect("write");
        assert_eq!(
            parse_env_file(&p, &env).unwrap_err(),
            format!("invalid env file ({p}): variable 'A B' contains whitespaces")
        );
    }
}
