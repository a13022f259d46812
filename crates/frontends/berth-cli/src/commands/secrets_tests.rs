//! `secret`, `config` and the `--secret`/`--config` flags of `service
//! create|update` compared with the docker CLI 28 for the same arguments
//! and daemon answers: testdata/secrets_cli.json holds what docker sent,
//! was answered and printed (made by testdata/capture_secrets.py with a
//! fake API 1.47 daemon). Each case is replayed: berth must make the
//! same requests in the same order, send the same bodies, and print the
//! same output, errors and exit status.

use clap::Parser;
use serde_json::Value;

use super::secrets_common::{
    CONFIG, Kind, SECRET, inspect_format, list_rows, ls_format, ls_path, object_path,
    render_inspect,
};
use super::services::{body_of, tag_image, update_path, update_query};
use super::services_refs::{CONFIG_REFS, FileRef, RefKind, SECRET_REFS, apply, lookup_path};
use super::services_spec::check_common;
use super::services_update::{check_update_flags, merged_spec};
use crate::output::format_rows;
use crate::{Cli, Command, ConfigCommand, SecretCommand, ServiceCommand, StatusError};

fn fixture() -> Value {
    serde_json::from_str(include_str!("testdata/secrets_cli.json")).expect("fixture is JSON")
}

fn now(d: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(d["now"].as_str().unwrap_or_default())
        .expect("capture time")
        .with_timezone(&chrono::Utc)
}

struct Case {
    name: String,
    args: Vec<String>,
    stdin: String,
    rc: i32,
    stdout: String,
    stderr: String,
    requests: Vec<Value>,
}

fn cases(d: &Value) -> Vec<Case> {
    let s = |c: &Value, k: &str| c[k].as_str().unwrap_or_default().to_string();
    d["cases"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| Case {
            name: s(c, "name"),
            args: serde_json::from_value(c["args"].clone()).unwrap_or_default(),
            stdin: s(c, "stdin"),
            rc: c["rc"].as_i64().unwrap_or(0) as i32,
            stdout: s(c, "stdout"),
            stderr: s(c, "stderr"),
            requests: c["requests"].as_array().cloned().unwrap_or_default(),
        })
        .collect()
}

/// The files the cases name: FILE holds "hello\n", EMPTY nothing, DIR is
/// a directory.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("pw.txt"), "hello\n").expect("file");
        std::fs::write(dir.path().join("empty.txt"), "").expect("file");
        Files { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    fn real(&self, arg: &str) -> String {
        match arg {
            "FILE" => self.path("pw.txt"),
            "EMPTY" => self.path("empty.txt"),
            "DIR" => self.dir.path().to_string_lossy().into_owned(),
            other => other.to_string(),
        }
    }

    /// A message with the placeholders back in place of the paths.
    fn placeholders(&self, text: &str) -> String {
        text.replace(&self.path("pw.txt"), "FILE")
            .replace(&self.path("empty.txt"), "EMPTY")
            .replace(&*self.dir.path().to_string_lossy(), "DIR")
    }
}

/// The daemon's side of a case: berth's requests must be docker's, in
/// order; each gets docker's answer.
struct Replay<'a> {
    case: &'a Case,
    next: usize,
}

impl Replay<'_> {
    fn call(&mut self, method: &str, path: &str, body: Option<&[u8]>) -> Result<Value, String> {
        let name = &self.case.name;
        let Some(r) = self.case.requests.get(self.next) else {
            panic!("{name}: berth sends {method} {path}, docker sent no more requests");
        };
        self.next += 1;
        let sent = r["path"].as_str().unwrap_or_default();
        let sent = sent.strip_prefix("/v1.47").unwrap_or(sent);
        assert_eq!(
            (r["method"].as_str().unwrap_or_default(), sent),
            (method, path),
            "{name}: request {}",
            self.next
        );
        if let Some(b) = body {
            assert_same_body(self.case, b, r["body"].as_str().unwrap_or_default());
        }
        let status = r["status"].as_u64().unwrap_or(0);
        if (200..300).contains(&status) {
            return Ok(r["response"].clone());
        }
        let msg = r["response"]["message"].as_str().unwrap_or_default();
        Err(format!("Error response from daemon: {msg}"))
    }

    fn done(&self) {
        assert_eq!(
            self.next,
            self.case.requests.len(),
            "{}: docker sent more requests",
            self.case.name
        );
    }
}

