//! Docker's `local` log format: each entry is a protobuf `LogEntry`
//! (moby's api/types/plugins/logdriver/entry.proto) framed by its length as
//! a big-endian u32 before and after it, so the file can be read both ways.
//! The dual-logging cache uses the same format.

use std::io::{BufRead, ErrorKind};

use crate::{Message, Stream};

/// One decoded entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub source: String,
    pub time_nano: i64,
    pub line: Vec<u8>,
    pub partial: bool,
}

/// Entries larger than this are refused on reading (moby's limit is 1 MiB
/// of line plus framing; a corrupt length must not make us allocate GiBs).
const MAX_ENTRY: usize = 16 * 1024 * 1024;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, field: u8, data: &[u8]) {
    out.push((field << 3) | 2);
    put_varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

/// The framed bytes of one message.
pub fn encode(msg: &Message) -> Vec<u8> {
    let mut pb = Vec::with_capacity(msg.line.len() + 32);
    put_bytes(&mut pb, 1, msg.stream.name().as_bytes());
    let nanos = crate::unix_nanos(msg.time);
    pb.push(2 << 3);
    put_varint(&mut pb, nanos as u64);
    put_bytes(&mut pb, 3, &msg.line);
    if msg.partial {
        pb.push(4 << 3);
        pb.push(1);
    }
    let len = (pb.len() as u32).to_be_bytes();
    let mut out = Vec::with_capacity(pb.len() + 8);
    out.extend_from_slice(&len);
    out.extend_from_slice(&pb);
    out.extend_from_slice(&len);
    out
}

fn get_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Decodes one protobuf `LogEntry` (without its framing); unknown fields
/// are skipped as protobuf requires.
pub fn decode(pb: &[u8]) -> Option<Entry> {
    let mut e = Entry {
        source: String::new(),
        time_nano: 0,
        line: Vec::new(),
        partial: false,
    };
    let mut pos = 0;
    while pos < pb.len() {
        let key = get_varint(pb, &mut pos)?;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                let v = get_varint(pb, &mut pos)?;
                match field {
                    2 => e.time_nano = v as i64,
                    4 => e.partial = v != 0,
                    _ => {}
                }
            }
            2 => {
                let len = usize::try_from(get_varint(pb, &mut pos)?).ok()?;
                let end = pos.checked_add(len).filter(|&end| end <= pb.len())?;
                let data = &pb[pos..end];
                pos = end;
                match field {
                    1 => e.source = String::from_utf8_lossy(data).into_owned(),
                    3 => e.line = data.to_vec(),
                    _ => {}
                }
            }
            1 => pos = pos.checked_add(8).filter(|&p| p <= pb.len())?,
            5 => pos = pos.checked_add(4).filter(|&p| p <= pb.len())?,
            _ => return None,
        }
    }
    Some(e)
}

/// What reading a record from a file gave.
pub enum Next<T> {
    Record(T),
    /// the file ends inside a record that `n` bytes were read of: a writer
    /// is still at it
    Incomplete(usize),
    Eof,
}

/// Reads one framed entry.
pub fn read_entry<R: BufRead>(r: &mut R) -> std::io::Result<Next<Entry>> {
    Ok(match read_framed(r)? {
        Next::Record((e, _)) => Next::Record(e),
        Next::Incomplete(n) => Next::Incomplete(n),
        Next::Eof => Next::Eof,
    })
}

/// Reads one framed entry and says how many bytes it took.
fn read_framed<R: BufRead>(r: &mut R) -> std::io::Result<Next<(Entry, usize)>> {
    let mut got = 0usize;
    let mut len = [0u8; 4];
    match read_full(r, &mut len, &mut got)? {
        Fill::Empty => return Ok(Next::Eof),
        Fill::Short => return Ok(Next::Incomplete(got)),
        Fill::Full => {}
    }
    let n = u32::from_be_bytes(len) as usize;
    if n > MAX_ENTRY {
        return Err(std::io::Error::new(
            ErrorKind::InvalidData,
            format!("log entry of {n} bytes is larger than the maximum"),
        ));
    }
    let mut body = vec![0u8; n + 4];
    if !matches!(read_full(r, &mut body, &mut got)?, Fill::Full) {
        return Ok(Next::Incomplete(got));
    }
    if body[n..] != len {
        return Err(std::io::Error::new(
            ErrorKind::InvalidData,
            "log entry framing does not match",
        ));
    }
    decode(&body[..n])
        .map(|e| Next::Record((e, n + 8)))
        .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidData, "corrupt log entry"))
}

