//! The builder: Dockerfile instructions, multi-stage builds, the cache,
//! `.dockerignore`, `--squash`, build secrets, and `docker build` from the
//! docker CLI against berth.

mod common;

use std::path::Path;

use common::{Daemon, code, stderr, stdout};

fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("berth-build-")
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

fn build(d: &Daemon, dir: &tempfile::TempDir, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["build"];
    args.extend_from_slice(extra);
    args.push(ctx_path(dir));
    d.berth(&args)
}

fn run_in(d: &Daemon, image: &str, script: &str) -> String {
    let o = d.berth(&["run", "--rm", "--entrypoint", "sh", image, "-c", script]);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
}

fn inspect(d: &Daemon, image: &str, tmpl: &str) -> String {
    let o = d.berth(&["image", "inspect", "-f", tmpl, image]);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o).trim_end().to_string()
}

/// A gzip tar with one file, for ADD's extraction.
fn tar_gz(path: &Path, name: &str, content: &[u8]) {
    let f = std::fs::File::create(path).expect("create");
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, name, content).expect("append");
    b.into_inner().expect("tar").finish().expect("gzip");
}

const EVERY_INSTRUCTION: &str = r#"# syntax=docker/dockerfile:1
ARG BASE=busybox
FROM $BASE AS base
MAINTAINER someone@example.com
LABEL org.test.kind="every instruction" \
      org.test.other=yes
ENV GREETING="hello world" \
    WHO=berth
ENV LEGACY value with spaces
WORKDIR /app
COPY a.txt dir/ ./
COPY --chown=1000:1000 --chmod=600 a.txt /owned/a.txt
COPY *.md /docs/
ADD archive.tar.gz /opt/
ARG COLOR=blue
RUN echo "$GREETING from ${WHO:-nobody} in ${COLOR}" > greeting \
 && ls /opt > listing
RUN <<EOF
echo heredoc > /app/heredoc.txt
EOF
SHELL ["/bin/sh", "-c"]
USER 1000:1000
EXPOSE 8080 53/udp
VOLUME /data
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=5s --retries=2 CMD true
ONBUILD RUN echo triggered > /tmp/trigger
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /app/greeting"]
"#;

