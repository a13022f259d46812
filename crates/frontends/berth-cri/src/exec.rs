//! ExecSync: a command run in a container to its end, its output
//! collected (capped so the answer fits the kubelet's 16 MiB message; the
//! rest is discarded, as the CRI asks) and its exit code; past its
//! timeout the process is killed. No exec record is kept.

use std::sync::Arc;
use std::time::Duration;

use berth_engine::{Engine, ExecSpec, ExecStartOptions};
use tokio::io::{AsyncRead, AsyncReadExt};
use tonic::Status;

use crate::containers;
use crate::errors::status;
use crate::pb;

/// The output kept of both streams together: the answer must fit in the
/// kubelet's 16 MiB message, with room for the rest of it.
const MAX_OUTPUT: usize = (16 << 20) - (64 << 10);

pub async fn exec_sync(
    engine: &Arc<Engine>,
    req: pb::ExecSyncRequest,
) -> Result<pb::ExecSyncResponse, Status> {
    if req.cmd.is_empty() {
        return Err(Status::invalid_argument("an exec needs a command"));
    }
    let v = containers::find(engine, &req.container_id)?;
    let spec = ExecSpec {
        cmd: Some(req.cmd.clone()),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..ExecSpec::default()
    };
    let exec_id = engine
        .exec_create(&v.record.id, spec)
        .map_err(|e| match e {
            berth_engine::Error::Conflict(m) => Status::failed_precondition(m),
            e => status(e),
        })?;
    let session = engine
        .exec_start(&exec_id, ExecStartOptions::default())
        .await
        .map_err(status)?;
    let (w, r) = tokio::io::duplex(64 * 1024);
    let pump = tokio::spawn(session.pump(tokio::io::empty(), w));
    let output = collect(r);
    let collected = if req.timeout > 0 {
        tokio::time::timeout(Duration::from_secs(req.timeout as u64), output)
            .await
            .ok()
    } else {
        Some(output.await)
    };
    let Some((stdout, stderr)) = collected else {
        kill_when_launched(engine, &exec_id).await;
        let _ = pump.await;
        engine.exec_forget(&exec_id);
        return Err(Status::deadline_exceeded(format!(
            "command {:?} timed out after {}s",
            req.cmd, req.timeout
        )));
    };
    let _ = pump.await;
    let exit_code = engine
        .exec_inspect(&exec_id)
        .ok()
        .and_then(|r| r.exit_code)
        .unwrap_or(137) as i32;
    engine.exec_forget(&exec_id);
    Ok(pb::ExecSyncResponse {
        stdout,
        stderr,
        exit_code,
    })
}

/// Kills a timed-out exec's process, waiting (briefly) for it to be
/// launched when the timeout came first.
async fn kill_when_launched(engine: &Engine, exec_id: &str) {
    for _ in 0..100 {
        match engine.exec_inspect(exec_id) {
            Ok(r) if r.exit_code.is_some() => return,
            Ok(r) if r.pid > 0 => {
                let _ = engine.exec_kill(exec_id);
                return;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(_) => return,
        }
    }
    tracing::warn!(exec = exec_id, "a timed-out exec never started: not killed");
}

/// Reads Docker's multiplexed frames (a stream byte, three zeros, a big
/// endian length) into stdout and stderr.
async fn collect(mut r: impl AsyncRead + Unpin) -> (Vec<u8>, Vec<u8>) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut header = [0u8; 8];
    let mut chunk = vec![0u8; 32 * 1024];
    while r.read_exact(&mut header).await.is_ok() {
        let mut left = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        while left > 0 {
            let n = left.min(chunk.len());
            if r.read_exact(&mut chunk[..n]).await.is_err() {
                return (out, err);
            }
            // the rest is read and dropped: the command runs on
            let room = MAX_OUTPUT.saturating_sub(out.len() + err.len());
            let to = if header[0] == 2 { &mut err } else { &mut out };
            to.extend_from_slice(&chunk[..n.min(room)]);
            left -= n;
        }
    }
    (out, err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![stream, 0, 0, 0];
        f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[tokio::test]
    async fn frames_split_into_the_two_streams() {
        let mut input = frame(1, b"hel");
        input.extend(frame(2, b"oops\n"));
        input.extend(frame(1, b"lo"));
        input.extend([1, 0, 0]); // a torn header ends the output
        let (out, err) = collect(&input[..]).await;
        assert_eq!(
            (out.as_slice(), err.as_slice()),
            (&b"hello"[..], &b"oops\n"[..])
        );
    }
}
