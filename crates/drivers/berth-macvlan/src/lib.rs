//! The macvlan driver (Docker's `-d macvlan`): each container gets a
//! macvlan device on a parent link of the host (`-o parent=eth0`), so it
//! sits on the parent's network with an address of its own, with no
//! bridge and no NAT. Modes: bridge (the default), private, vepa,
//! passthru (`-o macvlan_mode`). Swarm uses it for node-local networks
//! (`--config-from`): each node names its own parent.

mod links;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Mutex;

use berth_core::network::{
    Capabilities, EndpointInfo, EndpointSpec, JoinInfo, JoinRequest, NetworkCreated, NetworkDriver,
    NetworkError, NetworkSpec, PortRequest, PublishedPort, Result, Scope,
};

pub use links::Mode;

const PARENT_OPTION: &str = "parent";
const MODE_OPTION: &str = "macvlan_mode";

#[derive(Clone, Debug)]
struct Net {
    parent: String,
    mode: Mode,
    gateway: Option<Ipv4Addr>,
    endpoints: HashMap<String, Endpoint>,
}

#[derive(Clone, Debug)]
struct Endpoint {
    ip: Ipv4Addr,
    prefix: u8,
    mac: [u8; 6],
    /// the sandbox and the interface there, once joined
    joined: Option<(PathBuf, String)>,
}

#[derive(Default)]
pub struct MacvlanDriver {
    nets: Mutex<HashMap<String, Net>>,
}

impl MacvlanDriver {
    pub fn new() -> MacvlanDriver {
        MacvlanDriver::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Net>> {
        self.nets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The network's parent and mode, checked as Docker's driver checks
    /// them.
    fn configured(&self, spec: &NetworkSpec) -> Result<Net> {
        let parent = spec.options.get(PARENT_OPTION).cloned().unwrap_or_default();
        if parent.is_empty() {
            return Err(NetworkError::InvalidParameter(
                "the macvlan driver needs a parent interface (-o parent=<interface>): berth does not make dummy parents".into(),
            ));
        }
        if parent == "lo" {
            return Err(NetworkError::InvalidParameter(
                "loopback interface is not a valid macvlan parent link".into(),
            ));
        }
        let mode = match spec.options.get(MODE_OPTION).map(String::as_str) {
            None | Some("") | Some("bridge") => Mode::Bridge,
            Some("private") => Mode::Private,
            Some("vepa") => Mode::Vepa,
            Some("passthru") => Mode::Passthru,
            Some(other) => {
                return Err(NetworkError::InvalidParameter(format!(
                    "requested macvlan mode '{other}' is not valid, 'bridge' mode is the macvlan driver default"
                )));
            }
        };
        if !links::exists(&parent).map_err(NetworkError::Internal)? {
            return Err(NetworkError::InvalidParameter(format!(
                "the requested parent interface {parent} was not found on the Docker host"
            )));
        }
        let gateway = spec
            .ipv4
            .first()
            .and_then(|p| p.gateway.as_deref())
            .and_then(|g| g.parse().ok());
        Ok(Net {
            parent,
            mode,
            gateway,
            endpoints: HashMap::new(),
        })
    }

    /// Docker's refusals of two networks on one parent in passthru mode.
    fn check_parent_free(&self, id: &str, n: &Net) -> Result<()> {
        for (other_id, other) in self.lock().iter() {
            if other_id == id || other.parent != n.parent {
                continue;
            }
            if n.mode == Mode::Passthru {
                return Err(NetworkError::InvalidParameter(format!(
                    "cannot use mode passthru, macvlan network {other_id} is already using parent interface {}",
                    n.parent
                )));
            }
            if other.mode == Mode::Passthru {
                return Err(NetworkError::InvalidParameter(format!(
                    "macvlan network {other_id} is already using parent interface {} in mode passthru",
                    n.parent
                )));
            }
        }
        Ok(())
    }
}

fn not_found(what: &str, id: &str) -> NetworkError {
    NetworkError::NotFound(format!("{what} {id} not found"))
}

impl NetworkDriver for MacvlanDriver {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            scope: Scope::Local,
            connectivity_scope: Scope::Global,
        }
    }

