//! Port specs ("8080:80/udp", "127.0.0.1:8000-8001:80"), as go-connections'
//! nat.ParsePortSpec reads them and the loader turns them into ports.

use crate::model::Port;

/// One container port and the host binding it got.
#[derive(Debug, PartialEq)]
pub(crate) struct PortMapping {
    pub proto: String,
    pub container_port: u16,
    pub host_ip: String,
    pub host_port: String,
}

/// nat.ParsePortSpec, with its error texts.
pub(crate) fn parse_port_spec(raw: &str) -> Result<Vec<PortMapping>, String> {
    let (ip, host_port, container) = split_parts(raw);
    let (proto, container) = split_proto_port(container);
    let mut ip = ip.to_string();
    if ip.starts_with('[') {
        ip = match ip.strip_prefix('[').and_then(|i| i.strip_suffix(']')) {
            Some(inner) => inner.to_string(),
            None => {
                return Err(format!(
                    "invalid IP address {ip}: address {ip}:: missing ']' in address"
                ));
            }
        };
    }
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("invalid IP address: {ip}"));
    }
    if container.is_empty() {
        return Err(format!("no port specified: {raw}<empty>"));
    }
    let (start, end) =
        parse_port_range(container).map_err(|_| format!("invalid containerPort: {container}"))?;
    let (host_start, host_end) = if host_port.is_empty() {
        (0, 0)
    } else {
        parse_port_range(host_port).map_err(|_| format!("invalid hostPort: {host_port}"))?
    };
    if !host_port.is_empty() && end - start != host_end - host_start && end != start {
        return Err(format!(
            "invalid ranges specified for container and host Ports: {container} and {host_port}"
        ));
    }
    let proto = proto.to_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let mut out = Vec::new();
    for i in 0..=(end - start) {
        let mut host = if host_port.is_empty() {
            String::new()
        } else {
            (u32::from(host_start) + u32::from(i)).to_string()
        };
        if start == end && host_start != host_end {
            host = format!("{host}-{host_end}");
        }
        out.push(PortMapping {
            proto: proto.clone(),
            container_port: start + i,
            host_ip: ip.clone(),
            host_port: host,
        });
    }
    Ok(out)
}

fn split_parts(raw: &str) -> (&str, &str, &str) {
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    match n {
        1 => ("", "", parts[0]),
        2 => ("", parts[0], parts[1]),
        3 => (parts[0], parts[1], parts[2]),
        _ => {
            // the IP is everything before the last two parts (IPv6)
            let ip_len: usize = parts[..n - 2].iter().map(|p| p.len() + 1).sum::<usize>() - 1;
            (&raw[..ip_len], parts[n - 2], parts[n - 1])
        }
    }
}

fn split_proto_port(raw: &str) -> (&str, &str) {
    let parts: Vec<&str> = raw.split('/').collect();
    if raw.is_empty() || parts[0].is_empty() {
        return ("", "");
    }
    if parts.len() == 1 || parts[1].is_empty() {
        return ("tcp", parts[0]);
    }
    (parts[1], parts[0])
}

/// nat.ParsePortRange: "80" or "8000-8010".
pub(crate) fn parse_port_range(ports: &str) -> Result<(u16, u16), ()> {
    let number = |s: &str| -> Result<u16, ()> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(());
        }
        s.parse().map_err(|_| ())
    };
    if ports.is_empty() {
        return Err(());
    }
    if !ports.contains('-') {
        let p = number(ports)?;
        return Ok((p, p));
    }
    let mut parts = ports.split('-');
    let start = number(parts.next().unwrap_or(""))?;
    let end = number(parts.next().unwrap_or(""))?;
    if end < start {
        return Err(());
    }
    Ok((start, end))
}

