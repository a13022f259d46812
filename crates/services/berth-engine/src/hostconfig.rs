//! HostConfig options that map straight onto the OCI spec: `--ulimit`,
//! `--sysctl`, `--device`, `--cpuset-cpus`, `--shm-size`, `--init`,
//! `--group-add`. Each is checked at create with Docker's messages and
//! turned into spec fields at start.

use std::collections::HashMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use berth_core::container::HostConfig;
use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, PosixRlimit};
use serde_json::json;

use crate::{Error, Result};

const ULIMITS: [&str; 15] = [
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// The memory+swap limit: as given, or Docker's default of twice the
/// memory limit; none where the kernel does not account swap.
pub fn memory_swap(hc: &HostConfig) -> Option<i64> {
    let memory = hc.memory.filter(|m| *m > 0)?;
    let swap = match hc.memory_swap {
        Some(s) if s != 0 => s,
        _ => memory * 2,
    };
    swap_accounting().then_some(swap)
}

/// The CFS period in microseconds: 100 ms for `--cpus` (dockerd's
/// getCPUResources), else `--cpu-period` when given.
pub fn cfs_period(hc: &HostConfig) -> Option<i64> {
    if hc.nano_cpus.is_some_and(|n| n > 0) {
        return Some(100_000);
    }
    hc.cpu_period.filter(|p| *p > 0)
}

/// The CFS quota in microseconds per period: `--cpus` as a share of the
/// 100 ms period, else `--cpu-quota` when given.
pub fn cfs_quota(hc: &HostConfig) -> Option<i64> {
    match hc.nano_cpus.filter(|n| *n > 0) {
        Some(n) => Some(n * 100_000 / 1_000_000_000),
        None => hc.cpu_quota.filter(|q| *q != 0),
    }
}

pub(crate) fn swap_accounting() -> bool {
    let m = berth_cgroups::Mounts::discover();
    m.has_swap_accounting()
}

/// Docker's default /dev/shm size: 64 MB.
pub const DEFAULT_SHM_SIZE: i64 = 64 * 1024 * 1024;

/// The names a client may give the one runtime berth has: runc's, since
/// clients look for it, and berth's own.
pub const RUNTIMES: [&str; 3] = ["runc", "io.containerd.runc.v2", "berth"];

/// What dockerd writes into a new container's host config when the
/// request leaves it out (adaptContainerSettings), so inspect shows the
/// settings the container runs with.
pub fn store_defaults(hc: &mut HostConfig) -> Result<()> {
    match hc.runtime.as_deref() {
        None | Some("") => hc.runtime = Some("runc".into()),
        Some(r) if RUNTIMES.contains(&r) => {}
        Some(r) => {
            return Err(Error::invalid(format!(
                "unknown or invalid runtime name: {r}"
            )));
        }
    }
    if hc.ipc_mode.as_deref().is_none_or(str::is_empty) {
        hc.ipc_mode = Some("private".into());
    }
    if hc.shm_size.is_none_or(|s| s == 0) {
        hc.shm_size = Some(DEFAULT_SHM_SIZE);
    }
    if hc.privileged != Some(true) {
        let list = |paths: &[&str]| Some(paths.iter().map(|p| p.to_string()).collect());
        if hc.masked_paths.is_none() {
            hc.masked_paths = list(&berth_oci::spec::MASKED_PATHS);
        }
        if hc.readonly_paths.is_none() {
            hc.readonly_paths = list(&berth_oci::spec::READONLY_PATHS);
        }
    }
    Ok(())
}

pub fn rlimits(hc: &HostConfig) -> Result<Vec<PosixRlimit>> {
    let mut out = Vec::new();
    for u in hc.ulimits.clone().unwrap_or_default() {
        let name = u.name.clone().unwrap_or_default();
        if !ULIMITS.contains(&name.as_str()) {
            return Err(Error::invalid(format!("invalid ulimit type: {name}")));
        }
        let soft = u.soft.unwrap_or(0);
        let hard = u.hard.unwrap_or(soft);
        if soft > hard {
            return Err(Error::invalid(format!(
                "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
            )));
        }
        let r: PosixRlimit = serde_json::from_value(json!({
            "type": format!("RLIMIT_{}", name.to_ascii_uppercase()),
            "soft": soft.max(0) as u64,
            "hard": hard.max(0) as u64,
        }))
        .map_err(|e| Error::invalid(format!("invalid ulimit {name}: {e}")))?;
        out.push(r);
    }
    Ok(out)
}

/// dockerd's default sysctls for a new network namespace, those the
/// kernel has; no ping range in a user namespace, where it cannot be set.
fn default_net_sysctls(exists: impl Fn(&str) -> bool, in_userns: bool) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if !in_userns && exists("net.ipv4.ping_group_range") {
        out.push(("net.ipv4.ping_group_range".into(), "0 2147483647".into()));
    }
    if exists("net.ipv4.ip_unprivileged_port_start") {
        out.push(("net.ipv4.ip_unprivileged_port_start".into(), "0".into()));
    }
    out
}

