//! A container's log as the engine streams it, back into records: the
//! executor asks the engine for timestamps and details on every line and
//! reads them here. Frames are Docker's multiplexed ones
//! ([stream,0,0,0,len_be32] + payload); a terminal's log comes raw, one
//! record per chunk.

use super::{LogEntry, LogStream};

const HEADER: usize = 8;

/// Cuts the engine's chunks into log entries.
pub struct EntryDecoder {
    raw: bool,
    pending: Vec<u8>,
}

impl EntryDecoder {
    /// `raw`: the container has a terminal, its log comes unframed.
    pub fn new(raw: bool) -> EntryDecoder {
        EntryDecoder {
            raw,
            pending: Vec::new(),
        }
    }

    /// The entries whose bytes are complete after `chunk`; a frame cut
    /// between chunks waits for the rest.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<LogEntry>, String> {
        if self.raw {
            return Ok(parse_record(LogStream::Stdout, chunk).into_iter().collect());
        }
        self.pending.extend_from_slice(chunk);
        let mut out = Vec::new();
        let mut at = 0;
        while self.pending.len() - at >= HEADER {
            let head = &self.pending[at..at + HEADER];
            let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
            if self.pending.len() - at - HEADER < len {
                break;
            }
            let stream = match head[0] {
                1 => LogStream::Stdout,
                2 => LogStream::Stderr,
                other => return Err(format!("log frame of unknown stream {other}")),
            };
            let payload = &self.pending[at + HEADER..at + HEADER + len];
            out.extend(parse_record(stream, payload));
            at += HEADER + len;
        }
        self.pending.drain(..at);
        Ok(out)
    }
}

/// "<rfc3339 time> <attrs> <line>", as the engine writes a record with
/// timestamps and details; None for a record without them.
pub fn parse_record(stream: LogStream, payload: &[u8]) -> Option<LogEntry> {
    let (time, rest) = split_space(payload)?;
    let time = std::str::from_utf8(time).ok()?;
    let timestamp = chrono::DateTime::parse_from_rfc3339(time)
        .ok()?
        .timestamp_nanos_opt()?;
    let (attrs, line) = split_space(rest)?;
    Some(LogEntry {
        stream,
        timestamp,
        attrs: parse_attrs(std::str::from_utf8(attrs).ok()?),
        line: line.to_vec(),
    })
}

fn split_space(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = b.iter().position(|c| *c == b' ')?;
    Some((&b[..at], &b[at + 1..]))
}

/// `k=v,k2=v2`, query-escaped as Docker writes details.
pub fn parse_attrs(text: &str) -> Vec<(String, String)> {
    text.split(',')
        .filter(|p| !p.is_empty())
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((query_unescape(k), query_unescape(v)))
        })
        .collect()
}

/// Go's url.QueryEscape, which Docker's details use.
pub fn query_escape(s: &str) -> String {
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

fn query_unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let escaped = (b[i] == b'%' && i + 2 < b.len())
            .then(|| Some(hex(b[i + 1])? << 4 | hex(b[i + 2])?))
            .flatten();
        match (b[i], escaped) {
            (_, Some(v)) => {
                out.push(v);
                i += 2;
            }
            (b'+', None) => out.push(b' '),
            (c, None) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Docker's details text for a line: its attributes sorted by key,
/// query-escaped, `k=v` joined by commas (logstream's attrsByteSlice).
pub fn details_text(attrs: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = attrs.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    sorted
        .iter()
        .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![stream, 0, 0, 0];
        f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    const T: &str = "2024-05-01T10:20:30.123456789Z";
    const T_NANOS: i64 = 1_714_558_830_123_456_789;

    #[test]
    fn frames_become_entries_with_stream_time_and_line() {
        let mut d = EntryDecoder::new(false);
        let mut bytes = frame(1, format!("{T}  hello\n").as_bytes());
        bytes.extend(frame(2, format!("{T} a=b%2Cc,z=1 oops\n").as_bytes()));
        let got = d.push(&bytes).expect("decodes");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].stream, LogStream::Stdout);
        assert_eq!(got[0].timestamp, T_NANOS);
        assert_eq!(got[0].line, b"hello\n");
        assert!(got[0].attrs.is_empty());
        assert_eq!(got[1].stream, LogStream::Stderr);
        assert_eq!(
            got[1].attrs,
            vec![("a".into(), "b,c".into()), ("z".into(), "1".into())]
        );
        assert_eq!(got[1].line, b"oops\n");
    }

    #[test]
    fn a_frame_cut_between_chunks_waits_for_its_rest() {
        let mut d = EntryDecoder::new(false);
        let bytes = frame(1, format!("{T}  one line\n").as_bytes());
        assert!(d.push(&bytes[..5]).expect("header part").is_empty());
        assert!(d.push(&bytes[5..20]).expect("payload part").is_empty());
        let got = d.push(&bytes[20..]).expect("rest");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].line, b"one line\n");
    }

    #[test]
    fn an_unknown_stream_is_an_error() {
        let mut d = EntryDecoder::new(false);
        assert!(d.push(&frame(7, b"x")).is_err());
    }

    #[test]
    fn a_terminal_log_comes_raw_one_record_per_chunk() {
        let mut d = EntryDecoder::new(true);
        let got = d
            .push(format!("{T}  $ prompt\r\n").as_bytes())
            .expect("raw");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].stream, LogStream::Stdout);
        assert_eq!(got[0].line, b"$ prompt\r\n");
    }

    #[test]
    fn a_record_without_a_time_is_dropped() {
        assert_eq!(parse_record(LogStream::Stdout, b"no-time here\n"), None);
    }

    #[test]
    fn details_are_sorted_and_escaped_as_docker_writes_them() {
        let attrs = vec![
            ("com.docker.swarm.task.id".to_string(), "t1".to_string()),
            ("com.docker.swarm.node.id".to_string(), "n1".to_string()),
            ("com.docker.swarm.service.id".to_string(), "s1".to_string()),
            ("a key".to_string(), "x/y".to_string()),
        ];
        assert_eq!(
            details_text(&attrs),
            "a+key=x%2Fy,com.docker.swarm.node.id=n1,com.docker.swarm.service.id=s1,com.docker.swarm.task.id=t1"
        );
    }

    #[test]
    fn escaping_round_trips() {
        for s in ["plain", "sp ace", "a,b=c%d", "ünï"] {
            assert_eq!(query_unescape(&query_escape(s)), s);
        }
    }
}
