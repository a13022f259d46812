//! The HTTP side of the distribution spec 1.1. Repository names contain
//! slashes, so one wildcard route takes every `/v2/...` path and the path
//! is split here, from its end, the way the spec's grammar reads.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use berth_store::Digest;
use futures_util::StreamExt;
use serde_json::json;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use crate::auth::Htpasswd;
use crate::errors::RegistryError;
use crate::storage::{MAX_MANIFEST, OCI_INDEX, Storage, parse_digest, valid_name};

pub struct Registry {
    pub storage: Storage,
    pub htpasswd: Option<Htpasswd>,
}

type Shared = Arc<Registry>;
type Result<T> = std::result::Result<T, RegistryError>;

pub fn router(reg: Arc<Registry>) -> Router {
    Router::new()
        .route("/v2", get(base))
        .route("/v2/", get(base))
        .route("/v2/{*rest}", any(dispatch))
        .layer(axum::middleware::from_fn_with_state(reg.clone(), authorize))
        .with_state(reg)
}

async fn authorize(
    State(reg): State<Shared>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(h) = &reg.htpasswd {
        let ok = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| h.check_header(v));
        if !ok {
            return RegistryError::unauthorized().into_response();
        }
    }
    let mut resp = next.run(req).await;
    resp.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    resp
}

async fn base() -> Response {
    axum::Json(json!({})).into_response()
}

/// What a `/v2/<rest>` path addresses.
#[derive(Debug, PartialEq)]
enum Target<'a> {
    Catalog,
    Tags(&'a str),
    Manifest(&'a str, &'a str),
    Uploads(&'a str),
    Upload(&'a str, &'a str),
    Blob(&'a str, &'a str),
    Referrers(&'a str, &'a str),
}

fn parse_target(rest: &str) -> Option<Target<'_>> {
    if rest == "_catalog" {
        return Some(Target::Catalog);
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Target::Tags(name));
    }
    if let Some(name) = rest
        .strip_suffix("/blobs/uploads/")
        .or_else(|| rest.strip_suffix("/blobs/uploads"))
    {
        return Some(Target::Uploads(name));
    }
    if let Some((name, id)) = rest.rsplit_once("/blobs/uploads/") {
        return Some(Target::Upload(name, id));
    }
    if let Some((name, r)) = rest.rsplit_once("/manifests/") {
        return Some(Target::Manifest(name, r));
    }
    if let Some((name, d)) = rest.rsplit_once("/blobs/") {
        return Some(Target::Blob(name, d));
    }
    if let Some((name, d)) = rest.rsplit_once("/referrers/") {
        return Some(Target::Referrers(name, d));
    }
    None
}

fn target_name<'a>(t: &Target<'a>) -> Option<&'a str> {
    match t {
        Target::Catalog => None,
        Target::Tags(n)
        | Target::Manifest(n, _)
        | Target::Uploads(n)
        | Target::Upload(n, _)
        | Target::Blob(n, _)
        | Target::Referrers(n, _) => Some(n),
    }
}

