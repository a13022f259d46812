//! Legacy links (`--link name:alias` on the default bridge), as dockerd
//! keeps them: a parent holds its children by id under an alias, inspect
//! shows them as `/child:/parent/alias`, the child answers to
//! `/parent/alias` too, and a starting parent gets the children's
//! addresses in its /etc/hosts and their ports and environment as
//! `ALIAS_*` variables (dockerd 28 and older set them unconditionally).

use std::collections::{BTreeMap, HashMap};

use berth_core::container::HostConfig;

use crate::containers::{ContainerRecord, Status};
use crate::{Engine, Error, LockExt, Result};

/// `name[:alias]` read as dockerd's ParseLink does: the alias defaults to
/// the name, and the `/child:/parent/alias` form inspect shows is taken
/// back as the child and the alias.
pub(crate) fn parse_link(link: &str) -> Result<(String, String)> {
    if link.is_empty() {
        return Err(Error::invalid("empty string specified for links"));
    }
    let parts: Vec<&str> = link.split(':').collect();
    match parts.as_slice() {
        [name] => Ok((name.to_string(), name.to_string())),
        [name, alias] => match name.strip_prefix('/') {
            Some(bare) => Ok((
                bare.to_string(),
                alias.rsplit('/').next().unwrap_or(alias).to_string(),
            )),
            None => Ok((name.to_string(), alias.to_string())),
        },
        _ => Err(Error::invalid(format!("bad format for links: {link}"))),
    }
}

/// The variables a link gives the parent (moby's links.Link.ToEnv):
/// `ALIAS_PORT*` for each exposed port (and each run of consecutive
/// ones), `ALIAS_NAME`, and `ALIAS_ENV_*` for the child's environment.
pub(crate) fn link_env(
    name: &str,
    child_ip: &str,
    child_env: &[String],
    exposed: &[String],
) -> Vec<String> {
    let short = name.rsplit('/').next().unwrap_or(name);
    let alias = short.to_uppercase().replace('-', "_");
    let mut ports: Vec<(u16, String)> = exposed
        .iter()
        .filter_map(|p| {
            let (n, proto) = p.split_once('/').unwrap_or((p, "tcp"));
            Some((n.parse().ok()?, proto.to_ascii_lowercase()))
        })
        .collect();
    // tcp first, then by protocol, then by number
    ports.sort_by(|a, b| (a.1 != "tcp", &a.1, a.0).cmp(&(b.1 != "tcp", &b.1, b.0)));
    let mut env = Vec::new();
    let Some(first) = ports.first() else {
        return finish_env(env, &alias, name, child_env);
    };
    env.push(format!("{alias}_PORT={}://{child_ip}:{}", first.1, first.0));
    let (mut start, mut end) = (first.clone(), first.clone());
    for (i, (port, proto)) in ports.iter().enumerate() {
        let prefix = format!("{alias}_PORT_{port}_{}", proto.to_uppercase());
        env.push(format!("{prefix}={proto}://{child_ip}:{port}"));
        env.push(format!("{prefix}_ADDR={child_ip}"));
        env.push(format!("{prefix}_PORT={port}"));
        env.push(format!("{prefix}_PROTO={proto}"));
        if u32::from(*port) == u32::from(end.0) + 1 && *proto == start.1 {
            end = (*port, proto.clone());
            if i < ports.len() - 1 {
                continue;
            }
        }
        if end != start {
            let prefix = format!("{alias}_PORT_{}_{}", start.0, start.1.to_uppercase());
            env.push(format!(
                "{prefix}_START={}://{child_ip}:{}",
                start.1, start.0
            ));
            env.push(format!("{prefix}_PORT_START={}", start.0));
            env.push(format!("{prefix}_END={}://{child_ip}:{}", end.1, end.0));
            env.push(format!("{prefix}_PORT_END={}", end.0));
        }
        start = (*port, proto.clone());
        end = start.clone();
    }
    finish_env(env, &alias, name, child_env)
}

