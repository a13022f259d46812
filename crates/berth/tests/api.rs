//! The REST API as raw HTTP and through bollard: status codes, error
//! bodies, version negotiation, streaming semantics.

mod common;

use common::{Daemon, raw_request};
use futures_util::StreamExt;

fn message(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).expect("JSON error body");
    v["message"].as_str().expect("message field").to_string()
}

#[test]
fn ping_get_and_head() {
    let d = Daemon::start_bare();
    let (status, head, body) = raw_request(&d.sock, "GET", "/_ping", None).unwrap();
    assert_eq!(status, 200);
    assert_eq!(body, b"OK");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("api-version: 1.47"), "{head}");
    assert!(lower.contains("ostype: linux"), "{head}");
    assert!(lower.contains("docker-experimental: false"), "{head}");
    let (status, head, body) = raw_request(&d.sock, "HEAD", "/_ping", None).unwrap();
    assert_eq!(status, 200);
    assert!(body.is_empty(), "HEAD has no body");
    assert!(head.to_ascii_lowercase().contains("api-version: 1.47"));
}

#[test]
fn version_prefixes() {
    let d = Daemon::start_bare();
    assert_eq!(
        raw_request(&d.sock, "GET", "/v1.47/version", None)
            .unwrap()
            .0,
        200
    );
    assert_eq!(
        raw_request(&d.sock, "GET", "/v1.24/containers/json", None)
            .unwrap()
            .0,
        200
    );
    let (status, _, body) = raw_request(&d.sock, "GET", "/v1.99/info", None).unwrap();
    assert_eq!(status, 400);
    assert_eq!(
        message(&body),
        "client version 1.99 is too new. Maximum supported API version is 1.47"
    );
    let (status, _, body) = raw_request(&d.sock, "GET", "/v1.12/info", None).unwrap();
    assert_eq!(status, 400);
    assert!(message(&body).contains("is too old"));
    let (status, _, body) = raw_request(&d.sock, "GET", "/nonsense", None).unwrap();
    assert_eq!(status, 404);
    assert_eq!(message(&body), "page not found");
}

