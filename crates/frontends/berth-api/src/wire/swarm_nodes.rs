//! Nodes on the wire: `POST /nodes/{id}/update`'s `NodeSpec` read as
//! dockerd's `convert.NodeSpecToGRPC` reads it.

use std::collections::BTreeMap;

use berth_swarm_manager::NodeSpecUpdate;
use berth_swarm_store::{Availability, NodeRole};
use serde::{Deserialize, Deserializer};

fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Docker's `swarm.NodeSpec`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeSpecBody {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable")]
    pub role: String,
    #[serde(deserialize_with = "nullable")]
    pub availability: String,
}

/// dockerd takes the names in any case, and nothing else (not even an
/// empty role or availability).
pub fn node_spec(b: NodeSpecBody) -> Result<NodeSpecUpdate, String> {
    let role = match b.role.to_ascii_uppercase().as_str() {
        "WORKER" => NodeRole::Worker,
        "MANAGER" => NodeRole::Manager,
        _ => return Err(format!("invalid Role: {:?}", b.role)),
    };
    let availability = match b.availability.to_ascii_uppercase().as_str() {
        "ACTIVE" => Availability::Active,
        "PAUSE" => Availability::Pause,
        "DRAIN" => Availability::Drain,
        _ => return Err(format!("invalid Availability: {:?}", b.availability)),
    };
    Ok(NodeSpecUpdate {
        name: b.name,
        labels: b.labels,
        role,
        availability,
    })
}

/// `?version=` as dockerd parses it (Go's `strconv.ParseUint` words).
pub fn node_version(raw: &str) -> Result<u64, String> {
    let why = if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        "invalid syntax"
    } else {
        "value out of range"
    };
    raw.parse::<u64>().map_err(|_| {
        format!("invalid node version '{raw}': strconv.ParseUint: parsing {raw:?}: {why}")
    })
}

/// The filters `GET /tasks` takes (dockerd's `newListTasksFilters`).
pub fn check_task_filters(
    f: &std::collections::HashMap<String, Vec<String>>,
) -> Result<(), String> {
    const ACCEPTED: [&str; 8] = [
        "name",
        "id",
        "label",
        "service",
        "node",
        "desired-state",
        "_up-to-date",
        "runtime",
    ];
    match f.keys().find(|k| !ACCEPTED.contains(&k.as_str())) {
        Some(k) => Err(format!("invalid filter '{k}'")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> NodeSpecBody {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_spec_reads_as_dockerd_reads_it() {
        let s = node_spec(body(
            r#"{"Name":"n","Labels":{"a":"b"},"Role":"Manager","Availability":"drain"}"#,
        ))
        .unwrap();
        assert_eq!(s.role, NodeRole::Manager);
        assert_eq!(s.availability, Availability::Drain);
        assert_eq!(s.labels["a"], "b");
        let s = node_spec(body(
            r#"{"Labels":null,"Role":"worker","Availability":"pause"}"#,
        ))
        .unwrap();
        assert!(s.labels.is_empty());
        assert_eq!(
            node_spec(body(r#"{"Role":"boss","Availability":"active"}"#)).unwrap_err(),
            r#"invalid Role: "boss""#
        );
        assert_eq!(
            node_spec(body(r#"{"Role":"worker"}"#)).unwrap_err(),
            r#"invalid Availability: """#
        );
    }

    #[test]
    fn versions_are_refused_in_gos_words() {
        assert_eq!(node_version("12"), Ok(12));
        assert_eq!(
            node_version("x").unwrap_err(),
            r#"invalid node version 'x': strconv.ParseUint: parsing "x": invalid syntax"#
        );
        assert_eq!(
            node_version("").unwrap_err(),
            r#"invalid node version '': strconv.ParseUint: parsing "": invalid syntax"#
        );
    }

    #[test]
    fn an_updated_node_reads_as_bollards_model() {
        let mut n = berth_swarm_store::Node {
            id: "n1".into(),
            ..Default::default()
        };
        n.spec.availability = Availability::Drain;
        n.spec.desired_role = NodeRole::Manager;
        n.spec
            .annotations
            .labels
            .insert("zone".into(), "east".into());
        let v = berth_swarm_manager::NodeView {
            node: n,
            manager_status: None,
        };
        let json = crate::wire::swarm::node_answer(&v, None);
        let m: bollard_stubs::models::Node = serde_json::from_value(json).unwrap();
        let spec = m.spec.unwrap();
        assert_eq!(
            spec.availability,
            Some(bollard_stubs::models::NodeSpecAvailabilityEnum::DRAIN)
        );
        assert_eq!(
            spec.role,
            Some(bollard_stubs::models::NodeSpecRoleEnum::MANAGER)
        );
        assert_eq!(spec.labels.unwrap()["zone"], "east");
    }
}
