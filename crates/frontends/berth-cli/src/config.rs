//! The client configuration directory (`--config`, `BERTH_CONFIG`,
//! `DOCKER_CONFIG`, else ~/.docker) and its config.json, which `login`
//! writes and `pull`/`push` read: the same file the docker CLI uses.

use std::path::PathBuf;

use anyhow::Context;
use base64::Engine as _;
use serde_json::{Value, json};

/// `--config DIR`, which wins over the environment.
static DIR_FLAG: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

pub fn set_dir(dir: PathBuf) {
    let _ = DIR_FLAG.set(dir);
}

/// A string setting of config.json: a `--format` default (`psFormat`,
/// `imagesFormat`, …) or `detachKeys`, which the command's own flag
/// overrides.
pub fn format_for(key: &str) -> Option<String> {
    let cfg = load().ok()?;
    cfg.raw
        .get(key)
        .and_then(Value::as_str)
        .filter(|f| !f.is_empty())
        .map(String::from)
}

pub fn dir() -> PathBuf {
    if let Some(d) = DIR_FLAG.get() {
        return d.clone();
    }
    for var in ["BERTH_CONFIG", "DOCKER_CONFIG"] {
        if let Some(d) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            return PathBuf::from(d);
        }
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".docker")
}

pub struct ClientConfig {
    path: PathBuf,
    raw: Value,
}

pub fn load() -> anyhow::Result<ClientConfig> {
    let path = dir().join("config.json");
    let raw = match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b)
            .with_context(|| format!("loading config file {}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => json!({}),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    Ok(ClientConfig { path, raw })
}

impl ClientConfig {
    /// The saved user and password of a registry.
    pub fn auth(&self, host: &str) -> Option<(String, String)> {
        let enc = self
            .raw
            .pointer(&format!("/auths/{}", host.replace('/', "~1")))?;
        let b64 = enc.get("auth")?.as_str()?;
        let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        let s = String::from_utf8(raw).ok()?;
        let (u, p) = s.split_once(':')?;
        Some((u.to_string(), p.to_string()))
    }

    pub fn set_auth(&mut self, host: &str, user: &str, password: &str) {
        if !self.raw.is_object() {
            self.raw = json!({});
        }
        let auths = self
            .raw
            .as_object_mut()
            .map(|o| o.entry("auths").or_insert_with(|| json!({})));
        if let Some(Value::Object(a)) = auths {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            a.insert(host.to_string(), json!({ "auth": token }));
        }
    }

    /// Forgets a registry's credentials; false when there were none.
    pub fn remove_auth(&mut self, host: &str) -> bool {
        self.raw
            .get_mut("auths")
            .and_then(Value::as_object_mut)
            .is_some_and(|a| a.remove(host).is_some())
    }

    /// Writes the file (mode 0600: it holds credentials) through a
    /// temporary name.
    pub fn save(&self) -> anyhow::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let dir = self.path.parent().unwrap_or(std::path::Path::new("."));
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let tmp = self.path.with_extension("json.tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(serde_json::to_string_pretty(&self.raw)?.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("writing {}", self.path.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auths_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let mut c = ClientConfig {
            path: d.path().join("config.json"),
            raw: json!({"psFormat": "x"}),
        };
        c.set_auth("127.0.0.1:5000", "alice", "p:w");
        c.save().unwrap();
        let raw: Value =
            serde_json::from_slice(&std::fs::read(d.path().join("config.json")).unwrap()).unwrap();
        assert_eq!(raw["psFormat"], "x");
        let c2 = ClientConfig {
            path: c.path.clone(),
            raw,
        };
        assert_eq!(
            c2.auth("127.0.0.1:5000"),
            Some(("alice".into(), "p:w".into()))
        );
        let mut c2 = c2;
        assert!(c2.remove_auth("127.0.0.1:5000"));
        assert!(!c2.remove_auth("127.0.0.1:5000"));
        assert_eq!(c2.auth("127.0.0.1:5000"), None);
    }
}
