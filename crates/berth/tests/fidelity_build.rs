mod common;

// POST /build as dockerd's classic builder answers it (issue #18): the
// query as Docker reads it (repeated `extrahosts`, the first `dockerfile`,
// `platform`, `rm`/`forcerm`, `cachefrom`), `.dockerignore` for clients
// that send whole contexts, RUN's stderr in the stream, and each stage's
// image ID; the last step's container config, which docker-compose v1
// reads, and the limits of the RUN containers.

use common::{Daemon, code, stderr, stdout};
use serde_json::{Value, json};

fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("berth-fbuild-")
        .tempdir()
        .expect("tempdir");
    for (name, content) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, content).expect("write");
    }
    dir
}

fn ctx_path(dir: &tempfile::TempDir) -> &str {
    dir.path().to_str().expect("utf-8 path")
}

/// A context tar of `files`, as raw clients (the Python SDK) send it.
fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, content) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, content.as_bytes())
            .expect("append");
    }
    b.into_inner().expect("tar")
}

/// POST /build?`query` with `files` as the context: the status and the
/// stream's messages.
fn raw_build(d: &Daemon, query: &str, files: &[(&str, &str)]) -> (u16, Vec<Value>, String) {
    let (status, _, body) = common::raw_request(
        &d.sock,
        "POST",
        &format!("/build?{query}"),
        Some(&tar_of(files)),
    )
    .expect("POST /build");
    let text = String::from_utf8_lossy(&body).into_owned();
    let messages = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    (status, messages, text)
}

fn streams(messages: &[Value]) -> String {
    messages
        .iter()
        .filter_map(|v| v["stream"].as_str())
        .collect()
}

fn run_in(d: &Daemon, image: &str, script: &str) -> String {
    let o = d.berth(&["run", "--rm", "--entrypoint", "sh", image, "-c", script]);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
}

fn image_id(d: &Daemon, image: &str) -> String {
    let o = d.berth(&["image", "inspect", "-f", "{{.Id}}", image]);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o).trim().to_string()
}

