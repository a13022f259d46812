//! Sparse files in tar archives, read as Go's archive/tar (and so Docker)
//! reads them. GNU's old format (`S` members) is expanded by the tar crate.
//! The PAX formats (0.0, 0.1 and 1.0; `tar --sparse --format=posix`) are
//! not: such a member is a plain file named `GNUSparseFile.N/NAME` whose
//! data holds only the parts that are not holes (preceded, in 1.0, by the
//! map), so without this it would unpack under the wrong name with the wrong
//! content.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Past this apparent size a sparse member is refused: expanding its holes
/// is work (and, re-archived, bytes) in proportion to it, and no image needs
/// such a file.
pub const MAX_SPARSE_SIZE: u64 = 1 << 40;

/// Data segments a map may list; each costs memory before any is checked.
const MAX_SEGMENTS: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    offset: u64,
    len: u64,
}

/// The layout of a PAX sparse member.
#[derive(Debug, Clone)]
pub struct PaxSparse {
    name: Option<PathBuf>,
    real_size: u64,
    /// None for format 1.0, whose map opens the member's data
    map: Option<Vec<Segment>>,
}

/// A copy that failed either reading the archive or writing the file.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("{0}")]
    Archive(io::Error),
    #[error("{0}")]
    Write(io::Error),
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl PaxSparse {
    /// The file's real name, where the archive recorded one.
    pub fn name(&self) -> Option<&Path> {
        self.name.as_deref()
    }

    pub fn real_size(&self) -> u64 {
        self.real_size
    }
}

/// The PAX sparse layout of `entry`, or None when it is not such a member.
pub fn pax_sparse<R: Read>(entry: &mut tar::Entry<R>) -> io::Result<Option<PaxSparse>> {
    let Some(exts) = entry.pax_extensions()? else {
        return Ok(None);
    };
    let (mut major, mut minor, mut name, mut size, mut map) = (None, None, None, None, None);
    let mut offsets: Vec<String> = Vec::new();
    for e in exts {
        let e = e?;
        let (Ok(k), Ok(v)) = (e.key(), e.value()) else {
            continue;
        };
        match k {
            "GNU.sparse.major" => major = Some(v.to_string()),
            "GNU.sparse.minor" => minor = Some(v.to_string()),
            "GNU.sparse.name" => name = Some(PathBuf::from(v)),
            "GNU.sparse.size" | "GNU.sparse.realsize" => size = Some(v.to_string()),
            "GNU.sparse.map" => map = Some(v.to_string()),
            // format 0.0 repeats these two keys, one pair per segment
            "GNU.sparse.offset" | "GNU.sparse.numbytes" => offsets.push(v.to_string()),
            _ => {}
        }
    }
    if map.is_none() && !offsets.is_empty() {
        map = Some(offsets.join(","));
    }
    let v1 = match (major.as_deref(), minor.as_deref()) {
        (Some("1"), Some("0")) => true,
        (Some("0"), Some("0" | "1")) => false,
        (Some(_), _) | (_, Some(_)) => {
            return Err(invalid(format!(
                "sparse file {:?}: unknown PAX sparse format {}.{}",
                entry.path().unwrap_or_default(),
                major.unwrap_or_default(),
                minor.unwrap_or_default()
            )));
        }
        (None, None) if map.is_some() => false,
        (None, None) => return Ok(None),
    };
    let real_size = match size {
        Some(s) => s
            .parse::<u64>()
            .map_err(|_| invalid(format!("sparse file size {s:?} is not a number")))?,
        None => entry.size(),
    };
    if real_size > MAX_SPARSE_SIZE {
        return Err(invalid(format!(
            "sparse file of {real_size} bytes is larger than the {MAX_SPARSE_SIZE} bytes berth accepts"
        )));
    }
    let map = if v1 {
        None
    } else {
        Some(parse_map(&map.unwrap_or_default())?)
    };
    Ok(Some(PaxSparse {
        name,
        real_size,
        map,
    }))
}

