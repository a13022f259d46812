//! `berth-shim exec SPEC`: starts an exec'd process in a running container
//! without libcontainer, from the small binary.
//!
//! libcontainer's tenant builder ran in `berth shim-exec`, a helper of the
//! 54 MB binary whose exec, page faults and relocations alone cost some
//! 3 ms of CPU. What it does for berth's containers is short and fixed:
//! join the init's cgroup and namespaces, fork into the pid namespace,
//! set the user, the groups, the capabilities, no_new_privs and the cached
//! seccomp program, then exec. The creating shim, which has the spec and
//! libseccomp, works out once what depends on the container (`ExecPlan`);
//! a container it cannot plan for (a user namespace, a personality, a
//! profile that is not a plain program) keeps the libcontainer helper.
//!
//! The helper is single-threaded, so its child may allocate freely before
//! exec; its stdio are the exec's pipes and it reports "ok <pid>" or
//! "err <msg>" on fd 3, as `berth shim-exec` does.

use std::ffi::CString;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};

use crate::protocol::READY_OK;
use crate::server::ExecHelperSpec;

/// What an exec in this container needs besides the request: worked out
/// by the creating shim from the container's spec.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExecPlan {
    /// namespace names under /proc/PID/ns to join, in order
    pub namespaces: Vec<String>,
    /// `cgroup.procs` files of the container's cgroup, one per hierarchy
    pub cgroup_procs: Vec<PathBuf>,
    pub caps: CapSets,
    pub no_new_privileges: Option<bool>,
    /// the cached seccomp program of the container's profile
    pub seccomp: Option<PathBuf>,
    /// the container's process env, which the exec's env overrides
    pub env: Vec<String>,
}

/// Capability sets as bit masks (bit N is capability N). Inheritable and
/// ambient are only set when the spec has an inheritable set, as
/// libcontainer's tenant builder does.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: Option<u64>,
    pub ambient: Option<u64>,
}

/// capability(7)'s names, by number.
const CAP_NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The mask of capability names ("CAP_CHOWN" or "chown"); an unknown name
/// is an error, as in libcontainer.
pub fn cap_mask<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Result<u64> {
    let mut mask = 0u64;
    for n in names {
        let n = n.as_ref();
        let upper = n.to_ascii_uppercase();
        let full = if upper.starts_with("CAP_") {
            upper
        } else {
            format!("CAP_{upper}")
        };
        let bit = CAP_NAMES
            .iter()
            .position(|c| *c == full)
            .ok_or_else(|| anyhow!("unknown capability {n:?}"))?;
        mask |= 1 << bit;
    }
    Ok(mask)
}

impl CapSets {
    /// The sets of an exec with `add` added, as libcontainer's tenant
    /// builder makes them (bounding, effective, permitted and ambient
    /// get the additions; inheritable stays).
    pub fn with_added(&self, add: u64) -> CapSets {
        CapSets {
            bounding: self.bounding | add,
            effective: self.effective | add,
            permitted: self.permitted | add,
            inheritable: self.inheritable,
            ambient: self.inheritable.map(|_| self.ambient.unwrap_or(0) | add),
        }
    }
}

/// The exec's environment as libcontainer's tenant builder makes it: the
/// container's variables the exec does not set, then the exec's.
pub fn merge_env(container: &[String], exec: &[String]) -> Vec<String> {
    let key = |e: &str| e.split('=').next().unwrap_or_default().to_string();
    let exec_keys: std::collections::HashSet<String> = exec.iter().map(|e| key(e)).collect();
    let mut out: Vec<String> = container
        .iter()
        .filter(|e| !exec_keys.contains(&key(e)))
        .cloned()
        .collect();
    // the last of a repeated key wins, once
    for (i, e) in exec.iter().enumerate() {
        let k = key(e);
        if !exec[i + 1..].iter().any(|l| key(l) == k) {
            out.push(e.clone());
        }
    }
    out
}

/// HOME from the container's /etc/passwd when the env has none (or an
/// empty one), as libcontainer's init sets it.
fn home_of(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 7 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[5].to_string())
    })
}

