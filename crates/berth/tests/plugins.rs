//! Legacy volume plugins (issue #24): a plugin process serving Docker's
//! `VolumeDriver` protocol on a socket in /run/docker/plugins, found by
//! name, used by `volume create -d`, `--volume-driver` and containers'
//! mounts, and listed by `info` — through the docker CLI and berth's.
//!
//! The plugin is written for the test: a directory-backed volume driver
//! served by threads of the test process on a unix socket, which is bound
//! over /run/docker/plugins in the daemon's mount namespace only.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use common::{Daemon, code, ok, stderr};
use serde_json::{Value, json};

/// What the plugin was asked, in order (`Method Name`).
type Calls = Arc<Mutex<Vec<String>>>;

/// A volume plugin: volumes are directories under `root`; a volume whose
/// name starts with "refuse" cannot be created.
struct DirPlugin {
    root: PathBuf,
    calls: Calls,
    volumes: Mutex<BTreeMap<String, Value>>,
}

impl DirPlugin {
    fn answer(&self, method: &str, req: &Value) -> (u16, Value) {
        let name = req["Name"].as_str().unwrap_or_default().to_string();
        self.calls
            .lock()
            .unwrap()
            .push(format!("{method} {name}").trim().to_string());
        let path = self.root.join(&name);
        let mountpoint = json!(path.display().to_string());
        let mut vols = self.volumes.lock().unwrap();
        match method {
            "Plugin.Activate" => (200, json!({"Implements": ["VolumeDriver"]})),
            "VolumeDriver.Capabilities" => (200, json!({"Capabilities": {"Scope": "local"}})),
            "VolumeDriver.Create" if name.starts_with("refuse") => {
                (200, json!({"Err": "the test plugin refuses this name"}))
            }
            "VolumeDriver.Create" => {
                std::fs::create_dir_all(&path).expect("volume dir");
                vols.insert(name, req["Opts"].clone());
                (200, json!({"Err": ""}))
            }
            "VolumeDriver.Remove" => {
                vols.remove(&name);
                let _ = std::fs::remove_dir_all(&path);
                (200, json!({"Err": ""}))
            }
            "VolumeDriver.Mount" | "VolumeDriver.Path" => {
                (200, json!({"Mountpoint": mountpoint, "Err": ""}))
            }
            "VolumeDriver.Unmount" => (200, json!({"Err": ""})),
            "VolumeDriver.Get" => match vols.get(&name) {
                Some(opts) => (
                    200,
                    json!({"Volume": {"Name": name, "Mountpoint": mountpoint,
                                      "Status": {"opts": opts}}, "Err": ""}),
                ),
                None => (200, json!({"Err": "no such volume"})),
            },
            "VolumeDriver.List" => {
                let list: Vec<Value> = vols
                    .keys()
                    .map(|n| json!({"Name": n, "Mountpoint": self.root.join(n).display().to_string()}))
                    .collect();
                (200, json!({"Volumes": list, "Err": ""}))
            }
            _ => (404, json!({"Err": format!("{method} is not implemented")})),
        }
    }

    fn serve(self: Arc<Self>, listener: UnixListener) {
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let me = self.clone();
                std::thread::spawn(move || me.handle(conn));
            }
        });
    }

    /// One HTTP/1.1 request, answered, then the connection closed.
    fn handle(&self, conn: UnixStream) {
        let mut reader = BufReader::new(conn.try_clone().expect("clone"));
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() {
            return;
        }
        let method = line
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .trim_start_matches('/')
            .to_string();
        let mut length = 0;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        let _ = reader.read_exact(&mut body);
        let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let (status, answer) = self.answer(&method, &req);
        let text = answer.to_string();
        let mut conn = conn;
        let _ = write!(
            conn,
            "HTTP/1.1 {status} X\r\nContent-Type: application/vnd.docker.plugins.v1+json\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        );
    }
}

