//! Docker's variable substitution and quote removal, following the shell
//! lexer of moby/buildkit (frontend/dockerfile/shell/lex.go) rule for rule,
//! because a build whose words expand differently from Docker's is a build
//! that produces a different image.

use crate::Error;

/// Substitutions nested deeper than this are refused: the lexer recurses
/// once per `${...:-${...}}` level, and hostile input must not overflow the
/// stack.
const MAX_DEPTH: usize = 64;

/// The lexer's switches that the parser needs besides plain expansion
/// (buildkit's `RawQuotes`, `RawEscapes` and `SkipUnsetEnv`): heredoc
/// detection lexes a whole line keeping quotes, escapes and unknown `$VARS`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LexOptions {
    pub raw_quotes: bool,
    pub raw_escapes: bool,
    pub skip_unset: bool,
}

/// Docker's variable substitution and quote removal for one word or value,
/// as its shell lexer does: `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`,
/// `${VAR:+word}`, `${VAR+word}`, `${VAR:?msg}`, `${VAR?msg}`, the pattern
/// forms `${VAR#pat}`, `${VAR##pat}`, `${VAR%pat}`, `${VAR%%pat}`,
/// `${VAR/pat/repl}` and `${VAR//pat/repl}`, escapes with `escape` (so `\$`
/// is a literal `$`), single quotes literal, double quotes allowing
/// substitution. Unknown variables expand to "".
pub fn expand(
    word: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Error> {
    process(word, escape, LexOptions::default(), lookup).map(|(s, _)| s)
}

/// [`expand`], then split into words on unquoted whitespace (whitespace that
/// came out of a variable splits too, as in Docker); empty words are dropped.
pub fn expand_words(
    text: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, Error> {
    process(text, escape, LexOptions::default(), lookup).map(|(_, w)| w)
}

pub(crate) fn process(
    word: &str,
    escape: char,
    opts: LexOptions,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, Vec<String>), Error> {
    let mut lexer = Lexer {
        chars: word.chars().collect(),
        pos: 0,
        escape,
        raw_quotes: opts.raw_quotes,
        raw_escapes: opts.raw_escapes,
        skip_unset: opts.skip_unset,
        lookup,
        depth: 0,
    };
    lexer
        .process_stop_on(None, opts.raw_escapes)
        .map_err(|message| Error::Expand {
            word: word.to_string(),
            message,
        })
}

#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, c: char) {
        if c.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(c);
        }
    }

    fn add_raw_char(&mut self, c: char) {
        self.word.push(c);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        for c in s.chars() {
            self.add_char(c);
        }
    }

    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(std::mem::take(&mut self.word));
        }
        self.words
    }
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    raw_quotes: bool,
    raw_escapes: bool,
    skip_unset: bool,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    depth: usize,
}

