//! The OCI runtime spec of a container, with Docker's defaults: capability
//! set, mounts, masked and read-only paths, namespaces.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDeviceCgroup,
    LinuxDeviceCgroupBuilder, LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType,
    LinuxResources, LinuxResourcesBuilder, Mount, MountBuilder, ProcessBuilder, RootBuilder, Spec,
    SpecBuilder, UserBuilder,
};

pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default capability set (moby oci/caps/defaults.go).
pub const DEFAULT_CAPS: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Paths hidden from a container that is not privileged (dockerd's).
pub const MASKED_PATHS: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths a container that is not privileged sees read-only (dockerd's).
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Every capability of the kernels berth runs on (up to CAP_CHECKPOINT_RESTORE, 40).
pub const ALL_CAPS: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

fn parse_cap(name: &str) -> std::result::Result<Capability, String> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    bare.parse::<Capability>()
        .map_err(|_| format!("invalid capability: {name}"))
}

/// Docker's TweakCapabilities: the default set (or all of them when
/// privileged), then `--cap-drop` (ALL drops every one), then `--cap-add`
/// (ALL adds every one).
pub fn capabilities(
    privileged: bool,
    add: &[String],
    drop: &[String],
) -> std::result::Result<std::collections::HashSet<Capability>, String> {
    // "all" means all that this process may hand out: a capability outside
    // our own bounding set cannot be given to a container
    let bounding = bounding_set();
    let all = || {
        ALL_CAPS
            .iter()
            .enumerate()
            .filter(|(bit, _)| bounding >> bit & 1 == 1)
            .map(|(_, c)| parse_cap(c))
            .collect::<std::result::Result<std::collections::HashSet<_>, _>>()
    };
    if privileged {
        return all();
    }
    let mut caps: std::collections::HashSet<Capability> = DEFAULT_CAPS.into_iter().collect();
    for d in drop {
        if d.eq_ignore_ascii_case("ALL") {
            caps.clear();
        } else {
            caps.remove(&parse_cap(d)?);
        }
    }
    for a in add {
        if a.eq_ignore_ascii_case("ALL") {
            caps.extend(all()?);
        } else {
            caps.insert(parse_cap(a)?);
        }
    }
    Ok(caps)
}

fn bounding_set() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:").map(|v| v.trim().to_string()))
        })
        .and_then(|v| u64::from_str_radix(&v, 16).ok())
        .unwrap_or(u64::MAX)
}

/// Resource limits from HostConfig, as the OCI spec takes them.
#[derive(Debug, Default, Clone)]
pub struct Limits {
    pub memory: Option<i64>,
    pub pids: Option<i64>,
    pub cpu_shares: Option<u64>,
    /// CFS quota in microseconds per period (`--cpus`, `--cpu-quota`)
    pub cpu_quota: Option<i64>,
    /// CFS period in microseconds; the kernel's 100 ms when unset
    pub cpu_period: Option<u64>,
    /// memory plus swap (`--memory-swap`); -1 is unlimited
    pub memory_swap: Option<i64>,
}

pub struct SpecInput<'a> {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub hostname: String,
    /// the UTS domain name (`--domainname`); empty leaves the kernel's
    pub domainname: String,
    pub rootfs: &'a Path,
    pub cgroups_path: String,
    /// share the host's network namespace (`--network host`)
    pub host_network: bool,
    /// join this pinned network namespace (bridge networks) instead of a
    /// new, empty one
    pub netns: Option<PathBuf>,
    /// files bind-mounted over /etc/hostname, /etc/hosts, /etc/resolv.conf
    pub etc_files: Vec<(PathBuf, &'static str)>,
    pub caps: std::collections::HashSet<Capability>,
    pub privileged: bool,
    pub no_new_privileges: bool,
    pub seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
    /// `-t`: the process gets a pseudo-terminal
    pub terminal: bool,
    /// the terminal's first size: (height, width)
    pub console_size: Option<(u64, u64)>,
    pub readonly_rootfs: bool,
    /// `--tmpfs PATH[:OPTIONS]`
    pub tmpfs: Vec<(String, String)>,
    /// binds, volumes and tmpfs mounts of `-v`/`--mount`, parents first
    pub mounts: Vec<Mount>,
    pub rlimits: Vec<oci_spec::runtime::PosixRlimit>,
    pub sysctls: std::collections::HashMap<String, String>,
    pub cpuset_cpus: Option<String>,
    /// `--device`: the nodes and their device cgroup rules
    pub devices: Vec<oci_spec::runtime::LinuxDevice>,
    pub device_rules: Vec<oci_spec::runtime::LinuxDeviceCgroup>,
    /// what the container has at /dev/shm (`--ipc`, `--shm-size`)
    pub shm: Shm,
    /// `--pid`: its own PID namespace, the host's or another container's
    pub pid: NsShare,
    /// `--ipc`: its own IPC namespace, the host's or another container's
    pub ipc: NsShare,
    /// `--uts host`: the host's hostname and domain name
    pub uts_host: bool,
    pub limits: Limits,
    /// the container's MaskedPaths and ReadonlyPaths; None for the
    /// defaults (none at all when privileged)
    pub masked_paths: Option<Vec<String>>,
    pub readonly_paths: Option<Vec<String>>,
    /// what the container sees at /sys/fs/cgroup
    pub cgroup_view: CgroupView,
}

