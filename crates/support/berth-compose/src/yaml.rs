//! YAML text to a tree of positioned nodes, decoded as the docker CLI's
//! `yaml.v3` decodes into `interface{}`: only true/false are booleans,
//! `0400` is octal, quoted scalars are strings, `<<` merges mappings.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span, Tag};

/// 1-based line and column inside one file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Pos {
    pub line: usize,
    pub column: usize,
}

#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub value: Value,
    pub pos: Pos,
}

#[derive(Clone, Debug)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
    /// A mapping with a key that is not a string. Go decodes it into a
    /// `map[interface{}]interface{}`, which Docker's loader cannot use.
    OddMap,
}

#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Node,
}

impl Node {
    pub fn new(value: Value, pos: Pos) -> Node {
        Node { value, pos }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|e| e.key == key).map(|e| &e.value),
            _ => None,
        }
    }

    pub fn entries(&self) -> &[Entry] {
        match &self.value {
            Value::Map(entries) => entries,
            _ => &[],
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// A YAML error with Docker's `yaml:` wording but a column too.
#[derive(Debug, PartialEq)]
pub(crate) struct YamlError {
    pub pos: Pos,
    pub info: String,
}

/// Parses the first document of `text`. An empty document is `None`, as Go
/// decodes it to nil.
pub(crate) fn parse(text: &str) -> Result<Option<Node>, YamlError> {
    let mut parser = Parser::new_from_str(text);
    let mut builder = Builder::default();
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(scan_error)?;
        if builder.on_event(event, span)? {
            break;
        }
    }
    Ok(builder.document)
}

fn scan_error(e: ScanError) -> YamlError {
    YamlError {
        pos: Pos {
            line: e.marker().line(),
            column: e.marker().col() + 1,
        },
        info: e.info().to_string(),
    }
}

fn pos_of(span: &Span) -> Pos {
    Pos {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

/// Alias expansion copies subtrees; a bound keeps "billion laughs" out.
const ALIAS_NODE_BUDGET: usize = 100_000;

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    alias_budget_used: usize,
    document: Option<Node>,
}

enum Frame {
    Seq {
        anchor: usize,
        pos: Pos,
        items: Vec<Node>,
    },
    Map {
        anchor: usize,
        pos: Pos,
        pairs: Vec<(Key, Node)>,
        key: Option<Key>,
    },
}

/// A mapping key before the mapping is complete.
struct Key {
    node: Node,
    /// a plain, untagged `<<`
    merge: bool,
}

impl Builder {
    /// Returns true once the first document is complete.
    fn on_event(&mut self, event: Event<'_>, span: Span) -> Result<bool, YamlError> {
        let pos = pos_of(&span);
        match event {
            Event::DocumentEnd | Event::StreamEnd => return Ok(true),
            Event::StreamStart | Event::DocumentStart(_) | Event::Nothing => {}
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq {
                anchor,
                pos,
                items: Vec::new(),
            }),
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map {
                anchor,
                pos,
                pairs: Vec::new(),
                key: None,
            }),
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Seq { anchor, pos, items }) => {
                        (Node::new(Value::Seq(items), pos), anchor)
                    }
                    Some(Frame::Map {
                        anchor, pos, pairs, ..
                    }) => (Node::new(build_mapping(pairs)?, pos), anchor),
                    None => return Ok(false),
                };
                self.add(node, anchor, false)?;
            }
            Event::Scalar(text, style, anchor, tag) => {
                let merge = style == ScalarStyle::Plain && tag.is_none() && text == "<<";
                let value = resolve_scalar(&text, style, tag.as_deref())
                    .map_err(|info| YamlError { pos, info })?;
                self.add(Node::new(value, pos), anchor, merge)?;
            }
            Event::Alias(id) => {
                let node = self.anchors.get(&id).cloned().ok_or_else(|| YamlError {
                    pos,
                    info: "unknown anchor referenced".into(),
                })?;
                self.alias_budget_used += count_nodes(&node);
                if self.alias_budget_used > ALIAS_NODE_BUDGET {
                    return Err(YamlError {
                        pos,
                        info: "document contains excessive aliasing".into(),
                    });
                }
                self.add(node, 0, false)?;
            }
        }
        Ok(false)
    }

    fn add(&mut self, node: Node, anchor: usize, merge: bool) -> Result<(), YamlError> {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.document = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { pairs, key, .. }) => match key.take() {
                None => *key = Some(Key { node, merge }),
                Some(k) => pairs.push((k, node)),
            },
        }
        Ok(())
    }
}

fn count_nodes(node: &Node) -> usize {
    1 + match &node.value {
        Value::Seq(items) => items.iter().map(count_nodes).sum(),
        Value::Map(entries) => entries.iter().map(|e| count_nodes(&e.value)).sum(),
        _ => 0,
    }
}

