//! One service: the loader's LoadService, resolveEnvironment and
//! resolveVolumePaths.

use std::collections::BTreeMap;

use super::{Decoder, flag, integer, mapping_or_list, options, string_map, strings, text};
use crate::env::parse_env_file;
use crate::error::ComposeError;
use crate::gofmt;
use crate::model::{
    CredentialSpec, Dependency, DependencyCondition, FileReference, Logging, NetworkSettings, Port,
    Service, ServiceNetwork, ServiceVolume, Ulimit,
};
use crate::yaml::{Node, Pos, Value};

impl Decoder<'_> {
    pub fn service(
        &mut self,
        name: &str,
        key_pos: Pos,
        node: &Node,
    ) -> Result<Service, ComposeError> {
        let mut s = Service {
            name: name.to_string(),
            position: self.position(key_pos),
            ..Service::default()
        };
        let mut environment = BTreeMap::new();
        let mut env_files: Option<&Node> = None;
        for e in node.entries() {
            let v = &e.value;
            match e.key.as_str() {
                "image" => s.image = text(v),
                "hostname" => s.hostname = text(v),
                "user" => s.user = text(v),
                "working_dir" => s.working_dir = text(v),
                "stop_signal" => s.stop_signal = text(v),
                "isolation" => s.isolation = text(v),
                "restart" => s.restart = text(v),
                "command" => s.command = self.shell_command(v, "Command")?,
                "entrypoint" => s.entrypoint = self.shell_command(v, "Entrypoint")?,
                "cap_add" => s.cap_add = strings(v),
                "cap_drop" => s.cap_drop = strings(v),
                "secrets" => s.secrets = self.file_references(v, "Secrets")?,
                "configs" => s.configs = self.file_references(v, "Configs")?,
                "credential_spec" => s.credential_spec = credential_spec(v),
                "depends_on" => s.depends_on = self.dependencies(v),
                "deploy" => s.deploy = self.deploy(v)?,
                "dns" => s.dns = Some(strings(v)),
                "dns_search" => s.dns_search = Some(strings(v)),
                "environment" => environment = mapping_or_list(v, '=', true),
                "env_file" => env_files = Some(v),
                "extra_hosts" => s.extra_hosts = hosts_list(v),
                "healthcheck" => s.healthcheck = Some(self.healthcheck(v)?),
                "init" => s.init = Some(flag(v)),
                "labels" => s.labels = string_map(v, '='),
                "logging" => s.logging = Some(logging(v)),
                "networks" => s.networks = self.service_networks(v),
                "ports" => s.ports = self.ports(v)?,
                "read_only" => s.read_only = flag(v),
                "stdin_open" => s.stdin_open = flag(v),
                "tty" => s.tty = flag(v),
                "stop_grace_period" => {
                    s.stop_grace_period = Some(self.duration(v, "stop_grace_period")?)
                }
                "sysctls" => s.sysctls = string_map(v, '='),
                "ulimits" => s.ulimits = ulimits(v),
                // the docker CLI never reads oom_score_adj: its field has no
                // mapstructure tag, so the key matches no field
                "volumes" => s.volumes = self.service_volumes(v)?,
                _ => {}
            }
        }
        s.environment = self.resolve_environment(env_files, environment)?;
        self.resolve_volume_paths(&mut s.volumes)?;
        Ok(s)
    }

    fn shell_command(&self, node: &Node, go_name: &str) -> Result<Vec<String>, ComposeError> {
        match &node.value {
            Value::Str(line) => crate::shlex::split(line).map_err(|e| {
                self.decoding_failed(format!("error decoding '{go_name}': {e}"), node.pos)
            }),
            _ => Ok(strings(node)),
        }
    }

    fn file_references(
        &self,
        node: &Node,
        go_name: &str,
    ) -> Result<Vec<FileReference>, ComposeError> {
        let Value::Seq(items) = &node.value else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let mut r = FileReference {
                position: self.position(item.pos),
                ..FileReference::default()
            };
            match &item.value {
                Value::Map(entries) => {
                    for e in entries {
                        match e.key.as_str() {
                            "source" => r.source = text(&e.value),
                            "target" => r.target = text(&e.value),
                            "uid" => r.uid = text(&e.value),
                            "gid" => r.gid = text(&e.value),
                            "mode" => {
                                let path = format!("{go_name}[{i}].Mode");
                                r.mode = Some(self.unsigned(&e.value, &path)? as u32);
                            }
                            _ => {}
                        }
                    }
                }
                _ => r.source = text(item),
            }
            out.push(r);
        }
        Ok(out)
    }

    /// berth: Docker has only the list form; the long form carries a
    /// condition for `berth stack deploy` to wait on.
    fn dependencies(&self, node: &Node) -> Vec<Dependency> {
        match &node.value {
            Value::Seq(items) => items
                .iter()
                .map(|item| Dependency {
                    service: text(item),
                    condition: DependencyCondition::Started,
                    position: self.position(item.pos),
                })
                .collect(),
            Value::Map(entries) => entries
                .iter()
                .map(|e| Dependency {
                    service: e.key.clone(),
                    condition: match e.value.get("condition").and_then(Node::as_str) {
                        Some("service_healthy") => DependencyCondition::Healthy,
                        Some("service_completed_successfully") => {
                            DependencyCondition::CompletedSuccessfully
                        }
                        _ => DependencyCondition::Started,
                    },
                    position: self.position(e.key_pos),
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    fn service_networks(&self, node: &Node) -> BTreeMap<String, ServiceNetwork> {
        match &node.value {
            Value::Seq(items) => items
                .iter()
                .map(|item| {
                    let network = ServiceNetwork {
                        settings: None,
                        position: self.position(item.pos),
                    };
                    (text(item), network)
                })
                .collect(),
            Value::Map(entries) => entries
                .iter()
                .map(|e| {
                    let settings = match e.value.value {
                        Value::Map(_) => Some(network_settings(&e.value)),
                        _ => None,
                    };
                    let network = ServiceNetwork {
                        settings,
                        position: self.position(e.key_pos),
                    };
                    (e.key.clone(), network)
                })
                .collect(),
            _ => BTreeMap::new(),
        }
    }

    fn ports(&mut self, node: &Node) -> Result<Vec<Port>, ComposeError> {
        let Value::Seq(items) = &node.value else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let spec = match &item.value {
                Value::Int(p) => p.to_string(),
                Value::Str(s) => s.clone(),
                Value::Map(entries) => {
                    let mut p = Port::default();
                    for e in entries {
                        match e.key.as_str() {
                            "mode" => p.mode = text(&e.value),
                            "protocol" => p.protocol = text(&e.value),
                            "target" => {
                                let path = format!("Ports[{i}].Target");
                                p.target = self.unsigned(&e.value, &path)? as u32;
                            }
                            "published" => {
                                let path = format!("Ports[{i}].Published");
                                p.published = self.unsigned(&e.value, &path)? as u32;
                            }
                            _ => {}
                        }
                    }
                    out.push(p);
                    continue;
                }
                _ => {
                    return Err(self.decoding_failed(
                        "error decoding 'Ports': invalid type float64 for port".into(),
                        item.pos,
                    ));
                }
            };
            let (ports, warnings) = crate::ports::spec_to_ports(&spec).map_err(|e| {
                self.decoding_failed(format!("error decoding 'Ports': {e}"), item.pos)
            })?;
            out.extend(ports);
            self.warnings.extend(warnings);
        }
        Ok(out)
    }

    fn service_volumes(&self, node: &Node) -> Result<Vec<ServiceVolume>, ComposeError> {
        let Value::Seq(items) = &node.value else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let mut v = match &item.value {
                Value::Str(spec) => crate::volume_spec::parse_volume(spec).map_err(|e| {
                    self.decoding_failed(format!("error decoding 'Volumes[{i}]': {e}"), item.pos)
                })?,
                _ => long_volume(item),
            };
            v.position = self.position(item.pos);
            out.push(v);
        }
        Ok(out)
    }

    /// env_file entries first, then `environment`; an empty or missing value
    /// takes the environment's value when it has one.
    fn resolve_environment(
        &self,
        env_files: Option<&Node>,
        environment: BTreeMap<String, Option<String>>,
    ) -> Result<BTreeMap<String, Option<String>>, ComposeError> {
        let mut out = BTreeMap::new();
        if let Some(node) = env_files {
            let mut from_files = BTreeMap::new();
            for file in strings(node) {
                let path = gofmt::abs_path(self.working_dir, &file);
                let lines = parse_env_file(&path, self.env).map_err(|e| self.error(e, node.pos))?;
                for line in lines {
                    match line.split_once('=') {
                        Some((k, v)) => from_files.insert(k.to_string(), Some(v.to_string())),
                        None => from_files.insert(line, None),
                    };
                }
            }
            self.update_environment(&mut out, from_files);
        }
        self.update_environment(&mut out, environment);
        Ok(out)
    }

    fn update_environment(
        &self,
        out: &mut BTreeMap<String, Option<String>>,
        vars: BTreeMap<String, Option<String>>,
    ) {
        for (k, v) in vars {
            let from_env = self.env.lookup(&k);
            let value = match (&v, from_env) {
                (None, Some(e)) => Some(e),
                (Some(s), Some(e)) if s.is_empty() => Some(e),
                _ => v,
            };
            out.insert(k, value);
        }
    }

    fn resolve_volume_paths(&mut self, volumes: &mut [ServiceVolume]) -> Result<(), ComposeError> {
        for v in volumes.iter_mut().filter(|v| v.kind == "bind") {
            if v.source.is_empty() {
                return Err(ComposeError::at(
                    "invalid mount config for type \"bind\": field Source must not be empty",
                    v.position.clone(),
                ));
            }
            let mut path = v.source.clone();
            if path.starts_with('~') {
                match self.env.get("HOME") {
                    Some(home) => path = path.replacen('~', home, 1),
                    None => self
                        .warnings
                        .push("cannot expand '~', because the environment lacks HOME".into()),
                }
            }
            if !path.starts_with('/') && !is_windows_abs(&path) {
                path = gofmt::abs_path(self.working_dir, &path);
            }
            v.source = path;
        }
        Ok(())
    }
}

/// A Windows absolute path ("C:\x", "\\server\share\x"): left as written.
fn is_windows_abs(path: &str) -> bool {
    let b = path.as_bytes();
    let slash = |c: u8| c == b'\\' || c == b'/';
    if b.len() >= 3 && b[1] == b':' && b[0].is_ascii_alphabetic() {
        return slash(b[2]);
    }
    b.len() >= 5 && slash(b[0]) && slash(b[1]) && !slash(b[2]) && b[2] != b'.'
}

fn credential_spec(node: &Node) -> CredentialSpec {
    let field = |k: &str| node.get(k).map(text).unwrap_or_default();
    CredentialSpec {
        config: field("config"),
        file: field("file"),
        registry: field("registry"),
    }
}

/// The loader's transformHostsList: "host:ip" entries, `=` or `:` in lists,
/// brackets taken off IPv6 addresses.
fn hosts_list(node: &Node) -> Vec<String> {
    let pairs: Vec<String> = match &node.value {
        Value::Map(entries) => {
            let mut list: Vec<String> = entries
                .iter()
                .filter(|e| !matches!(e.value.value, Value::Null))
                .map(|e| format!("{}:{}", e.key, text(&e.value)))
                .collect();
            list.sort();
            list
        }
        Value::Seq(items) => items
            .iter()
            .filter_map(|item| {
                let entry = text(item);
                ['=', ':']
                    .iter()
                    .find_map(|sep| entry.split_once(*sep).map(|(k, v)| format!("{k}:{v}")))
            })
            .collect(),
        _ => Vec::new(),
    };
    pairs
        .into_iter()
        .map(|pair| {
            let (host, ip) = pair.split_once(':').unwrap_or((&pair, ""));
            let ip = match ip.strip_prefix('[').and_then(|i| i.strip_suffix(']')) {
                Some(inner) if ip.len() > 2 => inner,
                _ => ip,
            };
            format!("{host}:{ip}")
        })
        .collect()
}

fn logging(node: &Node) -> Logging {
    Logging {
        driver: node.get("driver").map(text).unwrap_or_default(),
        options: node.get("options").map(options),
    }
}

fn network_settings(node: &Node) -> NetworkSettings {
    let field = |k: &str| node.get(k).map(text).unwrap_or_default();
    NetworkSettings {
        aliases: node.get("aliases").map(strings).unwrap_or_default(),
        driver_opts: node.get("driver_opts").map(options).unwrap_or_default(),
        ipv4_address: field("ipv4_address"),
        ipv6_address: field("ipv6_address"),
    }
}

fn ulimits(node: &Node) -> BTreeMap<String, Ulimit> {
    node.entries()
        .iter()
        .map(|e| {
            let limit = match &e.value.value {
                Value::Map(_) => Ulimit {
                    single: 0,
                    soft: e.value.get("soft").map(integer).unwrap_or(0),
                    hard: e.value.get("hard").map(integer).unwrap_or(0),
                },
                _ => Ulimit {
                    single: integer(&e.value),
                    ..Ulimit::default()
                },
            };
            (e.key.clone(), limit)
        })
        .collect()
}

fn long_volume(node: &Node) -> ServiceVolume {
    let field = |k: &str| node.get(k).map(text).unwrap_or_default();
    ServiceVolume {
        kind: field("type"),
        source: field("source"),
        target: field("target"),
        read_only: node.get("read_only").is_some_and(flag),
        consistency: field("consistency"),
        bind_propagation: node
            .get("bind")
            .map(|b| b.get("propagation").map(text).unwrap_or_default()),
        volume_nocopy: node
            .get("volume")
            .map(|v| v.get("nocopy").is_some_and(flag)),
        tmpfs_size: node
            .get("tmpfs")
            .map(|t| t.get("size").map(integer).unwrap_or(0)),
        position: None,
    }
}