/// docker orders the references it resolves as a Go map does: with two
/// or more new ones of a kind, both sides are compared sorted by target.
fn sorted_refs(case: &Case, body: &str) -> String {
    let mut v: Value = serde_json::from_str(body).unwrap_or_default();
    for (flag, key) in [("--secret", "Secrets"), ("--config", "Configs")] {
        if case.args.iter().filter(|a| a.starts_with(flag)).count() < 2 {
            continue;
        }
        if let Some(refs) = v["TaskTemplate"]["ContainerSpec"][key].as_array_mut() {
            refs.sort_by_key(|r| r["File"]["Name"].to_string());
        }
    }
    String::from_utf8_lossy(&body_of(&v)).into_owned()
}

fn assert_same_body(case: &Case, mine: &[u8], docker: &str) {
    let mine = String::from_utf8_lossy(mine);
    if mine == docker {
        return;
    }
    assert_eq!(
        sorted_refs(case, &mine),
        sorted_refs(case, docker),
        "{}: bodies differ",
        case.name
    );
}

/// What a command printed, and its failure (exit status, message).
struct Outcome {
    stdout: String,
    failure: Option<(i32, String)>,
}

impl Outcome {
    fn ok(stdout: String) -> Self {
        Outcome {
            stdout,
            failure: None,
        }
    }

    fn failed(stdout: String, e: anyhow::Error) -> Self {
        let failure = match e.downcast_ref::<StatusError>() {
            Some(s) => (s.code, s.message.clone()),
            None => (1, e.to_string()),
        };
        Outcome {
            stdout,
            failure: Some(failure),
        }
    }

    fn daemon(stdout: String, message: String) -> Self {
        Outcome {
            stdout,
            failure: Some((1, message)),
        }
    }
}

fn run_create(kind: &Kind, body: anyhow::Result<Value>, replay: &mut Replay) -> Outcome {
    let body = match body {
        Ok(b) => b,
        Err(e) => return Outcome::failed(String::new(), e),
    };
    let path = format!("/{}/create", kind.plural);
    match replay.call("POST", &path, Some(&body_of(&body))) {
        Ok(reply) => Outcome::ok(format!("{}\n", reply["ID"].as_str().unwrap_or_default())),
        Err(e) => Outcome::daemon(String::new(), e),
    }
}

fn run_ls(
    kind: &Kind,
    a: &super::secrets_common::LsArgs,
    now: chrono::DateTime<chrono::Utc>,
    replay: &mut Replay,
) -> Outcome {
    let path = match ls_path(kind, a) {
        Ok(p) => p,
        Err(e) => return Outcome::failed(String::new(), e),
    };
    let listed = replay.call("GET", &path, None).expect("a listing");
    let rows = list_rows(kind, listed.as_array().cloned().unwrap_or_default(), now);
    let format = ls_format(kind, a, None);
    Outcome::ok(format_rows(&format, &rows, kind.headers).expect("rows render"))
}

fn run_inspect(
    kind: &Kind,
    a: &super::secrets_common::InspectArgs,
    replay: &mut Replay,
) -> Outcome {
    let format = match inspect_format(kind, a) {
        Ok(f) => f,
        Err(e) => return Outcome::failed(String::new(), e),
    };
    let mut found = Vec::new();
    for name in &a.names {
        let got = replay.call("GET", &object_path(kind, name), None);
        let failed = got.is_err();
        found.push(got);
        if failed && format == "pretty" {
            break;
        }
    }
    let (out, err) = render_inspect(kind, &format, &found);
    match err {
        Some(e) => Outcome::daemon(out, e),
        None => Outcome::ok(out),
    }
}

