//! The registry, and an agent's publisher over a fake executor.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use berth_swarm_rpc::pb::Blob;
use berth_swarm_store::{Task, TaskState};
use tokio::sync::{mpsc, watch};

use super::*;
use crate::executor::{ContainerState, LogEntries, NodeContext, TaskExecutor};
use crate::worker::logs::Publisher;

fn options(follow: bool) -> LogOptions {
    LogOptions {
        follow,
        stdout: true,
        stderr: true,
        ..LogOptions::default()
    }
}

fn selector() -> LogSelector {
    LogSelector {
        service_ids: vec!["svc".into()],
        task_ids: Vec::new(),
    }
}

fn nodes(n: &[&str]) -> Option<HashSet<String>> {
    Some(n.iter().map(|s| s.to_string()).collect())
}

fn line(node: &str) -> LogLine {
    LogLine {
        node_id: node.into(),
        service_id: "svc".into(),
        task_id: "t".into(),
        stream: LogStream::Stdout,
        timestamp: 1,
        attrs: Vec::new(),
        data: b"hi\n".to_vec(),
    }
}

#[tokio::test]
async fn a_subscription_goes_to_the_connected_nodes_it_is_for() {
    let b = Arc::new(Broker::default());
    let (_g1, mut a1) = b.attach("n1");
    let (_g2, mut a2) = b.attach("n2");
    let sub = b.subscribe(
        "s1".into(),
        selector(),
        options(false),
        nodes(&["n1", "n3"]),
    );
    assert_eq!(sub.served, vec!["n1"]);
    assert_eq!(a1.try_recv().expect("n1 hears it").id, "s1");
    assert!(a2.try_recv().is_err(), "n2 is not asked");
    assert!(b.publisher("s1", "n1").is_some());
    assert!(b.publisher("s1", "n2").is_none(), "n2 may not publish");
    drop(sub);
    let close = a1.try_recv().expect("n1 hears the close");
    assert!(close.close);
    assert!(b.publisher("s1", "n1").is_none());
}

#[tokio::test]
async fn lines_and_ends_reach_the_reader_once() {
    let b = Arc::new(Broker::default());
    let (_g, _a) = b.attach("n1");
    let mut sub = b.subscribe("s1".into(), selector(), options(false), nodes(&["n1"]));
    let tx = b.publisher("s1", "n1").expect("n1 publishes");
    tx.send(BrokerEvent::Lines(vec![line("n1")]))
        .await
        .expect("sent");
    b.node_done("s1", "n1", None).await;
    b.node_done("s1", "n1", Some("again".into())).await;
    assert_eq!(
        sub.events.recv().await,
        Some(BrokerEvent::Lines(vec![line("n1")]))
    );
    assert_eq!(
        sub.events.recv().await,
        Some(BrokerEvent::NodeDone {
            node: "n1".into(),
            error: None
        })
    );
    assert!(sub.events.try_recv().is_err(), "a node ends once");
}

#[tokio::test]
async fn an_agent_that_goes_ends_its_subscriptions_with_why() {
    let b = Arc::new(Broker::default());
    let (guard, _a) = b.attach("n1");
    let mut sub = b.subscribe("s1".into(), selector(), options(false), nodes(&["n1"]));
    drop(guard);
    let done = tokio::time::timeout(Duration::from_secs(2), sub.events.recv())
        .await
        .expect("heard in time");
    assert_eq!(
        done,
        Some(BrokerEvent::NodeDone {
            node: "n1".into(),
            error: Some("node n1 disconnected unexpectedly".into())
        })
    );
    assert!(b.connected().is_empty());
}

#[tokio::test]
async fn a_replaced_session_stays_when_the_old_one_goes() {
    let b = Arc::new(Broker::default());
    let (old, _a) = b.attach("n1");
    let (_new, _b) = b.attach("n1");
    drop(old);
    assert_eq!(b.connected(), HashSet::from(["n1".to_string()]));
}

