//! A container's /etc/hosts, as libnetwork builds it: the localhost lines
//! (the IPv6 ones where IPv6 works), the `--add-host` entries, the
//! legacy links' children, then the container's own addresses under its
//! name (`host.domain host` when it has a domain). A container without
//! an address (`--network none`) gets no line of its own; one on the
//! host's network a copy of the host's file unless it adds hosts.

use crate::containers::ContainerRecord;
use crate::{Engine, Error, Result};

const LOCALHOST_V4: &str = "127.0.0.1\tlocalhost\n";
const LOCALHOST_V6: &str = "::1\tlocalhost ip6-localhost ip6-loopback\nfe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// The names the container's own addresses carry: the FQDN, then the bare
/// name when they differ.
pub(crate) fn own_names(hostname: &str, domainname: &str) -> String {
    let mut names = hostname.to_string();
    if !domainname.is_empty() {
        names.push('.');
        names.push_str(domainname);
    }
    if let Some((bare, _)) = names.split_once('.') {
        let bare = bare.to_string();
        names.push(' ');
        names.push_str(&bare);
    }
    names
}

/// The file's text: `entries` are (address, names) lines after the
/// localhost ones; without IPv6 the IPv6 lines and entries are left out.
pub(crate) fn render(ipv6: bool, entries: &[(String, String)]) -> String {
    let mut out = String::from(LOCALHOST_V4);
    if ipv6 {
        out.push_str(LOCALHOST_V6);
    }
    for (ip, names) in entries {
        if !ipv6 && ip.contains(':') {
            continue;
        }
        out.push_str(&format!("{ip}\t{names}\n"));
    }
    out
}

impl Engine {
    /// Writes the container's /etc/hosts (the file bind-mounted into it, so
    /// a running container sees the change).
    pub(crate) fn write_hosts(&self, rec: &ContainerRecord) -> Result<()> {
        let path = self.container_dir(&rec.id).join("hosts");
        let mut entries = Vec::new();
        for (name, ip) in crate::hostconfig::extra_hosts(&rec.host_config)? {
            let ip = if ip == "host-gateway" {
                self.host_gateway().ok_or_else(|| {
                    Error::invalid("host-gateway: the default bridge has no gateway")
                })?
            } else {
                ip
            };
            entries.push((ip, name));
        }
        let host_network = rec.host_config.network_mode.as_deref() == Some("host");
        if host_network && entries.is_empty() {
            // dockerd copies the host's file (a missing one stays missing
            // there; berth needs a file to mount)
            let text = std::fs::read_to_string("/etc/hosts")
                .unwrap_or_else(|_| render(ipv6_on_host(), &[]));
            std::fs::write(&path, text)?;
            return Ok(());
        }
        entries.extend(self.links_hosts(rec));
        let names = own_names(
            rec.config.hostname.as_deref().unwrap_or_default(),
            rec.config.domainname.as_deref().unwrap_or_default(),
        );
        for n in self.configured_networks(rec) {
            if let Some(ep) = rec.endpoints.get(&n.name) {
                for ip in [&ep.ip, &ep.ip6] {
                    if !ip.is_empty() {
                        entries.push((ip.clone(), names.clone()));
                    }
                }
            }
        }
        let ipv6 = !host_network || ipv6_on_host();
        std::fs::write(&path, render(ipv6, &entries))?;
        Ok(())
    }
}

/// Whether the host's loopback takes IPv6 (dockerd's IsV6Listenable).
fn ipv6_on_host() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_names_add_the_bare_name_to_a_fqdn() {
        assert_eq!(own_names("web", ""), "web");
        assert_eq!(own_names("web", "example.com"), "web.example.com web");
        assert_eq!(own_names("web.corp", ""), "web.corp web");
    }

    #[test]
    fn render_writes_libnetworks_lines() {
        let entries = vec![
            ("10.0.0.5".to_string(), "db".to_string()),
            ("172.17.0.2".to_string(), "abc".to_string()),
            ("fd00::2".to_string(), "abc".to_string()),
        ];
        assert_eq!(
            render(true, &entries),
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n10.0.0.5\tdb\n172.17.0.2\tabc\nfd00::2\tabc\n"
        );
        assert_eq!(
            render(false, &entries),
            "127.0.0.1\tlocalhost\n10.0.0.5\tdb\n172.17.0.2\tabc\n"
        );
    }
}
