//! Operations on a running container's processes through its cgroup:
//! pause/unpause (freezer), top, stats.

use std::collections::HashSet;
use std::time::Duration;

use berth_cgroups::{Cgroup, Mounts, Stats};
use berth_core::container::{RestartPolicy, RestartPolicyName};
use serde_json::{Value, json};

use crate::containers::Entry;
use crate::{Engine, Error, Result};

impl Engine {
    fn cgroup_of(&self, id: &str) -> Cgroup {
        Cgroup::new(Mounts::discover(), &self.cgroup_path(id))
    }

    fn running_entry(&self, name: &str) -> Result<std::sync::Arc<Entry>> {
        let e = self.get(name)?;
        if !e.is_running() {
            return Err(Error::conflict(format!(
                "Container {} is not running",
                e.id
            )));
        }
        Ok(e)
    }

    pub async fn container_pause(&self, name: &str) -> Result<()> {
        let e = self.get(name)?;
        let _op = e.op.lock().await;
        if !e.is_running() {
            return Err(Error::conflict(format!(
                "Container {} is not running",
                e.id
            )));
        }
        if e.record().state.paused {
            return Err(Error::conflict(format!(
                "Container {} is already paused",
                e.id
            )));
        }
        self.set_paused(&e, true)
    }

    pub async fn container_unpause(&self, name: &str) -> Result<()> {
        let e = self.get(name)?;
        let _op = e.op.lock().await;
        if !e.is_running() || !e.record().state.paused {
            return Err(Error::conflict(format!("Container {} is not paused", e.id)));
        }
        self.set_paused(&e, false)
    }

    fn set_paused(&self, e: &Entry, paused: bool) -> Result<()> {
        self.cgroup_of(&e.id).set_frozen(paused).map_err(|err| {
            Error::Internal(anyhow::anyhow!(
                "{}: {err}",
                if paused { "pausing" } else { "unpausing" }
            ))
        })?;
        let rec = e.update(|r| {
            r.state.paused = paused;
            r.clone()
        });
        self.persist_record(&rec)?;
        self.container_event(&rec, if paused { "pause" } else { "unpause" }, &[]);
        Ok(())
    }

    /// A signal sent to a paused container reaches it once thawed.
    pub(crate) fn thaw_after_signal(&self, e: &Entry) -> Result<()> {
        self.set_paused(e, false)
    }

    /// The freezer's state wins over the record after a daemon restart.
    pub(crate) fn sync_paused(&self, e: &Entry) {
        if let Ok(frozen) = self.cgroup_of(&e.id).is_frozen()
            && frozen != e.record().state.paused
        {
            let rec = e.update(|r| {
                r.state.paused = frozen;
                r.clone()
            });
            let _ = self.persist_record(&rec);
        }
    }

    /// `docker top`: the host's `ps` with the given arguments (default
    /// `-ef`), keeping the rows of the container's processes.
    pub async fn container_top(&self, name: &str, ps_args: &str) -> Result<Value> {
        let e = self.running_entry(name)?;
        let pids: HashSet<i32> = self
            .cgroup_of(&e.id)
            .pids()
            .map_err(|err| Error::Internal(anyhow::anyhow!("listing processes: {err}")))?
            .into_iter()
            .collect();
        let args: Vec<&str> = if ps_args.trim().is_empty() {
            vec!["-ef"]
        } else {
            ps_args.split_whitespace().collect()
        };
        let out = tokio::process::Command::new("ps")
            .args(&args)
            .output()
            .await
            .map_err(|err| Error::Internal(anyhow::anyhow!("running ps: {err}")))?;
        if !out.status.success() {
            return Err(Error::Internal(anyhow::anyhow!(
                crate::validate::ps_failure(&out.stderr)
            )));
        }
        parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
    }

    /// The container's cgroup counters now; None when it is not running
    /// (the CRI's statistics).
    pub fn container_cgroup_stats(&self, name: &str) -> Result<Option<Stats>> {
        let e = self.get(name)?;
        Ok(e.is_running().then(|| self.cgroup_of(&e.id).stats()))
    }

