//! `exec`: processes started in a running container through its shim.
//! Exec instances live in memory, as in dockerd: they do not survive a
//! daemon restart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use berth_core::runtime::{ExecProcess, RuntimeStream, STREAM_EXIT, STREAM_STDOUT, frame_header};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{Engine, Error, LockExt, Result, spec};

/// What an exec runs and how (Docker's ExecConfig, the fields berth acts
/// on; unset means the container's own).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecSpec {
    pub cmd: Option<Vec<String>>,
    pub env: Option<Vec<String>>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub privileged: Option<bool>,
    pub tty: Option<bool>,
    pub attach_stdin: Option<bool>,
    pub attach_stdout: Option<bool>,
    pub attach_stderr: Option<bool>,
    /// [height, width] of the terminal
    pub console_size: Option<Vec<usize>>,
    /// the keys that end an attached session with a terminal (parsed at
    /// the edge); empty means Docker's ctrl-p ctrl-q
    pub detach_keys: Vec<u8>,
}

/// What POST /exec/{id}/start asks of the session (Docker's
/// ExecStartConfig).
#[derive(Debug, Clone, Default)]
pub struct ExecStartOptions {
    /// the start request's Tty: dockerd frames the output by it, not by
    /// the exec's own, so a client decodes what it asked for
    pub raw: bool,
    /// [height, width], overriding the one given at create
    pub console_size: Option<Vec<usize>>,
    /// Kubernetes' semantics, not Docker's: no detach keys, and the end of
    /// the input does not end the session (on a terminal the process's
    /// stdin stays open); the session ends when the process does
    pub plain_input: bool,
}

#[derive(Debug, Clone)]
pub struct ExecRecord {
    pub id: String,
    pub container_id: String,
    pub config: ExecSpec,
    pub started: bool,
    pub running: bool,
    pub exit_code: Option<i64>,
    pub pid: i64,
}

pub type Execs = HashMap<String, Arc<Mutex<ExecRecord>>>;

/// A started exec: the launch of its process, then its output frames to
/// copy to the client, or the error that kept it from starting (Docker
/// reports that inside the stream).
pub struct ExecSession {
    record: Arc<Mutex<ExecRecord>>,
    launch: Launch,
    stdin: bool,
    /// the process has a terminal: input is scanned for the detach keys
    tty: bool,
    /// output without frame headers
    raw: bool,
    plain_input: bool,
    detach_keys: Vec<u8>,
    /// publishes `exec_die` when the process ends, `exec_detach` on the keys
    events: ExitEvent,
}

type LaunchFuture = std::pin::Pin<
    Box<dyn std::future::Future<Output = std::result::Result<Launched, String>> + Send>,
>;

/// The process is started only when the client is ready for its output:
/// dockerd answers the upgrade before it starts the process, and clients
/// that read the answer head through a buffer lose output that arrives
/// with it.
enum Launch {
    Pending(LaunchFuture),
    Running(RuntimeStream),
    Failed(String),
}

struct Launched {
    pid: Option<i32>,
    stream: RuntimeStream,
}

struct ExitEvent {
    bus: Arc<crate::events::EventBus>,
    container: crate::containers::ContainerRecord,
    exec_id: String,
}

fn lock(r: &Mutex<ExecRecord>) -> std::sync::MutexGuard<'_, ExecRecord> {
    r.lock().unwrap_or_else(|p| p.into_inner())
}