#[tokio::test]
async fn a_follower_reaches_agents_that_connect_later_again() {
    let b = Arc::new(Broker::default());
    let _sub = b.subscribe("f1".into(), selector(), options(true), None);
    let (g, mut a) = b.attach("n9");
    assert_eq!(a.try_recv().expect("sent on attach").id, "f1");
    drop(g);
    let (_g, mut a) = b.attach("n9");
    assert_eq!(a.try_recv().expect("sent again").id, "f1");
    // a reader's subscription does not go to late agents
    let _r = b.subscribe("r1".into(), selector(), options(false), nodes(&["n8"]));
    let (_g8, mut a8) = b.attach("n8");
    assert_eq!(a8.try_recv().expect("only the follower").id, "f1");
    assert!(a8.try_recv().is_err());
}

/// Containers' logs by name; names not listed have no container.
struct FakeExecutor {
    logs: HashMap<String, Vec<LogEntry>>,
}

#[tonic::async_trait]
impl TaskExecutor for FakeExecutor {
    async fn prepare(&self, _: &Task, _: &NodeContext) -> Result<String, String> {
        Err("unused".into())
    }
    async fn start(&self, _: &str) -> Result<i64, String> {
        Err("unused".into())
    }
    async fn wait(&self, _: &str) -> Result<i64, String> {
        Err("unused".into())
    }
    async fn inspect(&self, _: &str) -> Option<ContainerState> {
        None
    }
    async fn stop(&self, _: &str, _: Option<Duration>) -> Result<(), String> {
        Ok(())
    }
    async fn remove(&self, _: &str) -> Result<(), String> {
        Ok(())
    }
    async fn task_containers(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    async fn logs(&self, container: &str, _: &LogOptions) -> Result<LogEntries, String> {
        let entries = self
            .logs
            .get(container)
            .ok_or_else(|| format!("No such container: {container}"))?;
        let (tx, rx) = mpsc::channel(entries.len() + 1);
        for e in entries {
            let _ = tx.try_send(Ok(e.clone()));
        }
        Ok(rx)
    }
}

fn entry(text: &str) -> LogEntry {
    LogEntry {
        stream: LogStream::Stdout,
        timestamp: 7,
        attrs: Vec::new(),
        line: text.as_bytes().to_vec(),
    }
}

fn assigned_task(id: &str, service: &str, state: TaskState) -> Task {
    let mut t = Task {
        id: id.into(),
        service_id: service.into(),
        service_name: service.into(),
        slot: 1,
        node_id: "n1".into(),
        ..Task::default()
    };
    t.status.state = state;
    t
}

#[tokio::test]
async fn a_publisher_sends_its_matching_tasks_lines_then_closes() {
    let kept = assigned_task("t1", "svc", TaskState::Running);
    let gone = assigned_task("t2", "svc", TaskState::Shutdown);
    let other = assigned_task("t3", "other", TaskState::Running);
    let exec = FakeExecutor {
        logs: HashMap::from([
            (kept.container_name(), vec![entry("one\n"), entry("two\n")]),
            (other.container_name(), vec![entry("not mine\n")]),
        ]),
    };
    let publisher = Publisher {
        node_id: "n1".into(),
        exec: Arc::new(exec),
        sub: SubscriptionMessage {
            id: "s1".into(),
            selector: selector(),
            options: options(false),
            close: false,
        },
    };
    let (_keep, assigned) = watch::channel(Arc::new(vec![kept, gone, other]));
    let (tx, mut rx) = mpsc::channel::<Blob>(16);
    tokio::time::timeout(Duration::from_secs(5), publisher.publish(assigned, tx))
        .await
        .expect("a reader's publication ends");
    let mut lines = Vec::new();
    let mut closes = 0;
    while let Ok(b) = rx.try_recv() {
        let m: PublishMessage = serde_json::from_slice(&b.json).expect("json");
        assert_eq!(m.subscription_id, "s1");
        assert_eq!(closes, 0, "the close comes last");
        closes += usize::from(m.close);
        lines.extend(m.lines);
    }
    assert_eq!(closes, 1);
    let texts: Vec<&[u8]> = lines.iter().map(|l| l.data.as_slice()).collect();
    assert_eq!(texts, vec![b"one\n".as_slice(), b"two\n".as_slice()]);
    assert!(lines.iter().all(|l| l.task_id == "t1" && l.node_id == "n1"));
}