/// A comma-separated list of offset,length pairs (formats 0.0 and 0.1).
fn parse_map(s: &str) -> io::Result<Vec<Segment>> {
    let nums: Vec<u64> = s
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.trim()
                .parse::<u64>()
                .map_err(|_| invalid(format!("sparse map entry {p:?} is not a number")))
        })
        .collect::<io::Result<_>>()?;
    if !nums.len().is_multiple_of(2) || nums.len() / 2 > MAX_SEGMENTS {
        return Err(invalid("sparse map is malformed"));
    }
    Ok(nums
        .chunks(2)
        .map(|c| Segment {
            offset: c[0],
            len: c[1],
        })
        .collect())
}

/// Reads format 1.0's map from the start of the member's data: decimal
/// numbers, one a line (the count, then offset and length pairs), padded
/// to whole 512-byte blocks. Returns the map and the bytes it took.
fn read_map_1_0(r: &mut impl Read, data_size: u64) -> io::Result<(Vec<Segment>, u64)> {
    let mut consumed = 0u64;
    let mut next = |consumed: &mut u64| -> io::Result<u64> {
        let mut digits = String::new();
        loop {
            let mut b = [0u8; 1];
            r.read_exact(&mut b)
                .map_err(|_| invalid("sparse map ends early"))?;
            *consumed += 1;
            match b[0] {
                b'\n' => break,
                c @ b'0'..=b'9' if digits.len() < 20 => digits.push(c as char),
                _ => return Err(invalid("sparse map is malformed")),
            }
        }
        digits
            .parse::<u64>()
            .map_err(|_| invalid("sparse map is malformed"))
    };
    let count = next(&mut consumed)?;
    if count as usize > MAX_SEGMENTS || count.saturating_mul(4) > data_size {
        return Err(invalid(
            "sparse map lists more segments than the member holds",
        ));
    }
    let mut map = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let offset = next(&mut consumed)?;
        let len = next(&mut consumed)?;
        map.push(Segment { offset, len });
    }
    let pad = (512 - consumed % 512) % 512;
    let padded = io::copy(&mut r.by_ref().take(pad), &mut io::sink())?;
    Ok((map, consumed + padded))
}

/// Segments must be in order, not overlap, lie within the file and add up
/// to the data the member holds. Empty segments are dropped.
fn check_map(mut map: Vec<Segment>, real_size: u64, data: u64) -> io::Result<Vec<Segment>> {
    map.retain(|s| s.len > 0);
    let mut end = 0u64;
    let mut total = 0u64;
    for s in &map {
        let seg_end = s
            .offset
            .checked_add(s.len)
            .ok_or_else(|| invalid("sparse map overflows"))?;
        if s.offset < end || seg_end > real_size {
            return Err(invalid(
                "sparse map has overlapping or out-of-range segments",
            ));
        }
        end = seg_end;
        total += s.len;
    }
    if total != data {
        return Err(invalid(format!(
            "sparse map lists {total} bytes of data, the member holds {data}"
        )));
    }
    Ok(map)
}

/// The segments of `sparse`, read from the entry's data in format 1.0.
fn segments<R: Read>(entry: &mut tar::Entry<R>, sparse: &PaxSparse) -> io::Result<Vec<Segment>> {
    let size = entry.size();
    let (map, taken) = match &sparse.map {
        Some(m) => (m.clone(), 0),
        None => read_map_1_0(entry, size)?,
    };
    let data = size
        .checked_sub(taken)
        .ok_or_else(|| invalid("sparse map is larger than its member"))?;
    check_map(map, sparse.real_size, data)
}

/// Writes a member's content into `out`, a new empty file, leaving holes
/// as holes. Returns the file's size.
pub fn write_contents<R: Read>(
    entry: &mut tar::Entry<R>,
    sparse: Option<&PaxSparse>,
    out: &mut File,
) -> Result<u64, CopyError> {
    match sparse {
        Some(s) => {
            let map = segments(entry, s).map_err(CopyError::Archive)?;
            for seg in map {
                out.seek(SeekFrom::Start(seg.offset))
                    .map_err(CopyError::Write)?;
                copy_exact(&mut *entry, out, seg.len)?;
            }
            out.set_len(s.real_size).map_err(CopyError::Write)?;
            Ok(s.real_size)
        }
        None if entry.header().entry_type().is_gnu_sparse() => copy_holes(entry, out),
        None => {
            let size = entry.size();
            copy_exact(entry, out, size)?;
            Ok(size)
        }
    }
}

