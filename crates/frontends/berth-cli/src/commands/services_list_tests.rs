//! `service ls`, `service ps` and `service inspect` output compared with
//! the docker CLI 28's for the same daemon answers (testdata/
//! service_list.json: the answers, the time of the capture, and what
//! docker printed).

use std::collections::HashMap;

use serde_json::Value;

use super::services_list::{
    SERVICE_HEADERS_FOR_TESTS as HEADERS, SERVICE_TABLE_FOR_TESTS as TABLE, list_rows,
};
use super::services_pretty::render_pretty;
use super::services_update::go_order_service;
use super::tasks_table::{named_tasks, render_table, task_rows};
use crate::output::{format_rows, json_indent};

fn data() -> Value {
    serde_json::from_str(include_str!("testdata/service_list.json")).expect("fixture is JSON")
}

fn stdout_of(d: &Value, name: &str) -> String {
    d["cases"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == name)
        .and_then(|c| c["stdout"].as_str())
        .unwrap_or_else(|| panic!("no case {name}"))
        .to_string()
}

fn now(d: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(d["now"].as_str().unwrap_or_default())
        .expect("capture time")
        .with_timezone(&chrono::Utc)
}

fn services(d: &Value) -> Vec<Value> {
    d["services"].as_array().cloned().unwrap_or_default()
}

#[test]
fn ls_prints_dockers_table_and_json() {
    let d = data();
    let rows = list_rows(services(&d));
    assert_eq!(
        format_rows(TABLE, &rows, HEADERS).unwrap(),
        stdout_of(&d, "ls")
    );
    assert_eq!(
        format_rows("json", &rows, HEADERS).unwrap(),
        stdout_of(&d, "ls_json")
    );
}

fn names(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn ps_prints_dockers_task_table() {
    let d = data();
    let tasks = d["tasks"].as_array().cloned().unwrap_or_default();
    let svcs = names(&[("svcid1234567890abcdef", "web")]);
    let nodes = names(&[("node1id", "host-one"), ("node2id", "named")]);
    let named = named_tasks(tasks.clone(), &svcs);
    let rows = task_rows(&named, &nodes, true, true, now(&d));
    assert_eq!(render_table(&rows), stdout_of(&d, "ps"));
    let rows = task_rows(&named, &nodes, true, false, now(&d));
    assert_eq!(render_table(&rows), stdout_of(&d, "ps_notrunc"));
    let unresolved = named_tasks(tasks, &HashMap::new());
    let rows = task_rows(&unresolved, &HashMap::new(), true, true, now(&d));
    assert_eq!(render_table(&rows), stdout_of(&d, "ps_noresolve"));
    let rows = task_rows(&named, &nodes, false, false, now(&d));
    assert_eq!(
        format_rows("{{.ID}}", &rows, &[]).unwrap(),
        stdout_of(&d, "ps_q")
    );
}

#[test]
fn inspect_prints_dockers_json_and_pretty_text() {
    let d = data();
    let web = services(&d).into_iter().next().expect("a service");
    // the service was captured with ServiceStatus; inspect shows it too
    let nets = names(&[("netid1234", "mynet")]);
    let pretty = render_pretty(&web, &nets, now(&d)).unwrap();
    assert_eq!(pretty, stdout_of(&d, "inspect_pretty"));
    let mut web = web;
    go_order_service(&mut web);
    let raw = format!("{}\n", json_indent(&Value::Array(vec![web])).unwrap());
    assert_eq!(raw, stdout_of(&d, "inspect"));
}

#[test]
fn a_task_listed_twice_is_indented_on_both_rows_as_in_docker() {
    let d = data();
    let task = d["tasks"][0].clone();
    let svcs = names(&[("svcid1234567890abcdef", "web")]);
    let named = named_tasks(vec![task.clone(), task], &svcs);
    let rows = task_rows(&named, &HashMap::new(), true, true, now(&d));
    let shown: Vec<&str> = rows
        .iter()
        .map(|r| r["Name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(shown, vec![" \\_ web.1", " \\_ web.1"]);
}
