use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::networks::{AddressPools, Network};
use crate::objects::{Cluster, Meta, Node};
use crate::secrets::{BlobKind, Secret};
use crate::services::{Service, Task, TaskPatch};

/// swarmkit's store errors, in its words: clients see them.
#[derive(Clone, Debug, Error, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreError {
    #[error("object already exists")]
    AlreadyExists,
    #[error("object does not exist")]
    DoesNotExist,
    #[error("name conflicts with an existing object")]
    NameConflict,
    #[error("update out of sequence")]
    OutOfSequence,
    /// a batch that breaks a rule between objects (a reference to a
    /// secret that does not exist, removing one in use), in swarmkit's
    /// words; clients see it as InvalidArgument
    #[error("{0}")]
    InvalidArgument(String),
    /// a removal the state forbids (a network a service uses)
    #[error("{0}")]
    FailedPrecondition(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Kind {
    Cluster,
    Node,
    Service,
    Task,
    Secret,
    Config,
    Network,
}

impl Kind {
    /// Node names repeat (hostnames do); other kinds' names are keys.
    fn unique_names(self) -> bool {
        !matches!(self, Kind::Node | Kind::Task)
    }
}

// objects live in the store's maps and in batches, read in place; a box
// per variant would only add an allocation to every write
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Object {
    Cluster(Cluster),
    Node(Node),
    Service(Service),
    Task(Task),
    Secret(Secret),
    /// configs have a secret's shape; only what clients see differs
    Config(Secret),
    Network(Network),
}

impl Object {
    pub fn kind(&self) -> Kind {
        match self {
            Object::Cluster(_) => Kind::Cluster,
            Object::Node(_) => Kind::Node,
            Object::Service(_) => Kind::Service,
            Object::Task(_) => Kind::Task,
            Object::Secret(_) => Kind::Secret,
            Object::Config(_) => Kind::Config,
            Object::Network(_) => Kind::Network,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Object::Cluster(c) => &c.id,
            Object::Node(n) => &n.id,
            Object::Service(v) => &v.id,
            Object::Task(t) => &t.id,
            Object::Secret(x) | Object::Config(x) => &x.id,
            Object::Network(n) => &n.id,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Object::Cluster(c) => &c.spec.annotations.name,
            Object::Node(n) => &n.spec.annotations.name,
            Object::Service(v) => &v.spec.name,
            Object::Task(_) => "",
            Object::Secret(x) | Object::Config(x) => &x.spec.name,
            Object::Network(n) => &n.spec.name,
        }
    }

    pub fn meta(&self) -> &Meta {
        match self {
            Object::Cluster(c) => &c.meta,
            Object::Node(n) => &n.meta,
            Object::Service(v) => &v.meta,
            Object::Task(t) => &t.meta,
            Object::Secret(x) | Object::Config(x) => &x.meta,
            Object::Network(n) => &n.meta,
        }
    }

    fn meta_mut(&mut self) -> &mut Meta {
        match self {
            Object::Cluster(c) => &mut c.meta,
            Object::Node(n) => &mut n.meta,
            Object::Service(v) => &mut v.meta,
            Object::Task(t) => &mut t.meta,
            Object::Secret(x) | Object::Config(x) => &mut x.meta,
            Object::Network(n) => &mut n.meta,
        }
    }
}

/// One change in a batch. An update carries the version its writer read:
/// a batch whose update was read at another version is refused whole.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Action {
    Create(Object),
    Update(Object),
    Remove {
        kind: Kind,
        id: String,
    },
    /// a task's status, desired state or node, without a version check
    /// (`Task::patched`); a task gone since is skipped, not an error
    PatchTask {
        id: String,
        patch: TaskPatch,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    Create,
    Update,
    Remove,
}

/// A change as watchers see it: the object after (before, for a
/// removal), and before, for an update.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub kind: EventKind,
    pub object: Object,
    pub old: Option<Object>,
}

/// Every object by kind and id. Serialised whole, it is a Raft snapshot.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Store {
    objects: BTreeMap<Kind, BTreeMap<String, Object>>,
}

impl Store {
    pub fn get(&self, kind: Kind, id: &str) -> Option<&Object> {
        self.objects.get(&kind)?.get(id)
    }