/// The propagation of the container's root mount, as dockerd sets it: a
/// shared bind needs a shared root, or the bind lands in a peer group of
/// its own and mounts made inside never reach the host; a slave bind
/// needs at least a slave root (the runtime's default).
fn rootfs_propagation(mounts: &[Mount]) -> Option<String> {
    let has = |names: &[&str]| {
        mounts.iter().any(|m| {
            m.options()
                .as_ref()
                .is_some_and(|o| o.iter().any(|x| names.contains(&x.as_str())))
        })
    };
    if has(&["shared", "rshared"]) {
        Some("shared".into())
    } else if has(&["slave", "rslave"]) {
        Some("slave".into())
    } else {
        None
    }
}

/// Where a container's namespace of one kind comes from.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum NsShare {
    /// a new namespace of its own
    #[default]
    Own,
    /// the host's (no namespace in the spec)
    Host,
    /// another process's, joined by path (`/proc/PID/ns/...`)
    Join(PathBuf),
}

/// What a container finds at /dev/shm.
#[derive(Debug, Clone, PartialEq)]
pub enum Shm {
    /// a tmpfs of its own, of this many bytes
    Tmpfs(i64),
    /// a directory bind-mounted from the host: a shareable container's
    /// own tmpfs, its donor's, or the host's /dev/shm
    Bind(PathBuf),
    /// nothing (`--ipc none`)
    None,
}

/// The container's view of its cgroups at /sys/fs/cgroup, read-only unless
/// privileged, as dockerd mounts it by default.
#[derive(Debug, Clone, Default)]
pub enum CgroupView {
    /// cgroup v1 (dockerd's cgroupns "host"): a tmpfs holding, for each
    /// hierarchy, the container's own cgroup directory (name, host path)
    V1(Vec<(String, PathBuf)>),
    /// cgroup v2: the cgroup filesystem, mounted by the runtime
    V2,
    /// nothing (a user mount covers /sys or /sys/fs/cgroup)
    #[default]
    None,
}

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The mounts of `view`, and whether /sys/fs/cgroup itself has to be made
/// read-only afterwards (a tmpfs that takes mount points cannot be
/// mounted read-only from the start).
fn cgroup_mounts(view: &CgroupView, privileged: bool) -> Result<(Vec<Mount>, bool)> {
    let mut opts = vec!["nosuid", "noexec", "nodev"];
    if !privileged {
        opts.push("ro");
    }
    match view {
        CgroupView::None => Ok((Vec::new(), false)),
        CgroupView::V2 => Ok((vec![mnt(CGROUP_ROOT, "cgroup", "cgroup", &opts)?], false)),
        CgroupView::V1(dirs) => {
            let mut mounts = vec![mnt(
                CGROUP_ROOT,
                "tmpfs",
                "tmpfs",
                &["nosuid", "noexec", "nodev", "mode=755"],
            )?];
            let mut bind = vec!["rbind"];
            bind.extend(&opts);
            for (name, source) in dirs {
                mounts.push(mnt(
                    &format!("{CGROUP_ROOT}/{name}"),
                    "bind",
                    &source.display().to_string(),
                    &bind,
                )?);
            }
            Ok((mounts, !privileged))
        }
    }
}

fn mnt(dest: &str, typ: &str, source: &str, opts: &[&str]) -> Result<Mount> {
    Ok(MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()?)
}

