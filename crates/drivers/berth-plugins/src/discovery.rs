//! Where a legacy plugin called NAME is, as dockerd looks for it: a socket
//! `NAME.sock` or `NAME/NAME.sock` under /run/docker/plugins, else a
//! `NAME.spec` (one URL) or `NAME.json` (`{"Name","Addr"}`) file under
//! /etc/docker/plugins or /usr/lib/docker/plugins.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::client::{Address, CallError, Plugin};

/// The directories searched, in order.
#[derive(Debug, Clone)]
pub struct Directories {
    pub sockets: PathBuf,
    pub specs: Vec<PathBuf>,
}

impl Default for Directories {
    fn default() -> Self {
        Self {
            sockets: "/run/docker/plugins".into(),
            specs: vec![
                "/etc/docker/plugins".into(),
                "/usr/lib/docker/plugins".into(),
            ],
        }
    }
}

/// The plugins activated so far, by name; a plugin is looked up again
/// when a call finds it gone.
pub struct Registry {
    dirs: Directories,
    active: Mutex<HashMap<String, Arc<Plugin>>>,
}

/// Why a plugin could not be had.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// nothing of that name in any directory
    #[error("plugin not found")]
    NotFound,
    /// found but unusable: its spec, its handshake, or what it implements
    #[error("{0}")]
    Unusable(String),
}

impl Registry {
    pub fn new(dirs: Directories) -> Self {
        Self {
            dirs,
            active: Mutex::new(HashMap::new()),
        }
    }

    /// The plugin `name`, activated, if it implements `interface`
    /// ("VolumeDriver", ...).
    pub fn get(&self, name: &str, interface: &str) -> Result<Arc<Plugin>, LookupError> {
        let cached = self.lock().get(name).cloned();
        let plugin = match cached {
            Some(p) => p,
            None => {
                let address = self.find(name)?.ok_or(LookupError::NotFound)?;
                let plugin = Plugin::activate(name, address, true)
                    .map_err(|e| LookupError::Unusable(e.to_string()))?;
                let plugin = Arc::new(plugin);
                self.lock().insert(name.to_string(), plugin.clone());
                plugin
            }
        };
        if !plugin.implements(interface) {
            return Err(LookupError::Unusable(format!(
                "plugin {name:?} does not implement {interface}"
            )));
        }
        Ok(plugin)
    }

    /// Forgets an activated plugin, so that the next `get` finds it anew
    /// (a plugin restarted on another socket).
    pub fn forget(&self, name: &str) {
        self.lock().remove(name);
    }

