//! The integration-test harness. Each test gets its own daemon with a temp
//! data root, inside private mount, network and pid namespaces held open by
//! a `sleep` process: a daemon restart happens in the same namespaces, and
//! dropping the harness kills the namespace's init, which takes every shim
//! and container with it — even when the test failed.
#![allow(dead_code)]

pub mod cluster;
pub mod registry;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const BUSYBOX_CHANGES: [&str; 2] = [
    r#"CMD ["sh"]"#,
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
];

/// Which client drives a check: swarm scenarios run through both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cli {
    Docker,
    Berth,
}

impl Cli {
    pub fn run(self, d: &Daemon, args: &[&str]) -> Output {
        match self {
            Cli::Docker => d.docker(args),
            Cli::Berth => d.berth(args),
        }
    }

    pub fn program(self) -> &'static str {
        match self {
            Cli::Docker => "docker",
            Cli::Berth => berth_bin(),
        }
    }

    /// What points the client at `d`, with the config directory both
    /// CLIs share there.
    pub fn env(self, d: &Daemon) -> Vec<(&'static str, String)> {
        let cfg = d.dir.path().join("docker-config").display().to_string();
        match self {
            Cli::Docker => vec![
                ("DOCKER_HOST", d.host()),
                ("DOCKER_CONFIG", cfg),
                ("DOCKER_CLI_HINTS", "false".into()),
            ],
            Cli::Berth => vec![("BERTH_HOST", d.host()), ("BERTH_CONFIG", cfg)],
        }
    }

    /// The client as a command to spawn, pointed at `d`.
    pub fn command(self, d: &Daemon) -> Command {
        let mut c = Command::new(self.program());
        // berth reads DOCKER_HOST too; the docker CLI's is set again
        c.env_remove("DOCKER_HOST")
            .envs(self.env(d))
            .stdin(Stdio::null());
        c
    }
}

pub fn berth_bin() -> &'static str {
    env!("CARGO_BIN_EXE_berth")
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The busybox rootfs tar, built once per test process by the project's script.
pub fn busybox_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("busybox-{}.tar", std::process::id()));
        let st = Command::new(repo_root().join("scripts/make-busybox-rootfs.sh"))
            .arg(&out)
            .status()
            .expect("running make-busybox-rootfs.sh");
        assert!(st.success(), "make-busybox-rootfs.sh failed");
        out
    })
}

pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub sock: PathBuf,
    /// the `unshare` process; its child `sleep` is the namespaces' init
    holder: Child,
    pub ns_pid: i32,
    daemon: Option<Child>,
    /// extra `berth daemon` flags for the next start
    pub flags: Vec<String>,
    /// extra environment for the next start (`BERTH_CRASH_AT`)
    pub env: Vec<(String, String)>,
}