fn run_rm(kind: &Kind, names: &[String], replay: &mut Replay) -> Outcome {
    if names.is_empty() {
        let u = &kind.rm;
        let e = super::services::args_error("at least 1 argument", u.path, u.line);
        return Outcome::failed(String::new(), e);
    }
    let mut out = String::new();
    let mut errors = Vec::new();
    for name in names {
        match replay.call("DELETE", &object_path(kind, name), None) {
            Ok(_) => out.push_str(&format!("{name}\n")),
            Err(e) => errors.push(e),
        }
    }
    match errors.is_empty() {
        true => Outcome::ok(out),
        false => Outcome::daemon(out, errors.join("\n")),
    }
}

/// ParseSecrets/ParseConfigs against the replayed listing.
fn resolved(kind: &RefKind, refs: &[FileRef], replay: &mut Replay) -> anyhow::Result<Vec<Value>> {
    let Some(path) = lookup_path(kind, refs)? else {
        return Ok(Vec::new());
    };
    let listed = replay
        .call("GET", &path, None)
        .map_err(anyhow::Error::msg)?;
    super::services_refs::resolve(kind, refs, &listed)
}

fn run_service_create(
    a: &super::services::CreateArgs,
    replay: &mut Replay,
) -> anyhow::Result<Outcome> {
    let mut plan = super::services::create_plan(a)?;
    let refs = super::services_refs::Resolved {
        secrets: resolved(&SECRET_REFS, &plan.lists.secrets, replay)?,
        configs: resolved(&CONFIG_REFS, &plan.lists.configs, replay)?,
    };
    apply(&mut plan.spec, &[], &[], refs);
    tag_image(&mut plan.spec);
    let reply = replay
        .call("POST", "/services/create", Some(&body_of(&plan.spec)))
        .map_err(anyhow::Error::msg)?;
    Ok(Outcome::ok(format!(
        "{}\n",
        reply["ID"].as_str().unwrap_or_default()
    )))
}

fn run_service_update(
    a: &super::services::UpdateArgs,
    replay: &mut Replay,
) -> anyhow::Result<Outcome> {
    let usage =
        |e: super::services_flags::FlagError| e.with_usage(&super::services_flags::UPDATE_USAGE);
    let checked = check_common(&a.common).map_err(usage)?;
    let values = check_update_flags(&a.update).map_err(usage)?;
    let name = a.service.first().cloned().unwrap_or_default();
    let path = format!("/services/{name}?insertDefaults=false");
    let service = replay
        .call("GET", &path, None)
        .map_err(anyhow::Error::msg)?;
    if values.rollback && super::services::other_flags_given(a) {
        return Err(crate::status(
            1,
            "other flags may not be combined with --rollback",
        ));
    }
    let mut spec = merged_spec(&service, &a.common, &a.update, &values, &checked)?;
    let refs = super::services_refs::Resolved {
        secrets: resolved(&SECRET_REFS, &values.secrets_add, replay)?,
        configs: resolved(&CONFIG_REFS, &values.configs_add, replay)?,
    };
    apply(&mut spec, &a.update.secret_rm, &a.update.config_rm, refs);
    tag_image(&mut spec);
    let path = update_path(
        &service,
        &update_query(checked.registry_auth, values.rollback),
    );
    replay
        .call("POST", &path, Some(&body_of(&spec)))
        .map_err(anyhow::Error::msg)?;
    Ok(Outcome::ok(format!("{name}\n")))
}

