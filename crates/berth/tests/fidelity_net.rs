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
    for path in [
        "/networks/",
        "/v1.47/networks/",
        "/networks/?filters=%7B%7D",
    ] {
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
    let o = d.sh("curl -s -I -o /dev/null -w '%{http_code}' \
         'http://127.0.0.1:5000/v2/fid/app/manifests/.INVALID_MANIFEST_NAME'");
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

/// The members of a tar: (name, kind, link target).
fn members(tar: &[u8]) -> Vec<(String, char, String)> {
    let mut ar = tar::Archive::new(tar);
    ar.entries()
        .expect("tar")
        .map(|e| {
            let e = e.expect("entry");
            let kind = match e.header().entry_type() {
                tar::EntryType::Directory => 'd',
                tar::EntryType::Symlink => 'l',
                tar::EntryType::Link => 'h',
                _ => 'f',
            };
            let link = e
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned())
                .unwrap_or_default();
            let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            (name, kind, link)
        })
        .collect()
}

fn cp_container(d: &Daemon) {
    let o = d.docker(&[
        "run",
        "-d",
        "--name",
        "c1",
        "busybox",
        "sh",
        "-c",
        "echo hi > /etc/greeting; mkdir -p /d/sub; echo x > /d/sub/f; ln /d/sub/f /d/hard; \
         ln -s /etc/passwd /d/lnk; ln -s / /escape; touch /ready; sleep 1000",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(common::eventually(5, || code(
        &d.docker(&["exec", "c1", "test", "-e", "/ready"])
    ) == 0));
}

fn archive_of(d: &Daemon, path: &str) -> (u16, Vec<u8>) {
    let (status, _, body) = raw_request(
        &d.sock,
        "GET",
        &format!("/containers/c1/archive?path={path}"),
        None,
    )
    .expect("request");
    (status, body)
}

#[test]
fn archive_paths_resolve_from_the_root_and_archives_hold_the_top_entry_and_links() {
    let d = Daemon::start();
    cp_container(&d);
    let s = |n: &str, k: char, l: &str| (n.to_string(), k, l.to_string());
    let (status, body) = archive_of(&d, "/d");
    assert_eq!(status, 200);
    assert_eq!(
        members(&body),
        [
            s("d/", 'd', ""),
            s("d/hard", 'f', ""),
            s("d/lnk", 'l', "/etc/passwd"),
            s("d/sub/", 'd', ""),
            s("d/sub/f", 'h', "d/hard"),
        ]
    );
    // relative paths are relative to the root, as dockerd joins them to "/"
    let (status, body) = archive_of(&d, "d/lnk");
    assert_eq!(status, 200);
    assert_eq!(members(&body), [s("lnk", 'l', "/etc/passwd")]);
    let (status, body) = archive_of(&d, "d/.");
    assert_eq!(status, 200);
    assert_eq!(members(&body)[0], s("./", 'd', ""));
    // a link to a directory, followed for a trailing slash
    let (status, body) = archive_of(&d, "/escape/");
    assert_eq!(status, 200);
    let names = members(&body);
    assert_eq!(names[0], s("escape/", 'd', ""));
    assert!(names.contains(&s("escape/etc/greeting", 'f', "")));
    for (path, top) in [(".", "./"), ("/", "/")] {
        let (status, body) = archive_of(&d, path);
        assert_eq!(status, 200, "{path}");
        let names = members(&body);
        assert_eq!(names[0], s(top, 'd', ""), "{path}");
        assert!(
            names.contains(&s(&format!("{top}etc/greeting"), 'f', "")),
            "{path}"
        );
        // the running container's /proc is a mount point, not its files
        let proc_dir = format!("{top}proc/");
        assert!(names.contains(&s(&proc_dir, 'd', "")), "{path}");
        assert!(
            !names
                .iter()
                .any(|n| n.0.starts_with(&proc_dir) && n.0 != proc_dir),
            "{path}: live /proc files archived"
        );
    }
    // through the docker CLI
    let o = d.docker(&["cp", "c1:etc/greeting", "-"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(members(&o.stdout), [s("greeting", 'f', "")]);
    let out = tempfile::tempdir().expect("tempdir");
    let dst = out.path().join("all");
    let o = d.docker(&["cp", "c1:.", &dst.display().to_string()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(dst.join("etc/greeting"))
            .ok()
            .as_deref(),
        Some("hi\n")
    );
    // and berth's, which links what the archive links
    let bd = out.path().join("bd");
    let o = d.berth(&["cp", "c1:d", &bd.display().to_string()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    use std::os::unix::fs::MetadataExt;
    let ino = |p: &str| std::fs::metadata(bd.join(p)).map(|m| m.ino()).ok();
    assert!(ino("hard").is_some() && ino("hard") == ino("sub/f"));
    // HEAD names what it stats after the path as given
    let (status, head, _) =
        raw_request(&d.sock, "HEAD", "/containers/c1/archive?path=.", None).expect("request");
    assert_eq!(status, 200);
    let stat = head
        .lines()
        .find_map(|l| l.strip_prefix("x-docker-container-path-stat: "))
        .or_else(|| {
            head.lines()
                .find_map(|l| l.strip_prefix("X-Docker-Container-Path-Stat: "))
        })
        .expect("stat header");
    use base64::Engine as _;
    let stat: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(stat.trim())
            .expect("base64"),
    )
    .expect("json");
    assert_eq!(stat["name"], ".");
    let (status, _, body) =
        raw_request(&d.sock, "GET", "/containers/c1/archive?path=", None).expect("request");
    assert_eq!(status, 400);
    assert_eq!(message(&body), "bad parameter: path cannot be empty");
}

#[test]
fn a_path_through_a_file_is_not_a_directory_as_dockerd_answers() {
    let d = Daemon::start();
    cp_container(&d);
    for (path, looked_up) in [
        ("/etc/passwd/", "/etc/passwd/"),
        ("etc/passwd/x", "/etc/passwd/x"),
        ("/d/lnk/", "/d/lnk/"),
    ] {
        let (status, body) = archive_of(&d, path);
        assert_eq!(status, 500, "{path}");
        assert_eq!(
            message(&body),
            format!("lstat {looked_up}: not a directory"),
            "{path}"
        );
    }
    let (status, _, _) = raw_request(
        &d.sock,
        "HEAD",
        "/containers/c1/archive?path=/etc/passwd/",
        None,
    )
    .expect("request");
    assert_eq!(status, 500);
    let o = d.docker(&["cp", "c1:/etc/passwd/", "-"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("lstat /etc/passwd/: not a directory"),
        "{}",
        stderr(&o)
    );
    // a missing file is still dockerd's 404
    let (status, body) = archive_of(&d, "/etc/nope");
    assert_eq!(status, 404);
    assert_eq!(
        message(&body),
        "Could not find the file /etc/nope in container c1"
    );
}

#[test]
fn a_network_inspected_with_another_scope_is_not_found() {
    let d = Daemon::start_bare();
    let (status, _, _) =
        raw_request(&d.sock, "GET", "/networks/bridge?scope=local", None).expect("request");
    assert_eq!(status, 200);
    // the Python SDK's check: a local network is no swarm or global one
    for scope in ["global", "swarm"] {
        let path = format!("/networks/bridge?scope={scope}");
        let (status, _, body) = raw_request(&d.sock, "GET", &path, None).expect("request");
        assert_eq!(status, 404, "{path}");
        assert_eq!(message(&body), "network bridge not found");
    }
    let (status, _, body) =
        raw_request(&d.sock, "GET", "/networks/bridge?scope=bogus", None).expect("request");
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
}
