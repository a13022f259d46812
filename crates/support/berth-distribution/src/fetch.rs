//! A plain HTTP(S) download, for the builder's `ADD <url>`: verified TLS
//! (system roots and certs.d, as for registries), redirects followed, the
//! body streamed to a file.

use std::path::Path;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::{Request, StatusCode, Uri};
use tokio::io::AsyncWriteExt;

use crate::{DistError, Result};

const MAX_REDIRECTS: usize = 10;

/// What the server said about the file besides its content.
#[derive(Debug, Default, Clone)]
pub struct Fetched {
    /// the last path segment of the final URL
    pub file_name: String,
    /// `Last-Modified`, as Unix seconds
    pub modified: Option<i64>,
    pub size: u64,
}

/// Downloads `url` into `dest`.
pub async fn fetch_to_file(url: &str, dest: &Path, certs_dir: &Path) -> Result<Fetched> {
    let mut current: Uri = url
        .parse()
        .map_err(|e| DistError::Other(format!("invalid URL {url}: {e}")))?;
    for _ in 0..=MAX_REDIRECTS {
        let host = current
            .authority()
            .map(|a| a.as_str().to_string())
            .ok_or_else(|| DistError::Other(format!("invalid URL {url}: no host")))?;
        let tls = crate::tls::client_config(&host, certs_dir, true)
            .map_err(|e| DistError::Other(format!("{e:#}")))?;
        let client = crate::client::https_client::<Empty<Bytes>>(tls);
        let req = Request::get(current.clone())
            .header("User-Agent", "berth-builder")
            .body(Empty::new())
            .map_err(|e| DistError::Other(e.to_string()))?;
        let resp = client
            .request(req)
            .await
            .map_err(|e| DistError::Unreachable(format!("failed to GET {current}: {e}")))?;
        let status = resp.status();
        if status.is_redirection() {
            let loc = resp
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| {
                    DistError::Status(format!("{status} from {current} without Location"))
                })?;
            current = resolve(&current, loc)?;
            continue;
        }
        if status != StatusCode::OK {
            return Err(DistError::Status(format!(
                "failed to GET {current} with status {status}"
            )));
        }
        let modified = resp
            .headers()
            .get("last-modified")
            .and_then(|v| v.to_str().ok())
            .and_then(http_date);
        // named after the URL asked for, not where redirects led
        let asked: Uri = url
            .parse()
            .map_err(|e| DistError::Other(format!("invalid URL {url}: {e}")))?;
        let file_name = asked
            .path()
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty())
            .unwrap_or_default()
            .to_string();
        let mut f = tokio::fs::File::create(dest)
            .await
            .map_err(|e| DistError::Other(format!("creating {}: {e}", dest.display())))?;
        let mut body = resp.into_body();
        let mut size = 0u64;
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| DistError::Unreachable(format!("reading {current}: {e}")))?;
            if let Ok(data) = frame.into_data() {
                size += data.len() as u64;
                f.write_all(&data)
                    .await
                    .map_err(|e| DistError::Other(format!("writing {}: {e}", dest.display())))?;
            }
        }
        f.flush()
            .await
            .map_err(|e| DistError::Other(format!("writing {}: {e}", dest.display())))?;
        return Ok(Fetched {
            file_name,
            modified,
            size,
        });
    }
    Err(DistError::Status(format!(
        "failed to GET {url}: more than {MAX_REDIRECTS} redirects"
    )))
}

/// A redirect's Location, absolute or relative to the current URL.
fn resolve(base: &Uri, loc: &str) -> Result<Uri> {
    let joined = url::Url::parse(&base.to_string())
        .and_then(|b| b.join(loc))
        .map_err(|e| DistError::Other(format!("bad redirect {loc}: {e}")))?;
    joined
        .as_str()
        .parse()
        .map_err(|e| DistError::Other(format!("bad redirect {loc}: {e}")))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 7231's preferred form) as Unix
/// seconds.
fn http_date(s: &str) -> Option<i64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.len() != 6 || parts[5] != "GMT" {
        return None;
    }
    let day: i64 = parts[1].parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == parts[2])? as i64
        + 1;
    let year: i64 = parts[3].parse().ok()?;
    let hms: Vec<i64> = parts[4].split(':').filter_map(|x| x.parse().ok()).collect();
    if hms.len() != 3 {
        return None;
    }
    // days from the civil date (Howard Hinnant's algorithm)
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        assert_eq!(
            http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(http_date("garbage"), None);
    }

    #[test]
    fn redirects_resolve() {
        let base: Uri = "http://h:8080/a/b".parse().expect("uri");
        assert_eq!(
            resolve(&base, "/c").expect("abs path").to_string(),
            "http://h:8080/c"
        );
        assert_eq!(
            resolve(&base, "d").expect("rel").to_string(),
            "http://h:8080/a/d"
        );
        assert_eq!(
            resolve(&base, "https://x/y").expect("absolute").to_string(),
            "https://x/y"
        );
    }
}
