//! The Kubernetes CRI endpoint through crictl (cri-tools v1.36.0, built by
//! scripts/cri-tools.sh): the runtime's identity and conditions, and the
//! image service on berth's one image store, seen through the Docker API
//! as well. Pulls come from `berth registry` on 127.0.0.1.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::registry::Registry;
use common::{Daemon, code, ok, stderr, stdout};
use serde_json::Value;

fn crictl_bin() -> PathBuf {
    let bin = std::env::var_os("BERTH_CRICTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/cri-tools/crictl")
        });
    assert!(
        bin.exists(),
        "{} is missing: run scripts/cri-tools.sh (scripts/test.sh does)",
        bin.display()
    );
    bin
}

fn cri_socket(d: &Daemon) -> String {
    format!("unix://{}", d.exec_root().join("cri.sock").display())
}

fn crictl(d: &Daemon, args: &[&str]) -> Output {
    let sock = cri_socket(d);
    Command::new(crictl_bin())
        .args(["--runtime-endpoint", &sock, "--image-endpoint", &sock])
        .args(["--timeout", "30s"])
        .args(args)
        .output()
        .expect("running crictl")
}

fn json(o: &Output, what: &str) -> Value {
    let s = ok(o, what);
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("{what}: {e}: {s}"))
}

#[test]
fn crictl_sees_berths_runtime_and_images() {
    let d = Daemon::start();
    let sock = d.exec_root().join("cri.sock");
    let mode = std::fs::metadata(&sock)
        .expect("the CRI socket")
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o660,
        "the CRI socket is root's and its group's, like the Docker socket"
    );

    let o = ok(&crictl(&d, &["version"]), "crictl version");
    assert!(o.contains("RuntimeName:  berth"), "{o}");
    assert!(o.contains("RuntimeApiVersion:  v1"), "{o}");

    let info = json(&crictl(&d, &["info"]), "crictl info");
    let conditions = info["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for kind in ["RuntimeReady", "NetworkReady"] {
        assert!(
            conditions
                .iter()
                .any(|c| c["type"] == kind && c["status"] == true),
            "{kind} in {info}"
        );
    }
    assert_eq!(info["config"]["cgroupDriver"], "cgroupfs", "{info}");

    images_through_both_fronts(&d);
    pulls_from_a_registry(&d);
    bad_image_input(&d);
}

/// The busybox the harness imported through the Docker API is a CRI image
/// with its fully qualified name and berth's image id.
fn images_through_both_fronts(d: &Daemon) {
    let id = ok(
        &d.docker(&["image", "inspect", "--format", "{{.Id}}", "busybox"]),
        "docker image inspect",
    );
    let list = json(&crictl(d, &["images", "-o", "json"]), "crictl images");
    let images = list["images"].as_array().cloned().unwrap_or_default();
    let bb = images
        .iter()
        .find(|i| i["id"] == id.trim())
        .unwrap_or_else(|| panic!("busybox ({}) in {list}", id.trim()));
    assert_eq!(
        bb["repoTags"][0], "docker.io/library/busybox:latest",
        "{bb}"
    );
    assert!(
        bb["size"].as_str().and_then(|s| s.parse::<u64>().ok()) > Some(0),
        "{bb}"
    );

    let status = json(
        &crictl(d, &["inspecti", "-o", "json", "busybox"]),
        "inspecti",
    );
    assert_eq!(status["status"]["id"], id.trim(), "{status}");
    assert!(
        status["info"]["imageSpec"]["rootfs"]["diff_ids"].is_array(),
        "verbose info holds the image's config: {status}"
    );
    // by id too
    let by_id = json(
        &crictl(d, &["inspecti", "-o", "json", id.trim()]),
        "inspecti by id",
    );
    assert_eq!(by_id["status"]["repoTags"], status["status"]["repoTags"]);

    let fs = json(&crictl(d, &["imagefsinfo", "-o", "json"]), "imagefsinfo");
    let usage = &fs["status"]["imageFilesystems"][0];
    assert_eq!(
        usage["fsId"]["mountpoint"],
        d.data_root().display().to_string(),
        "{fs}"
    );
    assert!(
        usage["usedBytes"]["value"]
            .as_str()
            .and_then(|s| s.parse::<u64>().ok())
            > Some(0),
        "{fs}"
    );
}

/// `crictl pull` from `berth registry`: the image is in `docker images`,
/// with its numeric USER as the CRI's uid; `crictl rmi` removes it and all
/// its names, for both fronts.
fn pulls_from_a_registry(d: &Daemon) {
    let _reg = Registry::start(d, &[]);
    let name = "127.0.0.1:5000/cri/app:1";
    ok(
        &d.docker(&["run", "--name", "mk", "busybox", "touch", "/made-for-cri"]),
        "run",
    );
    ok(
        &d.docker(&["commit", "-c", "USER 1002", "mk", name]),
        "commit an image of its own",
    );
    ok(&d.docker(&["rm", "mk"]), "rm");
    ok(&d.docker(&["push", name]), "push");
    let pushed = ok(
        &d.docker(&["image", "inspect", "--format", "{{.Id}}", name]),
        "the pushed image's id",
    );
    ok(&d.docker(&["rmi", name]), "rmi");

    let o = ok(&crictl(d, &["pull", name]), "crictl pull");
    assert!(
        o.contains(pushed.trim()),
        "the image ref is berth's image id: {o}"
    );
    let listed = ok(
        &d.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]),
        "docker images",
    );
    assert!(listed.lines().any(|l| l == name), "{listed}");
    let status = json(&crictl(d, &["inspecti", "-o", "json", name]), "inspecti");
    assert_eq!(status["status"]["repoTags"][0], name, "{status}");
    assert_eq!(status["status"]["uid"]["value"], "1002", "{status}");
    assert!(
        status["status"]["repoDigests"][0]
            .as_str()
            .is_some_and(|d| d.starts_with("127.0.0.1:5000/cri/app@sha256:")),
        "{status}"
    );

    ok(
        &d.docker(&["tag", name, "127.0.0.1:5000/cri/other:2"]),
        "tag",
    );
    let o = crictl(d, &["rmi", name]);
    assert_eq!(code(&o), 0, "crictl rmi: {}", stderr(&o));
    for gone in [name, "127.0.0.1:5000/cri/other:2"] {
        let o = d.docker(&["image", "inspect", gone]);
        assert_ne!(code(&o), 0, "{gone} went with the image");
    }
    // removing what is gone is no error for the CRI
    let o = crictl(d, &["rmi", pushed.trim()]);
    assert!(
        stderr(&o).contains("no such image"),
        "crictl's own check: {}",
        stderr(&o)
    );
    let o = ok(&d.docker(&["image", "inspect", "busybox"]), "busybox stays");
    assert!(o.contains("busybox"));
}

