//! Rolling updates and rollbacks of replicated services, after swarmkit's
//! updater but level-triggered: each pass reads where the update stands
//! from the store (the service's `UpdateStatus`, its tasks' spec versions
//! and times) and takes the next step. Slots whose task was made from
//! another spec get a new task, `Parallelism` at a time, the next batch
//! once the last one runs and `Delay` has passed; a new task that fails
//! within `Monitor` of starting counts against `MaxFailureRatio`, past
//! which the `FailureAction` pauses, rolls back or goes on.

use chrono::{DateTime, Duration, Utc};

use berth_swarm_store::{Service, Task, TaskState, UpdateConfig, UpdateStatus};

use super::plan::Planner;

/// swarmkit's default monitoring period.
const DEFAULT_MONITOR: Duration = Duration::seconds(5);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// no update under way (none yet, or the last one finished)
    Idle,
    Updating,
    Paused,
    RollingBack,
    RollbackPaused,
}

/// A task made from another task template than the service's, or with
/// other ports (swarmkit's `IsTaskDirty`: a task must join ingress, or
/// bind a host port, to serve them); a scale alone changes neither.
fn dirty(s: &Service, t: &Task) -> bool {
    t.spec != s.spec.task_template || t.ports != s.endpoint.ports
}

fn phase(s: &Service) -> Phase {
    match s.update_status.as_ref().map(|u| u.state.as_str()) {
        Some("updating") => Phase::Updating,
        Some("paused") => Phase::Paused,
        Some("rollback_started") => Phase::RollingBack,
        Some("rollback_paused") => Phase::RollbackPaused,
        _ => Phase::Idle,
    }
}

/// The config in force: the rollback's during a rollback; swarmkit's
/// defaults for what the spec leaves out.
fn config(s: &Service, phase: Phase) -> UpdateConfig {
    let given = match phase {
        Phase::RollingBack | Phase::RollbackPaused => s.spec.rollback_config.clone(),
        _ => s.spec.update_config.clone(),
    };
    given.unwrap_or(UpdateConfig {
        parallelism: 1,
        ..UpdateConfig::default()
    })
}

fn monitor(c: &UpdateConfig) -> Duration {
    c.monitor
        .filter(|m| *m > 0)
        .map_or(DEFAULT_MONITOR, Duration::nanoseconds)
}

fn status(
    state: &str,
    message: &str,
    started: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> UpdateStatus {
    let done = matches!(state, "completed" | "rollback_completed");
    UpdateStatus {
        state: state.into(),
        started_at: started.or(Some(now)),
        completed_at: done.then_some(now),
        message: message.into(),
    }
}

pub fn update_slots(p: &mut Planner<'_>, s: &Service, live: &[(u64, &Task)]) {
    let phase = phase(s);
    let c = config(s, phase);
    let stale: Vec<(u64, &Task)> = live
        .iter()
        .copied()
        .filter(|(_, t)| dirty(s, t) || s.rebalance.contains(&t.id))
        .filter(|(_, t)| t.desired_state <= TaskState::Running)
        .filter(|(_, t)| !p.retiring.contains(&t.id))
        .collect();
    if !s.rebalance.is_empty() && !live.iter().any(|(_, t)| s.rebalance.contains(&t.id)) {
        p.rebalanced(s);
    }
    let started = s.update_status.as_ref().and_then(|u| u.started_at);
    if stale.is_empty() && phase == Phase::Idle {
        p.clock.remove(&s.id);
        return;
    }
    if matches!(phase, Phase::Paused | Phase::RollbackPaused) {
        return;
    }
    let since = started.unwrap_or(p.now);
    if phase == Phase::Idle {
        p.set_update_status(s, status("updating", "update in progress", None, p.now));
    }
    if let Some(failed) = first_failure(p, s, &c, since, live.len()) {
        fail(p, s, phase, &c, failed, since);
        return;
    }
    if stale.is_empty() {
        finish_when_settled(p, s, phase, live, &c, started);
        p.clock.remove(&s.id);
        return;
    }
    next_batch(p, s, live, stale, &c);
}

/// A task of this update that ended within the monitoring period of its
/// start, when failures pass the ratio.
fn first_failure<'t>(
    p: &Planner<'t>,
    s: &Service,
    c: &UpdateConfig,
    since: DateTime<Utc>,
    slots: usize,
) -> Option<&'t Task> {
    if c.failure_action.as_deref() == Some("continue") {
        return None;
    }
    let window = monitor(c);
    let failed: Vec<&Task> = p
        .store
        .tasks()
        .filter(|t| t.service_id == s.id && !dirty(s, t))
        .filter(|t| t.meta.created_at >= since)
        .filter(|t| {
            matches!(
                t.status.state,
                TaskState::Failed | TaskState::Rejected | TaskState::Complete
            )
        })
        .filter(|t| {
            let ended = t.status.timestamp.unwrap_or(p.now);
            t.started_at.is_none_or(|r| ended - r <= window)
        })
        .collect();
    let ratio = c.max_failure_ratio.unwrap_or(0.0);
    let over = failed.len() as f64 / slots.max(1) as f64 > ratio;
    if !over {
        return None;
    }
    failed.into_iter().min_by_key(|t| t.status.timestamp)
}

