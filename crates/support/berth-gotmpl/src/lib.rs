//! The part of Go's text/template that `--format` and `inspect -f` users
//! write: fields (`.A.B`, `$`, variables), `if`/`else`/`range`/`with`,
//! pipes, and docker's functions (`json`, `join`, `split`, `lower`, `upper`,
//! `title`, `truncate`, `pad`) plus Go's builtins (`len`, `index`, `eq`,
//! `ne`, `lt`, `le`, `gt`, `ge`, `not`, `and`, `or`, `print`, `println`,
//! `printf`).

use anyhow::{Result, anyhow, bail};
use serde_json::Value;

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipe),
    If(Pipe, Vec<Node>, Vec<Node>),
    With(Pipe, Vec<Node>, Vec<Node>),
    Range(Vec<String>, Pipe, Vec<Node>, Vec<Node>),
}

/// `cmd | cmd | …`, optionally assigning variables (`$v := …`).
#[derive(Debug, Clone)]
struct Pipe {
    decl: Vec<String>,
    cmds: Vec<Vec<Operand>>,
}

#[derive(Debug, Clone)]
enum Operand {
    /// `.A.B` (empty path: `.`)
    Field(Vec<String>),
    /// `$name.A.B` (name "" is `$`)
    Var(String, Vec<String>),
    Str(String),
    Num(f64),
    Bool(bool),
    Nil,
    Func(String),
    Sub(Box<Pipe>, Vec<String>),
}

fn tokenize(action: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let chars: Vec<char> = action.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' || c == '`' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != c {
                if c == '"' && chars[j] == '\\' {
                    j += 1;
                }
                j += 1;
            }
            if j >= chars.len() {
                bail!("template: unterminated quoted string");
            }
            out.push(chars[i..=j].iter().collect());
            i = j + 1;
        } else if c == '(' || c == ')' || c == '|' {
            out.push(c.to_string());
            i += 1;
        } else {
            let mut j = i;
            while j < chars.len()
                && !chars[j].is_whitespace()
                && !matches!(chars[j], '(' | ')' | '|' | '"' | '`')
            {
                j += 1;
            }
            out.push(chars[i..j].iter().collect());
            i = j;
        }
    }
    Ok(out)
}

fn parse_path(s: &str) -> Vec<String> {
    s.split('.')
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect()
}

fn parse_operand(tok: &str) -> Result<Operand> {
    Ok(if tok.starts_with('.') {
        Operand::Field(parse_path(tok))
    } else if let Some(rest) = tok.strip_prefix('$') {
        let (name, path) = match rest.find('.') {
            Some(i) => (&rest[..i], parse_path(&rest[i..])),
            None => (rest, vec![]),
        };
        Operand::Var(name.to_string(), path)
    } else if tok.starts_with('"') {
        Operand::Str(
            serde_json::from_str(tok).map_err(|e| anyhow!("template: bad string {tok}: {e}"))?,
        )
    } else if let Some(raw) = tok.strip_prefix('`') {
        Operand::Str(raw.trim_end_matches('`').to_string())
    } else if tok == "true" || tok == "false" {
        Operand::Bool(tok == "true")
    } else if tok == "nil" {
        Operand::Nil
    } else if let Ok(n) = tok.parse::<f64>() {
        Operand::Num(n)
    } else if tok.chars().all(|c| c.is_alphanumeric() || c == '_') {
        Operand::Func(tok.to_string())
    } else {
        bail!("template: unexpected {tok:?}")
    })
}

fn parse_pipe(toks: &[String]) -> Result<Pipe> {
    let mut decl = Vec::new();
    let mut toks = toks;
    if let Some(pos) = toks.iter().position(|t| t == ":=" || t == "=") {
        decl = toks[..pos]
            .iter()
            .map(|t| t.trim_end_matches(',').trim_start_matches('$').to_string())
            .filter(|t| !t.is_empty())
            .collect();
        toks = &toks[pos + 1..];
    }
    let mut cmds = Vec::new();
    let mut cur = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        if t == "|" {
            cmds.push(std::mem::take(&mut cur));
        } else if t == "(" {
            let mut depth = 1;
            let mut j = i + 1;
            while j < toks.len() && depth > 0 {
                match toks[j].as_str() {
                    "(" => depth += 1,
                    ")" => depth -= 1,
                    _ => {}
                }
                j += 1;
            }
            if depth != 0 {
                bail!("template: unclosed left paren");
            }
            let inner = parse_pipe(&toks[i + 1..j - 1])?;
            // `(…).Field`
            let mut path = vec![];
            if let Some(next) = toks.get(j)
                && next.starts_with('.')
            {
                path = parse_path(next);
                i = j;
            } else {
                i = j - 1;
            }
            cur.push(Operand::Sub(Box::new(inner), path));
        } else {
            cur.push(parse_operand(t)?);
        }
        i += 1;
    }
    if !cur.is_empty() {
        cmds.push(cur);
    }
    if cmds.is_empty() || cmds.iter().any(|c| c.is_empty()) {
        bail!("template: missing value for command");
    }
    Ok(Pipe { decl, cmds })
}

