//! A manager's secret material at rest, as swarmkit keeps it: the node's
//! TLS key file also carries the Raft data encryption key (DEK) in a
//! `raft-dek` header, so the two are always written together. Without
//! autolock both are in clear (swarmkit's `NONE` record); with it, both
//! are sealed with the unlock key (KEK) and a restarted manager stays
//! locked until it is given the key. Workers keep a plain key file.
//!
//! A DEK rotation (autolock turned on, the unlock key rotated) first
//! writes the new DEK as `raft-dek-pending` beside the current one, then
//! rewrites the Raft data with it, then makes it the only one, so a crash
//! at any step leaves a file whose keys open the data.
//!
//! ```text
//! -----BEGIN SWARM SEALED KEY-----      (-----BEGIN PRIVATE KEY----- in clear)
//! raft-dek: <base64: the DEK, sealed with the KEK or clear>
//! raft-dek-pending: <the same, for the next DEK during a rotation>
//! kek-version: <the cluster version whose KEK sealed it>
//!
//! <base64: the key's PEM sealed with the KEK (in clear: the PKCS#8 body)>
//! -----END SWARM SEALED KEY-----
//! ```

use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use berth_swarm_raft::seal::{KEY_LEN, SealError, Sealer};

use crate::SwarmError;

/// `encryption.HumanReadableKey`'s prefix.
const UNLOCK_KEY_PREFIX: &str = "SWMKEY-1-";
const SEALED_LABEL: &str = "SWARM SEALED KEY";
const DEK_HEADER: &str = "raft-dek";
const PENDING_HEADER: &str = "raft-dek-pending";
const VERSION_HEADER: &str = "kek-version";
/// the associated data of each sealed part
const SEAL_DEK: &str = "raft-dek";
const SEAL_KEY: &str = "swarm-node.key";

/// What this node holds in memory of its keys at rest.
#[derive(Clone, Default)]
pub struct KeyState {
    /// managers: what seals the Raft log and snapshots
    pub dek: Option<[u8; KEY_LEN]>,
    /// during a DEK rotation, the DEK that replaces `dek`
    pub pending_dek: Option<[u8; KEY_LEN]>,
    /// a manager that joined (or was promoted) and does not know the
    /// cluster's unlock key yet: its DEK stays in memory, never written
    /// in clear, until it learns whether and with what to seal it
    pub held: bool,
    /// the unlock key the key file is sealed with; none without autolock
    pub kek: Option<Vec<u8>>,
    /// the cluster object's version that set `kek`: older views of the
    /// cluster (a store still replaying its log) never undo a newer key
    pub kek_version: u64,
}

pub type Keys = Arc<Mutex<KeyState>>;

pub fn lock(keys: &Keys) -> std::sync::MutexGuard<'_, KeyState> {
    keys.lock().unwrap_or_else(|e| e.into_inner())
}

/// `SWMKEY-1-` and the key in base64 without padding.
pub fn human_key(key: &[u8]) -> String {
    format!("{UNLOCK_KEY_PREFIX}{}", STANDARD_NO_PAD.encode(key))
}

/// `encryption.ParseHumanReadableKey`: any length decodes; a key of the
/// wrong length is then simply a key that does not unlock.
pub fn parse_human_key(s: &str) -> Result<Vec<u8>, SwarmError> {
    let invalid = || SwarmError::InvalidArgument("invalid key string".into());
    let b64 = s.strip_prefix(UNLOCK_KEY_PREFIX).ok_or_else(invalid)?;
    STANDARD_NO_PAD.decode(b64).map_err(|_| invalid())
}

/// A new unlock key.
pub fn new_unlock_key() -> Result<Vec<u8>, SwarmError> {
    berth_swarm_raft::seal::random_key()
        .map(|k| k.to_vec())
        .map_err(|e| SwarmError::internal("making an unlock key", e))
}

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// sealed, and no KEK or the wrong one
    #[error("the node key is sealed with another unlock key")]
    Locked,
    #[error("the node key file: {0}")]
    Bad(String),
}

/// The key file's contents.
#[derive(Debug, PartialEq, Eq)]
pub struct KeyFile {
    pub key_pem: String,
    pub dek: Option<[u8; KEY_LEN]>,
    pub pending_dek: Option<[u8; KEY_LEN]>,
    pub kek_version: u64,
}

fn wrap64(b64: &str) -> String {
    let mut out = String::new();
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out
}

