//! `cp` both ways (the archive API), `export` and `diff`, through both
//! CLIs, on running and stopped containers, with hostile paths and tars.

mod common;

use common::{Daemon, code, raw_request, stderr, stdout};

fn setup(d: &Daemon) {
    let o = d.berth(&[
        "run",
        "-d",
        "--name",
        "c1",
        "-v",
        "vol:/data",
        "busybox",
        "sh",
        "-c",
        "echo hi > /etc/greeting; echo v > /data/inv; mkdir -p /d/sub; echo x > /d/sub/f; \
         ln -s /etc/passwd /d/lnk; ln -s / /escape; touch /ready; sleep 1000",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(common::eventually(5, || code(
        &d.berth(&["exec", "c1", "test", "-e", "/ready"])
    ) == 0));
}

#[test]
fn copy_out_of_running_and_stopped_containers() {
    let d = Daemon::start();
    setup(&d);
    let out = tempfile::tempdir().expect("tempdir");
    let dst = |n: &str| out.path().join(n).display().to_string();
    // a file into a directory, through the docker CLI
    let o = d.docker(&["cp", "c1:/etc/greeting", &dst("")]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(out.path().join("greeting"))
            .ok()
            .as_deref(),
        Some("hi\n")
    );
    // a directory to a new name; links are copied as links
    for (cli, name) in [("docker", "dd"), ("berth", "bd")] {
        let args = ["cp", "c1:/d", &dst(name)];
        let o = if cli == "docker" {
            d.docker(&args)
        } else {
            d.berth(&args)
        };
        assert_eq!(code(&o), 0, "{cli}: {}", stderr(&o));
        let base = out.path().join(name);
        assert_eq!(
            std::fs::read_to_string(base.join("sub/f")).ok().as_deref(),
            Some("x\n"),
            "{cli}"
        );
        assert_eq!(
            std::fs::read_link(base.join("lnk")).ok(),
            Some("/etc/passwd".into()),
            "{cli}"
        );
    }
    // -L follows the link
    let o = d.berth(&["cp", "-L", "c1:/d/lnk", &dst("passwd")]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        std::fs::read_to_string(out.path().join("passwd"))
            .unwrap_or_default()
            .starts_with("root:")
    );
    // a volume's content is part of the container's view
    let o = d.berth(&["cp", "c1:/data/inv", &dst("inv")]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(out.path().join("inv"))
            .ok()
            .as_deref(),
        Some("v\n")
    );
    // `-` writes a tar stream
    let o = d.berth(&["cp", "c1:/etc/greeting", "-"]);
    let mut ar = tar::Archive::new(&o.stdout[..]);
    let names: Vec<String> = ar
        .entries()
        .expect("tar")
        .map(|e| {
            e.expect("entry")
                .path()
                .expect("path")
                .display()
                .to_string()
        })
        .collect();
    assert_eq!(names, ["greeting"]);
    // a missing path: docker's message and exit 1
    for o in [
        d.docker(&["cp", "c1:/nope", &dst("x")]),
        d.berth(&["cp", "c1:/nope", &dst("x")]),
    ] {
        assert_eq!(code(&o), 1);
        assert!(
            stderr(&o).contains("Could not find the file /nope in container c1"),
            "{}",
            stderr(&o)
        );
    }
    // stopped: the root and the volume are still readable
    d.berth(&["stop", "-t", "0", "c1"]);
    let o = d.docker(&["cp", "c1:/data/inv", &dst("inv2")]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(out.path().join("inv2"))
            .ok()
            .as_deref(),
        Some("v\n")
    );
    let o = d.berth(&["cp", "c1:/etc/greeting", &dst("g2")]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // and the container still starts afterwards
    assert_eq!(code(&d.berth(&["start", "c1"])), 0);
}

#[test]
fn copy_into_containers() {
    let d = Daemon::start();
    setup(&d);
    let src = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(src.path().join("up/in")).expect("mkdir");
    std::fs::write(src.path().join("up/in/a"), "up\n").expect("write");
    std::fs::write(src.path().join("one"), "single\n").expect("write");
    std::os::unix::fs::chown(src.path().join("one"), Some(1234), Some(5678)).expect("chown");
    let p = |n: &str| src.path().join(n).display().to_string();
    assert_eq!(code(&d.docker(&["cp", &p("one"), "c1:/tmp/"])), 0);
    assert_eq!(code(&d.docker(&["cp", &p("up"), "c1:/tmp/up2"])), 0);
    assert_eq!(code(&d.berth(&["cp", &p("up"), "c1:/tmp/"])), 0);
    assert_eq!(
        code(&d.berth(&["cp", "-a", &p("one"), "c1:/tmp/renamed"])),
        0
    );
    let o = d.berth(&["exec", "c1", "sh", "-c", "cat /tmp/one /tmp/up2/in/a /tmp/up/in/a /tmp/renamed; stat -c '%u:%g' /tmp/one /tmp/renamed"]);
    assert_eq!(
        stdout(&o),
        "single\nup\nup\nsingle\n0:0\n1234:5678\n",
        "{}",
        stderr(&o)
    );
    // a tar on stdin
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o600);
    b.append_data(&mut h, "fromtar", &b"tar"[..])
        .expect("append");
    let tarball = b.into_inner().expect("tar");
    let mut child = std::process::Command::new(common::berth_bin())
        .args(["-H", &d.host(), "cp", "-", "c1:/root"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), &tarball).expect("write");
    assert!(child.wait().expect("wait").success());
    let o = d.berth(&["exec", "c1", "stat", "-c", "%a %s", "/root/fromtar"]);
    assert_eq!(stdout(&o), "600 3\n");
    // into a stopped container's volume
    d.berth(&["stop", "-t", "0", "c1"]);
    assert_eq!(code(&d.docker(&["cp", &p("one"), "c1:/data/"])), 0);
    assert_eq!(
        std::fs::read_to_string(d.data_root().join("volumes/vol/_data/one"))
            .ok()
            .as_deref(),
        Some("single\n")
    );
    // a directory over a file is refused
    let o = d.docker(&["cp", &p("up"), "c1:/etc/greeting"]);
    assert_ne!(code(&o), 0);
}

#[test]
fn copies_never_leave_the_container() {
    let d = Daemon::start();
    setup(&d);
    let marker = format!("berth-cp-escape-{}", std::process::id());
    let host_target = std::path::Path::new("/tmp").join(&marker);
    let src = tempfile::tempdir().expect("tempdir");
    std::fs::write(src.path().join(&marker), "x").expect("write");
    // /escape is a link to / inside the container: it means the container's /
    let o = d.docker(&[
        "cp",
        &src.path().join(&marker).display().to_string(),
        "c1:/escape/tmp/",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        !host_target.exists(),
        "wrote through the link onto the host"
    );
    assert_eq!(
        code(&d.berth(&["exec", "c1", "test", "-f", &format!("/tmp/{marker}")])),
        0
    );
    // reading through the link reads the container's files
    let o = d.berth(&["cp", "c1:/escape/etc/greeting", "-"]);
    assert_eq!(code(&o), 0);
    // a tar that climbs out is refused and writes nothing
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_mode(0o644);
    h.as_gnu_mut().expect("gnu").name[..marker.len() + 9]
        .copy_from_slice(format!("../../../{marker}").as_bytes());
    h.set_cksum();
    b.append(&h, &b"x"[..]).expect("append");
    let tarball = b.into_inner().expect("tar");
    let (status, _, body) = raw_request(
        &d.sock,
        "PUT",
        "/containers/c1/archive?path=/tmp",
        Some(&tarball),
    )
    .expect("request");
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("outside the destination"));
    assert!(!host_target.exists());
    // absolute names land under the destination
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_mode(0o644);
    h.as_gnu_mut().expect("gnu").name[..marker.len() + 1]
        .copy_from_slice(format!("/{marker}").as_bytes());
    h.set_cksum();
    b.append(&h, &b"x"[..]).expect("append");
    let tarball = b.into_inner().expect("tar");
    let (status, _, _) = raw_request(
        &d.sock,
        "PUT",
        "/containers/c1/archive?path=/root",
        Some(&tarball),
    )
    .expect("request");
    assert_eq!(status, 200);
    assert_eq!(
        code(&d.berth(&["exec", "c1", "test", "-f", &format!("/root/{marker}")])),
        0
    );
    assert!(!host_target.exists());
    // bad requests
    let (status, _, _) = raw_request(
        &d.sock,
        "PUT",
        "/containers/c1/archive?path=/etc/greeting",
        Some(&tarball),
    )
    .expect("request");
    assert_eq!(status, 400, "extraction point is a file");
    let (status, _, _) =
        raw_request(&d.sock, "GET", "/containers/c1/archive", None).expect("request");
    assert_eq!(status, 400, "no path");
    let (status, _, _) =
        raw_request(&d.sock, "HEAD", "/containers/nosuch/archive?path=/", None).expect("request");
    assert_eq!(status, 404);
    // a read-only root takes no files
    d.berth(&[
        "run",
        "-d",
        "--name",
        "ro",
        "--read-only",
        "busybox",
        "sleep",
        "100",
    ]);
    let o = d.docker(&[
        "cp",
        &src.path().join(&marker).display().to_string(),
        "ro:/tmp/",
    ]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("read-only"), "{}", stderr(&o));
}

#[test]
fn export_and_diff() {
    let d = Daemon::start();
    setup(&d);
    let o = d.docker(&["export", "c1"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let mut ar = tar::Archive::new(&o.stdout[..]);
    let names: Vec<String> = ar
        .entries()
        .expect("tar")
        .map(|e| {
            e.expect("entry")
                .path()
                .expect("path")
                .display()
                .to_string()
        })
        .collect();
    for want in ["bin/busybox", "etc/greeting", "etc/passwd", "d/sub/f"] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from export"
        );
    }
    // volumes are not part of an export, as in Docker
    assert!(!names.iter().any(|n| n == "data/inv"));
    let o = d.berth(&[
        "export",
        "-o",
        &d.data_root().join("c1.tar").display().to_string(),
        "c1",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = d.docker(&["diff", "c1"]);
    let out = stdout(&o);
    for line in ["C /etc", "A /etc/greeting", "A /d/sub/f", "A /escape"] {
        assert!(out.lines().any(|l| l == line), "{line} missing: {out}");
    }
    // the files berth mounts at start are not changes
    assert!(
        !out.contains("/etc/hosts") && !out.contains("/etc/resolv.conf"),
        "{out}"
    );
    d.berth(&["exec", "c1", "rm", "/etc/passwd"]);
    assert!(
        stdout(&d.berth(&["diff", "c1"]))
            .lines()
            .any(|l| l == "D /etc/passwd")
    );
}