/// Refusals with gRPC codes and messages a person can act on.
fn bad_image_input(d: &Daemon) {
    let o = crictl(d, &["pull", "Not A Reference"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("InvalidArgument"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("invalid image reference"),
        "{}",
        stderr(&o)
    );

    let _reg = Registry::start(d, &[]);
    let o = crictl(d, &["pull", "127.0.0.1:5000/cri/missing:1"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("NotFound"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("127.0.0.1:5000/cri/missing:1"),
        "{}",
        stderr(&o)
    );

    let o = crictl(d, &["inspecti", "nosuch:1"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("no such image"), "{}", stderr(&o));
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
}

/// The pause stand-in (scripts/make-pause-image.sh) under the name the
/// daemon's `cri-sandbox-image` defaults to.
fn import_pause(d: &Daemon) {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    let tar = TAR.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("pause-{}.tar", std::process::id()));
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/make-pause-image.sh");
        let st = Command::new(script)
            .arg(&out)
            .status()
            .expect("make-pause-image.sh");
        assert!(st.success(), "make-pause-image.sh failed");
        out
    });
    ok(
        &d.docker(&[
            "import",
            "-c",
            "ENTRYPOINT [\"/pause\"]",
            "-c",
            "USER 65535:65535",
            &tar.display().to_string(),
            PAUSE,
        ]),
        "import the pause image",
    );
}

const PAUSE: &str = "registry.k8s.io/pause:3.10";

fn write_json(d: &Daemon, name: &str, v: &Value) -> String {
    let path = d.dir.path().join(name);
    std::fs::write(&path, v.to_string()).expect("writing a crictl config");
    path.display().to_string()
}

fn pod_config(name: &str, host_port: u16) -> Value {
    serde_json::json!({
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "attempt": 1},
        "hostname": format!("{name}-host"),
        "labels": {"app": name},
        "annotations": {"note": "kept as given"},
        "port_mappings": [{"container_port": 80, "host_port": host_port}],
        "dns_config": {"servers": ["10.10.10.10"], "searches": ["example.test"], "options": ["ndots:3"]},
        "linux": {}
    })
}

/// `crictl runp`, `pods`, `inspectp`, `stopp` and `rmp`: a sandbox is a
/// pause container the Docker API shows with its `io.kubernetes.*`
/// labels; it has an address on berth's bridge while it runs, survives a
/// daemon kill, and stops and goes with its containers.
#[test]
fn pod_sandboxes_through_crictl() {
    let mut d = Daemon::start();
    import_pause(&d);
    let cfg = write_json(&d, "pod.json", &pod_config("web", 18080));
    let id = ok(&crictl(&d, &["runp", &cfg]), "crictl runp")
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "a full id: {id}");

    let names = ok(
        &d.docker(&[
            "ps",
            "--filter",
            "label=io.kubernetes.cri.kind=sandbox",
            "--format",
            "{{.ID}} {{.Names}} {{.Label \"app\"}}",
        ]),
        "docker ps",
    );
    assert_eq!(
        names.trim(),
        format!("{} k8s_POD_web_default_uid-web_1 web", &id[..12])
    );
    let user = ok(
        &d.docker(&["top", &id, "-eo", "pid,user,args"]),
        "docker top",
    );
    assert!(
        user.contains("65535") && user.contains("/pause"),
        "the infra process: {user}"
    );

    let status = json(&crictl(&d, &["inspectp", "-o", "json", &id]), "inspectp");
    let st = &status["status"];
    assert_eq!(st["state"], "SANDBOX_READY", "{status}");
    assert_eq!(st["metadata"]["name"], "web");
    assert_eq!(st["metadata"]["uid"], "uid-web");
    assert_eq!(st["metadata"]["attempt"], 1);
    assert_eq!(
        st["labels"],
        serde_json::json!({"app": "web"}),
        "only the kubelet's labels"
    );
    assert_eq!(
        st["annotations"],
        serde_json::json!({"note": "kept as given"})
    );
    let ip = st["network"]["ip"].as_str().unwrap_or_default().to_string();
    let bridge_ip = ok(
        &d.docker(&["inspect", "--format", "{{.NetworkSettings.IPAddress}}", &id]),
        "the sandbox's address",
    );
    assert_eq!(ip, bridge_ip.trim(), "the pod's IP is its bridge address");
    assert!(
        status["info"]["sandboxKey"]
            .as_str()
            .is_some_and(|k| !k.is_empty()),
        "{status}"
    );

    let path = ok(
        &d.docker(&["inspect", "--format", "{{.ResolvConfPath}}", &id]),
        "the sandbox's resolv.conf",
    );
    let resolv = std::fs::read_to_string(path.trim()).expect("reading resolv.conf");
    for want in [
        "nameserver 10.10.10.10",
        "search example.test",
        "options ndots:3",
    ] {
        assert!(resolv.contains(want), "{want}: {resolv}");
    }

    // the same metadata and attempt twice is refused
    let o = crictl(&d, &["runp", &cfg]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("AlreadyExists"), "{}", stderr(&o));

    let listed = json(
        &crictl(&d, &["pods", "-o", "json", "--label", "app=web"]),
        "pods",
    );
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    let none = json(
        &crictl(&d, &["pods", "-o", "json", "--label", "app=db"]),
        "pods",
    );
    assert_eq!(
        none["items"].as_array().map(Vec::len).unwrap_or(0),
        0,
        "{none}"
    );

    d.restart_after_kill9();
    let status = json(
        &crictl(&d, &["inspectp", "-o", "json", &id]),
        "inspectp after kill -9",
    );
    assert_eq!(status["status"]["state"], "SANDBOX_READY", "{status}");
    assert_eq!(status["status"]["network"]["ip"], ip.as_str());

    ok(&crictl(&d, &["stopp", &id]), "crictl stopp");
    let status = json(&crictl(&d, &["inspectp", "-o", "json", &id]), "inspectp");
    assert_eq!(status["status"]["state"], "SANDBOX_NOTREADY", "{status}");
    assert_eq!(
        status["status"]["network"]["ip"], "",
        "the address went back"
    );
    ok(&crictl(&d, &["stopp", &id]), "stopping a stopped sandbox");
    ok(&crictl(&d, &["rmp", &id]), "crictl rmp");
    let left = json(&crictl(&d, &["pods", "-o", "json"]), "pods");
    assert_eq!(
        left["items"].as_array().map(Vec::len).unwrap_or(0),
        0,
        "{left}"
    );
    let o = d.docker(&["inspect", &id]);
    assert_ne!(code(&o), 0, "the container went with the sandbox");

    // refusals
    let mut bad = pod_config("../escape", 0);
    bad["port_mappings"] = serde_json::json!([]);
    let cfg = write_json(&d, "bad.json", &bad);
    let o = crictl(&d, &["runp", &cfg]);
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("InvalidArgument")
            && stderr(&o).contains("../escape")
            && stderr(&o).contains("may hold only letters, digits"),
        "{}",
        stderr(&o)
    );
    let o = crictl(&d, &["inspectp", "0123456789ab"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("not found"), "{}", stderr(&o));
}

