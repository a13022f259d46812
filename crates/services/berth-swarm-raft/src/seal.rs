//! Encryption at rest: every Raft entry and snapshot berth writes is
//! sealed with the manager's data encryption key (DEK), and the DEK and
//! the node's TLS key with the unlock key (KEK) when the swarm is
//! autolocked. ChaCha20-Poly1305 with a random nonce per record; the
//! `purpose` goes in as associated data, so a record sealed for one use
//! does not open as another.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use std::sync::{Arc, RwLock};

/// Starts every sealed record. A clear record written by an older berth
/// is JSON, whose first byte is never 0.
pub const MAGIC: &[u8; 4] = b"\0BS1";

/// The length of a DEK or a KEK.
pub const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// the wrong key, or a damaged record
    #[error("the record does not open with this key")]
    WrongKey,
    #[error("the record is not sealed")]
    NotSealed,
    #[error("no random numbers: {0}")]
    Random(String),
}

/// A 256-bit key that seals and opens records.
#[derive(Clone)]
pub struct Sealer {
    key: LessSafeKey,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // the key itself is never printed
        f.write_str("Sealer")
    }
}

/// 32 random bytes: a new DEK or unlock key.
pub fn random_key() -> Result<[u8; KEY_LEN], SealError> {
    let mut k = [0u8; KEY_LEN];
    SystemRandom::new()
        .fill(&mut k)
        .map_err(|e| SealError::Random(e.to_string()))?;
    Ok(k)
}

impl Sealer {
    pub fn new(key: &[u8; KEY_LEN]) -> Sealer {
        // a 32-byte key always fits ChaCha20-Poly1305
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, key)
            .unwrap_or_else(|_| unreachable!("ChaCha20-Poly1305 takes 32-byte keys"));
        Sealer {
            key: LessSafeKey::new(unbound),
        }
    }

    /// A sealer from key bytes of any length: None unless 32 bytes.
    pub fn from_slice(key: &[u8]) -> Option<Sealer> {
        let k: &[u8; KEY_LEN] = key.try_into().ok()?;
        Some(Sealer::new(k))
    }

    /// `MAGIC`, a random nonce, then the ciphertext and its tag.
    pub fn seal(&self, purpose: &str, plain: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|e| SealError::Random(e.to_string()))?;
        let mut body = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(purpose.as_bytes()),
                &mut body,
            )
            .map_err(|_| SealError::Random("sealing failed".into()))?;
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        Ok(out)
    }

    pub fn open(&self, purpose: &str, record: &[u8]) -> Result<Vec<u8>, SealError> {
        let rest = record.strip_prefix(MAGIC).ok_or(SealError::NotSealed)?;
        if rest.len() < NONCE_LEN {
            return Err(SealError::WrongKey);
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::WrongKey)?;
        let mut body = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(purpose.as_bytes()), &mut body)
            .map_err(|_| SealError::WrongKey)?;
        Ok(plain.to_vec())
    }
}

/// The DEKs a manager's Raft data is sealed with, shared by its log, its
/// state machine and the manager: the current one and, while a rotation
/// rewrites the data, the pending one. Everything new is sealed with the
/// pending key as soon as there is one, and a record opens with either,
/// so a rotation can run beside Raft and stop at any point.
#[derive(Clone)]
pub struct Deks {
    pair: Arc<RwLock<DekPair>>,
}

struct DekPair {
    current: Sealer,
    pending: Option<Sealer>,
}

impl std::fmt::Debug for Deks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Deks")
    }
}

impl Deks {
    pub fn new(current: &[u8; KEY_LEN], pending: Option<&[u8; KEY_LEN]>) -> Deks {
        Deks {
            pair: Arc::new(RwLock::new(DekPair {
                current: Sealer::new(current),
                pending: pending.map(Sealer::new),
            })),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, DekPair> {
        self.pair.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, DekPair> {
        self.pair.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Seals with the pending key during a rotation, else the current.
    pub fn seal(&self, purpose: &str, plain: &[u8]) -> Result<Vec<u8>, SealError> {
        let pair = self.read();
        pair.pending
            .as_ref()
            .unwrap_or(&pair.current)
            .seal(purpose, plain)
    }

    /// Opens with the pending key, then the current one.
    pub fn open(&self, purpose: &str, record: &[u8]) -> Result<Vec<u8>, SealError> {
        let pair = self.read();
        if let Some(p) = &pair.pending
            && let Ok(plain) = p.open(purpose, record)
        {
            return Ok(plain);
        }
        pair.current.open(purpose, record)
    }

    /// Starts a rotation: from now on records are sealed with `key`. The
    /// caller has written it to disk first (as `raft-dek-pending`).
    pub fn set_pending(&self, key: &[u8; KEY_LEN]) {
        self.write().pending = Some(Sealer::new(key));
    }

    /// Ends a rotation once every record was rewritten with the pending
    /// key: it becomes the only one.
    pub fn promote(&self) {
        let mut pair = self.write();
        if let Some(p) = pair.pending.take() {
            pair.current = p;
        }
    }

    pub fn rotating(&self) -> bool {
        self.read().pending.is_some()
    }
}

/// Whether `data` is a sealed record (rather than an older clear one).
pub fn is_sealed(data: &[u8]) -> bool {
    data.starts_with(MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_opens_only_with_its_key_and_purpose() {
        let k = random_key().unwrap();
        let s = Sealer::new(&k);
        let r = s.seal("log", b"the CA key").unwrap();
        assert!(is_sealed(&r));
        assert!(!r.windows(10).any(|w| w == b"the CA key"));
        assert_eq!(s.open("log", &r).unwrap(), b"the CA key");
        assert!(matches!(s.open("snapshot", &r), Err(SealError::WrongKey)));
        let other = Sealer::new(&random_key().unwrap());
        assert!(matches!(other.open("log", &r), Err(SealError::WrongKey)));
        // two seals of the same text differ (random nonces)
        assert_ne!(s.seal("log", b"x").unwrap(), s.seal("log", b"x").unwrap());
        assert!(matches!(s.open("log", b"{}"), Err(SealError::NotSealed)));
        let mut bad = r.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(s.open("log", &bad), Err(SealError::WrongKey)));
        assert!(Sealer::from_slice(&[0; 16]).is_none());
    }

    #[test]
    fn during_a_rotation_new_records_take_the_pending_key_and_both_open() {
        let (old, new) = ([1u8; 32], [2u8; 32]);
        let deks = Deks::new(&old, None);
        let before = deks.seal("log", b"before").unwrap();
        deks.set_pending(&new);
        assert!(deks.rotating());
        let during = deks.seal("log", b"during").unwrap();
        assert!(Sealer::new(&old).open("log", &during).is_err());
        assert_eq!(Sealer::new(&new).open("log", &during).unwrap(), b"during");
        assert_eq!(deks.open("log", &before).unwrap(), b"before");
        assert_eq!(deks.open("log", &during).unwrap(), b"during");
        deks.promote();
        assert!(!deks.rotating());
        assert!(deks.open("log", &before).is_err());
        assert_eq!(deks.open("log", &during).unwrap(), b"during");
        // a clone shares the keys: the log and the snapshot see one state
        let other = deks.clone();
        other.set_pending(&old);
        assert!(deks.rotating());
    }
}
