//! The secret and config references of a service: `--secret`/`--config`
//! values (swarmopts' SecretOpt/ConfigOpt), their lookup by name
//! (`ParseSecrets`/`ParseConfigs`: one listing, exact names only) and
//! `service update`'s `--secret-rm/-add`, `--config-rm/-add` merge
//! (`getUpdatedSecrets`/`getUpdatedConfigs`), as the docker CLI 28 does
//! them, with its words.

use serde_json::{Value, json};

use super::services_list::filters_json;
use super::services_opts::Obj;
use super::services_update::go_order;
use super::swarm::get_json;
use crate::{Ctx, rawhttp, status};

/// What differs between secret and config references.
pub struct RefKind {
    /// "secret" or "config", as the messages name it.
    pub name: &'static str,
    pub list_path: &'static str,
    /// The ContainerSpec field: Secrets, Configs.
    pub spec_key: &'static str,
    pub id_key: &'static str,
    pub name_key: &'static str,
    /// Config references may target the runtime (a credential spec)
    /// instead of a file; their File is then left out, where a secret's
    /// is written `null`.
    pub runtime_targets: bool,
}

pub const SECRET_REFS: RefKind = RefKind {
    name: "secret",
    list_path: "/secrets",
    spec_key: "Secrets",
    id_key: "SecretID",
    name_key: "SecretName",
    runtime_targets: false,
};

pub const CONFIG_REFS: RefKind = RefKind {
    name: "config",
    list_path: "/configs",
    spec_key: "Configs",
    id_key: "ConfigID",
    name_key: "ConfigName",
    runtime_targets: true,
};

/// One `--secret`/`--config` value: a file target in the container.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRef {
    pub source: String,
    pub target: String,
    pub uid: String,
    pub gid: String,
    pub mode: u32,
}

/// The flag value as SecretOpt/ConfigOpt's `Set` reads it: `NAME`, or
/// csv `source|src=,target=,uid=,gid=,mode=` (keys in any case, mode in
/// Go's base-0 syntax, so `0400` is octal).
pub fn parse_ref(kind: &RefKind, value: &str) -> Result<FileRef, String> {
    let fields = crate::gocsv::record(value)?;
    let mut r = FileRef {
        source: String::new(),
        target: String::new(),
        uid: "0".into(),
        gid: "0".into(),
        mode: 0o444,
    };
    if let [only] = fields.as_slice()
        && !only.contains('=')
    {
        r.source = only.clone();
        r.target = only.clone();
        return Ok(r);
    }
    for field in &fields {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) if !k.is_empty() => (k, v),
            _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
        };
        match key.to_lowercase().as_str() {
            "source" | "src" => r.source = val.to_string(),
            "target" => r.target = val.to_string(),
            "uid" => r.uid = val.to_string(),
            "gid" => r.gid = val.to_string(),
            "mode" => {
                r.mode = crate::goparse::parse_uint32(val)
                    .map_err(|e| format!("invalid mode specified: {e}"))?
            }
            _ => return Err(format!("invalid field in {} request: {key}", kind.name)),
        }
    }
    if r.source.is_empty() {
        return Err("source is required".into());
    }
    if r.target.is_empty() {
        r.target = r.source.clone();
    }
    Ok(r)
}

/// The path of the one listing that resolves the references, or the
/// client's refusal of a target given twice; None when there are none.
pub fn lookup_path(kind: &RefKind, refs: &[FileRef]) -> anyhow::Result<Option<String>> {
    for (i, r) in refs.iter().enumerate() {
        if refs[..i].iter().any(|o| o.target == r.target) {
            return Err(status(
                1,
                format!(
                    "duplicate {} target for {} not allowed",
                    kind.name, r.source
                ),
            ));
        }
    }
    if refs.is_empty() {
        return Ok(None);
    }
    let names: Vec<(String, String)> = refs
        .iter()
        .map(|r| ("name".to_string(), r.source.clone()))
        .collect();
    let filters = rawhttp::encode(&filters_json(&names));
    Ok(Some(format!("{}?filters={filters}", kind.list_path)))
}

/// The references as the spec carries them, their IDs taken from the
/// listing: the daemon's `name` filter is a prefix, so only exact names
/// count. docker's order is a Go map's; berth keeps the flags' order.
pub fn resolve(kind: &RefKind, refs: &[FileRef], listed: &Value) -> anyhow::Result<Vec<Value>> {
    let id_of = |name: &str| {
        listed
            .as_array()
            .into_iter()
            .flatten()
            .filter(|o| o["Spec"]["Name"].as_str() == Some(name))
            .filter_map(|o| o["ID"].as_str())
            .next_back()
            .map(String::from)
    };
    refs.iter()
        .map(|r| {
            let id = id_of(&r.source)
                .ok_or_else(|| status(1, format!("{} not found: {}", kind.name, r.source)))?;
            Ok(file_ref_json(kind, r, &id))
        })
        .collect()
}

fn file_ref_json(kind: &RefKind, r: &FileRef, id: &str) -> Value {
    let file = json!({ "Name": r.target, "UID": r.uid, "GID": r.gid, "Mode": r.mode });
    Obj::new()
        .put("File", file)
        .put(kind.id_key, json!(id))
        .put(kind.name_key, json!(r.source))
        .done()
}

