//! The volumes service: the volume records, written through to
//! the metadata store, and the drivers (by name) that hold their data. The
//! decisions over records and container mounts (who uses a volume, what
//! `volume ls` shows, what prune removes) are plain functions here, so
//! that they are tested without root, a daemon or real containers.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use berth_core::error::{Error, Result};
use berth_core::mount::{MountKind, MountRecord};
use berth_core::store::{MetadataStore, MetadataStoreExt, Table};
use berth_core::volume::{
    LOCAL_DRIVER, VolumeDriver, VolumeDriverLookup, VolumeRecord, VolumeScope,
};
use berth_core::{LockExt, labels_match};

/// The built-in volume drivers by name ("local").
pub type Drivers = HashMap<String, Arc<dyn VolumeDriver>>;

/// A container's id with its mounts: what volume reference counts are
/// made of.
pub type ContainerMounts = (String, Vec<MountRecord>);

pub struct VolumeService {
    meta: Arc<dyn MetadataStore>,
    drivers: Drivers,
    /// plugins, asked for names the built-in drivers do not have
    plugins: Option<Arc<dyn VolumeDriverLookup>>,
    /// the volumes each caller (a container) has mounted, once per mount,
    /// to unmount as often
    mounted: std::sync::Mutex<HashMap<String, Vec<String>>>,
    records: RwLock<HashMap<String, VolumeRecord>>,
}

impl VolumeService {
    /// The records in the store, by name; drivers are opened with them.
    pub fn load_records(meta: &dyn MetadataStore) -> anyhow::Result<HashMap<String, VolumeRecord>> {
        Ok(meta
            .list_json::<VolumeRecord>(Table::Volumes)?
            .into_iter()
            .collect())
    }

    pub fn new(
        meta: Arc<dyn MetadataStore>,
        drivers: Drivers,
        records: HashMap<String, VolumeRecord>,
    ) -> Self {
        Self {
            meta,
            drivers,
            plugins: None,
            mounted: Default::default(),
            records: RwLock::new(records),
        }
    }

    /// Looks up drivers the built-in ones lack with `plugins`.
    pub fn with_plugins(mut self, plugins: Arc<dyn VolumeDriverLookup>) -> Self {
        self.plugins = Some(plugins);
        self
    }

    /// The driver called `name`, or Docker's answer for a plugin it lacks.
    pub fn driver(&self, name: &str) -> Result<Arc<dyn VolumeDriver>> {
        if let Some(d) = self.drivers.get(name) {
            return Ok(d.clone());
        }
        let found = match &self.plugins {
            Some(p) => p.driver(name).map_err(|e| {
                Error::Internal(anyhow::anyhow!(
                    "error looking up volume plugin {name}: {e}"
                ))
            })?,
            None => None,
        };
        found.ok_or_else(|| {
            Error::not_found(format!(
                "error looking up volume plugin {name}: plugin \"{name}\" not found"
            ))
        })
    }

