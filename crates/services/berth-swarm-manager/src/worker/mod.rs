//! The agent's task side, on every node: it follows its assignments from
//! a manager and keeps one controller per task. Controllers live in the
//! worker's `JoinSet`, so a worker that stops (role change, leave,
//! shutdown) stops them with it, and the containers they ran keep
//! running for the next worker to adopt.

mod controller;
pub(crate) mod logs;
pub mod reporter;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use berth_swarm_rpc::pb::Empty;
use berth_swarm_rpc::pb::dispatcher_client::DispatcherClient;
use berth_swarm_store::Task;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::active::Active;
use crate::executor::{AssignmentSet, Dependencies, NodeContext, TaskExecutor, TaskSlots};
use controller::Controller;
use reporter::Reporter;

struct Worker {
    node: Arc<Active>,
    exec: Arc<dyn TaskExecutor>,
    report: Reporter,
    feeds: HashMap<String, watch::Sender<Option<Task>>>,
    controllers: JoinSet<()>,
    /// the assignment set, for the log publisher
    assigned: watch::Sender<Arc<Vec<Task>>>,
    /// orphans are swept once, at the first assignment set
    swept: bool,
    deps: Dependencies,
    busy: TaskSlots,
}

pub fn spawn_worker(node: Arc<Active>, exec: Arc<dyn TaskExecutor>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let (report, sender) = Reporter::spawn(node.clone());
        let mut w = Worker {
            node,
            exec,
            report,
            feeds: HashMap::new(),
            controllers: JoinSet::new(),
            assigned: watch::Sender::new(Arc::new(Vec::new())),
            swept: false,
            deps: Dependencies::default(),
            busy: TaskSlots::default(),
        };
        w.follow().await;
        sender.abort();
    })
}

impl Worker {
    /// Follows the assignments of one manager after another, for ever.
    async fn follow(&mut self) {
        loop {
            for addr in self.node.local().managers {
                if let Err(e) = self.session(&addr).await {
                    tracing::debug!("assignments from {addr}: {e}");
                }
                // the secrets stay (in memory) across sessions, as the
                // swarmkit agent keeps them: a task prepared while the node
                // reconnects must still find its own; the next session's
                // full set replaces them
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    async fn session(&mut self, addr: &str) -> Result<(), String> {
        let channel = self.node.peers.channel(addr)?;
        // the same manager serves this node's log subscriptions, for as
        // long as it serves its assignments
        let publisher = tokio::spawn(logs::serve(
            self.node.clone(),
            self.exec.clone(),
            addr.to_string(),
            self.assigned.subscribe(),
        ));
        let _stop_publisher = AbortOnDrop(publisher);
        let mut stream = DispatcherClient::new(channel)
            .max_decoding_message_size(berth_swarm_rpc::MAX_MESSAGE_BYTES)
            .assignments(Empty {})
            .await
            .map_err(|s| s.message().to_string())?
            .into_inner();
        // the manager this session left may have told the leader the node
        // is gone: a heartbeat now says otherwise
        self.node.beat_now.notify_one();
        // and once more a moment later, past a late word of the old
        // session's end that a follower forwarded
        let node = self.node.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            node.beat_now.notify_one();
        });
        while let Some(msg) = stream
            .message()
            .await
            .map_err(|s| s.message().to_string())?
        {
            let set = assignment_set(&msg.json)?;
            // the files first: a controller fed next may start at once
            self.deps.replace(set.secrets, set.configs);
            let me = self.node.identity.node_id.clone();
            self.exec.networks(&me, set.networks, set.data_port).await;
            self.assign(set.tasks).await;
        }
        Ok(())
    }

    async fn assign(&mut self, tasks: Vec<Task>) {
        self.assigned.send_replace(Arc::new(tasks.clone()));
        let ids: HashSet<String> = tasks.iter().map(|t| t.id.clone()).collect();
        if !self.swept {
            self.swept = true;
            self.sweep_orphans(&ids).await;
        }
        for t in tasks {
            match self.feeds.get(&t.id) {
                Some(feed) => {
                    feed.send_if_modified(|old| {
                        let changed = old.as_ref() != Some(&t);
                        *old = Some(t.clone());
                        changed
                    });
                }
                None => self.start_controller(t),
            }
        }
        let gone: Vec<String> = self
            .feeds
            .keys()
            .filter(|id| !ids.contains(*id))
            .cloned()
            .collect();
        for id in gone {
            if let Some(feed) = self.feeds.remove(&id) {
                let _ = feed.send(None);
            }
        }
        // reap controllers that ended
        while self.controllers.try_join_next().is_some() {}
    }

    fn start_controller(&mut self, t: Task) {
        let id = t.id.clone();
        let (tx, rx) = watch::channel(Some(t));
        let node = NodeContext {
            node_id: self.node.identity.node_id.clone(),
            hostname: self.node.settings.description.hostname.clone(),
            deps: self.deps.clone(),
            busy: self.busy.clone(),
        };
        let c = Controller::new(self.exec.clone(), node, self.report.clone(), rx);
        self.controllers.spawn(c.run());
        self.feeds.insert(id, tx);
    }

    /// Containers of tasks this node no longer has (removed while the
    /// daemon was down) go.
    async fn sweep_orphans(&self, assigned: &HashSet<String>) {
        for (task, container) in self.exec.task_containers().await {
            if assigned.contains(&task) {
                continue;
            }
            let _ = self
                .exec
                .stop(&container, Some(Duration::from_secs(10)))
                .await;
            if let Err(e) = self.exec.remove(&container).await {
                tracing::debug!("removing orphaned task container {container}: {e}");
            }
        }
    }
}

/// The manager's assignment set; a bare task list from an older
/// manager reads as a set without secrets or configs.
fn assignment_set(json: &[u8]) -> Result<AssignmentSet, String> {
    serde_json::from_slice::<AssignmentSet>(json)
        .or_else(|_| {
            serde_json::from_slice::<Vec<Task>>(json).map(|tasks| AssignmentSet {
                tasks,
                ..AssignmentSet::default()
            })
        })
        .map_err(|e| format!("assignments: {e}"))
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
