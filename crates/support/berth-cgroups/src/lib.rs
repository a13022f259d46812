//! A container's cgroup as berth reads it: the processes in it, freezing
//! (pause), OOM kills, and the counters `stats` reports. libcontainer
//! creates and removes the cgroup; this crate only looks and freezes.
//!
//! The same path (`/…/berth/<id>`) is used under every v1 controller's
//! mount, or under the v2 unified mount when there is no v1 controller.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

/// Where the hierarchies are mounted, read from /proc/self/mountinfo.
#[derive(Debug, Clone, Default)]
pub struct Mounts {
    /// v1 controller name -> mount point
    v1: HashMap<String, PathBuf>,
    unified: Option<PathBuf>,
}

impl Mounts {
    /// Whether memory+swap limits can be set (v1 memsw files, or v2).
    pub fn has_swap_accounting(&self) -> bool {
        match self.v1.get("memory") {
            Some(m) => m.join("memory.memsw.limit_in_bytes").exists(),
            None => self.unified.is_some(),
        }
    }

    pub fn discover() -> Mounts {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        Self::parse(&info)
    }

    fn parse(info: &str) -> Mounts {
        let mut m = Mounts::default();
        for line in info.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            let Some(sep) = fields.iter().position(|f| *f == "-") else {
                continue;
            };
            let (Some(mount_point), Some(fstype), Some(opts)) =
                (fields.get(4), fields.get(sep + 1), fields.get(sep + 3))
            else {
                continue;
            };
            match *fstype {
                "cgroup2" => m.unified = Some(PathBuf::from(mount_point)),
                "cgroup" => {
                    for o in opts.split(',') {
                        if matches!(
                            o,
                            "cpu" | "cpuacct" | "memory" | "pids" | "freezer" | "blkio" | "cpuset"
                        ) {
                            m.v1.insert(o.to_string(), PathBuf::from(mount_point));
                        }
                    }
                }
                _ => {}
            }
        }
        m
    }
}

/// The kernel's v1 controllers libcontainer places a container in; a
/// hierarchy without one (name=systemd) holds no cgroup of the container.
const CONTAINER_CONTROLLERS: [&str; 12] = [
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "hugetlb",
    "memory",
    "pids",
    "perf_event",
    "blkio",
    "net_prio",
    "net_cls",
    "freezer",
];

/// On cgroup v1, the directories of the cgroup at `path` in each hierarchy
/// that holds it, by the names the container sees under /sys/fs/cgroup: the
/// hierarchy's own (`cpu,cpuacct`) and, where it differs, each of its
/// controllers' (what runc makes symlinks of). Empty on a v2-only host.
pub fn v1_directories(path: &str) -> Vec<(String, PathBuf)> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    v1_directories_in(&info, path)
}

fn v1_directories_in(info: &str, path: &str) -> Vec<(String, PathBuf)> {
    let rel = path.trim_start_matches('/');
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        let (Some(mount_point), Some(&"cgroup"), Some(opts)) =
            (fields.get(4), fields.get(sep + 1), fields.get(sep + 3))
        else {
            continue;
        };
        let controllers: Vec<&str> = opts
            .split(',')
            .filter(|o| CONTAINER_CONTROLLERS.contains(o))
            .collect();
        let mount_point = Path::new(mount_point);
        let Some(base) = mount_point.file_name().and_then(|b| b.to_str()) else {
            continue;
        };
        if controllers.is_empty() || out.iter().any(|(n, _)| n == base) {
            continue;
        }
        let dir = mount_point.join(rel);
        out.push((base.to_string(), dir.clone()));
        for c in controllers.into_iter().filter(|c| *c != base) {
            out.push((c.to_string(), dir.clone()));
        }
    }
    out
}

