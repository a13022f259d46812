//! The restart policy: whether a task that ended gets a successor, and
//! when (swarmkit's restart supervisor, without its in-memory history:
//! the slot's tasks in the store are the history).

use chrono::{DateTime, Duration, Utc};

use berth_swarm_store::{RestartPolicy, Task, TaskState};

/// swarmkit's default restart delay.
pub const DEFAULT_DELAY: Duration = Duration::seconds(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    None,
    OnFailure,
    Any,
}

pub fn condition(p: Option<&RestartPolicy>, job: bool) -> Condition {
    match p.and_then(|p| p.condition.as_deref()) {
        Some("none") => Condition::None,
        Some("on-failure") => Condition::OnFailure,
        // a job that completed is done, whatever the policy says
        Some(_) if job => Condition::OnFailure,
        Some(_) => Condition::Any,
        // a job that completed is done; one that failed runs again
        None if job => Condition::OnFailure,
        None => Condition::Any,
    }
}

pub fn delay(p: Option<&RestartPolicy>) -> Duration {
    match p.and_then(|p| p.delay) {
        Some(ns) if ns >= 0 => Duration::nanoseconds(ns),
        _ => DEFAULT_DELAY,
    }
}

/// Whether `ended` (the slot's current task, now terminal) gets a
/// successor; `history` is every task of its slot.
pub fn should_restart(ended: &Task, history: &[&Task], job: bool, now: DateTime<Utc>) -> bool {
    let policy = ended.spec.restart_policy.as_ref();
    let failed = ended.status.state != TaskState::Complete;
    let wanted = match condition(policy, job) {
        Condition::None => false,
        Condition::OnFailure => failed,
        Condition::Any => true,
    };
    if !wanted {
        return false;
    }
    let max = policy.and_then(|p| p.max_attempts).unwrap_or(0);
    if max == 0 {
        return true;
    }
    let window = policy.and_then(|p| p.window).unwrap_or(0);
    let since = (window > 0).then(|| now - Duration::nanoseconds(window));
    // the first task of the slot is no restart; an update starts the
    // count again (swarmkit resets it with the spec)
    let restarts = history
        .iter()
        .filter(|t| t.spec == ended.spec)
        .filter(|t| since.is_none_or(|s| t.meta.created_at >= s))
        .count()
        .saturating_sub(usize::from(since.is_none()));
    (restarts as u64) < max
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(state: TaskState, policy: RestartPolicy, created: i64) -> Task {
        let mut t = Task::default();
        t.status.state = state;
        t.spec.restart_policy = Some(policy);
        t.meta.created_at = DateTime::from_timestamp(created, 0).unwrap();
        t
    }

    fn policy(condition: &str, max: u64, window_s: i64) -> RestartPolicy {
        RestartPolicy {
            condition: Some(condition.into()),
            delay: None,
            max_attempts: Some(max),
            window: Some(window_s * 1_000_000_000),
        }
    }

    #[test]
    fn conditions_follow_docker() {
        let now = DateTime::from_timestamp(100, 0).unwrap();
        let done = task(TaskState::Complete, policy("on-failure", 0, 0), 1);
        assert!(!should_restart(&done, &[&done], false, now));
        let failed = task(TaskState::Failed, policy("on-failure", 0, 0), 1);
        assert!(should_restart(&failed, &[&failed], false, now));
        let none = task(TaskState::Failed, policy("none", 0, 0), 1);
        assert!(!should_restart(&none, &[&none], false, now));
        let any = task(TaskState::Complete, policy("any", 0, 0), 1);
        assert!(should_restart(&any, &[&any], false, now));
    }

    #[test]
    fn max_attempts_count_restarts_in_the_window() {
        let now = DateTime::from_timestamp(100, 0).unwrap();
        let p = policy("any", 2, 0);
        let a = task(TaskState::Failed, p.clone(), 10);
        let b = task(TaskState::Failed, p.clone(), 20);
        let c = task(TaskState::Failed, p.clone(), 30);
        assert!(
            should_restart(&b, &[&a, &b], false, now),
            "one restart so far"
        );
        assert!(!should_restart(&c, &[&a, &b, &c], false, now));
        // a 75 s window sees only the tasks made since 25 s
        let w = policy("any", 2, 75);
        let c = task(TaskState::Failed, w, 30);
        assert!(should_restart(&c, &[&a, &b, &c], false, now));
    }
}
