//! Running a list's plugins as the CNI spec says: one exec per plugin,
//! its configuration on stdin and its result on stdout; ADD in order,
//! each plugin given the one before's result, and DEL in reverse, each
//! given the ADD's final result.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value};
use tokio::io::AsyncWriteExt;

use super::config::{Directory, NetworkList, plugin_type};

/// A plugin that hangs is killed after this, and its ADD undone.
const PLUGIN_TIMEOUT: Duration = Duration::from_secs(120);

/// A result is a few KiB; this bounds what a plugin's output may hold.
const MAX_OUTPUT_BYTES: usize = 1 << 20;

/// What one run of a list is about: a pod's sandbox and its namespace.
pub struct Invocation<'a> {
    pub dir: &'a Directory,
    pub container_id: &'a str,
    /// the pinned namespace; "" when it is gone (a DEL may still release)
    pub netns: &'a str,
    pub ifname: &'a str,
    /// `CNI_ARGS`, joined with ';'
    pub args: &'a str,
    /// the capability arguments offered to plugins that declare them
    pub capability_args: &'a Map<String, Value>,
}

/// Runs ADD through the list; the final result, as the last plugin gave it.
pub async fn add(list: &NetworkList, inv: &Invocation<'_>) -> Result<Value> {
    let mut prev: Option<Value> = None;
    for p in &list.plugins {
        let stdin = plugin_config(list, p, inv.capability_args, prev.as_ref());
        let out = run(inv, "ADD", plugin_type(p)?, &stdin).await?;
        let kind = plugin_type(p)?;
        let result: Value = serde_json::from_slice(&out)
            .with_context(|| format!("plugin {kind} gave a result that is not JSON"))?;
        prev = Some(result);
    }
    prev.ok_or_else(|| anyhow!("network {} has no plugins", list.name))
}

