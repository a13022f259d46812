//! Calls to a legacy plugin: `POST /<Interface>.<Method>` with a JSON body,
//! over a unix socket or TCP, as dockerd's plugin client makes them (the
//! `Accept` type, Go's JSON with a trailing newline, and its retries: a
//! plugin that does not accept connections is tried again after 1, 2, 4
//! and 8 s, for up to 30 s in all).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The media type of the plugin protocol's requests.
pub const VERSION_MIMETYPE: &str = "application/vnd.docker.plugins.v1.2+json";

/// How long connection attempts are retried, as dockerd's `defaultTimeOut`.
const RETRY_FOR: Duration = Duration::from_secs(30);

/// The most of an answer read: plugins answer small JSON documents.
const MAX_ANSWER: u64 = 16 << 20;

/// Where a plugin listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Unix(PathBuf),
    /// `host:port`
    Tcp(String),
}

impl Address {
    /// `unix:///path` or `tcp://host:port`, as a `.spec` file gives them.
    pub fn parse(url: &str) -> Result<Self, String> {
        if let Some(path) = url.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(format!("unix address must be absolute: {url:?}"));
            }
            return Ok(Address::Unix(path.into()));
        }
        if let Some(hostport) = url.strip_prefix("tcp://") {
            let hostport = hostport.trim_end_matches('/');
            if hostport.is_empty() || !hostport.contains(':') {
                return Err(format!("tcp address needs a host and port: {url:?}"));
            }
            return Ok(Address::Tcp(hostport.into()));
        }
        Err(format!(
            "unsupported plugin address {url:?}: give unix:// or tcp://"
        ))
    }
}

/// A failed call, worded as dockerd words it (`Method: message`).
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// the plugin could not be reached (after the retries)
    #[error("{method}: {source}")]
    Unreachable {
        method: String,
        source: std::io::Error,
    },
    /// the plugin answered with an error status; `message` is its `Err`
    #[error("{method}: {message}")]
    Status {
        method: String,
        status: u16,
        message: String,
    },
    /// the answer is not HTTP or not the JSON the method returns
    #[error("{method}: invalid answer from the plugin: {why}")]
    Invalid { method: String, why: String },
}

/// An activated plugin.
#[derive(Debug)]
pub struct Plugin {
    pub name: String,
    pub address: Address,
    /// what `Plugin.Activate` said it implements ("VolumeDriver", ...)
    pub implements: Vec<String>,
}

impl Plugin {
    /// The handshake: `POST /Plugin.Activate`, which names the interfaces.
    pub fn activate(name: &str, address: Address, retry: bool) -> Result<Self, CallError> {
        let answer = call_at(
            &address,
            "Plugin.Activate",
            &Value::Null,
            Duration::from_secs(60),
            retry,
        )?;
        let implements = answer
            .get("Implements")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            name: name.to_string(),
            address,
            implements,
        })
    }

    pub fn implements(&self, interface: &str) -> bool {
        self.implements.iter().any(|i| i == interface)
    }

    /// Calls `method` with `args`; the answer's JSON. A call waits at most
    /// `timeout` for each read and write.
    pub fn call(&self, method: &str, args: &Value, timeout: Duration) -> Result<Value, CallError> {
        call_at(&self.address, method, args, timeout, true)
    }
}

fn call_at(
    address: &Address,
    method: &str,
    args: &Value,
    timeout: Duration,
    retry: bool,
) -> Result<Value, CallError> {
    // a blocking call must not hold one of the runtime's few workers
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| call_retrying(address, method, args, timeout, retry))
        }
        _ => call_retrying(address, method, args, timeout, retry),
    }
}

fn call_retrying(
    address: &Address,
    method: &str,
    args: &Value,
    timeout: Duration,
    retry: bool,
) -> Result<Value, CallError> {
    let started = Instant::now();
    let mut backoff = Duration::from_secs(1);
    loop {
        match connect(address, timeout) {
            Ok(stream) => return exchange(stream, method, args),
            Err(e) => {
                if !retry || started.elapsed() + backoff >= RETRY_FOR {
                    return Err(CallError::Unreachable {
                        method: method.to_string(),
                        source: e,
                    });
                }
                tracing::warn!(method, error = %e, retry_in = ?backoff, "unable to connect to plugin");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(RETRY_FOR);
            }
        }
    }
}

/// A connected stream with read and write timeouts.
enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

fn connect(address: &Address, timeout: Duration) -> std::io::Result<Stream> {
    let stream = match address {
        Address::Unix(path) => {
            let s = UnixStream::connect(path)?;
            s.set_read_timeout(Some(timeout))?;
            s.set_write_timeout(Some(timeout))?;
            Stream::Unix(s)
        }
        Address::Tcp(hostport) => {
            let addr = std::net::ToSocketAddrs::to_socket_addrs(hostport.as_str())?
                .next()
                .ok_or_else(|| std::io::Error::other(format!("no address for {hostport}")))?;
            let s = TcpStream::connect_timeout(&addr, timeout)?;
            s.set_read_timeout(Some(timeout))?;
            s.set_write_timeout(Some(timeout))?;
            Stream::Tcp(s)
        }
    };
    Ok(stream)
}

