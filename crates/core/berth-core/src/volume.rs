//! The volume driver port. Its calls are those of Docker's volume plugin
//! protocol (`/VolumeDriver.Create`, `.Remove`, `.Path`, `.Mount`,
//! `.Unmount`, `.Get`, `.List`, `.Capabilities`), so that a plugin client
//! can implement it as well as `berth-volume-local`. The volumes service
//! keeps a [`VolumeRecord`] per volume in the metadata store and asks the
//! volume's driver for its data; [`fake::MemoryVolumeDriver`] stands in for
//! a driver in unit tests.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The driver every engine has, and the one used when none is named.
pub const LOCAL_DRIVER: &str = "local";

/// Docker marks volumes it made for `-v /path` and VOLUME with this label.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// A volume as the volumes service records it (table `volumes`, keyed by
/// name). The JSON field names are on disk: keep them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRecord {
    pub name: String,
    pub driver: String,
    /// RFC 3339, in seconds (Docker's `CreatedAt`)
    #[serde(rename = "created")]
    pub created_at: String,
    #[serde(default)]
    pub labels: HashMap<String, String>,
    /// the driver options it was created with (`--opt`)
    #[serde(default)]
    pub options: HashMap<String, String>,
}

impl VolumeRecord {
    /// Made for a container (`-v /path`, VOLUME), not by name.
    pub fn is_anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }
}

/// Where a driver's volumes are visible: this host only, or every node of
/// a cluster (the plugin protocol's `Capabilities.Scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VolumeScope {
    #[default]
    Local,
    Global,
}

impl VolumeScope {
    pub fn as_str(self) -> &'static str {
        match self {
            VolumeScope::Local => "local",
            VolumeScope::Global => "global",
        }
    }
}

/// What a driver says it can do (`/VolumeDriver.Capabilities`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    pub scope: VolumeScope,
}

/// One volume as its driver reports it (`/VolumeDriver.Get`, `.List`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DriverVolume {
    pub name: String,
    /// where the data is, if the driver tells before a mount
    pub mountpoint: Option<PathBuf>,
    pub created_at: Option<String>,
    /// driver-specific facts, shown in `volume inspect` as `Status`
    pub status: BTreeMap<String, serde_json::Value>,
}

/// A driver's refusal or failure, by kind, so that the service can answer
/// Docker's status codes; the message is shown as it is.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// the request is wrong (an option the driver does not know)
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    /// the driver could not do it (I/O, a failed mount, a plugin error)
    #[error("{0:#}")]
    Driver(#[from] anyhow::Error),
}

pub type VolumeResult<T> = std::result::Result<T, VolumeError>;

/// A volume driver. Volume names are already valid and unique when they
/// reach it: the service owns names, labels and reference counts.
pub trait VolumeDriver: Send + Sync {
    /// Checks a create request's options without side effects. Not a call
    /// of the plugin protocol (a plugin checks in `create`): the service
    /// calls it for every create request, also for a volume that exists.
    fn validate_options(&self, options: &HashMap<String, String>) -> VolumeResult<()> {
        let _ = options;
        Ok(())
    }

    /// Makes a volume (`/VolumeDriver.Create`).
    fn create(&self, name: &str, options: &HashMap<String, String>) -> VolumeResult<()>;

    /// Deletes a volume and its data (`/VolumeDriver.Remove`).
    fn remove(&self, name: &str) -> VolumeResult<()>;

    /// Where the volume's data is on this host, without mounting it
    /// (`/VolumeDriver.Path`).
    fn path(&self, name: &str) -> VolumeResult<PathBuf>;

    /// Makes the data available for `caller` (a container id) and says
    /// where it is (`/VolumeDriver.Mount`).
    fn mount(&self, name: &str, caller: &str) -> VolumeResult<PathBuf>;

    /// `caller` no longer needs the data (`/VolumeDriver.Unmount`).
    fn unmount(&self, name: &str, caller: &str) -> VolumeResult<()>;

