//! `--network` on `service create` and `--network-add`/`--network-rm` on
//! `service update`, as the docker CLI 28 reads and applies them
//! (`opts.NetworkOpt`, `updateNetworks`).

use anyhow::Result;
use serde_json::{Map, Value, json};

use super::swarm::get_json;
use crate::{Ctx, rawhttp, status};

/// docker's test for the long syntax: somewhere a word, `=`, a word.
fn long_syntax(v: &str) -> bool {
    let b = v.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    (1..b.len().saturating_sub(1)).any(|i| b[i] == b'=' && word(b[i - 1]) && word(b[i + 1]))
}

/// A `--network` value: a network's name or id, or the csv form
/// `name=N,alias=A,driver-opt=K=V` (keys and values lower-cased, as the
/// docker CLI does).
pub fn parse_network(v: &str) -> Result<Value, String> {
    if !long_syntax(v) {
        return Ok(json!({ "Target": v }));
    }
    let mut target = String::new();
    let mut aliases: Vec<String> = Vec::new();
    let mut driver_opts = Map::new();
    for field in v.split(',') {
        let lower = field.to_lowercase();
        let Some((key, val)) = lower.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(format!("invalid field {field}"));
        };
        let (key, val) = (key.trim(), val.trim());
        match key {
            "name" => target = val.to_string(),
            "alias" => aliases.push(val.to_string()),
            "driver-opt" => {
                let Some((k, opt)) = val.split_once('=') else {
                    return Err("invalid key value pair format in driver options".into());
                };
                driver_opts.insert(k.trim().to_string(), json!(opt.trim()));
            }
            // container-only settings a service can't use
            "ip" | "ip6" | "mac-address" | "link-local-ip" | "gw-priority" => {}
            other => return Err(format!("invalid field key {other}")),
        }
    }
    if target.is_empty() {
        return Err("network name/id is not specified".into());
    }
    let mut n = json!({ "Target": target });
    if !aliases.is_empty() {
        n["Aliases"] = json!(aliases);
    }
    if !driver_opts.is_empty() {
        n["DriverOpts"] = Value::Object(driver_opts);
    }
    Ok(n)
}

/// The swarm network a name or id prefix means (`NetworkInspect` with
/// scope swarm): its id.
async fn network_id(ctx: &Ctx, reference: &str) -> Result<String> {
    let path = format!("/networks/{}?scope=swarm", rawhttp::encode(reference));
    let n = get_json(ctx, &path).await?;
    Ok(n["Id"].as_str().unwrap_or(reference).to_string())
}

/// `service create`'s networks: each target resolved to its id (a local
/// or unknown network ends the command with the daemon's 404), then
/// sorted by target, as `ToService` does.
pub async fn resolve_create_networks(ctx: &Ctx, spec: &mut Value) -> Result<()> {
    // `get_mut`: indexing would add a null "Networks" the daemon refuses
    let list = spec
        .get_mut("TaskTemplate")
        .and_then(|t| t.get_mut("Networks"))
        .and_then(Value::as_array_mut);
    let Some(list) = list else {
        return Ok(());
    };
    for n in list.iter_mut() {
        let target = n["Target"].as_str().unwrap_or_default().to_string();
        n["Target"] = json!(network_id(ctx, &target).await?);
    }
    list.sort_by(|a, b| a["Target"].as_str().cmp(&b["Target"].as_str()));
    Ok(())
}

/// `updateNetworks`: the deprecated top-level list moved into the task
/// template, `rm` dropped by id, `add` appended by id (a network already
/// attached is refused), then sorted by target.
pub async fn update_networks(
    ctx: &Ctx,
    spec: &mut Value,
    add: &[Value],
    rm: &[String],
) -> Result<()> {
    if add.is_empty() && rm.is_empty() {
        return Ok(());
    }
    let mut current: Vec<Value> = spec["TaskTemplate"]["Networks"]
        .as_array()
        .or_else(|| spec["Networks"].as_array())
        .cloned()
        .unwrap_or_default();
    if let Some(m) = spec.as_object_mut() {
        m.shift_remove("Networks");
    }
    let mut remove = Vec::new();
    for r in rm {
        remove.push(network_id(ctx, r).await?);
    }
    current.retain(|n| !remove.iter().any(|id| n["Target"] == json!(id)));
    for n in add {
        let target = n["Target"].as_str().unwrap_or_default();
        let id = network_id(ctx, target).await?;
        if current.iter().any(|c| c["Target"] == json!(id)) {
            return Err(status(
                1,
                format!("service is already attached to network {target}"),
            ));
        }
        let mut n = n.clone();
        n["Target"] = json!(id);
        current.push(n);
    }
    current.sort_by(|a, b| a["Target"].as_str().cmp(&b["Target"].as_str()));
    match spec["TaskTemplate"].as_object_mut() {
        Some(t) if current.is_empty() => {
            t.shift_remove("Networks");
        }
        Some(t) => {
            t.insert("Networks".into(), json!(current));
        }
        None => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_as_the_docker_cli_reads_them() {
        assert_eq!(
            parse_network("front").unwrap(),
            json!({ "Target": "front" })
        );
        assert_eq!(
            parse_network("name=Front,alias=Web,alias=w2,driver-opt=k=V").unwrap(),
            json!({ "Target": "front", "Aliases": ["web", "w2"], "DriverOpts": { "k": "v" } })
        );
        assert_eq!(
            parse_network("alias=web").unwrap_err(),
            "network name/id is not specified"
        );
        assert_eq!(
            parse_network("name=a,colour=red").unwrap_err(),
            "invalid field key colour"
        );
    }
}
