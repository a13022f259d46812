//! The `gelf` driver: Graylog Extended Log Format over UDP (compressed,
//! chunked past 1420 bytes) or TCP (NUL-terminated JSON), as go-gelf sends
//! it for dockerd.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};

use crate::net::{Addr, Conn, Proto};
use crate::{Info, Logger, Message, Stream};

const CHUNK_SIZE: usize = 1420;
const CHUNK_DATA: usize = CHUNK_SIZE - 12;
const MAX_CHUNKS: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    Gzip,
    Zlib,
    None,
}

fn address(o: &BTreeMap<String, String>) -> Result<Addr> {
    let raw = o
        .get("gelf-address")
        .filter(|a| !a.is_empty())
        .ok_or_else(|| anyhow!("gelf-address is a required parameter"))?;
    let Some((scheme, rest)) = raw.split_once("://") else {
        bail!("gelf-address should be in form proto://address, got {raw}");
    };
    let proto = match scheme {
        "udp" => Proto::Udp,
        "tcp" => Proto::Tcp,
        _ => bail!("gelf: endpoint needs to be TCP or UDP"),
    };
    let hostport = rest.trim_end_matches('/');
    match hostport.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {}
        _ => bail!("gelf: please provide gelf-address as proto://host:port"),
    }
    Ok(Addr {
        proto,
        target: hostport.to_string(),
    })
}

pub(crate) fn check(o: &BTreeMap<String, String>) -> Result<()> {
    let addr = address(o)?;
    for (key, val) in o {
        match key.as_str() {
            "gelf-compression-level" | "gelf-compression-type" if addr.proto != Proto::Udp => {
                bail!("compression is only supported on UDP")
            }
            "gelf-compression-level"
                if !val.parse::<i32>().is_ok_and(|l| (-1..=9).contains(&l)) =>
            {
                bail!("unknown value {val:?} for log opt {key:?} for gelf log driver");
            }
            "gelf-compression-type" if !matches!(val.as_str(), "gzip" | "zlib" | "none") => {
                bail!("unknown value {val:?} for log opt {key:?} for gelf log driver");
            }
            "gelf-tcp-max-reconnect" | "gelf-tcp-reconnect-delay" => {
                if addr.proto != Proto::Tcp {
                    bail!("{key:?} is only valid for TCP");
                }
                if val.parse::<u32>().is_err() {
                    bail!("{key:?} must be a positive integer");
                }
            }
            _ => {}
        }
    }
    Ok(())
}

pub(crate) struct Gelf {
    addr: Addr,
    conn: Option<Conn>,
    compression: Compression,
    level: u32,
    max_reconnect: u32,
    reconnect_delay: Duration,
    host: String,
    /// the extra fields, the same in every message, sorted
    extra: serde_json::Map<String, serde_json::Value>,
}

impl Gelf {
    pub(crate) fn open(o: &BTreeMap<String, String>, info: &Info) -> Result<Gelf> {
        let addr = address(o)?;
        let compression = match o.get("gelf-compression-type").map(String::as_str) {
            Some("zlib") => Compression::Zlib,
            Some("none") => Compression::None,
            _ => Compression::Gzip,
        };
        let level = match o
            .get("gelf-compression-level")
            .and_then(|l| l.parse::<i32>().ok())
        {
            Some(-1) => 6,
            Some(l) => l.clamp(0, 9) as u32,
            None => 1,
        };
        let num = |k: &str, d: u32| o.get(k).and_then(|v| v.parse().ok()).unwrap_or(d);
        let mut extra = BTreeMap::new();
        for (k, v) in [
            ("_container_id", &info.id),
            ("_container_name", &info.name),
            ("_image_id", &info.image_id),
            ("_image_name", &info.image_name),
            ("_command", &info.command),
            ("_tag", &info.tag),
            ("_created", &info.created),
        ] {
            extra.insert(k.to_string(), v.clone());
        }
        for (k, v) in &info.attrs {
            let k = if k.starts_with('_') {
                k.clone()
            } else {
                format!("_{k}")
            };
            extra.insert(k, v.clone());
        }
        let conn = Conn::dial(&addr, None).map_err(|e| {
            anyhow!(
                "gelf: cannot connect to GELF endpoint: {addr} {:#}",
                addr.dial_error(&e)
            )
        })?;
        Ok(Gelf {
            addr,
            conn: Some(conn),
            compression,
            level,
            max_reconnect: num("gelf-tcp-max-reconnect", 3),
            reconnect_delay: Duration::from_secs(num("gelf-tcp-reconnect-delay", 1).into()),
            host: info.hostname.clone(),
            extra: extra
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect(),
        })
    }

    fn json(&self, msg: &Message) -> Vec<u8> {
        let millis = crate::unix_nanos(msg.time) / 1_000_000;
        let mut m = serde_json::Map::new();
        m.insert("version".into(), "1.1".into());
        m.insert("host".into(), self.host.clone().into());
        m.insert(
            "short_message".into(),
            String::from_utf8_lossy(&msg.line).into_owned().into(),
        );
        m.insert("timestamp".into(), (millis as f64 / 1000.0).into());
        let level = match msg.stream {
            Stream::Stdout => 6,
            Stream::Stderr => 3,
        };
        m.insert("level".into(), level.into());
        for (k, v) in &self.extra {
            m.insert(k.clone(), v.clone());
        }
        serde_json::to_vec(&serde_json::Value::Object(m)).unwrap_or_default()
    }

