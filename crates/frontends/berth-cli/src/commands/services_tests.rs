//! The requests of `service create` and `service update` compared with
//! what the docker CLI 28 sent for the same flags (captured with a
//! recording server answering as an API 1.47 daemon; see testdata/).

use clap::Parser;
use serde_json::Value;

use super::services::{
    CreateArgs, UpdateArgs, body_of, other_flags_given, tag_image, update_path, update_query,
};
use super::services_flags::UPDATE_USAGE;
use super::services_spec::check_common;
use super::services_update::{check_update_flags, merged_spec};
use crate::StatusError;

#[derive(Parser)]
struct CreateCli {
    #[command(flatten)]
    a: CreateArgs,
}

#[derive(Parser)]
struct UpdateCli {
    #[command(flatten)]
    a: UpdateArgs,
}

struct Case {
    name: String,
    args: Vec<String>,
    rc: i32,
    stderr: String,
    requests: Vec<Value>,
}

fn cases(text: &str) -> Vec<Case> {
    let all: Vec<Value> = serde_json::from_str(text).expect("fixture is JSON");
    all.into_iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap_or_default().to_string(),
            args: serde_json::from_value(c["args"].clone()).unwrap_or_default(),
            rc: c["rc"].as_i64().unwrap_or(0) as i32,
            stderr: c["stderr"].as_str().unwrap_or_default().to_string(),
            requests: c["requests"].as_array().cloned().unwrap_or_default(),
        })
        .collect()
}

/// The request body the docker CLI sent to `path_end`, and its path
/// without the API version.
fn sent(case: &Case, path_part: &str) -> Option<(String, String)> {
    case.requests
        .iter()
        .find(|r| r["path"].as_str().is_some_and(|p| p.contains(path_part)))
        .map(|r| {
            let path = r["path"].as_str().unwrap_or_default();
            let path = path.strip_prefix("/v1.47").unwrap_or(path).to_string();
            (path, r["body"].as_str().unwrap_or_default().to_string())
        })
}

/// Field-by-field differences, for a readable failure.
fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                let (va, vb) = (
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                );
                diff(&format!("{path}.{k}"), va, vb, out);
            }
        }
        _ if a != b => out.push(format!("{path}: berth {a} docker {b}")),
        _ => {}
    }
}

fn assert_same_body(case: &str, mine: &[u8], docker: &str) {
    let mine = String::from_utf8_lossy(mine);
    if mine == docker {
        return;
    }
    let (a, b): (Value, Value) = (
        serde_json::from_str(&mine).unwrap_or_default(),
        serde_json::from_str(docker).unwrap_or_default(),
    );
    let mut d = Vec::new();
    diff("", &a, &b, &mut d);
    panic!(
        "{case}: bodies differ\n{}\nberth:  {mine}docker: {docker}",
        d.join("\n")
    );
}

fn assert_same_error(case: &Case, e: anyhow::Error) {
    let s = e
        .downcast_ref::<StatusError>()
        .unwrap_or_else(|| panic!("{}: not a status error: {e}", case.name));
    assert_eq!(format!("{}\n", s.message), case.stderr, "{}", case.name);
    assert_eq!(s.code, case.rc, "{}", case.name);
}

fn create_body(a: &CreateArgs) -> anyhow::Result<Vec<u8>> {
    let mut spec = super::services::create_plan(a)?.spec;
    // no references: what create does with none resolved
    let none = super::services_refs::Resolved {
        secrets: vec![],
        configs: vec![],
    };
    super::services_refs::apply(&mut spec, &[], &[], none);
    tag_image(&mut spec);
    Ok(body_of(&spec))
}

#[test]
fn create_sends_the_docker_clis_spec() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env_file = dir.path().join("env.list");
    std::fs::write(&env_file, "FROMFILE=1\n# c\nDUP=file\n  SPACED=x\n").expect("env file");
    let env_file = env_file.to_string_lossy().into_owned();
    for mut case in cases(include_str!("testdata/service_create.json")) {
        for a in case.args.iter_mut() {
            if a == "env.list" {
                *a = env_file.clone();
            }
        }
        let argv = std::iter::once("create".to_string()).chain(case.args.clone());
        let cli = CreateCli::try_parse_from(argv).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        match create_body(&cli.a) {
            Ok(body) => {
                assert_eq!(
                    case.rc, 0,
                    "{}: berth accepted what docker refused",
                    case.name
                );
                let (_, docker) = sent(&case, "/services/create").expect("a create request");
                assert_same_body(&case.name, &body, &docker);
            }
            Err(e) => assert_same_error(&case, e),
        }
    }
}

