//! Health checks: status transitions, retries, timeouts, `ps` and events.

mod common;

use common::{Daemon, code, eventually, stderr, stdout};

fn health(d: &Daemon, name: &str) -> String {
    stdout(&d.berth(&["inspect", "-f", "{{.State.Health.Status}}", name]))
        .trim()
        .to_string()
}

#[test]
fn status_follows_the_probe() {
    let d = Daemon::start();
    let o = d.docker(&[
        "run",
        "-d",
        "--name",
        "web",
        "--health-cmd",
        "test -f /tmp/ok",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        "busybox",
        "sh",
        "-c",
        "sleep 1; touch /tmp/ok; sleep 1000",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(health(&d, "web"), "starting");
    assert!(stdout(&d.berth(&["ps", "--format", "{{.Status}}"])).contains("(health: starting)"));
    assert!(eventually(10, || health(&d, "web") == "healthy"));
    assert!(stdout(&d.docker(&["ps", "--format", "{{.Status}}"])).contains("(healthy)"));
    let o = d.berth(&["ps", "-q", "--filter", "health=healthy"]);
    assert_eq!(stdout(&o).lines().count(), 1);
    // two failures in a row make it unhealthy
    d.berth(&["exec", "web", "rm", "/tmp/ok"]);
    assert!(eventually(10, || health(&d, "web") == "unhealthy"));
    let o = d.berth(&["inspect", "-f", "{{.State.Health.FailingStreak}}", "web"]);
    let out = stdout(&o);
    let streak: i64 = out.trim().parse().unwrap_or(0);
    assert!(streak >= 2, "{out}");
    let o = d.docker(&["inspect", "-f", "{{json .State.Health}}", "web"]);
    let h: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    let last = h["Log"]
        .as_array()
        .and_then(|l| l.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(last["ExitCode"], 1, "{h}");
    assert!(h["Log"].as_array().map(|l| l.len()).unwrap_or(0) <= 5);
    // the changes were events
    let o = d.berth(&[
        "events",
        "--since",
        "1h",
        "--until",
        "0s",
        "--filter",
        "event=health_status",
        "--format",
        "{{.Action}}",
    ]);
    let actions = stdout(&o);
    assert!(actions.contains("health_status: healthy"), "{actions}");
    assert!(actions.contains("health_status: unhealthy"), "{actions}");
}

#[test]
fn timeouts_and_disabled_checks() {
    let d = Daemon::start();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "slow",
        "--health-cmd",
        "sleep 5",
        "--health-interval",
        "100ms",
        "--health-timeout",
        "200ms",
        "busybox",
        "sleep",
        "1000",
    ]);
    assert!(eventually(10, || {
        let o = d.berth(&["inspect", "-f", "{{json .State.Health.Log}}", "slow"]);
        stdout(&o).contains("Health check exceeded timeout (200ms)")
    }));
    d.berth(&[
        "run",
        "-d",
        "--name",
        "none",
        "--no-healthcheck",
        "busybox",
        "sleep",
        "1000",
    ]);
    let o = d.berth(&["inspect", "-f", "{{json .State.Health}}", "none"]);
    assert_eq!(stdout(&o), "null\n");
    let o = d.berth(&["run", "--health-interval", "soon", "busybox", "true"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("invalid duration"), "{}", stderr(&o));
    let o = d.berth(&[
        "run",
        "--no-healthcheck",
        "--health-cmd",
        "true",
        "busybox",
        "true",
    ]);
    assert_eq!(code(&o), 125);
    let body = br#"{"Image":"busybox","Cmd":["true"],"Healthcheck":{"Test":["CMD","true"],"Interval":10}}"#;
    let (status, _, b) =
        common::raw_request(&d.sock, "POST", "/containers/create", Some(body)).expect("request");
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&b));
    assert!(String::from_utf8_lossy(&b).contains("cannot be less than 1ms"));
}
