//! Behaviours real clients depend on, pinned to dockerd's: the answers of
//! endpoints berth does not serve yet, inspect and list fields, lifecycle
//! corner cases. Each is checked over raw HTTP and, where it shows them,
//! through the docker CLI.

mod common;

use common::{Daemon, code, raw_request, stderr, stdout};

fn message(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).expect("JSON error body");
    v["message"].as_str().expect("message field").to_string()
}

const NOT_A_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";

#[test]
fn swarm_and_plugin_endpoints_answer_as_outside_a_swarm() {
    let d = Daemon::start_bare();
    for (method, path) in [
        ("GET", "/swarm"),
        ("GET", "/v1.41/swarm/unlockkey"),
        ("POST", "/swarm/update"),
        ("GET", "/nodes"),
        ("GET", "/nodes/n1"),
        ("DELETE", "/nodes/n1"),
        ("GET", "/services"),
        ("POST", "/services/create"),
        ("GET", "/services/s1/logs"),
        ("GET", "/tasks"),
        ("GET", "/secrets"),
        ("POST", "/configs/create"),
        ("POST", "/configs/c1/update"),
    ] {
        let (status, _, body) = raw_request(&d.sock, method, path, None).unwrap();
        assert_eq!(status, 503, "{method} {path}");
        assert_eq!(message(&body), NOT_A_MANAGER, "{method} {path}");
    }
    for path in ["/swarm/leave", "/swarm/leave?force=1", "/swarm/unlock"] {
        let (status, _, body) = raw_request(&d.sock, "POST", path, None).unwrap();
        assert_eq!(status, 503, "{path}");
        assert_eq!(message(&body), "This node is not part of a swarm");
    }
    let (status, _, body) = raw_request(&d.sock, "GET", "/plugins", None).unwrap();
    assert_eq!((status, body.as_slice()), (200, b"[]".as_slice()));
    let (status, _, body) = raw_request(&d.sock, "GET", "/plugins/vieux/json", None).unwrap();
    assert_eq!(status, 404);
    assert_eq!(message(&body), "plugin \"vieux\" not found");

    // the docker CLI shows the daemon's words and fails
    let out = d.docker(&["swarm", "leave", "--force"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("This node is not part of a swarm"),
        "{}",
        stderr(&out)
    );
    for args in [&["node", "ls"][..], &["service", "ls"], &["secret", "ls"]] {
        let out = d.docker(args);
        assert_eq!(code(&out), 1, "{args:?}");
        assert!(
            stderr(&out).contains("not a swarm manager"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let out = d.docker(&["plugin", "ls"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out).split_whitespace().collect::<Vec<_>>(),
        ["ID", "NAME", "DESCRIPTION", "ENABLED"]
    );
}
