//! The labels that mark a container as a Kubernetes pod's, made through
//! the CRI: the CRI front end writes them, and the Docker API reads them
//! to keep a careless `docker rm` from breaking a pod the kubelet runs.

use std::collections::HashMap;

/// `sandbox` or `container`.
pub const KIND: &str = "io.kubernetes.cri.kind";
pub const SANDBOX: &str = "sandbox";
pub const CONTAINER: &str = "container";
/// A container's sandbox (dockershim's name for it).
pub const SANDBOX_ID: &str = "io.kubernetes.sandbox.id";
/// The CRI metadata: name, and for sandboxes namespace.
pub const NAME: &str = "io.kubernetes.cri.name";
pub const NAMESPACE: &str = "io.kubernetes.cri.namespace";

/// What a container is to Kubernetes, read from its labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodPart {
    /// a pod's sandbox: its name and namespace
    Sandbox { name: String, namespace: String },
    /// a container of the sandbox with this id
    Container { sandbox: String },
}

pub fn part_of(labels: &HashMap<String, String>) -> Option<PodPart> {
    let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
    match labels.get(KIND).map(String::as_str) {
        Some(SANDBOX) => Some(PodPart::Sandbox {
            name: get(NAME),
            namespace: get(NAMESPACE),
        }),
        Some(CONTAINER) => Some(PodPart::Container {
            sandbox: get(SANDBOX_ID),
        }),
        _ => None,
    }
}
