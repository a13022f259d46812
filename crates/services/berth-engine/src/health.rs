//! Health checks (`--health-cmd` and friends): a probe runs in the
//! container every interval as an exec would; its results drive
//! `State.Health`, the `(healthy)` in `ps` and `health_status` events, with
//! Docker's rules for retries and the start period.

use std::sync::Arc;
use std::time::Duration;

use berth_core::container::HealthConfig;
use serde::{Deserialize, Serialize};

use crate::Engine;
use crate::containers::Entry;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: i64 = 3;
/// Docker keeps this many results and this much output per result.
const KEEP_RESULTS: usize = 5;
const MAX_OUTPUT: usize = 4096;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HealthRecord {
    /// "starting", "healthy" or "unhealthy"
    pub status: String,
    pub failing_streak: i64,
    pub log: Vec<ProbeResult>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProbeResult {
    pub start: String,
    pub end: String,
    pub exit_code: i64,
    pub output: String,
}

impl HealthRecord {
    pub fn starting() -> Self {
        HealthRecord {
            status: "starting".into(),
            ..Default::default()
        }
    }

    /// Applies one probe's result; returns whether the status changed.
    /// Failures inside the start period do not count, as in Docker.
    fn record(&mut self, r: ProbeResult, retries: i64, in_start_period: bool) -> bool {
        let before = self.status.clone();
        if r.exit_code == 0 {
            self.failing_streak = 0;
            self.status = "healthy".into();
        } else if !in_start_period || self.status != "starting" {
            self.failing_streak += 1;
            if self.failing_streak >= retries {
                self.status = "unhealthy".into();
            }
        }
        self.log.push(r);
        if self.log.len() > KEEP_RESULTS {
            self.log.remove(0);
        }
        before != self.status
    }
}

/// The probe's command line, or None when checks are off (`NONE`, empty).
pub fn probe_command(cfg: &HealthConfig) -> Option<Vec<String>> {
    let test = cfg.test.clone().unwrap_or_default();
    match test.first().map(String::as_str) {
        Some("CMD") if test.len() > 1 => Some(test[1..].to_vec()),
        Some("CMD-SHELL") if test.len() > 1 => {
            Some(vec!["/bin/sh".into(), "-c".into(), test[1..].join(" ")])
        }
        _ => None,
    }
}

/// Checks a health config as dockerd does at create.
pub fn validate(cfg: &HealthConfig) -> crate::Result<()> {
    let min = 1_000_000; // 1ms
    for (name, v) in [
        ("Interval", cfg.interval),
        ("Timeout", cfg.timeout),
        ("StartPeriod", cfg.start_period),
        ("StartInterval", cfg.start_interval),
    ] {
        if let Some(v) = v
            && v != 0
            && v < min
        {
            return Err(crate::Error::invalid(format!(
                "{name} in Healthcheck cannot be less than 1ms"
            )));
        }
    }
    if cfg.retries.is_some_and(|r| r < 0) {
        return Err(crate::Error::invalid(
            "Retries in Healthcheck cannot be negative",
        ));
    }
    // dockerd takes any Test: a type other than CMD and CMD-SHELL means
    // no probe (it only logs a warning), as NONE does
    Ok(())
}

fn dur(ns: Option<i64>, default: Duration) -> Duration {
    match ns {
        Some(n) if n > 0 => Duration::from_nanos(n as u64),
        _ => default,
    }
}

impl Engine {
    /// Runs the container's health checks while this run of it lasts.
    pub(crate) fn spawn_health_monitor(self: &Arc<Self>, e: Arc<Entry>) {
        let rec = e.record();
        let Some(cfg) = rec.config.healthcheck.clone() else {
            return;
        };
        let Some(cmd) = probe_command(&cfg) else {
            return;
        };
        let run = rec.state.started_at.clone();
        let interval = dur(cfg.interval, DEFAULT_INTERVAL);
        let timeout = dur(cfg.timeout, DEFAULT_TIMEOUT);
        let start_period = dur(cfg.start_period, Duration::ZERO);
        let start_interval = dur(cfg.start_interval, interval);
        let retries = cfg.retries.filter(|r| *r > 0).unwrap_or(DEFAULT_RETRIES);
        let engine = self.clone();
        tokio::spawn(async move {
            let begun = tokio::time::Instant::now();
            loop {
                let in_start = begun.elapsed() < start_period;
                let wait = if in_start { start_interval } else { interval };
                tokio::time::sleep(wait).await;
                let current = e.record();
                if !e.is_running() || current.state.started_at != run {
                    return;
                }
                if current.state.paused {
                    continue;
                }
                let start = crate::now_rfc3339();
                let (exit_code, mut output) =
                    match tokio::time::timeout(timeout, engine.run_probe(&e.id, cmd.clone())).await
                    {
                        Ok(r) => r,
                        Err(_) => (
                            -1,
                            format!(
                                "Health check exceeded timeout ({})",
                                berth_units::go_duration(timeout)
                            ),
                        ),
                    };
                if output.len() > MAX_OUTPUT {
                    let mut cut = MAX_OUTPUT;
                    while !output.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    output.truncate(cut);
                }
                engine.metrics().health_check(exit_code != 0);
                let result = ProbeResult {
                    start,
                    end: crate::now_rfc3339(),
                    exit_code,
                    output,
                };
                let in_start = begun.elapsed() < start_period;
                let (changed, rec) = e.update(|r| {
                    if r.state.started_at != run {
                        return (false, r.clone());
                    }
                    let h = r.state.health.get_or_insert_with(HealthRecord::starting);
                    let changed = h.record(result, retries, in_start);
                    (changed, r.clone())
                });
                if let Err(err) = engine.persist_record(&rec) {
                    tracing::warn!(container = %&e.id[..12], error = %err, "recording health");
                }
                if changed && let Some(h) = &rec.state.health {
                    engine.container_event(&rec, &format!("health_status: {}", h.status), &[]);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(code: i64) -> ProbeResult {
        ProbeResult {
            exit_code: code,
            ..Default::default()
        }
    }

    #[test]
    fn retries_and_start_period() {
        let mut h = HealthRecord::starting();
        // failures in the start period do not count while starting
        assert!(!h.record(result(1), 2, true));
        assert_eq!((h.status.as_str(), h.failing_streak), ("starting", 0));
        assert!(h.record(result(0), 2, true));
        assert_eq!(h.status, "healthy");
        assert!(!h.record(result(1), 2, false));
        assert!(h.record(result(1), 2, false));
        assert_eq!((h.status.as_str(), h.failing_streak), ("unhealthy", 2));
        for _ in 0..10 {
            h.record(result(0), 2, false);
        }
        assert_eq!(h.log.len(), KEEP_RESULTS);
    }

    #[test]
    fn commands_and_validation() {
        let cfg = |t: &[&str]| HealthConfig {
            test: Some(t.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        };
        assert_eq!(
            probe_command(&cfg(&["CMD-SHELL", "exit 0"])),
            Some(vec!["/bin/sh".into(), "-c".into(), "exit 0".into()])
        );
        assert_eq!(
            probe_command(&cfg(&["CMD", "true"])),
            Some(vec!["true".into()])
        );
        assert_eq!(probe_command(&cfg(&["NONE"])), None);
        // dockerd creates these and runs no probe
        for t in [&["BOGUS", "x"][..], &[], &["NONE"]] {
            assert!(validate(&cfg(t)).is_ok(), "{t:?}");
            assert_eq!(probe_command(&cfg(t)), None, "{t:?}");
        }
        let mut c = cfg(&["CMD", "true"]);
        c.interval = Some(10);
        assert!(validate(&c).is_err());
    }
}
