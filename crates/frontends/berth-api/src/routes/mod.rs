mod archive;
mod build;
mod containers;
mod events;
mod exec;
mod images;
mod networks;
mod plugins;
mod secrets;
mod service_logs;
mod services;
mod swarm;
mod swarm_addr;
mod swarm_nodes;
mod system;
mod volumes;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use berth_engine::Engine;
use berth_swarm_store::BlobKind;

use crate::error::{ApiError, ApiResult};

pub type AppState = Arc<Engine>;

/// The swarm endpoints, and the two system ones that show swarm state.
fn swarm_routes(state: swarm::SwarmState) -> Router<AppState> {
    let mut r = Router::new()
        .route("/_ping", get(swarm::ping).head(swarm::ping))
        .route("/info", get(swarm::info))
        .route("/swarm", get(swarm::inspect))
        .route("/swarm/init", post(swarm::init))
        .route("/swarm/join", post(swarm::join))
        .route("/swarm/leave", post(swarm::leave))
        .route("/swarm/unlock", post(swarm::unlock))
        .route("/swarm/unlockkey", get(swarm::unlock_key))
        .route("/swarm/update", post(swarm::update))
        .route("/nodes", get(swarm_nodes::list))
        .route("/nodes/{id}", get(swarm::node).delete(swarm_nodes::remove))
        .route("/nodes/{id}/update", post(swarm_nodes::update))
        .route("/tasks", get(services::tasks))
        .route("/tasks/{id}", get(services::task))
        .route("/services", get(services::list))
        .route("/services/create", post(services::create))
        .route(
            "/services/{id}",
            get(services::inspect).delete(services::remove),
        )
        .route("/services/{id}/update", post(services::update))
        .route("/services/{id}/rebalance", post(services::rebalance))
        .route("/services/{id}/logs", get(service_logs::service))
        .route("/tasks/{id}/logs", get(service_logs::task))
        .route("/networks", get(networks::list))
        // the one list dockerd also serves with a trailing slash (its mux
        // has the route; others answer 404 there too)
        .route("/networks/", get(networks::list))
        .route("/networks/create", post(networks::create))
        .route(
            "/networks/{id}",
            get(networks::inspect).delete(networks::remove),
        );
    r = r
        .merge(secrets::routes(BlobKind::Secret, "/secrets"))
        .merge(secrets::routes(BlobKind::Config, "/configs"));
    r.with_state(state)
}

pub fn router(engine: Arc<Engine>, swarm: Arc<berth_swarm_manager::Swarm>) -> Router {
    let swarm_state = swarm::SwarmState {
        engine: engine.clone(),
        swarm,
    };
    Router::new()
        .route("/version", get(system::version))
        .route("/system/df", get(system::df))
        .route("/events", get(events::events))
        .route("/containers/create", post(containers::create))
        .route("/containers/json", get(containers::list))
        .route("/containers/prune", post(containers::prune))
        .route("/containers/{id}/json", get(containers::inspect))
        .route("/containers/{id}/start", post(containers::start))
        .route("/containers/{id}/stop", post(containers::stop))
        .route("/containers/{id}/restart", post(containers::restart))
        .route("/containers/{id}/rename", post(containers::rename))
        .route("/containers/{id}/kill", post(containers::kill))
        .route("/containers/{id}/wait", post(containers::wait))
        .route("/containers/{id}/attach", post(containers::attach))
        .route("/containers/{id}/logs", get(containers::logs))
        .route("/containers/{id}", delete(containers::remove))
        // a link name, `parent/alias` (dockerd's route takes any path)
        .route(
            "/containers/{parent}/{alias}",
            delete(containers::remove_link_name),
        )
        .route(
            "/containers/{id}/archive",
            get(archive::get).head(archive::head).put(archive::put),
        )
        .route("/containers/{id}/export", get(archive::export))
        .route("/containers/{id}/changes", get(archive::changes))
        .route("/containers/{id}/exec", post(exec::create))
        .route("/exec/{id}/start", post(exec::start))
        .route("/exec/{id}/json", get(exec::inspect))
        .route("/exec/{id}/resize", post(containers::exec_resize))
        .route("/containers/{id}/resize", post(containers::resize))
        .route("/containers/{id}/pause", post(containers::pause))
        .route("/containers/{id}/unpause", post(containers::unpause))
        .route("/containers/{id}/top", get(containers::top))
        .route("/containers/{id}/update", post(containers::update))
        .route("/containers/{id}/stats", get(containers::stats))
        .merge(swarm_routes(swarm_state))
        .route("/plugins", get(plugins::list))
        .route("/plugins/{name}/json", get(plugins::not_found))
        .route("/plugins/{name}", delete(plugins::not_found))
        .route("/volumes", get(volumes::list))
        .route("/volumes/create", post(volumes::create))
        .route("/volumes/prune", post(volumes::prune))
        .route(
            "/volumes/{name}",
            get(volumes::inspect).delete(volumes::remove),
        )
        // dockerd's route takes an empty name (`{name:.*}`): the volume
        // service answers that it has no such volume
        .route(
            "/volumes/",
            get(volumes::inspect_unnamed).delete(volumes::remove_unnamed),
        )
        .route("/networks/prune", post(networks::prune))
        .route("/networks/{id}/connect", post(networks::connect))
        .route("/networks/{id}/disconnect", post(networks::disconnect))
        .route("/commit", post(images::commit))
        .route("/build", post(build::build))
        .route("/build/prune", post(build::prune))
        .route("/auth", post(images::auth))
        .route("/images/json", get(images::list))
        .route("/images/create", post(images::create))
        .route("/images/get", get(images::save))
        .route("/images/load", post(images::load))
        .route("/images/prune", post(images::prune))
        .route("/images/search", get(images::search))
        .route("/distribution/{*rest}", get(images::distribution))
        .route(
            "/images/{*rest}",
            get(images::get_dispatch)
                .post(images::post_dispatch)
                .delete(images::remove),
        )
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "page not found".into()) })
        .route_layer(axum::middleware::from_fn(require_json))
        .route_layer(axum::middleware::from_fn_with_state(
            engine.clone(),
            measure,
        ))
        .with_state(engine)
}

