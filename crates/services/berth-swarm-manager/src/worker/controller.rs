//! One task on this node, driven from the state the store last gave it to
//! the state it is told to reach: prepared, started, watched until it
//! exits, stopped, removed. Each step is reported as swarmkit's agent
//! reports it.

use std::sync::Arc;
use std::time::Duration;

use berth_swarm_store::{Task, TaskState, TaskStatus};
use chrono::Utc;
use tokio::sync::watch;

use super::reporter::Reporter;
use crate::executor::{NodeContext, TaskExecutor};

/// The task as the store last gave it; `None` once it left the store.
pub type TaskFeed = watch::Receiver<Option<Task>>;

/// Docker's stop timeout when the service sets none.
const DEFAULT_GRACE: Duration = Duration::from_secs(10);
/// How long a task on swarm networks keeps serving after its removal
/// reached the nodes: a view push takes milliseconds on a quiet cluster;
/// this covers a busy one.
const DRAIN: Duration = Duration::from_millis(500);

pub struct Controller {
    pub exec: Arc<dyn TaskExecutor>,
    pub node: NodeContext,
    pub report: Reporter,
    pub feed: TaskFeed,
    /// what this agent last reported (the store may lag it)
    pub state: TaskState,
    pub container: Option<String>,
    /// whether this process prepared the task: one that took over a
    /// prepared task (after a daemon restart) prepares it again before
    /// starting, which hands the engine the task's secret and config
    /// files (kept in memory only, so gone with the old process)
    pub prepared: bool,
}

enum Next {
    /// wait for the store to say something new
    Wait,
    /// the task left the store: its container goes
    Gone,
    Again,
}

impl Controller {
    pub fn new(
        exec: Arc<dyn TaskExecutor>,
        node: NodeContext,
        report: Reporter,
        feed: TaskFeed,
    ) -> Controller {
        let (state, container) = match &*feed.borrow() {
            Some(t) => (
                t.status.state,
                Some(t.status.container_id.clone()).filter(|c| !c.is_empty()),
            ),
            None => (TaskState::New, None),
        };
        Controller {
            exec,
            node,
            report,
            feed,
            state,
            container,
            prepared: false,
        }
    }

    pub async fn run(mut self) {
        loop {
            let task = self.feed.borrow_and_update().clone();
            let next = match task {
                None => Next::Gone,
                Some(t) => self.step(&t).await,
            };
            match next {
                Next::Again => continue,
                Next::Gone => return self.remove().await,
                Next::Wait => {
                    if self.feed.changed().await.is_err() {
                        // the worker went (role change, leave): the
                        // container stays for the next one to adopt
                        return;
                    }
                }
            }
        }
    }

    async fn step(&mut self, t: &Task) -> Next {
        if self.state.is_terminal() {
            return Next::Wait;
        }
        if t.desired_state >= TaskState::Shutdown {
            self.shut_down(t).await;
            return Next::Wait;
        }
        if t.desired_state < TaskState::Running && t.restart_at.is_some() {
            // a restart delay: nothing is done before it is over, or a
            // task that fails to prepare would be replaced at once, again
            // and again
            return Next::Wait;
        }
        if self.state < TaskState::Ready {
            return self.prepare(t).await;
        }
        if t.desired_state < TaskState::Running {
            // a restart delay: prepared, not started yet
            return Next::Wait;
        }
        if self.state < TaskState::Running {
            return self.start(t).await;
        }
        self.watch(t).await
    }

    fn send(
        &mut self,
        t: &Task,
        state: TaskState,
        message: &str,
        err: &str,
        exit: Option<i64>,
        pid: i64,
    ) {
        self.state = state;
        let status = TaskStatus {
            timestamp: Some(Utc::now()),
            state,
            message: message.into(),
            err: err.into(),
            container_id: self.container.clone().unwrap_or_default(),
            pid,
            exit_code: exit,
        };
        self.report.send(&t.id, status);
    }