fn run(case: &Case, files: &Files, d: &Value) -> Outcome {
    let args = case.args.iter().map(|a| files.real(a));
    let cli = Cli::try_parse_from(std::iter::once("berth".to_string()).chain(args))
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let mut replay = Replay { case, next: 0 };
    let stdin = &mut case.stdin.as_bytes();
    let outcome = match cli.command {
        Command::Secret(SecretCommand::Create(a)) => run_create(
            &SECRET,
            super::secrets::create_request(&a, stdin),
            &mut replay,
        ),
        Command::Config(ConfigCommand::Create(a)) => run_create(
            &CONFIG,
            super::configs::create_request(&a, stdin),
            &mut replay,
        ),
        Command::Secret(SecretCommand::Ls(a)) => run_ls(&SECRET, &a, now(d), &mut replay),
        Command::Config(ConfigCommand::Ls(a)) => run_ls(&CONFIG, &a, now(d), &mut replay),
        Command::Secret(SecretCommand::Inspect(a)) => run_inspect(&SECRET, &a, &mut replay),
        Command::Config(ConfigCommand::Inspect(a)) => run_inspect(&CONFIG, &a, &mut replay),
        Command::Secret(SecretCommand::Rm(a)) => run_rm(&SECRET, &a.names, &mut replay),
        Command::Config(ConfigCommand::Rm(a)) => run_rm(&CONFIG, &a.names, &mut replay),
        Command::Service(ServiceCommand::Create(a)) => run_service_create(&a, &mut replay)
            .unwrap_or_else(|e| Outcome::failed(String::new(), e)),
        Command::Service(ServiceCommand::Update(a)) => run_service_update(&a, &mut replay)
            .unwrap_or_else(|e| Outcome::failed(String::new(), e)),
        _ => panic!("{}: no replay for this command", case.name),
    };
    replay.done();
    outcome
}

/// docker joins `.Labels` in a Go map's (random) order; berth sorts.
fn labels_sorted(docker: &str) -> String {
    docker.replace("tier=,env=prod", "env=prod,tier=")
}

#[test]
fn every_case_replays_as_docker_ran_it() {
    let d = fixture();
    let files = Files::new();
    let mut replayed = 0;
    for case in cases(&d) {
        if case.name.starts_with("service_inspect") {
            continue;
        }
        let got = run(&case, &files, &d);
        assert_eq!(
            got.stdout,
            labels_sorted(&case.stdout),
            "{}: stdout",
            case.name
        );
        let (rc, stderr) = match &got.failure {
            Some((rc, msg)) => (*rc, format!("{}\n", files.placeholders(msg))),
            None => (0, String::new()),
        };
        assert_eq!(stderr, case.stderr, "{}: stderr", case.name);
        assert_eq!(rc, case.rc, "{}: exit status", case.name);
        replayed += 1;
    }
    assert!(replayed > 70, "only {replayed} cases");
}

#[test]
fn the_pretty_service_view_lists_secrets_and_configs_as_docker() {
    let d = fixture();
    let case = cases(&d)
        .into_iter()
        .find(|c| c.name == "service_inspect_pretty")
        .expect("case");
    let text = super::services_pretty::render_pretty(&d["service2"], &Default::default(), now(&d))
        .expect("renders");
    assert_eq!(text, case.stdout);
}

#[test]
fn a_rotation_asks_for_the_version_read_and_prints_the_services() {
    let current =
        serde_json::json!({ "ID": "kxq8x2m4w7zv1n3b5c6d9e0fa", "Version": { "Index": 11 } });
    let (path, body) = super::secrets::rotate_request(&current, b"new\n");
    assert_eq!(path, "/secrets/kxq8x2m4w7zv1n3b5c6d9e0fa/rotate?version=11");
    assert_eq!(String::from_utf8_lossy(&body), "{\"Data\":\"bmV3Cg==\"}\n");
    let reply = serde_json::json!({
        "ID": "kxq8x2m4w7zv1n3b5c6d9e0fa", "Version": { "Index": 30 },
        "Services": [{ "ID": "svc1", "Name": "web" }, { "ID": "svc2", "Name": "db" }],
    });
    assert_eq!(
        super::secrets::rotate_lines(&reply),
        vec![
            "kxq8x2m4w7zv1n3b5c6d9e0fa",
            "Updating service web (id: svc1)",
            "Updating service db (id: svc2)",
        ]
    );
}
