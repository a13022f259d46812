use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};
use nix::fcntl::OFlag;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{Pid, pipe2};

use crate::protocol::{
    ExitStatus, READY_OK, Request, Response, STREAM_EXIT, STREAM_STDERR, STREAM_STDOUT,
    frame_header,
};
use berth_logdriver::jsonlog::{self, LineSplitter};

/// How long a created container waits for its start before the shim gives up.
const START_TIMEOUT: Duration = Duration::from_secs(300);
const SMALL_STACK: usize = 128 * 1024;
/// The threads that run the logging driver: rotation and the gelf and
/// local drivers compress with flate2, whose unoptimised build alone
/// takes most of 128 KiB of stack. Only the pages a thread touches cost
/// memory, so the larger reservation costs an idle shim nothing.
const DRIVER_STACK: usize = 512 * 1024;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ShimArgs {
    pub id: String,
    /// OCI bundle: config.json and the mounted rootfs
    pub bundle: PathBuf,
    /// where exit.json and libcontainer's state live
    pub state_dir: PathBuf,
    pub socket: PathBuf,
    /// the logging driver and its options
    pub log: berth_logdriver::Config,
    /// give the container a stdin pipe that attach clients can write to
    pub stdin: bool,
}

struct Attacher {
    stream: UnixStream,
    stdout: bool,
    stderr: bool,
}

struct Shared {
    pid: i32,
    attachers: Mutex<Vec<Attacher>>,
    exit: Mutex<Option<ExitStatus>>,
    exited: Condvar,
    waiters: AtomicUsize,
    stdin: Mutex<Option<File>>,
    start: Mutex<Option<mpsc::Sender<mpsc::Sender<Response>>>>,
    log: Mutex<Option<Box<dyn berth_logdriver::Logger>>>,
    /// exit codes of children other than the container's init (exec
    /// processes, exec helpers), by pid
    child_exits: Mutex<std::collections::HashMap<i32, i32>>,
    child_exited: Condvar,
    /// set once the init exited and the remaining children were reaped
    reaping_done: std::sync::atomic::AtomicBool,
    runtime_root: PathBuf,
    id: String,
    /// the shim's socket; console sockets for exec terminals sit beside it
    socket: PathBuf,
    /// attach clients get raw bytes, not frames, from a terminal
    tty: bool,
    tty_master: Option<OwnedFd>,
    /// pty masters of exec processes started with a terminal, by pid
    exec_masters: Mutex<std::collections::HashMap<i32, OwnedFd>>,
    exec_seq: AtomicUsize,
    /// the big binary, which runs exec helpers
    berth: PathBuf,
    exec_plan: Option<crate::join::ExecPlan>,
    quiet: berth_resident::Quiet,
}

pub(crate) struct Pipes {
    pub(crate) stdout: File,
    /// none on a terminal, where both streams are one
    pub(crate) stderr: Option<File>,
    pub(crate) stdin: Option<File>,
    /// the pty master of a `-t` container, kept for resizing
    pub(crate) tty_master: Option<OwnedFd>,
}

/// The file name of the small steady-state shim, beside `berth`.
pub(crate) const STEADY_BINARY: &str = "berth-shim";

/// What the steady state needs besides its descriptors: handed from the
/// creating shim to the small binary as JSON on its command line.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Steady {
    pub(crate) args: ShimArgs,
    /// the container's init
    pub(crate) pid: i32,
    /// its cgroup path, to tell an OOM kill at exit
    pub(crate) cgroup: Option<String>,
    /// the big binary, for the helpers that need libcontainer
    pub(crate) berth: PathBuf,
    pub(crate) fds: Fds,
    /// what `berth-shim exec` needs; none leaves execs to libcontainer
    #[serde(default)]
    pub(crate) exec_plan: Option<crate::join::ExecPlan>,
}

/// Descriptor numbers inherited across execve (-1: none).
#[derive(Default, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub(crate) struct Fds {
    pub(crate) stdout: i32,
    pub(crate) stderr: Option<i32>,
    pub(crate) stdin: Option<i32>,
    pub(crate) tty_master: Option<i32>,
    pub(crate) listener: i32,
}

impl Fds {
    pub(crate) fn all(&self) -> Vec<i32> {
        let mut v = vec![self.stdout, self.listener];
        v.extend(
            [self.stderr, self.stdin, self.tty_master]
                .into_iter()
                .flatten(),
        );
        v
    }
}

/// Starting and removing the container: libcontainer's work, done in
/// process by the big binary or through its helpers by the small one.
pub(crate) trait Lifecycle {
    fn start(&mut self) -> Result<()>;
    fn delete(&mut self) -> Result<()>;
}

/// The small binary's lifecycle: `berth shim-start|shim-delete ROOT ID`.
struct HelperLifecycle {
    berth: PathBuf,
    root: PathBuf,
    id: String,
}