/// The helper's entry: the spec is the shim's `ExecHelperSpec` as JSON.
pub fn exec_main(spec_json: &str) -> i32 {
    // SAFETY: the shim opened fd 3 for us before exec
    let mut report = unsafe { File::from_raw_fd(3) };
    // SAFETY: marking our own descriptor close-on-exec
    unsafe { libc::fcntl(3, libc::F_SETFD, libc::FD_CLOEXEC) };
    let result = serde_json::from_str::<ExecHelperSpec>(spec_json)
        .context("bad exec spec")
        .and_then(|spec| start(&spec));
    match result {
        Ok(pid) => {
            let _ = writeln!(report, "{READY_OK} {pid}");
            0
        }
        Err(e) => {
            let _ = writeln!(report, "err {e:#}");
            1
        }
    }
}

/// Joins the container and forks the process; its pid once it has exec'd.
fn start(spec: &ExecHelperSpec) -> Result<i32> {
    let plan = spec.plan.as_ref().context("no exec plan")?;
    let init = spec.init_pid.context("no init pid")?;
    let add = cap_mask(&spec.add_caps)?;
    let caps = plan.caps.with_added(add);
    let program = match &plan.seccomp {
        Some(p) => Some(fs::read(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    // the console socket is a host path: connect before leaving the host's
    // mount namespace, as libcontainer does
    let console = match &spec.console_socket {
        Some(p) => Some(
            std::os::unix::net::UnixStream::connect(p)
                .with_context(|| format!("connecting {}", p.display()))?,
        ),
        None => None,
    };
    let namespaces = open_namespaces(init, &plan.namespaces)?;
    let pid = std::process::id().to_string();
    for procs in &plan.cgroup_procs {
        fs::write(procs, &pid).with_context(|| format!("joining {}", procs.display()))?;
    }
    for (name, fd) in &namespaces {
        // SAFETY: setns with a namespace descriptor we own
        if unsafe { libc::setns(fd.as_raw_fd(), 0) } < 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("joining the {name} namespace"));
        }
    }
    drop(namespaces);
    let child = Child {
        spec,
        caps,
        no_new_privileges: plan.no_new_privileges,
        program,
        env: merge_env(&plan.env, &spec.env),
        console,
    };
    child.fork()
}

/// Opens every namespace first: joining the mount namespace changes what
/// /proc shows. Namespaces the helper is in already are left out (joining
/// one's own user namespace fails).
fn open_namespaces(init: i32, names: &[String]) -> Result<Vec<(String, OwnedFd)>> {
    let mut out = Vec::new();
    for name in names {
        let theirs = format!("/proc/{init}/ns/{name}");
        let ours = fs::metadata(format!("/proc/self/ns/{name}")).ok();
        let f = File::open(&theirs).with_context(|| format!("opening {theirs}"))?;
        let meta = f.metadata()?;
        if ours.is_some_and(|o| o.ino() == meta.ino() && o.dev() == meta.dev()) {
            continue;
        }
        out.push((name.clone(), OwnedFd::from(f)));
    }
    Ok(out)
}

/// What the forked process applies to itself before exec.
struct Child<'a> {
    spec: &'a ExecHelperSpec,
    caps: CapSets,
    no_new_privileges: Option<bool>,
    program: Option<Vec<u8>>,
    env: Vec<String>,
    console: Option<std::os::unix::net::UnixStream>,
}