/// One cgroup, by its path relative to each hierarchy's root.
#[derive(Debug, Clone)]
pub struct Cgroup {
    mounts: Mounts,
    path: String,
}

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// `key value` lines (memory.stat, memory.events, cpu.stat …).
fn read_kv(p: &Path) -> HashMap<String, u64> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// What `docker stats` shows, in the units of the Engine API.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// total CPU time, nanoseconds
    pub cpu_total: u64,
    pub cpu_user: u64,
    pub cpu_system: u64,
    pub memory_usage: u64,
    pub memory_max_usage: u64,
    /// 0 when unlimited
    pub memory_limit: u64,
    pub memory_stat: HashMap<String, u64>,
    pub pids_current: u64,
    /// 0 when unlimited
    pub pids_limit: u64,
    pub blkio_read: u64,
    pub blkio_write: u64,
}

/// New limits for a running container (`docker update`); `None` leaves a
/// limit as it is, a negative or zero value removes it where that means
/// "unlimited".
#[derive(Debug, Clone, Default)]
pub struct Limits {
    pub memory: Option<i64>,
    pub cpu_shares: Option<u64>,
    /// CFS quota in microseconds per period; 0 or less is no quota
    pub cpu_quota: Option<i64>,
    /// CFS period in microseconds, 100 ms when a quota comes without one
    pub cpu_period: Option<i64>,
    pub pids: Option<i64>,
    pub cpuset_cpus: Option<String>,
}

const CFS_PERIOD_US: i64 = 100_000;

impl Cgroup {
    /// Applies new limits to the live cgroup.
    pub fn set_limits(&self, l: &Limits) -> io::Result<()> {
        let write = |ctrl: &str, file: &str, value: String| -> io::Result<()> {
            let dir = self
                .dir(ctrl)
                .ok_or_else(|| io::Error::other(format!("the {ctrl} cgroup is not available")))?;
            std::fs::write(dir.join(file), value.as_bytes())
                .map_err(|e| io::Error::new(e.kind(), format!("writing {file}: {e}")))
        };
        let v2 = self.is_v2();
        if let Some(m) = l.memory {
            match (v2, m > 0) {
                (true, true) => write("memory", "memory.max", m.to_string())?,
                (true, false) => write("memory", "memory.max", "max".into())?,
                (false, true) => write("memory", "memory.limit_in_bytes", m.to_string())?,
                (false, false) => write("memory", "memory.limit_in_bytes", "-1".into())?,
            }
        }
        if let Some(s) = l.cpu_shares.filter(|s| *s > 0) {
            if v2 {
                // the OCI conversion of shares (2..262144) to weight (1..10000)
                let weight = 1 + ((s.clamp(2, 262_144) - 2) * 9999) / 262_142;
                write("cpu", "cpu.weight", weight.to_string())?;
            } else {
                write("cpu", "cpu.shares", s.to_string())?;
            }
        }
        if l.cpu_quota.is_some() || l.cpu_period.is_some() {
            let period = l.cpu_period.filter(|p| *p > 0).unwrap_or(CFS_PERIOD_US);
            let quota = l.cpu_quota.filter(|q| *q > 0);
            if v2 {
                let quota = quota.map_or("max".into(), |q| q.to_string());
                write("cpu", "cpu.max", format!("{quota} {period}"))?;
            } else {
                write("cpu", "cpu.cfs_period_us", period.to_string())?;
                write(
                    "cpu",
                    "cpu.cfs_quota_us",
                    quota.map_or("-1".into(), |q| q.to_string()),
                )?;
            }
        }
        if let Some(p) = l.pids {
            write(
                "pids",
                "pids.max",
                if p > 0 { p.to_string() } else { "max".into() },
            )?;
        }
        if let Some(c) = &l.cpuset_cpus {
            write("cpuset", "cpuset.cpus", c.clone())?;
        }
        Ok(())
    }

    pub fn new(mounts: Mounts, path: &str) -> Cgroup {
        Cgroup {
            mounts,
            path: path.trim_start_matches('/').to_string(),
        }
    }

    pub fn is_v2(&self) -> bool {
        self.mounts.v1.is_empty() && self.mounts.unified.is_some()
    }

