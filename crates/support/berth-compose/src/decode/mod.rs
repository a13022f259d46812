//! A validated, interpolated file to the typed model: the docker CLI's
//! loadSections (mapstructure and its transform hooks), with its errors.

mod deploy;
mod objects;
mod service;

use std::collections::BTreeMap;
use std::path::Path;

use crate::env::Env;
use crate::error::{ComposeError, Position};
use crate::gofmt;
use crate::model::Project;
use crate::yaml::{Node, Pos, Value};

/// What decoding one file needs besides the tree.
pub(crate) struct Decoder<'a> {
    pub file: &'a str,
    pub working_dir: &'a Path,
    pub env: &'a Env,
    pub version: &'a str,
    pub warnings: &'a mut Vec<String>,
}

impl Decoder<'_> {
    pub fn position(&self, pos: Pos) -> Option<Position> {
        Some(Position {
            file: self.file.to_string(),
            line: pos.line,
            column: pos.column,
        })
    }

    pub fn error(&self, message: impl Into<String>, pos: Pos) -> ComposeError {
        ComposeError::at(message, self.position(pos))
    }

    /// mapstructure's wrapping of a failed field.
    pub fn decoding_failed(&self, detail: String, pos: Pos) -> ComposeError {
        self.error(
            format!("decoding failed due to the following error(s):\n\n{detail}"),
            pos,
        )
    }

    /// An unsigned field; mapstructure refuses negative numbers.
    pub fn unsigned(&self, node: &Node, go_path: &str) -> Result<u64, ComposeError> {
        match node.value {
            Value::Int(i) if i < 0 => Err(self.decoding_failed(
                format!("cannot parse '{go_path}', {i} overflows uint"),
                node.pos,
            )),
            Value::Int(i) => Ok(i as u64),
            Value::Float(f) if f < 0.0 => Err(self.decoding_failed(
                format!("cannot parse '{go_path}', {f:.6} overflows uint"),
                node.pos,
            )),
            Value::Float(f) => Ok(f as u64),
            _ => Ok(0),
        }
    }

    pub fn duration(&self, node: &Node, go_path: &str) -> Result<i64, ComposeError> {
        gofmt::parse_duration(&text(node))
            .map_err(|e| self.decoding_failed(format!("error decoding '{go_path}': {e}"), node.pos))
    }

    pub fn decode_file(&mut self, root: &Node) -> Result<Project, ComposeError> {
        let mut project = Project {
            version: self.version.to_string(),
            working_dir: self.working_dir.to_path_buf(),
            ..Project::default()
        };
        if let Some(services) = root.get("services") {
            for e in services.entries() {
                let service = self.service(&e.key, e.key_pos, &e.value)?;
                project.services.insert(e.key.clone(), service);
            }
        }
        if let Some(networks) = root.get("networks") {
            for e in networks.entries() {
                project
                    .networks
                    .insert(e.key.clone(), self.network(&e.key, &e.value)?);
            }
        }
        if let Some(volumes) = root.get("volumes") {
            for e in volumes.entries() {
                project
                    .volumes
                    .insert(e.key.clone(), self.volume(&e.key, &e.value)?);
            }
        }
        for (section, kind) in [("secrets", "secret"), ("configs", "config")] {
            if let Some(objects) = root.get(section) {
                for e in objects.entries() {
                    let object = self.file_object(kind, &e.key, e.key_pos, &e.value)?;
                    let target = if kind == "secret" {
                        &mut project.secrets
                    } else {
                        &mut project.configs
                    };
                    target.insert(e.key.clone(), object);
                }
            }
        }
        Ok(project)
    }
}

/// A scalar as Go's fmt.Sprint prints it; null is empty.
pub(crate) fn text(node: &Node) -> String {
    match &node.value {
        Value::Null => String::new(),
        _ => gofmt::sprint(node),
    }
}

pub(crate) fn flag(node: &Node) -> bool {
    matches!(node.value, Value::Bool(true))
}

pub(crate) fn integer(node: &Node) -> i64 {
    match node.value {
        Value::Int(i) => i,
        Value::Float(f) => f as i64,
        _ => 0,
    }
}

/// A list of strings; a single string is a list of one (StringList).
pub(crate) fn strings(node: &Node) -> Vec<String> {
    match &node.value {
        Value::Seq(items) => items.iter().map(text).collect(),
        Value::Null => Vec::new(),
        _ => vec![text(node)],
    }
}

/// A mapping, or a list of `key<sep>value` strings (the loader's
/// transformMappingOrList). Without a value, an entry is `None` when
/// `allow_nil`, else empty.
pub(crate) fn mapping_or_list(
    node: &Node,
    sep: char,
    allow_nil: bool,
) -> BTreeMap<String, Option<String>> {
    let missing = || if allow_nil { None } else { Some(String::new()) };
    match &node.value {
        Value::Map(entries) => entries
            .iter()
            .map(|e| {
                let v = match e.value.value {
                    Value::Null => missing(),
                    _ => Some(gofmt::sprint(&e.value)),
                };
                (e.key.clone(), v)
            })
            .collect(),
        Value::Seq(items) => items
            .iter()
            .map(|item| {
                let entry = text(item);
                match entry.split_once(sep) {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (entry, missing()),
                }
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// Labels, sysctls: missing values are empty strings.
pub(crate) fn string_map(node: &Node, sep: char) -> BTreeMap<String, String> {
    mapping_or_list(node, sep, false)
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect()
}

/// A `map[string]string` field (driver_opts, logging options): null is "".
pub(crate) fn options(node: &Node) -> BTreeMap<String, String> {
    node.entries()
        .iter()
        .map(|e| (e.key.clone(), text(&e.value)))
        .collect()
}