    fn compress(&self, data: &[u8]) -> std::io::Result<Vec<u8>> {
        let level = flate2::Compression::new(self.level);
        Ok(match self.compression {
            Compression::None => data.to_vec(),
            Compression::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), level);
                e.write_all(data)?;
                e.finish()?
            }
            Compression::Zlib => {
                let mut e = flate2::write::ZlibEncoder::new(Vec::new(), level);
                e.write_all(data)?;
                e.finish()?
            }
        })
    }

    fn send_udp(&mut self, data: &[u8]) -> std::io::Result<()> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(std::io::Error::other("not connected"));
        };
        for d in datagrams(data)? {
            // a receiver that is not up refuses with ICMP: the next
            // message tries again, as with any UDP sender
            conn.send(&d)?;
        }
        Ok(())
    }

    fn send_tcp(&mut self, data: &[u8]) -> std::io::Result<()> {
        let mut last = None;
        for attempt in 0..=self.max_reconnect {
            if attempt > 0 || self.conn.is_none() {
                if attempt > 0 {
                    std::thread::sleep(self.reconnect_delay);
                }
                match Conn::dial(&self.addr, None) {
                    Ok(c) => self.conn = Some(c),
                    Err(e) => {
                        last = Some(e);
                        continue;
                    }
                }
            }
            if let Some(c) = self.conn.as_mut() {
                match c.send(data) {
                    Ok(()) => return Ok(()),
                    Err(e) => {
                        self.conn = None;
                        last = Some(e);
                    }
                }
            }
        }
        Err(std::io::Error::other(format!(
            "gelf: cannot send GELF message: {}",
            last.map(|e| e.to_string()).unwrap_or_default()
        )))
    }
}

/// One datagram, or go-gelf's chunks: magic 1e 0f, an 8-byte message id,
/// the chunk's number and the count, then up to 1408 bytes.
fn datagrams(data: &[u8]) -> std::io::Result<Vec<Vec<u8>>> {
    if data.len() <= CHUNK_SIZE {
        return Ok(vec![data.to_vec()]);
    }
    let count = data.len() / CHUNK_DATA + 1;
    if count > MAX_CHUNKS {
        return Err(std::io::Error::other(format!(
            "msg too large, would need {count} chunks"
        )));
    }
    let mut id = [0u8; 8];
    // SAFETY: getrandom fills the buffer it is given
    let n = unsafe { libc::getrandom(id.as_mut_ptr().cast(), id.len(), 0) };
    if n != id.len() as isize {
        let t = crate::unix_nanos(std::time::SystemTime::now()) as u64;
        id = (t ^ u64::from(std::process::id()).rotate_left(32)).to_be_bytes();
    }
    Ok((0..count)
        .map(|i| {
            let start = (i * CHUNK_DATA).min(data.len());
            let end = (start + CHUNK_DATA).min(data.len());
            let mut d = Vec::with_capacity(12 + end - start);
            d.extend_from_slice(&[0x1e, 0x0f]);
            d.extend_from_slice(&id);
            d.push(i as u8);
            d.push(count as u8);
            d.extend_from_slice(&data[start..end]);
            d
        })
        .collect())
}

impl Logger for Gelf {
    fn log(&mut self, msgs: &[Message]) -> std::io::Result<()> {
        crate::each(msgs, |m| {
            let json = self.json(m);
            if self.addr.proto == Proto::Udp {
                let data = self.compress(&json)?;
                self.send_udp(&data)
            } else {
                let mut data = json;
                data.push(0);
                self.send_tcp(&data)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_opts as o;

    #[test]
    fn options_are_checked_with_dockerds_words() {
        assert_eq!(
            check(&o(&[])).unwrap_err().to_string(),
            "gelf-address is a required parameter"
        );
        assert!(check(&o(&[("gelf-address", "udp://h")])).is_err());
        assert!(check(&o(&[("gelf-address", "http://h:1")])).is_err());
        assert!(
            check(&o(&[
                ("gelf-address", "tcp://h:1"),
                ("gelf-compression-type", "gzip")
            ]))
            .is_err()
        );
        assert!(
            check(&o(&[
                ("gelf-address", "udp://h:1"),
                ("gelf-tcp-max-reconnect", "1")
            ]))
            .is_err()
        );
        assert!(
            check(&o(&[
                ("gelf-address", "udp://h:1"),
                ("gelf-compression-level", "10")
            ]))
            .is_err()
        );
        assert!(
            check(&o(&[
                ("gelf-address", "udp://h:1"),
                ("gelf-compression-type", "zlib")
            ]))
            .is_ok()
        );
    }

    #[test]
    fn chunks_as_go_gelf() {
        assert_eq!(datagrams(&[1; CHUNK_SIZE]).unwrap().len(), 1);
        let data: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let d = datagrams(&data).unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(&d[0][..2], &[0x1e, 0x0f]);
        assert_eq!(d[0][2..10], d[2][2..10]);
        assert_eq!((d[1][10], d[1][11]), (1, 3));
        let joined: Vec<u8> = d.iter().flat_map(|c| c[12..].to_vec()).collect();
        assert_eq!(joined, data);
        assert!(datagrams(&vec![0; CHUNK_DATA * 130]).is_err());
    }
}
