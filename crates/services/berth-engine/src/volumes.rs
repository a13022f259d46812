//! Volumes and the mounts of containers: `-v` binds, `--mount`,
//! anonymous volumes from `-v /path` and the image's VOLUME entries,
//! `--volumes-from`.
//!
//! Volume data is the business of the volume's driver (`local`, in
//! berth-volume-local: a directory `volumes/<name>/_data` under the data
//! root, or a device mounted there); the volumes service (berth-volumes)
//! keeps the records and counts which containers use each volume; this
//! module resolves containers' mounts and gathers what inspect and list
//! show (the Docker Engine API shapes it at its edge).

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use berth_core::container::{HostConfig, Mount, MountType};
use berth_core::volume::{ANONYMOUS_LABEL, LOCAL_DRIVER as LOCAL, VolumeScope};

pub use berth_core::mount::{MountKind, MountRecord};
pub use berth_core::volume::VolumeRecord;
pub(crate) use berth_volumes::VolumeService;

use crate::{Engine, Error, LockExt, Result};
use berth_volumes::{ContainerMounts, PruneRule};

/// `volume create`'s request.
#[derive(Debug, Clone, Default)]
pub struct CreateVolume {
    /// empty: a random one
    pub name: String,
    /// empty: the local driver
    pub driver: String,
    /// `--opt`
    pub driver_opts: HashMap<String, String>,
    pub labels: HashMap<String, String>,
}

/// A volume as inspect and list show it.
#[derive(Debug, Clone)]
pub struct VolumeView {
    pub record: VolumeRecord,
    /// where its driver keeps its data
    pub mountpoint: String,
    pub scope: VolumeScope,
    /// for `system df` only
    pub usage: Option<VolumeUsage>,
}

/// How much a volume holds and how many containers use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolumeUsage {
    /// None when the driver cannot tell
    pub size: Option<u64>,
    pub ref_count: usize,
}

/// One of a container's mounts as inspect and list show it.
#[derive(Debug, Clone)]
pub struct MountView {
    pub record: MountRecord,
    /// for a volume: where its driver mounts it, and the driver's name
    pub volume_mountpoint: Option<String>,
    pub volume_driver: Option<String>,
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

impl Engine {
    /// Every container's id and mounts, which volume reference counts are
    /// made of.
    fn container_mounts(&self) -> Vec<ContainerMounts> {
        self.containers
            .r()
            .values()
            .map(|e| (e.id.clone(), e.record().mounts))
            .collect()
    }

    /// Every volume with its usage (size and users), for `system df`.
    pub fn volume_usage_list(&self) -> Result<Vec<VolumeView>> {
        let recs = self.volumes.records();
        Ok(recs.iter().map(|r| self.volume_view(r, true)).collect())
    }

    fn volume_view(&self, rec: &VolumeRecord, usage: bool) -> VolumeView {
        VolumeView {
            record: rec.clone(),
            mountpoint: self.volumes.mountpoint(&rec.name),
            scope: self.volumes.scope(rec),
            usage: usage.then(|| VolumeUsage {
                size: self.volumes.usage(rec),
                ref_count: self.volume_users(&rec.name).len(),
            }),
        }
    }

    /// Creates a volume; creating one that exists answers it unchanged, as
    /// Docker does.
    pub fn volume_create(&self, req: CreateVolume) -> Result<VolumeView> {
        let driver_name = if req.driver.is_empty() {
            LOCAL.to_string()
        } else {
            req.driver
        };
        let driver = self.volumes.driver(&driver_name)?;
        let mut labels = req.labels;
        let name = if req.name.is_empty() {
            // dockerd marks every volume it names itself as anonymous, which
            // is what prune takes by default
            labels.insert(ANONYMOUS_LABEL.to_string(), String::new());
            crate::random_id()
        } else {
            validate_name(&req.name)?;
            req.name
        };
        let options = req.driver_opts;
        driver.validate_options(&options)?;
        let rec = VolumeRecord {
            name: name.clone(),
            driver: driver_name,
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            labels,
            options,
        };
        Ok(self.volume_view(&self.ensure_volume(rec)?, false))
    }

    /// The record of `rec.name`, created from `rec` if there is none.
    fn ensure_volume(&self, rec: VolumeRecord) -> Result<VolumeRecord> {
        let (rec, created) = self.volumes.ensure(rec)?;
        if created {
            self.object_event(
                "volume",
                &rec.name,
                "create",
                &[("driver", rec.driver.clone())],
            );
        }
        Ok(rec)
    }

