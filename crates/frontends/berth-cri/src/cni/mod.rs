//! Pods on CNI networks: when the CNI directory names a network, a pod's
//! sandbox gets a namespace the engine pins and the CNI's plugins wire
//! (the loopback list on `lo`, the network's list on `eth0`), and loses
//! it only after their DEL. Each attachment is recorded in the metadata
//! store before its ADD and until its DEL has run, so that a daemon killed
//! at any instant still releases addresses and rules when it comes back.
//! The design, with containerd's behaviour measured beside it, is
//! docs/plans/cri-cni.md.

pub mod config;
pub mod plugin;

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use berth_engine::{Engine, Error as EngineError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::broadcast::error::RecvError;

pub use config::{Directory, NetworkList};
use plugin::Invocation;

/// The interface the pod's network is given, as the kubelet expects.
const POD_IF: &str = "eth0";

/// Where an attachment stands: recorded before its ADD, so that a crash
/// midway is undone by a DEL; `added` once the result is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Adding,
    Added,
}

/// One list run for a pod: its interface, the list as ADD saw it, and the
/// ADD's result (which DEL hands back to the plugins).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attachment {
    pub ifname: String,
    pub list: Value,
    #[serde(default)]
    pub result: Option<Value>,
}

/// A pod's network, as recorded in the `pod_networks` table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PodNetwork {
    pub phase: Phase,
    /// `CNI_ARGS`, as ADD had them: DEL must repeat them
    pub args: String,
    pub capability_args: Map<String, Value>,
    pub attachments: Vec<Attachment>,
    /// the pod's addresses, IPv4 first
    #[serde(default)]
    pub ips: Vec<String>,
}

/// What the kubelet says of a pod, for `CNI_ARGS` and the capability
/// arguments.
pub struct PodRequest<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub uid: &'a str,
    pub port_mappings: Vec<Value>,
    pub dns: Option<Value>,
}

pub struct Cni {
    engine: Arc<Engine>,
    dir: Directory,
    /// one lock a sandbox: its ADD and DEL never overlap
    locks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Cni {
    pub fn new(engine: Arc<Engine>) -> Arc<Cni> {
        let s = &engine.config().settings;
        let dir = Directory {
            conf_dir: s.cni_conf_dir.clone(),
            bin_dirs: s.cni_bin_dirs.clone(),
        };
        Arc::new(Cni {
            engine,
            dir,
            locks: Default::default(),
        })
    }

    pub fn directory(&self) -> &Directory {
        &self.dir
    }

    /// The network new pods go on: None means berth's bridge.
    pub fn network(&self) -> Result<Option<NetworkList>> {
        self.dir.load()
    }

    /// Sandbox `id`'s recorded network, if it has one.
    pub fn record(&self, id: &str) -> Option<PodNetwork> {
        record_of(&self.engine, id)
    }

    fn save(&self, id: &str, rec: &PodNetwork) -> Result<()> {
        let json = serde_json::to_value(rec)?;
        self.engine
            .put_pod_network(id, &json)
            .context("recording the pod's network")
    }

    fn lock_of(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(id.to_string()).or_default().clone()
    }

    /// Drops the locks no one holds: a lock only the map has is free.
    fn sweep_locks(&self) {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.retain(|_, l| Arc::strong_count(l) > 1);
    }

    /// Runs `work` (not started until the lock is held) under sandbox
    /// `id`'s lock, then lets the lock go.
    async fn serialised<T>(&self, id: &str, work: impl std::future::Future<Output = T>) -> T {
        let lock = self.lock_of(id);
        let out = {
            let _guard = lock.lock().await;
            work.await
        };
        drop(lock);
        self.sweep_locks();
        out
    }

    /// Pins sandbox `id`'s namespace and runs ADD of the loopback list and
    /// of `list` in it. On failure everything done is undone (DEL, unpin,
    /// record deleted) and the plugin's words are returned.
    pub async fn attach(
        &self,
        id: &str,
        list: &NetworkList,
        pod: &PodRequest<'_>,
    ) -> Result<PodNetwork> {
        self.serialised(id, self.attach_locked(id, list, pod)).await
    }

    async fn attach_locked(
        &self,
        id: &str,
        list: &NetworkList,
        pod: &PodRequest<'_>,
    ) -> Result<PodNetwork> {
        let loopback = NetworkList::parse("", config::LOOPBACK_LIST.as_bytes(), false)?;
        let mut rec = PodNetwork {
            phase: Phase::Adding,
            args: cni_args(id, pod),
            capability_args: capability_args(pod),
            attachments: vec![
                Attachment {
                    ifname: "lo".into(),
                    list: loopback.to_json(),
                    result: None,
                },
                Attachment {
                    ifname: POD_IF.into(),
                    list: list.to_json(),
                    result: None,
                },
            ],
            ips: Vec::new(),
        };
        self.save(id, &rec)?;
        let added = self.add_all(id, &rec, &loopback, list).await;
        match added {
            // containerd's check: a pod without an address on eth0 is no pod
            Ok((_, pod_result)) if plugin::pod_ips(&pod_result, POD_IF).is_empty() => {
                let e = anyhow::anyhow!(
                    "failed to find network info for sandbox: the plugins gave {POD_IF} no address"
                );
                Err(self.undo(id, &rec, e).await)
            }
            Ok((lo, pod_result)) => {
                berth_core::crash_point("cri-cni-after-add");
                rec.ips = plugin::pod_ips(&pod_result, POD_IF);
                rec.attachments[0].result = Some(lo);
                rec.attachments[1].result = Some(pod_result);
                rec.phase = Phase::Added;
                match self.save(id, &rec) {
                    Ok(()) => Ok(rec),
                    Err(e) => Err(self.undo(id, &rec, e).await),
                }
            }
            Err(e) => Err(self.undo(id, &rec, e).await),
        }
    }

    async fn add_all(
        &self,
        id: &str,
        rec: &PodNetwork,
        loopback: &NetworkList,
        list: &NetworkList,
    ) -> Result<(Value, Value)> {
        let netns = self.engine.pin_pod_netns(id).map_err(anyhow::Error::new)?;
        let netns = netns.display().to_string();
        let inv = |ifname: &'static str| Invocation {
            dir: &self.dir,
            container_id: id,
            netns: &netns,
            ifname,
            args: &rec.args,
            capability_args: &rec.capability_args,
        };
        // containerd runs the two at once; they touch different interfaces
        let (lo_inv, pod_inv) = (inv("lo"), inv(POD_IF));
        let (lo, pod) = tokio::join!(plugin::add(loopback, &lo_inv), plugin::add(list, &pod_inv));
        Ok((lo?, pod?))
    }

