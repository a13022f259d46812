//! Exec instances: Docker's ExecConfig becomes berth's spec; a record
//! becomes the inspect answer.

use berth_engine::{ExecRecord, ExecSpec};
use bollard_stubs::models::{ExecConfig, ExecInspectResponse, ProcessConfig};

pub fn create_request(c: ExecConfig) -> ExecSpec {
    ExecSpec {
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
        });
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
}
