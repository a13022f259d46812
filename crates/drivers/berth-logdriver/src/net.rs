//! The connections the remote drivers send on: UDP, TCP, TCP with TLS and
//! unix stream or datagram sockets, named by URL as in `--log-opt`.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};

const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// A receiver that stops reading must not hold a container forever.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proto {
    Udp,
    Tcp,
    Tls,
    Unix,
    Unixgram,
}

#[derive(Debug, Clone)]
pub(crate) struct Addr {
    pub(crate) proto: Proto,
    /// host:port, or a socket's path
    pub(crate) target: String,
}

/// An io error as Go words it: `connect: connection refused`, without
/// Rust's "(os error N)".
pub(crate) fn go_error(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    let mut lower = text.to_lowercase();
    if e.kind() == std::io::ErrorKind::ConnectionRefused {
        lower = format!("connect: {lower}");
    }
    lower
}

impl Addr {
    /// Go's "dial tcp 127.0.0.1:514" prefix of a failed dial.
    pub(crate) fn dial_error(&self, e: &std::io::Error) -> anyhow::Error {
        let net = match self.proto {
            Proto::Udp => "udp",
            Proto::Tcp | Proto::Tls => "tcp",
            Proto::Unix => "unix",
            Proto::Unixgram => "unixgram",
        };
        anyhow!("dial {net} {}: {}", self.target, go_error(e))
    }
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = match self.proto {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
            Proto::Tls => "tcp+tls",
            Proto::Unix => "unix",
            Proto::Unixgram => "unixgram",
        };
        write!(f, "{scheme}://{}", self.target)
    }
}

/// Parses `scheme://host[:port]` or `unix:///path`; `allowed` are the
/// schemes the driver takes.
pub(crate) fn parse(raw: &str, default_port: u16, allowed: &[Proto]) -> Result<Addr> {
    let (scheme, rest) = raw
        .split_once("://")
        .ok_or_else(|| anyhow!("invalid address {raw:?}: want scheme://address"))?;
    let proto = match scheme {
        "udp" => Proto::Udp,
        "tcp" => Proto::Tcp,
        "tcp+tls" => Proto::Tls,
        "unix" => Proto::Unix,
        "unixgram" => Proto::Unixgram,
        other => bail!("unsupported scheme: '{other}'"),
    };
    if !allowed.contains(&proto) {
        bail!("unsupported scheme: '{scheme}'");
    }
    let target = match proto {
        Proto::Unix | Proto::Unixgram => {
            if !rest.starts_with('/') {
                bail!("invalid address {raw:?}: a unix socket needs an absolute path");
            }
            rest.to_string()
        }
        _ => {
            let hostport = rest.trim_end_matches('/');
            if hostport.is_empty() || hostport.contains('/') {
                bail!("invalid address {raw:?}");
            }
            if has_port(hostport) {
                let (_, port) = hostport.rsplit_once(':').unwrap_or_default();
                port.parse::<u16>()
                    .map_err(|_| anyhow!("invalid port in address {raw:?}"))?;
                hostport.to_string()
            } else if hostport.contains(':') && !hostport.starts_with('[') {
                // a bare IPv6 address
                format!("[{hostport}]:{default_port}")
            } else {
                format!("{hostport}:{default_port}")
            }
        }
    };
    Ok(Addr { proto, target })
}

fn has_port(hostport: &str) -> bool {
    if let Some(rest) = hostport.strip_prefix('[') {
        return rest.contains("]:");
    }
    hostport.matches(':').count() == 1
}

pub(crate) enum Conn {
    Udp(UdpSocket),
    Tcp(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
    Unix(UnixStream),
    Unixgram(UnixDatagram),
}

fn tcp(target: &str) -> std::io::Result<TcpStream> {
    let mut last = None;
    for a in target.to_socket_addrs()? {
        match TcpStream::connect_timeout(&a, DIAL_TIMEOUT) {
            Ok(s) => {
                s.set_write_timeout(Some(WRITE_TIMEOUT))?;
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no address for {target}"),
        )
    }))
}

