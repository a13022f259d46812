//! The local volume driver. A volume is a directory `<root>/<name>/_data`
//! (`root` is `volumes` under the data root), as in Docker. With the
//! driver options `type`/`device`/`o` it is instead a mount of that device
//! (tmpfs, a bind, …) made on first use and kept until the volume is
//! removed.
//!
//! The driver keeps no files of its own: the volumes service records each
//! volume with its options in the metadata store and hands the records to
//! the driver at start (`VolumeDriver::restore`).

mod device;

pub use device::validate_options;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use anyhow::Context;
use berth_core::volume::{
    Capabilities, DriverVolume, LOCAL_DRIVER, VolumeDriver, VolumeError, VolumeRecord,
    VolumeResult, VolumeScope,
};

pub struct LocalDriver {
    root: PathBuf,
    /// the options of each volume, which say whether its data is a mount
    volumes: Mutex<HashMap<String, HashMap<String, String>>>,
}

impl LocalDriver {
    /// Takes over the volumes under `root` that `known` records (those of
    /// other drivers are skipped); directories without a record (a create
    /// that never committed) are removed.
    pub fn open(root: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
        Ok(Self {
            root: root.to_path_buf(),
            volumes: Mutex::new(HashMap::new()),
        })
    }

    /// The volumes the service has records of (see `VolumeDriver::restore`):
    /// their options are kept, and a directory without a record is removed.
    fn restore_known(&self, known: &[VolumeRecord]) -> anyhow::Result<()> {
        let volumes: HashMap<String, HashMap<String, String>> = known
            .iter()
            .filter(|r| r.driver == LOCAL_DRIVER)
            .map(|r| (r.name.clone(), r.options.clone()))
            .collect();
        for d in std::fs::read_dir(&self.root)?.flatten() {
            let name = d.file_name().to_string_lossy().into_owned();
            if !volumes.contains_key(&name) {
                tracing::info!(volume = %name, "removing a volume directory without a record");
                let _ = device::unmount(&d.path().join("_data"));
                let _ = std::fs::remove_dir_all(d.path());
            }
        }
        *self.volumes() = volumes;
        Ok(())
    }

    fn volumes(&self) -> MutexGuard<'_, HashMap<String, HashMap<String, String>>> {
        self.volumes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn volume_root(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn data(&self, name: &str) -> PathBuf {
        self.volume_root(name).join("_data")
    }

    fn options(&self, name: &str) -> VolumeResult<HashMap<String, String>> {
        self.volumes()
            .get(name)
            .cloned()
            .ok_or_else(|| VolumeError::NotFound(format!("get {name}: no such volume")))
    }
}

impl VolumeDriver for LocalDriver {
    fn restore(&self, known: &[VolumeRecord]) -> VolumeResult<()> {
        self.restore_known(known).map_err(VolumeError::Driver)
    }

    fn validate_options(&self, options: &HashMap<String, String>) -> VolumeResult<()> {
        validate_options(options)
    }

    fn create(&self, name: &str, options: &HashMap<String, String>) -> VolumeResult<()> {
        validate_options(options)?;
        let data = self.data(name);
        std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
        self.volumes().insert(name.to_string(), options.clone());
        Ok(())
    }

    fn remove(&self, name: &str) -> VolumeResult<()> {
        self.volumes().remove(name);
        device::unmount(&self.data(name))?;
        let root = self.volume_root(name);
        std::fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
        Ok(())
    }

    /// The path follows from the name alone, so that it can be shown for
    /// any volume a container names.
    fn path(&self, name: &str) -> VolumeResult<PathBuf> {
        Ok(self.data(name))
    }

    /// Makes the directory (again, if someone removed it) and mounts the
    /// device of a volume with options. Every caller shares the one mount.
    fn mount(&self, name: &str, _caller: &str) -> VolumeResult<PathBuf> {
        let options = self.options(name)?;
        let data = self.data(name);
        std::fs::create_dir_all(&data).map_err(anyhow::Error::from)?;
        device::mount_device(&options, &data)?;
        Ok(data)
    }

    /// Nothing to do: a device stays mounted until its volume is removed,
    /// so that the next container finds it as the last one left it.
    fn unmount(&self, name: &str, _caller: &str) -> VolumeResult<()> {
        self.options(name).map(|_| ())
    }

    fn get(&self, name: &str) -> VolumeResult<DriverVolume> {
        self.options(name)?;
        Ok(DriverVolume {
            name: name.to_string(),
            mountpoint: Some(self.data(name)),
            ..DriverVolume::default()
        })
    }

    fn list(&self) -> VolumeResult<Vec<DriverVolume>> {
        let mut names: Vec<String> = self.volumes().keys().cloned().collect();
        names.sort();
        names.iter().map(|n| self.get(n)).collect()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            scope: VolumeScope::Local,
        }
    }

    /// The size of a plain directory; a device's is not counted (Docker
    /// shows -1 for those too).
    fn usage(&self, name: &str) -> Option<u64> {
        let plain = self.volumes().get(name)?.is_empty();
        plain.then(|| berth_archive::dir_size(&self.data(name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, driver: &str) -> VolumeRecord {
        VolumeRecord {
            name: name.into(),
            driver: driver.into(),
            created_at: "2024-01-01T00:00:00Z".into(),
            labels: HashMap::new(),
            options: HashMap::new(),
        }
    }

    #[test]
    fn restore_removes_directories_without_a_record_and_keeps_the_rest() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("volumes");
        for n in ["kept", "orphan"] {
            std::fs::create_dir_all(root.join(n).join("_data")).expect("mkdir");
        }
        let recs = [record("kept", LOCAL_DRIVER), record("orphan", "elsewhere")];
        let d = LocalDriver::open(&root).expect("open");
        d.restore(&recs).expect("restore");
        assert!(root.join("kept/_data").is_dir());
        assert!(!root.join("orphan").exists());
        let names: Vec<String> = d
            .list()
            .expect("list")
            .into_iter()
            .map(|v| v.name)
            .collect();
        assert_eq!(names, ["kept"]);
    }

    #[test]
    fn create_mount_usage_and_remove_of_a_plain_directory() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let d = LocalDriver::open(tmp.path()).expect("open");
        d.create("v", &HashMap::new()).expect("create");
        let data = d.mount("v", "c1").expect("mount");
        assert_eq!(data, tmp.path().join("v/_data"));
        assert_eq!(d.path("v").expect("path"), data);
        std::fs::write(data.join("f"), [0u8; 100]).expect("write");
        assert_eq!(d.usage("v"), Some(100));
        d.unmount("v", "c1").expect("unmount");
        d.remove("v").expect("remove");
        assert!(!tmp.path().join("v").exists());
        assert!(matches!(d.mount("v", "c1"), Err(VolumeError::NotFound(_))));
        assert_eq!(d.usage("v"), None);
    }

    #[test]
    fn a_device_volume_has_no_usage_and_bad_options_create_nothing() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let d = LocalDriver::open(tmp.path()).expect("open");
        let tmpfs = HashMap::from([("type".to_string(), "tmpfs".to_string())]);
        d.create("dev", &tmpfs).expect("create");
        assert_eq!(d.usage("dev"), None);
        let bad = HashMap::from([("size".to_string(), "1m".to_string())]);
        assert!(matches!(
            d.create("bad", &bad),
            Err(VolumeError::InvalidArgument(_))
        ));
        assert!(!tmp.path().join("bad").exists());
    }
}