/// Explicit keys win over merged ones, earlier merges over later ones (yaml.v3).
fn build_mapping(pairs: Vec<(Key, Node)>) -> Result<Value, YamlError> {
    let mut entries: Vec<Entry> = Vec::with_capacity(pairs.len());
    let mut merges = Vec::new();
    let mut odd = false;
    for (key, value) in pairs {
        if key.merge {
            merges.push((key.node.pos, value));
            continue;
        }
        let Value::Str(name) = key.node.value else {
            odd = true;
            continue;
        };
        if let Some(first) = entries.iter().find(|e| e.key == name) {
            return Err(YamlError {
                pos: key.node.pos,
                info: format!(
                    "mapping key {} already defined at line {}",
                    berth_units::go_quote(&name),
                    first.key_pos.line
                ),
            });
        }
        entries.push(Entry {
            key: name,
            key_pos: key.node.pos,
            value,
        });
    }
    for (key_pos, merged) in merges {
        for source in merge_sources(key_pos, &merged)? {
            match &source.value {
                Value::OddMap => odd = true,
                Value::Map(from) => {
                    for e in from {
                        if !entries.iter().any(|x| x.key == e.key) {
                            entries.push(e.clone());
                        }
                    }
                }
                _ => {}
            }
        }
    }
    Ok(if odd {
        Value::OddMap
    } else {
        Value::Map(entries)
    })
}

fn merge_sources(key_pos: Pos, value: &Node) -> Result<Vec<&Node>, YamlError> {
    let want_map = || YamlError {
        pos: key_pos,
        info: "map merge requires map or sequence of maps as the value".into(),
    };
    match &value.value {
        Value::Map(_) | Value::OddMap => Ok(vec![value]),
        Value::Seq(items) => {
            if items
                .iter()
                .all(|i| matches!(i.value, Value::Map(_) | Value::OddMap))
            {
                Ok(items.iter().collect())
            } else {
                Err(want_map())
            }
        }
        _ => Err(want_map()),
    }
}

const CORE_TAG_HANDLE: &str = "tag:yaml.org,2002:";

/// yaml.v3's `resolve` for a scalar decoded into `interface{}`.
fn resolve_scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    let tag = match tag {
        None => "",
        Some(t) if t.handle == CORE_TAG_HANDLE => t.suffix.as_str(),
        // a tag yaml.v3 cannot resolve leaves the text as it is
        Some(_) => return Ok(Value::Str(text.to_string())),
    };
    if !matches!(
        tag,
        "" | "str" | "bool" | "int" | "float" | "null" | "timestamp"
    ) {
        return Ok(Value::Str(text.to_string()));
    }
    let quoted = style != ScalarStyle::Plain;
    if tag == "str" || (quoted && tag.is_empty()) || tag == "timestamp" {
        return Ok(Value::Str(text.to_string()));
    }
    let (resolved_tag, value) = resolve_plain(text);
    match (tag, resolved_tag) {
        ("", _) => Ok(value),
        (want, got) if want == got => Ok(value),
        ("float", "int") => match value {
            Value::Int(i) => Ok(Value::Float(i as f64)),
            v => Ok(v),
        },
        (want, got) => Err(format!("cannot decode !!{got} `{text}` as a !!{want}")),
    }
}

/// The resolution of an untagged plain scalar: (yaml tag, value).
fn resolve_plain(text: &str) -> (&'static str, Value) {
    let string = || ("str", Value::Str(text.to_string()));
    let hint = match text.as_bytes().first() {
        None => b'M',
        Some(b'+' | b'-') => b'S',
        Some(b'0'..=b'9') => b'D',
        Some(b'y' | b'Y' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'o' | b'O' | b'~') => b'M',
        Some(b'.') => b'.',
        Some(_) => return string(),
    };
    match text {
        "true" | "True" | "TRUE" => return ("bool", Value::Bool(true)),
        "false" | "False" | "FALSE" => return ("bool", Value::Bool(false)),
        "" | "~" | "null" | "Null" | "NULL" => return ("null", Value::Null),
        ".nan" | ".NaN" | ".NAN" => return ("float", Value::Float(f64::NAN)),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return ("float", Value::Float(f64::INFINITY));
        }
        "-.inf" | "-.Inf" | "-.INF" => return ("float", Value::Float(f64::NEG_INFINITY)),
        _ => {}
    }
    match hint {
        b'.' => match text.parse::<f64>() {
            Ok(f) => ("float", Value::Float(f)),
            Err(_) => string(),
        },
        b'D' | b'S' => resolve_number(text).unwrap_or_else(string),
        _ => string(),
    }
}