/// Splits the template into text and actions, honouring `{{-` and `-}}`.
fn lex(tpl: &str) -> Result<Vec<(bool, String)>> {
    let mut out: Vec<(bool, String)> = Vec::new();
    let mut rest = tpl;
    while let Some(start) = rest.find("{{") {
        let mut text = rest[..start].to_string();
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| anyhow!("template: unclosed action"))?;
        let mut action = &after[..end];
        if let Some(a) = action.strip_prefix('-') {
            text = text.trim_end().to_string();
            action = a;
        }
        let trim_next = action.ends_with('-') && action.len() > 1;
        if trim_next {
            action = &action[..action.len() - 1];
        }
        out.push((false, text));
        out.push((true, action.trim().to_string()));
        rest = &after[end + 2..];
        if trim_next {
            rest = rest.trim_start();
        }
    }
    out.push((false, rest.to_string()));
    Ok(out)
}

fn parse(items: &[(bool, String)], pos: &mut usize, stop: &[&str]) -> Result<(Vec<Node>, String)> {
    let mut nodes = Vec::new();
    while *pos < items.len() {
        let (is_action, s) = &items[*pos];
        *pos += 1;
        if !is_action {
            if !s.is_empty() {
                nodes.push(Node::Text(s.clone()));
            }
            continue;
        }
        let toks = tokenize(s)?;
        let head = toks.first().map(String::as_str).unwrap_or("");
        if stop.contains(&head) {
            return Ok((nodes, s.clone()));
        }
        match head {
            "if" | "with" | "range" => {
                let mut pipe_toks = &toks[1..];
                let mut vars = vec![];
                if head == "range"
                    && let Some(p) = pipe_toks.iter().position(|t| t == ":=")
                {
                    vars = pipe_toks[..p]
                        .iter()
                        .map(|t| t.trim_end_matches(',').trim_start_matches('$').to_string())
                        .collect();
                    pipe_toks = &pipe_toks[p + 1..];
                }
                let pipe = parse_pipe(pipe_toks)?;
                let (body, ended) = parse(items, pos, &["else", "end"])?;
                let else_body = if ended.starts_with("else") {
                    let rest = ended.trim_start_matches("else").trim();
                    if let Some(cond) = rest.strip_prefix("if ") {
                        // `else if` is an if nested in the else branch
                        let mut sub = vec![(true, format!("if {cond}"))];
                        let (inner, _) = parse_else_if(items, pos)?;
                        sub.extend(inner);
                        let mut p = 0;
                        let (n, _) = parse(&sub, &mut p, &[])?;
                        n
                    } else {
                        let (e, _) = parse(items, pos, &["end"])?;
                        e
                    }
                } else {
                    vec![]
                };
                nodes.push(match head {
                    "if" => Node::If(pipe, body, else_body),
                    "with" => Node::With(pipe, body, else_body),
                    _ => Node::Range(vars, pipe, body, else_body),
                });
            }
            "end" | "else" => bail!("template: unexpected {{{{{head}}}}}"),
            "" => bail!("template: missing value for command"),
            _ if head.starts_with("/*") => {}
            _ => nodes.push(Node::Action(parse_pipe(&toks)?)),
        }
    }
    if !stop.is_empty() {
        bail!("template: unexpected EOF");
    }
    Ok((nodes, String::new()))
}