#[test]
fn bad_create_bodies() {
    let d = Daemon::start();
    let (status, _, body) =
        raw_request(&d.sock, "POST", "/containers/create", Some(b"{bad")).unwrap();
    assert_eq!(status, 400);
    assert!(
        message(&body).starts_with("invalid JSON body"),
        "{}",
        message(&body)
    );
    let (status, _, body) = raw_request(
        &d.sock,
        "POST",
        "/containers/create",
        Some(br#"{"Image": 42}"#),
    )
    .unwrap();
    assert_eq!(status, 400, "wrong type");
    assert!(
        message(&body).contains("invalid type"),
        "{}",
        message(&body)
    );
    let (status, _, body) = raw_request(&d.sock, "POST", "/containers/create", Some(b"")).unwrap();
    assert_eq!(status, 400);
    assert_eq!(
        message(&body),
        "config cannot be empty in order to create a container"
    );
    // unknown fields are ignored, as Docker does
    let (status, _, _) = raw_request(
        &d.sock,
        "POST",
        "/containers/create",
        Some(br#"{"Image":"busybox","Bogus":1}"#),
    )
    .unwrap();
    assert_eq!(status, 201);
    let (status, _, body) = raw_request(
        &d.sock,
        "POST",
        "/containers/create",
        Some(br#"{"Image":"no/such:img"}"#),
    )
    .unwrap();
    assert_eq!(status, 404);
    assert_eq!(message(&body), "No such image: no/such:img");
    let (status, _, body) = raw_request(
        &d.sock,
        "POST",
        "/containers/create",
        Some(br#"{"Image":"UPPER"}"#),
    )
    .unwrap();
    assert_eq!(status, 400);
    assert!(message(&body).contains("invalid reference format"));
    let (status, _, body) = raw_request(
        &d.sock,
        "POST",
        "/containers/create?name=..x",
        Some(br#"{"Image":"busybox"}"#),
    )
    .unwrap();
    assert_eq!(status, 400);
    assert!(message(&body).contains("Invalid container name"));
    let big = format!(
        r#"{{"Image":"busybox","Env":["A={}"]}}"#,
        "x".repeat(4 << 20)
    );
    let (status, _, _) =
        raw_request(&d.sock, "POST", "/containers/create", Some(big.as_bytes())).unwrap();
    assert_eq!(status, 413, "huge bodies are refused");
    // the daemon is still fine
    assert_eq!(raw_request(&d.sock, "GET", "/_ping", None).unwrap().0, 200);
}

#[test]
fn status_codes_of_lifecycle_calls() {
    let d = Daemon::start();
    let (s, _, body) = raw_request(
        &d.sock,
        "POST",
        "/containers/create?name=lc",
        Some(br#"{"Image":"busybox","Cmd":["sleep","100"]}"#),
    )
    .unwrap();
    assert_eq!(s, 201);
    let id = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["Id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        raw_request(&d.sock, "POST", "/containers/lc/start", None)
            .unwrap()
            .0,
        204
    );
    assert_eq!(
        raw_request(&d.sock, "POST", "/containers/lc/start", None)
            .unwrap()
            .0,
        304
    );
    let (s, _, body) = raw_request(&d.sock, "DELETE", "/containers/lc", None).unwrap();
    assert_eq!(s, 409);
    assert!(message(&body).contains("container is running"));
    assert_eq!(
        raw_request(&d.sock, "POST", "/containers/lc/kill?signal=NOPE", None)
            .unwrap()
            .0,
        400
    );
    assert_eq!(
        raw_request(
            &d.sock,
            "POST",
            &format!("/containers/{}/stop?t=1", &id[..8]),
            None
        )
        .unwrap()
        .0,
        204
    );
    assert_eq!(
        raw_request(&d.sock, "POST", "/containers/lc/stop", None)
            .unwrap()
            .0,
        304
    );
    let (s, _, body) = raw_request(&d.sock, "POST", "/containers/lc/kill", None).unwrap();
    assert_eq!(s, 409);
    assert!(message(&body).contains("is not running"));
    assert_eq!(
        raw_request(&d.sock, "GET", "/containers/lc/logs", None)
            .unwrap()
            .0,
        400,
        "no stream chosen"
    );
    assert_eq!(
        raw_request(&d.sock, "POST", "/containers/lc/wait?condition=bogus", None)
            .unwrap()
            .0,
        400
    );
    assert_eq!(
        raw_request(&d.sock, "DELETE", "/containers/lc", None)
            .unwrap()
            .0,
        204
    );
    let (s, _, body) = raw_request(&d.sock, "GET", "/containers/lc/json", None).unwrap();
    assert_eq!(s, 404);
    assert_eq!(message(&body), "No such container: lc");
    let (s, _, body) = raw_request(&d.sock, "DELETE", "/images/nope", None).unwrap();
    assert_eq!(s, 404);
    assert_eq!(message(&body), "No such image: nope:latest");
    let (s, _, _) = raw_request(
        &d.sock,
        "POST",
        "/images/create?fromSrc=-&repo=Bad:Name",
        Some(b"x"),
    )
    .unwrap();
    assert_eq!(s, 400);
}

#[test]
fn hostile_import_tar_stays_inside() {
    let d = Daemon::start_bare();
    // a member named ../../escape: refused, nothing written outside
    let mut h = tar_header("../../../escape", 1);
    let mut t = Vec::new();
    t.extend_from_slice(&h);
    t.extend_from_slice(&[b'x'; 512]);
    t.extend_from_slice(&[0u8; 1024]);
    let (s, _, body) = raw_request(
        &d.sock,
        "POST",
        "/images/create?fromSrc=-&repo=evil",
        Some(&t),
    )
    .unwrap();
    assert_eq!(s, 400, "{}", String::from_utf8_lossy(&body));
    assert!(message(&body).contains("outside of the archive root"));
    assert!(!d.dir.path().join("escape").exists());
    assert!(!d.data_root().join("escape").exists());
    // garbage instead of a tar
    h = [7u8; 512];
    let (s, _, _) = raw_request(
        &d.sock,
        "POST",
        "/images/create?fromSrc=-&repo=junk",
        Some(&h),
    )
    .unwrap();
    assert_eq!(s, 400);
    let (_, _, body) = raw_request(&d.sock, "GET", "/images/json", None).unwrap();
    assert_eq!(body, b"[]", "failed imports leave no image");
}

fn tar_header(name: &str, size: usize) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    let sz = format!("{size:011o}");
    h[124..135].copy_from_slice(sz.as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = b'0';
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    let cs = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(cs.as_bytes());
    h
}

#[tokio::test]
async fn bollard_lifecycle() {
    use bollard::models::ContainerCreateBody;
    use bollard::query_parameters::{
        CreateContainerOptions, ListContainersOptions, LogsOptions, WaitContainerOptions,
    };
    let d = Daemon::start();
    let c = d.client().await;
    let created = c
        .create_container(
            Some(CreateContainerOptions {
                name: Some("bl".into()),
                ..Default::default()
            }),
            ContainerCreateBody {
                image: Some("busybox".into()),
                cmd: Some(vec![
                    "sh".into(),
                    "-c".into(),
                    "echo via bollard; exit 2".into(),
                ]),
                labels: Some([("app".to_string(), "x".to_string())].into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // bollard sends the wait only when the stream is polled, after the
    // start: "not-running" (not "next-exit") cannot miss a fast exit
    c.start_container(&created.id, None).await.unwrap();
    let mut wait = c.wait_container(
        &created.id,
        Some(WaitContainerOptions {
            condition: "not-running".into(),
        }),
    );
    match wait.next().await {
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => {
            assert_eq!(code, 2)
        }
        other => panic!("unexpected wait result {other:?}"),
    }
    let info = c.inspect_container("bl", None).await.unwrap();
    let state = info.state.unwrap();
    assert_eq!(state.exit_code, Some(2));
    assert_eq!(state.running, Some(false));
    assert_eq!(info.name.as_deref(), Some("/bl"));
    assert_eq!(info.config.unwrap().labels.unwrap()["app"], "x");
    let logs: Vec<_> = c
        .logs(
            "bl",
            Some(LogsOptions {
                stdout: true,
                stderr: true,
                ..Default::default()
            }),
        )
        .collect::<Vec<_>>()
        .await;
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].as_ref().unwrap().to_string(), "via bollard\n");
    let filters = Some([("label".to_string(), vec!["app=x".to_string()])].into());
    let listed = c
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters,
            ..Default::default()
        }))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].names.clone().unwrap(), vec!["/bl"]);
    let filters = Some([("label".to_string(), vec!["app=y".to_string()])].into());
    let listed = c
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters,
            ..Default::default()
        }))
        .await
        .unwrap();
    assert!(listed.is_empty());
}

