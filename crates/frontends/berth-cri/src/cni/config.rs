//! The CNI configuration directory, read as go-cni reads it: the
//! lexically first `.conf`, `.conflist` or `.json` file is the pods'
//! network, a single plugin's `.conf` is wrapped into a one-plugin list,
//! and a file that cannot be used is an error that names it, never a
//! silent fallback to another network.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value};

/// The list versions whose results have the shape berth reads (0.1 and
/// 0.2 results have another one).
const SUPPORTED_VERSIONS: [&str; 4] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0"];

/// A configuration file is a few hundred bytes; this bounds a stray one.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// The loopback list containerd runs on `lo` before the pod's network.
pub const LOOPBACK_LIST: &str =
    r#"{"cniVersion":"0.3.1","name":"cni-loopback","plugins":[{"type":"loopback"}]}"#;

/// A network configuration list, as a runtime hands it to its plugins.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkList {
    /// the file it came from, or "" for the built-in loopback list
    pub file: String,
    pub name: String,
    pub cni_version: String,
    /// each plugin's object, as the file has it
    pub plugins: Vec<Map<String, Value>>,
}

impl NetworkList {
    /// Parses a list (or, with `single`, one plugin's configuration).
    pub fn parse(file: &str, bytes: &[u8], single: bool) -> Result<NetworkList> {
        let v: Value = serde_json::from_slice(bytes)
            .with_context(|| format!("{file}: not a JSON network configuration"))?;
        let Value::Object(obj) = v else {
            bail!("{file}: a network configuration is a JSON object");
        };
        let text = |k: &str| -> Result<String> {
            match obj.get(k) {
                Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                _ => bail!("{file}: {k:?} must be a non-empty string"),
            }
        };
        let name = text("name")?;
        let cni_version = text("cniVersion")?;
        if !SUPPORTED_VERSIONS.contains(&cni_version.as_str()) {
            bail!(
                "{file}: cniVersion {cni_version} is not supported (berth reads {})",
                SUPPORTED_VERSIONS.join(", ")
            );
        }
        let plugins = if single && !obj.contains_key("plugins") {
            vec![obj.clone()]
        } else {
            match obj.get("plugins") {
                Some(Value::Array(items)) if !items.is_empty() => items
                    .iter()
                    .map(|p| match p {
                        Value::Object(o) => Ok(o.clone()),
                        _ => Err(anyhow!("{file}: each plugin is a JSON object")),
                    })
                    .collect::<Result<Vec<_>>>()?,
                _ => bail!("{file}: \"plugins\" must be a non-empty list"),
            }
        };
        for p in &plugins {
            plugin_type(p).with_context(|| file.to_string())?;
        }
        Ok(NetworkList {
            file: file.to_string(),
            name,
            cni_version,
            plugins,
        })
    }

    /// The list's JSON, as stored beside an attachment: DEL must see the
    /// configuration ADD saw, whatever the directory holds by then.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "file": self.file,
            "name": self.name,
            "cniVersion": self.cni_version,
            "plugins": self.plugins,
        })
    }

    pub fn from_json(v: &Value) -> Result<NetworkList> {
        let file = v.get("file").and_then(Value::as_str).unwrap_or_default();
        NetworkList::parse(file, v.to_string().as_bytes(), false)
    }

    /// Whether DEL hands each plugin the ADD's result (spec 0.4.0 on).
    pub fn del_has_prev_result(&self) -> bool {
        !self.cni_version.starts_with("0.3.")
    }

    /// The executables the list runs: each plugin's type and its IPAM's.
    pub fn binaries(&self) -> Vec<String> {
        let mut out = Vec::new();
        for p in &self.plugins {
            if let Ok(t) = plugin_type(p) {
                out.push(t.to_string());
            }
            if let Some(t) = p
                .get("ipam")
                .and_then(|i| i.get("type"))
                .and_then(Value::as_str)
            {
                out.push(t.to_string());
            }
        }
        out
    }
}

/// A plugin's `type`: the name of its executable, so never a path.
pub fn plugin_type(p: &Map<String, Value>) -> Result<&str> {
    match p.get("type").and_then(Value::as_str) {
        Some(t) if valid_binary_name(t) => Ok(t),
        Some(t) => bail!("plugin type {t:?} is not a plugin's file name"),
        None => bail!("a plugin has no \"type\""),
    }
}

