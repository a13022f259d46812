//! Dockerfiles for the builder: [`parse`] turns Dockerfile text into stages
//! of typed instructions (with line numbers, the text Docker prints in
//! "Step 2/5 : RUN echo hi", heredoc bodies and flags), [`expand`] and
//! [`expand_words`] do Docker's variable substitution and quote removal, and
//! [`DockerIgnore`] applies `.dockerignore` rules. No I/O.
//!
//! The line-level parser is written here, following moby/buildkit's
//! `frontend/dockerfile/parser` rule for rule, instead of using the
//! `parse-dockerfile` crate the design doc names. That crate (0.1.9) reads
//! a heredoc in `RUN` only when the command starts with it and only one of
//! them (`RUN cat <<EOF > /x` and `RUN <<A <<B` are left unread, a TODO in
//! its source), keeps `ENV`/`LABEL`/`ARG` as one unsplit string, accepts any
//! flag, and neither rebuilds Docker's joined one-line "original" text nor
//! gives Docker's error messages. Fixing all of that on top of it would have
//! been more code than the parser itself.

mod ignore;
mod lex;

pub use ignore::DockerIgnore;
pub use lex::{expand, expand_words};

use lex::LexOptions;
use std::collections::HashMap;

/// A parse or substitution failure, worded like Docker's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A problem with the instruction that starts at `line` (1-based).
    #[error("dockerfile parse error line {line}: {message}")]
    Parse { line: usize, message: String },
    /// Only blank lines, comments and parser directives.
    #[error("file with no instructions")]
    NoInstructions,
    /// Instructions (only `ARG`s) but no `FROM`.
    #[error("dockerfile has no FROM instruction")]
    NoFrom,
    /// [`expand`]/[`expand_words`] could not process `word`.
    #[error("failed to process {}: {}", go_quote(.word), .message)]
    Expand { word: String, message: String },
}

impl Error {
    /// The 1-based line a parse error is about.
    pub fn line(&self) -> Option<usize> {
        match self {
            Error::Parse { line, .. } => Some(*line),
            _ => None,
        }
    }
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// From the `# escape=` directive, default `\`.
    pub escape: char,
    /// The `# syntax=` directive, recorded only.
    pub syntax: Option<String>,
    /// ARGs before the first FROM, defaults raw (unexpanded, quotes kept).
    pub global_args: Vec<(String, Option<String>)>,
    pub stages: Vec<Stage>,
}

/// One build stage: a FROM and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// `AS name`, lowercased as Docker does.
    pub name: Option<String>,
    /// The image word, raw (may contain `$VARS` from the global args).
    pub base: String,
    /// `--platform=`, raw.
    pub platform: Option<String>,
    /// 1-based line of the FROM.
    pub line: usize,
    /// The FROM as written, continuation lines joined, trimmed.
    pub original: String,
    pub instructions: Vec<Instruction>,
}

/// One instruction after FROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line where it starts.
    pub line: usize,
    /// The instruction as written, continuation lines joined into one line
    /// and trimmed, which is what Docker prints in "Step 2/5 : RUN echo hi".
    /// For an ONBUILD trigger it is Docker's trigger expression: the text
    /// after `ONBUILD`, with any heredoc bodies and terminators appended on
    /// their own lines, ready to store in an image config and parse again.
    pub original: String,
    pub kind: Kind,
}

/// A command line: the JSON array (exec) form or a shell string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    Shell(String),
    Exec(Vec<String>),
}

/// A heredoc body taken out of the lines after its instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word (quotes removed); for COPY/ADD the file name.
    pub name: String,
    /// The lines up to the delimiter, each with its newline; leading tabs
    /// already removed for `<<-`.
    pub content: String,
    /// False when the delimiter was quoted (`<<"EOF"`, `<<'EOF'`): no
    /// variable expansion of the content then.
    pub expand: bool,
}

/// HEALTHCHECK CMD's settings, durations raw (e.g. "30s").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    pub test: Cmd,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub start_period: Option<String>,
    pub start_interval: Option<String>,
    pub retries: Option<String>,
}

