//! A project to what `docker stack deploy` sends: the docker CLI's
//! `cli/compose/convert`, producing the exact JSON bodies.

mod json;
mod mounts;
mod objects;
mod service;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::ComposeError;
use crate::model::Project;

/// The stack namespace label every object carries.
pub const LABEL_NAMESPACE: &str = "com.docker.stack.namespace";
/// The service label holding the image as the file wrote it.
pub const LABEL_IMAGE: &str = "com.docker.stack.image";

/// Everything a deploy creates or checks, in the docker CLI's order:
/// networks, secrets, configs, then services.
#[derive(Clone, Debug, PartialEq)]
pub struct StackSpec {
    /// networks to create when no network of that name carries the stack
    /// label yet, sorted by name
    pub networks: Vec<NetworkCreate>,
    /// external networks that must exist with swarm scope
    /// (`GET /networks/NAME`); the predefined ones are left out as Docker
    /// leaves them out
    pub external_networks: Vec<String>,
    /// secrets to create (or to update when one of the name exists)
    pub secrets: Vec<ObjectCreate>,
    pub configs: Vec<ObjectCreate>,
    /// by service name
    pub services: Vec<ServiceCreate>,
}

/// `POST /networks/create` for one network.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkCreate {
    pub name: String,
    /// the body, `Name` included
    pub body: Value,
}

/// A secret or config to create: the SecretSpec/ConfigSpec body and its
/// parts.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectCreate {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub data: Vec<u8>,
    /// the body of `POST /secrets/create` (or configs), `Data` in base64
    pub spec: Value,
}

/// `POST /services/create` (or the update) for one service.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceCreate {
    /// the service's key in the file ("web")
    pub name: String,
    /// the ServiceSpec; its secret and config references carry names and
    /// empty IDs until [`ServiceCreate::resolve_references`] fills them
    pub spec: Value,
    /// the secret names the docker CLI looks up by a `name` filter
    pub secret_names: Vec<String>,
    /// the config names the docker CLI looks up (credential spec included)
    pub config_names: Vec<String>,
}

impl ServiceCreate {
    /// "NS_web"
    pub fn full_name(&self) -> &str {
        self.spec["Name"].as_str().unwrap_or_default()
    }

    /// Fills SecretID, ConfigID and a credential spec's config ID from
    /// lookups by name, failing as the docker CLI does
    /// (`secret not found: NS_pw`; the caller prefixes `service web: `).
    pub fn resolve_references(
        &mut self,
        secret_id: impl Fn(&str) -> Option<String>,
        config_id: impl Fn(&str) -> Option<String>,
    ) -> Result<(), String> {
        service::resolve_references(&mut self.spec, &secret_id, &config_id)
    }
}

/// Converts a loaded project for the stack `namespace`. Secret and config
/// files are read here, as the docker CLI reads them when deploying.
pub fn convert(project: &Project, namespace: &str) -> Result<StackSpec, ComposeError> {
    let (networks, external_networks) = objects::networks(project, namespace);
    let secrets = objects::secrets(project, namespace)?;
    let configs = objects::configs(project, namespace)?;
    let mut services = Vec::with_capacity(project.services.len());
    for service in project.services.values() {
        let converted = service::convert(project, service, namespace)
            .map_err(|e| e.context(&format!("service {}", service.name)))?;
        services.push(converted);
    }
    Ok(StackSpec {
        networks,
        external_networks,
        secrets,
        configs,
        services,
    })
}

/// The scoped name of a stack object: "NS_name".
pub(crate) fn scope(namespace: &str, name: &str) -> String {
    format!("{namespace}_{name}")
}

/// `labels` plus the namespace label.
pub(crate) fn with_stack_label(
    labels: &BTreeMap<String, String>,
    namespace: &str,
) -> BTreeMap<String, String> {
    let mut out = labels.clone();
    out.insert(LABEL_NAMESPACE.into(), namespace.into());
    out
}
