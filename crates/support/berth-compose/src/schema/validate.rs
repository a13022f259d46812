//! The subset of gojsonschema (draft 4) the compose schema needs (no anyOf:
//! the compose schema has none), with its
//! scoring, error order and texts, so a failing file yields Docker's error.

use crate::yaml::{Node, Pos, Value};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Type {
    Array,
    Boolean,
    Integer,
    Number,
    Null,
    Object,
    String,
}

impl Type {
    fn name(self) -> &'static str {
        match self {
            Type::Array => "array",
            Type::Boolean => "boolean",
            Type::Integer => "integer",
            Type::Number => "number",
            Type::Null => "null",
            Type::Object => "object",
            Type::String => "string",
        }
    }
}

/// The key regexps of the compose schema.
#[derive(Clone, Copy, Debug)]
pub(crate) enum KeyPattern {
    /// `^[a-zA-Z0-9._-]+$`
    Name,
    /// `^x-`
    Extension,
    /// `^.+$` and `.+`
    NonEmpty,
    /// `^[a-z]+$`
    Lowercase,
}

impl KeyPattern {
    fn matches(self, key: &str) -> bool {
        match self {
            KeyPattern::Name => {
                !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            }
            KeyPattern::Extension => key.starts_with("x-"),
            KeyPattern::NonEmpty => key.chars().any(|c| c != '\n'),
            KeyPattern::Lowercase => !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase()),
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Format {
    /// Docker's checker: nat.ParsePortSpec
    Ports,
    /// Docker's checker: time.ParseDuration
    Duration,
    /// a format no checker is registered for passes
    Unchecked(&'static str),
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Ports => "ports",
            Format::Duration => "duration",
            Format::Unchecked(n) => n,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Schema {
    types: Vec<Type>,
    properties: Vec<(&'static str, Schema)>,
    patterns: Vec<(KeyPattern, Schema)>,
    closed: bool,
    items: Option<Box<Schema>>,
    one_of: Vec<Schema>,
    required: Vec<&'static str>,
    allowed: Vec<&'static str>,
    unique: bool,
    format: Option<Format>,
    minimum: Option<f64>,
}

impl Schema {
    /// `{}`: anything goes.
    pub fn any() -> Schema {
        Schema::default()
    }

    pub fn typed(types: &[Type]) -> Schema {
        Schema {
            types: types.to_vec(),
            ..Schema::default()
        }
    }

    pub fn prop(mut self, name: &'static str, schema: Schema) -> Schema {
        self.properties.push((name, schema));
        self
    }

    pub fn pattern(mut self, pattern: KeyPattern, schema: Schema) -> Schema {
        self.patterns.push((pattern, schema));
        self
    }

    /// `"additionalProperties": false`
    pub fn closed(mut self) -> Schema {
        self.closed = true;
        self
    }

    pub fn items(mut self, items: Schema) -> Schema {
        self.items = Some(Box::new(items));
        self
    }

    pub fn one_of(mut self, options: Vec<Schema>) -> Schema {
        self.one_of = options;
        self
    }

    pub fn required(mut self, names: &[&'static str]) -> Schema {
        self.required = names.to_vec();
        self
    }

    pub fn allowed(mut self, values: &[&'static str]) -> Schema {
        self.allowed = values.to_vec();
        self
    }

    pub fn unique(mut self) -> Schema {
        self.unique = true;
        self
    }

    pub fn format(mut self, format: Format) -> Schema {
        self.format = Some(format);
        self
    }

    pub fn minimum(mut self, minimum: f64) -> Schema {
        self.minimum = Some(minimum);
        self
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    InvalidType,
    OneOf,
    Other,
}

#[derive(Clone, Debug)]
pub(crate) struct SchemaError {
    kind: Kind,
    /// gojsonschema's Field(): the path without "(root)."
    field: String,
    description: String,
    /// for invalid types: gojsonschema's "expected" ("string" or "[a,b]")
    expected: String,
    pos: Pos,
}

#[derive(Default)]
struct Outcome {
    errors: Vec<SchemaError>,
    score: i64,
}

impl Outcome {
    fn add(&mut self, kind: Kind, path: &[String], description: String, pos: Pos) {
        self.add_typed(kind, path, description, String::new(), pos);
    }

    fn add_typed(
        &mut self,
        kind: Kind,
        path: &[String],
        description: String,
        expected: String,
        pos: Pos,
    ) {
        self.errors.push(SchemaError {
            kind,
            field: field(path),
            description,
            expected,
            pos,
        });
        self.score -= 2;
    }

    fn merge(&mut self, other: Outcome) {
        self.errors.extend(other.errors);
        self.score += other.score;
    }
}

fn field(path: &[String]) -> String {
    if path.is_empty() {
        "(root)".into()
    } else {
        path.join(".")
    }
}

/// All of gojsonschema's errors for `node`, in its order.
pub(crate) fn run(schema: &Schema, node: &Node) -> Vec<SchemaError> {
    let mut out = Outcome::default();
    recurse(schema, node, &mut Vec::new(), &mut out);
    out.errors
}

/// Docker's getMostSpecificError and its message ("FIELD DESCRIPTION").
pub(crate) fn most_specific(errors: &[SchemaError]) -> Option<(String, Pos)> {
    let specificity = |e: &SchemaError| e.field.split('.').count();
    let mut best = 0;
    for (i, e) in errors.iter().enumerate() {
        let b = errors.get(best)?;
        let tie_won_by_type = specificity(e) == specificity(b)
            && e.kind == Kind::InvalidType
            && b.kind != Kind::InvalidType;
        if specificity(e) > specificity(b) || tie_won_by_type {
            best = i;
        }
    }
    let parent = errors.get(best)?;
    let child = match parent.kind {
        Kind::OneOf => errors.get(best + 1),
        _ => None,
    };
    let description = match (parent.kind, child) {
        (Kind::InvalidType, _) => format!("must be a {}", human_type(&parent.expected)),
        (_, Some(c)) => c.description.clone(),
        (_, None) => parent.description.clone(),
    };
    let pos = child.map_or(parent.pos, |c| c.pos);
    Some((format!("{} {description}", parent.field), pos))
}

fn human_type(expected: &str) -> String {
    if let Some(list) = expected.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
        let names: Vec<String> = list.split(',').map(human_type).collect();
        let (last, rest) = names
            .split_last()
            .map_or((String::new(), &[][..]), |(l, r)| (l.clone(), r));
        return format!("{} or {last}", rest.join(", "));
    }
    match expected {
        "object" => "mapping".into(),
        "array" => "list".into(),
        other => other.into(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Given {
    Null,
    Boolean,
    Number { integer: bool },
    String,
    Array,
    Object,
}

fn given(node: &Node) -> Given {
    match &node.value {
        Value::Null => Given::Null,
        Value::Bool(_) => Given::Boolean,
        Value::Int(_) => Given::Number { integer: true },
        Value::Float(f) => Given::Number {
            integer: f.is_finite() && f.fract() == 0.0,
        },
        Value::Str(_) => Given::String,
        Value::Seq(_) => Given::Array,
        Value::Map(_) | Value::OddMap => Given::Object,
    }
}

fn given_name(g: Given) -> &'static str {
    match g {
        Given::Null => "null",
        Given::Boolean => "boolean",
        Given::Number { integer: true } => "integer",
        Given::Number { integer: false } => "number",
        Given::String => "string",
        Given::Array => "array",
        Given::Object => "object",
    }
}

fn type_allowed(types: &[Type], g: Given) -> bool {
    match g {
        Given::Number { integer } => {
            types.contains(&Type::Number) || (integer && types.contains(&Type::Integer))
        }
        Given::Null => types.contains(&Type::Null),
        Given::Boolean => types.contains(&Type::Boolean),
        Given::String => types.contains(&Type::String),
        Given::Array => types.contains(&Type::Array),
        Given::Object => types.contains(&Type::Object),
    }
}

fn expected(types: &[Type]) -> String {
    let names: Vec<&str> = types.iter().map(|t| t.name()).collect();
    if names.len() > 1 {
        format!("[{}]", names.join(","))
    } else {
        names.concat()
    }
}

fn recurse(s: &Schema, node: &Node, path: &mut Vec<String>, out: &mut Outcome) {
    let g = given(node);
    if !s.types.is_empty() && !type_allowed(&s.types, g) {
        let exp = expected(&s.types);
        out.add_typed(
            Kind::InvalidType,
            path,
            format!("Invalid type. Expected: {exp}, given: {}", given_name(g)),
            exp,
            node.pos,
        );
        return;
    }
    combinators(s, node, path, out);
    match &node.value {
        Value::Seq(items) => array(s, items, path, out),
        Value::Map(_) => object(s, node, path, out),
        Value::Int(_) | Value::Float(_) => number(s, node, path, out),
        _ => {}
    }
    common(s, node, path, out);
    if let Value::Map(entries) = &node.value {
        for (name, child) in &s.properties {
            if let Some(e) = entries.iter().find(|e| e.key == *name) {
                path.push(e.key.clone());
                recurse(child, &e.value, path, out);
                path.pop();
            }
        }
    }
    if let Value::Str(text) = &node.value {
        string(s, text, node.pos, path, out);
    }
    out.score += 1;
}

fn sub_validate(s: &Schema, node: &Node, path: &mut Vec<String>) -> Outcome {
    let mut out = Outcome::default();
    recurse(s, node, path, &mut out);
    out
}

fn combinators(s: &Schema, node: &Node, path: &mut Vec<String>, out: &mut Outcome) {
    if !s.one_of.is_empty() {
        let mut best: Option<Outcome> = None;
        let mut valid = 0;
        for option in &s.one_of {
            let r = sub_validate(option, node, path);
            if r.errors.is_empty() {
                valid += 1;
            } else if valid == 0 && best.as_ref().is_none_or(|b| r.score > b.score) {
                best = Some(r);
            }
        }
        if valid != 1 {
            out.add(
                Kind::OneOf,
                path,
                "Must validate one and only one schema (oneOf)".into(),
                node.pos,
            );
            if let (0, Some(b)) = (valid, best) {
                out.merge(b);
            }
        }
    }
    out.score += 1;
}

fn common(s: &Schema, node: &Node, path: &[String], out: &mut Outcome) {
    if !s.allowed.is_empty() {
        let ok = matches!(&node.value, Value::Str(v) if s.allowed.contains(&v.as_str()));
        if !ok {
            let allowed: Vec<String> = s.allowed.iter().map(|a| format!("\"{a}\"")).collect();
            out.add(
                Kind::Other,
                path,
                format!(
                    "{} must be one of the following: {}",
                    field(path),
                    allowed.join(", ")
                ),
                node.pos,
            );
        }
    }
    out.score += 1;
}

fn array(s: &Schema, items: &[Node], path: &mut Vec<String>, out: &mut Outcome) {
    if let Some(item_schema) = &s.items {
        for (i, item) in items.iter().enumerate() {
            path.push(i.to_string());
            let r = sub_validate(item_schema, item, path);
            path.pop();
            out.merge(r);
        }
    }
    if s.unique {
        let mut seen: Vec<(String, usize)> = Vec::new();
        for (j, item) in items.iter().enumerate() {
            let text = canonical_json(item);
            match seen.iter_mut().find(|(t, _)| *t == text) {
                Some((_, i)) => {
                    let text = format!("array items[{i},{j}] must be unique");
                    out.add(Kind::Other, path, text, item.pos);
                    *i = j;
                }
                None => seen.push((text, j)),
            }
        }
    }
    out.score += 1;
}

fn object(s: &Schema, node: &Node, path: &mut Vec<String>, out: &mut Outcome) {
    let entries = node.entries();
    for name in &s.required {
        if entries.iter().any(|e| e.key == *name) {
            out.score += 1;
        } else {
            out.add(Kind::Other, path, format!("{name} is required"), node.pos);
        }
    }
    for e in entries {
        let known = s.properties.iter().any(|(name, _)| *name == e.key);
        let mut matched = false;
        for (pattern, child) in &s.patterns {
            if pattern.matches(&e.key) {
                matched = true;
                path.push(e.key.clone());
                let r = sub_validate(child, &e.value, path);
                path.pop();
                out.merge(r);
            }
        }
        if matched {
            out.score += 1;
        }
        if !known && !matched && s.closed {
            out.add(
                Kind::Other,
                path,
                format!("Additional property {} is not allowed", e.key),
                e.key_pos,
            );
        }
    }
    out.score += 1;
}

fn string(s: &Schema, text: &str, pos: Pos, path: &[String], out: &mut Outcome) {
    if let Some(format) = s.format {
        let ok = match format {
            Format::Ports => crate::ports::parse_port_spec(text).is_ok(),
            Format::Duration => crate::gofmt::parse_duration(text).is_ok(),
            Format::Unchecked(_) => true,
        };
        if !ok {
            out.add(
                Kind::Other,
                path,
                format!("Does not match format '{}'", format.name()),
                pos,
            );
        }
    }
    out.score += 1;
}

fn number(s: &Schema, node: &Node, path: &[String], out: &mut Outcome) {
    let value = match node.value {
        Value::Int(i) => i as f64,
        Value::Float(f) => f,
        _ => return,
    };
    if let Some(min) = s.minimum.filter(|min| value < *min) {
        let text = format!(
            "Must be greater than or equal to {}",
            crate::gofmt::format_float(min)
        );
        out.add(Kind::Other, path, text, node.pos);
    }
    if let Some(format) = s.format {
        let ok = match format {
            // the checker sees a big.Rat and keeps what is before its '/'
            Format::Ports => crate::ports::parse_port_spec(&rational_numerator(value)).is_ok(),
            Format::Duration => false,
            Format::Unchecked(_) => true,
        };
        if !ok {
            out.add(
                Kind::Other,
                path,
                format!("Does not match format '{}'", format.name()),
                node.pos,
            );
        }
    }
    out.score += 1;
}

/// The numerator of `value` as a reduced fraction (80.5 is 161/2: "161").
fn rational_numerator(value: f64) -> String {
    let mut v = value;
    for _ in 0..64 {
        if v.fract() == 0.0 {
            return format!("{v:.0}");
        }
        v *= 2.0;
    }
    String::new()
}

/// JSON text with sorted keys and integral floats as integers, so equal
/// values compare equal as gojsonschema's uniqueItems compares them.
fn canonical_json(node: &Node) -> String {
    match &node.value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e18 => {
            format!("{f:.0}")
        }
        Value::Float(f) => f.to_string(),
        Value::Str(s) => serde_json::Value::String(s.clone()).to_string(),
        Value::Seq(items) => {
            let parts: Vec<String> = items.iter().map(canonical_json).collect();
            format!("[{}]", parts.join(","))
        }
        Value::Map(entries) => {
            let mut parts: Vec<String> = entries
                .iter()
                .map(|e| {
                    format!(
                        "{}:{}",
                        serde_json::Value::String(e.key.clone()),
                        canonical_json(&e.value)
                    )
                })
                .collect();
            parts.sort();
            format!("{{{}}}", parts.join(","))
        }
        Value::OddMap => "{}".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_types_read_as_docker_prints_them() {
        assert_eq!(human_type("object"), "mapping");
        assert_eq!(human_type("[string,number,null]"), "string, number or null");
        assert_eq!(human_type("[object,null]"), "mapping or null");
    }

    #[test]
    fn the_numerator_of_a_fraction() {
        assert_eq!(rational_numerator(80.0), "80");
        assert_eq!(rational_numerator(80.5), "161");
    }
}