fn exchange(mut stream: Stream, method: &str, args: &Value) -> Result<Value, CallError> {
    let invalid = |why: String| CallError::Invalid {
        method: method.to_string(),
        why,
    };
    let io = |e: std::io::Error| CallError::Unreachable {
        method: method.to_string(),
        source: e,
    };
    // Go's json.Encoder: the document, then a newline; no body for nil
    let body = if args.is_null() {
        Vec::new()
    } else {
        let mut b = serde_json::to_vec(args).map_err(|e| invalid(e.to_string()))?;
        b.push(b'\n');
        b
    };
    let head = format!(
        "POST /{method} HTTP/1.1\r\nHost: plugin.moby.localhost\r\nAccept: {VERSION_MIMETYPE}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut raw = Vec::new();
    match &mut stream {
        Stream::Unix(s) => send_and_read(s, head.as_bytes(), &body, &mut raw),
        Stream::Tcp(s) => send_and_read(s, head.as_bytes(), &body, &mut raw),
    }
    .map_err(io)?;
    let (status, body) = parse_response(&raw).map_err(invalid)?;
    if status != 200 {
        // the plugin's `Err`, else its whole answer
        let message = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("Err").and_then(Value::as_str).map(String::from))
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
        return Err(CallError::Status {
            method: method.to_string(),
            status,
            message,
        });
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_slice(&body).map_err(|e| invalid(e.to_string()))
}

fn send_and_read<S: Read + Write>(
    s: &mut S,
    head: &[u8],
    body: &[u8],
    raw: &mut Vec<u8>,
) -> std::io::Result<()> {
    s.write_all(head)?;
    s.write_all(body)?;
    s.flush()?;
    s.take(MAX_ANSWER).read_to_end(raw)?;
    Ok(())
}

/// The status and the (de-chunked) body of an HTTP/1.x answer.
fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| "headers are not text")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|_| status_line.starts_with("HTTP/1."))
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
            chunked = true;
        } else if k == "content-length" {
            length = v.parse::<usize>().ok();
        }
    }
    let rest = &raw[split + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else {
        match length {
            Some(n) if n <= rest.len() => rest[..n].to_vec(),
            Some(_) => return Err("answer shorter than its Content-Length".into()),
            None => rest.to_vec(),
        }
    };
    Ok((status, body))
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk size")?;
        let size_text = std::str::from_utf8(&rest[..eol]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| "bad chunk size")?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(body);
        }
        if size.checked_add(2).is_none_or(|end| rest.len() < end) {
            return Err("truncated chunk".into());
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// Serves one connection with `answer`, returning the request it read.
    fn serve_once(listener: UnixListener, answer: &'static str) -> std::thread::JoinHandle<String> {
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = s.read(&mut buf).unwrap();
                req.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&req).to_string();
                if let Some(i) = text.find("\r\n\r\n") {
                    let len: usize = text
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if req.len() >= i + 4 + len {
                        break;
                    }
                }
            }
            s.write_all(answer.as_bytes()).unwrap();
            String::from_utf8(req).unwrap()
        })
    }

    #[test]
    fn activation_reads_what_the_plugin_implements() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("p.sock");
        let server = serve_once(
            UnixListener::bind(&sock).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.plugins.v1+json\r\nContent-Length: 33\r\n\r\n{\"Implements\": [\"VolumeDriver\"]}\n",
        );
        let p = Plugin::activate("p", Address::Unix(sock), false).unwrap();
        assert!(p.implements("VolumeDriver"));
        assert!(!p.implements("NetworkDriver"));
        let req = server.join().unwrap();
        assert!(
            req.starts_with("POST /Plugin.Activate HTTP/1.1\r\n"),
            "{req}"
        );
        assert!(
            req.contains(&format!("Accept: {VERSION_MIMETYPE}")),
            "{req}"
        );
    }

    #[test]
    fn an_error_status_carries_the_plugins_err_and_chunks_are_joined() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("p.sock");
        let server = serve_once(
            UnixListener::bind(&sock).unwrap(),
            "HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n{\"Err\":\r\n8\r\n\"boom\"}\n\r\n0\r\n\r\n",
        );
        let p = Plugin {
            name: "p".into(),
            address: Address::Unix(sock),
            implements: vec![],
        };
        let err = p
            .call(
                "VolumeDriver.Create",
                &serde_json::json!({"Name": "v"}),
                Duration::from_secs(5),
            )
            .unwrap_err();
        assert_eq!(err.to_string(), "VolumeDriver.Create: boom");
        let req = server.join().unwrap();
        assert!(req.ends_with("{\"Name\":\"v\"}\n"), "Go's encoder: {req}");
    }

    #[test]
    fn garbage_is_an_invalid_answer_and_no_listener_fails_without_retry() {
        assert!(parse_response(b"garbage").is_err());
        let huge = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nx";
        assert!(
            parse_response(huge).is_err(),
            "a chunk size near usize::MAX"
        );
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort").is_err());
        let dir = tempfile::tempdir().unwrap();
        let gone = Address::Unix(dir.path().join("gone.sock"));
        let started = Instant::now();
        assert!(matches!(
            Plugin::activate("gone", gone, false),
            Err(CallError::Unreachable { .. })
        ));
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(Address::parse("tcp://h:1"), Ok(Address::Tcp("h:1".into())));
        assert!(Address::parse("unix://relative").is_err());
        assert!(Address::parse("http://x").is_err());
    }
}