    /// A network whose parent is gone must not keep the daemon from
    /// starting: its containers fail to start instead, with the reason.
    fn restore(&self, networks: &[NetworkSpec], _ports: &[PublishedPort]) -> Result<()> {
        for n in networks {
            if let Err(e) = self.create_network(n) {
                tracing::warn!(network = %n.name, error = %e, "restoring a macvlan network");
            }
        }
        Ok(())
    }

    fn create_network(&self, spec: &NetworkSpec) -> Result<NetworkCreated> {
        let n = self.configured(spec)?;
        self.check_parent_free(&spec.id, &n)?;
        self.lock().insert(spec.id.clone(), n);
        Ok(NetworkCreated::default())
    }

    fn delete_network(&self, network_id: &str) -> Result<()> {
        self.lock().remove(network_id);
        Ok(())
    }

    fn create_endpoint(
        &self,
        network_id: &str,
        endpoint_id: &str,
        spec: &EndpointSpec,
    ) -> Result<EndpointInfo> {
        let (ip, prefix) = spec.address.ok_or_else(|| {
            NetworkError::InvalidParameter("a macvlan endpoint needs an IPv4 address".into())
        })?;
        if spec.address6.is_some() {
            return Err(NetworkError::InvalidParameter(
                "berth's macvlan driver has no IPv6 yet: create the network without --ipv6".into(),
            ));
        }
        let mac = spec.mac.unwrap_or_else(|| links::mac_of(ip));
        let mut nets = self.lock();
        let n = nets
            .get_mut(network_id)
            .ok_or_else(|| not_found("network", network_id))?;
        n.endpoints.insert(
            endpoint_id.to_string(),
            Endpoint {
                ip,
                prefix,
                mac,
                joined: None,
            },
        );
        Ok(EndpointInfo {
            address: Some((ip, prefix)),
            address6: None,
            mac,
        })
    }

    fn delete_endpoint(&self, network_id: &str, endpoint_id: &str) -> Result<()> {
        if let Some(n) = self.lock().get_mut(network_id) {
            n.endpoints.remove(endpoint_id);
        }
        Ok(())
    }

    fn join(&self, network_id: &str, endpoint_id: &str, req: &JoinRequest) -> Result<JoinInfo> {
        let (n, ep) = {
            let nets = self.lock();
            let n = nets
                .get(network_id)
                .ok_or_else(|| not_found("network", network_id))?;
            let ep = n
                .endpoints
                .get(endpoint_id)
                .ok_or_else(|| not_found("endpoint", endpoint_id))?;
            (n.clone(), ep.clone())
        };
        let plug = links::Plug {
            parent: n.parent.clone(),
            mode: n.mode,
            container_if: req.interface.clone(),
            ip: ep.ip,
            prefix: ep.prefix,
            mac: ep.mac,
            gateway: n.gateway.filter(|_| req.default_route),
        };
        links::plug(&req.sandbox_key, &plug).map_err(NetworkError::Internal)?;
        if let Some(e) = self
            .lock()
            .get_mut(network_id)
            .and_then(|n| n.endpoints.get_mut(endpoint_id))
        {
            e.joined = Some((req.sandbox_key.clone(), req.interface.clone()));
        }
        Ok(JoinInfo {
            // the device lives in the container: there is no host end
            host_interface: String::new(),
            gateway: n.gateway.filter(|_| req.default_route),
            gateway6: None,
        })
    }

    fn leave(&self, network_id: &str, endpoint_id: &str) -> Result<()> {
        let joined = self
            .lock()
            .get_mut(network_id)
            .and_then(|n| n.endpoints.get_mut(endpoint_id))
            .and_then(|e| e.joined.take());
        if let Some((sandbox, ifname)) = joined
            && sandbox.exists()
        {
            links::unplug(&sandbox, &ifname).map_err(NetworkError::Internal)?;
        }
        Ok(())
    }

    fn program_external_connectivity(
        &self,
        _network_id: &str,
        _endpoint_id: &str,
        _ports: &[PortRequest],
    ) -> Result<Vec<PublishedPort>> {
        // a macvlan container is on the parent's network itself: Docker
        // publishes nothing for it either
        Ok(Vec::new())
    }

    fn revoke_external_connectivity(
        &self,
        _network_id: &str,
        _endpoint_id: &str,
        _ports: &[PublishedPort],
    ) -> Result<()> {
        Ok(())
    }
}
