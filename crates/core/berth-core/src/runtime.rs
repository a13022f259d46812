//! The container runtime port: what the engine does to a container once
//! its bundle is ready (create it from an OCI spec, start, signal, wait,
//! attach, exec, resize, ask its state, clear what a run left). The shim
//! driver in `berth-runtime` implements it; [`fake::FakeRuntime`] is the
//! in-memory fake for unit tests of the engine's lifecycle logic.
//!
//! Pause and resume are not here: the engine freezes a container's cgroup
//! itself (berth-cgroups), as it reads its stats.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};

/// A boxed future borrowing the runtime (the port is used as `dyn`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What runtime operations return.
pub type RuntimeResult<T> = std::result::Result<T, RuntimeError>;

/// Why a runtime operation failed: the runtime answered and refused (its
/// message, for the client), or it could not be asked at all.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl RuntimeError {
    /// The error as anyhow's: a refusal's message, or the failure's chain.
    pub fn into_anyhow(self) -> anyhow::Error {
        match self {
            RuntimeError::Refused(m) => anyhow::anyhow!(m),
            RuntimeError::Failed(e) => e,
        }
    }
}

/// A byte stream to and from a container's process: Docker's multiplexed
/// frames (raw bytes on a terminal) out, raw stdin bytes in.
pub trait RuntimeIo: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> RuntimeIo for T {}

pub type RuntimeStream = Box<dyn RuntimeIo>;

/// Stream ids of Docker's multiplexed stream format, which attach and exec
/// streams carry.
pub const STREAM_STDIN: u8 = 0;
pub const STREAM_STDOUT: u8 = 1;
pub const STREAM_STDERR: u8 = 2;
/// Not a Docker stream: the last frame of an exec stream, carrying the
/// exit code as a decimal string.
pub const STREAM_EXIT: u8 = 255;

/// A frame header of Docker's multiplexed stream format: stream id, three
/// zero bytes, big-endian payload length.
pub fn frame_header(stream: u8, len: usize) -> [u8; 8] {
    let l = (len as u32).to_be_bytes();
    [stream, 0, 0, 0, l[0], l[1], l[2], l[3]]
}

/// How a container's process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitStatus {
    /// the exit code, or 128 + signal number when killed by a signal
    pub code: i32,
    /// RFC 3339 time of the exit
    pub finished_at: String,
    pub oom_killed: bool,
    /// the container was created but never told to start; the runtime
    /// gave up waiting and killed it
    pub never_started: bool,
}

/// What the runtime says about a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeState {
    /// nothing in the runtime answers for it
    Gone,
    /// its process exists: created (`started` false, waiting for `start`)
    /// or running
    Alive {
        pid: Option<i32>,
        started: bool,
    },
    Exited(ExitStatus),
}

/// A container to create: its bundle (the directory holding the mounted
/// rootfs the spec names) and its OCI spec.
pub struct CreateContainer<'a> {
    pub id: &'a str,
    pub bundle: PathBuf,
    pub spec: &'a oci_spec::runtime::Spec,
    /// the container's logging configuration, passed through to what
    /// copies its output (berth-logdriver's `Config`, as JSON)
    pub log: serde_json::Value,
    /// give the container a stdin that attach clients can write to
    pub stdin: bool,
}

/// Which of a container's streams an attach connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AttachIo {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// close the container's stdin when this client's input ends
    pub close_stdin: bool,
}

/// A process to run in a running container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecProcess {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub stdin: bool,
    pub tty: bool,
    /// the terminal's first size: (height, width)
    pub console_size: Option<(u16, u16)>,
    /// capabilities added to the container's (`exec --privileged`)
    pub add_caps: Vec<String>,
}

/// A started exec: its pid and its stream, which ends with a
/// [`STREAM_EXIT`] frame.
pub struct ExecStarted {
    pub pid: Option<i32>,
    pub stream: RuntimeStream,
}

/// The container runtime port. Containers are named by their id.
pub trait Runtime: Send + Sync {
    /// Creates the container; its process waits for [`Runtime::start`].
    /// Returns its init pid.
    fn create<'a>(&'a self, c: CreateContainer<'a>) -> BoxFuture<'a, RuntimeResult<i32>>;

    /// Starts a created container's process; its pid when known.
    fn start<'a>(&'a self, id: &'a str) -> BoxFuture<'a, RuntimeResult<Option<i32>>>;

    /// Sends a signal to the container's init.
    fn kill<'a>(&'a self, id: &'a str, signal: i32) -> BoxFuture<'a, RuntimeResult<()>>;

    fn state<'a>(&'a self, id: &'a str) -> BoxFuture<'a, RuntimeState>;

    /// Resolves when the container has exited, with its exit status; None
    /// when the runtime lost it without recording one.
    fn wait<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Option<ExitStatus>>;

    /// The exit status the runtime recorded, when nothing answers any more.
    fn recorded_exit(&self, id: &str) -> Option<ExitStatus>;

    /// Connects to the container's stdio.
    fn attach<'a>(
        &'a self,
        id: &'a str,
        io: AttachIo,
    ) -> BoxFuture<'a, RuntimeResult<RuntimeStream>>;

    fn exec<'a>(
        &'a self,
        id: &'a str,
        process: ExecProcess,
    ) -> BoxFuture<'a, RuntimeResult<ExecStarted>>;

    /// Resizes the container's terminal, or that of its exec `exec_pid`.
    fn resize<'a>(
        &'a self,
        id: &'a str,
        height: u16,
        width: u16,
        exec_pid: Option<i32>,
    ) -> BoxFuture<'a, RuntimeResult<()>>;

    /// Removes what an earlier run left of the container in the runtime
    /// (state that would make the next create fail, leftover processes).
    /// The caller has made sure nothing runs it any more.
    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, ()>;

    /// Forgets a removed container (its endpoints in the runtime).
    fn forget(&self, id: &str);

    /// At daemon start, before any container is restored: stops work an
    /// earlier daemon left half done, such as a container still being
    /// created for a start that daemon never finished.
    fn recover(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

#[doc(hidden)]
pub mod fake;