enum Fill {
    Empty,
    Short,
    Full,
}

fn read_full<R: BufRead>(r: &mut R, buf: &mut [u8], got: &mut usize) -> std::io::Result<Fill> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => {
                filled += n;
                *got += n;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(if filled == buf.len() {
        Fill::Full
    } else if filled == 0 {
        Fill::Empty
    } else {
        Fill::Short
    })
}

/// A shim killed in the middle of a write leaves half a record at the end
/// of the file; the next shim appends after it. Cuts the file back to its
/// last whole record first, so that readers never meet the torn one.
pub fn cut_torn_tail(path: &std::path::Path) -> std::io::Result<()> {
    let Ok(f) = std::fs::File::open(path) else {
        return Ok(());
    };
    let len = f.metadata()?.len();
    if len == 0 || tail_is_whole(&f, len)? {
        return Ok(());
    }
    let mut r = std::io::BufReader::new(f);
    let mut good = 0u64;
    while let Ok(Next::Record((_, size))) = read_framed(&mut r) {
        good += size as u64;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .set_len(good)
}

/// Whether the last 4 bytes frame a record that ends the file.
fn tail_is_whole(f: &std::fs::File, len: u64) -> std::io::Result<bool> {
    use std::os::unix::fs::FileExt;
    if len < 8 {
        return Ok(false);
    }
    let mut end = [0u8; 4];
    f.read_exact_at(&mut end, len - 4)?;
    let n = u64::from(u32::from_be_bytes(end));
    if n + 8 > len {
        return Ok(false);
    }
    let mut start = [0u8; 4];
    f.read_exact_at(&mut start, len - 8 - n)?;
    Ok(start == end)
}

impl Entry {
    pub fn stream(&self) -> Option<Stream> {
        match self.source.as_str() {
            "stdout" => Some(Stream::Stdout),
            "stderr" => Some(Stream::Stderr),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn round_trips_and_matches_protobuf_bytes() {
        let msg = Message {
            stream: Stream::Stderr,
            line: b"hi".to_vec(),
            partial: true,
            time: UNIX_EPOCH + Duration::from_nanos(300),
        };
        let framed = encode(&msg);
        // 0a 06 "stderr" | 10 ac 02 | 1a 02 "hi" | 20 01
        let pb = b"\x0a\x06stderr\x10\xac\x02\x1a\x02hi\x20\x01";
        assert_eq!(&framed[4..framed.len() - 4], pb);
        assert_eq!(&framed[..4], &(pb.len() as u32).to_be_bytes());
        let mut r = std::io::Cursor::new(framed.clone());
        let Next::Record(e) = read_entry(&mut r).unwrap() else {
            panic!("no record")
        };
        assert_eq!(e.line, b"hi");
        assert_eq!(e.time_nano, 300);
        assert!(e.partial);
        assert_eq!(e.stream(), Some(Stream::Stderr));
        assert!(matches!(read_entry(&mut r).unwrap(), Next::Eof));
        let mut cut = std::io::Cursor::new(framed[..7].to_vec());
        assert!(matches!(read_entry(&mut cut).unwrap(), Next::Incomplete(7)));
    }

    #[test]
    fn a_torn_tail_is_cut_back_to_the_last_whole_record() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("container.log");
        let msg = |s: &str| Message {
            stream: Stream::Stdout,
            line: s.as_bytes().to_vec(),
            partial: false,
            time: UNIX_EPOCH,
        };
        let mut data = encode(&msg("one"));
        data.extend_from_slice(&encode(&msg("two")));
        let whole = data.len();
        data.extend_from_slice(&encode(&msg("three"))[..9]);
        std::fs::write(&p, &data).unwrap();
        cut_torn_tail(&p).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len() as usize, whole);
        // a whole file is left alone
        cut_torn_tail(&p).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len() as usize, whole);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for data in [
            vec![0xff, 0xff, 0xff, 0xff],
            vec![0, 0, 0, 2, 0x0a, 0x7f, 0, 0, 0, 2],
            vec![0, 0, 0, 1, 0x0f, 0, 0, 0, 9],
        ] {
            let mut r = std::io::Cursor::new(data);
            assert!(read_entry(&mut r).is_err());
        }
        let mut seed = 7u64;
        for _ in 0..2000 {
            let len = (seed % 40) as usize;
            let mut v = Vec::new();
            for _ in 0..len {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                v.push((seed >> 33) as u8);
            }
            let _ = decode(&v);
        }
    }
}
