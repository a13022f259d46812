//! `berth registry gc`: mark every blob a manifest of any repository
//! reaches, sweep the rest. Like Docker's registry, run it while the
//! registry is stopped or read-only: an upload finishing during the sweep
//! has no manifest yet and would be swept.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use berth_store::Digest;
use serde_json::Value;

use crate::storage::Storage;

#[derive(Debug, Default)]
pub struct GcReport {
    pub marked: usize,
    pub deleted: Vec<Digest>,
    pub manifests_deleted: usize,
}

pub struct GcOptions {
    pub dry_run: bool,
    /// also drop manifests no tag reaches
    pub delete_untagged: bool,
}

fn children(doc: &Value) -> Vec<Digest> {
    let mut out = Vec::new();
    for key in ["config", "layers", "manifests"] {
        let descs = match doc.get(key) {
            Some(Value::Array(a)) => a.clone(),
            Some(v @ Value::Object(_)) => vec![v.clone()],
            _ => vec![],
        };
        for d in descs {
            if let Some(d) = d
                .get("digest")
                .and_then(Value::as_str)
                .and_then(|s| Digest::parse(s).ok())
            {
                out.push(d);
            }
        }
    }
    out
}

pub fn collect(st: &Storage, opts: &GcOptions) -> anyhow::Result<GcReport> {
    let mut report = GcReport::default();
    let mut marked: HashSet<Digest> = HashSet::new();
    for repo in st.catalog() {
        let revisions: HashSet<Digest> = st.revisions(&repo).into_iter().collect();
        // the manifests kept: all of them, or those tags reach
        let mut kept: HashSet<Digest> = HashSet::new();
        let mut todo: Vec<Digest> = if opts.delete_untagged {
            st.tags(&repo)
                .iter()
                .filter_map(|t| st.resolve(&repo, t).ok())
                .collect()
        } else {
            revisions.iter().cloned().collect()
        };
        while let Some(m) = todo.pop() {
            if !kept.insert(m.clone()) {
                continue;
            }
            marked.insert(m.clone());
            let Ok(raw) = st.blobs().read(&m) else {
                continue;
            };
            let doc: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
            for c in children(&doc) {
                if revisions.contains(&c) {
                    todo.push(c);
                } else {
                    marked.insert(c);
                }
            }
        }
        for r in revisions.difference(&kept) {
            report.manifests_deleted += 1;
            if !opts.dry_run {
                st.delete_manifest(&repo, r.as_str())
                    .map_err(|e| anyhow::anyhow!("deleting manifest {r} of {repo}: {e:?}"))?;
            }
        }
    }
    report.marked = marked.len();
    for d in st.blobs().list()? {
        if !marked.contains(&d) {
            if !opts.dry_run {
                st.blobs().delete(&d)?;
            }
            report.deleted.push(d);
        }
    }
    if !opts.dry_run {
        let deleted: HashSet<&Digest> = report.deleted.iter().collect();
        for repo in st.catalog() {
            for l in st.layer_links(&repo) {
                if deleted.contains(&l) {
                    let _ = st.unlink_blob(&repo, &l);
                }
            }
        }
        purge_old_uploads(st, Duration::from_secs(24 * 3600));
    }
    report.deleted.sort();
    Ok(report)
}

/// Uploads nobody finished in a day are abandoned.
fn purge_old_uploads(st: &Storage, age: Duration) {
    let Ok(rd) = std::fs::read_dir(st.root().join("uploads")) else {
        return;
    };
    let now = SystemTime::now();
    for e in rd.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|d| d > age);
        if old {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}
