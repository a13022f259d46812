//! Docker's json-file log format: one JSON object per line with the chunk,
//! its stream and an RFC 3339 nano timestamp. Lines longer than 16 KiB are
//! split into partial records, as dockerd does.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::file::RotatingFile;
use crate::{Logger, Message, Stream};

pub const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    pub log: String,
    pub stream: String,
    /// `--log-opt labels/env/...` attributes, shown by `logs --details`
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attrs: BTreeMap<String, String>,
    pub time: String,
}

/// Docker's rendering of a record's attributes for `logs --details`:
/// sorted `key=value` pairs, query-escaped, joined by commas.
pub fn attrs_text(attrs: &BTreeMap<String, String>) -> String {
    attrs
        .iter()
        .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
        .collect::<Vec<_>>()
        .join(",")
}

/// Go's url.QueryEscape
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Splits a stream's output into log records: complete lines, or 16 KiB
/// pieces of a longer line.
#[derive(Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
}

impl LineSplitter {
    pub fn push(&mut self, data: &[u8], mut emit: impl FnMut(&[u8])) {
        self.buf.extend_from_slice(data);
        // walk with an offset and drop what was emitted once: draining line
        // by line would move the rest of a 32 KiB read for every line
        let mut start = 0;
        loop {
            let rest = &self.buf[start..];
            if let Some(i) = rest.iter().position(|&b| b == b'\n') {
                for piece in rest[..=i].chunks(MAX_LINE) {
                    emit(piece);
                }
                start += i + 1;
            } else if rest.len() >= MAX_LINE {
                emit(&rest[..MAX_LINE]);
                start += MAX_LINE;
            } else {
                break;
            }
        }
        self.buf.drain(..start);
    }

    pub fn finish(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            emit(&rest);
        }
    }
}

/// A message as a json-file line: the newline a complete line had is
/// kept in `log`, as dockerd writes it.
pub fn encode(msg: &Message, attrs: &BTreeMap<String, String>) -> Vec<u8> {
    let mut log = String::from_utf8_lossy(&msg.line).into_owned();
    if !msg.partial {
        log.push('\n');
    }
    let rec = Record {
        log,
        stream: msg.stream.name().to_string(),
        attrs: attrs.clone(),
        time: rfc3339_nanos(msg.time),
    };
    let mut v = serde_json::to_vec(&rec).unwrap_or_default();
    v.push(b'\n');
    v
}

pub fn rfc3339_nanos(t: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// The `json-file` driver.
pub struct JsonFile {
    file: RotatingFile,
    attrs: BTreeMap<String, String>,
}

impl JsonFile {
    pub(crate) fn open(
        path: &std::path::Path,
        o: &BTreeMap<String, String>,
        attrs: BTreeMap<String, String>,
    ) -> anyhow::Result<JsonFile> {
        let (max_size, max_files, compress) = crate::opts::json_rotation(o)?;
        Ok(JsonFile {
            file: RotatingFile::open(path, max_size, max_files, compress)?,
            attrs,
        })
    }
}

impl Logger for JsonFile {
    fn log(&mut self, msgs: &[Message]) -> std::io::Result<()> {
        let recs: Vec<Vec<u8>> = msgs.iter().map(|m| encode(m, &self.attrs)).collect();
        self.file.write(&recs)
    }
}

impl Record {
    /// A `local` entry in json-file's terms (the local format keeps no
    /// attributes).
    pub fn from_entry(e: crate::local::Entry) -> Record {
        let mut log = String::from_utf8_lossy(&e.line).into_owned();
        if !e.partial {
            log.push('\n');
        }
        Record {
            log,
            stream: e.source,
            attrs: BTreeMap::new(),
            time: chrono::DateTime::<chrono::Utc>::from_timestamp_nanos(e.time_nano)
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        }
    }
}

/// Turns a piece of output from `LineSplitter` into a message.
pub fn message(stream: Stream, piece: &[u8]) -> Message {
    let partial = piece.last() != Some(&b'\n');
    let line = if partial {
        piece
    } else {
        &piece[..piece.len() - 1]
    };
    Message {
        stream,
        line: line.to_vec(),
        partial,
        time: std::time::SystemTime::now(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_and_long_pieces() {
        let mut s = LineSplitter::default();
        let mut out: Vec<Vec<u8>> = Vec::new();
        s.push(b"a\nb", |p| out.push(p.to_vec()));
        s.push(b"c\n", |p| out.push(p.to_vec()));
        assert_eq!(out, vec![b"a\n".to_vec(), b"bc\n".to_vec()]);
        out.clear();
        s.push(&vec![b'x'; MAX_LINE + 5], |p| out.push(p.to_vec()));
        assert_eq!(out.len(), 1);
        s.finish(|p| out.push(p.to_vec()));
        assert_eq!(out[1].len(), 5);
        let line = encode(&message(Stream::Stdout, b"hi\n"), &BTreeMap::new());
        assert!(!String::from_utf8_lossy(&line).contains("attrs"));
        let r: Record = serde_json::from_slice(&line).unwrap();
        assert_eq!(r.log, "hi\n");
    }

    #[test]
    fn attrs_render_as_docker_does() {
        let mut a = BTreeMap::new();
        a.insert("zeta".to_string(), "a b".to_string());
        a.insert("env".to_string(), "x=1&y".to_string());
        assert_eq!(attrs_text(&a), "env=x%3D1%26y,zeta=a+b");
        let line = encode(&message(Stream::Stderr, b"x\n"), &a);
        let r: Record = serde_json::from_slice(&line).unwrap();
        assert_eq!(r.attrs, a);
    }
}
