//! Services and tasks as the Engine API reads and writes them
//! (`/services`, `/tasks`), with swarmkit's control-API rules: lookups by
//! id, name or id prefix, stale versions refused, mode and name fixed
//! for a service's life.

use berth_swarm_store::{
    Action, Kind, ModeKind, Object, PullAuth, Service, ServiceSpec, Store, StoreError, Task,
    TaskPatch, TaskState, UpdateStatus,
};
use chrono::Utc;

use crate::{Swarm, SwarmError};

/// A service with its task counts (`?status=true`).
#[derive(Clone, Debug)]
pub struct ServiceView {
    pub service: Service,
    pub running: u64,
    pub desired: u64,
    pub completed: u64,
}

fn rpc(code: &'static str, desc: impl Into<String>) -> SwarmError {
    SwarmError::Rpc {
        code,
        desc: desc.into(),
    }
}

/// swarmkit's counts (ListServiceStatuses).
fn view(store: &Store, s: &Service) -> ServiceView {
    let mut v = ServiceView {
        service: s.clone(),
        running: 0,
        desired: 0,
        completed: 0,
    };
    let mode = s.spec.mode.kind();
    let global = matches!(mode, ModeKind::Global | ModeKind::GlobalJob);
    v.desired = match mode {
        ModeKind::Replicated(n) => n,
        ModeKind::ReplicatedJob { max_concurrent, .. } => max_concurrent,
        _ => 0,
    };
    let job = s.spec.mode.is_job();
    for t in store.tasks().filter(|t| t.service_id == s.id) {
        if job && t.job_iteration != Some(s.job_iteration) {
            continue;
        }
        if job && t.status.state == TaskState::Complete {
            v.completed += 1;
        }
        if t.status.state == TaskState::Running {
            v.running += 1;
        }
        if global && t.desired_state == TaskState::Running {
            v.desired += 1;
        }
    }
    v
}

/// A service by full id, then exact name, then unique id prefix.
fn find<'s>(store: &'s Store, reference: &str) -> Result<&'s Service, SwarmError> {
    if let Some(s) = store.service(reference) {
        return Ok(s);
    }
    let mut by_name: Vec<&Service> = store
        .services()
        .filter(|s| s.spec.name == reference)
        .collect();
    if by_name.is_empty() {
        by_name = store
            .services()
            .filter(|s| s.id.starts_with(reference))
            .collect();
    }
    match by_name.as_slice() {
        [one] => Ok(one),
        [] => Err(SwarmError::NotFound(format!(
            "service {reference} not found"
        ))),
        many => Err(SwarmError::InvalidArgument(format!(
            "service {reference} is ambiguous ({} matches found)",
            many.len()
        ))),
    }
}

fn find_task<'s>(store: &'s Store, reference: &str) -> Result<&'s Task, SwarmError> {
    if let Some(t) = store.task(reference) {
        return Ok(t);
    }
    let matches: Vec<&Task> = store
        .tasks()
        .filter(|t| t.id.starts_with(reference))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(SwarmError::NotFound(format!("task {reference} not found"))),
        many => Err(SwarmError::InvalidArgument(format!(
            "task {reference} is ambiguous ({} matches found)",
            many.len()
        ))),
    }
}

/// A name taken: swarmkit's AlreadyExists, which dockerd answers with 409.
fn create_error(e: SwarmError, name: &str) -> SwarmError {
    match e {
        SwarmError::Rpc { desc, .. } if desc == StoreError::NameConflict.to_string() => rpc(
            "AlreadyExists",
            format!("{desc}: service {name} already exists"),
        ),
        e => e,
    }
}