/// The key file for `key_pem` (and the DEKs, on managers), sealed with
/// `kek` when there is one.
pub fn encode(
    key_pem: &str,
    dek: Option<&[u8; KEY_LEN]>,
    pending: Option<&[u8; KEY_LEN]>,
    kek: Option<&[u8]>,
    kek_version: u64,
) -> Result<String, SealError> {
    let Some(dek) = dek else {
        // a worker's key: never sealed, the plain PEM
        return Ok(key_pem.to_string());
    };
    let sealer = match kek {
        Some(k) => Some(Sealer::from_slice(k).ok_or(SealError::WrongKey)?),
        None => None,
    };
    let header = |k: &[u8; KEY_LEN]| -> Result<String, SealError> {
        Ok(match &sealer {
            Some(s) => STANDARD.encode(s.seal(SEAL_DEK, k)?),
            None => STANDARD.encode(k),
        })
    };
    let (label, body) = match &sealer {
        Some(s) => (
            SEALED_LABEL.to_string(),
            wrap64(&STANDARD.encode(s.seal(SEAL_KEY, key_pem.as_bytes())?)),
        ),
        None => pem_parts(key_pem).ok_or(SealError::NotSealed)?,
    };
    let mut headers = format!("{DEK_HEADER}: {}\n", header(dek)?);
    if let Some(p) = pending {
        headers.push_str(&format!("{PENDING_HEADER}: {}\n", header(p)?));
    }
    Ok(format!(
        "-----BEGIN {label}-----\n{headers}{VERSION_HEADER}: {kek_version}\n\n{body}-----END {label}-----\n"
    ))
}

/// The label and the base64 body lines (each ending in a newline) of a
/// one-block PEM without headers.
fn pem_parts(pem: &str) -> Option<(String, String)> {
    let mut lines = pem.lines();
    let label = lines
        .next()?
        .strip_prefix("-----BEGIN ")?
        .strip_suffix("-----")?
        .to_string();
    let mut body = String::new();
    for l in lines {
        if l.starts_with("-----END ") {
            return Some((label, body));
        }
        body.push_str(l.trim());
        body.push('\n');
    }
    None
}

/// Reads a key file written by `encode`, or by an older berth (a plain
/// PEM, no DEK).
pub fn decode(text: &str, kek: Option<&[u8]>) -> Result<KeyFile, KeyFileError> {
    let bad = |why: &str| KeyFileError::Bad(why.to_string());
    let mut lines = text.lines();
    let label = lines
        .next()
        .and_then(|l| l.strip_prefix("-----BEGIN "))
        .and_then(|l| l.strip_suffix("-----"))
        .ok_or_else(|| bad("not PEM"))?;
    let mut headers = Vec::new();
    let mut body = String::new();
    for l in lines.by_ref() {
        match l.split_once(": ") {
            Some((k, v)) if body.is_empty() => headers.push((k.trim(), v.trim())),
            _ if l.is_empty() => {}
            _ if l.starts_with("-----END ") => break,
            _ => {
                body.push_str(l.trim());
                body.push('\n');
            }
        }
    }
    let header = |name: &str| headers.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    let kek_version = header(VERSION_HEADER)
        .map(|v| v.parse::<u64>().map_err(|_| bad("a bad kek-version")))
        .transpose()?
        .unwrap_or(0);
    let dek_b64 = header(DEK_HEADER);
    let pending_b64 = header(PENDING_HEADER);
    if pending_b64.is_some() && dek_b64.is_none() {
        return Err(bad("a raft-dek-pending without a raft-dek"));
    }
    if label != SEALED_LABEL {
        let clear = |v: Option<&str>| -> Result<Option<[u8; KEY_LEN]>, KeyFileError> {
            v.map(|v| to_key(&STANDARD.decode(v).map_err(|_| bad("a bad raft-dek"))?))
                .transpose()
        };
        return Ok(KeyFile {
            key_pem: format!("-----BEGIN {label}-----\n{body}-----END {label}-----\n"),
            dek: clear(dek_b64)?,
            pending_dek: clear(pending_b64)?,
            kek_version,
        });
    }
    let sealer = kek
        .and_then(Sealer::from_slice)
        .ok_or(KeyFileError::Locked)?;
    let open = |purpose: &str, b64: &str| -> Result<Vec<u8>, KeyFileError> {
        let sealed = STANDARD
            .decode(b64.replace('\n', ""))
            .map_err(|_| bad("bad base64"))?;
        sealer.open(purpose, &sealed).map_err(|e| match e {
            SealError::WrongKey => KeyFileError::Locked,
            other => KeyFileError::Bad(other.to_string()),
        })
    };
    let dek = to_key(&open(SEAL_DEK, dek_b64.ok_or_else(|| bad("no raft-dek"))?)?)?;
    let pending_dek = pending_b64
        .map(|v| to_key(&open(SEAL_DEK, v)?))
        .transpose()?;
    let key_pem = String::from_utf8(open(SEAL_KEY, &body)?).map_err(|_| bad("not text"))?;
    Ok(KeyFile {
        key_pem,
        dek: Some(dek),
        pending_dek,
        kek_version,
    })
}