/// Whether the daemon runs in a user namespace (its uid map is not the
/// whole range), as runc's userns.RunningInUserNS decides.
fn running_in_userns() -> bool {
    std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|m| {
        let f: Vec<&str> = m.split_whitespace().collect();
        f != ["0", "0", "4294967295"]
    })
}

/// Only sysctls that live in the container's own namespaces are allowed,
/// and net.* only with its own network namespace (Docker's rules). A
/// container with a network namespace of its own starts from dockerd's
/// defaults (ping and ports below 1024 without capabilities), which the
/// user's settings override.
pub fn sysctls(hc: &HostConfig) -> Result<HashMap<String, String>> {
    let mode = hc.network_mode.as_deref().unwrap_or_default();
    let host_net = mode == "host";
    let mut out = HashMap::new();
    if !host_net && !mode.starts_with("container:") {
        out.extend(default_net_sysctls(
            |k| {
                std::path::Path::new("/proc/sys")
                    .join(k.replace('.', "/"))
                    .exists()
            },
            running_in_userns(),
        ));
    }
    for (k, v) in hc.sysctls.clone().unwrap_or_default() {
        let ipc = matches!(
            k.as_str(),
            "kernel.msgmax"
                | "kernel.msgmnb"
                | "kernel.msgmni"
                | "kernel.sem"
                | "kernel.shmall"
                | "kernel.shmmax"
                | "kernel.shmmni"
                | "kernel.shm_rmid_forced"
        ) || k.starts_with("fs.mqueue.");
        if k.starts_with("net.") {
            if host_net {
                return Err(Error::invalid(format!(
                    "sysctl {k:?} not allowed in host network namespace"
                )));
            }
        } else if !ipc && k != "kernel.domainname" && k != "kernel.hostname" {
            return Err(Error::invalid(format!(
                "sysctl {k:?} is not in a separate kernel namespace"
            )));
        }
        out.insert(k, v);
    }
    Ok(out)
}

pub fn cpuset(hc: &HostConfig) -> Result<Option<String>> {
    let Some(c) = hc.cpuset_cpus.clone().filter(|c| !c.is_empty()) else {
        return Ok(None);
    };
    let online = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    for part in c.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (Ok(a), Ok(b)) = (a.trim().parse::<usize>(), b.trim().parse::<usize>()) else {
            return Err(Error::invalid(format!("Invalid value {c} for cpuset cpus")));
        };
        if a > b || b >= online {
            return Err(Error::invalid(format!(
                "Requested CPUs are not available - requested {c}, available: 0-{}",
                online - 1
            )));
        }
    }
    Ok(Some(c))
}

/// `--device HOST[:CONTAINER[:PERMS]]`: the device node and its cgroup rule.
pub fn devices(hc: &HostConfig) -> Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>)> {
    let mut devs = Vec::new();
    let mut rules = Vec::new();
    for d in hc.devices.clone().unwrap_or_default() {
        let host = d.path_on_host.clone().unwrap_or_default();
        let inside = d
            .path_in_container
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| host.clone());
        let perms = d
            .cgroup_permissions
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "rwm".into());
        if !perms.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
            return Err(Error::invalid(format!("invalid device mode: {perms}")));
        }
        if !inside.starts_with('/') {
            return Err(Error::invalid(format!("{inside} is not an absolute path")));
        }
        let md = std::fs::metadata(&host).map_err(|e| {
            Error::invalid(format!(
                "error gathering device information while adding custom device {host:?}: {e}"
            ))
        })?;
        let ft = md.file_type();
        let typ = if ft.is_char_device() {
            "c"
        } else if ft.is_block_device() {
            "b"
        } else {
            return Err(Error::invalid(format!("{host:?} is not a device node")));
        };
        let (major, minor) = (libc::major(md.rdev()) as i64, libc::minor(md.rdev()) as i64);
        let dev: LinuxDevice = serde_json::from_value(json!({
            "path": inside, "type": typ, "major": major, "minor": minor,
            "fileMode": md.mode() & 0o777, "uid": md.uid(), "gid": md.gid(),
        }))
        .map_err(|e| Error::invalid(format!("invalid device {host}: {e}")))?;
        let rule: LinuxDeviceCgroup = serde_json::from_value(json!({
            "allow": true, "type": typ, "major": major, "minor": minor, "access": perms,
        }))
        .map_err(|e| Error::invalid(format!("invalid device {host}: {e}")))?;
        devs.push(dev);
        rules.push(rule);
    }
    Ok((devs, rules))
}