/// What an instruction is, with its arguments raw (unexpanded) unless said
/// otherwise: the builder expands them with the build's variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Run {
        cmd: Cmd,
        /// Raw value of each `--mount=`.
        mounts: Vec<String>,
        network: Option<String>,
        heredocs: Vec<Heredoc>,
    },
    Cmd(Cmd),
    Entrypoint(Cmd),
    /// Values raw, quotes not yet removed ([`expand`] removes them).
    Env(Vec<(String, String)>),
    Arg(Vec<(String, Option<String>)>),
    /// Raw, like Env.
    Label(Vec<(String, String)>),
    Expose(Vec<String>),
    Volume(Vec<String>),
    User(String),
    Workdir(String),
    Stopsignal(String),
    Copy {
        /// Path sources only; heredoc sources are in `heredocs`.
        srcs: Vec<String>,
        dest: String,
        from: Option<String>,
        chown: Option<String>,
        chmod: Option<String>,
        link: bool,
        heredocs: Vec<Heredoc>,
    },
    Add {
        /// Path or URL sources only; heredoc sources are in `heredocs`.
        srcs: Vec<String>,
        dest: String,
        chown: Option<String>,
        chmod: Option<String>,
        checksum: Option<String>,
        link: bool,
        keep_git_dir: bool,
        heredocs: Vec<Heredoc>,
    },
    Shell(Vec<String>),
    /// None for `HEALTHCHECK NONE`.
    Healthcheck(Option<Healthcheck>),
    /// The trigger, parsed.
    Onbuild(Box<Instruction>),
    Maintainer(String),
}

impl Kind {
    /// The instruction keyword, upper case.
    pub fn keyword(&self) -> &'static str {
        match self {
            Kind::Run { .. } => "RUN",
            Kind::Cmd(_) => "CMD",
            Kind::Entrypoint(_) => "ENTRYPOINT",
            Kind::Env(_) => "ENV",
            Kind::Arg(_) => "ARG",
            Kind::Label(_) => "LABEL",
            Kind::Expose(_) => "EXPOSE",
            Kind::Volume(_) => "VOLUME",
            Kind::User(_) => "USER",
            Kind::Workdir(_) => "WORKDIR",
            Kind::Stopsignal(_) => "STOPSIGNAL",
            Kind::Copy { .. } => "COPY",
            Kind::Add { .. } => "ADD",
            Kind::Shell(_) => "SHELL",
            Kind::Healthcheck(_) => "HEALTHCHECK",
            Kind::Onbuild(_) => "ONBUILD",
            Kind::Maintainer(_) => "MAINTAINER",
        }
    }
}

/// Parses Dockerfile text.
pub fn parse(text: &str) -> Result<Dockerfile, Error> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut directives = Directives::default();
    let mut nodes = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let raw = trim_newline(lines[i]);
        i += 1;
        let start = i;
        let stripped = raw.trim_start();
        directives.check(stripped, start)?;
        let escape = directives.escape;
        let first = if stripped.starts_with('#') {
            ""
        } else {
            stripped
        };
        let (first_part, mut end_of_line) = trim_continuation(first, escape);
        if end_of_line && first_part.is_empty() {
            continue;
        }
        let mut line = first_part.to_string();
        while !end_of_line && i < lines.len() {
            let raw = trim_newline(lines[i]);
            i += 1;
            // comments and blank lines inside a continued instruction are
            // dropped without ending it, as Docker does
            let lead = raw.trim_start();
            if lead.starts_with('#') || lead.is_empty() {
                continue;
            }
            let (part, eol) = trim_continuation(raw, escape);
            line.push_str(part);
            end_of_line = eol;
        }

        let specs = if can_contain_heredoc(&line) {
            heredoc_specs(&line).map_err(|e| parse_error(start, e.to_string()))?
        } else {
            Vec::new()
        };
        let mut heredocs = Vec::new();
        for spec in specs {
            let mut content = String::new();
            let mut terminated = false;
            while i < lines.len() {
                let raw = lines[i];
                i += 1;
                let mut candidate = trim_newline(raw);
                if spec.chomp {
                    candidate = candidate.trim_start_matches('\t');
                }
                if candidate == spec.name {
                    terminated = true;
                    break;
                }
                content.push_str(raw);
            }
            if !terminated {
                return Err(parse_error(start, "unterminated heredoc"));
            }
            if spec.chomp {
                content = chomp(&content);
            }
            heredocs.push(Heredoc {
                name: spec.name,
                content,
                expand: spec.expand,
            });
        }
        let original = line.trim().to_string();
        nodes.push(build(&line, original, start, escape, heredocs)?);
    }

    if nodes.is_empty() {
        return Err(Error::NoInstructions);
    }
    let mut stages: Vec<Stage> = Vec::new();
    let mut global_args = Vec::new();
    let mut names = std::collections::HashSet::new();
    for node in nodes {
        match node {
            Node::From(stage) => {
                if let Some(name) = &stage.name
                    && !names.insert(name.clone())
                {
                    return Err(parse_error(
                        stage.line,
                        format!("duplicate stage name {}", go_quote(name)),
                    ));
                }
                stages.push(stage);
            }
            Node::Instruction(ins) => match stages.last_mut() {
                Some(stage) => stage.instructions.push(ins),
                None => match ins.kind {
                    Kind::Arg(args) => global_args.extend(args),
                    _ => return Err(parse_error(ins.line, "no build stage in current context")),
                },
            },
        }
    }
    if stages.is_empty() {
        return Err(Error::NoFrom);
    }
    Ok(Dockerfile {
        escape: directives.escape,
        syntax: directives.syntax,
        global_args,
        stages,
    })
}

