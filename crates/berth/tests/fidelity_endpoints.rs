//! Endpoint settings, MAC addresses, networking config per API version,
//! IPAM options, volume subpaths, storage options and the distribution
//! endpoint answering as dockerd does (issue #18; gaps the Docker Python
//! SDK's integration tests found).

mod common;

use common::registry::Registry;
use common::{Daemon, code, stderr, stdout};
use serde_json::{Value, json};

fn request(d: &Daemon, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    common::json_request(d, method, path, body)
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
    let (status, v) = request(
        d,
        "GET",
        &format!("/v{version}/containers/{name}/json"),
        None,
    );
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
        &[
            "run",
            "-d",
            "--name",
            "upstream",
            "--network",
            "app",
            "busybox",
            "sleep",
            "60",
        ],
    );
    // the link's alias resolves for the linking container
    let o = d.docker(&["exec", "web", "nslookup", "bar"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));

    // and those given at `network connect`
    docker_ok(&d, &["network", "disconnect", "app", "web"]);
    docker_ok(
        &d,
        &[
            "network",
            "connect",
            "--link",
            "upstream:baz",
            "--driver-opt",
            "k2=v2",
            "app",
            "web",
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
        "mac1",
        json!({"Image": "busybox", "Cmd": ["sleep", "60"], "MacAddress": mac}),
    );
    assert_eq!(status, 201, "{v}");
    let before = inspect(&d, "1.41", "mac1");
    assert_eq!(before["Config"]["MacAddress"], mac, "{before}");
    assert_eq!(
        before["NetworkSettings"]["Networks"]["bridge"]["MacAddress"],
        mac
    );
    docker_ok(&d, &["start", "mac1"]);
    let after = inspect(&d, "1.41", "mac1");
    assert_eq!(after["NetworkSettings"]["MacAddress"], mac, "{after}");
    let o = docker_ok(&d, &["exec", "mac1", "cat", "/sys/class/net/eth0/address"]);
    assert_eq!(o.trim(), mac);

    // a network mode without a network of its own cannot take one
    let (status, v) = create(
        &d,
        "1.41",
        "hostmac",
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
        "warn1",
        json!({"Image": "busybox", "MacAddress": "02:42:ac:11:00:0b"}),
    );
    assert_eq!(status, 201, "{v}");
    assert!(
        v["Warnings"]
            .as_array()
            .is_some_and(|w| w.iter().any(|w| w.as_str().is_some_and(
                |w| w.starts_with("The container-wide MacAddress field is now deprecated")
            ))),
        "{v}"
    );
}

#[test]
fn a_created_container_shows_the_mac_address_network_connect_asked_for() {
    let d = Daemon::start();
    docker_ok(&d, &["network", "create", "macnet"]);
    docker_ok(&d, &["create", "--name", "ctr", "busybox", "sleep", "60"]);
    let mac = "02:42:ac:11:00:02";
    let (status, v) = request(
        &d,
        "POST",
        "/v1.41/networks/macnet/connect",
        Some(json!({"Container": "ctr", "EndpointConfig": {"MacAddress": mac}})),
    );
    assert_eq!(status, 200, "{v}");
    let ep = &inspect(&d, "1.41", "ctr")["NetworkSettings"]["Networks"]["macnet"];
    assert_eq!(ep["MacAddress"], mac, "{ep}");
    docker_ok(&d, &["start", "ctr"]);
    let ep = &inspect(&d, "1.41", "ctr")["NetworkSettings"]["Networks"]["macnet"];
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
    // as the Python SDK sends it: no Options (the docker CLI sends {})
    let (status, v) = request(
        &d,
        "POST",
        "/v1.41/networks/create",
        Some(json!({"Name": "plain", "IPAM": {"Driver": "default", "Config": []}})),
    );
    assert_eq!(status, 201, "{v}");
    docker_ok(
        &d,
        &["network", "create", "--ipam-opt", "foo=bar", "withopts"],
    );
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
    assert_eq!(
        bridge["IPAM"].get("Options"),
        Some(&Value::Null),
        "{bridge}"
    );
}