#[test]
fn every_extra_host_reaches_run_and_the_first_dockerfile_wins() {
    let d = Daemon::start();
    // the docker CLI sends one `extrahosts` a host
    let dir = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN grep -E '[[:space:]](one|two)$' /etc/hosts > /seen\n",
    )]);
    let o = d.docker(&[
        "build",
        "-t",
        "hosts",
        "--add-host",
        "one:10.1.1.1",
        "--add-host",
        "two:10.2.2.2",
        ctx_path(&dir),
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(
        run_in(&d, "hosts", "cat /seen"),
        "10.1.1.1\tone\n10.2.2.2\ttwo\n"
    );

    // `dockerfile` twice: dockerd reads the first, as FormValue does
    let (status, messages, text) = raw_build(
        &d,
        "t=which&dockerfile=first.Dockerfile&dockerfile=second.Dockerfile",
        &[
            (
                "first.Dockerfile",
                "FROM busybox\nRUN echo first > /which\n",
            ),
            (
                "second.Dockerfile",
                "FROM busybox\nRUN echo second > /which\n",
            ),
        ],
    );
    assert_eq!(status, 200, "{text}");
    assert!(
        streams(&messages).contains("Successfully tagged which:latest"),
        "{text}"
    );
    assert_eq!(run_in(&d, "which", "cat /which"), "first\n");
}

#[test]
fn the_daemon_applies_dockerignore_to_whole_contexts() {
    let d = Daemon::start();
    let files = [
        ("Dockerfile", "FROM busybox\nCOPY . /ctx/\n"),
        (".dockerignore", "secret.txt\nlogs/\n"),
        ("secret.txt", "do not send\n"),
        ("logs/a.log", "log\n"),
        ("kept.txt", "kept\n"),
    ];
    let (status, messages, text) = raw_build(&d, "t=ignored", &files);
    assert_eq!(status, 200, "{text}");
    assert!(
        streams(&messages).contains("Successfully tagged ignored:latest"),
        "{text}"
    );
    assert_eq!(
        run_in(&d, "ignored", "cd /ctx && ls -A | sort"),
        ".dockerignore\nDockerfile\nkept.txt\n"
    );
    // what .dockerignore excludes is not there for COPY to name
    let mut named = files;
    named[0] = ("Dockerfile", "FROM busybox\nCOPY secret.txt /\n");
    let (_, messages, text) = raw_build(&d, "t=named", &named);
    let err = messages
        .iter()
        .find_map(|v| v["error"].as_str())
        .unwrap_or_else(|| panic!("no error: {text}"));
    assert!(err.contains("secret.txt"), "{err}");
    assert_eq!(code(&d.berth(&["image", "inspect", "named"])), 1);
    // the Dockerfile and .dockerignore are read, then left out of the
    // context when .dockerignore names them
    let (status, messages, text) = raw_build(
        &d,
        "t=selfignored",
        &[
            ("Dockerfile", "FROM busybox\nCOPY . /ctx/\n"),
            (".dockerignore", "Dockerfile\n.dockerignore\n"),
            ("kept.txt", "kept\n"),
        ],
    );
    assert_eq!(status, 200, "{text}");
    assert!(
        streams(&messages).contains("Successfully tagged selfignored:latest"),
        "{text}"
    );
    assert_eq!(run_in(&d, "selfignored", "ls -A /ctx"), "kept.txt\n");
}

#[test]
fn run_stderr_is_red_in_the_stream_and_each_stage_reports_its_image() {
    let d = Daemon::start();
    let (status, messages, text) = raw_build(
        &d,
        "t=colors",
        &[(
            "Dockerfile",
            "FROM busybox AS first\nRUN echo to-out; echo to-err >&2\n\
             FROM busybox\nCOPY --from=first /bin/true /copied\n",
        )],
    );
    assert_eq!(status, 200, "{text}");
    let all = streams(&messages);
    // each stderr write wrapped in \x1b[91m ... \x1b[0m, as dockerd does
    assert!(all.contains("\u{1b}[91mto-err\n\u{1b}[0m"), "{text}");
    assert!(all.contains("to-out\n"), "{text}");
    assert!(!all.contains("\u{1b}[91mto-out"), "{text}");

    // one aux ID a stage: the first stage's before the second begins,
    // the last one the image's
    let aux: Vec<(usize, &str)> = messages
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            v.pointer("/aux/ID")
                .and_then(Value::as_str)
                .map(|id| (i, id))
        })
        .collect();
    assert_eq!(aux.len(), 2, "{text}");
    assert!(
        aux.iter().all(|(_, id)| id.starts_with("sha256:")),
        "{text}"
    );
    assert_ne!(aux[0].1, aux[1].1);
    assert_eq!(aux[1].1, image_id(&d, "colors"));
    let second_from = messages
        .iter()
        .position(|v| {
            v["stream"]
                .as_str()
                .is_some_and(|s| s.contains("Step 3/4 : FROM busybox"))
        })
        .unwrap_or_else(|| panic!("no step 3: {text}"));
    assert!(aux[0].0 < second_from, "{text}");
}