pub fn child_of(pid: u32) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            && let Some(c) = s.split_whitespace().next()
        {
            return c.parse().ok();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

impl Daemon {
    /// A daemon with the busybox image imported as busybox:latest.
    pub fn start() -> Daemon {
        let d = Daemon::start_bare();
        d.import_busybox();
        d
    }

    /// Imports the busybox image as busybox:latest.
    pub fn import_busybox(&self) {
        let mut args = vec!["import".to_string()];
        for c in BUSYBOX_CHANGES {
            args.push("-c".into());
            args.push(c.into());
        }
        args.push(busybox_tar().display().to_string());
        args.push("busybox:latest".into());
        let out = self.berth(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(
            out.status.success(),
            "importing busybox: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn start_bare() -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-")
            .tempdir()
            .expect("tempdir");
        let holder = Command::new("unshare")
            .args([
                "--mount",
                "--net",
                "--pid",
                "--fork",
                "--mount-proc",
                "--propagation",
                "private",
                "--",
                "sleep",
                "infinity",
            ])
            .stdin(Stdio::null())
            // unshare complains on stderr when its namespace is torn down
            .stderr(Stdio::null())
            .spawn()
            .expect("unshare (util-linux) is needed to isolate tests");
        let ns_pid = child_of(holder.id()).expect("namespace init did not start");
        let st = Command::new("nsenter")
            .args([
                "-t",
                &ns_pid.to_string(),
                "-n",
                "ip",
                "link",
                "set",
                "lo",
                "up",
            ])
            .status()
            .expect("nsenter");
        assert!(st.success(), "bringing up lo in the test namespace");
        let sock = dir.path().join("berth.sock");
        let mut d = Daemon {
            dir,
            sock,
            holder,
            ns_pid,
            daemon: None,
            flags: Vec::new(),
            env: Vec::new(),
        };
        d.spawn_daemon();
        d
    }

    pub fn data_root(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn exec_root(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    /// Starts `berth daemon` inside the test's namespaces with `extra` flags.
    pub fn daemon_command(&self, extra: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.args([
            "-t",
            &self.ns_pid.to_string(),
            "-m",
            "-n",
            "-p",
            "--",
            berth_bin(),
            "daemon",
        ])
        .arg("--data-root")
        .arg(self.data_root())
        .arg("--exec-root")
        .arg(self.exec_root())
        .arg("--config-file")
        .arg(self.dir.path().join("daemon.json"))
        .args(extra);
        c
    }

    fn spawn_daemon(&mut self) {
        std::fs::write(self.dir.path().join("daemon.json"), "{}").expect("writing daemon.json");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .expect("daemon log");
        let mut flags = vec![
            "-H".to_string(),
            self.host(),
            "--log-level".into(),
            "debug".into(),
        ];
        // no CNI configuration of the host's reaches a test's pods
        if !self.flags.iter().any(|f| f == "--cni-conf-dir") {
            flags.extend(["--cni-conf-dir".into(), "none".into()]);
        }
        flags.extend(self.flags.iter().cloned());
        let child = self
            .daemon_command(&flags.iter().map(String::as_str).collect::<Vec<_>>())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("starting berth daemon");
        self.daemon = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok((200, _, _)) = raw_request(&self.sock, "GET", "/_ping", None) {
                return;
            }
            if let Some(c) = self.daemon.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                panic!("daemon exited with {st}: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("daemon did not answer /_ping: {}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// The daemon's pid as seen from the host (nsenter's child).
    pub fn daemon_pid(&self) -> Option<i32> {
        self.daemon.as_ref().and_then(|c| child_of(c.id()))
    }

    /// SIGKILLs the daemon (not its shims or containers).
    pub fn kill9(&mut self) {
        if let Some(pid) = self.daemon_pid() {
            // SAFETY: plain kill(2)
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if let Some(mut c) = self.daemon.take() {
            let _ = c.wait();
        }
    }

    /// SIGTERMs the daemon and waits for it to exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        if let Some(pid) = self.daemon_pid() {
            // SAFETY: plain kill(2)
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let mut c = self.daemon.take().expect("daemon running");
        c.wait().expect("waiting for daemon")
    }

    pub fn restart_after_kill9(&mut self) {
        self.kill9();
        self.spawn_daemon();
    }

    pub fn start_again(&mut self) {
        assert!(self.daemon.is_none(), "daemon still running");
        self.spawn_daemon();
    }

    /// Runs `args` through berth's CLI and the docker CLI: both succeed
    /// and print the same.
    pub fn assert_same_output(&self, args: &[&str]) {
        let ours = self.berth(args);
        let theirs = self.docker(args);
        assert_eq!(code(&ours), 0, "{args:?}: {}", stderr(&ours));
        assert_eq!(stdout(&ours), stdout(&theirs), "{args:?}");
    }

    pub fn berth(&self, args: &[&str]) -> Output {
        // the docker CLI's config directory: a login made by either CLI
        // serves both
        let cfg = self.dir.path().join("docker-config");
        let _ = std::fs::create_dir_all(&cfg);
        Command::new(berth_bin())
            .args(args)
            .env("BERTH_HOST", self.host())
            .env("BERTH_CONFIG", &cfg)
            .env_remove("DOCKER_HOST")
            .stdin(Stdio::null())
            .output()
            .expect("running berth")
    }

    /// The real docker CLI (28.x), pointed at this daemon.
    pub fn docker(&self, args: &[&str]) -> Output {
        let cfg = self.dir.path().join("docker-config");
        let _ = std::fs::create_dir_all(&cfg);
        Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", &cfg)
            .env("DOCKER_CLI_HINTS", "false")
            .stdin(Stdio::null())
            .output()
            .expect("the docker CLI must be on PATH")
    }

    pub async fn client(&self) -> bollard::Docker {
        bollard::Docker::connect_with_unix(
            &self.sock.display().to_string(),
            120,
            bollard::API_DEFAULT_VERSION,
        )
        .expect("bollard client")
        .negotiate_version()
        .await
        .expect("negotiating API version")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // a frozen (paused) process cannot die: thaw this daemon's
        // containers first, or the namespace would outlive the test
        for dir in own_cgroup_dirs(&self.data_root()) {
            let state = dir.join("freezer.state");
            if state.exists() {
                let _ = std::fs::write(&state, "THAWED");
            }
            let v2 = dir.join("cgroup.freeze");
            if v2.exists() {
                let _ = std::fs::write(&v2, "0");
            }
        }
        // killing the pid namespace's init kills every process in it
        // SAFETY: plain kill(2)
        unsafe { libc::kill(self.ns_pid, libc::SIGKILL) };
        let _ = self.holder.wait();
        if let Some(mut c) = self.daemon.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        remove_leftover_cgroups(&self.data_root());
        if std::thread::panicking() {
            eprintln!("---- daemon log ----\n{}", self.log());
        }
    }
}

/// Containers killed with their namespace leave empty cgroups behind. Only
/// this daemon's containers' cgroups are removed: another test's container
/// may have an empty cgroup that it is about to join.
fn remove_leftover_cgroups(data_root: &Path) {
    for dir in own_cgroup_dirs(data_root) {
        let _ = std::fs::remove_dir(dir);
    }
}

/// The cgroup directories (in every hierarchy) of this daemon's containers.
fn own_cgroup_dirs(data_root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let ids: Vec<String> = std::fs::read_dir(data_root.join("containers"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    if ids.is_empty() {
        return out;
    }
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let parent = own
        .lines()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .max_by_key(|p| p.len())
        .unwrap_or("/")
        .to_string();
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return out;
    };
    for h in hierarchies.flatten() {
        let base = h.path().join(parent.trim_start_matches('/')).join("berth");
        for id in &ids {
            out.push(base.join(id));
        }
    }
    // a v2-only machine has the tree at the mount itself
    let base = Path::new("/sys/fs/cgroup")
        .join(parent.trim_start_matches('/'))
        .join("berth");
    for id in &ids {
        out.push(base.join(id));
    }
    out
}

/// The stdout of a command that must succeed; `what` names it in a failure.
pub fn ok(o: &Output, what: &str) -> String {
    assert_eq!(code(o), 0, "{what}: {}{}", stdout(o), stderr(o));
    stdout(o)
}

/// Runs `args` through berth's CLI and the docker CLI: both print the same
/// on stdout and stderr, with one status.
pub fn same(d: &Daemon, args: &[&str]) -> Output {
    let (b, k) = (d.berth(args), d.docker(args));
    assert_eq!(
        (code(&b), stdout(&b), stderr(&b)),
        (code(&k), stdout(&k), stderr(&k)),
        "berth vs docker: {args:?}"
    );
    k
}

/// `swarm join --token TOKEN --advertise-addr ADDR REMOTE`, for either CLI.
pub fn join_args<'a>(token: &'a str, addr: &'a str, remote: &'a str) -> [&'a str; 7] {
    [
        "swarm",
        "join",
        "--token",
        token,
        "--advertise-addr",
        addr,
        remote,
    ]
}

/// This node's ID in its swarm, as `docker info` shows it.
pub fn node_id(d: &Daemon) -> String {
    ok(
        &d.docker(&["info", "--format", "{{.Swarm.NodeID}}"]),
        "info",
    )
    .trim()
    .to_string()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// One HTTP/1.1 request on a unix socket: (status, raw headers, body).
pub fn raw_request(
    sock: &Path,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> std::io::Result<(u16, String, Vec<u8>)> {
    let mut s = UnixStream::connect(sock)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: berth\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(req.as_bytes())?;
    // a server may answer (413) and close before reading a huge body
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            // a server that refused a body it did not read resets the
            // connection after its answer; keep the answer
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !raw.is_empty() => break,
            Err(e) => return Err(e),
        }
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Ok((status, head, body))
}

/// One request with an optional JSON body on `d`'s socket: the status and
/// the answer as JSON (`Null` when empty, a string when not JSON).
pub fn json_request(
    d: &Daemon,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let body = body.map(|b| b.to_string());
    let (status, _, raw) =
        raw_request(&d.sock, method, path, body.as_deref().map(str::as_bytes)).expect("request");
    let v = if raw.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&raw)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&raw).into()))
    };
    (status, v)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&b[..i]).unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[i + 2..i + 2 + size]);
        b = &b[i + 2 + size + 2..];
    }
    out
}

