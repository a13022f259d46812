//! The orchestration pass over a store built by hand; each pass's plan is
//! applied to the store as Raft would, so several passes play a story.

use berth_swarm_store::{
    Action, Availability, ContainerSpec, Node, NodeRole, NodeState, Object, Placement, Replicated,
    RestartPolicy, Service, ServiceMode, ServiceSpec, Store, Task, TaskPatch, TaskSpec, TaskState,
    TaskStatus, UpdateConfig,
};
use chrono::{DateTime, Duration, Utc};

use super::{UpdateClock, plan_pass};

struct World {
    store: Store,
    now: DateTime<Utc>,
    index: u64,
    ids: u64,
    clock: UpdateClock,
}

fn node(id: &str, role: NodeRole) -> Node {
    let mut n = Node {
        id: id.into(),
        role,
        ..Node::default()
    };
    n.status.state = NodeState::Ready;
    n.description.hostname = format!("host-{id}");
    n
}

fn service(id: &str, mode: ServiceMode) -> Service {
    Service {
        id: id.into(),
        spec: ServiceSpec {
            name: format!("svc-{id}"),
            mode,
            task_template: TaskSpec {
                container_spec: Some(ContainerSpec {
                    image: "busybox".into(),
                    ..ContainerSpec::default()
                }),
                ..TaskSpec::default()
            },
            ..ServiceSpec::default()
        },
        ..Service::default()
    }
}

fn replicated(n: u64) -> ServiceMode {
    ServiceMode {
        replicated: Some(Replicated { replicas: Some(n) }),
        ..ServiceMode::default()
    }
}

impl World {
    fn new(nodes: &[&str]) -> World {
        let mut w = World {
            store: Store::default(),
            now: DateTime::from_timestamp(1_000, 0).unwrap(),
            index: 1,
            ids: 0,
            clock: UpdateClock::new(),
        };
        let actions = nodes
            .iter()
            .map(|n| Action::Create(Object::Node(node(n, NodeRole::Worker))))
            .collect::<Vec<_>>();
        w.apply(actions);
        w
    }

    fn apply(&mut self, actions: Vec<Action>) {
        self.index += 1;
        self.store.apply(&actions, self.index, self.now).unwrap();
    }

    /// One pass, committed; how many actions it took.
    fn pass(&mut self) -> usize {
        let mut ids = self.ids;
        let mut new_id = || {
            ids += 1;
            format!("t{ids:03}")
        };
        let plan = plan_pass(&self.store, self.now, &mut self.clock, &mut new_id);
        self.ids = ids;
        let n = plan.actions.len() + plan.services.len();
        if !plan.actions.is_empty() {
            self.apply(plan.actions);
        }
        for s in plan.services {
            self.apply(vec![Action::Update(Object::Service(s))]);
        }
        n
    }

    fn settle(&mut self) {
        for _ in 0..10 {
            if self.pass() == 0 {
                return;
            }
        }
        panic!("the orchestration did not settle");
    }

    fn tasks(&self, service: &str) -> Vec<Task> {
        self.store
            .tasks()
            .filter(|t| t.service_id == service)
            .cloned()
            .collect()
    }

    fn live(&self, service: &str) -> Vec<Task> {
        let mut v: Vec<Task> = self
            .tasks(service)
            .into_iter()
            .filter(|t| t.desired_state == TaskState::Running)
            .collect();
        v.sort_by_key(|t| t.slot);
        v
    }

    /// The agent's part: every assigned task reports `state`.
    fn report(&mut self, filter: impl Fn(&Task) -> bool, state: TaskState) {
        let now = self.now;
        let actions = self
            .store
            .tasks()
            .filter(|t| filter(t))
            .map(|t| Action::PatchTask {
                id: t.id.clone(),
                patch: TaskPatch {
                    status: Some(TaskStatus {
                        timestamp: Some(now),
                        state,
                        ..TaskStatus::default()
                    }),
                    ..TaskPatch::default()
                },
            })
            .collect();
        self.apply(actions);
    }

    /// The agents' part: what is told to stop stops, then what is told to
    /// run runs.
    fn agents(&mut self) {
        self.report(
            |t| t.desired_state > TaskState::Running && !t.status.state.is_terminal(),
            TaskState::Shutdown,
        );
        self.settle();
        self.run_all();
        self.settle();
    }