/// Copies exactly `len` bytes; an archive that ends first is truncated.
fn copy_exact(r: &mut impl Read, w: &mut impl Write, len: u64) -> Result<(), CopyError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = match r.read(&mut buf[..want]) {
            Ok(0) => return Err(CopyError::Archive(truncated(len, len - left))),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Archive(e)),
        };
        w.write_all(&buf[..n]).map_err(CopyError::Write)?;
        left -= n as u64;
    }
    Ok(())
}

fn truncated(want: u64, got: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the archive is truncated: a member of {want} bytes ends after {got}"),
    )
}

/// Copies a member the tar crate expands (GNU sparse), seeking over blocks
/// of zeros so that the holes stay holes on disk.
fn copy_holes<R: Read>(entry: &mut tar::Entry<R>, out: &mut File) -> Result<u64, CopyError> {
    let size = entry.size();
    if size > MAX_SPARSE_SIZE {
        return Err(CopyError::Archive(invalid(format!(
            "sparse file of {size} bytes is larger than the {MAX_SPARSE_SIZE} bytes berth accepts"
        ))));
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut done = 0u64;
    while done < size {
        let want = buf
            .len()
            .min(usize::try_from(size - done).unwrap_or(usize::MAX));
        let n = match entry.read(&mut buf[..want]) {
            Ok(0) => return Err(CopyError::Archive(truncated(size, done))),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Archive(e)),
        };
        if buf[..n].iter().all(|b| *b == 0) {
            out.seek(SeekFrom::Current(n as i64))
                .map_err(CopyError::Write)?;
        } else {
            out.write_all(&buf[..n]).map_err(CopyError::Write)?;
        }
        done += n as u64;
    }
    out.set_len(size).map_err(CopyError::Write)?;
    Ok(size)
}

/// Past this apparent size a sparse member is not expanded into another
/// archive: every byte of its holes would be written out.
pub const MAX_EXPANDED_SIZE: u64 = 16 << 30;

/// A member's real content as a reader, for writing it into another
/// archive: the size and the bytes, holes as zeros.
pub fn expanded<'a, R: Read + 'a>(
    entry: &'a mut tar::Entry<R>,
    sparse: Option<&PaxSparse>,
) -> io::Result<(u64, Box<dyn Read + 'a>)> {
    let apparent = sparse.map_or(entry.size(), |s| s.real_size);
    let is_sparse = sparse.is_some() || entry.header().entry_type().is_gnu_sparse();
    if is_sparse && apparent > MAX_EXPANDED_SIZE {
        return Err(invalid(format!(
            "sparse file of {apparent} bytes is larger than the {MAX_EXPANDED_SIZE} bytes berth expands"
        )));
    }
    let Some(s) = sparse else {
        let size = entry.size();
        return Ok((size, Box::new(entry)));
    };
    let map = segments(entry, s)?;
    Ok((
        s.real_size,
        Box::new(Expanded {
            inner: entry,
            map,
            next: 0,
            pos: 0,
            size: s.real_size,
        }),
    ))
}

/// Zeros for holes, the archive's bytes for segments.
struct Expanded<R> {
    inner: R,
    map: Vec<Segment>,
    /// index of the first segment not wholly read
    next: usize,
    pos: u64,
    size: u64,
}