#[test]
fn every_instruction_and_the_cache() {
    let d = Daemon::start();
    let dir = context(&[
        ("Dockerfile", EVERY_INSTRUCTION),
        ("a.txt", "file a\n"),
        ("dir/b.txt", "file b\n"),
        ("dir/sub/c.txt", "file c\n"),
        ("one.md", "1"),
        ("two.md", "2"),
        ("secret.key", "do not send"),
        (".dockerignore", "*.key\n"),
    ]);
    tar_gz(
        &dir.path().join("archive.tar.gz"),
        "from-archive.txt",
        b"extracted\n",
    );
    let o = build(&d, &dir, &["-t", "every:1", "--build-arg", "COLOR=red"]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(out.contains("Step 1/22 : FROM $BASE AS base"), "{out}");
    assert!(out.contains("Successfully built "), "{out}");
    assert!(out.contains("Successfully tagged every:1\n"), "{out}");
    assert!(out.contains("MAINTAINER is deprecated"), "{out}");

    // the image runs its CMD through its ENTRYPOINT
    let o = d.berth(&["run", "--rm", "every:1"]);
    assert_eq!(
        stdout(&o),
        "hello world from berth in red\n",
        "{}",
        stderr(&o)
    );
    // files: COPY's directory rule, --chown/--chmod, wildcards, ADD's
    // extraction, the heredoc, .dockerignore
    let files = run_in(
        &d,
        "every:1",
        "cd /app && ls; cat a.txt b.txt sub/c.txt; stat -c '%u:%g %a' /owned/a.txt; \
         ls /docs; cat /opt/from-archive.txt; cat listing heredoc.txt; \
         ls /app/secret.key 2>&1; id -u",
    );
    assert_eq!(
        files,
        "a.txt\nb.txt\ngreeting\nheredoc.txt\nlisting\nsub\n\
         file a\nfile b\nfile c\n1000:1000 600\none.md\ntwo.md\nextracted\nfrom-archive.txt\nheredoc\n\
         ls: /app/secret.key: No such file or directory\n1000\n"
    );
    // the config, through the docker CLI
    let o = d.docker(&[
        "image",
        "inspect",
        "-f",
        "{{.Config.WorkingDir}}|{{.Config.User}}|{{json .Config.ExposedPorts}}|{{json .Config.Volumes}}|{{.Config.StopSignal}}|{{json .Config.Labels}}|{{json .Config.Healthcheck}}|{{json .Config.OnBuild}}|{{.Author}}",
        "every:1",
    ]);
    assert_eq!(
        stdout(&o),
        "/app|1000:1000|{\"53/udp\":{},\"8080/tcp\":{}}|{\"/data\":{}}|SIGQUIT|{\"org.test.kind\":\"every instruction\",\"org.test.other\":\"yes\"}|{\"Test\":[\"CMD-SHELL\",\"true\"],\"Interval\":5000000000,\"Retries\":2}|[\"RUN echo triggered > /tmp/trigger\"]|someone@example.com\n",
        "{}",
        stderr(&o)
    );
    let env = inspect(&d, "every:1", "{{json .Config.Env}}");
    assert!(env.contains("\"GREETING=hello world\""), "{env}");
    assert!(env.contains("\"LEGACY=value with spaces\""), "{env}");
    assert!(!env.contains("COLOR"), "build args are not kept: {env}");

    // the same build again: every step from the cache, same image
    let id = inspect(&d, "every:1", "{{.Id}}");
    let o = build(&d, &dir, &["-t", "every:2", "--build-arg", "COLOR=red"]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert_eq!(out.matches("Using cache").count(), 21, "{out}");
    assert_eq!(inspect(&d, "every:2", "{{.Id}}"), id);
    // another build arg: the cache holds up to the RUN that sees it
    let o = build(&d, &dir, &["-t", "every:3", "--build-arg", "COLOR=green"]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert_eq!(out.matches("Using cache").count(), 10, "{out}");
    assert_eq!(
        run_in(&d, "every:3", "cat /app/greeting"),
        "hello world from berth in green\n"
    );
    // a changed file: the COPY that reads it and everything after it runs
    std::fs::write(dir.path().join("dir/b.txt"), "file b, changed\n").expect("write");
    let o = build(&d, &dir, &["-t", "every:4", "--build-arg", "COLOR=red"]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert_eq!(out.matches("Using cache").count(), 5, "{out}");
    assert_eq!(run_in(&d, "every:4", "cat /app/b.txt"), "file b, changed\n");
    // --no-cache runs everything
    let o = build(&d, &dir, &["--no-cache", "-q", "--build-arg", "COLOR=red"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("sha256:"), "{}", stdout(&o));
    assert!(!stdout(&o).contains("Using cache"));

    // ONBUILD triggers run in the child's build
    let child = context(&[("Dockerfile", "FROM every:1\nRUN test -f /tmp/trigger\n")]);
    let o = build(&d, &child, &["-t", "child"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    // build steps are intermediate images: hidden from `images`, shown by -a
    let listed = stdout(&d.berth(&["images", "-q"])).lines().count();
    let all = stdout(&d.berth(&["images", "-a", "-q"])).lines().count();
    assert!(all > listed + 20, "{listed} {all}");
    // no build container is left behind
    assert_eq!(stdout(&d.berth(&["ps", "-aq"])), "");
}

#[test]
fn multi_stage_builds_only_what_the_target_needs() {
    let d = Daemon::start();
    let dir = context(&[(
        "Dockerfile",
        "FROM busybox AS build\n\
         RUN echo built > /out.txt\n\
         FROM busybox AS unused\n\
         RUN echo this stage must not run && exit 1\n\
         FROM build AS test\n\
         RUN grep built /out.txt\n\
         FROM scratch\n\
         COPY --from=build /out.txt /result/\n\
         COPY --from=0 /bin/busybox /bin/busybox\n\
         COPY --from=busybox:latest /bin/busybox /bin/cat\n\
         CMD [\"/bin/busybox\", \"cat\", \"/result/out.txt\"]\n",
    )]);
    let o = build(&d, &dir, &["-t", "multi"]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(!out.contains("must not run"), "{out}");
    let o = d.berth(&["run", "--rm", "multi"]);
    assert_eq!(stdout(&o), "built\n", "{}", stderr(&o));
    // the final image holds only what it copied
    let o = d.berth(&[
        "run",
        "--rm",
        "multi",
        "/bin/busybox",
        "find",
        "/bin",
        "/result",
        "-type",
        "f",
    ]);
    let mut found: Vec<String> = stdout(&o).lines().map(String::from).collect();
    found.sort();
    assert_eq!(
        found,
        ["/bin/busybox", "/bin/cat", "/result/out.txt"],
        "{}",
        stderr(&o)
    );
    assert_eq!(inspect(&d, "multi", "{{len .RootFS.Layers}}"), "3");
    // --target stops at a stage
    let o = build(&d, &dir, &["-t", "multi:test", "--target", "test"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(run_in(&d, "multi:test", "cat /out.txt"), "built\n");
    let o = build(&d, &dir, &["--target", "nosuch"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("failed to reach build target nosuch in Dockerfile"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn squash_merges_the_new_layers_and_keeps_history() {
    let d = Daemon::start();
    let dir = context(&[(
        "Dockerfile",
        "FROM busybox\n\
         RUN echo one > /one && echo gone > /tmp/gone\n\
         RUN echo two > /two && rm /tmp/gone && rm /bin/vi\n\
         RUN echo three > /three\n",
    )]);
    let o = build(&d, &dir, &["-t", "plain"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(inspect(&d, "plain", "{{len .RootFS.Layers}}"), "4");
    let o = build(&d, &dir, &["-t", "squashed", "--squash"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(inspect(&d, "squashed", "{{len .RootFS.Layers}}"), "2");
    // history keeps each instruction, plus the merge
    let h = stdout(&d.berth(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}|{{.Comment}}",
        "squashed",
    ]));
    assert!(h.contains("echo three > /three"), "{h}");
    assert!(h.contains("echo one > /one"), "{h}");
    assert!(h.contains("|merge sha256:"), "{h}");
    // the merged layer has the files and the deletions (of a file of the
    // base image too)
    assert_eq!(
        run_in(
            &d,
            "squashed",
            "cat /one /two /three; ls /tmp/gone /bin/vi 2>/dev/null | wc -l"
        ),
        "one\ntwo\nthree\n0\n"
    );
}

#[test]
fn failures_are_clear_and_leave_nothing_behind() {
    let d = Daemon::start();
    let dir = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN echo about to fail && exit 3\nRUN echo never\n",
    )]);
    let o = build(&d, &dir, &["-t", "broken"]);
    assert_eq!(code(&o), 3, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("about to fail"), "{}", stdout(&o));
    assert!(
        stderr(&o).contains(
            "The command '/bin/sh -c echo about to fail && exit 3' returned a non-zero code: 3"
        ),
        "{}",
        stderr(&o)
    );
    assert!(!stdout(&o).contains("never"));
    assert_eq!(code(&d.berth(&["image", "inspect", "broken"])), 1);
    // the failed step's container stays, as Docker's classic builder
    // leaves it without --force-rm
    let left = stdout(&d.berth(&["ps", "-aq"]));
    assert_eq!(left.lines().count(), 1, "{left}");
    assert!(d.berth(&["rm", left.trim()]).status.success());

    let cases: &[(&str, &str)] = &[
        (
            "FROM busybox\nRUN true\nFOO bar\n",
            "dockerfile parse error line 3: unknown instruction: FOO",
        ),
        ("FROM busybox\nCOPY missing.txt /x\n", "missing.txt"),
        (
            "FROM busybox\nCOPY ../outside /x\n",
            "outside the build context",
        ),
        ("RUN true\n", "no build stage in current context"),
    ];
    for (df, want) in cases {
        let dir = context(&[("Dockerfile", df)]);
        let o = build(&d, &dir, &[]);
        assert_eq!(code(&o), 1, "{df}");
        assert!(stderr(&o).contains(want), "{df}: {}", stderr(&o));
    }
    let o = build(
        &d,
        &context(&[("Dockerfile", "FROM busybox\n")]),
        &["-t", "Bad:Name"],
    );
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("invalid reference format"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stdout(&d.berth(&["ps", "-aq"])), "");
}

#[test]
fn build_secrets_and_cache_mounts_leave_no_trace() {
    let d = Daemon::start();
    let dir = context(&[(
        "Dockerfile",
        "FROM busybox\n\
         RUN --mount=type=secret,id=token echo \"secret of $(wc -c < /run/secrets/token) bytes\"\n\
         RUN --mount=type=cache,target=/cache echo run >> /cache/runs && wc -l < /cache/runs > /runs-seen\n",
    )]);
    let secret = dir.path().join("token.txt");
    std::fs::write(&secret, "s3cr3t-value").expect("write");
    let spec = format!("id=token,src={}", secret.display());
    let o = build(&d, &dir, &["-t", "secretive", "--secret", &spec]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("secret of 12 bytes"), "{}", stdout(&o));
    assert_eq!(
        run_in(
            &d,
            "secretive",
            "ls -d /run/secrets /cache 2>/dev/null | wc -l; cat /runs-seen"
        ),
        "0\n1\n"
    );
    // nothing of the secret in any layer
    let saved = d.berth(&["save", "secretive"]);
    assert!(saved.status.success());
    assert!(
        !saved.stdout.windows(12).any(|w| w == b"s3cr3t-value"),
        "the secret is in the image"
    );
    // the cache mount outlives the build: a no-cache rebuild sees it
    let o = build(
        &d,
        &dir,
        &["-t", "secretive:2", "--no-cache", "--secret", &spec],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(run_in(&d, "secretive:2", "cat /runs-seen"), "2\n");
    // the cache mount is build cache: in `system df`, gone after a prune
    let df = stdout(&d.docker(&["system", "df", "--format", "{{.Type}} {{.TotalCount}}"]));
    assert!(df.contains("Build Cache 1\n"), "{df}");
    let o = d.berth(&["builder", "prune", "-f"]);
    let out = stdout(&o);
    assert!(
        out.starts_with("Deleted build cache objects:\n"),
        "{out}{}",
        stderr(&o)
    );
    assert!(out.contains("Total reclaimed space: "), "{out}");
    let o = build(
        &d,
        &dir,
        &["-t", "secretive:3", "--no-cache", "--secret", &spec],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(run_in(&d, "secretive:3", "cat /runs-seen"), "1\n");
    // `builder prune -a` (here through the docker CLI) forgets the step cache
    let o = d.docker(&["builder", "prune", "-a", "-f"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("Total reclaimed space:"),
        "{}",
        stdout(&o)
    );
    let o = build(&d, &dir, &["-t", "secretive:4", "--secret", &spec]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(!stdout(&o).contains("Using cache"), "{}", stdout(&o));
    // a missing required secret fails clearly
    let dir = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN --mount=type=secret,id=nope,required=true true\n",
    )]);
    let o = build(&d, &dir, &[]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("secret nope not found"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn docker_cli_builds_against_berth() {
    let d = Daemon::start();
    let dir = context(&[
        (
            "Dockerfile",
            "FROM busybox\nCOPY hello.txt /\nRUN cat /hello.txt\nCMD [\"cat\", \"/hello.txt\"]\n",
        ),
        ("hello.txt", "hello from the docker CLI\n"),
    ]);
    let iid = dir.path().join("iid");
    let o = d.docker(&[
        "build",
        "-t",
        "fromdocker:v1",
        "--iidfile",
        iid.to_str().expect("utf-8"),
        ctx_path(&dir),
    ]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(out.contains("Step 3/4 : RUN cat /hello.txt"), "{out}");
    assert!(out.contains("hello from the docker CLI"), "{out}");
    assert!(out.contains("Successfully tagged fromdocker:v1"), "{out}");
    let id = std::fs::read_to_string(&iid).expect("iidfile");
    assert_eq!(inspect(&d, "fromdocker:v1", "{{.Id}}"), id);
    let o = d.docker(&["run", "--rm", "fromdocker:v1"]);
    assert_eq!(stdout(&o), "hello from the docker CLI\n", "{}", stderr(&o));
    // again: cached, through the docker CLI's classic builder output
    let o = d.docker(&["build", "-t", "fromdocker:v2", ctx_path(&dir)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).matches("Using cache").count(),
        3,
        "{}",
        stdout(&o)
    );
    // a failing RUN's code is the CLI's exit code
    let bad = context(&[("Dockerfile", "FROM busybox\nRUN exit 7\n")]);
    let o = d.docker(&["build", ctx_path(&bad)]);
    assert_eq!(code(&o), 7, "{}{}", stdout(&o), stderr(&o));
    // rmi removes the build steps under the image, as Docker does
    let before = stdout(&d.berth(&["images", "-a", "-q"])).lines().count();
    let o = d.docker(&["rmi", "fromdocker:v1", "fromdocker:v2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).matches("Deleted: sha256:").count() >= 3,
        "{}",
        stdout(&o)
    );
    let after = stdout(&d.berth(&["images", "-a", "-q"])).lines().count();
    assert!(after < before, "{before} {after}");
}

/// A python http.server in the daemon's network namespace (the daemon
/// downloads ADD's URLs there), killed on drop.
struct WebServer(std::process::Child);

impl Drop for WebServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn web_server(d: &Daemon, dir: &Path, port: u16) -> WebServer {
    let child = std::process::Command::new("nsenter")
        .args([
            "-t",
            &d.ns_pid.to_string(),
            "-n",
            "/usr/bin/python3",
            "-m",
            "http.server",
        ])
        .arg(port.to_string())
        .args(["--bind", "127.0.0.1", "--directory"])
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 http.server");
    let server = WebServer(child);
    let url = format!("http://127.0.0.1:{port}/");
    assert!(
        common::eventually(10, || {
            std::process::Command::new("nsenter")
                .args([
                    "-t",
                    &d.ns_pid.to_string(),
                    "-n",
                    "curl",
                    "-sf",
                    "-o",
                    "/dev/null",
                    &url,
                ])
                .status()
                .is_ok_and(|s| s.success())
        }),
        "the web server did not come up"
    );
    server
}

#[test]
fn add_downloads_urls() {
    let d = Daemon::start();
    let site = tempfile::tempdir().expect("tempdir");
    std::fs::write(site.path().join("remote.txt"), "from the web\n").expect("write");
    tar_gz(&site.path().join("bundle.tar.gz"), "inner.txt", b"inner\n");
    let _server = web_server(&d, site.path(), 18080);
    let sum = common::sha256_digest(b"from the web\n");
    let dir = context(&[(
        "Dockerfile",
        &format!(
            "FROM busybox\n\
             ADD http://127.0.0.1:18080/remote.txt /web/\n\
             ADD http://127.0.0.1:18080/bundle.tar.gz /web/\n\
             ADD --checksum={sum} http://127.0.0.1:18080/remote.txt /checked.txt\n"
        ),
    )]);
    let o = build(&d, &dir, &["-t", "web"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    // the same downloads again: cached
    let o = build(&d, &dir, &["-t", "web:again"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(
        stdout(&o).matches("Using cache").count(),
        3,
        "{}",
        stdout(&o)
    );
    // downloads are files (0600), never unpacked
    assert_eq!(
        run_in(
            &d,
            "web",
            "ls /web; stat -c %a /web/remote.txt; cat /web/remote.txt /checked.txt"
        ),
        "bundle.tar.gz\nremote.txt\n600\nfrom the web\nfrom the web\n"
    );
    // a wrong checksum and an unreachable URL fail clearly
    let bad = context(&[(
        "Dockerfile",
        "FROM busybox\nADD --checksum=sha256:0000000000000000000000000000000000000000000000000000000000000000 http://127.0.0.1:18080/remote.txt /x\n",
    )]);
    let o = build(&d, &bad, &[]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("digest mismatch"), "{}", stderr(&o));
    let gone = context(&[(
        "Dockerfile",
        "FROM busybox\nADD http://127.0.0.1:1/nothing /x\n",
    )]);
    let o = build(&d, &gone, &[]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("ADD http://127.0.0.1:1/nothing: failed to GET"),
        "{}",
        stderr(&o)
    );
    let missing = context(&[(
        "Dockerfile",
        "FROM busybox\nADD http://127.0.0.1:18080/missing.txt /x\n",
    )]);
    let o = build(&d, &missing, &[]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("404"), "{}", stderr(&o));
}

fn raw_tar(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, data, link) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        // raw names: the tar crate refuses `..` through its safe setters
        let bytes = name.as_bytes();
        h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        if let Some(l) = link {
            // raw too: the tar crate writes a target of "/" as "//"
            h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_cksum();
        b.append(&h, *data).expect("append");
    }
    b.into_inner().expect("tar")
}

fn build_stream(d: &Daemon, tar: &[u8]) -> String {
    let (status, _, body) =
        common::raw_request(&d.sock, "POST", "/build?t=hostile", Some(tar)).expect("POST /build");
    assert_eq!(status, 200);
    String::from_utf8_lossy(&body).into_owned()
}

#[test]
fn hostile_contexts_and_stage_references_are_contained() {
    let d = Daemon::start();
    let df: &[u8] = b"FROM busybox\nCOPY . /ctx/\n";
    // a member that climbs out of the context fails the build
    let out = build_stream(
        &d,
        &raw_tar(&[
            ("Dockerfile", tar::EntryType::Regular, df, None),
            ("../escape.txt", tar::EntryType::Regular, b"x", None),
        ]),
    );
    assert!(out.contains("would be written outside"), "{out}");
    assert_eq!(code(&d.berth(&["image", "inspect", "hostile"])), 1);
    // a symlink to / cannot carry a later member out of the context
    let out = build_stream(
        &d,
        &raw_tar(&[
            ("Dockerfile", tar::EntryType::Regular, df, None),
            ("link", tar::EntryType::Symlink, b"", Some("/")),
            (
                "link/etc/berth-build-escape",
                tar::EntryType::Regular,
                b"caught\n",
                None,
            ),
        ]),
    );
    assert!(out.contains("Successfully tagged hostile:latest"), "{out}");
    assert!(!Path::new("/etc/berth-build-escape").exists());
    assert_eq!(
        run_in(
            &d,
            "hostile",
            "cat /ctx/etc/berth-build-escape; readlink /ctx/link"
        ),
        "caught\n/\n"
    );
    // a stage cannot copy from itself or from a later stage
    for df in [
        "FROM busybox AS a\nCOPY --from=a /bin/sh /x\n",
        "FROM busybox AS a\nCOPY --from=1 /bin/sh /x\nFROM busybox AS b\n",
    ] {
        let dir = context(&[("Dockerfile", df)]);
        let o = build(&d, &dir, &["--target", "a"]);
        assert_eq!(code(&o), 1, "{df}");
        assert!(
            stderr(&o).contains("itself or a later stage"),
            "{df}: {}",
            stderr(&o)
        );
    }
}

/// `berth build` with `input` on its stdin.
fn build_with_stdin(d: &Daemon, args: &[&str], input: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(common::berth_bin())
        .arg("build")
        .args(args)
        .env("BERTH_HOST", d.host())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("berth build");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("writing stdin");
    child.wait_with_output().expect("berth build")
}

#[test]
fn dockerfiles_from_stdin_and_outside_the_context() {
    let d = Daemon::start();
    let dir = context(&[("data.txt", "context data\n")]);
    // -f - : the Dockerfile on stdin, the context from the directory
    let o = build_with_stdin(
        &d,
        &["-t", "stdin-df", "-f", "-", ctx_path(&dir)],
        b"FROM busybox\nCOPY data.txt /\n",
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(run_in(&d, "stdin-df", "cat /data.txt"), "context data\n");
    // `build -` with a Dockerfile: no context at all
    let o = build_with_stdin(
        &d,
        &["-t", "no-ctx", "-"],
        b"FROM busybox\nRUN echo made > /made\n",
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(run_in(&d, "no-ctx", "cat /made"), "made\n");
    // -f naming a file outside the context, with an escape directive
    let elsewhere = context(&[(
        "build.Dockerfile",
        "# escape=`\nFROM busybox\nRUN echo one `\n    two > /joined\nCOPY data.txt /\n",
    )]);
    let df = elsewhere.path().join("build.Dockerfile");
    let o = build(
        &d,
        &dir,
        &["-t", "outside-df", "-f", df.to_str().expect("utf-8")],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(
        run_in(&d, "outside-df", "cat /joined /data.txt"),
        "one two\ncontext data\n"
    );
}

#[test]
fn independent_stages_build_at_once_and_report_in_order() {
    let d = Daemon::start();
    let stage =
        "RUN cut -d' ' -f1 /proc/uptime > /start && sleep 1 && cut -d' ' -f1 /proc/uptime > /end\n";
    let dir = context(&[(
        "Dockerfile",
        &format!(
            "FROM busybox AS a\n{stage}FROM busybox AS b\n{stage}FROM busybox\n\
             COPY --from=a /start /a-start\nCOPY --from=a /end /a-end\n\
             COPY --from=b /start /b-start\nCOPY --from=b /end /b-end\n"
        ),
    )]);
    let o = build(&d, &dir, &["-t", "waves"]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    // the output keeps the file's order, stage by stage
    let steps: Vec<&str> = out.lines().filter(|l| l.starts_with("Step ")).collect();
    let numbers: Vec<String> = steps
        .iter()
        .map(|l| l.split_whitespace().nth(1).unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        numbers,
        [
            "1/9", "2/9", "3/9", "4/9", "5/9", "6/9", "7/9", "8/9", "9/9"
        ],
        "{out}"
    );
    // a and b ran at the same time: their intervals overlap
    let times: Vec<f64> = run_in(&d, "waves", "cat /a-start /a-end /b-start /b-end")
        .lines()
        .map(|l| l.trim().parse().expect("uptime"))
        .collect();
    let (a0, a1, b0, b1) = (times[0], times[1], times[2], times[3]);
    assert!(
        a0 < b1 && b0 < a1,
        "stages ran one after the other: {times:?}"
    );
}

#[test]
fn cache_from_an_image_without_local_steps() {
    let d = Daemon::start();
    let dir = context(&[
        (
            "Dockerfile",
            "FROM busybox\nCOPY app.txt /app/\nRUN cat /app/app.txt > /app/copy\nENV MODE=prod\nCMD [\"cat\", \"/app/copy\"]\n",
        ),
        ("app.txt", "the app\n"),
    ]);
    let o = build(&d, &dir, &["-t", "app:1"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    // as if pulled on another machine: the image, without its build steps
    let saved = d.berth(&["save", "app:1"]);
    assert!(saved.status.success());
    let archive = dir.path().join("app.tar");
    std::fs::write(&archive, &saved.stdout).expect("write");
    let o = d.berth(&["rmi", "app:1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = d.berth(&["load", "-i", archive.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}", stderr(&o));
    // without --cache-from the loaded image is no cache; with it, every
    // step is
    let o = build(&d, &dir, &["-t", "app:nocachefrom"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).matches("Using cache").count(),
        0,
        "{}",
        stdout(&o)
    );
    let fresh = context(&[
        (
            "Dockerfile",
            std::str::from_utf8(&std::fs::read(dir.path().join("Dockerfile")).expect("read"))
                .expect("utf-8"),
        ),
        ("app.txt", "the app\n"),
    ]);
    let o = d.berth(&["rmi", "app:nocachefrom"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = build(&d, &fresh, &["-t", "app:2", "--cache-from", "app:1"]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert_eq!(out.matches("Using cache").count(), 4, "{out}");
    assert!(!out.contains("Running in"), "{out}");
    let o = d.berth(&["run", "--rm", "app:2"]);
    assert_eq!(stdout(&o), "the app\n", "{}", stderr(&o));
    assert_eq!(
        inspect(&d, "app:2", "{{json .RootFS.Layers}}"),
        inspect(&d, "app:1", "{{json .RootFS.Layers}}")
    );
    // a changed file breaks the match from the COPY on
    std::fs::write(fresh.path().join("app.txt"), "changed\n").expect("write");
    let o = build(&d, &fresh, &["-t", "app:3", "--cache-from", "app:1"]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert_eq!(out.matches("Using cache").count(), 0, "{out}");
    assert_eq!(stdout(&d.berth(&["run", "--rm", "app:3"])), "changed\n");
}

#[test]
fn build_options_reach_the_steps() {
    let d = Daemon::start();
    let dir = context(&[(
        "Dockerfile",
        "FROM busybox\n\
         RUN grep -c : /proc/net/dev > /default-ifaces\n\
         RUN --network=none grep -c : /proc/net/dev > /none-ifaces\n\
         RUN grep '[[:space:]]db$' /etc/hosts > /hosts-seen; echo \"proxy=$HTTP_PROXY\" > /proxy-seen\n",
    )]);
    let o = build(
        &d,
        &dir,
        &[
            "-t",
            "options",
            "--add-host",
            "db:10.1.2.3",
            "--label",
            "built.by=berth",
            "--build-arg",
            "HTTP_PROXY=http://proxy.invalid:3128",
        ],
    );
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    // a proxy arg needs no ARG and draws no "not consumed" warning
    assert!(!out.contains("were not consumed"), "{out}");
    assert_eq!(
        run_in(
            &d,
            "options",
            "cat /default-ifaces /none-ifaces /hosts-seen /proxy-seen"
        ),
        "2\n1\n10.1.2.3\tdb\nproxy=http://proxy.invalid:3128\n"
    );
    assert_eq!(
        inspect(&d, "options", "{{index .Config.Labels \"built.by\"}}"),
        "berth"
    );
    // the proxy is not in the image's history or config
    let h = stdout(&d.berth(&["history", "--no-trunc", "options"]));
    assert!(!h.contains("proxy.invalid"), "{h}");
    assert!(!inspect(&d, "options", "{{json .Config.Env}}").contains("PROXY"));
    // the whole build again with --network none: the default RUN sees lo only
    let o = build(
        &d,
        &dir,
        &["-t", "options:none", "--network", "none", "--no-cache"],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(run_in(&d, "options:none", "cat /default-ifaces"), "1\n");
}

#[test]
fn edge_cases_of_copy_run_and_the_cache() {
    let d = Daemon::start();
    let dir = context(&[
        (
            "Dockerfile",
            "ARG SRC=base\n\
             FROM busybox AS base\n\
             RUN echo from-base > /b\n\
             FROM ${SRC}\n\
             ARG U=1000\n\
             ARG FOO=dflt\n\
             COPY *.jar app.jar\n\
             COPY --chown=$U a.txt /owned\n\
             COPY --from=busybox:latest /bin/b*box /x/\n\
             RUN --mount=type=bind,source=src,target=/src cat /src/x > /seen\n\
             RUN <<EOF\nfor i in 1 2; do echo $i; done > /loop\necho \"$FOO\" > /foo\nEOF\n",
        ),
        ("only.jar", "jar\n"),
        ("a.txt", "a\n"),
        ("src/x", "first\n"),
    ]);
    // FOO given without a value and unset here: the default stays
    let o = build(&d, &dir, &["-t", "edges", "--build-arg", "FOO"]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert_eq!(
        run_in(
            &d,
            "edges",
            "cat /b; test -f /app.jar && cat /app.jar; stat -c '%u:%g' /owned; ls /x; cat /seen /loop /foo"
        ),
        "from-base\njar\n1000:1000\nbusybox\nfirst\n1\n2\ndflt\n"
    );
    // a bind mount's content is part of the RUN's key
    std::fs::write(dir.path().join("src/x"), "second\n").expect("write");
    let o = build(&d, &dir, &["-t", "edges:2", "--build-arg", "FOO"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(run_in(&d, "edges:2", "cat /seen"), "second\n");
    assert!(stdout(&o).contains("Using cache"), "{}", stdout(&o));
    // FROM scratch steps are cached like any other
    let scratch = context(&[
        ("Dockerfile", "FROM scratch\nCOPY a.txt /a\n"),
        ("a.txt", "a\n"),
    ]);
    for i in 0..2 {
        let o = build(&d, &scratch, &["-t", "fromscratch"]);
        assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
        assert_eq!(
            stdout(&o).matches("Using cache").count(),
            i,
            "{}",
            stdout(&o)
        );
    }
    // a writable context bind is refused rather than shared
    let rw = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN --mount=type=bind,target=/s,rw true\n",
    )]);
    let o = build(&d, &rw, &[]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("writable (rw) bind mounts are not supported"),
        "{}",
        stderr(&o)
    );
}
