//! The leader's orchestration (swarmkit's orchestrators, restart
//! supervisor, updater, task reaper and scheduler): one loop that reads
//! the whole store after every change, plans what must change, and
//! commits the plan as one Raft batch. Level-triggered rather than driven
//! by single events, so nothing is lost when the leader changes: the new
//! leader's first pass sees what the old one left.

pub mod constraints;
mod plan;
pub mod rebalance;
mod restart;
mod scheduler;
mod update;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use berth_swarm_store::{Action, Store};
use chrono::{DateTime, Utc};
use tokio::sync::broadcast::error::RecvError;

use crate::active::Active;
pub use plan::{Plan, UpdateClock, node_usable};

/// Changes that arrive this close together are planned for at once.
const DEBOUNCE: Duration = Duration::from_millis(5);
/// After a pass, changes gather for this many times its duration before
/// the next (at least `DEBOUNCE`).
const PACING: u32 = 2;
/// The most a pass's cost delays the next (restart delays and update
/// windows slip by no more).
const MAX_SETTLE: Duration = Duration::from_millis(250);
/// A pass runs at least this often, for what changes with time alone.
const IDLE_PASS: Duration = Duration::from_secs(1);
/// Actions per Raft entry: a pass that creates a thousand tasks commits
/// them in a few entries rather than one huge one.
const BATCH: usize = 256;

/// One pass: the plan for `store` at `now`.
pub fn plan_pass(
    store: &Store,
    now: DateTime<Utc>,
    clock: &mut UpdateClock,
    new_id: &mut dyn FnMut() -> String,
) -> Plan {
    let planner = plan::Planner {
        store,
        now,
        new_id,
        clock,
        plan: Plan::default(),
        retiring: Default::default(),
    };
    let mut plan = planner.run();
    scheduler::Scheduler::new(store, now).run(&mut plan.actions);
    plan
}

pub fn spawn(node: Arc<Active>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut clock = UpdateClock::new();
        loop {
            let Ok(raft) = node.raft() else { return };
            if !raft.is_leader() {
                clock.clear();
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            let mut changes = raft.store().watch();
            let started = std::time::Instant::now();
            let wake_at = pass(&node, &mut clock).await;
            // a pass over a big store is costly: the next waits in
            // proportion, so that planning never takes the whole machine
            // from the agents and the Raft it plans for
            let settle = (started.elapsed() * PACING).clamp(DEBOUNCE, MAX_SETTLE);
            wait_for_change(&mut changes, wake_at, settle).await;
        }
    })
}

/// Plans and commits; when the plan wants to run again by itself.
async fn pass(node: &Active, clock: &mut UpdateClock) -> Option<DateTime<Utc>> {
    let Ok(store) = node.store() else { return None };
    let mut id_failed = false;
    let mut new_id = || {
        berth_swarm_ca::new_id().unwrap_or_else(|e| {
            tracing::warn!("making a task id: {e}");
            id_failed = true;
            String::new()
        })
    };
    let plan = store.read(|s| plan_pass(s, Utc::now(), clock, &mut new_id));
    if id_failed {
        return Some(Utc::now() + chrono::Duration::seconds(1));
    }
    commit(node, plan.actions).await;
    let Ok(raft) = node.raft() else {
        return plan.wake_at;
    };
    for s in plan.services {
        let action = Action::Update(berth_swarm_store::Object::Service(s));
        if let Err(e) = raft.propose(vec![action]).await {
            tracing::debug!("a service's update status: {e}");
        }
    }
    plan.wake_at
}

/// Commits through this node's own Raft only: a plan made by a leader that
/// has since lost its place must not reach the new leader.
async fn commit(node: &Active, actions: Vec<Action>) {
    let Ok(raft) = node.raft() else { return };
    for chunk in actions.chunks(BATCH) {
        if let Err(e) = raft.propose(chunk.to_vec()).await {
            // the next pass plans again from what was committed
            tracing::debug!("orchestration batch: {e}");
            tokio::time::sleep(Duration::from_millis(50)).await;
            return;
        }
    }
}

async fn wait_for_change(
    changes: &mut tokio::sync::broadcast::Receiver<Arc<berth_swarm_store::Event>>,
    wake_at: Option<DateTime<Utc>>,
    settle: Duration,
) {
    let until = match wake_at {
        // a time already past: run again at once
        Some(w) => (w - Utc::now()).to_std().unwrap_or(Duration::ZERO),
        None => IDLE_PASS,
    }
    .min(IDLE_PASS);
    let first = tokio::time::timeout(until, changes.recv()).await;
    if matches!(first, Ok(Ok(_)) | Ok(Err(RecvError::Lagged(_)))) {
        tokio::time::sleep(settle).await;
    }
}
