//! `berth stack`: the decisions behind deploy, rm and ls, without a
//! daemon. The texts are the docker CLI 28's (cli/command/stack/swarm)
//! and the depends_on lines berth's own.

use std::collections::BTreeSet;
use std::path::Path;

use berth_compose::{ComposeSource, DependencyCondition, Env, Project, ServiceCreate, convert};
use clap::Parser;
use serde_json::{Value, json};

use super::stack::{StackCommand, compose_file_names};
use super::stack_deploy::exact_ids;
use super::stack_plan::{
    ResolveImage, ServiceAction, check_stack_name, descope, external_network_error,
    networks_to_create, service_action, services_to_prune, stack_filter, stack_filter_with,
    stack_rows, stacks,
};
use super::stack_rm::{failure_text, is_terminal, removing_line};
use super::stack_wait::{Readiness, dependency_waits, last_task_state, readiness};
use crate::{Cli, Command};

const FILE: &str = r#"
services:
  web:
    image: nginx
    depends_on:
      db:
        condition: service_healthy
      migrate:
        condition: service_completed_successfully
  db:
    image: postgres:16
    healthcheck:
      test: ["CMD", "pg_isready"]
  migrate:
    image: app
    depends_on: [db]
    deploy:
      restart_policy:
        condition: none
"#;

fn project() -> Project {
    let source = ComposeSource::new("f.yml", Path::new("/tmp"), FILE.as_bytes().to_vec());
    berth_compose::load(&[source], &Env::from_vars([("HOME", "/root")]))
        .expect("the file loads")
        .project
}

fn converted(name: &str) -> ServiceCreate {
    convert(&project(), "st")
        .expect("converts")
        .services
        .into_iter()
        .find(|s| s.name == name)
        .expect("service in the file")
}

fn service(name: &str, id: &str, labels: Value) -> Value {
    json!({
        "ID": id,
        "Version": {"Index": 7},
        "Spec": {
            "Name": name,
            "Labels": labels,
            "TaskTemplate": {
                "ContainerSpec": {"Image": "nginx:latest@sha256:abc"},
                "ForceUpdate": 3
            }
        }
    })
}

fn stack(args: &[&str]) -> StackCommand {
    let mut argv = vec!["berth", "stack"];
    argv.extend_from_slice(args);
    match Cli::try_parse_from(argv).expect("parses").command {
        Command::Stack(a) => a.command,
        other => panic!("not a stack command: {other:?}"),
    }
}

#[test]
fn flags_and_aliases_are_dockers() {
    assert!(matches!(
        stack(&["up", "-c", "a.yml", "ns"]),
        StackCommand::Deploy(_)
    ));
    assert!(matches!(stack(&["list"]), StackCommand::Ls(_)));
    assert!(matches!(stack(&["remove", "ns"]), StackCommand::Rm(_)));
    assert!(matches!(stack(&["down", "ns"]), StackCommand::Rm(_)));
    let StackCommand::Deploy(d) = stack(&[
        "--orchestrator",
        "swarm",
        "deploy",
        "-c",
        "a.yml,b.yml",
        "-c",
        "-",
        "--prune",
        "--resolve-image",
        "never",
        "--with-registry-auth",
        "-d=false",
        "-q",
        "ns",
    ]) else {
        panic!("deploy");
    };
    assert_eq!(
        compose_file_names(&d.compose_files).expect("names"),
        ["a.yml", "b.yml", "-"]
    );
    assert!(d.prune && d.with_registry_auth && d.quiet);
    assert_eq!(d.detach.as_deref(), Some("false"));
    assert_eq!(d.resolve_image, "never");
    assert_eq!(d.wait_timeout, "5m");
    let StackCommand::Deploy(d) = stack(&["deploy", "-c", "a.yml", "ns"]) else {
        panic!("deploy");
    };
    assert_eq!(d.detach, None, "the detach note depends on -d being absent");
    assert_eq!(d.resolve_image, "always");
}

#[test]
fn names_and_flag_values_are_checked_with_dockers_words() {
    assert!(check_stack_name("ns").is_ok());
    assert_eq!(
        check_stack_name(" '\" ").unwrap_err(),
        r#"invalid stack name: " '\" ""#
    );
    assert_eq!(
        ResolveImage::parse("sometimes").unwrap_err(),
        "Invalid option sometimes for flag --resolve-image"
    );
    assert_eq!(ResolveImage::parse("changed"), Ok(ResolveImage::Changed));
}

#[test]
fn stack_listings_filter_by_the_namespace_label() {
    assert_eq!(
        stack_filter("st"),
        r#"{"label":{"com.docker.stack.namespace=st":true}}"#
    );
    assert_eq!(
        stack_filter_with("st", &[("desired-state".into(), "running".into())]),
        r#"{"desired-state":{"running":true},"label":{"com.docker.stack.namespace=st":true}}"#
    );
    assert_eq!(descope("st", "st_web"), "web");
    assert_eq!(descope("st", "other_web"), "other_web");
}

