//! Volumes and mounts: named and anonymous volumes, binds, tmpfs, the
//! local driver's options, copy-up, `rm -v`, prune, and kill -9.

mod common;

use common::{Daemon, code, raw_request, stderr, stdout};

#[test]
fn named_volume_is_shared_listed_and_protected_while_used() {
    let d = Daemon::start();
    assert_eq!(stdout(&d.berth(&["volume", "create", "data"])), "data\n");
    let o = d.berth(&[
        "run",
        "--name",
        "writer",
        "-v",
        "data:/data",
        "busybox",
        "sh",
        "-c",
        "echo hi > /data/f",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // the docker CLI reads what berth's wrote
    let o = d.docker(&[
        "run",
        "--rm",
        "-v",
        "data:/srv:ro",
        "busybox",
        "cat",
        "/srv/f",
    ]);
    assert_eq!(stdout(&o), "hi\n", "{}", stderr(&o));
    let o = d.docker(&["volume", "ls"]);
    assert_eq!(stdout(&o), "DRIVER    VOLUME NAME\nlocal     data\n");
    let o = d.docker(&[
        "volume",
        "inspect",
        "-f",
        "{{.Mountpoint}} {{.Driver}} {{.Scope}}",
        "data",
    ]);
    let mountpoint = d.data_root().join("volumes/data/_data");
    assert_eq!(
        stdout(&o),
        format!("{} local local\n", mountpoint.display())
    );
    assert_eq!(
        std::fs::read_to_string(mountpoint.join("f"))
            .ok()
            .as_deref(),
        Some("hi\n")
    );
    // in use by the stopped writer: 409 naming it
    let id = stdout(&d.berth(&["inspect", "-f", "{{.Id}}", "writer"]))
        .trim()
        .to_string();
    let o = d.docker(&["volume", "rm", "data"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains(&format!("remove data: volume is in use - [{id}]")),
        "{}",
        stderr(&o)
    );
    // inspect shows the mount as Docker does
    let o = d.berth(&["inspect", "-f", "{{json .Mounts}}", "writer"]);
    let mounts: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(
        mounts,
        serde_json::json!([{"Type": "volume", "Name": "data", "Source": mountpoint.display().to_string(),
            "Destination": "/data", "Driver": "local", "Mode": "z", "RW": true, "Propagation": ""}])
    );
    d.berth(&["rm", "writer"]);
    assert_eq!(stdout(&d.berth(&["volume", "rm", "data"])), "data\n");
    assert!(!mountpoint.exists());
    let o = d.berth(&["volume", "inspect", "data"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("No such volume: data"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn binds_read_write_and_read_only() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("in"), "from host\n").expect("write");
    let v = format!("{}:/mnt", dir.path().display());
    let o = d.berth(&[
        "run",
        "--rm",
        "-v",
        &v,
        "busybox",
        "sh",
        "-c",
        "cat /mnt/in; echo back > /mnt/out",
    ]);
    assert_eq!(stdout(&o), "from host\n", "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out"))
            .ok()
            .as_deref(),
        Some("back\n")
    );
    let ro = format!("{v}:ro");
    let o = d.docker(&["run", "--rm", "-v", &ro, "busybox", "touch", "/mnt/x"]);
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("Read-only file system"),
        "{}",
        stderr(&o)
    );
    // --mount with a missing source is an error; -v creates the directory
    let missing = dir.path().join("missing");
    let m = format!("type=bind,source={},target=/m", missing.display());
    let o = d.docker(&["run", "--rm", "--mount", &m, "busybox", "true"]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("bind source path does not exist"),
        "{}",
        stderr(&o)
    );
    let v = format!("{}:/m", missing.display());
    let o = d.berth(&["run", "--rm", "-v", &v, "busybox", "true"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(missing.is_dir());
    // a single file can be bound too
    let f = format!("{}:/etc/motd:ro", dir.path().join("in").display());
    let o = d.berth(&["run", "--rm", "-v", &f, "busybox", "cat", "/etc/motd"]);
    assert_eq!(stdout(&o), "from host\n", "{}", stderr(&o));
}

#[test]
fn anonymous_volumes_and_removal_with_v_and_rm() {
    let d = Daemon::start();
    d.berth(&[
        "create", "--name", "anon", "-v", "/scratch", "busybox", "true",
    ]);
    let o = d.berth(&["inspect", "-f", "{{json .Mounts}}", "anon"]);
    let mounts: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    let name = mounts[0]["Name"].as_str().unwrap_or_default().to_string();
    assert_eq!(name.len(), 64, "{name}");
    let o = d.berth(&["volume", "ls", "-q", "--filter", "dangling=false"]);
    assert_eq!(stdout(&o).trim(), name);
    let o = d.berth(&["volume", "inspect", "-f", "{{json .Labels}}", &name]);
    assert_eq!(stdout(&o), "{\"com.docker.volume.anonymous\":\"\"}\n");
    // rm -v removes it; plain rm keeps it
    d.berth(&["rm", "-v", "anon"]);
    assert_eq!(stdout(&d.berth(&["volume", "ls", "-q"])), "");
    d.berth(&[
        "create", "--name", "keep", "-v", "/scratch", "busybox", "true",
    ]);
    d.berth(&["rm", "keep"]);
    assert_eq!(stdout(&d.berth(&["volume", "ls", "-q"])).lines().count(), 1);
    // --rm removes the anonymous volume with the container
    let o = d.docker(&["run", "--rm", "-v", "/scratch", "busybox", "true"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&d.berth(&["volume", "ls", "-q"])).lines().count(), 1);
    // prune takes unused anonymous volumes only, or every unused one with -a
    d.berth(&["volume", "create", "named"]);
    let o = d.berth(&["volume", "prune", "-f"]);
    assert!(
        stdout(&o).starts_with("Deleted Volumes:\n"),
        "{}",
        stdout(&o)
    );
    assert_eq!(stdout(&d.berth(&["volume", "ls", "-q"])), "named\n");
    let o = d.docker(&["volume", "prune", "-af"]);
    assert!(stdout(&o).contains("named"), "{}", stdout(&o));
    assert_eq!(stdout(&d.berth(&["volume", "ls", "-q"])), "");
}

#[test]
fn new_volume_gets_the_image_content_unless_nocopy() {
    let d = Daemon::start();
    let o = d.berth(&[
        "run",
        "--rm",
        "-v",
        "etc:/etc",
        "busybox",
        "cat",
        "/etc/passwd",
    ]);
    assert!(stdout(&o).starts_with("root:x:0:0"), "{}", stderr(&o));
    let passwd = d.data_root().join("volumes/etc/_data/passwd");
    assert!(passwd.exists());
    // a volume that has content keeps it
    std::fs::write(&passwd, "mine\n").expect("write");
    let o = d.berth(&[
        "run",
        "--rm",
        "-v",
        "etc:/etc",
        "busybox",
        "cat",
        "/etc/passwd",
    ]);
    assert_eq!(stdout(&o), "mine\n");
    let o = d.docker(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,src=empty,dst=/etc,volume-nocopy",
        "busybox",
        "ls",
        "/etc",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
}

#[test]
fn tmpfs_mounts_and_local_driver_options() {
    let d = Daemon::start();
    let o = d.docker(&[
        "run",
        "--rm",
        "--mount",
        "type=tmpfs,dst=/fast,tmpfs-size=1m,tmpfs-mode=1770",
        "busybox",
        "sh",
        "-c",
        "grep ' /fast ' /proc/mounts; stat -c %a /fast",
    ]);
    let out = stdout(&o);
    assert!(out.starts_with("tmpfs /fast tmpfs"), "{out} {}", stderr(&o));
    assert!(out.contains("size=1024k"), "{out}");
    assert!(out.ends_with("1770\n"), "{out}");
    let o = d.berth(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=2m",
        "ram",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = d.berth(&[
        "run",
        "--rm",
        "-v",
        "ram:/ram",
        "busybox",
        "sh",
        "-c",
        "grep ' /ram ' /proc/mounts",
    ]);
    assert!(
        stdout(&o).starts_with("tmpfs /ram tmpfs"),
        "{} {}",
        stdout(&o),
        stderr(&o)
    );
    assert!(stdout(&o).contains("size=2048k"), "{}", stdout(&o));
    let o = d.berth(&[
        "volume",
        "inspect",
        "-f",
        "{{.Options.type}} {{.Options.o}}",
        "ram",
    ]);
    assert_eq!(stdout(&o), "tmpfs size=2m\n");
    d.berth(&["volume", "rm", "ram"]);
    assert!(!d.data_root().join("volumes/ram").exists());
}

#[test]
fn volumes_from_another_container() {
    let d = Daemon::start();
    d.berth(&[
        "run",
        "--name",
        "src",
        "-v",
        "shared:/shared",
        "busybox",
        "sh",
        "-c",
        "echo x > /shared/f",
    ]);
    let o = d.docker(&[
        "run",
        "--rm",
        "--volumes-from",
        "src:ro",
        "busybox",
        "sh",
        "-c",
        "cat /shared/f; touch /shared/g",
    ]);
    assert_eq!(stdout(&o), "x\n");
    assert!(
        stderr(&o).contains("Read-only file system"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn bad_volume_input_is_refused() {
    let d = Daemon::start();
    let o = d.berth(&["volume", "create", "bad/name"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("includes invalid characters for a local volume name"),
        "{}",
        stderr(&o)
    );
    let o = d.berth(&["volume", "create", "-d", "nfs-plugin", "v"]);
    assert!(
        stderr(&o).contains("plugin \"nfs-plugin\" not found"),
        "{}",
        stderr(&o)
    );
    for (args, msg) in [
        (
            vec!["-v", "aa:/x", "-v", "bb:/x"],
            "Duplicate mount point: /x",
        ),
        (vec!["-v", "aa:relative"], "must be absolute"),
        (vec!["-v", "/tmp:/x:bogus"], "invalid mode: bogus"),
        (vec!["-v", "aa:/"], "destination can't be '/'"),
    ] {
        let mut a = vec!["run", "--rm"];
        a.extend(args);
        a.extend(["busybox", "true"]);
        let o = d.docker(&a);
        assert_eq!(code(&o), 125, "{a:?}");
        assert!(stderr(&o).contains(msg), "{a:?}: {}", stderr(&o));
    }
    // nothing was created by the refused runs
    assert_eq!(stdout(&d.berth(&["volume", "ls", "-q"])), "");
    assert_eq!(stdout(&d.berth(&["ps", "-aq"])), "");
    let req = |m: &str, p: &str, b: Option<&[u8]>| raw_request(&d.sock, m, p, b).expect("request");
    let (status, _, body) = req("POST", "/volumes/create", Some(b"{\"Name\": 5}"));
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert_eq!(req("DELETE", "/volumes/nosuch", None).0, 404);
    assert_eq!(req("DELETE", "/volumes/nosuch?force=1", None).0, 204);
}

#[test]
fn volumes_survive_kill_9() {
    let mut d = Daemon::start();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "db",
        "-v",
        "dbdata:/var/db",
        "busybox",
        "sh",
        "-c",
        "echo row > /var/db/t; sleep 1000",
    ]);
    assert!(common::eventually(5, || d
        .data_root()
        .join("volumes/dbdata/_data/t")
        .exists()));
    d.kill9();
    d.restart_after_kill9();
    let o = d.berth(&["exec", "db", "cat", "/var/db/t"]);
    assert_eq!(stdout(&o), "row\n", "{}", stderr(&o));
    let o = d.berth(&["volume", "rm", "dbdata"]);
    assert!(stderr(&o).contains("volume is in use"), "{}", stderr(&o));
    d.berth(&["rm", "-f", "db"]);
    assert_eq!(stdout(&d.berth(&["volume", "ls", "-q"])), "dbdata\n");
}
