//! A data root written by an earlier release opens whole: images and tags,
//! a built image, containers with their logs, labels and restart
//! policies, a volume with its data, a user network with its subnet, a
//! published port, and a restart-always container coming back up. The
//! fixture was made by `scripts/make-upgrade-fixture.sh` with the release
//! named in its file name (fixtures/README.md); a change of the on-disk
//! schema must keep this test passing through a migration.

mod common;

use std::process::Command;

use common::{Daemon, code, eventually, stderr, stdout};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/data-root-2026-12.tar.gz"
);

fn out(d: &Daemon, args: &[&str]) -> String {
    let o = d.berth(args);
    assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
    stdout(&o)
}

#[test]
fn a_data_root_of_the_previous_release_opens_whole() {
    let mut d = Daemon::start_bare();
    d.stop();
    std::fs::remove_dir_all(d.data_root()).expect("removing the new data root");
    let st = Command::new("tar")
        .args([
            "--xattrs",
            "--xattrs-include=*",
            "--numeric-owner",
            "-xzf",
            FIXTURE,
            "-C",
        ])
        .arg(d.dir.path())
        .status()
        .expect("tar");
    assert!(st.success(), "unpacking the fixture");
    d.start_again();

    let images = out(&d, &["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let mut images: Vec<&str> = images.lines().collect();
    images.sort();
    assert_eq!(images, ["built:1", "busybox:latest", "upgrade/busybox:v1"]);
    assert_eq!(
        out(&d, &["run", "--rm", "built:1", "cat", "/built"]),
        "built\n"
    );
    assert_eq!(
        out(
            &d,
            &[
                "image",
                "inspect",
                "--format",
                "{{.Config.Labels.stage}}",
                "built:1"
            ]
        ),
        "one\n"
    );

    // the exited container, its log and its label
    assert_eq!(
        out(
            &d,
            &[
                "inspect",
                "--format",
                "{{.State.Status}} {{.State.ExitCode}} {{.Config.Labels.role}}",
                "writer"
            ]
        ),
        "exited 0 writer\n"
    );
    let logs = d.berth(&["logs", "writer"]);
    assert_eq!(stdout(&logs), "logged line\n");
    assert_eq!(stderr(&logs), "to stderr\n");
    let o = d.berth(&["start", "-a", "writer"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    // the volume and its data
    assert_eq!(
        out(
            &d,
            &["volume", "inspect", "--format", "{{.Labels.keep}}", "data1"]
        ),
        "yes\n"
    );
    assert_eq!(
        out(
            &d,
            &[
                "run",
                "--rm",
                "-v",
                "data1:/data",
                "busybox",
                "cat",
                "/data/f"
            ]
        ),
        "hello\n"
    );

    // the user network with its subnet
    assert_eq!(
        out(
            &d,
            &[
                "network",
                "inspect",
                "--format",
                "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}",
                "upnet"
            ]
        ),
        "172.31.7.0/24 172.31.7.1\n"
    );

    // the restart-always container back up, with its address and port
    assert!(
        eventually(20, || stdout(&d.berth(&[
            "inspect",
            "--format",
            "{{.State.Running}}",
            "web"
        ])) == "true\n"),
        "web did not come back: {}",
        d.log()
    );
    assert_eq!(out(&d, &["port", "web"]), "80/tcp -> 0.0.0.0:8080\n");
    assert_eq!(
        out(
            &d,
            &[
                "inspect",
                "--format",
                "{{.HostConfig.RestartPolicy.Name}} {{(index .NetworkSettings.Networks \"upnet\").IPAddress}}",
                "web"
            ]
        ),
        "always 172.31.7.9\n"
    );
    assert!(out(&d, &["logs", "web"]).starts_with("web up\n"));

    // the created container with its policy and environment
    assert_eq!(
        out(
            &d,
            &[
                "inspect",
                "--format",
                "{{.State.Status}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}",
                "idle"
            ]
        ),
        "created on-failure:3\n"
    );
    assert!(out(&d, &["inspect", "--format", "{{.Config.Env}}", "idle"]).contains("MODE=idle"));

    // the docker CLI reads the same
    let o = d.docker(&["ps", "-a", "--format", "{{.Names}}"]);
    let mut names: Vec<String> = stdout(&o).lines().map(String::from).collect();
    names.sort();
    assert_eq!(names, ["idle", "web", "writer"], "{}", stderr(&o));
}