/// Every device node of the host's /dev, for `--privileged` (Docker's
/// rule: pts, shm, mqueue and the container's own files are left out).
pub fn host_devices() -> Vec<LinuxDevice> {
    fn walk(dir: &Path, out: &mut Vec<LinuxDevice>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(md) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            let ft = md.file_type();
            if ft.is_dir() {
                let name = e.file_name();
                if !matches!(
                    name.to_str(),
                    Some("pts" | "shm" | "mqueue" | ".lxc" | ".lxd-mounts")
                ) {
                    walk(&p, out);
                }
                continue;
            }
            let typ = if ft.is_char_device() {
                "c"
            } else if ft.is_block_device() {
                "b"
            } else {
                continue;
            };
            if p == Path::new("/dev/console") || p == Path::new("/dev/ptmx") {
                continue;
            }
            let dev = serde_json::from_value(json!({
                "path": p, "type": typ,
                "major": libc::major(md.rdev()) as i64, "minor": libc::minor(md.rdev()) as i64,
                "fileMode": md.mode() & 0o777, "uid": md.uid(), "gid": md.gid(),
            }));
            if let Ok(d) = dev {
                out.push(d);
            }
        }
    }
    let mut out = Vec::new();
    walk(Path::new("/dev"), &mut out);
    out
}

/// The init `--init` runs as PID 1: `init-path`, else docker-init or
/// tini-static (statically linked, so it runs in any image) on PATH.
pub fn init_binary(configured: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = configured {
        return Ok(p.to_path_buf());
    }
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    for name in ["docker-init", "tini-static"] {
        for dir in path.split(':') {
            let p = Path::new(dir).join(name);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(Error::invalid(
        "--init needs docker-init or tini-static on the daemon's PATH (apt-get install tini)",
    ))
}

/// `--group-add`: group names (from the image's /etc/group) or numbers.
pub fn extra_groups(rootfs: &Path, hc: &HostConfig) -> Result<Vec<u32>> {
    let mut out = Vec::new();
    for g in hc.group_add.clone().unwrap_or_default() {
        if let Ok(n) = g.parse::<u32>() {
            out.push(n);
            continue;
        }
        let group = berth_archive::rootpath::resolve(rootfs, Path::new("/etc/group"), true)
            .ok()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        let gid = group
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.first() == Some(&g.as_str()))
            .and_then(|f| f.get(2).and_then(|x| x.parse::<u32>().ok()))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "Unable to find group {g}: no matching entries in group file"
                ))
            })?;
        out.push(gid);
    }
    Ok(out)
}

/// Checks everything above at create, before anything is stored.
/// `--add-host name:ip` (or `name=ip`): (name, ip or "host-gateway").
pub fn extra_hosts(hc: &HostConfig) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for h in hc.extra_hosts.iter().flatten() {
        // the address may be IPv6, so the name ends at the first separator
        let (name, ip) = h
            .split_once('=')
            .or_else(|| h.split_once(':'))
            .ok_or_else(|| Error::invalid(format!("bad format for add-host: {h:?}")))?;
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        if name.is_empty() || (ip != "host-gateway" && ip.parse::<std::net::IpAddr>().is_err()) {
            return Err(Error::invalid(format!(
                "invalid IP address in add-host: {ip:?}"
            )));
        }
        out.push((name.to_string(), ip.to_string()));
    }
    Ok(out)
}

/// `--dns`: nameserver addresses.
fn check_dns(hc: &HostConfig) -> Result<()> {
    for d in hc.dns.iter().flatten() {
        if d.parse::<std::net::IpAddr>().is_err() {
            return Err(Error::invalid(format!("{d} is not an ip address")));
        }
    }
    Ok(())
}

pub fn validate(hc: &HostConfig, init_path: Option<&Path>) -> Result<()> {
    extra_hosts(hc)?;
    check_dns(hc)?;
    rlimits(hc)?;
    sysctls(hc)?;
    cpuset(hc)?;
    devices(hc)?;
    if hc.shm_size.is_some_and(|s| s < 0) {
        return Err(Error::invalid("SHM size can not be less than 0"));
    }
    if hc.init == Some(true) {
        init_binary(init_path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_net_sysctls_follow_dockerd() {
        let all = default_net_sysctls(|_| true, false);
        assert_eq!(
            all,
            [
                (
                    "net.ipv4.ping_group_range".to_string(),
                    "0 2147483647".to_string()
                ),
                (
                    "net.ipv4.ip_unprivileged_port_start".to_string(),
                    "0".to_string()
                ),
            ]
        );
        // no ping range in a user namespace, nothing the kernel lacks
        assert_eq!(default_net_sysctls(|_| true, true).len(), 1);
        assert!(default_net_sysctls(|_| false, false).is_empty());
    }

    #[test]
    fn the_users_sysctls_override_the_defaults_and_host_mode_has_none() {
        let mut hc = HostConfig {
            network_mode: Some("default".into()),
            sysctls: Some(HashMap::from([(
                "net.ipv4.ip_unprivileged_port_start".to_string(),
                "1024".to_string(),
            )])),
            ..Default::default()
        };
        let s = sysctls(&hc).unwrap();
        assert_eq!(s["net.ipv4.ip_unprivileged_port_start"], "1024");
        hc.network_mode = Some("host".into());
        hc.sysctls = None;
        assert!(sysctls(&hc).unwrap().is_empty());
        hc.network_mode = Some("container:abc".into());
        assert!(sysctls(&hc).unwrap().is_empty());
    }
}
