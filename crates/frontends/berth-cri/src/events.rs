//! GetContainerEvents, the kubelet's evented PLEG: the engine's container
//! events of pods and their containers, as CRI events carrying the pod's
//! status and its containers' at that moment.

use std::sync::Arc;

use berth_engine::{Engine, Event};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tonic::codegen::BoxStream;

use crate::labels::{KIND, SANDBOX, SANDBOX_ID};
use crate::{containers, pb, pods};

/// The live events from now on, until the client goes away.
pub fn stream(engine: Arc<Engine>) -> BoxStream<pb::ContainerEventResponse> {
    let (_, mut rx) = engine.events().subscribe(None);
    let (tx, out) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let received = tokio::select! {
                r = rx.recv() => r,
                // a client gone between events lets go of the bus at once
                () = tx.closed() => return,
            };
            let ev = match received {
                Ok(ev) => ev,
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "a CRI event client fell behind");
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            let Some(kind) = event_type(&ev) else {
                continue;
            };
            if tx.send(Ok(response(&engine, &ev, kind))).await.is_err() {
                return;
            }
        }
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(out))
}

/// The CRI's kind of an engine event, for a pod's sandbox or container.
fn event_type(ev: &Event) -> Option<pb::ContainerEventType> {
    use pb::ContainerEventType as T;
    if ev.kind != "container" || !ev.actor.attributes.contains_key(KIND) {
        return None;
    }
    Some(match ev.action.as_str() {
        "create" => T::ContainerCreatedEvent,
        "start" => T::ContainerStartedEvent,
        "die" => T::ContainerStoppedEvent,
        "destroy" => T::ContainerDeletedEvent,
        _ => return None,
    })
}

fn response(
    engine: &Engine,
    ev: &Event,
    kind: pb::ContainerEventType,
) -> pb::ContainerEventResponse {
    let attrs = &ev.actor.attributes;
    let sandbox = if attrs.get(KIND).map(String::as_str) == Some(SANDBOX) {
        ev.actor.id.clone()
    } else {
        attrs.get(SANDBOX_ID).cloned().unwrap_or_default()
    };
    let pod = pods::find(engine, &sandbox).ok();
    let members = pods::members(engine, &sandbox).unwrap_or_default();
    pb::ContainerEventResponse {
        container_id: ev.actor.id.clone(),
        container_event_type: kind as i32,
        created_at: ev.time_nano,
        pod_sandbox_status: pod.as_ref().map(|v| pods::status_of(engine, v)),
        containers_statuses: members.iter().map(containers::status_of).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(action: &str, labels: &[(&str, &str)]) -> Event {
        Event {
            status: None,
            id: None,
            from: None,
            kind: "container".into(),
            action: action.into(),
            actor: berth_events::Actor {
                id: "c1".into(),
                attributes: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
            scope: "local".into(),
            time: 0,
            time_nano: 0,
        }
    }

    #[test]
    fn only_pods_lifecycle_events_count() {
        use pb::ContainerEventType as T;
        let pod = [(KIND, "container"), (SANDBOX_ID, "s1")];
        assert_eq!(
            event_type(&event("create", &pod)),
            Some(T::ContainerCreatedEvent)
        );
        assert_eq!(
            event_type(&event("start", &pod)),
            Some(T::ContainerStartedEvent)
        );
        assert_eq!(
            event_type(&event("die", &pod)),
            Some(T::ContainerStoppedEvent)
        );
        assert_eq!(
            event_type(&event("destroy", &pod)),
            Some(T::ContainerDeletedEvent)
        );
        assert_eq!(event_type(&event("exec_start: ls", &pod)), None);
        assert_eq!(event_type(&event("start", &[])), None, "not a pod's");
    }
}