impl HelperLifecycle {
    fn run(&self, action: &str) -> Result<()> {
        let out = std::process::Command::new(&self.berth)
            .arg(action)
            .arg(&self.root)
            .arg(&self.id)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .with_context(|| format!("running {}", self.berth.display()))?;
        if out.status.success() {
            return Ok(());
        }
        let msg = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if msg.is_empty() {
            anyhow::bail!("{action} failed: {}", out.status);
        }
        anyhow::bail!("{msg}")
    }
}

impl Lifecycle for HelperLifecycle {
    /// What libcontainer's start does for berth's specs (which have no
    /// hooks), done here: a helper of the big binary costs an exec of
    /// 40 MB and its start-up, some 3 ms of CPU. The helper remains for
    /// what this cannot reach.
    fn start(&mut self) -> Result<()> {
        let dir = self.root.join(&self.id);
        if dir.join("youki_config.json").is_file() && !has_hooks(&dir) {
            match notify_start(&dir) {
                Ok(()) => return mark_running(&dir),
                // nothing was sent: the helper can still do all of it
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).context("starting the container"),
            }
        }
        self.run("shim-start")
    }

    /// libcontainer's delete of a stopped container without poststop
    /// hooks, done here for the same reason as `start`.
    fn delete(&mut self) -> Result<()> {
        if delete_stopped(&self.root.join(&self.id))? {
            return Ok(());
        }
        self.run("shim-delete")
    }
}

/// Removes a stopped container's cgroup and libcontainer's state directory
/// as libcontainer's delete does: the processes left in each cgroup
/// directory are killed, the directory removed (retried while the kernel
/// still counts them), then the state. False when the container needs
/// more (hooks, systemd), which the helper does.
fn delete_stopped(dir: &Path) -> Result<bool> {
    if !dir.exists() {
        return Ok(true);
    }
    let read = |name: &str| -> Option<serde_json::Value> {
        serde_json::from_slice(&fs::read(dir.join(name)).ok()?).ok()
    };
    let (Some(config), Some(state)) = (read("youki_config.json"), read("state.json")) else {
        return Ok(false);
    };
    let poststop = config
        .get("hooks")
        .and_then(|h| h.get("poststop"))
        .and_then(|p| p.as_array())
        .is_some_and(|p| !p.is_empty());
    let systemd = state.get("useSystemd").and_then(|v| v.as_bool()) == Some(true);
    let Some(cgroup) = config.get("cgroup_path").and_then(|p| p.as_str()) else {
        return Ok(false);
    };
    if poststop || systemd {
        return Ok(false);
    }
    for d in crate::join::cgroup_dirs(cgroup) {
        remove_cgroup_dir(&d)?;
    }
    fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    Ok(true)
}

fn remove_cgroup_dir(d: &Path) -> Result<()> {
    if !d.exists() {
        return Ok(());
    }
    kill_cgroup(d)?;
    // a few tries within ~100 ms, as libcontainer
    let mut delay = Duration::from_millis(10);
    for attempt in 1..=4u32 {
        if fs::remove_dir(d).is_ok() {
            return Ok(());
        }
        thread::sleep(delay);
        delay = (delay * attempt).min(Duration::from_millis(100));
    }
    anyhow::bail!("could not delete {}", d.display())
}

