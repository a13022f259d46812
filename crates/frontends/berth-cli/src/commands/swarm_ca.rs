//! `berth swarm update` and `berth swarm ca`: the docker CLI 28's
//! requests (inspect, then the whole spec back with the inspected
//! version) and texts, including `swarm ca --rotate`'s wait for the
//! rotation to converge.

use anyhow::Result;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::swarm::{flag_error, get_json, post, unlock_text};
use crate::{Ctx, status};

#[derive(clap::Args, Debug, Default)]
pub struct SpecFlags {
    /// Task history retention limit
    #[arg(long)]
    task_history_limit: Option<i64>,
    /// Dispatcher heartbeat period (ns|us|ms|s|m|h)
    #[arg(long)]
    dispatcher_heartbeat: Option<String>,
    /// Number of additional Raft snapshots to retain
    #[arg(long)]
    max_snapshots: Option<u64>,
    /// Number of log entries between Raft snapshots
    #[arg(long)]
    snapshot_interval: Option<u64>,
}

#[derive(clap::Args, Debug, Default)]
pub struct CaFlags {
    /// Validity period for node certificates (ns|us|ms|s|m|h)
    #[arg(long)]
    cert_expiry: Option<String>,
    /// Specifications of one or more certificate signing endpoints
    #[arg(long)]
    external_ca: Vec<String>,
}

#[derive(clap::Args, Debug, Default)]
pub struct UpdateArgs {
    /// Change manager autolocking setting (true|false)
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    autolock: Option<bool>,
    #[command(flatten)]
    spec: SpecFlags,
    #[command(flatten)]
    ca: CaFlags,
}

fn duration(v: &str, flag: &str) -> Result<i64> {
    berth_units::parse_go_duration(v)
        .ok_or_else(|| flag_error(v, flag, &format!("time: invalid duration \"{v}\"")))
}

/// The docker CLI's `parseExternalCA`.
pub(super) fn external_ca(spec: &str) -> Result<Value> {
    let bad = |why: String| flag_error(spec, "external-ca", &why);
    let mut ca = json!({ "Options": {} });
    let (mut has_protocol, mut has_url) = (false, false);
    for field in spec.split(',') {
        let Some((k, v)) = field.split_once('=') else {
            return Err(bad(format!(
                "invalid field '{field}' must be a key=value pair"
            )));
        };
        match k.to_ascii_lowercase().as_str() {
            "protocol" => {
                if !v.eq_ignore_ascii_case("cfssl") {
                    return Err(bad(format!("unrecognized external CA protocol {v}")));
                }
                ca["Protocol"] = json!("cfssl");
                has_protocol = true;
            }
            "url" => {
                ca["URL"] = json!(v);
                has_url = true;
            }
            "cacert" => {
                let pem = std::fs::read_to_string(v)
                    .map_err(|e| bad(format!("unable to read CA cert for external CA: {e}")))?;
                ca["CACert"] = json!(pem);
            }
            _ => ca["Options"][k] = json!(v),
        }
    }
    if !has_protocol {
        return Err(bad(
            "the external-ca option needs a protocol= parameter".into()
        ));
    }
    if !has_url {
        return Err(bad("the external-ca option needs a url= parameter".into()));
    }
    Ok(ca)
}

/// `mergeSwarmSpecCAFlags`: only the flags given change the spec.
fn merge_ca(spec: &mut Value, f: &CaFlags, ca_cert: Option<&str>) -> Result<()> {
    if let Some(v) = &f.cert_expiry {
        spec["CAConfig"]["NodeCertExpiry"] = json!(duration(v, "cert-expiry")?);
    }
    if !f.external_ca.is_empty() {
        let mut cas = Vec::new();
        for e in &f.external_ca {
            let mut ca = external_ca(e)?;
            if let Some(cert) = ca_cert
                && ca.get("CACert").is_none()
            {
                ca["CACert"] = json!(cert);
            }
            cas.push(ca);
        }
        spec["CAConfig"]["ExternalCAs"] = json!(cas);
    }
    Ok(())
}

fn merge_spec(spec: &mut Value, a: &UpdateArgs, trust_root: &str) -> Result<()> {
    let f = &a.spec;
    if let Some(n) = f.task_history_limit {
        spec["Orchestration"]["TaskHistoryRetentionLimit"] = json!(n);
    }
    if let Some(v) = &f.dispatcher_heartbeat {
        spec["Dispatcher"]["HeartbeatPeriod"] = json!(duration(v, "dispatcher-heartbeat")?);
    }
    if let Some(n) = f.max_snapshots {
        spec["Raft"]["KeepOldSnapshots"] = json!(n);
    }
    if let Some(n) = f.snapshot_interval {
        spec["Raft"]["SnapshotInterval"] = json!(n);
    }
    if let Some(l) = a.autolock {
        spec["EncryptionConfig"]["AutoLockManagers"] = json!(l);
    }
    merge_ca(spec, &a.ca, Some(trust_root))
}

