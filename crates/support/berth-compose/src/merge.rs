//! Several files into one project, with the docker CLI's merge rules
//! (mergo with override and appended slices, plus its special cases):
//! - a later non-empty value wins; empty values, false and zero never do;
//! - lists are appended, except command/entrypoint (replaced) and ports,
//!   secrets, configs and volumes (merged by published port, source or
//!   target, then sorted by it);
//! - maps merge key by key;
//! - top-level networks, volumes, secrets and configs are replaced whole.

use std::collections::BTreeMap;

use crate::model::{
    Dependency, Deploy, FileReference, Healthcheck, Logging, Port, Project, ResourceLimit,
    ResourceReservation, RestartPolicy, Service, ServiceNetwork, ServiceVolume, UpdateConfig,
};

pub(crate) fn merge(mut base: Project, over: Project) -> Project {
    for (name, service) in over.services {
        match base.services.get_mut(&name) {
            Some(existing) => merge_service(existing, service),
            None => {
                base.services.insert(name, service);
            }
        }
    }
    base.networks.extend(over.networks);
    base.volumes.extend(over.volumes);
    base.secrets.extend(over.secrets);
    base.configs.extend(over.configs);
    base
}

fn string(dst: &mut String, src: String) {
    if !src.is_empty() {
        *dst = src;
    }
}

fn number<T: PartialEq + Default>(dst: &mut T, src: T) {
    if src != T::default() {
        *dst = src;
    }
}

/// A `*uint64` (the loader's mergeUint64): any given value wins.
fn given<T>(dst: &mut Option<T>, src: Option<T>) {
    if src.is_some() {
        *dst = src;
    }
}

/// A pointer to a number: set when unset, else only a non-zero value wins.
fn pointer<T: PartialEq + Default>(dst: &mut Option<T>, src: Option<T>) {
    match (dst.as_mut(), src) {
        (None, s) => *dst = s,
        (Some(d), Some(s)) => number(d, s),
        (Some(_), None) => {}
    }
}

/// A pointer to a struct: set when unset, else merged field by field.
fn nested<T>(dst: &mut Option<T>, src: Option<T>, merge: impl FnOnce(&mut T, T)) {
    match (dst.as_mut(), src) {
        (None, s) => *dst = s,
        (Some(d), Some(s)) => merge(d, s),
        (Some(_), None) => {}
    }
}

fn append<T>(dst: &mut Vec<T>, src: Vec<T>) {
    dst.extend(src);
}

fn append_optional<T>(dst: &mut Option<Vec<T>>, src: Option<Vec<T>>) {
    match (dst.as_mut(), src) {
        (_, None) => {}
        (None, Some(s)) if s.is_empty() => {}
        (None, s) => *dst = s,
        (Some(d), Some(s)) => d.extend(s),
    }
}

fn map<V>(dst: &mut BTreeMap<String, V>, src: BTreeMap<String, V>) {
    dst.extend(src);
}

/// Merged by key, then sorted by it; a later entry replaces an earlier one.
fn keyed<T, K: Ord>(dst: &mut Vec<T>, src: Vec<T>, key: impl Fn(&T) -> K) {
    if dst.is_empty() {
        *dst = src;
        return;
    }
    let mut by_key: BTreeMap<K, T> = BTreeMap::new();
    for item in std::mem::take(dst).into_iter().chain(src) {
        by_key.insert(key(&item), item);
    }
    *dst = by_key.into_values().collect();
}

