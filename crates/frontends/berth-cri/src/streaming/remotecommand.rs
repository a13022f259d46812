//! Exec and attach sessions (Kubernetes' remotecommand protocol) over
//! SPDY streams or WebSocket channels. The transport gives a session its
//! input (stdin, terminal sizes) and takes its output; the session runs on
//! the engine and ends with a status on the error stream.

use std::sync::Arc;
use std::time::Duration;

use berth_engine::{AttachOptions, Engine, ExecSpec, ExecStartOptions};
use berth_httpstream::spdy::{Connection, Incoming, StreamTx};
use berth_httpstream::websocket::{self, Message, WebSocket, WsTx};
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::Pending;

/// How long the client has to open every stream the session needs.
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);

/// How a session ended, for the error stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// an exec's process exited with this code
    Exit(i64),
    /// an attach ended with the container's output
    Done,
    /// the session could not run
    Failed(String),
}

/// What the error stream carries: v4 and later a JSON `metav1.Status`
/// always, older versions a message on failure only.
pub fn status_message(outcome: &Outcome, json: bool) -> Option<String> {
    let quote = |s: &str| serde_json::Value::from(s).to_string();
    match (outcome, json) {
        (Outcome::Exit(0) | Outcome::Done, true) => {
            Some(r#"{"metadata":{},"status":"Success"}"#.into())
        }
        (Outcome::Exit(0) | Outcome::Done, false) => None,
        (Outcome::Exit(code), true) => {
            let code = (*code).clamp(1, 255);
            Some(format!(
                r#"{{"metadata":{{}},"status":"Failure","message":"command terminated with non-zero exit code: exit status {code}","reason":"NonZeroExitCode","details":{{"causes":[{{"reason":"ExitCode","message":"{code}"}}]}}}}"#
            ))
        }
        (Outcome::Exit(code), false) => Some(format!(
            "command terminated with non-zero exit code: exit status {code}"
        )),
        (Outcome::Failed(msg), true) => {
            let msg =
                format!("Internal error occurred: error executing command in container: {msg}");
            Some(format!(
                r#"{{"metadata":{{}},"status":"Failure","message":{},"reason":"InternalError","details":{{"causes":[{{"message":{}}}]}},"code":500}}"#,
                quote(&msg),
                quote(&msg)
            ))
        }
        (Outcome::Failed(msg), false) => Some(msg.clone()),
    }
}

/// A session's input, from whichever transport.
#[derive(Default)]
pub struct Input {
    pub stdin: Option<mpsc::Receiver<Bytes>>,
    pub resize: Option<mpsc::Receiver<Bytes>>,
}

/// Where a session's output goes.
#[derive(Clone)]
pub enum Output {
    Spdy {
        stdout: Option<StreamTx>,
        stderr: Option<StreamTx>,
    },
    Ws(WsTx),
}

impl Output {
    async fn write(&self, stream: u8, data: &[u8]) -> bool {
        match self {
            Output::Spdy { stdout, stderr } => {
                let to = if stream == 2 { stderr } else { stdout };
                match to {
                    Some(s) => s.write(data).await,
                    None => true,
                }
            }
            Output::Ws(tx) => {
                for chunk in data.chunks(websocket::MAX_SEND - 1) {
                    let mut m = Vec::with_capacity(chunk.len() + 1);
                    m.push(stream);
                    m.extend_from_slice(chunk);
                    if !tx.binary(&m).await {
                        return false;
                    }
                }
                true
            }
        }
    }
}

/// The streams a session expects, from its request: error always, stdin,
/// stdout, stderr (not with a terminal, which has one output) and resize
/// (with a terminal, from v3).
fn expected(stdin: bool, stdout: bool, stderr: bool, tty: bool, resize: bool) -> Vec<&'static str> {
    let mut want = vec!["error"];
    for (on, name) in [
        (stdin, "stdin"),
        (stdout, "stdout"),
        (stderr && !tty, "stderr"),
        (tty && resize, "resize"),
    ] {
        if on {
            want.push(name);
        }
    }
    want
}

fn flags(p: &Pending) -> (bool, bool, bool, bool) {
    match p {
        Pending::Exec(r) => (r.stdin, r.stdout, r.stderr, r.tty),
        Pending::Attach(r) => (r.stdin, r.stdout, r.stderr, r.tty),
        Pending::PortForward(_) => (false, false, false, false),
    }
}