impl Child<'_> {
    /// Forks into the pid namespace; the child reports a failure before
    /// exec on a close-on-exec pipe, so EOF alone means it exec'd.
    fn fork(self) -> Result<i32> {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        // SAFETY: this process has one thread, so the child may allocate
        match unsafe { libc::fork() } {
            -1 => Err(std::io::Error::last_os_error()).context("fork"),
            0 => {
                drop(r);
                let err = self.run();
                let mut w = File::from(w);
                let _ = write!(w, "{err:#}");
                // SAFETY: leaving the child without running our exit handlers
                unsafe { libc::_exit(127) }
            }
            pid => {
                drop(w);
                let mut msg = String::new();
                let _ = File::from(r).read_to_string(&mut msg);
                if msg.is_empty() {
                    return Ok(pid);
                }
                let mut status = 0;
                // SAFETY: reaping our own child
                unsafe { libc::waitpid(pid, &mut status, 0) };
                bail!("{msg}")
            }
        }
    }

    /// Returns only on failure.
    fn run(self) -> anyhow::Error {
        match self.prepare() {
            Ok(exec) => exec.exec(),
            Err(e) => e,
        }
    }

    fn prepare(self) -> Result<Exec> {
        // SAFETY: plain system calls on this process
        if unsafe { libc::setsid() } < 0 {
            return Err(std::io::Error::last_os_error()).context("setsid");
        }
        if let Some(console) = &self.console {
            setup_console(console).context("setting up the terminal")?;
        }
        if self.no_new_privileges == Some(true) {
            set_no_new_privs()?;
        }
        let cwd = Path::new(&self.spec.cwd);
        // before the user changes, as libcontainer: root may enter what
        // the user may not list
        let chdir_later = match std::env::set_current_dir(cwd) {
            Ok(()) => false,
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => true,
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("chdir to cwd ({cwd:?}) set in config.json failed"));
            }
        };
        set_user(self.spec.uid, self.spec.gid, &self.spec.additional_gids)?;
        close_range_cloexec();
        // a uid other than 0 cleared the effective set: dropping from the
        // bounding set needs CAP_SETPCAP back, as libcontainer's reset
        reset_effective().context("resetting effective capabilities")?;
        set_caps(&self.caps).context("setting capabilities")?;
        if chdir_later {
            std::env::set_current_dir(cwd)
                .with_context(|| format!("chdir to cwd ({cwd:?}) set in config.json failed"))?;
        }
        let mut env = self.env;
        if !env
            .iter()
            .any(|e| e.strip_prefix("HOME=").is_some_and(|h| !h.is_empty()))
        {
            let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
            if let Some(home) = home_of(&passwd, self.spec.uid) {
                env.retain(|e| !e.starts_with("HOME="));
                env.push(format!("HOME={home}"));
            }
        }
        let exec = Exec::new(&self.spec.args, &env)?;
        crate::create::reset_signal_dispositions();
        if let Some(p) = &self.program {
            // as `berth shim-exec` did: capabilities are dropped already
            set_no_new_privs()?;
            crate::seccomp::load(p).context("loading seccomp filter")?;
        }
        Ok(exec)
    }
}

fn set_no_new_privs() -> Result<()> {
    // SAFETY: prctl with integer arguments only
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } < 0 {
        return Err(std::io::Error::last_os_error()).context("setting no_new_privs");
    }
    Ok(())
}

/// Opens a pty inside the container (its devpts), sends the master to the
/// shim as libcontainer does and makes the slave this process's stdio and
/// controlling terminal.
fn setup_console(console: &std::os::unix::net::UnixStream) -> Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let pty = nix::pty::openpty(None, None).context("openpty")?;
    let fds = [pty.master.as_raw_fd()];
    let iov = [std::io::IoSlice::new(b"/dev/ptmx")];
    sendmsg::<nix::sys::socket::UnixAddr>(
        console.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .context("sending the terminal")?;
    let slave = pty.slave.as_raw_fd();
    // SAFETY: ioctl and dup2 on descriptors we own
    unsafe {
        libc::ioctl(slave, libc::TIOCSCTTY, 0);
        for fd in 0..3 {
            if libc::dup2(slave, fd) < 0 {
                return Err(std::io::Error::last_os_error()).context("dup2");
            }
        }
    }
    Ok(())
}

/// Groups, then gid and uid, keeping the capabilities across the change
/// so that `set_caps` decides them (libcontainer's set_id).
fn set_user(uid: u32, gid: u32, groups: &[u32]) -> Result<()> {
    // SAFETY: plain system calls in a single-threaded process; raw
    // syscalls so that no other thread's credentials are involved
    unsafe {
        if !groups.is_empty() && libc::setgroups(groups.len(), groups.as_ptr()) < 0 {
            return Err(std::io::Error::last_os_error()).context("setgroups");
        }
        if libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0 {
            return Err(std::io::Error::last_os_error()).context("keeping capabilities");
        }
        if libc::syscall(libc::SYS_setresgid, gid, gid, gid) < 0 {
            return Err(std::io::Error::last_os_error()).context("setting the gid");
        }
        if libc::syscall(libc::SYS_setresuid, uid, uid, uid) < 0 {
            return Err(std::io::Error::last_os_error()).context("setting the uid");
        }
        if libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0 {
            return Err(std::io::Error::last_os_error()).context("clearing keepcaps");
        }
    }
    Ok(())
}