/// The loader's toServicePortConfigs: one spec to ports, sorted by
/// "port/proto" text as Docker sorts them; warnings for ignored host IPs.
pub(crate) fn spec_to_ports(spec: &str) -> Result<(Vec<Port>, Vec<String>), String> {
    let mappings = parse_port_spec(spec)?;
    let mut keys: Vec<String> = Vec::new();
    for m in &mappings {
        let key = format!("{}/{}", m.container_port, m.proto);
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.sort();
    let mut ports = Vec::new();
    let mut warnings = Vec::new();
    for key in keys {
        for m in mappings
            .iter()
            .filter(|m| format!("{}/{}", m.container_port, m.proto) == key)
        {
            match m.host_ip.parse::<std::net::IpAddr>() {
                Ok(ip) if !ip.is_unspecified() => {
                    let host = if ip.is_ipv6() {
                        format!("[{}]:{}", m.host_ip, m.host_port)
                    } else {
                        format!("{}:{}", m.host_ip, m.host_port)
                    };
                    warnings.push(format!(
                        "ignoring IP-address ({host}:{key}) service will listen on '0.0.0.0'"
                    ));
                }
                _ => {}
            }
            let (first, last) = match parse_port_range(&m.host_port) {
                Ok(range) => range,
                Err(()) if m.host_port.is_empty() => (0, 0),
                Err(()) => {
                    return Err(format!(
                        "invalid hostport binding ({}) for port ({})",
                        m.host_port, m.container_port
                    ));
                }
            };
            for published in first..=last {
                ports.push(Port {
                    mode: "ingress".into(),
                    target: u32::from(m.container_port),
                    published: u32::from(published),
                    protocol: m.proto.clone(),
                });
            }
        }
    }
    Ok((ports, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(target: u32, published: u32, protocol: &str) -> Port {
        Port {
            mode: "ingress".into(),
            target,
            published,
            protocol: protocol.into(),
        }
    }

    #[test]
    fn specs_become_ports() {
        let (p, w) = spec_to_ports("8080:80").expect("ok");
        assert_eq!(p, [port(80, 8080, "tcp")]);
        assert!(w.is_empty());
        let (p, _) = spec_to_ports("53/UDP").expect("ok");
        assert_eq!(p, [port(53, 0, "udp")]);
        let (p, _) = spec_to_ports("9000-9001:90-91").expect("ok");
        assert_eq!(p, [port(90, 9000, "tcp"), port(91, 9001, "tcp")]);
        // a host range for one container port publishes each host port
        let (p, _) = spec_to_ports("8000-8001:80").expect("ok");
        assert_eq!(p, [port(80, 8000, "tcp"), port(80, 8001, "tcp")]);
        // sorted as text: "100/tcp" before "99/tcp"
        let (p, _) = spec_to_ports("99-100").expect("ok");
        assert_eq!(p, [port(100, 0, "tcp"), port(99, 0, "tcp")]);
        let (p, w) = spec_to_ports("127.0.0.1:8080:80").expect("ok");
        assert_eq!(p, [port(80, 8080, "tcp")]);
        assert_eq!(
            w,
            ["ignoring IP-address (127.0.0.1:8080:80/tcp) service will listen on '0.0.0.0'"]
        );
        let (p, _) = spec_to_ports("[::1]:8080:80").expect("ok");
        assert_eq!(p, [port(80, 8080, "tcp")]);
    }

    #[test]
    fn bad_specs_use_nat_texts() {
        assert_eq!(parse_port_spec("x:80").unwrap_err(), "invalid hostPort: x");
        assert_eq!(parse_port_spec("80/xyz").unwrap_err(), "invalid proto: xyz");
        assert_eq!(
            parse_port_spec("1.2.3.4.5:1:2").unwrap_err(),
            "invalid IP address: 1.2.3.4.5"
        );
        assert_eq!(
            parse_port_spec("8080:").unwrap_err(),
            "no port specified: 8080:<empty>"
        );
        assert_eq!(
            parse_port_spec("70000").unwrap_err(),
            "invalid containerPort: 70000"
        );
        assert_eq!(
            parse_port_spec("1-3:1-2").unwrap_err(),
            "invalid ranges specified for container and host Ports: 1-2 and 1-3"
        );
    }
}
