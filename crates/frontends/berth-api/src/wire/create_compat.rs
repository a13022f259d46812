//! What a container create request means for the client's API version,
//! as dockerd's container router decides before the daemon sees it: one
//! endpoint at most before 1.44, the container-wide `MacAddress` moved to
//! the main network's endpoint, volume subpaths from 1.45 on.

use berth_core::container::{ContainerSpec, EndpointConfig};

use crate::error::ApiError;
use crate::server::ApiVersion;

const MAC_DEPRECATED: &str = "The container-wide MacAddress field is now deprecated. It should be specified in EndpointsConfig instead.";

/// Applies the version's rules to `spec`; `body` is the request as sent,
/// for the fields Docker's current types no longer have. Returns
/// dockerd's warnings.
pub fn adjust_create(
    spec: &mut ContainerSpec,
    body: &[u8],
    version: ApiVersion,
) -> Result<Vec<String>, ApiError> {
    if version < ApiVersion(1, 44) && spec.endpoints.len() > 1 {
        let mut names: Vec<&str> = spec.endpoints.keys().map(String::as_str).collect();
        names.sort_unstable();
        return Err(ApiError::bad_request(format!(
            "Container cannot be created with multiple network endpoints: {}",
            names.join(", ")
        )));
    }
    if version < ApiVersion(1, 45) {
        let subpath = spec.host_config.mounts.iter().flatten().any(|m| {
            m.volume_options
                .as_ref()
                .and_then(|o| o.subpath.as_deref())
                .is_some_and(|s| !s.is_empty())
        });
        if subpath {
            return Err(ApiError::bad_request(
                "VolumeOptions.Subpath needs API v1.45 or newer",
            ));
        }
    }
    let legacy_mac = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("MacAddress")?.as_str().map(String::from))
        .filter(|m| !m.is_empty());
    Ok(migrate_mac(spec, legacy_mac, version)?
        .map(String::from)
        .into_iter()
        .collect())
}

/// dockerd's handleMACAddressBC: before 1.44 the container-wide address is
/// the main network's (an endpoint's own address did not exist yet and is
/// dropped); from 1.44 it is deprecated but still moved there, and must
/// agree with the endpoint's.
fn migrate_mac(
    spec: &mut ContainerSpec,
    mac: Option<String>,
    version: ApiVersion,
) -> Result<Option<&'static str>, ApiError> {
    let Some(mac) = mac else {
        if version < ApiVersion(1, 44) {
            for ep in spec.endpoints.values_mut() {
                ep.mac_address = None;
            }
        }
        return Ok(None);
    };
    if version >= ApiVersion(1, 52) {
        return Err(ApiError::bad_request(
            "container-wide MAC address no longer supported; use endpoint-specific MAC address instead",
        ));
    }
    let Some(network) = main_network(spec.host_config.network_mode.as_deref()) else {
        if version < ApiVersion(1, 44) {
            return Err(ApiError::bad_request(
                "conflicting options: mac-address and the network mode",
            ));
        }
        return Ok(Some(MAC_DEPRECATED));
    };
    let ep = main_endpoint(spec, &network, version).map_err(|e| {
        if version < ApiVersion(1, 44) {
            e
        } else {
            ApiError::bad_request(format!(
                "unable to migrate container-wide MAC address to a specific network: {}",
                e.1
            ))
        }
    })?;
    if version < ApiVersion(1, 44) {
        ep.mac_address = Some(mac);
        return Ok(None);
    }
    match ep.mac_address.as_deref().filter(|m| !m.is_empty()) {
        None => ep.mac_address = Some(mac),
        Some(given) if given.eq_ignore_ascii_case(&mac) => {}
        Some(_) => {
            return Err(ApiError::bad_request(
                "the container-wide MAC address must match the endpoint-specific MAC address for the main network, or be left empty",
            ));
        }
    }
    Ok(Some(MAC_DEPRECATED))
}

/// The network a bridge or user-defined network mode names; none for
/// host, none and container modes.
fn main_network(mode: Option<&str>) -> Option<String> {
    match mode.unwrap_or_default() {
        "" | "default" | "bridge" => Some("bridge".into()),
        "host" | "none" => None,
        m if m.starts_with("container:") => None,
        m => Some(m.to_string()),
    }
}

