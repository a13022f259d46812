use axum::Extension;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_engine::{AttachOptions, AttachStream, ListOptions, LogsOptions, WaitCondition};
use bollard_stubs::models::{ContainerCreateBody, ContainerCreateResponse};
use futures_util::StreamExt;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

use super::{AppState, json_body};
use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::server::ApiVersion;
use crate::wire::containers as wire;

/// What dockerd names a stream that is not upgraded, whatever it carries.
pub(super) const RAW_STREAM: &str = "application/vnd.docker.raw-stream";

pub(super) fn stream_content_type(v: ApiVersion) -> &'static str {
    if v >= ApiVersion(1, 42) {
        "application/vnd.docker.multiplexed-stream"
    } else {
        "application/vnd.docker.raw-stream"
    }
}

pub async fn create(
    State(e): State<AppState>,
    Extension(version): Extension<ApiVersion>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ApiError::bad_request(
            "config cannot be empty in order to create a container",
        ));
    }
    let cfg: ContainerCreateBody = json_body(&body)?;
    let mut spec = wire::create_request(&cfg)?;
    // the CRI's log driver writes where its caller says: the kubelet's
    // log directory for the CRI's containers, never a path an API client
    // picks (for them, as for dockerd, there is no such driver)
    if spec
        .host_config
        .log_config
        .as_ref()
        .and_then(|l| l.typ.as_deref())
        == Some("cri-file")
    {
        return Err(ApiError::bad_request(
            "logger: no log driver named 'cri-file' is registered",
        ));
    }
    let compat_warnings = crate::wire::create_compat::adjust_create(&mut spec, &body, version)?;
    // dockerd reads `platform` from API 1.41 on
    if version >= ApiVersion(1, 41) {
        spec.platform = p
            .get("platform")
            .filter(|s| !s.is_empty())
            .map(String::from);
    }
    let (id, mut warnings) = e.container_create(p.get("name"), spec).await?;
    warnings.extend(compat_warnings);
    Ok((
        StatusCode::CREATED,
        Json(ContainerCreateResponse { id, warnings }),
    )
        .into_response())
}

pub async fn list(State(e): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    let limit = p.int("limit")?.filter(|l| *l > 0).map(|l| l as usize);
    let opts = ListOptions {
        all: p.flag("all") || limit.is_some(),
        limit,
        filters: p.filters()?,
        size: p.flag("size"),
    };
    let views = e.container_list(&opts)?;
    let answer: Vec<_> = views.iter().map(wire::summary_answer).collect();
    Ok(Json(answer).into_response())
}

/// GET /containers/{id}/json[?size=1]
pub async fn inspect(
    State(e): State<AppState>,
    Extension(version): Extension<ApiVersion>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    let view = e.container_inspect(&id, p.flag("size"))?;
    Ok(Json(wire::inspect_answer_for(&view, version)?).into_response())
}

