//! Placement constraints (`node.role == manager`), parsed and matched as
//! swarmkit does: `==` or `!=`, keys without case, values compared
//! without case, and a key berth does not know matches no node.

use std::net::IpAddr;

use berth_ipnet::Subnet;
use berth_swarm_store::Node;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Constraint {
    key: String,
    equal: bool,
    value: String,
}

/// Parses every expression, or gives swarmkit's error for the first bad one.
pub fn parse(exprs: &[String]) -> Result<Vec<Constraint>, String> {
    exprs.iter().map(|e| parse_one(e)).collect()
}

fn parse_one(e: &str) -> Result<Constraint, String> {
    for (op, equal) in [("==", true), ("!=", false)] {
        let Some((key, value)) = e.split_once(op) else {
            continue;
        };
        let key = key.trim();
        if !valid_key(key) {
            return Err(format!("key '{key}' is invalid"));
        }
        let value = value.trim();
        if !valid_value(value) {
            return Err(format!("value '{value}' is invalid"));
        }
        return Ok(Constraint {
            key: key.to_string(),
            equal,
            value: value.to_string(),
        });
    }
    Err("constraint expected one operator from ==, !=".into())
}

fn valid_key(k: &str) -> bool {
    let mut chars = k.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok && k.len() >= 2 && chars.all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

fn valid_value(v: &str) -> bool {
    !v.is_empty()
        && v.chars().all(|c| {
            c.is_ascii_alphanumeric() || c.is_whitespace() || ":-_.*()?+[]\\^$|/".contains(c)
        })
}

impl Constraint {
    fn matches(&self, what: &str) -> bool {
        self.value.eq_ignore_ascii_case(what) == self.equal
    }

    fn node_value<'n>(&self, n: &'n Node) -> Option<&'n str> {
        let key = self.key.to_ascii_lowercase();
        let d = &n.description;
        let v = match key.as_str() {
            "node.id" => &n.id,
            "node.hostname" => &d.hostname,
            "node.role" => n.role.as_str(),
            "node.platform.os" => &d.os,
            "node.platform.arch" => &d.architecture,
            _ => return self.label_value(n),
        };
        Some(v)
    }

    /// `node.labels.<key>` and `engine.labels.<key>`: the label's own key
    /// keeps its case.
    fn label_value<'n>(&self, n: &'n Node) -> Option<&'n str> {
        let labels = |prefix: &str| {
            let head = self.key.get(..prefix.len())?;
            let label = self.key.get(prefix.len()..).filter(|l| !l.is_empty())?;
            head.eq_ignore_ascii_case(prefix).then_some(label)
        };
        if let Some(l) = labels("node.labels.") {
            return Some(n.spec.annotations.labels.get(l).map_or("", |v| v));
        }
        if let Some(l) = labels("engine.labels.") {
            return Some(n.description.engine_labels.get(l).map_or("", |v| v));
        }
        None
    }

    fn node_ip_matches(&self, n: &Node) -> bool {
        let Ok(ip) = n.status.addr.parse::<IpAddr>() else {
            return false;
        };
        let within = if let Ok(want) = self.value.parse::<IpAddr>() {
            want == ip
        } else if let (Ok(net), IpAddr::V4(v4)) = (Subnet::parse(&self.value), ip) {
            net.contains(v4)
        } else {
            return false;
        };
        within == self.equal
    }

    pub fn node_matches(&self, n: &Node) -> bool {
        if self.key.eq_ignore_ascii_case("node.ip") {
            return self.node_ip_matches(n);
        }
        self.node_value(n).is_some_and(|v| self.matches(v))
    }
}

pub fn node_matches(constraints: &[Constraint], n: &Node) -> bool {
    constraints.iter().all(|c| c.node_matches(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_swarm_store::NodeRole;

    fn node() -> Node {
        let mut n = Node {
            id: "n1abc".into(),
            role: NodeRole::Manager,
            ..Node::default()
        };
        n.description.hostname = "Alpha".into();
        n.description.os = "linux".into();
        n.status.addr = "10.1.2.3".into();
        n.spec
            .annotations
            .labels
            .insert("Zone".into(), "east".into());
        n
    }

    fn matches(e: &str) -> bool {
        node_matches(&parse(&[e.to_string()]).unwrap(), &node())
    }

    #[test]
    fn keys_and_values_match_without_case_but_label_keys_keep_it() {
        assert!(matches("node.role == manager"));
        assert!(matches("NODE.ROLE==MANAGER"));
        assert!(!matches("node.role != manager"));
        assert!(matches("node.hostname == alpha"));
        assert!(matches("node.labels.Zone == east"));
        assert!(!matches("node.labels.zone == east"));
        assert!(
            matches("node.labels.zone != east"),
            "a missing label is empty"
        );
        assert!(matches("node.platform.os==linux"));
        assert!(!matches("foo.bar == x"), "an unknown key matches no node");
    }

    #[test]
    fn node_ip_takes_an_address_or_a_subnet() {
        assert!(matches("node.ip == 10.1.2.3"));
        assert!(matches("node.ip == 10.1.0.0/16"));
        assert!(matches("node.ip != 10.9.0.0/16"));
        assert!(!matches("node.ip == nonsense"));
    }

    #[test]
    fn bad_expressions_get_swarmkits_errors() {
        let err = |e: &str| parse(&[e.to_string()]).unwrap_err();
        assert_eq!(
            err("node.role = manager"),
            "constraint expected one operator from ==, !="
        );
        assert_eq!(err("1node == x"), "key '1node' is invalid");
        assert_eq!(err("node.role == <x>"), "value '<x>' is invalid");
        assert_eq!(err("node.role == "), "value '' is invalid");
    }
}