async fn dispatch(
    State(reg): State<Shared>,
    Path(rest): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = route(&reg, &rest, &q, &method, &headers, body).await;
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn route(
    reg: &Shared,
    rest: &str,
    q: &HashMap<String, String>,
    method: &Method,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response> {
    let target = parse_target(rest).ok_or_else(RegistryError::not_found)?;
    if let Some(name) = target_name(&target)
        && !valid_name(name)
    {
        return Err(RegistryError::name_invalid(name));
    }
    let st = &reg.storage;
    match (target, method.clone()) {
        (Target::Catalog, Method::GET) => {
            let all = st.catalog();
            let (page, next) = paginate(&all, q)?;
            let mut resp = axum::Json(json!({ "repositories": page })).into_response();
            if let Some(next) = next {
                set_link(
                    &mut resp,
                    &format!("/v2/_catalog?n={}&last={next}", page.len()),
                );
            }
            Ok(resp)
        }
        (Target::Tags(name), Method::GET) => {
            if !st.repo_exists(name) {
                return Err(RegistryError::name_unknown(name));
            }
            let all = st.tags(name);
            let (page, next) = paginate(&all, q)?;
            let mut resp = axum::Json(json!({ "name": name, "tags": page })).into_response();
            if let Some(next) = next {
                set_link(
                    &mut resp,
                    &format!("/v2/{name}/tags/list?n={}&last={next}", page.len()),
                );
            }
            Ok(resp)
        }
        (Target::Manifest(name, r), m @ (Method::GET | Method::HEAD)) => {
            serve_manifest(st, name, r, m == Method::HEAD)
        }
        (Target::Manifest(name, r), Method::PUT) => put_manifest(st, name, r, headers, body).await,
        (Target::Manifest(name, r), Method::DELETE) => {
            st.delete_manifest(name, r)?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        (Target::Blob(name, d), m @ (Method::GET | Method::HEAD)) => {
            let d = parse_digest(d)?;
            let (path, size) = st
                .blob(name, &d)
                .ok_or_else(|| RegistryError::blob_unknown(&d))?;
            serve_blob(&d, &path, size, headers, m == Method::HEAD).await
        }
        (Target::Blob(name, d), Method::DELETE) => {
            let d = parse_digest(d)?;
            st.unlink_blob(name, &d)?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        (Target::Uploads(name), Method::POST) => start_upload(reg, name, q, headers, body).await,
        (Target::Upload(name, id), Method::PATCH) => {
            patch_upload(st, name, id, headers, body).await
        }
        (Target::Upload(name, id), Method::PUT) => {
            let d = parse_digest(
                q.get("digest")
                    .ok_or_else(|| RegistryError::digest_invalid("digest parameter missing"))?,
            )?;
            let data = st.upload_data(name, id)?;
            append(&data, body).await?;
            finish(reg, name, id, &d).await
        }
        (Target::Upload(name, id), Method::GET) => {
            let data = st.upload_data(name, id)?;
            let size = st.upload_size(&data)?;
            Ok(upload_status(StatusCode::NO_CONTENT, name, id, size))
        }
        (Target::Upload(name, id), Method::DELETE) => {
            st.cancel_upload(name, id)?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (Target::Referrers(name, d), Method::GET) => referrers(st, name, d, q),
        (_, m) => Err(RegistryError::unsupported(format!(
            "{m} is not allowed here"
        ))),
    }
}

/// GET or HEAD of a manifest, with its media type and digest.
fn serve_manifest(st: &Storage, name: &str, r: &str, head_only: bool) -> Result<Response> {
    let man = st.get_manifest(name, r)?;
    let len = man.body.len();
    let body = if head_only {
        Body::empty()
    } else {
        Body::from(man.body)
    };
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, hv(&man.media_type));
    h.insert(header::CONTENT_LENGTH, hv(&len.to_string()));
    h.insert("docker-content-digest", hv(man.digest.as_str()));
    h.insert(header::ETAG, hv(&format!("\"{}\"", man.digest)));
    Ok(resp)
}

/// PUT of a manifest: stored under its digest and, for a tag, the tag.
async fn put_manifest(
    st: &Storage,
    name: &str,
    r: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response> {
    let raw = read_limited(body, MAX_MANIFEST).await?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let (digest, subject) = st.put_manifest(name, r, ct, &raw)?;
    let mut resp = StatusCode::CREATED.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::LOCATION,
        hv(&format!("/v2/{name}/manifests/{digest}")),
    );
    h.insert("docker-content-digest", hv(digest.as_str()));
    if let Some(s) = subject {
        h.insert("oci-subject", hv(s.as_str()));
    }
    Ok(resp)
}

/// PATCH of an upload: a chunk appended where the upload stands.
async fn patch_upload(
    st: &Storage,
    name: &str,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response> {
    let data = st.upload_data(name, id)?;
    let size = st.upload_size(&data)?;
    if let Some(cr) = headers
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
    {
        let start = cr
            .trim_start_matches("bytes ")
            .split('-')
            .next()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or_else(|| RegistryError::range_invalid(format!("bad Content-Range {cr}")))?;
        if start != size {
            return Err(RegistryError::range_invalid(format!(
                "chunk starts at {start}, upload has {size} bytes"
            )));
        }
    }
    let size = append(&data, body).await?;
    Ok(upload_status(StatusCode::ACCEPTED, name, id, size))
}

/// The referrers API: an OCI index of the manifests whose subject is `d`.
fn referrers(st: &Storage, name: &str, d: &str, q: &HashMap<String, String>) -> Result<Response> {
    let d = parse_digest(d)?;
    let filter = q.get("artifactType").map(String::as_str);
    let manifests = st.referrers(name, &d, filter);
    let mut resp = axum::Json(json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    }))
    .into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(OCI_INDEX));
    if filter.is_some() {
        resp.headers_mut().insert(
            "oci-filters-applied",
            HeaderValue::from_static("artifactType"),
        );
    }
    Ok(resp)
}

async fn start_upload(
    reg: &Shared,
    name: &str,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response> {
    let st = &reg.storage;
    if let (Some(mount), Some(from)) = (q.get("mount"), q.get("from")) {
        let d = parse_digest(mount)?;
        if valid_name(from) && st.blob(from, &d).is_some() {
            st.link_blob(name, &d)?;
            return Ok(blob_created(name, &d));
        }
        // not mountable: the client falls back to an upload session
    }
    let id = st.new_upload(name)?;
    if let Some(d) = q.get("digest") {
        let d = parse_digest(d)?;
        let data = st.upload_data(name, &id)?;
        let size = append(&data, body).await;
        if let Some(want) = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            && let Ok(got) = size
            && got != want
        {
            let _ = st.cancel_upload(name, &id);
            return Err(RegistryError::size_invalid(format!(
                "got {got} of {want} bytes"
            )));
        }
        if let Err(e) = size {
            let _ = st.cancel_upload(name, &id);
            return Err(e);
        }
        return finish(reg, name, &id, &d).await;
    }
    Ok(upload_status(StatusCode::ACCEPTED, name, &id, 0))
}

async fn finish(reg: &Shared, name: &str, id: &str, d: &Digest) -> Result<Response> {
    let reg2 = reg.clone();
    let (n, i, dd) = (name.to_string(), id.to_string(), d.clone());
    tokio::task::spawn_blocking(move || reg2.storage.finish_upload(&n, &i, &dd))
        .await
        .map_err(|e| RegistryError::Internal(e.to_string()))??;
    Ok(blob_created(name, d))
}

fn blob_created(name: &str, d: &Digest) -> Response {
    let mut resp = StatusCode::CREATED.into_response();
    let h = resp.headers_mut();
    h.insert(header::LOCATION, hv(&format!("/v2/{name}/blobs/{d}")));
    h.insert("docker-content-digest", hv(d.as_str()));
    resp
}

fn upload_status(status: StatusCode, name: &str, id: &str, size: u64) -> Response {
    let mut resp = status.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::LOCATION,
        hv(&format!("/v2/{name}/blobs/uploads/{id}")),
    );
    h.insert(header::RANGE, hv(&format!("0-{}", size.saturating_sub(1))));
    h.insert("docker-upload-uuid", hv(id));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    resp
}

/// Appends a request body to an upload; returns the upload's new size.
async fn append(data: &std::path::Path, body: Body) -> Result<u64> {
    let mut f = tokio::fs::OpenOptions::new()
        .append(true)
        .open(data)
        .await?;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| RegistryError::upload_invalid(format!("reading body: {e}")))?;
        f.write_all(&chunk).await?;
    }
    f.flush().await?;
    Ok(f.metadata().await?.len())
}

