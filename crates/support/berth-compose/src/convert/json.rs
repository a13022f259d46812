//! Building JSON objects the way Go's encoding/json writes the API types:
//! `omitempty` fields vanish when empty, zero or false.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

#[derive(Default)]
pub(crate) struct Object(Map<String, Value>);

impl Object {
    pub fn new() -> Object {
        Object::default()
    }

    /// Always written.
    pub fn set(mut self, key: &str, value: impl Into<Value>) -> Object {
        self.0.insert(key.into(), value.into());
        self
    }

    /// Written when present (a pointer field).
    pub fn some(self, key: &str, value: Option<impl Into<Value>>) -> Object {
        match value {
            Some(v) => self.set(key, v),
            None => self,
        }
    }

    /// `omitempty` string.
    pub fn text(self, key: &str, value: &str) -> Object {
        if value.is_empty() {
            self
        } else {
            self.set(key, value)
        }
    }

    /// `omitempty` number.
    pub fn nonzero(self, key: &str, value: i64) -> Object {
        if value == 0 {
            self
        } else {
            self.set(key, value)
        }
    }

    /// `omitempty` bool.
    pub fn flag(self, key: &str, value: bool) -> Object {
        if value { self.set(key, true) } else { self }
    }

    /// `omitempty` list of strings.
    pub fn strings(self, key: &str, values: &[String]) -> Object {
        if values.is_empty() {
            self
        } else {
            self.set(key, strings(values))
        }
    }

    /// `omitempty` list of values.
    pub fn list(self, key: &str, values: Vec<Value>) -> Object {
        if values.is_empty() {
            self
        } else {
            self.set(key, Value::Array(values))
        }
    }

    /// `omitempty` map of strings.
    pub fn map(self, key: &str, values: &BTreeMap<String, String>) -> Object {
        if values.is_empty() {
            self
        } else {
            self.set(key, string_map(values))
        }
    }

    pub fn build(self) -> Value {
        Value::Object(self.0)
    }
}

impl From<Object> for Value {
    fn from(o: Object) -> Value {
        o.build()
    }
}

pub(crate) fn strings(values: &[String]) -> Value {
    Value::Array(values.iter().map(|v| Value::String(v.clone())).collect())
}

pub(crate) fn string_map(values: &BTreeMap<String, String>) -> Value {
    Value::Object(
        values
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// A float32 as Go encodes it: its shortest decimal, and integral values
/// as integers (so `0` compares equal to what the docker CLI sends).
pub(crate) fn float32(f: f32) -> Value {
    let shortest: f64 = f.to_string().parse().unwrap_or(0.0);
    if shortest.fract() == 0.0 && shortest.abs() < 1e15 {
        return Value::from(shortest as i64);
    }
    serde_json::Number::from_f64(shortest).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float32_prints_like_go() {
        assert_eq!(float32(0.1).to_string(), "0.1");
        assert_eq!(float32(0.0).to_string(), "0");
        assert_eq!(float32(2.0).to_string(), "2");
    }
}
