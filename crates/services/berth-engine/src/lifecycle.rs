//! The part of a container's lifecycle that talks to the runtime port:
//! creating and starting it (attaches that arrived before the start first),
//! stopping it (signal, grace period, SIGKILL), clearing what an earlier run
//! left, and how the runtime's refusals read to clients. Records, events
//! and networks stay with `Engine`; this is apart so that unit tests drive
//! it with berth-core's fake runtime.

use std::future::Future;
use std::time::Duration;

use berth_core::runtime::{CreateContainer, Runtime, RuntimeError, RuntimeState};

use crate::containers::{AttachStream, PendingAttach};
use crate::{Error, Result};

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// A signal the runtime refused is Docker's conflict; one it could not be
/// asked for is internal.
pub(crate) fn kill_error(id: &str, err: RuntimeError) -> Error {
    match err {
        RuntimeError::Refused(m) => Error::conflict(format!("Cannot kill container: {id}: {m}")),
        RuntimeError::Failed(e) => Error::Internal(e),
    }
}

/// Creates the container in the runtime and starts it. Attaches that
/// arrived before the start are connected in between, so that they see
/// every byte (this is what `docker run` does: attach, wait, start).
/// Returns the pid; the error is the message recorded as the start's
/// failure (Docker's wording).
pub(crate) async fn create_and_start(
    rt: &dyn Runtime,
    c: CreateContainer<'_>,
    pending: impl FnOnce() -> Vec<PendingAttach>,
    tty: bool,
) -> std::result::Result<Option<i32>, String> {
    let id = c.id;
    if let Err(err) = rt.create(c).await {
        return Err(format!(
            "failed to create task for container: {:#}",
            err.into_anyhow()
        ));
    }
    crate::crash_point("start-after-shim-spawn");
    // taken once the container exists: an attach that came during the
    // create is connected too
    for p in pending() {
        let res = rt
            .attach(id, p.io)
            .await
            .map(|stream| AttachStream { stream, tty })
            .map_err(|err| Error::Internal(err.into_anyhow()));
        let _ = p.tx.send(res);
    }
    rt.start(id)
        .await
        .map_err(|err| format!("failed to start container: {:#}", err.into_anyhow()))
}

/// Docker's stop: `sig` (unless the timeout is 0), up to `timeout` seconds
/// for the exit (without limit when negative), then SIGKILL and up to 30 s
/// more. `signal` sends one,
/// `stopped_within` waits for the exit.
pub(crate) async fn stop_process<S, SF, W, WF>(
    signal: S,
    stopped_within: W,
    id: &str,
    sig: i32,
    timeout: i64,
) -> Result<()>
where
    S: Fn(i32) -> SF,
    SF: Future<Output = Result<()>>,
    W: Fn(Duration) -> WF,
    WF: Future<Output = bool>,
{
    if timeout != 0 {
        let _ = signal(sig).await;
    }
    if timeout < 0 {
        // a negative timeout waits as long as it takes, as dockerd does
        while !stopped_within(Duration::from_secs(3600)).await {}
        return Ok(());
    }
    let graceful = stopped_within(Duration::from_secs(timeout as u64)).await;
    if !graceful {
        let _ = signal(libc::SIGKILL).await;
        if !stopped_within(Duration::from_secs(30)).await {
            return Err(Error::Internal(anyhow::anyhow!(
                "container {} did not stop after SIGKILL",
                short(id)
            )));
        }
    }
    Ok(())
}