#[test]
fn a_volume_subpath_mounts_that_directory_of_the_volume() {
    let d = Daemon::start();
    docker_ok(&d, &["volume", "create", "vol"]);
    docker_ok(
        &d,
        &[
            "run",
            "--rm",
            "-v",
            "vol:/d",
            "busybox",
            "sh",
            "-c",
            "mkdir -p /d/sub && echo hi > /d/sub/f && ln -s /etc /d/out",
        ],
    );
    let out = docker_ok(
        &d,
        &[
            "run",
            "--rm",
            "--mount",
            "type=volume,src=vol,dst=/d,volume-subpath=sub",
            "busybox",
            "cat",
            "/d/f",
        ],
    );
    assert_eq!(out.trim(), "hi");
    let run = |sub: &str| {
        d.docker(&[
            "run",
            "--rm",
            "--mount",
            &format!("type=volume,src=vol,dst=/d,volume-subpath={sub}"),
            "busybox",
            "true",
        ])
    };
    let o = run("nope");
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("cannot access path ") && stderr(&o).contains("/nope"),
        "{}",
        stderr(&o)
    );
    let o = run("../x");
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains(
            "invalid mount config for type \"volume\": subpath must be a relative path within the volume"
        ),
        "{}",
        stderr(&o)
    );
    let o = run("out");
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("path concatenation escapes the base directory"),
        "{}",
        stderr(&o)
    );
    // an anonymous volume has no subpath, and clients before 1.45 none at all
    let mount = |src: &str| {
        json!({"Image": "busybox", "HostConfig": {"Mounts": [{
            "Type": "volume", "Source": src, "Target": "/d",
            "VolumeOptions": {"Subpath": "sub"}
        }]}})
    };
    let (status, v) = create(&d, "1.45", "anon", mount(""));
    assert_eq!(status, 400, "{v}");
    assert_eq!(
        v["message"],
        "invalid mount config for type \"volume\": must not set Subpath when using anonymous volumes"
    );
    let (status, v) = create(&d, "1.44", "old", mount("vol"));
    assert_eq!(status, 400, "{v}");
    assert_eq!(
        v["message"],
        "VolumeOptions.Subpath needs API v1.45 or newer"
    );
}

#[test]
fn a_storage_size_is_refused_without_xfs_project_quotas() {
    let d = Daemon::start();
    let (status, v) = create(
        &d,
        "1.41",
        "sized",
        json!({"Image": "busybox", "HostConfig": {"StorageOpt": {"size": "120G"}}}),
    );
    assert_eq!(status, 500, "{v}");
    assert_eq!(
        v["message"],
        "--storage-opt is supported only for overlay over xfs with 'pquota' mount option"
    );
    let o = d.docker(&["create", "--storage-opt", "size=1G", "busybox"]);
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("'pquota' mount option"),
        "{}",
        stderr(&o)
    );
    let (status, v) = create(
        &d,
        "1.41",
        "unknownopt",
        json!({"Image": "busybox", "HostConfig": {"StorageOpt": {"foo": "bar"}}}),
    );
    assert_eq!(status, 500, "{v}");
    assert_eq!(v["message"], "Unknown option foo");
    assert_ne!(code(&d.docker(&["inspect", "sized"])), 0);
}

/// The manifest a registry serves for `repo:reference`: its digest and size.
fn served_manifest(d: &Daemon, repo: &str, reference: &str) -> (String, u64) {
    let o = d.sh(&format!(
        "curl -sf -H 'Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
         http://127.0.0.1:5000/v2/{repo}/manifests/{reference} > /tmp/served && \
         sha256sum < /tmp/served | cut -d' ' -f1 && wc -c < /tmp/served"
    ));
    assert!(o.status.success(), "{o:?}");
    let out = stdout(&o);
    let mut lines = out.lines();
    let digest = format!("sha256:{}", lines.next().unwrap_or_default().trim());
    let size = lines.next().unwrap_or_default().trim().parse().unwrap_or(0);
    (digest, size)
}

fn put_manifest(d: &Daemon, repo: &str, tag: &str, media_type: &str, body: &str) {
    let file = d.dir.path().join("put-manifest");
    std::fs::write(&file, body).expect("writing the manifest");
    let o = d.sh(&format!(
        "curl -sf -X PUT --data-binary @{} -H 'Content-Type: {media_type}' \
         http://127.0.0.1:5000/v2/{repo}/manifests/{tag}",
        file.display()
    ));
    assert!(o.status.success(), "uploading a manifest: {o:?}");
}

