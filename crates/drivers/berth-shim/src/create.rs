//! Creating a container and joining it, the shim's parts that need
//! libcontainer. The steady state (waiting, logging, serving) is in
//! `server` and runs in the small `berth-shim` binary.

use std::fs::{self, File};
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use libcontainer::container::Container;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use nix::fcntl::OFlag;
use nix::unistd::pipe2;
use oci_spec::runtime::Spec;

use crate::protocol::READY_OK;
use crate::server::{
    ExecHelperSpec, Fds, Lifecycle, Pipes, STEADY_BINARY, ShimArgs, Steady, console_socket_path,
    detach_stdout, serve,
};

/// Runs the shim to completion. The first line on stdout tells the daemon
/// whether the container was created ("ok <pid>") or why not ("err ...").
///
/// Creating needs libcontainer, which is most of this big binary; waiting
/// for the container does not. Once the container exists the shim replaces
/// itself with the small `berth-shim` binary installed beside this one,
/// handing over the container's stdio, its socket and its child (a subreaper
/// keeps its children and that role across execve). Without that binary it
/// serves from here, which costs a few MiB more per container.
pub fn run(args: ShimArgs) -> Result<()> {
    match create(&args) {
        Ok((container, pid, pipes, listener)) => {
            println!("{READY_OK} {pid}");
            let _ = std::io::stdout().flush();
            detach_stdout();
            let berth = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
            let cgroup = cgroup_of(&container);
            let exec_plan = exec_plan(&args, cgroup.as_deref());
            let steady = Steady {
                args,
                pid,
                cgroup,
                berth: berth.clone(),
                fds: Fds::default(),
                exec_plan,
            };
            let small = berth.with_file_name(STEADY_BINARY);
            let steady = if small.is_file() {
                let err = exec_steady(&small, steady, &pipes, &listener);
                tracing::warn!(error = %err, binary = %small.display(), "serving from the big binary");
                err.steady
            } else {
                steady
            };
            serve(steady, pipes, listener, &mut ContainerLifecycle(container))
        }
        Err(e) => {
            println!("err {e:#}");
            let _ = std::io::stdout().flush();
            Err(e)
        }
    }
}

/// Why handing over failed, with what to serve from here instead.
struct ExecFailed {
    steady: Steady,
    error: std::io::Error,
}

impl std::fmt::Display for ExecFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

/// Replaces this process with the small shim; returns only on failure.
fn exec_steady(
    small: &Path,
    mut steady: Steady,
    pipes: &Pipes,
    listener: &UnixListener,
) -> ExecFailed {
    use std::os::unix::process::CommandExt;
    steady.fds = Fds {
        stdout: pipes.stdout.as_raw_fd(),
        stderr: pipes.stderr.as_ref().map(|f| f.as_raw_fd()),
        stdin: pipes.stdin.as_ref().map(|f| f.as_raw_fd()),
        tty_master: pipes.tty_master.as_ref().map(|f| f.as_raw_fd()),
        listener: listener.as_raw_fd(),
    };
    let fail = |steady: Steady, error: std::io::Error| ExecFailed { steady, error };
    for fd in steady.fds.all() {
        // SAFETY: clearing close-on-exec on descriptors this process owns
        if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } < 0 {
            return fail(steady, std::io::Error::last_os_error());
        }
    }
    let json = match serde_json::to_string(&steady) {
        Ok(j) => j,
        Err(e) => return fail(steady, std::io::Error::other(e)),
    };
    let error = std::process::Command::new(small).arg(json).exec();
    for fd in steady.fds.all() {
        // SAFETY: as above, restoring the flag
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    steady.fds = Fds::default();
    fail(steady, error)
}

