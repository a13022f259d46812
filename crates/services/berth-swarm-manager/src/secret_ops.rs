//! `/secrets` and `/configs` on a manager: swarmkit's control API for
//! them (`controlapi/secret.go`, `config.go`), its checks and its words.
//! The rules between objects (a reference to a missing secret, removing
//! one in use) are the store's, checked where no two writers race.

use berth_swarm_store::{Action, BlobKind, Object, Secret, SecretSpec, Store, StoreError};

use crate::{Swarm, SwarmError};

fn invalid(desc: impl Into<String>) -> SwarmError {
    SwarmError::Rpc {
        code: "InvalidArgument",
        desc: desc.into(),
    }
}

/// swarmkit's `validateConfigOrSecretAnnotations`.
fn check_name(name: &str) -> Result<(), SwarmError> {
    if name.is_empty() {
        return Err(invalid("name must be provided"));
    }
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let ends_ok = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if name.len() > 64 || !name.chars().all(ok_char) || !ends_ok {
        return Err(invalid(
            "invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end character must be [a-zA-Z0-9]",
        ));
    }
    Ok(())
}

/// The data size limits: 500 KB for secrets, 1000 KB for configs.
fn check_data(blob: BlobKind, spec: &SecretSpec) -> Result<(), SwarmError> {
    let limit = match blob {
        BlobKind::Secret => 500 * 1024,
        BlobKind::Config => 1000 * 1024,
    };
    let len = spec.data.0.len();
    if len == 0 || len >= limit {
        return Err(invalid(format!(
            "{} data must be larger than 0 and less than {limit} bytes",
            blob.as_str()
        )));
    }
    Ok(())
}

fn check_spec(blob: BlobKind, spec: &SecretSpec) -> Result<(), SwarmError> {
    check_name(&spec.name)?;
    // a config has no driver in Docker's model: dockerd drops one sent
    if let (BlobKind::Secret, Some(d)) = (blob, &spec.driver) {
        if d.name.is_empty() {
            return Err(invalid("secret driver must have a name"));
        }
        // secret plugins come with the plugins issue; swarmkit's answer
        // for a driver no plugin serves
        return Err(SwarmError::Rpc {
            code: "Unknown",
            desc: format!("plugin {:?} not found", d.name),
        });
    }
    check_data(blob, spec)
}

/// A secret or config by full id, then exact name (any case), then
/// unique id prefix, as dockerd's `getSecret` looks.
pub fn find_blob<'s>(
    store: &'s Store,
    blob: BlobKind,
    reference: &str,
) -> Result<&'s Secret, SwarmError> {
    if let Some(x) = store.blob(blob, reference) {
        return Ok(x);
    }
    let by_name: Vec<&Secret> = store
        .blobs(blob)
        .filter(|x| x.spec.name.eq_ignore_ascii_case(reference))
        .collect();
    let found = if by_name.is_empty() {
        store
            .blobs(blob)
            .filter(|x| x.id.starts_with(reference))
            .collect()
    } else {
        by_name
    };
    let what = blob.as_str();
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(SwarmError::NotFound(format!(
            "{what} {reference} not found"
        ))),
        many => Err(SwarmError::InvalidArgument(format!(
            "{what} {reference} is ambiguous ({} matches found)",
            many.len()
        ))),
    }
}

/// A service a rotation rolls: (id, name).
pub type RolledService = (String, String);

impl Swarm {
    /// `POST /secrets/create`, `POST /configs/create`: the new id.
    pub async fn create_blob(
        &self,
        blob: BlobKind,
        spec: SecretSpec,
    ) -> Result<String, SwarmError> {
        let node = self.manager().await?;
        check_spec(blob, &spec)?;
        let id = berth_swarm_ca::new_id().map_err(|e| SwarmError::internal("secret id", e))?;
        let name = spec.name.clone();
        let mut x = Secret {
            id: id.clone(),
            spec,
            ..Secret::default()
        };
        if blob == BlobKind::Config {
            x.spec.driver = None;
        }
        node.propose(vec![Action::Create(blob.object(x))])
            .await
            .map_err(|e| match e {
                SwarmError::Rpc { desc, .. } if desc == StoreError::NameConflict.to_string() => {
                    SwarmError::Rpc {
                        code: "AlreadyExists",
                        desc: format!("{} {name} already exists", blob.as_str()),
                    }
                }
                e => e,
            })?;
        Ok(id)
    }

    pub async fn blobs(&self, blob: BlobKind) -> Result<Vec<Secret>, SwarmError> {
        let node = self.manager().await?;
        node.sync_reads().await?;
        Ok(node.store()?.read(|st| st.blobs(blob).cloned().collect()))
    }