fn fail(
    p: &mut Planner<'_>,
    s: &Service,
    phase: Phase,
    c: &UpdateConfig,
    t: &Task,
    since: DateTime<Utc>,
) {
    let rollback = c.failure_action.as_deref() == Some("rollback");
    if phase == Phase::RollingBack {
        let msg = format!(
            "rollback paused due to failure or early termination of task {}",
            t.id
        );
        return p.set_update_status(s, status("rollback_paused", &msg, Some(since), p.now));
    }
    if !rollback {
        let msg = format!(
            "update paused due to failure or early termination of task {}",
            t.id
        );
        return p.set_update_status(s, status("paused", &msg, Some(since), p.now));
    }
    let Some(previous) = s.previous_spec.clone() else {
        let msg = format!(
            "update paused due to failure or early termination of task {}",
            t.id
        );
        return p.set_update_status(s, status("paused", &msg, Some(since), p.now));
    };
    let mut back = s.clone();
    back.previous_spec = Some(std::mem::replace(&mut back.spec, previous));
    std::mem::swap(&mut back.spec_version, &mut back.previous_spec_version);
    let msg = format!(
        "update rolled back due to failure or early termination of task {}",
        t.id
    );
    back.update_status = Some(status("rollback_started", &msg, None, p.now));
    p.set_service(back);
}

/// The update is done once no slot is stale and every new task has run
/// for the monitoring period.
fn finish_when_settled(
    p: &mut Planner<'_>,
    s: &Service,
    phase: Phase,
    live: &[(u64, &Task)],
    c: &UpdateConfig,
    started: Option<DateTime<Utc>>,
) {
    let (state, message) = match phase {
        Phase::Updating => ("completed", "update completed"),
        Phase::RollingBack => ("rollback_completed", "rollback completed"),
        _ => return,
    };
    let window = monitor(c);
    let mut settles_at = p.now;
    for (_, t) in live {
        match t.started_at {
            Some(r) if t.status.state == TaskState::Running => {
                settles_at = settles_at.max(r + window)
            }
            // still starting: a later pass decides
            _ if !t.status.state.is_terminal() => return,
            _ => {}
        }
    }
    if settles_at > p.now {
        p.wake_at_latest(settles_at);
        return;
    }
    p.set_update_status(s, status(state, message, started, p.now));
}

fn start_first(c: &UpdateConfig) -> bool {
    c.order.as_deref() == Some("start-first")
}

fn next_batch(
    p: &mut Planner<'_>,
    s: &Service,
    live: &[(u64, &Task)],
    stale: Vec<(u64, &Task)>,
    c: &UpdateConfig,
) {
    let in_flight = live
        .iter()
        .filter(|(_, t)| !dirty(s, t) && !t.status.state.is_terminal())
        .filter(|(_, t)| t.status.state < TaskState::Running)
        .count();
    let room = match c.parallelism {
        0 => stale.len(),
        n => (n as usize).saturating_sub(in_flight),
    };
    if room == 0 {
        return;
    }
    let delay = Duration::nanoseconds(c.delay.unwrap_or(0).max(0));
    if let Some(last) = p.clock.get(&s.id).copied()
        && p.now < last + delay
    {
        p.wake_at_latest(last + delay);
        return;
    }
    p.clock.insert(s.id.clone(), p.now);
    for (slot, old) in stale.into_iter().take(room) {
        // a global task's successor stays on its node
        let node = if slot == 0 { old.node_id.as_str() } else { "" };
        let mut t = p.new_task(s, slot, node);
        if !start_first(c) {
            // stop-first: the new task is placed and prepared, and starts
            // once the old one has stopped (`Planner::release_successor`)
            p.retire(old);
            t.desired_state = TaskState::Ready;
        }
        p.add(t);
    }
}
