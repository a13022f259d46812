//! One pass of the orchestrators over the whole store: what must change
//! for every service's tasks to match its spec. The pass is a pure
//! function of the store and the time, so a new leader simply runs it
//! again, and everything it decides goes into one Raft batch.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};

use berth_swarm_store::{
    Action, Availability, ModeKind, Node, NodeState, Object, Service, Store, Task, TaskPatch,
    TaskState, TaskStatus,
};

use super::constraints;
use super::restart::{delay, should_restart};

/// What a pass decided, and when it wants to run again at the latest
/// (a restart delay or an update's pause running out).
#[derive(Debug, Default)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// services whose update status or spec the pass changes: committed
    /// one by one after `actions`, since a client's update of the same
    /// service may win the race (the next pass then sees it)
    pub services: Vec<Service>,
    pub wake_at: Option<DateTime<Utc>>,
}

/// Per service: when its last update batch started (kept by the loop;
/// swarmkit's updater keeps it in memory too).
pub type UpdateClock = HashMap<String, DateTime<Utc>>;

pub struct Planner<'a> {
    pub store: &'a Store,
    pub now: DateTime<Utc>,
    pub new_id: &'a mut dyn FnMut() -> String,
    pub clock: &'a mut UpdateClock,
    pub plan: Plan,
    /// tasks this pass told to stop: not counted as live by later steps
    /// of the same pass
    pub retiring: std::collections::HashSet<String>,
}

/// A node that can run a task now: ready and active.
pub fn node_usable(n: &Node) -> bool {
    n.status.state == NodeState::Ready && n.spec.availability == Availability::Active
}

/// A task whose node is gone, down or drained: it will not run there.
fn on_lost_node(store: &Store, t: &Task) -> bool {
    if t.node_id.is_empty() {
        return false;
    }
    store.node(&t.node_id).is_none_or(|n| {
        n.status.state == NodeState::Down || n.spec.availability == Availability::Drain
    })
}

