//! Hostile archives through every route that unpacks one: image import,
//! load and pull (layers), `cp` into a container and build contexts. A bad
//! archive gets a 4xx and a message that names what is wrong, and nothing
//! else on the machine changes: other layers, images and running
//! containers stay whole.

mod common;

use std::path::Path;

use common::registry::Registry;
use common::{Daemon, code, raw_request, sha256_digest, stderr, stdout};

/// A tar member as a hostile tool writes it: the name goes into the header
/// as raw bytes, whatever it says.
struct Member<'a> {
    name: &'a str,
    kind: u8,
    data: &'a [u8],
    link: &'a str,
    /// the size the header claims, when it lies
    claimed: Option<u64>,
}

fn file<'a>(name: &'a str, data: &'a [u8]) -> Member<'a> {
    Member {
        name,
        kind: b'0',
        data,
        link: "",
        claimed: None,
    }
}

fn link<'a>(name: &'a str, kind: u8, target: &'a str) -> Member<'a> {
    Member {
        name,
        kind,
        data: b"",
        link: target,
        claimed: None,
    }
}

fn header(m: &Member) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..m.name.len()].copy_from_slice(m.name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    let size = m.claimed.unwrap_or(m.data.len() as u64);
    if size < 1 << 33 {
        h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    } else {
        // GNU's base-256 form for sizes octal cannot hold
        h[124] = 0x80;
        h[128..136].copy_from_slice(&size.to_be_bytes());
    }
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = m.kind;
    h[157..157 + m.link.len()].copy_from_slice(m.link.as_bytes());
    if m.kind == b'3' || m.kind == b'4' {
        // /dev/null's numbers: 1, 3
        h[329..336].copy_from_slice(b"0000001");
        h[337..344].copy_from_slice(b"0000003");
    }
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// A tar of `members`; with `end`, the two zero blocks that close it.
fn tar_of(members: &[Member], end: bool) -> Vec<u8> {
    let mut t = Vec::new();
    for m in members {
        t.extend_from_slice(&header(m));
        t.extend_from_slice(m.data);
        t.resize(t.len().div_ceil(512) * 512, 0);
    }
    if end {
        t.extend_from_slice(&[0u8; 1024]);
    }
    t
}

/// A `docker save` archive of one image with `layer` as its only layer.
fn save_archive(layer: &[u8], tag: &str) -> Vec<u8> {
    let diff_id = sha256_digest(layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#
    );
    let manifest =
        format!(r#"[{{"Config":"config.json","RepoTags":["{tag}"],"Layers":["layer.tar"]}}]"#);
    tar_of(
        &[
            file("manifest.json", manifest.as_bytes()),
            file("config.json", config.as_bytes()),
            file("layer.tar", layer),
        ],
        true,
    )
}

/// What must survive any hostile archive: the layer directories, the image
/// list, a running container's files and a new container's.
struct Witness {
    layers: Vec<String>,
    images: String,
    bin_entries: String,
}

fn list_dir(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(p)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

impl Witness {
    fn take(d: &Daemon) -> Witness {
        let exec = d.berth(&["exec", "keeper", "sh", "-c", "ls /bin | wc -l"]);
        assert_eq!(code(&exec), 0, "{}", stderr(&exec));
        Witness {
            layers: list_dir(&d.data_root().join("overlay/layers")),
            images: stdout(&d.berth(&["images", "-q", "--no-trunc"])),
            bin_entries: stdout(&exec),
        }
    }

    fn assert_unchanged(&self, d: &Daemon, after: &str) {
        let now = Witness::take(d);
        assert_eq!(now.layers, self.layers, "layers changed after {after}");
        assert_eq!(now.images, self.images, "images changed after {after}");
        assert_eq!(
            now.bin_entries, self.bin_entries,
            "a running container's /bin changed after {after}"
        );
        let o = d.berth(&["run", "--rm", "busybox", "sh", "-c", "ls /bin | wc -l"]);
        assert_eq!(code(&o), 0, "run after {after}: {}", stderr(&o));
        assert_eq!(
            stdout(&o),
            self.bin_entries,
            "a new container after {after}"
        );
    }
}

const HOSTILE_WHITEOUTS: [&str; 4] = [".wh...", ".wh..", "etc/.wh...", ".wh."];

#[test]
fn hostile_whiteouts_are_refused_by_import_load_and_pull_and_touch_nothing() {
    let d = Daemon::start();
    let _reg = Registry::start(&d, &[]);
    let o = d.berth(&["run", "-d", "--name", "keeper", "busybox", "sleep", "1000"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let before = Witness::take(&d);
    assert!(before.layers.len() == 1 && before.bin_entries.trim() != "0");
    for (i, name) in HOSTILE_WHITEOUTS.iter().enumerate() {
        let layer = tar_of(&[file("etc/kept", b"x"), file(name, b"")], true);
        let path = d.dir.path().join(format!("hostile-{i}.tar"));

        std::fs::write(&path, &layer).expect("writing the layer");
        let o = d.berth(&[
            "import",
            &path.display().to_string(),
            &format!("evil:imp{i}"),
        ]);
        assert_ne!(code(&o), 0, "import of {name} succeeded");
        assert!(
            stderr(&o).contains("does not name a file"),
            "{name}: {}",
            stderr(&o)
        );
        before.assert_unchanged(&d, &format!("importing {name}"));

        std::fs::write(&path, save_archive(&layer, &format!("evil:load{i}"))).expect("writing");
        let o = d.berth(&["load", "-i", &path.display().to_string()]);
        assert_ne!(code(&o), 0, "load of {name} succeeded");
        assert!(
            stderr(&o).contains("does not name a file"),
            "{name}: {}",
            stderr(&o)
        );
        before.assert_unchanged(&d, &format!("loading {name}"));

        Registry::put_image(&d, "evil", &format!("w{i}"), &layer);
        let o = d.berth(&["pull", &format!("127.0.0.1:5000/evil:w{i}")]);
        assert_ne!(code(&o), 0, "pull of {name} succeeded");
        assert!(
            stderr(&o).contains("does not name a file"),
            "{name}: {}",
            stderr(&o)
        );
        before.assert_unchanged(&d, &format!("pulling {name}"));
    }
    assert!(
        d.log().contains("unpacking a layer failed"),
        "the refusal is in the daemon's log"
    );
}

#[test]
fn links_and_replaced_directories_in_layers_stay_inside_the_layer() {
    let d = Daemon::start();
    let o = d.berth(&["run", "-d", "--name", "keeper", "busybox", "sleep", "1000"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let before = Witness::take(&d);
    let layer = tar_of(
        &[
            // a symlink out, then a write and a whiteout through it
            link("up", b'2', "../../.."),
            file("up/escaped", b"x"),
            file("up/.wh.layers", b""),
            // a hard link to a file of the host and one to a directory
            link("hl", b'1', "../../../etc/passwd"),
            // a directory replaced by a file, then by a link to /
            Member {
                name: "d/",
                kind: b'5',
                data: b"",
                link: "",
                claimed: None,
            },
            file("d", b"now a file"),
            link("d", b'2', "/"),
            file("d/inside", b"y"),
        ],
        true,
    );
    let path = d.dir.path().join("links.tar");
    std::fs::write(&path, &layer).expect("writing the layer");
    let o = d.berth(&["import", &path.display().to_string(), "links:1"]);
    // whichever member is refused first, nothing leaves the layer
    let layers_dir = d.data_root().join("overlay/layers");
    assert!(!layers_dir.join("escaped").exists());
    assert!(!d.data_root().join("overlay/escaped").exists());
    assert!(!d.data_root().join("escaped").exists());
    if code(&o) == 0 {
        let out = d.berth(&["run", "--rm", "links:1", "cat", "/escaped", "/inside"]);
        assert_eq!(stdout(&out), "xy", "{}", stderr(&out));
        let o = d.berth(&["rmi", "links:1"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    } else {
        assert!(stderr(&o).contains("invalid layer"), "{}", stderr(&o));
    }
    before.assert_unchanged(&d, "a layer of links");
}

/// Makes a file of `size` bytes with `abc` at offset 0, `xyz` at 5 MB and
/// holes between, and tars it with GNU tar in `format` (gnu, or posix with
/// a sparse version).
fn sparse_tar(d: &Daemon, format: &str, version: Option<&str>) -> std::path::PathBuf {
    let dir = d
        .dir
        .path()
        .join(format!("sparse-{format}-{}", version.unwrap_or("gnu")));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let script = format!(
        "cd {dir} && truncate -s 8M f && printf abc | dd of=f conv=notrunc 2>/dev/null \
         && printf xyz | dd of=f bs=1 seek=5000000 conv=notrunc 2>/dev/null \
         && tar --sparse --format={format} {version} -cf ../s-{format}-{v}.tar f",
        dir = dir.display(),
        version = version
            .map(|v| format!("--sparse-version={v}"))
            .unwrap_or_default(),
        v = version.unwrap_or("gnu"),
    );
    let o = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .expect("sh");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    d.dir
        .path()
        .join(format!("s-{format}-{}.tar", version.unwrap_or("gnu")))
}

const SPARSE_CHECK: &str =
    "wc -c < /tmp/f && head -c 3 /tmp/f && tail -c +5000001 /tmp/f | head -c 3";

#[test]
fn sparse_files_keep_their_name_and_content_through_import_and_cp() {
    let d = Daemon::start();
    let o = d.berth(&["run", "-d", "--name", "cc", "busybox", "sleep", "1000"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    for (format, version) in [
        ("gnu", None),
        ("posix", Some("0.0")),
        ("posix", Some("0.1")),
        ("posix", Some("1.0")),
    ] {
        let tar = sparse_tar(&d, format, version);
        let what = format!("{format} {version:?}");
        // as a layer: the file is /f
        let o = d.berth(&["import", &tar.display().to_string(), "sparse:1"]);
        assert_eq!(code(&o), 0, "{what}: {}", stderr(&o));
        // the content, read back by cp out of a container of the image
        let o = d.berth(&["create", "--name", "sp", "sparse:1", "x"]);
        assert_eq!(code(&o), 0, "{what}: {}", stderr(&o));
        let out = d.dir.path().join("out");
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).expect("mkdir");
        let o = d.berth(&["cp", "sp:/f", &out.display().to_string()]);
        assert_eq!(code(&o), 0, "{what}: {}", stderr(&o));
        let got = std::fs::read(out.join("f")).expect("the copied file");
        assert_eq!(got.len(), 8 << 20, "{what}: size");
        assert_eq!(&got[..3], b"abc", "{what}");
        assert_eq!(&got[5_000_000..5_000_003], b"xyz", "{what}");
        assert!(got[3..5_000_000].iter().all(|b| *b == 0), "{what}: holes");
        assert_eq!(code(&d.berth(&["rm", "sp"])), 0);
        assert_eq!(code(&d.berth(&["rmi", "sparse:1"])), 0);

        // through cp into a running container: the file is /x/f
        let (s, _, body) = raw_request(
            &d.sock,
            "PUT",
            "/containers/cc/archive?path=/tmp",
            Some(&std::fs::read(&tar).expect("tar")),
        )
        .expect("request");
        assert_eq!(s, 200, "{what}: {}", String::from_utf8_lossy(&body));
        let o = d.berth(&["exec", "cc", "sh", "-c", SPARSE_CHECK]);
        assert_eq!(code(&o), 0, "{what}: {}", stderr(&o));
        assert_eq!(stdout(&o), "8388608\nabcxyz", "{what}");
        assert_eq!(code(&d.berth(&["exec", "cc", "rm", "/tmp/f"])), 0);
    }
}

#[test]
fn cp_of_hostile_archives_answers_400_and_leaves_no_partial_file() {
    let d = Daemon::start();
    let o = d.berth(&["run", "-d", "--name", "cc", "busybox", "sleep", "1000"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let put = |path: &str, tar: &[u8]| {
        raw_request(
            &d.sock,
            "PUT",
            &format!("/containers/cc/archive?path={path}"),
            Some(tar),
        )
        .expect("request")
    };
    // a header that claims 10 GB in front of 1 KB of data, and no end
    let data = vec![b'z'; 1024];
    let truncated = tar_of(
        &[Member {
            claimed: Some(10_000_000_000),
            ..file("big", &data)
        }],
        false,
    );
    let (s, _, body) = put("/tmp", &truncated);
    let msg = String::from_utf8_lossy(&body);
    assert_eq!(s, 400, "{msg}");
    assert!(msg.contains("truncated"), "{msg}");
    let o = d.berth(&["exec", "cc", "ls", "/tmp"]);
    assert_eq!(stdout(&o), "", "a partial file was left: {}", stdout(&o));

    // a hard link to a file that is neither in the archive nor there
    let dangling = tar_of(&[link("hl", b'1', "missing/file")], true);
    let (s, _, body) = put("/tmp", &dangling);
    let msg = String::from_utf8_lossy(&body);
    assert_eq!(s, 400, "{msg}");
    assert!(
        msg.contains("hard link") && msg.contains("missing/file"),
        "{msg}"
    );

    // a path through a kernel link that leads out of the container
    let ok = tar_of(&[file("f", b"x")], true);
    let (s, _, body) = put("/proc/1/root/tmp", &ok);
    let msg = String::from_utf8_lossy(&body);
    assert!((400..500).contains(&s), "{s} {msg}");
    assert!(msg.contains("/proc/1/root/tmp"), "{msg}");
    // and the good archive still lands where it should
    let (s, _, _) = put("/tmp", &ok);
    assert_eq!(s, 200);
    let o = d.berth(&["exec", "cc", "cat", "/tmp/f"]);
    assert_eq!(stdout(&o), "x");
}

#[test]
fn device_nodes_in_a_build_are_left_out_with_a_message_and_fifos_copied() {
    let d = Daemon::start();
    let ctx = tar_of(
        &[
            file("Dockerfile", b"FROM busybox\nCOPY . /ctx/\n"),
            Member {
                name: "null",
                kind: b'3',
                data: b"",
                link: "",
                claimed: None,
            },
            Member {
                name: "fifo",
                kind: b'6',
                data: b"",
                link: "",
                claimed: None,
            },
        ],
        true,
    );
    let (s, _, body) = raw_request(&d.sock, "POST", "/build?t=devs:1", Some(&ctx)).expect("build");
    let text = String::from_utf8_lossy(&body);
    assert_eq!(s, 200, "{text}");
    assert!(!text.contains("errorDetail"), "{text}");
    // the device is left out, and the build says so; the fifo is copied
    assert!(
        text.contains("skipping the device node /ctx/null: device nodes are not copied"),
        "{text}"
    );
    let o = d.berth(&[
        "run",
        "--rm",
        "devs:1",
        "sh",
        "-c",
        "ls -l /ctx/fifo; ls /ctx",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("prw") && !out.contains("null"), "{out}");
    // a device made by RUN is left out of the step's layer the same way
    let ctx = tar_of(
        &[file(
            "Dockerfile",
            b"FROM busybox\nRUN mknod /made c 1 3 && mkfifo /pipe\n",
        )],
        true,
    );
    let (s, _, body) = raw_request(&d.sock, "POST", "/build?t=devs:2", Some(&ctx)).expect("build");
    let text = String::from_utf8_lossy(&body);
    assert_eq!(s, 200, "{text}");
    assert!(!text.contains("errorDetail"), "{text}");
    let o = d.berth(&[
        "run",
        "--rm",
        "devs:2",
        "sh",
        "-c",
        "test -p /pipe && test ! -e /made",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}