    /// The names of every driver, built in and found (`info`).
    pub fn driver_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.drivers.keys().cloned().collect();
        names.sort();
        if let Some(p) = &self.plugins {
            names.extend(p.names());
        }
        names
    }

    pub fn get(&self, name: &str) -> Result<VolumeRecord> {
        self.records
            .r()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::not_found(no_such_volume(name)))
    }

    /// Every record, in no particular order.
    pub fn records(&self) -> Vec<VolumeRecord> {
        self.records.r().values().cloned().collect()
    }

    /// The record of `rec.name`, created from `rec` if there is none; true
    /// when it was created. The data comes first, then the record: a crash
    /// between them leaves data that the driver's next open removes.
    ///
    /// The driver is called without the records' lock held: a plugin may
    /// take minutes, and every other volume request would wait on it. Two
    /// creates of one name may both reach the driver, whose create is
    /// idempotent, as the plugin protocol asks; the first record stays.
    pub fn ensure(&self, rec: VolumeRecord) -> Result<(VolumeRecord, bool)> {
        if let Some(existing) = self.records.r().get(&rec.name) {
            return Ok((existing.clone(), false));
        }
        self.driver(&rec.driver)?.create(&rec.name, &rec.options)?;
        let mut recs = self.records.w();
        if let Some(existing) = recs.get(&rec.name) {
            return Ok((existing.clone(), false));
        }
        self.meta.put_json(Table::Volumes, &rec.name, &rec)?;
        recs.insert(rec.name.clone(), rec.clone());
        Ok((rec, true))
    }

    /// Deletes the record, then the data: a crash leaves data that the
    /// local driver's next open removes, never a record without its data.
    /// A plugin drops nothing at open, so its data goes first, as dockerd
    /// does it: a refused `Remove` keeps the volume.
    pub fn delete(&self, rec: &VolumeRecord) -> Result<()> {
        let driver = self.driver(&rec.driver)?;
        let plugin = !self.drivers.contains_key(&rec.driver);
        if plugin {
            driver.remove(&rec.name)?;
        }
        self.meta.delete(Table::Volumes, &rec.name)?;
        self.records.w().remove(&rec.name);
        if !plugin {
            driver.remove(&rec.name)?;
        }
        Ok(())
    }

    /// The name of the driver of volume `name`; "local" for a name without
    /// a record, which a container's inspect may still show.
    pub fn driver_name(&self, name: &str) -> String {
        self.records
            .r()
            .get(name)
            .map(|r| r.driver.clone())
            .unwrap_or_else(|| LOCAL_DRIVER.into())
    }

    /// Where the volume's data is, for views; empty if its driver cannot
    /// say without a mount.
    pub fn mountpoint(&self, name: &str) -> String {
        self.driver(&self.driver_name(name))
            .ok()
            .and_then(|d| d.path(name).ok())
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }

    /// Makes the volume's data available to `caller` (a container id) and
    /// says where it is on the host.
    pub fn mount(&self, name: &str, caller: &str) -> Result<PathBuf> {
        let rec = self.get(name)?;
        let path = self.driver(&rec.driver)?.mount(name, caller)?;
        self.mounted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(caller.to_string())
            .or_default()
            .push(name.to_string());
        Ok(path)
    }

    /// Records what a container that runs across a daemon restart has
    /// mounted (its volume mounts), so that its stop unmounts them.
    pub fn adopt_mounts(&self, caller: &str, names: Vec<String>) {
        if names.is_empty() {
            return;
        }
        self.mounted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(caller.to_string(), names);
    }

    /// Tells the drivers that `caller` (a container that stopped) no longer
    /// needs what it mounted, once per mount. Failures are the drivers' to
    /// report; the caller has stopped regardless.
    pub fn unmount_all(&self, caller: &str) {
        let names = self
            .mounted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(caller)
            .unwrap_or_default();
        for name in names {
            let Ok(rec) = self.get(&name) else { continue };
            let done = self
                .driver(&rec.driver)
                .and_then(|d| Ok(d.unmount(&name, caller)?));
            if let Err(e) = done {
                tracing::warn!(volume = %name, error = %e, "unmounting a volume");
            }
        }
    }

    /// The bytes the volume's data takes, if its driver can tell.
    pub fn usage(&self, rec: &VolumeRecord) -> Option<u64> {
        self.driver(&rec.driver).ok()?.usage(&rec.name)
    }

    pub fn scope(&self, rec: &VolumeRecord) -> VolumeScope {
        self.driver(&rec.driver)
            .map(|d| d.capabilities().scope)
            .unwrap_or_default()
    }
}

/// The ids of the containers whose mounts use volume `name`, sorted.
pub fn users_of(name: &str, containers: &[ContainerMounts]) -> Vec<String> {
    let mut users: Vec<String> = containers
        .iter()
        .filter(|(_, mounts)| {
            mounts
                .iter()
                .any(|m| m.kind == MountKind::Volume && m.source == name)
        })
        .map(|(id, _)| id.clone())
        .collect();
    users.sort();
    users
}

/// The names of the volumes that some container mounts.
pub fn used_volumes(containers: &[ContainerMounts]) -> HashSet<String> {
    containers
        .iter()
        .flat_map(|(_, mounts)| mounts)
        .filter(|m| m.kind == MountKind::Volume)
        .map(|m| m.source.clone())
        .collect()
}

/// Refuses filter keys `volume ls` does not know.
pub fn check_list_filters(filters: &HashMap<String, Vec<String>>) -> Result<()> {
    for k in filters.keys() {
        if !matches!(k.as_str(), "dangling" | "name" | "label" | "driver") {
            return Err(Error::invalid(format!("invalid filter '{k}'")));
        }
    }
    Ok(())
}