fn parse_error(line: usize, message: impl Into<String>) -> Error {
    Error::Parse {
        line,
        message: message.into(),
    }
}

/// Go's `%q`, close enough for error messages.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

/// Docker's line-continuation rule: the escape character as the last
/// non-blank character continues the line, unless it is itself escaped.
/// Returns the line without it and whether the instruction ends here.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    if let Some(before) = t.strip_suffix(escape)
        && (before.is_empty() || !before.ends_with(escape))
    {
        return (before, false);
    }
    (line, true)
}

fn chomp(content: &str) -> String {
    content
        .split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

#[derive(Debug)]
struct Directives {
    escape: char,
    syntax: Option<String>,
    seen: Vec<String>,
    done: bool,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            escape: '\\',
            syntax: None,
            seen: Vec::new(),
            done: false,
        }
    }
}

impl Directives {
    /// Parser directives count only before the first line that is not one
    /// (a blank line, a plain comment or an instruction ends them).
    fn check(&mut self, line: &str, line_no: usize) -> Result<(), Error> {
        if self.done {
            return Ok(());
        }
        let Some((key, value)) = parse_directive(line) else {
            self.done = true;
            return Ok(());
        };
        if !matches!(key.as_str(), "escape" | "syntax" | "check") {
            self.done = true;
            return Ok(());
        }
        if self.seen.contains(&key) {
            return Err(parse_error(
                line_no,
                format!("only one {key} parser directive can be used"),
            ));
        }
        match key.as_str() {
            "escape" => match value.as_str() {
                "\\" => self.escape = '\\',
                "`" => self.escape = '`',
                _ => {
                    return Err(parse_error(
                        line_no,
                        format!("invalid escape token '{value}' does not match ` or \\"),
                    ));
                }
            },
            "syntax" => self.syntax = Some(value),
            _ => {}
        }
        self.seen.push(key);
        Ok(())
    }
}

/// buildkit's `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`.
fn parse_directive(line: &str) -> Option<(String, String)> {
    let is_space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c');
    let rest = line.strip_prefix('#')?.trim_start_matches(is_space);
    let name_len = rest
        .char_indices()
        .take_while(|&(i, c)| {
            if i == 0 {
                c.is_ascii_alphabetic()
            } else {
                c.is_ascii_alphanumeric()
            }
        })
        .count();
    if name_len == 0 {
        return None;
    }
    let (name, rest) = rest.split_at(name_len);
    let after_eq = rest.trim_start_matches(is_space).strip_prefix('=')?;
    let value = after_eq.trim_matches(is_space);
    let value = if value.is_empty() {
        // the lazy group still needs one character: the last blank
        after_eq.chars().last()?.to_string()
    } else {
        value.to_string()
    };
    Some((name.to_ascii_lowercase(), value))
}

/// buildkit's tokenWhitespace, `[\t\v\f\r ]`.
fn is_token_space(c: char) -> bool {
    matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ')
}

/// Splits a joined line into the instruction word, its `--flags` and the
/// rest (trimmed).
fn split_command(line: &str) -> (String, Vec<String>, String) {
    let t = line.trim();
    let (cmd, rest) = match t.find(is_token_space) {
        Some(i) => (&t[..i], t[i..].trim_start_matches(is_token_space)),
        None => (t, ""),
    };
    let (args, flags) = extract_builder_flags(rest);
    (cmd.to_string(), flags, args.trim().to_string())
}

