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
    /// the front of `buf` that the last `feed` handed out
    taken: usize,
}

impl LineSplitter {
    pub fn push(&mut self, data: &[u8], mut emit: impl FnMut(&[u8])) {
        for piece in self.feed(data) {
            emit(piece);
        }
    }

    /// Adds `data` and returns the pieces it completes. What they leave (a
    /// line that did not end yet, under 16 KiB) waits for the next call.
    pub fn feed(&mut self, data: &[u8]) -> Pieces<'_> {
        // drop what was handed out once, not line by line: draining each
        // line would move the rest of a 32 KiB read for every line
        self.buf.drain(..self.taken);
        let old = self.buf.len();
        self.buf.extend_from_slice(data);
        // the old rest holds no newline: only the new data can end a line
        let lines = memchr::memrchr(b'\n', &self.buf[old..]).map_or(0, |i| old + i + 1);
        // after the last newline, whole 16 KiB pieces go out as they are
        let rest = self.buf.len() - lines;
        self.taken = lines + rest / MAX_LINE * MAX_LINE;
        Pieces::new(&self.buf[..self.taken])
    }

    pub fn finish(&mut self, mut emit: impl FnMut(&[u8])) {
        if let Some(rest) = self.take_rest() {
            emit(&rest);
        }
    }

    /// What is left at the end of the stream: a last line that no newline
    /// ended, as one piece.
    pub fn take_rest(&mut self) -> Option<Vec<u8>> {
        self.buf.drain(..self.taken);
        self.taken = 0;
        (!self.buf.is_empty()).then(|| std::mem::take(&mut self.buf))
    }
}

/// The pieces a `LineSplitter` cut: each line with its newline, a line
/// longer than 16 KiB as 16 KiB pieces and the rest.
#[derive(Clone)]
pub struct Pieces<'a> {
    buf: &'a [u8],
    pos: usize,
    /// where the line being cut ends (after its newline)
    line_end: usize,
}

impl<'a> Pieces<'a> {
    /// The pieces of `buf`, which ends with a newline or is a rest of whole
    /// 16 KiB pieces after the last one; a rest shorter than that is one
    /// piece.
    pub fn new(buf: &'a [u8]) -> Pieces<'a> {
        Pieces {
            buf,
            pos: 0,
            line_end: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }
}

impl<'a> Iterator for Pieces<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.pos >= self.buf.len() {
            return None;
        }
        if self.line_end <= self.pos {
            self.line_end = memchr::memchr(b'\n', &self.buf[self.pos..])
                .map_or(self.buf.len(), |i| self.pos + i + 1);
        }
        let end = self.line_end.min(self.pos + MAX_LINE);
        let piece = &self.buf[self.pos..end];
        self.pos = end;
        Some(piece)
    }
}

/// A message as a json-file line: the newline a complete line had is
/// kept in `log`, as dockerd writes it.
pub fn encode(msg: &Message, attrs: &BTreeMap<String, String>) -> Vec<u8> {
    let mut enc = Encoder::new(attrs);
    let mut out = Vec::new();
    enc.stamp(msg.stream, msg.time);
    enc.record(&mut out, &msg.line, msg.partial);
    out
}

