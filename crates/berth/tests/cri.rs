//! The Kubernetes CRI endpoint through crictl (cri-tools v1.36.0, built by
//! scripts/cri-tools.sh): the runtime's identity and conditions, and the
//! image service on berth's one image store, seen through the Docker API
//! as well. Pulls come from `berth registry` on 127.0.0.1.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

use common::registry::Registry;
use common::{Daemon, code, ok, stderr, stdout};
use serde_json::Value;

fn crictl_bin() -> PathBuf {
    let bin = std::env::var_os("BERTH_CRICTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/cri-tools/crictl")
        });
    assert!(
        bin.exists(),
        "{} is missing: run scripts/cri-tools.sh (scripts/test.sh does)",
        bin.display()
    );
    bin
}

fn cri_socket(d: &Daemon) -> String {
    format!("unix://{}", d.exec_root().join("cri.sock").display())
}

fn crictl(d: &Daemon, args: &[&str]) -> Output {
    let sock = cri_socket(d);
    Command::new(crictl_bin())
        .args(["--runtime-endpoint", &sock, "--image-endpoint", &sock])
        .args(["--timeout", "30s"])
        .args(args)
        .output()
        .expect("running crictl")
}

fn json(o: &Output, what: &str) -> Value {
    let s = ok(o, what);
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("{what}: {e}: {s}"))
}

#[test]
fn crictl_sees_berths_runtime_and_images() {
    let d = Daemon::start();
    let sock = d.exec_root().join("cri.sock");
    let mode = std::fs::metadata(&sock)
        .expect("the CRI socket")
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o660,
        "the CRI socket is root's and its group's, like the Docker socket"
    );

    let o = ok(&crictl(&d, &["version"]), "crictl version");
    assert!(o.contains("RuntimeName:  berth"), "{o}");
    assert!(o.contains("RuntimeApiVersion:  v1"), "{o}");

    let info = json(&crictl(&d, &["info"]), "crictl info");
    let conditions = info["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for kind in ["RuntimeReady", "NetworkReady"] {
        assert!(
            conditions
                .iter()
                .any(|c| c["type"] == kind && c["status"] == true),
            "{kind} in {info}"
        );
    }
    assert_eq!(info["config"]["cgroupDriver"], "cgroupfs", "{info}");

    images_through_both_fronts(&d);
    pulls_from_a_registry(&d);
    bad_image_input(&d);
}

/// The busybox the harness imported through the Docker API is a CRI image
/// with its fully qualified name and berth's image id.
fn images_through_both_fronts(d: &Daemon) {
    let id = ok(
        &d.docker(&["image", "inspect", "--format", "{{.Id}}", "busybox"]),
        "docker image inspect",
    );
    let list = json(&crictl(d, &["images", "-o", "json"]), "crictl images");
    let images = list["images"].as_array().cloned().unwrap_or_default();
    let bb = images
        .iter()
        .find(|i| i["id"] == id.trim())
        .unwrap_or_else(|| panic!("busybox ({}) in {list}", id.trim()));
    assert_eq!(
        bb["repoTags"][0], "docker.io/library/busybox:latest",
        "{bb}"
    );
    assert!(
        bb["size"].as_str().and_then(|s| s.parse::<u64>().ok()) > Some(0),
        "{bb}"
    );

    let status = json(
        &crictl(d, &["inspecti", "-o", "json", "busybox"]),
        "inspecti",
    );
    assert_eq!(status["status"]["id"], id.trim(), "{status}");
    assert!(
        status["info"]["imageSpec"]["rootfs"]["diff_ids"].is_array(),
        "verbose info holds the image's config: {status}"
    );
    // by id too
    let by_id = json(
        &crictl(d, &["inspecti", "-o", "json", id.trim()]),
        "inspecti by id",
    );
    assert_eq!(by_id["status"]["repoTags"], status["status"]["repoTags"]);

    let fs = json(&crictl(d, &["imagefsinfo", "-o", "json"]), "imagefsinfo");
    let usage = &fs["status"]["imageFilesystems"][0];
    assert_eq!(
        usage["fsId"]["mountpoint"],
        d.data_root().display().to_string(),
        "{fs}"
    );
    assert!(
        usage["usedBytes"]["value"]
            .as_str()
            .and_then(|s| s.parse::<u64>().ok())
            > Some(0),
        "{fs}"
    );
}

