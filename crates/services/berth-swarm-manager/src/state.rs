//! What a node keeps of its swarm membership under `<data-root>/swarm`:
//! `state.json` (who it is, where it listens, the managers it knows), the
//! root certificate, its own certificate and key, and `raft/` on managers.
//! Files are written to a temporary name and renamed, keys with mode 0600.
//! A manager's key file also carries its DEK, both sealed with the unlock
//! key under autolock (`keys`).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_swarm_ca::{NodeCert, NodeKey, Role, RootCa};
use serde::{Deserialize, Serialize};

use crate::keys::{self, KeyFileError, KeyState};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LocalState {
    pub node_id: String,
    pub cluster_id: String,
    pub manager: bool,
    /// this node's Raft member id (managers)
    pub raft_id: Option<u64>,
    pub listen_addr: String,
    /// host:port other nodes reach this node at
    pub advertise_addr: String,
    /// host:port of the managers this node knows, for its heartbeats
    pub managers: Vec<String>,
    /// `--data-path-addr`: where other nodes send its overlay traffic
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub data_path_addr: String,
}

/// A node's credentials: the root it trusts, its certificate and key.
pub struct Credentials {
    pub root: RootCa,
    pub cert: NodeCert,
    pub key: NodeKey,
}

pub struct Paths {
    pub dir: PathBuf,
}

/// What a restarted node finds on disk.
pub enum Loaded {
    /// not in a swarm
    Nothing,
    /// a manager whose key is sealed with an unlock key it was not given
    Locked(LocalState),
    Ready(LocalState, Box<Credentials>),
}

impl Paths {
    pub fn new(dir: &Path) -> Paths {
        Paths {
            dir: dir.to_path_buf(),
        }
    }

    fn state(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    fn certs(&self) -> PathBuf {
        self.dir.join("certificates")
    }

    pub fn key_file(&self) -> PathBuf {
        self.certs().join("swarm-node.key")
    }

    pub fn raft(&self) -> PathBuf {
        self.dir.join("raft")
    }

    /// The saved membership, if this node is in a swarm. The key file is
    /// opened with `keys.kek`; what it holds (the DEK, the KEK's version)
    /// goes into `keys`.
    pub fn load(&self, keys: &mut KeyState) -> std::io::Result<Loaded> {
        self.finish_pending_credentials()?;
        let state = match std::fs::read(self.state()) {
            Ok(b) => serde_json::from_slice::<LocalState>(&b).map_err(std::io::Error::other)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::Nothing),
            Err(e) => return Err(e),
        };
        let read = |name: &str| std::fs::read_to_string(self.certs().join(name));
        let bad = |e: berth_swarm_ca::CaError| std::io::Error::other(e.to_string());
        let file = match keys::decode(
            &std::fs::read_to_string(self.key_file())?,
            keys.kek.as_deref(),
        ) {
            Ok(f) => f,
            Err(KeyFileError::Locked) => return Ok(Loaded::Locked(state)),
            Err(e) => return Err(std::io::Error::other(e)),
        };
        let creds = Credentials {
            root: RootCa::from_pem(&read("swarm-root-ca.crt")?, None).map_err(bad)?,
            cert: NodeCert::parse(&read("swarm-node.crt")?).map_err(bad)?,
            key: NodeKey::from_pem(&file.key_pem).map_err(bad)?,
        };
        if file.dek.is_none() {
            // a clear file (no autolock, or an older berth's) has no KEK
            keys.kek = None;
        }
        keys.dek = file.dek;
        keys.pending_dek = file.pending_dek;
        keys.kek_version = file.kek_version;
        keys.held = false;
        Ok(Loaded::Ready(state, Box::new(creds)))
    }

