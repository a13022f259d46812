//! Networks, secrets and configs a stack creates (convert.Networks,
//! convert.Secrets, convert.Configs and the deploy's network defaults).

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use serde_json::Value;

use super::json::{Object, string_map};
use super::{NetworkCreate, ObjectCreate, scope, with_stack_label};
use crate::error::ComposeError;
use crate::gofmt;
use crate::model::{FileObject, Network, ObjectSource, Project};

const DEFAULT_NETWORK_DRIVER: &str = "overlay";

/// Networks that are neither the default bridge, host, none nor a
/// container's: container.NetworkMode.IsUserDefined.
pub(crate) fn is_user_defined(name: &str) -> bool {
    !matches!(name, "default" | "bridge" | "host" | "none") && !name.starts_with("container:")
}

/// The networks some service uses ("default" for a service without any):
/// those to create and the external ones to check.
pub(crate) fn networks(project: &Project, namespace: &str) -> (Vec<NetworkCreate>, Vec<String>) {
    let mut used: BTreeSet<&str> = BTreeSet::new();
    for service in project.services.values() {
        if service.networks.is_empty() {
            used.insert("default");
        }
        used.extend(service.networks.keys().map(String::as_str));
    }
    let mut creates: BTreeMap<String, Value> = BTreeMap::new();
    let mut externals = Vec::new();
    let undeclared = Network::default();
    for name in used {
        let network = project.networks.get(name).unwrap_or(&undeclared);
        if network.external {
            if is_user_defined(&network.name) && !externals.contains(&network.name) {
                externals.push(network.name.clone());
            }
            continue;
        }
        let full_name = if network.name.is_empty() {
            scope(namespace, name)
        } else {
            network.name.clone()
        };
        let body = create_body(network, namespace, &full_name);
        creates.insert(full_name, body);
    }
    let creates = creates
        .into_iter()
        .map(|(name, body)| NetworkCreate { name, body })
        .collect();
    (creates, externals)
}

/// The body the docker CLI posts (network.CreateRequest).
fn create_body(network: &Network, namespace: &str, name: &str) -> Value {
    let driver = if network.driver.is_empty() {
        DEFAULT_NETWORK_DRIVER
    } else {
        &network.driver
    };
    let ipam = if network.ipam_driver.is_empty() && network.ipam_subnets.is_empty() {
        Value::Null
    } else {
        let config = if network.ipam_subnets.is_empty() {
            Value::Null
        } else {
            Value::Array(
                network
                    .ipam_subnets
                    .iter()
                    .map(|s| Object::new().text("Subnet", s).build())
                    .collect(),
            )
        };
        Object::new()
            .set("Driver", network.ipam_driver.as_str())
            .set("Options", Value::Null)
            .set("Config", config)
            .build()
    };
    Object::new()
        .set("Driver", driver)
        .set("Scope", "")
        .set("IPAM", ipam)
        .set("Internal", network.internal)
        .set("Attachable", network.attachable)
        .set("Ingress", false)
        .set("ConfigOnly", false)
        .set("ConfigFrom", Value::Null)
        .set(
            "Options",
            network.driver_opts.as_ref().map_or(Value::Null, string_map),
        )
        .set(
            "Labels",
            string_map(&with_stack_label(&network.labels, namespace)),
        )
        .set("Name", name)
        .build()
}

pub(crate) fn secrets(
    project: &Project,
    namespace: &str,
) -> Result<Vec<ObjectCreate>, ComposeError> {
    file_objects(&project.secrets, namespace, true)
}

pub(crate) fn configs(
    project: &Project,
    namespace: &str,
) -> Result<Vec<ObjectCreate>, ComposeError> {
    file_objects(&project.configs, namespace, false)
}

fn file_objects(
    objects: &BTreeMap<String, FileObject>,
    namespace: &str,
    secrets: bool,
) -> Result<Vec<ObjectCreate>, ComposeError> {
    let mut out = Vec::new();
    for (key, object) in objects {
        if object.external {
            continue;
        }
        let driven = secrets && !object.driver.is_empty();
        let data = if driven {
            Vec::new()
        } else {
            read_data(object)?
        };
        let name = if object.name.is_empty() {
            scope(namespace, key)
        } else {
            object.name.clone()
        };
        let labels = with_stack_label(&object.labels, namespace);
        let mut spec = Object::new()
            .set("Name", name.as_str())
            .set("Labels", string_map(&labels));
        if !data.is_empty() {
            spec = spec.set(
                "Data",
                base64::engine::general_purpose::STANDARD.encode(&data),
            );
        }
        if driven {
            spec = spec.set(
                "Driver",
                Object::new()
                    .text("Name", &object.driver)
                    .map("Options", &object.driver_opts),
            );
        }
        if !object.template_driver.is_empty() {
            spec = spec.set(
                "Templating",
                Object::new().text("Name", &object.template_driver),
            );
        }
        out.push(ObjectCreate {
            name,
            labels,
            data,
            spec: spec.build(),
        });
    }
    Ok(out)
}

fn read_data(object: &FileObject) -> Result<Vec<u8>, ComposeError> {
    match &object.source {
        ObjectSource::File(path) => {
            gofmt::read_file(path).map_err(|e| ComposeError::at(e, object.position.clone()))
        }
        ObjectSource::Environment { value, .. } => Ok(value.clone().into_bytes()),
        ObjectSource::Content(text) => Ok(text.clone().into_bytes()),
        ObjectSource::None => Ok(Vec::new()),
    }
}