pub async fn over_spdy<IO>(engine: &Arc<Engine>, p: Pending, version: &str, io: IO)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (stdin, stdout, stderr, tty) = flags(&p);
    let v3 = !matches!(version, "v2.channel.k8s.io" | "channel.k8s.io");
    let json = version == "v4.channel.k8s.io";
    let want = expected(stdin, stdout, stderr, tty, v3);
    let known = ["error", "stdin", "stdout", "stderr", "resize"];
    let mut conn = Connection::serve(
        io,
        Box::new(move |h| h.get("streamtype").is_some_and(|t| known.contains(&t))),
    );
    let Some(mut streams) = gather(&mut conn, &want).await else {
        conn.close().await;
        return;
    };
    conn.stop_accepting();
    let mut take = |name: &str| {
        streams
            .iter()
            .position(|s| s.headers.get("streamtype") == Some(name))
            .map(|i| streams.swap_remove(i))
    };
    let error = take("error");
    let (i_stdin, i_stdout, i_stderr, i_resize) = (
        take("stdin"),
        take("stdout"),
        take("stderr"),
        take("resize"),
    );
    // what the client may send on any other stream is not read: dropped
    // here, its data is refused rather than left to fill a queue
    drop(streams);
    let mut input = Input::default();
    let mut keep = Vec::new();
    if let Some(s) = i_stdin {
        input.stdin = Some(s.data);
        keep.push(s.tx);
    }
    if let Some(s) = i_resize {
        input.resize = Some(s.data);
        keep.push(s.tx);
    }
    let out = Output::Spdy {
        stdout: i_stdout.map(|s| s.tx),
        stderr: i_stderr.map(|s| s.tx),
    };
    let error = error.map(|e| e.tx);
    let outcome = run(engine, p, input, out.clone(), conn.gone()).await;
    if let Output::Spdy { stdout, stderr } = &out {
        for s in [stdout, stderr].into_iter().flatten() {
            s.close().await;
        }
    }
    if let Some(e) = error {
        match status_message(&outcome, json) {
            Some(m) => e.write_and_close(m.as_bytes()).await,
            None => e.close().await,
        }
    }
    for s in keep {
        s.reset().await;
    }
    conn.close().await;
}

/// Waits until the client opened every stream in `want` (each already
/// replied to as it came); None when it went away or took too long.
async fn gather(conn: &mut Connection, want: &[&str]) -> Option<Vec<Incoming>> {
    let mut got: Vec<Incoming> = Vec::new();
    let all = async {
        while !want
            .iter()
            .all(|w| got.iter().any(|s| s.headers.get("streamtype") == Some(w)))
        {
            got.push(conn.next().await?);
        }
        Some(())
    };
    match tokio::time::timeout(STREAM_CREATION_TIMEOUT, all).await {
        Ok(Some(())) => Some(got),
        Ok(None) => None,
        Err(_) => {
            tracing::debug!(?want, "timed out waiting for the client's streams");
            None
        }
    }
}

pub async fn over_websocket<IO>(engine: &Arc<Engine>, p: Pending, protocol: &str, io: IO)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (stdin, _, _, tty) = flags(&p);
    let mut ws = WebSocket::serve(io);
    let tx = ws.tx.clone();
    let (stdin_tx, stdin_rx) = mpsc::channel::<Bytes>(16);
    let (resize_tx, resize_rx) = mpsc::channel::<Bytes>(4);
    let can_close = protocol.starts_with("v5.");
    // the demultiplexer ends when the client goes: its end is the session's
    // news of that
    let (left, gone) = tokio::sync::oneshot::channel::<()>();
    let demux = tokio::spawn(async move {
        let _left = left;
        let mut stdin_tx = Some(stdin_tx);
        while let Some(m) = ws.rx.recv().await {
            let Message::Binary(b) = m else {
                if matches!(m, Message::Close(_)) {
                    break;
                }
                continue;
            };
            match b.first() {
                Some(0) if b.len() > 1 => {
                    if let Some(s) = &stdin_tx {
                        let _ = s.send(b.slice(1..)).await;
                    }
                }
                Some(4) => {
                    let _ = resize_tx.send(b.slice(1..)).await;
                }
                Some(255) if can_close && b.get(1) == Some(&0) => stdin_tx = None,
                _ => {}
            }
        }
    });
    let input = Input {
        stdin: stdin.then_some(stdin_rx),
        resize: tty.then_some(resize_rx),
    };
    let gone = async move {
        let _ = gone.await;
    };
    let outcome = run(engine, p, input, Output::Ws(tx.clone()), gone).await;
    if let Some(m) = status_message(&outcome, true) {
        let mut msg = vec![3u8];
        msg.extend_from_slice(m.as_bytes());
        tx.binary(&msg).await;
    }
    tx.close(websocket::CLOSE_NORMAL).await;
    // the client answers our close with its own; then the socket goes
    let abort = demux.abort_handle();
    if tokio::time::timeout(Duration::from_secs(5), demux)
        .await
        .is_err()
    {
        abort.abort();
    }
}