/// buildkit's extractBuilderFlags: leading words starting with `--` are
/// flags (quotes removed, `\` escapes); `--` alone ends them.
fn extract_builder_flags(line: &str) -> (String, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let n = chars.len();
    let rest_at = |pos: usize| -> String {
        chars
            .get(pos)
            .map(|&(b, _)| line[b..].to_string())
            .unwrap_or_default()
    };
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut pos = 0;
    loop {
        if phase == Phase::Spaces {
            let Some(&(_, ch)) = chars.get(pos) else {
                break;
            };
            if ch.is_whitespace() {
                pos += 1;
                continue;
            }
            let next_is_dash = chars.get(pos + 1).map(|&(_, c)| c) == Some('-');
            if ch != '-' || !next_is_dash {
                return (rest_at(pos), words);
            }
            phase = Phase::Word;
        }
        let Some(&(_, mut ch)) = chars.get(pos) else {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        };
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if word == "--" {
                    return (rest_at(pos), words);
                }
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                pos += 1;
                continue;
            }
            if ch == '\\' {
                if pos + 1 == n {
                    pos += 1;
                    continue;
                }
                pos += 1;
                ch = chars[pos].1;
            }
            word.push(ch);
            pos += 1;
            continue;
        }
        if ch == quote {
            phase = Phase::Word;
            pos += 1;
            continue;
        }
        if ch == '\\' {
            if pos + 1 == n {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            ch = chars[pos].1;
        }
        word.push(ch);
        pos += 1;
    }
    (String::new(), words)
}

/// buildkit's parseWords: words split on unquoted whitespace, with quotes
/// and escapes kept for the later expansion to remove.
fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<char> = rest.chars().collect();
    let n = chars.len();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut pos = 0;
    loop {
        if phase == Phase::Spaces {
            let Some(&ch) = chars.get(pos) else { break };
            if ch.is_whitespace() {
                pos += 1;
                continue;
            }
            phase = Phase::Word;
        }
        let Some(&ch) = chars.get(pos) else {
            if blank_ok || !word.is_empty() {
                words.push(word);
            }
            break;
        };
        let mut ch = ch;
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if ch == escape {
                if pos + 1 == n {
                    pos += 1;
                    continue;
                }
                word.push(ch);
                pos += 1;
                ch = chars[pos];
            }
            word.push(ch);
            pos += 1;
            continue;
        }
        if ch == quote {
            phase = Phase::Word;
        }
        if ch == escape && quote != '\'' {
            if pos + 1 == n {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            word.push(ch);
            ch = chars[pos];
        }
        word.push(ch);
        pos += 1;
    }
    words
}

/// buildkit's reWhitespace split, for FROM/EXPOSE/COPY sources.
fn split_whitespace(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        return Vec::new();
    }
    rest.split(is_token_space)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

enum Json {
    Shell,
    Strings(Vec<String>),
    NotStrings,
}

/// Docker decodes the first JSON value of the arguments and ignores what
/// follows it; anything that is not a JSON array is the shell form.
fn parse_json(args: &str) -> Json {
    let a = args.trim_start();
    if !a.starts_with('[') {
        return Json::Shell;
    }
    let mut stream = serde_json::Deserializer::from_str(a).into_iter::<serde_json::Value>();
    match stream.next() {
        Some(Ok(serde_json::Value::Array(items))) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    serde_json::Value::String(s) => out.push(s),
                    _ => return Json::NotStrings,
                }
            }
            Json::Strings(out)
        }
        _ => Json::Shell,
    }
}

const NOT_STRING_ARRAY: &str =
    "when using JSON array syntax, arrays must be comprised of strings only";

fn maybe_json(args: &str) -> Result<Cmd, String> {
    if args.is_empty() {
        return Ok(Cmd::Shell(String::new()));
    }
    match parse_json(args) {
        Json::Strings(v) => Ok(Cmd::Exec(v)),
        Json::NotStrings => Err(NOT_STRING_ARRAY.to_string()),
        Json::Shell => Ok(Cmd::Shell(args.to_string())),
    }
}