type LexResult<T> = Result<T, String>;

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn lookup(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }

    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> LexResult<(String, Vec<String>)> {
        if self.depth >= MAX_DEPTH {
            return Err("syntax error: substitutions nested too deeply".to_string());
        }
        self.depth += 1;
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let result = self.stop_on(stop);
        self.raw_escapes = saved;
        self.depth -= 1;
        result
    }

    fn stop_on(&mut self, stop: Option<char>) -> LexResult<(String, Vec<String>)> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.pos += 1;
                return Ok((result, words.finish()));
            }
            match ch {
                '$' => {
                    let value = self.process_dollar()?;
                    result.push_str(&value);
                    // unquoted substitution results are split into words
                    words.add_string(&value);
                }
                '\'' => {
                    let value = self.single_quote()?;
                    result.push_str(&value);
                    words.add_raw_string(&value);
                }
                '"' => {
                    let value = self.double_quote()?;
                    result.push_str(&value);
                    words.add_raw_string(&value);
                }
                _ => {
                    self.pos += 1;
                    if ch == self.escape {
                        if self.raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        // an escape at the very end is dropped
                        let Some(escaped) = self.next() else { break };
                        words.add_raw_char(escaped);
                        result.push(escaped);
                    } else {
                        words.add_char(ch);
                        result.push(ch);
                    }
                }
            }
        }
        if let Some(stop) = stop {
            return Err(format!(
                "unexpected end of statement while looking for matching {stop}"
            ));
        }
        Ok((result, words.finish()))
    }

    fn single_quote(&mut self) -> LexResult<String> {
        // no escapes at all inside single quotes, as in sh
        self.pos += 1;
        let mut out = String::new();
        if self.raw_quotes {
            out.push('\'');
        }
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .to_string(),
                    );
                }
                Some('\'') => {
                    if self.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> LexResult<String> {
        self.pos += 1;
        let mut out = String::new();
        if self.raw_quotes {
            out.push('"');
        }
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .to_string(),
                    );
                }
                Some('"') => {
                    self.pos += 1;
                    if self.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let value = self.process_dollar()?;
                    out.push_str(&value);
                }
                Some(mut ch) => {
                    self.pos += 1;
                    if ch == self.escape {
                        if self.raw_escapes {
                            out.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            // only these are escapable inside double quotes;
                            // any other escape stays literal, as in sh
                            Some(next) if next == '"' || next == '$' || next == self.escape => {
                                ch = next;
                                self.pos += 1;
                            }
                            Some(_) if self.raw_escapes => continue,
                            Some(_) => {}
                        }
                    }
                    out.push(ch);
                }
            }
        }
    }

    fn nested(&mut self, stop: char, raw_escapes: bool, missing: &str) -> LexResult<String> {
        match self.process_stop_on(Some(stop), raw_escapes) {
            Ok((word, _)) => Ok(word),
            // buildkit reports any failure that ran into the end as the
            // missing delimiter
            Err(_) if self.peek().is_none() => Err(missing.to_string()),
            Err(e) => Err(e),
        }
    }

    fn unset(&self, name: &str, rest: &str) -> Option<String> {
        self.skip_unset.then(|| format!("${{{name}{rest}}}"))
    }

    fn process_dollar(&mut self) -> LexResult<String> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.pos += 1;
        match self.peek() {
            None => return Err("syntax error: missing '}'".to_string()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".to_string()),
            Some(_) => {}
        }
        let name = self.process_name();
        let Some(ch) = self.next() else {
            return Err("syntax error: missing '}'".to_string());
        };
        match ch {
            '}' => {
                let value = self.lookup(&name);
                if value.is_none()
                    && let Some(raw) = self.unset(&name, "")
                {
                    return Ok(raw);
                }
                Ok(value.unwrap_or_default())
            }
            ':' | '+' | '-' | '?' | '#' | '%' => {
                let (null_is_unset, modifier) = if ch == ':' {
                    (true, self.next())
                } else {
                    (false, Some(ch))
                };
                let chs = if ch == ':' {
                    format!(":{}", modifier.map(String::from).unwrap_or_default())
                } else {
                    ch.to_string()
                };
                // patterns keep their escapes so that `\*` stays literal
                let raw = matches!(modifier, Some('#' | '%'));
                let word = self.nested('}', raw, "syntax error: missing '}'")?;
                let value = self.lookup(&name);
                if value.is_none()
                    && let Some(raw) = self.unset(&name, &format!("{chs}{word}"))
                {
                    return Ok(raw);
                }
                let set = value.is_some();
                let value = value.unwrap_or_default();
                let unset = !set || (null_is_unset && value.is_empty());
                match modifier {
                    Some('-') => Ok(if unset { word } else { value }),
                    Some('+') => Ok(if unset { String::new() } else { word }),
                    Some('?') => {
                        if !set {
                            let message = if word.is_empty() {
                                "is not allowed to be unset"
                            } else {
                                &word
                            };
                            Err(format!("{name}: {message}"))
                        } else if null_is_unset && value.is_empty() {
                            let message = if word.is_empty() {
                                "is not allowed to be empty"
                            } else {
                                &word
                            };
                            Err(format!("{name}: {message}"))
                        } else {
                            Ok(value)
                        }
                    }
                    Some(m @ ('#' | '%')) => {
                        // a doubled operator (## or %%) asks for the longest match
                        let (greedy, pattern) = match word.strip_prefix(m) {
                            Some(p) => (true, p),
                            None => (false, word.as_str()),
                        };
                        let toks = compile_shell_pattern(pattern).map_err(|e| {
                            format!("invalid pattern ({pattern}) in substitution: {e}")
                        })?;
                        Ok(if m == '%' {
                            trim_suffix(&toks, &value, greedy)
                        } else {
                            trim_prefix(&toks, &value, greedy)
                        })
                    }
                    _ => Err(format!("unsupported modifier ({chs}) in substitution")),
                }
            }
            '/' => {
                let all = self.peek() == Some('/');
                if all {
                    self.pos += 1;
                }
                let pattern = self.nested('/', true, "syntax error: missing '/' in ${}")?;
                let replacement = self.nested('}', true, "syntax error: missing '}'")?;
                let value = self.lookup(&name);
                if value.is_none()
                    && let Some(raw) = self.unset(&name, &format!("/{pattern}/{replacement}"))
                {
                    return Ok(raw);
                }
                let toks = compile_shell_pattern(&pattern)
                    .map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))?;
                Ok(replace(
                    &toks,
                    &value.unwrap_or_default(),
                    &replacement,
                    all,
                ))
            }
            other => Err(format!("unsupported modifier ({other}) in substitution")),
        }
    }

    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_numeric() {
                // positional parameters are all digits: $10 is one name
                while let Some(c) = self.peek() {
                    if !c.is_numeric() {
                        break;
                    }
                    name.push(c);
                    self.pos += 1;
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.pos += 1;
                return ch.to_string();
            }
            if !(ch.is_alphanumeric() || ch == '_') {
                break;
            }
            self.pos += 1;
            name.push(ch);
        }
        name
    }
}