/// SIGKILLs every process in the cgroup directory `d`.
fn kill_cgroup(d: &Path) -> Result<()> {
    let kill = d.join("cgroup.kill");
    if kill.exists() {
        fs::write(&kill, "1").with_context(|| format!("writing {}", kill.display()))?;
    } else {
        let procs = fs::read_to_string(d.join("cgroup.procs"))
            .with_context(|| format!("reading {}/cgroup.procs", d.display()))?;
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            // SAFETY: kill(2) on a pid the cgroup lists
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    Ok(())
}

/// Once the init process is gone, kills what is left of the container. A
/// container with a pid namespace of its own has nothing left (the kernel
/// killed the rest with its init); one sharing another's (a pod's, `--pid
/// container:`, `--pid host`) may have children that would outlive it and
/// hold its output open, as runc's delete knows.
fn kill_leftovers(cgroup_dirs: &[PathBuf]) {
    for d in cgroup_dirs {
        if d.exists()
            && let Err(e) = kill_cgroup(d)
        {
            tracing::warn!(error = %format!("{e:#}"), "killing what the container left");
        }
    }
}

/// Whether libcontainer's saved config names hooks (poststart ones would
/// run at start); an unreadable config counts as having some.
fn has_hooks(dir: &Path) -> bool {
    let Ok(raw) = fs::read(dir.join("youki_config.json")) else {
        return true;
    };
    match serde_json::from_slice::<serde_json::Value>(&raw) {
        Ok(v) => !v.get("hooks").is_none_or(|h| h.is_null()),
        Err(_) => true,
    }
}

/// Lets the container's init exec its process: libcontainer's init waits
/// for "start container" on `notify.sock` in the container's state
/// directory. The path goes through /proc/self/fd because socket paths are
/// limited to 108 bytes (libcontainer changes directory instead, which a
/// threaded process must not do).
fn notify_start(dir: &Path) -> std::io::Result<()> {
    let d = File::open(dir)?;
    let path = format!("/proc/self/fd/{}/notify.sock", d.as_raw_fd());
    let mut s = UnixStream::connect(&path).map_err(|e| match e.kind() {
        // no listener: the container is not waiting to start
        std::io::ErrorKind::ConnectionRefused => {
            std::io::Error::new(std::io::ErrorKind::NotFound, e)
        }
        _ => e,
    })?;
    s.write_all(b"start container")
}

/// Records the start in libcontainer's state.json, as its start does, so
/// that exec and delete see a running container.
fn mark_running(dir: &Path) -> Result<()> {
    let path = dir.join("state.json");
    let raw = fs::read(&path).context("reading the container's state")?;
    let mut state: serde_json::Value =
        serde_json::from_slice(&raw).context("parsing the container's state")?;
    state["status"] = serde_json::Value::from("running");
    let tmp = dir.join("state.json.tmp");
    fs::write(&tmp, serde_json::to_vec(&state)?)?;
    fs::rename(&tmp, &path).context("saving the container's state")?;
    Ok(())
}

/// The small `berth-shim` binary: takes over from the creating shim
/// (`create::run`) with the state in its one argument.
pub fn steady_main() -> i32 {
    use std::os::fd::FromRawFd;
    let Some(json) = std::env::args().nth(1) else {
        eprintln!("berth-shim: started by berth's shim, not by hand");
        return 2;
    };
    if json == "exec" {
        return match std::env::args().nth(2) {
            Some(spec) => crate::join::exec_main(&spec),
            None => 2,
        };
    }
    let steady: Steady = match serde_json::from_str(&json) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("berth-shim: bad state: {e}");
            return 2;
        }
    };
    let fds = steady.fds;
    // SAFETY: the creating shim handed these descriptors over open and
    // owned by nobody else; each is taken exactly once
    let (pipes, listener) = unsafe {
        (
            Pipes {
                stdout: File::from_raw_fd(fds.stdout),
                stderr: fds.stderr.map(|fd| File::from_raw_fd(fd)),
                stdin: fds.stdin.map(|fd| File::from_raw_fd(fd)),
                tty_master: fds.tty_master.map(|fd| OwnedFd::from_raw_fd(fd)),
            },
            UnixListener::from_raw_fd(fds.listener),
        )
    };
    for fd in fds.all() {
        // SAFETY: marking our own descriptors close-on-exec again, so that
        // helpers and exec'd processes do not inherit them
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    let mut lifecycle = HelperLifecycle {
        berth: steady.berth.clone(),
        root: steady.args.state_dir.join("runtime"),
        id: steady.args.id.clone(),
    };
    match serve(steady, pipes, listener, &mut lifecycle) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("shim: {e:#}");
            1
        }
    }
}

pub(crate) fn console_socket_path(socket: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}.{suffix}", socket.display()))
}

pub(crate) fn detach_stdout() {
    if let Ok(null) = OpenOptions::new().write(true).open("/dev/null") {
        // SAFETY: dup2 onto our own stdout
        unsafe { libc::dup2(null.as_raw_fd(), 1) };
    }
}

