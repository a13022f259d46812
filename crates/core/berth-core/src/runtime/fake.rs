//! An in-memory runtime for unit tests: containers go created → running →
//! exited; a signal ends a running container with 128 + signal unless the
//! test made it ignore that signal (SIGKILL is never ignored); `exit` ends
//! one as its own process would. Every call is logged for assertions.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use super::{
    AttachIo, BoxFuture, CreateContainer, ExecProcess, ExecStarted, ExitStatus, Runtime,
    RuntimeError, RuntimeResult, RuntimeState, RuntimeStream, STREAM_EXIT, STREAM_STDOUT,
    frame_header,
};

const SIGKILL: i32 = 9;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Created,
    Running,
    Exited(ExitStatus),
}

struct Container {
    pid: i32,
    phase: watch::Sender<Phase>,
    ignored: HashSet<i32>,
    /// left by a run: `delete` removes it, `create` refuses while it is there
    has_state: bool,
    /// nothing answers for it any more (its state may remain)
    gone: bool,
}

#[derive(Default)]
struct Inner {
    containers: HashMap<String, Container>,
    next_pid: i32,
    calls: Vec<String>,
    /// exec results by the exec's first argument: (exit code, output)
    exec_results: HashMap<String, (i32, String)>,
    /// the next call of an operation ("create", "start", ...) is refused
    refusals: HashMap<&'static str, String>,
}

/// The fake runtime. See the module documentation.
#[derive(Default)]
pub struct FakeRuntime {
    inner: Mutex<Inner>,
}

impl FakeRuntime {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The calls made so far, as "op id [arg]".
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// Makes the running container `id` survive `signal`.
    pub fn ignore_signal(&self, id: &str, signal: i32) {
        if let Some(c) = self.lock().containers.get_mut(id) {
            c.ignored.insert(signal);
        }
    }

    /// The container's process exits by itself with `code`.
    pub fn exit(&self, id: &str, code: i32) {
        if let Some(c) = self.lock().containers.get(id) {
            end(c, code);
        }
    }

    /// What answers for the container goes away (as a shim killed with
    /// it); what it left in the runtime stays until `delete`.
    pub fn vanish(&self, id: &str) {
        if let Some(c) = self.lock().containers.get_mut(id) {
            c.gone = true;
        }
    }

    /// What an exec of `program` prints and exits with.
    pub fn set_exec_result(&self, program: &str, code: i32, output: &str) {
        self.lock()
            .exec_results
            .insert(program.to_string(), (code, output.to_string()));
    }

    /// Refuses the next call of `op` ("create", "start", "kill", "attach",
    /// "exec") with `message`.
    pub fn refuse_next(&self, op: &'static str, message: &str) {
        self.lock().refusals.insert(op, message.to_string());
    }

    /// Logs the call and answers a refusal the test asked for.
    fn call(&self, op: &'static str, call: String) -> RuntimeResult<()> {
        let mut inner = self.lock();
        inner.calls.push(call);
        match inner.refusals.remove(op) {
            Some(m) => Err(RuntimeError::Refused(m)),
            None => Ok(()),
        }
    }

    fn log(&self, call: String) {
        self.lock().calls.push(call);
    }

    fn phase(&self, id: &str) -> Option<Phase> {
        self.lock()
            .containers
            .get(id)
            .filter(|c| !c.gone)
            .map(|c| c.phase.borrow().clone())
    }

    fn running(&self, id: &str) -> RuntimeResult<()> {
        match self.phase(id) {
            Some(Phase::Running) => Ok(()),
            Some(_) => Err(RuntimeError::Refused(format!(
                "container {id} is not running"
            ))),
            None => Err(not_found(id)),
        }
    }
}

fn not_found(id: &str) -> RuntimeError {
    RuntimeError::Failed(anyhow::anyhow!("connecting to container {id}: not found"))
}

fn end(c: &Container, code: i32) {
    c.phase.send_if_modified(|p| {
        if matches!(p, Phase::Exited(_)) {
            return false;
        }
        *p = Phase::Exited(ExitStatus {
            code,
            finished_at: "2024-01-01T00:00:00Z".into(),
            oom_killed: false,
            never_started: false,
        });
        true
    });
}

/// A stream whose other end has already written `frames` and closed.
async fn stream_of(frames: Vec<u8>) -> RuntimeStream {
    let (ours, mut theirs) = tokio::io::duplex(frames.len().max(64));
    let _ = theirs.write_all(&frames).await;
    drop(theirs);
    Box::new(ours)
}

impl Runtime for FakeRuntime {
    fn create<'a>(&'a self, c: CreateContainer<'a>) -> BoxFuture<'a, RuntimeResult<i32>> {
        Box::pin(async move {
            self.call("create", format!("create {}", c.id))?;
            let mut inner = self.lock();
            if inner.containers.get(c.id).is_some_and(|x| x.has_state) {
                return Err(RuntimeError::Failed(anyhow::anyhow!(
                    "container already exists"
                )));
            }
            inner.next_pid += 1;
            let pid = 1000 + inner.next_pid;
            inner.containers.insert(
                c.id.to_string(),
                Container {
                    pid,
                    phase: watch::channel(Phase::Created).0,
                    ignored: HashSet::new(),
                    has_state: true,
                    gone: false,
                },
            );
            Ok(pid)
        })
    }

    fn start<'a>(&'a self, id: &'a str) -> BoxFuture<'a, RuntimeResult<Option<i32>>> {
        Box::pin(async move {
            self.call("start", format!("start {id}"))?;
            let inner = self.lock();
            let c = inner
                .containers
                .get(id)
                .filter(|c| !c.gone)
                .ok_or_else(|| not_found(id))?;
            let started = c.phase.send_if_modified(|p| {
                let created = *p == Phase::Created;
                if created {
                    *p = Phase::Running;
                }
                created
            });
            if !started {
                return Err(RuntimeError::Refused("container already started".into()));
            }
            Ok(Some(c.pid))
        })
    }