pub fn build(input: SpecInput<'_>) -> Result<Spec> {
    let mut env = input.env;
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
        env.insert(1.min(env.len()), format!("HOSTNAME={}", input.hostname));
    }
    let caps = input.caps.clone();
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .inheritable(std::collections::HashSet::new())
        .ambient(std::collections::HashSet::new())
        .build()?;
    let mut process = ProcessBuilder::default()
        .terminal(input.terminal)
        .args(input.args)
        .env(env)
        .cwd(if input.cwd.is_empty() {
            "/".to_string()
        } else {
            input.cwd
        })
        .user(
            UserBuilder::default()
                .uid(input.uid)
                .gid(input.gid)
                .additional_gids(input.additional_gids)
                .build()?,
        )
        .capabilities(capabilities)
        .rlimits(input.rlimits.clone())
        .build()?;
    // libcontainer loads seccomp before dropping capabilities only when the
    // field is absent: `Some(false)` would make the load fail
    process.set_no_new_privileges(input.no_new_privileges.then_some(true));
    if let Some((h, w)) = input.console_size {
        process.set_console_size(Some(
            oci_spec::runtime::BoxBuilder::default()
                .height(h)
                .width(w)
                .build()?,
        ));
    }

    let mut mounts = standard_mounts(input.privileged)?;
    mounts.extend(shm_mount(&input.shm)?);
    let (cgroup, cgroup_readonly) = cgroup_mounts(&input.cgroup_view, input.privileged)?;
    mounts.extend(cgroup);
    for (src, dest) in &input.etc_files {
        mounts.push(mnt(
            dest,
            "bind",
            &src.display().to_string(),
            &["rbind", "rprivate"],
        )?);
    }
    for (dest, opts) in &input.tmpfs {
        // Docker's tmpfs defaults, then the user's options
        let mut o = vec!["nosuid", "nodev", "noexec"];
        o.extend(opts.split(',').filter(|x| !x.is_empty()));
        mounts.push(mnt(dest, "tmpfs", "tmpfs", &o)?);
    }
    let root_propagation = rootfs_propagation(&input.mounts);
    mounts.extend(input.mounts);

    let net = match (input.host_network, input.netns) {
        (true, _) => NsShare::Host,
        (false, Some(p)) => NsShare::Join(p),
        (false, None) => NsShare::Own,
    };
    let namespaces = namespaces_of(&net, &input.pid, &input.ipc, input.uts_host)?;
    let resources = resources_of(
        &input.limits,
        input.cpuset_cpus.as_deref(),
        input.privileged,
        &input.device_rules,
    )?;
    let defaults = |paths: &[&str]| -> Vec<String> {
        if input.privileged {
            Vec::new()
        } else {
            paths.iter().map(|s| s.to_string()).collect()
        }
    };
    let masked = (input.masked_paths.clone()).unwrap_or_else(|| defaults(&MASKED_PATHS));
    let mut readonly = (input.readonly_paths.clone()).unwrap_or_else(|| defaults(&READONLY_PATHS));
    if cgroup_readonly {
        readonly.push(CGROUP_ROOT.to_string());
    }
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .cgroups_path(PathBuf::from(input.cgroups_path))
        .resources(resources)
        .masked_paths(masked)
        .readonly_paths(readonly)
        .build()?;
    linux.set_seccomp(input.seccomp);
    linux.set_rootfs_propagation(root_propagation);
    if !input.sysctls.is_empty() {
        linux.set_sysctl(Some(input.sysctls.clone()));
    }
    if !input.devices.is_empty() {
        linux.set_devices(Some(input.devices.clone()));
    }

    let mut spec = SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path(input.rootfs)
                .readonly(input.readonly_rootfs)
                .build()?,
        )
        .process(process)
        .mounts(mounts)
        .linux(linux)
        .build()
        .context("building OCI spec")?;
    // without a UTS namespace of its own the container keeps the host's
    // names, and the runtime refuses to set any
    spec.set_hostname(None);
    spec.set_domainname(None);
    if !input.uts_host {
        spec.set_hostname(Some(input.hostname.clone()));
        if !input.domainname.is_empty() {
            spec.set_domainname(Some(input.domainname.clone()));
        }
    }
    Ok(spec)
}