pub fn rfc3339_nanos(t: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Writes json-file records without building them as values: the line is
/// escaped straight into the output, and what follows it (stream,
/// attributes, time) is formatted once per stamp, the date and time of day
/// once per second.
pub struct Encoder {
    /// `,"attrs":{…}` or nothing
    attrs: Vec<u8>,
    /// the second `date` holds, as seconds since the epoch
    second: Option<u64>,
    /// `2026-01-02T03:04:05` of that second
    date: String,
    /// `","stream":"stdout"…,"time":"2026-…Z"}` and the newline
    tail: Vec<u8>,
}

impl Encoder {
    pub fn new(attrs: &BTreeMap<String, String>) -> Encoder {
        let attrs = if attrs.is_empty() {
            Vec::new()
        } else {
            let mut v = b",\"attrs\":".to_vec();
            v.extend(serde_json::to_vec(attrs).unwrap_or_else(|_| b"{}".to_vec()));
            v
        };
        Encoder {
            attrs,
            second: None,
            date: String::new(),
            tail: Vec::new(),
        }
    }

    /// Sets the stream and time of the records that follow.
    pub fn stamp(&mut self, stream: Stream, time: std::time::SystemTime) {
        self.tail.clear();
        self.tail.extend_from_slice(b"\",\"stream\":\"");
        self.tail.extend_from_slice(stream.name().as_bytes());
        self.tail.push(b'"');
        self.tail.extend_from_slice(&self.attrs);
        self.tail.extend_from_slice(b",\"time\":\"");
        match time.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => {
                let secs = d.as_secs();
                if self.second != Some(secs) {
                    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
                    let mut date = chrono::DateTime::<chrono::Utc>::from(t)
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                    date.pop(); // the Z
                    self.date = date;
                    self.second = Some(secs);
                }
                self.tail.extend_from_slice(self.date.as_bytes());
                let mut frac = *b".000000000Z";
                let mut n = d.subsec_nanos();
                for b in frac[1..10].iter_mut().rev() {
                    *b = b'0' + (n % 10) as u8;
                    n /= 10;
                }
                self.tail.extend_from_slice(&frac);
            }
            // before 1970: not worth a cache
            Err(_) => self.tail.extend_from_slice(rfc3339_nanos(time).as_bytes()),
        }
        self.tail.extend_from_slice(b"\"}\n");
    }

    /// Appends the record of one piece, stamped as the last `stamp` said;
    /// a complete line keeps its newline in `log`.
    pub fn record(&self, out: &mut Vec<u8>, line: &[u8], partial: bool) {
        out.reserve(line.len() + 16 + self.tail.len());
        out.extend_from_slice(b"{\"log\":\"");
        escape_lossy(out, line);
        if !partial {
            out.extend_from_slice(b"\\n");
        }
        out.extend_from_slice(&self.tail);
    }
}

/// Appends `bytes` as the inside of a JSON string, as serde_json escapes a
/// string and with invalid UTF-8 replaced as `String::from_utf8_lossy`
/// does.
pub fn escape_lossy(out: &mut Vec<u8>, bytes: &[u8]) {
    if std::str::from_utf8(bytes).is_ok() {
        escape_valid(out, bytes);
        return;
    }
    for chunk in bytes.utf8_chunks() {
        escape_valid(out, chunk.valid().as_bytes());
        if !chunk.invalid().is_empty() {
            out.extend_from_slice("\u{FFFD}".as_bytes());
        }
    }
}

/// The escape of each byte serde_json escapes: the character after the
/// backslash, `u` for `\u00XX`, 0 for none.
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// Whether any byte of `w` is a control character, `"` or `\`.
#[inline]
fn word_needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH != 0;
    // a byte below 0x20 (bytes from 0x80 up have the high bit: no match)
    w.wrapping_sub(ONES * 0x20) & !w & HIGH != 0
        || has_zero(w ^ (ONES * b'"' as u64))
        || has_zero(w ^ (ONES * b'\\' as u64))
}

/// `s` is valid UTF-8: only ASCII bytes are escaped, so runs between them
/// are copied whole, eight bytes are checked at a time.
fn escape_valid(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut run = 0;
    let mut i = 0;
    while i < s.len() {
        while let Some(w) = s.get(i..i + 8) {
            if word_needs_escape(u64::from_le_bytes(w.try_into().unwrap_or_default())) {
                break;
            }
            i += 8;
        }
        // byte by byte to the end of the word that has one
        let stop = (i + 8).min(s.len());
        while i < stop {
            let b = s[i];
            let e = ESCAPE[b as usize];
            if e != 0 {
                out.extend_from_slice(&s[run..i]);
                if e == b'u' {
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[(b >> 4) as usize]);
                    out.push(HEX[(b & 0xf) as usize]);
                } else {
                    out.push(b'\\');
                    out.push(e);
                }
                run = i + 1;
            }
            i += 1;
        }
    }
    out.extend_from_slice(&s[run..]);
}