impl Engine {
    fn exec_record(&self, id: &str) -> Result<Arc<Mutex<ExecRecord>>> {
        self.execs
            .r()
            .get(id)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("No such exec instance: {id}")))
    }

    pub fn exec_create(&self, container: &str, mut cfg: ExecSpec) -> Result<String> {
        let e = self.get(container)?;
        if !e.is_running() {
            return Err(Error::conflict(format!(
                "container {} is not running",
                e.id
            )));
        }
        if e.record().state.paused {
            return Err(Error::conflict(format!(
                "Container {} is paused, unpause the container before exec",
                e.id
            )));
        }
        if cfg.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            return Err(Error::invalid("No exec command specified"));
        }
        // the same rule for the working directory as at create
        cfg.working_dir = crate::validate::working_dir(cfg.working_dir.take())?;
        // dockerd looks the user up early, so a typo fails the create
        if let Some(user) = cfg.user.as_deref().filter(|u| !u.is_empty()) {
            spec::resolve_user(&self.rootfs_dir(&e.id), user).map_err(Error::invalid)?;
        }
        let id = crate::random_id();
        let cmd = cfg.cmd.clone().unwrap_or_default().join(" ");
        self.container_event(
            &e.record(),
            &format!("exec_create: {cmd}"),
            &[("execID", id.clone())],
        );
        let rec = ExecRecord {
            id: id.clone(),
            container_id: e.id.clone(),
            config: cfg,
            started: false,
            running: false,
            exit_code: None,
            pid: 0,
        };
        self.execs.w().insert(id.clone(), Arc::new(Mutex::new(rec)));
        Ok(id)
    }

    /// The process of an exec in container `c`, with the user, env and
    /// working directory resolved as dockerd does; the error is the message
    /// a client sees for a process that cannot start.
    fn exec_request(
        &self,
        c: &crate::containers::ContainerRecord,
        cfg: &ExecSpec,
    ) -> std::result::Result<ExecProcess, String> {
        let rootfs = self.rootfs_dir(&c.id);
        let user = cfg
            .user
            .clone()
            .filter(|u| !u.is_empty())
            .or(c.config.user.clone())
            .unwrap_or_default();
        // as dockerd: the links' variables, then the container's, then the exec's
        let links = self.links_env(c).map_err(|e| e.to_string())?;
        let mut env = crate::legacy_links::replace_or_append(
            links,
            &c.config.env.clone().unwrap_or_default(),
        );
        for v in cfg.env.clone().unwrap_or_default() {
            let key = v.split('=').next().unwrap_or_default().to_string();
            env.retain(|x| x.split('=').next() != Some(key.as_str()));
            env.push(v);
        }
        if !env.iter().any(|v| v.starts_with("PATH=")) {
            env.insert(0, spec::DEFAULT_PATH.to_string());
        }
        let cwd = cfg
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .or(c.config.working_dir.clone().filter(|w| !w.is_empty()))
            .unwrap_or_else(|| "/".into());
        let args = cfg.cmd.clone().unwrap_or_default();
        let (uid, gid, mut gids) = spec::resolve_user(&rootfs, &user)
            .map_err(|m| format!("OCI runtime exec failed: exec failed: {m}: unknown"))?;
        // the container's --group-add holds for its execs too
        gids.extend(
            crate::hostconfig::extra_groups(&rootfs, &c.host_config)
                .map_err(|e| format!("OCI runtime exec failed: exec failed: {e}: unknown"))?,
        );
        if let Some(first) = args.first()
            && let Err((_, m)) = spec::check_executable(&rootfs, first, &env)
        {
            return Err(format!(
                "OCI runtime exec failed: exec failed: unable to start container process: {m}: unknown"
            ));
        }
        Ok(ExecProcess {
            args,
            env,
            cwd,
            uid,
            gid,
            additional_gids: gids,
            stdin: cfg.attach_stdin.unwrap_or(false),
            tty: cfg.tty.unwrap_or(false),
            console_size: cfg
                .console_size
                .as_ref()
                .filter(|s| s.len() == 2 && s[0] > 0 && s[1] > 0)
                .map(|s| (s[0] as u16, s[1] as u16)),
            add_caps: if cfg.privileged == Some(true) {
                spec::capabilities(true, &[], &[])
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|c| serde_json::to_value(c).ok())
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            } else {
                vec![]
            },
        })
    }

    /// Runs a health probe: its exit code and its combined output.
    pub(crate) async fn run_probe(&self, container: &str, cmd: Vec<String>) -> (i64, String) {
        let Ok(e) = self.get(container) else {
            return (-1, "container is gone".into());
        };
        let cfg = ExecSpec {
            cmd: Some(cmd),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let req = match self.exec_request(&e.record(), &cfg) {
            Ok(r) => r,
            Err(m) => return (126, m),
        };
        let mut stream = match self.runtime.exec(&e.id, req).await {
            Ok(started) => started.stream,
            Err(err) => return (-1, format!("{:#}", err.into_anyhow())),
        };
        let mut output = Vec::new();
        loop {
            match next_frame(&mut stream).await {
                Frame::Output(_, payload) => {
                    if output.len() < 64 * 1024 {
                        output.extend_from_slice(&payload);
                    }
                }
                Frame::Exit(code) => {
                    return (
                        code.unwrap_or(137),
                        String::from_utf8_lossy(&output).into_owned(),
                    );
                }
            }
        }
    }

    /// POST /exec/{id}/resize
    pub async fn exec_resize(&self, id: &str, height: u16, width: u16) -> Result<()> {
        let record = self.exec_record(id)?;
        let (container, pid, running, tty) = {
            let r = lock(&record);
            (
                r.container_id.clone(),
                r.pid,
                r.running,
                r.config.tty == Some(true),
            )
        };
        if !running {
            return Err(Error::conflict(format!("Exec {id} is not running")));
        }
        if !tty {
            return Err(Error::invalid(format!("Exec {id} has no terminal")));
        }
        self.shim_resize(&container, height, width, Some(pid as i32))
            .await
    }

    /// Kills a running exec's process (the CRI's ExecSync timeout); one
    /// that has ended is left alone.
    pub fn exec_kill(&self, id: &str) -> Result<()> {
        let rec = self.exec_inspect(id)?;
        if !rec.running || rec.pid <= 0 {
            return Ok(());
        }
        let pid = nix::unistd::Pid::from_raw(rec.pid as i32);
        match nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(e) => Err(Error::Internal(anyhow::anyhow!(
                "killing exec {id}'s process {pid}: {e}"
            ))),
        }
    }

    /// Drops an exec's record (the CRI's ExecSync keeps none: a kubelet's
    /// probes would pile them up).
    pub fn exec_forget(&self, id: &str) {
        self.execs.w().remove(id);
    }

    pub fn exec_inspect(&self, id: &str) -> Result<ExecRecord> {
        let rec = self.exec_record(id)?;
        Ok(lock(&rec).clone())
    }

    /// Claims the exec for a session; its process starts with
    /// [`ExecSession::launch`]. A failure to start the process itself is
    /// not an error here: like dockerd, it is reported in the stream and
    /// as exit code 126.
    pub async fn exec_start(&self, id: &str, opts: ExecStartOptions) -> Result<ExecSession> {
        let record = self.exec_record(id)?;
        let (mut cfg, container_id) = {
            let mut r = lock(&record);
            if r.started {
                return Err(Error::conflict(format!(
                    "Error: Exec command {id} is already running"
                )));
            }
            r.started = true;
            (r.config.clone(), r.container_id.clone())
        };
        let e = self.get(&container_id)?;
        if !e.is_running() {
            return Err(Error::conflict(format!(
                "container {container_id} is not running"
            )));
        }
        let c = e.record();
        self.container_event(
            &c,
            &format!(
                "exec_start: {}",
                cfg.cmd.clone().unwrap_or_default().join(" ")
            ),
            &[("execID", id.to_string())],
        );
        if opts.console_size.is_some() {
            cfg.console_size = opts.console_size;
        }
        let launch = match self.exec_request(&c, &cfg) {
            Ok(req) => {
                let runtime = self.runtime.clone();
                let cid = c.id.clone();
                Launch::Pending(Box::pin(async move {
                    match runtime.exec(&cid, req).await {
                        Ok(s) => Ok(Launched {
                            pid: s.pid,
                            stream: s.stream,
                        }),
                        Err(err) => Err(format!(
                            "OCI runtime exec failed: exec failed: {:#}: unknown",
                            err.into_anyhow()
                        )),
                    }
                }))
            }
            Err(msg) => {
                lock(&record).exit_code = Some(126);
                Launch::Failed(msg)
            }
        };
        Ok(ExecSession {
            record: record.clone(),
            launch,
            stdin: cfg.attach_stdin.unwrap_or(false),
            tty: cfg.tty.unwrap_or(false),
            raw: opts.raw,
            plain_input: opts.plain_input,
            detach_keys: cfg.detach_keys.clone(),
            events: ExitEvent {
                bus: self.event_bus(),
                container: c.clone(),
                exec_id: id.to_string(),
            },
        })
    }
}