async fn read_limited(body: Body, limit: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| RegistryError::manifest_invalid(format!("reading body: {e}")))?;
        if out.len() + chunk.len() > limit {
            return Err(RegistryError::size_invalid(format!(
                "manifest larger than {limit} bytes"
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Parses `Range: bytes=START-[END]` against a blob of `size` bytes.
fn parse_range(v: &str, size: u64) -> Option<(u64, u64)> {
    let spec = v.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        (size.checked_sub(n.min(size))?, size.checked_sub(1)?)
    } else {
        let start: u64 = a.parse().ok()?;
        let end = if b.is_empty() {
            size.checked_sub(1)?
        } else {
            b.parse::<u64>().ok()?.min(size.checked_sub(1)?)
        };
        (start, end)
    };
    (start <= end && end < size).then_some((start, end))
}

async fn serve_blob(
    d: &Digest,
    path: &std::path::Path,
    size: u64,
    headers: &HeaderMap,
    head_only: bool,
) -> Result<Response> {
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, start, len) = match range {
        Some(r) => match parse_range(r, size) {
            Some((s, e)) => (StatusCode::PARTIAL_CONTENT, s, e - s + 1),
            None => {
                let mut resp = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
                resp.headers_mut()
                    .insert(header::CONTENT_RANGE, hv(&format!("bytes */{size}")));
                return Ok(resp);
            }
        },
        None => (StatusCode::OK, 0, size),
    };
    let body = if head_only {
        Body::empty()
    } else {
        use tokio::io::AsyncReadExt;
        let mut f = tokio::fs::File::open(path).await?;
        f.seek(std::io::SeekFrom::Start(start)).await?;
        Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
            f.take(len),
            256 * 1024,
        ))
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, hv(&len.to_string()));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert("docker-content-digest", hv(d.as_str()));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::ETAG, hv(&format!("\"{d}\"")));
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(
            header::CONTENT_RANGE,
            hv(&format!("bytes {start}-{}/{size}", start + len - 1)),
        );
    }
    Ok(resp)
}