fn any_flag(a: &UpdateArgs) -> bool {
    let f = &a.spec;
    a.autolock.is_some()
        || f.task_history_limit.is_some()
        || f.dispatcher_heartbeat.is_some()
        || f.max_snapshots.is_some()
        || f.snapshot_interval.is_some()
        || a.ca.cert_expiry.is_some()
        || !a.ca.external_ca.is_empty()
}

async fn swarm_update(ctx: &Ctx, sw: &Value, spec: &Value) -> Result<()> {
    let version = sw["Version"]["Index"].as_u64().unwrap_or(0);
    let path = format!(
        "/swarm/update?rotateManagerToken=false&rotateManagerUnlockKey=false&rotateWorkerToken=false&version={version}"
    );
    post(ctx, &path, Some(spec)).await?;
    Ok(())
}

pub async fn update(ctx: &Ctx, a: UpdateArgs) -> Result<i32> {
    if !any_flag(&a) {
        println!("\nUsage:  docker swarm update [OPTIONS]\n\nUpdate the swarm");
        return Ok(0);
    }
    let sw = get_json(ctx, "/swarm").await?;
    let mut spec = sw["Spec"].clone();
    let was_locked = spec["EncryptionConfig"]["AutoLockManagers"].as_bool() == Some(true);
    let trust_root = sw["TLSInfo"]["TrustRoot"].as_str().unwrap_or_default();
    merge_spec(&mut spec, &a, trust_root)?;
    swarm_update(ctx, &sw, &spec).await?;
    println!("Swarm updated.");
    if a.autolock == Some(true) && !was_locked {
        let key = get_json(ctx, "/swarm/unlockkey")
            .await
            .map_err(|e| status(1, format!("could not fetch unlock key: {e}")))?;
        print!(
            "{}",
            unlock_text(key["UnlockKey"].as_str().unwrap_or_default())
        );
    }
    Ok(0)
}

#[derive(clap::Args, Debug, Default)]
pub struct CaArgs {
    #[command(flatten)]
    ca: CaFlags,
    /// Rotate the swarm CA - if no certificate or key are provided, new ones will be generated
    #[arg(long)]
    rotate: bool,
    /// Path to the PEM-formatted root CA certificate to use for the new cluster
    #[arg(long)]
    ca_cert: Option<String>,
    /// Path to the PEM-formatted root CA key to use for the new cluster
    #[arg(long)]
    ca_key: Option<String>,
    /// Exit immediately instead of waiting for the root rotation to converge
    #[arg(short = 'd', long)]
    detach: bool,
    /// Suppress progress output
    #[arg(short = 'q', long)]
    quiet: bool,
}

/// The docker CLI's `PEMFile` flag: the file's contents, which must be PEM.
fn pem_file(path: &Option<String>, flag: &str) -> Result<String> {
    let Some(p) = path else {
        return Ok(String::new());
    };
    let text = std::fs::read_to_string(p).map_err(|e| flag_error(p, flag, &e.to_string()))?;
    if !text.contains("-----BEGIN ") {
        return Err(flag_error(p, flag, "file contents must be in PEM format"));
    }
    Ok(text)
}

fn trust_root(sw: &Value) -> Result<String> {
    match sw["TLSInfo"]["TrustRoot"].as_str().unwrap_or_default() {
        "" => Err(status(1, "No CA information available")),
        r => Ok(r.trim().to_string()),
    }
}

pub async fn ca(ctx: &Ctx, a: CaArgs) -> Result<i32> {
    let sw = get_json(ctx, "/swarm").await?;
    if !a.rotate {
        let given = [
            ("ca-cert", a.ca_cert.is_some()),
            ("ca-key", a.ca_key.is_some()),
            ("cert-expiry", a.ca.cert_expiry.is_some()),
            ("external-ca", !a.ca.external_ca.is_empty()),
        ];
        if let Some((f, _)) = given.iter().find(|(_, g)| *g) {
            return Err(status(
                1,
                format!("`--{f}` flag requires the `--rotate` flag to update the CA"),
            ));
        }
        println!("{}", trust_root(&sw)?);
        return Ok(0);
    }
    if !a.ca.external_ca.is_empty() && a.ca_cert.is_none() {
        return Err(status(
            1,
            "rotating to an external CA requires the `--ca-cert` flag to specify the external CA's cert - to add an external CA with the current root CA certificate, use the `update` command instead",
        ));
    }
    if a.ca_cert.is_some() && a.ca.external_ca.is_empty() && a.ca_key.is_none() {
        return Err(status(
            1,
            "the --ca-cert flag requires that a --ca-key flag and/or --external-ca flag be provided as well",
        ));
    }
    let (cert, key) = (
        pem_file(&a.ca_cert, "ca-cert")?,
        pem_file(&a.ca_key, "ca-key")?,
    );
    let mut spec = sw["Spec"].clone();
    merge_ca(&mut spec, &a.ca, Some(&cert))?;
    spec["CAConfig"]["SigningCACert"] = json!(cert);
    spec["CAConfig"]["SigningCAKey"] = json!(key);
    if cert.is_empty() && key.is_empty() {
        let n = spec["CAConfig"]["ForceRotate"].as_u64().unwrap_or(0);
        spec["CAConfig"]["ForceRotate"] = json!(n + 1);
    }
    swarm_update(ctx, &sw, &spec).await?;
    if a.detach {
        return Ok(0);
    }
    follow_rotation(ctx, a.quiet).await?;
    println!("{}", trust_root(&get_json(ctx, "/swarm").await?)?);
    Ok(0)
}