fn maybe_json_list(args: &str) -> Result<(Vec<String>, bool), String> {
    match parse_json(args) {
        Json::Strings(v) => Ok((v, true)),
        Json::NotStrings => Err(NOT_STRING_ARRAY.to_string()),
        Json::Shell => Ok((split_whitespace(args), false)),
    }
}

/// Heredocs are read for RUN, COPY and ADD (also as ONBUILD triggers) in
/// their shell form only.
fn can_contain_heredoc(line: &str) -> bool {
    let (cmd, _, mut args) = split_command(line);
    let mut cmd = cmd.to_lowercase();
    if cmd == "onbuild" {
        let (inner, _, inner_args) = split_command(&args);
        cmd = inner.to_lowercase();
        args = inner_args;
    }
    matches!(cmd.as_str(), "run" | "copy" | "add") && !matches!(parse_json(&args), Json::Strings(_))
}

struct HeredocSpec {
    name: String,
    chomp: bool,
    expand: bool,
}

fn heredoc_specs(line: &str) -> Result<Vec<HeredocSpec>, Error> {
    let opts = LexOptions {
        raw_quotes: true,
        raw_escapes: true,
        skip_unset: true,
    };
    // a line the lexer cannot split has no heredocs, as in buildkit
    let words = match lex::process(line, '\\', opts, &|_| None) {
        Ok((_, words)) => words,
        Err(_) => return Ok(Vec::new()),
    };
    let mut specs = Vec::new();
    for word in words {
        if let Some(spec) = heredoc_word(&word)? {
            specs.push(spec);
        }
    }
    Ok(specs)
}