impl Planner<'_> {
    pub fn run(mut self) -> Plan {
        let store = self.store;
        let mut by_service: BTreeMap<&str, Vec<&Task>> = BTreeMap::new();
        for t in store.tasks() {
            if t.attachment.is_some() {
                // a node's own container: it goes when that container
                // does, or with its node
                if store.node(&t.node_id).is_none() {
                    self.set_desired(t, TaskState::Remove);
                }
                continue;
            }
            by_service.entry(t.service_id.as_str()).or_default().push(t);
        }
        for s in store.services() {
            let tasks = by_service.remove(s.id.as_str()).unwrap_or_default();
            match s.spec.mode.kind() {
                ModeKind::Replicated(n) => self.replicated(s, n, &tasks),
                ModeKind::Global => self.global(s, &tasks, false),
                ModeKind::GlobalJob => self.global(s, &tasks, true),
                ModeKind::ReplicatedJob {
                    max_concurrent,
                    total,
                } => self.replicated_job(s, max_concurrent, total, &tasks),
            }
        }
        // what is left belongs to services that were removed
        for tasks in by_service.values() {
            for t in tasks {
                self.set_desired(t, TaskState::Remove);
            }
        }
        self.reap();
        self.plan
    }

    pub fn wake_at_latest(&mut self, at: DateTime<Utc>) {
        self.plan.wake_at = Some(self.plan.wake_at.map_or(at, |w| w.min(at)));
    }

    fn set_desired(&mut self, t: &Task, state: TaskState) {
        if state > TaskState::Running {
            self.retiring.insert(t.id.clone());
        }
        if t.desired_state < state {
            self.plan.actions.push(Action::PatchTask {
                id: t.id.clone(),
                patch: TaskPatch {
                    desired_state: Some(state),
                    ..TaskPatch::default()
                },
            });
        }
    }

    /// The service as the pass leaves it (its version as read, so that a
    /// concurrent client update wins).
    pub fn set_service(&mut self, s: Service) {
        self.plan.services.retain(|x| x.id != s.id);
        self.plan.services.push(s);
    }

    pub fn set_update_status(&mut self, s: &Service, status: berth_swarm_store::UpdateStatus) {
        let mut s = self.planned(s);
        s.update_status = Some(status);
        self.set_service(s);
    }

    /// Every task a rebalance moves has been replaced.
    pub fn rebalanced(&mut self, s: &Service) {
        let mut s = self.planned(s);
        s.rebalance.clear();
        self.set_service(s);
    }

    /// The service as this pass has changed it so far.
    fn planned(&self, s: &Service) -> Service {
        self.plan
            .services
            .iter()
            .find(|x| x.id == s.id)
            .cloned()
            .unwrap_or_else(|| s.clone())
    }

    /// The task is to stop (an update replaces it).
    pub fn retire(&mut self, t: &Task) {
        self.set_desired(t, TaskState::Shutdown);
    }

    pub fn new_task(&mut self, s: &Service, slot: u64, node_id: &str) -> Task {
        let spec = s.spec.task_template.clone();
        Task {
            id: (self.new_id)(),
            spec,
            service_id: s.id.clone(),
            service_name: s.spec.name.clone(),
            service_labels: s.spec.labels.clone(),
            pull_auth: s.pull_auth.clone(),
            slot,
            node_id: node_id.to_string(),
            status: TaskStatus {
                timestamp: Some(self.now),
                state: TaskState::New,
                message: "created".into(),
                ..TaskStatus::default()
            },
            desired_state: TaskState::Running,
            spec_version: s.spec_version,
            job_iteration: s.spec.mode.is_job().then_some(s.job_iteration),
            ..Task::default()
        }
    }

    pub fn add(&mut self, t: Task) {
        self.plan.actions.push(Action::Create(Object::Task(t)));
    }

    /// The slot's successor to `ended`, held back by the restart delay
    /// unless its node was lost.
    fn restart(&mut self, s: &Service, ended: &Task, key_slot: u64, node_id: &str) {
        self.set_desired(ended, TaskState::Shutdown);
        let mut next = self.new_task(s, key_slot, node_id);
        let lost = on_lost_node(self.store, ended);
        let wait = if lost {
            Duration::zero()
        } else {
            delay(ended.spec.restart_policy.as_ref())
        };
        if wait > Duration::zero() {
            let at = self.now + wait;
            next.desired_state = TaskState::Ready;
            next.restart_at = Some(at);
            self.wake_at_latest(at);
        }
        self.add(next);
    }

    /// A stop-first update's task starts once the slot's other tasks
    /// have stopped (or their node is lost).
    fn release_successor(&mut self, current: &Task, history: &[&Task]) {
        if current.desired_state != TaskState::Ready || current.restart_at.is_some() {
            return;
        }
        let store = self.store;
        let stopped = history
            .iter()
            .filter(|t| t.id != current.id)
            .all(|t| t.status.state.is_terminal() || on_lost_node(store, t));
        if stopped {
            self.set_desired(current, TaskState::Running);
        }
    }

    /// Tasks held back by a restart delay start once it is over.
    fn release_delayed(&mut self, t: &Task) {
        let Some(at) = t.restart_at else { return };
        if t.desired_state != TaskState::Ready {
            return;
        }
        if at <= self.now {
            self.set_desired(t, TaskState::Running);
        } else {
            self.wake_at_latest(at);
        }
    }

    fn replicated(&mut self, s: &Service, replicas: u64, tasks: &[&Task]) {
        let mut slots: BTreeMap<u64, Vec<&Task>> = BTreeMap::new();
        for t in tasks {
            slots.entry(t.slot).or_default().push(t);
        }
        let mut live: Vec<(u64, &Task)> = Vec::new();
        for (slot, history) in &slots {
            if let Some(current) = self.slot_current(s, *slot, history, false) {
                self.retire_replaced(current, history);
                self.release_successor(current, history);
                live.push((*slot, current));
            }
        }
        if (live.len() as u64) > replicas {
            let extra = live.len() - replicas as usize;
            let going: Vec<(u64, &Task)> =
                scale_down_order(&live).into_iter().take(extra).collect();
            for (_, t) in &going {
                self.set_desired(t, TaskState::Remove);
            }
            live.retain(|(_, t)| !going.iter().any(|(_, g)| g.id == t.id));
        }
        let mut slot = 0;
        for _ in live.len() as u64..replicas {
            slot += 1;
            // a slot being taken down is not reused until it is gone
            while live.iter().any(|(n, _)| *n == slot) || slots.contains_key(&slot) {
                slot += 1;
            }
            let t = self.new_task(s, slot, "");
            self.add(t);
        }
        super::update::update_slots(self, s, &live);
    }

    /// The task that holds a slot, after restarting it if it ended: the
    /// one not yet told to stop; or the last one, ended for good, if the
    /// restart policy lets it rest.
    fn slot_current<'t>(
        &mut self,
        s: &Service,
        slot: u64,
        history: &[&'t Task],
        job: bool,
    ) -> Option<&'t Task> {
        let current = history
            .iter()
            .copied()
            .filter(|t| t.desired_state <= TaskState::Running)
            .max_by_key(|t| (t.meta.created_at, t.meta.version))?;
        self.release_delayed(current);
        let lost = on_lost_node(self.store, current);
        if !current.status.state.is_terminal() && !lost {
            return Some(current);
        }
        if lost || should_restart(current, history, job, self.now) {
            // a replicated successor goes wherever the scheduler puts it
            self.restart(s, current, slot, "");
            // the successor holds the slot from the next pass on
            return Some(current);
        }
        Some(current)
    }

    /// A start-first update leaves the old task running beside its
    /// successor until the successor runs (or fails).
    fn retire_replaced(&mut self, current: &Task, history: &[&Task]) {
        let settled = current.status.state >= TaskState::Running;
        if !settled {
            return;
        }
        for t in history {
            if t.id != current.id && t.desired_state <= TaskState::Running {
                self.set_desired(t, TaskState::Shutdown);
            }
        }
    }

    fn global(&mut self, s: &Service, tasks: &[&Task], job: bool) {
        let constraints = placement_constraints(s);
        let mut by_node: BTreeMap<&str, Vec<&Task>> = BTreeMap::new();
        for t in tasks {
            by_node.entry(t.node_id.as_str()).or_default().push(t);
        }
        let store = self.store;
        let mut live: Vec<(u64, &Task)> = Vec::new();
        for n in store.nodes() {
            // a paused node keeps its task but takes no new one (swarmkit)
            let keeps = n.status.state != NodeState::Down
                && n.spec.availability != Availability::Drain
                && constraints::node_matches(&constraints, n);
            let history = by_node.remove(n.id.as_str()).unwrap_or_default();
            if !keeps {
                for t in &history {
                    self.set_desired(t, TaskState::Shutdown);
                }
                continue;
            }
            let this_iteration: Vec<&Task> = history
                .iter()
                .copied()
                .filter(|t| !job || t.job_iteration == Some(s.job_iteration))
                .collect();
            let current = this_iteration
                .iter()
                .copied()
                .filter(|t| t.desired_state <= TaskState::Running)
                .max_by_key(|t| t.meta.created_at);
            let Some(c) = current else {
                // a job runs once per node and iteration; a service's task
                // comes back to a node that is eligible again
                if node_usable(n) && (!job || this_iteration.is_empty()) {
                    let t = self.new_task(s, 0, &n.id);
                    self.add(t);
                }
                continue;
            };
            self.release_delayed(c);
            self.retire_replaced(c, &this_iteration);
            self.release_successor(c, &this_iteration);
            if c.status.state.is_terminal() && should_restart(c, &this_iteration, job, self.now) {
                self.restart(s, c, 0, &n.id);
            }
            if !job {
                live.push((0, c));
            }
        }
        if !live.is_empty() {
            super::update::update_slots(self, s, &live);
        }
        // tasks on nodes that left the swarm
        for history in by_node.values() {
            for t in history {
                self.set_desired(t, TaskState::Shutdown);
            }
        }
    }

    fn replicated_job(&mut self, s: &Service, max_concurrent: u64, total: u64, tasks: &[&Task]) {
        let iteration: Vec<&Task> = tasks
            .iter()
            .copied()
            .filter(|t| t.job_iteration == Some(s.job_iteration))
            .collect();
        for t in tasks
            .iter()
            .filter(|t| t.job_iteration != Some(s.job_iteration))
        {
            self.set_desired(t, TaskState::Shutdown);
        }
        let mut slots: BTreeMap<u64, Vec<&Task>> = BTreeMap::new();
        for t in &iteration {
            slots.entry(t.slot).or_default().push(t);
        }
        let mut completed = 0;
        let mut active = 0;
        for (slot, history) in &slots {
            if history
                .iter()
                .any(|t| t.status.state == TaskState::Complete)
            {
                completed += 1;
                continue;
            }
            if self.slot_current(s, *slot, history, true).is_some() {
                active += 1;
            }
        }
        let mut next_slot = slots.keys().max().copied().unwrap_or(0);
        while active < max_concurrent.max(1) && completed + active < total {
            next_slot += 1;
            let t = self.new_task(s, next_slot, "");
            self.add(t);
            active += 1;
        }
    }

    /// Tasks told to go that have gone are deleted, and each slot keeps
    /// the cluster's task history limit.
    fn reap(&mut self) {
        let store = self.store;
        let limit = store
            .cluster()
            .map_or(5, |c| c.spec.task_history_retention_limit);
        let mut slots: BTreeMap<(&str, u64, &str), Vec<&Task>> = BTreeMap::new();
        for t in store.tasks() {
            let gone = t.status.state.is_terminal()
                || t.node_id.is_empty()
                || store.node(&t.node_id).is_none();
            if t.desired_state == TaskState::Remove && gone {
                self.delete(t);
                continue;
            }
            let node_key = if t.slot == 0 { t.node_id.as_str() } else { "" };
            slots
                .entry((t.service_id.as_str(), t.slot, node_key))
                .or_default()
                .push(t);
        }
        if limit < 0 {
            return;
        }
        for history in slots.values_mut() {
            if history.len() as i64 <= limit {
                continue;
            }
            history.sort_by_key(|t| (t.meta.created_at, t.meta.version));
            let excess = history.len() - limit as usize;
            let old = history
                .iter()
                .filter(|t| t.desired_state > TaskState::Running)
                .filter(|t| {
                    t.status.state.is_terminal()
                        || t.status.state < TaskState::Assigned
                        || store.node(&t.node_id).is_none()
                })
                .take(excess);
            for t in old.copied().collect::<Vec<_>>() {
                self.delete(t);
            }
        }
    }

    fn delete(&mut self, t: &Task) {
        self.plan.actions.push(Action::Remove {
            kind: berth_swarm_store::Kind::Task,
            id: t.id.clone(),
        });
    }
}

pub fn placement_constraints(s: &Service) -> Vec<constraints::Constraint> {
    let exprs = s
        .spec
        .task_template
        .placement
        .as_ref()
        .map(|p| p.constraints.clone())
        .unwrap_or_default();
    // validated when the service was written
    constraints::parse(&exprs).unwrap_or_default()
}

/// Which live slots go first on a scale-down: tasks not running before
/// running ones, then those on the nodes with most copies (swarmkit keeps
/// the result balanced), then the highest slots.
fn scale_down_order<'t>(live: &[(u64, &'t Task)]) -> Vec<(u64, &'t Task)> {
    let mut per_node: HashMap<&str, usize> = HashMap::new();
    let mut ranked: Vec<(bool, usize, u64, &'t Task)> = Vec::new();
    let mut sorted = live.to_vec();
    sorted.sort_by_key(|(slot, _)| *slot);
    for (slot, t) in sorted {
        let nth = per_node.entry(t.node_id.as_str()).or_default();
        *nth += 1;
        let running = t.status.state == TaskState::Running;
        ranked.push((running, *nth, slot, t));
    }
    ranked.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(b.2.cmp(&a.2)));
    ranked
        .into_iter()
        .map(|(_, _, slot, t)| (slot, t))
        .collect()
}
