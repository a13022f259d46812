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

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_stubs::models::{
        ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig,
        HostConfigCgroupnsModeEnum, NetworkingConfig, RestartPolicy, RestartPolicyNameEnum,
    };
    use std::collections::HashMap;

    #[test]
    fn a_create_request_splits_into_config_host_config_and_endpoints() {
        let body = ContainerCreateBody {
            image: Some("busybox".into()),
            cmd: Some(vec!["true".into()]),
            exposed_ports: Some(vec!["80/tcp".into()]),
            host_config: Some(HostConfig {
                memory: Some(64 << 20),
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                    maximum_retry_count: None,
                }),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    "front".to_string(),
                    EndpointSettings {
                        aliases: Some(vec!["web".into()]),
                        ipam_config: Some(EndpointIpamConfig {
                            ipv4_address: Some("10.1.0.9".into()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                )])),
            }),
            ..Default::default()
        };
        let spec = spec_of(&body).unwrap();
        assert_eq!(spec.config.image.as_deref(), Some("busybox"));
        assert_eq!(spec.config.exposed_ports, Some(vec!["80/tcp".to_string()]));
        assert!(spec.config.extra.is_empty(), "{:?}", spec.config.extra);
        assert_eq!(spec.host_config.memory, Some(64 << 20));
        assert_eq!(
            spec.host_config.restart_policy.unwrap().name,
            Some(berth_core::container::RestartPolicyName::UnlessStopped)
        );
        let front = &spec.endpoints["front"];
        assert_eq!(front.aliases, Some(vec!["web".to_string()]));
        assert_eq!(
            front.ipam_config.as_ref().unwrap().ipv4_address.as_deref(),
            Some("10.1.0.9")
        );
    }

    #[test]
    fn a_request_without_host_or_network_parts_gets_defaults() {
        let body = ContainerCreateBody {
            image: Some("busybox".into()),
            ..Default::default()
        };
        let spec = spec_of(&body).unwrap();
        assert_eq!(spec.host_config, Default::default());
        assert!(spec.endpoints.is_empty());
    }

    #[test]
    fn a_record_converts_back_to_the_wire_type_field_for_field() {
        let spec = spec_of(&ContainerCreateBody {
            host_config: Some(HostConfig {
                binds: Some(vec!["/a:/b:ro".into()]),
                cpu_realtime_runtime: Some(5),
                cgroupns_mode: Some(HostConfigCgroupnsModeEnum::PRIVATE),
                ..Default::default()
            }),
            ..Default::default()
        })
        .unwrap();
        // a field berth does not act on is kept and sent back
        assert_eq!(spec.host_config.cpu_realtime_runtime, Some(5));
        assert!(spec.host_config.extra.contains_key("CgroupnsMode"));
        let wire: HostConfig = convert(&spec.host_config).unwrap();
        assert_eq!(wire.binds, Some(vec!["/a:/b:ro".to_string()]));
        assert_eq!(wire.cpu_realtime_runtime, Some(5));
        assert_eq!(
            wire.cgroupns_mode,
            Some(HostConfigCgroupnsModeEnum::PRIVATE)
        );
    }
}
