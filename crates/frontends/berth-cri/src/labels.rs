//! What a pod or container made through the CRI keeps in its container
//! record's labels: its kind, its CRI metadata, its sandbox, and the
//! kubelet's labels and annotations. The labels are the record, so the
//! engine's durability covers pods, and the Docker API shows them
//! (`docker ps --filter label=io.kubernetes.cri.kind=sandbox`).

use std::collections::HashMap;

/// The kind, CRI name and namespace, and sandbox: berth-core's, since the
/// Docker API reads them too.
pub use berth_core::pods::{CONTAINER, KIND, NAME, NAMESPACE, SANDBOX, SANDBOX_ID};
/// The rest of the CRI metadata.
pub const UID: &str = "io.kubernetes.cri.uid";
pub const ATTEMPT: &str = "io.kubernetes.cri.attempt";
/// The namespace modes of a sandbox, `network,pid,ipc` as the CRI's enum
/// numbers, which its containers follow.
pub const NAMESPACES: &str = "io.kubernetes.cri.namespaces";
/// How the sandbox's network was made, fixed at its creation: `cni`,
/// `bridge` (berth's default bridge) or `host`.
pub const NETWORK: &str = "io.kubernetes.cri.network";
/// An annotation of the kubelet's (labels are the only place a record
/// has for them).
pub const ANNOTATION: &str = "io.kubernetes.cri.annotation.";
/// Every key berth keeps is under this prefix but the sandbox's id, so a
/// kubelet label there is not taken (nor could it forge berth's).
const RESERVED: &str = "io.kubernetes.cri.";

/// The labels and annotations the kubelet gave, folded into one label map.
pub fn fold(
    labels: &HashMap<String, String>,
    annotations: &HashMap<String, String>,
) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = labels
        .iter()
        .filter(|(k, _)| !is_ours(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in annotations {
        out.insert(format!("{ANNOTATION}{k}"), v.clone());
    }
    out
}

fn is_ours(key: &str) -> bool {
    key == SANDBOX_ID || key.starts_with(RESERVED)
}

/// The kubelet's labels back out of a record's labels.
pub fn user_labels(all: &HashMap<String, String>) -> HashMap<String, String> {
    all.iter()
        .filter(|(k, _)| !is_ours(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The kubelet's annotations back out of a record's labels.
pub fn annotations(all: &HashMap<String, String>) -> HashMap<String, String> {
    all.iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(ANNOTATION)?.to_string(), v.clone())))
        .collect()
}

/// Whether `all` has every pair of `selector` (the CRI's label selector
/// is an exact match of each).
pub fn selected(all: &HashMap<String, String>, selector: &HashMap<String, String>) -> bool {
    let user = user_labels(all);
    selector.iter().all(|(k, v)| user.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn labels_and_annotations_round_trip() {
        let labels = map(&[("foo", "bar"), ("io.kubernetes.pod.name", "p")]);
        let annotations = map(&[("abc", "def")]);
        let mut all = fold(&labels, &annotations);
        all.insert(KIND.into(), SANDBOX.into());
        assert_eq!(user_labels(&all), labels);
        assert_eq!(annotations_of(&all), annotations);
        assert!(selected(&all, &map(&[("foo", "bar")])));
        assert!(!selected(&all, &map(&[("foo", "baz")])));
        assert!(
            !selected(&all, &map(&[(KIND, SANDBOX)])),
            "ours are not the kubelet's"
        );
    }

    fn annotations_of(all: &HashMap<String, String>) -> HashMap<String, String> {
        annotations(all)
    }

    #[test]
    fn a_kubelet_label_cannot_forge_ours() {
        let labels = map(&[(KIND, "container"), ("io.kubernetes.cri.annotation.x", "y")]);
        let all = fold(&labels, &HashMap::new());
        assert!(all.is_empty(), "{all:?}");
    }
}
