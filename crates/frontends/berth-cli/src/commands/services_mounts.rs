//! `--mount` (opts.MountOpt) and `--publish` (swarmopts.PortOpt) of
//! services: the docker CLI's syntax, checks and messages, as the JSON of
//! a Mount and of PortConfigs.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::services_opts::Obj;

#[derive(Default)]
struct BindOpts {
    propagation: String,
    non_recursive: bool,
    ro_non_recursive: bool,
    ro_force_recursive: bool,
}

#[derive(Default)]
struct VolumeOpts {
    no_copy: bool,
    labels: BTreeMap<String, String>,
    subpath: String,
    driver: String,
    driver_opts: Option<BTreeMap<String, String>>,
}

#[derive(Default)]
struct Mount {
    typ: String,
    source: String,
    target: String,
    read_only: bool,
    consistency: String,
    bind: Option<BindOpts>,
    volume: Option<VolumeOpts>,
    image_subpath: Option<String>,
    tmpfs: Option<(i64, u32)>,
}

fn parse_bool_for(key: &str, val: &str) -> Result<bool, String> {
    berth_units::go_parse_bool(val).ok_or_else(|| format!("invalid value for {key}: {val}"))
}

/// A relative source that starts with "." is made absolute, as the
/// docker CLI does.
fn mount_source(val: &str) -> String {
    if !val.starts_with('.') {
        return val.to_string();
    }
    let Ok(mut p) = std::env::current_dir() else {
        return val.to_string();
    };
    for part in std::path::Path::new(val).components() {
        match part {
            std::path::Component::ParentDir => {
                p.pop();
            }
            std::path::Component::Normal(n) => p.push(n),
            _ => {}
        }
    }
    p.to_string_lossy().into_owned()
}

fn set_kv(map: &mut BTreeMap<String, String>, val: &str) {
    let (k, v) = val.split_once('=').unwrap_or((val, ""));
    if !k.is_empty() {
        map.insert(k.to_string(), v.to_string());
    }
}

fn apply_bare_key(m: &mut Mount, key: &str, field: &str) -> Result<(), String> {
    match key {
        "readonly" | "ro" => m.read_only = true,
        "volume-nocopy" => m.volume.get_or_insert_with(Default::default).no_copy = true,
        "bind-nonrecursive" => m.bind.get_or_insert_with(Default::default).non_recursive = true,
        _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
    }
    Ok(())
}

fn apply_key(m: &mut Mount, key: &str, val: &str, field: &str) -> Result<(), String> {
    match key {
        "type" => m.typ = val.to_lowercase(),
        "source" | "src" => m.source = mount_source(val),
        "target" | "dst" | "destination" => m.target = val.to_string(),
        "readonly" | "ro" => m.read_only = parse_bool_for(key, val)?,
        "consistency" => m.consistency = val.to_lowercase(),
        "bind-propagation" => {
            m.bind.get_or_insert_with(Default::default).propagation = val.to_lowercase()
        }
        "bind-nonrecursive" => {
            m.bind.get_or_insert_with(Default::default).non_recursive = parse_bool_for(key, val)?
        }
        "bind-recursive" => {
            let b = m.bind.get_or_insert_with(Default::default);
            match val {
                "enabled" => {}
                "disabled" => b.non_recursive = true,
                "writable" => b.ro_non_recursive = true,
                "readonly" => b.ro_force_recursive = true,
                _ => {
                    return Err(format!(
                        r#"invalid value for {key}: {val} (must be "enabled", "disabled", "writable", or "readonly")"#
                    ));
                }
            }
        }
        "volume-subpath" => m.volume.get_or_insert_with(Default::default).subpath = val.into(),
        "volume-nocopy" => {
            m.volume.get_or_insert_with(Default::default).no_copy = berth_units::go_parse_bool(val)
                .ok_or_else(|| format!("invalid value for volume-nocopy: {val}"))?
        }
        "volume-label" => set_kv(
            &mut m.volume.get_or_insert_with(Default::default).labels,
            val,
        ),
        "volume-driver" => m.volume.get_or_insert_with(Default::default).driver = val.into(),
        "volume-opt" => set_kv(
            m.volume
                .get_or_insert_with(Default::default)
                .driver_opts
                .get_or_insert_with(BTreeMap::new),
            val,
        ),
        "image-subpath" => m.image_subpath = Some(val.to_string()),
        "tmpfs-size" => {
            let size = berth_units::parse_ram(val)
                .map_err(|_| format!("invalid value for {key}: {val}"))?;
            m.tmpfs.get_or_insert((0, 0)).0 = size;
        }
        "tmpfs-mode" => {
            let mode = u32::from_str_radix(val, 8)
                .map_err(|_| format!("invalid value for {key}: {val}"))?;
            m.tmpfs.get_or_insert((0, 0)).1 = mode;
        }
        _ => return Err(format!("unexpected key '{key}' in '{field}'")),
    }
    Ok(())
}

