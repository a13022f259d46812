//! What inspect and list show of a container, in berth's terms: the record
//! and the facts the engine holds beside it (file paths, the networks it
//! is on, where its volumes live). The API layer turns a view into
//! Docker's answer.

use berth_core::container::EndpointConfig;
use berth_networks::EndpointRecord;

use crate::containers::{ContainerRecord, ListOptions, Status};
use crate::networks::endpoint_network;
use crate::volumes::MountView;
use crate::{Engine, LockExt, Result};

#[derive(Debug, Clone)]
pub struct ContainerView {
    pub record: ContainerRecord,
    pub resolv_conf_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    /// empty unless the log driver is json-file (dockerd shows no other)
    pub log_path: String,
    pub layers: LayerDirs,
    /// the network namespace's path; empty without networking
    pub sandbox_key: String,
    /// in the order inspect lists them
    pub networks: Vec<NetworkAttachment>,
    pub mounts: Vec<MountView>,
    /// whether the image is still there (`ps` shows its id otherwise)
    pub image_present: bool,
    /// asked for with `size`
    pub sizes: Option<Sizes>,
    /// the names it answers to as a linked child (`/parent/alias`)
    pub link_names: Vec<String>,
}

/// The overlay directories of the container's root filesystem.
#[derive(Debug, Clone, Default)]
pub struct LayerDirs {
    pub lower: Vec<String>,
    pub upper: String,
    pub work: String,
    pub merged: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sizes {
    /// bytes written in the container's own layer
    pub rw: i64,
    /// that plus its image
    pub root_fs: i64,
}

/// A container on one network: the network, the settings it was asked
/// for and, while running, its endpoint.
#[derive(Debug, Clone, Default)]
pub struct NetworkAttachment {
    pub name: String,
    /// empty when the network is gone
    pub network_id: String,
    pub config: EndpointConfig,
    pub endpoint: EndpointRecord,
}

impl Engine {
    pub fn container_inspect(&self, name: &str, size: bool) -> Result<ContainerView> {
        let rec = self.get(name)?.record();
        let link_names = self.link_names(&rec.id);
        Ok(self.view_of(rec, size, link_names))
    }

    pub fn container_list(&self, opts: &ListOptions) -> Result<Vec<ContainerView>> {
        let recs = self.listed_records(opts)?;
        let mut link_names = self.all_link_names();
        Ok(recs
            .into_iter()
            .map(|rec| {
                let names = link_names.remove(&rec.id).unwrap_or_default();
                self.view_of(rec, opts.size, names)
            })
            .collect())
    }

    /// The records `container_list` would show, without their views.
    pub fn container_records(&self, opts: &ListOptions) -> Result<Vec<ContainerRecord>> {
        self.listed_records(opts)
    }

    fn view_of(
        &self,
        mut rec: ContainerRecord,
        size: bool,
        link_names: Vec<String>,
    ) -> ContainerView {
        // dockerd shows the links it keeps, not the request's form
        rec.host_config.links = self.links_view(&rec);
        let cdir = self.container_dir(&rec.id);
        let path = |f: &str| cdir.join(f).display().to_string();
        let (upper, work) = self.overlay_dirs_of(&rec.id);
        let json_file = crate::containers::log_driver_of(&rec.host_config).0 == "json-file";
        let sizes = size.then(|| {
            let rw = self.rw_size(&rec.id, rec.state.status == Status::Running) as i64;
            Sizes {
                rw,
                root_fs: rw + self.image_size(&rec.image_id),
            }
        });
        ContainerView {
            resolv_conf_path: path("resolv.conf"),
            hostname_path: path("hostname"),
            hosts_path: path("hosts"),
            log_path: if json_file {
                self.log_path(&rec.id).display().to_string()
            } else {
                String::new()
            },
            layers: LayerDirs {
                lower: self
                    .lower_dirs(&rec)
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect(),
                upper: upper.display().to_string(),
                work: work.display().to_string(),
                merged: self.rootfs_dir(&rec.id).display().to_string(),
            },
            // a pod's namespace is shown while it is pinned: after its
            // CNI DEL (or a reboot) there is none
            sandbox_key: if rec.pod_netns {
                self.pod_netns(&rec.id)
            } else {
                self.container_netns(&rec)
            }
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
            networks: self.network_attachments(&rec),
            mounts: self.mount_points(&rec.mounts),
            image_present: self.images.r().images.contains_key(&rec.image_id),
            sizes,
            link_names,
            record: rec,
        }
    }

    /// The networks inspect shows: the one of `--network` (unless
    /// disconnected) and those joined later; none for host, none and
    /// container modes (host and none show their own name).
    fn network_attachments(&self, rec: &ContainerRecord) -> Vec<NetworkAttachment> {
        let mode = rec.host_config.network_mode.clone().unwrap_or_default();
        let primary_id = endpoint_network(&mode).and_then(|m| self.networks.find_id(m));
        let names: Vec<String> = match endpoint_network(&mode) {
            Some(n) => {
                let mut v = Vec::new();
                if !rec.primary_detached {
                    v.push(
                        self.networks
                            .r()
                            .find(n)
                            .map(|r| r.name.clone())
                            .unwrap_or_else(|| n.to_string()),
                    );
                }
                for extra in self.configured_networks(rec) {
                    if !v.contains(&extra.name) {
                        v.push(extra.name);
                    }
                }
                v
            }
            None if mode.starts_with("container:") => Vec::new(),
            None => vec![mode],
        };
        names
            .into_iter()
            .map(|name| {
                let network_id = self
                    .networks
                    .r()
                    .find(&name)
                    .map(|n| n.id.clone())
                    .unwrap_or_default();
                let primary = primary_id.as_deref() == Some(network_id.as_str());
                let config = crate::networks::endpoint_settings(rec, &name, &network_id, primary)
                    .cloned()
                    .unwrap_or_default();
                let endpoint = rec.endpoints.get(&name).cloned().unwrap_or_else(|| {
                    // dockerd shows the requested address until the first
                    // start gives the endpoint its own
                    let mac = match rec.state.status {
                        Status::Created => config.mac_address.clone().unwrap_or_default(),
                        _ => String::new(),
                    };
                    EndpointRecord {
                        mac,
                        ..Default::default()
                    }
                });
                NetworkAttachment {
                    network_id,
                    config,
                    endpoint,
                    name,
                }
            })
            .collect()
    }
}
