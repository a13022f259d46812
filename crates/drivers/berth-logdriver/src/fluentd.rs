//! The `fluentd` driver: the forward protocol's message mode, one
//! `[tag, time, record, option]` MessagePack array per line, as
//! fluent-logger-golang sends it for dockerd.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};

use crate::msgpack;
use crate::net::{Addr, Conn, Proto};
use crate::{Info, Logger, Message};

const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);

fn address(o: &BTreeMap<String, String>) -> Result<(Addr, bool)> {
    let raw = o.get("fluentd-address").map(String::as_str).unwrap_or("");
    let wrap = |e: anyhow::Error| anyhow!("invalid fluentd-address ({raw}): {e}");
    if raw.is_empty() {
        return Ok((
            Addr {
                proto: Proto::Tcp,
                target: "127.0.0.1:24224".into(),
            },
            false,
        ));
    }
    let full = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("tcp://{raw}")
    };
    let (scheme, rest) = full.split_once("://").unwrap_or(("tcp", raw));
    match scheme {
        "unix" => {
            if rest.trim_start_matches('/').is_empty() {
                return Err(wrap(anyhow!("path is empty")));
            }
            Ok((
                Addr {
                    proto: Proto::Unix,
                    target: rest.to_string(),
                },
                false,
            ))
        }
        "tcp" | "tls" => {
            if rest.contains('/') {
                return Err(wrap(anyhow!("should not contain a path element")));
            }
            let (host, port) = match rest.rsplit_once(':') {
                Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => {
                    let p: u16 = p.parse().map_err(|_| wrap(anyhow!("invalid port")))?;
                    (h.to_string(), p)
                }
                _ => (rest.to_string(), 24224),
            };
            let host = if host.is_empty() {
                "127.0.0.1".to_string()
            } else {
                host
            };
            Ok((
                Addr {
                    proto: if scheme == "tls" {
                        Proto::Tls
                    } else {
                        Proto::Tcp
                    },
                    target: format!("{host}:{port}"),
                },
                scheme == "tls",
            ))
        }
        other => Err(wrap(anyhow!("unsupported scheme: '{other}'"))),
    }
}

fn duration(o: &BTreeMap<String, String>, key: &str, default: Duration) -> Result<Duration> {
    match o.get(key) {
        None => Ok(default),
        Some(v) => parse_go_duration(v)
            .ok_or_else(|| anyhow!("invalid {key}: time: invalid duration {v:?}")),
    }
}

/// Go's time.ParseDuration for the units people write: ns us ms s m h,
/// possibly combined (`1m30s`).
fn parse_go_duration(v: &str) -> Option<Duration> {
    if v == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = v;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * mult;
        rest = &rest[unit_end..];
    }
    Duration::try_from_secs_f64(total).ok()
}

struct Settings {
    addr: Addr,
    tls: bool,
    is_async: bool,
    buffer_limit: u64,
    retry_wait: Duration,
    max_retries: u64,
    sub_second: bool,
    request_ack: bool,
    write_timeout: Duration,
}

fn settings(o: &BTreeMap<String, String>) -> Result<Settings> {
    let (addr, tls) = address(o)?;
    let b = |k: &str| crate::opts::bool_opt(o, k, false);
    let is_async = b("fluentd-async")?;
    if is_async && o.contains_key("fluentd-async-connect") {
        bail!(
            "conflicting options: cannot specify both 'fluentd-async' and 'fluentd-async-connect'"
        );
    }
    let max_retries = match o.get("fluentd-max-retries") {
        None => i32::MAX as u64,
        Some(v) => {
            let n: u64 = v
                .parse()
                .map_err(|_| anyhow!("invalid fluentd-max-retries: {v}"))?;
            if n > i32::MAX as u64 {
                bail!("invalid fluentd-max-retries: value out of range");
            }
            n
        }
    };
    let buffer_limit = match o.get("fluentd-buffer-limit") {
        None => 1024 * 1024,
        Some(v) => berth_units::parse_human_size(v)
            .map_err(|e| anyhow!("invalid fluentd-buffer-limit: {e}"))?
            .max(1) as u64,
    };
    let reconnect = duration(o, "fluentd-async-reconnect-interval", Duration::ZERO)?;
    if !reconnect.is_zero()
        && !(Duration::from_millis(100)..=Duration::from_secs(10)).contains(&reconnect)
    {
        bail!(
            "invalid value for fluentd-async-reconnect-interval: value ({:?}) must be between 100ms and 10s",
            o.get("fluentd-async-reconnect-interval")
                .cloned()
                .unwrap_or_default()
        );
    }
    duration(o, "fluentd-read-timeout", Duration::ZERO)?;
    Ok(Settings {
        addr,
        tls,
        is_async: is_async || b("fluentd-async-connect")?,
        buffer_limit,
        retry_wait: duration(o, "fluentd-retry-wait", Duration::from_secs(1))?,
        max_retries,
        sub_second: b("fluentd-sub-second-precision")?,
        request_ack: b("fluentd-request-ack")?,
        write_timeout: duration(o, "fluentd-write-timeout", Duration::ZERO)?,
    })
}