impl<R: Read> Read for Expanded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let len = buf.len();
        let cap = |n: u64| len.min(usize::try_from(n).unwrap_or(usize::MAX));
        // past the segments read whole (the map has no empty ones, but a
        // loop costs nothing should one slip through)
        while self
            .map
            .get(self.next)
            .is_some_and(|s| s.offset + s.len <= self.pos)
        {
            self.next += 1;
        }
        let Some(seg) = self.map.get(self.next).copied() else {
            let n = cap(self.size - self.pos);
            buf[..n].fill(0);
            self.pos += n as u64;
            return Ok(n);
        };
        if self.pos < seg.offset {
            let n = cap(seg.offset - self.pos);
            buf[..n].fill(0);
            self.pos += n as u64;
            return Ok(n);
        }
        let left = seg.offset + seg.len - self.pos;
        let n = self.inner.read(&mut buf[..cap(left)])?;
        if n == 0 {
            return Err(truncated(seg.len, seg.len - left));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PAX 1.0 sparse member as GNU tar writes it: a 3-byte file with
    /// "ab" at offset 0 and "z" at offset 10 000, real size 10 001.
    fn pax_1_0(name: &str) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let records = [
            ("GNU.sparse.major", "1"),
            ("GNU.sparse.minor", "0"),
            ("GNU.sparse.name", name),
            ("GNU.sparse.realsize", "10001"),
        ];
        b.append_pax_extensions(records.iter().map(|(k, v)| (*k, v.as_bytes())))
            .unwrap();
        let mut data = b"2\n0\n2\n10000\n1\n".to_vec();
        data.resize(512, 0);
        data.extend_from_slice(b"abz");
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_path("GNUSparseFile.0/f").unwrap();
        h.set_cksum();
        b.append(&h, &data[..]).unwrap();
        b.into_inner().unwrap()
    }

    fn first_entry<T>(tar: &[u8], f: impl FnOnce(&mut tar::Entry<&[u8]>) -> T) -> T {
        let mut a = tar::Archive::new(tar);
        let mut entries = a.entries().unwrap();
        let mut e = entries.next().unwrap().unwrap();
        f(&mut e)
    }

    #[test]
    fn pax_1_0_sparse_files_get_their_name_and_content() {
        let t = pax_1_0("dir/f");
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("out");
        first_entry(&t, |e| {
            let s = pax_sparse(e).unwrap().unwrap();
            assert_eq!(s.name(), Some(Path::new("dir/f")));
            let mut f = File::create(&path).unwrap();
            assert_eq!(write_contents(e, Some(&s), &mut f).unwrap(), 10001);
        });
        let got = std::fs::read(&path).unwrap();
        let mut want = vec![0u8; 10001];
        want[..2].copy_from_slice(b"ab");
        want[10000] = b'z';
        assert_eq!(got, want);
        let expanded_bytes = first_entry(&t, |e| {
            let s = pax_sparse(e).unwrap().unwrap();
            let (size, mut r) = expanded(e, Some(&s)).unwrap();
            assert_eq!(size, 10001);
            let mut v = Vec::new();
            r.read_to_end(&mut v).unwrap();
            v
        });
        assert_eq!(expanded_bytes, want);
    }

    #[test]
    fn maps_that_lie_are_refused() {
        let seg = |offset, len| Segment { offset, len };
        assert!(check_map(vec![seg(5, 10)], 10, 10).is_err());
        assert!(check_map(vec![seg(0, 4), seg(2, 1)], 10, 5).is_err());
        assert!(check_map(vec![seg(0, 4)], 10, 5).is_err());
        assert_eq!(check_map(vec![seg(0, 4)], 10, 4).unwrap(), [seg(0, 4)]);
        // a million empty segments cost nothing and are dropped
        let empties = vec![seg(0, 0); 1 << 20];
        assert!(check_map(empties, 10, 0).unwrap().is_empty());
        // a map that claims more than its member holds
        let mut tiny: &[u8] = b"0\n";
        let (map, taken) = read_map_1_0(&mut tiny, 2).unwrap();
        assert!(map.is_empty() && taken == 2);
        assert!(parse_map("1,2,3").is_err());
        assert!(parse_map("x,1").is_err());
        let mut short: &[u8] = b"3\n0\n";
        assert!(read_map_1_0(&mut short, 1000).is_err());
    }

    #[test]
    fn plain_members_that_end_early_are_truncated() {
        let mut out = Vec::new();
        let err = copy_exact(&mut &b"abc"[..], &mut out, 10).unwrap_err();
        assert!(matches!(err, CopyError::Archive(e) if e.kind() == io::ErrorKind::UnexpectedEof));
    }
}
