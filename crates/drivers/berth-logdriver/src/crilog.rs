//! The CRI's log format (`cri-file`, for containers the CRI makes): one
//! line per message, `<RFC 3339 nano time> <stdout|stderr> <F|P>
//! <message>`, `P` marking a piece of a longer line, in the file the
//! kubelet named (`path`). The kubelet rotates the file by renaming it
//! and asking the runtime to reopen: a write that finds the path moved or
//! gone starts a new file there.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::{Logger, Message};

pub const DRIVER: &str = "cri-file";

pub struct CriFile {
    path: PathBuf,
    file: File,
    /// (device, inode) of `file`, to notice a rename
    identity: (u64, u64),
}

/// The `path` option, which must be absolute.
pub fn path_of(opts: &std::collections::BTreeMap<String, String>) -> Result<PathBuf> {
    let Some(p) = opts.get("path").filter(|p| !p.is_empty()) else {
        bail!("the cri-file log driver needs a path (--log-opt path=/abs/file.log)");
    };
    let p = PathBuf::from(p);
    if !p.is_absolute() || p.components().any(|c| c == std::path::Component::ParentDir) {
        bail!(
            "the cri-file log path must be absolute, without '..': {}",
            p.display()
        );
    }
    Ok(p)
}

fn open(path: &Path) -> std::io::Result<(File, (u64, u64))> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let m = file.metadata()?;
    Ok((file, (m.dev(), m.ino())))
}

impl CriFile {
    pub fn open(path: &Path) -> Result<CriFile> {
        let (file, identity) =
            open(path).with_context(|| format!("opening the CRI log {}", path.display()))?;
        Ok(CriFile {
            path: path.to_path_buf(),
            file,
            identity,
        })
    }

    /// Follows the kubelet's rotation: the path no longer names our file.
    fn reopen_if_moved(&mut self) -> std::io::Result<()> {
        let same = fs::metadata(&self.path)
            .map(|m| (m.dev(), m.ino()) == self.identity)
            .unwrap_or(false);
        if !same {
            (self.file, self.identity) = open(&self.path)?;
        }
        Ok(())
    }
}

/// One message as a CRI log line.
pub fn encode(m: &Message) -> Vec<u8> {
    let time: chrono::DateTime<chrono::Utc> = m.time.into();
    let tag = if m.partial { 'P' } else { 'F' };
    let head = format!(
        "{} {} {tag} ",
        time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        m.stream.name()
    );
    let mut line = Vec::with_capacity(head.len() + m.line.len() + 1);
    line.extend_from_slice(head.as_bytes());
    line.extend_from_slice(&m.line);
    line.push(b'\n');
    line
}

impl Logger for CriFile {
    fn log(&mut self, msgs: &[Message]) -> std::io::Result<()> {
        self.reopen_if_moved()?;
        let buf: Vec<u8> = msgs.iter().flat_map(encode).collect();
        self.file.write_all(&buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Stream;
    use std::time::{Duration, UNIX_EPOCH};

    fn msg(line: &str, partial: bool) -> Message {
        Message {
            stream: Stream::Stderr,
            line: line.as_bytes().to_vec(),
            partial,
            time: UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789),
        }
    }

    #[test]
    fn lines_in_the_cri_format() {
        assert_eq!(
            String::from_utf8(encode(&msg("hello World", false))).unwrap(),
            "2023-11-14T22:13:20.123456789Z stderr F hello World\n"
        );
        assert!(
            String::from_utf8(encode(&msg("piece", true)))
                .unwrap()
                .contains(" P piece")
        );
    }

    #[test]
    fn a_renamed_log_is_started_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pod/c.log");
        let mut f = CriFile::open(&path).unwrap();
        f.log(&[msg("one", false)]).unwrap();
        fs::rename(&path, dir.path().join("pod/c.log.1")).unwrap();
        f.log(&[msg("two", false)]).unwrap();
        let now = fs::read_to_string(&path).unwrap();
        assert!(
            now.ends_with(" stderr F two\n") && !now.contains("one"),
            "{now}"
        );
        let old = fs::read_to_string(dir.path().join("pod/c.log.1")).unwrap();
        assert!(old.ends_with(" F one\n"), "{old}");
    }

    #[test]
    fn the_path_must_be_absolute() {
        let opts =
            |p: &str| std::collections::BTreeMap::from([("path".to_string(), p.to_string())]);
        assert!(path_of(&opts("rel.log")).is_err());
        assert!(path_of(&opts("/var/log/../etc/x")).is_err());
        assert!(path_of(&std::collections::BTreeMap::new()).is_err());
        assert_eq!(
            path_of(&opts("/var/log/pods/x.log")).unwrap(),
            PathBuf::from("/var/log/pods/x.log")
        );
    }
}