#[test]
fn rm_and_forcerm_keep_and_remove_step_containers_as_docker_does() {
    let d = Daemon::start();
    let ok = context(&[("Dockerfile", "FROM busybox\nRUN echo made > /made\n")]);
    // --rm=false: the RUN's container stays
    let o = d.docker(&["build", "--rm=false", "-t", "kept", ctx_path(&ok)]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(
        !stdout(&o).contains("Removed intermediate container"),
        "{}",
        stdout(&o)
    );
    let left = stdout(&d.docker(&["ps", "-aq"]));
    assert_eq!(left.lines().count(), 1, "{left}");
    let o = d.docker(&["rm", left.trim()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // the default (rm): removed, in dockerd's words
    let o = d.docker(&["build", "--no-cache", "-t", "removed", ctx_path(&ok)]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains(" ---> Removed intermediate container "),
        "{}",
        stdout(&o)
    );
    assert_eq!(stdout(&d.docker(&["ps", "-aq"])), "");

    // a failed step's container stays, for a look at what went wrong...
    let bad = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN echo broken > /b && exit 4\n",
    )]);
    let o = d.docker(&["build", ctx_path(&bad)]);
    assert_eq!(code(&o), 4, "{}{}", stdout(&o), stderr(&o));
    let left = stdout(&d.docker(&["ps", "-a", "--format", "{{.ID}} {{.Status}}"]));
    assert_eq!(left.lines().count(), 1, "{left}");
    assert!(left.contains("Exited (4)"), "{left}");
    let id = left.split_whitespace().next().expect("id").to_string();
    let o = d.docker(&["diff", &id]);
    assert!(stdout(&o).contains("/b"), "{}{}", stdout(&o), stderr(&o));
    let o = d.docker(&["rm", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    // ...unless --force-rm
    let o = d.docker(&["build", "--force-rm", ctx_path(&bad)]);
    assert_eq!(code(&o), 4, "{}{}", stdout(&o), stderr(&o));
    assert_eq!(stdout(&d.docker(&["ps", "-aq"])), "");
}

#[test]
fn a_missing_cache_from_image_leaves_the_build_without_cache() {
    let d = Daemon::start();
    let dir = context(&[(
        "Dockerfile",
        "FROM busybox\nENV MODE=one\nRUN echo built > /built\n",
    )]);
    let o = d.docker(&["build", "-t", "cached:1", ctx_path(&dir)]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    // the local steps alone serve the cache without --cache-from
    let o = d.docker(&["build", "-t", "cached:2", ctx_path(&dir)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).matches("Using cache").count(),
        2,
        "{}",
        stdout(&o)
    );
    // with --cache-from, only the named images are cache sources: one
    // that does not exist is skipped, and nothing is cached
    let o = d.docker(&[
        "build",
        "--cache-from",
        "nothere:1",
        "-t",
        "cached:3",
        ctx_path(&dir),
    ]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert_eq!(out.matches("Using cache").count(), 0, "{out}");
    assert!(out.contains("Running in"), "{out}");
    // an image whose steps these are is a cache source
    let o = d.docker(&[
        "build",
        "--cache-from",
        "nothere:1",
        "--cache-from",
        "cached:1",
        "-t",
        "cached:4",
        ctx_path(&dir),
    ]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert_eq!(out.matches("Using cache").count(), 2, "{out}");
    assert_eq!(image_id(&d, "cached:4"), image_id(&d, "cached:1"));
}

#[test]
fn an_empty_dockerfile_and_a_bogus_platform_are_refused() {
    let d = Daemon::start();
    let (_, messages, text) = raw_build(&d, "t=empty", &[("Dockerfile", "")]);
    let err = messages
        .iter()
        .find_map(|v| v["error"].as_str())
        .unwrap_or_else(|| panic!("no error: {text}"));
    assert_eq!(err, "the Dockerfile (Dockerfile) cannot be empty");
    assert_eq!(code(&d.berth(&["image", "inspect", "empty"])), 1);

    // refused with 400 before anything is built
    let (status, _, text) = raw_build(
        &d,
        "t=plat&platform=bogus",
        &[("Dockerfile", "FROM busybox\nRUN true\n")],
    );
    assert_eq!(status, 400, "{text}");
    let v: Value = serde_json::from_str(&text).expect("json error");
    assert_eq!(
        v["message"],
        "\"bogus\": unknown operating system or architecture: invalid argument"
    );
    assert_eq!(code(&d.berth(&["image", "inspect", "plat"])), 1);
    assert_eq!(stdout(&d.docker(&["ps", "-aq"])), "");
    // a platform containerd parses is accepted
    let (status, messages, text) = raw_build(
        &d,
        "t=plat&platform=linux%2Famd64",
        &[("Dockerfile", "FROM busybox\nRUN true\n")],
    );
    assert_eq!(status, 200, "{text}");
    assert!(
        streams(&messages).contains("Successfully tagged plat:latest"),
        "{text}"
    );
}

/// GET /v`version`/images/`name`/json.
fn inspect_at(d: &Daemon, version: &str, name: &str) -> Value {
    let (status, v) =
        common::json_request(d, "GET", &format!("/v{version}/images/{name}/json"), None);
    assert_eq!(status, 200, "{v}");
    v
}

#[test]
fn built_images_keep_the_container_config_of_their_last_step() {
    let d = Daemon::start();
    // compose v1's build-args test: the RUN's command, its args in front
    let (status, _, text) = raw_build(
        &d,
        "t=withargs&buildargs=%7B%22build_version%22%3A%221%22%7D",
        &[(
            "Dockerfile",
            "FROM busybox\nARG build_version\nRUN echo ${build_version}\n",
        )],
    );
    assert_eq!(status, 200, "{text}");
    let v = inspect_at(&d, "1.38", "withargs");
    assert_eq!(
        v["ContainerConfig"]["Cmd"],
        json!([
            "|1",
            "build_version=1",
            "/bin/sh",
            "-c",
            "echo ${build_version}"
        ]),
        "{v}"
    );
    let container = v["Container"].as_str().unwrap_or_default();
    assert_eq!(container.len(), 64, "the RUN's container: {v}");

    // a config step last: its #(nop) command, and the volumes compose v1
    // carries over when it recreates a container
    let (status, _, text) = raw_build(
        &d,
        "t=withvol",
        &[("Dockerfile", "FROM busybox\nVOLUME /data\nCMD top\n")],
    );
    assert_eq!(status, 200, "{text}");
    let v = inspect_at(&d, "1.38", "withvol");
    let cc = &v["ContainerConfig"];
    assert_eq!(
        cc["Cmd"],
        json!([
            "/bin/sh",
            "-c",
            "#(nop) ",
            "CMD [\"/bin/sh\" \"-c\" \"top\"]"
        ]),
        "{v}"
    );
    assert_eq!(cc["Volumes"], json!({"/data": {}}), "{v}");
    assert!(
        cc["Image"]
            .as_str()
            .unwrap_or_default()
            .starts_with("sha256:"),
        "{v}"
    );
    assert_eq!(cc["Hostname"], "", "every field, as Go writes them: {v}");
    assert_eq!(v["Config"]["Cmd"], json!(["/bin/sh", "-c", "top"]));
    // the history says it as Docker's does
    let o = d.docker(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "withvol",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let history = stdout(&o);
    assert!(
        history.contains("/bin/sh -c #(nop)  CMD [\"/bin/sh\" \"-c\" \"top\"]"),
        "{history}"
    );
    assert!(
        history.contains("/bin/sh -c #(nop)  VOLUME [/data]"),
        "{history}"
    );
    // gone from API 1.45, as in Docker 25
    let v = inspect_at(&d, "1.45", "withvol");
    assert!(v.get("ContainerConfig").is_none(), "{v}");
}

/// The limits a RUN container sees: its memory cgroup limit (v1 or v2),
/// its cpu shares (v1) or weight (v2), and the size of /dev/shm in KiB.
const SHOW_LIMITS: &str = "FROM busybox\nRUN cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; cat /sys/fs/cgroup/cpu/cpu.shares 2>/dev/null || cat /sys/fs/cgroup/cpu.weight; df -k /dev/shm\n";

#[test]
fn build_limits_reach_the_run_containers() {
    let d = Daemon::start();
    // the query compose v1 and the Python SDK send
    let (status, messages, text) = raw_build(
        &d,
        "t=limits&nocache=1&memory=100663296&shmsize=100663296&cpushares=512",
        &[("Dockerfile", SHOW_LIMITS)],
    );
    assert_eq!(status, 200, "{text}");
    let out = streams(&messages);
    assert!(out.contains("100663296"), "memory limit: {out}");
    assert!(out.contains("98304"), "a 96 MiB /dev/shm: {out}");
    assert!(
        out.contains("512") || out.contains("\n20\n"),
        "cpu shares: {out}"
    );
    // without them, no limit and Docker's 64 MiB /dev/shm
    let (_, messages, _) = raw_build(&d, "t=nolimits&nocache=1", &[("Dockerfile", SHOW_LIMITS)]);
    let out = streams(&messages);
    assert!(!out.contains("100663296"), "{out}");
    assert!(out.contains("65536"), "{out}");

    // both CLIs send them
    let dir = context(&[("Dockerfile", SHOW_LIMITS)]);
    for cli in ["docker", "berth"] {
        let args = [
            "build",
            "--no-cache",
            "-m",
            "96m",
            "--shm-size",
            "96m",
            ctx_path(&dir),
        ];
        let o = if cli == "docker" {
            d.docker(&args)
        } else {
            d.berth(&args)
        };
        assert_eq!(code(&o), 0, "{cli}: {}", stderr(&o));
        let out = stdout(&o);
        assert!(
            out.contains("100663296") && out.contains("98304"),
            "{cli}: {out}"
        );
    }
    // a limit the daemon refuses fails the step's container, as in Docker
    let (_, messages, text) = raw_build(
        &d,
        "t=tiny&nocache=1&memory=1024",
        &[("Dockerfile", SHOW_LIMITS)],
    );
    let err = messages
        .iter()
        .find_map(|v| v["error"].as_str())
        .unwrap_or_else(|| panic!("no error: {text}"));
    assert!(err.contains("Minimum memory limit allowed is 6MB"), "{err}");
}
