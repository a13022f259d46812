//! The DEK's life on managers in one process: a new DEK when autolock
//! turns on and when the unlock key rotates (an older key file then opens
//! nothing), a rotation a crash interrupted finished at the next start,
//! no DEK ever written in clear by a manager joining or promoted into an
//! autolocked swarm, and no new DEK made over sealed Raft data.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use berth_swarm_store::NodeRole;

use super::{contains, init_with, key_file, raw_files, restart, unlock, until_sealed_with, update};
use crate::keys::{self, KeyFile};
use crate::tests::{join_req, node, settings, until};
use crate::{LocalNodeState, NodeSpecUpdate, Swarm};

fn read_keys(dir: &Path, kek: Option<&[u8]>) -> KeyFile {
    keys::decode(&key_file(dir), kek).unwrap()
}

/// Waits until the key file opens with `kek` and holds one DEK, not `old`.
async fn until_new_dek(dir: &Path, kek: Option<&[u8]>, old: [u8; 32]) -> [u8; 32] {
    until(10, async || {
        keys::decode(&key_file(dir), kek)
            .is_ok_and(|f| f.pending_dek.is_none() && f.dek.is_some_and(|d| d != old))
    })
    .await;
    read_keys(dir, kek).dek.unwrap()
}

/// Opens the swarm of `dir` once the previous life let go of its files.
async fn open_again(dir: &tempfile::TempDir, name: &str) -> Result<Swarm, String> {
    for _ in 0..100 {
        match Swarm::open(settings(dir, name)).await {
            Err(e) if e.to_string().contains("already open") => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await
            }
            r => return r.map_err(|e| e.to_string()),
        }
    }
    panic!("the raft files stayed open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autolock_on_and_each_key_rotation_make_a_new_dek_an_older_key_file_cannot_use() {
    let dir = tempfile::tempdir().unwrap();
    let adir = dir.path().join("a");
    let a = node(&dir, "a").await;
    init_with(&a, false).await;
    until_sealed_with(&adir, None).await;
    let clear_copy = key_file(&adir);
    let first = read_keys(&adir, None).dek.unwrap();

    update(&a, true, false).await;
    let kek = keys::parse_human_key(&a.unlock_key().await.unwrap()).unwrap();
    let second = until_new_dek(&adir, Some(&kek), first).await;
    update(&a, true, true).await;
    let kek = keys::parse_human_key(&a.unlock_key().await.unwrap()).unwrap();
    let third = until_new_dek(&adir, Some(&kek), second).await;
    assert_ne!(third, first);
    until(10, async || a.nodes().await.is_ok_and(|n| n.len() == 1)).await;

    // the key file as it was before autolock: its DEK opens nothing now
    a.shutdown().await;
    drop(a);
    let sealed = key_file(&adir);
    std::fs::write(adir.join("certificates/swarm-node.key"), &clear_copy).unwrap();
    let err = open_again(&dir, "a")
        .await
        .err()
        .expect("opened with the old DEK");
    assert!(err.contains("opening raft"), "{err}");
    std::fs::write(adir.join("certificates/swarm-node.key"), &sealed).unwrap();
    let a = open_again(&dir, "a").await.unwrap();
    assert_eq!(a.info().await.local_state, LocalNodeState::Locked);
    unlock(&a, &keys::human_key(&kek)).await;
    until(10, async || a.nodes().await.is_ok_and(|n| n.len() == 1)).await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_cut_short_after_its_pending_dek_was_written_ends_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let adir = dir.path().join("a");
    let a = node(&dir, "a").await;
    init_with(&a, true).await;
    let key = a.unlock_key().await.unwrap();
    let kek = keys::parse_human_key(&key).unwrap();
    until_sealed_with(&adir, Some(&kek)).await;
    a.shutdown().await;
    drop(a);

    // the first step of a rotation on disk, the Raft data not rewritten
    let f = read_keys(&adir, Some(&kek));
    let next = [42u8; 32];
    let text = keys::encode(
        &f.key_pem,
        f.dek.as_ref(),
        Some(&next),
        Some(&kek),
        f.kek_version,
    );
    std::fs::write(adir.join("certificates/swarm-node.key"), text.unwrap()).unwrap();
    let a = open_again(&dir, "a").await.unwrap();
    unlock(&a, &key).await;
    let done = read_keys(&adir, Some(&kek));
    assert_eq!((done.dek, done.pending_dek), (Some(next), None));
    until(10, async || a.nodes().await.is_ok_and(|n| n.len() == 1)).await;
    // and the data opens with the new DEK alone
    let a = restart(a, &dir, "a").await;
    unlock(&a, &key).await;
    until(10, async || a.nodes().await.is_ok_and(|n| n.len() == 1)).await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_file_without_its_dek_is_refused_over_sealed_raft_data() {
    let dir = tempfile::tempdir().unwrap();
    let adir = dir.path().join("a");
    let a = node(&dir, "a").await;
    init_with(&a, false).await;
    until_sealed_with(&adir, None).await;
    a.shutdown().await;
    drop(a);
    let plain = read_keys(&adir, None).key_pem;
    std::fs::write(adir.join("certificates/swarm-node.key"), &plain).unwrap();
    let err = open_again(&dir, "a")
        .await
        .err()
        .expect("a new DEK was made");
    assert!(
        err.contains("swarm-node.key holds no raft-dek") && err.contains("refusing"),
        "{err}"
    );
    assert_eq!(key_file(&adir), plain, "the key file was rewritten");
}

/// Reads `dir`'s key file (and its temporary) until stopped; returns
/// every version it saw.
fn watch_key_file(dir: PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let mut seen: Vec<String> = Vec::new();
        let files = [
            dir.join("certificates/swarm-node.key"),
            dir.join("certificates/swarm-node.key.tmp"),
        ];
        while !stop.load(Ordering::Relaxed) {
            for f in &files {
                if let Ok(text) = std::fs::read_to_string(f)
                    && seen.last() != Some(&text)
                {
                    seen.push(text);
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        seen
    })
}

/// No version of the key file carried a DEK in clear, nor `dek` itself,
/// and no file under `dir` holds `dek` in base64 or raw.
fn assert_never_clear(dir: &Path, seen: &[String], dek: [u8; 32]) {
    assert!(!seen.is_empty());
    for (path, bytes) in raw_files(dir) {
        assert!(!contains(&bytes, &STANDARD.encode(dek)), "{path}");
        assert!(!bytes.windows(dek.len()).any(|w| w == dek), "{path}");
    }
    for text in seen {
        assert!(
            !text.contains(&STANDARD.encode(dek)),
            "the DEK in clear: {text}"
        );
        let clear_dek = text.starts_with("-----BEGIN") && !text.contains("SWARM SEALED KEY");
        assert!(
            !(clear_dek && text.contains("raft-dek")),
            "a clear DEK: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managers_joining_or_promoted_into_an_autolocked_swarm_never_write_their_dek_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let (bdir, cdir) = (dir.path().join("b"), dir.path().join("c"));
    let a = node(&dir, "a").await;
    let remote = init_with(&a, true).await;
    let kek = keys::parse_human_key(&a.unlock_key().await.unwrap()).unwrap();
    let view = a.inspect().await.unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let watch = watch_key_file(bdir.clone(), stop.clone());
    let b = node(&dir, "b").await;
    b.join(join_req(&remote, &view.manager_token))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    stop.store(true, Ordering::Relaxed);
    let seen = watch.join().unwrap();
    assert_never_clear(&bdir, &seen, read_keys(&bdir, Some(&kek)).dek.unwrap());

    // a worker's key file is plain (workers are never locked); promoted,
    // its first file with a DEK is sealed
    let c = node(&dir, "c").await;
    c.join(join_req(&remote, &view.worker_token)).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let watch = watch_key_file(cdir.clone(), stop.clone());
    until(10, async || a.node("c").await.is_ok()).await;
    let n = a.node("c").await.unwrap().node;
    let spec = NodeSpecUpdate {
        name: n.spec.annotations.name,
        labels: n.spec.annotations.labels,
        role: NodeRole::Manager,
        availability: n.spec.availability,
    };
    a.update_node("c", n.meta.version, spec).await.unwrap();
    until(20, async || c.nodes().await.is_ok()).await;
    until_sealed_with(&cdir, Some(&kek)).await;
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    stop.store(true, Ordering::Relaxed);
    let seen = watch.join().unwrap();
    assert_never_clear(&cdir, &seen, read_keys(&cdir, Some(&kek)).dek.unwrap());
    for s in [a, b, c] {
        s.shutdown().await;
    }
}
