//! POST /build: the classic builder's endpoint. The body is the context as
//! a tar (plain, gzip or zstd); the answer streams the JSON messages the
//! docker CLI's classic builder prints ("Step 1/4 : ...", " ---> ...").

use std::collections::HashMap;

use axum::Extension;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::AppState;
use super::images::{json_lines, stream_error};
use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::server::ApiVersion;

/// A JSON-encoded query parameter (`buildargs`, `labels`, `cachefrom`).
fn json_param<T: serde::de::DeserializeOwned + Default>(p: &Params, key: &str) -> ApiResult<T> {
    match p.first(key).filter(|s| !s.is_empty()) {
        None => Ok(T::default()),
        Some(raw) => serde_json::from_str(raw)
            .map_err(|e| ApiError::bad_request(format!("invalid {key} parameter: {e}"))),
    }
}

/// An integer parameter as Docker's `Int64ValueOrZero` reads it: what does
/// not parse is 0, and 0 is unset.
fn int_param(p: &Params, key: &str) -> Option<i64> {
    p.first(key)
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|v| *v != 0)
}

/// The limits of the RUN containers. `shmsize` alone is refused when it
/// is not a number, as dockerd refuses it.
fn step_resources(p: &Params) -> ApiResult<berth_engine::StepResources> {
    let shm_size =
        match p.first("shmsize").filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(s.trim().parse::<i64>().map_err(|e| {
                ApiError::bad_request(format!("invalid shmsize parameter {s:?}: {e}"))
            })?),
        };
    let text = |key: &str| p.first(key).filter(|s| !s.is_empty()).map(String::from);
    Ok(berth_engine::StepResources {
        memory: int_param(p, "memory"),
        memory_swap: int_param(p, "memswap"),
        shm_size: shm_size.filter(|v| *v != 0),
        cpu_shares: int_param(p, "cpushares"),
        cpuset_cpus: text("cpusetcpus"),
        cpuset_mems: text("cpusetmems"),
        cpu_period: int_param(p, "cpuperiod"),
        cpu_quota: int_param(p, "cpuquota"),
    })
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

/// A `platform` value as containerd's `platforms.Parse` reads it: the
/// classic builder refuses what it cannot parse, before the build starts.
/// The parser is the one pull, import and create use.
fn check_platform(spec: &str) -> Result<(), String> {
    berth_engine::validate::platform(spec).map_err(|e| e.to_string())
}

pub async fn build(
    State(e): State<AppState>,
    Extension(version): Extension<ApiVersion>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    // Docker reads each single-valued parameter with FormValue: the first
    // of repeated ones wins
    if p.first("remote").is_some_and(|r| !r.is_empty()) {
        return Err(ApiError::bad_request(
            "building from a remote context is not supported; send the context as the request body",
        ));
    }
    if p.first("version").is_some_and(|v| v == "2") {
        return Err(ApiError::bad_request(
            "BuildKit builds (version=2) are not supported: berth runs the classic builder",
        ));
    }
    if version >= ApiVersion(1, 32)
        && let Some(platform) = p.first("platform").filter(|s| !s.is_empty())
    {
        check_platform(platform).map_err(ApiError::bad_request)?;
    }
    let build_args: HashMap<String, Option<String>> = json_param(&p, "buildargs")?;
    let labels: HashMap<String, String> = json_param(&p, "labels")?;
    let cache_from: Vec<String> = json_param(&p, "cachefrom")?;
    let opts = berth_engine::BuildOptions {
        dockerfile: p
            .first("dockerfile")
            .filter(|d| !d.is_empty())
            .unwrap_or("Dockerfile")
            .to_string(),
        tags: p.all("t").into_iter().filter(|t| !t.is_empty()).collect(),
        build_args,
        labels,
        target: p.first("target").map(String::from),
        no_cache: p.first_flag("nocache"),
        pull: p.first_flag("pull"),
        // forcerm implies rm; rm is on unless given and false
        rm: p.first_flag("forcerm")
            || p.first("rm")
                .is_none_or(|v| v.is_empty() || p.first_flag("rm")),
        force_rm: p.first_flag("forcerm"),
        quiet: p.first_flag("q"),
        squash: p.first_flag("squash"),
        network_mode: p
            .first("networkmode")
            .filter(|m| !m.is_empty() && *m != "default")
            .map(String::from),
        // one host a value, as Docker's clients send them (the Python
        // SDK and the docker CLI repeat the parameter)
        extra_hosts: p
            .all("extrahosts")
            .into_iter()
            .filter(|h| !h.is_empty())
            .collect(),
        cache_from,
        secrets: secrets(&headers)?,
        credentials: None,
        resources: step_resources(&p)?,
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

#[cfg(test)]
mod tests {
    use super::check_platform;

    #[test]
    fn platforms_as_containerd_parses_them() {
        for ok in [
            "linux",
            "amd64",
            "arm64",
            "linux/amd64",
            "linux/arm/v7",
            "windows(10.0.17763)/amd64",
            "freebsd/whatever",
        ] {
            assert!(check_platform(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            check_platform("bogus").unwrap_err(),
            "\"bogus\": unknown operating system or architecture: invalid argument"
        );
        assert!(check_platform("linux/*").unwrap_err().contains("wildcards"));
        assert!(
            check_platform("linux/amd64/v2/x")
                .unwrap_err()
                .contains("cannot parse platform specifier")
        );
        assert!(
            check_platform("linux/am d64")
                .unwrap_err()
                .contains("is an invalid component of")
        );
        assert!(
            check_platform("/amd64")
                .unwrap_err()
                .contains("is an invalid OS component")
        );
    }
}
