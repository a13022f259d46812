//! Volumes (the `local` driver) and the mounts of containers: `-v`
//! binds, `--mount`, anonymous volumes from `-v /path` and the image's
//! VOLUME entries, `--volumes-from`.
//!
//! A volume is a directory `volumes/<name>/_data` under the data root, as
//! in Docker. With the driver options `type`/`device`/`o` it is instead a
//! mount of that device (tmpfs, a bind, …) made on first use.

use berth_store::MetadataStoreExt;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::Context;
use berth_store::Table;
use bollard_stubs::models::{
    HostConfig, Mount, MountPoint, MountType, Volume, VolumeCreateRequest, VolumeScopeEnum,
    VolumeUsageData,
};
use serde::{Deserialize, Serialize};

use crate::{Engine, Error, LockExt, Result};

pub const LOCAL: &str = "local";
/// Docker marks volumes it made for `-v /path` and VOLUME with this label.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VolumeRecord {
    pub name: String,
    pub driver: String,
    pub created: String,
    #[serde(default)]
    pub labels: HashMap<String, String>,
    #[serde(default)]
    pub options: HashMap<String, String>,
}

impl VolumeRecord {
    fn anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    Bind,
    Volume,
    Tmpfs,
}

/// One mount of a container, resolved at create.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MountRecord {
    pub kind: MountKind,
    /// host path (bind) or volume name (volume); empty for tmpfs
    pub source: String,
    pub destination: String,
    pub read_only: bool,
    /// "" or one of Docker's propagation modes
    #[serde(default)]
    pub propagation: String,
    /// the mode string as the user gave it in `-v` ("ro,z"); Docker shows it
    #[serde(default)]
    pub mode: String,
    /// do not copy the image's content into an empty volume
    #[serde(default)]
    pub nocopy: bool,
    /// tmpfs: `size=…`, `mode=…`
    #[serde(default)]
    pub tmpfs_options: Vec<String>,
}

/// Docker's rule for local volume names.
fn validate_name(name: &str) -> Result<()> {
    crate::validate::volume_name_length(name)?;
    let mut chars = name.chars();
    let ok = name.len() >= 2
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        )))
    }
}

fn validate_options(opts: &HashMap<String, String>) -> Result<()> {
    for k in opts.keys() {
        if !matches!(k.as_str(), "type" | "device" | "o") {
            return Err(Error::invalid(format!("invalid option key: {k:?}")));
        }
    }
    Ok(())
}

/// Splits a volume's `o=` options into mount(2) flags and data, as
/// mount(8) does.
fn mount_flags_and_data(o: &str) -> (nix::mount::MsFlags, String) {
    use nix::mount::MsFlags;
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for opt in o.split(',').filter(|s| !s.is_empty()) {
        match opt {
            "ro" => flags |= MsFlags::MS_RDONLY,
            "rw" => {}
            "bind" => flags |= MsFlags::MS_BIND,
            "rbind" => flags |= MsFlags::MS_BIND | MsFlags::MS_REC,
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "noatime" => flags |= MsFlags::MS_NOATIME,
            other => data.push(other),
        }
    }
    (flags, data.join(","))
}

impl Engine {
    fn volume_root(&self, name: &str) -> PathBuf {
        self.data_path("volumes").join(name)
    }

    pub(crate) fn volume_data(&self, name: &str) -> PathBuf {
        self.volume_root(name).join("_data")
    }

    /// Loads the volume records; directories without one (a create that
    /// never committed) are removed.
    pub(crate) fn load_volumes(&self) -> anyhow::Result<()> {
        let root = self.data_path("volumes");
        std::fs::create_dir_all(&root)?;
        let recs: HashMap<String, VolumeRecord> = self
            .meta
            .list_json::<VolumeRecord>(Table::Volumes)?
            .into_iter()
            .collect();
        for d in std::fs::read_dir(&root)?.flatten() {
            let name = d.file_name().to_string_lossy().into_owned();
            if !recs.contains_key(&name) {
                tracing::info!(volume = %name, "removing a volume directory without a record");
                let _ = crate::mounts::unmount(&d.path().join("_data"));
                let _ = std::fs::remove_dir_all(d.path());
            }
        }
        *self.volumes.w() = recs;
        Ok(())
    }