pub async fn start(State(e): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    e.container_start(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn stop(
    State(e): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<StatusCode> {
    let p = Params::parse(q.as_deref())?;
    let t = stop_timeout(&p)?;
    let signal = p.get("signal").map(String::from);
    to_the_end(async move { e.container_stop(&id, t, signal.as_deref()).await }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Runs a lifecycle call to its end even when the client goes away (the
/// server drops a handler whose connection closed): a stop or restart
/// half done would leave no event and no consistent state, as dockerd
/// also knows (it detaches these calls from the request's context).
async fn to_the_end<T: Send + 'static>(
    call: impl std::future::Future<Output = berth_engine::Result<T>> + Send + 'static,
) -> ApiResult<T> {
    tokio::spawn(call)
        .await
        .map_err(|err| ApiError::internal(format!("lifecycle task failed: {err}")))?
        .map_err(ApiError::from)
}

/// `t` (or, since API 1.42, `timeout`): seconds before SIGKILL.
fn stop_timeout(p: &Params) -> ApiResult<Option<i64>> {
    match p.int("t")? {
        Some(t) => Ok(Some(t)),
        None => p.int("timeout"),
    }
}

pub async fn restart(
    State(e): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<StatusCode> {
    let p = Params::parse(q.as_deref())?;
    let t = stop_timeout(&p)?;
    let signal = p.get("signal").map(String::from);
    to_the_end(async move { e.container_restart(&id, t, signal.as_deref()).await }).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn rename(
    State(e): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<StatusCode> {
    let p = Params::parse(q.as_deref())?;
    e.container_rename(&id, p.get("name").unwrap_or(""))?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn prune(State(e): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    let (deleted, space) = e.container_prune(&p.filters()?).await?;
    Ok(
        Json(serde_json::json!({ "ContainersDeleted": deleted, "SpaceReclaimed": space }))
            .into_response(),
    )
}

pub async fn kill(
    State(e): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<StatusCode> {
    let p = Params::parse(q.as_deref())?;
    let signal = p.get("signal").map(String::from);
    to_the_end(async move { e.container_kill(&id, signal.as_deref()).await }).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn remove(
    State(e): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<StatusCode> {
    let p = Params::parse(q.as_deref())?;
    if p.flag("link") {
        e.remove_link(&id).await?;
    } else {
        remove_pod_part(&e, &id, p.flag("force"), p.flag("v")).await?;
        e.container_remove(&id, p.flag("force"), p.flag("v"))
            .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A Kubernetes pod's sandbox or container (made through the CRI) is its
/// kubelet's to remove: refused without force. A forced sandbox takes its
/// containers with it, so none is left running in a pod that is gone; the
/// kubelet then makes the pod again.
async fn remove_pod_part(e: &AppState, id: &str, force: bool, volumes: bool) -> ApiResult<()> {
    use berth_core::pods::{self, PodPart};
    let Ok(v) = e.container_inspect(id, false) else {
        return Ok(());
    };
    let Some(part) = v.record.config.labels.as_ref().and_then(pods::part_of) else {
        return Ok(());
    };
    let name = v.record.name.trim_start_matches('/');
    if !force {
        let whose = match &part {
            PodPart::Sandbox { name, namespace } => {
                format!("is the sandbox of Kubernetes pod {namespace}/{name}")
            }
            PodPart::Container { sandbox } => format!(
                "belongs to Kubernetes pod sandbox {}",
                sandbox.get(..12).unwrap_or(sandbox)
            ),
        };
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!(
                "cannot remove container \"/{name}\": it {whose}, whose kubelet removes it (crictl rm, rmp): use --force to remove it anyway"
            ),
        ));
    }
    if let PodPart::Sandbox { .. } = part {
        let opts = ListOptions {
            all: true,
            filters: [(
                "label".to_string(),
                vec![format!("{}={}", pods::SANDBOX_ID, v.record.id)],
            )]
            .into(),
            ..Default::default()
        };
        for member in e.container_list(&opts)? {
            match e.container_remove(&member.record.id, true, volumes).await {
                Ok(()) | Err(berth_engine::Error::NotFound(_)) => {}
                Err(err) => return Err(err.into()),
            }
        }
    }
    Ok(())
}

/// `DELETE /containers/{parent}/{alias}`: with `link=1` forgets the link,
/// else removes the linked child, as dockerd's one route does.
pub async fn remove_link_name(
    state: State<AppState>,
    Path((parent, alias)): Path<(String, String)>,
    q: RawQuery,
) -> ApiResult<StatusCode> {
    remove(state, Path(format!("{parent}/{alias}")), q).await
}

/// The headers go out as soon as the wait is registered; the body follows
/// when the condition is met (clients start the container in between).
pub async fn wait(
    State(e): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    let cond = WaitCondition::parse(p.get("condition").unwrap_or(""))?;
    let fut = e.container_wait(&id, cond)?;
    let body = futures_util::stream::once(async move {
        let (code, err) = fut.await;
        let v = match err {
            Some(m) => serde_json::json!({ "StatusCode": code, "Error": { "Message": m } }),
            None => serde_json::json!({ "StatusCode": code, "Error": null }),
        };
        Ok::<_, std::io::Error>(Bytes::from(format!("{v}\n")))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response())
}

pub async fn logs(
    State(e): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    Extension(v): Extension<ApiVersion>,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    let opts = LogsOptions {
        stdout: p.flag("stdout"),
        stderr: p.flag("stderr"),
        follow: p.flag("follow"),
        timestamps: p.flag("timestamps"),
        tail: match p.get("tail") {
            None | Some("") | Some("all") => None,
            Some(t) => Some(
                t.parse::<i64>()
                    .map(|n| n.max(0) as usize)
                    .map_err(|_| ApiError::bad_request(format!("invalid tail value: {t}")))?,
            ),
        },
        since: parse_time(p.get("since"))?,
        until: parse_time(p.get("until"))?,
        raw: false,
        details: p.flag("details"),
    };
    if !opts.stdout && !opts.stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let rx = e.container_logs(&id, opts)?;
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    Ok((
        [(header::CONTENT_TYPE, stream_content_type(v))],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Unix seconds with optional fraction, or RFC 3339, as Docker accepts;
/// 0 means no bound.
fn parse_time(v: Option<&str>) -> ApiResult<Option<f64>> {
    let v = v.filter(|s| *s != "0");
    Ok(crate::params::timestamp_nanos(v)?.map(|n| n as f64 / 1e9))
}

/// POST /containers/{id}/attach: a 101 upgrade to a raw, bidirectional
/// stream (or, without Upgrade headers, a streamed 200 body): the log so
/// far when `logs` is set, then the live streams when `stream` is.
pub async fn attach(
    State(e): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    Extension(v): Extension<ApiVersion>,
    mut req: Request,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    let opts = AttachOptions {
        stdin: p.flag("stdin"),
        stdout: p.flag("stdout"),
        stderr: p.flag("stderr"),
        logs: p.flag("logs"),
        stream: p.flag("stream"),
    };
    let with_stdin = opts.stdin;
    let detach_keys = match p.get("detachKeys").filter(|k| !k.is_empty()) {
        None => berth_term::DEFAULT_DETACH_KEYS.to_vec(),
        Some(k) => berth_term::parse_detach_keys(k).map_err(|err| {
            ApiError::bad_request(format!("Invalid detach keys ({k}) provided: {err}"))
        })?,
    };
    let attaching = e.container_attach(&id, opts).await?;
    let content_type = crate::wire::exec::upgraded_content_type(attaching.tty, v);
    let logs = attaching.logs.map(|rx| {
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
    });
    let logs = futures_util::stream::iter(logs).flatten();
    let pending = attaching.stream;
    if !req.headers().contains_key(header::UPGRADE) {
        let live = futures_util::stream::iter(pending)
            .then(|pending| pending)
            .map(|r| match r {
                Ok(s) => ReaderStream::new(s.stream).left_stream(),
                Err(err) => {
                    futures_util::stream::iter(vec![Err(std::io::Error::other(err.to_string()))])
                        .right_stream()
                }
            })
            .flatten();
        let body = logs.chain(live);
        return Ok((
            [(header::CONTENT_TYPE, RAW_STREAM)],
            Body::from_stream(body),
        )
            .into_response());
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(err) => {
                tracing::debug!(error = %err, "attach upgrade failed");
                return;
            }
        };
        let mut client = TokioIo::new(upgraded);
        let mut logs = std::pin::pin!(logs);
        while let Some(Ok(chunk)) = logs.next().await {
            if client.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let Some(pending) = pending else {
            let _ = client.shutdown().await;
            return;
        };
        match pending.await {
            Ok(stream) => pump(client, stream, with_stdin, detach_keys).await,
            Err(err) => tracing::debug!(error = %err, "attach ended before the container started"),
        }
    });
    upgrade_response(content_type)
}

/// The 101 answer that turns an attach or exec start into a raw stream.
pub(super) fn upgrade_response(content_type: &str) -> ApiResult<Response> {
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "tcp")
        .body(Body::empty())
        .map_err(|err| ApiError(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()))
}

/// Copies container output to the client until the container exits, and
/// the client's input to the container's stdin when it was asked for. On a
/// terminal the detach keys end the session, as dockerd does for clients
/// that send them raw.
async fn pump<C>(client: C, shim: AttachStream, with_stdin: bool, detach_keys: Vec<u8>)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let tty = shim.tty;
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut sr, mut sw) = tokio::io::split(shim.stream);
    let output = async {
        let _ = tokio::io::copy(&mut sr, &mut cw).await;
        let _ = cw.shutdown().await;
    };
    let input = async {
        if with_stdin && tty {
            if berth_term::copy_until_detach(&mut cr, &mut sw, detach_keys).await {
                return;
            }
            let _ = sw.shutdown().await;
        } else if with_stdin {
            let _ = tokio::io::copy(&mut cr, &mut sw).await;
            let _ = sw.shutdown().await;
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = output => {}
        _ = input => {}
    }
}

fn terminal_size(p: &Params) -> ApiResult<(u16, u16)> {
    let dim = |k: &str| -> ApiResult<u16> {
        match p.get(k) {
            None | Some("") => Ok(0),
            Some(v) => v
                .parse::<u16>()
                .map_err(|_| ApiError::bad_request(format!("invalid {k} value: {v}"))),
        }
    };
    Ok((dim("h")?, dim("w")?))
}

/// POST /containers/{id}/resize?h&w
pub async fn resize(
    State(e): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<StatusCode> {
    let p = Params::parse(q.as_deref())?;
    let (h, w) = terminal_size(&p)?;
    e.container_resize(&id, h, w).await?;
    Ok(StatusCode::OK)
}

/// POST /exec/{id}/resize?h&w
pub async fn exec_resize(
    State(e): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<StatusCode> {
    let p = Params::parse(q.as_deref())?;
    let (h, w) = terminal_size(&p)?;
    e.exec_resize(&id, h, w).await?;
    Ok(StatusCode::OK)
}

pub async fn pause(State(e): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    e.container_pause(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn unpause(State(e): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    e.container_unpause(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// GET /containers/{id}/top?ps_args
pub async fn top(
    State(e): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    let v = e
        .container_top(&id, p.get("ps_args").unwrap_or("-ef"))
        .await?;
    Ok(Json(v).into_response())
}

/// GET /containers/{id}/stats?stream&one-shot: JSON documents, one per
/// line while streaming.
pub async fn stats(
    State(e): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    let stream = p.get("stream").is_none_or(|_| p.flag("stream"));
    let rx = e.container_stats(&id, stream, p.flag("one-shot"))?;
    if !stream {
        let mut rx = rx;
        let v = rx.recv().await.unwrap_or_default();
        return Ok(Json(v).into_response());
    }
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        let v = rx.recv().await?;
        let mut line = serde_json::to_vec(&v).unwrap_or_default();
        line.push(b'\n');
        Some((Ok::<_, std::io::Error>(Bytes::from(line)), rx))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response())
}

/// POST /containers/{id}/update
pub async fn update(
    State(e): State<AppState>,
    Extension(version): Extension<ApiVersion>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let u: bollard_stubs::models::ContainerUpdateBody = json_body(&body)?;
    let u = wire::update_request(u, version)?;
    let warnings = e.container_update(&id, u).await?;
    Ok(Json(serde_json::json!({ "Warnings": warnings })).into_response())
}
