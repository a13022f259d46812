use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest as _, Sha256};

/// A sha256 content digest, always held in its canonical "sha256:<64 hex>" form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    pub fn parse(s: &str) -> Result<Self> {
        let Some(hex) = s.strip_prefix("sha256:") else {
            bail!("unsupported digest algorithm in {s:?}: only sha256 is supported");
        };
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            bail!("invalid digest {s:?}: expected 64 lowercase hex characters");
        }
        Ok(Digest(s.to_string()))
    }

    pub fn of(data: &[u8]) -> Self {
        Digest(format!("sha256:{}", hex::encode(Sha256::digest(data))))
    }

    pub fn from_hasher(h: Sha256) -> Self {
        Digest(format!("sha256:{}", hex::encode(h.finalize())))
    }

    pub fn hex(&self) -> &str {
        &self.0[7..]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Content-addressed blobs under `<root>/sha256/<hex>`. A blob appears only
/// complete: it is written to `<root>/tmp`, synced, and renamed into place.
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    pub fn open(root: &Path) -> Result<Self> {
        fs::create_dir_all(root.join("sha256"))?;
        let tmp = root.join("tmp");
        // leftovers of writes interrupted by a crash are garbage by definition
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp)?;
        Ok(BlobStore {
            root: root.to_path_buf(),
        })
    }

    pub fn path(&self, d: &Digest) -> PathBuf {
        self.root.join("sha256").join(d.hex())
    }

    pub fn exists(&self, d: &Digest) -> bool {
        self.path(d).exists()
    }

    pub fn size(&self, d: &Digest) -> Result<u64> {
        Ok(fs::metadata(self.path(d))?.len())
    }

    pub fn read(&self, d: &Digest) -> Result<Vec<u8>> {
        fs::read(self.path(d)).with_context(|| format!("reading blob {d}"))
    }

    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        File::open(self.path(d)).with_context(|| format!("opening blob {d}"))
    }

    pub fn put(&self, data: &[u8]) -> Result<Digest> {
        let (d, _) = self.put_reader(data, None)?;
        Ok(d)
    }

    /// Streams `r` into the store, returning its digest and size. With
    /// `expected`, a mismatch is an error and nothing is stored.
    pub fn put_reader(&self, mut r: impl Read, expected: Option<&Digest>) -> Result<(Digest, u64)> {
        let tmp = tempfile_in(&self.root.join("tmp"))?;
        let mut f = File::create(&tmp)?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut size = 0u64;
        let res: io::Result<()> = (|| {
            loop {
                let n = r.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
                f.write_all(&buf[..n])?;
                size += n as u64;
            }
            f.sync_all()
        })();
        if let Err(e) = res {
            let _ = fs::remove_file(&tmp);
            return Err(e).context("writing blob");
        }
        let d = Digest::from_hasher(h);
        if let Some(exp) = expected
            && exp != &d
        {
            let _ = fs::remove_file(&tmp);
            bail!("digest mismatch: expected {exp}, got {d}");
        }
        fs::rename(&tmp, self.path(&d)).context("moving blob into place")?;
        Ok((d, size))
    }

    /// Moves a finished file (on the store's filesystem) into the store
    /// after checking its content against `expected`; on a mismatch the
    /// file is removed and nothing is stored.
    pub fn adopt_file(&self, path: &Path, expected: &Digest) -> Result<u64> {
        File::open(path)
            .and_then(|f| f.sync_all())
            .context("syncing upload")?;
        let (d, size) = digest_of_file(path)?;
        if &d != expected {
            let _ = fs::remove_file(path);
            bail!("digest mismatch: expected {expected}, got {d}");
        }
        fs::rename(path, self.path(&d)).context("moving blob into place")?;
        Ok(size)
    }

    /// Every digest held, in no particular order.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for e in fs::read_dir(self.root.join("sha256"))? {
            let e = e?;
            if let Ok(d) = Digest::parse(&format!("sha256:{}", e.file_name().to_string_lossy())) {
                out.push(d);
            }
        }
        Ok(out)
    }

    pub fn delete(&self, d: &Digest) -> Result<()> {
        match fs::remove_file(self.path(d)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

/// The sha256 digest and size of a file's content.
pub fn digest_of_file(path: &Path) -> Result<(Digest, u64)> {
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    let size = io::copy(&mut f, &mut HashWriter(&mut h))
        .with_context(|| format!("reading {}", path.display()))?;
    Ok((Digest::from_hasher(h), size))
}

struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn tempfile_in(dir: &Path) -> Result<PathBuf> {
    let mut rnd = [0u8; 8];
    File::open("/dev/urandom")?.read_exact(&mut rnd)?;
    Ok(dir.join(hex::encode(rnd)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_verifies_digest() {
        let dir = tempfile::tempdir().unwrap();
        let s = BlobStore::open(dir.path()).unwrap();
        let d = s.put(b"hello").unwrap();
        assert_eq!(d, Digest::of(b"hello"));
        assert_eq!(s.read(&d).unwrap(), b"hello");
        let wrong = Digest::of(b"other");
        assert!(s.put_reader(&b"hello"[..], Some(&wrong)).is_err());
        assert!(!s.exists(&wrong));
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn digest_parse_rejects_garbage() {
        assert!(Digest::parse("sha256:abc").is_err());
        assert!(Digest::parse("md5:0123").is_err());
        assert!(Digest::parse(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(Digest::parse(&format!("sha256:{}", "a".repeat(64))).is_ok());
    }
}