pub(crate) fn check(o: &BTreeMap<String, String>) -> Result<()> {
    settings(o).map(|_| ())
}

pub(crate) struct Fluentd {
    s: Settings,
    tls: Option<Arc<rustls::ClientConfig>>,
    conn: Option<Conn>,
    tag: String,
    /// the record's fixed keys and the labels/env extras
    base: BTreeMap<String, String>,
    acks: u64,
}

impl Fluentd {
    /// The driver, already connected unless `fluentd-async`, in which case
    /// it connects in the background and the container never waits.
    pub(crate) fn open(o: &BTreeMap<String, String>, info: &Info) -> Result<Box<dyn Logger>> {
        let s = settings(o)?;
        let tls = if s.tls {
            Some(Arc::new(berth_tls::client_config(&berth_tls::Options {
                system_roots: true,
                ..Default::default()
            })?))
        } else {
            None
        };
        let mut base = BTreeMap::new();
        base.insert("container_id".to_string(), info.id.clone());
        base.insert("container_name".to_string(), format!("/{}", info.name));
        for (k, v) in &info.attrs {
            base.insert(k.clone(), v.clone());
        }
        let is_async = s.is_async;
        let limit = s.buffer_limit;
        let mut f = Fluentd {
            s,
            tls,
            conn: None,
            tag: info.tag.clone(),
            base,
            acks: 0,
        };
        if is_async {
            return Ok(Box::new(crate::nonblocking::NonBlocking::new(
                Box::new(f),
                limit,
            )?));
        }
        f.conn = Some(f.dial().map_err(|e| f.s.addr.dial_error(&e))?);
        Ok(Box::new(f))
    }

    fn dial(&self) -> std::io::Result<Conn> {
        let c = Conn::dial(&self.s.addr, self.tls.as_ref())?;
        if !self.s.write_timeout.is_zero()
            && let Conn::Tcp(t) = &c
        {
            t.set_write_timeout(Some(self.s.write_timeout))?;
        }
        Ok(c)
    }

    fn encode(&mut self, msg: &Message, chunk: Option<&str>) -> Vec<u8> {
        let mut out = Vec::with_capacity(msg.line.len() + 200);
        msgpack::array(&mut out, 4);
        msgpack::str(&mut out, &self.tag);
        let nanos = crate::unix_nanos(msg.time);
        let secs = nanos.div_euclid(1_000_000_000);
        if self.s.sub_second {
            msgpack::event_time(
                &mut out,
                secs as u32,
                nanos.rem_euclid(1_000_000_000) as u32,
            );
        } else {
            msgpack::int(&mut out, secs);
        }
        let mut record = self.base.clone();
        record.insert("source".into(), msg.stream.name().into());
        record.insert(
            "log".into(),
            String::from_utf8_lossy(&msg.line).into_owned(),
        );
        if msg.partial {
            record.insert("partial_message".into(), "true".into());
        }
        msgpack::map(&mut out, record.len());
        for (k, v) in &record {
            msgpack::str(&mut out, k);
            msgpack::str(&mut out, v);
        }
        match chunk {
            Some(c) => {
                msgpack::map(&mut out, 1);
                msgpack::str(&mut out, "chunk");
                msgpack::str(&mut out, c);
            }
            None => msgpack::map(&mut out, 0),
        }
        out
    }

