//! The distribution protocol, spoken by curl (a real client) to a registry
//! served on an ephemeral port of 127.0.0.1.

use std::process::Command;

struct Served {
    base: String,
    _dir: tempfile::TempDir,
    _rt: tokio::runtime::Runtime,
}

fn serve() -> Served {
    let dir = tempfile::tempdir().unwrap();
    let reg = berth_registry::ServeOptions {
        root: dir.path().to_path_buf(),
        htpasswd: None,
    }
    .open()
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(berth_registry::serve(listener, reg));
    Served {
        base,
        _dir: dir,
        _rt: rt,
    }
}

/// Runs curl; returns (status, headers, body).
fn curl(args: &[&str]) -> (u16, String, String) {
    let o = Command::new("curl")
        .args(["-s", "-D", "-", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_lowercase(), body.to_string())
}

fn header<'a>(head: &'a str, name: &str) -> &'a str {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_default()
        .trim()
}

fn sha(data: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

fn put_blob(base: &str, repo: &str, data: &str) -> String {
    let d = sha(data.as_bytes());
    let (st, _, body) = curl(&[
        "-X",
        "POST",
        "--data-binary",
        data,
        &format!("{base}/v2/{repo}/blobs/uploads/?digest={d}"),
    ]);
    assert_eq!(st, 201, "{body}");
    d
}

fn manifest(config: &str, layers: &[&str]) -> String {
    let layers: Vec<String> = layers
        .iter()
        .map(|l| format!(r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{l}","size":1}}"#))
        .collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":2}},"layers":[{}]}}"#,
        layers.join(",")
    )
}

#[test]
fn chunked_uploads_ranges_and_errors() {
    let s = serve();
    let b = &s.base;
    let (st, head, _) = curl(&[&format!("{b}/v2/")]);
    assert_eq!(st, 200);
    assert_eq!(
        header(&head, "docker-distribution-api-version"),
        "registry/2.0"
    );

    // a session, two chunks in order, one out of order, then the close
    let (st, head, _) = curl(&["-X", "POST", &format!("{b}/v2/a/b/blobs/uploads/")]);
    assert_eq!(st, 202);
    let loc = header(&head, "location").to_string();
    let (st, head, _) = curl(&[
        "-X",
        "PATCH",
        "-H",
        "Content-Range: 0-4",
        "--data-binary",
        "hello",
        &format!("{b}{loc}"),
    ]);
    assert_eq!((st, header(&head, "range")), (202, "0-4"));
    let (st, _, body) = curl(&[
        "-X",
        "PATCH",
        "-H",
        "Content-Range: 2-4",
        "--data-binary",
        "xyz",
        &format!("{b}{loc}"),
    ]);
    assert_eq!(st, 416, "{body}");
    let (st, head, _) = curl(&[
        "-X",
        "PATCH",
        "-H",
        "Content-Range: 5-10",
        "--data-binary",
        " world",
        &format!("{b}{loc}"),
    ]);
    assert_eq!((st, header(&head, "range")), (202, "0-10"));
    let (st, head, _) = curl(&[&format!("{b}{loc}")]);
    assert_eq!((st, header(&head, "range")), (204, "0-10"));
    let d = sha(b"hello world");
    let (st, head, _) = curl(&["-X", "PUT", &format!("{b}{loc}?digest={d}")]);
    assert_eq!(st, 201);
    assert_eq!(header(&head, "docker-content-digest"), d);

    // whole, part, and the end of a blob
    let (st, _, body) = curl(&[&format!("{b}/v2/a/b/blobs/{d}")]);
    assert_eq!((st, body.as_str()), (200, "hello world"));
    let (st, head, body) = curl(&["-H", "Range: bytes=6-", &format!("{b}/v2/a/b/blobs/{d}")]);
    assert_eq!((st, body.as_str()), (206, "world"));
    assert_eq!(header(&head, "content-range"), "bytes 6-10/11");
    let (st, _, _) = curl(&["-H", "Range: bytes=20-", &format!("{b}/v2/a/b/blobs/{d}")]);
    assert_eq!(st, 416);
    // HEAD: the length of the blob, and no body (curl -I prints the
    // headers a second time where the body would be)
    let (st, head, body) = curl(&["-I", &format!("{b}/v2/a/b/blobs/{d}")]);
    assert_eq!((st, header(&head, "content-length")), (200, "11"));
    assert!(!body.contains("hello"), "{body}");

    // a wrong digest stores nothing
    let wrong = sha(b"other");
    let (st, _, body) = curl(&[
        "-X",
        "POST",
        "--data-binary",
        "not other",
        &format!("{b}/v2/a/b/blobs/uploads/?digest={wrong}"),
    ]);
    assert_eq!(st, 400);
    assert!(body.contains("\"DIGEST_INVALID\""), "{body}");
    let (st, _, body) = curl(&[&format!("{b}/v2/a/b/blobs/{wrong}")]);
    assert_eq!(st, 404);
    assert!(body.contains("\"BLOB_UNKNOWN\""), "{body}");
    assert_eq!(
        std::fs::read_dir(s._dir.path().join("uploads"))
            .unwrap()
            .count(),
        0
    );

    // names and digests that cannot be
    let (st, _, body) = curl(&[&format!("{b}/v2/Upper/tags/list")]);
    assert_eq!(st, 400);
    assert!(body.contains("NAME_INVALID"), "{body}");
    let (st, _, body) = curl(&[&format!("{b}/v2/a/b/blobs/sha256:xyz")]);
    assert_eq!(st, 400);
    assert!(body.contains("DIGEST_INVALID"), "{body}");
    let (st, _, body) = curl(&[&format!("{b}/v2/nothing/tags/list")]);
    assert_eq!(st, 404);
    assert!(body.contains("NAME_UNKNOWN"), "{body}");
}

#[test]
fn manifests_tags_referrers_and_mounts() {
    let s = serve();
    let b = &s.base;
    let cfg = put_blob(b, "app", "{}");
    let layer = put_blob(b, "app", "L");

    // a manifest naming a blob the repository lacks is refused
    let missing = sha(b"missing");
    let (st, _, body) = curl(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/vnd.oci.image.manifest.v1+json",
        "--data-binary",
        &manifest(&cfg, &[&missing]),
        &format!("{b}/v2/app/manifests/v1"),
    ]);
    assert_eq!(st, 400);
    assert!(body.contains("MANIFEST_BLOB_UNKNOWN"), "{body}");

    let m = manifest(&cfg, &[&layer]);
    let md = sha(m.as_bytes());
    for tag in ["v1", "v2", "v3"] {
        let (st, head, _) = curl(&[
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/vnd.oci.image.manifest.v1+json",
            "--data-binary",
            &m,
            &format!("{b}/v2/app/manifests/{tag}"),
        ]);
        assert_eq!(st, 201);
        assert_eq!(header(&head, "docker-content-digest"), md);
    }
    let (st, head, body) = curl(&[&format!("{b}/v2/app/manifests/v1")]);
    assert_eq!((st, body.as_str()), (200, m.as_str()));
    assert_eq!(
        header(&head, "content-type"),
        "application/vnd.oci.image.manifest.v1+json"
    );
    let (st, _, _) = curl(&["-I", &format!("{b}/v2/app/manifests/{md}")]);
    assert_eq!(st, 200);

    // pagination with a Link to the rest
    let (_, head, body) = curl(&[&format!("{b}/v2/app/tags/list?n=2")]);
    assert_eq!(body, r#"{"name":"app","tags":["v1","v2"]}"#);
    assert_eq!(
        header(&head, "link"),
        "</v2/app/tags/list?n=2&last=v2>; rel=\"next\""
    );
    let (_, _, body) = curl(&[&format!("{b}/v2/app/tags/list?n=2&last=v2")]);
    assert_eq!(body, r#"{"name":"app","tags":["v3"]}"#);

    // a referrer: an artifact whose subject is the image
    let art = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/x-sig","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{cfg}","size":2}},"layers":[],"subject":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{md}","size":{}}}}}"#,
        m.len()
    );
    let ad = sha(art.as_bytes());
    let (st, head, _) = curl(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/vnd.oci.image.manifest.v1+json",
        "--data-binary",
        &art,
        &format!("{b}/v2/app/manifests/{ad}"),
    ]);
    assert_eq!(st, 201);
    assert_eq!(header(&head, "oci-subject"), md);
    let (_, _, body) = curl(&[&format!("{b}/v2/app/referrers/{md}")]);
    assert!(
        body.contains(&ad) && body.contains("application/x-sig"),
        "{body}"
    );
    let (_, head, body) = curl(&[&format!(
        "{b}/v2/app/referrers/{md}?artifactType=application/other"
    )]);
    assert!(!body.contains(&ad), "{body}");
    assert_eq!(header(&head, "oci-filters-applied"), "artifacttype");

    // mount into another repository, then delete
    let (st, _, _) = curl(&[
        "-X",
        "POST",
        &format!("{b}/v2/other/blobs/uploads/?mount={layer}&from=app"),
    ]);
    assert_eq!(st, 201);
    let (st, _, _) = curl(&["-I", &format!("{b}/v2/other/blobs/{layer}")]);
    assert_eq!(st, 200);
    let (st, _, _) = curl(&["-X", "DELETE", &format!("{b}/v2/other/blobs/{layer}")]);
    assert_eq!(st, 202);
    let (st, _, _) = curl(&["-I", &format!("{b}/v2/other/blobs/{layer}")]);
    assert_eq!(st, 404);

    // deleting the manifest by digest takes its tags along
    let (st, _, _) = curl(&["-X", "DELETE", &format!("{b}/v2/app/manifests/{md}")]);
    assert_eq!(st, 202);
    let (_, _, body) = curl(&[&format!("{b}/v2/app/tags/list")]);
    assert_eq!(body, r#"{"name":"app","tags":[]}"#);
    let (st, _, body) = curl(&[&format!("{b}/v2/app/manifests/v1")]);
    assert_eq!(st, 404);
    assert!(body.contains("MANIFEST_UNKNOWN"), "{body}");

    // gc sweeps what no manifest references any more (the artifact still
    // holds the config)
    let st_ = berth_registry::Storage::open(s._dir.path()).unwrap();
    let report = berth_registry::gc::collect(
        &st_,
        &berth_registry::gc::GcOptions {
            dry_run: false,
            delete_untagged: false,
        },
    )
    .unwrap();
    assert!(
        report.deleted.iter().any(|d| d.as_str() == layer),
        "{report:?}"
    );
    assert!(
        !report.deleted.iter().any(|d| d.as_str() == cfg),
        "{report:?}"
    );
    let (st, _, _) = curl(&["-I", &format!("{b}/v2/app/blobs/{layer}")]);
    assert_eq!(st, 404);
}