/// Whether `volume ls` shows `rec`. A bad `dangling` value is refused only
/// when there is a volume to apply it to, as before.
pub fn listed(
    rec: &VolumeRecord,
    filters: &HashMap<String, Vec<String>>,
    used: &HashSet<String>,
) -> Result<bool> {
    if let Some(d) = filters.get("dangling") {
        let want = match d.first().map(String::as_str) {
            Some("true" | "1") => true,
            Some("false" | "0") => false,
            other => {
                return Err(Error::invalid(format!(
                    "invalid filter 'dangling={}'",
                    other.unwrap_or_default()
                )));
            }
        };
        if want == used.contains(&rec.name) {
            return Ok(false);
        }
    }
    if let Some(ns) = filters.get("name")
        && !ns.iter().any(|n| rec.name.contains(n.as_str()))
    {
        return Ok(false);
    }
    if let Some(ds) = filters.get("driver")
        && !ds.contains(&rec.driver)
    {
        return Ok(false);
    }
    if let Some(ls) = filters.get("label")
        && !labels_match(&rec.labels, ls)
    {
        return Ok(false);
    }
    Ok(true)
}

/// What `volume prune` removes, from its filters.
#[derive(Debug)]
pub struct PruneRule<'a> {
    /// named volumes too, not only anonymous ones
    all: bool,
    label: Option<&'a [String]>,
    not_label: Option<&'a [String]>,
}

impl<'a> PruneRule<'a> {
    /// Anonymous volumes only, or every one with `all=true` (API 1.42 and
    /// later; before that dockerd adds `all=true` itself).
    pub fn new(filters: &'a HashMap<String, Vec<String>>, api_before_1_42: bool) -> Result<Self> {
        for k in filters.keys() {
            if !matches!(k.as_str(), "label" | "label!" | "all") {
                return Err(Error::invalid(format!("invalid filter '{k}'")));
            }
        }
        Ok(Self {
            all: prune_all(filters.get("all").map(Vec::as_slice), api_before_1_42)?,
            label: filters.get("label").map(Vec::as_slice),
            not_label: filters.get("label!").map(Vec::as_slice),
        })
    }

    /// Whether prune removes `rec`: an unused volume of the local driver
    /// without options (unmounting those frees nothing), as dockerd's.
    pub fn removes(&self, rec: &VolumeRecord, used: &HashSet<String>) -> bool {
        if used.contains(&rec.name) || !(self.all || rec.is_anonymous()) {
            return false;
        }
        if rec.driver != LOCAL_DRIVER || !rec.options.is_empty() {
            return false;
        }
        if let Some(ls) = self.label
            && !labels_match(&rec.labels, ls)
        {
            return false;
        }
        // excluded only when every `label!` matches, as dockerd's MatchKVList
        if let Some(ls) = self.not_label
            && !ls.is_empty()
            && labels_match(&rec.labels, ls)
        {
            return false;
        }
        true
    }
}

/// The `all` prune filter, as dockerd reads it: one value, a Go boolean.
fn prune_all(values: Option<&[String]>, api_before_1_42: bool) -> Result<bool> {
    let mut set: Vec<&str> = values
        .unwrap_or_default()
        .iter()
        .map(String::as_str)
        .collect();
    if api_before_1_42 {
        set.push("true");
    }
    set.sort_unstable();
    set.dedup();
    match set.as_slice() {
        [] => Ok(false),
        [one] => match *one {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
            other => Err(Error::invalid(format!(
                "invalid filter 'all': strconv.ParseBool: parsing \"{other}\": invalid syntax"
            ))),
        },
        many => Err(Error::invalid(format!(
            "invalid filter 'all=[{}]': only one value is expected",
            many.join(" ")
        ))),
    }
}

/// The anonymous volumes among a removed container's `mounts` that no
/// container uses any more (`rm -v`, `--rm`), each once.
pub fn orphaned_anonymous(
    mounts: &[MountRecord],
    used: &HashSet<String>,
    record: impl Fn(&str) -> Option<VolumeRecord>,
) -> Vec<VolumeRecord> {
    let mut out: Vec<VolumeRecord> = Vec::new();
    for m in mounts.iter().filter(|m| m.kind == MountKind::Volume) {
        let Some(rec) = record(&m.source) else {
            continue;
        };
        if rec.is_anonymous()
            && !used.contains(&rec.name)
            && !out.iter().any(|o| o.name == rec.name)
        {
            out.push(rec);
        }
    }
    out
}

#[cfg(test)]
mod tests;

/// dockerd's words (its OpErr): the name is left out when empty, as for
/// `GET /volumes/`.
fn no_such_volume(name: &str) -> String {
    if name.is_empty() {
        "get: no such volume".into()
    } else {
        format!("get {name}: no such volume")
    }
}