/// Descriptors the process did not ask for close at exec (the stdio stay).
fn close_range_cloexec() {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only sets a flag on our own descriptors
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC) };
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_VERSION_3: u32 = 0x2008_0522;

fn capset(data: &[CapData; 2]) -> std::io::Result<()> {
    let mut header = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    // SAFETY: capset with a version-3 header and two data entries
    if unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Effective = permitted.
fn reset_effective() -> std::io::Result<()> {
    let mut header = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget with a version-3 header and two data entries
    if unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    for d in &mut data {
        d.effective = d.permitted;
    }
    capset(&data)
}

/// The bounding set, then effective, permitted and inheritable, then the
/// ambient set, as libcontainer's drop_privileges.
fn set_caps(caps: &CapSets) -> Result<()> {
    let last = fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(40)
        .min(63);
    for cap in 0..=last {
        if caps.bounding & (1 << cap) == 0 {
            // SAFETY: prctl with integer arguments only
            if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } < 0 {
                return Err(std::io::Error::last_os_error())
                    .context("dropping a bounding capability");
            }
        }
    }
    let inheritable = caps.inheritable.unwrap_or(0);
    let split = |m: u64| [m as u32, (m >> 32) as u32];
    let (e, p, i) = (
        split(caps.effective),
        split(caps.permitted),
        split(inheritable),
    );
    let data = [
        CapData {
            effective: e[0],
            permitted: p[0],
            inheritable: i[0],
        },
        CapData {
            effective: e[1],
            permitted: p[1],
            inheritable: i[1],
        },
    ];
    capset(&data).context("capset")?;
    // SAFETY: prctl with integer arguments only
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        );
        for cap in 0..=last {
            if caps.ambient.unwrap_or(0) & (1 << cap) != 0 {
                // an ambient capability the kernel refuses is left out, as
                // libcontainer does
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE,
                    cap as libc::c_ulong,
                    0,
                    0,
                );
            }
        }
    }
    Ok(())
}

/// The program and its arguments, ready for execve.
struct Exec {
    candidates: Vec<CString>,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

impl Exec {
    fn new(args: &[String], env: &[String]) -> Result<Exec> {
        let first = args.first().context("no command")?;
        let cstr = |s: &str| CString::new(s).map_err(|_| anyhow!("argument with a NUL byte"));
        let argv = args.iter().map(|a| cstr(a)).collect::<Result<Vec<_>>>()?;
        let envp = env.iter().map(|e| cstr(e)).collect::<Result<Vec<_>>>()?;
        let candidates = if first.contains('/') {
            vec![cstr(first)?]
        } else {
            let path = env
                .iter()
                .rev()
                .find_map(|e| e.strip_prefix("PATH="))
                .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
            path.split(':')
                .map(|d| if d.is_empty() { "." } else { d })
                .map(|d| cstr(&format!("{d}/{first}")))
                .collect::<Result<Vec<_>>>()?
        };
        Ok(Exec {
            candidates,
            argv,
            envp,
        })
    }