/// What an exec in this container needs, for `berth-shim exec`; None
/// leaves execs to libcontainer (`berth shim-exec`).
fn exec_plan(args: &ShimArgs, cgroup: Option<&str>) -> Option<crate::join::ExecPlan> {
    let spec = Spec::load(args.bundle.join("config.json")).ok()?;
    let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(profile) if crate::seccomp::cacheable(profile) => {
            let dir = seccomp_cache_dir(&args.state_dir.join("runtime"));
            // compiled at create unless libcontainer loaded it itself
            crate::seccomp::program(&dir, profile).ok()?;
            Some(crate::seccomp::cache_path(&dir, profile).ok()?).filter(|p| p.is_file())
        }
        Some(_) => return None,
        None => None,
    };
    let procs = crate::join::cgroup_procs(cgroup?);
    crate::join::plan(&spec, procs, seccomp)
}

/// The container's cgroup, read before libcontainer removes it at the end.
fn cgroup_of(container: &Container) -> Option<String> {
    let spec = Spec::load(container.bundle().join("config.json")).ok()?;
    let path = spec.linux().as_ref()?.cgroups_path().clone()?;
    Some(path.to_string_lossy().into_owned())
}

/// Starts and removes the container through libcontainer in this process.
struct ContainerLifecycle(Container);

impl Lifecycle for ContainerLifecycle {
    fn start(&mut self) -> Result<()> {
        self.0.start().map_err(|e| anyhow!("{e}"))
    }

    fn delete(&mut self) -> Result<()> {
        self.0.delete(true).map_err(|e| anyhow!("{e}"))
    }
}

/// `berth shim-start ROOT ID` and `berth shim-delete ROOT ID`: what the
/// small shim cannot do without libcontainer. Prints the error, if any.
pub fn lifecycle_helper(action: &str, root: &Path, id: &str) -> i32 {
    let result = Container::load(root.join(id))
        .map_err(|e| anyhow!("loading container state: {e}"))
        .and_then(|c| {
            let mut c = ContainerLifecycle(c);
            match action {
                "start" => c.start(),
                _ => c.delete(),
            }
        });
    match result {
        Ok(()) => 0,
        Err(e) => {
            println!("{e:#}");
            1
        }
    }
}

/// libcontainer compiles the container's seccomp profile with libseccomp
/// in the container's init at every start (~6 ms of CPU). Instead the
/// program comes from the cache and the executor loads it right before
/// exec: for the build, config.json is rewritten without the profile and
/// put back (`restore_spec`) once the container exists.
///
/// Without no_new_privileges, loading a filter needs CAP_SYS_ADMIN, which
/// is why libcontainer loads before it drops capabilities. The rewritten
/// spec lends CAP_SYS_ADMIN (effective and permitted, never bounding,
/// inheritable or ambient) and the executor takes it back right after the
/// load; every system call in between is one the filter allowed already
/// under libcontainer, which made them after its load. Specs whose
/// capability sets do not fit that pattern stay with libcontainer.
/// Returns the executor's part and the spec as the daemon wrote it.
fn lend_seccomp(bundle: &Path, cache: &Path) -> Result<Option<(InitSeccomp, Vec<u8>)>> {
    use oci_spec::runtime::Capability;
    let path = bundle.join("config.json");
    let original = fs::read(&path).context("reading config.json")?;
    let mut spec: Spec = serde_json::from_slice(&original).context("parsing config.json")?;
    let Some(profile) = spec.linux().as_ref().and_then(|l| l.seccomp().clone()) else {
        return Ok(None);
    };
    if !crate::seccomp::cacheable(&profile) {
        return Ok(None);
    }
    let mut process = spec.process().clone().context("spec without process")?;
    let nnp = process.no_new_privileges() == Some(true);
    let mut drop_sys_admin = false;
    if let (false, Some(mut caps)) = (nnp, process.capabilities().clone()) {
        let has = |set: &Option<std::collections::HashSet<Capability>>| {
            set.as_ref().map(|s| s.contains(&Capability::SysAdmin))
        };
        match (
            has(caps.effective()),
            has(caps.permitted()),
            has(caps.ambient()),
        ) {
            (Some(true), Some(true), _) => {}
            (Some(false), Some(false), None | Some(false)) => {
                let lend = |set: &Option<std::collections::HashSet<Capability>>| {
                    let mut set = set.clone().unwrap_or_default();
                    set.insert(Capability::SysAdmin);
                    Some(set)
                };
                caps.set_effective(lend(caps.effective()));
                caps.set_permitted(lend(caps.permitted()));
                process.set_capabilities(Some(caps));
                drop_sys_admin = true;
            }
            _ => return Ok(None),
        }
    }
    let program = crate::seccomp::program(cache, &profile)?;
    spec.set_process(Some(process));
    if let Some(linux) = spec.linux_mut() {
        linux.set_seccomp(None);
    }
    write_atomic(&path, &serde_json::to_vec(&spec)?)?;
    Ok(Some((
        InitSeccomp {
            program,
            drop_sys_admin,
        },
        original,
    )))
}