/// The `json-file` driver.
pub struct JsonFile {
    file: RotatingFile,
    enc: Encoder,
    /// the records of one call, and where each ends
    buf: Vec<u8>,
    ends: Vec<usize>,
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
            enc: Encoder::new(&attrs),
            buf: Vec::new(),
            ends: Vec::new(),
        })
    }
}

impl JsonFile {
    fn write(&mut self) -> std::io::Result<()> {
        let res = self.file.write_batch(&self.buf, &self.ends);
        self.buf.clear();
        self.ends.clear();
        // a burst of long or control-heavy lines does not stay resident
        if self.buf.capacity() > 1 << 20 {
            self.buf = Vec::new();
        }
        res
    }
}

impl Logger for JsonFile {
    fn log(&mut self, msgs: &[Message]) -> std::io::Result<()> {
        for m in msgs {
            self.enc.stamp(m.stream, m.time);
            self.enc.record(&mut self.buf, &m.line, m.partial);
            self.ends.push(self.buf.len());
        }
        self.write()
    }

    fn log_pieces(
        &mut self,
        stream: Stream,
        time: std::time::SystemTime,
        pieces: Pieces<'_>,
    ) -> std::io::Result<()> {
        self.enc.stamp(stream, time);
        for piece in pieces {
            let (line, partial) = split_newline(piece);
            self.enc.record(&mut self.buf, line, partial);
            self.ends.push(self.buf.len());
        }
        self.write()
    }
}