    /// execve of the first candidate that runs; returns only on failure.
    fn exec(self) -> anyhow::Error {
        let ptrs = |v: &[CString]| {
            let mut p: Vec<*const libc::c_char> = v.iter().map(|s| s.as_ptr()).collect();
            p.push(std::ptr::null());
            p
        };
        let (argv, envp) = (ptrs(&self.argv), ptrs(&self.envp));
        let mut denied = None;
        let mut last = None;
        for c in &self.candidates {
            // SAFETY: NUL-terminated arrays of C strings that outlive the call
            unsafe { libc::execve(c.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EACCES) {
                denied.get_or_insert(e);
            } else {
                last = Some(e);
            }
        }
        let arg0 = self.argv[0].to_string_lossy();
        // as runc words it: a path that fails says why, a name looked up
        // in PATH that is nowhere is "not found"
        match (denied, last) {
            (Some(e), _) => anyhow!("exec: {arg0:?}: {e}"),
            (None, Some(e)) if self.candidates.len() == 1 => anyhow!("exec: {arg0:?}: {e}"),
            _ => anyhow!("exec: {arg0:?}: executable file not found in $PATH"),
        }
    }
}

/// Builds the plan from the container's spec; None when the container
/// needs what only libcontainer does.
pub fn plan(
    spec: &oci_spec::runtime::Spec,
    cgroup_procs: Vec<PathBuf>,
    seccomp: Option<PathBuf>,
) -> Option<ExecPlan> {
    let linux = spec.linux().as_ref()?;
    if linux.personality().is_some() || linux.time_offsets().is_some() {
        return None;
    }
    let mut namespaces = Vec::new();
    // libcontainer's tenant order: the pid namespace takes effect at fork
    for name in ["ipc", "uts", "net", "pid", "cgroup", "time", "mnt"] {
        let Ok(typ) = oci_spec::runtime::LinuxNamespaceType::try_from(name) else {
            continue;
        };
        let declared = linux.namespaces().iter().flatten().any(|n| n.typ() == typ);
        if declared {
            namespaces.push(name.to_string());
        }
    }
    if linux
        .namespaces()
        .iter()
        .flatten()
        .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User)
    {
        return None;
    }
    if linux.seccomp().is_some() && seccomp.is_none() {
        return None;
    }
    let process = spec.process().as_ref()?;
    let names = |s: &Option<std::collections::HashSet<oci_spec::runtime::Capability>>| {
        // serde's names are the kernel's (Display drops the CAP_ prefix)
        let names: Vec<String> = s
            .iter()
            .flatten()
            .filter_map(|c| serde_json::to_value(c).ok()?.as_str().map(String::from))
            .collect();
        cap_mask(names)
    };
    let caps = match process.capabilities() {
        Some(c) => CapSets {
            bounding: names(c.bounding()).ok()?,
            effective: names(c.effective()).ok()?,
            permitted: names(c.permitted()).ok()?,
            inheritable: match c.inheritable() {
                Some(_) => Some(names(c.inheritable()).ok()?),
                None => None,
            },
            ambient: match c.inheritable() {
                Some(_) => Some(names(c.ambient()).ok()?),
                None => None,
            },
        },
        None => CapSets::default(),
    };
    Some(ExecPlan {
        namespaces,
        cgroup_procs,
        caps,
        no_new_privileges: process.no_new_privileges(),
        seccomp,
        env: process.env().clone().unwrap_or_default(),
    })
}

/// `cgroup.procs` of the cgroup at `path`, in each hierarchy libcontainer
/// puts the container in (the v1 ones, else the unified one).
pub fn cgroup_procs(path: &str) -> Vec<PathBuf> {
    cgroup_dirs(path)
        .into_iter()
        .map(|d| d.join("cgroup.procs"))
        .collect()
}

/// The directories of the cgroup at `path`, one per hierarchy
/// libcontainer's cgroup manager uses: every v1 one that holds a
/// container controller, else the unified one.
pub(crate) fn cgroup_dirs(path: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for (_, d) in berth_cgroups::v1_directories(path) {
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    if dirs.is_empty()
        && let Some(u) = unified_mount()
    {
        dirs.push(u.join(path.trim_start_matches('/')));
    }
    dirs
}

fn unified_mount() -> Option<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        let sep = f.iter().position(|x| *x == "-")?;
        if f.get(sep + 1) != Some(&"cgroup2") {
            return None;
        }
        f.get(4).map(PathBuf::from)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names_map_to_their_numbers() {
        assert_eq!(cap_mask(["CAP_CHOWN"]).unwrap(), 1);
        assert_eq!(
            cap_mask(["sys_admin", "CAP_NET_ADMIN"]).unwrap(),
            (1 << 21) | (1 << 12)
        );
        assert_eq!(cap_mask(["CAP_CHECKPOINT_RESTORE"]).unwrap(), 1 << 40);
        assert!(cap_mask(["CAP_NOPE"]).is_err());
        // Docker's default set, as /proc/PID/status shows it
        let default = [
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_FSETID",
            "CAP_FOWNER",
            "CAP_MKNOD",
            "CAP_NET_RAW",
            "CAP_SETGID",
            "CAP_SETUID",
            "CAP_SETFCAP",
            "CAP_SETPCAP",
            "CAP_NET_BIND_SERVICE",
            "CAP_SYS_CHROOT",
            "CAP_KILL",
            "CAP_AUDIT_WRITE",
        ];
        assert_eq!(cap_mask(default).unwrap(), 0xa80425fb);
    }

    #[test]
    fn oci_capability_names_are_the_kernels() {
        use oci_spec::runtime::Capability;
        for (cap, bit) in [
            (Capability::SysAdmin, 21),
            (Capability::AuditRead, 37),
            (Capability::Setpcap, 8),
        ] {
            let name = serde_json::to_value(cap).unwrap();
            assert_eq!(cap_mask([name.as_str().unwrap()]).unwrap(), 1 << bit);
            assert_eq!(cap_mask([cap.to_string()]).unwrap(), 1 << bit);
        }
    }

    #[test]
    fn added_capabilities_reach_ambient_only_with_an_inheritable_set() {
        let base = CapSets {
            bounding: 1,
            effective: 1,
            permitted: 1,
            inheritable: None,
            ambient: None,
        };
        let added = base.with_added(4);
        assert_eq!(
            (added.bounding, added.effective, added.permitted),
            (5, 5, 5)
        );
        assert_eq!((added.inheritable, added.ambient), (None, None));
        let with_inh = CapSets {
            inheritable: Some(0),
            ambient: Some(0),
            ..base
        };
        assert_eq!(with_inh.with_added(4).ambient, Some(4));
    }

    #[test]
    fn the_exec_env_overrides_the_containers() {
        let c = ["PATH=/bin".to_string(), "A=1".into(), "HOSTNAME=h".into()];
        let e = ["A=2".to_string(), "B=3".into(), "B=4".into()];
        assert_eq!(merge_env(&c, &e), ["PATH=/bin", "HOSTNAME=h", "A=2", "B=4"]);
    }

    #[test]
    fn home_comes_from_passwd() {
        let p = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n";
        assert_eq!(home_of(p, 65534).as_deref(), Some("/home"));
        assert_eq!(home_of(p, 0).as_deref(), Some("/root"));
        assert_eq!(home_of(p, 7), None);
    }

    #[test]
    fn commands_are_looked_up_in_the_exec_path() {
        let e = Exec::new(&["ls".into(), "-l".into()], &["PATH=/a::/b".into()]).unwrap();
        let c: Vec<_> = e
            .candidates
            .iter()
            .map(|c| c.to_str().unwrap().to_string())
            .collect();
        assert_eq!(c, ["/a/ls", "./ls", "/b/ls"]);
        let e = Exec::new(&["/bin/ls".into()], &[]).unwrap();
        assert_eq!(e.candidates.len(), 1);
    }

    #[test]
    fn a_plan_needs_what_only_libcontainer_does_left_out() {
        use oci_spec::runtime::{LinuxNamespaceBuilder, LinuxNamespaceType, Spec};
        let mut spec = Spec::default();
        let p = plan(&spec, vec![], None).expect("the default spec has a plan");
        assert!(p.namespaces.contains(&"mnt".to_string()));
        assert_eq!(p.namespaces.last().map(String::as_str), Some("mnt"));
        // the default spec carries no seccomp profile, but a profile
        // without a cached program cannot be planned
        if let Some(l) = spec.linux_mut() {
            let mut ns = l.namespaces().clone().unwrap_or_default();
            ns.push(
                LinuxNamespaceBuilder::default()
                    .typ(LinuxNamespaceType::User)
                    .build()
                    .unwrap(),
            );
            l.set_namespaces(Some(ns));
        }
        assert!(plan(&spec, vec![], None).is_none());
    }
}