    /// Every volume with its usage (size and users), for `system df`.
    pub fn volume_usage_list(&self) -> Result<Vec<Volume>> {
        let recs: Vec<VolumeRecord> = self.volumes.r().values().cloned().collect();
        Ok(recs.iter().map(|r| self.volume_view(r, true)).collect())
    }

    fn volume_view(&self, rec: &VolumeRecord, usage: bool) -> Volume {
        let usage_data = usage.then(|| VolumeUsageData {
            size: if rec.options.is_empty() {
                crate::containers::dir_size(&self.volume_data(&rec.name)) as i64
            } else {
                -1
            },
            ref_count: self.volume_users(&rec.name).len() as i64,
        });
        Volume {
            name: rec.name.clone(),
            driver: rec.driver.clone(),
            mountpoint: self.volume_data(&rec.name).display().to_string(),
            created_at: Some(rec.created.clone()),
            labels: rec.labels.clone(),
            scope: Some(VolumeScopeEnum::LOCAL),
            options: rec.options.clone(),
            usage_data,
            ..Default::default()
        }
    }

    /// Creates a volume; creating one that exists answers it unchanged, as
    /// Docker does.
    pub fn volume_create(&self, req: VolumeCreateRequest) -> Result<Volume> {
        let driver = req
            .driver
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| LOCAL.into());
        if driver != LOCAL {
            return Err(Error::not_found(format!(
                "error looking up volume plugin {driver}: plugin \"{driver}\" not found"
            )));
        }
        let name = match req.name.filter(|n| !n.is_empty()) {
            Some(n) => {
                validate_name(&n)?;
                n
            }
            None => crate::random_id(),
        };
        let options = req.driver_opts.unwrap_or_default();
        validate_options(&options)?;
        let rec = VolumeRecord {
            name: name.clone(),
            driver,
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            labels: req.labels.unwrap_or_default(),
            options,
        };
        Ok(self.volume_view(&self.ensure_volume(rec)?, false))
    }

    /// The record of `rec.name`, created from `rec` if there is none.
    fn ensure_volume(&self, rec: VolumeRecord) -> Result<VolumeRecord> {
        let mut vols = self.volumes.w();
        if let Some(existing) = vols.get(&rec.name) {
            return Ok(existing.clone());
        }
        let data = self.volume_data(&rec.name);
        std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
        self.meta.put_json(Table::Volumes, &rec.name, &rec)?;
        vols.insert(rec.name.clone(), rec.clone());
        drop(vols);
        self.object_event(
            "volume",
            &rec.name,
            "create",
            &[("driver", rec.driver.clone())],
        );
        Ok(rec)
    }

    pub fn volume_inspect(&self, name: &str) -> Result<Volume> {
        let rec = self.volume_get(name)?;
        Ok(self.volume_view(&rec, false))
    }

    fn volume_get(&self, name: &str) -> Result<VolumeRecord> {
        self.volumes
            .r()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("get {name}: no such volume")))
    }

    /// ids of the containers whose mounts use the volume
    fn volume_users(&self, name: &str) -> Vec<String> {
        let mut users: Vec<String> = self
            .containers
            .r()
            .values()
            .filter(|e| {
                e.record()
                    .mounts
                    .iter()
                    .any(|m| m.kind == MountKind::Volume && m.source == name)
            })
            .map(|e| e.id.clone())
            .collect();
        users.sort();
        users
    }

    pub fn volume_list(&self, filters: &HashMap<String, Vec<String>>) -> Result<Vec<Volume>> {
        for k in filters.keys() {
            if !matches!(k.as_str(), "dangling" | "name" | "label" | "driver") {
                return Err(Error::invalid(format!("invalid filter '{k}'")));
            }
        }
        let mut recs: Vec<VolumeRecord> = self.volumes.r().values().cloned().collect();
        recs.sort_by(|a, b| a.name.cmp(&b.name));
        let used: HashSet<String> = self.used_volumes();
        let mut out = Vec::new();
        for r in recs {
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
                if want == used.contains(&r.name) {
                    continue;
                }
            }
            if let Some(ns) = filters.get("name")
                && !ns.iter().any(|n| r.name.contains(n.as_str()))
            {
                continue;
            }
            if let Some(ds) = filters.get("driver")
                && !ds.contains(&r.driver)
            {
                continue;
            }
            if let Some(ls) = filters.get("label")
                && !crate::labels_match(&r.labels, ls)
            {
                continue;
            }
            out.push(self.volume_view(&r, false));
        }
        Ok(out)
    }

    fn used_volumes(&self) -> HashSet<String> {
        self.containers
            .r()
            .values()
            .flat_map(|e| e.record().mounts)
            .filter(|m| m.kind == MountKind::Volume)
            .map(|m| m.source)
            .collect()
    }

    pub fn volume_remove(&self, name: &str, force: bool) -> Result<()> {
        let rec = match self.volume_get(name) {
            Ok(r) => r,
            Err(e) if force => {
                let _ = e;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let users = self.volume_users(name);
        if !users.is_empty() {
            return Err(Error::conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        self.delete_volume(&rec)
    }

    fn delete_volume(&self, rec: &VolumeRecord) -> Result<()> {
        // the record goes first: a crash leaves a directory that the next
        // start removes, never a record without its data
        self.meta.delete(Table::Volumes, &rec.name)?;
        self.volumes.w().remove(&rec.name);
        let data = self.volume_data(&rec.name);
        crate::mounts::unmount(&data)?;
        let root = self.volume_root(&rec.name);
        std::fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
        self.object_event(
            "volume",
            &rec.name,
            "destroy",
            &[("driver", rec.driver.clone())],
        );
        Ok(())
    }

    /// Removes unused volumes: anonymous ones, or every one with `all=true`
    /// (API 1.42 and later; before that every unused volume).
    pub fn volume_prune(
        &self,
        filters: &HashMap<String, Vec<String>>,
        api_before_1_42: bool,
    ) -> Result<(Vec<String>, u64)> {
        for k in filters.keys() {
            if !matches!(k.as_str(), "label" | "label!" | "all") {
                return Err(Error::invalid(format!("invalid filter '{k}'")));
            }
        }
        let all = api_before_1_42
            || filters
                .get("all")
                .is_some_and(|v| v.iter().any(|x| x == "true" || x == "1"));
        let used = self.used_volumes();
        let recs: Vec<VolumeRecord> = self.volumes.r().values().cloned().collect();
        let mut deleted = Vec::new();
        let mut space = 0;
        for r in recs {
            if used.contains(&r.name) || !(all || r.anonymous()) {
                continue;
            }
            if let Some(ls) = filters.get("label")
                && !crate::labels_match(&r.labels, ls)
            {
                continue;
            }
            if let Some(ls) = filters.get("label!")
                && ls
                    .iter()
                    .any(|l| crate::labels_match(&r.labels, std::slice::from_ref(l)))
            {
                continue;
            }
            let size = if r.options.is_empty() {
                crate::containers::dir_size(&self.volume_data(&r.name))
            } else {
                0
            };
            self.delete_volume(&r)?;
            space += size;
            deleted.push(r.name);
        }
        Ok((deleted, space))
    }

    /// Removes the anonymous volumes of a removed container that nothing
    /// else uses (`rm -v`, `--rm`).
    pub(crate) fn remove_anonymous_volumes(&self, mounts: &[MountRecord]) {
        let used = self.used_volumes();
        for m in mounts.iter().filter(|m| m.kind == MountKind::Volume) {
            let Ok(rec) = self.volume_get(&m.source) else {
                continue;
            };
            if rec.anonymous()
                && !used.contains(&rec.name)
                && let Err(err) = self.delete_volume(&rec)
            {
                tracing::warn!(volume = %rec.name, error = %err, "removing anonymous volume");
            }
        }
    }

    /// Parses the container's mounts (no side effects): `Binds`, `Mounts`,
    /// `VolumesFrom`, then anonymous volumes for `Volumes` entries nothing
    /// else covers. Volume mounts with an empty source are anonymous.
    pub(crate) fn parse_mounts(
        &self,
        hc: &HostConfig,
        volumes: &[String],
    ) -> Result<Vec<MountRecord>> {
        let mut out: Vec<MountRecord> = Vec::new();
        let add = |m: MountRecord, out: &mut Vec<MountRecord>| -> Result<()> {
            if out.iter().any(|x| x.destination == m.destination) {
                return Err(Error::invalid(format!(
                    "Duplicate mount point: {}",
                    m.destination
                )));
            }
            out.push(m);
            Ok(())
        };
        for b in hc.binds.clone().unwrap_or_default() {
            add(parse_bind(&b)?, &mut out)?;
        }
        for m in hc.mounts.clone().unwrap_or_default() {
            add(parse_mount(&m)?, &mut out)?;
        }
        for t in hc.tmpfs.clone().unwrap_or_default().keys() {
            // --tmpfs is applied by the spec; it still claims its path
            if out.iter().any(|x| &x.destination == t) {
                return Err(Error::invalid(format!("Duplicate mount point: {t}")));
            }
        }
        for from in hc.volumes_from.clone().unwrap_or_default() {
            let (name, mode) = match from.split_once(':') {
                Some((n, m)) => (n, Some(m)),
                None => (from.as_str(), None),
            };
            let src = self.get(name)?.record();
            for mut m in src
                .mounts
                .into_iter()
                .filter(|m| m.kind != MountKind::Tmpfs)
            {
                match mode {
                    Some("ro") => m.read_only = true,
                    Some("rw") => m.read_only = false,
                    None => {}
                    Some(other) => {
                        return Err(Error::invalid(format!(
                            "invalid mode for volumes-from: {other}"
                        )));
                    }
                }
                if !out.iter().any(|x| x.destination == m.destination) {
                    out.push(m);
                }
            }
        }
        for v in volumes {
            let dest = clean_destination(v)?;
            let covered = out.iter().any(|x| x.destination == dest)
                || hc.tmpfs.as_ref().is_some_and(|t| t.contains_key(&dest));
            if !covered {
                out.push(MountRecord {
                    kind: MountKind::Volume,
                    source: String::new(),
                    destination: dest,
                    read_only: false,
                    propagation: String::new(),
                    mode: String::new(),
                    nocopy: false,
                    tmpfs_options: vec![],
                });
            }
        }
        Ok(out)
    }

    /// Creates what the parsed mounts need: anonymous volumes get a random
    /// name, named volumes are created when missing, bind sources given
    /// with `-v` are created as directories (Docker's behaviour).
    pub(crate) fn materialize_mounts(
        &self,
        mounts: &mut [MountRecord],
        hc: &HostConfig,
    ) -> Result<()> {
        let binds_to_create: Vec<String> = hc
            .binds
            .iter()
            .flatten()
            .filter_map(|b| parse_bind(b).ok())
            .filter(|m| m.kind == MountKind::Bind)
            .map(|m| m.source)
            .collect();
        for m in mounts.iter_mut() {
            match m.kind {
                MountKind::Volume => {
                    let mut labels = HashMap::new();
                    if m.source.is_empty() {
                        m.source = crate::random_id();
                        labels.insert(ANONYMOUS_LABEL.to_string(), String::new());
                    }
                    self.ensure_volume(VolumeRecord {
                        name: m.source.clone(),
                        driver: LOCAL.into(),
                        created: chrono::Utc::now()
                            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        labels,
                        options: HashMap::new(),
                    })?;
                }
                MountKind::Bind => {
                    if !Path::new(&m.source).exists() {
                        if binds_to_create.contains(&m.source) {
                            std::fs::create_dir_all(&m.source)
                                .with_context(|| format!("creating {}", m.source))?;
                        } else {
                            return Err(Error::invalid(format!(
                                "invalid mount config for type \"bind\": bind source path does not exist: {}",
                                m.source
                            )));
                        }
                    }
                }
                MountKind::Tmpfs => {}
            }
        }
        Ok(())
    }

    /// The host side of each mount at start: the volume's data directory
    /// (mounting the device of a volume with driver options, and copying
    /// the image's content into an empty volume), or the bind source.
    pub(crate) fn prepare_mounts(
        &self,
        mounts: &[MountRecord],
        rootfs: &Path,
    ) -> Result<Vec<oci_spec::runtime::Mount>> {
        let mut sorted: Vec<&MountRecord> = mounts.iter().collect();
        // parents before children, so that a nested mount is not hidden
        sorted.sort_by_key(|m| Path::new(&m.destination).components().count());
        let mut out = Vec::new();
        for m in sorted {
            let mut opts: Vec<String> = Vec::new();
            let (typ, source) = match m.kind {
                MountKind::Bind => {
                    if !Path::new(&m.source).exists() {
                        return Err(Error::invalid(format!(
                            "error while creating mount source path '{}': no such file or directory",
                            m.source
                        )));
                    }
                    opts.push("rbind".into());
                    ("bind", m.source.clone())
                }
                MountKind::Volume => {
                    let rec = self.volume_get(&m.source)?;
                    let data = self.volume_data(&rec.name);
                    std::fs::create_dir_all(&data)?;
                    self.mount_volume_device(&rec, &data)?;
                    if !m.nocopy {
                        copy_up(rootfs, &m.destination, &data)?;
                    }
                    opts.push("rbind".into());
                    ("bind", data.display().to_string())
                }
                MountKind::Tmpfs => {
                    opts.extend(["nosuid", "nodev", "noexec"].map(String::from));
                    opts.extend(m.tmpfs_options.iter().cloned());
                    ("tmpfs", "tmpfs".to_string())
                }
            };
            if m.read_only {
                opts.push("ro".into());
            }
            if m.kind != MountKind::Tmpfs {
                opts.push(if m.propagation.is_empty() {
                    "rprivate".into()
                } else {
                    m.propagation.clone()
                });
            }
            out.push(
                oci_spec::runtime::MountBuilder::default()
                    .destination(crate::validate::in_root(rootfs, &m.destination)?)
                    .typ(typ)
                    .source(source)
                    .options(opts)
                    .build()
                    .context("building mount")?,
            );
        }
        Ok(out)
    }

    fn mount_volume_device(&self, rec: &VolumeRecord, data: &Path) -> Result<()> {
        if rec.options.is_empty() || crate::mounts::is_mounted(data) {
            return Ok(());
        }
        let typ = rec.options.get("type").cloned().unwrap_or_default();
        let device = rec.options.get("device").cloned().unwrap_or_default();
        let (flags, opts) =
            mount_flags_and_data(&rec.options.get("o").cloned().unwrap_or_default());
        let fstype = (typ != "none" && !typ.is_empty()).then_some(typ.as_str());
        nix::mount::mount(
            Some(device.as_str()),
            data,
            fstype,
            flags,
            (!opts.is_empty()).then_some(opts.as_str()),
        )
        .map_err(|e| {
            Error::Internal(anyhow::anyhow!(
                "error while mounting volume '{}': failed to mount local volume: mount {device}:{} (type {typ}, options {opts:?}): {e}",
                data.display(),
                data.display(),
            ))
        })
    }

    /// The host directory of a volume, its device mounted if it has one.
    pub(crate) fn volume_host_path(&self, name: &str) -> Result<PathBuf> {
        let rec = self.volume_get(name)?;
        let data = self.volume_data(name);
        std::fs::create_dir_all(&data)?;
        self.mount_volume_device(&rec, &data)?;
        Ok(data)
    }

    /// The `Mounts` field of inspect.
    pub(crate) fn mount_points(&self, mounts: &[MountRecord]) -> Vec<MountPoint> {
        mounts
            .iter()
            .map(|m| match m.kind {
                MountKind::Volume => MountPoint {
                    typ: Some("volume".into()),
                    name: Some(m.source.clone()),
                    source: Some(self.volume_data(&m.source).display().to_string()),
                    destination: Some(m.destination.clone()),
                    driver: Some(LOCAL.into()),
                    mode: Some(if m.mode.is_empty() {
                        "z".into()
                    } else {
                        m.mode.clone()
                    }),
                    rw: Some(!m.read_only),
                    propagation: Some(String::new()),
                },
                MountKind::Bind => MountPoint {
                    typ: Some("bind".into()),
                    source: Some(m.source.clone()),
                    destination: Some(m.destination.clone()),
                    mode: Some(m.mode.clone()),
                    rw: Some(!m.read_only),
                    propagation: Some(if m.propagation.is_empty() {
                        "rprivate".into()
                    } else {
                        m.propagation.clone()
                    }),
                    ..Default::default()
                },
                MountKind::Tmpfs => MountPoint {
                    typ: Some("tmpfs".into()),
                    source: Some(String::new()),
                    destination: Some(m.destination.clone()),
                    mode: Some(String::new()),
                    rw: Some(!m.read_only),
                    propagation: Some(String::new()),
                    ..Default::default()
                },
            })
            .collect()
    }
}

fn clean_destination(d: &str) -> Result<String> {
    if !d.starts_with('/') {
        return Err(Error::invalid(format!(
            "invalid mount config: invalid mount path: '{d}' mount path must be absolute"
        )));
    }
    let mut parts = Vec::new();
    for c in d.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if c == ".." {
            parts.pop();
        } else {
            parts.push(c);
        }
    }
    if parts.is_empty() {
        return Err(Error::invalid(
            "invalid specification: destination can't be '/'",
        ));
    }
    Ok(format!("/{}", parts.join("/")))
}

const PROPAGATIONS: [&str; 6] = [
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

/// `-v SRC:DST[:MODE]` with SRC a host path or a volume name.
fn parse_bind(spec: &str) -> Result<MountRecord> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => {
            return Err(Error::invalid(format!(
                "invalid volume specification: '{spec}'"
            )));
        }
    };
    if src.is_empty() || dst.is_empty() {
        return Err(Error::invalid(format!(
            "invalid volume specification: '{spec}'"
        )));
    }
    let kind = if src.starts_with('/') {
        MountKind::Bind
    } else {
        crate::validate::volume_name_length(src)?;
        validate_name(src).map_err(|_| {
            Error::invalid(format!(
                "invalid volume specification: '{spec}': \"{src}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
            ))
        })?;
        MountKind::Volume
    };
    let mut m = MountRecord {
        kind,
        source: if kind == MountKind::Bind {
            clean_destination(src).unwrap_or_else(|_| "/".into())
        } else {
            src.to_string()
        },
        destination: clean_destination(dst)?,
        read_only: false,
        propagation: String::new(),
        mode: mode.to_string(),
        nocopy: false,
        tmpfs_options: vec![],
    };
    let mut rw_seen = 0;
    for o in mode.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => {
                m.read_only = true;
                rw_seen += 1;
            }
            "rw" => rw_seen += 1,
            "z" | "Z" => {}
            "nocopy" if kind == MountKind::Volume => m.nocopy = true,
            p if PROPAGATIONS.contains(&p) && kind == MountKind::Bind => {
                m.propagation = p.to_string()
            }
            _ => {
                return Err(Error::invalid(format!("invalid mode: {mode}")));
            }
        }
    }
    if rw_seen > 1 {
        return Err(Error::invalid(format!("invalid mode: {mode}")));
    }
    Ok(m)
}