fn restore_spec(bundle: &Path, original: &[u8]) -> Result<()> {
    write_atomic(&bundle.join("config.json"), original).context("restoring config.json")
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path)?;
    Ok(())
}

/// Whether the bundle asks for a terminal, and its first size.
fn terminal_of(bundle: &Path) -> Result<(bool, Option<(u16, u16)>)> {
    let spec = Spec::load(bundle.join("config.json")).map_err(|e| anyhow!("loading spec: {e}"))?;
    let p = spec.process().as_ref();
    let tty = p.and_then(|p| p.terminal()).unwrap_or(false);
    let size = p
        .and_then(|p| {
            p.console_size()
                .as_ref()
                .map(|b| (b.height() as u16, b.width() as u16))
        })
        .filter(|(h, w)| *h > 0 && *w > 0);
    Ok((tty, size))
}

fn create(args: &ShimArgs) -> Result<(Container, i32, Pipes, UnixListener)> {
    // orphans of the container (its init after libcontainer's intermediate
    // process exits) are re-parented to us so that we can reap them
    // SAFETY: prctl with integer arguments only
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let runtime_root = args.state_dir.join("runtime");
    fs::create_dir_all(&runtime_root)?;
    let _ = fs::remove_file(args.state_dir.join("exit.json"));

    let (tty, size) = terminal_of(&args.bundle)?;
    let lent = lend_seccomp(&args.bundle, &seccomp_cache_dir(&runtime_root));
    let (init_seccomp, original) = match lent {
        Ok(Some((init, original))) => (Some(init), Some(original)),
        Ok(None) => (None, None),
        Err(e) => {
            tracing::debug!(error = %format!("{e:#}"), "seccomp left to libcontainer");
            (None, None)
        }
    };
    let executor = ResetSignalsExecutor {
        seccomp: None,
        init_seccomp,
    };
    let created = if tty {
        create_with_terminal(args, &runtime_root, size, executor)
    } else {
        create_with_pipes(args, &runtime_root, executor)
    };
    // libcontainer read the spec at the start of the build: everything
    // after (exec, the helpers) reads the one the daemon wrote
    if let Some(original) = original {
        restore_spec(&args.bundle, &original)?;
    }
    let (container, pipes) = created?;
    let pid = container
        .pid()
        .map(|p| p.as_raw())
        .context("container has no init process")?;
    let _ = fs::remove_file(&args.socket);
    let listener = UnixListener::bind(&args.socket)
        .with_context(|| format!("binding {}", args.socket.display()))?;
    Ok((container, pid, pipes, listener))
}