    fn run_all(&mut self) {
        self.report(
            |t| {
                !t.node_id.is_empty()
                    && t.desired_state == TaskState::Running
                    && t.status.state < TaskState::Running
            },
            TaskState::Running,
        );
    }

    fn set_node(&mut self, id: &str, f: impl FnOnce(&mut Node)) {
        let mut n = self.store.node(id).unwrap().clone();
        f(&mut n);
        self.apply(vec![Action::Update(Object::Node(n))]);
    }

    fn update_service(&mut self, id: &str, f: impl FnOnce(&mut Service)) {
        let mut s = self.store.service(id).unwrap().clone();
        f(&mut s);
        self.apply(vec![Action::Update(Object::Service(s))]);
    }
}

fn spread(tasks: &[Task]) -> Vec<usize> {
    let mut per: std::collections::BTreeMap<&str, usize> = Default::default();
    for t in tasks {
        *per.entry(t.node_id.as_str()).or_default() += 1;
    }
    per.into_values().collect()
}

#[test]
fn replicas_get_slots_and_spread_evenly_in_one_pass() {
    let mut w = World::new(&["n1", "n2", "n3"]);
    w.apply(vec![Action::Create(Object::Service(service(
        "s",
        replicated(6),
    )))]);
    w.pass();
    let live = w.live("s");
    assert_eq!(
        live.iter().map(|t| t.slot).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );
    assert!(live.iter().all(|t| t.status.state == TaskState::Assigned));
    assert_eq!(spread(&live), [2, 2, 2]);
    w.settle();
    assert_eq!(w.tasks("s").len(), 6, "a settled pass changes nothing");
}

#[test]
fn scaling_down_removes_the_extra_slots_keeping_balance() {
    let mut w = World::new(&["n1", "n2"]);
    w.apply(vec![Action::Create(Object::Service(service(
        "s",
        replicated(4),
    )))]);
    w.settle();
    w.run_all();
    w.update_service("s", |s| s.spec.mode = replicated(2));
    w.settle();
    assert_eq!(spread(&w.live("s")), [1, 1]);
    let removing: Vec<Task> = w
        .tasks("s")
        .into_iter()
        .filter(|t| t.desired_state == TaskState::Remove)
        .collect();
    assert_eq!(removing.len(), 2);
    // once the agents shut them down, the reaper deletes them
    w.report(
        |t| t.desired_state == TaskState::Remove,
        TaskState::Shutdown,
    );
    w.settle();
    assert_eq!(w.tasks("s").len(), 2);
}

#[test]
fn a_failed_task_is_replaced_after_the_restart_delay() {
    let mut w = World::new(&["n1"]);
    w.apply(vec![Action::Create(Object::Service(service(
        "s",
        replicated(1),
    )))]);
    w.settle();
    w.run_all();
    w.report(|_| true, TaskState::Failed);
    w.settle();
    let tasks = w.tasks("s");
    assert_eq!(tasks.len(), 2);
    let next = tasks
        .iter()
        .find(|t| t.desired_state == TaskState::Ready)
        .unwrap();
    assert_eq!(next.slot, 1);
    assert_eq!(next.restart_at, Some(w.now + Duration::seconds(5)));
    w.now += Duration::seconds(5);
    w.settle();
    assert_eq!(w.live("s").len(), 1, "released after the delay");
}

#[test]
fn restart_condition_none_leaves_the_slot_ended() {
    let mut w = World::new(&["n1"]);
    let mut s = service("s", replicated(1));
    s.spec.task_template.restart_policy = Some(RestartPolicy {
        condition: Some("none".into()),
        ..RestartPolicy::default()
    });
    w.apply(vec![Action::Create(Object::Service(s))]);
    w.settle();
    w.run_all();
    w.report(|_| true, TaskState::Complete);
    w.now += Duration::seconds(60);
    w.settle();
    assert_eq!(w.tasks("s").len(), 1);
}

