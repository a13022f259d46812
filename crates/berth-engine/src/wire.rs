//! Docker's wire types (bollard-stubs) and berth's records share Docker's
//! JSON field names, so a value converts by name through JSON. Only the
//! edges use this: a create request becomes a record, a record becomes an
//! inspect answer.

use berth_core::container::ContainerSpec;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, Result};

/// `v` as the type with the same JSON shape.
pub(crate) fn convert<T: Serialize, U: DeserializeOwned>(v: &T) -> Result<U> {
    let value = serde_json::to_value(v)
        .map_err(|e| Error::Internal(anyhow::Error::from(e).context("encoding a record")))?;
    serde_json::from_value(value)
        .map_err(|e| Error::invalid(format!("invalid container config: {e}")))
}

/// A create request (Docker's `ContainerCreateBody`: the config's fields
/// with `HostConfig` and `NetworkingConfig` beside them) as berth's spec.
pub(crate) fn spec_of(body: &bollard_stubs::models::ContainerCreateBody) -> Result<ContainerSpec> {
    let mut value = serde_json::to_value(body).map_err(|e| {
        Error::Internal(anyhow::Error::from(e).context("encoding a create request"))
    })?;
    let obj = value
        .as_object_mut()
        .ok_or_else(|| Error::invalid("invalid container config: not an object"))?;
    let host = obj.remove("HostConfig").unwrap_or_default();
    let endpoints = obj
        .remove("NetworkingConfig")
        .and_then(|mut n| n.get_mut("EndpointsConfig").map(serde_json::Value::take))
        .unwrap_or_default();
    let invalid = |e: serde_json::Error| Error::invalid(format!("invalid container config: {e}"));
    Ok(ContainerSpec {
        config: serde_json::from_value(value).map_err(invalid)?,
        host_config: if host.is_null() {
            Default::default()
        } else {
            serde_json::from_value(host).map_err(invalid)?
        },
        endpoints: if endpoints.is_null() {
            Default::default()
        } else {
            serde_json::from_value(endpoints).map_err(invalid)?
        },
    })
}
