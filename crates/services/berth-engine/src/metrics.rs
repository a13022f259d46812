//! Prometheus metrics in the text exposition format: Docker's engine
//! metric names where Docker has them, berth's own beside them. Counters
//! and histograms are plain atomics and small maps; the gauges are read
//! from the engine's state at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::{Engine, LockExt};

/// prometheus' default buckets, which Docker's histograms use
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {}",
                self.counts[i]
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// Histograms by an `action` label.
#[derive(Default)]
struct ByAction(Mutex<BTreeMap<String, Histogram>>);

impl ByAction {
    fn observe(&self, action: &str, took: Duration) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(action.to_string())
            .or_default()
            .observe(took.as_secs_f64());
    }

    fn write(&self, out: &mut String, name: &str, help: &str) {
        head(out, name, "histogram", help);
        for (action, h) in self.0.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            h.write(out, name, &format!("action=\"{}\"", label(action)));
        }
    }
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    head(out, name, "counter", help);
    let _ = writeln!(out, "{name} {value}");
}

#[derive(Default)]
pub struct Metrics {
    container_actions: ByAction,
    network_actions: ByAction,
    api_requests: Mutex<BTreeMap<(String, String, u16), Histogram>>,
    health_checks: AtomicU64,
    health_checks_failed: AtomicU64,
    pull_bytes: AtomicU64,
}

impl Metrics {
    /// One container action (create, start, stop, delete, …) and its time.
    pub fn container_action(&self, action: &str, took: Duration) {
        self.container_actions.observe(action, took);
    }

    /// One network action (create, connect, disconnect, delete).
    pub fn network_action(&self, action: &str, took: Duration) {
        self.network_actions.observe(action, took);
    }

    /// One API request: method, the route's template, the status.
    pub fn api_request(&self, method: &str, route: &str, status: u16, took: Duration) {
        let mut m = self.api_requests.lock().unwrap_or_else(|p| p.into_inner());
        m.entry((method.to_string(), route.to_string(), status))
            .or_default()
            .observe(took.as_secs_f64());
    }

    pub fn health_check(&self, failed: bool) {
        self.health_checks.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.health_checks_failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn pulled(&self, bytes: u64) {
        self.pull_bytes.fetch_add(bytes, Ordering::Relaxed);
    }
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Engine {
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// GET /metrics: the text exposition format, version 0.0.4.
    pub fn metrics_text(&self) -> String {
        let m = &self.metrics;
        let mut out = String::new();
        m.container_actions.write(
            &mut out,
            "engine_daemon_container_actions_seconds",
            "The number of seconds it takes to process each container action",
        );
        m.network_actions.write(
            &mut out,
            "engine_daemon_network_actions_seconds",
            "The number of seconds it takes to process each network action",
        );

        head(
            &mut out,
            "engine_daemon_container_states_containers",
            "gauge",
            "The count of containers in various states",
        );
        let (mut running, mut paused, mut stopped) = (0, 0, 0);
        for e in self.containers.r().values() {
            if !e.is_running() {
                stopped += 1;
            } else if e.record().state.paused {
                paused += 1;
            } else {
                running += 1;
            }
        }
        for (state, n) in [
            ("paused", paused),
            ("running", running),
            ("stopped", stopped),
        ] {
            let _ = writeln!(
                out,
                "engine_daemon_container_states_containers{{state=\"{state}\"}} {n}"
            );
        }

        counter(
            &mut out,
            "engine_daemon_events_total",
            "The number of events logged",
            self.events.published(),
        );
        counter(
            &mut out,
            "engine_daemon_health_checks_total",
            "The total number of health checks",
            m.health_checks.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "engine_daemon_health_checks_failed_total",
            "The total number of failed health checks",
            m.health_checks_failed.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "berth_images_pulled_bytes_total",
            "Bytes of layers downloaded by pulls",
            m.pull_bytes.load(Ordering::Relaxed),
        );

        head(
            &mut out,
            "berth_api_request_duration_seconds",
            "histogram",
            "API requests by method, route and status",
        );
        for ((method, route, status), h) in m
            .api_requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            h.write(
                &mut out,
                "berth_api_request_duration_seconds",
                &format!(
                    "method=\"{}\",route=\"{}\",status=\"{status}\"",
                    label(method),
                    label(route)
                ),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative() {
        let mut h = Histogram::default();
        h.observe(0.003);
        h.observe(0.2);
        h.observe(20.0);
        let mut s = String::new();
        h.write(&mut s, "x", "a=\"b\"");
        assert!(s.contains("x_bucket{a=\"b\",le=\"0.005\"} 1\n"), "{s}");
        assert!(s.contains("x_bucket{a=\"b\",le=\"0.25\"} 2\n"), "{s}");
        assert!(s.contains("x_bucket{a=\"b\",le=\"10\"} 2\n"), "{s}");
        assert!(s.contains("x_bucket{a=\"b\",le=\"+Inf\"} 3\n"), "{s}");
        assert!(s.contains("x_count{a=\"b\"} 3\n"), "{s}");
        assert_eq!(label("a\"b\\"), "a\\\"b\\\\");
    }
}