    /// One volume (`/VolumeDriver.Get`); `NotFound` if the driver has none.
    fn get(&self, name: &str) -> VolumeResult<DriverVolume>;

    /// Every volume the driver has (`/VolumeDriver.List`).
    fn list(&self) -> VolumeResult<Vec<DriverVolume>>;

    /// `/VolumeDriver.Capabilities`.
    fn capabilities(&self) -> Capabilities;

    /// At daemon start: the volumes of this driver the service has records
    /// of. A driver may drop what it holds for a volume without a record
    /// (what a crash between its create and the record left).
    fn restore(&self, _known: &[VolumeRecord]) -> VolumeResult<()> {
        Ok(())
    }

    /// The bytes the volume's data takes, when the driver can tell cheaply
    /// (`system df`, prune's reclaimed space). Not in the plugin protocol:
    /// Docker shows -1 for plugin volumes, which is `None` here.
    fn usage(&self, name: &str) -> Option<u64> {
        let _ = name;
        None
    }
}

/// Finds volume drivers that are not built in: plugins, by name, at the
/// moment a request names one (a plugin may start after the daemon).
pub trait VolumeDriverLookup: Send + Sync {
    /// The driver called `name`: `Ok(None)` when nothing has that name, an
    /// error when something does but cannot serve (its handshake failed,
    /// it is no volume driver).
    fn driver(&self, name: &str) -> Result<Option<std::sync::Arc<dyn VolumeDriver>>, String>;

    /// The names of the drivers found now (`info`'s plugin list).
    fn names(&self) -> Vec<String>;
}

/// A volume driver in memory, for unit tests of the volumes service.
pub mod fake {
    use std::collections::{BTreeMap, BTreeSet, HashMap};
    use std::path::PathBuf;
    use std::sync::{Mutex, MutexGuard};

    use super::{Capabilities, DriverVolume, VolumeDriver, VolumeError, VolumeResult, VolumeScope};

    #[derive(Debug, Clone, Default)]
    pub struct FakeVolume {
        pub options: HashMap<String, String>,
        /// callers that mounted it and did not unmount yet
        pub mounted_by: BTreeSet<String>,
        pub usage: Option<u64>,
    }

    /// Keeps volumes in a map; data paths are under `/fake/<name>`. Option
    /// keys starting with `bad` are refused, as a driver refuses options it
    /// does not know; removing a mounted volume fails, as in Docker's local
    /// driver.
    #[derive(Default)]
    pub struct MemoryVolumeDriver {
        volumes: Mutex<BTreeMap<String, FakeVolume>>,
        scope: VolumeScope,
    }

    impl MemoryVolumeDriver {
        pub fn new() -> Self {
            Self::default()
        }

        pub fn with_scope(scope: VolumeScope) -> Self {
            Self {
                scope,
                ..Self::default()
            }
        }

        fn volumes(&self) -> MutexGuard<'_, BTreeMap<String, FakeVolume>> {
            self.volumes.lock().unwrap_or_else(|p| p.into_inner())
        }

        /// The driver's view of a volume, for assertions.
        pub fn volume(&self, name: &str) -> Option<FakeVolume> {
            self.volumes().get(name).cloned()
        }

        pub fn names(&self) -> Vec<String> {
            self.volumes().keys().cloned().collect()
        }

        pub fn set_usage(&self, name: &str, bytes: u64) {
            if let Some(v) = self.volumes().get_mut(name) {
                v.usage = Some(bytes);
            }
        }