fn to_key(b: &[u8]) -> Result<[u8; KEY_LEN], KeyFileError> {
    b.try_into()
        .map_err(|_| KeyFileError::Bad("a DEK of the wrong length".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\nAAAA\n-----END PRIVATE KEY-----\n";

    #[test]
    fn unlock_keys_read_and_print_as_swarmkits() {
        let k = [7u8; 32];
        let h = human_key(&k);
        assert!(h.starts_with("SWMKEY-1-"));
        assert_eq!(h.len(), "SWMKEY-1-".len() + 43);
        assert_eq!(parse_human_key(&h).unwrap(), k.to_vec());
        for bad in ["", "SWMKEY-2-abc", "SWMKEY-1-***", "SWMKEY-1-AAAA="] {
            let e = parse_human_key(bad).unwrap_err();
            assert_eq!(e.to_string(), "invalid key string");
            assert_eq!(e.http_status(), 400);
        }
        // decodes, but is not a key: refused later as a wrong key
        assert_eq!(parse_human_key("SWMKEY-1-AAAA").unwrap().len(), 3);
    }

    #[test]
    fn a_workers_key_file_is_the_plain_pem_and_old_files_still_read() {
        assert_eq!(encode(PEM, None, None, None, 0).unwrap(), PEM);
        let f = decode(PEM, None).unwrap();
        assert_eq!((f.key_pem.as_str(), f.dek, f.kek_version), (PEM, None, 0));
        assert_eq!(f.pending_dek, None);
    }

    #[test]
    fn without_a_kek_the_dek_rides_in_clear_beside_the_key() {
        let dek = [9u8; 32];
        let text = encode(PEM, Some(&dek), None, None, 4).unwrap();
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\nraft-dek: "));
        let f = decode(&text, None).unwrap();
        assert_eq!(f.key_pem, PEM);
        assert_eq!((f.dek, f.kek_version), (Some(dek), 4));
    }

    #[test]
    fn with_a_kek_nothing_is_clear_and_only_that_kek_opens_it() {
        let dek = [9u8; 32];
        let kek = [3u8; 32];
        let text = encode(PEM, Some(&dek), None, Some(&kek), 12).unwrap();
        assert!(!text.contains("PRIVATE KEY"));
        assert!(!text.contains("MIGHAgEAMBMG"));
        assert!(!text.contains(&STANDARD.encode(dek)));
        assert!(matches!(decode(&text, None), Err(KeyFileError::Locked)));
        assert!(matches!(
            decode(&text, Some(&[4u8; 32])),
            Err(KeyFileError::Locked)
        ));
        assert!(matches!(
            decode(&text, Some(&[3u8; 5])),
            Err(KeyFileError::Locked)
        ));
        let f = decode(&text, Some(&kek)).unwrap();
        assert_eq!(f.key_pem, PEM);
        assert_eq!((f.dek, f.kek_version), (Some(dek), 12));
        assert!(encode(PEM, Some(&dek), None, Some(&[1u8; 3]), 0).is_err());
    }

    #[test]
    fn a_pending_dek_rides_beside_the_current_one_sealed_as_it_is() {
        let (dek, next, kek) = ([9u8; 32], [8u8; 32], [3u8; 32]);
        let clear = encode(PEM, Some(&dek), Some(&next), None, 2).unwrap();
        assert!(clear.contains(&format!("raft-dek-pending: {}", STANDARD.encode(next))));
        let f = decode(&clear, None).unwrap();
        assert_eq!(
            (f.dek, f.pending_dek, f.key_pem.as_str()),
            (Some(dek), Some(next), PEM)
        );
        let sealed = encode(PEM, Some(&dek), Some(&next), Some(&kek), 3).unwrap();
        assert!(sealed.contains("raft-dek-pending: "));
        assert!(!sealed.contains(&STANDARD.encode(next)));
        let f = decode(&sealed, Some(&kek)).unwrap();
        assert_eq!((f.dek, f.pending_dek), (Some(dek), Some(next)));
        // once promoted, the header is gone
        let done = encode(PEM, Some(&next), None, Some(&kek), 3).unwrap();
        assert!(!done.contains("raft-dek-pending"));
        assert_eq!(decode(&done, Some(&kek)).unwrap().pending_dek, None);
        let orphan = clear.replace("raft-dek: ", "x-raft-dek: ");
        assert!(matches!(decode(&orphan, None), Err(KeyFileError::Bad(_))));
    }
}
