use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_engine::ImportOptions;
use futures_util::StreamExt;

use super::AppState;
use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::server::ApiVersion;
use crate::wire::images as wire;

pub async fn list(State(e): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    let images = e.image_list(p.flag("all"), &p.filters()?)?;
    let answer: Vec<_> = images.iter().map(wire::image_summary_answer).collect();
    Ok(Json(answer).into_response())
}

/// GET /images/{name}/json — names may contain slashes.
pub async fn get_dispatch(
    State(e): State<AppState>,
    Extension(version): Extension<ApiVersion>,
    Path(rest): Path<String>,
) -> ApiResult<Response> {
    if let Some(name) = rest.strip_suffix("/json") {
        let details = e.image_inspect(name)?;
        return Ok(Json(wire::image_inspect_answer(&details, version)).into_response());
    }
    if let Some(name) = rest.strip_suffix("/history") {
        let history = e.image_history(name)?;
        let answer: Vec<_> = history.iter().map(wire::image_history_answer).collect();
        return Ok(Json(answer).into_response());
    }
    if let Some(name) = rest.strip_suffix("/get") {
        return save_names(&e, &[name.to_string()]);
    }
    Err(ApiError(StatusCode::NOT_FOUND, "page not found".into()))
}

/// GET /distribution/{name}/json: the registry's descriptor of a
/// reference (names may contain slashes), asked with the client's
/// X-Registry-Auth.
pub async fn distribution(
    State(e): State<AppState>,
    Path(rest): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let Some(name) = rest.strip_suffix("/json") else {
        return Err(ApiError(StatusCode::NOT_FOUND, "page not found".into()));
    };
    // dockerd ignores credentials it cannot read here, as for a search
    let creds = registry_auth(&headers).unwrap_or_default();
    let view = e.distribution_inspect(name, creds).await?;
    Ok(Json(wire::distribution_answer(&view)).into_response())
}

/// GET /images/search?term=…&limit=…
pub async fn search(State(e): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    let term = p
        .get("term")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::bad_request("term is required"))?;
    let limit = berth_engine::validate::search_limit(p.get("limit"))?;
    Ok(Json(e.image_search(term, limit).await?).into_response())
}

/// POST /images/prune?filters=…
pub async fn prune(State(e): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    let (items, space) = e.image_prune(&p.filters()?)?;
    Ok(Json(wire::image_prune_answer(&items, space)).into_response())
}

/// GET /images/get?names=…: a tar of the images.
pub async fn save(State(e): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    let names = p.all("names");
    save_names(&e, &names)
}

fn save_names(e: &AppState, names: &[String]) -> ApiResult<Response> {
    let stream = e.image_save(names)?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-tar")],
        super::archive::tar_body(stream),
    )
        .into_response())
}

/// POST /images/load: the request body is a docker-archive or OCI layout.
pub async fn load(State(e): State<AppState>, body: Body) -> ApiResult<Response> {
    let tmp = e.tmp_path("load");
    super::spool(body, &tmp, "the archive").await?;
    let res = e.image_load(tmp.clone()).await;
    let _ = tokio::fs::remove_file(&tmp).await;
    // dockerd answers 200 once it reads the archive and reports a failed
    // load inside the stream, which clients (the docker CLI, bollard) read
    let lines: Vec<serde_json::Value> = match res {
        Ok(lines) => lines
            .iter()
            .map(|l| serde_json::json!({ "stream": format!("{l}\n") }))
            .collect(),
        Err(err) => vec![stream_error(&ApiError::from(err).1)],
    };
    let mut out = String::new();
    for v in lines {
        out.push_str(&v.to_string());
        out.push('\n');
    }
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        out,
    )
        .into_response())
}

/// POST /images/{name}/push and /images/{name}/tag.
pub async fn post_dispatch(
    State(e): State<AppState>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    if let Some(name) = rest.strip_suffix("/tag") {
        let repo = p.get("repo").filter(|r| !r.is_empty()).ok_or_else(|| {
            ApiError::bad_request("repository name must have at least one component")
        })?;
        e.image_tag(name, repo, p.get("tag"))?;
        return Ok(StatusCode::CREATED.into_response());
    }
    if let Some(name) = rest.strip_suffix("/push") {
        let opts = berth_engine::PushOptions {
            name: name.to_string(),
            tag: p.get("tag").map(String::from),
            credentials: registry_auth(&headers)?,
        };
        let targets = e.push_targets(&opts)?;
        let (tx, rx) = tokio::sync::mpsc::channel::<serde_json::Value>(64);
        let e2 = e.clone();
        tokio::spawn(async move {
            let tx2 = tx.clone();
            if let Err(err) = e2.push_run(targets, opts.credentials, tx).await {
                let _ = tx2.send(stream_error(&err.to_string())).await;
            }
        });
        return Ok(json_lines(rx));
    }
    Err(ApiError(StatusCode::NOT_FOUND, "page not found".into()))
}

pub async fn remove(
    State(e): State<AppState>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    let items = e.image_delete(&name, p.flag("force"), !p.flag("noprune"))?;
    Ok(Json(wire::image_delete_answer(&items)).into_response())
}