    pub fn list(&self, kind: Kind) -> impl Iterator<Item = &Object> {
        self.objects.get(&kind).into_iter().flat_map(|m| m.values())
    }

    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.list(Kind::Node).filter_map(|o| match o {
            Object::Node(n) => Some(n),
            _ => None,
        })
    }

    pub fn node(&self, id: &str) -> Option<&Node> {
        match self.get(Kind::Node, id)? {
            Object::Node(n) => Some(n),
            _ => None,
        }
    }

    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.list(Kind::Service).filter_map(|o| match o {
            Object::Service(v) => Some(v),
            _ => None,
        })
    }

    pub fn service(&self, id: &str) -> Option<&Service> {
        match self.get(Kind::Service, id)? {
            Object::Service(v) => Some(v),
            _ => None,
        }
    }

    pub fn tasks(&self) -> impl Iterator<Item = &Task> {
        self.list(Kind::Task).filter_map(|o| match o {
            Object::Task(t) => Some(t),
            _ => None,
        })
    }

    pub fn task(&self, id: &str) -> Option<&Task> {
        match self.get(Kind::Task, id)? {
            Object::Task(t) => Some(t),
            _ => None,
        }
    }

    /// Secrets (`BlobKind::Secret`) or configs.
    pub fn blobs(&self, blob: BlobKind) -> impl Iterator<Item = &Secret> {
        self.list(kind_of(blob)).filter_map(|o| match o {
            Object::Secret(x) | Object::Config(x) => Some(x),
            _ => None,
        })
    }

    pub fn blob(&self, blob: BlobKind, id: &str) -> Option<&Secret> {
        match self.get(kind_of(blob), id)? {
            Object::Secret(x) | Object::Config(x) => Some(x),
            _ => None,
        }
    }

    pub fn networks(&self) -> impl Iterator<Item = &Network> {
        self.list(Kind::Network).filter_map(|o| match o {
            Object::Network(n) => Some(n),
            _ => None,
        })
    }

    pub fn network(&self, id: &str) -> Option<&Network> {
        match self.get(Kind::Network, id)? {
            Object::Network(n) => Some(n),
            _ => None,
        }
    }

    /// The cluster object (there is one, once the swarm exists).
    pub fn cluster(&self) -> Option<&Cluster> {
        self.list(Kind::Cluster).find_map(|o| match o {
            Object::Cluster(c) => Some(c),
            _ => None,
        })
    }

    /// Applies a batch whole or not at all, stamping what it writes with
    /// `index` (the log entry's) and `at` (the entry's time).
    pub fn apply(
        &mut self,
        actions: &[Action],
        index: u64,
        at: DateTime<Utc>,
    ) -> Result<Vec<Event>, StoreError> {
        let mut staged = Staged {
            store: self,
            changes: BTreeMap::new(),
            addresses: Default::default(),
        };
        let mut events = Vec::with_capacity(actions.len());
        for action in actions {
            events.extend(staged.stage(action, index, at)?);
        }
        let changes = std::mem::take(&mut staged.changes);
        for ((kind, id), after) in changes {
            let objects = self.objects.entry(kind).or_default();
            match after {
                Some(o) => objects.insert(id, o),
                None => objects.remove(&id),
            };
        }
        Ok(events)
    }
}

/// A service whose ports go through the routing mesh (swarmkit's
/// `IsIngressNetworkNeeded`): a published port in ingress mode, VIP mode.
pub fn publishes_ingress(s: &Service) -> bool {
    !s.spec.is_dnsrr()
        && s.spec.endpoint_spec.as_ref().is_some_and(|e| {
            e.ports
                .iter()
                .any(|p| p.publish_mode.as_deref().is_none_or(|m| m == "ingress"))
        })
}

/// Service, secret and config names are compared without case, as
/// swarmkit indexes them.
fn same_name(kind: Kind, a: &str, b: &str) -> bool {
    match kind {
        Kind::Service | Kind::Secret | Kind::Config | Kind::Network => a.eq_ignore_ascii_case(b),
        _ => a == b,
    }
}

impl BlobKind {
    pub fn store_kind(self) -> Kind {
        match self {
            BlobKind::Secret => Kind::Secret,
            BlobKind::Config => Kind::Config,
        }
    }

    pub fn object(self, x: Secret) -> Object {
        match self {
            BlobKind::Secret => Object::Secret(x),
            BlobKind::Config => Object::Config(x),
        }
    }
}

fn kind_of(blob: BlobKind) -> Kind {
    blob.store_kind()
}

/// A batch's view: the store with the batch's changes so far laid over it.
pub(crate) struct Staged<'a> {
    store: &'a Store,
    pub(crate) changes: BTreeMap<(Kind, String), Option<Object>>,
    /// addresses in use by network, as far as the batch has looked
    pub(crate) addresses: std::collections::HashMap<String, std::collections::HashSet<u32>>,
}