fn check_mount(m: &Mount) -> Result<(), String> {
    if m.typ.is_empty() {
        return Err("type is required".into());
    }
    if m.target.is_empty() {
        return Err("target is required".into());
    }
    let mix = |what: &str| format!("cannot mix '{what}-*' options with mount type '{}'", m.typ);
    if m.volume.is_some() && m.typ != "volume" {
        return Err(mix("volume"));
    }
    if m.image_subpath.is_some() && m.typ != "image" {
        return Err(mix("image"));
    }
    if m.bind.is_some() && m.typ != "bind" {
        return Err(mix("bind"));
    }
    if m.tmpfs.is_some() && m.typ != "tmpfs" {
        return Err(mix("tmpfs"));
    }
    if let Some(b) = &m.bind {
        if b.ro_non_recursive && !m.read_only {
            return Err(
                "option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction"
                    .into(),
            );
        }
        if b.ro_force_recursive {
            if !m.read_only {
                return Err("option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction".into());
            }
            if b.propagation != "rprivate" {
                return Err("option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction".into());
            }
        }
    }
    Ok(())
}

fn mount_json(m: Mount) -> Value {
    let bind = m.bind.map(|b| {
        Obj::new()
            .str("Propagation", &b.propagation)
            .flag("NonRecursive", b.non_recursive)
            .flag("ReadOnlyNonRecursive", b.ro_non_recursive)
            .flag("ReadOnlyForceRecursive", b.ro_force_recursive)
            .done()
    });
    let volume = m.volume.map(|v| {
        let driver = Obj::new()
            .str("Name", &v.driver)
            .opt(
                "Options",
                v.driver_opts.filter(|o| !o.is_empty()).map(|o| json!(o)),
            )
            .done();
        Obj::new()
            .flag("NoCopy", v.no_copy)
            .map("Labels", &v.labels)
            .str("Subpath", &v.subpath)
            .put("DriverConfig", driver)
            .done()
    });
    let image = m
        .image_subpath
        .map(|s| Obj::new().str("Subpath", &s).done());
    let tmpfs = m.tmpfs.map(|(size, mode)| {
        Obj::new()
            .int("SizeBytes", size)
            .int("Mode", i64::from(mode))
            .done()
    });
    Obj::new()
        .str("Type", &m.typ)
        .str("Source", &m.source)
        .str("Target", &m.target)
        .flag("ReadOnly", m.read_only)
        .str("Consistency", &m.consistency)
        .opt("BindOptions", bind)
        .opt("VolumeOptions", volume)
        .opt("ImageOptions", image)
        .opt("TmpfsOptions", tmpfs)
        .done()
}

/// One `--mount` value as a Mount object.
pub fn parse_mount(value: &str) -> Result<Value, String> {
    let mut m = Mount {
        typ: "volume".into(),
        ..Default::default()
    };
    for field in crate::gocsv::record(value)? {
        match field.split_once('=') {
            None => apply_bare_key(&mut m, &field.to_lowercase(), &field)?,
            Some((k, v)) => apply_key(&mut m, &k.to_lowercase(), v, &field)?,
        }
    }
    check_mount(&m)?;
    Ok(mount_json(m))
}

fn port_config(proto: &str, target: u64, published: u64, mode: &str) -> Value {
    Obj::new()
        .str("Protocol", proto)
        .int("TargetPort", target as i64)
        .int("PublishedPort", published as i64)
        .str("PublishMode", mode)
        .done()
}

/// The long syntax: `published=8080,target=80,protocol=udp,mode=host`.
fn parse_port_long(value: &str) -> Result<Vec<Value>, String> {
    let (mut proto, mut mode) = (String::new(), String::new());
    let (mut target, mut published) = (0u64, 0u64);
    let port_num = |what: &str, v: &str| {
        v.parse::<u16>().map(u64::from).map_err(|_| {
            let why = if v.bytes().all(|b| b.is_ascii_digit()) && !v.is_empty() {
                "value out of range"
            } else {
                "invalid syntax"
            };
            format!("invalid {what} port ({v}): value must be an integer: {why}")
        })
    };
    for field in crate::gocsv::record(value)? {
        let lower = field.to_lowercase();
        let (key, val) = match lower.split_once('=') {
            Some((k, v)) if !k.is_empty() => (k.to_string(), v.to_string()),
            _ => return Err(format!("invalid field: {field}")),
        };
        match key.as_str() {
            "protocol" => {
                if !matches!(val.as_str(), "tcp" | "udp" | "sctp") {
                    return Err(format!("invalid protocol value '{val}'"));
                }
                proto = val;
            }
            "mode" => {
                if !matches!(val.as_str(), "ingress" | "host") {
                    return Err(format!(
                        "invalid publish mode value ({val}): must be either 'ingress' or 'host'"
                    ));
                }
                mode = val;
            }
            "target" => target = port_num("target", &val)?,
            "published" => published = port_num("published", &val)?,
            _ => return Err(format!("invalid field key: {key}")),
        }
    }
    if target == 0 {
        return Err("missing mandatory field 'target'".into());
    }
    if mode.is_empty() {
        mode = "ingress".into();
    }
    if proto.is_empty() {
        proto = "tcp".into();
    }
    Ok(vec![port_config(&proto, target, published, &mode)])
}