impl ExecSession {
    /// Starts the process (once); a failure is recorded as exit code 126
    /// and kept for the stream.
    pub async fn launch(&mut self) {
        let Launch::Pending(fut) = &mut self.launch else {
            return;
        };
        self.launch = match fut.await {
            Ok(l) => {
                let mut r = lock(&self.record);
                r.running = true;
                r.pid = l.pid.unwrap_or(0) as i64;
                Launch::Running(l.stream)
            }
            Err(msg) => {
                lock(&self.record).exit_code = Some(126);
                Launch::Failed(msg)
            }
        };
    }

    /// Copies the exec's output to `out` (and `input` to its stdin) until
    /// it exits; records the exit code before `out` is closed, so a client
    /// that inspects after the stream ends sees it. On a terminal the
    /// detach keys, or the end of the input, end the session and leave the
    /// process running, as dockerd does.
    pub async fn pump<R, W>(mut self, input: R, mut out: W)
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin,
    {
        self.launch().await;
        let stream = match std::mem::replace(&mut self.launch, Launch::Failed(String::new())) {
            Launch::Running(s) => s,
            Launch::Failed(msg) => {
                let line = format!("{msg}\r\n");
                if !self.raw {
                    let _ = out
                        .write_all(&frame_header(STREAM_STDOUT, line.len()))
                        .await;
                }
                let _ = out.write_all(line.as_bytes()).await;
                let _ = out.shutdown().await;
                return;
            }
            Launch::Pending(_) => return,
        };
        let (sr, sw) = tokio::io::split(stream);
        let mut frames = read_frames(sr);
        let keys = (!self.plain_input).then(|| self.detach_keys.clone());
        let feed = feed_input(input, sw, self.stdin, self.tty, keys);
        tokio::pin!(feed);
        let mut feeding = true;
        let mut out = Some(out);
        let code = loop {
            tokio::select! {
                f = frames.recv() => match f {
                    Some(Frame::Output(header, payload)) => {
                        // a client that went away does not stop the process
                        if let Some(o) = out.as_mut() {
                            if !self.raw {
                                let _ = o.write_all(&header).await;
                            }
                            let _ = o.write_all(&payload).await;
                        }
                    }
                    Some(Frame::Exit(code)) => break code,
                    None => break None,
                },
                end = &mut feed, if feeding => {
                    feeding = false;
                    if end != InputEnd::Closed
                        && let Some(mut o) = out.take()
                    {
                        let _ = o.shutdown().await;
                    }
                    if end == InputEnd::Detached {
                        self.publish("exec_detach", &[]);
                    }
                }
            }
        };
        {
            let mut r = lock(&self.record);
            r.running = false;
            r.exit_code = Some(code.unwrap_or(137));
        }
        self.publish("exec_die", &[("exitCode", code.unwrap_or(137).to_string())]);
        if let Some(mut o) = out {
            let _ = o.shutdown().await;
        }
    }