/// Runs DEL through the list in reverse. Every plugin runs even if one
/// fails, so that what can be released is; the first failure is returned.
pub async fn del(list: &NetworkList, inv: &Invocation<'_>, result: Option<&Value>) -> Result<()> {
    let prev = result.filter(|_| list.del_has_prev_result());
    let mut first_err = None;
    for p in list.plugins.iter().rev() {
        let stdin = plugin_config(list, p, inv.capability_args, prev);
        if let Err(e) = run(inv, "DEL", plugin_type(p)?, &stdin).await
            && !already_deleted(&format!("{e:#}"))
            && first_err.is_none()
        {
            first_err = Some(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// go-cni's rule: a DEL that finds nothing has nothing to delete. A
/// missing program (iptables) is not such a "not found": the rules stay.
fn already_deleted(words: &str) -> bool {
    words.contains("not found") && !words.contains("executable file not found")
}

/// A plugin's stdin: its object with the list's name and version, the
/// capability arguments it declares, and the previous result.
pub fn plugin_config(
    list: &NetworkList,
    plugin: &Map<String, Value>,
    capability_args: &Map<String, Value>,
    prev: Option<&Value>,
) -> Value {
    let mut conf = plugin.clone();
    conf.insert("name".into(), Value::String(list.name.clone()));
    conf.insert("cniVersion".into(), Value::String(list.cni_version.clone()));
    if let Some(Value::Object(caps)) = conf.remove("capabilities") {
        let runtime: Map<String, Value> = caps
            .iter()
            .filter(|(_, on)| on.as_bool() == Some(true))
            .filter_map(|(k, _)| capability_args.get(k).map(|v| (k.clone(), v.clone())))
            .collect();
        if !runtime.is_empty() {
            conf.insert("runtimeConfig".into(), Value::Object(runtime));
        }
    }
    if let Some(prev) = prev {
        conf.insert("prevResult".into(), prev.clone());
    }
    Value::Object(conf)
}

/// Runs one plugin; its stdout, or its error object's words.
async fn run(inv: &Invocation<'_>, command: &str, kind: &str, stdin: &Value) -> Result<Vec<u8>> {
    let bin = inv
        .dir
        .binary(kind)
        .ok_or_else(|| anyhow!("plugin {kind:?} is in none of {}", inv.dir.cni_path()))?;
    let mut child = tokio::process::Command::new(&bin)
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", inv.container_id)
        .env("CNI_NETNS", inv.netns)
        .env("CNI_IFNAME", inv.ifname)
        .env("CNI_ARGS", inv.args)
        .env("CNI_PATH", inv.dir.cni_path())
        .current_dir(Path::new("/"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("running CNI plugin {}", bin.display()))?;
    let bytes = serde_json::to_vec(stdin)?;
    let (input, out, err) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let finished = async {
        // the input is written while the output is read: a plugin may
        // answer before it has read everything
        let write = async move {
            if let Some(mut input) = input {
                // a plugin that exits without reading gives EPIPE: its exit says why
                let _ = input.write_all(&bytes).await;
            }
        };
        let ((), out, err) = tokio::join!(write, read_bounded(out), read_bounded(err));
        if out.1 || err.1 {
            let _ = child.start_kill();
        }
        (out, err, child.wait().await)
    };
    let ((stdout, over), (stderr, _), status) = tokio::time::timeout(PLUGIN_TIMEOUT, finished)
        .await
        .map_err(|_| anyhow!("CNI plugin {kind} {command} timed out after 2 minutes"))?;
    let status = status.with_context(|| format!("waiting for CNI plugin {kind}"))?;
    if over {
        bail!("CNI plugin {kind} {command} printed more than 1 MiB");
    }
    if !status.success() {
        bail!(
            "plugin type={kind:?} failed ({}): {}",
            command.to_lowercase(),
            failure_words(&stdout, &stderr)
        );
    }
    Ok(stdout)
}

/// Up to [`MAX_OUTPUT_BYTES`] of a plugin's output, and whether it wrote
/// more (then the plugin is killed).
async fn read_bounded<R: tokio::io::AsyncRead + Unpin>(r: Option<R>) -> (Vec<u8>, bool) {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    if let Some(r) = r {
        let _ = r
            .take(MAX_OUTPUT_BYTES as u64 + 1)
            .read_to_end(&mut buf)
            .await;
    }
    let over = buf.len() > MAX_OUTPUT_BYTES;
    buf.truncate(MAX_OUTPUT_BYTES);
    (buf, over)
}

/// What of a plugin's words goes into an error: a status message travels
/// in an HTTP/2 header.
const MAX_WORDS: usize = 2000;

fn clip(s: &str) -> String {
    s.chars().take(MAX_WORDS).collect()
}

/// A failed plugin's words: the error object's msg and details (on
/// stdout, where libcni reads it), else its stderr.
fn failure_words(stdout: &[u8], stderr: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(stdout) {
        let msg = v.get("msg").and_then(Value::as_str).unwrap_or_default();
        let details = v.get("details").and_then(Value::as_str).unwrap_or_default();
        if !msg.is_empty() {
            return if details.is_empty() {
                clip(msg)
            } else {
                clip(&format!("{msg}: {details}"))
            };
        }
    }
    let text = if stdout.is_empty() { stderr } else { stdout };
    let s = String::from_utf8_lossy(text);
    let s = s.trim();
    if s.is_empty() {
        "it exited with an error and said nothing".into()
    } else {
        clip(s)
    }
}

/// The pod's addresses in a final result: those on its `eth0` (or on no
/// interface in particular), IPv4 first, as containerd picks them.
pub fn pod_ips(result: &Value, ifname: &str) -> Vec<String> {
    let interfaces = result
        .get("interfaces")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let on_pod_if = |ip: &&Value| match ip.get("interface").and_then(Value::as_u64) {
        None => true,
        Some(i) => interfaces.get(i as usize).is_some_and(|itf| {
            itf.get("name").and_then(Value::as_str) == Some(ifname)
                && itf
                    .get("sandbox")
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty())
        }),
    };
    let mut ips: Vec<String> = result
        .get("ips")
        .and_then(Value::as_array)
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(on_pod_if)
        .filter_map(|ip| ip.get("address").and_then(Value::as_str))
        .filter_map(|cidr| cidr.split('/').next())
        .filter(|a| a.parse::<std::net::IpAddr>().is_ok())
        .map(str::to_string)
        .collect();
    // a stable sort: the result's order within each family stays
    ips.sort_by_key(|a| a.contains(':'));
    ips
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> NetworkList {
        NetworkList::parse(
            "10.conflist",
            br#"{"cniVersion":"1.0.0","name":"pods","plugins":[
                {"type":"bridge","bridge":"cni0"},
                {"type":"portmap","capabilities":{"portMappings":true,"bandwidth":false}}]}"#,
            false,
        )
        .unwrap()
    }

    #[test]
    fn a_plugin_gets_the_lists_name_its_capabilities_and_the_previous_result() {
        let l = list();
        let mut caps = Map::new();
        caps.insert(
            "portMappings".into(),
            serde_json::json!([{"hostPort": 8080}]),
        );
        caps.insert("bandwidth".into(), serde_json::json!({"ingressRate": 1}));
        caps.insert("dns".into(), serde_json::json!({"servers": []}));
        let first = plugin_config(&l, &l.plugins[0], &caps, None);
        assert_eq!(
            first,
            serde_json::json!({"type":"bridge","bridge":"cni0","name":"pods","cniVersion":"1.0.0"}),
            "a plugin declaring nothing gets no runtimeConfig"
        );
        let prev = serde_json::json!({"cniVersion":"1.0.0","ips":[]});
        let second = plugin_config(&l, &l.plugins[1], &caps, Some(&prev));
        assert_eq!(
            second,
            serde_json::json!({"type":"portmap","name":"pods","cniVersion":"1.0.0",
                "runtimeConfig":{"portMappings":[{"hostPort":8080}]},"prevResult":prev}),
            "only the declared and enabled capabilities, and no `capabilities` key"
        );
    }

    #[test]
    fn the_pods_addresses_are_those_on_its_interface_ipv4_first() {
        let result = serde_json::json!({
            "interfaces": [{"name":"cni0"},{"name":"veth1"},{"name":"eth0","sandbox":"/run/ns"}],
            "ips": [
                {"interface": 2, "address": "fd00::2/64"},
                {"interface": 0, "address": "10.88.0.1/16"},
                {"interface": 2, "address": "10.88.0.2/16", "gateway": "10.88.0.1"},
                {"address": "10.99.0.2/16"}
            ]
        });
        assert_eq!(
            pod_ips(&result, "eth0"),
            ["10.88.0.2", "10.99.0.2", "fd00::2"]
        );
        assert!(pod_ips(&serde_json::json!({}), "eth0").is_empty());
    }

    #[test]
    fn a_failed_plugin_is_told_in_its_own_words() {
        assert_eq!(
            failure_words(
                br#"{"code":999,"msg":"container veth name provided (eth0) already exists"}"#,
                b""
            ),
            "container veth name provided (eth0) already exists"
        );
        assert_eq!(
            failure_words(
                br#"{"code":1,"msg":"incompatible CNI versions","details":"config is 9"}"#,
                b""
            ),
            "incompatible CNI versions: config is 9"
        );
        assert_eq!(failure_words(b"", b"panic: boom\n"), "panic: boom");
        assert_eq!(
            failure_words(b"", b""),
            "it exited with an error and said nothing"
        );
        let long = format!(r#"{{"code":999,"msg":"{}"}}"#, "x".repeat(10_000));
        assert_eq!(failure_words(long.as_bytes(), b"").len(), MAX_WORDS);
    }

    #[test]
    fn a_del_that_finds_nothing_is_done_but_a_missing_program_is_not() {
        assert!(already_deleted(
            "chain CNI-DN-1 not found in iptables table nat"
        ));
        assert!(!already_deleted(
            "failed to locate iptables: exec: \"iptables\": executable file not found in $PATH"
        ));
        assert!(!already_deleted("permission denied"));
    }
}