    /// Undoes a failed attach; the error to report, with what the undoing
    /// could not do logged.
    async fn undo(&self, id: &str, rec: &PodNetwork, err: anyhow::Error) -> anyhow::Error {
        if let Err(e) = self.release(id, rec).await {
            tracing::warn!(sandbox = %short(id), error = %format!("{e:#}"), "undoing a failed CNI ADD");
        }
        err
    }

    /// Runs DEL for sandbox `id`'s network, then unpins its namespace and
    /// deletes its record. A sandbox without a record has no DEL to run,
    /// but a pin a crash left after the record went is let go.
    pub async fn detach(&self, id: &str) -> Result<()> {
        let work = async {
            match self.record(id) {
                Some(rec) => self.release(id, &rec).await,
                None if self.owns_netns(id) => {
                    self.engine.unpin_pod_netns(id).map_err(anyhow::Error::new)
                }
                None => Ok(()),
            }
        };
        self.serialised(id, work).await
    }

    /// Whether the pin of `id`, if any, is the CRI's to let go: its sandbox
    /// is a CNI pod's, or gone (a bridge pod's namespace is the engine's).
    fn owns_netns(&self, id: &str) -> bool {
        match self.engine.container_inspect(id, false) {
            Ok(v) => v.record.id == id && v.record.pod_netns,
            Err(EngineError::NotFound(_)) => true,
            Err(_) => false,
        }
    }

    /// DEL of each attachment (loopback first, as containerd does). A DEL
    /// that fails keeps the record and the namespace, so that a later DEL
    /// (the kubelet's retry, or the next start) can still remove the rules
    /// that need the namespace to be found.
    async fn release(&self, id: &str, rec: &PodNetwork) -> Result<()> {
        let netns = self
            .engine
            .pod_netns(id)
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let mut first_err = None;
        for a in &rec.attachments {
            let list = NetworkList::from_json(&a.list)?;
            let inv = Invocation {
                dir: &self.dir,
                container_id: id,
                netns: &netns,
                ifname: &a.ifname,
                args: &rec.args,
                capability_args: &rec.capability_args,
            };
            if let Err(e) = plugin::del(&list, &inv, a.result.as_ref()).await {
                first_err.get_or_insert(e);
            }
        }
        if let Some(e) = first_err {
            return Err(e.context(format!("releasing the network of sandbox {}", short(id))));
        }
        berth_core::crash_point("cri-cni-after-del");
        // the pin goes first: a record without a pin is DEL'd again (with
        // no namespace, harmlessly), a pin without a record would leak
        self.engine
            .unpin_pod_netns(id)
            .map_err(anyhow::Error::new)?;
        self.engine
            .delete_pod_network(id)
            .context("forgetting the pod's network")?;
        Ok(())
    }

    /// Before the CRI serves: finds the ADDs a crash cut short and the
    /// networks of sandboxes removed while the daemon was down (or before
    /// their DEL ran), and releases them in the background: a hung plugin
    /// must not keep the CRI from serving.
    pub fn recover(self: &Arc<Self>) {
        for id in self.stale(true) {
            self.spawn_detach(id);
        }
    }