    async fn prepare(&mut self, t: &Task) -> Next {
        self.send(t, TaskState::Accepted, "accepted", "", None, 0);
        let _turn = self.node.busy.acquire().await;
        self.send(t, TaskState::Preparing, "preparing", "", None, 0);
        match self.exec.prepare(t, &self.node).await {
            Ok(id) => {
                self.container = Some(id);
                self.prepared = true;
                self.send(t, TaskState::Ready, "prepared", "", None, 0);
                Next::Again
            }
            Err(e) => {
                self.send(t, TaskState::Rejected, "preparing", &e, None, 0);
                Next::Wait
            }
        }
    }

    async fn start(&mut self, t: &Task) -> Next {
        let Some(c) = self.container.clone() else {
            self.state = TaskState::New;
            return Next::Again;
        };
        let _turn = self.node.busy.acquire().await;
        if !self.prepared {
            if let Err(e) = self.exec.prepare(t, &self.node).await {
                self.send(t, TaskState::Rejected, "preparing", &e, None, 0);
                return Next::Wait;
            }
            self.prepared = true;
        }
        self.send(t, TaskState::Starting, "starting", "", None, 0);
        match self.exec.start(&c).await {
            Ok(pid) => {
                self.send(t, TaskState::Running, "started", "", None, pid);
                Next::Again
            }
            Err(e) => {
                self.send(t, TaskState::Failed, "starting", &e, None, 0);
                Next::Wait
            }
        }
    }

    /// A running task: until its container exits or it is told to stop.
    async fn watch(&mut self, t: &Task) -> Next {
        let Some(c) = self.container.clone() else {
            self.send(
                t,
                TaskState::Failed,
                "started",
                "task: its container is gone",
                None,
                0,
            );
            return Next::Wait;
        };
        let exec = self.exec.clone();
        let exited = exec.wait(&c);
        tokio::select! {
            code = exited => {
                self.exited(t, code);
                Next::Wait
            }
            changed = self.feed.changed() => match changed {
                Ok(()) => Next::Again,
                // the worker went: the container keeps running
                Err(_) => Next::Wait,
            },
        }
    }

    fn exited(&mut self, t: &Task, code: Result<i64, String>) {
        match code {
            Ok(0) => self.send(t, TaskState::Complete, "finished", "", Some(0), 0),
            Ok(n) => {
                let err = format!("task: non-zero exit ({n})");
                self.send(t, TaskState::Failed, "started", &err, Some(n), 0);
            }
            Err(e) => self.send(t, TaskState::Failed, "started", &e, None, 0),
        }
    }

    async fn shut_down(&mut self, t: &Task) {
        if let Some(c) = self.container.clone() {
            if !t.networks.is_empty() && self.exec.inspect(&c).await.is_some_and(|s| s.running) {
                // the task left every node's DNS and VIP tables with the
                // change that stops it; callers already on their way still
                // find it up (dockerd waits 2s after its own unbinding)
                tokio::time::sleep(DRAIN).await;
            }
            let grace = t
                .spec
                .container_spec
                .as_ref()
                .and_then(|c| c.stop_grace_period)
                .map_or(DEFAULT_GRACE, |ns| Duration::from_nanos(ns.max(0) as u64));
            if let Err(e) = self.exec.stop(&c, Some(grace)).await {
                tracing::debug!("stopping task {}: {e}", t.id);
            }
        }
        self.send(t, TaskState::Shutdown, "shutdown", "", None, 0);
    }

    async fn remove(&mut self) {
        let Some(c) = self.container.take() else {
            return;
        };
        if let Err(e) = self.exec.stop(&c, Some(DEFAULT_GRACE)).await {
            tracing::debug!("stopping container {c}: {e}");
        }
        if let Err(e) = self.exec.remove(&c).await {
            tracing::debug!("removing container {c}: {e}");
        }
    }
}