    pub async fn blob(&self, blob: BlobKind, reference: &str) -> Result<Secret, SwarmError> {
        let node = self.manager().await?;
        node.sync_reads().await?;
        node.store()?
            .read(|st| find_blob(st, blob, reference).cloned())
    }

    /// `POST /secrets/{id}/update?version=N`: labels only, as swarmkit
    /// allows; the same data may be sent again (stack deploy does).
    pub async fn update_blob(
        &self,
        blob: BlobKind,
        reference: &str,
        version: u64,
        spec: SecretSpec,
    ) -> Result<(), SwarmError> {
        let node = self.manager().await?;
        let mut x = node
            .store()?
            .read(|st| find_blob(st, blob, reference).cloned())?;
        let same_data = spec.data.0.is_empty() || same_bytes(&spec.data.0, &x.spec.data.0);
        if spec.name != x.spec.name || !same_data {
            return Err(invalid("only updates to Labels are allowed"));
        }
        x.spec.labels = spec.labels;
        x.meta.version = version;
        node.propose(vec![Action::Update(blob.object(x))]).await
    }

    /// `DELETE /secrets/{id}`: refused while a service uses it.
    pub async fn remove_blob(&self, blob: BlobKind, reference: &str) -> Result<(), SwarmError> {
        let node = self.manager().await?;
        let id = node
            .store()?
            .read(|st| find_blob(st, blob, reference).map(|x| x.id.clone()))?;
        node.propose(vec![Action::Remove {
            kind: blob.store_kind(),
            id,
        }])
        .await
    }

    /// `POST /secrets/{id}/rotate?version=N` (berth's own): new data under
    /// the same name and id, and every service that uses it rolled (its
    /// `ForceUpdate` bumped) in the same batch, so each replaces its tasks
    /// under its own update config and the new tasks mount the new data.
    pub async fn rotate_blob(
        &self,
        blob: BlobKind,
        reference: &str,
        version: u64,
        data: Vec<u8>,
    ) -> Result<(Secret, Vec<RolledService>), SwarmError> {
        let node = self.manager().await?;
        node.sync_reads().await?;
        let (mut x, mut services) = node.store()?.read(|st| {
            let x = find_blob(st, blob, reference)?.clone();
            let users: Vec<_> = st
                .services()
                .filter(|s| {
                    s.spec
                        .task_template
                        .container_spec
                        .as_ref()
                        .is_some_and(|c| c.blob_refs().any(|r| r.kind == blob && r.id == x.id))
                })
                .cloned()
                .collect();
            Ok::<_, SwarmError>((x, users))
        })?;
        x.spec.data = berth_swarm_store::Blob(data);
        check_data(blob, &x.spec)?;
        x.meta.version = version;
        let mut actions = vec![Action::Update(blob.object(x.clone()))];
        for s in &mut services {
            let mut spec = s.spec.clone();
            spec.task_template.force_update += 1;
            *s = crate::service_ops::updated_service(s.clone(), s.meta.version, spec, false)?;
            actions.push(Action::Update(Object::Service(s.clone())));
        }
        node.propose(actions).await?;
        let rolled = services.into_iter().map(|s| (s.id, s.spec.name)).collect();
        Ok((x, rolled))
    }
}

/// Compares without an early exit, as swarmkit compares secret data.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_swarmkits_rule() {
        for good in ["a", "wordpress_secret", "a.b-c_d", "A1"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["-x", "a b", "x-", ".a", &"a".repeat(65)] {
            let e = check_name(bad).unwrap_err().to_string();
            assert!(e.contains("invalid name, only 64"), "{bad}: {e}");
        }
        assert_eq!(
            check_name("").unwrap_err().to_string(),
            "rpc error: code = InvalidArgument desc = name must be provided"
        );
    }

    #[test]
    fn data_sizes_are_capped_per_kind() {
        let spec = |n: usize| SecretSpec {
            name: "x".into(),
            data: berth_swarm_store::Blob(vec![b'a'; n]),
            ..SecretSpec::default()
        };
        assert!(check_spec(BlobKind::Secret, &spec(511_999)).is_ok());
        let e = check_spec(BlobKind::Secret, &spec(512_000)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "rpc error: code = InvalidArgument desc = secret data must be larger than 0 and less than 512000 bytes"
        );
        assert!(check_spec(BlobKind::Config, &spec(512_000)).is_ok());
        assert!(check_spec(BlobKind::Config, &spec(0)).is_err());
    }

    #[test]
    fn data_compares_whole() {
        assert!(same_bytes(b"abc", b"abc"));
        assert!(!same_bytes(b"abc", b"abd"));
        assert!(!same_bytes(b"abc", b"ab"));
    }
}
