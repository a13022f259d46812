use super::*;
use crate::logs::{LogLine, LogStream};

fn task(id: &str, node: &str, state: TaskState) -> Task {
    let mut t = Task {
        id: id.into(),
        service_id: "s".into(),
        node_id: node.into(),
        ..Task::default()
    };
    t.status.state = state;
    t
}

fn line(node: &str) -> LogLine {
    LogLine {
        node_id: node.into(),
        service_id: "s".into(),
        task_id: "t".into(),
        stream: LogStream::Stdout,
        timestamp: 0,
        attrs: Vec::new(),
        data: b"x\n".to_vec(),
    }
}

#[test]
fn a_reader_plans_the_nodes_of_its_tasks_and_names_unscheduled_ones() {
    let tasks = [
        task("a", "n1", TaskState::Running),
        task("b", "n2", TaskState::Complete),
        task("c", "n1", TaskState::Running),
        task("d", "", TaskState::Pending),
    ];
    let plan = plan_for(LogSelector::default(), false, &tasks, false);
    let nodes = plan.nodes.expect("a reader has nodes");
    assert_eq!(nodes, HashSet::from(["n1".to_string(), "n2".to_string()]));
    assert_eq!(plan.unscheduled, vec!["task d has not been scheduled"]);
}

#[test]
fn a_follower_reads_every_node() {
    let plan = plan_for(
        LogSelector::default(),
        true,
        &[task("d", "", TaskState::New)],
        true,
    );
    assert!(plan.tty);
    assert!(plan.nodes.is_none());
    assert!(plan.unscheduled.is_empty());
}

#[test]
fn a_reader_finishes_when_every_source_is_open_and_every_node_done() {
    let mut m = Merge::new(false, vec!["n1".into()]);
    assert!(!m.finished(), "relays not open yet");
    assert_eq!(m.take(Gathered::Served(vec!["n2".into()])), Vec::new());
    assert_eq!(
        m.take(Gathered::Event(BrokerEvent::Lines(vec![line("n2")])))
            .len(),
        1
    );
    m.take(Gathered::Unreached(vec!["n3".into()]));
    assert!(!m.finished(), "n1 and n2 still reading");
    m.take(Gathered::Event(BrokerEvent::NodeDone {
        node: "n1".into(),
        error: None,
    }));
    m.take(Gathered::Event(BrokerEvent::NodeDone {
        node: "n2".into(),
        error: Some("node n2 disconnected unexpectedly".into()),
    }));
    assert!(m.finished());
    assert_eq!(
        m.warning(vec!["task d has not been scheduled".into()])
            .as_deref(),
        Some(
            "warning: incomplete log stream. some logs could not be retrieved for the following reasons: node n3 is not available, node n2 disconnected unexpectedly, task d has not been scheduled"
        )
    );
}

#[test]
fn a_complete_read_has_no_warning() {
    let mut m = Merge::new(false, Vec::new());
    m.take(Gathered::Unreached(Vec::new()));
    assert!(m.finished());
    assert_eq!(m.warning(Vec::new()), None);
}

#[test]
fn a_follower_never_finishes_nor_warns() {
    let mut m = Merge::new(true, Vec::new());
    m.take(Gathered::Unreached(vec!["n3".into()]));
    assert!(!m.finished());
    assert_eq!(m.warning(Vec::new()), None);
}