/// dockerd's epConfigForNetMode: the settings the container-wide values go
/// to.
fn main_endpoint<'a>(
    spec: &'a mut ContainerSpec,
    network: &str,
    version: ApiVersion,
) -> Result<&'a mut EndpointConfig, ApiError> {
    if spec.endpoints.is_empty() {
        return Ok(spec.endpoints.entry(network.to_string()).or_default());
    }
    // before 1.44 there is one entry at most, taken whatever its key
    let key = match spec.endpoints.keys().next() {
        Some(k) if version < ApiVersion(1, 44) => k.clone(),
        _ => network.to_string(),
    };
    spec.endpoints.get_mut(&key).ok_or_else(|| {
        ApiError::bad_request(
            "HostConfig.NetworkMode must match the identity of a network in NetworkSettings.Networks",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(mode: &str, eps: &[(&str, Option<&str>)]) -> ContainerSpec {
        let mut s = ContainerSpec {
            config: Default::default(),
            host_config: Default::default(),
            endpoints: Default::default(),
            platform: None,
        };
        s.host_config.network_mode = Some(mode.into());
        for (name, mac) in eps {
            s.endpoints.insert(
                name.to_string(),
                EndpointConfig {
                    mac_address: mac.map(String::from),
                    ..Default::default()
                },
            );
        }
        s
    }

    const MAC: &[u8] = br#"{"MacAddress":"02:42:ac:11:00:0a"}"#;

    #[test]
    fn old_clients_mac_goes_to_the_default_network() {
        let mut s = spec("default", &[]);
        let warnings = adjust_create(&mut s, MAC, ApiVersion(1, 41)).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(
            s.endpoints["bridge"].mac_address.as_deref(),
            Some("02:42:ac:11:00:0a")
        );
    }

    #[test]
    fn old_clients_endpoint_mac_is_dropped_without_a_container_one() {
        let mut s = spec("net1", &[("net1", Some("02:42:ac:11:00:0b"))]);
        adjust_create(&mut s, b"{}", ApiVersion(1, 43)).unwrap();
        assert_eq!(s.endpoints["net1"].mac_address, None);
        let mut s = spec("net1", &[("net1", Some("02:42:ac:11:00:0b"))]);
        adjust_create(&mut s, b"{}", ApiVersion(1, 44)).unwrap();
        assert!(s.endpoints["net1"].mac_address.is_some());
    }

    #[test]
    fn old_clients_mac_needs_a_network_of_its_own() {
        let mut s = spec("host", &[]);
        let err = adjust_create(&mut s, MAC, ApiVersion(1, 41)).unwrap_err();
        assert_eq!(
            err.1,
            "conflicting options: mac-address and the network mode"
        );
    }

    #[test]
    fn newer_clients_get_a_warning_and_must_agree() {
        let mut s = spec("net1", &[("net1", None)]);
        let warnings = adjust_create(&mut s, MAC, ApiVersion(1, 44)).unwrap();
        assert_eq!(warnings, vec![MAC_DEPRECATED.to_string()]);
        assert!(s.endpoints["net1"].mac_address.is_some());
        let mut s = spec("net1", &[("net1", Some("02:42:ac:11:00:0b"))]);
        assert!(adjust_create(&mut s, MAC, ApiVersion(1, 45)).is_err());
        let mut s = spec("net1", &[("other", None)]);
        let err = adjust_create(&mut s, MAC, ApiVersion(1, 45)).unwrap_err();
        assert!(err.1.starts_with("unable to migrate"));
    }

    #[test]
    fn several_endpoints_need_api_1_44() {
        let mut s = spec("n1", &[("n1", None), ("bar", None)]);
        let err = adjust_create(&mut s, b"{}", ApiVersion(1, 41)).unwrap_err();
        assert_eq!(
            err.1,
            "Container cannot be created with multiple network endpoints: bar, n1"
        );
        let mut s = spec("n1", &[("n1", None), ("bar", None)]);
        assert!(adjust_create(&mut s, b"{}", ApiVersion(1, 44)).is_ok());
    }
}