pub(crate) fn serve(
    steady: Steady,
    pipes: Pipes,
    listener: UnixListener,
    lifecycle: &mut dyn Lifecycle,
) -> Result<()> {
    let Steady {
        args,
        pid,
        cgroup,
        berth,
        exec_plan,
        ..
    } = steady;
    // a driver that cannot start fails the container's start, as in
    // dockerd; the shim stays to answer that
    let (log, log_error) = match berth_logdriver::open(&args.log) {
        Ok(l) => (l, None),
        Err(e) => (
            None,
            Some(format!("failed to initialize logging driver: {e:#}")),
        ),
    };
    let (start_tx, start_rx) = mpsc::channel::<mpsc::Sender<Response>>();
    let shared = Arc::new(Shared {
        pid,
        attachers: Mutex::new(Vec::new()),
        exit: Mutex::new(None),
        exited: Condvar::new(),
        waiters: AtomicUsize::new(0),
        stdin: Mutex::new(pipes.stdin),
        start: Mutex::new(Some(start_tx)),
        log: Mutex::new(log),
        child_exits: Mutex::new(std::collections::HashMap::new()),
        child_exited: Condvar::new(),
        reaping_done: std::sync::atomic::AtomicBool::new(false),
        runtime_root: args.state_dir.join("runtime"),
        id: args.id.clone(),
        socket: args.socket.clone(),
        tty: pipes.tty_master.is_some(),
        tty_master: pipes.tty_master,
        exec_masters: Mutex::new(std::collections::HashMap::new()),
        exec_seq: AtomicUsize::new(0),
        berth,
        exec_plan,
        quiet: berth_resident::Quiet::default(),
    });

    let (done_rx, expected_outputs) =
        spawn_io_threads(&shared, pipes.stdout, pipes.stderr, listener)?;

    // the socket path may be bound again by the container's next shim
    // before this one is done: only our own socket is ours to remove
    let bound = fs::metadata(&args.socket).map(|m| m.ino()).ok();
    // created: wait for the daemon to connect its attachers and say start
    let started = await_start(&start_rx, log_error, lifecycle, pid);

    let cgroup_dirs = cgroup
        .as_deref()
        .map(crate::join::cgroup_dirs)
        .unwrap_or_default();
    let cgroup = cgroup.map(|p| berth_cgroups::Cgroup::new(berth_cgroups::Mounts::discover(), &p));
    if started {
        // from here on the shim mostly waits: give back what creating the
        // container took
        berth_resident::trim();
        let sh = shared.clone();
        thread::Builder::new()
            .stack_size(SMALL_STACK)
            .spawn(move || sh.quiet.run())?;
    }
    let code = reap(&shared, pid);
    kill_leftovers(&cgroup_dirs);
    // the container's pid namespace is gone, so the pipes reach EOF; the
    // timeout only guards against a writer that escaped the namespace
    for _ in 0..expected_outputs {
        if done_rx.recv_timeout(Duration::from_secs(5)).is_err() {
            break;
        }
    }
    // the pid namespace is gone: collect what is left, so that execs still
    // waiting learn that their process died with the container
    reap_remaining(&shared);
    close_log(&shared);
    let status = ExitStatus {
        code,
        finished_at: jsonlog::now_rfc3339(),
        oom_killed: cgroup.is_some_and(|c| c.oom_kills() > 0),
        never_started: !started,
    };
    finish(&shared, &args, status, lifecycle, bound);
    Ok(())
}

/// Threads that copy the container's output to attachers and the log, and
/// one that accepts connections on the shim's socket. Returns the channel
/// each output thread signals on when its pipe ends, and their number.
fn spawn_io_threads(
    shared: &Arc<Shared>,
    stdout: fs::File,
    stderr: Option<fs::File>,
    listener: UnixListener,
) -> Result<(mpsc::Receiver<()>, usize)> {
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let outputs = [
        Some((stdout, STREAM_STDOUT)),
        stderr.map(|f| (f, STREAM_STDERR)),
    ];
    let expected_outputs = outputs.iter().flatten().count();
    for (file, stream) in outputs.into_iter().flatten() {
        let sh = shared.clone();
        let done = done_tx.clone();
        thread::Builder::new()
            .stack_size(DRIVER_STACK)
            .spawn(move || {
                copy_output(&sh, file, stream);
                let _ = done.send(());
            })?;
    }
    drop(done_tx);
    {
        let sh = shared.clone();
        thread::Builder::new()
            .stack_size(SMALL_STACK)
            .spawn(move || {
                for conn in listener.incoming().flatten() {
                    let sh = sh.clone();
                    let _ = thread::Builder::new()
                        .stack_size(SMALL_STACK)
                        .spawn(move || handle(&sh, conn));
                }
            })?;
    }
    Ok((done_rx, expected_outputs))
}

