//! berth-compose against what the real docker CLI 28 sent for the same
//! files: each fixture holds compose files and `capture.json`, written by
//! `tests/fixtures/tools/capture.py` (a `docker stack deploy` against a fake
//! daemon that logged the request bodies).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use berth_compose::{ComposeSource, Env, convert, load};
use serde_json::Value;

fn fixture_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

struct Capture {
    namespace: String,
    files: Vec<String>,
    env: Vec<(String, String)>,
    stderr: String,
    exit: i64,
    networks: BTreeMap<String, Value>,
    secrets: BTreeMap<String, Value>,
    configs: BTreeMap<String, Value>,
    services: BTreeMap<String, Value>,
    network_inspects: BTreeSet<String>,
}

/// Reads a capture, with the directory it was taken in replaced by the
/// fixture's own.
fn capture(name: &str) -> Capture {
    let dir = fixture_dir(name);
    let text = std::fs::read_to_string(dir.join("capture.json")).expect("capture.json");
    let raw: Value = serde_json::from_str(&text).expect("capture json");
    let taken_in = raw["working_dir"]
        .as_str()
        .expect("working_dir")
        .to_string();
    let text = text.replace(&taken_in, &dir.to_string_lossy());
    let v: Value = serde_json::from_str(&text).expect("capture json");
    let map = |key: &str| -> BTreeMap<String, Value> {
        v[key]
            .as_object()
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    };
    Capture {
        namespace: v["namespace"].as_str().expect("namespace").into(),
        files: v["files"]
            .as_array()
            .expect("files")
            .iter()
            .map(|f| f.as_str().expect("file").to_string())
            .collect(),
        env: v["env"]
            .as_object()
            .expect("env")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().expect("env value").to_string()))
            .collect(),
        stderr: v["stderr"].as_str().unwrap_or_default().into(),
        exit: v["exit"].as_i64().unwrap_or(-1),
        networks: map("networks"),
        secrets: map("secrets"),
        configs: map("configs"),
        services: map("services"),
        network_inspects: v["network_inspects"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|n| n.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The docker CLI's stderr without logrus lines.
fn cli_warnings(stderr: &str) -> String {
    stderr
        .split_inclusive('\n')
        .filter(|l| !l.contains("level=warning") && !l.starts_with("WARN["))
        .collect()
}

fn check(name: &str) {
    let cap = capture(name);
    if cap.exit != 0 {
        return check_failure(name, &cap);
    }
    let loaded = load(&sources(name, &cap), &Env::from_vars(cap.env.clone()))
        .unwrap_or_else(|e| panic!("{name}: load: {e}"));
    let printed: String = loaded
        .warnings
        .iter()
        .filter(|w| w.starts_with("Ignoring"))
        .map(|w| format!("{w}\n\n"))
        .collect();
    assert_eq!(printed, cli_warnings(&cap.stderr), "{name}: warnings");

    let stack =
        convert(&loaded.project, &cap.namespace).unwrap_or_else(|e| panic!("{name}: convert: {e}"));

    let networks: BTreeMap<String, Value> = stack
        .networks
        .iter()
        .map(|n| (n.name.clone(), n.body.clone()))
        .collect();
    assert_eq!(networks, cap.networks, "{name}: network create bodies");
    let externals: BTreeSet<String> = stack.external_networks.iter().cloned().collect();
    assert_eq!(externals, cap.network_inspects, "{name}: external networks");

    let secrets: BTreeMap<String, Value> = stack
        .secrets
        .iter()
        .map(|s| (s.name.clone(), s.spec.clone()))
        .collect();
    assert_eq!(secrets, cap.secrets, "{name}: secret create bodies");
    let configs: BTreeMap<String, Value> = stack
        .configs
        .iter()
        .map(|c| (c.name.clone(), c.spec.clone()))
        .collect();
    assert_eq!(configs, cap.configs, "{name}: config create bodies");

    let mut services = BTreeMap::new();
    for mut s in stack.services {
        // the fake daemon named every secret and config ID_<name>
        s.resolve_references(|n| Some(format!("ID_{n}")), |n| Some(format!("ID_{n}")))
            .expect("references resolve");
        services.insert(s.full_name().to_string(), s.spec);
    }
    assert_eq!(
        services.keys().collect::<Vec<_>>(),
        cap.services.keys().collect::<Vec<_>>(),
        "{name}: services"
    );
    for (service, expected) in &cap.services {
        let mut diffs = Vec::new();
        diff("", &services[service], expected, &mut diffs);
        assert!(
            diffs.is_empty(),
            "{name}: ServiceSpec of {service} differs:\n{}",
            diffs.join("\n")
        );
    }
}

fn sources(name: &str, cap: &Capture) -> Vec<ComposeSource> {
    let dir = fixture_dir(name);
    cap.files
        .iter()
        .map(|f| {
            let content = std::fs::read(dir.join(f)).expect("compose file");
            ComposeSource::new(f.clone(), dir.clone(), content)
        })
        .collect()
}

/// The docker CLI refused the files: berth must refuse them with its text.
fn check_failure(name: &str, cap: &Capture) {
    let result = load(&sources(name, cap), &Env::from_vars(cap.env.clone()))
        .and_then(|l| convert(&l.project, &cap.namespace));
    match result {
        Ok(_) => panic!("{name}: berth accepted what docker refused: {}", cap.stderr),
        Err(e) => assert!(
            cap.stderr.ends_with(&format!("{}\n", e.message())),
            "{name}:\n  berth:  {:?}\n  docker: {:?}",
            e.message(),
            cap.stderr
        ),
    }
}

/// The paths where two JSON values differ, with both sides.
fn diff(path: &str, ours: &Value, theirs: &Value, out: &mut Vec<String>) {
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let (x, y) = (
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                );
                if a.contains_key(k) != b.contains_key(k) {
                    out.push(format!(
                        "{path}.{k}: berth {:?}, docker {:?}",
                        a.get(k),
                        b.get(k)
                    ));
                } else {
                    diff(&format!("{path}.{k}"), x, y, out);
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff(&format!("{path}[{i}]"), x, y, out);
            }
        }
        _ if ours != theirs => out.push(format!("{path}: berth {ours}, docker {theirs}")),
        _ => {}
    }
}

#[test]
fn wordpress_stack_matches_the_docker_cli() {
    check("wordpress");
}

#[test]
fn kitchen_sink_matches_the_docker_cli() {
    check("kitchen-sink");
}

#[test]
fn a_second_file_overrides_as_with_the_docker_cli() {
    check("override");
}

#[test]
fn jobs_drivers_and_credential_specs_match_the_docker_cli() {
    check("jobs");
}

/// For checking a capture outside the fixtures:
/// `BERTH_COMPOSE_CAPTURE=/abs/dir cargo test --test golden -- --ignored`
#[test]
#[ignore]
fn capture_named_by_the_environment() {
    if let Ok(dir) = std::env::var("BERTH_COMPOSE_CAPTURE") {
        check(&dir);
    }
}

#[test]
fn merging_keeps_the_docker_clis_quirks() {
    // port 80 is lost (ports merge by published port, both are 0), the
    // healthcheck tests are appended, the logging options are dropped
    check("merge-quirks");
}

#[test]
fn scalars_print_as_go_prints_them() {
    check("scalars");
}
