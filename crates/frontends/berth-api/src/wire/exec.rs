//! Exec instances: Docker's ExecConfig becomes berth's spec; a record
//! becomes the inspect answer.

use axum::http::StatusCode;
use berth_engine::{ExecRecord, ExecSpec, ExecStartOptions};
use bollard_stubs::models::{ExecConfig, ExecInspectResponse, ExecStartConfig, ProcessConfig};

use crate::error::{ApiError, ApiResult};
use crate::server::ApiVersion;

pub fn create_request(c: ExecConfig) -> ApiResult<ExecSpec> {
    let detach_keys = match c.detach_keys.as_deref().filter(|k| !k.is_empty()) {
        None => vec![],
        // dockerd's words, and its status: the error has no kind there
        Some(k) => berth_term::parse_detach_keys(k).map_err(|_| {
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Invalid escape keys ({k}) provided"),
            )
        })?,
    };
    Ok(ExecSpec {
        cmd: c.cmd,
        env: c.env,
        user: c.user,
        working_dir: c.working_dir,
        privileged: c.privileged,
        tty: c.tty,
        attach_stdin: c.attach_stdin,
        attach_stdout: c.attach_stdout,
        attach_stderr: c.attach_stderr,
        console_size: c.console_size,
        detach_keys,
    })
}

/// The start request: output framed by its Tty; its console size only
/// with a terminal and since API 1.42, as dockerd reads it.
pub fn start_request(c: &ExecStartConfig, v: ApiVersion) -> ExecStartOptions {
    let raw = c.tty == Some(true);
    ExecStartOptions {
        raw,
        console_size: c
            .console_size
            .clone()
            .filter(|_| raw && v >= ApiVersion(1, 42)),
        plain_input: false,
    }
}

/// The Content-Type of an upgraded exec or attach stream: multiplexed
/// frames are announced since API 1.42; a terminal's stream is raw.
pub fn upgraded_content_type(raw: bool, v: ApiVersion) -> &'static str {
    if !raw && v >= ApiVersion(1, 42) {
        "application/vnd.docker.multiplexed-stream"
    } else {
        "application/vnd.docker.raw-stream"
    }
}

pub fn inspect_answer(r: &ExecRecord) -> ExecInspectResponse {
    let cmd = r.config.cmd.clone().unwrap_or_default();
    ExecInspectResponse {
        can_remove: Some(false),
        id: Some(r.id.clone()),
        running: Some(r.running),
        exit_code: r.exit_code,
        process_config: Some(ProcessConfig {
            privileged: Some(r.config.privileged.unwrap_or(false)),
            user: Some(r.config.user.clone().unwrap_or_default()),
            tty: Some(r.config.tty.unwrap_or(false)),
            entrypoint: cmd.first().cloned(),
            arguments: Some(cmd.iter().skip(1).cloned().collect()),
        }),
        open_stdin: Some(r.config.attach_stdin.unwrap_or(false)),
        open_stderr: Some(r.config.attach_stderr.unwrap_or(false)),
        open_stdout: Some(r.config.attach_stdout.unwrap_or(false)),
        container_id: Some(r.container_id.clone()),
        pid: Some(r.pid),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_splits_the_command_into_entrypoint_and_arguments() {
        let spec = create_request(ExecConfig {
            cmd: Some(vec!["sh".into(), "-c".into(), "true".into()]),
            user: Some("nobody".into()),
            attach_stdout: Some(true),
            ..Default::default()
        })
        .unwrap();
        let r = ExecRecord {
            id: "e1".into(),
            container_id: "c1".into(),
            config: spec,
            started: true,
            running: false,
            exit_code: Some(3),
            pid: 42,
        };
        let a = inspect_answer(&r);
        let p = a.process_config.unwrap();
        assert_eq!(p.entrypoint.as_deref(), Some("sh"));
        assert_eq!(
            p.arguments,
            Some(vec!["-c".to_string(), "true".to_string()])
        );
        assert_eq!(p.user.as_deref(), Some("nobody"));
        assert_eq!(p.privileged, Some(false));
        assert_eq!(a.exit_code, Some(3));
        assert_eq!(a.open_stdout, Some(true));
        assert_eq!(a.open_stdin, Some(false));
        assert_eq!(a.container_id.as_deref(), Some("c1"));
    }

    #[test]
    fn detach_keys_are_parsed_at_create() {
        let spec = create_request(ExecConfig {
            detach_keys: Some("ctrl-a,x".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(spec.detach_keys, vec![1, b'x']);
        let err = create_request(ExecConfig {
            detach_keys: Some("ctrl-".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(err.0, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(err.1, "Invalid escape keys (ctrl-) provided");
    }

    #[test]
    fn start_frames_by_its_own_tty() {
        let v = ApiVersion(1, 47);
        let tty = ExecStartConfig {
            tty: Some(true),
            console_size: Some(vec![10, 20]),
            ..Default::default()
        };
        let o = start_request(&tty, v);
        assert!(o.raw);
        assert_eq!(o.console_size, Some(vec![10, 20]));
        assert_eq!(start_request(&tty, ApiVersion(1, 41)).console_size, None);
        let plain = ExecStartConfig {
            console_size: Some(vec![10, 20]),
            ..Default::default()
        };
        let o = start_request(&plain, v);
        assert!(!o.raw);
        assert_eq!(o.console_size, None);
        assert_eq!(
            upgraded_content_type(false, v),
            "application/vnd.docker.multiplexed-stream"
        );
        assert_eq!(
            upgraded_content_type(true, v),
            "application/vnd.docker.raw-stream"
        );
        assert_eq!(
            upgraded_content_type(false, ApiVersion(1, 41)),
            "application/vnd.docker.raw-stream"
        );
    }
}