/// Looks the references up on the daemon (one listing) and returns them
/// resolved; no request when there are none.
pub async fn resolve_refs(
    ctx: &Ctx,
    kind: &RefKind,
    refs: &[FileRef],
) -> anyhow::Result<Vec<Value>> {
    let Some(path) = lookup_path(kind, refs)? else {
        return Ok(Vec::new());
    };
    let listed = get_json(ctx, &path).await?;
    resolve(kind, refs, &listed)
}

/// The new references of a create or an update, resolved.
pub struct Resolved {
    pub secrets: Vec<Value>,
    pub configs: Vec<Value>,
}

/// ParseSecrets then ParseConfigs, as create and update call them.
pub async fn resolve_all(
    ctx: &Ctx,
    secrets: &[FileRef],
    configs: &[FileRef],
) -> anyhow::Result<Resolved> {
    Ok(Resolved {
        secrets: resolve_refs(ctx, &SECRET_REFS, secrets).await?,
        configs: resolve_refs(ctx, &CONFIG_REFS, configs).await?,
    })
}

/// The spec's references after removals by name and the resolved
/// additions, the spec in Go's field order.
pub fn apply(spec: &mut Value, secret_rm: &[String], config_rm: &[String], refs: Resolved) {
    let cs = &mut spec["TaskTemplate"]["ContainerSpec"];
    if !cs.is_object() {
        return;
    }
    update_refs(cs, &SECRET_REFS, secret_rm, refs.secrets);
    update_refs(cs, &CONFIG_REFS, config_rm, refs.configs);
    go_order(spec);
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// A reference read from the daemon in Go's field order and zero values,
/// as the CLI decodes and re-encodes it (a secret's missing File is
/// `null`; a config's is left out).
fn go_ref(kind: &RefKind, r: &Value) -> Value {
    let file = |f: &Value| {
        json!({ "Name": text(&f["Name"]), "UID": text(&f["UID"]), "GID": text(&f["GID"]),
                "Mode": f["Mode"].as_u64().unwrap_or(0) })
    };
    let file = r["File"].is_object().then(|| file(&r["File"]));
    let o = match kind.runtime_targets {
        false => Obj::new().put("File", file.unwrap_or(Value::Null)),
        true => Obj::new()
            .opt("File", file)
            .opt("Runtime", r["Runtime"].is_object().then(|| json!({}))),
    };
    o.put(kind.id_key, json!(text(&r[kind.id_key])))
        .put(kind.name_key, json!(text(&r[kind.name_key])))
        .done()
}

/// Whether a kept reference stays: not removed by name, and for a
/// config's runtime target, only the one the credential spec names.
fn kept(kind: &RefKind, r: &Value, rm: &[String], cred_config: &str) -> bool {
    if kind.runtime_targets && r["Runtime"].is_object() {
        return !cred_config.is_empty() && text(&r[kind.id_key]) == cred_config;
    }
    !rm.iter().any(|n| n == text(&r[kind.name_key]))
}

/// `getUpdatedSecrets`/`getUpdatedConfigs` on a ContainerSpec: the
/// references not removed (by source name, not target), then the added
/// ones; the field goes when empty.
pub fn update_refs(cs: &mut Value, kind: &RefKind, rm: &[String], added: Vec<Value>) {
    let key = kind.spec_key;
    let cred_config = text(&cs["Privileges"]["CredentialSpec"]["Config"]).to_string();
    let mut refs: Vec<Value> = cs[key]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| kept(kind, r, rm, &cred_config))
        .map(|r| go_ref(kind, r))
        .collect();
    refs.extend(added);
    let Some(m) = cs.as_object_mut() else {
        return;
    };
    if refs.is_empty() {
        m.shift_remove(key);
    } else {
        m.insert(key.to_string(), Value::Array(refs));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_name_is_source_and_target() {
        let r = parse_ref(&SECRET_REFS, "db_pw").unwrap();
        assert_eq!((r.source.as_str(), r.target.as_str()), ("db_pw", "db_pw"));
        assert_eq!((r.uid.as_str(), r.gid.as_str(), r.mode), ("0", "0", 0o444));
    }

    #[test]
    fn modes_read_in_gos_base_0_syntax() {
        let mode = |v: &str| parse_ref(&CONFIG_REFS, &format!("src=a,mode={v}")).map(|r| r.mode);
        assert_eq!(mode("0400"), Ok(0o400));
        assert_eq!(mode("0o640"), Ok(0o640));
        assert_eq!(mode("0x1ff"), Ok(0o777));
        assert_eq!(mode("292"), Ok(0o444));
        assert_eq!(mode("0x_1ff"), Ok(0o777));
        assert_eq!(
            mode("1_0").unwrap_err(),
            "invalid mode specified: strconv.ParseUint: parsing \"1_0\": invalid syntax"
        );
    }

    #[test]
    fn a_runtime_config_stays_only_for_the_credential_spec() {
        let mut cs = json!({
            "Privileges": { "CredentialSpec": { "Config": "cid" } },
            "Configs": [
                { "Runtime": {}, "ConfigID": "cid", "ConfigName": "cred" },
                { "Runtime": {}, "ConfigID": "other", "ConfigName": "x" },
            ],
        });
        update_refs(&mut cs, &CONFIG_REFS, &["cred".into()], vec![]);
        assert_eq!(
            cs["Configs"],
            json!([{ "Runtime": {}, "ConfigID": "cid", "ConfigName": "cred" }])
        );
        let mut cs = json!({ "Secrets": [{ "SecretID": "a", "SecretName": "a" }] });
        update_refs(&mut cs, &SECRET_REFS, &["a".into()], vec![]);
        assert!(cs.get("Secrets").is_none());
    }
}
