//! One registry, spoken to over HTTP/1.1: token and basic authentication
//! on demand, manifests, streamed blobs and streamed uploads.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use base64::Engine as _;
use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::{BodyExt, Empty, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::header;
use hyper::{Method, Request, Response, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

use crate::{DistError, Result};

type ReqBody = BoxBody<Bytes, std::io::Error>;

/// What a request sends; re-creatable, because a request may be sent
/// again after authenticating.
#[derive(Clone)]
pub enum Payload {
    Empty,
    Bytes(Bytes),
    /// a file, streamed, with a callback counting bytes as they go
    File(
        PathBuf,
        u64,
        Option<std::sync::Arc<dyn Fn(u64) + Send + Sync>>,
    ),
}

impl Payload {
    async fn body(&self) -> Result<ReqBody> {
        Ok(match self {
            Payload::Empty => Empty::new().map_err(|e| match e {}).boxed(),
            Payload::Bytes(b) => Full::new(b.clone()).map_err(|e| match e {}).boxed(),
            Payload::File(p, _, progress) => {
                let f = tokio::fs::File::open(p)
                    .await
                    .map_err(|e| DistError::Other(format!("opening {}: {e}", p.display())))?;
                let progress = progress.clone();
                let mut sent = 0u64;
                let stream = tokio_util::io::ReaderStream::with_capacity(f, 256 * 1024).map_ok(
                    move |chunk| {
                        sent += chunk.len() as u64;
                        if let Some(cb) = &progress {
                            cb(sent);
                        }
                        Frame::data(chunk)
                    },
                );
                BodyExt::boxed(StreamBody::new(stream))
            }
        })
    }

    fn len(&self) -> u64 {
        match self {
            Payload::Empty => 0,
            Payload::Bytes(b) => b.len() as u64,
            Payload::File(_, n, _) => *n,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

pub struct RegistryClient {
    http: Client<HttpsConnector<HttpConnector>, ReqBody>,
    /// "http://host:port"
    base: String,
    /// host[:port] as users name it, for messages
    host: String,
    creds: Option<Credentials>,
    /// scope -> Authorization header value
    auth: Mutex<HashMap<String, String>>,
}

pub struct Manifest {
    pub digest: berth_store::Digest,
    pub media_type: String,
    pub body: Bytes,
}

/// The outcome of a cross-repository mount request.
pub enum Mount {
    Mounted,
    /// the registry opened an upload session instead
    Upload(String),
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: String,
    #[serde(default)]
    access_token: String,
}

pub const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

impl RegistryClient {
    /// A client of the registry at `host` (host[:port]), over HTTPS
    /// verified against the system's roots and `<certs_dir>/<host>/`. An
    /// `insecure` registry (loopback, `insecure-registries`) is tried over
    /// HTTPS without verification, then over plain HTTP, as Docker does.
    pub async fn connect(
        host: &str,
        insecure: bool,
        creds: Option<Credentials>,
        certs_dir: &std::path::Path,
    ) -> Result<Self> {
        let tls = crate::tls::client_config(host, certs_dir, !insecure)?;
        let http = https_client(tls);
        let mut c = RegistryClient {
            http,
            base: format!("https://{host}"),
            host: host.to_string(),
            creds,
            auth: Mutex::new(HashMap::new()),
        };
        if insecure {
            let probe = c
                .raw(&Method::GET, &c.url("/v2/"), &[], &Payload::Empty, None)
                .await;
            if probe.is_err() {
                c.base = format!("http://{host}");
            }
        }
        Ok(c)
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    async fn raw(
        &self,
        method: &Method,
        url: &str,
        headers: &[(header::HeaderName, String)],
        payload: &Payload,
        authorization: Option<&str>,
    ) -> Result<Response<Incoming>> {
        let mut req = Request::builder().method(method.clone()).uri(url);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        if let Some(a) = authorization {
            req = req.header(header::AUTHORIZATION, a);
        }
        if !matches!(payload, Payload::Empty) || *method == Method::PUT || *method == Method::POST {
            req = req.header(header::CONTENT_LENGTH, payload.len());
        }
        let req = req
            .body(payload.body().await?)
            .map_err(|e| DistError::Other(format!("building request: {e}")))?;
        self.http.request(req).await.map_err(|e| {
            // the connector's error says little; its sources say why
            let mut why = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                why = format!("{why}: {s}");
                src = s.source();
            }
            DistError::Unreachable(format!("{} {url}: {why}", method.as_str()))
        })
    }

    /// Sends a request, authenticating when the registry asks to, and
    /// follows redirects (without credentials when they leave the host).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(header::HeaderName, String)],
        payload: Payload,
        scope: &str,
    ) -> Result<Response<Incoming>> {
        let mut url = self.url(path);
        let cached = self.auth.lock().ok().and_then(|m| m.get(scope).cloned());
        let mut resp = self
            .raw(&method, &url, headers, &payload, cached.as_deref())
            .await?;
        let mut authz = cached;
        if resp.status() == StatusCode::UNAUTHORIZED {
            let challenge = resp
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let a = self.authenticate(&challenge, scope).await?;
            resp = self.raw(&method, &url, headers, &payload, Some(&a)).await?;
            if let Ok(mut m) = self.auth.lock() {
                m.insert(scope.to_string(), a.clone());
            }
            authz = Some(a);
        }
        for _ in 0..5 {
            if !resp.status().is_redirection() || method != Method::GET {
                break;
            }
            let Some(loc) = resp
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
            else {
                break;
            };
            let next = self.url(loc);
            let same_host = next.starts_with(&self.base);
            url = next;
            resp = self
                .raw(
                    &method,
                    &url,
                    headers,
                    &payload,
                    if same_host { authz.as_deref() } else { None },
                )
                .await?;
        }
        Ok(resp)
    }

    /// Answers a `WWW-Authenticate` challenge with the value of an
    /// Authorization header.
    async fn authenticate(&self, challenge: &str, scope: &str) -> Result<String> {
        let basic = self.creds.as_ref().map(|c| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", c.username, c.password))
            )
        });
        let (kind, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        if kind.eq_ignore_ascii_case("basic") {
            return basic.ok_or_else(|| {
                DistError::Unauthorized(format!(
                    "{}: authentication required (run `berth login {}`)",
                    self.host, self.host
                ))
            });
        }
        if !kind.eq_ignore_ascii_case("bearer") {
            return Err(DistError::Unauthorized(format!(
                "{}: unsupported authentication scheme {kind:?}",
                self.host
            )));
        }
        let p = parse_challenge(params);
        let realm = p.get("realm").ok_or_else(|| {
            DistError::Unauthorized(format!("{}: bearer challenge without a realm", self.host))
        })?;
        let mut u = url::Url::parse(realm).map_err(|e| {
            DistError::Other(format!("{}: bad token realm {realm}: {e}", self.host))
        })?;
        {
            let mut q = u.query_pairs_mut();
            if let Some(s) = p.get("service") {
                q.append_pair("service", s);
            }
            for s in scope.split(' ').filter(|s| !s.is_empty()) {
                q.append_pair("scope", s);
            }
        }
        let headers: Vec<(header::HeaderName, String)> = Vec::new();
        let resp = self
            .raw(
                &Method::GET,
                u.as_str(),
                &headers,
                &Payload::Empty,
                basic.as_deref(),
            )
            .await?;
        let status = resp.status();
        let body = read_body(resp, 1 << 20).await?;
        if !status.is_success() {
            return Err(DistError::Unauthorized(format!(
                "{}: getting a token from {realm}: {status} {}",
                self.host,
                String::from_utf8_lossy(&body).trim()
            )));
        }
        let t: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| DistError::Other(format!("{}: bad token answer: {e}", self.host)))?;
        let token = if t.token.is_empty() {
            t.access_token
        } else {
            t.token
        };
        Ok(format!("Bearer {token}"))
    }

    /// Checks the credentials against the registry's base endpoint.
    pub async fn check_login(&self) -> Result<()> {
        let resp = self
            .send(Method::GET, "/v2/", &[], Payload::Empty, "")
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            StatusCode::UNAUTHORIZED => Err(DistError::Unauthorized(format!(
                "login to {} failed: unauthorized: incorrect username or password",
                self.host
            ))),
            s => {
                let body = read_body(resp, 64 << 10).await.unwrap_or_default();
                Err(self.status_error(s, &body, "/v2/"))
            }
        }
    }

    /// GETs a manifest (index, list or image manifest) by tag or digest.
    pub async fn manifest(&self, name: &str, reference: &str) -> Result<Manifest> {
        let resp = self
            .send(
                Method::GET,
                &format!("/v2/{name}/manifests/{reference}"),
                &[(header::ACCEPT, MANIFEST_TYPES.to_string())],
                Payload::Empty,
                &pull_scope(name),
            )
            .await?;
        let status = resp.status();
        let media_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        let body = read_body(resp, 4 << 20).await?;
        if !status.is_success() {
            return Err(self.status_error(status, &body, &format!("{name}:{reference}")));
        }
        let digest = berth_store::Digest::of(&body);
        if reference.contains(':') && reference != digest.as_str() {
            return Err(DistError::Other(format!(
                "{}: manifest {name}@{reference} has digest {digest}",
                self.host
            )));
        }
        let media_type = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v.get("mediaType")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .unwrap_or(media_type);
        Ok(Manifest {
            digest,
            media_type,
            body: Bytes::from(body),
        })
    }

    /// Every tag of a repository, following the registry's pages.
    pub async fn tags(&self, name: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut path = format!("/v2/{name}/tags/list?n=1000");
        for _ in 0..1000 {
            let resp = self
                .send(Method::GET, &path, &[], Payload::Empty, &pull_scope(name))
                .await?;
            let status = resp.status();
            let next = resp
                .headers()
                .get(header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| l.split_once('<').and_then(|(_, r)| r.split_once('>')))
                .map(|(u, _)| u.to_string());
            let body = read_body(resp, 16 << 20).await?;
            if !status.is_success() {
                return Err(self.status_error(status, &body, name));
            }
            #[derive(Deserialize)]
            struct Tags {
                #[serde(default)]
                tags: Option<Vec<String>>,
            }
            let t: Tags = serde_json::from_slice(&body)
                .map_err(|e| DistError::Other(format!("{}: bad tag list: {e}", self.host)))?;
            out.extend(t.tags.unwrap_or_default());
            match next {
                Some(n) => path = n,
                None => break,
            }
        }
        Ok(out)
    }

    /// Opens a blob for streaming.
    pub async fn blob(&self, name: &str, digest: &str) -> Result<Response<Incoming>> {
        let resp = self
            .send(
                Method::GET,
                &format!("/v2/{name}/blobs/{digest}"),
                &[],
                Payload::Empty,
                &pull_scope(name),
            )
            .await?;
        if !resp.status().is_success() {
            let status = resp.status();
            let body = read_body(resp, 64 << 10).await.unwrap_or_default();
            return Err(self.status_error(status, &body, &format!("{name}@{digest}")));
        }
        Ok(resp)
    }

    pub async fn blob_exists(&self, name: &str, digest: &str) -> Result<bool> {
        let resp = self
            .send(
                Method::HEAD,
                &format!("/v2/{name}/blobs/{digest}"),
                &[],
                Payload::Empty,
                &push_scope(name),
            )
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            s => Err(self.status_error(s, &[], &format!("{name}@{digest}"))),
        }
    }

    /// Asks the registry to link a blob of repository `from` into `name`.
    pub async fn mount(&self, name: &str, digest: &str, from: &str) -> Result<Mount> {
        let scope = format!("{} repository:{from}:pull", push_scope(name));
        let resp = self
            .send(
                Method::POST,
                &format!("/v2/{name}/blobs/uploads/?mount={digest}&from={from}"),
                &[],
                Payload::Empty,
                &scope,
            )
            .await?;
        match resp.status() {
            StatusCode::CREATED => Ok(Mount::Mounted),
            StatusCode::ACCEPTED => Ok(Mount::Upload(location(&resp)?)),
            s => {
                let body = read_body(resp, 64 << 10).await.unwrap_or_default();
                Err(self.status_error(s, &body, name))
            }
        }
    }

    /// Uploads a blob: opens a session (unless `session` is one already)
    /// and sends the content in one streamed PUT.
    pub async fn upload(
        &self,
        name: &str,
        digest: &str,
        payload: Payload,
        session: Option<String>,
    ) -> Result<()> {
        let loc = match session {
            Some(l) => l,
            None => {
                let resp = self
                    .send(
                        Method::POST,
                        &format!("/v2/{name}/blobs/uploads/"),
                        &[],
                        Payload::Empty,
                        &push_scope(name),
                    )
                    .await?;
                if resp.status() != StatusCode::ACCEPTED {
                    let s = resp.status();
                    let body = read_body(resp, 64 << 10).await.unwrap_or_default();
                    return Err(self.status_error(s, &body, name));
                }
                location(&resp)?
            }
        };
        let sep = if loc.contains('?') { '&' } else { '?' };
        let resp = self
            .send(
                Method::PUT,
                &format!("{loc}{sep}digest={digest}"),
                &[(header::CONTENT_TYPE, "application/octet-stream".into())],
                payload,
                &push_scope(name),
            )
            .await?;
        if resp.status() != StatusCode::CREATED {
            let s = resp.status();
            let body = read_body(resp, 64 << 10).await.unwrap_or_default();
            return Err(self.status_error(s, &body, &format!("{name}@{digest}")));
        }
        Ok(())
    }

    pub async fn put_manifest(
        &self,
        name: &str,
        reference: &str,
        media_type: &str,
        body: Bytes,
    ) -> Result<berth_store::Digest> {
        let digest = berth_store::Digest::of(&body);
        let resp = self
            .send(
                Method::PUT,
                &format!("/v2/{name}/manifests/{reference}"),
                &[(header::CONTENT_TYPE, media_type.to_string())],
                Payload::Bytes(body),
                &push_scope(name),
            )
            .await?;
        if resp.status() != StatusCode::CREATED {
            let s = resp.status();
            let body = read_body(resp, 64 << 10).await.unwrap_or_default();
            return Err(self.status_error(s, &body, &format!("{name}:{reference}")));
        }
        Ok(digest)
    }

    /// An error naming the registry, with the registry's own message when
    /// it sent the spec's error form.
    fn status_error(&self, status: StatusCode, body: &[u8], what: &str) -> DistError {
        let detail = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| {
                v.get("errors")?.as_array().map(|errs| {
                    errs.iter()
                        .map(|e| {
                            let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
                            let msg = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
                            format!("{}: {msg}", code.to_lowercase().replace('_', " "))
                        })
                        .collect::<Vec<_>>()
                        .join("; ")
                })
            })
            .unwrap_or_else(|| {
                let t = String::from_utf8_lossy(body);
                let t = t.trim();
                if t.is_empty() {
                    status.canonical_reason().unwrap_or("").to_lowercase()
                } else {
                    t.chars().take(200).collect()
                }
            });
        let msg = format!("{} {what}: {} {detail}", self.host, status.as_u16());
        match status {
            StatusCode::NOT_FOUND => DistError::NotFound(msg),
            StatusCode::UNAUTHORIZED => DistError::Unauthorized(msg),
            StatusCode::FORBIDDEN => DistError::Denied(msg),
            _ => DistError::Status(msg),
        }
    }
}