/// Before a start: removes what an earlier run left in the runtime (its
/// state makes the next create fail with "container already exists"). A
/// runtime that still answers owns that state: an exited container is
/// given time (100 polls) to go away by itself, and one still alive is
/// left alone (a conflict).
pub(crate) async fn clear_stale(rt: &dyn Runtime, id: &str, poll: Duration) -> Result<()> {
    for _ in 0..100 {
        match rt.state(id).await {
            RuntimeState::Gone => break,
            RuntimeState::Exited(_) => tokio::time::sleep(poll).await,
            RuntimeState::Alive { .. } => {
                return Err(Error::conflict(format!(
                    "container {} is still running in its shim",
                    short(id)
                )));
            }
        }
    }
    rt.delete(id).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use berth_core::runtime::fake::FakeRuntime;
    use berth_core::runtime::{AttachIo, ExitStatus};
    use tokio::sync::oneshot;

    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn spec() -> oci_spec::runtime::Spec {
        oci_spec::runtime::Spec::default()
    }

    fn create(spec: &oci_spec::runtime::Spec) -> CreateContainer<'_> {
        CreateContainer {
            id: ID,
            bundle: "/run/berth/containers/x".into(),
            spec,
            log: serde_json::Value::Null,
            stdin: false,
        }
    }

    async fn started(rt: &FakeRuntime) {
        let spec = spec();
        create_and_start(rt, create(&spec), Vec::new, false)
            .await
            .expect("start");
    }

    /// `Engine::stop_inner`'s use of `stop_process`, over the runtime
    /// alone: signals through the port, exits seen through `wait`.
    async fn stop(rt: &FakeRuntime, sig: i32, timeout: i64) -> Result<()> {
        stop_process(
            |s| async move { rt.kill(ID, s).await.map_err(|e| kill_error(ID, e)) },
            |d| async move { tokio::time::timeout(d, rt.wait(ID)).await.is_ok() },
            ID,
            sig,
            timeout,
        )
        .await
    }

    fn exit_code(rt: &FakeRuntime) -> Option<i32> {
        rt.recorded_exit(ID).map(|x: ExitStatus| x.code)
    }

    #[tokio::test]
    async fn create_and_start_leaves_it_running() {
        let rt = FakeRuntime::new();
        let spec = spec();
        let pid = create_and_start(&rt, create(&spec), Vec::new, false)
            .await
            .expect("start");
        assert_eq!(
            rt.state(ID).await,
            RuntimeState::Alive { pid, started: true }
        );
        assert_eq!(rt.calls(), [format!("create {ID}"), format!("start {ID}")]);
    }

    #[tokio::test]
    async fn early_attaches_connect_between_create_and_start() {
        let rt = FakeRuntime::new();
        let spec = spec();
        let (tx, rx) = oneshot::channel();
        let pending = vec![PendingAttach {
            io: AttachIo {
                stdout: true,
                ..Default::default()
            },
            tx,
        }];
        create_and_start(&rt, create(&spec), || pending, true)
            .await
            .expect("start");
        let attached = rx.await.expect("answered").expect("attached");
        assert!(attached.tty);
        assert_eq!(
            rt.calls(),
            [
                format!("create {ID}"),
                format!("attach {ID}"),
                format!("start {ID}")
            ]
        );
    }

    #[tokio::test]
    async fn a_refused_create_or_start_reads_as_docker() {
        let rt = FakeRuntime::new();
        let spec = spec();
        rt.refuse_next("create", "no such image");
        let err = create_and_start(&rt, create(&spec), Vec::new, false).await;
        assert_eq!(
            err,
            Err("failed to create task for container: no such image".into())
        );
        rt.refuse_next("start", "failed to initialize logging driver");
        let err = create_and_start(&rt, create(&spec), Vec::new, false).await;
        assert_eq!(
            err,
            Err("failed to start container: failed to initialize logging driver".into())
        );
        assert!(matches!(
            rt.state(ID).await,
            RuntimeState::Alive { started: false, .. }
        ));
    }

    #[tokio::test]
    async fn a_failed_attach_does_not_stop_the_start() {
        let rt = FakeRuntime::new();
        let spec = spec();
        rt.refuse_next("attach", "attach refused");
        let (tx, rx) = oneshot::channel();
        let pending = vec![PendingAttach {
            io: AttachIo::default(),
            tx,
        }];
        create_and_start(&rt, create(&spec), || pending, false)
            .await
            .expect("start");
        let err = rx.await.expect("answered").err().expect("an error");
        assert_eq!(err.to_string(), "attach refused");
    }

    #[tokio::test]
    async fn stop_is_graceful_when_the_signal_ends_it() {
        let rt = FakeRuntime::new();
        started(&rt).await;
        stop(&rt, libc::SIGTERM, 10).await.expect("stop");
        assert_eq!(exit_code(&rt), Some(143));
        assert!(!rt.calls().contains(&format!("kill {ID} 9")));
    }

    #[tokio::test]
    async fn stop_kills_after_the_timeout() {
        let rt = FakeRuntime::new();
        started(&rt).await;
        rt.ignore_signal(ID, libc::SIGTERM);
        let t = std::time::Instant::now();
        stop(&rt, libc::SIGTERM, 1).await.expect("stop");
        assert!(t.elapsed() >= Duration::from_secs(1));
        assert_eq!(exit_code(&rt), Some(137));
        let kills: Vec<String> = rt
            .calls()
            .into_iter()
            .filter(|c| c.starts_with("kill"))
            .collect();
        assert_eq!(kills, [format!("kill {ID} 15"), format!("kill {ID} 9")]);
    }

    #[tokio::test]
    async fn stop_with_timeout_zero_only_kills() {
        let rt = FakeRuntime::new();
        started(&rt).await;
        stop(&rt, libc::SIGQUIT, 0).await.expect("stop");
        assert_eq!(exit_code(&rt), Some(137));
        assert!(!rt.calls().contains(&format!("kill {ID} 3")));
    }

    #[tokio::test]
    async fn stop_uses_the_given_signal() {
        let rt = FakeRuntime::new();
        started(&rt).await;
        stop(&rt, libc::SIGINT, 5).await.expect("stop");
        assert_eq!(exit_code(&rt), Some(128 + libc::SIGINT));
    }

    #[tokio::test]
    async fn killing_an_exited_container_is_a_conflict() {
        let rt = FakeRuntime::new();
        started(&rt).await;
        rt.exit(ID, 3);
        assert_eq!(rt.wait(ID).await.map(|x| x.code), Some(3));
        let err = rt.kill(ID, libc::SIGKILL).await.expect_err("refused");
        let err = kill_error(ID, err);
        assert!(matches!(err, Error::Conflict(_)));
        assert_eq!(
            err.to_string(),
            format!("Cannot kill container: {ID}: container {ID} is not running")
        );
        // a runtime that cannot be asked is the daemon's problem
        let err = kill_error(ID, rt.kill("gone", 9).await.expect_err("failed"));
        assert!(matches!(err, Error::Internal(_)));
    }

    #[tokio::test]
    async fn clearing_leaves_a_live_container_alone() {
        let rt = FakeRuntime::new();
        started(&rt).await;
        let err = clear_stale(&rt, ID, Duration::from_millis(1))
            .await
            .expect_err("conflict");
        assert_eq!(
            err.to_string(),
            "container 0123456789ab is still running in its shim"
        );
        assert!(!rt.calls().contains(&format!("delete {ID}")));
    }

    #[tokio::test]
    async fn clearing_waits_for_an_exited_container_to_go() {
        let rt = Arc::new(FakeRuntime::new());
        started(&rt).await;
        rt.exit(ID, 0);
        let gone = {
            let rt = rt.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                rt.vanish(ID);
            })
        };
        let t = std::time::Instant::now();
        clear_stale(rt.as_ref(), ID, Duration::from_millis(10))
            .await
            .expect("cleared");
        assert!(t.elapsed() >= Duration::from_millis(100));
        gone.await.expect("joined");
        let calls = rt.calls();
        assert_eq!(calls.last(), Some(&format!("delete {ID}")));
    }

    #[tokio::test]
    async fn a_cleared_container_can_be_created_again() {
        let rt = FakeRuntime::new();
        started(&rt).await;
        stop(&rt, libc::SIGTERM, 10).await.expect("stop");
        let spec = spec();
        // an exited container's state is still there: the create fails
        // until it is cleared
        rt.vanish(ID);
        assert!(rt.create(create(&spec)).await.is_err());
        clear_stale(&rt, ID, Duration::from_millis(1))
            .await
            .expect("cleared");
        create_and_start(&rt, create(&spec), Vec::new, false)
            .await
            .expect("started again");
    }
}