/// The filesystems every container gets: /proc, /dev and its parts, /sys
/// (read-only unless privileged).
fn standard_mounts(privileged: bool) -> Result<Vec<Mount>> {
    Ok(vec![
        mnt("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mnt(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mnt(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mnt(
            "/sys",
            "sysfs",
            "sysfs",
            if privileged {
                &["nosuid", "noexec", "nodev"]
            } else {
                &["nosuid", "noexec", "nodev", "ro"]
            },
        )?,
        mnt(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
    ])
}

fn shm_mount(shm: &Shm) -> Result<Option<Mount>> {
    Ok(match shm {
        Shm::None => None,
        Shm::Tmpfs(size) => Some(mnt(
            "/dev/shm",
            "tmpfs",
            "shm",
            &[
                "nosuid",
                "noexec",
                "nodev",
                "mode=1777",
                &format!("size={size}"),
            ],
        )?),
        Shm::Bind(dir) => Some(mnt(
            "/dev/shm",
            "bind",
            &dir.display().to_string(),
            &["rbind", "rprivate"],
        )?),
    })
}

/// The container's namespaces: its own mount one; pid, ipc and uts ones of
/// its own unless it shares the host's or (pid, ipc) another container's;
/// a network one unless it shares the host's (a given path joins it).
fn namespaces_of(
    net: &NsShare,
    pid: &NsShare,
    ipc: &NsShare,
    uts_host: bool,
) -> Result<Vec<LinuxNamespace>> {
    let uts = if uts_host {
        NsShare::Host
    } else {
        NsShare::Own
    };
    let kinds = [
        (LinuxNamespaceType::Pid, pid),
        (LinuxNamespaceType::Ipc, ipc),
        (LinuxNamespaceType::Uts, &uts),
        (LinuxNamespaceType::Mount, &NsShare::Own),
        (LinuxNamespaceType::Network, net),
    ];
    let mut namespaces = Vec::new();
    for (typ, share) in kinds {
        let mut ns = LinuxNamespaceBuilder::default().typ(typ);
        match share {
            NsShare::Host => continue,
            NsShare::Own => {}
            NsShare::Join(p) => ns = ns.path(p.clone()),
        }
        namespaces.push(ns.build()?);
    }
    Ok(namespaces)
}

/// Device access and the limits of memory, pids and CPU.
fn resources_of(
    limits: &Limits,
    cpuset_cpus: Option<&str>,
    privileged: bool,
    device_rules: &[LinuxDeviceCgroup],
) -> Result<LinuxResources> {
    let mut rules = vec![
        LinuxDeviceCgroupBuilder::default()
            .allow(privileged)
            .access("rwm")
            .build()?,
    ];
    rules.extend(device_rules.iter().cloned());
    let mut resources = LinuxResourcesBuilder::default().devices(rules).build()?;
    let l = limits;
    if let Some(m) = l.memory.filter(|m| *m > 0) {
        let mut mem = oci_spec::runtime::LinuxMemoryBuilder::default().limit(m);
        if let Some(s) = l.memory_swap.filter(|s| *s != 0) {
            mem = mem.swap(s);
        }
        resources.set_memory(Some(mem.build()?));
    }
    if let Some(p) = l.pids.filter(|p| *p > 0) {
        resources.set_pids(Some(
            oci_spec::runtime::LinuxPidsBuilder::default()
                .limit(p)
                .build()?,
        ));
    }
    if l.cpu_shares.is_some()
        || l.cpu_quota.is_some()
        || l.cpu_period.is_some()
        || cpuset_cpus.is_some()
    {
        let mut cpu = oci_spec::runtime::LinuxCpuBuilder::default();
        if let Some(c) = cpuset_cpus {
            cpu = cpu.cpus(c.to_string());
        }
        if let Some(s) = l.cpu_shares.filter(|s| *s > 0) {
            cpu = cpu.shares(s);
        }
        if let Some(q) = l.cpu_quota.filter(|q| *q > 0) {
            cpu = cpu.quota(q).period(l.cpu_period.unwrap_or(100_000));
        } else if let Some(p) = l.cpu_period {
            cpu = cpu.period(p);
        }
        resources.set_cpu(Some(cpu.build()?));
    }
    Ok(resources)
}

/// Resolves `user[:group]` (names or numbers) against the container's
/// /etc/passwd and /etc/group, as Docker does (libcontainer's
/// GetExecUser): uid, gid, and the process's groups: the gid, then the
/// groups that list the user by name unless a group was given. No user
/// means the passwd entry of uid 0.
pub fn resolve_user(
    rootfs: &Path,
    user: &str,
) -> std::result::Result<(u32, u32, Vec<u32>), String> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g).filter(|g| !g.is_empty())),
        None => (user, None),
    };
    let read = |p: &str| -> Vec<Vec<String>> {
        berth_archive::rootpath::resolve(rootfs, Path::new(p), true)
            .ok()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split(':').map(String::from).collect())
            .collect()
    };
    let passwd = read("/etc/passwd");
    let uid_of = |f: &Vec<String>| f.get(2).and_then(|x| x.parse::<u32>().ok());
    let entry = match u.parse::<u32>() {
        _ if u.is_empty() => passwd.iter().find(|f| uid_of(f) == Some(0)),
        Ok(n) => passwd.iter().find(|f| uid_of(f) == Some(n)),
        Err(_) => Some(
            passwd
                .iter()
                .find(|f| f.first().map(String::as_str) == Some(u))
                .ok_or_else(|| {
                    format!("unable to find user {u}: no matching entries in passwd file")
                })?,
        ),
    };
    let (uid, mut gid) = match entry {
        Some(f) => (
            uid_of(f).ok_or_else(|| format!("invalid passwd entry for {u}"))?,
            f.get(3).and_then(|x| x.parse().ok()).unwrap_or(0),
        ),
        None => (u.parse::<u32>().unwrap_or(0), 0),
    };
    let name = entry.and_then(|f| f.first()).filter(|n| !n.is_empty());
    let groups = if g.is_some() || name.is_some() {
        read("/etc/group")
    } else {
        vec![]
    };
    let gid_of = |f: &Vec<String>| f.get(2).and_then(|x| x.parse::<u32>().ok());
    let mut sgids = vec![];
    match (g, name) {
        (Some(g), _) => {
            gid = match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => groups
                    .iter()
                    .find(|f| f.first().map(String::as_str) == Some(g))
                    .and_then(gid_of)
                    .ok_or_else(|| {
                        format!("unable to find group {g}: no matching entries in group file")
                    })?,
            };
        }
        (None, Some(name)) => {
            sgids = groups
                .iter()
                .filter(|f| f.get(3).is_some_and(|m| m.split(',').any(|m| m == name)))
                .filter_map(gid_of)
                .collect();
        }
        (None, None) => {}
    }
    let mut gids = vec![gid];
    gids.extend(sgids);
    Ok((uid, gid, gids))
}

