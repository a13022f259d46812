//! `GET /services/{id}/logs` and `GET /tasks/{id}/logs`: the lines the
//! swarm gathers from every node, written as dockerd's logstream writes
//! them (multiplexed frames unless the tasks have a terminal; details
//! `com.docker.swarm.{node,service,task}.id=...` when asked, which the
//! docker CLI reads to name each line's task).

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use berth_swarm_manager::{LogEvent, LogLine, LogOptions, LogTarget};

use super::swarm::SwarmState;
use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::server::ApiVersion;

const NODE_KEY: &str = "com.docker.swarm.node.id";
const SERVICE_KEY: &str = "com.docker.swarm.service.id";
const TASK_KEY: &str = "com.docker.swarm.task.id";
const STREAM_SYSTEM_ERROR: u8 = 3;

/// `GET /services/{id}/logs`
pub async fn service(
    State(s): State<SwarmState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    Extension(v): Extension<ApiVersion>,
) -> ApiResult<Response> {
    logs(s, LogTarget::Service(id), q, v).await
}

/// `GET /tasks/{id}/logs`
pub async fn task(
    State(s): State<SwarmState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    Extension(v): Extension<ApiVersion>,
) -> ApiResult<Response> {
    logs(s, LogTarget::Task(id), q, v).await
}

async fn logs(
    s: SwarmState,
    target: LogTarget,
    q: Option<String>,
    v: ApiVersion,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref())?;
    let (options, format) = request_options(&p)?;
    let feed = s.swarm.logs(target, options).await?;
    let format = LineFormat {
        mux: !feed.tty,
        ..format
    };
    let content_type = if format.mux && v >= ApiVersion(1, 42) {
        "application/vnd.docker.multiplexed-stream"
    } else {
        "application/vnd.docker.raw-stream"
    };
    let stream = futures_util::stream::unfold((feed.events, format), |(mut rx, f)| async move {
        let event = rx.recv().await?;
        let bytes = f.encode(&event);
        Some((Ok::<_, std::io::Error>(bytes), (rx, f)))
    });
    Ok((
        [(header::CONTENT_TYPE, content_type)],
        Body::from_stream(stream),
    )
        .into_response())
}

/// How each line is written (dockerd's ContainerLogsOptions as
/// logstream.Write uses them).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct LineFormat {
    timestamps: bool,
    details: bool,
    /// multiplexed frames (no terminal)
    mux: bool,
}

/// The query as dockerd's swarmLogs and ServiceLogs read it.
fn request_options(p: &Params) -> ApiResult<(LogOptions, LineFormat)> {
    let (stdout, stderr) = (p.flag("stdout"), p.flag("stderr"));
    if !stdout && !stderr {
        return Err(ApiError::bad_request(
            "must specify at least one of 'stdout' or 'stderr'",
        ));
    }
    let since = match p.get("since").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => crate::params::timestamp_nanos(Some(s))
            .map_err(|_| ApiError::bad_request(format!("invalid value for \"since\": {s}")))?
            .filter(|n| *n != 0)
            .map(|n| n as f64 / 1e9),
    };
    let options = LogOptions {
        follow: p.flag("follow"),
        tail: tail(p.get("tail"))?,
        since,
        stdout,
        stderr,
    };
    let format = LineFormat {
        timestamps: p.flag("timestamps"),
        details: p.flag("details"),
        mux: true,
    };
    Ok((options, format))
}

/// dockerd's ServiceLogs: "all" or nothing for every line, else a count.
fn tail(v: Option<&str>) -> ApiResult<Option<usize>> {
    match v {
        None | Some("") | Some("all") => Ok(None),
        Some(t) => match t.parse::<i64>() {
            Err(_) => Err(ApiError::internal(
                "tail value must be a positive integer or \"all\"",
            )),
            Ok(n) if n < 0 => Err(ApiError::internal("negative tail values not supported")),
            Ok(n) => Ok(Some(n as usize)),
        },
    }
}

impl LineFormat {
    fn encode(&self, event: &LogEvent) -> Bytes {
        match event {
            LogEvent::Line(l) => self.frame(l.stream.frame_id(), &self.payload(l)),
            LogEvent::Error(e) => {
                // swarmkit's stream error as dockerd words a failed Recv
                let text = format!("Error grabbing logs: rpc error: code = Unknown desc = {e}\n");
                self.frame(STREAM_SYSTEM_ERROR, text.as_bytes())
            }
        }
    }