        fn not_found(name: &str) -> VolumeError {
            VolumeError::NotFound(format!("no such volume: {name}"))
        }
    }

    impl VolumeDriver for MemoryVolumeDriver {
        fn validate_options(&self, options: &HashMap<String, String>) -> VolumeResult<()> {
            match options.keys().find(|k| k.starts_with("bad")) {
                Some(k) => Err(VolumeError::InvalidArgument(format!(
                    "invalid option key: {k:?}"
                ))),
                None => Ok(()),
            }
        }

        fn create(&self, name: &str, options: &HashMap<String, String>) -> VolumeResult<()> {
            self.validate_options(options)?;
            self.volumes()
                .entry(name.to_string())
                .or_insert_with(|| FakeVolume {
                    options: options.clone(),
                    ..FakeVolume::default()
                });
            Ok(())
        }

        fn remove(&self, name: &str) -> VolumeResult<()> {
            let mut vols = self.volumes();
            match vols.get(name) {
                None => Err(Self::not_found(name)),
                Some(v) if !v.mounted_by.is_empty() => Err(VolumeError::Driver(anyhow::anyhow!(
                    "volume {name} has active mounts"
                ))),
                Some(_) => {
                    vols.remove(name);
                    Ok(())
                }
            }
        }

        fn path(&self, name: &str) -> VolumeResult<PathBuf> {
            Ok(PathBuf::from("/fake").join(name))
        }

        fn mount(&self, name: &str, caller: &str) -> VolumeResult<PathBuf> {
            let mut vols = self.volumes();
            let v = vols.get_mut(name).ok_or_else(|| Self::not_found(name))?;
            v.mounted_by.insert(caller.to_string());
            self.path(name)
        }

        fn unmount(&self, name: &str, caller: &str) -> VolumeResult<()> {
            let mut vols = self.volumes();
            let v = vols.get_mut(name).ok_or_else(|| Self::not_found(name))?;
            v.mounted_by.remove(caller);
            Ok(())
        }

        fn get(&self, name: &str) -> VolumeResult<DriverVolume> {
            if !self.volumes().contains_key(name) {
                return Err(Self::not_found(name));
            }
            Ok(DriverVolume {
                name: name.to_string(),
                mountpoint: Some(self.path(name)?),
                ..DriverVolume::default()
            })
        }

        fn list(&self) -> VolumeResult<Vec<DriverVolume>> {
            self.names().iter().map(|n| self.get(n)).collect()
        }

        fn capabilities(&self) -> Capabilities {
            Capabilities { scope: self.scope }
        }

        fn usage(&self, name: &str) -> Option<u64> {
            self.volumes().get(name).and_then(|v| v.usage)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::MemoryVolumeDriver;
    use super::*;

    #[test]
    fn records_read_the_json_written_before_the_port_existed() {
        let old = r#"{"name":"data","driver":"local","created":"2024-05-01T10:00:00Z",
            "labels":{"com.docker.volume.anonymous":""},"options":{"type":"tmpfs"}}"#;
        let rec: VolumeRecord = serde_json::from_str(old).expect("old record");
        assert_eq!(rec.created_at, "2024-05-01T10:00:00Z");
        assert!(rec.is_anonymous());
        let back = serde_json::to_value(&rec).expect("encode");
        let keys: Vec<&str> = back
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["name", "driver", "created", "labels", "options"]);
        // labels and options were optional
        let bare: VolumeRecord =
            serde_json::from_str(r#"{"name":"v","driver":"local","created":"x"}"#).expect("bare");
        assert!(bare.labels.is_empty() && bare.options.is_empty() && !bare.is_anonymous());
    }

    #[test]
    fn the_fake_driver_tracks_mounts_and_refuses_removing_a_mounted_volume() {
        let d = MemoryVolumeDriver::new();
        d.create("v", &HashMap::new()).expect("create");
        assert_eq!(d.mount("v", "c1").expect("mount"), PathBuf::from("/fake/v"));
        assert!(matches!(d.remove("v"), Err(VolumeError::Driver(_))));
        d.unmount("v", "c1").expect("unmount");
        d.remove("v").expect("remove");
        assert!(matches!(d.get("v"), Err(VolumeError::NotFound(_))));
        let bad = HashMap::from([("bad-key".to_string(), String::new())]);
        assert!(matches!(
            d.create("w", &bad),
            Err(VolumeError::InvalidArgument(_))
        ));
        assert_eq!(d.capabilities().scope.as_str(), "local");
    }
}