/// The error Docker reports (and the exit code its CLI derives) when the
/// command cannot be executed: 127 not found, 126 not executable.
pub fn check_executable(
    rootfs: &Path,
    cmd: &str,
    env: &[String],
) -> std::result::Result<(), (i64, String)> {
    use std::os::unix::fs::PermissionsExt;
    let candidates: Vec<PathBuf> = if cmd.contains('/') {
        vec![PathBuf::from(cmd)]
    } else {
        let path = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(&DEFAULT_PATH[5..]);
        path.split(':')
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join(cmd))
            .collect()
    };
    for c in &candidates {
        let Ok(host) = berth_archive::rootpath::resolve(rootfs, c, true) else {
            continue;
        };
        let Ok(md) = std::fs::metadata(&host) else {
            continue;
        };
        if md.is_dir() {
            if cmd.contains('/') {
                return Err((126, format!("exec: \"{cmd}\": is a directory")));
            }
            continue;
        }
        if md.permissions().mode() & 0o111 == 0 {
            if cmd.contains('/') {
                return Err((126, format!("exec: \"{cmd}\": permission denied")));
            }
            continue;
        }
        return Ok(());
    }
    if cmd.contains('/') {
        Err((
            127,
            format!("exec: \"{cmd}\": stat {cmd}: no such file or directory"),
        ))
    } else {
        Err((
            127,
            format!("exec: \"{cmd}\": executable file not found in $PATH"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_root_propagates_as_the_strongest_bind_asks() {
        let bind = |opt: &str| {
            MountBuilder::default()
                .destination("/m")
                .typ("bind")
                .source("/h")
                .options(vec!["rbind".to_string(), opt.to_string()])
                .build()
                .unwrap()
        };
        assert_eq!(rootfs_propagation(&[bind("rprivate")]), None);
        assert_eq!(
            rootfs_propagation(&[bind("rslave")]).as_deref(),
            Some("slave")
        );
        assert_eq!(
            rootfs_propagation(&[bind("rslave"), bind("rshared")]).as_deref(),
            Some("shared")
        );
    }

    #[test]
    fn cgroup_views_are_read_only_unless_privileged() {
        let view = CgroupView::V1(vec![("memory".into(), PathBuf::from("/h/memory/c"))]);
        let (mounts, remount) = cgroup_mounts(&view, false).unwrap();
        assert!(remount);
        let kinds: Vec<_> = mounts
            .iter()
            .map(|m| (m.destination().display().to_string(), m.typ().clone()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("/sys/fs/cgroup".to_string(), Some("tmpfs".to_string())),
                (
                    "/sys/fs/cgroup/memory".to_string(),
                    Some("bind".to_string())
                ),
            ]
        );
        let opts = mounts[1].options().clone().unwrap_or_default();
        assert!(opts.contains(&"ro".to_string()) && opts.contains(&"rbind".to_string()));
        let (mounts, remount) = cgroup_mounts(&view, true).unwrap();
        assert!(!remount);
        assert!(
            !mounts[1]
                .options()
                .clone()
                .unwrap_or_default()
                .contains(&"ro".to_string())
        );
        let (mounts, _) = cgroup_mounts(&CgroupView::V2, false).unwrap();
        assert_eq!(mounts[0].typ().as_deref(), Some("cgroup"));
        assert!(
            cgroup_mounts(&CgroupView::None, false)
                .unwrap()
                .0
                .is_empty()
        );
    }

    #[test]
    fn executable_checks_match_docker() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::write(root.join("bin/busybox"), b"").unwrap();
        std::fs::set_permissions(
            root.join("bin/busybox"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink("/bin/busybox", root.join("bin/sh")).unwrap();
        std::fs::write(root.join("plain"), b"").unwrap();
        let env = vec!["PATH=/bin".to_string()];
        assert!(check_executable(root, "sh", &env).is_ok());
        assert!(check_executable(root, "/bin/sh", &env).is_ok());
        assert_eq!(check_executable(root, "nope", &env).unwrap_err().0, 127);
        assert_eq!(check_executable(root, "/plain", &env).unwrap_err().0, 126);
        assert_eq!(check_executable(root, "/bin", &env).unwrap_err().0, 126);
        assert_eq!(check_executable(root, "/missing", &env).unwrap_err().0, 127);
    }

    #[test]
    fn resolves_users() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65533::/:/bin/false\n",
        )
        .unwrap();
        std::fs::write(
            root.join("etc/group"),
            "root:x:0:\nstaff:x:50:\nwheel:x:10:root,nobody\ndevs:x:60:ann,nobody\n",
        )
        .unwrap();
        // the gid first, then the groups that list the user by name
        assert_eq!(
            resolve_user(root, "nobody").unwrap(),
            (65534, 65533, vec![65533, 10, 60])
        );
        assert_eq!(
            resolve_user(root, "65534").unwrap(),
            (65534, 65533, vec![65533, 10, 60])
        );
        assert_eq!(resolve_user(root, "").unwrap(), (0, 0, vec![0, 10]));
        // an explicit group replaces the memberships
        assert_eq!(
            resolve_user(root, "nobody:staff").unwrap(),
            (65534, 50, vec![50])
        );
        // a uid without an entry has no name to be a member by
        assert_eq!(resolve_user(root, "1000:7").unwrap(), (1000, 7, vec![7]));
        assert_eq!(resolve_user(root, "1000").unwrap(), (1000, 0, vec![0]));
        assert!(resolve_user(root, "ghost").is_err());
        assert!(resolve_user(root, "nobody:ghosts").is_err());
    }
}

#[cfg(test)]
mod caps_tests {
    use super::*;

    #[test]
    fn capability_arithmetic_like_docker() {
        let default = capabilities(false, &[], &[]).unwrap();
        assert_eq!(default.len(), 14);
        let c = capabilities(
            false,
            &["net_admin".into(), "CAP_SYS_TIME".into()],
            &["MKNOD".into()],
        )
        .unwrap();
        assert!(c.contains(&Capability::NetAdmin) && c.contains(&Capability::SysTime));
        assert!(!c.contains(&Capability::Mknod));
        let none = capabilities(false, &[], &["ALL".into()]).unwrap();
        assert!(none.is_empty());
        let one = capabilities(false, &["KILL".into()], &["all".into()]).unwrap();
        assert_eq!(one.len(), 1);
        assert!(capabilities(false, &["NOPE".into()], &[]).is_err());
        assert!(capabilities(true, &[], &[]).unwrap().len() > 14);
    }
}