/// `--mount type=…` as the API carries it.
fn parse_mount(m: &Mount) -> Result<MountRecord> {
    let kind = match m.typ.unwrap_or(MountType::VOLUME) {
        MountType::BIND => MountKind::Bind,
        MountType::VOLUME => MountKind::Volume,
        MountType::TMPFS => MountKind::Tmpfs,
        other => {
            return Err(Error::invalid(format!(
                "invalid mount config for type \"{other}\": mount type unknown"
            )));
        }
    };
    let typ = m.typ.unwrap_or(MountType::VOLUME);
    let target = m.target.clone().unwrap_or_default();
    if target.is_empty() {
        return Err(Error::invalid(format!(
            "invalid mount config for type \"{typ}\": field Target must not be empty"
        )));
    }
    let destination = clean_destination(&target).map_err(|_| {
        Error::invalid(format!(
            "invalid mount config for type \"{typ}\": invalid mount path: '{target}' mount path must be absolute"
        ))
    })?;
    let source = m.source.clone().unwrap_or_default();
    let mut rec = MountRecord {
        kind,
        source: String::new(),
        destination,
        read_only: m.read_only.unwrap_or(false),
        propagation: String::new(),
        mode: String::new(),
        nocopy: false,
        tmpfs_options: vec![],
    };
    let only = |field: &str, ok: bool| -> Result<()> {
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(format!(
                "invalid mount config for type \"{typ}\": {field} options are not allowed"
            )))
        }
    };
    only(
        "BindOptions",
        m.bind_options.is_none() || kind == MountKind::Bind,
    )?;
    only(
        "VolumeOptions",
        m.volume_options.is_none() || kind == MountKind::Volume,
    )?;
    only(
        "TmpfsOptions",
        m.tmpfs_options.is_none() || kind == MountKind::Tmpfs,
    )?;
    match kind {
        MountKind::Bind => {
            if source.is_empty() {
                return Err(Error::invalid(
                    "invalid mount config for type \"bind\": field Source must not be empty",
                ));
            }
            if !source.starts_with('/') {
                return Err(Error::invalid(format!(
                    "invalid mount config for type \"bind\": invalid mount path: '{source}' mount path must be absolute"
                )));
            }
            rec.source = source;
            if let Some(p) = m.bind_options.as_ref().and_then(|b| b.propagation) {
                rec.propagation = p.to_string();
            }
        }
        MountKind::Volume => {
            if !source.is_empty() {
                validate_name(&source)?;
            }
            rec.source = source;
            rec.nocopy = m
                .volume_options
                .as_ref()
                .and_then(|v| v.no_copy)
                .unwrap_or(false);
        }
        MountKind::Tmpfs => {
            if !source.is_empty() {
                return Err(Error::invalid(
                    "invalid mount config for type \"tmpfs\": field Source must be empty",
                ));
            }
            if let Some(t) = &m.tmpfs_options {
                if let Some(s) = t.size_bytes.filter(|s| *s > 0) {
                    rec.tmpfs_options.push(format!("size={s}"));
                }
                if let Some(mode) = t.mode.filter(|m| *m > 0) {
                    rec.tmpfs_options.push(format!("mode={mode:o}"));
                }
            }
        }
    }
    Ok(rec)
}

