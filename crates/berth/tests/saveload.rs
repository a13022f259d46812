//! `save` and `load`: round trips through berth, through the docker CLI,
//! and with a real dockerd (Debian's 20.10) on both ends; broken and
//! hostile archives.

mod common;

use std::process::{Child, Command, Stdio};

use common::{Daemon, code, eventually, stderr, stdout};

fn image_id(d: &Daemon, name: &str) -> String {
    let o = d.berth(&["image", "inspect", "--format", "{{.Id}}", name]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    stdout(&o).trim().to_string()
}

#[test]
fn save_then_load_gives_the_same_image() {
    let d = Daemon::start();
    let id = image_id(&d, "busybox");
    let ar = d.dir.path().join("bb.tar");
    let o = d.berth(&["save", "-o", ar.to_str().unwrap(), "busybox"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // both a docker-archive and an OCI layout
    let o = Command::new("tar").arg("tf").arg(&ar).output().unwrap();
    let names = stdout(&o);
    for f in ["manifest.json", "index.json", "oci-layout", "repositories"] {
        assert!(names.lines().any(|l| l == f), "{f} missing: {names}");
    }
    assert!(names.contains(&format!(
        "blobs/sha256/{}",
        id.trim_start_matches("sha256:")
    )));

    let o = d.berth(&["rmi", "busybox"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = d.berth(&["load", "-i", ar.to_str().unwrap()]);
    assert_eq!(
        stdout(&o),
        "Loaded image: busybox:latest\n",
        "{}",
        stderr(&o)
    );
    assert_eq!(image_id(&d, "busybox"), id);
    let o = d.berth(&["run", "--rm", "busybox", "echo", "loaded"]);
    assert_eq!(stdout(&o), "loaded\n", "{}", stderr(&o));

    // the docker CLI, through stdout and stdin, an untagged id
    let o = d.docker(&["save", "-o", ar.to_str().unwrap(), &id]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    d.berth(&["rmi", "busybox"]);
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!("docker load < {}", ar.display()))
        .env("DOCKER_HOST", d.host())
        .output()
        .unwrap();
    assert_eq!(
        stdout(&o),
        format!("Loaded image ID: {id}\n"),
        "{}",
        stderr(&o)
    );
    let o = d.berth(&["image", "inspect", "--format", "{{json .RepoTags}}", &id]);
    assert_eq!(stdout(&o).trim(), "[]");

    // a missing image names itself
    let o = d.berth(&["save", "nosuch:image"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("No such image: nosuch:image"),
        "{}",
        stderr(&o)
    );
}

/// Writes a tar of (name, data) members; data None makes a directory.
fn write_tar(path: &std::path::Path, members: &[(&str, Option<&[u8]>)]) {
    let f = std::fs::File::create(path).unwrap();
    let mut b = tar::Builder::new(f);
    for (name, data) in members {
        let mut h = tar::Header::new_gnu();
        match data {
            Some(d) => {
                h.set_size(d.len() as u64);
                h.set_mode(0o644);
                h.set_entry_type(tar::EntryType::Regular);
                // set_path refuses "..": write the raw name
                h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
                h.set_cksum();
                b.append(&h, *d).unwrap();
            }
            None => {
                h.set_size(0);
                h.set_mode(0o755);
                h.set_entry_type(tar::EntryType::Directory);
                h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
                h.set_cksum();
                b.append(&h, std::io::empty()).unwrap();
            }
        }
    }
    b.finish().unwrap();
}

#[test]
fn load_refuses_broken_and_hostile_archives() {
    let d = Daemon::start_bare();
    let dir = d.dir.path();
    let load = |path: &std::path::Path| d.berth(&["load", "-i", path.to_str().unwrap()]);

    // not an archive at all
    let junk = dir.join("junk.tar");
    std::fs::write(&junk, b"this is not a tar").unwrap();
    let o = load(&junk);
    assert_eq!(code(&o), 1);
    // dockerd reports a failed load inside its 200 answer, and the docker
    // CLI prints that message alone
    assert!(
        !stderr(&o).trim().is_empty() && !stderr(&o).contains("Error response from daemon:"),
        "{}",
        stderr(&o)
    );

    // a layer whose content is not what the config says
    let mut layer = Vec::new();
    {
        let mut b = tar::Builder::new(&mut layer);
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        b.append_data(&mut h, "hello", &b"hi"[..]).unwrap();
        b.finish().unwrap();
    }
    let cfg = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        common::sha256_digest(b"something else")
    );
    let manifest = r#"[{"Config":"c.json","RepoTags":["bad:digest"],"Layers":["l/layer.tar"]}]"#;
    let ar = dir.join("mismatch.tar");
    write_tar(
        &ar,
        &[
            ("manifest.json", Some(manifest.as_bytes())),
            ("c.json", Some(cfg.as_bytes())),
            ("l/layer.tar", Some(&layer)),
        ],
    );
    let o = load(&ar);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("digest"), "{}", stderr(&o));
    let o = d.berth(&["images", "-q"]);
    assert_eq!(stdout(&o), "", "no image may appear");

    // a manifest pointing outside the archive, and a link that climbs out
    let cfg = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        common::sha256_digest(&layer)
    );
    let manifest =
        r#"[{"Config":"c.json","RepoTags":["escape:1"],"Layers":["../../../etc/passwd"]}]"#;
    let ar = dir.join("escape.tar");
    write_tar(
        &ar,
        &[
            ("manifest.json", Some(manifest.as_bytes())),
            ("c.json", Some(cfg.as_bytes())),
        ],
    );
    let o = load(&ar);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("missing from the archive"),
        "{}",
        stderr(&o)
    );

    // a layer that writes through "..": contained, the load fails cleanly
    let mut evil = Vec::new();
    {
        let mut b = tar::Builder::new(&mut evil);
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        let name = b"../../../../tmp/berth-load-escape";
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        b.append(&h, &b"bad"[..]).unwrap();
        b.finish().unwrap();
    }
    let cfg = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        common::sha256_digest(&evil)
    );
    let manifest = r#"[{"Config":"c.json","RepoTags":["evil:1"],"Layers":["l.tar"]}]"#;
    let ar = dir.join("evil.tar");
    write_tar(
        &ar,
        &[
            ("manifest.json", Some(manifest.as_bytes())),
            ("c.json", Some(cfg.as_bytes())),
            ("l.tar", Some(&evil)),
        ],
    );
    let _ = load(&ar);
    assert!(!std::path::Path::new("/tmp/berth-load-escape").exists());
    let o = d.sh("test -e /tmp/berth-load-escape && echo escaped");
    assert_eq!(stdout(&o), "");
}

/// Debian's dockerd in the test daemon's namespaces, on its own socket.
struct RealDocker {
    child: Child,
    sock: String,
    ns_pid: i32,
    pidfile: std::path::PathBuf,
}

impl RealDocker {
    fn start(d: &Daemon) -> RealDocker {
        let dir = d.dir.path().join("dockerd");
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("docker.sock").display().to_string();
        let child = Command::new("nsenter")
            // its own /proc comes with the daemon's pid namespace
            .args([
                "-t",
                &d.ns_pid.to_string(),
                "-n",
                "-m",
                "-p",
                "--",
                "dockerd",
            ])
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("pid"))
            .args(["-H", &format!("unix://{sock}")])
            .args(["--bridge", "none", "--iptables=false", "--ip6tables=false"])
            .args(["--storage-driver", "overlay2", "--log-level", "error"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("log")).unwrap())
            .spawn()
            .expect("dockerd (Debian docker.io) must be installed");
        let r = RealDocker {
            child,
            sock,
            ns_pid: d.ns_pid,
            pidfile: dir.join("pid"),
        };
        assert!(
            eventually(30, || code(&r.cli(&["version"])) == 0),
            "dockerd did not come up: {}",
            std::fs::read_to_string(dir.join("log")).unwrap_or_default()
        );
        r
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .args(["-H", &format!("unix://{}", self.sock)])
            .args(args)
            .env_remove("DOCKER_HOST")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

impl Drop for RealDocker {
    fn drop(&mut self) {
        // the pidfile holds dockerd's pid inside the namespace
        let _ = Command::new("nsenter")
            .args(["-t", &self.ns_pid.to_string(), "-m", "-p", "--", "sh", "-c"])
            .arg(format!("kill $(cat {})", self.pidfile.display()))
            .output();
        if !eventually(20, || matches!(self.child.try_wait(), Ok(Some(_)))) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

#[test]
fn archives_move_between_berth_and_real_docker() {
    let d = Daemon::start();
    let id = image_id(&d, "busybox");
    let real = RealDocker::start(&d);
    let ar = d.dir.path().join("from-berth.tar");
    let o = d.berth(&["save", "-o", ar.to_str().unwrap(), "busybox"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    // Docker loads what berth saved, under the same id
    let o = real.cli(&["load", "-i", ar.to_str().unwrap()]);
    assert_eq!(
        stdout(&o),
        "Loaded image: busybox:latest\n",
        "{}",
        stderr(&o)
    );
    let o = real.cli(&["image", "inspect", "--format", "{{.Id}}", "busybox"]);
    assert_eq!(stdout(&o).trim(), id);

    // Docker makes a second layer (a file added, one deleted) and saves
    // both images in its own (legacy, symlinked) format
    let o = real.cli(&[
        "run",
        "--network",
        "none",
        "--name",
        "c1",
        "busybox",
        "sh",
        "-c",
        "echo second > /f; rm /bin/vi",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = real.cli(&["commit", "c1", "two:layers"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let two = stdout(&o).trim().to_string();
    real.cli(&["tag", "busybox", "other:tag"]);
    let ar2 = d.dir.path().join("from-docker.tar");
    let o = real.cli(&[
        "save",
        "-o",
        ar2.to_str().unwrap(),
        "two:layers",
        "other:tag",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    d.berth(&["rmi", "busybox"]);
    let o = d.berth(&["load", "-i", ar2.to_str().unwrap()]);
    // in the order of Docker's manifest.json
    let mut lines: Vec<String> = stdout(&o).lines().map(String::from).collect();
    lines.sort();
    assert_eq!(
        lines,
        ["Loaded image: other:tag", "Loaded image: two:layers"],
        "{}",
        stderr(&o)
    );
    assert_eq!(image_id(&d, "two:layers"), two);
    assert_eq!(image_id(&d, "other:tag"), id);
    let o = d.berth(&[
        "run",
        "--rm",
        "two:layers",
        "sh",
        "-c",
        "cat /f; test -e /bin/vi || echo gone",
    ]);
    assert_eq!(stdout(&o), "second\ngone\n", "{}", stderr(&o));
    // the sizes are the unpacked layers'
    let o = d.berth(&["image", "inspect", "--format", "{{.Size}}", "two:layers"]);
    assert!(
        stdout(&o).trim().parse::<u64>().unwrap() > 1_000_000,
        "{}",
        stdout(&o)
    );
}