/// `RootRotationProgress` as a non-terminal shows it: the bars are left
/// out, the desired root's digest is printed at every look.
async fn follow_rotation(ctx: &Ctx, quiet: bool) -> Result<()> {
    let say = |line: String| {
        if !quiet {
            println!("{line}");
        }
    };
    say("desired root digest: ".into());
    say("  rotated TLS certificates: ".into());
    say("  rotated CA certificates:  ".into());
    let mut done = false;
    loop {
        let sw = get_json(ctx, "/swarm").await?;
        if done {
            return Ok(());
        }
        let nodes = get_json(ctx, "/nodes").await?;
        let tls = &sw["TLSInfo"];
        let root = tls["TrustRoot"].as_str().unwrap_or_default();
        say(format!(
            "desired root digest: sha256:{}",
            hex::encode(Sha256::digest(root.as_bytes()))
        ));
        done = converged(
            tls,
            &nodes,
            sw["RootRotationInProgress"].as_bool() == Some(true),
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// `updateProgress`'s verdict: every node's certificate from the desired
/// issuer and every node trusting the desired root, the rotation over.
pub fn converged(desired: &Value, nodes: &Value, in_progress: bool) -> bool {
    let nodes = nodes.as_array().map(Vec::as_slice).unwrap_or_default();
    let issuer = |t: &Value| {
        (
            t["CertIssuerPublicKey"].clone(),
            t["CertIssuerSubject"].clone(),
        )
    };
    let certs = nodes
        .iter()
        .filter(|n| issuer(&n["Description"]["TLSInfo"]) == issuer(desired))
        .count();
    let roots = nodes
        .iter()
        .filter(|n| n["Description"]["TLSInfo"]["TrustRoot"] == desired["TrustRoot"])
        .count();
    certs == nodes.len() && !in_progress && roots == nodes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_flags_given_change_the_spec() {
        let mut spec = json!({ "Orchestration": {}, "Raft": {}, "Dispatcher": {}, "CAConfig": {}, "EncryptionConfig": {} });
        let a = UpdateArgs {
            spec: SpecFlags {
                dispatcher_heartbeat: Some("7s".into()),
                max_snapshots: Some(2),
                ..SpecFlags::default()
            },
            ca: CaFlags {
                cert_expiry: Some("2h".into()),
                ..CaFlags::default()
            },
            ..UpdateArgs::default()
        };
        merge_spec(&mut spec, &a, "ROOT").unwrap();
        assert_eq!(spec["Dispatcher"]["HeartbeatPeriod"], 7_000_000_000i64);
        assert_eq!(spec["Raft"]["KeepOldSnapshots"], 2);
        assert_eq!(spec["CAConfig"]["NodeCertExpiry"], 7_200_000_000_000i64);
        assert!(
            spec["Orchestration"]
                .get("TaskHistoryRetentionLimit")
                .is_none()
        );
        assert!(spec["EncryptionConfig"].get("AutoLockManagers").is_none());
        let ext = external_ca("protocol=cfssl,url=https://ca.example:8888,x=y").unwrap();
        assert_eq!(ext["URL"], "https://ca.example:8888");
        assert_eq!(ext["Options"]["x"], "y");
        assert!(
            external_ca("url")
                .unwrap_err()
                .to_string()
                .contains("key=value")
        );
    }

    #[test]
    fn a_rotation_has_converged_when_every_node_has_moved() {
        let want =
            json!({ "TrustRoot": "R2", "CertIssuerSubject": "S", "CertIssuerPublicKey": "K2" });
        let node = |root: &str, key: &str| {
            json!({ "Description": { "TLSInfo": {
            "TrustRoot": root, "CertIssuerSubject": "S", "CertIssuerPublicKey": key } } })
        };
        let moved = json!([node("R2", "K2"), node("R2", "K2")]);
        assert!(converged(&want, &moved, false));
        assert!(!converged(&want, &moved, true));
        assert!(!converged(
            &want,
            &json!([node("R2", "K2"), node("R1", "K2")]),
            false
        ));
        assert!(!converged(&want, &json!([node("R1", "K1")]), false));
    }
}