/// The raw items of an `else if` chain up to and including its `end`.
fn parse_else_if(items: &[(bool, String)], pos: &mut usize) -> Result<(Vec<(bool, String)>, ())> {
    let mut out = Vec::new();
    let mut depth = 1;
    while *pos < items.len() {
        let item = items[*pos].clone();
        *pos += 1;
        if item.0 {
            let head = item.1.split_whitespace().next().unwrap_or("");
            match head {
                "if" | "with" | "range" => depth += 1,
                "end" => {
                    depth -= 1;
                    if depth == 0 {
                        out.push(item);
                        return Ok((out, ()));
                    }
                }
                _ => {}
            }
        }
        out.push(item);
    }
    bail!("template: unexpected EOF")
}

/// Functions a caller adds to (or overrides in) the fixed set: `None`
/// when it has no function of that name.
pub type ExtraFuncs<'a> = &'a dyn Fn(&str, &[Value]) -> Option<Result<Value>>;

struct Scope<'a> {
    root: &'a Value,
    vars: Vec<(String, Value)>,
    extra: Option<ExtraFuncs<'a>>,
}

fn field(v: &Value, path: &[String]) -> Result<Value> {
    let mut cur = v.clone();
    for (i, p) in path.iter().enumerate() {
        cur = match &cur {
            Value::Object(m) => match m.get(p).or_else(|| json_tag_of(m, p)) {
                Some(x) => x.clone(),
                // an omitted (nil) field reads as no value, as a nil
                // pointer or missing map key does in Go
                None if i + 1 == path.len() => Value::Null,
                None => bail!("template: can't evaluate field {p}"),
            },
            Value::Null => Value::Null,
            _ => bail!("template: can't evaluate field {p} in type {}", kind(&cur)),
        };
    }
    Ok(cur)
}

/// Go's json.Marshal escapes `<`, `>`, `&`, U+2028 and U+2029 (they can
/// only occur inside strings of serde's output).
pub fn go_json(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// A Go field name read from JSON that names it by its tag: `.Time` of
/// an event is `time`, `.TimeNano` is `timeNano`, `.ID` is `id`.
fn json_tag_of<'a>(m: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a Value> {
    let mut chars = name.chars();
    let first = chars.next()?;
    let camel: String = first.to_lowercase().chain(chars).collect();
    m.get(&camel).or_else(|| m.get(&name.to_lowercase()))
}

/// A label of a row: its `Labels` as a map, or as the CLI's joined
/// `k=v,k2=v2` text; "" when it has none.
fn label_of(owner: &Value, key: &str) -> Value {
    let found = match owner.get("Labels") {
        Some(Value::Object(m)) => m.get(key).map(go_print),
        Some(Value::String(s)) => s
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string()),
        _ => None,
    };
    Value::String(found.unwrap_or_default())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "slice",
        Value::Object(_) => "map",
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().unwrap_or(0.0) != 0.0,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

fn num(v: &Value) -> Result<f64> {
    v.as_f64()
        .ok_or_else(|| anyhow!("template: expected a number, got {}", kind(v)))
}

fn string_of(v: &Value) -> String {
    go_print(v)
}

fn compare(a: &Value, b: &Value) -> Result<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => num(a)?
            .partial_cmp(&num(b)?)
            .ok_or_else(|| anyhow!("template: incomparable numbers")),
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        _ => bail!("template: incompatible types for comparison"),
    }
}