#[tokio::test]
async fn logs_follow_streams_until_exit() {
    use bollard::query_parameters::LogsOptions;
    let d = Daemon::start();
    let o = d.berth(&[
        "run",
        "-d",
        "--name",
        "fl",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3; do echo line $i; sleep 0.2; done",
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let c = d.client().await;
    let lines: Vec<String> = c
        .logs(
            "fl",
            Some(LogsOptions {
                follow: true,
                stdout: true,
                stderr: true,
                ..Default::default()
            }),
        )
        .map(|l| l.unwrap().to_string())
        .collect()
        .await;
    assert_eq!(lines.concat(), "line 1\nline 2\nline 3\n");
}

#[test]
fn exec_api_status_codes() {
    let d = Daemon::start();
    d.berth(&["run", "-d", "--name", "ea", "busybox", "sleep", "1000"]);
    let (s, _, body) = raw_request(
        &d.sock,
        "POST",
        "/containers/ea/exec",
        Some(br#"{"Cmd":[]}"#),
    )
    .unwrap();
    assert_eq!(s, 400);
    assert_eq!(message(&body), "No exec command specified");
    let (s, _, _) = raw_request(
        &d.sock,
        "POST",
        "/containers/nope/exec",
        Some(br#"{"Cmd":["true"]}"#),
    )
    .unwrap();
    assert_eq!(s, 404);
    let (s, _, body) = raw_request(
        &d.sock,
        "POST",
        "/containers/ea/exec",
        Some(br#"{"Cmd":["sh","-c","exit 3"]}"#),
    )
    .unwrap();
    assert_eq!(s, 201);
    let id = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _, _) = raw_request(
        &d.sock,
        "POST",
        &format!("/exec/{id}/start"),
        Some(br#"{"Detach":true}"#),
    )
    .unwrap();
    assert_eq!(s, 200);
    assert!(common::eventually(10, || {
        let (_, _, b) = raw_request(&d.sock, "GET", &format!("/exec/{id}/json"), None).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        v["ExitCode"] == 3 && v["Running"] == false
    }));
    let (s, _, body) = raw_request(
        &d.sock,
        "POST",
        &format!("/exec/{id}/start"),
        Some(br#"{"Detach":true}"#),
    )
    .unwrap();
    assert_eq!(s, 409, "an exec starts once");
    assert!(message(&body).contains("already running"));
    let (s, _, body) = raw_request(&d.sock, "GET", "/exec/nope/json", None).unwrap();
    assert_eq!(s, 404);
    assert_eq!(message(&body), "No such exec instance: nope");
}

#[tokio::test]
async fn logs_follow_across_rotation() {
    use bollard::query_parameters::LogsOptions;
    let d = Daemon::start();
    let o = d.berth(&[
        "run", "-d", "--name", "rot", "--log-opt", "max-size=2k", "--log-opt", "max-file=100", "busybox", "sh", "-c",
        "i=0; while [ $i -lt 300 ]; do echo line $i; i=$((i+1)); [ $((i % 20)) = 0 ] && sleep 0.05; done",
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let c = d.client().await;
    let text: String = c
        .logs(
            "rot",
            Some(LogsOptions {
                follow: true,
                stdout: true,
                stderr: true,
                ..Default::default()
            }),
        )
        .map(|l| l.unwrap().to_string())
        .collect::<Vec<_>>()
        .await
        .concat();
    let expected: String = (0..300).map(|i| format!("line {i}\n")).collect();
    assert_eq!(text, expected);
}
