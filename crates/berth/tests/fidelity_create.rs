//! Container create answering as dockerd does (issue #18): what it refuses
//! at create with its status and words (links, tmpfs targets, platforms,
//! volumes-from, `platform` parameters) and what it takes at create and
//! refuses later or never (a missing network, any health-check type).

mod common;

use common::{Daemon, code, raw_request, stderr, stdout};

fn message(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).expect("JSON error body");
    v["message"].as_str().unwrap_or_default().to_string()
}

fn create(d: &Daemon, path: &str, body: &str) -> (u16, String) {
    let (status, _, body) =
        raw_request(&d.sock, "POST", path, Some(body.as_bytes())).expect("request");
    let text = String::from_utf8_lossy(&body).into_owned();
    (status, text)
}

/// A create refused with a 400 by the CLI: dockerd's words, and no pull
/// (a 404 would make the CLI look for the image in a registry).
fn assert_refused(d: &Daemon, args: &[&str], words: &str) {
    let o = d.docker(args);
    assert_ne!(code(&o), 0, "{args:?}");
    assert!(stderr(&o).contains(words), "{args:?}: {}", stderr(&o));
    assert!(
        !stderr(&o).contains("Unable to find image"),
        "{args:?}: {}",
        stderr(&o)
    );
}

#[test]
fn links_name_an_existing_container_off_the_host_network() {
    let d = Daemon::start();
    assert_refused(
        &d,
        &["create", "--link", "ghost:g", "busybox"],
        "could not get container for ghost: No such container: ghost",
    );
    let (status, body) = create(
        &d,
        "/containers/create",
        r#"{"Image":"busybox","HostConfig":{"Links":["ghost"]}}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        message(body.as_bytes()),
        "could not get container for ghost: No such container: ghost"
    );
    let o = d.docker(&["create", "--name", "onhost", "--network", "host", "busybox"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // through a container that shares the host one's namespace as well
    let o = d.docker(&[
        "create",
        "--name",
        "viahost",
        "--network",
        "container:onhost",
        "busybox",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    for target in ["onhost", "viahost:alias"] {
        assert_refused(
            &d,
            &["create", "--link", target, "busybox"],
            "conflicting options: host type networking can't be used with links. This would result in undefined behavior",
        );
    }
    let o = d.docker(&["create", "--name", "db", "busybox"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = d.docker(&["create", "--link", "db:database", "busybox"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // on a user-defined network a link is only an alias: not checked
    assert_eq!(code(&d.docker(&["network", "create", "userdef"])), 0);
    let o = d.docker(&[
        "create",
        "--network",
        "userdef",
        "--link",
        "ghost",
        "busybox",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn tmpfs_targets_are_absolute_and_not_the_root() {
    let d = Daemon::start();
    for (target, words) in [
        (
            "relative",
            "invalid mount path: 'relative' mount path must be absolute",
        ),
        ("/", "invalid specification: destination can't be '/'"),
        ("/tmp/..", "invalid specification: destination can't be '/'"),
    ] {
        assert_refused(&d, &["create", "--tmpfs", target, "busybox"], words);
        let (status, body) = create(
            &d,
            "/containers/create",
            &format!(r#"{{"Image":"busybox","HostConfig":{{"Tmpfs":{{"{target}":""}}}}}}"#),
        );
        assert_eq!(status, 400, "{target}: {body}");
        // dockerd's words for HostConfig.Tmpfs carry no mount-config prefix
        assert_eq!(message(body.as_bytes()), words, "{target}");
    }
    assert_eq!(
        stdout(&d.docker(&["ps", "-aq"])).lines().count(),
        0,
        "nothing was created"
    );
}

#[test]
fn a_platform_the_image_is_not_for_is_a_404_and_a_bad_one_a_400() {
    let d = Daemon::start();
    let o = d.docker(&[
        "image",
        "inspect",
        "-f",
        "{{.Os}}/{{.Architecture}}",
        "busybox",
    ]);
    let have = stdout(&o).trim().to_string();
    assert!(have.starts_with("linux/"), "{have}: {}", stderr(&o));
    let other = if have == "linux/arm64" {
        "linux/amd64"
    } else {
        "linux/arm64"
    };
    let body = r#"{"Image":"busybox"}"#;
    let (status, answer) = create(
        &d,
        &format!("/v1.47/containers/create?platform={other}"),
        body,
    );
    assert_eq!(status, 404, "{answer}");
    assert_eq!(
        message(answer.as_bytes()),
        format!(
            "image with reference busybox was found but its platform ({have}) does not match the specified platform ({other})"
        )
    );
    let (status, answer) = create(&d, "/v1.47/containers/create?platform=bogus", body);
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        message(answer.as_bytes()),
        r#""bogus": unknown operating system or architecture: invalid argument"#
    );
    let (status, answer) = create(
        &d,
        &format!("/v1.47/containers/create?platform={have}"),
        body,
    );
    assert_eq!(status, 201, "{answer}");
    // before API 1.41 dockerd does not read the parameter
    let (status, answer) = create(
        &d,
        &format!("/v1.40/containers/create?platform={other}"),
        body,
    );
    assert_eq!(status, 201, "{answer}");
}

#[test]
fn volumes_from_a_missing_container_is_a_400() {
    let d = Daemon::start();
    assert_refused(
        &d,
        &["create", "--volumes-from", "ghost", "busybox"],
        "No such container: ghost",
    );
    let (status, body) = create(
        &d,
        "/containers/create",
        r#"{"Image":"busybox","HostConfig":{"VolumesFrom":["ghost:ro"]}}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(message(body.as_bytes()), "No such container: ghost");
}

#[test]
fn a_missing_network_is_taken_at_create_and_refused_at_start() {
    let d = Daemon::start();
    let o = d.docker(&[
        "create",
        "--name",
        "later",
        "--network",
        "missing",
        "busybox",
        "true",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let words = "failed to set up container networking: network missing not found";
    let (status, _, body) =
        raw_request(&d.sock, "POST", "/containers/later/start", None).expect("request");
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    assert_eq!(message(&body), words);
    let o = d.docker(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}} {{.State.Error}}",
        "later",
    ]);
    assert_eq!(
        stdout(&o).trim(),
        format!("created 128 {words}"),
        "{}",
        stderr(&o)
    );
    let o = d.docker(&["run", "--rm", "--network", "missing", "busybox", "true"]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(stderr(&o).contains(words), "{}", stderr(&o));
    // once the network exists, the container created before it starts
    assert_eq!(code(&d.docker(&["network", "create", "missing"])), 0);
    let o = d.docker(&["start", "-a", "later"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // settings for a network that does not exist are taken at create too
    let (status, body) = create(
        &d,
        "/containers/create",
        r#"{"Image":"busybox","NetworkingConfig":{"EndpointsConfig":{"nosuch":{}}}}"#,
    );
    assert_eq!(status, 201, "{body}");
}

#[test]
fn every_health_check_type_is_taken_and_only_cmd_types_probe() {
    let d = Daemon::start();
    for (name, test) in [
        ("bogus", r#"["BOGUS","true"]"#),
        ("empty", "[]"),
        ("none", r#"["NONE"]"#),
        ("blank", r#"[""]"#),
    ] {
        let (status, body) = create(
            &d,
            &format!("/containers/create?name={name}"),
            &format!(
                r#"{{"Image":"busybox","Cmd":["sleep","30"],"Healthcheck":{{"Test":{test},"Interval":100000000}}}}"#
            ),
        );
        assert_eq!(status, 201, "{name}: {body}");
        let o = d.docker(&["start", name]);
        assert_eq!(code(&o), 0, "{name}: {}", stderr(&o));
        // no probe: no health in the state
        let o = d.docker(&["inspect", "-f", "{{json .State.Health}}", name]);
        assert_eq!(stdout(&o).trim(), "null", "{name}: {}", stderr(&o));
    }
    let o = d.docker(&[
        "run",
        "-d",
        "--name",
        "probed",
        "--health-cmd",
        "true",
        "--health-interval",
        "100ms",
        "busybox",
        "sleep",
        "30",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = d.docker(&["inspect", "-f", "{{.State.Health.Status}}", "probed"]);
    assert_ne!(stdout(&o).trim(), "", "{}", stderr(&o));
    assert_eq!(
        code(&d.docker(&["rm", "-f", "bogus", "empty", "none", "blank", "probed"])),
        0
    );
}

#[test]
fn a_bad_platform_parameter_is_refused_before_pull_or_import() {
    let d = Daemon::start_bare();
    for path in [
        "/v1.47/images/create?fromImage=registry.invalid/x&tag=latest&platform=bogus",
        "/v1.47/images/create?fromSrc=-&repo=imported&platform=bogus",
        "/v1.47/images/create?fromImage=registry.invalid/x&platform=linux/a%20b",
    ] {
        let (status, _, body) = raw_request(&d.sock, "POST", path, Some(b"")).expect("request");
        assert_eq!(status, 400, "{path}: {}", String::from_utf8_lossy(&body));
        let m = message(&body);
        assert!(m.ends_with(": invalid argument"), "{path}: {m}");
    }
    let (_, _, body) = raw_request(
        &d.sock,
        "POST",
        "/v1.47/images/create?fromImage=registry.invalid/x&platform=bogus",
        Some(b""),
    )
    .expect("request");
    assert_eq!(
        message(&body),
        r#""bogus": unknown operating system or architecture: invalid argument"#
    );
}
