//! The docker CLI's option types for services (cli/opts): each value
//! checked with its message and turned into the JSON the Engine API takes,
//! fields in the order Go marshals them.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// A JSON object built field by field, leaving out what Go's `omitempty`
/// leaves out.
#[derive(Default)]
pub struct Obj(pub Map<String, Value>);

impl Obj {
    pub fn new() -> Self {
        Obj(Map::new())
    }

    pub fn put(mut self, k: &str, v: Value) -> Self {
        self.0.insert(k.to_string(), v);
        self
    }

    pub fn str(self, k: &str, v: &str) -> Self {
        if v.is_empty() {
            self
        } else {
            self.put(k, json!(v))
        }
    }

    pub fn opt(self, k: &str, v: Option<Value>) -> Self {
        match v {
            Some(v) => self.put(k, v),
            None => self,
        }
    }

    pub fn list(self, k: &str, v: &[String]) -> Self {
        if v.is_empty() {
            self
        } else {
            self.put(k, json!(v))
        }
    }

    pub fn map(self, k: &str, v: &BTreeMap<String, String>) -> Self {
        if v.is_empty() {
            self
        } else {
            self.put(k, json!(v))
        }
    }

    pub fn int(self, k: &str, v: i64) -> Self {
        if v == 0 { self } else { self.put(k, json!(v)) }
    }

    pub fn flag(self, k: &str, v: bool) -> Self {
        if v { self.put(k, json!(true)) } else { self }
    }

    pub fn done(self) -> Value {
        Value::Object(self.0)
    }
}

/// `opts.ConvertKVStringsToMap`: `k=v`, or `k` for an empty value; sorted,
/// as Go marshals maps.
pub fn kv_map(items: &[String]) -> BTreeMap<String, String> {
    items
        .iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (s.clone(), String::new()),
        })
        .collect()
}

/// `opts.ValidateEnv`: a name is needed; a bare name takes the client's
/// value when it has one.
pub fn validate_env(v: &str) -> Result<String, String> {
    let (k, has_value) = match v.split_once('=') {
        Some((k, _)) => (k, true),
        None => (v, false),
    };
    if k.is_empty() {
        return Err(format!("invalid environment variable: {v}"));
    }
    if has_value {
        return Ok(v.to_string());
    }
    Ok(match std::env::var(k) {
        Ok(val) => format!("{k}={val}"),
        Err(_) => v.to_string(),
    })
}

/// `opts.ValidateLabel`.
pub fn validate_label(v: &str) -> Result<String, String> {
    let key = v.split_once('=').map_or(v, |(k, _)| k);
    let key = key.trim_start_matches([' ', '\t']);
    if key.is_empty() {
        return Err(format!("invalid label '{v}': empty name"));
    }
    if key.contains([' ', '\t']) {
        return Err(format!("label '{key}' contains whitespaces"));
    }
    Ok(v.to_string())
}

/// The text Go gives an OS error ("no such file or directory").
pub fn go_io_error(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut c = text.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// pkg/kvfile: one `KEY=value` a line; a bare `KEY` takes the client's
/// value, or is dropped.
fn parse_env_file(path: &str) -> Result<Vec<String>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("open {path}: {}", go_io_error(&e)))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("invalid env file ({path}): invalid utf8 bytes"))?;
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let raw = if n == 0 {
            raw.trim_start_matches('\u{feff}')
        } else {
            raw
        };
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, has_value) = match line.split_once('=') {
            Some((k, _)) => (k, true),
            None => (line, false),
        };
        if key.is_empty() {
            return Err(format!(
                "invalid env file ({path}): no variable name on line '{line}'"
            ));
        }
        if key.contains([' ', '\t']) {
            return Err(format!(
                "invalid env file ({path}): variable '{key}' contains whitespaces"
            ));
        }
        if has_value {
            out.push(line.to_string());
        } else if let Ok(v) = std::env::var(line) {
            out.push(format!("{key}={v}"));
        }
    }
    Ok(out)
}

/// The service's `makeEnv`: the env files, then `--env`, a later value of
/// a name replacing the earlier one.
pub fn make_env(files: &[String], env: &[String]) -> Result<Vec<String>, String> {
    let mut all = Vec::new();
    for f in files {
        all.extend(parse_env_file(f)?);
    }
    all.extend(env.iter().cloned());
    let mut current: Vec<String> = Vec::with_capacity(all.len());
    for e in all {
        let key = e.split_once('=').map_or(e.as_str(), |(k, _)| k).to_string();
        let prefix = format!("{key}=");
        current.retain(|c| *c == e || !c.starts_with(&prefix));
        current.push(e);
    }
    Ok(current)
}

