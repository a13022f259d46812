//! Networks, the archive API and `berth registry` answering as dockerd and
//! the distribution spec do (issue #18): list routes with a trailing slash,
//! network references, IPv6 through a driver option, `docker cp` paths,
//! and a registry's unknown manifests.

mod common;

use common::{Daemon, code, raw_request, stderr, stdout};

fn message(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).expect("JSON error body");
    v["message"].as_str().unwrap_or_default().to_string()
}

fn network_id(d: &Daemon, name: &str) -> String {
    let o = d.docker(&["network", "inspect", "-f", "{{.Id}}", name]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    stdout(&o).trim().to_string()
}

#[test]
fn the_network_list_answers_with_a_trailing_slash_as_dockerd_does() {
    let d = Daemon::start_bare();
    for path in ["/networks/", "/v1.47/networks/", "/networks/?filters=%7B%7D"] {
        let (status, _, body) = raw_request(&d.sock, "GET", path, None).expect("request");
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        let list: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert!(
            list.as_array()
                .is_some_and(|l| l.iter().any(|n| n["Name"] == "bridge")),
            "{path}: {list}"
        );
    }
    // dockerd's mux has that one list route with a slash; the others 404
    for path in ["/containers/json/", "/images/json/", "/volumes/"] {
        let (status, _, _) = raw_request(&d.sock, "GET", path, None).expect("request");
        assert_eq!(status, 404, "{path}");
    }
}

#[test]
fn network_references_resolve_full_id_then_name_then_id_prefix() {
    let d = Daemon::start_bare();
    assert_eq!(code(&d.docker(&["network", "create", "alpha"])), 0);
    let alpha = network_id(&d, "alpha");
    // a network named after alpha's full id, and one after its short id
    let o = d.docker(&["network", "create", &alpha]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = d.docker(&["network", "create", &alpha[..12]]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let name_of = |term: &str| {
        let o = d.docker(&["network", "inspect", "-f", "{{.Name}}", term]);
        assert_eq!(code(&o), 0, "{term}: {}", stderr(&o));
        stdout(&o).trim().to_string()
    };
    // the full id wins over a name that spells it
    assert_eq!(name_of(&alpha), "alpha");
    // a name wins over an id prefix
    assert_eq!(name_of(&alpha[..12]), &alpha[..12]);
    // an id prefix that is no name finds the network
    assert_eq!(name_of(&alpha[..13]), "alpha");
    // removing by the full id removes alpha, not the network named so
    let o = d.docker(&["network", "rm", &alpha]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(name_of(&alpha), alpha);
}

#[test]
fn an_ambiguous_network_id_prefix_is_refused_with_dockerds_words() {
    let d = Daemon::start_bare();
    // networks until two ids share their first digit (17 ids must)
    let shared = (0..14).find_map(|i| {
        let o = d.docker(&["network", "create", &format!("n{i}")]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let o = d.docker(&["network", "ls", "-q", "--no-trunc"]);
        let ids: Vec<String> = stdout(&o).lines().map(String::from).collect();
        ids.iter()
            .map(|id| id[..1].to_string())
            .find(|c| ids.iter().filter(|id| id.starts_with(c.as_str())).count() > 1)
    });
    let prefix = shared.expect("two network ids with one first digit");
    let (status, _, body) =
        raw_request(&d.sock, "GET", &format!("/networks/{prefix}"), None).expect("request");
    assert_eq!(status, 400);
    assert!(
        message(&body).ends_with(&format!(
            "matches found based on ID prefix: network {prefix} is ambiguous"
        )),
        "{}",
        message(&body)
    );
    let o = d.docker(&["network", "rm", &prefix]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains(&format!("network {prefix} is ambiguous (")),
        "{}",
        stderr(&o)
    );
    let o = d.docker(&["network", "inspect", "nosuchnet"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("network nosuchnet not found"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn the_enable_ipv6_driver_option_asks_for_ipv6_as_the_flag_does() {
    let d = Daemon::start();
    let o = d.docker(&[
        "network",
        "create",
        "-o",
        "com.docker.network.enable_ipv6=true",
        "--subnet",
        "10.181.0.0/24",
        "--subnet",
        "fd00:181::/64",
        "v6opt",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = d.docker(&[
        "network",
        "inspect",
        "-f",
        "{{.EnableIPv6}} {{index .Options \"com.docker.network.enable_ipv6\"}}",
        "v6opt",
    ]);
    assert_eq!(stdout(&o).trim(), "true true", "{}", stderr(&o));
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "v6opt",
        "busybox",
        "ip",
        "-6",
        "addr",
        "show",
        "eth0",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("fd00:181::2/64"), "{}", stdout(&o));
    // the flag, when sent, wins over the option and drops it
    let body = br#"{"Name":"v6off","EnableIPv6":false,"Options":{"com.docker.network.enable_ipv6":"true"}}"#;
    let (status, _, body) =
        raw_request(&d.sock, "POST", "/networks/create", Some(body)).expect("request");
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let o = d.docker(&[
        "network",
        "inspect",
        "-f",
        "{{.EnableIPv6}} {{len .Options}}",
        "v6off",
    ]);
    assert_eq!(stdout(&o).trim(), "false 0", "{}", stderr(&o));
    let o = d.docker(&[
        "network",
        "create",
        "-o",
        "com.docker.network.enable_ipv6=yes",
        "v6bad",
    ]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("driver-opt \"com.docker.network.enable_ipv6\" is not a valid bool"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn the_registry_answers_manifest_unknown_for_a_reference_that_is_no_tag() {
    let d = Daemon::start_bare();
    let _registry = common::registry::Registry::start(&d, &[]);
    common::registry::Registry::put_image(&d, "fid/app", "v1", b"layer");
    let curl = |method: &str, path: &str| {
        let o = d.sh(&format!(
            "curl -s -X {method} -w '\\n%{{http_code}}' 'http://127.0.0.1:5000{path}'"
        ));
        let out = stdout(&o);
        let (body, status) = out.rsplit_once('\n').unwrap_or(("", &out));
        (status.trim().to_string(), body.to_string())
    };
    // what the distribution spec's conformance suite asks for
    for method in ["GET", "DELETE"] {
        let (status, body) = curl(method, "/v2/fid/app/manifests/.INVALID_MANIFEST_NAME");
        assert_eq!(status, "404", "{method}: {body}");
        assert!(body.contains("\"MANIFEST_UNKNOWN\""), "{method}: {body}");
    }
    let o = d.sh(
        "curl -s -I -o /dev/null -w '%{http_code}' \
         'http://127.0.0.1:5000/v2/fid/app/manifests/.INVALID_MANIFEST_NAME'",
    );
    assert_eq!(stdout(&o).trim(), "404", "HEAD");
    // a valid tag that is not there, and a repository that is not there
    let (status, body) = curl("GET", "/v2/fid/app/manifests/v2");
    assert_eq!(status, "404");
    assert!(body.contains("\"MANIFEST_UNKNOWN\""), "{body}");
    let (status, body) = curl("GET", "/v2/fid/none/manifests/.INVALID_MANIFEST_NAME");
    assert_eq!(status, "404");
    assert!(body.contains("\"NAME_UNKNOWN\""), "{body}");
    // the tag that is there still answers
    let (status, _) = curl("GET", "/v2/fid/app/manifests/v1");
    assert_eq!(status, "200");
}
