//! The `syslog` driver: one syslog message per line, over UDP, TCP, TCP
//! with TLS or a unix socket, in the formats dockerd's srslog writes.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Result, anyhow, bail};
use chrono::{DateTime, Local};

use crate::net::{Addr, Conn, Proto, parse};
use crate::{Info, Logger, Message, Stream};

const FACILITIES: &[(&str, u8)] = &[
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

/// The local syslog sockets tried when no address is given.
const LOCAL_SOCKETS: &[&str] = &["/dev/log", "/var/run/syslog", "/var/run/log"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// `<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG`, srslog's UnixFormatter
    Unix,
    /// `<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG`
    Rfc3164,
    /// `<PRI>1 TIMESTAMP HOST TAG PID TAG - MSG`
    Rfc5424,
    /// the same with microseconds in the timestamp
    Rfc5424Micro,
}

fn facility(o: &BTreeMap<String, String>) -> Result<u8> {
    let Some(f) = o.get("syslog-facility").filter(|f| !f.is_empty()) else {
        return Ok(3);
    };
    if let Some((_, n)) = FACILITIES.iter().find(|(name, _)| name == f) {
        return Ok(*n);
    }
    match f.parse::<u8>() {
        Ok(n) if n <= 23 => Ok(n),
        _ => bail!("invalid syslog facility"),
    }
}

fn format(o: &BTreeMap<String, String>) -> Result<Format> {
    Ok(match o.get("syslog-format").map(String::as_str) {
        None | Some("") => Format::Unix,
        Some("rfc3164") => Format::Rfc3164,
        Some("rfc5424") => Format::Rfc5424,
        Some("rfc5424micro") => Format::Rfc5424Micro,
        Some(_) => bail!("invalid syslog format"),
    })
}

fn address(o: &BTreeMap<String, String>) -> Result<Option<Addr>> {
    match o.get("syslog-address").filter(|a| !a.is_empty()) {
        None => Ok(None),
        Some(a) => parse(
            a,
            514,
            &[
                Proto::Udp,
                Proto::Tcp,
                Proto::Tls,
                Proto::Unix,
                Proto::Unixgram,
            ],
        )
        .map(Some),
    }
}

/// Checks the options at container creation.
pub(crate) fn check(o: &BTreeMap<String, String>) -> Result<()> {
    facility(o)?;
    format(o)?;
    let addr = address(o)?;
    if let Some(a) = &addr
        && matches!(a.proto, Proto::Unix | Proto::Unixgram)
    {
        std::fs::metadata(&a.target)
            .map_err(|e| anyhow!("stat {}: {}", a.target, crate::net::go_error(&e)))?;
    }
    crate::opts::bool_opt(o, "syslog-tls-skip-verify", false)?;
    let tls_keys = [
        "syslog-tls-ca-cert",
        "syslog-tls-cert",
        "syslog-tls-key",
        "syslog-tls-skip-verify",
    ];
    if addr.as_ref().is_none_or(|a| a.proto != Proto::Tls)
        && let Some(k) = tls_keys.iter().find(|k| o.contains_key(**k))
    {
        bail!("{k} is only supported with a tcp+tls syslog-address");
    }
    Ok(())
}

fn tls_config(o: &BTreeMap<String, String>) -> Result<Arc<rustls::ClientConfig>> {
    let file = |k: &str| {
        o.get(k)
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from)
    };
    let client = match (file("syslog-tls-cert"), file("syslog-tls-key")) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => bail!("syslog-tls-cert and syslog-tls-key go together"),
    };
    let opts = berth_tls::Options {
        skip_verify: crate::opts::bool_opt(o, "syslog-tls-skip-verify", false)?,
        system_roots: file("syslog-tls-ca-cert").is_none(),
        cas: file("syslog-tls-ca-cert").into_iter().collect(),
        client,
    };
    Ok(Arc::new(berth_tls::client_config(&opts)?))
}

pub(crate) struct Syslog {
    /// None: the local syslog socket, looked for at each connect
    addr: Option<Addr>,
    tls: Option<Arc<rustls::ClientConfig>>,
    conn: Option<Conn>,
    format: Format,
    facility: u8,
    tag: String,
    hostname: String,
    pid: u32,
}

impl Syslog {
    pub(crate) fn open(o: &BTreeMap<String, String>, info: &Info) -> Result<Syslog> {
        let addr = address(o)?;
        let tls = match &addr {
            Some(a) if a.proto == Proto::Tls => Some(tls_config(o)?),
            _ => None,
        };
        let mut s = Syslog {
            addr,
            tls,
            conn: None,
            format: format(o)?,
            facility: facility(o)?,
            tag: info.tag.clone(),
            hostname: info.hostname.clone(),
            pid: info.daemon_pid,
        };
        s.conn = Some(s.dial()?);
        Ok(s)
    }

    fn dial(&self) -> Result<Conn> {
        match &self.addr {
            Some(a) => Conn::dial(a, self.tls.as_ref()).map_err(|e| a.dial_error(&e)),
            None => {
                for path in LOCAL_SOCKETS {
                    for proto in [Proto::Unixgram, Proto::Unix] {
                        let a = Addr {
                            proto,
                            target: path.to_string(),
                        };
                        if let Ok(c) = Conn::dial(&a, None) {
                            return Ok(c);
                        }
                    }
                }
                Err(anyhow!("Unix syslog delivery error"))
            }
        }
    }