/// `opts.NormalizeCapability`.
pub fn normalize_cap(c: &str) -> String {
    let c = c.trim().to_uppercase();
    if c == "ALL" || c == "RESET" || c.starts_with("CAP_") {
        c
    } else {
        format!("CAP_{c}")
    }
}

pub fn caps_set(caps: &[String]) -> std::collections::BTreeSet<String> {
    caps.iter().map(|c| normalize_cap(c)).collect()
}

/// `opts.EffectiveCapAddCapDrop`: "ALL" alone stands for all; a
/// capability both added and dropped is added.
pub fn effective_caps(add: &[String], drop: &[String]) -> (Vec<String>, Vec<String>) {
    let only_all = |s: std::collections::BTreeSet<String>| {
        if s.contains("ALL") {
            ["ALL".to_string()].into_iter().collect()
        } else {
            s
        }
    };
    let add = only_all(caps_set(add));
    let drop = only_all(caps_set(drop));
    let cap_drop = drop
        .iter()
        .filter(|c| !add.contains(*c) && *c != "RESET")
        .cloned()
        .collect();
    let cap_add = add.into_iter().filter(|c| c != "RESET").collect();
    (cap_add, cap_drop)
}

/// `opts.ValidateExtraHost` then the swarm form "IP host".
pub fn swarm_host(v: &str) -> Result<String, String> {
    let (k, ip) = v
        .split_once('=')
        .or_else(|| v.split_once(':'))
        .ok_or_else(|| format!("bad format for add-host: {}", berth_units::go_quote(v)))?;
    if k.is_empty() || k.contains(':') {
        return Err(format!(
            "bad format for add-host: {}",
            berth_units::go_quote(v)
        ));
    }
    let bare = ip
        .strip_prefix('[')
        .and_then(|i| i.strip_suffix(']'))
        .unwrap_or(ip);
    if bare != "host-gateway" && bare.trim().parse::<std::net::IpAddr>().is_err() {
        return Err(format!(
            "invalid IP address in add-host: {}",
            berth_units::go_quote(bare)
        ));
    }
    Ok(format!("{bare} {k}"))
}

/// `opts.ValidateIPAddress` for `--dns`.
pub fn validate_ip(v: &str) -> Result<String, String> {
    v.trim()
        .parse::<std::net::IpAddr>()
        .map(|ip| ip.to_string())
        .map_err(|_| format!("IP address is not correctly formatted: {v}"))
}

/// `--placement-pref spread=DESCRIPTOR`.
pub fn placement_pref(v: &str) -> Result<Value, String> {
    let (strategy, arg) = match v.split_once('=') {
        Some((s, a)) if !s.is_empty() => (s, a),
        _ => {
            return Err(r#"placement preference must be of the format "<strategy>=<arg>""#.into());
        }
    };
    if strategy != "spread" {
        return Err(format!(
            "unsupported placement preference {strategy} (only spread is supported)"
        ));
    }
    Ok(json!({ "Spread": { "SpreadDescriptor": arg } }))
}

const ULIMIT_NAMES: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// go-units `ParseUlimit`: `name=soft[:hard]`, as `{Name, Hard, Soft}`.
pub fn ulimit(v: &str) -> Result<Value, String> {
    let (name, vals) = v
        .split_once('=')
        .ok_or_else(|| format!("invalid ulimit argument: {v}"))?;
    if !ULIMIT_NAMES.contains(&name) {
        return Err(format!("invalid ulimit type: {name}"));
    }
    let num = |s: &str| crate::goparse::parse_int(s, 64);
    let parts: Vec<&str> = vals.split(':').collect();
    let (soft, hard) = match parts.as_slice() {
        [s] => {
            let s = num(s)?;
            (s, s)
        }
        [s, h] => {
            let h = num(h)?;
            (num(s)?, h)
        }
        _ => {
            return Err(format!(
                "too many limit value arguments - {vals}, can only have up to two, `soft[:hard]`"
            ));
        }
    };
    if hard != -1 {
        if soft == -1 {
            return Err(format!(
                "ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: {hard}"
            ));
        }
        if soft > hard {
            return Err(format!(
                "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
            ));
        }
    }
    Ok(json!({ "Name": name, "Hard": hard, "Soft": soft }))
}

/// Ulimits by name, sorted, as `UlimitOpt.GetList` gives them; a later
/// flag for a name replaces the earlier one.
pub fn ulimit_list(values: Vec<Value>) -> Vec<Value> {
    let by_name: BTreeMap<String, Value> = values
        .into_iter()
        .map(|u| (u["Name"].as_str().unwrap_or_default().to_string(), u))
        .collect();
    by_name.into_values().collect()
}