/// Waits for the daemon's start (its attachers are connected by then) and
/// starts the container; without a start in time, or if it fails, the
/// container's process is killed. Returns whether it started.
fn await_start(
    start_rx: &mpsc::Receiver<mpsc::Sender<Response>>,
    log_error: Option<String>,
    lifecycle: &mut dyn Lifecycle,
    pid: i32,
) -> bool {
    let started = match start_rx.recv_timeout(START_TIMEOUT) {
        Ok(reply) => {
            let res = match log_error {
                Some(e) => Err(anyhow::anyhow!(e)),
                None => lifecycle.start(),
            };
            let ok = res.is_ok();
            let _ = reply.send(match res {
                Ok(()) => Response {
                    pid: Some(pid),
                    ..Response::ok()
                },
                Err(e) => Response::err(format!("{e:#}")),
            });
            ok
        }
        Err(_) => false,
    };
    if !started {
        // SAFETY: signalling our own child
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    started
}

/// Closes the log driver: a buffering one delivers what it holds before
/// the exit is known, within dockerd's 10 s; a receiver that is gone must
/// not keep the exit from being recorded.
fn close_log(shared: &Arc<Shared>) {
    let sh = shared.clone();
    let (closed_tx, closed_rx) = mpsc::channel::<()>();
    let _ = thread::Builder::new()
        .stack_size(DRIVER_STACK)
        .spawn(move || {
            drop(sh.log.lock().unwrap_or_else(|p| p.into_inner()).take());
            let _ = closed_tx.send(());
        });
    if closed_rx.recv_timeout(Duration::from_secs(10)).is_err() {
        tracing::warn!("the log driver did not finish within 10s; what it holds is lost");
    }
}

/// Records the exit, tells waiters and attachers, removes the runtime's
/// state and, if it is still ours, the socket.
fn finish(
    shared: &Arc<Shared>,
    args: &ShimArgs,
    status: ExitStatus,
    lifecycle: &mut dyn Lifecycle,
    bound: Option<u64>,
) {
    let written = write_exit(&args.state_dir, &status);
    {
        *shared.exit.lock().unwrap_or_else(|p| p.into_inner()) = Some(status);
        shared.exited.notify_all();
    }
    // on disk only for a power loss, which the waiters need not wait for: a
    // daemon that dies before it records the exit reads the renamed file
    if let Err(e) = written.and_then(|f| Ok(f.sync_all()?)) {
        tracing::error!(error = %e, "recording exit status");
    }
    for a in shared
        .attachers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .drain(..)
    {
        let _ = a.stream.shutdown(std::net::Shutdown::Both);
    }
    if let Err(e) = lifecycle.delete() {
        tracing::warn!(error = %e, "cleaning up container runtime state");
    }
    // let connected waiters read their answer before the socket goes away
    for _ in 0..100 {
        if shared.waiters.load(Ordering::SeqCst) == 0 {
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    if bound.is_some() && fs::metadata(&args.socket).map(|m| m.ino()).ok() == bound {
        let _ = fs::remove_file(&args.socket);
    }
}

/// Reaps children until the container's init exits; returns its exit code
/// in Docker's convention (128 + signal when killed). Other children's exits
/// are recorded for the exec handlers.
fn reap(sh: &Shared, pid: i32) -> i32 {
    loop {
        let (p, code) = match waitpid(Pid::from_raw(-1), None) {
            Ok(WaitStatus::Exited(p, code)) => (p.as_raw(), code),
            Ok(WaitStatus::Signaled(p, sig, _)) => (p.as_raw(), 128 + sig as i32),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                tracing::error!(error = %e, "waiting for the container");
                return 255;
            }
        };
        if p == pid {
            return code;
        }
        record_child_exit(sh, p, code);
    }
}

fn record_child_exit(sh: &Shared, pid: i32, code: i32) {
    sh.child_exits
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(pid, code);
    sh.child_exited.notify_all();
}

fn reap_remaining(sh: &Shared) {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while std::time::Instant::now() < deadline {
        match waitpid(
            Pid::from_raw(-1),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        ) {
            Ok(WaitStatus::Exited(p, code)) => record_child_exit(sh, p.as_raw(), code),
            Ok(WaitStatus::Signaled(p, sig, _)) => {
                record_child_exit(sh, p.as_raw(), 128 + sig as i32)
            }
            Ok(WaitStatus::StillAlive) => thread::sleep(Duration::from_millis(10)),
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => break,
        }
    }
    sh.reaping_done.store(true, Ordering::SeqCst);
    sh.child_exited.notify_all();
}

/// Waits for a child's recorded exit; 137 when it died with the container
/// without being seen.
fn wait_child(sh: &Shared, pid: i32) -> i32 {
    let mut exits = sh.child_exits.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        if let Some(code) = exits.remove(&pid) {
            return code;
        }
        if sh.reaping_done.load(Ordering::SeqCst) {
            return 137;
        }
        exits = sh
            .child_exited
            .wait(exits)
            .unwrap_or_else(|p| p.into_inner());
    }
}

/// Writes `exit.json` whole (a rename), leaving its sync to the caller.
fn write_exit(dir: &Path, status: &ExitStatus) -> Result<File> {
    let tmp = dir.join("exit.json.tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(status)?)?;
    fs::rename(&tmp, dir.join("exit.json"))?;
    Ok(f)
}

pub fn read_exit(dir: &Path) -> Option<ExitStatus> {
    serde_json::from_slice(&fs::read(dir.join("exit.json")).ok()?).ok()
}

fn copy_output(sh: &Shared, mut file: File, stream: u8) {
    let which = if stream == STREAM_STDOUT {
        berth_logdriver::Stream::Stdout
    } else {
        berth_logdriver::Stream::Stderr
    };
    let mut splitter = LineSplitter::default();
    let mut buf = vec![0u8; 32 * 1024];
    let mut failing = false;
    // one driver call per read: the lines of a 32 KiB chunk go out
    // together, stamped with one reading of the clock
    let mut flush = |pieces: jsonlog::Pieces<'_>| {
        if pieces.is_empty() {
            return;
        }
        let mut log = sh.log.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = log.as_mut() {
            match l.log_pieces(which, std::time::SystemTime::now(), pieces) {
                Ok(()) => failing = false,
                // once per outage, not once per line
                Err(e) if !failing => {
                    failing = true;
                    tracing::error!(error = %e, "writing container log");
                }
                Err(_) => {}
            }
        }
    };
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let data = &buf[..n];
        flush(splitter.feed(data));
        let mut attachers = sh.attachers.lock().unwrap_or_else(|p| p.into_inner());
        let header = frame_header(stream, n);
        attachers.retain_mut(|a| {
            let wanted = if stream == STREAM_STDOUT {
                a.stdout
            } else {
                a.stderr
            };
            // a terminal's output is one raw stream, as Docker sends it
            !wanted
                || ((sh.tty || a.stream.write_all(&header).is_ok())
                    && a.stream.write_all(data).is_ok())
        });
    }
    if let Some(rest) = splitter.take_rest() {
        flush(jsonlog::Pieces::new(&rest));
    }
}