fn call(name: &str, args: Vec<Value>) -> Result<Value> {
    let arg = |i: usize| -> Result<&Value> {
        args.get(i)
            .ok_or_else(|| anyhow!("template: wrong number of args for {name}"))
    };
    let s = |i: usize| -> Result<String> { Ok(string_of(arg(i)?)) };
    Ok(match name {
        "json" => Value::String(go_json(&serde_json::to_string(arg(0)?)?)),
        "len" => Value::from(match arg(0)? {
            Value::Array(a) => a.len(),
            Value::Object(m) => m.len(),
            Value::String(x) => x.len(),
            other => bail!("template: len of {}", kind(other)),
        }),
        "index" => {
            let mut cur = arg(0)?.clone();
            for k in &args[1..] {
                cur = match (&cur, k) {
                    (Value::Array(a), Value::Number(_)) => a
                        .get(num(k)? as usize)
                        .cloned()
                        .ok_or_else(|| anyhow!("template: index out of range"))?,
                    (Value::Object(m), Value::String(key)) => {
                        m.get(key).cloned().unwrap_or(Value::Null)
                    }
                    _ => bail!("template: can't index {} with {}", kind(&cur), kind(k)),
                };
            }
            cur
        }
        "join" => {
            let sep = s(1)?;
            match arg(0)? {
                Value::Array(a) => {
                    Value::String(a.iter().map(string_of).collect::<Vec<_>>().join(&sep))
                }
                other => Value::String(string_of(other)),
            }
        }
        "split" => Value::Array(
            s(0)?
                .split(&s(1)?)
                .map(|p| Value::String(p.into()))
                .collect(),
        ),
        "lower" => Value::String(s(0)?.to_lowercase()),
        "upper" => Value::String(s(0)?.to_uppercase()),
        "title" => Value::String(
            s(0)?
                .split(' ')
                .map(|w| {
                    let mut c = w.chars();
                    match c.next() {
                        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                        None => String::new(),
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "truncate" => {
            let n = num(arg(1)?)? as usize;
            Value::String(s(0)?.chars().take(n).collect())
        }
        "pad" => {
            let (l, r) = (num(arg(1)?)? as usize, num(arg(2)?)? as usize);
            Value::String(format!("{}{}{}", " ".repeat(l), s(0)?, " ".repeat(r)))
        }
        "print" => Value::String(args.iter().map(string_of).collect::<Vec<_>>().join("")),
        "println" => Value::String(args.iter().map(string_of).collect::<Vec<_>>().join(" ") + "\n"),
        "printf" => {
            let fmt = s(0)?;
            let mut out = String::new();
            let mut rest = args[1..].iter();
            let mut chars = fmt.chars().peekable();
            while let Some(c) = chars.next() {
                if c != '%' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('%') => out.push('%'),
                    Some('q') => {
                        out.push_str(&go_quote(&rest.next().map(string_of).unwrap_or_default()))
                    }
                    Some(_) => out.push_str(&rest.next().map(string_of).unwrap_or_default()),
                    None => out.push('%'),
                }
            }
            Value::String(out)
        }
        "eq" => Value::Bool(args[1..].iter().any(|b| {
            arg(0)
                .map(|a| a == b || (a.is_number() && b.is_number() && a.as_f64() == b.as_f64()))
                .unwrap_or(false)
        })),
        "ne" => Value::Bool(arg(0)? != arg(1)?),
        "lt" => Value::Bool(compare(arg(0)?, arg(1)?)?.is_lt()),
        "le" => Value::Bool(compare(arg(0)?, arg(1)?)?.is_le()),
        "gt" => Value::Bool(compare(arg(0)?, arg(1)?)?.is_gt()),
        "ge" => Value::Bool(compare(arg(0)?, arg(1)?)?.is_ge()),
        "not" => Value::Bool(!truthy(arg(0)?)),
        "and" => args
            .iter()
            .find(|a| !truthy(a))
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Null),
        "or" => args
            .iter()
            .find(|a| truthy(a))
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Null),
        other => bail!("template: function {other:?} not defined"),
    })
}

impl Scope<'_> {
    fn var(&self, name: &str) -> Result<Value> {
        if name.is_empty() {
            return Ok(self.root.clone());
        }
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| anyhow!("template: undefined variable ${name}"))
    }

    fn operand(&mut self, op: &Operand, dot: &Value) -> Result<Value> {
        Ok(match op {
            Operand::Field(p) => field(dot, p)?,
            Operand::Var(n, p) => field(&self.var(n)?, p)?,
            Operand::Str(s) => Value::String(s.clone()),
            Operand::Num(n) => serde_json::Number::from_f64(*n)
                .map(|x| {
                    if n.fract() == 0.0 {
                        Value::from(*n as i64)
                    } else {
                        Value::Number(x)
                    }
                })
                .unwrap_or(Value::Null),
            Operand::Bool(b) => Value::Bool(*b),
            Operand::Nil => Value::Null,
            Operand::Func(f) => self.call(f, vec![])?,
            Operand::Sub(p, path) => field(&self.pipe(p, dot)?, path)?,
        })
    }

    fn call(&self, name: &str, args: Vec<Value>) -> Result<Value> {
        match self.extra.and_then(|f| f(name, &args)) {
            Some(answer) => answer,
            None => call(name, args),
        }
    }

    fn pipe(&mut self, p: &Pipe, dot: &Value) -> Result<Value> {
        let mut prev: Option<Value> = None;
        for cmd in &p.cmds {
            let v = match &cmd[0] {
                Operand::Func(name) => {
                    let mut args = Vec::new();
                    for a in &cmd[1..] {
                        args.push(self.operand(a, dot)?);
                    }
                    if let Some(pv) = prev.take() {
                        args.push(pv);
                    }
                    self.call(name, args)?
                }
                // the docker CLI's `.Label "key"` method of list rows
                Operand::Field(path)
                    if cmd.len() == 2 && path.last().is_some_and(|l| l == "Label") =>
                {
                    let key = match self.operand(&cmd[1], dot)? {
                        Value::String(k) => k,
                        other => go_print(&other),
                    };
                    let owner = field(dot, &path[..path.len() - 1])?;
                    label_of(&owner, &key)
                }
                single => {
                    if cmd.len() > 1 {
                        bail!("template: can't give argument to non-function");
                    }
                    self.operand(single, dot)?
                }
            };
            prev = Some(v);
        }
        let v = prev.unwrap_or(Value::Null);
        for name in &p.decl {
            self.vars.push((name.clone(), v.clone()));
        }
        Ok(v)
    }

    fn exec(&mut self, nodes: &[Node], dot: &Value, out: &mut String) -> Result<()> {
        for n in nodes {
            match n {
                Node::Text(t) => out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipe(p, dot)?;
                    if p.decl.is_empty() {
                        out.push_str(&string_of(&v));
                    }
                }
                Node::If(p, body, els) => {
                    let v = self.pipe(p, dot)?;
                    self.exec(if truthy(&v) { body } else { els }, dot, out)?;
                }
                Node::With(p, body, els) => {
                    let v = self.pipe(p, dot)?;
                    if truthy(&v) {
                        self.exec(body, &v, out)?;
                    } else {
                        self.exec(els, dot, out)?;
                    }
                }
                Node::Range(vars, p, body, els) => {
                    let v = self.pipe(p, dot)?;
                    let items: Vec<(Value, Value)> = match &v {
                        Value::Array(a) => a
                            .iter()
                            .enumerate()
                            .map(|(i, x)| (Value::from(i), x.clone()))
                            .collect(),
                        Value::Object(m) => {
                            let mut keys: Vec<&String> = m.keys().collect();
                            keys.sort();
                            keys.into_iter()
                                .map(|k| (Value::String(k.clone()), m[k].clone()))
                                .collect()
                        }
                        Value::Null => vec![],
                        other => bail!("template: range can't iterate over {}", kind(other)),
                    };
                    if items.is_empty() {
                        self.exec(els, dot, out)?;
                    }
                    for (k, item) in items {
                        let depth = self.vars.len();
                        match vars.as_slice() {
                            [v] => self.vars.push((v.clone(), item.clone())),
                            [kn, vn] => {
                                self.vars.push((kn.clone(), k));
                                self.vars.push((vn.clone(), item.clone()));
                            }
                            _ => {}
                        }
                        self.exec(body, &item, out)?;
                        self.vars.truncate(depth);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Renders `tpl` against `v`.
pub fn render(tpl: &str, v: &Value) -> Result<String> {
    render_inner(tpl, v, None)
}

/// Renders `tpl` against `v` with the caller's functions besides the
/// fixed set (swarmkit's `env`, `secret`, `config` and its own `join`).
pub fn render_with(tpl: &str, v: &Value, extra: ExtraFuncs<'_>) -> Result<String> {
    render_inner(tpl, v, Some(extra))
}

fn render_inner(tpl: &str, v: &Value, extra: Option<ExtraFuncs<'_>>) -> Result<String> {
    let items = lex(tpl)?;
    let mut pos = 0;
    let (nodes, _) = parse(&items, &mut pos, &[])?;
    let mut scope = Scope {
        root: v,
        vars: vec![],
        extra,
    };
    let mut out = String::new();
    scope.exec(&nodes, v, &mut out)?;
    Ok(out)
}

/// Go's `%q` of a string.
pub fn go_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// How Go's fmt prints a value with `%v`.
pub fn go_print(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "<no value>".into(),
        serde_json::Value::Array(a) => {
            format!("[{}]", a.iter().map(go_print).collect::<Vec<_>>().join(" "))
        }
        serde_json::Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            format!(
                "map[{}]",
                keys.iter()
                    .map(|k| format!("{k}:{}", go_print(&m[*k])))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_callers_functions_come_before_the_fixed_set() {
        let extra = |name: &str, args: &[Value]| -> Option<Result<Value>> {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
            match name {
                "env" => Some(Ok(Value::String(format!("<{}>", text(&args[0]))))),
                "join" => Some(Ok(Value::String(
                    args[1..]
                        .iter()
                        .map(text)
                        .collect::<Vec<_>>()
                        .join(&text(&args[0])),
                ))),
                _ => None,
            }
        };
        let out = render_with(
            r#"{{env "X"}} {{join "," "a" "b"}} {{upper "u"}}"#,
            &serde_json::json!({}),
            &extra,
        )
        .unwrap();
        assert_eq!(out, "<X> a,b U");
    }

    #[test]
    fn json_escapes_as_go() {
        let v = serde_json::json!({"P": "0.0.0.0:80->80/tcp <&>"});
        assert_eq!(
            render("{{json .P}}", &v).unwrap(),
            "\"0.0.0.0:80-\\u003e80/tcp \\u003c\\u0026\\u003e\""
        );
    }

    #[test]
    fn go_field_names_reach_json_tags() {
        let ev = serde_json::json!({"Type": "container", "time": 5, "timeNano": 7, "id": "x"});
        assert_eq!(
            render("{{.Type}} {{.Time}} {{.TimeNano}} {{.ID}}", &ev).unwrap(),
            "container 5 7 x"
        );
    }

    #[test]
    fn label_method_reads_maps_and_joined_text() {
        let row = serde_json::json!({"Labels": "a=1,b=x=y", "M": {"Labels": {"k": "v"}}});
        assert_eq!(
            render("{{.Label \"a\"}}|{{.Label \"b\"}}|{{.Label \"zz\"}}", &row).unwrap(),
            "1|x=y|"
        );
        assert_eq!(render("{{.M.Label \"k\"}}", &row).unwrap(), "v");
    }

    use serde_json::json;

    fn r(t: &str, v: &Value) -> String {
        render(t, v).unwrap_or_else(|e| format!("ERR {e}"))
    }

    #[test]
    fn docker_inspect_idioms() {
        let v = json!({
            "Name": "/web", "State": {"Running": true, "Health": null},
            "Mounts": [{"Type": "volume", "Name": "data"}, {"Type": "bind", "Name": ""}],
            "Config": {"Labels": {"b": "2", "a": "1"}, "Cmd": ["sh", "-c", "x"], "Env": []},
            "Count": 3,
        });
        assert_eq!(r("{{.Name}}", &v), "/web");
        assert_eq!(r("{{range .Mounts}}{{.Type}} {{end}}", &v), "volume bind ");
        assert_eq!(r("{{len .Mounts}}", &v), "2");
        assert_eq!(r("{{index .Config.Cmd 1}}", &v), "-c");
        assert_eq!(r("{{index .Config.Labels \"b\"}}", &v), "2");
        assert_eq!(r("{{join .Config.Cmd \" \"}}", &v), "sh -c x");
        assert_eq!(
            r(
                "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}",
                &v
            ),
            "a=1;b=2;"
        );
        assert_eq!(r("{{if .State.Running}}up{{else}}down{{end}}", &v), "up");
        assert_eq!(
            r(
                "{{if eq .Count 3}}three{{else if eq .Count 4}}four{{else}}?{{end}}",
                &v
            ),
            "three"
        );
        assert_eq!(r("{{if not .State.Health}}none{{end}}", &v), "none");
        assert_eq!(r("{{with .Config}}{{.Cmd}}{{end}}", &v), "[sh -c x]");
        assert_eq!(r("{{.Name | upper}}", &v), "/WEB");
        assert_eq!(r("{{json .Config.Env}}", &v), "[]");
        assert_eq!(r("{{range .Config.Env}}x{{else}}empty{{end}}", &v), "empty");
        assert_eq!(r("{{printf \"%s:%v\" .Name .Count}}", &v), "/web:3");
        assert_eq!(r("a {{- .Name -}} b", &v), "a/webb");
        assert_eq!(r("{{(index .Mounts 0).Name}}", &v), "data");
        assert!(r("{{.Nope.Deeper}}", &v).starts_with("ERR"));
        assert!(r("{{bogus .Name}}", &v).starts_with("ERR"));
        assert!(r("{{if .Name}}x", &v).starts_with("ERR"));
    }
}
