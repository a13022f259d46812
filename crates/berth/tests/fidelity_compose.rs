//! What docker-compose v1 (1.29.2, API 1.38) relies on, answered as
//! dockerd 20.10 does (issue #18, /work/compose measurements): the short
//! id alias appears when the endpoint joins, the `enable_ipv6` driver
//! option alone makes no IPv6 network, `rmi -f` deletes an image only
//! stopped containers use, and a MAC address asked for survives compose's
//! reconnect of the container's own network.

mod common;

use common::{Daemon, code, stderr, stdout};
use serde_json::{Value, json};

fn request(d: &Daemon, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    common::json_request(d, method, path, body)
}

fn docker_ok(d: &Daemon, args: &[&str]) -> String {
    let o = d.docker(args);
    assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
    stdout(&o)
}

fn aliases(d: &Daemon, version: &str, name: &str, net: &str) -> Value {
    let (status, v) = request(
        d,
        "GET",
        &format!("/v{version}/containers/{name}/json"),
        None,
    );
    assert_eq!(status, 200, "{v}");
    v["NetworkSettings"]["Networks"][net]["Aliases"].clone()
}

#[test]
fn the_short_id_alias_comes_when_the_endpoint_joins() {
    let d = Daemon::start();
    docker_ok(&d, &["network", "create", "appnet"]);
    docker_ok(&d, &["network", "create", "other"]);
    let body = json!({
        "Image": "busybox", "Cmd": ["sleep", "60"],
        "HostConfig": {"NetworkMode": "appnet"},
        "NetworkingConfig": {"EndpointsConfig": {"appnet": {"Aliases": ["app"], "IPAMConfig": {}}}}
    });
    let (status, v) = request(&d, "POST", "/v1.38/containers/create?name=web", Some(body));
    assert_eq!(status, 201, "{v}");
    let id = v["Id"].as_str().expect("id").to_string();
    let short = &id[..12];
    // created: only what was asked for (compose v1 reconnects exactly then)
    assert_eq!(aliases(&d, "1.38", "web", "appnet"), json!(["app"]));
    assert_eq!(aliases(&d, "1.41", "web", "appnet"), json!(["app"]));
    // dockerd 25 adds them to every answer before 1.45; none from 1.45
    assert_eq!(aliases(&d, "1.44", "web", "appnet"), json!(["app", short]));
    assert_eq!(aliases(&d, "1.47", "web", "appnet"), json!(["app"]));

    docker_ok(&d, &["start", "web"]);
    assert_eq!(aliases(&d, "1.38", "web", "appnet"), json!(["app", short]));
    assert_eq!(aliases(&d, "1.47", "web", "appnet"), json!(["app"]));
    // a running container joins at connect
    let (status, v) = request(
        &d,
        "POST",
        "/v1.38/networks/other/connect",
        Some(json!({"Container": "web", "EndpointConfig": {"Aliases": ["db"]}})),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(aliases(&d, "1.38", "web", "other"), json!(["db", short]));
    // dockerd keeps them once added
    docker_ok(&d, &["stop", "-t", "0", "web"]);
    assert_eq!(aliases(&d, "1.38", "web", "appnet"), json!(["app", short]));
}

#[test]
fn compose_reconnects_a_created_container_with_its_link_local_ips() {
    let d = Daemon::start();
    docker_ok(&d, &["network", "create", "linknet"]);
    let body = json!({
        "Image": "busybox", "Cmd": ["sleep", "60"],
        "HostConfig": {"NetworkMode": "linknet"},
        "NetworkingConfig": {"EndpointsConfig": {"linknet": {"Aliases": ["web"], "IPAMConfig": {}}}}
    });
    let (status, v) = request(&d, "POST", "/v1.38/containers/create?name=svc", Some(body));
    assert_eq!(status, 201, "{v}");
    let id = v["Id"].as_str().expect("id").to_string();
    let short = &id[..12];
    let current = aliases(&d, "1.38", "svc", "linknet");
    assert!(
        !current
            .as_array()
            .is_some_and(|a| a.contains(&json!(short))),
        "compose skips the reconnect when the short id is there: {current}"
    );
    // what compose.service.connect_container_to_networks sends then
    let (status, v) = request(
        &d,
        "POST",
        "/v1.38/networks/linknet/disconnect",
        Some(json!({"Container": id})),
    );
    assert_eq!(status, 200, "{v}");
    let (status, v) = request(
        &d,
        "POST",
        "/v1.38/networks/linknet/connect",
        Some(json!({"Container": id, "EndpointConfig": {
            "Aliases": [short, "web"],
            "IPAMConfig": {"LinkLocalIPs": ["169.254.8.8"]}
        }})),
    );
    assert_eq!(status, 200, "{v}");
    docker_ok(&d, &["start", "svc"]);
    let (_, v) = request(&d, "GET", "/v1.38/containers/svc/json", None);
    let ep = &v["NetworkSettings"]["Networks"]["linknet"];
    assert_eq!(ep["Aliases"], json!([short, "web"]), "{ep}");
    assert_eq!(
        ep["IPAMConfig"]["LinkLocalIPs"],
        json!(["169.254.8.8"]),
        "{ep}"
    );
}

#[test]
fn the_enable_ipv6_option_without_an_ipv6_subnet_makes_an_ipv4_network() {
    let d = Daemon::start();
    // compose v1's request for `enable_ipv6: true` with no IPv6 subnet
    let body = json!({
        "Attachable": true, "CheckDuplicate": true, "Driver": "bridge",
        "IPAM": {"Config": [], "Driver": "default"},
        "Labels": {"com.docker.compose.network": "static_test"},
        "Name": "static_test",
        "Options": {"com.docker.network.enable_ipv6": "true"}
    });
    let (status, v) = request(&d, "POST", "/v1.38/networks/create", Some(body));
    assert_eq!(status, 201, "{v}");
    let out = docker_ok(
        &d,
        &[
            "network",
            "inspect",
            "-f",
            "{{.EnableIPv6}} {{index .Options \"com.docker.network.enable_ipv6\"}} {{len .IPAM.Config}}",
            "static_test",
        ],
    );
    assert_eq!(out.trim(), "false true 1");
    let subnet = docker_ok(
        &d,
        &[
            "network",
            "inspect",
            "-f",
            "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
            "static_test",
        ],
    );
    assert!(
        subnet.trim().contains('.') && !subnet.contains(':'),
        "{subnet}"
    );
    // the flag itself still needs a subnet berth can give
    let body = json!({"Name": "v6flag", "EnableIPv6": true});
    let (status, v) = request(&d, "POST", "/v1.38/networks/create", Some(body));
    assert!(status >= 400, "{status} {v}");
}

/// An image of its own (busybox plus /marker) that only `user` uses.
fn image_only_a_stopped_container_uses(d: &Daemon) -> String {
    docker_ok(
        d,
        &[
            "run",
            "--name",
            "maker",
            "busybox",
            "sh",
            "-c",
            "echo kept > /marker",
        ],
    );
    docker_ok(d, &["commit", "maker", "probe-rmi:latest"]);
    docker_ok(d, &["rm", "maker"]);
    docker_ok(
        d,
        &["create", "--name", "user", "probe-rmi", "cat", "/marker"],
    );
    docker_ok(d, &["image", "inspect", "-f", "{{.Id}}", "probe-rmi"])
        .trim()
        .to_string()
}

#[test]
fn forced_rmi_deletes_an_image_only_stopped_containers_use() {
    let d = Daemon::start();
    let id = image_only_a_stopped_container_uses(&d);
    // compose v1: by id, force, prune
    let (status, v) = request(
        &d,
        "DELETE",
        &format!("/v1.38/images/{id}?force=True&noprune=False"),
        None,
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v,
        json!([{"Untagged": "probe-rmi:latest"}, {"Deleted": id}]),
        "{v}"
    );
    let (status, v) = request(&d, "GET", &format!("/v1.38/images/{id}/json"), None);
    assert_eq!(status, 404, "{v}");
    // the container keeps its layers: it still starts and sees its file
    let out = docker_ok(&d, &["start", "-a", "user"]);
    assert_eq!(out.trim(), "kept");
    docker_ok(&d, &["rm", "user"]);

    // by name with force, as dockerd: untag, then the delete
    image_only_a_stopped_container_uses(&d);
    let out = docker_ok(&d, &["rmi", "-f", "probe-rmi"]);
    assert!(out.contains("Untagged: probe-rmi:latest"), "{out}");
    assert!(out.contains("Deleted: sha256:"), "{out}");
    let o = d.docker(&["image", "inspect", "probe-rmi"]);
    assert_ne!(code(&o), 0);
    assert_eq!(docker_ok(&d, &["start", "-a", "user"]).trim(), "kept");

    // a running container still blocks it, forced or not
    docker_ok(&d, &["run", "--name", "maker2", "busybox", "true"]);
    docker_ok(&d, &["commit", "maker2", "probe-run:1"]);
    docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "runner",
            "probe-run:1",
            "sleep",
            "60",
        ],
    );
    let run_id = docker_ok(&d, &["image", "inspect", "-f", "{{.Id}}", "probe-run:1"]);
    let o = d.docker(&["rmi", "-f", run_id.trim()]);
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("image is being used by running container"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn the_requested_mac_address_survives_a_reconnect_of_the_own_network() {
    let d = Daemon::start();
    docker_ok(&d, &["network", "create", "macnet"]);
    // compose v1 (API 1.38): the address in Config, the network as the mode
    let body = json!({
        "Image": "busybox", "Cmd": ["sleep", "60"], "MacAddress": "74:6f:75:68:6f:75",
        "HostConfig": {"NetworkMode": "macnet"},
        "NetworkingConfig": {"EndpointsConfig": {"macnet": {"Aliases": ["web"]}}}
    });
    let (status, v) = request(&d, "POST", "/v1.38/containers/create?name=mac", Some(body));
    assert_eq!(status, 201, "{v}");
    // then, before the start, it takes the network off and puts it back
    let (status, v) = request(
        &d,
        "POST",
        "/v1.38/networks/macnet/disconnect",
        Some(json!({"Container": "mac"})),
    );
    assert_eq!(status, 200, "{v}");
    let (status, v) = request(
        &d,
        "POST",
        "/v1.38/networks/macnet/connect",
        Some(json!({"Container": "mac", "EndpointConfig": {"Aliases": ["web"]}})),
    );
    assert_eq!(status, 200, "{v}");
    docker_ok(&d, &["start", "mac"]);
    let mac = docker_ok(
        &d,
        &[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.macnet.MacAddress}}",
            "mac",
        ],
    );
    assert_eq!(mac.trim(), "74:6f:75:68:6f:75");
    let inside = docker_ok(&d, &["exec", "mac", "cat", "/sys/class/net/eth0/address"]);
    assert_eq!(inside.trim(), "74:6f:75:68:6f:75");
    // another network gets an address of its own
    docker_ok(&d, &["network", "create", "othermac"]);
    docker_ok(&d, &["network", "connect", "othermac", "mac"]);
    let other = docker_ok(
        &d,
        &[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.othermac.MacAddress}}",
            "mac",
        ],
    );
    assert_ne!(other.trim(), "74:6f:75:68:6f:75");
}