/// swarmkit's controlapi checks of a service's use of the routing mesh's
/// network, on what a create or update brings in (a service from before
/// the check, or one the orchestrator writes, is left alone; the store's
/// apply never refuses it, so a replayed log applies as it did).
fn check_ingress_use(st: &Store, s: &Service, was: Option<&Service>) -> Result<(), SwarmError> {
    let had = |id: &str| {
        was.is_some_and(|w| w.spec.task_template.networks.iter().any(|a| a.target == id))
    };
    let named = s.spec.task_template.networks.iter().find_map(|a| {
        st.network(&a.target)
            .filter(|n| n.spec.ingress && !had(&n.id))
            .map(|n| n.spec.name.clone())
    });
    if let Some(name) = named {
        return Err(rpc(
            "InvalidArgument",
            format!("Service cannot be explicitly attached to the ingress network \"{name}\""),
        ));
    }
    let newly_published = berth_swarm_store::publishes_ingress(s)
        && !was.is_some_and(berth_swarm_store::publishes_ingress);
    if newly_published && !st.networks().any(|n| n.spec.ingress) {
        return Err(rpc(
            "FailedPrecondition",
            "service needs ingress network, but no ingress network is present",
        ));
    }
    Ok(())
}

impl Swarm {
    /// `POST /services/create`: the new service's id.
    pub async fn create_service(
        &self,
        mut spec: ServiceSpec,
        pull_auth: Option<PullAuth>,
    ) -> Result<String, SwarmError> {
        let node = self.manager().await?;
        crate::service_spec::validate(&spec)?;
        default_mode(&mut spec);
        let id = berth_swarm_ca::new_id().map_err(|e| SwarmError::internal("service id", e))?;
        let service = Service {
            id: id.clone(),
            spec,
            pull_auth,
            ..Service::default()
        };
        let name = service.spec.name.clone();
        node.store()?
            .read(|st| check_ingress_use(st, &service, None))?;
        node.propose(vec![Action::Create(Object::Service(service))])
            .await
            .map_err(|e| create_error(e, &name))?;
        Ok(id)
    }

    pub async fn services(&self) -> Result<Vec<ServiceView>, SwarmError> {
        let node = self.manager().await?;
        node.sync_reads().await?;
        Ok(node
            .store()?
            .read(|st| st.services().map(|s| view(st, s)).collect()))
    }

    pub async fn service(&self, reference: &str) -> Result<ServiceView, SwarmError> {
        let node = self.manager().await?;
        node.sync_reads().await?;
        node.store()?
            .read(|st| find(st, reference).map(|s| view(st, s)))
    }

    /// `POST /services/{id}/update?version=N[&rollback=previous]`. Without
    /// new credentials the service keeps those it had, as dockerd does.
    pub async fn update_service(
        &self,
        reference: &str,
        version: u64,
        spec: ServiceSpec,
        rollback: bool,
        pull_auth: Option<PullAuth>,
    ) -> Result<(), SwarmError> {
        let node = self.manager().await?;
        let mut spec = spec;
        crate::service_spec::validate(&spec)?;
        default_mode(&mut spec);
        let current = node.store()?.read(|st| find(st, reference).cloned())?;
        let was = current.clone();
        let mut updated = updated_service(current, version, spec, rollback)?;
        if pull_auth.is_some() {
            updated.pull_auth = pull_auth;
        }
        node.store()?
            .read(|st| check_ingress_use(st, &updated, Some(&was)))?;
        node.propose(vec![Action::Update(Object::Service(updated))])
            .await
    }

    /// `POST /services/{id}/rebalance` (berth's own): the tasks that move
    /// so that the service spreads evenly again, replaced one batch at a
    /// time under its update config. Empty when it is already even.
    pub async fn rebalance_service(&self, reference: &str) -> Result<Vec<String>, SwarmError> {
        let node = self.manager().await?;
        node.sync_reads().await?;
        let (mut s, moving) = node.store()?.read(|st| {
            find(st, reference).map(|s| {
                let moving = crate::orchestrator::rebalance::tasks_to_move(st, s);
                (s.clone(), moving)
            })
        })?;
        if !matches!(s.spec.mode.kind(), ModeKind::Replicated(_)) {
            return Err(rpc(
                "FailedPrecondition",
                format!(
                    "service {} is not a replicated service: only replicated services rebalance",
                    s.spec.name
                ),
            ));
        }
        if moving.is_empty() {
            return Ok(moving);
        }
        s.rebalance = moving.clone();
        // as `update --force` does: a failed move rolls back to this very
        // spec, not to the one before the user's last update
        s.previous_spec = Some(s.spec.clone());
        s.previous_spec_version = s.spec_version;
        node.propose(vec![Action::Update(Object::Service(s))])
            .await?;
        Ok(moving)
    }