    fn kill<'a>(&'a self, id: &'a str, signal: i32) -> BoxFuture<'a, RuntimeResult<()>> {
        Box::pin(async move {
            self.call("kill", format!("kill {id} {signal}"))?;
            self.running(id)?;
            let inner = self.lock();
            if let Some(c) = inner.containers.get(id)
                && (signal == SIGKILL || !c.ignored.contains(&signal))
            {
                end(c, 128 + signal);
            }
            Ok(())
        })
    }

    fn state<'a>(&'a self, id: &'a str) -> BoxFuture<'a, RuntimeState> {
        Box::pin(async move {
            let inner = self.lock();
            let Some(c) = inner.containers.get(id).filter(|c| !c.gone) else {
                return RuntimeState::Gone;
            };
            match &*c.phase.borrow() {
                Phase::Created => RuntimeState::Alive {
                    pid: Some(c.pid),
                    started: false,
                },
                Phase::Running => RuntimeState::Alive {
                    pid: Some(c.pid),
                    started: true,
                },
                Phase::Exited(x) => RuntimeState::Exited(x.clone()),
            }
        })
    }

    fn wait<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Option<ExitStatus>> {
        Box::pin(async move {
            let mut rx = self.lock().containers.get(id)?.phase.subscribe();
            let phase = rx
                .wait_for(|p| matches!(p, Phase::Exited(_)))
                .await
                .ok()?
                .clone();
            match phase {
                Phase::Exited(x) => Some(x),
                _ => None,
            }
        })
    }

    fn recorded_exit(&self, id: &str) -> Option<ExitStatus> {
        // the record outlives what answered for the container
        let phase = self.lock().containers.get(id)?.phase.borrow().clone();
        match phase {
            Phase::Exited(x) => Some(x),
            _ => None,
        }
    }

    fn attach<'a>(
        &'a self,
        id: &'a str,
        _io: AttachIo,
    ) -> BoxFuture<'a, RuntimeResult<RuntimeStream>> {
        Box::pin(async move {
            self.call("attach", format!("attach {id}"))?;
            if self.phase(id).is_none() {
                return Err(not_found(id));
            }
            Ok(stream_of(Vec::new()).await)
        })
    }

    fn exec<'a>(
        &'a self,
        id: &'a str,
        process: ExecProcess,
    ) -> BoxFuture<'a, RuntimeResult<ExecStarted>> {
        Box::pin(async move {
            self.call("exec", format!("exec {id} {}", process.args.join(" ")))?;
            self.running(id)?;
            let program = process.args.first().cloned().unwrap_or_default();
            let (code, output) = self
                .lock()
                .exec_results
                .get(&program)
                .cloned()
                .unwrap_or((0, String::new()));
            let mut frames = Vec::new();
            if !output.is_empty() {
                frames.extend_from_slice(&frame_header(STREAM_STDOUT, output.len()));
                frames.extend_from_slice(output.as_bytes());
            }
            let code = code.to_string();
            frames.extend_from_slice(&frame_header(STREAM_EXIT, code.len()));
            frames.extend_from_slice(code.as_bytes());
            Ok(ExecStarted {
                pid: Some(4242),
                stream: stream_of(frames).await,
            })
        })
    }

    fn resize<'a>(
        &'a self,
        id: &'a str,
        height: u16,
        width: u16,
        exec_pid: Option<i32>,
    ) -> BoxFuture<'a, RuntimeResult<()>> {
        Box::pin(async move {
            self.log(format!("resize {id} {height}x{width} {exec_pid:?}"));
            self.running(id)
        })
    }

    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.log(format!("delete {id}"));
            if let Some(c) = self.lock().containers.get_mut(id) {
                c.has_state = false;
            }
        })
    }

    fn forget(&self, id: &str) {
        self.log(format!("forget {id}"));
        self.lock().containers.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> oci_spec::runtime::Spec {
        oci_spec::runtime::Spec::default()
    }

    async fn running(rt: &FakeRuntime, id: &str) {
        let spec = spec();
        rt.create(CreateContainer {
            id,
            bundle: "/b".into(),
            spec: &spec,
            log: serde_json::Value::Null,
            stdin: false,
        })
        .await
        .expect("create");
        rt.start(id).await.expect("start");
    }

    #[tokio::test]
    async fn created_running_exited() {
        let rt = FakeRuntime::new();
        assert_eq!(rt.state("c").await, RuntimeState::Gone);
        running(&rt, "c").await;
        assert!(matches!(
            rt.state("c").await,
            RuntimeState::Alive { started: true, .. }
        ));
        assert!(matches!(rt.start("c").await, Err(RuntimeError::Refused(_))));
        rt.kill("c", 15).await.expect("kill");
        assert_eq!(rt.wait("c").await.map(|x| x.code), Some(143));
        assert!(matches!(
            rt.kill("c", 9).await,
            Err(RuntimeError::Refused(_))
        ));
    }

    #[tokio::test]
    async fn ignored_signals_but_not_sigkill() {
        let rt = FakeRuntime::new();
        running(&rt, "c").await;
        rt.ignore_signal("c", 15);
        rt.ignore_signal("c", 9);
        rt.kill("c", 15).await.expect("kill");
        assert!(rt.recorded_exit("c").is_none());
        rt.kill("c", 9).await.expect("kill");
        assert_eq!(rt.recorded_exit("c").map(|x| x.code), Some(137));
    }
}
