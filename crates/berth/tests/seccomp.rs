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

fn status_lines(d: &Daemon, args: &[&str]) -> String {
    let o = d.berth(args);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    stdout(&o)
}

/// The compiled filter comes from a cache and is loaded by berth's own
/// executor, which borrows CAP_SYS_ADMIN for the load: the container must
/// end with exactly Docker's capabilities, the filter on, and the bundle's
/// config.json as the daemon wrote it (exec reads it).
#[test]
fn cached_filter_leaves_capabilities_and_spec_as_they_were() {
    let d = Daemon::start();
    let grep = [
        "grep",
        "-E",
        "^(Cap(Eff|Prm|Inh|Amb)|NoNewPrivs|Seccomp):",
        "/proc/self/status",
    ];
    let mut run = vec!["run", "--rm", "busybox"];
    run.extend_from_slice(&grep);
    // twice: the first start compiles and stores, the second loads the cache
    for _ in 0..2 {
        let out = status_lines(&d, &run);
        for want in [
            "CapEff:\t00000000a80425fb",
            "CapPrm:\t00000000a80425fb",
            "CapInh:\t0000000000000000",
            "CapAmb:\t0000000000000000",
            "NoNewPrivs:\t0",
            "Seccomp:\t2",
        ] {
            assert!(out.contains(want), "{want} missing in {out}");
        }
    }
    let cached: Vec<_> = std::fs::read_dir(d.exec_root().join("seccomp"))
        .expect("the cache directory")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "bpf"))
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    // a granted CAP_SYS_ADMIN stays; its profile is another cache entry
    let mut run = vec!["run", "--rm", "--cap-add", "SYS_ADMIN", "busybox"];
    run.extend_from_slice(&grep);
    let out = status_lines(&d, &run);
    assert!(out.contains("CapEff:\t00000000a82425fb"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    // no-new-privileges: the filter is loaded without borrowing anything
    let mut run = vec![
        "run",
        "--rm",
        "--security-opt",
        "no-new-privileges",
        "busybox",
    ];
    run.extend_from_slice(&grep);
    let out = status_lines(&d, &run);
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    // exec'd processes: the same filter, from the cache, and the same caps
    d.berth(&["run", "-d", "--name", "box", "busybox", "sleep", "100"]);
    let mut exec = vec!["exec", "box"];
    exec.extend_from_slice(&grep);
    let out = status_lines(&d, &exec);
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    let id = stdout(&d.berth(&["inspect", "-f", "{{.Id}}", "box"]));
    // the bundle is the container's state directory
    let spec = std::fs::read_to_string(
        d.exec_root()
            .join("containers")
            .join(id.trim())
            .join("config.json"),
    )
    .expect("the bundle's config.json");
    assert!(
        spec.contains("\"seccomp\""),
        "profile missing from the spec"
    );
    assert!(
        !spec.contains("CAP_SYS_ADMIN"),
        "lent capability left in the spec"
    );
    let o = d.berth(&["run", "--rm", "busybox", "unshare", "-u", "true"]);
    assert_ne!(code(&o), 0, "the cached filter must still refuse unshare");
}