/// One element of a `${VAR#pattern}`-style shell pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Glob {
    Star,
    One,
    Lit(char),
}

fn compile_shell_pattern(pattern: &str) -> Result<Vec<Glob>, String> {
    let mut out = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push(Glob::Star),
            '?' => out.push(Glob::One),
            '\\' => match chars.peek().copied() {
                // `\}` and `\/` only protect the ${} delimiters
                Some('}' | '/') => {}
                Some(n @ ('*' | '?' | '\\')) => {
                    chars.next();
                    out.push(Glob::Lit(n));
                }
                Some(n) => return Err(format!("invalid escape '\\{n}'")),
                None => return Err("invalid escape '\\'".to_string()),
            },
            c => out.push(Glob::Lit(c)),
        }
    }
    Ok(out)
}

/// `ends[e]` is whether `toks` matches all of `chars[..e]`. Like buildkit's
/// regular expressions, wildcards never match a newline.
fn glob_ends(toks: &[Glob], chars: &[char]) -> Vec<bool> {
    let m = toks.len();
    let closure = |set: &mut Vec<bool>| {
        for i in 0..m {
            if set[i] && toks[i] == Glob::Star {
                set[i + 1] = true;
            }
        }
    };
    let mut ends = vec![false; chars.len() + 1];
    let mut cur = vec![false; m + 1];
    cur[0] = true;
    closure(&mut cur);
    ends[0] = cur[m];
    for (k, &c) in chars.iter().enumerate() {
        let mut next = vec![false; m + 1];
        for i in 0..m {
            if !cur[i] {
                continue;
            }
            match toks[i] {
                Glob::Star if c != '\n' => next[i] = true,
                Glob::One if c != '\n' => next[i + 1] = true,
                Glob::Lit(x) if x == c => next[i + 1] = true,
                _ => {}
            }
        }
        closure(&mut next);
        if !next.iter().any(|&b| b) {
            break;
        }
        ends[k + 1] = next[m];
        cur = next;
    }
    ends
}

