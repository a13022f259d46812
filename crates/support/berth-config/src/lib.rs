//! berth's daemon configuration, one type: each setting of `berth daemon`
//! is declared once, in the table of `with_settings!` (table.rs): its flag,
//! its daemon.json key, its default, whether SIGHUP applies it and its
//! attribute in the `reload` event. From that table this crate derives
//! [`Flags`], daemon.json's [`FileConfig`], the merged [`Settings`] and the
//! [`Reloadable`] values with their event attributes; the daemon derives
//! its clap flags from it. No clap here: the engine depends on this crate.

#[macro_use]
mod derive;
mod table;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// daemon.json when `--config-file` does not say (a missing file is fine)
pub const DEFAULT_CONFIG: &str = "/etc/berth/daemon.json";
/// Docker's certs.d layout, under berth's name
pub const CERTS_DIR: &str = "/etc/berth/certs.d";

with_settings!(derive_settings);

/// Reads daemon.json (`--config-file`, else [`DEFAULT_CONFIG`] if it
/// exists) and merges the flags over it; checks what needs no other crate
/// (the daemon checks the log driver and its options).
pub fn load(flags: Flags) -> Result<Settings> {
    let path = flags
        .config_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    let file = match std::fs::read(&path) {
        Ok(raw) => parse_file(&path, &raw)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && flags.config_file.is_none() => {
            FileConfig::default()
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let s = Settings::merge(flags, file)?;
    if !matches!(
        s.log_level.as_str(),
        "debug" | "info" | "warn" | "error" | "fatal" | "trace"
    ) {
        bail!("unable to parse logging level: {}", s.log_level);
    }
    check_mirrors_for(s.registry_mirrors_for.clone())?;
    Ok(s)
}

/// Parses daemon.json with Docker's message for keys it does not know; an
/// empty file is an empty configuration.
pub fn parse_file(path: &Path, raw: &[u8]) -> Result<FileConfig> {
    if raw.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(FileConfig::default());
    }
    serde_json::from_slice(raw).map_err(|e| {
        let msg = e.to_string();
        if msg.starts_with("unknown field") {
            anyhow::anyhow!(
                "invalid configuration in {}: the following directives don't match any configuration option: {msg}",
                path.display()
            )
        } else {
            anyhow::anyhow!("invalid configuration in {}: {msg}", path.display())
        }
    })
}

/// One of daemon.json's `default-address-pools`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressPool {
    base: String,
    size: u8,
}

impl AddressPool {
    /// daemon.json's pools as (base CIDR, size).
    fn pairs(pools: Vec<AddressPool>) -> Vec<(String, u8)> {
        pools.into_iter().map(|p| (p.base, p.size)).collect()
    }
}

/// `--default-address-pool base=CIDR,size=N`, each.
fn parse_address_pools(specs: Vec<String>) -> Result<Vec<(String, u8)>> {
    specs
        .iter()
        .map(|spec| match address_pool(spec) {
            Some(pool) => Ok(pool),
            None => bail!("invalid default address pool: {spec} (want base=CIDR,size=N)"),
        })
        .collect()
}

fn address_pool(spec: &str) -> Option<(String, u8)> {
    let (mut base, mut size) = (None, None);
    for kv in spec.split(',') {
        match kv.split_once('=')? {
            ("base", v) => base = Some(v.to_string()),
            ("size", v) => size = v.parse::<u8>().ok(),
            _ => return None,
        }
    }
    Some((base?, size?))
}

/// `--log-opt key=value`, each.
fn parse_log_opts(kvs: Vec<String>) -> Result<BTreeMap<String, String>> {
    kvs.iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => bail!("invalid key/value pair format in logging opts: {kv}"),
        })
        .collect()
}

/// `--registry-mirror-for HOST=URL`, repeatable: the mirrors of each host
/// in the order given.
fn parse_mirrors_for(kvs: Vec<String>) -> Result<BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for kv in &kvs {
        let Some((host, url)) = kv.split_once('=') else {
            bail!(
                "invalid registry mirror {kv:?}: use HOST=URL, e.g. registry.k8s.io=http://127.0.0.1:5000"
            );
        };
        out.entry(host.to_string())
            .or_default()
            .push(url.to_string());
    }
    check_mirrors_for(out)
}

/// Each host is a registry's name, each mirror an http(s) URL of a host
/// (a mirror serves the same repository paths).
fn check_mirrors_for(m: BTreeMap<String, Vec<String>>) -> Result<BTreeMap<String, Vec<String>>> {
    for (host, urls) in &m {
        if host.is_empty() || host.contains('/') || host.contains("://") {
            bail!(
                "invalid registry {host:?} in registry-mirrors-for: give its host name, e.g. registry.k8s.io"
            );
        }
        for url in urls {
            let rest = url
                .strip_prefix("http://")
                .or_else(|| url.strip_prefix("https://"));
            if rest.is_none_or(|r| {
                r.trim_end_matches('/').is_empty() || r.trim_end_matches('/').contains('/')
            }) {
                bail!(
                    "invalid mirror {url:?} for {host}: give an http:// or https:// URL of a registry host, with no path"
                );
            }
        }
    }
    Ok(m)
}

/// What a flag's value says: given or not, and then its value.
pub trait FlagValue {
    type Value;
    /// set, non-empty or true
    fn is_given(&self) -> bool;
    fn given(self) -> Option<Self::Value>;
}

impl<T> FlagValue for Option<T> {
    type Value = T;
    fn is_given(&self) -> bool {
        self.is_some()
    }
    fn given(self) -> Option<T> {
        self
    }
}

/// a repeatable flag
impl<T> FlagValue for Vec<T> {
    type Value = Vec<T>;
    fn is_given(&self) -> bool {
        !self.is_empty()
    }
    fn given(self) -> Option<Vec<T>> {
        (!self.is_empty()).then_some(self)
    }
}

/// a switch: given when on
impl FlagValue for bool {
    type Value = bool;
    fn is_given(&self) -> bool {
        *self
    }
    fn given(self) -> Option<bool> {
        self.then_some(true)
    }
}

/// a flag with a default value in clap: always given
impl FlagValue for PathBuf {
    type Value = PathBuf;
    fn is_given(&self) -> bool {
        true
    }
    fn given(self) -> Option<PathBuf> {
        Some(self)
    }
}

/// A value as the `reload` event's attributes show it: scalars as they
/// are, lists and maps in Rust's debug form (`["a=b"]`).
pub trait EventValue {
    fn event_value(&self) -> String;
}

impl EventValue for String {
    fn event_value(&self) -> String {
        self.clone()
    }
}

impl EventValue for bool {
    fn event_value(&self) -> String {
        self.to_string()
    }
}

impl EventValue for usize {
    fn event_value(&self) -> String {
        self.to_string()
    }
}

impl EventValue for Vec<String> {
    fn event_value(&self) -> String {
        format!("{self:?}")
    }
}

impl EventValue for BTreeMap<String, String> {
    fn event_value(&self) -> String {
        format!("{self:?}")
    }
}

#[cfg(test)]
mod tests;