/// go-connections' `ParsePortRange`.
fn port_range(s: &str) -> Option<(u64, u64)> {
    let parse = |p: &str| {
        let digits = !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        digits
            .then(|| p.parse::<u16>().ok())
            .flatten()
            .map(u64::from)
    };
    match s.split_once('-') {
        None => parse(s).map(|v| (v, v)),
        Some((a, b)) => {
            let (a, b) = (parse(a)?, parse(b)?);
            (b >= a).then_some((a, b))
        }
    }
}

/// The short syntax, go-connections' `ParsePortSpec`:
/// `[published:]target[/protocol]`, ranges on either side.
fn parse_port_short(value: &str) -> Result<Vec<Value>, String> {
    let parts: Vec<&str> = value.split(':').collect();
    let n = parts.len();
    let (ip, host, container) = match n {
        1 => (String::new(), "", parts[0]),
        2 => (String::new(), parts[0], parts[1]),
        _ => (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1]),
    };
    let (proto, container) = match container.split_once('/') {
        _ if container.is_empty() || container.starts_with('/') => ("", ""),
        None => ("tcp", container),
        Some((p, "")) => ("tcp", p),
        Some((p, proto)) => (proto.split('/').next().unwrap_or(proto), p),
    };
    let ip = ip.trim_start_matches('[').trim_end_matches(']').to_string();
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("invalid IP address: {ip}"));
    }
    if container.is_empty() {
        return Err(format!("no port specified: {value}<empty>"));
    }
    let (c0, c1) = port_range(container).ok_or(format!("invalid containerPort: {container}"))?;
    let (h0, h1) = if host.is_empty() {
        (0, 0)
    } else {
        port_range(host).ok_or(format!("invalid hostPort: {host}"))?
    };
    if !host.is_empty() && c1 - c0 != h1 - h0 && c1 != c0 {
        return Err(format!(
            "invalid ranges specified for container and host Ports: {container} and {host}"
        ));
    }
    let proto = proto.to_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    if !ip.is_empty() {
        return Err("hostip is not supported".into());
    }
    let mut out = Vec::new();
    for i in 0..=(c1 - c0) {
        // one container port and a host range: one mapping per host port
        let published: Vec<u64> = if host.is_empty() {
            vec![0]
        } else if c0 == c1 {
            (h0..=h1).collect()
        } else {
            vec![h0 + i]
        };
        for p in published {
            out.push(port_config(&proto, c0 + i, p, "ingress"));
        }
    }
    Ok(out)
}

/// One `--publish` value: the long syntax when it has `key=value`
/// fields (swarmopts' `\w+=\w+` test), else the short one.
pub fn parse_port(value: &str) -> Result<Vec<Value>, String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let long = value.char_indices().any(|(i, c)| {
        c == '='
            && value[..i].chars().next_back().is_some_and(word)
            && value[i + 1..].chars().next().is_some_and(word)
    });
    if long {
        parse_port_long(value)
    } else {
        parse_port_short(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_errors_read_as_dockers() {
        assert_eq!(
            parse_mount("type=bind,src=/a").unwrap_err(),
            "target is required"
        );
        assert_eq!(
            parse_mount("readonly=x,target=/a").unwrap_err(),
            "invalid value for readonly: x"
        );
        assert_eq!(
            parse_mount("foo,target=/a").unwrap_err(),
            "invalid field 'foo' must be a key=value pair"
        );
        assert_eq!(
            parse_mount("type=tmpfs,target=/a,bind-propagation=shared").unwrap_err(),
            "cannot mix 'bind-*' options with mount type 'tmpfs'"
        );
    }

    #[test]
    fn short_ports() {
        assert_eq!(
            parse_port("8080-8081:80").unwrap(),
            vec![
                port_config("tcp", 80, 8080, "ingress"),
                port_config("tcp", 80, 8081, "ingress")
            ]
        );
        assert_eq!(
            parse_port("80-82:90-91").unwrap_err(),
            "invalid ranges specified for container and host Ports: 90-91 and 80-82"
        );
        assert_eq!(parse_port("abc").unwrap_err(), "invalid containerPort: abc");
        assert_eq!(
            parse_port("1.2.3.4:80:80").unwrap_err(),
            "hostip is not supported"
        );
    }
}
