//! The decisions of `berth stack deploy|rm|ls`, apart from the requests
//! that carry them out: which services to prune, which networks to
//! create, whether a service is created or updated and with what body,
//! and the texts the docker CLI 28 prints for each
//! (cli/command/stack/swarm/deploy_composefile.go, remove.go, list.go).

use std::collections::{BTreeMap, BTreeSet};

use berth_compose::{LABEL_IMAGE, LABEL_NAMESPACE, NetworkCreate, ServiceCreate};
use serde_json::{Value, json};

use super::services::update_path;
use super::services_list::filters_json;
use super::swarm::natural_less;

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// `--resolve-image`: when the client asks the registry for the digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResolveImage {
    Always,
    Changed,
    Never,
}

impl ResolveImage {
    pub fn parse(value: &str) -> Result<ResolveImage, String> {
        match value {
            "always" => Ok(ResolveImage::Always),
            "changed" => Ok(ResolveImage::Changed),
            "never" => Ok(ResolveImage::Never),
            other => Err(format!("Invalid option {other} for flag --resolve-image")),
        }
    }
}

/// `validateStackName`: empty once quotes and white space are trimmed.
pub fn check_stack_name(namespace: &str) -> Result<(), String> {
    let trimmed = namespace.trim_matches(|c: char| c.is_whitespace() || c == '"' || c == '\'');
    if trimmed.is_empty() {
        return Err(format!(
            "invalid stack name: {}",
            berth_units::go_quote(namespace)
        ));
    }
    Ok(())
}

/// The `filters` query value of every listing of one stack's objects:
/// `{"label":{"com.docker.stack.namespace=NS":true}}`.
pub fn stack_filter(namespace: &str) -> String {
    stack_filter_with(namespace, &[])
}

/// The stack's label filter added to the user's `--filter`s.
pub fn stack_filter_with(namespace: &str, filters: &[(String, String)]) -> String {
    let mut pairs = filters.to_vec();
    pairs.push(("label".into(), format!("{LABEL_NAMESPACE}={namespace}")));
    filters_json(&pairs)
}

/// `namespace.Descope`: "NS_web" is "web"; another name stays as it is.
pub fn descope<'a>(namespace: &str, name: &'a str) -> &'a str {
    name.strip_prefix(namespace)
        .and_then(|rest| rest.strip_prefix('_'))
        .unwrap_or(name)
}

/// `sortServiceByName`: byte order of the full names.
pub fn sort_by_name(services: &mut [Value]) {
    services.sort_by(|a, b| text(&a["Spec"]["Name"]).cmp(text(&b["Spec"]["Name"])));
}

/// `--prune`: the stack's services the files no longer have, in the order
/// they are removed.
pub fn services_to_prune(namespace: &str, existing: &[Value], keep: &BTreeSet<&str>) -> Vec<Value> {
    let mut gone: Vec<Value> = existing
        .iter()
        .filter(|s| !keep.contains(descope(namespace, text(&s["Spec"]["Name"]))))
        .cloned()
        .collect();
    sort_by_name(&mut gone);
    gone
}

/// The networks no network of the stack's label has the name of yet.
pub fn networks_to_create<'a>(
    wanted: &'a [NetworkCreate],
    existing: &[Value],
) -> Vec<&'a NetworkCreate> {
    let names: BTreeSet<&str> = existing.iter().map(|n| text(&n["Name"])).collect();
    wanted
        .iter()
        .filter(|n| !names.contains(n.name.as_str()))
        .collect()
}

/// `validateExternalNetworks` on an inspected network (None: not found).
pub fn external_network_error(name: &str, found: Option<&Value>) -> Option<String> {
    let quoted = berth_units::go_quote(name);
    let Some(network) = found else {
        return Some(format!(
            "network {quoted} is declared as external, but could not be found. You need to create a swarm-scoped network before the stack is deployed"
        ));
    };
    let scope = text(&network["Scope"]);
    (scope != "swarm").then(|| {
        format!(
            "network {quoted} is declared as external, but it is not in the right scope: {} instead of \"swarm\"",
            berth_units::go_quote(scope)
        )
    })
}

