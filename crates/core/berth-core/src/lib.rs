//! berth's core: its own domain types and the ports that drivers implement.
//! Services depend on this crate and on nothing that speaks HTTP, redb or
//! a kernel interface; drivers (the redb store, the shim runtime, the
//! bridge network, the local volume driver) implement its traits, and the
//! daemon binary wires them together. See docs/ARCHITECTURE.md.

pub mod container;
pub mod error;
pub mod image;
pub mod mount;
pub mod network;
pub mod pods;
pub mod runtime;
pub mod schema;
pub mod store;
pub mod verify;
pub mod volume;

/// A test hook: `BERTH_CRASH_AT=<point>` in the daemon's environment kills
/// it with SIGKILL when it reaches that point, so that the crash tests hit
/// the exact instants a timed kill -9 hits only by luck.
pub fn crash_point(name: &str) {
    static AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if AT
        .get_or_init(|| std::env::var("BERTH_CRASH_AT").ok())
        .as_deref()
        == Some(name)
    {
        tracing::error!("crashing at {name}, as BERTH_CRASH_AT asks");
        // SAFETY: kill(2) on our own pid has no memory effects
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

/// A random 64-hex-character id, like Docker's container ids.
pub fn random_id() -> String {
    use std::io::Read;
    let mut b = [0u8; 32];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut b);
    }
    hex::encode(b)
}

/// Docker's label filter: every `key` or `key=value` given must match.
pub fn labels_match(labels: &std::collections::HashMap<String, String>, wanted: &[String]) -> bool {
    wanted.iter().all(|w| match w.split_once('=') {
        Some((k, v)) => labels.get(k).map(String::as_str) == Some(v),
        None => labels.contains_key(w.as_str()),
    })
}

/// Now, as Docker writes times: RFC 3339 in UTC with nanoseconds.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Poisoned locks only mean a panic elsewhere; the data is still usable.
pub trait LockExt<T> {
    fn r(&self) -> std::sync::RwLockReadGuard<'_, T>;
    fn w(&self) -> std::sync::RwLockWriteGuard<'_, T>;
}

impl<T> LockExt<T> for std::sync::RwLock<T> {
    fn r(&self) -> std::sync::RwLockReadGuard<'_, T> {
        self.read().unwrap_or_else(|p| p.into_inner())
    }
    fn w(&self) -> std::sync::RwLockWriteGuard<'_, T> {
        self.write().unwrap_or_else(|p| p.into_inner())
    }
}