/// buildkit's ParseHeredoc: a word `[n]<<[-]NAME`; NAME is one shell word
/// whose quotes (if any) turn expansion off.
fn heredoc_word(word: &str) -> Result<Option<HeredocSpec>, Error> {
    let rest = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let Some(rest) = rest.strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let plain = LexOptions {
        skip_unset: true,
        ..LexOptions::default()
    };
    let (_, words) = lex::process(rest, '\\', plain, &|_| None)?;
    if words.len() != 1 {
        return Ok(None);
    }
    let raw = LexOptions {
        raw_quotes: true,
        ..plain
    };
    let (_, raw_words) = lex::process(rest, '\\', raw, &|_| None)?;
    let quotes = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    let expand = match raw_words.first() {
        Some(r) => quotes(&words[0]) == quotes(r),
        None => true,
    };
    Ok(Some(HeredocSpec {
        name: words.into_iter().next().unwrap_or_default(),
        chomp,
        expand,
    }))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FlagType {
    Bool,
    Str,
    Strings,
}

/// buildkit's BFlags: every flag must be declared for the instruction.
fn parse_flags(
    raw: &[String],
    spec: &[(&'static str, FlagType)],
) -> Result<HashMap<&'static str, Vec<String>>, String> {
    let mut out: HashMap<&'static str, Vec<String>> = HashMap::new();
    for arg in raw {
        let body = arg.strip_prefix("--").unwrap_or(arg);
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let Some(&(key, ty)) = spec.iter().find(|(k, _)| *k == name) else {
            return Err(format!("unknown flag: --{name}"));
        };
        if ty != FlagType::Strings && out.contains_key(key) {
            return Err(format!("duplicate flag specified: {name}"));
        }
        let value = match (ty, value) {
            (FlagType::Bool, None) => "true".to_string(),
            (FlagType::Bool, Some(v)) => match v.to_lowercase().as_str() {
                "" => return Err(format!("missing a value on flag: {name}")),
                b @ ("true" | "false") => b.to_string(),
                _ => return Err(format!("expecting boolean value for flag {name}, not: {v}")),
            },
            (_, None) => return Err(format!("missing a value on flag: {name}")),
            (_, Some(v)) => v.to_string(),
        };
        out.entry(key).or_default().push(value);
    }
    Ok(out)
}

fn flag_str(flags: &HashMap<&'static str, Vec<String>>, name: &str) -> Option<String> {
    flags.get(name).and_then(|v| v.last().cloned())
}

fn flag_bool(flags: &HashMap<&'static str, Vec<String>>, name: &str) -> bool {
    flag_str(flags, name).as_deref() == Some("true")
}

enum Node {
    From(Stage),
    Instruction(Instruction),
}

fn build(
    line: &str,
    original: String,
    line_no: usize,
    escape: char,
    heredocs: Vec<Heredoc>,
) -> Result<Node, Error> {
    build_node(line, original, escape, heredocs)
        .map_err(|message| parse_error(line_no, message))
        .map(|node| match node {
            NodeKind::From {
                name,
                base,
                platform,
                original,
            } => Node::From(Stage {
                name,
                base,
                platform,
                line: line_no,
                original,
                instructions: Vec::new(),
            }),
            NodeKind::Instruction(kind, original) => Node::Instruction(Instruction {
                line: line_no,
                original,
                kind: with_lines(kind, line_no),
            }),
        })
}

/// ONBUILD triggers are parsed before their line number is known.
fn with_lines(kind: Kind, line: usize) -> Kind {
    match kind {
        Kind::Onbuild(mut inner) => {
            inner.line = line;
            Kind::Onbuild(inner)
        }
        other => other,
    }
}

enum NodeKind {
    From {
        name: Option<String>,
        base: String,
        platform: Option<String>,
        original: String,
    },
    Instruction(Kind, String),
}

fn build_node(
    line: &str,
    original: String,
    escape: char,
    heredocs: Vec<Heredoc>,
) -> Result<NodeKind, String> {
    use FlagType::{Str, Strings};
    let (cmd, raw_flags, args) = split_command(line);
    let lower = cmd.to_lowercase();
    let upper = cmd.to_uppercase();
    let no_flags = |raw: &[String]| parse_flags(raw, &[]).map(|_| ());
    let kind = match lower.as_str() {
        "from" => {
            let flags = parse_flags(&raw_flags, &[("platform", Str)])?;
            let words = split_whitespace(&args);
            let name = match words.len() {
                1 => None,
                3 if words[1].eq_ignore_ascii_case("as") => {
                    let name = words[2].to_lowercase();
                    if !valid_stage_name(&name) {
                        return Err(format!(
                            "invalid name for build stage: {}, name can't start with a number or contain symbols",
                            go_quote(&words[2])
                        ));
                    }
                    Some(name)
                }
                _ => return Err("FROM requires either one or three arguments".to_string()),
            };
            return Ok(NodeKind::From {
                name,
                base: words[0].clone(),
                platform: flag_str(&flags, "platform"),
                original,
            });
        }
        "run" => {
            let flags = parse_flags(&raw_flags, &[("mount", Strings), ("network", Str)])?;
            Kind::Run {
                cmd: maybe_json(&args)?,
                mounts: flags.get("mount").cloned().unwrap_or_default(),
                network: flag_str(&flags, "network"),
                heredocs,
            }
        }
        "cmd" => {
            no_flags(&raw_flags)?;
            Kind::Cmd(maybe_json(&args)?)
        }
        "entrypoint" => {
            no_flags(&raw_flags)?;
            Kind::Entrypoint(maybe_json(&args)?)
        }
        "shell" => {
            no_flags(&raw_flags)?;
            match maybe_json(&args)? {
                Cmd::Exec(v) if !v.is_empty() => Kind::Shell(v),
                Cmd::Shell(s) if !s.is_empty() => {
                    return Err("SHELL requires the arguments to be in JSON form".to_string());
                }
                _ => return Err("SHELL requires at least one argument".to_string()),
            }
        }
        "env" => {
            no_flags(&raw_flags)?;
            Kind::Env(parse_name_val(&args, "ENV", escape)?)
        }
        "label" => {
            no_flags(&raw_flags)?;
            Kind::Label(parse_name_val(&args, "LABEL", escape)?)
        }
        "arg" => parse_arg(&raw_flags, &args, escape)?,
        "expose" => {
            no_flags(&raw_flags)?;
            let ports = split_whitespace(&args);
            if ports.is_empty() {
                return Err("EXPOSE requires at least one argument".to_string());
            }
            Kind::Expose(ports)
        }
        "volume" => parse_volume(&raw_flags, &args)?,
        "user" | "workdir" | "stopsignal" | "maintainer" => {
            no_flags(&raw_flags)?;
            if args.is_empty() {
                return Err(format!("{upper} requires exactly one argument"));
            }
            match lower.as_str() {
                "user" => Kind::User(args),
                "workdir" => Kind::Workdir(args),
                "stopsignal" => Kind::Stopsignal(args),
                _ => Kind::Maintainer(args),
            }
        }
        "copy" | "add" => parse_copy_add(&lower, &upper, &raw_flags, &args, &heredocs)?,
        "healthcheck" => parse_healthcheck(&raw_flags, &args)?,
        "onbuild" => parse_onbuild(line, &raw_flags, &args, escape, heredocs)?,
        _ => return Err(format!("unknown instruction: {upper}")),
    };
    Ok(NodeKind::Instruction(kind, original))
}

/// ARG's `name[=default]` words.
fn parse_arg(raw_flags: &[String], args: &str, escape: char) -> Result<Kind, String> {
    parse_flags(raw_flags, &[])?;
    let words = parse_words(args, escape);
    if words.is_empty() {
        return Err("ARG requires at least one argument".to_string());
    }
    let mut out = Vec::new();
    for word in words {
        match word.split_once('=') {
            Some(("", _)) => return Err("ARG names can not be blank".to_string()),
            Some((k, v)) => out.push((k.to_string(), Some(v.to_string()))),
            None => out.push((word, None)),
        }
    }
    Ok(Kind::Arg(out))
}

/// VOLUME's paths, in JSON or plain form.
fn parse_volume(raw_flags: &[String], args: &str) -> Result<Kind, String> {
    parse_flags(raw_flags, &[])?;
    let (list, _) = maybe_json_list(args)?;
    if list.is_empty() {
        return Err("VOLUME requires at least one argument".to_string());
    }
    let mut out = Vec::new();
    for v in list {
        let v = v.trim();
        if v.is_empty() {
            return Err("VOLUME specified can not be an empty string".to_string());
        }
        out.push(v.to_string());
    }
    Ok(Kind::Volume(out))
}

/// COPY or ADD: flags, sources (heredocs among them) and destination.
fn parse_copy_add(
    lower: &str,
    upper: &str,
    raw_flags: &[String],
    args: &str,
    heredocs: &[Heredoc],
) -> Result<Kind, String> {
    use FlagType::{Bool, Str};
    let is_copy = lower == "copy";
    let flags = if is_copy {
        parse_flags(
            raw_flags,
            &[
                ("from", Str),
                ("chown", Str),
                ("chmod", Str),
                ("link", Bool),
            ],
        )?
    } else {
        parse_flags(
            raw_flags,
            &[
                ("chown", Str),
                ("chmod", Str),
                ("checksum", Str),
                ("link", Bool),
                ("keep-git-dir", Bool),
            ],
        )?
    };
    let (list, json) = maybe_json_list(args)?;
    let Some((dest, sources)) = list.split_last() else {
        return Err(no_destination(upper));
    };
    if sources.is_empty() {
        return Err(no_destination(upper));
    }
    if !json && matches!(heredoc_word(dest), Ok(Some(_))) {
        return Err(format!("{upper} cannot accept a heredoc as a destination"));
    }
    let mut srcs = Vec::new();
    let mut docs = Vec::new();
    for src in sources {
        let spec = if json {
            None
        } else {
            heredoc_word(src).ok().flatten()
        };
        match spec {
            Some(spec) => {
                let content = heredocs
                    .iter()
                    .find(|h| h.name == spec.name)
                    .map(|h| h.content.clone())
                    .unwrap_or_default();
                docs.push(Heredoc {
                    name: spec.name,
                    content,
                    expand: spec.expand,
                });
            }
            None => srcs.push(src.clone()),
        }
    }
    Ok(if is_copy {
        Kind::Copy {
            srcs,
            dest: dest.clone(),
            from: flag_str(&flags, "from"),
            chown: flag_str(&flags, "chown"),
            chmod: flag_str(&flags, "chmod"),
            link: flag_bool(&flags, "link"),
            heredocs: docs,
        }
    } else {
        Kind::Add {
            srcs,
            dest: dest.clone(),
            chown: flag_str(&flags, "chown"),
            chmod: flag_str(&flags, "chmod"),
            checksum: flag_str(&flags, "checksum"),
            link: flag_bool(&flags, "link"),
            keep_git_dir: flag_bool(&flags, "keep-git-dir"),
            heredocs: docs,
        }
    })
}

/// HEALTHCHECK NONE, or CMD with its options.
fn parse_healthcheck(raw_flags: &[String], args: &str) -> Result<Kind, String> {
    use FlagType::Str;
    let flags = parse_flags(
        raw_flags,
        &[
            ("interval", Str),
            ("timeout", Str),
            ("start-period", Str),
            ("start-interval", Str),
            ("retries", Str),
        ],
    )?;
    if args.is_empty() {
        return Err("HEALTHCHECK requires at least one argument".to_string());
    }
    let (typ, rest) = match args.find(char::is_whitespace) {
        Some(i) => (&args[..i], args[i..].trim_start()),
        None => (args, ""),
    };
    Ok(match typ.to_uppercase().as_str() {
        "NONE" => {
            if !rest.is_empty() {
                return Err("HEALTHCHECK NONE takes no arguments".to_string());
            }
            Kind::Healthcheck(None)
        }
        "CMD" => {
            let test = maybe_json(rest)?;
            let empty = match &test {
                Cmd::Shell(s) => s.is_empty(),
                Cmd::Exec(v) => v.is_empty(),
            };
            if empty {
                return Err("missing command after HEALTHCHECK CMD".to_string());
            }
            Kind::Healthcheck(Some(Healthcheck {
                test,
                interval: flag_str(&flags, "interval"),
                timeout: flag_str(&flags, "timeout"),
                start_period: flag_str(&flags, "start-period"),
                start_interval: flag_str(&flags, "start-interval"),
                retries: flag_str(&flags, "retries"),
            }))
        }
        other => {
            return Err(format!(
                "unknown type {} in HEALTHCHECK (try CMD)",
                go_quote(other)
            ));
        }
    })
}

/// ONBUILD: the trigger is parsed as an instruction of its own.
fn parse_onbuild(
    line: &str,
    raw_flags: &[String],
    args: &str,
    escape: char,
    heredocs: Vec<Heredoc>,
) -> Result<Kind, String> {
    parse_flags(raw_flags, &[])?;
    if args.is_empty() {
        return Err("ONBUILD requires at least one argument".to_string());
    }
    let (trigger, _, _) = split_command(args);
    let trigger = trigger.to_uppercase();
    match trigger.as_str() {
        "ONBUILD" => {
            return Err("chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".to_string());
        }
        "FROM" | "MAINTAINER" => {
            return Err(format!("{trigger} isn't allowed as an ONBUILD trigger"));
        }
        _ => {}
    }
    let mut expression = strip_onbuild(line).to_string();
    for h in &heredocs {
        expression.push('\n');
        expression.push_str(&h.content);
        expression.push_str(&h.name);
    }
    Ok(match build_node(args, String::new(), escape, heredocs)? {
        NodeKind::Instruction(kind, _) => Kind::Onbuild(Box::new(Instruction {
            line: 0,
            original: expression,
            kind,
        })),
        NodeKind::From { .. } => {
            return Err("FROM isn't allowed as an ONBUILD trigger".to_string());
        }
    })
}

fn no_destination(cmd: &str) -> String {
    format!(
        "{cmd} requires at least two arguments, but only one was provided. Destination could not be determined"
    )
}

/// buildkit's `^[a-z][a-z0-9-_\.]*$`.
fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

/// The trigger text of an ONBUILD line: `(?i)^\s*ONBUILD\s*` removed.
fn strip_onbuild(line: &str) -> &str {
    let is_space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c');
    let t = line.trim_start_matches(is_space);
    match t.get(..7) {
        Some(word) if word.eq_ignore_ascii_case("onbuild") => t[7..].trim_start_matches(is_space),
        _ => t,
    }
}

/// ENV and LABEL: `key=value ...`, or the legacy `key value with spaces`
/// when the first word has no `=`.
fn parse_name_val(rest: &str, key: &str, escape: char) -> Result<Vec<(String, String)>, String> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Err(format!("{key} requires at least one argument"));
    };
    if !first.contains('=') {
        let Some(i) = rest.find(is_token_space) else {
            return Err(format!("{key} must have two arguments"));
        };
        let name = &rest[..i];
        let value = rest[i..].trim_start_matches(is_token_space);
        return Ok(vec![(name.to_string(), value.to_string())]);
    }
    let mut out = Vec::new();
    for word in words {
        let Some((k, v)) = word.split_once('=') else {
            return Err(format!(
                "syntax error - can't find = in {}. must be of the form: name=value",
                go_quote(&word)
            ));
        };
        if k.is_empty() {
            return Err(format!("{key} names can not be blank"));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
