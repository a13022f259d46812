//! Encryption at rest: every Raft entry and snapshot berth writes is
//! sealed with the manager's data encryption key (DEK), and the DEK and
//! the node's TLS key with the unlock key (KEK) when the swarm is
//! autolocked. ChaCha20-Poly1305 with a random nonce per record; the
//! `purpose` goes in as associated data, so a record sealed for one use
//! does not open as another.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

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
}