fn pick(ends: &[bool], greedy: bool) -> Option<usize> {
    if greedy {
        ends.iter().rposition(|&b| b)
    } else {
        ends.iter().position(|&b| b)
    }
}

fn trim_prefix(toks: &[Glob], value: &str, greedy: bool) -> String {
    let chars: Vec<char> = value.chars().collect();
    match pick(&glob_ends(toks, &chars), greedy) {
        Some(len) => chars[len..].iter().collect(),
        None => value.to_string(),
    }
}

fn trim_suffix(toks: &[Glob], value: &str, greedy: bool) -> String {
    // a suffix match is a prefix match of the reversed pattern on the
    // reversed value, which is how buildkit does it too
    let rtoks: Vec<Glob> = toks.iter().rev().copied().collect();
    let rchars: Vec<char> = value.chars().rev().collect();
    match pick(&glob_ends(&rtoks, &rchars), greedy) {
        Some(len) => {
            let keep = rchars.len() - len;
            value.chars().take(keep).collect()
        }
        None => value.to_string(),
    }
}

fn replace(toks: &[Glob], value: &str, replacement: &str, all: bool) -> String {
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    let mut out = String::new();
    let mut i = 0;
    let mut last_end = None;
    while i <= n {
        let found = pick(&glob_ends(toks, &chars[i..]), true);
        if let Some(len) = found {
            // Go's ReplaceAll ignores an empty match right after a match
            if !(len == 0 && last_end == Some(i)) {
                out.push_str(replacement);
                if !all {
                    out.extend(&chars[i + len..]);
                    return out;
                }
                last_end = Some(i + len);
                if len > 0 {
                    i += len;
                    continue;
                }
            }
        }
        if i < n {
            out.push(chars[i]);
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn ex(word: &str, vars: &[(&str, &str)]) -> String {
        let e = env(vars);
        expand(word, '\\', &|k| e.get(k).cloned()).unwrap()
    }

    fn ex_err(word: &str, vars: &[(&str, &str)]) -> String {
        let e = env(vars);
        expand(word, '\\', &|k| e.get(k).cloned())
            .unwrap_err()
            .to_string()
    }

    fn words(text: &str, vars: &[(&str, &str)]) -> Vec<String> {
        let e = env(vars);
        expand_words(text, '\\', &|k| e.get(k).cloned()).unwrap()
    }

    #[test]
    fn plain_and_braced_variables() {
        let v = [("A", "a"), ("B", "bee"), ("EMPTY", "")];
        assert_eq!(ex("$A", &v), "a");
        assert_eq!(ex("${A}", &v), "a");
        assert_eq!(ex("x$A-y", &v), "xa-y");
        assert_eq!(ex("${A}${B}", &v), "abee");
        assert_eq!(ex("$Ab", &v), "");
        assert_eq!(ex("${A}b", &v), "ab");
        assert_eq!(ex("$UNKNOWN", &v), "");
        assert_eq!(ex("${UNKNOWN}", &v), "");
        assert_eq!(ex("a$", &v), "a$");
        assert_eq!(ex("$ a", &v), "$ a");
        assert_eq!(ex("$/x", &v), "$/x");
        assert_eq!(ex("$1x", &v), "x");
        assert_eq!(ex("a$$b", &v), "ab");
    }

    #[test]
    fn default_and_alternative_forms() {
        let v = [("A", "a"), ("EMPTY", "")];
        assert_eq!(ex("${A:-x}", &v), "a");
        assert_eq!(ex("${U:-x}", &v), "x");
        assert_eq!(ex("${EMPTY:-x}", &v), "x");
        assert_eq!(ex("${EMPTY-x}", &v), "");
        assert_eq!(ex("${U-x}", &v), "x");
        assert_eq!(ex("${A:+x}", &v), "x");
        assert_eq!(ex("${EMPTY:+x}", &v), "");
        assert_eq!(ex("${EMPTY+x}", &v), "x");
        assert_eq!(ex("${U+x}", &v), "");
        assert_eq!(ex("${U:-a b}", &v), "a b");
        assert_eq!(ex("${U:-}", &v), "");
        assert_eq!(ex("${A:?boom}", &v), "a");
        assert_eq!(ex("${EMPTY?boom}", &v), "");
    }

    #[test]
    fn nested_defaults() {
        let v = [("B", "bee")];
        assert_eq!(ex("${A:-${B:-x}}", &v), "bee");
        assert_eq!(ex("${A:-${C:-x}}", &v), "x");
        assert_eq!(ex("${A:-${C:-${B}}}", &v), "bee");
        assert_eq!(ex("${A:-pre${B}post}", &v), "prebeepost");
        assert_eq!(ex("${A:-\"q ${B}\"}", &v), "q bee");
        assert_eq!(ex("${A:-'$B'}", &v), "$B");
    }

    #[test]
    fn required_variables_error() {
        let v = [("EMPTY", "")];
        assert_eq!(
            ex_err("${A:?need it}", &v),
            "failed to process \"${A:?need it}\": A: need it"
        );
        assert_eq!(
            ex_err("${A?}", &v),
            "failed to process \"${A?}\": A: is not allowed to be unset"
        );
        assert_eq!(
            ex_err("${EMPTY:?}", &v),
            "failed to process \"${EMPTY:?}\": EMPTY: is not allowed to be empty"
        );
    }

    #[test]
    fn escapes_and_quotes() {
        let v = [("A", "a")];
        assert_eq!(ex("\\$A", &v), "$A");
        assert_eq!(ex("\\${A}", &v), "${A}");
        assert_eq!(ex("a\\ b", &v), "a b");
        assert_eq!(ex("'$A'", &v), "$A");
        assert_eq!(ex("'a\\b'", &v), "a\\b");
        assert_eq!(ex("\"$A\"", &v), "a");
        assert_eq!(ex("\"\\$A\"", &v), "$A");
        assert_eq!(ex("\"a\\\"b\"", &v), "a\"b");
        assert_eq!(ex("\"a\\nb\"", &v), "a\\nb");
        assert_eq!(ex("\"a\\\\b\"", &v), "a\\b");
        assert_eq!(ex("\"it's\"", &v), "it's");
        assert_eq!(ex("'say \"hi\"'", &v), "say \"hi\"");
        assert_eq!(ex("abc\\", &v), "abc");
        assert_eq!(ex("a\"b c\"d", &v), "ab cd");
        assert_eq!(ex("", &v), "");
    }

    #[test]
    fn backtick_escape() {
        let e = env(&[("A", "a")]);
        let lookup = |k: &str| e.get(k).cloned();
        assert_eq!(expand("`$A", '`', &lookup).unwrap(), "$A");
        assert_eq!(expand("c:\\dir\\$A", '`', &lookup).unwrap(), "c:\\dir\\a");
        assert_eq!(expand("\"`\"\"", '`', &lookup).unwrap(), "\"");
    }

    #[test]
    fn syntax_errors() {
        assert!(ex_err("${", &[]).ends_with("syntax error: missing '}'"));
        assert!(ex_err("${A", &[]).ends_with("syntax error: missing '}'"));
        assert!(ex_err("${A:-x", &[]).ends_with("syntax error: missing '}'"));
        assert!(ex_err("${}", &[]).ends_with("syntax error: bad substitution"));
        assert!(ex_err("${:}", &[]).ends_with("syntax error: bad substitution"));
        assert!(ex_err("${A!x}", &[]).ends_with("unsupported modifier (!) in substitution"));
        assert!(ex_err("${A:=x}", &[]).ends_with("unsupported modifier (:=) in substitution"));
        assert!(ex_err("'abc", &[]).contains("matching single-quote"));
        assert!(ex_err("\"abc", &[]).contains("matching double-quote"));
    }

    #[test]
    fn pattern_substitutions() {
        let v = [("P", "/usr/local/bin/tool.tar.gz")];
        assert_eq!(ex("${P#*/}", &v), "usr/local/bin/tool.tar.gz");
        assert_eq!(ex("${P##*/}", &v), "tool.tar.gz");
        assert_eq!(ex("${P%.*}", &v), "/usr/local/bin/tool.tar");
        assert_eq!(ex("${P%%.*}", &v), "/usr/local/bin/tool");
        assert_eq!(ex("${P%nomatch}", &v), "/usr/local/bin/tool.tar.gz");
        assert_eq!(ex("${P/local/opt}", &v), "/usr/opt/bin/tool.tar.gz");
        assert_eq!(ex("${P//\\//_}", &v), "_usr_local_bin_tool.tar.gz");
        assert_eq!(ex("${P/o/0}", &v), "/usr/l0cal/bin/tool.tar.gz");
        assert_eq!(ex("${P//o/0}", &v), "/usr/l0cal/bin/t00l.tar.gz");
        assert_eq!(ex("${P#\\*}", &v), "/usr/local/bin/tool.tar.gz");
        assert!(ex_err("${P#\\x}", &v).contains("invalid escape"));
        assert!(ex_err("${P/a", &v).ends_with("syntax error: missing '/' in ${}"));
    }

    #[test]
    fn word_splitting() {
        let v = [("A", "x y"), ("E", "")];
        assert_eq!(words("a b  c", &v), ["a", "b", "c"]);
        assert_eq!(words("$A z", &v), ["x", "y", "z"]);
        assert_eq!(words("\"$A\" z", &v), ["x y", "z"]);
        assert_eq!(words("'a b' c\\ d", &v), ["a b", "c d"]);
        assert_eq!(words("$E", &v), Vec::<String>::new());
        assert_eq!(words("\"\" a", &v), ["a"]);
        assert_eq!(words("  ", &v), Vec::<String>::new());
        assert_eq!(words("80/tcp 443", &v), ["80/tcp", "443"]);
    }

    #[test]
    fn raw_mode_keeps_quotes_escapes_and_unknown_vars() {
        let opts = LexOptions {
            raw_quotes: true,
            raw_escapes: true,
            skip_unset: true,
        };
        let (_, w) = process("cat <<'EOF' $X ${Y:-z} a\\ b", '\\', opts, &|_| None).unwrap();
        assert_eq!(w, ["cat", "<<'EOF'", "$X", "${Y:-z}", "a\\ b"]);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "${A:-".repeat(10_000) + &"}".repeat(10_000);
        assert!(ex_err(&deep, &[]).contains("nested too deeply"));
        let ok = "${A:-".repeat(20) + "x" + &"}".repeat(20);
        assert_eq!(ex(&ok, &[]), "x");
    }

    #[test]
    fn never_panics_on_odd_input() {
        let pieces = [
            "$", "{", "}", ":", "-", "+", "?", "#", "%", "/", "\\", "'", "\"", "`", "a", " ", "é",
            "\n", "*", "${", "$A",
        ];
        let e = env(&[("A", "v a l")]);
        let lookup = |k: &str| e.get(k).cloned();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..3000 {
            let mut s = String::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 12) as usize;
            for k in 0..len {
                let idx = ((seed >> (k * 5)) as usize) % pieces.len();
                s.push_str(pieces[idx]);
            }
            let _ = expand(&s, '\\', &lookup);
            let _ = expand_words(&s, '`', &lookup);
        }
    }
}