fn merge_service(d: &mut Service, s: Service) {
    string(&mut d.image, s.image);
    string(&mut d.hostname, s.hostname);
    string(&mut d.user, s.user);
    string(&mut d.working_dir, s.working_dir);
    string(&mut d.stop_signal, s.stop_signal);
    string(&mut d.isolation, s.isolation);
    string(&mut d.restart, s.restart);
    if !s.command.is_empty() {
        d.command = s.command;
    }
    if !s.entrypoint.is_empty() {
        d.entrypoint = s.entrypoint;
    }
    append(&mut d.cap_add, s.cap_add);
    append(&mut d.cap_drop, s.cap_drop);
    append(&mut d.extra_hosts, s.extra_hosts);
    append_optional(&mut d.dns, s.dns);
    append_optional(&mut d.dns_search, s.dns_search);
    keyed(&mut d.secrets, s.secrets, |r: &FileReference| {
        r.source.clone()
    });
    keyed(&mut d.configs, s.configs, |r: &FileReference| {
        r.source.clone()
    });
    keyed(&mut d.ports, s.ports, |p: &Port| p.published);
    keyed(&mut d.volumes, s.volumes, |v: &ServiceVolume| {
        v.target.clone()
    });
    string(&mut d.credential_spec.config, s.credential_spec.config);
    string(&mut d.credential_spec.file, s.credential_spec.file);
    string(&mut d.credential_spec.registry, s.credential_spec.registry);
    merge_dependencies(&mut d.depends_on, s.depends_on);
    merge_deploy(&mut d.deploy, s.deploy);
    merge_environment(&mut d.environment, s.environment);
    nested(&mut d.healthcheck, s.healthcheck, merge_healthcheck);
    match (&mut d.init, s.init) {
        (None, i) => d.init = i,
        (Some(di), Some(true)) => *di = true,
        _ => {}
    }
    map(&mut d.labels, s.labels);
    map(&mut d.sysctls, s.sysctls);
    merge_logging(&mut d.logging, s.logging);
    merge_networks(&mut d.networks, s.networks);
    d.read_only |= s.read_only;
    d.stdin_open |= s.stdin_open;
    d.tty |= s.tty;
    pointer(&mut d.stop_grace_period, s.stop_grace_period);
    map(&mut d.ulimits, s.ulimits);
}

/// berth: a dependency named again takes the later condition.
fn merge_dependencies(dst: &mut Vec<Dependency>, src: Vec<Dependency>) {
    for dep in src {
        match dst.iter_mut().find(|d| d.service == dep.service) {
            Some(existing) => *existing = dep,
            None => dst.push(dep),
        }
    }
}

/// Values are pointers in Docker: a later non-empty value wins, an empty
/// one only fills an unset or empty entry, a bare key never replaces.
fn merge_environment(
    dst: &mut BTreeMap<String, Option<String>>,
    src: BTreeMap<String, Option<String>>,
) {
    for (k, v) in src {
        match (dst.get_mut(&k), v) {
            (None, v) => {
                dst.insert(k, v);
            }
            (Some(d), Some(s)) if !s.is_empty() || d.as_deref().is_none_or(str::is_empty) => {
                *d = Some(s)
            }
            _ => {}
        }
    }
}

fn merge_deploy(d: &mut Deploy, s: Deploy) {
    string(&mut d.mode, s.mode);
    given(&mut d.replicas, s.replicas);
    map(&mut d.labels, s.labels);
    nested(&mut d.update_config, s.update_config, merge_update_config);
    nested(
        &mut d.rollback_config,
        s.rollback_config,
        merge_update_config,
    );
    nested(&mut d.resources.limits, s.resources.limits, merge_limits);
    nested(
        &mut d.resources.reservations,
        s.resources.reservations,
        merge_reservations,
    );
    nested(
        &mut d.restart_policy,
        s.restart_policy,
        merge_restart_policy,
    );
    append(&mut d.placement.constraints, s.placement.constraints);
    append(&mut d.placement.preferences, s.placement.preferences);
    number(&mut d.placement.max_replicas, s.placement.max_replicas);
    string(&mut d.endpoint_mode, s.endpoint_mode);
}

fn merge_update_config(d: &mut UpdateConfig, s: UpdateConfig) {
    given(&mut d.parallelism, s.parallelism);
    number(&mut d.delay, s.delay);
    string(&mut d.failure_action, s.failure_action);
    number(&mut d.monitor, s.monitor);
    number(&mut d.max_failure_ratio, s.max_failure_ratio);
    string(&mut d.order, s.order);
}

fn merge_limits(d: &mut ResourceLimit, s: ResourceLimit) {
    string(&mut d.cpus, s.cpus);
    number(&mut d.memory, s.memory);
    number(&mut d.pids, s.pids);
}

fn merge_reservations(d: &mut ResourceReservation, s: ResourceReservation) {
    string(&mut d.cpus, s.cpus);
    number(&mut d.memory, s.memory);
    append(&mut d.generic_resources, s.generic_resources);
}

fn merge_restart_policy(d: &mut RestartPolicy, s: RestartPolicy) {
    string(&mut d.condition, s.condition);
    pointer(&mut d.delay, s.delay);
    given(&mut d.max_attempts, s.max_attempts);
    pointer(&mut d.window, s.window);
}