impl Staged<'_> {
    pub(crate) fn current(&self, kind: Kind, id: &str) -> Option<&Object> {
        match self.changes.get(&(kind, id.to_string())) {
            Some(after) => after.as_ref(),
            None => self.store.get(kind, id),
        }
    }

    /// The objects of a kind as the batch leaves them so far.
    pub(crate) fn all(&self, kind: Kind) -> impl Iterator<Item = &Object> {
        let staged = self
            .changes
            .iter()
            .filter(move |((k, _), _)| *k == kind)
            .filter_map(|(_, o)| o.as_ref());
        let stored = self
            .store
            .list(kind)
            .filter(move |o| !self.changes.contains_key(&(kind, o.id().to_string())));
        staged.chain(stored)
    }

    fn name_taken(&self, kind: Kind, name: &str, except_id: &str) -> bool {
        self.all(kind)
            .any(|o| o.id() != except_id && same_name(kind, o.name(), name))
    }

    /// swarmkit's `checkSecretExistence`: a service's every reference
    /// names an object of that id and that name.
    fn check_references(&self, o: &Object) -> Result<(), StoreError> {
        let Object::Service(service) = o else {
            return Ok(());
        };
        let Some(c) = &service.spec.task_template.container_spec else {
            return Ok(());
        };
        for blob in [BlobKind::Secret, BlobKind::Config] {
            let missing: Vec<&str> = c
                .blob_refs()
                .filter(|r| r.kind == blob)
                .filter(|r| {
                    !matches!(self.current(kind_of(blob), r.id),
                        Some(Object::Secret(x) | Object::Config(x)) if x.spec.name == r.name)
                })
                .map(|r| r.name)
                .collect();
            let what = blob.as_str();
            match missing.as_slice() {
                [] => {}
                [one] => {
                    return Err(StoreError::InvalidArgument(format!(
                        "{what} not found: {one}"
                    )));
                }
                many => {
                    let names = many.join(", ");
                    return Err(StoreError::InvalidArgument(format!(
                        "{what}s not found: {names}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// On an update, only references its current and previous specs did
    /// not have are checked, as swarmkit checks the client's spec alone: a
    /// rollback (or the orchestrator's own writes) must not be refused
    /// because a secret the old spec used has gone since.
    fn check_new_references(&self, o: &Object, old: &Object) -> Result<(), StoreError> {
        let (Object::Service(new), Object::Service(was)) = (o, old) else {
            return Ok(());
        };
        let known = |id: &str| {
            [Some(&was.spec), was.previous_spec.as_ref()]
                .into_iter()
                .flatten()
                .filter_map(|s| s.task_template.container_spec.as_ref())
                .any(|c| c.blob_refs().any(|r| r.id == id))
        };
        let introduces = new
            .spec
            .task_template
            .container_spec
            .as_ref()
            .is_some_and(|c| c.blob_refs().any(|r| !known(r.id)));
        if introduces {
            self.check_references(o)?;
        }
        Ok(())
    }

    /// swarmkit's `RemoveSecret`: not while a service's spec uses it.
    fn check_unused(&self, old: &Object) -> Result<(), StoreError> {
        let (blob, x) = match old {
            Object::Secret(x) => (BlobKind::Secret, x),
            Object::Config(x) => (BlobKind::Config, x),
            _ => return Ok(()),
        };
        let mut users: Vec<(&str, &str)> = self
            .all(Kind::Service)
            .filter_map(|o| match o {
                Object::Service(s) => Some(s),
                _ => None,
            })
            .filter(|s| {
                s.spec
                    .task_template
                    .container_spec
                    .as_ref()
                    .is_some_and(|c| c.blob_refs().any(|r| r.kind == blob && r.id == x.id))
            })
            .map(|s| (s.id.as_str(), s.spec.name.as_str()))
            .collect();
        if users.is_empty() {
            return Ok(());
        }
        users.sort();
        let names: Vec<&str> = users.iter().map(|(_, n)| *n).collect();
        let plural = if names.len() == 1 {
            "service"
        } else {
            "services"
        };
        Err(StoreError::InvalidArgument(format!(
            "{} '{}' is in use by the following {plural}: {}",
            blob.as_str(),
            x.spec.name,
            names.join(", ")
        )))
    }

    /// A new network gets its subnet and VXLAN id here, from the networks
    /// the batch leaves so far: every manager picks the same, and no two
    /// creations can take one subnet.
    fn allocated(&self, o: &Object) -> Result<Object, StoreError> {
        let Object::Network(n) = o else {
            return Ok(o.clone());
        };
        let others: Vec<&Network> = self
            .all(Kind::Network)
            .filter_map(|o| match o {
                Object::Network(n) => Some(n),
                _ => None,
            })
            .collect();
        let pools = self
            .all(Kind::Cluster)
            .find_map(|o| match o {
                Object::Cluster(c) => Some(AddressPools::of(&c.default_addr_pool, c.subnet_size)),
                _ => None,
            })
            .unwrap_or_default();
        crate::networks::allocate(n.clone(), &others, &pools)
            .map(Object::Network)
            .map_err(StoreError::InvalidArgument)
    }

    /// A service's networks exist (the API resolved their names a moment
    /// before; a removal may have come between). On an update only the
    /// networks it brings in are checked, as for secrets.
    fn check_networks(&self, o: &Object, old: Option<&Object>) -> Result<(), StoreError> {
        let Object::Service(new) = o else {
            return Ok(());
        };
        let known = |id: &str| match old {
            Some(Object::Service(was)) => [Some(&was.spec), was.previous_spec.as_ref()]
                .into_iter()
                .flatten()
                .any(|s| s.task_template.networks.iter().any(|a| a.target == id)),
            _ => false,
        };
        let missing = new
            .spec
            .task_template
            .networks
            .iter()
            .find(|a| !known(&a.target) && self.current(Kind::Network, &a.target).is_none());
        match missing {
            Some(a) => Err(StoreError::InvalidArgument(format!(
                "network {} not found",
                a.target
            ))),
            None => Ok(()),
        }
    }

    /// swarmkit's `RemoveNetwork`: not while a service's spec or a live
    /// task is attached to it.
    fn check_network_unused(&self, old: &Object) -> Result<(), StoreError> {
        let Object::Network(n) = old else {
            return Ok(());
        };
        if n.spec.ingress {
            let publisher = self.all(Kind::Service).find_map(|o| match o {
                Object::Service(s) if publishes_ingress(s) => Some(s.id.clone()),
                _ => None,
            });
            if let Some(sid) = publisher {
                return Err(StoreError::FailedPrecondition(format!(
                    "ingress network cannot be removed because service {sid} depends on it"
                )));
            }
        }
        let attached =
            |spec: &crate::services::TaskSpec| spec.networks.iter().any(|a| a.target == n.id);
        let service = self.all(Kind::Service).find_map(|o| match o {
            Object::Service(s) if attached(&s.spec.task_template) => Some(s.id.clone()),
            _ => None,
        });
        if let Some(sid) = service {
            return Err(StoreError::FailedPrecondition(format!(
                "network {} is in use by service {sid}",
                n.id
            )));
        }
        let task = self.all(Kind::Task).find_map(|o| match o {
            Object::Task(t)
                if t.desired_state <= crate::services::TaskState::Running
                    && t.status.state <= crate::services::TaskState::Running
                    && attached(&t.spec) =>
            {
                Some(t.id.clone())
            }
            _ => None,
        });
        match task {
            Some(tid) => Err(StoreError::FailedPrecondition(format!(
                "network {} is in use by task {tid}",
                n.id
            ))),
            None => Ok(()),
        }
    }

    fn stage(
        &mut self,
        action: &Action,
        index: u64,
        at: DateTime<Utc>,
    ) -> Result<Option<Event>, StoreError> {
        match action {
            Action::Create(o) => self.create(o, index, at).map(Some),
            Action::Update(o) => self.update(o, index, at).map(Some),
            Action::Remove { kind, id } => self.remove(*kind, id).map(Some),
            Action::PatchTask { id, patch } => Ok(self.patch_task(id, patch, index, at)),
        }
    }

    fn create(&mut self, o: &Object, index: u64, at: DateTime<Utc>) -> Result<Event, StoreError> {
        let kind = o.kind();
        if self.current(kind, o.id()).is_some() {
            return Err(StoreError::AlreadyExists);
        }
        if kind.unique_names() && self.name_taken(kind, o.name(), o.id()) {
            return Err(StoreError::NameConflict);
        }
        self.check_references(o)?;
        self.check_networks(o, None)?;
        let mut new = self.allocated(o)?;
        match &mut new {
            Object::Task(t) => self.attach_task(t)?,
            Object::Service(s) => self.assign_vips(s, None)?,
            Object::Node(n) => self.give_leg(n)?,
            _ => {}
        }
        *new.meta_mut() = Meta {
            version: index,
            created_at: at,
            updated_at: at,
        };
        self.changes
            .insert((kind, o.id().to_string()), Some(new.clone()));
        if matches!(&new, Object::Network(n) if n.spec.ingress) {
            self.give_every_node_a_leg()?;
        }
        Ok(Event {
            kind: EventKind::Create,
            object: new,
            old: None,
        })
    }

    fn update(&mut self, o: &Object, index: u64, at: DateTime<Utc>) -> Result<Event, StoreError> {
        let kind = o.kind();
        let old = self
            .current(kind, o.id())
            .cloned()
            .ok_or(StoreError::DoesNotExist)?;
        if old.meta().version != o.meta().version {
            return Err(StoreError::OutOfSequence);
        }
        if kind.unique_names() && self.name_taken(kind, o.name(), o.id()) {
            return Err(StoreError::NameConflict);
        }
        self.check_new_references(o, &old)?;
        self.check_networks(o, Some(&old))?;
        let mut new = o.clone();
        match (&mut new, &old) {
            (Object::Service(s), Object::Service(was)) => self.assign_vips(s, Some(was))?,
            // a writer that read the task before it had addresses must
            // not drop them
            (Object::Task(t), Object::Task(was)) if t.networks.is_empty() => {
                t.networks = was.networks.clone();
                t.ports = was.ports.clone();
            }
            (Object::Node(n), Object::Node(was)) if n.ingress_addr.is_empty() => {
                n.ingress_addr = was.ingress_addr.clone();
            }
            _ => {}
        }
        *new.meta_mut() = Meta {
            version: index,
            created_at: old.meta().created_at,
            updated_at: at,
        };
        self.changes
            .insert((kind, o.id().to_string()), Some(new.clone()));
        Ok(Event {
            kind: EventKind::Update,
            object: new,
            old: Some(old),
        })
    }

    fn patch_task(
        &mut self,
        id: &str,
        patch: &TaskPatch,
        index: u64,
        at: DateTime<Utc>,
    ) -> Option<Event> {
        let old = match self.current(Kind::Task, id)? {
            Object::Task(t) => t.clone(),
            _ => return None,
        };
        let mut new = old.patched(patch);
        if new == old {
            return None;
        }
        new.meta.version = index;
        new.meta.updated_at = at;
        let new = Object::Task(new);
        self.changes
            .insert((Kind::Task, id.to_string()), Some(new.clone()));
        Some(Event {
            kind: EventKind::Update,
            object: new,
            old: Some(Object::Task(old)),
        })
    }

    fn remove(&mut self, kind: Kind, id: &str) -> Result<Event, StoreError> {
        let old = self
            .current(kind, id)
            .cloned()
            .ok_or(StoreError::DoesNotExist)?;
        self.check_unused(&old)?;
        self.check_network_unused(&old)?;
        self.changes.insert((kind, id.to_string()), None);
        Ok(Event {
            kind: EventKind::Remove,
            object: old,
            old: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::{Availability, ClusterSpec, NodeSpec};

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    fn node(id: &str, name: &str) -> Object {
        let mut n = Node {
            id: id.into(),
            spec: NodeSpec::default(),
            ..Node::default()
        };
        n.spec.annotations.name = name.into();
        Object::Node(n)
    }

    fn cluster(id: &str) -> Object {
        Object::Cluster(Cluster {
            id: id.into(),
            spec: ClusterSpec::default(),
            ..Cluster::default()
        })
    }

    fn secret(id: &str, name: &str) -> Object {
        let mut x = Secret {
            id: id.into(),
            ..Secret::default()
        };
        x.spec.name = name.into();
        Object::Secret(x)
    }

    fn service_using(id: &str, secret_id: &str, secret_name: &str) -> Object {
        let mut s = Service {
            id: id.into(),
            ..Service::default()
        };
        s.spec.name = format!("svc-{id}");
        let mut c = crate::services::ContainerSpec::default();
        c.secrets.push(crate::secrets::SecretReference {
            secret_id: secret_id.into(),
            secret_name: secret_name.into(),
            ..Default::default()
        });
        s.spec.task_template.container_spec = Some(c);
        Object::Service(s)
    }

    #[test]
    fn references_must_name_existing_secrets_and_block_their_removal() {
        let mut s = Store::default();
        s.apply(&[Action::Create(secret("x1", "pw"))], 1, t(1))
            .unwrap();
        let e = s.apply(
            &[Action::Create(service_using("a", "x1", "other"))],
            2,
            t(2),
        );
        assert_eq!(
            e.unwrap_err(),
            StoreError::InvalidArgument("secret not found: other".into())
        );
        let e = s.apply(&[Action::Create(service_using("a", "nope", "pw"))], 2, t(2));
        assert_eq!(e.unwrap_err().to_string(), "secret not found: pw");
        s.apply(&[Action::Create(service_using("a", "x1", "pw"))], 3, t(3))
            .unwrap();
        let remove = Action::Remove {
            kind: Kind::Secret,
            id: "x1".into(),
        };
        let e = s.apply(std::slice::from_ref(&remove), 4, t(4));
        assert_eq!(
            e.unwrap_err().to_string(),
            "secret 'pw' is in use by the following service: svc-a"
        );
        let gone = Action::Remove {
            kind: Kind::Service,
            id: "a".into(),
        };
        s.apply(&[gone, remove], 5, t(5)).unwrap();
        assert_eq!(s.blobs(BlobKind::Secret).count(), 0);
    }

    #[test]
    fn a_rollback_to_a_spec_whose_secret_has_gone_is_not_refused() {
        let mut s = Store::default();
        s.apply(
            &[
                Action::Create(secret("x1", "old")),
                Action::Create(secret("x2", "new")),
            ],
            1,
            t(1),
        )
        .unwrap();
        s.apply(&[Action::Create(service_using("a", "x1", "old"))], 2, t(2))
            .unwrap();
        let Some(Object::Service(mut svc)) = s.get(Kind::Service, "a").cloned() else {
            panic!("the service");
        };
        let Object::Service(moved) = service_using("a", "x2", "new") else {
            panic!("a service");
        };
        svc.previous_spec = Some(std::mem::replace(&mut svc.spec, moved.spec));
        s.apply(&[Action::Update(Object::Service(svc.clone()))], 3, t(3))
            .unwrap();
        let gone = Action::Remove {
            kind: Kind::Secret,
            id: "x1".into(),
        };
        s.apply(&[gone], 4, t(4)).unwrap();
        let mut back = s.service("a").unwrap().clone();
        let previous = back.previous_spec.take().unwrap();
        back.previous_spec = Some(std::mem::replace(&mut back.spec, previous));
        s.apply(&[Action::Update(Object::Service(back))], 5, t(5))
            .unwrap();
        // a client's update that brings in a missing secret is refused
        let mut fresh = s.service("a").unwrap().clone();
        let Object::Service(other) = service_using("a", "x9", "nine") else {
            panic!("a service");
        };
        fresh.spec = other.spec;
        let e = s.apply(&[Action::Update(Object::Service(fresh))], 6, t(6));
        assert_eq!(e.unwrap_err().to_string(), "secret not found: nine");
    }

    #[test]
    fn tasks_and_vips_get_addresses_that_return_only_when_they_end() {
        use crate::networks::{Network, NetworkAttachment};
        use crate::services::{TaskState, TaskStatus};
        let mut s = Store::default();
        let mut n = Network {
            id: "n1".into(),
            ..Default::default()
        };
        n.spec.name = "ovl".into();
        s.apply(&[Action::Create(Object::Network(n))], 1, t(1))
            .unwrap();
        let mut svc = Service {
            id: "s1".into(),
            ..Service::default()
        };
        svc.spec.name = "web".into();
        svc.spec.task_template.networks = vec![NetworkAttachment {
            target: "n1".into(),
            aliases: vec!["www".into()],
            ..Default::default()
        }];
        let task = |id: &str| {
            let mut x = Task {
                id: id.into(),
                service_id: "s1".into(),
                ..Task::default()
            };
            x.spec = svc.spec.task_template.clone();
            Object::Task(x)
        };
        s.apply(
            &[
                Action::Create(Object::Service(svc.clone())),
                Action::Create(task("t1")),
                Action::Create(task("t2")),
            ],
            2,
            t(2),
        )
        .unwrap();
        let vip = &s.service("s1").unwrap().endpoint.virtual_ips;
        assert_eq!(vip.len(), 1);
        assert_eq!(vip[0].addr, "10.0.0.2/24");
        let t1 = s.task("t1").unwrap().networks.clone();
        assert_eq!(t1[0].addresses, ["10.0.0.3/24"]);
        assert_eq!(t1[0].aliases, ["www"]);
        assert_eq!(s.task("t2").unwrap().networks[0].addresses, ["10.0.0.4/24"]);
        // an update keeps the VIP; t1 ending frees its address, but the
        // cursor moves on first
        let mut again = s.service("s1").unwrap().clone();
        again.spec.labels.insert("x".into(), "y".into());
        let ended = Action::PatchTask {
            id: "t1".into(),
            patch: TaskPatch {
                status: Some(TaskStatus {
                    state: TaskState::Failed,
                    ..TaskStatus::default()
                }),
                ..TaskPatch::default()
            },
        };
        s.apply(&[Action::Update(Object::Service(again)), ended], 3, t(3))
            .unwrap();
        assert_eq!(
            s.service("s1").unwrap().endpoint.virtual_ips[0].addr,
            "10.0.0.2/24"
        );
        s.apply(&[Action::Create(task("t3"))], 4, t(4)).unwrap();
        assert_eq!(s.task("t3").unwrap().networks[0].addresses, ["10.0.0.5/24"]);
        // dnsrr services have no VIP
        let mut rr = svc.clone();
        rr.id = "s2".into();
        rr.spec.name = "rr".into();
        rr.spec.endpoint_spec = Some(crate::services::EndpointSpec {
            mode: Some("dnsrr".into()),
            ..Default::default()
        });
        s.apply(&[Action::Create(Object::Service(rr))], 5, t(5))
            .unwrap();
        assert!(s.service("s2").unwrap().endpoint.virtual_ips.is_empty());
    }

    #[test]
    fn a_new_ingress_gives_every_node_a_new_leg() {
        use crate::networks::{Ipam, IpamConfig, Network};
        let ingress = |id: &str, subnet: &str| {
            let mut n = Network {
                id: id.into(),
                ..Default::default()
            };
            n.spec.name = "ingress".into();
            n.spec.ingress = true;
            n.spec.ipam = Some(Ipam {
                configs: vec![IpamConfig {
                    subnet: subnet.into(),
                    ..IpamConfig::default()
                }],
                ..Ipam::default()
            });
            Object::Network(n)
        };
        let mut s = Store::default();
        s.apply(
            &[
                Action::Create(node("n1", "a")),
                Action::Create(ingress("ing1", "10.9.0.0/24")),
            ],
            1,
            t(1),
        )
        .unwrap();
        assert_eq!(s.node("n1").unwrap().ingress_addr, "10.9.0.2/24");
        let gone = Action::Remove {
            kind: Kind::Network,
            id: "ing1".into(),
        };
        s.apply(&[gone], 2, t(2)).unwrap();
        s.apply(&[Action::Create(ingress("ing2", "10.8.0.0/24"))], 3, t(3))
            .unwrap();
        assert_eq!(
            s.node("n1").unwrap().ingress_addr,
            "10.8.0.2/24",
            "the leg is on the new ingress"
        );
    }

    #[test]
    fn the_mesh_gives_nodes_legs_tasks_ingress_addresses_and_ports() {
        use crate::networks::Network;
        use crate::services::{EndpointSpec, PortConfig};
        let mut s = Store::default();
        let mut ingress = Network {
            id: "ing".into(),
            ..Default::default()
        };
        ingress.spec.name = "ingress".into();
        ingress.spec.ingress = true;
        // as at init: the node first, then the network in the same batch
        s.apply(
            &[
                Action::Create(node("n1", "a")),
                Action::Create(Object::Network(ingress)),
            ],
            1,
            t(1),
        )
        .unwrap();
        assert_eq!(s.node("n1").unwrap().ingress_addr, "10.0.0.2/24");
        s.apply(&[Action::Create(node("n2", "b"))], 2, t(2))
            .unwrap();
        assert_eq!(s.node("n2").unwrap().ingress_addr, "10.0.0.3/24");
        let publishing = |id: &str, name: &str, published: Option<u32>| {
            let mut v = Service {
                id: id.into(),
                ..Service::default()
            };
            v.spec.name = name.into();
            v.spec.endpoint_spec = Some(EndpointSpec {
                ports: vec![PortConfig {
                    target_port: 80,
                    published_port: published,
                    ..PortConfig::default()
                }],
                ..EndpointSpec::default()
            });
            Object::Service(v)
        };
        let task = Task {
            id: "t1".into(),
            service_id: "s1".into(),
            ..Task::default()
        };
        s.apply(
            &[
                Action::Create(publishing("s1", "web", Some(8080))),
                Action::Create(Object::Task(task)),
            ],
            3,
            t(3),
        )
        .unwrap();
        let web = s.service("s1").unwrap();
        let p = &web.endpoint.ports[0];
        assert_eq!(
            (
                p.published_port,
                p.protocol.as_deref(),
                p.publish_mode.as_deref()
            ),
            (Some(8080), Some("tcp"), Some("ingress"))
        );
        assert_eq!(web.endpoint.virtual_ips[0].network_id, "ing");
        let t1 = &s.task("t1").unwrap().networks;
        assert_eq!(t1[0].network_id, "ing");
        assert_eq!(t1[0].addresses, ["10.0.0.5/24"]);
        let e = s
            .apply(
                &[Action::Create(publishing("s2", "other", Some(8080)))],
                4,
                t(4),
            )
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "port '8080' is already in use by service 'web' (s1) as an ingress port"
        );
        s.apply(&[Action::Create(publishing("s3", "dyn", None))], 5, t(5))
            .unwrap();
        assert_eq!(
            s.service("s3").unwrap().endpoint.ports[0].published_port,
            Some(30000)
        );
        let gone = Action::Remove {
            kind: Kind::Network,
            id: "ing".into(),
        };
        let e = s.apply(&[gone], 6, t(6)).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("ingress network cannot be removed because service")
        );
    }

    #[test]
    fn networks_are_allocated_in_apply_and_kept_while_a_service_uses_them() {
        let mut s = Store::default();
        let net = |id: &str| {
            let mut n = crate::networks::Network {
                id: id.into(),
                ..Default::default()
            };
            n.spec.name = format!("NET-{id}");
            Object::Network(n)
        };
        s.apply(
            &[Action::Create(net("n1")), Action::Create(net("n2"))],
            1,
            t(1),
        )
        .unwrap();
        let subnets: Vec<_> = s
            .networks()
            .map(|n| n.ipam.configs[0].subnet.clone())
            .collect();
        assert_eq!(subnets, ["10.0.0.0/24", "10.0.1.0/24"]);
        let mut again = net("n3");
        if let Object::Network(n) = &mut again {
            n.spec.name = "net-n1".into();
        }
        let e = s.apply(&[Action::Create(again)], 2, t(2));
        assert_eq!(e.unwrap_err(), StoreError::NameConflict);
        let mut svc = Service {
            id: "a".into(),
            ..Service::default()
        };
        svc.spec.name = "a".into();
        svc.spec
            .task_template
            .networks
            .push(crate::networks::NetworkAttachment {
                target: "n1".into(),
                ..Default::default()
            });
        s.apply(&[Action::Create(Object::Service(svc))], 3, t(3))
            .unwrap();
        let remove = Action::Remove {
            kind: Kind::Network,
            id: "n1".into(),
        };
        let e = s.apply(std::slice::from_ref(&remove), 4, t(4));
        assert_eq!(
            e.unwrap_err(),
            StoreError::FailedPrecondition("network n1 is in use by service a".into())
        );
        let gone = Action::Remove {
            kind: Kind::Service,
            id: "a".into(),
        };
        s.apply(&[gone, remove], 5, t(5)).unwrap();
        assert_eq!(s.networks().count(), 1);
    }

    #[test]
    fn secret_names_are_unique_without_case() {
        let mut s = Store::default();
        s.apply(&[Action::Create(secret("x1", "pw"))], 1, t(1))
            .unwrap();
        let e = s.apply(&[Action::Create(secret("x2", "PW"))], 2, t(2));
        assert_eq!(e.unwrap_err(), StoreError::NameConflict);
    }

    #[test]
    fn created_objects_carry_the_entrys_index_and_time() {
        let mut s = Store::default();
        let ev = s
            .apply(&[Action::Create(node("n1", "a"))], 7, t(100))
            .unwrap();
        assert_eq!(ev[0].kind, EventKind::Create);
        let n = s.node("n1").unwrap();
        assert_eq!(n.meta.version, 7);
        assert_eq!((n.meta.created_at, n.meta.updated_at), (t(100), t(100)));
    }

    #[test]
    fn an_update_read_at_an_older_version_is_out_of_sequence() {
        let mut s = Store::default();
        s.apply(&[Action::Create(node("n1", "a"))], 3, t(1))
            .unwrap();
        let mut read = s.get(Kind::Node, "n1").unwrap().clone();
        if let Object::Node(n) = &mut read {
            n.spec.availability = Availability::Drain;
        }
        let ev = s.apply(&[Action::Update(read.clone())], 5, t(2)).unwrap();
        assert_eq!(ev[0].old.as_ref().unwrap().meta().version, 3);
        let n = s.node("n1").unwrap();
        assert_eq!(
            (n.meta.version, n.meta.created_at, n.meta.updated_at),
            (5, t(1), t(2))
        );
        assert_eq!(n.spec.availability, Availability::Drain);
        // the same read again: another writer got there first
        let err = s.apply(&[Action::Update(read)], 6, t(3)).unwrap_err();
        assert_eq!(err.to_string(), "update out of sequence");
    }

    #[test]
    fn a_batch_applies_whole_or_not_at_all() {
        let mut s = Store::default();
        s.apply(&[Action::Create(node("n1", "a"))], 1, t(1))
            .unwrap();
        let before = s.clone();
        let batch = [
            Action::Create(node("n2", "b")),
            Action::Remove {
                kind: Kind::Node,
                id: "n1".into(),
            },
            Action::Create(node("n1", "again")),
            Action::Remove {
                kind: Kind::Node,
                id: "nope".into(),
            },
        ];
        assert_eq!(
            s.apply(&batch, 2, t(2)).unwrap_err(),
            StoreError::DoesNotExist
        );
        assert_eq!(s, before, "a refused batch changed the store");
        // the same batch without its bad action: a later action sees an
        // earlier one's effect
        s.apply(&batch[..3], 2, t(2)).unwrap();
        assert_eq!(s.node("n1").unwrap().spec.annotations.name, "again");
        assert_eq!(s.nodes().count(), 2);
    }

    #[test]
    fn existence_and_name_rules_follow_swarmkit() {
        let mut s = Store::default();
        s.apply(&[Action::Create(cluster("c1"))], 1, t(1)).unwrap();
        let again = s
            .apply(&[Action::Create(cluster("c1"))], 2, t(2))
            .unwrap_err();
        assert_eq!(again.to_string(), "object already exists");
        let other = s
            .apply(&[Action::Create(cluster("c2"))], 2, t(2))
            .unwrap_err();
        assert_eq!(other.to_string(), "name conflicts with an existing object");
        // hostnames repeat: node names are not keys
        let nodes = [
            Action::Create(node("n1", "host")),
            Action::Create(node("n2", "host")),
        ];
        s.apply(&nodes, 3, t(3)).unwrap();
        let gone = s
            .apply(&[Action::Update(node("zz", "x"))], 4, t(4))
            .unwrap_err();
        assert_eq!(gone.to_string(), "object does not exist");
        assert_eq!(s.cluster().unwrap().id, "c1");
    }

    #[test]
    fn a_store_round_trips_as_its_snapshot() {
        let mut s = Store::default();
        s.apply(
            &[
                Action::Create(cluster("c1")),
                Action::Create(node("n1", "a")),
            ],
            9,
            t(9),
        )
        .unwrap();
        let bytes = serde_json::to_vec(&s).unwrap();
        let back: Store = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, s);
    }
}