    pub fn volume_inspect(&self, name: &str) -> Result<VolumeView> {
        let rec = self.volumes.get(name)?;
        Ok(self.volume_view(&rec, false))
    }

    /// ids of the containers whose mounts use the volume
    fn volume_users(&self, name: &str) -> Vec<String> {
        berth_volumes::users_of(name, &self.container_mounts())
    }

    pub fn volume_list(&self, filters: &HashMap<String, Vec<String>>) -> Result<Vec<VolumeView>> {
        berth_volumes::check_list_filters(filters)?;
        let mut recs = self.volumes.records();
        recs.sort_by(|a, b| a.name.cmp(&b.name));
        let used = berth_volumes::used_volumes(&self.container_mounts());
        let mut out = Vec::new();
        for r in recs {
            if berth_volumes::listed(&r, filters, &used)? {
                out.push(self.volume_view(&r, false));
            }
        }
        Ok(out)
    }

    pub fn volume_remove(&self, name: &str, force: bool) -> Result<()> {
        let rec = match self.volumes.get(name) {
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
        self.volumes.delete(rec)?;
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
        let rule = PruneRule::new(filters, api_before_1_42)?;
        let used = berth_volumes::used_volumes(&self.container_mounts());
        let mut deleted = Vec::new();
        let mut space = 0;
        for r in self.volumes.records() {
            if !rule.removes(&r, &used) {
                continue;
            }
            let size = self.volumes.usage(&r).unwrap_or(0);
            // as dockerd: a volume that will not go is skipped, not fatal
            if let Err(err) = self.delete_volume(&r) {
                tracing::warn!(volume = %r.name, error = %err, "prune: removing volume");
                continue;
            }
            space += size;
            deleted.push(r.name);
        }
        self.object_event("volume", "", "prune", &[("reclaimed", space.to_string())]);
        Ok((deleted, space))
    }

    /// Removes the anonymous volumes of a removed container that nothing
    /// else uses (`rm -v`, `--rm`).
    pub(crate) fn remove_anonymous_volumes(&self, mounts: &[MountRecord]) {
        let used = berth_volumes::used_volumes(&self.container_mounts());
        for rec in berth_volumes::orphaned_anonymous(mounts, &used, |n| self.volumes.get(n).ok()) {
            if let Err(err) = self.delete_volume(&rec) {
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
            if from.is_empty() {
                return Err(Error::invalid(
                    "volumes-from specification cannot be an empty string",
                ));
            }
            // dockerd answers a missing one as bad input (400): a 404 at
            // create makes the CLI pull the image
            let src = self
                .get(name)
                .map_err(|e| match e {
                    Error::NotFound(m) => Error::invalid(m),
                    other => other,
                })?
                .record();
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
                    subpath: String::new(),
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
                    // `--volume-driver`: the driver of the volumes `-v` makes
                    let driver = hc
                        .volume_driver
                        .clone()
                        .filter(|d| !d.is_empty())
                        .unwrap_or_else(|| LOCAL.into());
                    self.ensure_volume(VolumeRecord {
                        name: m.source.clone(),
                        driver,
                        created_at: chrono::Utc::now()
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

    /// The host side of each mount at start of container `id`: the
    /// volume's data as its driver mounts it (the image's content copied
    /// into an empty volume), or the bind source.
    pub(crate) fn prepare_mounts(
        &self,
        id: &str,
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
                    let mut data = self.volumes.mount(&m.source, id)?;
                    if !m.subpath.is_empty() {
                        data = volume_subpath(&data, &m.subpath)?;
                    }
                    if !m.nocopy {
                        berth_archive::copyup::copy_up(rootfs, &m.destination, &data)
                            .map_err(Error::Internal)?;
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

    /// The `Mounts` field of inspect.
    pub(crate) fn mount_points(&self, mounts: &[MountRecord]) -> Vec<MountView> {
        mounts
            .iter()
            .map(|m| {
                let volume = m.kind == MountKind::Volume;
                MountView {
                    record: m.clone(),
                    volume_mountpoint: volume.then(|| self.volumes.mountpoint(&m.source)),
                    volume_driver: volume.then(|| self.volumes.driver_name(&m.source)),
                }
            })
            .collect()
    }
}

/// Go's filepath.IsLocal, which dockerd checks a subpath with: relative,
/// not empty, and not leaving its base however `..` are applied.
fn is_local(p: &str) -> bool {
    if p.is_empty() || p.starts_with('/') {
        return false;
    }
    let mut depth = 0i32;
    for c in p.split('/').filter(|c| !c.is_empty() && *c != ".") {
        depth += if c == ".." { -1 } else { 1 };
        if depth < 0 {
            return false;
        }
    }
    true
}

/// The directory (or file) `subpath` names inside a volume's data, its
/// symlinks resolved; dockerd's safepath words when it is missing (404)
/// or resolves outside the volume (400).
fn volume_subpath(base: &Path, subpath: &str) -> Result<std::path::PathBuf> {
    let not_found = |path: &Path, err: std::io::Error| {
        let missing = first_missing(path).unwrap_or_else(|| path.to_path_buf());
        Error::NotFound(format!(
            "cannot access path {}: lstat {}: {}",
            path.display(),
            missing.display(),
            match err.kind() {
                std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
                _ => err.to_string(),
            }
        ))
    };
    let base = base.canonicalize().map_err(|e| not_found(base, e))?;
    let combined = base.join(subpath);
    let resolved = combined
        .canonicalize()
        .map_err(|e| not_found(&combined, e))?;
    if resolved.strip_prefix(&base).is_err() {
        return Err(Error::invalid(format!(
            "path concatenation escapes the base directory, base: {}, subpath: {subpath}",
            base.display()
        )));
    }
    Ok(resolved)
}

/// The first component of `path` that does not exist, as Go's EvalSymlinks
/// names it in its error.
fn first_missing(path: &Path) -> Option<std::path::PathBuf> {
    let mut cur = std::path::PathBuf::new();
    for c in path.components() {
        cur.push(c);
        if cur.symlink_metadata().is_err() {
            return Some(cur);
        }
    }
    None
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
        subpath: String::new(),
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
    let kind = match m.typ.unwrap_or(MountType::Volume) {
        MountType::Bind => MountKind::Bind,
        MountType::Volume => MountKind::Volume,
        MountType::Tmpfs => MountKind::Tmpfs,
        other => {
            return Err(Error::invalid(format!(
                "invalid mount config for type \"{other}\": mount type unknown"
            )));
        }
    };
    let typ = m.typ.unwrap_or(MountType::Volume);
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
        subpath: String::new(),
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
            let subpath = m
                .volume_options
                .as_ref()
                .and_then(|v| v.subpath.clone())
                .unwrap_or_default();
            if !subpath.is_empty() {
                if source.is_empty() {
                    return Err(Error::invalid(
                        "invalid mount config for type \"volume\": must not set Subpath when using anonymous volumes",
                    ));
                }
                if !is_local(&subpath) {
                    return Err(Error::invalid(
                        "invalid mount config for type \"volume\": subpath must be a relative path within the volume",
                    ));
                }
            }
            rec.subpath = subpath;
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
}

#[cfg(test)]
mod subpath_tests {
    use super::*;

    #[test]
    fn subpaths_are_local_as_go_says() {
        for ok in ["sub", "a/b", "a/../b", "./x", "."] {
            assert!(is_local(ok), "{ok}");
        }
        for bad in ["", "/abs", "..", "a/../../b", "../x"] {
            assert!(!is_local(bad), "{bad}");
        }
    }

    #[test]
    fn a_subpath_resolves_inside_its_volume_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().join("_data");
        std::fs::create_dir_all(base.join("sub")).expect("mkdir");
        std::os::unix::fs::symlink("/etc", base.join("out")).expect("symlink");
        let got = volume_subpath(&base, "sub").expect("sub");
        assert!(got.ends_with("_data/sub"));
        let err = volume_subpath(&base, "missing/deeper").unwrap_err();
        assert!(matches!(err, Error::NotFound(_)));
        let base = base.canonicalize().expect("canonical");
        assert_eq!(
            err.to_string(),
            format!(
                "cannot access path {b}/missing/deeper: lstat {b}/missing: no such file or directory",
                b = base.display()
            )
        );
        let err = volume_subpath(&base, "out").unwrap_err();
        assert!(matches!(err, Error::InvalidParameter(_)));
        assert!(
            err.to_string()
                .starts_with("path concatenation escapes the base directory")
        );
    }
}