#[test]
fn prune_removes_what_the_files_dropped_in_name_order() {
    let existing = [
        service("st_web", "1", json!({})),
        service("st_zeta", "2", json!({})),
        service("st_alpha", "3", json!({})),
    ];
    let keep: BTreeSet<&str> = ["web"].into();
    let gone: Vec<Value> = services_to_prune("st", &existing, &keep)
        .iter()
        .map(|s| s["Spec"]["Name"].clone())
        .collect();
    assert_eq!(gone, ["st_alpha", "st_zeta"]);
}

#[test]
fn only_missing_networks_are_created() {
    let spec = convert(&project(), "st").expect("converts");
    assert_eq!(spec.networks.len(), 1);
    assert_eq!(spec.networks[0].name, "st_default");
    assert_eq!(networks_to_create(&spec.networks, &[]).len(), 1);
    let existing = [json!({"Name": "st_default", "Id": "n1"})];
    assert!(networks_to_create(&spec.networks, &existing).is_empty());
}

#[test]
fn external_networks_must_exist_with_swarm_scope() {
    assert_eq!(
        external_network_error("outside", None).as_deref(),
        Some(
            "network \"outside\" is declared as external, but could not be found. You need to create a swarm-scoped network before the stack is deployed"
        )
    );
    assert_eq!(
        external_network_error("outside", Some(&json!({"Scope": "local"}))).as_deref(),
        Some(
            "network \"outside\" is declared as external, but it is not in the right scope: \"local\" instead of \"swarm\""
        )
    );
    assert_eq!(
        external_network_error("outside", Some(&json!({"Scope": "swarm"}))),
        None
    );
}

#[test]
fn a_new_service_is_created_and_resolved_unless_never() {
    let web = converted("web");
    let action = service_action(&web, None, ResolveImage::Changed);
    assert_eq!(action.announcement("st_web"), "Creating service st_web");
    assert!(action.query_registry());
    assert!(!service_action(&web, None, ResolveImage::Never).query_registry());
    let ServiceAction::Create { spec, .. } = action else {
        panic!("create");
    };
    assert_eq!(spec, web.spec, "the body is the converted spec");
}

#[test]
fn an_update_keeps_force_update_and_the_pinned_image_when_unchanged() {
    let web = converted("web");
    let labels = json!({"com.docker.stack.image": "nginx", "com.docker.stack.namespace": "st"});
    let current = service("st_web", "svc1", labels);
    for resolve in [ResolveImage::Never, ResolveImage::Changed] {
        let action = service_action(&web, Some(&current), resolve);
        assert_eq!(
            action.announcement("st_web"),
            "Updating service st_web (id: svc1)"
        );
        assert!(!action.query_registry());
        let ServiceAction::Update { path, spec, .. } = action else {
            panic!("update");
        };
        assert_eq!(path, "/services/svc1/update?version=7");
        assert_eq!(
            spec["TaskTemplate"]["ContainerSpec"]["Image"],
            "nginx:latest@sha256:abc"
        );
        assert_eq!(spec["TaskTemplate"]["ForceUpdate"], 3);
        // only those two fields differ from the converted spec
        let mut expected = web.spec.clone();
        expected["TaskTemplate"]["ContainerSpec"]["Image"] = json!("nginx:latest@sha256:abc");
        expected["TaskTemplate"]["ForceUpdate"] = json!(3);
        assert_eq!(spec, expected);
    }
    let action = service_action(&web, Some(&current), ResolveImage::Always);
    assert!(action.query_registry());
    let ServiceAction::Update { spec, .. } = action else {
        panic!("update");
    };
    assert_eq!(
        spec["TaskTemplate"]["ContainerSpec"]["Image"],
        "nginx:latest"
    );
    assert_eq!(spec["TaskTemplate"]["ForceUpdate"], 3);
}

#[test]
fn a_changed_image_is_resolved_or_sent_as_written() {
    let web = converted("web");
    let labels = json!({"com.docker.stack.image": "nginx:1.25"});
    let current = service("st_web", "svc1", labels);
    let changed = service_action(&web, Some(&current), ResolveImage::Changed);
    assert!(changed.query_registry());
    let never = service_action(&web, Some(&current), ResolveImage::Never);
    assert!(!never.query_registry());
    let ServiceAction::Update { spec, .. } = never else {
        panic!("update");
    };
    assert_eq!(
        spec["TaskTemplate"]["ContainerSpec"]["Image"],
        "nginx:latest"
    );
}

#[test]
fn references_resolve_by_exact_name_only() {
    let listed = [
        json!({"ID": "a", "Spec": {"Name": "st_pw2"}}),
        json!({"ID": "b", "Spec": {"Name": "st_pw"}}),
    ];
    let ids = exact_ids(&listed);
    assert_eq!(ids.get("st_pw").map(String::as_str), Some("b"));
    assert_eq!(ids.get("st_p"), None);
}