    /// The names of every plugin found that implements `interface`, each
    /// activated once without retries (for `info`).
    pub fn names(&self, interface: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .candidates()
            .into_iter()
            .filter(|name| {
                if let Some(p) = self.lock().get(name) {
                    return p.implements(interface);
                }
                let Ok(Some(address)) = self.find(name) else {
                    return false;
                };
                match Plugin::activate(name, address, false) {
                    Ok(p) => {
                        let yes = p.implements(interface);
                        self.lock().insert(name.clone(), Arc::new(p));
                        yes
                    }
                    Err(_) => false,
                }
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Plugin>>> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The address of plugin `name`, None when nothing names it.
    fn find(&self, name: &str) -> Result<Option<Address>, LookupError> {
        if !valid_name(name) {
            return Ok(None);
        }
        for socket in [
            self.dirs.sockets.join(format!("{name}.sock")),
            self.dirs.sockets.join(name).join(format!("{name}.sock")),
        ] {
            if is_socket(&socket) {
                return Ok(Some(Address::Unix(socket)));
            }
        }
        for dir in &self.dirs.specs {
            for ext in ["spec", "json"] {
                let file = dir.join(format!("{name}.{ext}"));
                match std::fs::read_to_string(&file) {
                    Ok(text) => return spec_address(&file, &text, ext == "json").map(Some),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(LookupError::Unusable(format!(
                            "reading {}: {e}",
                            file.display()
                        )));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Every name the directories hold.
    fn candidates(&self) -> Vec<String> {
        let mut names = Vec::new();
        for entry in read_dir(&self.dirs.sockets) {
            let path = entry.path();
            let file = entry.file_name().to_string_lossy().into_owned();
            if let Some(n) = file.strip_suffix(".sock") {
                names.push(n.to_string());
            } else if path.join(format!("{file}.sock")).exists() {
                names.push(file);
            }
        }
        for dir in &self.dirs.specs {
            for entry in read_dir(dir) {
                let file = entry.file_name().to_string_lossy().into_owned();
                if let Some(n) = file
                    .strip_suffix(".spec")
                    .or_else(|| file.strip_suffix(".json"))
                {
                    names.push(n.to_string());
                }
            }
        }
        names
    }
}

fn read_dir(dir: &Path) -> Vec<std::fs::DirEntry> {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().collect())
        .unwrap_or_default()
}

/// A name that stays one file name: no separators, no dot-dot.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('/') && name != "." && name != ".." && !name.contains('\0')
}

fn is_socket(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// The address a `.spec` (a URL on its first line) or `.json` file gives.
fn spec_address(file: &Path, text: &str, json: bool) -> Result<Address, LookupError> {
    let bad = |why: String| LookupError::Unusable(format!("{}: {why}", file.display()));
    let url = if json {
        #[derive(serde::Deserialize)]
        struct Spec {
            #[serde(rename = "Addr")]
            addr: String,
            #[serde(rename = "TLSConfig", default)]
            tls: Option<serde_json::Value>,
        }
        let spec: Spec = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        if spec.tls.as_ref().is_some_and(|t| !t.is_null()) {
            return Err(bad("TLS to plugins is not supported yet".into()));
        }
        spec.addr
    } else {
        text.lines().next().unwrap_or_default().trim().to_string()
    };
    Address::parse(&url).map_err(|e| bad(e.to_string()))
}

impl From<CallError> for LookupError {
    fn from(e: CallError) -> Self {
        LookupError::Unusable(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs(root: &Path) -> Directories {
        Directories {
            sockets: root.join("run"),
            specs: vec![root.join("etc"), root.join("lib")],
        }
    }

    #[test]
    fn sockets_come_first_then_spec_and_json_files() {
        let root = tempfile::tempdir().unwrap();
        let d = dirs(root.path());
        std::fs::create_dir_all(d.sockets.join("nested")).unwrap();
        std::fs::create_dir_all(&d.specs[0]).unwrap();
        std::fs::create_dir_all(&d.specs[1]).unwrap();
        let _a = std::os::unix::net::UnixListener::bind(d.sockets.join("flat.sock")).unwrap();
        let _b =
            std::os::unix::net::UnixListener::bind(d.sockets.join("nested/nested.sock")).unwrap();
        std::fs::write(d.specs[0].join("tcp.spec"), "tcp://127.0.0.1:9999\n").unwrap();
        std::fs::write(
            d.specs[1].join("j.json"),
            r#"{"Name":"j","Addr":"unix:///x/j.sock"}"#,
        )
        .unwrap();
        std::fs::write(d.specs[0].join("bad.spec"), "ftp://x\n").unwrap();
        let r = Registry::new(d.clone());
        assert_eq!(
            r.find("flat").unwrap(),
            Some(Address::Unix(d.sockets.join("flat.sock")))
        );
        assert_eq!(
            r.find("nested").unwrap(),
            Some(Address::Unix(d.sockets.join("nested/nested.sock")))
        );
        assert_eq!(
            r.find("tcp").unwrap(),
            Some(Address::Tcp("127.0.0.1:9999".into()))
        );
        assert_eq!(
            r.find("j").unwrap(),
            Some(Address::Unix("/x/j.sock".into()))
        );
        assert!(matches!(r.find("bad"), Err(LookupError::Unusable(_))));
        assert_eq!(r.find("none").unwrap(), None);
        assert_eq!(
            r.find("../etc").unwrap(),
            None,
            "no escaping the directories"
        );
        let mut all = r.candidates();
        all.sort();
        assert_eq!(all, ["bad", "flat", "j", "nested", "tcp"]);
    }

    #[test]
    fn a_missing_plugin_is_not_found_at_once() {
        let root = tempfile::tempdir().unwrap();
        let r = Registry::new(dirs(root.path()));
        let started = std::time::Instant::now();
        assert!(matches!(
            r.get("ghost", "VolumeDriver"),
            Err(LookupError::NotFound)
        ));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