/// Times every routed request for `/metrics`: by method, route template
/// and status, and the container actions under Docker's names.
async fn measure(
    axum::extract::State(e): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let method = req.method().clone();
    let started = std::time::Instant::now();
    let resp = next.run(req).await;
    let took = started.elapsed();
    let action = match (method.as_str(), route.as_str()) {
        ("POST", "/containers/create") => Some("create"),
        ("DELETE", "/containers/{id}") => Some("delete"),
        ("POST", r) => r.strip_prefix("/containers/{id}/").filter(|a| {
            matches!(
                *a,
                "start"
                    | "stop"
                    | "restart"
                    | "kill"
                    | "pause"
                    | "unpause"
                    | "rename"
                    | "update"
                    | "commit"
            )
        }),
        _ => None,
    };
    if let Some(a) = action
        && resp.status().is_success()
    {
        e.metrics().container_action(a, took);
    }
    let network = match (method.as_str(), route.as_str()) {
        ("POST", "/networks/create") => Some("create"),
        ("DELETE", "/networks/{id}") => Some("delete"),
        ("POST", "/networks/{id}/connect") => Some("connect"),
        ("POST", "/networks/{id}/disconnect") => Some("disconnect"),
        _ => None,
    };
    if let Some(a) = network
        && resp.status().is_success()
    {
        e.metrics().network_action(a, took);
    }
    e.metrics()
        .api_request(method.as_str(), &route, resp.status().as_u16(), took);
    resp
}

/// dockerd's CheckForJSON on the routes whose body it reads as JSON: a
/// body in another type is refused before the handler runs.
async fn require_json(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
    use axum::response::IntoResponse;
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str());
    let json = req.method() == axum::http::Method::POST
        && route.is_some_and(|r| {
            matches!(
                r,
                "/containers/create"
                    | "/containers/{id}/update"
                    | "/containers/{id}/exec"
                    | "/exec/{id}/start"
                    | "/commit"
                    | "/networks/create"
                    | "/networks/{id}/connect"
                    | "/networks/{id}/disconnect"
                    | "/volumes/create"
            )
        });
    if json {
        let h = req.headers();
        // Go counts a chunked body (length unknown) as a body
        let has_body = h.contains_key(TRANSFER_ENCODING)
            || h.get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim() != "0");
        let ct = h.get(CONTENT_TYPE).map(|v| v.to_str().unwrap_or("?"));
        if let Err(e) = berth_engine::validate::json_content_type(ct, has_body) {
            return ApiError::from(e).into_response();
        }
    }
    next.run(req).await
}

/// Reads a JSON request body, its keys matched to fields as dockerd's
/// decoder matches them, answering Docker's 400 for bad JSON.
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    crate::wire::fold::from_body(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// Streams a request body to a file (archives can be large). On failure
/// the partial file is removed and the client gets a 400 naming `what`.
pub async fn spool(body: axum::body::Body, path: &std::path::Path, what: &str) -> ApiResult<()> {
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;
    let written = async {
        let mut f = tokio::fs::File::create(path).await?;
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(std::io::Error::other)?;
            f.write_all(&chunk).await?;
        }
        f.flush().await
    }
    .await;
    if let Err(err) = written {
        let _ = tokio::fs::remove_file(path).await;
        return Err(ApiError::bad_request(format!("reading {what}: {err}")));
    }
    Ok(())
}