#[test]
fn stacks_are_counted_and_sorted_naturally() {
    let ns = |n: &str| json!({"com.docker.stack.namespace": n});
    let services = [
        service("s10_a", "1", ns("s10")),
        service("s9_a", "2", ns("s9")),
        service("s9_b", "3", ns("s9")),
    ];
    let listed = stacks(&services).expect("labelled");
    assert_eq!(listed, [("s9".to_string(), 2), ("s10".to_string(), 1)]);
    assert_eq!(
        stack_rows(&listed)[0],
        json!({"Name": "s9", "Services": "2"})
    );
    let unlabelled = [service("x", "id9", json!({}))];
    assert_eq!(
        stacks(&unlabelled).unwrap_err(),
        "cannot get label com.docker.stack.namespace for service id9"
    );
}

#[test]
fn depends_on_waits_name_the_stack_services_and_conditions() {
    let p = project();
    assert_eq!(
        berth_compose::deploy_order(&p).expect("order"),
        ["db", "migrate", "web"]
    );
    let waits = dependency_waits(&p, "st", "web");
    assert_eq!(waits.len(), 2);
    assert_eq!(waits[0].condition, DependencyCondition::Healthy);
    assert_eq!(
        waits[0].waiting_line(),
        "Waiting for service st_db to be healthy (st_web depends on it)"
    );
    assert_eq!(waits[0].done_line(), "Service st_db is healthy");
    assert_eq!(
        waits[1].waiting_line(),
        "Waiting for service st_migrate to be complete (st_web depends on it)"
    );
    let started = dependency_waits(&p, "st", "migrate");
    assert_eq!(
        started[0].waiting_line(),
        "Waiting for service st_db to be running (st_migrate depends on it)"
    );
    assert_eq!(
        started[0].failure("failed: task: non-zero exit (1)"),
        "service st_db did not become running: failed: task: non-zero exit (1)"
    );
    assert!(dependency_waits(&p, "st", "db").is_empty());
}

fn dep_service(replicas: u64, update_state: Option<&str>) -> Value {
    let mut s = json!({
        "ID": "s1",
        "Spec": {
            "Name": "st_db",
            "Mode": {"Replicated": {"Replicas": replicas}},
            "TaskTemplate": {"ContainerSpec": {"Image": "postgres:16"}, "ForceUpdate": 0}
        }
    });
    if let Some(state) = update_state {
        s["UpdateStatus"] = json!({"State": state, "Message": "update paused due to failure"});
    }
    s
}

fn task(state: &str, desired: &str, image: &str, at: &str) -> Value {
    json!({
        "Spec": {"ContainerSpec": {"Image": image}, "ForceUpdate": 0},
        "DesiredState": desired,
        "Status": {"State": state, "Timestamp": at, "Err": if state == "failed" { "task: non-zero exit (1)" } else { "" }}
    })
}

#[test]
fn a_dependency_is_ready_when_its_current_tasks_run() {
    let s = dep_service(2, None);
    let started = DependencyCondition::Started;
    let one = [task("running", "running", "postgres:16", "1")];
    assert_eq!(readiness(&s, &one, started), Readiness::Waiting);
    let two = [
        task("running", "running", "postgres:16", "1"),
        task("running", "running", "postgres:16", "2"),
    ];
    assert_eq!(readiness(&s, &two, started), Readiness::Ready);
    // tasks of the previous spec still running right after an update
    let stale = [
        task("running", "running", "postgres:15", "1"),
        task("running", "running", "postgres:15", "2"),
    ];
    assert_eq!(readiness(&s, &stale, started), Readiness::Waiting);
    let stopping = [
        task("running", "shutdown", "postgres:16", "1"),
        task("running", "running", "postgres:16", "2"),
    ];
    assert_eq!(readiness(&s, &stopping, started), Readiness::Waiting);
    assert_eq!(
        readiness(&dep_service(0, None), &[], started),
        Readiness::Ready
    );
}

#[test]
fn completion_and_paused_updates() {
    let s = dep_service(1, None);
    let done = DependencyCondition::CompletedSuccessfully;
    let running = [task("running", "running", "postgres:16", "1")];
    assert_eq!(readiness(&s, &running, done), Readiness::Waiting);
    let complete = [task("complete", "shutdown", "postgres:16", "1")];
    assert_eq!(readiness(&s, &complete, done), Readiness::Ready);
    assert_eq!(
        readiness(&dep_service(1, Some("paused")), &running, done),
        Readiness::Failed("update paused: update paused due to failure".into())
    );
}

#[test]
fn a_timeout_reports_the_last_task() {
    let tasks = [
        task("failed", "shutdown", "postgres:16", "2024-01-01T00:00:02Z"),
        task("running", "running", "postgres:16", "2024-01-01T00:00:01Z"),
    ];
    assert_eq!(last_task_state(&tasks), "failed: task: non-zero exit (1)");
    assert_eq!(last_task_state(&tasks[1..]), "running");
    assert_eq!(last_task_state(&[]), "no task was created");
}

#[test]
fn removal_texts_are_dockers() {
    assert_eq!(
        removing_line("service", "st_web"),
        "Removing service st_web"
    );
    assert_eq!(
        failure_text("network", "n1", "Error response from daemon: in use"),
        "Failed to remove network n1: Error response from daemon: in use"
    );
    assert!(is_terminal("shutdown") && is_terminal("rejected"));
    assert!(!is_terminal("running"));
}