impl Conn {
    pub(crate) fn dial(
        addr: &Addr,
        tls: Option<&Arc<rustls::ClientConfig>>,
    ) -> std::io::Result<Conn> {
        Ok(match addr.proto {
            Proto::Udp => {
                let to = addr.target.to_socket_addrs()?.next().ok_or_else(|| {
                    std::io::Error::other(format!("no address for {}", addr.target))
                })?;
                let bind = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
                let s = UdpSocket::bind(bind)?;
                s.connect(to)?;
                Conn::Udp(s)
            }
            Proto::Tcp => Conn::Tcp(tcp(&addr.target)?),
            Proto::Tls => {
                let cfg = tls
                    .cloned()
                    .ok_or_else(|| std::io::Error::other("tls is not configured"))?;
                let host = addr
                    .target
                    .rsplit_once(':')
                    .map(|(h, _)| h)
                    .unwrap_or(&addr.target)
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string();
                let name = rustls::pki_types::ServerName::try_from(host)
                    .map_err(|e| std::io::Error::other(format!("tls server name: {e}")))?;
                let mut sock = tcp(&addr.target)?;
                let mut conn = rustls::ClientConnection::new(cfg, name)
                    .map_err(|e| std::io::Error::other(format!("tls: {e}")))?;
                // handshake now, so that a bad certificate fails the start;
                // a peer that never answers fails it too
                sock.set_read_timeout(Some(DIAL_TIMEOUT))?;
                while conn.is_handshaking() {
                    conn.complete_io(&mut sock)?;
                }
                sock.set_read_timeout(None)?;
                Conn::Tls(Box::new(rustls::StreamOwned::new(conn, sock)))
            }
            Proto::Unix => {
                let s = UnixStream::connect(&addr.target)?;
                s.set_write_timeout(Some(WRITE_TIMEOUT))?;
                Conn::Unix(s)
            }
            Proto::Unixgram => {
                let s = UnixDatagram::unbound()?;
                s.connect(&addr.target)?;
                Conn::Unixgram(s)
            }
        })
    }

    /// Sends one datagram, or writes all of `data` to a stream.
    pub(crate) fn send(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::Udp(s) => s.send(data).map(|_| ()),
            Conn::Unixgram(s) => s.send(data).map(|_| ()),
            Conn::Tcp(s) => s.write_all(data),
            Conn::Unix(s) => s.write_all(data),
            Conn::Tls(s) => {
                s.write_all(data)?;
                s.flush()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_as_docker_writes_them() {
        let all = [
            Proto::Udp,
            Proto::Tcp,
            Proto::Tls,
            Proto::Unix,
            Proto::Unixgram,
        ];
        let a = parse("udp://127.0.0.1", 514, &all).unwrap();
        assert_eq!((a.proto, a.target.as_str()), (Proto::Udp, "127.0.0.1:514"));
        let a = parse("tcp+tls://log.example:6514", 514, &all).unwrap();
        assert_eq!(
            (a.proto, a.target.as_str()),
            (Proto::Tls, "log.example:6514")
        );
        let a = parse("unix:///dev/log", 514, &all).unwrap();
        assert_eq!(a.target, "/dev/log");
        let a = parse("udp://[::1]:99", 514, &all).unwrap();
        assert_eq!(a.target, "[::1]:99");
        assert_eq!(
            parse("http://x", 1, &all).unwrap_err().to_string(),
            "unsupported scheme: 'http'"
        );
        assert!(parse("tcp://h:notaport", 1, &all).is_err());
        assert!(parse("unix://relative", 1, &all).is_err());
        assert!(parse("udp://h", 1, &[Proto::Tcp]).is_err());
        assert!(parse("nothing", 1, &all).is_err());
    }
}
