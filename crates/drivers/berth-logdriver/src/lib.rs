//! Where a container's output goes: Docker's logging drivers.
//!
//! The shim owns a container's output, so the drivers run there: a daemon
//! that is restarted or killed loses no line. The engine validates the
//! options (`validate`), fills in what a driver must know of its container
//! (`Info`) and reads the files back for `logs` (`source`).
//!
//! - `json-file` and `local` write files with rotation;
//! - `syslog`, `gelf`, `fluentd` and `journald` send to a receiver, and
//!   keep a local cache that `logs` reads (dual logging, as Docker 20.10);
//! - `cri-file` writes the CRI's format where the kubelet says (for
//!   containers the CRI endpoint makes; not listed in `info`);
//! - `mode=non-blocking` puts a bounded buffer between the container and a
//!   slow driver, and drops messages when it is full.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Result;
use serde::{Deserialize, Serialize};

pub mod crilog;
mod file;
mod fluentd;
mod gelf;
mod journald;
pub mod jsonlog;
pub mod local;
mod msgpack;
mod net;
mod nonblocking;
mod opts;
mod syslog;

pub use file::rotated_files;
pub use opts::{DRIVERS, render_tag, validate};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One line of a container's output (or a 16 KiB piece of a longer one).
#[derive(Debug, Clone)]
pub struct Message {
    pub stream: Stream,
    /// without its newline
    pub line: Vec<u8>,
    /// no newline ended it: the rest follows in the next message
    pub partial: bool,
    pub time: SystemTime,
}

pub(crate) fn unix_nanos(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i64,
        Err(_) => 0,
    }
}

/// What the drivers know of their container; the engine fills it in.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Info {
    /// the full id
    pub id: String,
    /// the name, without Docker's leading slash
    pub name: String,
    pub image_id: String,
    pub image_name: String,
    /// the command line, entrypoint and arguments joined by spaces
    pub command: String,
    /// RFC 3339
    pub created: String,
    /// `--log-opt tag=…` rendered (the short id by default)
    pub tag: String,
    /// the labels and environment variables `labels`/`env` chose
    pub attrs: BTreeMap<String, String>,
    /// the daemon's host name
    pub hostname: String,
    /// the pid syslog messages carry (the daemon's, as dockerd's)
    pub daemon_pid: u32,
}

/// A container's logging: the driver, its options (validated, defaults
/// filled in) and where its files go.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub driver: String,
    pub opts: BTreeMap<String, String>,
    pub info: Info,
    /// the container's directory
    pub dir: PathBuf,
}

/// How a log file stores its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Local,
}

/// The file `logs` reads for a container, if its driver keeps one.
pub fn source(
    driver: &str,
    opts: &BTreeMap<String, String>,
    dir: &Path,
    id: &str,
) -> Option<(PathBuf, Format)> {
    match driver {
        "none" => None,
        "json-file" | "" => Some((json_path(dir, id), Format::Json)),
        "local" => Some((dir.join("local-logs").join("container.log"), Format::Local)),
        _ if opts::cache_disabled(opts) => None,
        _ => Some((dir.join("container-cached.log"), Format::Local)),
    }
}

/// Where json-file writes (Docker's `<id>-json.log`).
pub fn json_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}-json.log"))
}

/// A destination for a container's output.
pub trait Logger: Send {
    /// Delivers messages in order. An error is reported by the caller (once
    /// per outage); the messages of a failed call are not sent again.
    fn log(&mut self, msgs: &[Message]) -> std::io::Result<()>;

    /// Delivers the pieces `jsonlog::LineSplitter` cut from one read of a
    /// stream, all stamped `time`. json-file encodes them straight from
    /// the bytes; the others take them as messages.
    fn log_pieces(
        &mut self,
        stream: Stream,
        time: SystemTime,
        pieces: jsonlog::Pieces<'_>,
    ) -> std::io::Result<()> {
        let msgs: Vec<Message> = pieces
            .map(|p| jsonlog::message_at(stream, p, time))
            .collect();
        self.log(&msgs)
    }
}

