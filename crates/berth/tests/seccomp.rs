//! Seccomp: the default profile, `seccomp=unconfined`, privileged
//! containers, and custom profiles in Docker's format through both CLIs.

mod common;

use common::{Daemon, code, stderr, stdout};

fn seccomp_mode(d: &Daemon, extra: &[&str]) -> String {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "grep", "^Seccomp:", "/proc/self/status"]);
    let o = d.berth(&args);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    stdout(&o)
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

#[test]
fn default_profile_filters_unless_unconfined_or_privileged() {
    let d = Daemon::start();
    // 2 = SECCOMP_MODE_FILTER
    assert_eq!(seccomp_mode(&d, &[]), "2");
    assert_eq!(
        seccomp_mode(&d, &["--security-opt", "seccomp=unconfined"]),
        "0"
    );
    assert_eq!(seccomp_mode(&d, &["--privileged"]), "0");
    // exec'd processes are filtered too
    d.berth(&["run", "-d", "--name", "box", "busybox", "sleep", "100"]);
    let o = d.berth(&["exec", "box", "grep", "^Seccomp:", "/proc/self/status"]);
    assert!(stdout(&o).contains('2'), "{}", stdout(&o));
}

#[test]
fn default_profile_blocks_namespaces_without_sys_admin() {
    let d = Daemon::start();
    // unshare(CLONE_NEWUTS) is refused by the filter: EPERM
    let o = d.berth(&["run", "--rm", "busybox", "unshare", "-u", "true"]);
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("Operation not permitted"),
        "{}",
        stderr(&o)
    );
    // with CAP_SYS_ADMIN the profile lets it through, as Docker's does
    let o = d.berth(&[
        "run",
        "--rm",
        "--cap-add",
        "SYS_ADMIN",
        "busybox",
        "unshare",
        "-u",
        "hostname",
        "x",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn custom_profile_from_a_file_through_both_clis() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let profile = dir.path().join("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{
  "defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [
    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
    {"names": ["chroot"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_SYS_ADMIN"]}}
  ]
}"#,
    )
    .expect("write profile");
    let opt = format!("seccomp={}", profile.display());
    for o in [
        d.berth(&[
            "run",
            "--rm",
            "--security-opt",
            &opt,
            "busybox",
            "mkdir",
            "/tmp/x",
        ]),
        d.docker(&[
            "run",
            "--rm",
            "--security-opt",
            &opt,
            "busybox",
            "mkdir",
            "/tmp/x",
        ]),
    ] {
        assert_ne!(code(&o), 0);
        assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));
    }
    // the rule gated on CAP_SYS_ADMIN does not apply without it
    let o = d.berth(&[
        "run",
        "--rm",
        "--security-opt",
        &opt,
        "busybox",
        "chroot",
        "/",
        "true",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn bad_profiles_are_refused_with_a_clear_error() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"defaultAction": "SCMP_ACT_SOMETIMES"}"#).expect("write");
    let opt = format!("seccomp={}", bad.display());
    let o = d.docker(&["run", "--rm", "--security-opt", &opt, "busybox", "true"]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("invalid seccomp profile"),
        "{}",
        stderr(&o)
    );
    std::fs::write(&bad, "{not json").expect("write");
    let o = d.berth(&["run", "--rm", "--security-opt", &opt, "busybox", "true"]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("decoding seccomp profile"),
        "{}",
        stderr(&o)
    );
    let o = d.berth(&[
        "run",
        "--rm",
        "--security-opt",
        "seccomp=/nonexistent.json",
        "busybox",
        "true",
    ]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("/nonexistent.json"), "{}", stderr(&o));
    // nothing was left behind
    assert_eq!(stdout(&d.berth(&["ps", "-aq"])), "");
}