#[test]
fn a_missing_env_file_is_reported_as_docker_reports_it() {
    let cli = CreateCli::try_parse_from(["create", "--env-file", "/nonexistent/x.env", "busybox"])
        .expect("flags parse");
    let e = create_body(&cli.a).unwrap_err();
    assert_eq!(
        e.to_string(),
        "open /nonexistent/x.env: no such file or directory"
    );
}

#[test]
fn the_resolve_warning_reads_as_the_client_librarys() {
    let case = cases(include_str!("testdata/service_create.json"))
        .into_iter()
        .find(|c| c.name == "resolve_fails")
        .expect("case");
    let warning = super::services_image::digest_warning("busybox:1.36");
    assert_eq!(format!("{warning}\n"), case.stderr);
    let (path, _) = sent(&case, "/distribution/").expect("distribution request");
    assert_eq!(path, "/distribution/busybox:1.36/json");
}

/// The body with its environment sorted.
fn sorted_env(body: &[u8]) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(body).unwrap_or_default();
    let env = &mut v["TaskTemplate"]["ContainerSpec"]["Env"];
    if let Some(list) = env.as_array_mut() {
        list.sort_by_key(|e| e.to_string());
    }
    body_of(&v)
}

fn update_request(service: &Value, a: &UpdateArgs) -> anyhow::Result<(String, Vec<u8>)> {
    let usage = |e: super::services_flags::FlagError| e.with_usage(&UPDATE_USAGE);
    let c = check_common(&a.common).map_err(usage)?;
    let v = check_update_flags(&a.update).map_err(usage)?;
    if v.rollback && other_flags_given(a) {
        return Err(crate::status(
            1,
            "other flags may not be combined with --rollback",
        ));
    }
    let mut spec = merged_spec(service, &a.common, &a.update, &v, &c)?;
    let none = super::services_refs::Resolved {
        secrets: vec![],
        configs: vec![],
    };
    super::services_refs::apply(&mut spec, &a.update.secret_rm, &a.update.config_rm, none);
    tag_image(&mut spec);
    let path = update_path(service, &update_query(c.registry_auth, v.rollback));
    Ok((path, body_of(&spec)))
}

#[test]
fn update_sends_the_docker_clis_spec() {
    let service: Value =
        serde_json::from_str(include_str!("testdata/service_inspect.json")).expect("service");
    for case in cases(include_str!("testdata/service_update.json")) {
        if case.name == "update_missing" {
            continue;
        }
        let mut service = service.clone();
        if case.name == "replicas_global" {
            service["Spec"]["Mode"] = serde_json::json!({ "Global": {} });
        }
        let argv = std::iter::once("update".to_string()).chain(case.args.clone());
        let cli = UpdateCli::try_parse_from(argv).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        match update_request(&service, &cli.a) {
            Ok((path, body)) => {
                assert_eq!(
                    case.rc, 0,
                    "{}: berth accepted what docker refused",
                    case.name
                );
                let (docker_path, docker) = sent(&case, "/update").expect("an update request");
                assert_eq!(path, docker_path, "{}", case.name);
                if case.args.iter().any(|a| a == "--env-add") {
                    // docker's order after --env-add is a Go map's
                    let (body, docker) = (sorted_env(&body), sorted_env(docker.as_bytes()));
                    assert_same_body(&case.name, &body, &String::from_utf8_lossy(&docker));
                } else {
                    assert_same_body(&case.name, &body, &docker);
                }
            }
            Err(e) => assert_same_error(&case, e),
        }
    }
}

#[test]
fn with_registry_auth_sends_the_docker_clis_header() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let config = serde_json::json!({ "auths": {
        "https://index.docker.io/v1/": { "auth": b64("alice:s3cret") },
        "reg.example.com:5000": { "auth": b64("bob:pw") },
    }});
    std::fs::write(dir.path().join("config.json"), config.to_string()).expect("config");
    crate::config::set_dir(dir.path().to_path_buf());
    for case in cases(include_str!("testdata/service_create_auth.json")) {
        let image = case.args.last().cloned().unwrap_or_default();
        let sent = case.requests.iter().find(|r| {
            r["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("/services/create"))
        });
        let header = sent.and_then(|r| r["auth"].as_str()).unwrap_or_default();
        assert_eq!(
            super::services::registry_auth(&image),
            header,
            "{}",
            case.name
        );
    }
}
