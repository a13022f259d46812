//! One request per connection: the client writes a JSON line, the shim
//! answers with a JSON line. For `attach` the connection then carries
//! Docker's multiplexed stream frames (shim to client) and raw stdin bytes
//! (client to shim) until the container exits.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Start the created container's process.
    Start,
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
        /// close the container's stdin when this client's input ends
        close_stdin: bool,
    },
    /// Answer once the container has exited (at once if it has).
    Wait,
    Kill {
        signal: i32,
    },
    State,
    /// Run a process in the running container. The answer carries its pid;
    /// then the connection carries its output frames, and a last frame on
    /// `STREAM_EXIT` with the exit code as a decimal string.
    Exec {
        args: Vec<String>,
        env: Vec<String>,
        cwd: String,
        uid: u32,
        gid: u32,
        additional_gids: Vec<u32>,
        stdin: bool,
        /// run it on a pseudo-terminal; its output then comes as stdout frames
        #[serde(default)]
        tty: bool,
        /// the terminal's first size: (height, width)
        #[serde(default)]
        console_size: Option<(u16, u16)>,
        /// capabilities added to the container's (`exec --privileged`)
        #[serde(default)]
        add_caps: Vec<String>,
    },
    /// Resize the container's terminal, or an exec process's.
    Resize {
        height: u16,
        width: u16,
        #[serde(default)]
        exec_pid: Option<i32>,
    },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitStatus>,
    /// in answer to State: whether the container's process was started
    /// (None from shims older than the field, which were always started by
    /// the time the daemon could ask)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<bool>,
}

impl Response {
    pub fn ok() -> Self {
        Response {
            ok: true,
            ..Default::default()
        }
    }
    pub fn err(e: impl ToString) -> Self {
        Response {
            ok: false,
            error: Some(e.to_string()),
            ..Default::default()
        }
    }
}

/// Written to `exit.json` in the shim's state directory before the shim
/// reports an exit, so that the status survives the shim and the daemon.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExitStatus {
    /// the exit code, or 128 + signal number when killed by a signal
    pub code: i32,
    /// RFC 3339 time of the exit
    pub finished_at: String,
    #[serde(default)]
    pub oom_killed: bool,
    /// the daemon never said start: the shim gave up waiting and killed
    /// the container's init (absent, so false, from older shims)
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub never_started: bool,
}

/// The first line a shim prints on its stdout: "ok <pid>" once the container
/// is created, or "err <message>".
pub const READY_OK: &str = "ok";

/// Stream ids of Docker's multiplexed stream format.
pub const STREAM_STDIN: u8 = 0;
pub const STREAM_STDOUT: u8 = 1;
pub const STREAM_STDERR: u8 = 2;
/// Not a Docker stream: the shim's trailer frame carrying an exec's exit code.
pub const STREAM_EXIT: u8 = 255;

/// A frame header of Docker's multiplexed stream format: stream id, three
/// zero bytes, big-endian payload length.
pub fn frame_header(stream: u8, len: usize) -> [u8; 8] {
    let l = (len as u32).to_be_bytes();
    [stream, 0, 0, 0, l[0], l[1], l[2], l[3]]
}
