//! Log files with Docker's rotation: `<log>`, `<log>.1` … `<log>.<max_files
//! - 1>`, newest first, optionally gzipped once rotated (`<log>.1.gz`).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub(crate) struct RotatingFile {
    path: PathBuf,
    file: File,
    size: u64,
    /// rotate before a record that would take the file past this (0: never)
    max_size: u64,
    /// files kept, the current one included
    max_files: u32,
    compress: bool,
}

impl RotatingFile {
    pub(crate) fn open(
        path: &Path,
        max_size: u64,
        max_files: u32,
        compress: bool,
    ) -> std::io::Result<Self> {
        if let Some(parent) = path.parent()
            && !parent.exists()
        {
            // local-logs/ is private, as dockerd makes it
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)?;
        }
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(RotatingFile {
            path: path.to_path_buf(),
            file,
            size,
            max_size,
            max_files: max_files.max(1),
            compress,
        })
    }

    /// Writes whole records, with as few writes as rotation allows; dockerd
    /// decides on rotation per record, and so does this.
    pub(crate) fn write(&mut self, records: &[Vec<u8>]) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(records.iter().map(Vec::len).sum());
        let mut ends = Vec::with_capacity(records.len());
        for rec in records {
            buf.extend_from_slice(rec);
            ends.push(buf.len());
        }
        self.write_batch(&buf, &ends)
    }

    /// `write` of records laid end to end in `buf`, each ending at its
    /// offset in `ends`.
    pub(crate) fn write_batch(&mut self, buf: &[u8], ends: &[usize]) -> std::io::Result<()> {
        let res = self.write_records(buf, ends);
        if res.is_err() {
            // no half record stays behind for readers to stumble on (a
            // full disk, say); the file ends where the last write ended
            let _ = self.file.set_len(self.size);
        }
        res
    }

    fn write_records(&mut self, buf: &[u8], ends: &[usize]) -> std::io::Result<()> {
        // the batch not written yet starts here
        let mut from = 0;
        let mut start = 0;
        for &end in ends {
            let pending = (start - from) as u64;
            if self.max_size > 0
                && self.size + pending > 0
                && self.size + pending + (end - start) as u64 > self.max_size
            {
                self.file.write_all(&buf[from..start])?;
                self.size += pending;
                from = start;
                self.rotate()?;
            }
            start = end;
        }
        self.file.write_all(&buf[from..start])?;
        self.size += (start - from) as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        if self.max_files <= 1 {
            // one file: start it over
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        let name = |i: u32| PathBuf::from(format!("{}.{i}", self.path.display()));
        let gz = |i: u32| PathBuf::from(format!("{}.{i}.gz", self.path.display()));
        let _ = fs::remove_file(name(self.max_files - 1));
        let _ = fs::remove_file(gz(self.max_files - 1));
        // only the files there are move up one
        let mut top = 1;
        while top < self.max_files - 1 && (name(top).exists() || gz(top).exists()) {
            top += 1;
        }
        for i in (1..top).rev() {
            let _ = fs::rename(name(i), name(i + 1));
            let _ = fs::rename(gz(i), gz(i + 1));
        }
        fs::rename(&self.path, name(1))?;
        if self.compress {
            // the readers take `<log>.1` until `<log>.1.gz` is complete
            if let Err(e) = gzip_file(&name(1), &gz(1)) {
                tracing::warn!(error = %e, "compressing rotated log");
            }
        }
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// Log files are 0640, as dockerd's.
fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

/// Compresses `from` into `to` (through a temporary file), then removes
/// `from`.
fn gzip_file(from: &Path, to: &Path) -> std::io::Result<()> {
    let tmp = PathBuf::from(format!("{}.tmp", to.display()));
    let mut input = File::open(from)?;
    let out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o640)
        .open(&tmp)?;
    let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
    std::io::copy(&mut input, &mut enc)?;
    enc.finish()?.sync_all()?;
    fs::rename(&tmp, to)?;
    fs::remove_file(from)
}

/// The files of a rotated log, oldest first, the current one last (which
/// need not exist yet).
pub fn rotated_files(path: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for i in 1..1000 {
        let p = PathBuf::from(format!("{}.{i}", path.display()));
        let gz = PathBuf::from(format!("{}.{i}.gz", path.display()));
        if p.exists() {
            files.push(p);
        } else if gz.exists() {
            files.push(gz);
        } else {
            break;
        }
    }
    files.reverse();
    files.push(path.to_path_buf());
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_on_record_boundaries_and_keeps_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.log");
        let mut f = RotatingFile::open(&p, 10, 3, false).unwrap();
        let recs: Vec<Vec<u8>> = (0..7).map(|i| format!("rec{i}\n").into_bytes()).collect();
        f.write(&recs).unwrap();
        // 5 bytes a record, 2 per file: 0 1 | 2 3 | 4 5 | 6, three files kept
        assert_eq!(fs::read_to_string(&p).unwrap(), "rec6\n");
        assert_eq!(
            fs::read_to_string(dir.path().join("c.log.1")).unwrap(),
            "rec4\nrec5\n"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("c.log.2")).unwrap(),
            "rec2\nrec3\n"
        );
        assert!(!dir.path().join("c.log.3").exists());
        let files = rotated_files(&p);
        assert_eq!(files.len(), 3);
        assert_eq!(files[2], p);
    }

    #[test]
    fn batching_does_not_move_rotation() {
        // records of assorted sizes, written in batches of assorted sizes
        // (one contiguous buffer each) or one by one: the same files
        let dir = tempfile::tempdir().unwrap();
        let recs: Vec<Vec<u8>> = (0..60)
            .map(|i| format!("{i}:{}\n", "r".repeat(i * 7 % 23)).into_bytes())
            .collect();
        let one = dir.path().join("one");
        let mut f = RotatingFile::open(&one.join("c.log"), 64, 4, false).unwrap();
        for r in &recs {
            f.write(std::slice::from_ref(r)).unwrap();
        }
        for (k, batch) in [1usize, 3, 7, 60].into_iter().enumerate() {
            let d = dir.path().join(format!("b{k}"));
            let mut f = RotatingFile::open(&d.join("c.log"), 64, 4, false).unwrap();
            for group in recs.chunks(batch) {
                let mut buf = Vec::new();
                let mut ends = Vec::new();
                for r in group {
                    buf.extend_from_slice(r);
                    ends.push(buf.len());
                }
                f.write_batch(&buf, &ends).unwrap();
            }
            for name in ["c.log", "c.log.1", "c.log.2", "c.log.3"] {
                assert_eq!(
                    fs::read(one.join(name)).unwrap(),
                    fs::read(d.join(name)).unwrap(),
                    "{name} in batches of {batch}"
                );
            }
            assert!(!d.join("c.log.4").exists());
        }
    }

    #[test]
    fn compresses_rotated_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.log");
        let mut f = RotatingFile::open(&p, 6, 2, true).unwrap();
        f.write(&[b"aaaa\n".to_vec(), b"bbbb\n".to_vec()]).unwrap();
        let gz = dir.path().join("c.log.1.gz");
        let mut out = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(File::open(&gz).unwrap()),
            &mut out,
        )
        .unwrap();
        assert_eq!(out, "aaaa\n");
        assert_eq!(rotated_files(&p)[0], gz);
    }
}