    fn publish(&self, action: &str, extra: &[(&str, String)]) {
        let ev = &self.events;
        let mut attrs = vec![("execID", ev.exec_id.clone())];
        attrs.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
        ev.bus.publish(crate::events::container_event_of(
            &ev.container,
            action,
            &attrs,
        ));
    }
}

/// How the client's input ended.
#[derive(Debug, PartialEq, Eq)]
enum InputEnd {
    /// no input attached, or its end closed the process's stdin
    Closed,
    /// the end of the input on a terminal: the session ends
    Hangup,
    /// the detach keys: the session ends
    Detached,
}

/// Copies the client's input to the process. Without a terminal its end
/// closes the process's stdin; with one the stdin stays open for the
/// running process, and the detach keys, unless `None`, are looked for.
async fn feed_input<R, W>(
    mut input: R,
    mut stdin: W,
    attached: bool,
    tty: bool,
    keys: Option<Vec<u8>>,
) -> InputEnd
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if !attached {
        return InputEnd::Closed;
    }
    let Some(keys) = keys.filter(|_| tty) else {
        let _ = tokio::io::copy(&mut input, &mut stdin).await;
        if !tty {
            let _ = stdin.shutdown().await;
        }
        return InputEnd::Closed;
    };
    let keys = if keys.is_empty() {
        berth_term::DEFAULT_DETACH_KEYS.to_vec()
    } else {
        keys
    };
    // either way the process's stdin stays open: the write half is
    // dropped, not shut down, and the stream lives on
    if berth_term::copy_until_detach(&mut input, &mut stdin, keys).await {
        InputEnd::Detached
    } else {
        InputEnd::Hangup
    }
}

/// Reads the shim's frames on a task of their own, so a session can watch
/// its input at the same time without cutting a frame in two.
fn read_frames(mut r: tokio::io::ReadHalf<RuntimeStream>) -> tokio::sync::mpsc::Receiver<Frame> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let f = next_frame(&mut r).await;
            let last = matches!(f, Frame::Exit(_));
            if tx.send(f).await.is_err() || last {
                return;
            }
        }
    });
    rx
}

/// One frame of the shim's exec stream.
enum Frame {
    /// a multiplexed-stream header and its payload
    Output([u8; 8], Vec<u8>),
    /// the trailer with the exit code; None when the stream just ended
    Exit(Option<i64>),
}

async fn next_frame(r: &mut (impl AsyncRead + Unpin)) -> Frame {
    let mut header = [0u8; 8];
    if r.read_exact(&mut header).await.is_err() {
        return Frame::Exit(None);
    }
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    let mut payload = vec![0u8; len];
    if r.read_exact(&mut payload).await.is_err() {
        return Frame::Exit(None);
    }
    if header[0] == STREAM_EXIT {
        return Frame::Exit(String::from_utf8_lossy(&payload).trim().parse().ok());
    }
    Frame::Output(header, payload)
}
