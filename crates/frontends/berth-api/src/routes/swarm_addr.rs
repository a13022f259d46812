//! The addresses of `swarm init` and `join`, resolved as dockerd resolves
//! them (daemon/cluster/listen_addr.go): IPs or interface names, an
//! optional port (2377 by default), and an advertise address found from
//! the system's own when none is given.

use std::net::{IpAddr, Ipv4Addr};

pub const DEFAULT_PORT: u16 = 2377;

/// `host[:port]` split, the port defaulting to `default_port`.
fn split(addr: &str, default_port: u16) -> Result<(String, u16), ()> {
    if let Ok(sa) = addr.parse::<std::net::SocketAddr>() {
        return Ok((sa.ip().to_string(), sa.port()));
    }
    if addr.parse::<IpAddr>().is_ok() {
        return Ok((addr.to_string(), default_port));
    }
    match addr.rsplit_once(':') {
        Some((h, p)) => Ok((h.to_string(), p.parse().map_err(|_| ())?)),
        None => Ok((addr.to_string(), default_port)),
    }
}

/// The IPv4 addresses of the up, non-loopback interfaces (name, address).
fn system_addrs() -> Vec<(String, Ipv4Addr)> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    addrs
        .filter(|a| a.flags.contains(nix::net::if_::InterfaceFlags::IFF_UP))
        .filter_map(|a| {
            let ip = a.address?.as_sockaddr_in()?.ip();
            (!ip.is_loopback()).then_some((a.interface_name, ip))
        })
        .collect()
}

/// An interface name's single IPv4 address.
fn interface_addr(name: &str) -> Result<String, String> {
    let found: Vec<Ipv4Addr> = system_addrs()
        .into_iter()
        .filter(|(n, _)| n == name)
        .map(|(_, ip)| ip)
        .collect();
    match found.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(format!(
            "interface {name} has no usable IPv4 or IPv6 address"
        )),
        [a, b, ..] => Err(format!(
            "interface {name} has more than one IPv4 address ({a} and {b})"
        )),
    }
}

/// The listen address as `ip:port`.
pub fn listen(addr: &str) -> Result<String, String> {
    let addr = if addr.is_empty() {
        "0.0.0.0:2377"
    } else {
        addr
    };
    let (host, port) =
        split(addr, DEFAULT_PORT).map_err(|()| format!("could not parse listen address {addr}"))?;
    let ip = if host.parse::<IpAddr>().is_ok() {
        host
    } else {
        interface_addr(&host).map_err(|_| {
            "listen address must be an IP address or network interface (with optional port number)".to_string()
        })?
    };
    Ok(format!("{ip}:{port}"))
}

/// Bridges berth makes are not addresses to advertise.
fn engine_interface(name: &str) -> bool {
    name == "berth0" || name == "docker0" || name.starts_with("br-")
}

/// The advertise address as `ip:port`; `listen` is the resolved listen
/// address, whose port it takes when it has none of its own.
pub fn advertise(addr: &str, listen: &str) -> Result<String, String> {
    let (listen_ip, listen_port) =
        split(listen, DEFAULT_PORT).unwrap_or(("0.0.0.0".into(), DEFAULT_PORT));
    if addr.is_empty() {
        if listen_ip != "0.0.0.0" && listen_ip != "::" {
            return Ok(format!("{listen_ip}:{listen_port}"));
        }
        return Ok(format!("{}:{listen_port}", system_addr()?));
    }
    let bad = "advertise address must be a non-zero IP address or network interface (with optional port number)";
    let (host, port) = split(addr, listen_port).map_err(|()| bad.to_string())?;
    let ip = match host.parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() => return Err(bad.into()),
        Ok(_) => host,
        Err(_) => interface_addr(&host).map_err(|e| {
            if e.starts_with("interface") {
                e
            } else {
                bad.into()
            }
        })?,
    };
    Ok(format!("{ip}:{port}"))
}

/// `--data-path-addr` as an IP: an address or an interface's; none when
/// not given (the advertise address carries the overlay then).
pub fn data_path(addr: &str) -> Result<String, String> {
    if addr.is_empty() {
        return Ok(String::new());
    }
    let bad = || {
        "data path address must be a non-zero IP address or network interface (without a port number)"
            .to_string()
    };
    match addr.parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() => Err(bad()),
        Ok(ip) => Ok(ip.to_string()),
        // not an interface either
        Err(_) if nix::net::if_::if_nametoindex(addr).is_err() => Err(bad()),
        Err(_) => interface_addr(addr),
    }
}

/// The system's one address, as dockerd finds it when none is given.
fn system_addr() -> Result<String, String> {
    let found: Vec<(String, Ipv4Addr)> = system_addrs()
        .into_iter()
        .filter(|(n, _)| !engine_interface(n))
        .collect();
    match found.as_slice() {
        [(_, ip)] => Ok(ip.to_string()),
        [] => Err("could not find the system's IP address".into()),
        [(n1, a), (n2, b), ..] if n1 == n2 => Err(format!(
            "could not choose an IP address to advertise since this system has multiple addresses on interface {n1} ({a} and {b})"
        )),
        [(n1, a), (n2, b), ..] => Err(format!(
            "could not choose an IP address to advertise since this system has multiple addresses on different interfaces ({a} on {n1} and {b} on {n2})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_default_to_2377_and_the_listen_port() {
        assert_eq!(listen("").unwrap(), "0.0.0.0:2377");
        assert_eq!(listen("10.0.0.1").unwrap(), "10.0.0.1:2377");
        assert_eq!(listen("10.0.0.1:4000").unwrap(), "10.0.0.1:4000");
        assert_eq!(
            advertise("10.0.0.2", "0.0.0.0:4000").unwrap(),
            "10.0.0.2:4000"
        );
        assert_eq!(
            advertise("10.0.0.2:5000", "0.0.0.0:4000").unwrap(),
            "10.0.0.2:5000"
        );
        assert_eq!(advertise("", "10.0.0.1:2377").unwrap(), "10.0.0.1:2377");
    }

    #[test]
    fn bad_addresses_get_dockerds_words() {
        assert!(
            advertise("0.0.0.0", "0.0.0.0:2377")
                .unwrap_err()
                .starts_with("advertise address must be a non-zero IP")
        );
        assert!(
            listen("10.0.0.1:x")
                .unwrap_err()
                .starts_with("could not parse listen address")
        );
        assert!(advertise("no-such-if0", "0.0.0.0:2377").is_err());
        for bad in ["0.0.0.0", "10.0.0.1:4789", "no-such-if0"] {
            assert_eq!(
                data_path(bad).unwrap_err(),
                "data path address must be a non-zero IP address or network interface (without a port number)",
                "{bad}"
            );
        }
        assert_eq!(data_path("").unwrap(), "");
        assert_eq!(data_path("10.1.2.3").unwrap(), "10.1.2.3");
    }
}