/// Without a terminal: pipes for stdout and stderr (and stdin with `-i`).
fn create_with_pipes(
    args: &ShimArgs,
    runtime_root: &Path,
    executor: ResetSignalsExecutor,
) -> Result<(Container, Pipes)> {
    let (out_r, out_w) = pipe2(OFlag::O_CLOEXEC)?;
    let (err_r, err_w) = pipe2(OFlag::O_CLOEXEC)?;
    let (stdin_for_container, stdin_writer): (OwnedFd, Option<File>) = if args.stdin {
        let (r, w) = pipe2(OFlag::O_CLOEXEC)?;
        (r, Some(File::from(w)))
    } else {
        (File::open("/dev/null")?.into(), None)
    };

    let container = ContainerBuilder::new(args.id.clone(), SyscallType::default())
        .with_root_path(runtime_root)
        .map_err(|e| anyhow!("{e}"))?
        .with_executor(executor)
        .with_stdin(stdin_for_container)
        .with_stdout(out_w)
        .with_stderr(err_w)
        .as_init(&args.bundle)
        .with_systemd(false)
        .with_detach(true)
        .build()
        .map_err(|e| anyhow!("{e}"))?;
    Ok((
        container,
        Pipes {
            stdout: File::from(out_r),
            stderr: Some(File::from(err_r)),
            stdin: stdin_writer,
            tty_master: None,
        },
    ))
}

/// `-t`: the container's stdio is a pty libcontainer makes inside it.
fn create_with_terminal(
    args: &ShimArgs,
    runtime_root: &Path,
    size: Option<(u16, u16)>,
    executor: ResetSignalsExecutor,
) -> Result<(Container, Pipes)> {
    let console_path = console_socket_path(&args.socket, "tty");
    let console = crate::tty::console_listener(&console_path)?;
    let built = ContainerBuilder::new(args.id.clone(), SyscallType::default())
        .with_root_path(runtime_root)
        .map_err(|e| anyhow!("{e}"))?
        .with_executor(executor)
        .with_console_socket(Some(&console_path))
        .as_init(&args.bundle)
        .with_systemd(false)
        .with_detach(true)
        .build()
        .map_err(|e| anyhow!("{e}"));
    let container = match built {
        Ok(c) => c,
        Err(e) => {
            let _ = fs::remove_file(&console_path);
            return Err(e);
        }
    };
    let master = crate::tty::receive_master(&console, Duration::from_secs(10));
    let _ = fs::remove_file(&console_path);
    let master = master?;
    if let Some((h, w)) = size {
        let _ = crate::tty::set_size(&master, h, w);
    }
    let stdin = if args.stdin {
        Some(File::from(master.try_clone()?))
    } else {
        None
    };
    Ok((
        container,
        Pipes {
            stdout: File::from(master.try_clone()?),
            stderr: None,
            stdin,
            tty_master: Some(master),
        },
    ))
}

/// Runs the container's process with default signal dispositions. Rust
/// programs (this shim included) start with SIGPIPE ignored, and ignored
/// signals survive exec: without this, `yes | head` in a container would
/// spin forever instead of dying of SIGPIPE.
///
/// For exec'd processes it also loads the container's seccomp filter:
/// libcontainer's tenant builder drops it. Caps are already dropped here, so
/// the load needs no_new_privs: exec sessions cannot gain privileges through
/// setuid binaries (stricter than Docker, never looser).
#[derive(Clone, Default)]
struct ResetSignalsExecutor {
    seccomp: Option<ExecSeccomp>,
    init_seccomp: Option<InitSeccomp>,
}

/// The container's filter, loaded here rather than by libcontainer (see
/// `InitSpec`): the cached program, and whether CAP_SYS_ADMIN was lent for
/// the load and must be given back before the container's process runs.
#[derive(Clone)]
struct InitSeccomp {
    program: Vec<u8>,
    drop_sys_admin: bool,
}

/// The filter of an exec'd process: the cached program when a program
/// alone does it, else the profile for libcontainer to compile.
#[derive(Clone)]
enum ExecSeccomp {
    Program(Vec<u8>),
    Profile(oci_spec::runtime::LinuxSeccomp),
}

