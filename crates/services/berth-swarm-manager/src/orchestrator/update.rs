//! Rolling updates of replicated services: slots whose task was made from
//! an older spec get a new task, `Parallelism` at a time, a batch only
//! once the previous one runs, with `Delay` between batches.

use chrono::Duration;

use berth_swarm_store::{Service, Task, TaskState, UpdateConfig};

use super::plan::Planner;

/// swarmkit's defaults when a service has no `UpdateConfig`.
fn config(s: &Service) -> UpdateConfig {
    s.spec.update_config.clone().unwrap_or(UpdateConfig {
        parallelism: 1,
        ..UpdateConfig::default()
    })
}

fn start_first(c: &UpdateConfig) -> bool {
    c.order.as_deref() == Some("start-first")
}

pub fn update_slots(p: &mut Planner<'_>, s: &Service, live: &[(u64, &Task)]) {
    let stale: Vec<(u64, &Task)> = live
        .iter()
        .copied()
        .filter(|(_, t)| t.spec_version != s.spec_version && t.desired_state <= TaskState::Running)
        .collect();
    if stale.is_empty() {
        p.clock.remove(&s.id);
        return;
    }
    let c = config(s);
    let in_flight = live
        .iter()
        .filter(|(_, t)| t.spec_version == s.spec_version && !t.status.state.is_terminal())
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
        if !start_first(&c) {
            p.retire(old);
        }
        let t = p.new_task(s, slot, "");
        p.add(t);
    }
}
