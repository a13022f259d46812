//! POST /build: the classic builder's endpoint. The body is the context as
//! a tar (plain, gzip or zstd); the answer streams the JSON messages the
//! docker CLI's classic builder prints ("Step 1/4 : ...", " ---> ...").

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::AppState;
use super::images::{json_lines, stream_error};
use crate::error::{ApiError, ApiResult};
use crate::params::Params;

/// A JSON-encoded query parameter (`buildargs`, `labels`, `cachefrom`).
fn json_param<T: serde::de::DeserializeOwned + Default>(p: &Params, key: &str) -> ApiResult<T> {
    match p.get(key).filter(|s| !s.is_empty()) {
        None => Ok(T::default()),
        Some(raw) => serde_json::from_str(raw)
            .map_err(|e| ApiError::bad_request(format!("invalid {key} parameter: {e}"))),
    }
}

/// `X-Berth-Build-Secrets`: base64 of a JSON object id -> base64 content,
/// berth's way to pass `--secret` (Docker passes them over a BuildKit
/// session, which the classic endpoint has not).
fn secrets(headers: &HeaderMap) -> ApiResult<HashMap<String, Vec<u8>>> {
    use base64::Engine as _;
    let Some(v) = headers
        .get("x-berth-build-secrets")
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(HashMap::new());
    };
    let bad = |m: String| ApiError::bad_request(format!("invalid X-Berth-Build-Secrets: {m}"));
    let raw = base64::engine::general_purpose::STANDARD
        .decode(v.trim())
        .map_err(|e| bad(e.to_string()))?;
    let map: HashMap<String, String> =
        serde_json::from_slice(&raw).map_err(|e| bad(e.to_string()))?;
    map.into_iter()
        .map(|(k, v)| {
            base64::engine::general_purpose::STANDARD
                .decode(v)
                .map(|d| (k, d))
                .map_err(|e| bad(e.to_string()))
        })
        .collect()
}

pub async fn build(
    State(e): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    if p.get("remote").is_some_and(|r| !r.is_empty()) {
        return Err(ApiError::bad_request(
            "building from a remote context is not supported; send the context as the request body",
        ));
    }
    if p.get("version").is_some_and(|v| v == "2") {
        return Err(ApiError::bad_request(
            "BuildKit builds (version=2) are not supported: berth runs the classic builder",
        ));
    }
    let build_args: HashMap<String, Option<String>> = json_param(&p, "buildargs")?;
    let labels: HashMap<String, String> = json_param(&p, "labels")?;
    let cache_from: Vec<String> = json_param(&p, "cachefrom")?;
    let opts = berth_engine::BuildOptions {
        dockerfile: p.get("dockerfile").unwrap_or("Dockerfile").to_string(),
        tags: p.all("t").into_iter().filter(|t| !t.is_empty()).collect(),
        build_args,
        labels,
        target: p.get("target").map(String::from),
        no_cache: p.flag("nocache"),
        pull: p.flag("pull"),
        rm: p.get("rm").is_none_or(|v| v != "0" && v != "false"),
        force_rm: p.flag("forcerm"),
        quiet: p.flag("q"),
        squash: p.flag("squash"),
        network_mode: p
            .get("networkmode")
            .filter(|m| !m.is_empty() && *m != "default")
            .map(String::from),
        extra_hosts: p
            .get("extrahosts")
            .map(|h| {
                h.split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default(),
        cache_from,
        secrets: secrets(&headers)?,
        credentials: None,
    };
    e.check_build_tags(&opts.tags)?;
    let tmp = e.tmp_path("build-context");
    super::spool(body, &tmp, "the build context").await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<serde_json::Value>(256);
    tokio::spawn(async move {
        let res = e.build(tmp.clone(), opts, tx.clone()).await;
        let _ = tokio::fs::remove_file(&tmp).await;
        if let Err(err) = res {
            let mut v = stream_error(&err.to_string());
            // the CLI exits with a failed RUN's code, as Docker's does
            if let berth_engine::Error::StepFailed { code, .. } = err {
                v["errorDetail"]["code"] = serde_json::json!(code);
            }
            let _ = tx.send(v).await;
        }
    });
    Ok(json_lines(rx))
}

/// POST /build/prune: cache mounts, and with `all` the step cache.
pub async fn prune(State(e): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    use axum::response::IntoResponse;
    let p = Params::parse(q.as_deref())?;
    let keep = ["keep-storage", "reserved-space", "max-used-space"]
        .iter()
        .find_map(|k| p.int(k).transpose())
        .transpose()?
        .unwrap_or(0)
        .max(0) as u64;
    let (deleted, reclaimed) = e.build_cache_prune(p.flag("all"), &p.filters()?, keep)?;
    Ok(axum::Json(serde_json::json!({
        "CachesDeleted": deleted,
        "SpaceReclaimed": reclaimed,
    }))
    .into_response())
}
