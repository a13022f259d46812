//! Encryption at rest and autolock on swarms in one process: nothing
//! secret in clear on disk, a restarted autolocked manager locked until
//! given its key, key rotation reaching another manager, autolock off.

use std::path::Path;

use berth_swarm_store::ClusterSpec;

use crate::keys::{self, human_key};
use crate::tests::{free_addr, join_req, node, settings, until};
use crate::{InitRequest, LocalNodeState, Swarm, SwarmError, UpdateFlags};

#[path = "dek_tests.rs"]
mod dek;

async fn init_with(s: &Swarm, autolock: bool) -> String {
    let addr = free_addr();
    s.init(InitRequest {
        listen_addr: addr.clone(),
        advertise_addr: addr.clone(),
        spec: ClusterSpec {
            autolock_managers: autolock,
            ..ClusterSpec::default()
        },
        ..InitRequest::default()
    })
    .await
    .unwrap();
    addr
}

/// Every file under `dir`, with its bytes.
fn raw_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(raw_files(&p));
        } else {
            out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The CA key's PEM as the store holds it.
async fn ca_key(s: &Swarm) -> String {
    let node = s.manager().await.unwrap();
    node.store()
        .unwrap()
        .read(|st| st.cluster().unwrap().root_ca.ca_key.clone())
}

/// No file under `dir` shows the CA key (its PEM or any line of its
/// body) or the worker join token.
async fn assert_no_clear_secrets(s: &Swarm, dir: &Path) {
    let key = ca_key(s).await;
    assert!(key.contains("PRIVATE KEY"));
    let token = s.inspect().await.unwrap().worker_token;
    let files = raw_files(dir);
    assert!(files.iter().any(|(p, _)| p.ends_with("raft.redb")));
    for (path, bytes) in &files {
        for line in key.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!contains(bytes, line), "{path} holds the CA key in clear");
        }
        assert!(!contains(bytes, &token), "{path} holds a join token");
    }
}

fn key_file(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("certificates/swarm-node.key")).unwrap()
}

async fn update(s: &Swarm, autolock: bool, rotate: bool) {
    let view = s.inspect().await.unwrap();
    let mut spec = view.cluster.spec.clone();
    spec.autolock_managers = autolock;
    let flags = UpdateFlags {
        rotate_manager_unlock_key: rotate,
        ..UpdateFlags::default()
    };
    s.update(view.cluster.meta.version, spec, flags)
        .await
        .unwrap();
}

/// Waits until the key file under `dir` opens with `key` (or is clear,
/// for None).
async fn until_sealed_with(dir: &Path, key: Option<&[u8]>) {
    until(10, async || {
        let text = key_file(dir);
        match key {
            Some(k) => !text.contains("PRIVATE KEY") && keys::decode(&text, Some(k)).is_ok(),
            None => text.starts_with("-----BEGIN PRIVATE KEY-----\nraft-dek: "),
        }
    })
    .await;
}

/// Retries `f` while the Raft of the node's previous life still holds
/// its files: in one process, they are let go only once its last
/// replication task ends (a daemon restart is a new process).
async fn retry_open<T>(mut f: impl AsyncFnMut() -> Result<T, SwarmError>) -> T {
    let t = std::time::Instant::now();
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if t.elapsed().as_secs() < 10 && e.to_string().contains("already open") => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await
            }
            Err(e) => panic!("{e}"),
        }
    }
}

async fn unlock(s: &Swarm, key: &str) {
    retry_open(async || s.unlock(key).await).await
}