    /// Sends one message; with `fluentd-request-ack`, waits for the
    /// receiver's `{"ack": chunk}`.
    fn send_once(&mut self, data: &[u8], chunk: Option<&str>) -> std::io::Result<()> {
        if self.conn.is_none() {
            self.conn = Some(self.dial()?);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(std::io::Error::other("not connected"));
        };
        conn.send(data)?;
        if let Some(chunk) = chunk {
            let mut got = Vec::new();
            let mut buf = [0u8; 256];
            let want = chunk.as_bytes();
            while !got.windows(want.len()).any(|w| w == want) {
                let n = match conn {
                    Conn::Tcp(s) => {
                        s.set_read_timeout(Some(Duration::from_secs(30)))?;
                        s.read(&mut buf)?
                    }
                    Conn::Unix(s) => {
                        s.set_read_timeout(Some(Duration::from_secs(30)))?;
                        s.read(&mut buf)?
                    }
                    Conn::Tls(s) => {
                        s.sock.set_read_timeout(Some(Duration::from_secs(30)))?;
                        s.read(&mut buf)?
                    }
                    _ => return Ok(()),
                };
                if n == 0 {
                    return Err(std::io::Error::other(
                        "fluentd closed the connection before its ack",
                    ));
                }
                got.extend_from_slice(&buf[..n]);
                if got.len() > 64 * 1024 {
                    return Err(std::io::Error::other("no ack from fluentd"));
                }
            }
        }
        Ok(())
    }
}

impl Logger for Fluentd {
    fn log(&mut self, msgs: &[Message]) -> std::io::Result<()> {
        for m in msgs {
            let chunk = self.s.request_ack.then(|| {
                self.acks += 1;
                format!(
                    "{:x}-{}-{}",
                    crate::unix_nanos(m.time),
                    std::process::id(),
                    self.acks
                )
            });
            let data = self.encode(m, chunk.as_deref());
            let mut attempt: u64 = 0;
            loop {
                match self.send_once(&data, chunk.as_deref()) {
                    Ok(()) => break,
                    Err(e) => {
                        self.conn = None;
                        attempt += 1;
                        if attempt > self.s.max_retries {
                            return Err(std::io::Error::other(format!(
                                "could not connect to fluentd after {} retries: {e}",
                                self.s.max_retries
                            )));
                        }
                        // fluent-logger-golang's backoff: wait × 1.5^(n-1)
                        let wait = self
                            .s
                            .retry_wait
                            .min(MAX_RETRY_WAIT)
                            .mul_f64(1.5f64.powi((attempt - 1).min(30) as i32));
                        std::thread::sleep(wait.min(MAX_RETRY_WAIT));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_opts as o;

    #[test]
    fn addresses_and_options() {
        let (a, _) = address(&o(&[])).unwrap();
        assert_eq!(a.target, "127.0.0.1:24224");
        let (a, _) = address(&o(&[("fluentd-address", "10.0.0.1:9")])).unwrap();
        assert_eq!((a.proto, a.target.as_str()), (Proto::Tcp, "10.0.0.1:9"));
        let (a, _) = address(&o(&[("fluentd-address", "tcp://host")])).unwrap();
        assert_eq!(a.target, "host:24224");
        let (a, _) = address(&o(&[("fluentd-address", "unix:///run/f.sock")])).unwrap();
        assert_eq!((a.proto, a.target.as_str()), (Proto::Unix, "/run/f.sock"));
        assert!(address(&o(&[("fluentd-address", "udp://h:1")])).is_err());
        assert!(address(&o(&[("fluentd-address", "tcp://h:1/x")])).is_err());
        assert!(check(&o(&[("fluentd-retry-wait", "soon")])).is_err());
        assert!(check(&o(&[("fluentd-retry-wait", "1m30s")])).is_ok());
        assert!(check(&o(&[("fluentd-max-retries", "9999999999")])).is_err());
        assert!(check(&o(&[("fluentd-async", "maybe")])).is_err());
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_go_duration("5"), None);
    }
}