fn finish_env(mut env: Vec<String>, alias: &str, name: &str, child_env: &[String]) -> Vec<String> {
    env.push(format!("{alias}_NAME={name}"));
    for v in child_env {
        let Some((key, val)) = v.split_once('=') else {
            continue;
        };
        // added by builds, of no use to the parent
        if key == "HOME" || key == "PATH" {
            continue;
        }
        env.push(format!("{alias}_ENV_{key}={val}"));
    }
    env
}

/// `base` with each of `over`'s variables replacing the one of the same
/// name, or appended (dockerd's ReplaceOrAppendEnvValues).
pub(crate) fn replace_or_append(mut base: Vec<String>, over: &[String]) -> Vec<String> {
    for v in over {
        let key = v.split('=').next().unwrap_or_default();
        match base.iter_mut().find(|x| x.split('=').next() == Some(key)) {
            Some(slot) => *slot = v.clone(),
            None => base.push(v.clone()),
        }
    }
    base
}

/// A linked child as the parent sees it at start.
pub(crate) struct LinkedChild {
    /// `/parent/alias`
    pub(crate) full_name: String,
    pub(crate) alias: String,
    pub(crate) rec: ContainerRecord,
}

impl Engine {
    /// A new container's links, resolved as dockerd's registerLinks does at
    /// create (links on a user-defined network are only aliases, kept
    /// nowhere else): each names an existing container, not on the host's
    /// network, and becomes alias -> the child's id (through the chain of
    /// `container:` modes). A missing one is the request's fault (400): a
    /// 404 would make the CLI pull.
    pub(crate) fn resolve_links(&self, hc: &HostConfig) -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        let mode = hc.network_mode.as_deref().unwrap_or_default();
        let predefined = matches!(mode, "" | "default" | "bridge" | "host" | "none")
            || mode.starts_with("container:");
        if !predefined {
            return Ok(out);
        }
        let missing = |name: &str, err: Error| match err {
            Error::NotFound(m) => {
                Error::invalid(format!("could not get container for {name}: {m}"))
            }
            other => other,
        };
        for link in hc.links.clone().unwrap_or_default() {
            let (name, alias) = parse_link(&link)?;
            let mut child = self.get(&name).map_err(|e| missing(&name, e))?.record();
            // a container in another's namespace is linked through that one
            for _ in 0..64 {
                let child_mode = child.host_config.network_mode.clone().unwrap_or_default();
                let Some(cid) = child_mode.strip_prefix("container:") else {
                    break;
                };
                child = self.get(cid).map_err(|e| missing(cid, e))?.record();
            }
            if child.host_config.network_mode.as_deref() == Some("host") {
                return Err(Error::invalid(
                    "conflicting options: host type networking can't be used with links. This would result in undefined behavior",
                ));
            }
            // a second link under one alias is ignored, as dockerd's
            // name reservation does
            out.entry(alias).or_insert(child.id);
        }
        Ok(out)
    }

    /// The children a container links to that still exist, by alias.
    fn link_children(&self, rec: &ContainerRecord) -> Vec<LinkedChild> {
        rec.legacy_links
            .iter()
            .filter_map(|(alias, id)| {
                let child = self.get(id).ok()?.record();
                Some(LinkedChild {
                    full_name: format!("/{}/{alias}", rec.name),
                    alias: alias.clone(),
                    rec: child,
                })
            })
            .collect()
    }

    /// Inspect's `HostConfig.Links`: `/child:/parent/alias`, none for a
    /// container without legacy links (as dockerd, which hides the request's
    /// form).
    pub(crate) fn links_view(&self, rec: &ContainerRecord) -> Option<Vec<String>> {
        let links: Vec<String> = self
            .link_children(rec)
            .iter()
            .map(|c| format!("/{}:{}", c.rec.name, c.full_name))
            .collect();
        (!links.is_empty()).then_some(links)
    }

    /// The names every linked child answers to, by child id, sorted: one
    /// pass for a whole listing.
    pub(crate) fn all_link_names(&self) -> HashMap<String, Vec<String>> {
        let mut by_child: HashMap<String, Vec<String>> = HashMap::new();
        for e in self.containers.r().values() {
            e.read(|p| {
                for (alias, child) in &p.legacy_links {
                    by_child
                        .entry(child.clone())
                        .or_default()
                        .push(format!("/{}/{alias}", p.name));
                }
            });
        }
        for names in by_child.values_mut() {
            names.sort();
        }
        by_child
    }

    /// The names a container answers to as a linked child: `/parent/alias`.
    pub(crate) fn link_names(&self, id: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .containers
            .r()
            .values()
            .flat_map(|e| {
                e.read(|p| {
                    p.legacy_links
                        .iter()
                        .filter(|(_, child)| *child == id)
                        .map(|(alias, _)| format!("/{}/{alias}", p.name))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        names.sort();
        names
    }

    /// The running children of a starting parent on the default bridge,
    /// with their bridge addresses; dockerd's errors for one that is not on
    /// the default bridge or not running. A parent off the bridge has none.
    pub(crate) fn running_children(
        &self,
        rec: &ContainerRecord,
    ) -> Result<Vec<(LinkedChild, crate::networks::EndpointRecord)>> {
        if !rec.endpoints.contains_key("bridge") {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for child in self.link_children(rec) {
            if !self.on_default_bridge(&child.rec) {
                return Err(Error::Internal(anyhow::anyhow!(
                    "Cannot link to /{}, as it does not belong to the default network",
                    child.rec.name
                )));
            }
            let ep = child.rec.endpoints.get("bridge").cloned();
            match ep {
                Some(ep) if child.rec.state.status == Status::Running => out.push((child, ep)),
                _ => {
                    return Err(Error::Internal(anyhow::anyhow!(
                        "Cannot link to a non running container: /{} AS {}",
                        child.rec.name,
                        child.full_name
                    )));
                }
            }
        }
        Ok(out)
    }

    /// Whether a container is (to be) on the default bridge.
    fn on_default_bridge(&self, rec: &ContainerRecord) -> bool {
        rec.endpoints.contains_key("bridge")
            || self
                .configured_networks(rec)
                .iter()
                .any(|n| n.name == "bridge")
    }

    /// The variables the parent's links give its processes.
    pub(crate) fn links_env(&self, rec: &ContainerRecord) -> Result<Vec<String>> {
        Ok(self
            .running_children(rec)?
            .into_iter()
            .flat_map(|(c, ep)| {
                link_env(
                    &c.full_name,
                    &ep.ip,
                    &c.rec.config.env.clone().unwrap_or_default(),
                    &c.rec.config.exposed_ports.clone().unwrap_or_default(),
                )
            })
            .collect())
    }

    /// The /etc/hosts lines of the parent's links: the child's bridge
    /// addresses under `alias hostname [name]`.
    pub(crate) fn links_hosts(&self, rec: &ContainerRecord) -> Vec<(String, String)> {
        let Ok(children) = self.running_children(rec) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (c, ep) in children {
            let mut names = format!(
                "{} {}",
                c.alias,
                c.rec.config.hostname.clone().unwrap_or_default()
            );
            if c.alias != c.rec.name {
                names.push(' ');
                names.push_str(&c.rec.name);
            }
            for ip in [&ep.ip, &ep.ip6] {
                if !ip.is_empty() {
                    out.push((ip.clone(), names.clone()));
                }
            }
        }
        out
    }

    /// Rewrites the /etc/hosts of the running containers that link to
    /// `child` (its address changes with each start), as dockerd does.
    pub(crate) fn refresh_parents_of(&self, child: &str) {
        let parents: Vec<ContainerRecord> = self
            .containers
            .r()
            .values()
            .map(|e| e.record())
            .filter(|p| {
                p.state.status == Status::Running && p.legacy_links.values().any(|c| c == child)
            })
            .collect();
        for p in parents {
            if let Err(err) = self.write_hosts(&p) {
                tracing::warn!(container = %&p.id[..12], error = %err, "rewriting /etc/hosts");
            }
        }
    }

    /// `DELETE /containers/{parent}/{alias}?link=1`: forgets the link, as
    /// dockerd's rmLink (with its words and its plain errors, 500s).
    pub async fn remove_link(&self, name: &str) -> Result<()> {
        // the name must name a container first (a 404 otherwise)
        self.get(name)?;
        let bare = name.strip_prefix('/').unwrap_or(name);
        let Some((parent, alias)) = bare.rsplit_once('/') else {
            return Err(Error::Internal(anyhow::anyhow!(
                "Conflict, cannot remove the default link name of the container"
            )));
        };
        let p = self.get(parent).map_err(|_| {
            Error::Internal(anyhow::anyhow!(
                "Cannot get parent /{parent} for link name /{bare}"
            ))
        })?;
        let rec = p.update(|r| {
            r.legacy_links.remove(alias);
            r.clone()
        });
        self.persist_record(&rec)?;
        if rec.state.status == Status::Running
            && let Err(err) = self.write_hosts(&rec)
        {
            tracing::debug!(container = %&rec.id[..12], error = %err, "rewriting /etc/hosts after unlink");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_link_reads_dockerds_forms() {
        assert_eq!(parse_link("db").unwrap(), ("db".into(), "db".into()));
        assert_eq!(parse_link("db:d").unwrap(), ("db".into(), "d".into()));
        assert_eq!(parse_link("/db:/web/d").unwrap(), ("db".into(), "d".into()));
        assert!(parse_link("").is_err());
        assert!(parse_link("a:b:c").is_err());
    }

    #[test]
    fn link_env_follows_mobys_to_env() {
        let env = link_env(
            "/web/my-db",
            "172.17.0.2",
            &["PATH=/bin".into(), "PASSWORD=x".into(), "bare".into()],
            &["6379/tcp".into(), "53/udp".into(), "6380/tcp".into()],
        );
        let want = [
            "MY_DB_PORT=tcp://172.17.0.2:6379",
            "MY_DB_PORT_6379_TCP=tcp://172.17.0.2:6379",
            "MY_DB_PORT_6379_TCP_ADDR=172.17.0.2",
            "MY_DB_PORT_6379_TCP_PORT=6379",
            "MY_DB_PORT_6379_TCP_PROTO=tcp",
            "MY_DB_PORT_6380_TCP=tcp://172.17.0.2:6380",
            "MY_DB_PORT_6380_TCP_ADDR=172.17.0.2",
            "MY_DB_PORT_6380_TCP_PORT=6380",
            "MY_DB_PORT_6380_TCP_PROTO=tcp",
            "MY_DB_PORT_53_UDP=udp://172.17.0.2:53",
            "MY_DB_PORT_53_UDP_ADDR=172.17.0.2",
            "MY_DB_PORT_53_UDP_PORT=53",
            "MY_DB_PORT_53_UDP_PROTO=udp",
            "MY_DB_PORT_6379_TCP_START=tcp://172.17.0.2:6379",
            "MY_DB_PORT_6379_TCP_PORT_START=6379",
            "MY_DB_PORT_6379_TCP_END=tcp://172.17.0.2:6380",
            "MY_DB_PORT_6379_TCP_PORT_END=6380",
            "MY_DB_NAME=/web/my-db",
            "MY_DB_ENV_PASSWORD=x",
        ];
        assert_eq!(env, want);
    }

    #[test]
    fn link_env_without_ports_names_the_link() {
        let env = link_env("/p/a", "10.0.0.2", &[], &[]);
        assert_eq!(env, ["A_NAME=/p/a"]);
    }

    #[test]
    fn replace_or_append_keeps_the_order_of_the_base() {
        let out = replace_or_append(
            vec!["A=1".into(), "B=2".into()],
            &["B=3".into(), "C=4".into()],
        );
        assert_eq!(out, ["A=1", "B=3", "C=4"]);
    }
}