/// A pod with two containers through crictl: they share the pod's
/// network, IPC and PID namespaces (the pause is PID 1), write the CRI's
/// log format where the kubelet says, run ExecSync (a timed-out command
/// is killed), survive a daemon kill, follow the kubelet's log rotation,
/// and stop and go with their pod.
#[test]
fn containers_in_a_pod_through_crictl() {
    let mut d = Daemon::start();
    import_pause(&d);
    let logs = d.dir.path().join("pod-logs");
    let mut pod = pod_config("shop", 18081);
    pod["log_directory"] = Value::from(logs.display().to_string());
    pod["port_mappings"] = serde_json::json!([{"container_port": 8080, "host_port": 18081}]);
    let pod_file = write_json(&d, "shop.json", &pod);
    let pod_id = ok(&crictl(&d, &["runp", &pod_file]), "runp")
        .trim()
        .to_string();

    let web = serde_json::json!({
        "metadata": {"name": "web", "attempt": 1},
        "image": {"image": "busybox"},
        "command": ["sh", "-c",
            "echo hello World; echo oops >&2; mkdir -p /w && echo served > /w/index.html && exec httpd -f -p 8080 -h /w"],
        "envs": [{"key": "GREETING", "value": "hi"}],
        "labels": {"tier": "web"},
        "annotations": {"note": "as given"},
        "log_path": "web/0.log",
        "linux": {}
    });
    let web_file = write_json(&d, "web.json", &web);
    let id = ok(
        &crictl(&d, &["create", &pod_id, &web_file, &pod_file]),
        "crictl create",
    )
    .trim()
    .to_string();
    let st = json(&crictl(&d, &["inspect", "-o", "json", &id]), "inspect");
    assert_eq!(st["status"]["state"], "CONTAINER_CREATED", "{st}");
    ok(&crictl(&d, &["start", &id]), "crictl start");

    let st = json(&crictl(&d, &["inspect", "-o", "json", &id]), "inspect");
    let s = &st["status"];
    assert_eq!(s["state"], "CONTAINER_RUNNING", "{st}");
    assert_eq!(s["metadata"]["name"], "web");
    assert_eq!(s["labels"], serde_json::json!({"tier": "web"}));
    assert_eq!(s["annotations"], serde_json::json!({"note": "as given"}));
    assert_eq!(s["image"]["image"], "busybox");
    let image_id = ok(
        &d.docker(&["image", "inspect", "--format", "{{.Id}}", "busybox"]),
        "busybox's id",
    );
    assert_eq!(s["imageRef"], image_id.trim());
    let log = logs.join("web/0.log");
    assert_eq!(s["logPath"], log.display().to_string());

    // the pod's namespaces: its pause is PID 1, its name is the pod's
    let o = exec_sync(
        &d,
        &id,
        &[
            "sh",
            "-c",
            "cat /proc/1/cmdline; echo; hostname; echo $GREETING",
        ],
    );
    let lines: Vec<&str> = o.lines().collect();
    assert_eq!(
        lines.first().map(|l| l.trim_end_matches('\0')),
        Some("/pause"),
        "{o}"
    );
    assert_eq!(lines.get(1), Some(&"shop-host"), "{o}");
    assert_eq!(lines.get(2), Some(&"hi"), "{o}");
    let served = common::http_get_in(d.ns_pid, "http://127.0.0.1:18081/");
    assert_eq!(
        served.as_deref().map(str::trim),
        Some("served"),
        "the pod's host port"
    );

    let text = std::fs::read_to_string(&log).expect("the CRI log");
    assert!(cri_line(&text, "stdout", "hello World"), "{text}");
    assert!(cri_line(&text, "stderr", "oops"), "{text}");
    let o = ok(&crictl(&d, &["logs", &id]), "crictl logs");
    assert!(o.contains("hello World"), "{o}");
    let o = ok(&d.docker(&["logs", &id]), "docker logs, from the cache");
    assert!(o.contains("hello World"), "{o}");

    // statistics from the cgroups, per container and per pod
    let st = json(&crictl(&d, &["stats", "-o", "json", &id]), "crictl stats");
    let c = &st["stats"][0];
    assert_eq!(c["attributes"]["id"], id.as_str(), "{st}");
    let counter = |v: &Value| {
        v["value"]
            .as_str()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert!(counter(&c["cpu"]["usageCoreNanoSeconds"]) > 0, "{st}");
    assert!(counter(&c["memory"]["workingSetBytes"]) > 0, "{st}");
    let st = json(
        &crictl(&d, &["statsp", "-o", "json", &pod_id]),
        "crictl statsp",
    );
    let p = &st["stats"][0];
    assert_eq!(p["attributes"]["id"], pod_id.as_str(), "{st}");
    assert!(
        counter(&p["linux"]["process"]["processCount"]) >= 2,
        "httpd and the pause: {st}"
    );

    // a command past its timeout is killed
    let o = crictl(&d, &["exec", "-s", "--timeout", "1", &id, "sleep", "4321"]);
    assert_ne!(code(&o), 0, "timed out");
    let ps = exec_sync(&d, &id, &["ps", "-o", "args"]);
    assert!(
        !ps.contains("sleep 4321"),
        "the timed-out command is gone: {ps}"
    );

    d.restart_after_kill9();
    let st = json(
        &crictl(&d, &["inspect", "-o", "json", &id]),
        "inspect after kill -9",
    );
    assert_eq!(st["status"]["state"], "CONTAINER_RUNNING", "{st}");
    exec_sync(&d, &id, &["sh", "-c", "echo after the kill"]);

    kubelet_rotation(&d, &pod_id, &pod_file, &logs);

    // the Docker API sees the pod's containers with their labels
    let o = ok(
        &d.docker(&[
            "ps",
            "--filter",
            &format!("label=io.kubernetes.sandbox.id={pod_id}"),
            "--format",
            "{{.Names}}",
        ]),
        "docker ps",
    );
    assert_eq!(o.trim(), "k8s_web_shop_default_uid-shop_1", "{o}");
    // and leaves them to the kubelet unless forced
    for (target, words) in [
        (
            &id,
            format!("belongs to Kubernetes pod sandbox {}", &pod_id[..12]),
        ),
        (
            &pod_id,
            "is the sandbox of Kubernetes pod default/shop".to_string(),
        ),
    ] {
        let o = d.docker(&["rm", target]);
        assert_ne!(code(&o), 0);
        assert!(
            stderr(&o).contains(&words) && stderr(&o).contains("use --force"),
            "{}",
            stderr(&o)
        );
    }

    // the CRI's log driver is not the Docker API's to use
    let o = d.docker(&[
        "run",
        "--rm",
        "--log-driver",
        "cri-file",
        "--log-opt",
        "path=/etc/profile.d/x.sh",
        "busybox",
        "true",
    ]);
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("no log driver named 'cri-file' is registered"),
        "{}",
        stderr(&o)
    );

    ok(&crictl(&d, &["stop", "--timeout", "2", &id]), "crictl stop");
    let st = json(&crictl(&d, &["inspect", "-o", "json", &id]), "inspect");
    assert_eq!(st["status"]["state"], "CONTAINER_EXITED", "{st}");
    assert!(
        st["status"]["finishedAt"]
            .as_str()
            .is_some_and(|t| !t.starts_with("1970")),
        "{st}"
    );
    let listed = json(
        &crictl(&d, &["ps", "-a", "-o", "json", "--pod", &pod_id]),
        "crictl ps",
    );
    assert_eq!(
        listed["containers"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );

    // a stopped pod takes no container; its removal takes its containers
    ok(&crictl(&d, &["stopp", &pod_id]), "stopp");
    let o = crictl(&d, &["create", &pod_id, &web_file, &pod_file]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("is not ready"), "{}", stderr(&o));
    ok(&crictl(&d, &["rmp", &pod_id]), "rmp");
    let o = d.docker(&["inspect", &id]);
    assert_ne!(code(&o), 0, "the container went with its pod");
}

/// The kubelet's log rotation: it renames the file and asks for a
/// reopen; the file is back when the call returns, new lines go there and
/// the old file stops growing.
fn kubelet_rotation(d: &Daemon, pod_id: &str, pod_file: &str, logs: &std::path::Path) {
    let ticker = serde_json::json!({
        "metadata": {"name": "ticker"},
        "image": {"image": "busybox"},
        "command": ["sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done"],
        "log_path": "ticker/0.log",
        "linux": {}
    });
    let file = write_json(d, "ticker.json", &ticker);
    let id = ok(&crictl(d, &["create", pod_id, &file, pod_file]), "create")
        .trim()
        .to_string();
    ok(&crictl(d, &["start", &id]), "start");
    let log = logs.join("ticker/0.log");
    let ticks = |p: &std::path::Path| {
        std::fs::read_to_string(p)
            .map(|t| t.matches(" F tick ").count())
            .unwrap_or(0)
    };
    assert!(common::eventually(10, || ticks(&log) > 2), "ticking");
    let old = logs.join("ticker/0.log.1");
    std::fs::rename(&log, &old).unwrap();
    ok(
        &crictl(d, &["logs", "--reopen", &id]),
        "crictl logs --reopen",
    );
    assert!(
        log.exists(),
        "the reopened log is there when the call returns"
    );
    assert!(
        common::eventually(10, || ticks(&log) > 2),
        "new lines in the new file"
    );
    let settled = ticks(&old);
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(ticks(&old), settled, "the old file no longer grows");
    ok(&crictl(d, &["rm", "-f", &id]), "crictl rm -f");
}

fn exec_sync(d: &Daemon, id: &str, cmd: &[&str]) -> String {
    let mut args = vec!["exec", "-s", id];
    args.extend(cmd);
    ok(&crictl(d, &args), "crictl exec -s")
}

/// Whether a CRI log has a full line `msg` on `stream`.
fn cri_line(text: &str, stream: &str, msg: &str) -> bool {
    text.lines().any(|l| {
        let mut f = l.splitn(4, ' ');
        let time = f.next().unwrap_or_default();
        time.ends_with('Z')
            && f.next() == Some(stream)
            && f.next() == Some("F")
            && f.next() == Some(msg)
    })
}

/// `--registry-mirror-for`: pulls of another registry's images, through
/// the Docker API and the CRI, go to its mirror (here `berth registry`
/// on 127.0.0.1), and the image keeps the name it was asked by.
#[test]
fn mirrors_serve_other_registries() {
    let mut d = Daemon::start();
    d.flags = vec![
        "--registry-mirror-for".into(),
        "registry.k8s.io=http://127.0.0.1:5000".into(),
    ];
    d.restart_after_kill9();
    let _reg = Registry::start(&d, &[]);
    ok(
        &d.docker(&["tag", "busybox", "127.0.0.1:5000/e2e-test-images/bb:1.0"]),
        "tag",
    );
    ok(
        &d.docker(&["push", "127.0.0.1:5000/e2e-test-images/bb:1.0"]),
        "push to the mirror",
    );
    ok(
        &d.docker(&["rmi", "127.0.0.1:5000/e2e-test-images/bb:1.0"]),
        "rmi",
    );

    let name = "registry.k8s.io/e2e-test-images/bb:1.0";
    ok(&d.docker(&["pull", name]), "docker pull through the mirror");
    let o = ok(
        &d.docker(&["image", "inspect", "--format", "{{json .RepoTags}}", name]),
        "inspect",
    );
    assert!(o.contains(&format!("\"{name}\"")), "{o}");
    ok(&d.docker(&["rmi", name]), "rmi");
    ok(
        &crictl(&d, &["pull", name]),
        "crictl pull through the mirror",
    );
    let st = json(&crictl(&d, &["inspecti", "-o", "json", name]), "inspecti");
    let tags = st["status"]["repoTags"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(tags.iter().any(|t| t == name), "{st}");

    // a registry without a mirror is asked itself (and is not there)
    let o = crictl(
        &d,
        &["pull", "gcr.io/k8s-staging-cri-tools/test-image-tag:test"],
    );
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("gcr.io"), "{}", stderr(&o));
}

/// `--cri-socket` moves the endpoint and `none` turns it off (the same
/// daemon.json key is berth-config's unit test).
#[test]
fn the_cri_socket_is_configurable() {
    let mut d = Daemon::start();
    let moved = d.dir.path().join("k8s.sock");
    d.flags = vec!["--cri-socket".into(), format!("unix://{}", moved.display())];
    d.restart_after_kill9();
    assert!(moved.exists(), "the CRI on {}", moved.display());
    let o = Command::new(crictl_bin())
        .arg("--runtime-endpoint")
        .arg(format!("unix://{}", moved.display()))
        .arg("version")
        .output()
        .expect("crictl");
    assert!(stdout(&o).contains("RuntimeName:  berth"), "{}", stderr(&o));

    d.flags = vec!["--cri-socket".into(), "none".into()];
    let _ = std::fs::remove_file(d.exec_root().join("cri.sock"));
    d.restart_after_kill9();
    assert!(
        !d.exec_root().join("cri.sock").exists(),
        "no CRI socket with --cri-socket none"
    );
    let o = crictl(&d, &["version"]);
    assert_ne!(code(&o), 0);
}

/// crictl run in the daemon's network namespace: the streaming server's
/// URLs are on the daemon's loopback.
fn crictl_in_ns(d: &Daemon, args: &[&str]) -> Command {
    let sock = cri_socket(d);
    let mut cmd = Command::new("nsenter");
    cmd.args(["-t", &d.ns_pid.to_string(), "-n", "--"])
        .arg(crictl_bin())
        .args(["--runtime-endpoint", &sock, "--timeout", "30s"])
        .args(args);
    cmd
}

fn streamed(d: &Daemon, args: &[&str], input: &str) -> Output {
    common::with_input(crictl_in_ns(d, args), input)
}

/// `crictl exec`, `attach` and `port-forward` through the streaming
/// server, over SPDY and over WebSocket: output split into stdout and
/// stderr, exit codes, piped stdin, a StdinOnce container's attach, and
/// an HTTP GET forwarded to a port on the pod's own loopback.
#[test]
fn exec_attach_and_port_forward_stream() {
    let d = Daemon::start();
    import_pause(&d);
    let mut pod = pod_config("stream", 18082);
    pod["port_mappings"] = serde_json::json!([]);
    let pod_file = write_json(&d, "stream.json", &pod);
    let pod_id = ok(&crictl(&d, &["runp", &pod_file]), "runp")
        .trim()
        .to_string();
    let web = serde_json::json!({
        "metadata": {"name": "web", "attempt": 1},
        "image": {"image": "busybox"},
        "command": ["sh", "-c", "mkdir -p /w && echo served > /w/index.html && exec httpd -f -p 127.0.0.1:8080 -h /w"],
        "linux": {}
    });
    let web_file = write_json(&d, "sweb.json", &web);
    let id = ok(
        &crictl(&d, &["create", &pod_id, &web_file, &pod_file]),
        "create",
    )
    .trim()
    .to_string();
    ok(&crictl(&d, &["start", &id]), "start");

    for t in ["spdy", "websocket"] {
        let o = streamed(&d, &["exec", "-r", t, &id, "echo", "hi"], "");
        assert_eq!(ok(&o, t), "hi\n", "{t}");
        let o = streamed(
            &d,
            &[
                "exec",
                "-r",
                t,
                &id,
                "sh",
                "-c",
                "echo out; echo err >&2; exit 3",
            ],
            "",
        );
        assert_eq!(
            (code(&o), stdout(&o).as_str()),
            (1, "out\n"),
            "{t}: {}",
            stderr(&o)
        );
        assert!(
            stderr(&o).lines().any(|l| l == "err")
                && stderr(&o).contains("command terminated with exit code 3"),
            "{t}: {}",
            stderr(&o)
        );
        let o = streamed(&d, &["exec", "-i", "-r", t, &id, "cat"], "piped in\n");
        assert_eq!(ok(&o, t), "piped in\n", "{t}: stdin's end is cat's");
        let o = streamed(&d, &["exec", "-r", t, &id, "no-such-command"], "");
        assert_ne!(code(&o), 0, "{t}");
    }

    // a container whose sh reads its stdin once: the attach's input runs
    // in it, and its end ends the container and the attach
    let shell = serde_json::json!({
        "metadata": {"name": "shell", "attempt": 1},
        "image": {"image": "busybox"},
        "command": ["sh"],
        "stdin": true,
        "stdin_once": true,
        "linux": {}
    });
    let shell_file = write_json(&d, "shell.json", &shell);
    // the kubelet's evented PLEG watches these containers come and go
    let events = Command::new(crictl_bin())
        .args([
            "--runtime-endpoint",
            &cri_socket(&d),
            "events",
            "-o",
            "json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("crictl events");
    let connected = common::eventually(10, || has_socket(events.id()));
    assert!(connected, "crictl events never connected");
    // the call follows the connection at once
    std::thread::sleep(std::time::Duration::from_millis(500));
    let mut shells = Vec::new();
    for t in ["spdy", "websocket"] {
        let sid = ok(
            &crictl(&d, &["create", &pod_id, &shell_file, &pod_file]),
            "create",
        )
        .trim()
        .to_string();
        shells.push(sid.clone());
        ok(&crictl(&d, &["start", &sid]), "start");
        let o = streamed(
            &d,
            &["attach", "-i", "-r", t, &sid],
            "echo attached $((6*7))\n",
        );
        assert_eq!(ok(&o, t), "attached 42\n", "{t}");
        let st = json(&crictl(&d, &["inspect", "-o", "json", &sid]), "inspect");
        assert_eq!(st["status"]["state"], "CONTAINER_EXITED", "{t}: {st}");
        ok(&crictl(&d, &["rm", &sid]), "rm");
    }

    let seen = stop_and_read_events(events);
    for sid in &shells {
        let kinds: Vec<&str> = seen
            .iter()
            .filter(|e| e["containerId"] == sid.as_str())
            .map(|e| {
                assert_eq!(e["podSandboxStatus"]["id"], pod_id.as_str(), "{e}");
                e["containerEventType"]
                    .as_str()
                    .unwrap_or("CONTAINER_CREATED_EVENT")
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "CONTAINER_CREATED_EVENT",
                "CONTAINER_STARTED_EVENT",
                "CONTAINER_STOPPED_EVENT",
                "CONTAINER_DELETED_EVENT"
            ],
            "{sid}: {seen:?}"
        );
    }

    // httpd listens on the pod's loopback only: reached from inside
    for (t, port) in [("spdy", "18090"), ("websocket", "18091")] {
        let mut fwd = crictl_in_ns(
            &d,
            &["port-forward", "-r", t, &pod_id, &format!("{port}:8080")],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("crictl port-forward");
        let url = format!("http://127.0.0.1:{port}/index.html");
        let mut body = None;
        let served = common::eventually(20, || {
            body = common::http_get_in(d.ns_pid, &url);
            body.is_some()
        });
        let _ = fwd.kill();
        let out = fwd.wait_with_output().expect("crictl port-forward");
        assert!(served, "{t}: {}", stderr(&out));
        assert_eq!(body.as_deref(), Some("served\n"), "{t}");
    }

    // a port nothing listens on: the client is told, and the session ends
    let mut fwd = crictl_in_ns(&d, &["port-forward", &pod_id, "18092:9"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("crictl port-forward");
    let ended = common::eventually(20, || {
        let _ = common::http_get_in(d.ns_pid, "http://127.0.0.1:18092/");
        matches!(fwd.try_wait(), Ok(Some(_)))
    });
    let _ = fwd.kill();
    let out = fwd.wait_with_output().expect("crictl port-forward");
    assert!(ended, "the session ends: {}", stderr(&out));
    assert!(
        stderr(&out).contains("127.0.0.1:9: connect: connection refused"),
        "{}",
        stderr(&out)
    );

    // `docker rm -f` of the sandbox takes the pod's containers with it;
    // the CRI then has nothing of the pod, for the kubelet to make again
    ok(
        &d.docker(&["rm", "-f", &pod_id]),
        "docker rm -f the sandbox",
    );
    let left = json(&crictl(&d, &["ps", "-a", "-o", "json"]), "ps");
    assert_eq!(
        left["containers"].as_array().map(Vec::len),
        Some(0),
        "{left}"
    );
    let o = crictl(&d, &["inspectp", &pod_id]);
    assert_ne!(code(&o), 0, "the pod is gone");
}

/// The events `crictl events -o json` printed until now.
fn stop_and_read_events(mut events: std::process::Child) -> Vec<Value> {
    // the last event may still be on its way to crictl
    std::thread::sleep(std::time::Duration::from_millis(500));
    let _ = events.kill();
    let out = events.wait_with_output().expect("crictl events");
    serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<Value>()
        .map_while(Result::ok)
        .collect()
}

/// Whether process `pid` holds a socket (crictl's connection to the CRI).
fn has_socket(pid: u32) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|fds| {
            fds.flatten().any(|fd| {
                std::fs::read_link(fd.path())
                    .is_ok_and(|t| t.to_string_lossy().starts_with("socket:"))
            })
        })
        .unwrap_or(false)
}

/// A conflist for Debian's plugins: bridge `cni0` with host-local IPAM
/// (its reservations under the test's own directory, never the host's
/// /var/lib/cni), then portmap for host ports.
fn write_cni_config(d: &Daemon, bridge_plugin: &str) -> PathBuf {
    let conf = d.dir.path().join("cni");
    std::fs::create_dir_all(&conf).expect("the CNI directory");
    let list = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "berth-cni-test",
        "plugins": [
            {"type": bridge_plugin, "bridge": "cni0", "isGateway": true, "ipMasq": true,
             "hairpinMode": true,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.88.0.0/16"}]],
                      "routes": [{"dst": "0.0.0.0/0"}],
                      "dataDir": d.dir.path().join("cni-ipam").display().to_string()}},
            {"type": "portmap", "capabilities": {"portMappings": true}}
        ]
    });
    std::fs::write(conf.join("10-test.conflist"), list.to_string()).expect("the conflist");
    conf
}

/// The runtime condition `kind` of `crictl info`'s output (null if none).
fn condition(info: &Value, kind: &str) -> Value {
    info["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
        .cloned()
        .unwrap_or_default()
}

/// The host-local reservation of `ip`, if it is held: the sandbox's id.
fn reservation(d: &Daemon, ip: &str) -> Option<String> {
    let path = d.dir.path().join("cni-ipam/berth-cni-test").join(ip);
    std::fs::read_to_string(path).ok()
}

/// The nat rules the plugins wrote (iptables-nft's `ip nat` table).
fn nat_rules(d: &Daemon) -> String {
    stdout(&d.sh("nft list table ip nat 2>/dev/null || true"))
}

fn pod_ip(d: &Daemon, id: &str) -> String {
    let status = json(&crictl(d, &["inspectp", "-o", "json", id]), "inspectp");
    status["status"]["network"]["ip"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Pods on a CNI network made by Debian's containernetworking-plugins:
/// the pod's address comes from the plugins and serves on it and on a
/// host port; a daemon kill -9 changes nothing; stop, `docker rm -f` and a
/// crash between ADD and its record all give the address and the rules
/// back; a configuration that cannot be used is reported and refused, and
/// without one pods go on berth's bridge again.
#[test]
fn cni_pods_with_debians_plugins() {
    for p in ["bridge", "host-local", "loopback", "portmap"] {
        assert!(
            std::path::Path::new("/usr/lib/cni").join(p).exists(),
            "/usr/lib/cni/{p} is missing: install Debian's containernetworking-plugins \
             (scripts/test.sh does)"
        );
    }
    let mut d = Daemon::start();
    import_pause(&d);
    let conf = write_cni_config(&d, "bridge");
    d.flags = vec![
        "--cni-conf-dir".into(),
        conf.display().to_string(),
        "--cni-bin-dir".into(),
        "/usr/lib/cni".into(),
    ];
    d.restart_after_kill9();

    let info = json(&crictl(&d, &["info"]), "crictl info");
    assert_eq!(condition(&info, "NetworkReady")["status"], true, "{info}");
    assert_eq!(info["cni"]["network"]["file"], "10-test.conflist", "{info}");

    let pod_file = write_json(&d, "cnipod.json", &pod_config("cni", 12000));
    let id = ok(&crictl(&d, &["runp", &pod_file]), "runp on CNI")
        .trim()
        .to_string();
    let ip = pod_ip(&d, &id);
    assert!(ip.starts_with("10.88."), "the plugins' address: {ip:?}");
    assert_eq!(
        reservation(&d, &ip).as_deref().map(|r| r.lines().next()),
        Some(Some(id.as_str()))
    );
    let inspect = ok(
        &d.docker(&[
            "inspect",
            "--format",
            "{{index .Config.Labels \"io.kubernetes.cri.network\"}} {{.HostConfig.NetworkMode}} {{.NetworkSettings.SandboxKey}}",
            &id,
        ]),
        "docker inspect",
    );
    assert_eq!(
        inspect.trim(),
        format!(
            "cni none {}",
            d.exec_root().join("netns").join(&id).display()
        )
    );

    let web = serde_json::json!({
        "metadata": {"name": "web", "attempt": 1},
        "image": {"image": "busybox"},
        "command": ["sh", "-c", "mkdir -p /w && echo on-cni > /w/index.html && exec httpd -f -p 80 -h /w"],
        "linux": {}
    });
    let web_file = write_json(&d, "cniweb.json", &web);
    let cid = ok(
        &crictl(&d, &["create", &id, &web_file, &pod_file]),
        "create",
    )
    .trim()
    .to_string();
    ok(&crictl(&d, &["start", &cid]), "start");
    let ns_pid = d.ns_pid;
    let served = |url: &str| {
        (0..50).find_map(|_| {
            let body = common::http_get_in(ns_pid, url);
            if body.is_none() {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            body
        })
    };
    assert_eq!(
        served(&format!("http://{ip}:80/")).as_deref(),
        Some("on-cni\n")
    );
    assert_eq!(
        served("http://127.0.0.1:12000/").as_deref(),
        Some("on-cni\n"),
        "portmap's host port, from the node's loopback: {}",
        nat_rules(&d)
    );
    let resolv = ok(
        &d.docker(&["exec", &cid, "cat", "/etc/resolv.conf"]),
        "resolv.conf",
    );
    assert!(resolv.contains("nameserver 10.10.10.10"), "{resolv}");

    d.restart_after_kill9();
    assert_eq!(pod_ip(&d, &id), ip, "the address survives a daemon kill -9");
    assert_eq!(
        served(&format!("http://{ip}:80/")).as_deref(),
        Some("on-cni\n")
    );

    ok(&crictl(&d, &["stopp", &id]), "stopp");
    assert_eq!(
        pod_ip(&d, &id),
        "",
        "a stopped pod has given its address back"
    );
    assert_eq!(reservation(&d, &ip), None, "host-local released it");
    assert!(
        !nat_rules(&d).contains(&id),
        "no rule names the pod: {}",
        nat_rules(&d)
    );
    assert!(
        !d.exec_root().join("netns").join(&id).exists(),
        "the namespace was unpinned"
    );
    ok(&crictl(&d, &["stopp", &id]), "a second stopp");
    ok(&crictl(&d, &["rmp", &id]), "rmp");

    // `docker rm -f` of a sandbox releases its network too
    let second = ok(
        &crictl(
            &d,
            &["runp", &write_json(&d, "cni2.json", &pod_config("cni2", 0))],
        ),
        "runp",
    )
    .trim()
    .to_string();
    let ip2 = pod_ip(&d, &second);
    assert!(reservation(&d, &ip2).is_some(), "{ip2}");
    ok(&d.docker(&["rm", "-f", &second]), "docker rm -f");
    let released = (0..50).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        reservation(&d, &ip2).is_none()
    });
    assert!(released, "docker rm -f released {ip2}");

    // killed between the ADD and its record: the restart undoes the ADD
    let netns_dir = d.exec_root().join("netns");
    let netns_of = |id: &str| netns_dir.join(id);
    d.env = vec![("BERTH_CRASH_AT".into(), "cri-cni-after-add".into())];
    d.restart_after_kill9();
    let o = crictl(
        &d,
        &[
            "runp",
            &write_json(&d, "cni3.json", &pod_config("cni3", 12003)),
        ],
    );
    assert_ne!(code(&o), 0, "the daemon died in the call");
    d.env.clear();
    d.restart_after_kill9();
    let left = json(
        &crictl(&d, &["pods", "-o", "json", "--name", "cni3"]),
        "pods",
    );
    assert_eq!(
        left["items"][0]["state"], "SANDBOX_NOTREADY",
        "the half-made pod stays for the kubelet to remove: {left}"
    );
    let half_made = left["items"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let reserved = || -> Vec<String> {
        std::fs::read_dir(d.dir.path().join("cni-ipam/berth-cni-test"))
            .map(|e| {
                e.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|f| f.starts_with("10.88."))
                    .collect()
            })
            .unwrap_or_default()
    };
    // recovery runs beside the serving CRI
    let undone = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        reserved().is_empty() && !netns_of(&half_made).exists()
    });
    assert!(
        undone,
        "no address stays reserved ({:?}) and no namespace pinned",
        reserved()
    );
    assert!(!nat_rules(&d).contains("12003"), "{}", nat_rules(&d));
    assert_eq!(pod_ip(&d, &half_made), "");

    // killed after the DEL, before the record went: the next stop repeats
    // the DEL and finishes
    let pod6 = ok(
        &crictl(
            &d,
            &[
                "runp",
                &write_json(&d, "cni6.json", &pod_config("cni6", 12006)),
            ],
        ),
        "runp",
    )
    .trim()
    .to_string();
    let ip6 = pod_ip(&d, &pod6);
    d.env = vec![("BERTH_CRASH_AT".into(), "cri-cni-after-del".into())];
    d.restart_after_kill9();
    let o = crictl(&d, &["stopp", &pod6]);
    assert_ne!(code(&o), 0, "the daemon died in the call");
    d.env.clear();
    d.restart_after_kill9();
    ok(&crictl(&d, &["stopp", &pod6]), "stopp again");
    assert_eq!(reservation(&d, &ip6), None, "{ip6} released");
    assert!(!netns_of(&pod6).exists(), "the namespace was unpinned");
    assert_eq!(pod_ip(&d, &pod6), "");
    assert!(!nat_rules(&d).contains("12006"), "{}", nat_rules(&d));

    // a plugin that is not there: reported, and no pod is made
    write_cni_config(&d, "no-such-plugin");
    let info = json(&crictl(&d, &["info"]), "crictl info");
    let cond = condition(&info, "NetworkReady");
    assert_eq!(cond["status"], false, "{info}");
    assert!(
        cond["message"]
            .as_str()
            .is_some_and(|m| m.contains("no-such-plugin") && m.contains("10-test.conflist")),
        "{cond}"
    );
    let o = crictl(
        &d,
        &["runp", &write_json(&d, "cni4.json", &pod_config("cni4", 0))],
    );
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("no-such-plugin"), "{}", stderr(&o));
    let left = json(
        &crictl(&d, &["pods", "-o", "json", "--name", "cni4"]),
        "pods",
    );
    assert_eq!(
        left["items"].as_array().map(Vec::len).unwrap_or(0),
        0,
        "{left}"
    );

    // no configuration: the next pod is on berth's bridge
    std::fs::remove_file(conf.join("10-test.conflist")).expect("emptying the directory");
    let bridged = ok(
        &crictl(
            &d,
            &["runp", &write_json(&d, "cni5.json", &pod_config("cni5", 0))],
        ),
        "runp",
    )
    .trim()
    .to_string();
    let ip5 = pod_ip(&d, &bridged);
    assert!(ip5.starts_with("172.17."), "berth's bridge: {ip5:?}");
}