/// Starts the plugin `name` for daemon `d`: its socket in `dir/plugins`,
/// bound over /run/docker/plugins inside the daemon's mount namespace.
fn start_plugin(d: &Daemon, dir: &Path, name: &str) -> Calls {
    let sockets = dir.join("plugins");
    let root = dir.join("volumes");
    std::fs::create_dir_all(&sockets).expect("plugin dir");
    std::fs::create_dir_all(&root).expect("volume root");
    let script = format!(
        "mkdir -p /run/docker && mount -t tmpfs tmpfs /run/docker && mkdir /run/docker/plugins && mount --bind {} /run/docker/plugins",
        sockets.display()
    );
    let st = Command::new("nsenter")
        .args(["-t", &d.ns_pid.to_string(), "-m", "sh", "-c", &script])
        .status()
        .expect("nsenter");
    assert!(st.success(), "binding the plugin directory");
    let calls = Calls::default();
    let plugin = Arc::new(DirPlugin {
        root,
        calls: calls.clone(),
        volumes: Mutex::default(),
    });
    let listener = UnixListener::bind(sockets.join(format!("{name}.sock"))).expect("plugin socket");
    plugin.serve(listener);
    calls
}

#[test]
fn a_legacy_volume_plugin_serves_volumes_to_both_clis() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let calls = start_plugin(&d, dir.path(), "dirvol");

    for (cli, vol) in [("docker", "fromdocker"), ("berth", "fromberth")] {
        let run = |args: &[&str]| {
            if cli == "docker" {
                d.docker(args)
            } else {
                d.berth(args)
            }
        };
        let id = ok(
            &run(&["volume", "create", "-d", "dirvol", "--opt", "size=1", vol]),
            cli,
        );
        assert_eq!(id.trim(), vol);
        let driver = ok(
            &run(&[
                "volume",
                "inspect",
                "-f",
                "{{.Driver}} {{.Mountpoint}}",
                vol,
            ]),
            cli,
        );
        assert_eq!(
            driver.trim(),
            format!("dirvol {}", dir.path().join("volumes").join(vol).display())
        );
        let listed = ok(
            &run(&["volume", "ls", "--format", "{{.Driver}} {{.Name}}"]),
            cli,
        );
        assert!(listed.contains(&format!("dirvol {vol}")), "{cli}: {listed}");
        // a container writes into the plugin's directory
        let script = format!("echo {cli} > /data/file");
        ok(
            &run(&[
                "run",
                "--rm",
                "-v",
                &format!("{vol}:/data"),
                "busybox",
                "sh",
                "-c",
                &script,
            ]),
            cli,
        );
        let file = dir.path().join("volumes").join(vol).join("file");
        assert_eq!(
            std::fs::read_to_string(&file).expect("written"),
            format!("{cli}\n")
        );
    }
    // mounted for the container and unmounted after, by its id
    let seen = calls.lock().unwrap().clone();
    for call in [
        "Plugin.Activate",
        "VolumeDriver.Create fromdocker",
        "VolumeDriver.Mount fromdocker",
        "VolumeDriver.Unmount fromdocker",
    ] {
        assert!(seen.iter().any(|c| c == call), "{call} in {seen:?}");
    }

    // `--volume-driver` makes the volumes of `-v` with the plugin
    ok(
        &d.docker(&[
            "run",
            "--rm",
            "--volume-driver",
            "dirvol",
            "-v",
            "bydriver:/d",
            "busybox",
            "true",
        ]),
        "run",
    );
    let driver = ok(
        &d.berth(&["volume", "inspect", "-f", "{{.Driver}}", "bydriver"]),
        "inspect",
    );
    assert_eq!(driver.trim(), "dirvol");

    // info lists it beside the built-in driver
    let plugins = ok(
        &d.docker(&["info", "-f", "{{json .Plugins.Volume}}"]),
        "info",
    );
    assert_eq!(plugins.trim(), r#"["local","dirvol"]"#);

    // the plugin's refusal reaches the user, and nothing is recorded
    for o in [
        d.docker(&["volume", "create", "-d", "dirvol", "refused"]),
        d.berth(&["volume", "create", "-d", "dirvol", "refused"]),
    ] {
        assert_ne!(code(&o), 0);
        assert!(
            stderr(&o).contains("the test plugin refuses this name"),
            "{}",
            stderr(&o)
        );
    }
    assert_ne!(code(&d.docker(&["volume", "inspect", "refused"])), 0);
    // a plugin nobody serves
    let o = d.docker(&["volume", "create", "-d", "ghost", "x"]);
    assert!(
        stderr(&o).contains("plugin \"ghost\" not found"),
        "{}",
        stderr(&o)
    );

    // removal goes to the plugin
    ok(&d.docker(&["volume", "rm", "fromdocker"]), "rm");
    assert!(!dir.path().join("volumes/fromdocker").exists());
    assert!(
        calls
            .lock()
            .unwrap()
            .iter()
            .any(|c| c == "VolumeDriver.Remove fromdocker")
    );
}