/// Field by field; the test command is appended (mergo's slice rule).
fn merge_healthcheck(d: &mut Healthcheck, s: Healthcheck) {
    append(&mut d.test, s.test);
    pointer(&mut d.timeout, s.timeout);
    pointer(&mut d.interval, s.interval);
    given(&mut d.retries, s.retries);
    pointer(&mut d.start_period, s.start_period);
    pointer(&mut d.start_interval, s.start_interval);
    d.disable |= s.disable;
}

/// Same driver (or one unset): options merge, except into a base without
/// options, whose merged map Docker drops. Another driver replaces all.
fn merge_logging(dst: &mut Option<Logging>, src: Option<Logging>) {
    let (Some(d), Some(s)) = (dst.as_mut(), src.clone()) else {
        if dst.is_none() {
            *dst = src;
        }
        return;
    };
    if d.driver == s.driver || d.driver.is_empty() || s.driver.is_empty() {
        if d.driver.is_empty() {
            d.driver = s.driver;
        }
        if let (Some(options), Some(more)) = (d.options.as_mut(), s.options) {
            options.extend(more);
        }
    } else {
        *d = s;
    }
}

fn merge_networks(
    dst: &mut BTreeMap<String, ServiceNetwork>,
    src: BTreeMap<String, ServiceNetwork>,
) {
    for (name, network) in src {
        let Some(existing) = dst.get_mut(&name) else {
            dst.insert(name, network);
            continue;
        };
        match (existing.settings.as_mut(), network.settings) {
            (_, None) => {}
            (None, s) => existing.settings = s,
            (Some(d), Some(s)) => {
                d.aliases = s.aliases;
                string(&mut d.ipv4_address, s.ipv4_address);
                string(&mut d.ipv6_address, s.ipv6_address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(published: u32, target: u32) -> Port {
        Port {
            mode: "ingress".into(),
            target,
            published,
            protocol: "tcp".into(),
        }
    }

    #[test]
    fn later_files_override_by_key() {
        let mut base = Service {
            image: "a".into(),
            command: vec!["x".into()],
            ports: vec![port(8080, 80), port(443, 443)],
            labels: BTreeMap::from([("k".to_string(), "1".to_string())]),
            cap_add: vec!["NET_ADMIN".into()],
            ..Service::default()
        };
        let over = Service {
            image: String::new(),
            command: vec!["y".into(), "z".into()],
            ports: vec![port(8080, 81)],
            labels: BTreeMap::from([("k".to_string(), String::new())]),
            cap_add: vec!["SYS_TIME".into()],
            ..Service::default()
        };
        merge_service(&mut base, over);
        assert_eq!(base.image, "a", "an empty value never wins");
        assert_eq!(base.command, ["y", "z"]);
        assert_eq!(base.ports, [port(443, 443), port(8080, 81)]);
        assert_eq!(base.labels["k"], "", "map values override, empty too");
        assert_eq!(base.cap_add, ["NET_ADMIN", "SYS_TIME"]);
    }

    #[test]
    fn environment_values_follow_pointer_rules() {
        let mut dst = BTreeMap::from([
            ("A".to_string(), Some("1".to_string())),
            ("B".to_string(), Some("2".to_string())),
            ("C".to_string(), None),
        ]);
        let src = BTreeMap::from([
            ("A".to_string(), Some("x".to_string())),
            ("B".to_string(), Some(String::new())),
            ("C".to_string(), Some(String::new())),
            ("D".to_string(), None),
        ]);
        merge_environment(&mut dst, src);
        assert_eq!(dst["A"].as_deref(), Some("x"));
        assert_eq!(dst["B"].as_deref(), Some("2"));
        assert_eq!(dst["C"].as_deref(), Some(""));
        assert_eq!(dst["D"], None);
    }

    #[test]
    fn logging_options_merge_for_the_same_driver() {
        let opts = |k: &str| Some(BTreeMap::from([(k.to_string(), "v".to_string())]));
        let mut dst = Some(Logging {
            driver: "json-file".into(),
            options: opts("a"),
        });
        merge_logging(
            &mut dst,
            Some(Logging {
                driver: String::new(),
                options: opts("b"),
            }),
        );
        let got = dst.expect("logging");
        assert_eq!(got.driver, "json-file");
        assert_eq!(got.options.map(|o| o.len()), Some(2));
    }
}