fn distribution(d: &Daemon, name: &str) -> (u16, Value) {
    request(d, "GET", &format!("/v1.41/distribution/{name}/json"), None)
}

#[test]
fn distribution_inspect_describes_manifests_and_indexes_without_pulling() {
    let d = Daemon::start();
    let _reg = Registry::start(&d, &[]);
    let layer = b"not really a tar, never unpacked";
    // an OCI image manifest: dockerd reads no platforms from those
    Registry::put_image(&d, "lib/oci", "v1", layer);
    let (digest, size) = served_manifest(&d, "lib/oci", "v1");
    let (status, v) = distribution(&d, "127.0.0.1:5000/lib/oci:v1");
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v,
        json!({"Descriptor": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest, "size": size,
        }, "Platforms": null})
    );
    let (status, by_digest) = distribution(&d, &format!("127.0.0.1:5000/lib/oci@{digest}"));
    assert_eq!(status, 200, "{by_digest}");
    assert_eq!(by_digest["Descriptor"], v["Descriptor"]);

    // a Docker schema 2 manifest: the config's platform
    let layer_digest = Registry::put_blob(&d, "lib/docker", layer);
    let config = r#"{"architecture":"arm64","variant":"v8","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = Registry::put_blob(&d, "lib/docker", config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{layer_digest}","size":{}}}]}}"#,
        config.len(),
        layer.len()
    );
    put_manifest(
        &d,
        "lib/docker",
        "v1",
        "application/vnd.docker.distribution.manifest.v2+json",
        &manifest,
    );
    let (status, v) = distribution(&d, "127.0.0.1:5000/lib/docker:v1");
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["Platforms"],
        json!([{"architecture": "arm64", "os": "linux", "variant": "v8"}])
    );
    assert_eq!(v["Descriptor"]["size"], manifest.len());

    // an index: its entries' platforms
    Registry::put_image(&d, "lib/multi", "amd64", layer);
    let (entry, entry_size) = served_manifest(&d, "lib/multi", "amd64");
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{entry}","size":{entry_size},"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#
    );
    put_manifest(
        &d,
        "lib/multi",
        "latest",
        "application/vnd.oci.image.index.v1+json",
        &index,
    );
    // the tag defaults to latest
    let (status, v) = distribution(&d, "127.0.0.1:5000/lib/multi");
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["Descriptor"]["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(
        v["Descriptor"]["digest"],
        served_manifest(&d, "lib/multi", "latest").0
    );
    assert_eq!(
        v["Platforms"],
        json!([{"architecture": "amd64", "os": "linux"}])
    );
    // nothing was pulled
    assert_ne!(
        code(&d.docker(&["image", "inspect", "127.0.0.1:5000/lib/multi"])),
        0
    );

    let (status, v) = distribution(&d, "127.0.0.1:5000/lib/oci:nope");
    assert_eq!(status, 404, "{v}");
    let (status, v) = distribution(&d, &"a".repeat(64));
    assert_eq!(status, 500, "{v}");
    assert_eq!(v["message"], "no manifest found for full image ID");
}

#[test]
fn distribution_inspect_asks_with_the_clients_registry_auth() {
    let d = Daemon::start();
    let reg = Registry::start(&d, &[]);
    Registry::put_image(&d, "private/app", "v1", b"layer");
    drop(reg);
    let hash = bcrypt::hash("s3cret", 4).expect("bcrypt");
    let htpasswd = d.dir.path().join("htpasswd");
    std::fs::write(&htpasswd, format!("alice:{hash}\n")).expect("htpasswd");
    let _reg = Registry::start(&d, &["--htpasswd", htpasswd.to_str().expect("path")]);
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::URL_SAFE
        .encode(r#"{"username":"alice","password":"s3cret","serveraddress":"127.0.0.1:5000"}"#);
    let ask = |header: &str| {
        d.sh(&format!(
            "curl -s -o /dev/null -w '%{{http_code}}' {header} --unix-socket {} \
             http://berth/v1.41/distribution/127.0.0.1:5000/private/app:v1/json",
            d.sock.display()
        ))
    };
    assert_eq!(stdout(&ask("")), "401");
    assert_eq!(
        stdout(&ask(&format!("-H 'X-Registry-Auth: {auth}'"))),
        "200"
    );
}
