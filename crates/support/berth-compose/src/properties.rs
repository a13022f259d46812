//! Service keys the docker CLI warns about or refuses, with its texts.

use crate::error::{ComposeError, Position};
use crate::yaml::{Node, Value};

/// Docker's UnsupportedProperties: warned about, then ignored (except
/// `restart`, which is used when `deploy.restart_policy` is absent).
const DOCKER_UNSUPPORTED: &[&str] = &[
    "build",
    "cgroupns_mode",
    "cgroup_parent",
    "devices",
    "domainname",
    "external_links",
    "ipc",
    "links",
    "mac_address",
    "network_mode",
    "pid",
    "privileged",
    "restart",
    "security_opt",
    "shm_size",
    "userns_mode",
];

/// berth: compose-spec service keys a swarm cannot honour. Docker's schema
/// refuses them; berth accepts them and warns as for Docker's own list.
pub(crate) const BERTH_UNSUPPORTED: &[&str] = &[
    "annotations",
    "attach",
    "blkio_config",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpus",
    "develop",
    "device_cgroup_rules",
    "gpus",
    "mem_reservation",
    "mem_swappiness",
    "oom_kill_disable",
    "platform",
    "post_start",
    "pre_stop",
    "profiles",
    "pull_policy",
    "runtime",
    "scale",
    "storage_opt",
    "uts",
];

const DEPRECATED: &[(&str, &str)] = &[
    (
        "container_name",
        "Setting the container name is not supported.",
    ),
    (
        "expose",
        "Exposing ports is unnecessary - services on the same network can access each other's containers on any port.",
    ),
];

const FORBIDDEN: &[(&str, &str)] = &[
    ("extends", "Support for `extends` is not implemented yet."),
    (
        "volume_driver",
        "Instead of setting the volume driver on the service, define a volume using the top-level `volumes` option and specify the driver there.",
    ),
    (
        "volumes_from",
        "To share a volume between services, define it using the top-level `volumes` option and reference it from each service that shares it using the service-level `volumes` option.",
    ),
    ("cpu_quota", "Set resource limits using deploy.resources"),
    ("cpu_shares", "Set resource limits using deploy.resources"),
    ("cpuset", "Set resource limits using deploy.resources"),
    ("mem_limit", "Set resource limits using deploy.resources"),
    (
        "memswap_limit",
        "Set resource limits using deploy.resources",
    ),
];

/// The services of a raw file, when `services` is a usable mapping.
fn services(root: &Node) -> Vec<&Node> {
    match root.get("services").map(|s| &s.value) {
        Some(Value::Map(entries)) => entries.iter().map(|e| &e.value).collect(),
        _ => Vec::new(),
    }
}

/// Docker's validateForbidden, on a file before interpolation.
pub(crate) fn check_forbidden(root: &Node, file: &str) -> Result<(), ComposeError> {
    let mut found: Vec<String> = Vec::new();
    let mut first: Option<Position> = None;
    for service in services(root) {
        for entry in service.entries() {
            if let Some((_, why)) = FORBIDDEN.iter().find(|(k, _)| *k == entry.key) {
                let line = format!("{}: {why}", entry.key);
                if !found.contains(&line) {
                    found.push(line);
                }
                first.get_or_insert(Position {
                    file: file.to_string(),
                    line: entry.key_pos.line,
                    column: entry.key_pos.column,
                });
            }
        }
    }
    if found.is_empty() {
        return Ok(());
    }
    found.sort();
    Err(ComposeError::at(
        format!(
            "Compose file contains unsupported options:\n\n{}\n",
            found.join("\n\n")
        ),
        first,
    ))
}

/// Docker's two warnings, from all files: unsupported keys (sorted, comma
/// separated) and deprecated keys with their explanations.
pub(crate) fn warnings(roots: &[&Node]) -> Vec<String> {
    let mut unsupported: Vec<&str> = Vec::new();
    let mut deprecated: Vec<String> = Vec::new();
    for root in roots {
        for service in services(root) {
            for entry in service.entries() {
                let key = entry.key.as_str();
                if DOCKER_UNSUPPORTED.contains(&key) || BERTH_UNSUPPORTED.contains(&key) {
                    if !unsupported.contains(&key) {
                        unsupported.push(key);
                    }
                } else if let Some((_, why)) = DEPRECATED.iter().find(|(k, _)| *k == key) {
                    let line = format!("{key}: {why}");
                    if !deprecated.contains(&line) {
                        deprecated.push(line);
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    if !unsupported.is_empty() {
        unsupported.sort();
        out.push(format!(
            "Ignoring unsupported options: {}",
            unsupported.join(", ")
        ));
    }
    if !deprecated.is_empty() {
        deprecated.sort();
        out.push(format!(
            "Ignoring deprecated options:\n\n{}",
            deprecated.join("\n\n")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml;

    #[test]
    fn warnings_use_dockers_texts() {
        let a = yaml::parse("services:\n  a: {links: [x], build: ., container_name: c}\n")
            .expect("yaml")
            .expect("doc");
        let b = yaml::parse("services:\n  b: {expose: [1], platform: linux/amd64}\n")
            .expect("yaml")
            .expect("doc");
        assert_eq!(
            warnings(&[&a, &b]),
            [
                "Ignoring unsupported options: build, links, platform".to_string(),
                "Ignoring deprecated options:\n\ncontainer_name: Setting the container name is not supported.\n\nexpose: Exposing ports is unnecessary - services on the same network can access each other's containers on any port.".to_string(),
            ]
        );
    }

    #[test]
    fn forbidden_keys_are_one_error() {
        let root =
            yaml::parse("services:\n  web:\n    image: x\n    mem_limit: 1g\n    extends: y\n")
                .expect("yaml")
                .expect("doc");
        let e = check_forbidden(&root, "f.yml").unwrap_err();
        assert_eq!(
            e.message(),
            "Compose file contains unsupported options:\n\nextends: Support for `extends` is not implemented yet.\n\nmem_limit: Set resource limits using deploy.resources\n"
        );
        assert_eq!(e.position().map(|p| p.line), Some(4));
    }
}