#[test]
fn tasks_of_a_node_that_went_down_run_elsewhere_at_once() {
    let mut w = World::new(&["n1", "n2"]);
    w.apply(vec![Action::Create(Object::Service(service(
        "s",
        replicated(2),
    )))]);
    w.settle();
    w.run_all();
    w.set_node("n1", |n| n.status.state = NodeState::Down);
    w.settle();
    let live = w.live("s");
    assert_eq!(live.len(), 2);
    assert!(live.iter().all(|t| t.node_id == "n2"), "{live:?}");
    let old = w
        .tasks("s")
        .into_iter()
        .find(|t| t.node_id == "n1")
        .unwrap();
    assert_eq!(old.desired_state, TaskState::Shutdown);
}

#[test]
fn a_drained_node_loses_its_tasks() {
    let mut w = World::new(&["n1", "n2"]);
    w.apply(vec![Action::Create(Object::Service(service(
        "s",
        replicated(2),
    )))]);
    w.settle();
    w.run_all();
    w.set_node("n2", |n| n.spec.availability = Availability::Drain);
    w.settle();
    assert!(w.live("s").iter().all(|t| t.node_id == "n1"));
}

#[test]
fn an_unplaceable_task_says_why_and_is_placed_when_a_node_fits() {
    let mut w = World::new(&["n1", "n2", "n3"]);
    let mut s = service("s", replicated(1));
    s.spec.task_template.placement = Some(Placement {
        constraints: vec!["node.role==manager".into()],
        ..Placement::default()
    });
    w.apply(vec![Action::Create(Object::Service(s))]);
    w.settle();
    let t = &w.live("s")[0];
    assert_eq!(t.status.state, TaskState::Pending);
    assert_eq!(
        t.status.err,
        "no suitable node (scheduling constraints not satisfied on 3 nodes)"
    );
    w.set_node("n2", |n| n.role = NodeRole::Manager);
    w.settle();
    let t = &w.live("s")[0];
    assert_eq!(
        (t.status.state, t.node_id.as_str()),
        (TaskState::Assigned, "n2")
    );
}

#[test]
fn max_replicas_per_node_is_explained() {
    let mut w = World::new(&["n1"]);
    let mut s = service("s", replicated(2));
    s.spec.task_template.placement = Some(Placement {
        max_replicas: 1,
        ..Placement::default()
    });
    w.apply(vec![Action::Create(Object::Service(s))]);
    w.settle();
    let pending: Vec<Task> = w
        .live("s")
        .into_iter()
        .filter(|t| t.status.state == TaskState::Pending)
        .collect();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        pending[0].status.err,
        "no suitable node (max replicas per node limit exceed)"
    );
}

#[test]
fn a_global_service_follows_the_nodes() {
    let mut w = World::new(&["n1", "n2"]);
    let global = ServiceMode {
        global: Some(Default::default()),
        ..ServiceMode::default()
    };
    w.apply(vec![Action::Create(Object::Service(service("g", global)))]);
    w.settle();
    assert_eq!(spread(&w.live("g")), [1, 1]);
    w.apply(vec![Action::Create(Object::Node(node(
        "n3",
        NodeRole::Worker,
    )))]);
    w.settle();
    assert_eq!(w.live("g").len(), 3);
    w.set_node("n1", |n| n.spec.availability = Availability::Drain);
    w.settle();
    let nodes: Vec<String> = w.live("g").into_iter().map(|t| t.node_id).collect();
    assert_eq!(nodes.len(), 2);
    assert!(!nodes.contains(&"n1".to_string()));
    w.report(|t| t.node_id == "n1", TaskState::Shutdown);
    w.set_node("n1", |n| n.spec.availability = Availability::Active);
    w.settle();
    assert_eq!(w.live("g").len(), 3, "back on the node once it is active");
}

#[test]
fn a_rolling_update_replaces_one_slot_at_a_time() {
    let mut w = World::new(&["n1", "n2", "n3"]);
    let mut s = service("s", replicated(3));
    s.spec.update_config = Some(UpdateConfig {
        parallelism: 1,
        ..UpdateConfig::default()
    });
    w.apply(vec![Action::Create(Object::Service(s))]);
    w.settle();
    w.run_all();
    w.update_service("s", |s| {
        s.spec_version = 7;
        s.spec.task_template.force_update = 1;
    });
    w.settle();
    let fresh = |w: &World| w.live("s").iter().filter(|t| t.spec_version == 7).count();
    let waiting = |w: &World| {
        w.tasks("s")
            .iter()
            .filter(|t| t.desired_state == TaskState::Ready)
            .count()
    };
    assert_eq!(
        (fresh(&w), waiting(&w)),
        (0, 1),
        "stop-first: one slot waits for its old task"
    );
    w.agents();
    assert_eq!(fresh(&w), 1, "started once the old task stopped");
    w.agents();
    assert_eq!(fresh(&w), 2);
    w.agents();
    w.agents();
    assert_eq!(fresh(&w), 3);
    assert_eq!(w.live("s").len(), 3);
}