    /// `[timestamp ][details ]line`, as logstream.Write builds it.
    fn payload(&self, l: &LogLine) -> Vec<u8> {
        let mut out = Vec::with_capacity(l.data.len() + 160);
        if self.timestamps {
            out.extend_from_slice(fixed_rfc3339(l.timestamp).as_bytes());
            out.push(b' ');
        }
        if self.details {
            out.extend_from_slice(details(l).as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(&l.data);
        out
    }

    fn frame(&self, stream: u8, payload: &[u8]) -> Bytes {
        if !self.mux {
            return Bytes::copy_from_slice(payload);
        }
        let mut f = Vec::with_capacity(payload.len() + 8);
        f.extend_from_slice(&[stream, 0, 0, 0]);
        f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        f.extend_from_slice(payload);
        Bytes::from(f)
    }
}

/// The line's own details and its task's context, the context having
/// the last word (dockerd's ServiceLogs).
fn details(l: &LogLine) -> String {
    let mut attrs: Vec<(String, String)> = l
        .attrs
        .iter()
        .filter(|(k, _)| ![NODE_KEY, SERVICE_KEY, TASK_KEY].contains(&k.as_str()))
        .cloned()
        .collect();
    attrs.push((NODE_KEY.into(), l.node_id.clone()));
    attrs.push((SERVICE_KEY.into(), l.service_id.clone()));
    attrs.push((TASK_KEY.into(), l.task_id.clone()));
    berth_swarm_manager::logs::decode::details_text(&attrs)
}

/// dockerd's rfc3339NanoFixed, in UTC.
fn fixed_rfc3339(nanos: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(nanos)
        .format("%Y-%m-%dT%H:%M:%S%.9fZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_swarm_manager::LogStream;

    fn line() -> LogLine {
        LogLine {
            node_id: "n1".into(),
            service_id: "s1".into(),
            task_id: "t1".into(),
            stream: LogStream::Stderr,
            timestamp: 1_714_558_830_000_000_005,
            attrs: vec![("com.docker.swarm.node.id".into(), "spoofed".into())],
            data: b"hello\n".to_vec(),
        }
    }

    fn query(q: &str) -> Params {
        Params::parse(Some(q)).expect("query parses")
    }

    #[test]
    fn a_line_is_framed_with_time_and_context_details() {
        let f = LineFormat {
            timestamps: true,
            details: true,
            mux: true,
        };
        let bytes = f.encode(&LogEvent::Line(line()));
        let want = "2024-05-01T10:20:30.000000005Z com.docker.swarm.node.id=n1,com.docker.swarm.service.id=s1,com.docker.swarm.task.id=t1 hello\n";
        assert_eq!(bytes[0], 2, "stderr frame");
        assert_eq!(&bytes[4..8], &(want.len() as u32).to_be_bytes());
        assert_eq!(&bytes[8..], want.as_bytes());
    }

    #[test]
    fn a_plain_line_is_just_the_line() {
        let bytes = LineFormat::default().encode(&LogEvent::Line(line()));
        assert_eq!(&bytes[..], b"hello\n");
    }

    #[test]
    fn the_warning_is_a_system_error_frame() {
        let f = LineFormat {
            mux: true,
            ..Default::default()
        };
        let bytes = f.encode(&LogEvent::Error("warning: x".into()));
        assert_eq!(bytes[0], 3);
        assert_eq!(
            &bytes[8..],
            b"Error grabbing logs: rpc error: code = Unknown desc = warning: x\n"
        );
    }

    #[test]
    fn options_follow_the_query() {
        let (o, f) = request_options(&query(
            "stdout=1&follow=1&tail=5&since=1700000000.5&timestamps=1&details=1",
        ))
        .expect("valid");
        assert_eq!(
            o,
            LogOptions {
                follow: true,
                tail: Some(5),
                since: Some(1_700_000_000.5),
                stdout: true,
                stderr: false,
            }
        );
        assert!(f.timestamps && f.details);
        let (o, _) = request_options(&query("stderr=1&tail=all")).expect("valid");
        assert_eq!(o.tail, None);
    }

    #[test]
    fn dockerd_refusals() {
        let e = request_options(&query("tail=3")).expect_err("no stream");
        assert_eq!(e.1, "must specify at least one of 'stdout' or 'stderr'");
        let e = request_options(&query("stdout=1&tail=x")).expect_err("bad tail");
        assert_eq!(e.1, "tail value must be a positive integer or \"all\"");
        let e = request_options(&query("stdout=1&tail=-2")).expect_err("negative tail");
        assert_eq!(e.1, "negative tail values not supported");
        assert!(request_options(&query("stdout=1&since=yesterday")).is_err());
    }
}
