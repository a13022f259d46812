//! Endpoint settings, MAC addresses, networking config per API version,
//! IPAM options, volume subpaths, storage options and the distribution
//! endpoint answering as dockerd does (issue #18; gaps the Docker Python
//! SDK's integration tests found).

mod common;

use common::{Daemon, code, raw_request, stderr, stdout};
use serde_json::{Value, json};

fn request(d: &Daemon, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let body = body.map(|b| b.to_string());
    let (status, _, raw) =
        raw_request(&d.sock, method, path, body.as_deref().map(str::as_bytes)).expect("request");
    let v = if raw.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&raw)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&raw).into()))
    };
    (status, v)
}

fn create(d: &Daemon, version: &str, name: &str, body: Value) -> (u16, Value) {
    request(
        d,
        "POST",
        &format!("/v{version}/containers/create?name={name}"),
        Some(body),
    )
}

fn inspect(d: &Daemon, version: &str, name: &str) -> Value {
    let (status, v) = request(d, "GET", &format!("/v{version}/containers/{name}/json"), None);
    assert_eq!(status, 200, "{v}");
    v
}

fn docker_ok(d: &Daemon, args: &[&str]) -> String {
    let o = d.docker(args);
    assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
    stdout(&o)
}

#[test]
fn endpoint_links_and_driver_opts_are_kept_and_links_resolve() {
    let d = Daemon::start();
    docker_ok(&d, &["network", "create", "app"]);
    let (status, v) = create(
        &d,
        "1.41",
        "web",
        json!({
            "Image": "busybox", "Cmd": ["sleep", "60"],
            "HostConfig": {"NetworkMode": "app"},
            "NetworkingConfig": {"EndpointsConfig": {"app": {
                "Links": ["upstream:bar"], "DriverOpts": {"k1": "v1"}
            }}}
        }),
    );
    assert_eq!(status, 201, "{v}");
    let ep = &inspect(&d, "1.41", "web")["NetworkSettings"]["Networks"]["app"];
    assert_eq!(ep["Links"], json!(["upstream:bar"]), "{ep}");
    assert_eq!(ep["DriverOpts"], json!({"k1": "v1"}), "{ep}");
    docker_ok(&d, &["start", "web"]);
    docker_ok(
        &d,
        &["run", "-d", "--name", "upstream", "--network", "app", "busybox", "sleep", "60"],
    );
    // the link's alias resolves for the linking container
    let o = d.docker(&["exec", "web", "nslookup", "bar"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));

    // and those given at `network connect`
    docker_ok(&d, &["network", "disconnect", "app", "web"]);
    docker_ok(
        &d,
        &[
            "network", "connect", "--link", "upstream:baz", "--driver-opt", "k2=v2", "app", "web",
        ],
    );
    let ep = &inspect(&d, "1.41", "web")["NetworkSettings"]["Networks"]["app"];
    assert_eq!(ep["Links"], json!(["upstream:baz"]), "{ep}");
    assert_eq!(ep["DriverOpts"], json!({"k2": "v2"}), "{ep}");
    let o = d.docker(&["exec", "web", "nslookup", "baz"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn an_old_clients_container_wide_mac_address_is_the_default_networks() {
    let d = Daemon::start();
    let mac = "02:42:ac:11:00:0a";
    let (status, v) = create(
        &d,
        "1.41",
        "m",
        json!({"Image": "busybox", "Cmd": ["sleep", "60"], "MacAddress": mac}),
    );
    assert_eq!(status, 201, "{v}");
    let before = inspect(&d, "1.41", "m");
    assert_eq!(before["Config"]["MacAddress"], mac, "{before}");
    assert_eq!(
        before["NetworkSettings"]["Networks"]["bridge"]["MacAddress"],
        mac
    );
    docker_ok(&d, &["start", "m"]);
    let after = inspect(&d, "1.41", "m");
    assert_eq!(after["NetworkSettings"]["MacAddress"], mac, "{after}");
    let o = docker_ok(&d, &["exec", "m", "cat", "/sys/class/net/eth0/address"]);
    assert_eq!(o.trim(), mac);

    // a network mode without a network of its own cannot take one
    let (status, v) = create(
        &d,
        "1.41",
        "h",
        json!({"Image": "busybox", "MacAddress": mac, "HostConfig": {"NetworkMode": "host"}}),
    );
    assert_eq!(status, 400, "{v}");
    assert_eq!(
        v["message"],
        "conflicting options: mac-address and the network mode"
    );
    // from 1.44 on it still works, with a warning
    let (status, v) = create(
        &d,
        "1.44",
        "w",
        json!({"Image": "busybox", "MacAddress": "02:42:ac:11:00:0b"}),
    );
    assert_eq!(status, 201, "{v}");
    assert!(
        v["Warnings"]
            .as_array()
            .is_some_and(|w| w.iter().any(|w| w
                .as_str()
                .is_some_and(|w| w.starts_with("The container-wide MacAddress field is now deprecated")))),
        "{v}"
    );
}

#[test]
fn a_created_container_shows_the_mac_address_network_connect_asked_for() {
    let d = Daemon::start();
    docker_ok(&d, &["network", "create", "macnet"]);
    docker_ok(&d, &["create", "--name", "c", "busybox", "sleep", "60"]);
    let mac = "02:42:ac:11:00:02";
    let (status, v) = request(
        &d,
        "POST",
        "/v1.41/networks/macnet/connect",
        Some(json!({"Container": "c", "EndpointConfig": {"MacAddress": mac}})),
    );
    assert_eq!(status, 200, "{v}");
    let ep = &inspect(&d, "1.41", "c")["NetworkSettings"]["Networks"]["macnet"];
    assert_eq!(ep["MacAddress"], mac, "{ep}");
    docker_ok(&d, &["start", "c"]);
    let ep = &inspect(&d, "1.41", "c")["NetworkSettings"]["Networks"]["macnet"];
    assert_eq!(ep["MacAddress"], mac, "{ep}");
}

#[test]
fn several_endpoints_at_create_need_api_1_44() {
    let d = Daemon::start();
    docker_ok(&d, &["network", "create", "n1"]);
    let body = json!({
        "Image": "busybox", "Cmd": ["true"],
        "HostConfig": {"NetworkMode": "n1"},
        "NetworkingConfig": {"EndpointsConfig": {
            "n1": {"Aliases": ["hello"]}, "bar": {"Aliases": ["test"]}
        }}
    });
    let (status, v) = create(&d, "1.41", "old", body.clone());
    assert_eq!(status, 400, "{v}");
    assert_eq!(
        v["message"],
        "Container cannot be created with multiple network endpoints: bar, n1"
    );
    assert_ne!(code(&d.docker(&["inspect", "old"])), 0);
    // from 1.44 on a network may be missing until the container starts
    let (status, v) = create(&d, "1.44", "new", body);
    assert_eq!(status, 201, "{v}");
    let o = d.docker(&["start", "new"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("bar"), "{}", stderr(&o));
}

#[test]
fn ipam_options_are_null_unless_the_creator_gave_some() {
    let d = Daemon::start_bare();
    docker_ok(&d, &["network", "create", "plain"]);
    docker_ok(&d, &["network", "create", "--ipam-opt", "foo=bar", "withopts"]);
    let (status, v) = request(&d, "GET", "/v1.41/networks/plain", None);
    assert_eq!(status, 200, "{v}");
    let ipam = v["IPAM"].as_object().expect("IPAM");
    assert_eq!(ipam.get("Options"), Some(&Value::Null), "{v}");
    let (_, v) = request(&d, "GET", "/v1.41/networks/withopts", None);
    assert_eq!(v["IPAM"]["Options"], json!({"foo": "bar"}), "{v}");
    let (_, list) = request(&d, "GET", "/v1.41/networks", None);
    let bridge = list
        .as_array()
        .and_then(|l| l.iter().find(|n| n["Name"] == "bridge"))
        .expect("bridge listed");
    assert_eq!(bridge["IPAM"].get("Options"), Some(&Value::Null), "{bridge}");
}
