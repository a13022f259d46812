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
use berth_core::volume::{LOCAL_DRIVER, VolumeDriver, VolumeRecord, VolumeScope};
use berth_core::{LockExt, labels_match};

/// The volume drivers by name ("local", plugins later).
pub type Drivers = HashMap<String, Arc<dyn VolumeDriver>>;

/// A container's id with its mounts: what volume reference counts are
/// made of.
pub type ContainerMounts = (String, Vec<MountRecord>);

pub struct VolumeService {
    meta: Arc<dyn MetadataStore>,
    drivers: Drivers,
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
            records: RwLock::new(records),
        }
    }

    /// The driver called `name`, or Docker's answer for a plugin it lacks.
    pub fn driver(&self, name: &str) -> Result<Arc<dyn VolumeDriver>> {
        self.drivers.get(name).cloned().ok_or_else(|| {
            Error::not_found(format!(
                "error looking up volume plugin {name}: plugin \"{name}\" not found"
            ))
        })
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
    pub fn ensure(&self, rec: VolumeRecord) -> Result<(VolumeRecord, bool)> {
        let mut recs = self.records.w();
        if let Some(existing) = recs.get(&rec.name) {
            return Ok((existing.clone(), false));
        }
        self.driver(&rec.driver)?.create(&rec.name, &rec.options)?;
        self.meta.put_json(Table::Volumes, &rec.name, &rec)?;
        recs.insert(rec.name.clone(), rec.clone());
        Ok((rec, true))
    }

    /// Deletes the record, then the data: a crash leaves data that the
    /// driver's next open removes, never a record without its data.
    pub fn delete(&self, rec: &VolumeRecord) -> Result<()> {
        let driver = self.driver(&rec.driver)?;
        self.meta.delete(Table::Volumes, &rec.name)?;
        self.records.w().remove(&rec.name);
        driver.remove(&rec.name)?;
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
        self.drivers
            .get(&self.driver_name(name))
            .and_then(|d| d.path(name).ok())
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }

    /// Makes the volume's data available to `caller` (a container id) and
    /// says where it is on the host.
    pub fn mount(&self, name: &str, caller: &str) -> Result<PathBuf> {
        let rec = self.get(name)?;
        Ok(self.driver(&rec.driver)?.mount(name, caller)?)
    }

    /// The bytes the volume's data takes, if its driver can tell.
    pub fn usage(&self, rec: &VolumeRecord) -> Option<u64> {
        self.drivers.get(&rec.driver)?.usage(&rec.name)
    }

    pub fn scope(&self, rec: &VolumeRecord) -> VolumeScope {
        self.drivers
            .get(&rec.driver)
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