/// POST /images/create: `fromSrc=-` imports the request body.
pub async fn create(
    State(e): State<AppState>,
    Extension(version): Extension<ApiVersion>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    // dockerd reads `platform` from API 1.32 on, before pulling or importing
    let platform = p
        .get("platform")
        .filter(|s| !s.is_empty() && version >= ApiVersion(1, 32));
    if let Some(platform) = platform {
        berth_engine::validate::platform(platform)?;
    }
    if let Some(image) = p.get("fromImage").filter(|s| !s.is_empty()) {
        let opts = berth_engine::PullOptions {
            image: image.to_string(),
            tag: p.get("tag").map(String::from),
            platform: platform.map(String::from),
            credentials: registry_auth(&headers)?,
        };
        let rx = e.pull_stream(&opts).await?;
        return Ok(json_lines(rx));
    }
    let Some(src) = p.get("fromSrc") else {
        return Err(ApiError::bad_request(
            "either fromImage or fromSrc is required",
        ));
    };
    if src != "-" {
        return Err(ApiError::bad_request(format!(
            "importing from a URL ({src}) is not supported; send the archive as the request body"
        )));
    }
    let tmp = e.tmp_path("import");
    super::spool(body, &tmp, "import body").await?;
    let opts = ImportOptions {
        repo: p.get("repo").map(String::from),
        tag: p.get("tag").map(String::from),
        changes: changes(&p),
        message: p.get("message").map(String::from),
    };
    let res = e.import_image(tmp.clone(), opts).await;
    let _ = tokio::fs::remove_file(&tmp).await;
    let id = res?;
    let line = format!("{}\n", serde_json::json!({ "status": id }));
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        line,
    )
        .into_response())
}

/// POST /auth: checks registry credentials (`docker login`).
pub async fn auth(State(e): State<AppState>, body: axum::body::Bytes) -> ApiResult<Response> {
    #[derive(serde::Deserialize)]
    struct AuthBody {
        #[serde(default)]
        username: String,
        #[serde(default)]
        password: String,
        #[serde(default)]
        serveraddress: String,
    }
    let a: AuthBody = super::json_body(&body)?;
    if a.username.is_empty() {
        return Err(ApiError::bad_request("username is required"));
    }
    let creds = berth_engine::Credentials {
        username: a.username,
        password: a.password,
    };
    e.registry_login(&a.serveraddress, creds).await?;
    Ok(
        Json(serde_json::json!({ "Status": "Login Succeeded", "IdentityToken": "" }))
            .into_response(),
    )
}

/// Docker's in-stream error message.
pub fn stream_error(msg: &str) -> serde_json::Value {
    berth_engine::progress_error(msg)
}

/// A streamed answer of JSON messages, one per line.
pub fn json_lines(rx: tokio::sync::mpsc::Receiver<serde_json::Value>) -> Response {
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx).map(|v| {
        let mut line = serde_json::to_vec(&v).unwrap_or_default();
        line.push(b'\n');
        Ok::<_, std::io::Error>(bytes::Bytes::from(line))
    });
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// The credentials of `X-Registry-Auth` (base64url JSON, as clients send
/// them); never logged.
pub fn registry_auth(headers: &HeaderMap) -> ApiResult<Option<berth_engine::Credentials>> {
    use base64::Engine as _;
    let Some(v) = headers.get("x-registry-auth").and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(v.trim_end_matches('='))
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(v))
        .map_err(|_| ApiError::bad_request("X-Registry-Auth is not valid base64"))?;
    #[derive(serde::Deserialize, Default)]
    struct AuthConfig {
        #[serde(default)]
        username: String,
        #[serde(default)]
        password: String,
        #[serde(default, rename = "identitytoken")]
        identity_token: String,
    }
    // clients send "{}" for anonymous access; dockerd reads the keys in
    // any case, as every body
    let a: AuthConfig = crate::wire::fold::from_body(&raw).unwrap_or_default();
    if a.username.is_empty() && a.identity_token.is_empty() {
        return Ok(None);
    }
    Ok(Some(berth_engine::Credentials {
        username: a.username,
        password: if a.identity_token.is_empty() {
            a.password
        } else {
            a.identity_token
        },
    }))
}

/// The `changes` parameters: Dockerfile instructions, one per value or
/// newline-joined (as bollard sends them).
fn changes(p: &Params) -> Vec<String> {
    p.all("changes")
        .iter()
        .flat_map(|c| c.lines().map(str::to_string).collect::<Vec<_>>())
        .filter(|c| !c.trim().is_empty())
        .collect()
}

/// POST /commit?container&repo&tag&comment&author&pause&changes
pub async fn commit(State(e): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    let container = p
        .get("container")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad_request("container is required"))?
        .to_string();
    let opts = berth_engine::CommitOptions {
        repo: p.get("repo").map(String::from),
        tag: p.get("tag").map(String::from),
        comment: p.get("comment").map(String::from),
        author: p.get("author").map(String::from),
        pause: p.get("pause").is_none_or(|_| p.flag("pause")),
        changes: changes(&p),
    };
    let id = e.container_commit(&container, opts).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "Id": id }))).into_response())
}
