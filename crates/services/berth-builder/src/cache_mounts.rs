//! The build cache beyond step images: the directories of
//! `RUN --mount=type=cache`, listed in `system df` and removed by
//! `builder prune`, which with `--all` also makes the builder forget its
//! step cache.
//!
//! Layout: `<data-root>/build-cache/<sha256 of the cache id>/data` is what
//! the step mounts; `meta.json` beside it keeps the id, the target and the
//! times, so that `system df` can describe it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use berth_core::error::Result;

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct Meta {
    id: String,
    target: String,
    created: i64,
    last_used: i64,
    usage_count: i64,
}

fn root(data_root: &Path) -> PathBuf {
    data_root.join("build-cache")
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The directory a step mounts for cache `id`, made on first use; its
/// record of use is updated (written aside, then renamed).
pub fn use_cache_mount(data_root: &Path, id: &str, target: &str) -> Result<PathBuf> {
    let dir = root(data_root).join(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
        id.as_bytes(),
    )));
    let data = dir.join("data");
    std::fs::create_dir_all(&data)?;
    let meta_path = dir.join("meta.json");
    let mut meta: Meta = std::fs::read(&meta_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| Meta {
            id: id.to_string(),
            target: target.to_string(),
            created: now(),
            ..Default::default()
        });
    meta.last_used = now();
    meta.usage_count += 1;
    // a name of its own: two builds may use one cache at once
    let tmp = dir.join(format!("meta.json.{}.tmp", &berth_core::random_id()[..12]));
    std::fs::write(
        &tmp,
        serde_json::to_vec(&meta).map_err(anyhow::Error::from)?,
    )?;
    std::fs::rename(&tmp, &meta_path)?;
    Ok(data)
}

/// The id `system df` shows: the first 25 characters of the directory
/// name (a hash; any other name is cut on a character boundary).
fn short_key(key: &str) -> String {
    key.chars().take(25).collect()
}

/// One cache mount as `system df` and prune see it.
struct Entry {
    key: String,
    dir: PathBuf,
    meta: Meta,
    size: u64,
}

fn entries(data_root: &Path) -> Vec<Entry> {
    let Ok(rd) = std::fs::read_dir(root(data_root)) else {
        return Vec::new();
    };
    let mut out: Vec<Entry> = rd
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| {
            let dir = e.path();
            let meta = std::fs::read(dir.join("meta.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            Entry {
                key: e.file_name().to_string_lossy().into_owned(),
                size: berth_archive::dir_size(&dir.join("data")),
                dir,
                meta,
            }
        })
        .collect();
    out.sort_by_key(|e| e.meta.last_used);
    out
}

/// A cache mount (`RUN --mount=type=cache`) as `system df` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheMountView {
    /// a short form of its key
    pub id: String,
    pub description: String,
    pub size: u64,
    pub created_at: String,
    pub last_used_at: String,
    pub usage_count: i64,
}

/// The cache mounts, the least recently used first.
pub fn list(data_root: &Path) -> Vec<CacheMountView> {
    entries(data_root)
        .into_iter()
        .map(|e| CacheMountView {
            id: short_key(&e.key),
            description: format!("cached mount {} (id {})", e.meta.target, e.meta.id),
            size: e.size,
            created_at: rfc3339(e.meta.created),
            last_used_at: rfc3339(e.meta.last_used),
            usage_count: e.meta.usage_count,
        })
        .collect()
}