impl Executor for ResetSignalsExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        reset_signal_dispositions();
        if let Some(init) = &self.init_seccomp {
            crate::seccomp::load(&init.program)
                .map_err(|e| ExecutorError::Other(format!("loading seccomp filter: {e}")))?;
            if init.drop_sys_admin {
                drop_sys_admin()
                    .map_err(|e| ExecutorError::Other(format!("dropping CAP_SYS_ADMIN: {e}")))?;
            }
        }
        if let Some(seccomp) = &self.seccomp {
            nix::sys::prctl::set_no_new_privs()
                .map_err(|e| ExecutorError::Other(format!("setting no_new_privs: {e}")))?;
            let loaded = match seccomp {
                ExecSeccomp::Program(p) => crate::seccomp::load(p).map_err(|e| e.to_string()),
                ExecSeccomp::Profile(p) => libcontainer::seccomp::initialize_seccomp(p)
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            };
            loaded.map_err(|e| ExecutorError::Other(format!("loading seccomp filter: {e}")))?;
        }
        DefaultExecutor {}.exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        DefaultExecutor {}.validate(spec)
    }
}

/// capability(7)'s number of CAP_SYS_ADMIN
const CAP_SYS_ADMIN: u32 = 21;

/// Takes CAP_SYS_ADMIN out of the effective and permitted sets (the
/// bounding set never had it back), leaving every other capability as
/// libcontainer set it.
fn drop_sys_admin() -> std::io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget/capset with a version-3 header and two data entries
    unsafe {
        if libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let bit = 1u32 << CAP_SYS_ADMIN;
        data[0].effective &= !bit;
        data[0].permitted &= !bit;
        if libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The kernel's struct sigaction for x86_64 rt_sigaction.
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// Sets every catchable signal (glibc's reserved 32 and 33 included, which
/// its signal() refuses) back to SIG_DFL through the raw system call.
pub(crate) fn reset_signal_dispositions() {
    let dfl = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction with a valid struct and no old-action pointer,
        // in the single-threaded container init right before exec
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &dfl as *const KernelSigaction,
                std::ptr::null_mut::<u8>(),
                8usize,
            )
        };
    }
}

/// `berth shim-exec SPEC`: a single-threaded helper that joins the
/// container with libcontainer's tenant builder. Forking from the threaded
/// shim could inherit a held malloc lock; this process has one thread. Its
/// stdio are the exec's pipes; it reports "ok <pid>" or "err <msg>" on fd 3.
pub fn exec_helper(spec_json: &str) -> i32 {
    use std::os::fd::FromRawFd;
    // SAFETY: the shim opened fd 3 for us before exec
    let mut report = unsafe { File::from_raw_fd(3) };
    // SAFETY: marking our own descriptor close-on-exec
    unsafe { libc::fcntl(3, libc::F_SETFD, libc::FD_CLOEXEC) };
    let result = (|| -> Result<i32> {
        let spec: ExecHelperSpec = serde_json::from_str(spec_json)?;
        let env: std::collections::HashMap<String, String> = spec
            .env
            .iter()
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (e.clone(), String::new()),
            })
            .collect();
        let bundle = libcontainer::container::Container::load(spec.root.join(&spec.id))
            .map_err(|e| anyhow!("loading container state: {e}"))?
            .bundle()
            .to_path_buf();
        let cspec = Spec::load(bundle.join("config.json"))
            .map_err(|e| anyhow!("loading container spec: {e}"))?;
        let seccomp = cspec
            .linux()
            .as_ref()
            .and_then(|l| l.seccomp().clone())
            .map(|profile| exec_seccomp(&spec.root, profile));
        // a terminal needs a whole process.json: the tenant builder sets
        // `terminal` from nothing else
        let process_file = match &spec.console_socket {
            Some(_) => Some(write_tty_process(&spec, &cspec)?),
            None => None,
        };
        let pid = ContainerBuilder::new(spec.id.clone(), SyscallType::default())
            .with_root_path(&spec.root)
            .map_err(|e| anyhow!("{e}"))?
            .with_executor(ResetSignalsExecutor {
                seccomp,
                init_seccomp: None,
            })
            .with_console_socket(spec.console_socket.as_ref())
            .as_tenant()
            .with_process(process_file.as_ref())
            .with_capabilities(spec.add_caps.clone())
            .with_container_args(spec.args.clone())
            .with_env(env)
            .with_cwd(Some(spec.cwd.clone()))
            .with_user(Some(spec.uid))
            .with_group(Some(spec.gid))
            .with_additional_gids(spec.additional_gids.clone())
            .with_detach(true)
            .build()
            .map_err(|e| anyhow!("{e}"));
        if let Some(f) = &process_file {
            let _ = fs::remove_file(f);
        }
        Ok(pid?.as_raw())
    })();
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

