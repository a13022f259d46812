//! Gives back the pages a long-lived process touched only while it
//! started. The shim runs most of libcontainer, serde and the OCI spec code
//! to create its container; afterwards it only waits, copies output and
//! answers a few requests. The daemon maps a 40 MB binary and runs much of
//! it to start (and to serve a request), then waits. Those file pages
//! stay mapped and count in the resident set. Dropping the mappings' clean pages (MADV_DONTNEED on read-only,
//! file-backed mappings with no private copy) leaves the page cache as it
//! is and lets the steady state fault back in only what it uses. Writable
//! mappings and any mapping holding private (COW) pages, such as RELRO
//! data fixed up at load, are never touched: dropping those would lose
//! data.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

/// One mapping of /proc/self/smaps.
struct Mapping {
    start: usize,
    end: usize,
    /// read-only and backed by a file
    clean_candidate: bool,
    anonymous_kb: u64,
}

fn header(line: &str) -> Option<Mapping> {
    let mut parts = line.split_whitespace();
    let range = parts.next()?;
    let perms = parts.next()?;
    let (a, b) = range.split_once('-')?;
    let start = usize::from_str_radix(a, 16).ok()?;
    let end = usize::from_str_radix(b, 16).ok()?;
    if perms.len() != 4 {
        return None;
    }
    let path = parts.nth(3).unwrap_or("");
    Some(Mapping {
        start,
        end,
        clean_candidate: perms.as_bytes()[1] != b'w' && path.starts_with('/'),
        anonymous_kb: 0,
    })
}

/// The mappings whose pages can be dropped safely.
fn droppable(smaps: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut cur: Option<Mapping> = None;
    let mut flush = |m: Option<Mapping>| {
        if let Some(m) = m
            && m.clean_candidate
            && m.anonymous_kb == 0
        {
            out.push((m.start, m.end));
        }
    };
    for line in smaps.lines() {
        if let Some(m) = header(line) {
            flush(cur.take());
            cur = Some(m);
        } else if let Some(rest) = line.strip_prefix("Anonymous:")
            && let Some(m) = cur.as_mut()
        {
            m.anonymous_kb = rest
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .unwrap_or(u64::MAX);
        }
    }
    flush(cur);
    out
}

/// Returns freed heap to the kernel and drops clean file pages.
pub fn trim() {
    // SAFETY: malloc_trim only releases memory malloc holds free
    unsafe { libc::malloc_trim(0) };
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    for (start, end) in droppable(&smaps) {
        // SAFETY: the range is a whole mapping of this process that is
        // read-only, file-backed and holds no private pages: dropping its
        // pages only makes the next access fault them in from the file
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
    }
}

/// For the daemon, which has no single place that sees every request: a
/// thread that trims once the process has used (almost) no CPU for a
/// while, and again after each busy spell. The process's own CPU time is
/// the measure of activity, so nothing else needs to report to it.
pub fn trim_when_idle() -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("trim".into())
        .stack_size(64 * 1024)
        .spawn(trim_loop)
        .map(|_| ())
}

/// How often the idle check runs while pages may be worth dropping, and
/// once they were dropped (only activity can bring them back).
const IDLE_TICK: std::time::Duration = std::time::Duration::from_millis(500);
const TRIMMED_TICK: std::time::Duration = std::time::Duration::from_secs(2);
/// CPU time per tick below which the process counts as idle.
const IDLE_CPU: std::time::Duration = std::time::Duration::from_millis(3);

fn trim_loop() {
    let mut last = cpu_time();
    let mut trimmed = false;
    loop {
        std::thread::sleep(if trimmed { TRIMMED_TICK } else { IDLE_TICK });
        let now = cpu_time();
        let busy = now.saturating_sub(last) > IDLE_CPU;
        last = now;
        if busy {
            trimmed = false;
        } else if !trimmed {
            trim();
            trimmed = true;
            // the trim's own work is not activity
            last = cpu_time();
        }
    }
}

/// User and system CPU time of the whole process.
fn cpu_time() -> std::time::Duration {
    // SAFETY: getrusage fills the struct it is given
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above, with a valid pointer
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return std::time::Duration::ZERO;
    }
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    std::time::Duration::from_micros(us(ru.ru_utime) + us(ru.ru_stime))
}

/// How long the shim must be quiet before it trims again.
const QUIET_FOR: std::time::Duration = std::time::Duration::from_secs(3);

/// Trims again after each burst of requests, once no request came for a
/// while: serving one faults in pages an idle shim has no use for. Output
/// does not count: the copying path's few pages come back at once if the
/// container keeps writing, and a chatty container must not keep the
/// daemon's one-off work resident.
#[derive(Default)]
pub struct Quiet {
    activity: AtomicUsize,
    /// set by the first activity after a trim
    dirty: Mutex<bool>,
    woken: Condvar,
}

impl Quiet {
    /// Records activity: cheap, called at each request's start and end.
    pub fn touch(&self) {
        self.activity.fetch_add(1, Ordering::Relaxed);
        let mut dirty = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
        if !*dirty {
            *dirty = true;
            self.woken.notify_one();
        }
    }

    /// The trimming loop; runs on its own thread for the shim's lifetime.
    pub fn run(&self) {
        loop {
            {
                let mut dirty = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
                while !*dirty {
                    dirty = self.woken.wait(dirty).unwrap_or_else(|p| p.into_inner());
                }
            }
            loop {
                let before = self.activity.load(Ordering::Relaxed);
                std::thread::sleep(QUIET_FOR);
                // checked under the lock, so that activity after the check
                // finds `dirty` cleared and wakes the next round
                let mut dirty = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
                if self.activity.load(Ordering::Relaxed) == before {
                    *dirty = false;
                    break;
                }
            }
            trim();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_clean_read_only_file_mappings() {
        let smaps = "\\
5600-5700 r--p 00000000 08:01 12 /usr/bin/berth
Anonymous:             0 kB
5700-5800 r-xp 00001000 08:01 12 /usr/bin/berth
Anonymous:             0 kB
5800-5900 r--p 00002000 08:01 12 /usr/bin/berth
Anonymous:            16 kB
5900-5a00 rw-p 00003000 08:01 12 /usr/bin/berth
Anonymous:             0 kB
6000-7000 rw-p 00000000 00:00 0 [heap]
Anonymous:            64 kB
7000-7001 r-xp 00000000 00:00 0 [vdso]
Anonymous:             0 kB
";
        assert_eq!(droppable(smaps), vec![(0x5600, 0x5700), (0x5700, 0x5800)]);
        // the running process can do it without harm
        trim();
        assert_eq!(droppable("garbage\n"), Vec::<(usize, usize)>::new());
    }
}