fn respond(conn: &mut UnixStream, r: &Response) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(r).unwrap_or_default();
    line.push(b'\n');
    conn.write_all(&line)
}

fn handle(sh: &Shared, conn: UnixStream) {
    sh.quiet.touch();
    serve_request(sh, conn);
    sh.quiet.touch();
}

fn serve_request(sh: &Shared, mut conn: UnixStream) {
    let mut reader = match conn.try_clone() {
        Ok(c) => BufReader::new(c),
        Err(_) => return,
    };
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let req: Request = match serde_json::from_str(&line) {
        Ok(r) => r,
        Err(e) => {
            let _ = respond(&mut conn, &Response::err(format!("bad request: {e}")));
            return;
        }
    };
    let exited = || sh.exit.lock().unwrap_or_else(|p| p.into_inner()).clone();
    match req {
        Request::Start => {
            let tx = sh.start.lock().unwrap_or_else(|p| p.into_inner()).take();
            let Some(tx) = tx else {
                let _ = respond(&mut conn, &Response::err("container already started"));
                return;
            };
            let (rtx, rrx) = mpsc::channel();
            let resp = match tx.send(rtx).ok().and_then(|_| rrx.recv().ok()) {
                Some(r) => r,
                None => Response::err("shim is shutting down"),
            };
            let _ = respond(&mut conn, &resp);
        }
        Request::State => {
            let _ = respond(
                &mut conn,
                &Response {
                    pid: Some(sh.pid),
                    exit: exited(),
                    // the start channel is taken by the one Start request
                    started: Some(sh.start.lock().unwrap_or_else(|p| p.into_inner()).is_none()),
                    ..Response::ok()
                },
            );
        }
        Request::Kill { signal } => {
            if exited().is_some() {
                let _ = respond(&mut conn, &Response::err("container is not running"));
                return;
            }
            // SAFETY: plain kill(2) on the container's init
            let rc = unsafe { libc::kill(sh.pid, signal) };
            let r = if rc == 0 {
                Response::ok()
            } else {
                Response::err(std::io::Error::last_os_error())
            };
            let _ = respond(&mut conn, &r);
        }
        Request::Wait => {
            wait_for_exit(sh, &mut conn);
        }
        Request::Exec {
            args,
            env,
            cwd,
            uid,
            gid,
            additional_gids,
            stdin,
            tty,
            console_size,
            add_caps,
        } => {
            let console_socket = tty.then(|| {
                let n = sh.exec_seq.fetch_add(1, Ordering::SeqCst);
                console_socket_path(&sh.socket, &format!("{n}.tty"))
            });
            let spec = ExecHelperSpec {
                root: sh.runtime_root.clone(),
                id: sh.id.clone(),
                args,
                env,
                cwd,
                uid,
                gid,
                additional_gids,
                console_socket,
                console_size,
                add_caps,
                init_pid: Some(sh.pid),
                plan: sh.exec_plan.clone(),
            };
            if exited().is_some() {
                let _ = respond(&mut conn, &Response::err("container is not running"));
                return;
            }
            run_exec(sh, conn, reader, spec, stdin);
        }
        Request::Resize {
            height,
            width,
            exec_pid,
        } => {
            resize(sh, &mut conn, height, width, exec_pid);
        }
        Request::Attach {
            stdin,
            stdout,
            stderr,
            close_stdin,
        } => {
            attach(sh, conn, reader, (stdin, stdout, stderr), close_stdin);
        }
    }
}

