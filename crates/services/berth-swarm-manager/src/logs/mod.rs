//! Service and task logs across the swarm (swarmkit's log broker): what
//! travels between the API, managers and agents, and where each part
//! lives. An agent keeps a subscription stream open to the manager it
//! follows and publishes the lines a subscription asks for (`agent` in
//! `worker::logs`); each manager keeps a registry of those agents and of
//! its open subscriptions (`broker`), serves the agents' calls and the
//! other managers' relays (`rpc`), and gathers a request's lines from
//! every node (`gather`).

mod broker;
#[cfg(test)]
mod broker_tests;
pub mod decode;
mod gather;
mod rpc;

pub use broker::{Broker, BrokerEvent, LocalSubscription, SessionGuard};
pub use gather::LogTarget;

use berth_swarm_store::Task;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// What a subscription reads of each container's log (swarmkit's
/// LogSubscriptionOptions, with Docker's tail and since).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogOptions {
    pub follow: bool,
    /// the last N lines of each task; None for all
    #[serde(default)]
    pub tail: Option<usize>,
    /// unix seconds: lines written before are left out
    #[serde(default)]
    pub since: Option<f64>,
    pub stdout: bool,
    pub stderr: bool,
}

/// Whose logs: tasks of these services and these tasks.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogSelector {
    #[serde(default)]
    pub service_ids: Vec<String>,
    #[serde(default)]
    pub task_ids: Vec<String>,
}

impl LogSelector {
    pub fn matches(&self, t: &Task) -> bool {
        self.task_ids.contains(&t.id) || self.service_ids.contains(&t.service_id)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Stdout,
    Stderr,
}

impl LogStream {
    /// The stream's id in Docker's multiplexed frames.
    pub fn frame_id(self) -> u8 {
        match self {
            LogStream::Stdout => 1,
            LogStream::Stderr => 2,
        }
    }
}

/// One record of a container's log, as the executor reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub stream: LogStream,
    /// when the engine logged it, unix nanoseconds
    pub timestamp: i64,
    /// the record's own attributes (the log driver's `labels`/`env`)
    pub attrs: Vec<(String, String)>,
    /// the line as logged, newline included
    pub line: Vec<u8>,
}

/// A line with the task it came from, as managers pass it on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub node_id: String,
    pub service_id: String,
    pub task_id: String,
    pub stream: LogStream,
    pub timestamp: i64,
    #[serde(default)]
    pub attrs: Vec<(String, String)>,
    #[serde(with = "base64_bytes")]
    pub data: Vec<u8>,
}

/// What a log request yields, in order: lines, and at the end of a
/// request without follow the warning naming what could not be read.
#[derive(Clone, Debug, PartialEq)]
pub enum LogEvent {
    Line(LogLine),
    /// swarmkit's stream error; dockerd writes it as a system-error frame
    Error(String),
}

/// A log request's answer: whether the tasks run with a terminal (their
/// lines are sent raw, unframed), and the lines as they come.
pub struct LogFeed {
    pub tty: bool,
    pub events: mpsc::Receiver<LogEvent>,
}

/// A subscription as a manager hands it to an agent; `close` ends one
/// the agent is serving.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionMessage {
    pub id: String,
    pub selector: LogSelector,
    pub options: LogOptions,
    #[serde(default)]
    pub close: bool,
}

/// What an agent publishes for a subscription: lines, and last a message
/// with `close` set (and the error that ended it, if one did).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PublishMessage {
    pub subscription_id: String,
    #[serde(default)]
    pub lines: Vec<LogLine>,
    #[serde(default)]
    pub close: bool,
    #[serde(default)]
    pub error: Option<String>,
}

/// A manager asks another for the lines of the agents connected to it:
/// of `nodes`, or of every node when following.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RelayRequest {
    pub selector: LogSelector,
    pub options: LogOptions,
    #[serde(default)]
    pub nodes: Option<Vec<String>>,
}

/// A relaying manager's answer: first the nodes it serves, then their
/// lines and each node's end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelayMessage {
    Served(Vec<String>),
    Lines(Vec<LogLine>),
    NodeDone { node: String, error: Option<String> },
}

/// Log bytes as base64 in the JSON messages (a JSON array of numbers
/// would triple them).
mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}