    pub fn save_state(&self, state: &LocalState) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
        write_atomic(&self.state(), &bytes, 0o600)
    }

    /// The node's key file: on a manager with its DEKs, all sealed with
    /// the KEK when there is one; on a worker the plain key. Not written
    /// while a new manager's DEK is held (it learns the KEK first).
    pub fn save_key(&self, key: &NodeKey, keys: &KeyState, manager: bool) -> std::io::Result<()> {
        match self.key_text(key, keys, manager)? {
            Some(text) => write_atomic(&self.key_file(), text.as_bytes(), 0o600),
            None => Ok(()),
        }
    }

    /// What the key file holds; none while a new manager's DEK is held.
    fn key_text(
        &self,
        key: &NodeKey,
        keys: &KeyState,
        manager: bool,
    ) -> std::io::Result<Option<String>> {
        if manager && keys.held {
            return Ok(None);
        }
        let dek = keys.dek.as_ref().filter(|_| manager);
        let pending = keys.pending_dek.as_ref().filter(|_| manager);
        let text = keys::encode(
            &key.key_pem(),
            dek,
            pending,
            keys.kek.as_deref(),
            keys.kek_version,
        )
        .map_err(std::io::Error::other)?;
        Ok(Some(text))
    }

    /// The root, certificate and key go together: they are first written
    /// as one file, so a node killed between the three writes finds the
    /// whole new set at its next start instead of a certificate that
    /// does not match its key.
    pub fn save_credentials(&self, c: &Credentials, keys: &KeyState) -> std::io::Result<()> {
        let manager = c.cert.identity.role == Role::Manager;
        let pending = PendingCredentials {
            root: c.root.cert_pem().to_string(),
            cert: c.cert.chain_pem.clone(),
            key: self.key_text(&c.key, keys, manager)?,
        };
        let bytes = serde_json::to_vec(&pending).map_err(std::io::Error::other)?;
        write_atomic(&self.pending_credentials(), &bytes, 0o600)?;
        self.finish_pending_credentials()
    }

    fn pending_credentials(&self) -> PathBuf {
        self.certs().join("swarm-credentials.pending")
    }

    /// Writes a pending set of credentials into place, then forgets it.
    fn finish_pending_credentials(&self) -> std::io::Result<()> {
        let path = self.pending_credentials();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let p: PendingCredentials =
            serde_json::from_slice(&bytes).map_err(std::io::Error::other)?;
        let dir = self.certs();
        write_atomic(&dir.join("swarm-root-ca.crt"), p.root.as_bytes(), 0o644)?;
        write_atomic(&dir.join("swarm-node.crt"), p.cert.as_bytes(), 0o644)?;
        if let Some(key) = p.key {
            write_atomic(&self.key_file(), key.as_bytes(), 0o600)?;
        }
        std::fs::remove_file(&path)
    }

    /// Forgets the swarm: what `leave` and a failed join do.
    pub fn wipe(&self) -> std::io::Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// A set of credentials on its way into place (`save_credentials`).
#[derive(Serialize, Deserialize)]
struct PendingCredentials {
    root: String,
    cert: String,
    /// the key file's text (sealed as the key file is); none while a new
    /// manager's DEK is held
    key: Option<String>,
}

fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // a temporary file of its own per target (the certificate and the key
    // must not share one), its mode set even when a crash left it behind
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    // the rename itself durable: a DEK rotation reseals the log only
    // after the key file naming the new DEK is safely in place
    match path.parent() {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_set_of_credentials_is_put_in_place_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let paths = Paths::new(dir.path());
        std::fs::create_dir_all(paths.certs()).expect("certs dir");
        // a node killed after the journal was written, before the files
        let old = [
            ("swarm-root-ca.crt", "old root"),
            ("swarm-node.crt", "old cert"),
        ];
        for (name, text) in old {
            std::fs::write(paths.certs().join(name), text).expect("old file");
        }
        std::fs::write(paths.key_file(), "old key").expect("old key");
        let pending = PendingCredentials {
            root: "new root".into(),
            cert: "new cert".into(),
            key: Some("new key".into()),
        };
        let bytes = serde_json::to_vec(&pending).expect("json");
        std::fs::write(paths.pending_credentials(), bytes).expect("journal");
        let mut keys = KeyState::default();
        // no state file: nothing to load, but the set is completed first
        assert!(matches!(paths.load(&mut keys), Ok(Loaded::Nothing)));
        let read = |p: PathBuf| std::fs::read_to_string(p).expect("read");
        assert_eq!(read(paths.certs().join("swarm-root-ca.crt")), "new root");
        assert_eq!(read(paths.certs().join("swarm-node.crt")), "new cert");
        assert_eq!(read(paths.key_file()), "new key");
        assert!(!paths.pending_credentials().exists(), "the journal is gone");
    }
}