fn resolve_number(text: &str) -> Option<(&'static str, Value)> {
    let plain = text.replace('_', "");
    if let Some(i) = crate::gofmt::parse_int_base0(&plain) {
        return Some(("int", Value::Int(i)));
    }
    if let Some(u) = crate::gofmt::parse_uint_base0(&plain) {
        // beyond i64: Go keeps a uint64; JSON shows the same number
        return Some(("int", Value::Float(u as f64)));
    }
    match plain.parse::<f64>() {
        Ok(f) if is_yaml_float(&plain) => Some(("float", Value::Float(f))),
        _ => None,
    }
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Node {
        parse(text).expect("parses").expect("a document")
    }

    fn scalar(text: &str) -> Value {
        doc(&format!("v: {text}\n"))
            .get("v")
            .expect("v")
            .value
            .clone()
    }

    #[test]
    fn scalars_resolve_like_yaml_v3() {
        assert!(matches!(scalar("0400"), Value::Int(256)));
        assert!(matches!(scalar("0o400"), Value::Int(256)));
        assert!(matches!(scalar("0x1F"), Value::Int(31)));
        assert!(matches!(scalar("1_000"), Value::Int(1000)));
        assert!(matches!(scalar("-12"), Value::Int(-12)));
        assert!(matches!(scalar("0b101"), Value::Int(5)));
        assert!(matches!(scalar("08"), Value::Float(f) if f == 8.0));
        assert!(matches!(scalar("1.5"), Value::Float(f) if f == 1.5));
        assert!(matches!(scalar(".5"), Value::Float(f) if f == 0.5));
        assert!(matches!(scalar("1e3"), Value::Float(f) if f == 1000.0));
        assert!(matches!(scalar("true"), Value::Bool(true)));
        assert!(matches!(scalar("FALSE"), Value::Bool(false)));
        assert!(matches!(scalar("yes"), Value::Str(s) if s == "yes"));
        assert!(matches!(scalar("on"), Value::Str(s) if s == "on"));
        assert!(matches!(scalar("~"), Value::Null));
        assert!(matches!(scalar(""), Value::Null));
        assert!(matches!(scalar("'0400'"), Value::Str(s) if s == "0400"));
        assert!(matches!(scalar("\"true\""), Value::Str(s) if s == "true"));
        assert!(matches!(scalar("!!str 12"), Value::Str(s) if s == "12"));
        assert!(matches!(scalar("!!int \"12\""), Value::Int(12)));
        assert!(matches!(scalar("2024-01-02"), Value::Str(s) if s == "2024-01-02"));
        assert!(matches!(scalar("1.2.3"), Value::Str(s) if s == "1.2.3"));
        assert!(matches!(scalar("+.inf"), Value::Float(f) if f.is_infinite()));
        assert!(matches!(scalar(".info"), Value::Str(_)));
    }

    #[test]
    fn positions_are_one_based() {
        let d = doc("a:\n  bb: 1\n");
        let a = &d.entries()[0];
        assert_eq!(a.key_pos, Pos { line: 1, column: 1 });
        let bb = &a.value.entries()[0];
        assert_eq!(bb.key_pos, Pos { line: 2, column: 3 });
        assert_eq!(bb.value.pos, Pos { line: 2, column: 7 });
    }

    #[test]
    fn merge_keys_follow_yaml_v3() {
        let d = doc(concat!(
            "base: &b {a: 1, b: 2}\n",
            "other: &o {b: 3, c: 4}\n",
            "x:\n  <<: [*b, *o]\n  a: 9\n",
        ));
        let x = d.get("x").expect("x");
        let get = |k: &str| match x.get(k).map(|n| &n.value) {
            Some(Value::Int(i)) => *i,
            _ => -1,
        };
        assert_eq!((get("a"), get("b"), get("c")), (9, 2, 4));
        let e = parse("a: &a 1\nb:\n  <<: *a\n").unwrap_err();
        assert_eq!(
            e.info,
            "map merge requires map or sequence of maps as the value"
        );
        assert_eq!(e.pos.line, 3);
    }

    #[test]
    fn duplicate_keys_and_syntax_errors_have_positions() {
        let e = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(e.info, "mapping key \"a\" already defined at line 1");
        assert_eq!(e.pos, Pos { line: 3, column: 1 });
        let e = parse("a:\n  b: c: d\n").unwrap_err();
        assert_eq!(e.pos.line, 2);
        assert!(!e.info.is_empty());
    }

    #[test]
    fn non_string_keys_make_an_odd_map() {
        let d = doc("a:\n  80: x\n");
        assert!(matches!(d.get("a").map(|n| &n.value), Some(Value::OddMap)));
        assert!(parse("").expect("empty parses").is_none());
    }
}
