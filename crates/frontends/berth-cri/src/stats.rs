//! The CRI's statistics from each container's cgroup: CPU time and its
//! rate since the last sample, memory (the working set is usage less the
//! inactive file cache, as the kubelet counts it), process counts; a
//! pod's figures are its containers' and its infra's summed.

use std::collections::HashMap;
use std::sync::Mutex;

use berth_engine::{CgroupStats, ContainerView, Engine};
use tonic::Status;

use crate::errors::status;
use crate::{labels, pb, pods};

/// The last CPU sample of each container, for `usage_nano_cores`.
#[derive(Default)]
pub struct CpuRates {
    last: Mutex<HashMap<String, (i64, u64)>>,
}

impl CpuRates {
    /// Nanocores since the last sample of `id`; None at the first.
    fn rate(&self, id: &str, now: i64, total: u64) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let before = last.insert(id.to_string(), (now, total));
        let (t0, c0) = before?;
        let dt = now.checked_sub(t0).filter(|d| *d > 0)? as u128;
        let used = total.checked_sub(c0)? as u128;
        Some((used * 1_000_000_000 / dt) as u64)
    }

    /// Forgets the samples of containers and pods that are gone (`live`
    /// holds both kinds of key).
    pub fn forget_gone(&self, live: &std::collections::HashSet<String>) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        last.retain(|id, _| live.contains(id));
    }
}

fn value(v: u64) -> Option<pb::UInt64Value> {
    Some(pb::UInt64Value { value: v })
}

fn stat(s: &CgroupStats, keys: &[&str]) -> u64 {
    keys.iter()
        .find_map(|k| s.memory_stat.get(*k).copied())
        .unwrap_or(0)
}

fn cpu(s: &CgroupStats, now: i64, rate: Option<u64>) -> pb::CpuUsage {
    pb::CpuUsage {
        timestamp: now,
        usage_core_nano_seconds: value(s.cpu_total),
        usage_nano_cores: rate.and_then(value),
        psi: None,
    }
}

fn memory(s: &CgroupStats, now: i64) -> pb::MemoryUsage {
    // cgroup v2 names first, then v1's hierarchical totals
    let inactive = stat(s, &["inactive_file", "total_inactive_file"]);
    let working = s.memory_usage.saturating_sub(inactive);
    pb::MemoryUsage {
        timestamp: now,
        working_set_bytes: value(working),
        available_bytes: (s.memory_limit > 0)
            .then(|| s.memory_limit.saturating_sub(working))
            .and_then(value),
        usage_bytes: value(s.memory_usage),
        rss_bytes: value(stat(s, &["anon", "total_rss", "rss"])),
        page_faults: value(stat(s, &["pgfault", "total_pgfault"])),
        major_page_faults: value(stat(s, &["pgmajfault", "total_pgmajfault"])),
        psi: None,
    }
}

/// The container's counters; zero for one that is not running, or that
/// went while a list was being made.
fn sample(engine: &Engine, id: &str) -> Result<CgroupStats, Status> {
    match engine.container_cgroup_stats(id) {
        Ok(s) => Ok(s.unwrap_or_default()),
        Err(berth_engine::Error::NotFound(_)) => Ok(CgroupStats::default()),
        Err(e) => Err(status(e)),
    }
}

/// The key of a pod's own CPU sample.
pub fn pod_key(id: &str) -> String {
    format!("pod:{id}")
}

/// The statistics of one CRI container.
pub fn container(
    engine: &Engine,
    rates: &CpuRates,
    v: &ContainerView,
) -> Result<pb::ContainerStats, Status> {
    let now = crate::now_nanos();
    let s = sample(engine, &v.record.id)?;
    let summary = crate::containers::summary(&v.record);
    Ok(pb::ContainerStats {
        attributes: Some(pb::ContainerAttributes {
            id: summary.id.clone(),
            metadata: summary.metadata,
            labels: summary.labels,
            annotations: summary.annotations,
        }),
        cpu: Some(cpu(&s, now, rates.rate(&summary.id, now, s.cpu_total))),
        memory: Some(memory(&s, now)),
        writable_layer: None,
        swap: None,
        io: None,
    })
}

/// Whether a container passes a ListContainerStats filter.
pub fn passes(v: &ContainerView, f: &pb::ContainerStatsFilter) -> bool {
    crate::containers::passes(
        &v.record,
        &pb::ContainerFilter {
            id: f.id.clone(),
            pod_sandbox_id: f.pod_sandbox_id.clone(),
            label_selector: f.label_selector.clone(),
            state: None,
        },
    )
}

/// A pod's statistics: its containers', and their sums with the infra's.
pub fn pod(
    engine: &Engine,
    rates: &CpuRates,
    v: &ContainerView,
) -> Result<pb::PodSandboxStats, Status> {
    let now = crate::now_nanos();
    let members = pods::members(engine, &v.record.id)?;
    let mut total = sample(engine, &v.record.id)?;
    let mut containers = Vec::new();
    for m in &members {
        let s = sample(engine, &m.record.id)?;
        total.cpu_total += s.cpu_total;
        total.memory_usage += s.memory_usage;
        total.pids_current += s.pids_current;
        for (k, n) in &s.memory_stat {
            *total.memory_stat.entry(k.clone()).or_insert(0) += n;
        }
        containers.push(container(engine, rates, m)?);
    }
    let summary = pods::summary(&v.record);
    let rate = rates.rate(&pod_key(&summary.id), now, total.cpu_total);
    Ok(pb::PodSandboxStats {
        attributes: Some(pb::PodSandboxAttributes {
            id: summary.id,
            metadata: summary.metadata,
            labels: summary.labels,
            annotations: summary.annotations,
        }),
        linux: Some(pb::LinuxPodSandboxStats {
            cpu: Some(cpu(&total, now, rate)),
            memory: Some(memory(&total, now)),
            network: None,
            process: Some(pb::ProcessUsage {
                timestamp: now,
                process_count: value(total.pids_current),
            }),
            containers,
            io: None,
        }),
        windows: None,
    })
}

pub fn pod_passes(v: &ContainerView, f: &pb::PodSandboxStatsFilter) -> bool {
    let l = v.record.config.labels.clone().unwrap_or_default();
    (f.id.is_empty() || v.record.id.starts_with(&f.id)) && labels::selected(&l, &f.label_selector)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_needs_two_samples() {
        let r = CpuRates::default();
        assert_eq!(r.rate("a", 1_000_000_000, 0), None);
        // half a core over one second
        assert_eq!(r.rate("a", 2_000_000_000, 500_000_000), Some(500_000_000));
        r.forget_gone(&Default::default());
        assert_eq!(r.rate("a", 3_000_000_000, 600_000_000), None);
    }

    #[test]
    fn the_working_set_leaves_out_inactive_files() {
        let s = CgroupStats {
            memory_usage: 100,
            memory_limit: 1000,
            memory_stat: HashMap::from([
                ("inactive_file".to_string(), 30),
                ("anon".to_string(), 50),
            ]),
            ..Default::default()
        };
        let m = memory(&s, 1);
        assert_eq!(m.working_set_bytes.unwrap().value, 70);
        assert_eq!(m.available_bytes.unwrap().value, 930);
        assert_eq!(m.rss_bytes.unwrap().value, 50);
    }
}