/// Copies what the image has at `dest` into an empty volume, keeping
/// owners, modes and links (Docker's copy-up). Paths resolve inside the
/// container's root.
fn copy_up(rootfs: &Path, dest: &str, data: &Path) -> Result<()> {
    if std::fs::read_dir(data)?.next().is_some() {
        return Ok(());
    }
    let Ok(src) = berth_archive::rootpath::resolve(rootfs, Path::new(dest), true) else {
        return Ok(());
    };
    let Ok(meta) = std::fs::symlink_metadata(&src) else {
        return Ok(());
    };
    if !meta.is_dir() {
        return Ok(());
    }
    copy_tree(&src, data).with_context(|| format!("copying {dest} into the volume"))?;
    // the volume's root takes the owner and mode of the image's directory
    copy_attrs(&meta, data)?;
    Ok(())
}

fn copy_attrs(meta: &std::fs::Metadata, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid()))?;
    if !meta.file_type().is_symlink() {
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    Ok(())
}

pub(crate) fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&src)?;
        let ft = meta.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&dst)?;
            copy_tree(&src, &dst)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if ft.is_file() {
            std::fs::copy(&src, &dst)?;
        } else {
            // devices, fifos and sockets are not copied into volumes
            continue;
        }
        copy_attrs(&meta, &dst)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_specs() {
        let m = parse_bind("/host/dir:/data:ro").expect("valid");
        assert_eq!(m.kind, MountKind::Bind);
        assert!(m.read_only);
        let m = parse_bind("myvol:/data/../srv:nocopy").expect("valid");
        assert_eq!(
            (m.kind, m.destination.as_str(), m.nocopy),
            (MountKind::Volume, "/srv", true)
        );
        let m = parse_bind("/a:/b:rshared").expect("valid");
        assert_eq!(m.propagation, "rshared");
        for bad in [
            "/a",
            "/a:/b:ro,rw",
            "/a:relative",
            "x:/b",
            "/a:/b:bogus",
            "/a:/",
            "a:b:c:d",
        ] {
            assert!(parse_bind(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn volume_names() {
        assert!(validate_name("my-vol_1.x").is_ok());
        for bad in ["a", "-x", "a/b", "", "a b"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mount_option_flags() {
        let (f, d) = mount_flags_and_data("size=10m,ro,uid=1000");
        assert!(f.contains(nix::mount::MsFlags::MS_RDONLY));
        assert_eq!(d, "size=10m,uid=1000");
    }
}
