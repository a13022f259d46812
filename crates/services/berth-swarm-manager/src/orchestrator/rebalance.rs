//! `berth service rebalance`: which of a replicated service's tasks move
//! so that its tasks spread evenly over the nodes that may run them. Only
//! the excess moves (Docker's `update --force` replaces every task); the
//! updater then replaces those tasks under the service's update config,
//! and the scheduler puts each successor on the least loaded node.

use std::collections::BTreeMap;

use berth_swarm_store::{Service, Store, Task, TaskState};

use super::constraints;
use super::plan::{node_usable, placement_constraints};

/// The ids of the tasks to move, fewest first from the most loaded nodes.
/// Empty when the service is already as even as it can be.
pub fn tasks_to_move(store: &Store, s: &Service) -> Vec<String> {
    let rules = placement_constraints(s);
    let mut per_node: BTreeMap<&str, Vec<&Task>> = store
        .nodes()
        .filter(|n| node_usable(n) && constraints::node_matches(&rules, n))
        .map(|n| (n.id.as_str(), Vec::new()))
        .collect();
    let mut live = 0;
    for t in store.tasks().filter(|t| t.service_id == s.id && is_live(t)) {
        live += 1;
        if let Some(v) = per_node.get_mut(t.node_id.as_str()) {
            v.push(t);
        }
    }
    let nodes = per_node.len();
    if nodes == 0 {
        return Vec::new();
    }
    let mut loads: Vec<Vec<&Task>> = per_node.into_values().collect();
    // the most loaded keep the larger shares: fewest moves
    loads.sort_by_key(|v| std::cmp::Reverse(v.len()));
    let (floor, larger) = (live / nodes, live % nodes);
    let mut moving = Vec::new();
    for (i, tasks) in loads.iter_mut().enumerate() {
        let target = floor + usize::from(i < larger);
        // the highest slots move: the lowest stay where they are
        tasks.sort_by_key(|t| t.slot);
        moving.extend(tasks.iter().skip(target).map(|t| t.id.clone()));
    }
    moving
}

fn is_live(t: &Task) -> bool {
    t.desired_state <= TaskState::Running && !t.status.state.is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_swarm_store::{Action, Node, NodeState, Object};

    fn store(loads: &[usize]) -> (Store, Service) {
        let mut st = Store::default();
        let s = Service {
            id: "s".into(),
            ..Service::default()
        };
        let mut actions = vec![Action::Create(Object::Service(s.clone()))];
        let mut slot = 0;
        for (i, n) in loads.iter().enumerate() {
            let mut node = Node {
                id: format!("n{i}"),
                ..Node::default()
            };
            node.status.state = NodeState::Ready;
            actions.push(Action::Create(Object::Node(node)));
            for _ in 0..*n {
                slot += 1;
                actions.push(Action::Create(Object::Task(Task {
                    id: format!("t{slot}"),
                    service_id: "s".into(),
                    slot,
                    node_id: format!("n{i}"),
                    desired_state: TaskState::Running,
                    ..Task::default()
                })));
            }
        }
        st.apply(&actions, 1, chrono::Utc::now()).unwrap();
        (st, s)
    }

    #[test]
    fn only_the_excess_moves() {
        let (st, s) = store(&[3, 0, 0]);
        assert_eq!(tasks_to_move(&st, &s), ["t2", "t3"]);
        let (st, s) = store(&[2, 2, 0]);
        assert_eq!(tasks_to_move(&st, &s).len(), 1);
        let (st, s) = store(&[2, 1, 1]);
        assert!(tasks_to_move(&st, &s).is_empty(), "even as it can be");
    }

    #[test]
    fn a_node_that_cannot_run_tasks_gets_none() {
        let (mut st, s) = store(&[2, 0]);
        let mut n = st.node("n1").unwrap().clone();
        n.status.state = NodeState::Down;
        st.apply(&[Action::Update(Object::Node(n))], 2, chrono::Utc::now())
            .unwrap();
        assert!(tasks_to_move(&st, &s).is_empty());
    }
}