/// Runs the session. An exec runs to its process's end whether or not its
/// client is still there (as dockerd leaves it); an attach ends when the
/// client is `gone`.
async fn run(
    engine: &Arc<Engine>,
    p: Pending,
    input: Input,
    out: Output,
    gone: impl std::future::Future<Output = ()> + Send,
) -> Outcome {
    match p {
        Pending::Exec(r) => exec(engine, r, input, out).await,
        Pending::Attach(r) => attach(engine, r, input, out, gone).await,
        Pending::PortForward(_) => Outcome::Failed("not a remote command".into()),
    }
}

async fn exec(
    engine: &Arc<Engine>,
    r: crate::pb::ExecRequest,
    input: Input,
    out: Output,
) -> Outcome {
    let spec = ExecSpec {
        cmd: Some(r.cmd.clone()),
        tty: Some(r.tty),
        attach_stdin: Some(r.stdin),
        attach_stdout: Some(r.stdout),
        attach_stderr: Some(r.stderr),
        ..ExecSpec::default()
    };
    let id = match engine.exec_create(&r.container_id, spec) {
        Ok(id) => id,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let opts = ExecStartOptions {
        raw: r.tty,
        plain_input: true,
        ..Default::default()
    };
    let session = match engine.exec_start(&id, opts).await {
        Ok(s) => s,
        Err(e) => {
            engine.exec_forget(&id);
            return Outcome::Failed(e.to_string());
        }
    };
    if let Some(sizes) = input.resize {
        let (engine, id) = (engine.clone(), id.clone());
        tokio::spawn(resize_exec(engine, id, sizes));
    }
    let (w, rd) = tokio::io::duplex(64 << 10);
    let stdin = pipe(input.stdin);
    let pump = tokio::spawn(session.pump(stdin, w));
    copy_output(rd, r.tty, &out).await;
    let _ = pump.await;
    let code = engine
        .exec_inspect(&id)
        .ok()
        .and_then(|r| r.exit_code)
        .unwrap_or(137);
    engine.exec_forget(&id);
    Outcome::Exit(code)
}

async fn attach(
    engine: &Arc<Engine>,
    r: crate::pb::AttachRequest,
    input: Input,
    out: Output,
    gone: impl std::future::Future<Output = ()> + Send,
) -> Outcome {
    let opts = AttachOptions {
        stdin: r.stdin,
        stdout: r.stdout,
        stderr: r.stderr,
        logs: false,
        stream: true,
    };
    let attaching = match engine.container_attach(&r.container_id, opts).await {
        Ok(a) => a,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let Some(pending) = attaching.stream else {
        return Outcome::Done;
    };
    let stream = match pending.await {
        Ok(s) => s,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    if let Some(sizes) = input.resize {
        let (engine, id) = (engine.clone(), r.container_id.clone());
        tokio::spawn(async move {
            for_each_size(sizes, |h, w| {
                let (engine, id) = (engine.clone(), id.clone());
                async move {
                    let _ = engine.container_resize(&id, h, w).await;
                }
            })
            .await
        });
    }
    let (sr, mut sw) = tokio::io::split(stream.stream);
    let mut stdin = input.stdin;
    let feed = async move {
        if let Some(rx) = stdin.as_mut() {
            while let Some(b) = rx.recv().await {
                if sw.write_all(&b).await.is_err() {
                    break;
                }
            }
            // the container's stdin closes here when it is StdinOnce
            let _ = sw.shutdown().await;
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        () = copy_output(sr, stream.tty, &out) => {}
        () = feed => {}
        () = gone => {}
    }
    Outcome::Done
}

/// The client's stdin as a reader for the engine; none attached reads as
/// empty.
fn pipe(rx: Option<mpsc::Receiver<Bytes>>) -> tokio::io::DuplexStream {
    let (mut w, r) = tokio::io::duplex(64 << 10);
    if let Some(mut rx) = rx {
        tokio::spawn(async move {
            while let Some(b) = rx.recv().await {
                if w.write_all(&b).await.is_err() {
                    return;
                }
            }
            let _ = w.shutdown().await;
        });
    }
    r
}

/// Copies the engine's output to the client: raw on a terminal, else
/// Docker's multiplexed frames split onto stdout and stderr.
async fn copy_output(mut r: impl AsyncRead + Unpin, raw: bool, out: &Output) {
    let mut buf = vec![0u8; 32 << 10];
    if raw {
        while let Ok(n) = r.read(&mut buf).await {
            if n == 0 || !out.write(1, &buf[..n]).await {
                return;
            }
        }
        return;
    }
    let mut header = [0u8; 8];
    let mut alive = true;
    while r.read_exact(&mut header).await.is_ok() {
        let mut left = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        while left > 0 {
            let n = left.min(buf.len());
            if r.read_exact(&mut buf[..n]).await.is_err() {
                return;
            }
            // a client that went away: the rest is read and dropped
            if alive {
                alive = out.write(header[0], &buf[..n]).await;
            }
            left -= n;
        }
    }
}

/// A terminal size event: Go's encoding of `{Width, Height}`.
#[derive(serde::Deserialize, Debug, PartialEq, Eq)]
struct Size {
    #[serde(alias = "width", rename = "Width")]
    width: u16,
    #[serde(alias = "height", rename = "Height")]
    height: u16,
}

/// Applies each size the client sends: JSON objects, split across
/// messages or several in one.
async fn for_each_size<F, Fut>(mut rx: mpsc::Receiver<Bytes>, apply: F)
where
    F: Fn(u16, u16) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut buf = Vec::new();
    while let Some(b) = rx.recv().await {
        buf.extend_from_slice(&b);
        let (sizes, used) = parse_sizes(&buf);
        buf.drain(..used);
        for s in sizes {
            apply(s.height, s.width).await;
        }
        if buf.len() > 4096 {
            buf.clear();
        }
    }
}

/// The whole size objects at the front of `buf`, and the bytes they take.
fn parse_sizes(buf: &[u8]) -> (Vec<Size>, usize) {
    let mut it = serde_json::Deserializer::from_slice(buf).into_iter::<Size>();
    let mut sizes = Vec::new();
    let mut used = 0;
    loop {
        match it.next() {
            Some(Ok(s)) => {
                sizes.push(s);
                used = it.byte_offset();
            }
            Some(Err(e)) if e.is_eof() => break,
            // garbage: skip what was read
            Some(Err(_)) => return (sizes, buf.len()),
            None => {
                used = buf.len();
                break;
            }
        }
    }
    (sizes, used)
}

/// Resizes an exec's terminal, waiting for the process to be launched
/// (the client sends its size before we start it).
async fn resize_exec(engine: Arc<Engine>, id: String, sizes: mpsc::Receiver<Bytes>) {
    for_each_size(sizes, |h, w| {
        let (engine, id) = (engine.clone(), id.clone());
        async move {
            for _ in 0..250 {
                match engine.exec_resize(&id, h, w).await {
                    Err(berth_engine::Error::Conflict(_)) => {
                        let ended = engine
                            .exec_inspect(&id)
                            .map(|r| r.exit_code.is_some())
                            .unwrap_or(true);
                        if ended {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    _ => return,
                }
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_is_go_s_json() {
        assert_eq!(
            status_message(&Outcome::Exit(0), true).unwrap(),
            r#"{"metadata":{},"status":"Success"}"#
        );
        assert_eq!(
            status_message(&Outcome::Exit(3), true).unwrap(),
            r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: exit status 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#
        );
        let failed = status_message(&Outcome::Failed("no \"sh\"".into()), true).unwrap();
        let v: serde_json::Value = serde_json::from_str(&failed).unwrap();
        assert_eq!(v["reason"], "InternalError");
        assert_eq!(v["code"], 500);
        assert!(v["message"].as_str().unwrap().ends_with("no \"sh\""));
        assert_eq!(status_message(&Outcome::Done, false), None);
        assert_eq!(
            status_message(&Outcome::Exit(2), false).unwrap(),
            "command terminated with non-zero exit code: exit status 2"
        );
    }

    #[test]
    fn the_expected_streams_follow_the_request() {
        assert_eq!(
            expected(false, true, true, false, true),
            ["error", "stdout", "stderr"]
        );
        assert_eq!(
            expected(true, true, true, true, true),
            ["error", "stdin", "stdout", "resize"]
        );
        assert_eq!(
            expected(true, true, false, true, false),
            ["error", "stdin", "stdout"]
        );
    }

    #[test]
    fn sizes_parse_across_chunks() {
        let input = br#"{"Width":80,"Height":24}{"width":100,"height":30}{"Wid"#;
        let (s, used) = parse_sizes(input);
        assert_eq!(
            s,
            [
                Size {
                    width: 80,
                    height: 24
                },
                Size {
                    width: 100,
                    height: 30
                }
            ]
        );
        assert_eq!(&input[used..], br#"{"Wid"#, "a torn object waits");
        let (s, used) = parse_sizes(b"\n");
        assert!(s.is_empty());
        assert_eq!(used, 1);
        let (_, used) = parse_sizes(b"garbage");
        assert_eq!(used, 7);
    }
}