    /// The sandboxes whose recorded networks are to be released: those
    /// whose sandbox is gone and, with `half_made` (only before serving,
    /// when no ADD can be under way), those whose ADD never finished.
    fn stale(&self, half_made: bool) -> Vec<String> {
        let recs = match self.engine.pod_networks() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "listing pod networks");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for (id, rec) in recs {
            let Ok(rec) = serde_json::from_value::<PodNetwork>(rec) else {
                tracing::warn!(sandbox = %short(&id), "a pod network record that does not read is kept");
                continue;
            };
            let gone = matches!(
                self.engine.container_inspect(&id, false),
                Err(EngineError::NotFound(_))
            );
            if gone || (half_made && rec.phase == Phase::Adding) {
                out.push(id);
            }
        }
        out
    }

    fn spawn_detach(self: &Arc<Self>, id: String) {
        let cni = self.clone();
        tokio::spawn(async move {
            if let Err(e) = cni.detach(&id).await {
                tracing::warn!(sandbox = %short(&id), error = %format!("{e:#}"), "releasing a pod network");
            }
        });
    }

    /// Releases the network of a sandbox removed through the Docker API
    /// (`docker rm -f`), which the CRI's own calls did not see; and once a
    /// minute those of sandboxes that are gone while their DEL failed, so
    /// that a plugin's passing failure does not leak an address for good.
    pub fn watch_removals(self: &Arc<Self>) {
        let cni = self.clone();
        let (_, mut rx) = self.engine.events().subscribe(None);
        tokio::spawn(async move {
            let mut sweep = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                let received = tokio::select! {
                    r = rx.recv() => r,
                    _ = sweep.tick() => {
                        for id in cni.stale(false) {
                            cni.spawn_detach(id);
                        }
                        continue;
                    }
                };
                let ev = match received {
                    Ok(ev) => ev,
                    // missed events wait for the next sweep
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return,
                };
                let sandbox = ev
                    .actor
                    .attributes
                    .get(crate::labels::KIND)
                    .map(String::as_str)
                    == Some(crate::labels::SANDBOX);
                if ev.kind == "container" && ev.action == "destroy" && sandbox {
                    cni.spawn_detach(ev.actor.id.clone());
                }
            }
        });
    }
}

/// Sandbox `id`'s recorded network, if it has one (one that does not
/// read is logged and taken as none).
pub fn record_of(engine: &Engine, id: &str) -> Option<PodNetwork> {
    let read = engine
        .pod_network(id)
        .map_err(anyhow::Error::new)
        .and_then(|v| {
            v.map(serde_json::from_value)
                .transpose()
                .map_err(Into::into)
        });
    match read {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(sandbox = %short(id), error = %format!("{e:#}"), "reading a pod network");
            None
        }
    }
}

/// The kubelet's `CNI_ARGS`; `IgnoreUnknown` lets plugins that take none
/// of them (the bridge) run.
fn cni_args(id: &str, pod: &PodRequest<'_>) -> String {
    format!(
        "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={id};K8S_POD_UID={}",
        pod.namespace, pod.name, pod.uid
    )
}

/// The capability arguments, in the CNI conventions' spelling.
fn capability_args(pod: &PodRequest<'_>) -> Map<String, Value> {
    let mut m = Map::new();
    if !pod.port_mappings.is_empty() {
        m.insert(
            "portMappings".into(),
            Value::Array(pod.port_mappings.clone()),
        );
    }
    if let Some(dns) = &pod.dns {
        m.insert("dns".into(), dns.clone());
    }
    m
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kubelets_args_and_capabilities() {
        let pod = PodRequest {
            name: "web",
            namespace: "default",
            uid: "u-1",
            port_mappings: vec![
                serde_json::json!({"hostPort":12000,"containerPort":80,"protocol":"tcp","hostIP":""}),
            ],
            dns: None,
        };
        assert_eq!(
            cni_args("abc", &pod),
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1"
        );
        let caps = capability_args(&pod);
        assert_eq!(caps.len(), 1);
        assert_eq!(caps["portMappings"][0]["hostPort"], 12000);
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let rec = PodNetwork {
            phase: Phase::Added,
            args: "IgnoreUnknown=1".into(),
            capability_args: Map::new(),
            attachments: vec![Attachment {
                ifname: "eth0".into(),
                list: serde_json::json!({"name":"n"}),
                result: Some(serde_json::json!({"ips":[]})),
            }],
            ips: vec!["10.88.0.2".into()],
        };
        let json = serde_json::to_value(&rec).unwrap();
        assert_eq!(json["phase"], "added");
        let back: PodNetwork = serde_json::from_value(json).unwrap();
        assert_eq!(back.ips, rec.ips);
        assert_eq!(back.phase, Phase::Added);
    }
}
