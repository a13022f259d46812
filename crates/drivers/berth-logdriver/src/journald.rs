//! The `journald` driver: journald's native protocol, one datagram of
//! `KEY=value` fields per line on /run/systemd/journal/socket, with the
//! fields dockerd sets.

use std::collections::BTreeMap;
use std::io::{Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixDatagram;

use anyhow::{Result, anyhow};

use crate::{Info, Logger, Message, Stream};

const SOCKET: &str = "/run/systemd/journal/socket";

pub(crate) struct Journald {
    sock: UnixDatagram,
    /// the fields every message carries
    fixed: Vec<(String, String)>,
    ordinal: u64,
}

/// journald's field names: upper case, `[A-Z0-9_]`, no leading `_`.
fn sanitize(key: &str) -> String {
    let k: String = key
        .chars()
        .map(|c| {
            let c = c.to_ascii_uppercase();
            if c.is_ascii_uppercase() || c.is_ascii_digit() {
                c
            } else {
                '_'
            }
        })
        .collect();
    k.trim_start_matches('_').to_string()
}

impl Journald {
    pub(crate) fn open(_o: &BTreeMap<String, String>, info: &Info) -> Result<Journald> {
        let sock = UnixDatagram::unbound()?;
        sock.connect(SOCKET)
            .map_err(|_| anyhow!("journald is not enabled on this host"))?;
        let mut epoch = [0u8; 32];
        // SAFETY: getrandom fills the buffer it is given
        unsafe { libc::getrandom(epoch.as_mut_ptr().cast(), epoch.len(), 0) };
        let epoch: String = epoch.iter().map(|b| format!("{b:02x}")).collect();
        let mut fixed = vec![
            (
                "CONTAINER_ID".to_string(),
                info.id.chars().take(12).collect(),
            ),
            ("CONTAINER_ID_FULL".to_string(), info.id.clone()),
            ("CONTAINER_NAME".to_string(), info.name.clone()),
            ("CONTAINER_TAG".to_string(), info.tag.clone()),
            ("IMAGE_NAME".to_string(), info.image_name.clone()),
            ("SYSLOG_IDENTIFIER".to_string(), info.tag.clone()),
            ("CONTAINER_LOG_EPOCH".to_string(), epoch),
        ];
        for (k, v) in &info.attrs {
            let k = sanitize(k);
            if !k.is_empty() {
                fixed.push((k, v.clone()));
            }
        }
        Ok(Journald {
            sock,
            fixed,
            ordinal: 0,
        })
    }

    fn datagram(&mut self, msg: &Message) -> Vec<u8> {
        let mut out = Vec::with_capacity(msg.line.len() + 512);
        let priority = match msg.stream {
            Stream::Stdout => "6",
            Stream::Stderr => "3",
        };
        field(&mut out, "PRIORITY", priority.as_bytes());
        field(&mut out, "MESSAGE", &msg.line);
        for (k, v) in &self.fixed {
            field(&mut out, k, v.as_bytes());
        }
        field(
            &mut out,
            "SYSLOG_TIMESTAMP",
            crate::jsonlog::rfc3339_nanos(msg.time).as_bytes(),
        );
        if msg.partial {
            field(&mut out, "CONTAINER_PARTIAL_MESSAGE", b"true");
        }
        self.ordinal += 1;
        field(
            &mut out,
            "CONTAINER_LOG_ORDINAL",
            self.ordinal.to_string().as_bytes(),
        );
        out
    }

    /// A message too large for one datagram goes in an unlinked file in
    /// /dev/shm whose descriptor is passed instead, as sd_journal_send does.
    fn send_large(&self, data: &[u8]) -> std::io::Result<()> {
        let mut f = tempfile_in_shm()?;
        f.write_all(data)?;
        f.rewind()?;
        let fds = [f.as_raw_fd()];
        let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
        nix::sys::socket::sendmsg::<()>(
            self.sock.as_raw_fd(),
            &[std::io::IoSlice::new(&[])],
            &cmsg,
            nix::sys::socket::MsgFlags::empty(),
            None,
        )
        .map_err(std::io::Error::from)?;
        Ok(())
    }
}

fn tempfile_in_shm() -> std::io::Result<std::fs::File> {
    for i in 0..100u32 {
        let path = format!("/dev/shm/journal.berth.{}.{i}", std::process::id());
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(f) => {
                let _ = std::fs::remove_file(&path);
                return Ok(f);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no temporary file in /dev/shm"))
}

/// `KEY=value\n`, or for a value with a newline the binary-safe form:
/// `KEY\n`, its length as a little-endian u64, the value, `\n`.
fn field(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    out.extend_from_slice(key.as_bytes());
    if value.contains(&b'\n') {
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        out.push(b'=');
    }
    out.extend_from_slice(value);
    out.push(b'\n');
}

impl Logger for Journald {
    fn log(&mut self, msgs: &[Message]) -> std::io::Result<()> {
        crate::each(msgs, |m| {
            let d = self.datagram(m);
            match self.sock.send(&d) {
                Ok(_) => Ok(()),
                Err(e)
                    if matches!(e.raw_os_error(), Some(libc::EMSGSIZE) | Some(libc::ENOBUFS)) =>
                {
                    self.send_large(&d)
                }
                Err(e) => Err(e),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_encoded_as_the_native_protocol() {
        let mut out = Vec::new();
        field(&mut out, "MESSAGE", b"one line");
        field(&mut out, "MESSAGE", b"a\nb");
        let mut want = b"MESSAGE=one line\nMESSAGE\n".to_vec();
        want.extend_from_slice(&3u64.to_le_bytes());
        want.extend_from_slice(b"a\nb\n");
        assert_eq!(out, want);
        assert_eq!(sanitize("com.example-label"), "COM_EXAMPLE_LABEL");
        assert_eq!(sanitize("_x"), "X");
    }
}
