//! `deploy:` and `healthcheck:` of a service.

use super::{Decoder, integer, string_map, strings, text};
use crate::error::ComposeError;
use crate::model::{
    Deploy, DiscreteResource, GenericResource, Healthcheck, Placement, ResourceLimit,
    ResourceReservation, RestartPolicy, UpdateConfig,
};
use crate::yaml::{Node, Value};

impl Decoder<'_> {
    pub fn deploy(&self, node: &Node) -> Result<Deploy, ComposeError> {
        let mut d = Deploy::default();
        for e in node.entries() {
            let v = &e.value;
            match e.key.as_str() {
                "mode" => d.mode = text(v),
                "endpoint_mode" => d.endpoint_mode = text(v),
                "replicas" => d.replicas = Some(self.unsigned(v, "Deploy.Replicas")?),
                "labels" => d.labels = string_map(v, '='),
                "update_config" => {
                    d.update_config = Some(self.update_config(v, "Deploy.update_config")?)
                }
                "rollback_config" => {
                    d.rollback_config = Some(self.update_config(v, "Deploy.rollback_config")?)
                }
                "resources" => {
                    if let Some(l) = v.get("limits") {
                        d.resources.limits = Some(self.limits(l)?);
                    }
                    if let Some(r) = v.get("reservations") {
                        d.resources.reservations = Some(self.reservations(r)?);
                    }
                }
                "restart_policy" => d.restart_policy = Some(self.restart_policy(v)?),
                "placement" => d.placement = self.placement(v)?,
                _ => {}
            }
        }
        Ok(d)
    }

    fn update_config(&self, node: &Node, go_path: &str) -> Result<UpdateConfig, ComposeError> {
        let mut u = UpdateConfig::default();
        for e in node.entries() {
            let v = &e.value;
            match e.key.as_str() {
                "parallelism" => {
                    u.parallelism = Some(self.unsigned(v, &format!("{go_path}.Parallelism"))?)
                }
                "delay" => u.delay = self.duration(v, &format!("{go_path}.Delay"))?,
                "monitor" => u.monitor = self.duration(v, &format!("{go_path}.Monitor"))?,
                "failure_action" => u.failure_action = text(v),
                "order" => u.order = text(v),
                "max_failure_ratio" => {
                    u.max_failure_ratio = match v.value {
                        Value::Int(i) => i as f32,
                        Value::Float(f) => f as f32,
                        _ => 0.0,
                    }
                }
                _ => {}
            }
        }
        Ok(u)
    }

    /// go-units RAMInBytes, failing as mapstructure reports a hook error.
    fn memory(&self, node: &Node, go_path: &str) -> Result<i64, ComposeError> {
        match &node.value {
            Value::Int(i) => Ok(*i),
            _ => berth_units::parse_ram(&text(node)).map_err(|e| {
                self.decoding_failed(format!("error decoding '{go_path}': {e}"), node.pos)
            }),
        }
    }

    fn limits(&self, node: &Node) -> Result<ResourceLimit, ComposeError> {
        let mut l = ResourceLimit::default();
        for e in node.entries() {
            match e.key.as_str() {
                "cpus" => l.cpus = text(&e.value),
                "memory" => l.memory = self.memory(&e.value, "Deploy.Resources.Limits.memory")?,
                "pids" => l.pids = integer(&e.value),
                _ => {}
            }
        }
        Ok(l)
    }

    fn reservations(&self, node: &Node) -> Result<ResourceReservation, ComposeError> {
        let mut r = ResourceReservation::default();
        for e in node.entries() {
            match e.key.as_str() {
                "cpus" => r.cpus = text(&e.value),
                "memory" => {
                    r.memory = self.memory(&e.value, "Deploy.Resources.Reservations.memory")?
                }
                "generic_resources" => {
                    if let Value::Seq(items) = &e.value.value {
                        r.generic_resources = items.iter().map(generic_resource).collect();
                    }
                }
                _ => {}
            }
        }
        Ok(r)
    }

    fn restart_policy(&self, node: &Node) -> Result<RestartPolicy, ComposeError> {
        let mut p = RestartPolicy::default();
        let go_path = "Deploy.restart_policy";
        for e in node.entries() {
            let v = &e.value;
            match e.key.as_str() {
                "condition" => p.condition = text(v),
                "delay" => p.delay = Some(self.duration(v, &format!("{go_path}.Delay"))?),
                "window" => p.window = Some(self.duration(v, &format!("{go_path}.Window"))?),
                "max_attempts" => {
                    p.max_attempts = Some(self.unsigned(v, &format!("{go_path}.max_attempts"))?)
                }
                _ => {}
            }
        }
        Ok(p)
    }

    fn placement(&self, node: &Node) -> Result<Placement, ComposeError> {
        let mut p = Placement::default();
        for e in node.entries() {
            let v = &e.value;
            match e.key.as_str() {
                "constraints" => p.constraints = strings(v),
                "preferences" => {
                    if let Value::Seq(items) = &v.value {
                        p.preferences = items
                            .iter()
                            .map(|i| i.get("spread").map(text).unwrap_or_default())
                            .collect();
                    }
                }
                "max_replicas_per_node" => {
                    p.max_replicas = self.unsigned(v, "Deploy.Placement.max_replicas_per_node")?
                }
                _ => {}
            }
        }
        Ok(p)
    }

    pub fn healthcheck(&self, node: &Node) -> Result<Healthcheck, ComposeError> {
        let mut h = Healthcheck::default();
        for e in node.entries() {
            let v = &e.value;
            let path = |f: &str| format!("HealthCheck.{f}");
            match e.key.as_str() {
                "test" => {
                    h.test = match &v.value {
                        Value::Str(s) => vec!["CMD-SHELL".into(), s.clone()],
                        _ => strings(v),
                    }
                }
                "disable" => h.disable = matches!(v.value, Value::Bool(true)),
                "retries" => h.retries = Some(self.unsigned(v, &path("Retries"))?),
                "timeout" => h.timeout = Some(self.duration(v, &path("Timeout"))?),
                "interval" => h.interval = Some(self.duration(v, &path("Interval"))?),
                "start_period" => h.start_period = Some(self.duration(v, &path("start_period"))?),
                "start_interval" => {
                    h.start_interval = Some(self.duration(v, &path("start_interval"))?)
                }
                _ => {}
            }
        }
        Ok(h)
    }
}

fn generic_resource(node: &Node) -> GenericResource {
    GenericResource {
        discrete: node
            .get("discrete_resource_spec")
            .map(|d| DiscreteResource {
                kind: d.get("kind").map(text).unwrap_or_default(),
                value: d.get("value").map(integer).unwrap_or(0),
            }),
    }
}