fn location(resp: &Response<Incoming>) -> Result<String> {
    resp.headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| DistError::Other("upload answer without a Location".into()))
}

/// A hyper client over rustls (HTTP too, for insecure registries and
/// plain URLs), with a connect timeout.
pub(crate) fn https_client<B>(tls: rustls::ClientConfig) -> Client<HttpsConnector<HttpConnector>, B>
where
    B: hyper::body::Body + Send,
    B::Data: Send,
{
    let mut conn = HttpConnector::new();
    conn.set_nodelay(true);
    conn.enforce_http(false);
    conn.set_connect_timeout(Some(std::time::Duration::from_secs(15)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(conn);
    Client::builder(TokioExecutor::new()).build(https)
}

pub fn pull_scope(name: &str) -> String {
    format!("repository:{name}:pull")
}

pub fn push_scope(name: &str) -> String {
    format!("repository:{name}:pull,push")
}

/// Reads a (small) response body, refusing more than `limit` bytes.
pub async fn read_body(resp: Response<Incoming>, limit: usize) -> Result<Vec<u8>> {
    let mut body = resp.into_body();
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| DistError::Unreachable(format!("reading answer: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(DistError::Other(format!(
                    "answer larger than {limit} bytes"
                )));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// `realm="…",service="…",scope="…"` into a map.
fn parse_challenge(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((k, v)) = rest.split_once('=') else {
            break;
        };
        let k = k.trim().trim_start_matches(',').trim().to_lowercase();
        let v = v.trim_start();
        let (val, after) = if let Some(q) = v.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (&q[..end], &q[end + 1..]),
                None => (q, ""),
            }
        } else {
            match v.find(',') {
                Some(end) => (&v[..end], &v[end..]),
                None => (v, ""),
            }
        };
        out.insert(k, val.to_string());
        rest = after.trim_start_matches(',').trim();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        let p = parse_challenge(
            r#"realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(p["realm"], "https://auth.docker.io/token");
        assert_eq!(p["service"], "registry.docker.io");
        assert_eq!(p["scope"], "repository:library/busybox:pull");
    }
}