/// Removes cache mounts, the least recently used first, down to
/// `keep_storage` bytes when given, sparing those used since `until`.
/// Returns the removed ids and the bytes freed.
pub fn prune(data_root: &Path, until: Option<i64>, keep_storage: u64) -> (Vec<String>, u64) {
    let list = entries(data_root);
    let mut total: u64 = list.iter().map(|e| e.size).sum();
    let mut deleted = Vec::new();
    let mut reclaimed = 0;
    for e in list {
        if keep_storage > 0 && total <= keep_storage {
            break;
        }
        if until.is_some_and(|u| e.meta.last_used >= u) {
            continue;
        }
        if let Err(err) = std::fs::remove_dir_all(&e.dir) {
            tracing::warn!(dir = %e.dir.display(), error = %err, "removing a build cache mount");
            continue;
        }
        total = total.saturating_sub(e.size);
        reclaimed += e.size;
        deleted.push(short_key(&e.key));
    }
    (deleted, reclaimed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(id: &str) -> String {
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(id.as_bytes()))
    }

    #[test]
    fn a_cache_id_has_one_directory_made_on_first_use() {
        let root = tempfile::tempdir().unwrap();
        let a = use_cache_mount(root.path(), "go-mod", "/go/pkg/mod").unwrap();
        assert_eq!(
            a,
            root.path()
                .join("build-cache")
                .join(key_of("go-mod"))
                .join("data")
        );
        assert!(a.is_dir());
        std::fs::write(a.join("kept"), b"1").unwrap();
        // the same id: the same directory, with what the last step left
        let again = use_cache_mount(root.path(), "go-mod", "/elsewhere").unwrap();
        assert_eq!(again, a);
        assert!(again.join("kept").exists());
        // another id: another directory
        let b = use_cache_mount(root.path(), "npm", "/root/.npm").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn use_is_recorded_and_the_first_target_kept() {
        let root = tempfile::tempdir().unwrap();
        let before = now();
        for target in ["/a", "/b", "/c"] {
            use_cache_mount(root.path(), "x", target).unwrap();
        }
        let list = entries(root.path());
        assert_eq!(list.len(), 1);
        let e = &list[0];
        assert_eq!(e.key, key_of("x"));
        assert_eq!(e.meta.id, "x");
        assert_eq!(e.meta.target, "/a");
        assert_eq!(e.meta.usage_count, 3);
        assert!(e.meta.created >= before && e.meta.last_used >= e.meta.created);
        // no temporary file stays behind
        let names: Vec<String> = std::fs::read_dir(&e.dir)
            .unwrap()
            .flatten()
            .map(|d| d.file_name().to_string_lossy().into_owned())
            .collect();
        let mut names = names;
        names.sort();
        assert_eq!(names, ["data", "meta.json"]);
    }

    #[test]
    fn entries_are_sized_and_least_recently_used_first() {
        let root = tempfile::tempdir().unwrap();
        let old = use_cache_mount(root.path(), "old", "/o").unwrap();
        let new = use_cache_mount(root.path(), "new", "/n").unwrap();
        std::fs::write(old.join("f"), vec![0u8; 3000]).unwrap();
        std::fs::write(new.join("f"), vec![0u8; 10]).unwrap();
        // make "old" older than "new", whatever the clock did
        let meta_path = old.parent().unwrap().join("meta.json");
        let mut m: Meta = serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
        m.last_used -= 100;
        std::fs::write(&meta_path, serde_json::to_vec(&m).unwrap()).unwrap();
        let list = entries(root.path());
        let ids: Vec<&str> = list.iter().map(|e| e.meta.id.as_str()).collect();
        assert_eq!(ids, ["old", "new"]);
        assert!(list[0].size >= 3000, "{}", list[0].size);
        assert!(list[1].size < list[0].size);
    }

    #[test]
    fn stray_files_and_broken_records_do_not_break_the_listing() {
        let root = tempfile::tempdir().unwrap();
        assert!(entries(root.path()).is_empty());
        let cache = root.path().join("build-cache");
        std::fs::create_dir_all(cache.join("broken")).unwrap();
        std::fs::write(cache.join("broken/meta.json"), b"{not json").unwrap();
        std::fs::write(cache.join("a-file"), b"").unwrap();
        let list = entries(root.path());
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].key, "broken");
        assert_eq!(list[0].meta.usage_count, 0);
        // a broken record is started afresh on next use
        let dir = cache.join(key_of("fresh"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("meta.json"), b"garbage").unwrap();
        use_cache_mount(root.path(), "fresh", "/t").unwrap();
        let m: Meta =
            serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
        assert_eq!((m.id.as_str(), m.usage_count), ("fresh", 1));
    }

    #[test]
    fn short_keys_and_times() {
        assert_eq!(short_key(&"a".repeat(64)), "a".repeat(25));
        assert_eq!(short_key("short"), "short");
        // cut on a character boundary, not a byte
        assert_eq!(short_key(&"é".repeat(30)).chars().count(), 25);
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