    /// `DELETE /services/{id}`: the service goes, and its tasks are told
    /// to go with it.
    pub async fn remove_service(&self, reference: &str) -> Result<(), SwarmError> {
        let node = self.manager().await?;
        let (service, tasks) = node.store()?.read(|st| {
            find(st, reference).map(|s| {
                let tasks: Vec<String> = st
                    .tasks()
                    .filter(|t| t.service_id == s.id)
                    .map(|t| t.id.clone())
                    .collect();
                (s.id.clone(), tasks)
            })
        })?;
        let mut actions = vec![Action::Remove {
            kind: Kind::Service,
            id: service,
        }];
        actions.extend(tasks.into_iter().map(|id| Action::PatchTask {
            id,
            patch: TaskPatch {
                desired_state: Some(TaskState::Remove),
                ..TaskPatch::default()
            },
        }));
        node.propose(actions).await
    }

    pub async fn tasks(&self) -> Result<Vec<Task>, SwarmError> {
        let node = self.manager().await?;
        node.sync_reads().await?;
        // attachments are containers of the nodes' own, not tasks anyone
        // scheduled (their networks show them)
        Ok(node.store()?.read(|st| {
            st.tasks()
                .filter(|t| t.attachment.is_none())
                .cloned()
                .collect()
        }))
    }

    pub async fn task(&self, reference: &str) -> Result<Task, SwarmError> {
        let node = self.manager().await?;
        node.sync_reads().await?;
        node.store()?.read(|st| find_task(st, reference).cloned())
    }
}

/// dockerd's defaults: one replica; a replicated job runs one task at a
/// time and as many completions as it runs at once.
fn default_mode(spec: &mut ServiceSpec) {
    let m = &mut spec.mode;
    if m.global.is_none() && m.replicated_job.is_none() && m.global_job.is_none() {
        let r = m.replicated.get_or_insert_with(Default::default);
        r.replicas.get_or_insert(1);
    }
    if let Some(j) = &mut m.replicated_job {
        let max = *j.max_concurrent.get_or_insert(1);
        j.total_completions.get_or_insert(max);
    }
}

fn same_mode(a: &ServiceSpec, b: &ServiceSpec) -> bool {
    let kind = |s: &ServiceSpec| std::mem::discriminant(&s.mode.kind());
    kind(a) == kind(b)
}

/// swarmkit's UpdateService on the store's copy.
pub(crate) fn updated_service(
    mut s: Service,
    version: u64,
    spec: ServiceSpec,
    rollback: bool,
) -> Result<Service, SwarmError> {
    if !same_mode(&s.spec, &spec) {
        return Err(rpc("Unimplemented", "service mode change is not allowed"));
    }
    if s.spec.name != spec.name {
        return Err(rpc("Unimplemented", "renaming services is not supported"));
    }
    s.meta.version = version;
    if s.spec.mode.is_job() {
        s.job_iteration += 1;
    }
    if rollback {
        let Some(previous) = s.previous_spec.take() else {
            return Err(rpc(
                "FailedPrecondition",
                format!("service {} does not have a previous spec", s.id),
            ));
        };
        s.previous_spec = Some(std::mem::replace(&mut s.spec, previous));
        std::mem::swap(&mut s.spec_version, &mut s.previous_spec_version);
        s.update_status = Some(UpdateStatus {
            state: "rollback_started".into(),
            started_at: Some(Utc::now()),
            completed_at: None,
            message: "manually requested rollback".into(),
        });
    } else {
        s.previous_spec = Some(std::mem::replace(&mut s.spec, spec));
        s.previous_spec_version = s.spec_version;
        // the version the client read: the write that follows is newer
        // than every task made before it
        s.spec_version = version + 1;
        s.update_status = None;
    }
    Ok(s)
}
