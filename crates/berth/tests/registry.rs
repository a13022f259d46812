//! Registries: `berth registry serve` on the daemon's 127.0.0.1, and
//! push, pull, tag, login and logout through berth's CLI and the docker
//! CLI against it.

mod common;

use std::process::{Command, Stdio};

use common::registry::Registry;
use common::{Daemon, berth_bin, code, eventually, stderr, stdout};

fn image_id(d: &Daemon, name: &str) -> String {
    let o = d.berth(&["image", "inspect", "--format", "{{.Id}}", name]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    stdout(&o).trim().to_string()
}

#[test]
fn push_and_pull_through_berth_registry_with_both_clis() {
    let d = Daemon::start();
    let _reg = Registry::start(&d, &[]);
    let original = image_id(&d, "busybox");
    let o = d.berth(&["tag", "busybox", "127.0.0.1:5000/team/busybox:v1"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    let o = d.berth(&["push", "127.0.0.1:5000/team/busybox:v1"]);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{out}{}", stderr(&o));
    assert!(
        out.contains("The push refers to repository [127.0.0.1:5000/team/busybox]"),
        "{out}"
    );
    assert!(out.contains(": Pushed"), "{out}");
    assert!(out.contains("v1: digest: sha256:"), "{out}");
    let digest = out
        .split("v1: digest: ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .to_string();

    // a second push finds everything there
    let o = d.docker(&["push", "127.0.0.1:5000/team/busybox:v1"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("Layer already exists"),
        "{}",
        stdout(&o)
    );

    // another repository of the same registry borrows the layer
    d.berth(&["tag", "busybox", "127.0.0.1:5000/team/copy:v1"]);
    let o = d.berth(&["push", "127.0.0.1:5000/team/copy:v1"]);
    assert!(
        stdout(&o).contains(": Mounted from team/busybox"),
        "{}",
        stdout(&o)
    );
    d.berth(&["rmi", "127.0.0.1:5000/team/copy:v1"]);

    // the registry lists what was pushed
    let o = d.sh("curl -s http://127.0.0.1:5000/v2/_catalog; curl -s http://127.0.0.1:5000/v2/team/busybox/tags/list");
    assert_eq!(
        stdout(&o),
        r#"{"repositories":["team/busybox","team/copy"]}{"name":"team/busybox","tags":["v1"]}"#
    );

    // gone locally, back through the docker CLI: the same image
    let o = d.berth(&["rmi", "busybox", "127.0.0.1:5000/team/busybox:v1"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = d.docker(&["pull", "127.0.0.1:5000/team/busybox:v1"]);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{out}{}", stderr(&o));
    assert!(out.contains("v1: Pulling from team/busybox"), "{out}");
    assert!(out.contains("Pull complete"), "{out}");
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    assert!(
        out.contains("Status: Downloaded newer image for 127.0.0.1:5000/team/busybox:v1"),
        "{out}"
    );
    assert_eq!(image_id(&d, "127.0.0.1:5000/team/busybox:v1"), original);
    let o = d.berth(&[
        "run",
        "--rm",
        "127.0.0.1:5000/team/busybox:v1",
        "echo",
        "pulled",
    ]);
    assert_eq!(stdout(&o), "pulled\n", "{}", stderr(&o));

    // again: nothing to fetch
    let o = d.berth(&["pull", "127.0.0.1:5000/team/busybox:v1"]);
    let out = stdout(&o);
    assert!(out.contains("Already exists"), "{out}");
    assert!(out.contains("Status: Image is up to date"), "{out}");
    assert!(out.ends_with("127.0.0.1:5000/team/busybox:v1\n"), "{out}");

    // digests show in images and inspect
    let o = d.berth(&[
        "images",
        "--digests",
        "--format",
        "{{.Repository}} {{.Digest}}",
    ]);
    assert!(
        stdout(&o).contains(&format!("127.0.0.1:5000/team/busybox {digest}")),
        "{}",
        stdout(&o)
    );
    let o = d.docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}}",
        "127.0.0.1:5000/team/busybox:v1",
    ]);
    assert_eq!(
        stdout(&o).trim(),
        format!("[\"127.0.0.1:5000/team/busybox@{digest}\"]")
    );

    // by digest, quietly; such an image lists under its repository with
    // no tag, in both CLIs alike
    let by_digest = format!("127.0.0.1:5000/team/busybox@{digest}");
    d.berth(&["rmi", "127.0.0.1:5000/team/busybox:v1"]);
    let o = d.berth(&["pull", "-q", &by_digest]);
    assert_eq!(stdout(&o), format!("{by_digest}\n"), "{}", stderr(&o));
    let fmt = "{{.Repository}} {{.Tag}} {{.Digest}}";
    let o = d.berth(&["images", "--digests", "--format", fmt]);
    let o2 = d.docker(&["images", "--digests", "--format", fmt]);
    assert_eq!(stdout(&o), stdout(&o2));
    assert!(
        stdout(&o).contains(&format!("127.0.0.1:5000/team/busybox <none> {digest}")),
        "{}",
        stdout(&o)
    );
    d.berth(&["pull", "-q", "127.0.0.1:5000/team/busybox:v1"]);

    // what the registry does not have
    let o = d.berth(&["pull", "127.0.0.1:5000/team/busybox:nope"]);
    assert_eq!(code(&o), 1);
    assert_eq!(
        stderr(&o).trim(),
        "Error response from daemon: manifest for 127.0.0.1:5000/team/busybox:nope not found: manifest unknown: manifest unknown"
    );
    let o = d.docker(&["pull", "127.0.0.1:5000/team/busybox:nope"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("manifest unknown"), "{}", stderr(&o));

    // pushing what is not there locally
    let o = d.berth(&["push", "127.0.0.1:5000/none:v1"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("An image does not exist locally with the tag: 127.0.0.1:5000/none"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn run_pulls_a_missing_image_from_the_registry() {
    let d = Daemon::start();
    let _reg = Registry::start(&d, &[]);
    d.berth(&["tag", "busybox", "127.0.0.1:5000/auto:1"]);
    let o = d.berth(&["push", "-q", "127.0.0.1:5000/auto:1"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    d.berth(&["rmi", "127.0.0.1:5000/auto:1"]);
    let o = d.docker(&["run", "--rm", "127.0.0.1:5000/auto:1", "echo", "ran"]);
    assert_eq!(stdout(&o), "ran\n", "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Unable to find image '127.0.0.1:5000/auto:1' locally"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn login_against_a_registry_with_basic_auth() {
    let d = Daemon::start();
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let htpasswd = d.dir.path().join("htpasswd");
    std::fs::write(&htpasswd, format!("alice:{hash}\n")).unwrap();
    let _reg = Registry::start(&d, &["--htpasswd", htpasswd.to_str().unwrap()]);
    let cfg = d.dir.path().join("client-config");
    let berth = |args: &[&str], input: &str| {
        use std::io::Write;
        let mut c = Command::new(berth_bin())
            .args(args)
            .env("BERTH_HOST", d.host())
            .env("BERTH_CONFIG", &cfg)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        c.wait_with_output().unwrap()
    };
    d.berth(&["tag", "busybox", "127.0.0.1:5000/private:1"]);

    // anonymous: refused, naming the registry
    let o = berth(&["push", "127.0.0.1:5000/private:1"], "");
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("127.0.0.1:5000"), "{}", stderr(&o));
    assert!(stderr(&o).contains("login"), "{}", stderr(&o));

    let o = berth(
        &["login", "-u", "alice", "--password-stdin", "127.0.0.1:5000"],
        "wrong\n",
    );
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("unauthorized"), "{}", stderr(&o));
    assert!(!cfg.join("config.json").exists());

    let o = berth(
        &["login", "-u", "alice", "--password-stdin", "127.0.0.1:5000"],
        "s3cret\n",
    );
    assert_eq!(stdout(&o), "Login Succeeded\n", "{}", stderr(&o));
    let saved = std::fs::read_to_string(cfg.join("config.json")).unwrap();
    assert!(saved.contains("127.0.0.1:5000"), "{saved}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(cfg.join("config.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // the password never reaches the daemon's log
    assert!(!d.log().contains("s3cret"));

    let o = berth(&["push", "127.0.0.1:5000/private:1"], "");
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    d.berth(&["rmi", "127.0.0.1:5000/private:1"]);
    let o = berth(&["pull", "127.0.0.1:5000/private:1"], "");
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));

    let o = berth(&["logout", "127.0.0.1:5000"], "");
    assert_eq!(
        stdout(&o),
        "Removing login credentials for 127.0.0.1:5000\n"
    );
    let o = berth(&["pull", "127.0.0.1:5000/private:1"], "");
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("pull access denied"), "{}", stderr(&o));
}

#[test]
fn skopeo_copies_into_and_out_of_berth_registry() {
    let d = Daemon::start();
    let _reg = Registry::start(&d, &[]);
    let ar = d.dir.path().join("bb.tar");
    let o = d.berth(&["save", "-o", ar.to_str().unwrap(), "busybox"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let calls = std::cell::Cell::new(0);
    let skopeo = |args: &[&str]| {
        // a blob-info cache of its own for each call: with a shared one,
        // skopeo may reuse the zstd layer it pushed first for a v2s2 image
        // and then convert the manifest and config to OCI, which changes
        // the config's digest (the image id). Run as root, skopeo keeps
        // that cache in /var/lib/containers/cache whatever HOME says, so
        // each call gets an empty tmpfs there, in a mount namespace of its
        // own inside the test's
        calls.set(calls.get() + 1);
        let home = d.dir.path().join(format!("skopeo-home-{}", calls.get()));
        let script = "mkdir -p /var/lib/containers && \
            mount -t tmpfs berth-test /var/lib/containers && exec skopeo \"$@\"";
        Command::new("nsenter")
            .args(["-t", &d.ns_pid.to_string(), "-n", "-m", "--"])
            .args([
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                script,
                "sh",
            ])
            .env("HOME", home)
            .args(args)
            .output()
            .expect("skopeo (Debian) must be installed")
    };
    // in, with zstd-compressed layers (first: skopeo would reuse a gzip
    // blob it already pushed)
    let o = skopeo(&[
        "copy",
        "--insecure-policy",
        "--dest-tls-verify=false",
        "--format",
        "oci",
        "--dest-compress",
        "--dest-compress-format",
        "zstd",
        &format!("docker-archive:{}", ar.display()),
        "docker://127.0.0.1:5000/sk/zstd:1",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "docker://127.0.0.1:5000/sk/zstd:1",
    ]);
    assert!(stdout(&o).contains("tar+zstd"), "{}", stdout(&o));
    // in: from berth's save (read as a docker-archive), compressed on the way
    let o = skopeo(&[
        "copy",
        "--insecure-policy",
        "--dest-tls-verify=false",
        &format!("docker-archive:{}", ar.display()),
        "docker://127.0.0.1:5000/sk/busybox:1",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // and as an OCI layout, which keeps OCI media types
    let o = skopeo(&[
        "copy",
        "--insecure-policy",
        "--dest-tls-verify=false",
        &format!("oci-archive:{}", ar.display()),
        "docker://127.0.0.1:5000/sk/oci:1",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "docker://127.0.0.1:5000/sk/busybox:1",
    ]);
    assert!(
        stdout(&o).contains("\"Name\": \"127.0.0.1:5000/sk/busybox\""),
        "{}",
        stdout(&o)
    );

    // berth pulls all three: the image id is the digest of the config the
    // registry serves (skopeo keeps the saved config unless it chooses to
    // convert the image, which it may do when it reuses a blob: the id
    // then follows the converted config, as in Docker)
    d.berth(&["rmi", "busybox"]);
    for r in [
        "127.0.0.1:5000/sk/busybox:1",
        "127.0.0.1:5000/sk/oci:1",
        "127.0.0.1:5000/sk/zstd:1",
    ] {
        let o = d.berth(&["pull", "-q", r]);
        assert_eq!(code(&o), 0, "{r}: {}", stderr(&o));
        let o = skopeo(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{r}"),
        ]);
        let manifest: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("a manifest");
        let served = manifest["config"]["digest"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert_eq!(image_id(&d, r), served, "{r}");
    }

    // out: what berth pushed, copied by skopeo into an OCI layout
    d.berth(&[
        "tag",
        "127.0.0.1:5000/sk/busybox:1",
        "127.0.0.1:5000/from-berth:2",
    ]);
    let o = d.berth(&["push", "127.0.0.1:5000/from-berth:2"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = d.dir.path().join("oci-out");
    let o = skopeo(&[
        "copy",
        "--insecure-policy",
        "--src-tls-verify=false",
        "docker://127.0.0.1:5000/from-berth:2",
        &format!("oci:{}:x", out.display()),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(out.join("index.json").exists());
}

#[test]
fn a_pull_killed_midway_leaves_no_image_and_the_next_completes() {
    let mut d = Daemon::start();
    let _reg = Registry::start(&d, &[]);
    // two 24 MB layers of random bytes over busybox
    let o = d.berth(&[
        "run",
        "--name",
        "maker",
        "busybox",
        "sh",
        "-c",
        "head -c 25000000 /dev/urandom > /a",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    d.berth(&["commit", "maker", "step:1"]);
    d.berth(&["rm", "maker"]);
    let o = d.berth(&[
        "run",
        "--name",
        "maker",
        "step:1",
        "sh",
        "-c",
        "head -c 25000000 /dev/urandom > /b",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    d.berth(&["commit", "maker", "127.0.0.1:5000/big:1"]);
    d.berth(&["rm", "maker"]);
    let want = image_id(&d, "127.0.0.1:5000/big:1");
    let o = d.berth(&["push", "127.0.0.1:5000/big:1"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    d.berth(&["rmi", "127.0.0.1:5000/big:1", "step:1", "busybox"]);

    // kill the daemon when the first layer is complete: the others are
    // downloading or unpacking
    use std::io::BufRead;
    let mut pull = Command::new(berth_bin())
        .args(["pull", "127.0.0.1:5000/big:1"])
        .env("BERTH_HOST", d.host())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = pull.stdout.take().unwrap();
    let mut seen = String::new();
    for line in std::io::BufReader::new(out).lines() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.ends_with(": Pull complete") {
            d.kill9();
            break;
        }
    }
    let _ = pull.wait();
    assert!(
        !seen.contains("Status:"),
        "the pull ended before the kill:\n{seen}"
    );

    d.restart_after_kill9();
    let o = d.berth(&["images", "-q"]);
    assert_eq!(stdout(&o), "", "a half-pulled image is visible");
    // and what the pull had written is collected at start
    let left = |dir: &str| std::fs::read_dir(d.data_root().join(dir)).unwrap().count();
    assert_eq!(left("overlay/layers"), 0, "layer directories left behind");
    assert_eq!(left("blobs/sha256"), 0, "blobs left behind");
    let o = d.berth(&["pull", "127.0.0.1:5000/big:1"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("Status: Downloaded newer image"),
        "{}",
        stdout(&o)
    );
    assert_eq!(image_id(&d, "127.0.0.1:5000/big:1"), want);
    let o = d.berth(&[
        "run",
        "--rm",
        "127.0.0.1:5000/big:1",
        "sh",
        "-c",
        "wc -c < /a; wc -c < /b",
    ]);
    assert_eq!(stdout(&o), "25000000\n25000000\n", "{}", stderr(&o));
    // nothing left in the scratch directory
    let tmp: Vec<_> = std::fs::read_dir(d.data_root().join("tmp"))
        .unwrap()
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
}

/// One answer of a fake HTTP server: status line, extra headers, body,
/// and the Content-Length it claims (a liar claims more than it sends).
struct Answer {
    status: &'static str,
    headers: Vec<String>,
    body: Vec<u8>,
    claimed: usize,
}

impl Answer {
    fn ok(ctype: &str, body: Vec<u8>) -> Answer {
        Answer {
            status: "200 OK",
            headers: vec![format!("Content-Type: {ctype}")],
            claimed: body.len(),
            body,
        }
    }
}

/// A hand-written HTTP server on `port` of the daemon's 127.0.0.1, for
/// registries that misbehave in ways berth's own never does; `answer`
/// gets the request's head.
fn fake_server(ns_pid: i32, port: u16, answer: impl Fn(&str) -> Answer + Send + 'static) {
    use std::io::{Read, Write};
    let ns = std::fs::File::open(format!("/proc/{ns_pid}/ns/net")).unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let l = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        ready_tx.send(()).unwrap();
        for conn in l.incoming().take(40) {
            let Ok(mut s) = conn else { continue };
            let mut buf = [0u8; 8192];
            let n = s.read(&mut buf).unwrap_or(0);
            let a = answer(&String::from_utf8_lossy(&buf[..n]));
            let mut head = format!("HTTP/1.1 {}\r\n", a.status);
            for h in &a.headers {
                head.push_str(&format!("{h}\r\n"));
            }
            let _ = write!(
                s,
                "{head}Content-Length: {}\r\nConnection: close\r\n\r\n",
                a.claimed
            );
            let _ = s.write_all(&a.body);
        }
    });
    ready_rx.recv().unwrap();
}

/// A registry that lies: its layer blob ends early.
fn serve_truncating_registry(ns_pid: i32) {
    let layer: Vec<u8> = vec![7u8; 4096];
    let layer_digest = common::sha256_digest(&layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{layer_digest}"]}}}}"#
    );
    let config_digest = common::sha256_digest(config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer_digest}","size":4096}}]}}"#,
        config.len()
    );
    fake_server(ns_pid, 5001, move |req| {
        let path = req.split_whitespace().nth(1).unwrap_or("");
        if path.contains("/manifests/") {
            Answer::ok(
                "application/vnd.oci.image.manifest.v1+json",
                manifest.clone().into_bytes(),
            )
        } else if path.ends_with(&config_digest) {
            Answer::ok("application/octet-stream", config.clone().into_bytes())
        } else if path.ends_with(&layer_digest) {
            // claims 4096 bytes, sends 100, hangs up
            Answer {
                claimed: 4096,
                ..Answer::ok("application/octet-stream", layer[..100].to_vec())
            }
        } else {
            Answer::ok("application/json", b"{}".to_vec())
        }
    });
}

#[test]
fn login_through_a_bearer_token_service() {
    let d = Daemon::start_bare();
    // the registry sends clients to a token service, which takes basic
    // credentials and hands out a token the registry then accepts
    fake_server(d.ns_pid, 5002, |req| {
        use base64::Engine as _;
        let path = req.split_whitespace().nth(1).unwrap_or("");
        let auth = req
            .lines()
            .find_map(|l| {
                l.strip_prefix("authorization: ")
                    .or(l.strip_prefix("Authorization: "))
            })
            .unwrap_or("")
            .trim()
            .to_string();
        if path.starts_with("/token") {
            let good = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("alice:pw")
            );
            if auth == good && path.contains("service=fake") {
                return Answer::ok("application/json", br#"{"token":"tok-123"}"#.to_vec());
            }
            return Answer {
                status: "401 Unauthorized",
                ..Answer::ok(
                    "application/json",
                    br#"{"details":"bad credentials"}"#.to_vec(),
                )
            };
        }
        if auth == "Bearer tok-123" {
            return Answer::ok("application/json", b"{}".to_vec());
        }
        Answer {
            status: "401 Unauthorized",
            headers: vec![
                "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:5002/token\",service=\"fake\""
                    .into(),
                "Content-Type: application/json".into(),
            ],
            ..Answer::ok(
                "application/json",
                br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#
                    .to_vec(),
            )
        }
    });
    let cfg = d.dir.path().join("client");
    let login = |pw: &str| {
        use std::io::Write;
        let mut c = Command::new(berth_bin())
            .args(["login", "-u", "alice", "--password-stdin", "127.0.0.1:5002"])
            .env("BERTH_HOST", d.host())
            .env("BERTH_CONFIG", &cfg)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(pw.as_bytes()).unwrap();
        c.wait_with_output().unwrap()
    };
    let o = login("nope\n");
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("127.0.0.1:5002"), "{}", stderr(&o));
    let o = login("pw\n");
    assert_eq!(stdout(&o), "Login Succeeded\n", "{}", stderr(&o));
    assert!(!d.log().contains("tok-123") && !d.log().contains("alice:pw"));
}

#[test]
fn a_truncated_layer_fails_the_pull_cleanly() {
    let d = Daemon::start_bare();
    serve_truncating_registry(d.ns_pid);
    let o = d.berth(&["pull", "127.0.0.1:5001/liar:1"]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(stderr(&o).contains("127.0.0.1:5001"), "{}", stderr(&o));
    let o = d.berth(&["images", "-q"]);
    assert_eq!(stdout(&o), "");
    let tmp: Vec<_> = std::fs::read_dir(d.data_root().join("tmp"))
        .unwrap()
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
}

#[test]
fn pull_all_tags_and_search_without_an_index() {
    let d = Daemon::start();
    let _reg = Registry::start(&d, &[]);
    for t in ["1", "2"] {
        let r = format!("127.0.0.1:5000/multi:{t}");
        d.berth(&["tag", "busybox", &r]);
        let o = d.berth(&["push", "-q", &r]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        d.berth(&["rmi", &r]);
    }
    let o = d.berth(&["pull", "-a", "127.0.0.1:5000/multi"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("1: Pulling from multi"), "{out}");
    assert!(out.contains("2: Pulling from multi"), "{out}");
    assert!(out.ends_with("\n127.0.0.1:5000/multi\n"), "{out}");
    let o = d.berth(&["images", "--format", "{{.Tag}}", "127.0.0.1:5000/multi"]);
    assert_eq!(stdout(&o), "1\n2\n");

    // references that cannot be
    for bad in [
        "Foo:Bar",
        &format!("127.0.0.1:5000/multi:{}", "t".repeat(129)),
    ] {
        let o = d.berth(&["pull", bad]);
        assert_eq!(code(&o), 1);
        assert!(
            stderr(&o).contains("invalid reference format"),
            "{bad}: {}",
            stderr(&o)
        );
    }

    // no index is reachable from here: a clear error, not a hang
    let o = d.berth(&["search", "busybox"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("cannot search index.docker.io"),
        "{}",
        stderr(&o)
    );
    let o = d.docker(&["search", "127.0.0.1:5000/multi"]);
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("cannot search 127.0.0.1:5000"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn docker_hub_names_come_from_a_registry_mirror() {
    let mut d = Daemon::start();
    d.stop();
    // an unreachable mirror first: the next one serves
    d.flags = vec![
        "--registry-mirror".into(),
        "http://127.0.0.1:5999".into(),
        "--registry-mirror".into(),
        "http://127.0.0.1:5000".into(),
    ];
    d.start_again();
    let _reg = Registry::start(&d, &[]);
    let id = image_id(&d, "busybox");
    d.berth(&["tag", "busybox", "127.0.0.1:5000/library/busybox:mirrored"]);
    let o = d.berth(&["push", "-q", "127.0.0.1:5000/library/busybox:mirrored"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    d.berth(&["rmi", "busybox", "127.0.0.1:5000/library/busybox:mirrored"]);
    let o = d.docker(&["pull", "busybox:mirrored"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).ends_with("docker.io/library/busybox:mirrored\n"),
        "{}",
        stdout(&o)
    );
    assert_eq!(image_id(&d, "busybox:mirrored"), id);
}

/// A CA and a server certificate for `ip`, made with openssl in `dir`.
fn make_certs(dir: &std::path::Path, ip: &str) {
    let script = format!(
        "set -e; cd {dir}
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca -keyout ca.key -out ca.crt 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -subj /CN={ip} -keyout server.key -out server.csr 2>/dev/null
        printf 'subjectAltName=IP:{ip}\\n' > ext
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile ext -out server.crt 2>/dev/null",
        dir = dir.display()
    );
    let o = Command::new("sh").arg("-c").arg(script).output().unwrap();
    assert!(o.status.success(), "openssl: {}", stderr(&o));
}

#[test]
fn https_registries_are_verified_against_certs_d() {
    let mut d = Daemon::start();
    let certs = d.dir.path().join("certs.d");
    let pki = d.dir.path().join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    std::fs::create_dir_all(&certs).unwrap();
    d.stop();
    d.flags = vec!["--certs-dir".into(), certs.display().to_string()];
    d.start_again();
    let out = common::OutsideHost::new(&d);
    make_certs(&pki, common::OutsideHost::ADDR);
    let addr = format!("{}:5443", common::OutsideHost::ADDR);
    // killed when the test ends, even when it fails
    let _reg = Registry {
        child: Command::new("nsenter")
            .args(["-t", &out.pid.to_string(), "-n", "--", berth_bin()])
            .args(["registry", "serve", "--addr", &addr, "--root"])
            .arg(d.dir.path().join("tls-registry"))
            .arg("--tls-cert")
            .arg(pki.join("server.crt"))
            .arg("--tls-key")
            .arg(pki.join("server.key"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    };
    let ping = format!("curl -sk -o /dev/null https://{addr}/v2/");
    assert!(
        eventually(10, || d.sh(&ping).status.success()),
        "tls registry did not come up"
    );

    let r = format!("{addr}/secure:1");
    d.berth(&["tag", "busybox", &r]);
    // an unknown issuer is refused, and the error says why
    let o = d.berth(&["push", &r]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(stderr(&o).contains("UnknownIssuer"), "{}", stderr(&o));

    // with the CA in certs.d/HOST:PORT/ the registry is trusted
    std::fs::create_dir_all(certs.join(&addr)).unwrap();
    std::fs::copy(pki.join("ca.crt"), certs.join(&addr).join("ca.crt")).unwrap();
    let o = d.berth(&["push", &r]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("1: digest: sha256:"), "{}", stdout(&o));
    d.berth(&["rmi", &r]);
    let o = d.docker(&["pull", &r]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("Status: Downloaded newer image"),
        "{}",
        stdout(&o)
    );

    // an insecure registry is spoken to over TLS without verification
    std::fs::remove_dir_all(certs.join(&addr)).unwrap();
    d.stop();
    d.flags = vec![
        "--certs-dir".into(),
        certs.display().to_string(),
        "--insecure-registry".into(),
        addr.clone(),
    ];
    d.start_again();
    d.berth(&["rmi", &r]);
    let o = d.berth(&["pull", &r]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn a_200_mb_image_of_several_layers_round_trips_with_progress() {
    let d = Daemon::start();
    let _reg = Registry::start(&d, &[]);
    // four layers of 52 MB of random bytes (gzip cannot shrink them)
    let mut base = "busybox".to_string();
    for i in 0..4 {
        let o = d.berth(&[
            "run",
            "--name",
            "maker",
            &base,
            "sh",
            "-c",
            &format!("head -c 52000000 /dev/urandom > /layer{i}"),
        ]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        base = format!("127.0.0.1:5000/huge:{i}");
        let o = d.berth(&["commit", "maker", &base]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        d.berth(&["rm", "maker"]);
    }
    let id = image_id(&d, &base);
    let envs = [("BERTH_HOST", d.host())];
    // on a terminal, the layers' lines carry progress bars
    let (out, rc) = common::run_on_pty(
        berth_bin(),
        &["push", &base],
        &envs,
        &[],
        std::time::Duration::from_secs(120),
    );
    let tail = &out[out.len().saturating_sub(2000)..];
    assert_eq!(rc, 0, "{tail}");
    assert!(out.contains("Pushing [="), "{tail}");
    assert!(out.contains("MB/52.05MB"), "{tail}");
    assert!(out.contains("3: digest: sha256:"), "{tail}");

    for i in 0..4 {
        d.berth(&["rmi", &format!("127.0.0.1:5000/huge:{i}")]);
    }
    d.berth(&["rmi", "busybox"]);
    let (out, rc) = common::run_on_pty(
        berth_bin(),
        &["pull", &base],
        &envs,
        &[],
        std::time::Duration::from_secs(120),
    );
    let tail = &out[out.len().saturating_sub(2000)..];
    assert_eq!(rc, 0, "{tail}");
    assert!(out.contains("Downloading [="), "{tail}");
    assert!(out.contains("Extracting [="), "{tail}");
    assert_eq!(out.matches("Pull complete").count(), 5, "{tail}");
    assert_eq!(image_id(&d, &base), id);
    let o = d.berth(&["run", "--rm", &base, "sh", "-c", "cat /layer* | wc -c"]);
    assert_eq!(stdout(&o).trim(), "208000000", "{}", stderr(&o));
}