async fn restart(s: Swarm, dir: &tempfile::TempDir, name: &str) -> Swarm {
    s.shutdown().await;
    drop(s);
    retry_open(async || Swarm::open(settings(dir, name)).await).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_autolock_the_raft_data_is_sealed_and_the_dek_kept_beside_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let a = node(&dir, "a").await;
    init_with(&a, false).await;
    assert_eq!(a.unlock_key().await.unwrap(), "");
    let adir = dir.path().join("a");
    until_sealed_with(&adir, None).await;
    assert_no_clear_secrets(&a, &adir.join("raft")).await;
    let again = restart(a, &dir, "a").await;
    assert_eq!(again.info().await.local_state, LocalNodeState::Active);
    until(10, async || again.nodes().await.is_ok_and(|n| n.len() == 1)).await;
    assert!(matches!(
        again.unlock("SWMKEY-1-AAAA").await,
        Err(SwarmError::NotLocked)
    ));
    again.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_autolocked_manager_restarts_locked_and_follows_key_rotation_and_autolock_off() {
    let dir = tempfile::tempdir().unwrap();
    let (adir, bdir) = (dir.path().join("a"), dir.path().join("b"));
    let a = node(&dir, "a").await;
    let remote = init_with(&a, true).await;
    let id = a.info().await.node_id;
    let key = a.unlock_key().await.unwrap();
    assert!(key.starts_with("SWMKEY-1-") && key.len() == 52, "{key}");
    let raw = keys::parse_human_key(&key).unwrap();
    until_sealed_with(&adir, Some(&raw)).await;
    assert_no_clear_secrets(&a, &adir).await;

    let b = node(&dir, "b").await;
    let token = a.inspect().await.unwrap().manager_token;
    b.join(join_req(&remote, &token)).await.unwrap();
    until_sealed_with(&bdir, Some(&raw)).await;

    // a restart: locked, every manager call refused, until the key
    let a = restart(a, &dir, "a").await;
    let info = a.info().await;
    assert_eq!(info.local_state, LocalNodeState::Locked);
    assert_eq!(info.error, SwarmError::Locked.to_string());
    let err = a.nodes().await.unwrap_err();
    assert_eq!((err.http_status(), err.to_string()), (503, "Swarm is encrypted and needs to be unlocked before it can be used. Please use \"docker swarm unlock\" to unlock it.".into()));
    let err = a.leave(false).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("Swarm is encrypted and locked.")
    );
    assert!(matches!(
        a.init(InitRequest::default()).await,
        Err(SwarmError::AlreadyInSwarm)
    ));
    let err = a.unlock("nope").await.unwrap_err();
    assert_eq!(
        (err.http_status(), err.to_string()),
        (400, "invalid key string".into())
    );
    let err = a.unlock(&human_key(&[1u8; 32])).await.unwrap_err();
    assert_eq!(
        (err.http_status(), err.to_string()),
        (
            401,
            "swarm could not be unlocked: invalid key provided".into()
        )
    );
    unlock(&a, &key).await;
    assert_eq!(a.info().await.node_id, id);
    until(10, async || a.nodes().await.is_ok_and(|n| n.len() == 2)).await;
    assert!(matches!(a.unlock(&key).await, Err(SwarmError::NotLocked)));

    // a rotation reaches the other manager through Raft
    update(&a, true, true).await;
    let new_key = a.unlock_key().await.unwrap();
    assert_ne!(new_key, key);
    let new_raw = keys::parse_human_key(&new_key).unwrap();
    until_sealed_with(&adir, Some(&new_raw)).await;
    until_sealed_with(&bdir, Some(&new_raw)).await;
    until(10, async || {
        b.unlock_key().await.is_ok_and(|k| k == new_key)
    })
    .await;
    let b = restart(b, &dir, "b").await;
    assert_eq!(b.info().await.local_state, LocalNodeState::Locked);
    assert!(matches!(
        b.unlock(&key).await,
        Err(SwarmError::InvalidUnlockKey)
    ));
    unlock(&b, &new_key).await;
    until(10, async || b.nodes().await.is_ok_and(|n| n.len() == 2)).await;

    // autolock off: both key files back in clear, a restart unlocked
    update(&b, false, false).await;
    assert_eq!(a.unlock_key().await.unwrap(), "");
    until_sealed_with(&adir, None).await;
    until_sealed_with(&bdir, None).await;
    let a = restart(a, &dir, "a").await;
    assert_eq!(a.info().await.local_state, LocalNodeState::Active);
    until(10, async || a.nodes().await.is_ok_and(|n| n.len() == 2)).await;
    for s in [a, b] {
        s.shutdown().await;
    }
}

#[test]
fn the_unlock_key_follows_swarmkits_rules() {
    use crate::autolock::next_unlock_key;
    let on = ClusterSpec {
        autolock_managers: true,
        ..ClusterSpec::default()
    };
    let off = ClusterSpec::default();
    assert!(next_unlock_key(&[], &off, true).unwrap().is_empty());
    assert!(next_unlock_key(&[5; 32], &off, false).unwrap().is_empty());
    let made = next_unlock_key(&[], &on, false).unwrap();
    assert_eq!(made.len(), 32);
    assert_eq!(next_unlock_key(&made, &on, false).unwrap(), made);
    assert_ne!(next_unlock_key(&made, &on, true).unwrap(), made);
}