/// The cached program of the container's profile. The cache is shared by
/// all containers: `root` is `<exec-root>/containers/<id>/runtime`, the
/// cache `<exec-root>/seccomp`. A profile that is not cacheable, or a
/// cache that fails, leaves the compiling to libcontainer.
fn exec_seccomp(root: &Path, profile: oci_spec::runtime::LinuxSeccomp) -> ExecSeccomp {
    if !crate::seccomp::cacheable(&profile) {
        return ExecSeccomp::Profile(profile);
    }
    let dir = seccomp_cache_dir(root);
    match crate::seccomp::program(&dir, &profile) {
        Ok(p) => ExecSeccomp::Program(p),
        Err(_) => ExecSeccomp::Profile(profile),
    }
}

fn seccomp_cache_dir(runtime_root: &Path) -> PathBuf {
    match runtime_root.ancestors().nth(3) {
        Some(exec_root) if !exec_root.as_os_str().is_empty() => exec_root.join("seccomp"),
        _ => runtime_root.join("seccomp"),
    }
}

/// The OCI process of an exec with a terminal, with the container's
/// capabilities and no_new_privileges, as the tenant builder would make it.
fn write_tty_process(spec: &ExecHelperSpec, cspec: &Spec) -> Result<PathBuf> {
    use oci_spec::runtime::{BoxBuilder, ProcessBuilder, UserBuilder};
    let cproc = cspec.process().clone().unwrap_or_default();
    let mut b = ProcessBuilder::default()
        .terminal(true)
        .args(spec.args.clone())
        .env(spec.env.clone())
        .cwd(spec.cwd.clone())
        .user(
            UserBuilder::default()
                .uid(spec.uid)
                .gid(spec.gid)
                .additional_gids(spec.additional_gids.clone())
                .build()?,
        );
    if let Some(caps) = cproc.capabilities() {
        let mut caps = caps.clone();
        let extra: std::collections::HashSet<oci_spec::runtime::Capability> = spec
            .add_caps
            .iter()
            .filter_map(|c| serde_json::from_value(serde_json::Value::String(c.clone())).ok())
            .collect();
        if !extra.is_empty() {
            let union = |set: &Option<std::collections::HashSet<oci_spec::runtime::Capability>>| {
                Some(
                    set.clone()
                        .unwrap_or_default()
                        .union(&extra)
                        .copied()
                        .collect(),
                )
            };
            caps.set_bounding(union(caps.bounding()));
            caps.set_effective(union(caps.effective()));
            caps.set_permitted(union(caps.permitted()));
        }
        b = b.capabilities(caps);
    }
    if let Some(nnp) = cproc.no_new_privileges() {
        b = b.no_new_privileges(nnp);
    }
    if let Some((h, w)) = spec.console_size {
        b = b.console_size(
            BoxBuilder::default()
                .height(h as u64)
                .width(w as u64)
                .build()?,
        );
    }
    let process = b.build()?;
    let path = spec.root.join(format!("exec-{}.json", std::process::id()));
    fs::write(&path, serde_json::to_vec(&process)?)?;
    Ok(path)
}