/// A piece's line without its newline, and whether none ended it.
fn split_newline(piece: &[u8]) -> (&[u8], bool) {
    match piece.split_last() {
        Some((b'\n', line)) => (line, false),
        _ => (piece, true),
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
    message_at(stream, piece, std::time::SystemTime::now())
}

/// A piece as a message stamped `time`.
pub fn message_at(stream: Stream, piece: &[u8], time: std::time::SystemTime) -> Message {
    let (line, partial) = split_newline(piece);
    Message {
        stream,
        line: line.to_vec(),
        partial,
        time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    /// The encoder before it wrote records straight from the bytes: the
    /// reference the fast one must match byte for byte.
    fn old_encode(msg: &Message, attrs: &BTreeMap<String, String>) -> Vec<u8> {
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

    /// The splitter before it handed out pieces from one pass.
    #[derive(Default)]
    struct OldSplitter {
        buf: Vec<u8>,
    }

    impl OldSplitter {
        fn push(&mut self, data: &[u8], mut emit: impl FnMut(&[u8])) {
            self.buf.extend_from_slice(data);
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

        fn finish(&mut self, mut emit: impl FnMut(&[u8])) {
            if !self.buf.is_empty() {
                let rest = std::mem::take(&mut self.buf);
                emit(&rest);
            }
        }
    }

    /// A small deterministic generator for the corpus.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn corpus() -> Vec<Vec<u8>> {
        let mut lines: Vec<Vec<u8>> = [
            &b""[..],
            b"hello world",
            b"a",
            b"1234567",
            b"12345678",
            b"123456789",
            b"say \"hi\" to C:\\dir\\",
            b"\"",
            b"\\",
            b"<script>alert('x') && 1 > 0</script>",
            b"tab\there\rcarriage\x08bs\x0cff\x00nul\x01\x1f\x7fdel\x1b[31mred",
            b"\r",
            b"crlf line\r",
            "caf\u{e9} \u{65e5}\u{672c}\u{8a9e} \u{1f600} \u{2028}\u{2029}".as_bytes(),
            b"\xff",
            b"bad \xc3 here",
            b"\xe6\x97 cut three-byte",
            b"\xf0\x9f\x98 cut four-byte",
            b"\xed\xa0\x80 surrogate",
            b"\xc0\xaf overlong",
            b"\x80\x80\x80\x80\x80\x80\x80\x80\x80 continuation bytes",
            b"ok\xf5\xff\xfe",
            b"1234567\"",
            b"12345678\\",
            b"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"",
        ]
        .iter()
        .map(|l| l.to_vec())
        .collect();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let alphabet: Vec<Vec<u8>> = vec![
            b"a".to_vec(),
            b"Z".to_vec(),
            b" ".to_vec(),
            b"\"".to_vec(),
            b"\\".to_vec(),
            b"<".to_vec(),
            b">".to_vec(),
            b"&".to_vec(),
            b"\t".to_vec(),
            b"\r".to_vec(),
            b"\x00".to_vec(),
            b"\x1f".to_vec(),
            b"\x7f".to_vec(),
            "\u{e9}".as_bytes().to_vec(),
            "\u{20ac}".as_bytes().to_vec(),
            "\u{1f600}".as_bytes().to_vec(),
            b"\xff".to_vec(),
            b"\xc3".to_vec(),
            b"\xe2\x82".to_vec(),
            b"\x80".to_vec(),
        ];
        for _ in 0..2000 {
            let len = rng.below(64);
            let mut l = Vec::new();
            for _ in 0..len {
                // mostly plain text, as real output is
                if rng.below(4) == 0 {
                    l.extend_from_slice(&alphabet[rng.below(alphabet.len())]);
                } else {
                    l.push(b'a' + rng.below(26) as u8);
                }
            }
            lines.push(l);
        }
        lines.push(vec![b'x'; MAX_LINE]);
        lines.push("\u{e9}".repeat(MAX_LINE / 2 + 1).into_bytes());
        lines
    }

    fn times() -> Vec<SystemTime> {
        vec![
            UNIX_EPOCH,
            UNIX_EPOCH + Duration::new(1_780_000_000, 0),
            UNIX_EPOCH + Duration::new(1_780_000_000, 1),
            UNIX_EPOCH + Duration::new(1_780_000_000, 999_999_999),
            UNIX_EPOCH + Duration::new(1_780_000_001, 120_000_000),
            UNIX_EPOCH + Duration::new(951_782_400, 5), // 2000-02-29
            UNIX_EPOCH + Duration::new(4_102_444_799, 999_999_999),
            UNIX_EPOCH - Duration::new(86_400, 250),
            SystemTime::now(),
        ]
    }

    #[test]
    fn encoder_matches_the_old_one() {
        let mut attrs = BTreeMap::new();
        attrs.insert("com.example/x".to_string(), "a \"b\" <c>\n".to_string());
        attrs.insert("env".to_string(), "caf\u{e9}".to_string());
        let lines = corpus();
        for attrs in [BTreeMap::new(), attrs] {
            let mut enc = Encoder::new(&attrs);
            for (i, t) in times().into_iter().enumerate() {
                for (j, line) in lines.iter().enumerate() {
                    for partial in [false, true] {
                        let stream = if (i + j) % 2 == 0 {
                            Stream::Stdout
                        } else {
                            Stream::Stderr
                        };
                        let msg = Message {
                            stream,
                            line: line.clone(),
                            partial,
                            time: t,
                        };
                        let want = old_encode(&msg, &attrs);
                        // a fresh encoder, and one whose caches are warm
                        assert_eq!(encode(&msg, &attrs), want, "line {line:?}");
                        let mut out = b"before".to_vec();
                        enc.stamp(stream, t);
                        enc.record(&mut out, line, partial);
                        assert_eq!(&out[6..], &want[..], "line {line:?} at {t:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn timestamps_match_chrono_across_seconds() {
        let mut enc = Encoder::new(&BTreeMap::new());
        let mut rng = Rng(12345);
        let base = 1_700_000_000u64;
        for _ in 0..5000 {
            // close times, so that the cached second is used and replaced
            let t = UNIX_EPOCH
                + Duration::new(base + rng.below(4) as u64, rng.below(1_000_000_000) as u32);
            enc.stamp(Stream::Stdout, t);
            let mut out = Vec::new();
            enc.record(&mut out, b"x", false);
            let want = format!(
                "{{\"log\":\"x\\n\",\"stream\":\"stdout\",\"time\":\"{}\"}}\n",
                rfc3339_nanos(t)
            );
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }

    #[test]
    fn splitter_cuts_as_before() {
        // the corpus's lines joined into one stream, read in chunks of
        // assorted sizes: the same pieces as the old splitter, in order
        let mut stream = Vec::new();
        for (i, l) in corpus().iter().enumerate() {
            stream.extend_from_slice(l);
            if i % 7 != 3 {
                stream.push(b'\n');
            }
        }
        stream.extend(vec![b'y'; 3 * MAX_LINE + 17]);
        stream.push(b'\n');
        stream.extend(vec![b'z'; 2 * MAX_LINE]);
        stream.push(b'\n');
        stream.extend(vec![b'w'; MAX_LINE]);
        stream.extend_from_slice(b"\n\n\nunfinished");
        for chunk in [
            1,
            2,
            7,
            100,
            4096,
            MAX_LINE - 1,
            MAX_LINE,
            MAX_LINE + 1,
            32 * 1024,
        ] {
            let mut old = OldSplitter::default();
            let mut new = LineSplitter::default();
            let (mut want, mut got): (Vec<Vec<u8>>, Vec<Vec<u8>>) = (Vec::new(), Vec::new());
            for c in stream.chunks(chunk) {
                old.push(c, |p| want.push(p.to_vec()));
                got.extend(new.feed(c).map(|p| p.to_vec()));
            }
            old.finish(|p| want.push(p.to_vec()));
            new.finish(|p| got.push(p.to_vec()));
            assert_eq!(got.len(), want.len(), "chunks of {chunk}");
            assert!(got == want, "chunks of {chunk}");
        }
    }

    #[test]
    fn pieces_of_one_read_are_written_as_the_messages_were() {
        // json-file through log_pieces (one stamp per read) writes what
        // the old encoder made of the same pieces stamped alike
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let mut attrs = BTreeMap::new();
        attrs.insert("a".to_string(), "b".to_string());
        let mut f = JsonFile::open(&path, &BTreeMap::new(), attrs.clone()).unwrap();
        let mut want = Vec::new();
        let mut split = LineSplitter::default();
        let data = b"one\ntwo \xff<&>\n\"three\"\tpartial";
        let t = UNIX_EPOCH + Duration::new(1_780_000_000, 42);
        for (i, chunk) in data.chunks(9).enumerate() {
            let stream = if i % 2 == 0 {
                Stream::Stdout
            } else {
                Stream::Stderr
            };
            let pieces = split.feed(chunk);
            for p in pieces.clone() {
                want.extend(old_encode(&message_at(stream, p, t), &attrs));
            }
            f.log_pieces(stream, t, pieces).unwrap();
        }
        let rest = split.take_rest().unwrap();
        want.extend(old_encode(&message_at(Stream::Stdout, &rest, t), &attrs));
        f.log_pieces(Stream::Stdout, t, Pieces::new(&rest)).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), want);
    }

    #[test]
    fn rotation_by_pieces_is_rotation_by_records() {
        // the same records through the old per-record path and through
        // log_pieces rotate at the same places
        let dir = tempfile::tempdir().unwrap();
        let opts: BTreeMap<String, String> = [("max-size", "300"), ("max-file", "3")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let t = UNIX_EPOCH + Duration::new(1_780_000_000, 7);
        let data: Vec<u8> = (0..40)
            .flat_map(|i| format!("line {i} {}\n", "x".repeat(i % 13)).into_bytes())
            .collect();
        let old_dir = dir.path().join("old");
        let new_dir = dir.path().join("new");
        let mut old = JsonFile::open(&old_dir.join("c.log"), &opts, BTreeMap::new()).unwrap();
        let mut new = JsonFile::open(&new_dir.join("c.log"), &opts, BTreeMap::new()).unwrap();
        let mut split = LineSplitter::default();
        for chunk in data.chunks(57) {
            let pieces = split.feed(chunk);
            let recs: Vec<Vec<u8>> = pieces
                .clone()
                .map(|p| old_encode(&message_at(Stream::Stdout, p, t), &BTreeMap::new()))
                .collect();
            old.file.write(&recs).unwrap();
            new.log_pieces(Stream::Stdout, t, pieces).unwrap();
        }
        for name in ["c.log", "c.log.1", "c.log.2"] {
            let a = std::fs::read(old_dir.join(name)).unwrap();
            let b = std::fs::read(new_dir.join(name)).unwrap();
            assert!(!a.is_empty());
            assert_eq!(a, b, "{name}");
            assert!(a.len() <= 300);
        }
        assert!(!new_dir.join("c.log.3").exists());
    }

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
