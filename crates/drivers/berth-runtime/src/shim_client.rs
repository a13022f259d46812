//! The daemon's side of the shim protocol (see berth_shim::protocol).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use berth_shim::protocol::{READY_OK, Request, Response};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

async fn send(sock: &Path, req: &Request) -> Result<BufReader<UnixStream>> {
    let mut s = UnixStream::connect(sock)
        .await
        .with_context(|| format!("connecting to shim {}", sock.display()))?;
    let mut line = serde_json::to_vec(req)?;
    line.push(b'\n');
    s.write_all(&line).await?;
    Ok(BufReader::new(s))
}

async fn read_response(r: &mut BufReader<UnixStream>) -> Result<Response> {
    let mut line = String::new();
    if r.read_line(&mut line).await? == 0 {
        bail!("shim closed the connection");
    }
    Ok(serde_json::from_str(&line)?)
}

/// Sends one request and returns the shim's answer.
pub async fn request(sock: &Path, req: &Request) -> Result<Response> {
    let mut r = send(sock, req).await?;
    read_response(&mut r).await
}

/// Opens an attach stream. The returned reader may already hold buffered
/// output that followed the answer line.
pub async fn attach(sock: &Path, req: &Request) -> Result<BufReader<UnixStream>> {
    let mut r = send(sock, req).await?;
    let resp = read_response(&mut r).await?;
    if !resp.ok {
        bail!("{}", resp.error.unwrap_or_else(|| "attach refused".into()));
    }
    Ok(r)
}

/// Like `attach`, also returning the shim's answer (an exec's pid).
pub async fn attach_with_response(
    sock: &Path,
    req: &Request,
) -> Result<(Response, BufReader<UnixStream>)> {
    let mut r = send(sock, req).await?;
    let resp = read_response(&mut r).await?;
    if !resp.ok {
        bail!("{}", resp.error.clone().unwrap_or_else(|| "refused".into()));
    }
    Ok((resp, r))
}

/// Starts `berth shim` and waits until it has created the container.
/// Returns the container's init pid.
pub async fn spawn(binary: &Path, args: &berth_shim::ShimArgs) -> Result<i32> {
    let shim_log = std::fs::File::create(args.state_dir.join("shim.log"))?;
    let mut cmd = tokio::process::Command::new(binary);
    cmd.arg("shim")
        .arg("--id")
        .arg(&args.id)
        .arg("--bundle")
        .arg(&args.bundle)
        .arg("--state-dir")
        .arg(&args.state_dir)
        .arg("--socket")
        .arg(&args.socket)
        .arg("--log-config")
        .arg(serde_json::to_string(&args.log).context("encoding the log configuration")?);
    if args.stdin {
        cmd.arg("--stdin");
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(shim_log));
    // SAFETY: setsid is async-signal-safe; it detaches the shim from the
    // daemon's session so that signals to the daemon's group spare it
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("starting shim")?;
    // the daemon gone while the shim creates the container
    berth_core::crash_point("start-during-shim-create");
    let stdout = child.stdout.take().context("shim stdout")?;
    let mut line = String::new();
    let read = tokio::time::timeout(
        Duration::from_secs(60),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await;
    match read {
        Err(_) => {
            let _ = child.start_kill();
            bail!("shim did not report within 60s");
        }
        Ok(Err(e)) => return Err(e).context("reading shim status"),
        Ok(Ok(_)) => {}
    }
    // the shim outlives this handle; tokio reaps it when it exits
    drop(child);
    let line = line.trim();
    if let Some(pid) = line.strip_prefix(READY_OK) {
        return pid.trim().parse().context("shim reported a bad pid");
    }
    let msg = line.strip_prefix("err ").unwrap_or(line);
    if msg.is_empty() {
        let log = std::fs::read_to_string(args.state_dir.join("shim.log")).unwrap_or_default();
        bail!("shim exited without creating the container: {}", log.trim());
    }
    bail!("{msg}")
}
