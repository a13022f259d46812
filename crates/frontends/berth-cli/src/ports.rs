//! docker's `-p`/`--publish` and `--expose` syntax (go-connections/nat):
//! `[ip:][hostPort:]containerPort[/proto]`, with ranges on either side.

use std::collections::HashMap;

use bollard::models::PortBinding;

pub type PortMap = HashMap<String, Option<Vec<PortBinding>>>;

fn parse_range(s: &str, what: &str) -> Result<(u16, u16), String> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u16 = a.parse().map_err(|_| format!("invalid {what}: {s}"))?;
    let b: u16 = b.parse().map_err(|_| format!("invalid {what}: {s}"))?;
    if a == 0 || b < a {
        return Err(format!("invalid {what}: {s}"));
    }
    Ok((a, b))
}

fn split_proto(s: &str) -> Result<(&str, &str), String> {
    let (p, proto) = s.rsplit_once('/').unwrap_or((s, "tcp"));
    if proto == "sctp" {
        return Err("berth does not publish sctp ports".into());
    }
    if !matches!(proto, "tcp" | "udp") {
        return Err(format!("invalid proto: {proto}"));
    }
    Ok((p, proto))
}

/// The bindings and the exposed ports ("80/tcp") of `-p` flags.
pub fn parse_publish(specs: &[String]) -> Result<(PortMap, Vec<String>), String> {
    let mut map: PortMap = HashMap::new();
    let mut exposed = Vec::new();
    for spec in specs {
        let (rest, proto) = split_proto(spec)?;
        // an IPv6 host address comes in brackets: [::1]:8080:80
        let (ip, rest) = match rest.strip_prefix('[') {
            Some(r) => {
                let (ip, tail) = r
                    .split_once("]:")
                    .ok_or_else(|| format!("invalid ip address: {spec}"))?;
                (ip.to_string(), tail.to_string())
            }
            None => {
                let parts: Vec<&str> = rest.split(':').collect();
                match parts.len() {
                    1 | 2 => (String::new(), rest.to_string()),
                    3 => (parts[0].to_string(), format!("{}:{}", parts[1], parts[2])),
                    _ => return Err(format!("invalid port format: {spec}")),
                }
            }
        };
        match ip.parse::<std::net::IpAddr>() {
            _ if ip.is_empty() => {}
            Ok(std::net::IpAddr::V4(_)) => {}
            // a port given no address is published on [::] too
            Ok(std::net::IpAddr::V6(_)) => {
                return Err(format!(
                    "berth publishes on IPv6 only through [::] (give no host address): {ip}"
                ));
            }
            Err(_) => return Err(format!("invalid ip address: {ip}")),
        }
        let (host, container) = match rest.split_once(':') {
            Some((h, c)) => (h, c),
            None => ("", rest.as_str()),
        };
        if container.is_empty() {
            return Err(format!("no port specified: {spec}<empty>"));
        }
        let (c0, c1) = parse_range(container, "containerPort")?;
        let host_range = if host.is_empty() {
            None
        } else {
            Some(parse_range(host, "hostPort")?)
        };
        let count = (c1 - c0) as u32 + 1;
        if let Some((h0, h1)) = host_range
            && count > 1
            && (h1 - h0) as u32 + 1 != count
        {
            return Err(format!(
                "invalid ranges specified for container and host Ports: {container} and {host}"
            ));
        }
        for i in 0..count {
            let cport = c0 as u32 + i;
            let key = format!("{cport}/{proto}");
            let host_port = match host_range {
                None => String::new(),
                // one host range for one container port: any port of it
                Some((h0, h1)) if count == 1 && h1 > h0 => format!("{h0}-{h1}"),
                Some((h0, _)) => (h0 as u32 + i).to_string(),
            };
            map.entry(key.clone())
                .or_insert(None)
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: Some(ip.clone()),
                    host_port: Some(host_port),
                });
            if !exposed.contains(&key) {
                exposed.push(key);
            }
        }
    }
    Ok((map, exposed))
}

/// `--expose 80`, `--expose 8000-8010/udp`
pub fn parse_expose(spec: &str) -> Result<Vec<String>, String> {
    let (p, proto) = split_proto(spec)?;
    let (a, b) = parse_range(p, "range format for --expose")?;
    Ok((a..=b).map(|p| format!("{p}/{proto}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(spec: &str) -> (String, String, String) {
        let (m, _) = parse_publish(&[spec.to_string()]).unwrap();
        let (k, v) = m.into_iter().next().unwrap();
        let b = v.unwrap().remove(0);
        (k, b.host_ip.unwrap(), b.host_port.unwrap())
    }

    #[test]
    fn docker_publish_forms() {
        assert_eq!(one("80"), ("80/tcp".into(), "".into(), "".into()));
        assert_eq!(one("8080:80"), ("80/tcp".into(), "".into(), "8080".into()));
        assert_eq!(
            one("127.0.0.1:8080:80/udp"),
            ("80/udp".into(), "127.0.0.1".into(), "8080".into())
        );
        assert_eq!(
            one("127.0.0.1::80"),
            ("80/tcp".into(), "127.0.0.1".into(), "".into())
        );
        assert!(parse_publish(&["[::1]:8080:80".into()]).is_err());
        assert!(parse_publish(&["80/sctp".into()]).is_err());
        let (m, exposed) = parse_publish(&["8000-8001:80-81".to_string()]).unwrap();
        assert_eq!(
            m["81/tcp"].as_ref().unwrap()[0].host_port.as_deref(),
            Some("8001")
        );
        assert_eq!(exposed.len(), 2);
        assert!(parse_publish(&["8000-8002:80-81".into()]).is_err());
        assert!(parse_publish(&["x:80".into()]).is_err());
        assert!(parse_publish(&["80/xyz".into()]).is_err());
        assert!(parse_publish(&["1.2.3:80:80".into()]).is_err());
        assert_eq!(parse_expose("53/udp").unwrap(), vec!["53/udp".to_string()]);
        assert_eq!(parse_expose("8000-8001").unwrap().len(), 2);
    }
}