/// An attacher: joins the output fan-out for `stdout`/`stderr` and copies
/// what it sends to the container's stdin when it asked for `stdin`.
fn attach(
    sh: &Shared,
    mut conn: UnixStream,
    mut reader: BufReader<UnixStream>,
    (stdin, stdout, stderr): (bool, bool, bool),
    close_stdin: bool,
) {
    let _ = conn.set_write_timeout(Some(Duration::from_secs(30)));
    {
        let mut attachers = sh.attachers.lock().unwrap_or_else(|p| p.into_inner());
        if sh.exit.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
            let _ = respond(&mut conn, &Response::err("container is not running"));
            return;
        }
        if respond(&mut conn, &Response::ok()).is_err() {
            return;
        }
        if stdout || stderr {
            match conn.try_clone() {
                Ok(stream) => attachers.push(Attacher {
                    stream,
                    stdout,
                    stderr,
                }),
                Err(_) => return,
            }
        }
    }
    if !stdin {
        return;
    }
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut guard = sh.stdin.lock().unwrap_or_else(|p| p.into_inner());
        let written = guard
            .as_mut()
            .is_some_and(|w| w.write_all(&buf[..n]).is_ok());
        if !written {
            break;
        }
    }
    if close_stdin {
        sh.stdin.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

/// Resizes the container's terminal, or an exec's.
fn resize(sh: &Shared, conn: &mut UnixStream, height: u16, width: u16, exec_pid: Option<i32>) {
    let r = match exec_pid {
        Some(pid) => {
            let masters = sh.exec_masters.lock().unwrap_or_else(|p| p.into_inner());
            match masters.get(&pid) {
                Some(m) => crate::tty::set_size(m, height, width),
                None => Err(std::io::Error::other("the process has no terminal")),
            }
        }
        None => match &sh.tty_master {
            Some(m) => crate::tty::set_size(m, height, width),
            None => Err(std::io::Error::other("the container has no terminal")),
        },
    };
    let _ = respond(
        conn,
        &match r {
            Ok(()) => Response::ok(),
            Err(e) => Response::err(e),
        },
    );
}

/// Answers with the exit status once the container has exited.
fn wait_for_exit(sh: &Shared, conn: &mut UnixStream) {
    sh.waiters.fetch_add(1, Ordering::SeqCst);
    let mut guard = sh.exit.lock().unwrap_or_else(|p| p.into_inner());
    while guard.is_none() {
        guard = sh.exited.wait(guard).unwrap_or_else(|p| p.into_inner());
    }
    let status = guard.clone();
    drop(guard);
    let _ = respond(
        conn,
        &Response {
            exit: status,
            ..Response::ok()
        },
    );
    sh.waiters.fetch_sub(1, Ordering::SeqCst);
}

/// What `berth shim-exec` needs to start a process in a running container.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct ExecHelperSpec {
    pub root: PathBuf,
    pub id: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// with a terminal: where libcontainer sends the pty master
    #[serde(default)]
    pub console_socket: Option<PathBuf>,
    #[serde(default)]
    pub console_size: Option<(u16, u16)>,
    #[serde(default)]
    pub add_caps: Vec<String>,
    /// the container's init, whose namespaces the process joins
    #[serde(default)]
    pub init_pid: Option<i32>,
    /// set when `berth-shim exec` can start the process
    #[serde(default)]
    pub plan: Option<crate::join::ExecPlan>,
}

fn write_frame(conn: &Mutex<UnixStream>, stream: u8, data: &[u8]) -> bool {
    let mut c = conn.lock().unwrap_or_else(|p| p.into_inner());
    c.write_all(&frame_header(stream, data.len())).is_ok() && c.write_all(data).is_ok()
}

fn run_exec(
    sh: &Shared,
    mut conn: UnixStream,
    mut reader: BufReader<UnixStream>,
    spec: ExecHelperSpec,
    stdin: bool,
) {
    let console = match &spec.console_socket {
        Some(path) => match crate::tty::console_listener(path) {
            Ok(l) => Some((l, path.clone())),
            Err(e) => {
                let _ = respond(&mut conn, &Response::err(format!("{e:#}")));
                return;
            }
        },
        None => None,
    };
    let started = start_exec_helper(sh, &spec, stdin, console.as_ref().map(|(l, _)| l));
    if let Some((_, path)) = &console {
        let _ = fs::remove_file(path);
    }
    let (pid, outputs, stdin_w) = match started {
        Ok(x) => x,
        Err(e) => {
            let _ = respond(&mut conn, &Response::err(format!("{e:#}")));
            return;
        }
    };
    if respond(
        &mut conn,
        &Response {
            pid: Some(pid),
            ..Response::ok()
        },
    )
    .is_err()
    {
        return;
    }
    let conn = match conn.try_clone() {
        Ok(c) => Arc::new(Mutex::new(c)),
        Err(_) => return,
    };
    if let Some(mut w) = stdin_w {
        let _ = thread::Builder::new()
            .stack_size(SMALL_STACK)
            .spawn(move || {
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    match reader.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if w.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
    }
    let mut forwarders = Vec::new();
    for (mut file, stream) in outputs.into_iter().zip([STREAM_STDOUT, STREAM_STDERR]) {
        let conn = conn.clone();
        if let Ok(h) = thread::Builder::new()
            .stack_size(SMALL_STACK)
            .spawn(move || {
                let mut buf = vec![0u8; 32 * 1024];
                let mut client_gone = false;
                loop {
                    match file.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        // keep draining after the client left so the process never blocks
                        Ok(n) if !client_gone => {
                            client_gone = !write_frame(&conn, stream, &buf[..n])
                        }
                        Ok(_) => {}
                    }
                }
            })
        {
            forwarders.push(h);
        }
    }
    for h in forwarders {
        let _ = h.join();
    }
    let code = wait_child(sh, pid);
    sh.exec_masters
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&pid);
    let _ = write_frame(&conn, STREAM_EXIT, code.to_string().as_bytes());
    let _ = conn
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .shutdown(std::net::Shutdown::Both);
}

