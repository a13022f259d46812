//! A minimal HTTP/1.1 exchange over the daemon's unix socket for what
//! bollard cannot express: `wait`, whose response headers prove that the
//! wait is registered before the container is started, and the HEAD of the
//! archive endpoint, whose answer is a header.

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// Sends a body-less request and reads the status line and the headers
/// (names lowercased); the body, if any, is left in the reader.
async fn exchange(
    socket: &str,
    method: &str,
    path: &str,
) -> Result<(u16, Vec<(String, String)>, BufReader<UnixStream>)> {
    exchange_with(socket, method, path, &[], &[]).await
}

async fn exchange_with(
    socket: &str,
    method: &str,
    path: &str,
    extra: &[(&str, String)],
    body: &[u8],
) -> Result<(u16, Vec<(String, String)>, BufReader<UnixStream>)> {
    let mut s = UnixStream::connect(socket)
        .await
        .with_context(|| format!("connecting to {socket}"))?;
    let mut kind = if body.is_empty()
        || extra
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        String::new()
    } else {
        "Content-Type: application/json\r\n".to_string()
    };
    for (k, v) in extra {
        kind.push_str(&format!("{k}: {v}\r\n"));
    }
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: berth\r\n{kind}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    // a daemon that refuses the request answers before reading the body
    // and closes: its answer is still there to read after a failed write
    let sent = s.write_all(body).await;
    let mut reader = BufReader::new(s);
    let mut line = String::new();
    let read = reader.read_line(&mut line).await;
    if let Err(e) = sent
        && (read.is_err() || line.is_empty())
    {
        // not a broken pipe of our stdout: say what failed
        bail!("sending the request to the daemon: {e}");
    }
    read?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("bad HTTP status line")?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            bail!("connection closed in headers");
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    Ok((status, headers, reader))
}

/// Sends a HEAD request: the status and the headers (names lowercased).
pub async fn head(socket: &str, path: &str) -> Result<(u16, Vec<(String, String)>)> {
    let (status, headers, _) = exchange(socket, "HEAD", path).await?;
    Ok((status, headers))
}

/// Sends a body-less POST and returns once the status line and headers
/// have arrived.
pub async fn post_headers(socket: &str, path: &str) -> Result<(u16, PendingBody)> {
    let (status, headers, reader) = exchange(socket, "POST", path).await?;
    Ok((status, PendingBody::new(reader, &headers)))
}

/// POSTs a JSON body; returns once the status line and headers arrived.
pub async fn post_json(socket: &str, path: &str, body: &[u8]) -> Result<(u16, PendingBody)> {
    let (status, headers, reader) = exchange_with(socket, "POST", path, &[], body).await?;
    Ok((status, PendingBody::new(reader, &headers)))
}

/// A body-less POST with extra request headers.
pub async fn post_with_headers(
    socket: &str,
    path: &str,
    extra: &[(&str, String)],
) -> Result<(u16, PendingBody)> {
    let (status, headers, reader) = exchange_with(socket, "POST", path, extra, &[]).await?;
    Ok((status, PendingBody::new(reader, &headers)))
}

/// A POST with a body and its own headers (a Content-Type among them).
pub async fn post_body(
    socket: &str,
    path: &str,
    extra: &[(&str, String)],
    body: &[u8],
) -> Result<(u16, PendingBody)> {
    let (status, headers, reader) = exchange_with(socket, "POST", path, extra, body).await?;
    Ok((status, PendingBody::new(reader, &headers)))
}

/// Sends a GET and returns once the status line and headers have arrived;
/// the body streams through [`PendingBody::next_chunk`].
pub async fn get(socket: &str, path: &str) -> Result<(u16, PendingBody)> {
    let (status, headers, reader) = exchange(socket, "GET", path).await?;
    Ok((status, PendingBody::new(reader, &headers)))
}

/// A GET with extra request headers (`X-Registry-Auth`).
pub async fn get_with_headers(
    socket: &str,
    path: &str,
    extra: &[(&str, String)],
) -> Result<(u16, PendingBody)> {
    let (status, headers, reader) = exchange_with(socket, "GET", path, extra, &[]).await?;
    Ok((status, PendingBody::new(reader, &headers)))
}

/// Sends a DELETE; returns once the status line and headers arrived.
pub async fn delete(socket: &str, path: &str) -> Result<(u16, PendingBody)> {
    let (status, headers, reader) = exchange(socket, "DELETE", path).await?;
    Ok((status, PendingBody::new(reader, &headers)))
}

/// Percent-encodes a query value.
pub fn encode(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub struct PendingBody {
    reader: BufReader<UnixStream>,
    chunked: bool,
}

impl PendingBody {
    fn new(reader: BufReader<UnixStream>, headers: &[(String, String)]) -> Self {
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
        PendingBody { reader, chunked }
    }

    /// The next piece of the body as it arrives; None at its end.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>> {
        if !self.chunked {
            let mut buf = vec![0u8; 32 * 1024];
            let n = self.reader.read(&mut buf).await?;
            buf.truncate(n);
            return Ok((n > 0).then_some(buf));
        }
        let mut line = String::new();
        if self.reader.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
            .context("bad chunk size")?;
        if size == 0 {
            return Ok(None);
        }
        let mut chunk = vec![0u8; size + 2];
        self.reader.read_exact(&mut chunk).await?;
        chunk.truncate(size);
        Ok(Some(chunk))
    }

    pub async fn read_all(mut self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(c) = self.next_chunk().await? {
            out.extend_from_slice(&c);
        }
        Ok(out)
    }

    /// The `message` of a daemon's JSON error body, or the body itself.
    pub async fn error_message(self) -> String {
        let body = self.read_all().await.unwrap_or_default();
        serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(String::from))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string())
    }
}