/// `crictl pull` from `berth registry`: the image is in `docker images`,
/// with its numeric USER as the CRI's uid; `crictl rmi` removes it and all
/// its names, for both fronts.
fn pulls_from_a_registry(d: &Daemon) {
    let _reg = Registry::start(d, &[]);
    let name = "127.0.0.1:5000/cri/app:1";
    ok(
        &d.docker(&["run", "--name", "mk", "busybox", "touch", "/made-for-cri"]),
        "run",
    );
    ok(
        &d.docker(&["commit", "-c", "USER 1002", "mk", name]),
        "commit an image of its own",
    );
    ok(&d.docker(&["rm", "mk"]), "rm");
    ok(&d.docker(&["push", name]), "push");
    let pushed = ok(
        &d.docker(&["image", "inspect", "--format", "{{.Id}}", name]),
        "the pushed image's id",
    );
    ok(&d.docker(&["rmi", name]), "rmi");

    let o = ok(&crictl(d, &["pull", name]), "crictl pull");
    assert!(
        o.contains(pushed.trim()),
        "the image ref is berth's image id: {o}"
    );
    let listed = ok(
        &d.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]),
        "docker images",
    );
    assert!(listed.lines().any(|l| l == name), "{listed}");
    let status = json(&crictl(d, &["inspecti", "-o", "json", name]), "inspecti");
    assert_eq!(status["status"]["repoTags"][0], name, "{status}");
    assert_eq!(status["status"]["uid"]["value"], "1002", "{status}");
    assert!(
        status["status"]["repoDigests"][0]
            .as_str()
            .is_some_and(|d| d.starts_with("127.0.0.1:5000/cri/app@sha256:")),
        "{status}"
    );

    ok(
        &d.docker(&["tag", name, "127.0.0.1:5000/cri/other:2"]),
        "tag",
    );
    let o = crictl(d, &["rmi", name]);
    assert_eq!(code(&o), 0, "crictl rmi: {}", stderr(&o));
    for gone in [name, "127.0.0.1:5000/cri/other:2"] {
        let o = d.docker(&["image", "inspect", gone]);
        assert_ne!(code(&o), 0, "{gone} went with the image");
    }
    // removing what is gone is no error for the CRI
    let o = crictl(d, &["rmi", pushed.trim()]);
    assert!(
        stderr(&o).contains("no such image"),
        "crictl's own check: {}",
        stderr(&o)
    );
    let o = ok(&d.docker(&["image", "inspect", "busybox"]), "busybox stays");
    assert!(o.contains("busybox"));
}

/// Refusals with gRPC codes and messages a person can act on.
fn bad_image_input(d: &Daemon) {
    let o = crictl(d, &["pull", "Not A Reference"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("InvalidArgument"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("invalid image reference"),
        "{}",
        stderr(&o)
    );

    let _reg = Registry::start(d, &[]);
    let o = crictl(d, &["pull", "127.0.0.1:5000/cri/missing:1"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("NotFound"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("127.0.0.1:5000/cri/missing:1"),
        "{}",
        stderr(&o)
    );

    let o = crictl(d, &["inspecti", "nosuch:1"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("no such image"), "{}", stderr(&o));
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
}

/// `--cri-socket` moves the endpoint and `none` turns it off (the same
/// daemon.json key is berth-config's unit test).
#[test]
fn the_cri_socket_is_configurable() {
    let mut d = Daemon::start();
    let moved = d.dir.path().join("k8s.sock");
    d.flags = vec!["--cri-socket".into(), format!("unix://{}", moved.display())];
    d.restart_after_kill9();
    assert!(moved.exists(), "the CRI on {}", moved.display());
    let o = Command::new(crictl_bin())
        .arg("--runtime-endpoint")
        .arg(format!("unix://{}", moved.display()))
        .arg("version")
        .output()
        .expect("crictl");
    assert!(stdout(&o).contains("RuntimeName:  berth"), "{}", stderr(&o));

    d.flags = vec!["--cri-socket".into(), "none".into()];
    let _ = std::fs::remove_file(d.exec_root().join("cri.sock"));
    d.restart_after_kill9();
    assert!(
        !d.exec_root().join("cri.sock").exists(),
        "no CRI socket with --cri-socket none"
    );
    let o = crictl(&d, &["version"]);
    assert_ne!(code(&o), 0);
}