/// Polls `f` every 20 ms for at most `secs` seconds.
pub fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Runs a command on a fresh pseudo-terminal (as a user at a terminal
/// would), typing each input after a pause; returns what the terminal
/// showed and the exit code. Bounded by `timeout`.
/// An input for [`run_on_pty`] that resizes the terminal instead of typing,
/// so the program gets a SIGWINCH as it would from a terminal emulator.
pub fn winsize(rows: u16, cols: u16) -> Vec<u8> {
    format!("{WINSIZE_MARK}{rows} {cols}").into_bytes()
}

const WINSIZE_MARK: &str = "\0winsize:";

pub fn run_on_pty(
    program: &str,
    args: &[&str],
    envs: &[(&str, String)],
    inputs: &[&[u8]],
    timeout: Duration,
) -> (String, i32) {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let slave_fd = pty.slave.as_raw_fd();
    let dup = |fd: &OwnedFd| fd.try_clone().expect("dup");
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::from(dup(&pty.slave)))
        .stdout(Stdio::from(dup(&pty.slave)))
        .stderr(Stdio::from(dup(&pty.slave)));
    for (k, v) in envs {
        cmd.env(k, v);
    }
    // SAFETY: setsid and ioctl are async-signal-safe
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            if libc::ioctl(slave_fd, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn on pty");
    drop(pty.slave);
    // SAFETY: the master is ours; the reader thread owns this duplicate
    let master = pty.master;
    let mut reader =
        std::fs::File::from(unsafe { OwnedFd::from_raw_fd(libc::dup(master.as_raw_fd())) });
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = std::io::Read::read(&mut reader, &mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut writer = std::fs::File::from(master);
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    for input in inputs {
        std::thread::sleep(Duration::from_millis(400));
        while let Ok(c) = rx.try_recv() {
            out.extend(c);
        }
        if let Some(size) = input.strip_prefix(WINSIZE_MARK.as_bytes()) {
            let size = String::from_utf8_lossy(size);
            let (rows, cols) = size.split_once(' ').expect("rows cols");
            let ws = libc::winsize {
                ws_row: rows.parse().expect("rows"),
                ws_col: cols.parse().expect("cols"),
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            // SAFETY: TIOCSWINSZ reads a winsize from a valid pointer
            unsafe { libc::ioctl(writer.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
            continue;
        }
        let _ = std::io::Write::write_all(&mut writer, input);
    }
    let code = loop {
        while let Ok(c) = rx.try_recv() {
            out.extend(c);
        }
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break -1;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(50));
    while let Ok(c) = rx.try_recv() {
        out.extend(c);
    }
    (String::from_utf8_lossy(&out).into_owned(), code)
}

/// A second network namespace wired to the daemon's by a veth pair: a
/// host "outside" the machine berth runs on. The daemon's side is
/// 10.99.0.1/24 (device `outv`), the outside host is 10.99.0.2/24.
pub struct OutsideHost {
    holder: Child,
    pub pid: i32,
}

impl OutsideHost {
    pub const ADDR: &'static str = "10.99.0.2";
    pub const HOST_ADDR: &'static str = "10.99.0.1";

    pub fn new(d: &Daemon) -> OutsideHost {
        let holder = Command::new("nsenter")
            .args([
                "-t",
                &d.ns_pid.to_string(),
                "-n",
                "--",
                "unshare",
                "--net",
                "--",
                "sleep",
                "infinity",
            ])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare for the outside host");
        // nsenter and unshare exec in turn (no pid namespace, no fork): the
        // process becomes sleep once the new namespace is made
        let pid = holder.id() as i32;
        assert!(
            eventually(5, || std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "sleep")),
            "outside host did not start"
        );
        let o = OutsideHost { holder, pid };
        let script = format!(
            "ip link add outv type veth peer name eth0 netns {pid} && ip addr add {}/24 dev outv && ip link set outv up",
            Self::HOST_ADDR
        );
        assert!(d.sh(&script).status.success(), "wiring the outside host");
        let inner = format!(
            "ip link set lo up && ip addr add {}/24 dev eth0 && ip link set eth0 up",
            Self::ADDR
        );
        assert!(
            o.sh(&inner).status.success(),
            "configuring the outside host"
        );
        o
    }

    /// Runs a shell command in the outside host's network namespace.
    pub fn sh(&self, script: &str) -> Output {
        Command::new("nsenter")
            .args(["-t", &self.pid.to_string(), "-n", "--", "sh", "-c", script])
            .output()
            .expect("nsenter")
    }

    /// GET from the outside host: the body, or None.
    pub fn get(&self, url: &str) -> Option<String> {
        http_get_in(self.pid, url)
    }
}

impl Drop for OutsideHost {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        // SAFETY: plain kill(2) of the namespace's sleep
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
    }
}

/// A plain HTTP/1.0 GET made from the network namespace of `pid`, on a
/// thread that enters it (the host's static busybox wget crashes in NSS);
/// the body of a 200 answer, or None. Bounded by 5 s timeouts.
pub fn http_get_in(pid: i32, url: &str) -> Option<String> {
    let rest = url.strip_prefix("http://")?;
    let (hostport, path) = rest.split_once('/').unwrap_or((rest, ""));
    let addr: std::net::SocketAddr = hostport.parse().ok()?;
    let req = format!("GET /{path} HTTP/1.0\r\nHost: {hostport}\r\n\r\n");
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).ok()?;
    std::thread::spawn(move || -> Option<String> {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).ok()?;
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(req.as_bytes()).ok()?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).ok()?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n")?;
        head.split_whitespace()
            .nth(1)
            .filter(|c| *c == "200")
            .map(|_| body.to_string())
    })
    .join()
    .ok()
    .flatten()
}

impl Daemon {
    /// Runs a shell command in the daemon's network namespace (the "host").
    pub fn sh(&self, script: &str) -> Output {
        Command::new("nsenter")
            .args([
                "-t",
                &self.ns_pid.to_string(),
                "-n",
                "-m",
                "--",
                "sh",
                "-c",
                script,
            ])
            .output()
            .expect("nsenter")
    }

    /// GET from the daemon's host (its network namespace).
    pub fn get(&self, url: &str) -> Option<String> {
        http_get_in(self.ns_pid, url)
    }
}

/// "sha256:<hex>" of some bytes (through sha256sum: the tests need no
/// hashing crate of their own).
pub fn sha256_digest(data: &[u8]) -> String {
    let mut c = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum");
    c.stdin
        .take()
        .expect("stdin")
        .write_all(data)
        .expect("writing to sha256sum");
    let o = c.wait_with_output().expect("sha256sum");
    format!(
        "sha256:{}",
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .next()
            .unwrap_or_default()
    )
}

/// Runs `cmd` (stdin piped) with `input` on its standard input.
pub fn with_input(mut cmd: Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning the client");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("writing the input");
    child.wait_with_output().expect("the client's output")
}
