//! GET /events: past events since `since`, then live ones until `until`
//! or until the client leaves; one JSON document per line.

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use berth_engine::{Event, EventFilter};

use super::AppState;
use crate::error::ApiResult;
use crate::params::Params;

fn line(e: &Event) -> Bytes {
    let mut v = serde_json::to_vec(e).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

pub async fn events(State(e): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    let since = crate::params::timestamp_nanos(p.get("since"))?;
    let until = crate::params::timestamp_nanos(p.get("until"))?;
    let filter = EventFilter::new(p.filters()?)?;
    let (past, mut rx) = e.events().subscribe(since);
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    let (tx, out) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    tokio::spawn(async move {
        for ev in past {
            if until.is_some_and(|u| ev.time_nano > u) {
                return;
            }
            if filter.matches(&ev) && tx.send(Ok(line(&ev))).await.is_err() {
                return;
            }
        }
        let deadline = until.map(|u| {
            tokio::time::Instant::now() + std::time::Duration::from_nanos((u - now).max(0) as u64)
        });
        loop {
            let next = async {
                match deadline {
                    Some(d) => tokio::time::timeout_at(d, rx.recv()).await.ok(),
                    None => Some(rx.recv().await),
                }
            };
            tokio::select! {
                r = next => match r {
                    None => return,
                    Some(Ok(ev)) => {
                        if filter.matches(&ev) && tx.send(Ok(line(&ev))).await.is_err() {
                            return;
                        }
                    }
                    // a slow client missed some: go on with the next ones
                    Some(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
                    Some(Err(_)) => return,
                },
                _ = tx.closed() => return,
            }
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(out)),
    )
        .into_response())
}
