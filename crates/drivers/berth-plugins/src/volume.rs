//! A volume plugin as a volume driver: each call of the driver port is the
//! plugin protocol's call of the same name (`VolumeDriver.Create`, ...),
//! with dockerd's timeouts (2 minutes for Create and Mount, 1 for the
//! rest).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_core::volume::{
    Capabilities, DriverVolume, VolumeDriver, VolumeError, VolumeResult, VolumeScope,
};
use serde_json::{Value, json};

use crate::client::CallError;
use crate::discovery::{LookupError, Registry};

const LONG: Duration = Duration::from_secs(120);
const SHORT: Duration = Duration::from_secs(60);

/// The interface name a volume plugin implements.
pub const INTERFACE: &str = "VolumeDriver";

/// The volume driver of plugin `name`, found in `registry` at each call,
/// so that a plugin started after the daemon, or restarted, is used.
pub struct PluginVolumeDriver {
    name: String,
    registry: Arc<Registry>,
}

impl PluginVolumeDriver {
    pub fn new(name: &str, registry: Arc<Registry>) -> Self {
        Self {
            name: name.to_string(),
            registry,
        }
    }

    /// Calls `VolumeDriver.<method>`; an `Err` in the answer is an error.
    fn call(&self, method: &str, args: Value, timeout: Duration) -> VolumeResult<Value> {
        let plugin = self
            .registry
            .get(&self.name, INTERFACE)
            .map_err(|e| match e {
                LookupError::NotFound => VolumeError::NotFound(format!(
                    "error looking up volume plugin {}: plugin {:?} not found",
                    self.name, self.name
                )),
                LookupError::Unusable(m) => VolumeError::Driver(anyhow::anyhow!(
                    "error looking up volume plugin {}: {m}",
                    self.name
                )),
            })?;
        let answer = plugin
            .call(&format!("{INTERFACE}.{method}"), &args, timeout)
            .map_err(|e| {
                if matches!(e, CallError::Unreachable { .. }) {
                    // found anew at the next call, wherever it is then
                    self.registry.forget(&self.name);
                }
                VolumeError::Driver(e.into())
            })?;
        match answer.get("Err").and_then(Value::as_str) {
            Some(err) if !err.is_empty() => Err(VolumeError::Driver(anyhow::anyhow!("{err}"))),
            _ => Ok(answer),
        }
    }

    fn mountpoint(answer: &Value) -> VolumeResult<PathBuf> {
        match answer.get("Mountpoint").and_then(Value::as_str) {
            Some(m) if m.starts_with('/') => Ok(PathBuf::from(m)),
            other => Err(VolumeError::Driver(anyhow::anyhow!(
                "the plugin gave no absolute Mountpoint: {other:?}"
            ))),
        }
    }
}

/// One volume of a `Get` or `List` answer.
fn driver_volume(v: &Value) -> Option<DriverVolume> {
    let name = v.get("Name")?.as_str()?.to_string();
    let status = v
        .get("Status")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    Some(DriverVolume {
        name,
        mountpoint: v
            .get("Mountpoint")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .map(PathBuf::from),
        created_at: v
            .get("CreatedAt")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .map(String::from),
        status,
    })
}

impl VolumeDriver for PluginVolumeDriver {
    fn create(&self, name: &str, options: &HashMap<String, String>) -> VolumeResult<()> {
        self.call("Create", json!({ "Name": name, "Opts": options }), LONG)
            .map(drop)
    }

    fn remove(&self, name: &str) -> VolumeResult<()> {
        self.call("Remove", json!({ "Name": name }), SHORT)
            .map(drop)
    }

    fn path(&self, name: &str) -> VolumeResult<PathBuf> {
        Self::mountpoint(&self.call("Path", json!({ "Name": name }), SHORT)?)
    }

    fn mount(&self, name: &str, caller: &str) -> VolumeResult<PathBuf> {
        let answer = self.call("Mount", json!({ "Name": name, "ID": caller }), LONG)?;
        Self::mountpoint(&answer)
    }

    fn unmount(&self, name: &str, caller: &str) -> VolumeResult<()> {
        self.call("Unmount", json!({ "Name": name, "ID": caller }), SHORT)
            .map(drop)
    }

    fn get(&self, name: &str) -> VolumeResult<DriverVolume> {
        let answer = self.call("Get", json!({ "Name": name }), SHORT)?;
        answer
            .get("Volume")
            .and_then(driver_volume)
            .ok_or_else(|| VolumeError::NotFound(format!("no such volume: {name}")))
    }

    fn list(&self) -> VolumeResult<Vec<DriverVolume>> {
        let answer = self.call("List", json!({}), SHORT)?;
        Ok(answer
            .get("Volumes")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(driver_volume).collect())
            .unwrap_or_default())
    }

    /// A plugin without the call (older ones) is a local-scope driver, as
    /// dockerd takes it.
    fn capabilities(&self) -> Capabilities {
        let scope = self
            .call("Capabilities", json!({}), SHORT)
            .ok()
            .and_then(|a| {
                a.pointer("/Capabilities/Scope")
                    .and_then(Value::as_str)
                    .map(|s| s.eq_ignore_ascii_case("global"))
            });
        Capabilities {
            scope: if scope == Some(true) {
                VolumeScope::Global
            } else {
                VolumeScope::Local
            },
        }
    }
}

/// The volume plugins of a registry, as the volumes service asks for them.
pub struct VolumePlugins {
    registry: Arc<Registry>,
}

impl VolumePlugins {
    pub fn new(registry: Arc<Registry>) -> Self {
        Self { registry }
    }
}

impl berth_core::volume::VolumeDriverLookup for VolumePlugins {
    fn driver(&self, name: &str) -> Result<Option<Arc<dyn VolumeDriver>>, String> {
        match self.registry.get(name, INTERFACE) {
            Ok(_) => Ok(Some(Arc::new(PluginVolumeDriver::new(
                name,
                self.registry.clone(),
            )))),
            Err(LookupError::NotFound) => Ok(None),
            Err(LookupError::Unusable(m)) => Err(m),
        }
    }

    fn names(&self) -> Vec<String> {
        self.registry.names(INTERFACE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_of_an_answer_keep_their_status_and_skip_nameless_ones() {
        let v = json!({"Name": "a", "Mountpoint": "/m/a", "CreatedAt": "2026-12-06T00:00:00Z",
                       "Status": {"size": 3}});
        let d = driver_volume(&v).unwrap();
        assert_eq!(d.mountpoint, Some(PathBuf::from("/m/a")));
        assert_eq!(d.status["size"], 3);
        assert!(driver_volume(&json!({"Mountpoint": "/x"})).is_none());
        assert!(PluginVolumeDriver::mountpoint(&json!({"Mountpoint": "relative"})).is_err());
    }
}