/// Sends each message on its own, as dockerd does: one that fails does
/// not take the rest of the batch with it. Returns the first error.
pub(crate) fn each(
    msgs: &[Message],
    mut send: impl FnMut(&Message) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut first = None;
    for m in msgs {
        if let Err(e) = send(m) {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

/// Opens the configured driver: connects to its receiver or opens its
/// file. An error here fails the container's start, as in Docker.
pub fn open(cfg: &Config) -> Result<Option<Box<dyn Logger>>> {
    let o = &cfg.opts;
    let primary: Box<dyn Logger> = match cfg.driver.as_str() {
        "none" => return Ok(None),
        "json-file" | "" => Box::new(jsonlog::JsonFile::open(
            &json_path(&cfg.dir, &cfg.info.id),
            o,
            cfg.info.attrs.clone(),
        )?),
        "local" => Box::new(LocalFile::open(
            &cfg.dir.join("local-logs").join("container.log"),
            o,
            "",
        )?),
        "syslog" => Box::new(syslog::Syslog::open(o, &cfg.info)?),
        "gelf" => Box::new(gelf::Gelf::open(o, &cfg.info)?),
        "fluentd" => fluentd::Fluentd::open(o, &cfg.info)?,
        "journald" => Box::new(journald::Journald::open(o, &cfg.info)?),
        crilog::DRIVER => Box::new(crilog::CriFile::open(&crilog::path_of(o)?)?),
        other => anyhow::bail!("logger: no log driver named '{other}' is registered"),
    };
    let with_cache: Box<dyn Logger> = match source(&cfg.driver, o, &cfg.dir, &cfg.info.id) {
        Some((path, Format::Local)) if cfg.driver != "local" => Box::new(Cached {
            cache: LocalFile::open(&path, o, "cache-")?,
            primary,
            failing: false,
        }),
        _ => primary,
    };
    if o.get("mode").is_some_and(|m| m == "non-blocking") {
        let max = opts::buffer_size(o)?;
        return Ok(Some(Box::new(nonblocking::NonBlocking::new(
            with_cache, max,
        )?)));
    }
    Ok(Some(with_cache))
}

/// The `local` driver's file, also the cache of dual logging (whose
/// options are the same with a `cache-` prefix).
pub(crate) struct LocalFile {
    file: file::RotatingFile,
}

impl LocalFile {
    fn open(path: &Path, o: &BTreeMap<String, String>, prefix: &str) -> Result<LocalFile> {
        let (max_size, max_files, compress) = opts::local_rotation(o, prefix)?;
        local::cut_torn_tail(path)?;
        Ok(LocalFile {
            file: file::RotatingFile::open(path, max_size, max_files, compress)?,
        })
    }
}

impl Logger for LocalFile {
    fn log(&mut self, msgs: &[Message]) -> std::io::Result<()> {
        let recs: Vec<Vec<u8>> = msgs.iter().map(local::encode).collect();
        self.file.write(&recs)
    }
}

/// Dual logging: every message goes to the local cache first, then to the
/// remote driver.
struct Cached {
    cache: LocalFile,
    primary: Box<dyn Logger>,
    failing: bool,
}

impl Logger for Cached {
    fn log(&mut self, msgs: &[Message]) -> std::io::Result<()> {
        if let Err(e) = self.cache.log(msgs) {
            tracing::warn!(error = %e, "writing the log cache");
        }
        // the cache has the messages: a failing driver is reported once
        // per outage, not once per line
        match self.primary.log(msgs) {
            Ok(()) => self.failing = false,
            Err(_) if self.failing => {}
            Err(e) => {
                self.failing = true;
                tracing::warn!(error = %e, "log driver failed; messages are kept in the cache only");
            }
        }
        Ok(())
    }
}

/// Options from pairs, for the drivers' tests.
#[cfg(test)]
pub(crate) fn test_opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