fn valid_binary_name(t: &str) -> bool {
    !t.is_empty()
        && t != "."
        && t != ".."
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Where the pods' network configuration comes from.
#[derive(Debug, Clone)]
pub struct Directory {
    pub conf_dir: PathBuf,
    pub bin_dirs: Vec<PathBuf>,
}

impl Directory {
    /// `none` turns CNI off: pods stay on berth's bridge.
    pub fn enabled(&self) -> bool {
        self.conf_dir != Path::new("none")
    }

    /// The network the directory names now: None when it holds no
    /// configuration file (or does not exist); an error when the first
    /// file is unusable or a plugin it runs is missing.
    pub fn load(&self) -> Result<Option<NetworkList>> {
        if !self.enabled() {
            return Ok(None);
        }
        let Some(path) = self.first_file()? else {
            return Ok(None);
        };
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bytes = read_bounded(&path)?;
        let list = NetworkList::parse(&file, &bytes, !file.ends_with(".conflist"))?;
        for b in list
            .binaries()
            .iter()
            .chain(std::iter::once(&"loopback".to_string()))
        {
            if self.binary(b).is_none() {
                bail!(
                    "{file}: plugin {b:?} is in none of {} (Debian's package is \
                     containernetworking-plugins)",
                    self.bin_dirs_text()
                );
            }
        }
        Ok(Some(list))
    }

    fn first_file(&self) -> Result<Option<PathBuf>> {
        let entries = match std::fs::read_dir(&self.conf_dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(e).with_context(|| format!("reading {}", self.conf_dir.display()));
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .and_then(|x| x.to_str())
                    .is_some_and(|x| matches!(x, "conf" | "conflist" | "json"))
                    && p.is_file()
            })
            .collect();
        files.sort();
        Ok(files.into_iter().next())
    }

    /// The plugin executable `name`, from the first bin dir holding it.
    pub fn binary(&self, name: &str) -> Option<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        if !valid_binary_name(name) {
            return None;
        }
        self.bin_dirs.iter().map(|d| d.join(name)).find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    }

    /// `CNI_PATH`: where plugins find the IPAM plugins they call.
    pub fn cni_path(&self) -> String {
        self.bin_dirs_text()
    }

    fn bin_dirs_text(&self) -> String {
        self.bin_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    }
}

fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    // non-blocking: a FIFO put in the file's place must not hang the
    // caller; what was opened is checked, not what the name was before
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    if !f.metadata().is_ok_and(|m| m.is_file()) {
        bail!("{}: not a regular file", path.display());
    }
    let mut bytes = Vec::new();
    f.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        bail!("{}: larger than 1 MiB", path.display());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = r#"{"cniVersion":"1.0.0","name":"pods","plugins":[
        {"type":"bridge","bridge":"cni0","ipam":{"type":"host-local"}},
        {"type":"portmap","capabilities":{"portMappings":true}}]}"#;

    #[test]
    fn a_list_names_its_plugins_and_their_ipam() {
        let l = NetworkList::parse("10-pods.conflist", LIST.as_bytes(), false).unwrap();
        assert_eq!(l.name, "pods");
        assert_eq!(l.binaries(), ["bridge", "host-local", "portmap"]);
        assert!(l.del_has_prev_result());
        assert_eq!(NetworkList::from_json(&l.to_json()).unwrap(), l);
    }

    #[test]
    fn a_single_plugin_is_wrapped_into_a_list() {
        let conf = br#"{"cniVersion":"0.3.1","name":"one","type":"bridge"}"#;
        let l = NetworkList::parse("a.conf", conf, true).unwrap();
        assert_eq!(l.plugins.len(), 1);
        assert_eq!(l.plugins[0]["type"], "bridge");
        assert!(!l.del_has_prev_result());
    }

    #[test]
    fn unusable_configurations_name_the_file_and_the_fault() {
        let cases: [(&str, &str); 6] = [
            ("{", "not a JSON"),
            (r#"[1]"#, "JSON object"),
            (
                r#"{"cniVersion":"1.0.0","plugins":[{"type":"x"}]}"#,
                "\"name\"",
            ),
            (
                r#"{"cniVersion":"9.9.9","name":"n","plugins":[{"type":"x"}]}"#,
                "9.9.9",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","plugins":[]}"#,
                "non-empty list",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"../../bin/sh"}]}"#,
                "file name",
            ),
        ];
        for (json, words) in cases {
            let err = format!(
                "{:#}",
                NetworkList::parse("x.conflist", json.as_bytes(), false).unwrap_err()
            );
            assert!(err.contains("x.conflist"), "{err}");
            assert!(err.contains(words), "{json}: {err}");
        }
    }

    #[test]
    fn the_directory_gives_its_first_file_and_checks_the_binaries() {
        let root = std::env::temp_dir().join(format!("berth-cni-conf-{}", std::process::id()));
        let (conf, bin) = (root.join("net.d"), root.join("bin"));
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::create_dir_all(&bin).unwrap();
        let dir = Directory {
            conf_dir: conf.clone(),
            bin_dirs: vec![root.join("missing"), bin.clone()],
        };
        assert_eq!(
            dir.load().unwrap(),
            None,
            "an empty directory names no network"
        );
        std::fs::write(conf.join("20-later.conflist"), "not json").unwrap();
        std::fs::write(conf.join("10-pods.conflist"), LIST).unwrap();
        std::fs::write(conf.join("00-notes.txt"), "ignored").unwrap();
        let err = format!("{:#}", dir.load().unwrap_err());
        assert!(
            err.contains("10-pods.conflist") && err.contains("\"bridge\""),
            "{err}"
        );
        for b in ["bridge", "host-local", "portmap", "loopback"] {
            use std::os::unix::fs::PermissionsExt;
            let p = bin.join(b);
            std::fs::write(&p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let l = dir.load().unwrap().unwrap();
        assert_eq!(l.file, "10-pods.conflist");
        assert_eq!(dir.binary("bridge"), Some(bin.join("bridge")));
        assert_eq!(dir.binary("../bridge"), None);
        let off = Directory {
            conf_dir: PathBuf::from("none"),
            bin_dirs: Vec::new(),
        };
        assert_eq!(off.load().unwrap(), None);
        // a FIFO in a configuration's place is refused, not waited on
        let fifo = root.join("fifo.conflist");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = format!("{:#}", read_bounded(&fifo).unwrap_err());
        assert!(err.contains("not a regular file"), "{err}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
