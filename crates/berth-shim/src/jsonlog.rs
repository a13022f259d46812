//! Docker's json-file log format: one JSON object per line with the chunk,
//! its stream and an RFC 3339 nano timestamp. Lines longer than 16 KiB are
//! split into partial records, as dockerd does.

use serde::{Deserialize, Serialize};

pub const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    pub log: String,
    pub stream: String,
    pub time: String,
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
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                for piece in line.chunks(MAX_LINE) {
                    emit(piece);
                }
            } else if self.buf.len() >= MAX_LINE {
                let piece: Vec<u8> = self.buf.drain(..MAX_LINE).collect();
                emit(&piece);
            } else {
                break;
            }
        }
    }

    pub fn finish(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            emit(&rest);
        }
    }
}

pub fn encode(stream: &str, chunk: &[u8]) -> Vec<u8> {
    let rec = Record {
        log: String::from_utf8_lossy(chunk).into_owned(),
        stream: stream.to_string(),
        time: now_rfc3339(),
    };
    let mut v = serde_json::to_vec(&rec).unwrap_or_default();
    v.push(b'\n');
    v
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
        let line = encode("stdout", b"hi\n");
        let r: Record = serde_json::from_slice(&line).unwrap();
        assert_eq!(r.log, "hi\n");
    }
}