#[test]
fn a_replicated_job_runs_its_completions_max_concurrent_at_a_time() {
    let mut w = World::new(&["n1", "n2"]);
    let job = ServiceMode {
        replicated_job: Some(berth_swarm_store::ReplicatedJob {
            max_concurrent: Some(2),
            total_completions: Some(3),
        }),
        ..ServiceMode::default()
    };
    w.apply(vec![Action::Create(Object::Service(service("j", job)))]);
    w.settle();
    assert_eq!(w.live("j").len(), 2);
    w.run_all();
    w.report(
        |t| t.status.state == TaskState::Running,
        TaskState::Complete,
    );
    w.settle();
    let running: Vec<Task> = w
        .tasks("j")
        .into_iter()
        .filter(|t| !t.status.state.is_terminal())
        .collect();
    assert_eq!(running.len(), 1, "the third completion");
    w.run_all();
    w.report(
        |t| t.status.state == TaskState::Running,
        TaskState::Complete,
    );
    w.settle();
    assert_eq!(w.tasks("j").len(), 3, "done: nothing more runs");
}

#[test]
fn task_history_keeps_the_cluster_limit_per_slot() {
    let mut w = World::new(&["n1"]);
    let mut s = service("s", replicated(1));
    s.spec.task_template.restart_policy = Some(RestartPolicy {
        delay: Some(0),
        ..RestartPolicy::default()
    });
    w.apply(vec![Action::Create(Object::Service(s))]);
    for _ in 0..8 {
        w.settle();
        w.run_all();
        w.report(|t| t.status.state == TaskState::Running, TaskState::Failed);
        w.now += Duration::seconds(1);
    }
    w.settle();
    assert_eq!(w.tasks("s").len(), 5, "swarmkit's default history");
}

#[test]
fn tasks_of_a_removed_service_are_removed_once_down() {
    let mut w = World::new(&["n1"]);
    w.apply(vec![Action::Create(Object::Service(service(
        "s",
        replicated(2),
    )))]);
    w.settle();
    w.run_all();
    w.apply(vec![Action::Remove {
        kind: berth_swarm_store::Kind::Service,
        id: "s".into(),
    }]);
    w.settle();
    assert!(
        w.tasks("s")
            .iter()
            .all(|t| t.desired_state == TaskState::Remove)
    );
    w.report(|_| true, TaskState::Shutdown);
    w.settle();
    assert!(w.tasks("s").is_empty());
}

fn update_state(w: &World, id: &str) -> (String, String) {
    let u = w
        .store
        .service(id)
        .unwrap()
        .update_status
        .clone()
        .unwrap_or_default();
    (u.state, u.message)
}

/// A service of `n` replicas whose tasks all run, then updated.
fn updated_service(config: UpdateConfig, n: u64) -> World {
    let mut w = World::new(&["n1", "n2"]);
    let mut s = service("s", replicated(n));
    s.spec.update_config = Some(config);
    w.apply(vec![Action::Create(Object::Service(s))]);
    w.settle();
    w.run_all();
    w.update_service("s", |s| {
        s.previous_spec = Some(s.spec.clone());
        s.previous_spec_version = s.spec_version;
        s.spec_version = 9;
        s.spec.task_template.force_update = 1;
        s.update_status = None;
    });
    w.settle();
    w
}

#[test]
fn an_update_completes_once_its_tasks_ran_for_the_monitor_period() {
    let mut w = updated_service(
        UpdateConfig {
            parallelism: 0,
            ..UpdateConfig::default()
        },
        2,
    );
    assert_eq!(update_state(&w, "s").0, "updating");
    w.agents();
    assert_eq!(update_state(&w, "s").0, "updating", "still monitoring");
    w.now += Duration::seconds(5);
    w.settle();
    assert_eq!(
        update_state(&w, "s"),
        ("completed".into(), "update completed".into())
    );
}