    /// The directory of a controller (v1), or the unified directory (v2).
    fn dir(&self, controller: &str) -> Option<PathBuf> {
        if self.is_v2() {
            return self.mounts.unified.as_ref().map(|u| u.join(&self.path));
        }
        self.mounts.v1.get(controller).map(|m| m.join(&self.path))
    }

    /// Pids of every process in the cgroup.
    pub fn pids(&self) -> io::Result<Vec<i32>> {
        let dir = self
            .dir("pids")
            .or_else(|| self.dir("memory"))
            .ok_or_else(|| io::Error::other("no cgroup hierarchy for processes"))?;
        Ok(std::fs::read_to_string(dir.join("cgroup.procs"))?
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect())
    }

    /// Freezes (pause) or thaws (unpause) every process, and waits until
    /// the kernel reports the new state.
    pub fn set_frozen(&self, frozen: bool) -> io::Result<()> {
        let dir = self
            .dir("freezer")
            .ok_or_else(|| io::Error::other("the freezer cgroup is not available"))?;
        if self.is_v2() {
            std::fs::write(dir.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
        } else {
            std::fs::write(
                dir.join("freezer.state"),
                if frozen { "FROZEN" } else { "THAWED" },
            )?;
        }
        for _ in 0..1000 {
            if self.is_frozen()? == frozen {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Err(io::Error::other(
            "the cgroup did not change its freezer state",
        ))
    }

    pub fn is_frozen(&self) -> io::Result<bool> {
        let dir = self
            .dir("freezer")
            .ok_or_else(|| io::Error::other("the freezer cgroup is not available"))?;
        if self.is_v2() {
            let events = read_kv(&dir.join("cgroup.events"));
            return Ok(events.get("frozen") == Some(&1));
        }
        Ok(std::fs::read_to_string(dir.join("freezer.state"))?.trim() == "FROZEN")
    }

    /// How many processes the kernel's OOM killer killed in the cgroup.
    pub fn oom_kills(&self) -> u64 {
        let Some(dir) = self.dir("memory") else {
            return 0;
        };
        let file = if self.is_v2() {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        read_kv(&dir.join(file))
            .get("oom_kill")
            .copied()
            .unwrap_or(0)
    }

    pub fn stats(&self) -> Stats {
        let mut s = Stats::default();
        if self.is_v2() {
            let Some(dir) = self.dir("") else {
                return s;
            };
            let cpu = read_kv(&dir.join("cpu.stat"));
            s.cpu_total = cpu.get("usage_usec").copied().unwrap_or(0) * 1000;
            s.cpu_user = cpu.get("user_usec").copied().unwrap_or(0) * 1000;
            s.cpu_system = cpu.get("system_usec").copied().unwrap_or(0) * 1000;
            s.memory_usage = read_u64(&dir.join("memory.current")).unwrap_or(0);
            s.memory_max_usage = read_u64(&dir.join("memory.peak")).unwrap_or(0);
            s.memory_limit = read_u64(&dir.join("memory.max")).unwrap_or(0);
            s.memory_stat = read_kv(&dir.join("memory.stat"));
            s.pids_current = read_u64(&dir.join("pids.current")).unwrap_or(0);
            s.pids_limit = read_u64(&dir.join("pids.max")).unwrap_or(0);
            for line in std::fs::read_to_string(dir.join("io.stat"))
                .unwrap_or_default()
                .lines()
            {
                for f in line.split_whitespace() {
                    if let Some(v) = f.strip_prefix("rbytes=") {
                        s.blkio_read += v.parse::<u64>().unwrap_or(0);
                    } else if let Some(v) = f.strip_prefix("wbytes=") {
                        s.blkio_write += v.parse::<u64>().unwrap_or(0);
                    }
                }
            }
            return s;
        }
        if let Some(d) = self.dir("cpuacct") {
            s.cpu_total = read_u64(&d.join("cpuacct.usage")).unwrap_or(0);
            // cpuacct.stat is in clock ticks (USER_HZ, 100 on Linux)
            let st = read_kv(&d.join("cpuacct.stat"));
            s.cpu_user = st.get("user").copied().unwrap_or(0) * 10_000_000;
            s.cpu_system = st.get("system").copied().unwrap_or(0) * 10_000_000;
        }
        if let Some(d) = self.dir("memory") {
            s.memory_usage = read_u64(&d.join("memory.usage_in_bytes")).unwrap_or(0);
            s.memory_max_usage = read_u64(&d.join("memory.max_usage_in_bytes")).unwrap_or(0);
            let limit = read_u64(&d.join("memory.limit_in_bytes")).unwrap_or(0);
            // v1 reports "unlimited" as a huge page-aligned number
            s.memory_limit = if limit >= 1 << 62 { 0 } else { limit };
            s.memory_stat = read_kv(&d.join("memory.stat"));
        }
        if let Some(d) = self.dir("pids") {
            s.pids_current = read_u64(&d.join("pids.current")).unwrap_or(0);
            s.pids_limit = read_u64(&d.join("pids.max")).unwrap_or(0);
        }
        if let Some(d) = self.dir("blkio") {
            for line in std::fs::read_to_string(d.join("blkio.throttle.io_service_bytes"))
                .unwrap_or_default()
                .lines()
            {
                let f: Vec<&str> = line.split_whitespace().collect();
                if let [_, op, v] = f.as_slice() {
                    let v = v.parse::<u64>().unwrap_or(0);
                    match *op {
                        "Read" => s.blkio_read += v,
                        "Write" => s.blkio_write += v,
                        _ => {}
                    }
                }
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_v1_controllers_and_the_unified_mount() {
        let info = "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
                    35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
                    41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        let m = Mounts::parse(info);
        let cg = Cgroup::new(m, "/a/berth/x");
        assert!(!cg.is_v2());
        assert_eq!(
            cg.dir("memory"),
            Some(PathBuf::from("/sys/fs/cgroup/memory/a/berth/x"))
        );
        assert_eq!(cg.dir("freezer"), None);
        let m = Mounts::parse("30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
        let cg = Cgroup::new(m, "/a/berth/x");
        assert!(cg.is_v2());
        assert_eq!(
            cg.dir("freezer"),
            Some(PathBuf::from("/sys/fs/cgroup/a/berth/x"))
        );
    }

    #[test]
    fn lists_the_v1_directories_a_container_sees() {
        let info = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
                    35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
                    40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n\
                    41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        let dirs = v1_directories_in(info, "/a/berth/x");
        let cpu = PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/a/berth/x");
        assert_eq!(
            dirs,
            vec![
                ("cpu,cpuacct".to_string(), cpu.clone()),
                ("cpu".to_string(), cpu.clone()),
                ("cpuacct".to_string(), cpu),
                (
                    "memory".to_string(),
                    PathBuf::from("/sys/fs/cgroup/memory/a/berth/x")
                ),
            ]
        );
        assert!(
            v1_directories_in("30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", "/x")
                .is_empty()
        );
    }

    #[test]
    fn reads_v1_counters() {
        let root = tempfile::tempdir().expect("tempdir");
        let mem = root.path().join("memory/c");
        std::fs::create_dir_all(&mem).expect("mkdir");
        std::fs::write(mem.join("memory.usage_in_bytes"), "1048576\n").expect("write");
        std::fs::write(mem.join("memory.limit_in_bytes"), "9223372036854771712\n").expect("write");
        std::fs::write(
            mem.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .expect("write");
        let info = format!(
            "35 31 0:32 / {} rw - cgroup cgroup rw,memory\n",
            root.path().join("memory").display()
        );
        let cg = Cgroup::new(Mounts::parse(&info), "/c");
        let s = cg.stats();
        assert_eq!(s.memory_usage, 1 << 20);
        assert_eq!(s.memory_limit, 0, "unlimited");
        assert_eq!(cg.oom_kills(), 2);
    }
}