    fn render(&self, msg: &Message) -> Vec<u8> {
        let severity = match msg.stream {
            Stream::Stdout => 6,
            Stream::Stderr => 3,
        };
        let pri = u32::from(self.facility) * 8 + severity;
        let content = String::from_utf8_lossy(&msg.line);
        let now: DateTime<Local> = msg.time.into();
        let mut text = match self.format {
            Format::Unix => format!(
                "<{pri}>{} {}[{}]: {content}",
                now.format("%b %e %H:%M:%S"),
                self.tag,
                self.pid
            ),
            Format::Rfc3164 => format!(
                "<{pri}>{} {} {}[{}]: {content}",
                now.format("%b %e %H:%M:%S"),
                self.hostname,
                self.tag,
                self.pid
            ),
            Format::Rfc5424 | Format::Rfc5424Micro => {
                let ts = if self.format == Format::Rfc5424 {
                    now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                } else {
                    rfc3339_micro(&now)
                };
                format!(
                    "<{pri}>1 {ts} {} {} {} {} - {content}",
                    self.hostname, self.tag, self.pid, self.tag
                )
            }
        };
        if !text.ends_with('\n') {
            text.push('\n');
        }
        // RFC 5425 octet counting over TLS for RFC 5424, as dockerd frames it
        if self.format != Format::Unix
            && self.format != Format::Rfc3164
            && self.addr.as_ref().is_some_and(|a| a.proto == Proto::Tls)
        {
            text = format!("{} {text}", text.len());
        }
        text.into_bytes()
    }
}

/// Go's "2006-01-02T15:04:05.000000Z07:00".
fn rfc3339_micro(t: &DateTime<Local>) -> String {
    let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let frac = format!(".{:06}", t.timestamp_subsec_micros());
    let offset = t.offset().local_minus_utc();
    let zone = if offset == 0 {
        "Z".to_string()
    } else {
        let sign = if offset < 0 { '-' } else { '+' };
        let o = offset.abs();
        format!("{sign}{:02}:{:02}", o / 3600, (o % 3600) / 60)
    };
    format!("{base}{frac}{zone}")
}

impl Logger for Syslog {
    fn log(&mut self, msgs: &[Message]) -> std::io::Result<()> {
        // dockerd sends no empty lines to syslog
        crate::each(msgs, |m| {
            if m.line.is_empty() {
                return Ok(());
            }
            let data = self.render(m);
            let sent = match self.conn.as_mut() {
                Some(c) => c.send(&data),
                None => Err(std::io::Error::other("not connected")),
            };
            if sent.is_err() {
                // one reconnect per message, as srslog retries
                self.conn = None;
                let mut c = self
                    .dial()
                    .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
                c.send(&data)?;
                self.conn = Some(c);
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    use crate::test_opts as o;

    fn logger(opts: &[(&str, &str)]) -> Syslog {
        let o = o(opts);
        Syslog {
            addr: address(&o).unwrap(),
            tls: None,
            conn: None,
            format: format(&o).unwrap(),
            facility: facility(&o).unwrap(),
            tag: "abc".into(),
            hostname: "host1".into(),
            pid: 42,
        }
    }

    #[test]
    fn formats_as_srslog() {
        let msg = Message {
            stream: Stream::Stderr,
            line: b"boom".to_vec(),
            partial: false,
            time: UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_micros(120),
        };
        let s = String::from_utf8(logger(&[]).render(&msg)).unwrap();
        // daemon.err = 3*8+3
        assert!(s.starts_with("<27>"), "{s}");
        assert!(s.ends_with(" abc[42]: boom\n"), "{s}");
        let s = String::from_utf8(
            logger(&[("syslog-format", "rfc3164"), ("syslog-facility", "local0")]).render(&msg),
        )
        .unwrap();
        assert!(s.starts_with("<131>"), "{s}");
        assert!(s.ends_with(" host1 abc[42]: boom\n"), "{s}");
        let s = String::from_utf8(logger(&[("syslog-format", "rfc5424")]).render(&msg)).unwrap();
        assert!(s.starts_with("<27>1 20"), "{s}");
        assert!(s.ends_with(" host1 abc 42 abc - boom\n"), "{s}");
        let s = String::from_utf8(
            logger(&[
                ("syslog-format", "rfc5424micro"),
                ("syslog-address", "tcp+tls://h:1"),
            ])
            .render(&msg),
        )
        .unwrap();
        let (len, rest) = s.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), rest.len());
        assert!(rest.contains(":20.000120"), "{s}");
    }

    #[test]
    fn options_are_checked() {
        assert!(check(&o(&[("syslog-facility", "nope")])).is_err());
        assert!(check(&o(&[("syslog-facility", "local7")])).is_ok());
        assert!(check(&o(&[("syslog-format", "rfc9999")])).is_err());
        assert!(check(&o(&[("syslog-address", "http://x")])).is_err());
        assert!(
            check(&o(&[
                ("syslog-address", "udp://h"),
                ("syslog-tls-cert", "/x")
            ]))
            .is_err()
        );
        assert!(
            check(&o(&[
                ("syslog-address", "tcp+tls://h"),
                ("syslog-tls-skip-verify", "true")
            ]))
            .is_ok()
        );
    }
}