#[test]
fn a_failing_update_pauses_or_rolls_back_as_configured() {
    let mut w = updated_service(UpdateConfig::default(), 2);
    w.report(
        |t| t.spec_version == 9 && !t.node_id.is_empty(),
        TaskState::Failed,
    );
    w.settle();
    let (state, msg) = update_state(&w, "s");
    assert_eq!(state, "paused");
    assert!(
        msg.starts_with("update paused due to failure or early termination of task t"),
        "{msg}"
    );
    let fresh = w.live("s").iter().filter(|t| t.spec_version == 9).count();
    assert!(fresh <= 1, "a paused update starts no more slots");

    let mut w = updated_service(
        UpdateConfig {
            parallelism: 1,
            failure_action: Some("rollback".into()),
            ..UpdateConfig::default()
        },
        2,
    );
    w.report(
        |t| t.spec_version == 9 && !t.node_id.is_empty(),
        TaskState::Failed,
    );
    w.settle();
    let (state, msg) = update_state(&w, "s");
    assert_eq!(state, "rollback_started");
    assert!(
        msg.starts_with("update rolled back due to failure"),
        "{msg}"
    );
    let s = w.store.service("s").unwrap().clone();
    assert_eq!(
        s.spec.task_template.force_update, 0,
        "the previous spec is back"
    );
    w.agents();
    assert!(w.live("s").iter().all(|t| t.spec_version == s.spec_version));
    w.now += Duration::seconds(5);
    w.settle();
    assert_eq!(
        update_state(&w, "s"),
        ("rollback_completed".into(), "rollback completed".into())
    );
}

#[test]
fn a_paused_node_keeps_its_global_task_and_a_global_update_reaches_every_node() {
    let mut w = World::new(&["n1", "n2"]);
    let global = ServiceMode {
        global: Some(Default::default()),
        ..ServiceMode::default()
    };
    w.apply(vec![Action::Create(Object::Service(service("g", global)))]);
    w.settle();
    w.run_all();
    w.set_node("n1", |n| n.spec.availability = Availability::Pause);
    w.settle();
    assert_eq!(w.live("g").len(), 2, "pause keeps what runs");
    w.set_node("n1", |n| n.spec.availability = Availability::Active);
    w.update_service("g", |s| {
        s.spec.task_template.force_update = 1;
        s.spec.update_config = Some(UpdateConfig::default());
    });
    for _ in 0..4 {
        w.settle();
        w.agents();
    }
    let live = w.live("g");
    assert_eq!(live.len(), 2);
    assert!(
        live.iter().all(|t| t.spec.force_update == 1),
        "every node runs the new template"
    );
    assert_eq!(spread(&live), [1, 1]);
}

#[test]
fn a_rebalance_moves_only_the_excess_onto_a_new_node() {
    let mut w = World::new(&["n1", "n2"]);
    w.apply(vec![Action::Create(Object::Service(service(
        "s",
        replicated(4),
    )))]);
    w.settle();
    w.agents();
    assert_eq!(spread(&w.live("s")), [2, 2]);
    w.apply(vec![Action::Create(Object::Node(node(
        "n3",
        NodeRole::Worker,
    )))]);
    w.settle();
    assert_eq!(spread(&w.live("s")), [2, 2], "nothing moves by itself");
    let before: Vec<String> = w.live("s").into_iter().map(|t| t.id).collect();
    let moving = super::rebalance::tasks_to_move(&w.store, w.store.service("s").unwrap());
    assert_eq!(moving.len(), 1);
    w.update_service("s", |s| s.rebalance = moving.clone());
    for _ in 0..3 {
        w.agents();
    }
    let live = w.live("s");
    assert_eq!(spread(&live), [2, 1, 1], "n1 gave one to n3");
    let kept = live.iter().filter(|t| before.contains(&t.id)).count();
    assert_eq!(kept, 3, "only the moved task was replaced");
    assert!(w.store.service("s").unwrap().rebalance.is_empty());
}