/// What a deploy does with one service.
#[derive(Clone, Debug, PartialEq)]
pub enum ServiceAction {
    Create {
        spec: Value,
        /// ask the registry for the digest (and platforms) first
        query_registry: bool,
    },
    Update {
        id: String,
        /// `/services/ID/update?version=V`, the version read before
        path: String,
        spec: Value,
        query_registry: bool,
    },
}

impl ServiceAction {
    /// The line the docker CLI prints before the request.
    pub fn announcement(&self, full_name: &str) -> String {
        match self {
            ServiceAction::Create { .. } => format!("Creating service {full_name}"),
            ServiceAction::Update { id, .. } => {
                format!("Updating service {full_name} (id: {id})")
            }
        }
    }

    pub fn spec_mut(&mut self) -> &mut Value {
        match self {
            ServiceAction::Create { spec, .. } | ServiceAction::Update { spec, .. } => spec,
        }
    }

    pub fn query_registry(&self) -> bool {
        match self {
            ServiceAction::Create { query_registry, .. }
            | ServiceAction::Update { query_registry, .. } => *query_registry,
        }
    }
}

/// `deployServices` for one service: a create, or an update of the
/// service of that name, keeping its ForceUpdate and (unless the image
/// is to be resolved again) the image it runs, so a redeploy of an
/// unchanged file changes no task.
pub fn service_action(
    service: &ServiceCreate,
    existing: Option<&Value>,
    resolve: ResolveImage,
) -> ServiceAction {
    let mut spec = service.spec.clone();
    let Some(current) = existing else {
        return ServiceAction::Create {
            spec,
            query_registry: resolve != ResolveImage::Never,
        };
    };
    let image = text(&spec["Labels"][LABEL_IMAGE]).to_string();
    let unchanged = image == text(&current["Spec"]["Labels"][LABEL_IMAGE]);
    let query_registry = match resolve {
        ResolveImage::Always => true,
        ResolveImage::Changed => !unchanged,
        ResolveImage::Never => false,
    };
    let current_task = &current["Spec"]["TaskTemplate"];
    if !query_registry && unchanged {
        spec["TaskTemplate"]["ContainerSpec"]["Image"] = current_task["ContainerSpec"]["Image"]
            .as_str()
            .map_or(Value::Null, |s| json!(s));
    }
    spec["TaskTemplate"]["ForceUpdate"] = json!(current_task["ForceUpdate"].as_u64().unwrap_or(0));
    ServiceAction::Update {
        id: text(&current["ID"]).to_string(),
        path: update_path(current, &[]),
        spec,
        query_registry,
    }
}

/// The existing services by full name (`existingServiceMap`).
pub fn by_name(services: &[Value]) -> BTreeMap<String, Value> {
    services
        .iter()
        .map(|s| (text(&s["Spec"]["Name"]).to_string(), s.clone()))
        .collect()
}

/// `GetStacks`: each namespace label with its number of services, in
/// `stack ls` order; a service without the label is Docker's error.
pub fn stacks(services: &[Value]) -> Result<Vec<(String, usize)>, String> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for s in services {
        let Some(name) = s["Spec"]["Labels"][LABEL_NAMESPACE].as_str() else {
            return Err(format!(
                "cannot get label {LABEL_NAMESPACE} for service {}",
                text(&s["ID"])
            ));
        };
        *counts.entry(name.to_string()).or_default() += 1;
    }
    let mut out: Vec<(String, usize)> = counts.into_iter().collect();
    out.sort_by(|a, b| {
        if natural_less(&a.0, &b.0) {
            std::cmp::Ordering::Less
        } else if natural_less(&b.0, &a.0) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    });
    Ok(out)
}

/// The rows of `stack ls` (`Services` is a string, as Go's formatter
/// gives it).
pub fn stack_rows(stacks: &[(String, usize)]) -> Vec<Value> {
    stacks
        .iter()
        .map(|(name, n)| json!({ "Name": name, "Services": n.to_string() }))
        .collect()
}
