//! Images as dockerd answers for them (#18): the `reference` list filter,
//! Docker Hub's spellings of official names, tags that would read as ids,
//! `load` and `save` details, and what `volume prune` takes.

mod common;

use common::{Daemon, code, raw_request, sha256_digest, stderr, stdout};

fn run(d: &Daemon, cli: &str, args: &[&str]) -> std::process::Output {
    if cli == "berth" {
        d.berth(args)
    } else {
        d.docker(args)
    }
}

fn sorted_lines(o: &std::process::Output) -> Vec<String> {
    let mut v: Vec<String> = stdout(o).lines().map(String::from).collect();
    v.sort();
    v
}

/// A tar of (name, data) members.
fn tar_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// Percent-encodes a query value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(String::from))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
}

#[test]
fn reference_filters_match_as_dockerd() {
    let d = Daemon::start();
    // a second image, so that a filter has something to leave out
    let ar = d.dir.path().join("tiny.tar");
    std::fs::write(&ar, tar_of(&[("hello", b"hi")])).unwrap();
    let o = d.berth(&["import", ar.to_str().unwrap(), "me/app:v1"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    for t in [
        "busybox:1.36",
        "repoa:v1",
        "repob:x",
        "localhost:5000/foo:bar",
    ] {
        let o = d.docker(&["tag", "busybox", t]);
        assert_eq!(code(&o), 0, "{t}: {}", stderr(&o));
    }
    let cases: &[(&[&str], &[&str])] = &[
        // a name without a tag: every tag of it
        (&["busybox"], &["busybox:1.36", "busybox:latest"]),
        (&["repo*"], &["repoa:v1", "repob:x"]),
        (&["*box:1*"], &["busybox:1.36"]),
        (&["localhost:5000/foo"], &["localhost:5000/foo:bar"]),
        (&["localhost:5000/*:bar"], &["localhost:5000/foo:bar"]),
        // '*' does not cross '/'
        (
            &["*"],
            &["busybox:1.36", "busybox:latest", "repoa:v1", "repob:x"],
        ),
        (&["*/app"], &["me/app:v1"]),
        // any of several
        (&["repoa", "me/app:v1"], &["me/app:v1", "repoa:v1"]),
        // the canonical name, as dockerd 29.5 matches it
        (&["docker.io/library/busybox:latest"], &["busybox:latest"]),
        (&["nothing*"], &[]),
    ];
    for cli in ["docker", "berth"] {
        for (patterns, want) in cases {
            let mut args: Vec<String> = ["images", "--format", "{{.Repository}}:{{.Tag}}"]
                .map(String::from)
                .to_vec();
            for p in *patterns {
                args.push("--filter".into());
                args.push(format!("reference={p}"));
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let o = run(&d, cli, &args);
            assert_eq!(code(&o), 0, "{cli} {patterns:?}: {}", stderr(&o));
            assert_eq!(sorted_lines(&o), *want, "{cli} {patterns:?}");
        }
    }
    // the API lists only the tags the filter matched
    let q = enc(r#"{"reference":["busybox"]}"#);
    let (status, _, body) =
        raw_request(&d.sock, "GET", &format!("/images/json?filters={q}"), None).unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let list: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(
        list[0]["RepoTags"],
        serde_json::json!(["busybox:1.36", "busybox:latest"])
    );
}

#[test]
fn official_names_and_tags_that_read_as_ids() {
    let d = Daemon::start();
    let id_of = |name: &str| {
        let o = d.docker(&["image", "inspect", "--format", "{{.Id}}", name]);
        assert_eq!(code(&o), 0, "{name}: {}", stderr(&o));
        stdout(&o).trim().to_string()
    };
    let id = id_of("busybox");
    for name in [
        "docker.io/busybox",
        "docker.io/library/busybox",
        "index.docker.io/busybox",
        "index.docker.io/library/busybox:latest",
    ] {
        assert_eq!(id_of(name), id, "{name}");
    }
    let o = d.docker(&["tag", "docker.io/library/busybox", "index.docker.io/mine:1"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(id_of("mine:1"), id);
    let o = d.docker(&["run", "--rm", "docker.io/busybox", "echo", "official"]);
    assert_eq!(stdout(&o), "official\n", "{}", stderr(&o));
    let o = d.docker(&["rmi", "index.docker.io/busybox"]);
    assert_eq!(stdout(&o), "Untagged: busybox:latest\n", "{}", stderr(&o));
    let o = d.docker(&["image", "inspect", "busybox"]);
    assert_ne!(code(&o), 0);
    let o = d.docker(&["tag", "mine:1", "docker.io/library/busybox"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    // "sha256" as a repository would read as an id
    let hex = "0123456789abcdef".repeat(4);
    let target = format!("sha256:{hex}");
    for cli in ["docker", "berth"] {
        let o = run(&d, cli, &["tag", "busybox", &target]);
        assert_eq!(code(&o), 1, "{cli}");
        assert!(
            stderr(&o).contains(
                "Error response from daemon: refusing to create an ambiguous tag using digest algorithm as name"
            ),
            "{cli}: {}",
            stderr(&o)
        );
    }
    let cases = [
        (
            format!("/images/busybox/tag?repo=sha256&tag={hex}"),
            "refusing to create an ambiguous tag using digest algorithm as name".to_string(),
        ),
        // the name is checked before the image is looked up
        (
            "/images/nosuch/tag?repo=docker.io/sha256".to_string(),
            "refusing to create an ambiguous tag using digest algorithm as name".to_string(),
        ),
        (
            format!("/images/busybox/tag?repo={hex}"),
            format!("invalid repository name ({hex}), cannot specify 64-byte hexadecimal strings"),
        ),
        (
            format!("/images/busybox/tag?repo={hex}&tag=v1"),
            format!("invalid repository name ({hex}), cannot specify 64-byte hexadecimal strings"),
        ),
        (
            format!("/images/busybox/tag?repo=busybox@sha256:{hex}"),
            "cannot import digest reference".to_string(),
        ),
    ];
    for (path, want) in cases {
        let (status, _, body) = raw_request(&d.sock, "POST", &path, None).unwrap();
        assert_eq!(status, 400, "{path}: {}", String::from_utf8_lossy(&body));
        assert_eq!(message(&body), want, "{path}");
    }
    // a 64-hex name with a tag is a name
    let (status, _, body) = raw_request(
        &d.sock,
        "POST",
        &format!("/images/busybox/tag?repo={hex}:v1"),
        None,
    )
    .unwrap();
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    assert_eq!(id_of(&format!("{hex}:v1")), id);
}

#[test]
fn load_takes_null_repo_tags_and_reports_errors_in_the_stream() {
    let d = Daemon::start_bare();
    let layer = tar_of(&[("hello", b"hi")]);
    let cfg = format!(
        r#"{{"architecture":"amd64","os":"linux","created":"2024-03-01T12:00:00Z","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        sha256_digest(&layer)
    );
    let manifest = r#"[{"Config":"c.json","RepoTags":null,"Layers":["l/layer.tar"]}]"#;
    let ar = d.dir.path().join("untagged.tar");
    std::fs::write(
        &ar,
        tar_of(&[
            ("manifest.json", manifest.as_bytes()),
            ("c.json", cfg.as_bytes()),
            ("l/layer.tar", &layer),
        ]),
    )
    .unwrap();
    let id = sha256_digest(cfg.as_bytes());
    let o = d.docker(&["load", "-i", ar.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("Loaded image ID: {id}\n"));
    let o = d.docker(&["images", "-q", "--no-trunc", "--filter", "dangling=true"]);
    assert_eq!(stdout(&o).trim(), id, "{}", stderr(&o));

    // a broken archive: 200, and the error inside the stream
    let (status, head, body) =
        raw_request(&d.sock, "POST", "/images/load", Some(b"this is not a tar")).unwrap();
    assert_eq!(status, 200, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let line: serde_json::Value = serde_json::from_slice(body.trim_ascii()).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&body));
    });
    let msg = line["errorDetail"]["message"].as_str().unwrap_or_default();
    assert!(!msg.is_empty(), "{line}");
    assert_eq!(line["error"].as_str(), Some(msg), "{line}");
    // both CLIs print the message alone, as the docker CLI does for an
    // error in the stream, and fail
    let junk = d.dir.path().join("junk.tar");
    std::fs::write(&junk, b"this is not a tar").unwrap();
    for cli in ["docker", "berth"] {
        let o = run(&d, cli, &["load", "-i", junk.to_str().unwrap()]);
        assert_eq!(code(&o), 1, "{cli}");
        assert_eq!(stderr(&o).trim(), msg, "{cli}");
    }
}

#[test]
fn save_dates_blobs_by_the_image_creation() {
    let d = Daemon::start();
    let ar = d.dir.path().join("bb.tar");
    let o = d.docker(&["save", "-o", ar.to_str().unwrap(), "busybox"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = d.docker(&["image", "inspect", "--format", "{{.Id}}", "busybox"]);
    let id = stdout(&o).trim().trim_start_matches("sha256:").to_string();
    let o = d.docker(&["image", "inspect", "--format", "{{.Created}}", "busybox"]);
    let created = chrono::DateTime::parse_from_rfc3339(stdout(&o).trim())
        .unwrap_or_else(|e| panic!("{e}: {}", stdout(&o)))
        .timestamp() as u64;
    assert!(created > 0);
    let o = d.docker(&[
        "image",
        "inspect",
        "--format",
        "{{range .RootFS.Layers}}{{.}}{{end}}",
        "busybox",
    ]);
    let layer = stdout(&o).trim().trim_start_matches("sha256:").to_string();

    let mut times = std::collections::HashMap::new();
    let mut a = tar::Archive::new(std::fs::File::open(&ar).unwrap());
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        let name = name.trim_end_matches('/').to_string();
        times.insert(name, e.header().mtime().unwrap());
    }
    let time = |n: &str| {
        *times
            .get(n)
            .unwrap_or_else(|| panic!("{n} missing: {times:?}"))
    };
    // what save.go dates by the image: its config, its layers, blobs/
    assert_eq!(time(&format!("blobs/sha256/{id}")), created);
    assert_eq!(time(&format!("blobs/sha256/{layer}")), created);
    assert_eq!(time("blobs"), created);
    // and by the epoch: the manifest and the index files
    for n in ["manifest.json", "index.json", "oci-layout", "repositories"] {
        assert_eq!(time(n), 0, "{n}");
    }
    let manifests: Vec<&String> = times
        .keys()
        .filter(|n| n.starts_with("blobs/sha256/") && **n != format!("blobs/sha256/{id}"))
        .filter(|n| **n != format!("blobs/sha256/{layer}"))
        .collect();
    assert_eq!(manifests.len(), 1, "{times:?}");
    assert_eq!(time(manifests[0]), 0);
}

#[test]
fn volume_prune_takes_anonymous_volumes_by_default() {
    let d = Daemon::start();
    let volumes = |d: &Daemon| {
        let o = d.docker(&["volume", "ls", "-q"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        sorted_lines(&o)
    };
    let prune_round = |d: &Daemon, cli: &str| -> (String, String, String) {
        // a named volume, one created without a name, the anonymous volume
        // of a removed container and one of a container that is left
        let o = run(d, cli, &["volume", "create", "named"]);
        assert_eq!(code(&o), 0, "{cli}: {}", stderr(&o));
        let o = run(d, cli, &["volume", "create"]);
        assert_eq!(code(&o), 0, "{cli}: {}", stderr(&o));
        let unnamed = stdout(&o).trim().to_string();
        let o = d.docker(&[
            "volume",
            "inspect",
            "--format",
            "{{json .Labels}}",
            &unnamed,
        ]);
        assert_eq!(
            stdout(&o).trim(),
            r#"{"com.docker.volume.anonymous":""}"#,
            "{cli}"
        );
        let o = run(
            d,
            cli,
            &[
                "volume",
                "create",
                "-o",
                "type=tmpfs",
                "-o",
                "device=tmpfs",
                "opts",
            ],
        );
        assert_eq!(code(&o), 0, "{cli}: {}", stderr(&o));
        let o = d.docker(&["create", "--name", "gone", "-v", "/data", "busybox"]);
        assert_eq!(code(&o), 0, "{cli}: {}", stderr(&o));
        let o = d.docker(&[
            "inspect",
            "--format",
            "{{range .Mounts}}{{.Name}}{{end}}",
            "gone",
        ]);
        let orphan = stdout(&o).trim().to_string();
        let o = d.docker(&["rm", "gone"]);
        assert_eq!(code(&o), 0, "{cli}: {}", stderr(&o));
        let o = d.docker(&["create", "--name", "kept", "-v", "/data", "busybox"]);
        assert_eq!(code(&o), 0, "{cli}: {}", stderr(&o));
        let o = d.docker(&[
            "inspect",
            "--format",
            "{{range .Mounts}}{{.Name}}{{end}}",
            "kept",
        ]);
        (unnamed, orphan, stdout(&o).trim().to_string())
    };
    for cli in ["docker", "berth"] {
        let (unnamed, orphan, used) = prune_round(&d, cli);
        let o = run(&d, cli, &["volume", "prune", "-f"]);
        assert_eq!(code(&o), 0, "{cli}: {}", stderr(&o));
        let out = stdout(&o);
        assert!(
            out.contains(&unnamed) && out.contains(&orphan),
            "{cli}: {out}"
        );
        let mut want = vec!["named".to_string(), "opts".to_string(), used.clone()];
        want.sort();
        assert_eq!(volumes(&d), want, "{cli}");
        // -a takes named volumes too, but never one with options
        let o = run(&d, cli, &["volume", "prune", "-af"]);
        assert_eq!(code(&o), 0, "{cli}: {}", stderr(&o));
        let mut want = vec!["opts".to_string(), used.clone()];
        want.sort();
        assert_eq!(volumes(&d), want, "{cli}");
        for args in [
            &["rm", "kept"][..],
            &["volume", "rm", "opts"][..],
            &["volume", "rm", &used][..],
        ] {
            let o = d.docker(args);
            assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
        }
    }

    // before API 1.42 every unused volume goes
    let o = d.docker(&["volume", "create", "old-api"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let (status, _, body) = raw_request(&d.sock, "POST", "/v1.41/volumes/prune", None).unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["VolumesDeleted"], serde_json::json!(["old-api"]));
    // `all` is one Go boolean; an old API's implied all=true counts
    let cases = [
        (
            "/volumes/prune",
            r#"{"all":["yes"]}"#,
            r#"invalid filter 'all': strconv.ParseBool: parsing "yes": invalid syntax"#,
        ),
        (
            "/v1.41/volumes/prune",
            r#"{"all":["false"]}"#,
            "invalid filter 'all=[false true]': only one value is expected",
        ),
    ];
    for (path, filters, want) in cases {
        let (status, _, body) = raw_request(
            &d.sock,
            "POST",
            &format!("{path}?filters={}", enc(filters)),
            None,
        )
        .unwrap();
        assert_eq!(status, 400, "{path} {filters}");
        assert_eq!(message(&body), want);
    }
}