    /// One stats sample in the Engine API's form; `pre` fills precpu_stats.
    fn stats_sample(&self, e: &Entry, pre: Option<&Value>) -> Value {
        let rec = e.record();
        let running = e.is_running();
        let s = if running {
            self.cgroup_of(&e.id).stats()
        } else {
            Stats::default()
        };
        let limit = if s.memory_limit == 0 {
            crate::system::mem_total().max(0) as u64
        } else {
            s.memory_limit
        };
        let (system, cpus) = if running { host_cpu() } else { (0, 0) };
        let mut v = json!({
            "read": crate::now_rfc3339(),
            "preread": pre.and_then(|p| p.get("read").cloned()).unwrap_or(json!("0001-01-01T00:00:00Z")),
            "pids_stats": if running { json!({"current": s.pids_current, "limit": s.pids_limit}) } else { json!({}) },
            "blkio_stats": {"io_service_bytes_recursive": if running { json!([
                {"major": 0, "minor": 0, "op": "read", "value": s.blkio_read},
                {"major": 0, "minor": 0, "op": "write", "value": s.blkio_write},
            ]) } else { Value::Null }},
            "num_procs": 0,
            "storage_stats": {},
            "cpu_stats": {
                "cpu_usage": {
                    "total_usage": s.cpu_total,
                    "usage_in_kernelmode": s.cpu_system,
                    "usage_in_usermode": s.cpu_user,
                },
                "system_cpu_usage": system,
                "online_cpus": cpus,
                "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
            },
            "precpu_stats": pre.and_then(|p| p.get("cpu_stats").cloned()).unwrap_or(json!({
                "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
            })),
            "memory_stats": if running { json!({
                "usage": s.memory_usage,
                "max_usage": s.memory_max_usage,
                "stats": s.memory_stat,
                "limit": limit,
            }) } else { json!({}) },
            "name": format!("/{}", rec.name),
            "id": rec.id,
        });
        if !running {
            v["read"] = json!("0001-01-01T00:00:00Z");
        }
        // a CRI pod on CNI is `none` to Docker, with the plugins' eth0
        let own_netns = rec.pod_netns
            || !matches!(
                rec.host_config.network_mode.as_deref(),
                Some("host") | Some("none")
            ) && !rec
                .host_config
                .network_mode
                .as_deref()
                .is_some_and(|m| m.starts_with("container:"));
        if running && own_netns {
            let nets = net_dev(rec.state.pid);
            if !nets.is_empty() {
                v["networks"] = Value::Object(nets);
            }
        }
        v
    }