/// `n`/`last` pagination over a sorted list; returns the page and, when
/// more follow, the last entry of the page.
fn paginate<'a>(
    all: &'a [String],
    q: &HashMap<String, String>,
) -> Result<(&'a [String], Option<&'a str>)> {
    let start = match q.get("last") {
        Some(last) => all.partition_point(|t| t.as_str() <= last.as_str()),
        None => 0,
    };
    let rest = &all[start..];
    let n = match q.get("n") {
        Some(n) => n
            .parse::<usize>()
            .map_err(|_| RegistryError::unsupported(format!("invalid n={n}")))?,
        None => rest.len(),
    };
    let page = &rest[..n.min(rest.len())];
    let next = (page.len() < rest.len())
        .then(|| page.last().map(String::as_str))
        .flatten();
    Ok((page, next))
}

fn set_link(resp: &mut Response, url: &str) {
    resp.headers_mut()
        .insert(header::LINK, hv(&format!("<{url}>; rel=\"next\"")));
}

fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_from_the_end() {
        assert_eq!(parse_target("_catalog"), Some(Target::Catalog));
        assert_eq!(parse_target("a/b/tags/list"), Some(Target::Tags("a/b")));
        assert_eq!(
            parse_target("a/manifests/b/manifests/latest"),
            Some(Target::Manifest("a/manifests/b", "latest"))
        );
        assert_eq!(
            parse_target("lib/x/blobs/uploads/"),
            Some(Target::Uploads("lib/x"))
        );
        assert_eq!(
            parse_target("x/blobs/uploads/abc-1"),
            Some(Target::Upload("x", "abc-1"))
        );
        assert_eq!(
            parse_target("x/blobs/sha256:00"),
            Some(Target::Blob("x", "sha256:00"))
        );
        assert_eq!(
            parse_target("x/referrers/sha256:00"),
            Some(Target::Referrers("x", "sha256:00"))
        );
        assert_eq!(parse_target("nothing"), None);
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=95-200", 100), Some((95, 99)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=5-2", 100), None);
        assert_eq!(parse_range("bytes=0-1,4-5", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
    }

    #[test]
    fn pages() {
        let all: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let q = |n: &str, last: Option<&str>| {
            let mut m = HashMap::new();
            m.insert("n".to_string(), n.to_string());
            if let Some(l) = last {
                m.insert("last".to_string(), l.to_string());
            }
            m
        };
        let (p, next) = paginate(&all, &q("2", None)).unwrap();
        assert_eq!(p, &all[..2]);
        assert_eq!(next, Some("b"));
        let (p, next) = paginate(&all, &q("2", Some("b"))).unwrap();
        assert_eq!(p, &all[2..]);
        assert_eq!(next, None);
        let (p, _) = paginate(&all, &q("0", None)).unwrap();
        assert!(p.is_empty());
    }
}