/// Starts `berth shim-exec` for the process and waits for its report:
/// the process's pid, its output pipes (the terminal with a console
/// socket) and its stdin when asked for.
fn start_exec_helper(
    sh: &Shared,
    spec: &ExecHelperSpec,
    stdin: bool,
    console: Option<&UnixListener>,
) -> Result<(i32, Vec<File>, Option<File>)> {
    let (out_r, out_w) = pipe2(OFlag::O_CLOEXEC)?;
    let (err_r, err_w) = pipe2(OFlag::O_CLOEXEC)?;
    let (in_r, in_w): (OwnedFd, Option<File>) = if stdin {
        let (r, w) = pipe2(OFlag::O_CLOEXEC)?;
        (r, Some(File::from(w)))
    } else {
        (File::open("/dev/null")?.into(), None)
    };
    let (rep_r, rep_w) = pipe2(OFlag::O_CLOEXEC)?;
    let rep_raw = rep_w.as_raw_fd();
    // the small binary joins the container itself when the creating shim
    // could plan it; else libcontainer's tenant builder in the big one
    let small = sh.berth.with_file_name(STEADY_BINARY);
    let mut cmd = match &spec.plan {
        Some(_) if small.is_file() => {
            let mut c = std::process::Command::new(small);
            c.arg("exec");
            c
        }
        _ => {
            let mut c = std::process::Command::new(&sh.berth);
            c.arg("shim-exec");
            c
        }
    };
    cmd.arg(serde_json::to_string(spec)?)
        .stdin(std::process::Stdio::from(in_r))
        .stdout(std::process::Stdio::from(out_w))
        .stderr(std::process::Stdio::from(err_w));
    // SAFETY: dup2 is async-signal-safe; it gives the helper its report fd
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            if libc::dup2(rep_raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // the shim reaps every child itself (waitpid(-1)); the handle is not waited on
    let _helper = cmd.spawn().context("starting exec helper")?;
    drop(rep_w);
    let mut line = String::new();
    BufReader::new(File::from(rep_r)).read_line(&mut line)?;
    let line = line.trim();
    let pid = match line.strip_prefix(READY_OK) {
        Some(p) => p
            .trim()
            .parse::<i32>()
            .context("bad pid from exec helper")?,
        None => anyhow::bail!(
            "{}",
            line.strip_prefix("err ").unwrap_or("exec helper failed")
        ),
    };
    if let Some(listener) = console {
        let master = crate::tty::receive_master(listener, Duration::from_secs(10))?;
        if let Some((h, w)) = spec.console_size {
            let _ = crate::tty::set_size(&master, h, w);
        }
        let out = File::from(master.try_clone()?);
        let input = if stdin {
            Some(File::from(master.try_clone()?))
        } else {
            None
        };
        sh.exec_masters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(pid, master);
        return Ok((pid, vec![out], input));
    }
    Ok((pid, vec![File::from(out_r), File::from(err_r)], in_w))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_dir(config: &str) -> (tempfile::TempDir, PathBuf) {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("c1");
        fs::create_dir_all(&dir).expect("mkdir");
        fs::write(dir.join("youki_config.json"), config).expect("write");
        fs::write(dir.join("state.json"), r#"{"id":"c1","useSystemd":false}"#).expect("write");
        (root, dir)
    }

    #[test]
    fn a_stopped_container_without_hooks_is_removed_here() {
        let (_root, dir) =
            state_dir(r#"{"hooks":null,"cgroup_path":"/berth-shim-test-nonexistent/c1"}"#);
        assert!(delete_stopped(&dir).expect("delete"));
        assert!(!dir.exists());
        // gone already: nothing left to do
        assert!(delete_stopped(&dir).expect("delete"));
    }

    #[test]
    fn poststop_hooks_and_unknown_state_are_left_to_libcontainer() {
        let (_root, dir) =
            state_dir(r#"{"hooks":{"poststop":[{"path":"/bin/true"}]},"cgroup_path":"/x/c1"}"#);
        assert!(!delete_stopped(&dir).expect("delete"));
        assert!(dir.exists());
        let (_root, dir) = state_dir(r#"{"hooks":null}"#);
        assert!(!delete_stopped(&dir).expect("delete"));
        fs::remove_file(dir.join("youki_config.json")).expect("rm");
        assert!(!delete_stopped(&dir).expect("delete"));
    }
}