    /// `GET /containers/{id}/stats`: one answer (`stream=false`; with
    /// precpu_stats filled from a sample a second earlier unless
    /// `one-shot`), or one sample a second until the client leaves.
    pub fn container_stats(
        self: &std::sync::Arc<Self>,
        name: &str,
        stream: bool,
        one_shot: bool,
    ) -> Result<tokio::sync::mpsc::Receiver<Value>> {
        let e = self.get(name)?;
        let engine = self.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        tokio::spawn(async move {
            let mut pre: Option<Value> = None;
            if !stream && !one_shot && e.is_running() {
                pre = Some(engine.stats_sample(&e, None));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            loop {
                let v = engine.stats_sample(&e, pre.as_ref());
                if tx.send(v.clone()).await.is_err() || !stream {
                    return;
                }
                pre = Some(v);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        Ok(rx)
    }
}

/// System CPU time in nanoseconds (from /proc/stat) and online CPUs.
fn host_cpu() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let mut total = 0u64;
    let mut cpus = 0u64;
    for line in stat.lines() {
        if let Some(rest) = line.strip_prefix("cpu ") {
            total = rest
                .split_whitespace()
                .take(8)
                .filter_map(|x| x.parse::<u64>().ok())
                .sum::<u64>()
                * 10_000_000;
        } else if line.starts_with("cpu") {
            cpus += 1;
        }
    }
    (total, cpus)
}

/// Keeps the rows of `ps` output whose PID is one of `pids`; the last
/// column takes the rest of the line, as Docker splits it.
fn parse_ps(out: &str, pids: &HashSet<i32>) -> Result<Value> {
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_default();
    let titles: Vec<&str> = header.split_whitespace().collect();
    let pid_col = titles
        .iter()
        .position(|t| *t == "PID")
        .ok_or_else(|| Error::invalid("Couldn't find PID field in ps output"))?;
    let mut procs = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < titles.len() {
            continue;
        }
        let Ok(pid) = fields[pid_col].parse::<i32>() else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        let mut row: Vec<String> = fields[..titles.len() - 1]
            .iter()
            .map(|s| s.to_string())
            .collect();
        row.push(fields[titles.len() - 1..].join(" "));
        procs.push(row);
    }
    Ok(json!({"Titles": titles, "Processes": procs}))
}

/// `docker update`'s new values; unset ones stay as they are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerUpdate {
    pub memory: Option<i64>,
    pub cpu_shares: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpu_period: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub pids_limit: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub restart_policy: Option<RestartPolicy>,
}

impl Engine {
    /// `docker update`: new resource limits (applied to the live cgroup of a
    /// running container) and restart policy.
    pub async fn container_update(&self, name: &str, u: ContainerUpdate) -> Result<Vec<String>> {
        let e = self.get(name)?;
        let _op = e.op.lock().await;
        e.check_not_removed()?;
        let rec = e.record();
        if let Some(m) = u.memory
            && m > 0
            && m < 6 * 1024 * 1024
        {
            return Err(Error::invalid("Minimum memory limit allowed is 6MB"));
        }
        if let Some(rp) = &u.restart_policy
            && rec.host_config.auto_remove == Some(true)
            && rp
                .name
                .is_some_and(|n| n != RestartPolicyName::No && n != RestartPolicyName::Empty)
        {
            return Err(Error::conflict(
                "Restart policy cannot be updated because AutoRemove is enabled for the container",
            ));
        }
        cpu_update_conflicts(&rec.host_config, &u)
            .map_err(|m| Error::conflict(format!("Cannot update container {}: {m}", e.id)))?;
        let mut hc = rec.host_config.clone();
        if u.memory.is_some() {
            hc.memory = u.memory;
        }
        if u.cpu_shares.is_some() {
            hc.cpu_shares = u.cpu_shares;
        }
        if u.nano_cpus.is_some() {
            hc.nano_cpus = u.nano_cpus;
        }
        if u.cpu_period.is_some() {
            hc.cpu_period = u.cpu_period;
        }
        if u.cpu_quota.is_some() {
            hc.cpu_quota = u.cpu_quota;
        }
        if u.pids_limit.is_some() {
            hc.pids_limit = u.pids_limit;
        }
        if u.cpuset_cpus.is_some() {
            hc.cpuset_cpus = u.cpuset_cpus.clone();
        }
        if u.restart_policy.is_some() {
            hc.restart_policy = u.restart_policy.clone();
        }
        crate::validate::resources(&hc, crate::validate::online_cpus())?;
        crate::hostconfig::cpuset(&hc)?;
        crate::containers::check_restart_policy(&hc)?;
        if e.is_running() {
            let cpu_changed =
                u.nano_cpus.is_some() || u.cpu_quota.is_some() || u.cpu_period.is_some();
            let limits = berth_cgroups::Limits {
                memory: u.memory,
                cpu_shares: u.cpu_shares.map(|s| s.max(0) as u64),
                cpu_quota: cpu_changed.then(|| crate::hostconfig::cfs_quota(&hc).unwrap_or(-1)),
                cpu_period: cpu_changed.then(|| crate::hostconfig::cfs_period(&hc).unwrap_or(0)),
                pids: u.pids_limit,
                cpuset_cpus: u.cpuset_cpus.clone().filter(|c| !c.is_empty()),
            };
            self.cgroup_of(&e.id).set_limits(&limits).map_err(|err| {
                Error::Internal(anyhow::anyhow!("Cannot update container {}: {err}", e.id))
            })?;
        }
        let rec = e.update(|r| {
            r.host_config = hc;
            r.clone()
        });
        self.persist_record(&rec)?;
        self.container_event(&rec, "update", &[]);
        Ok(vec![])
    }
}

/// dockerd refuses to mix `--cpus` with a CFS period or quota across
/// updates (UpdateContainer's checks, in its words).
fn cpu_update_conflicts(
    hc: &berth_core::container::HostConfig,
    u: &ContainerUpdate,
) -> std::result::Result<(), &'static str> {
    let set = |v: Option<i64>| v.is_some_and(|v| v > 0);
    if set(u.nano_cpus) && set(hc.cpu_period) {
        return Err(
            "Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set",
        );
    }
    if set(u.nano_cpus) && set(hc.cpu_quota) {
        return Err(
            "Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set",
        );
    }
    if set(u.cpu_period) && set(hc.nano_cpus) {
        return Err(
            "Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set",
        );
    }
    if set(u.cpu_quota) && set(hc.nano_cpus) {
        return Err(
            "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set",
        );
    }
    Ok(())
}

/// A container's interfaces from /proc/PID/net/dev (its network namespace),
/// loopback left out, in the Engine API's `networks` form.
fn net_dev(pid: i64) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/dev")) else {
        return out;
    };
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        let n: Vec<u64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        if n.len() < 12 {
            continue;
        }
        out.insert(
            name.to_string(),
            json!({
                "rx_bytes": n[0], "rx_packets": n[1], "rx_errors": n[2], "rx_dropped": n[3],
                "tx_bytes": n[8], "tx_packets": n[9], "tx_errors": n[10], "tx_dropped": n[11],
            }),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_rows_are_filtered_by_pid() {
        let out = "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:01 /sbin/init\nroot 42 1 0 10:01 ? 00:00:00 sleep 100\n";
        let v = parse_ps(out, &HashSet::from([42])).expect("parse");
        assert_eq!(
            v["Processes"],
            json!([[
                "root",
                "42",
                "1",
                "0",
                "10:01",
                "?",
                "00:00:00",
                "sleep 100"
            ]])
        );
        assert!(parse_ps("USER CMD\n", &HashSet::new()).is_err());
    }
}
