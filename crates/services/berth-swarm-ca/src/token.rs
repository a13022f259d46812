use std::fmt;
use std::str::FromStr;

use crate::root::{RootCa, RootDigest};
use crate::{CaError, base36, id};

const DIGEST_LEN: usize = 50;
const SECRET_LEN: usize = 25;

/// A join token, `SWMTKN-1-<root digest>-<secret>`, both parts base 36
/// zero-padded (50 and 25 characters) as swarmkit writes them. The digest
/// lets a joining node check the root CA it is shown before trusting it;
/// the secret says which role it may join as.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct JoinToken {
    pub root_digest: RootDigest,
    secret: String,
}

impl JoinToken {
    /// A fresh token for `root`, with 128 random bits of secret.
    pub fn generate(root: &RootCa) -> Result<JoinToken, CaError> {
        let mut secret = [0u8; 16];
        id::random(&mut secret)?;
        Ok(JoinToken {
            root_digest: root.digest(),
            secret: format!("{:0>SECRET_LEN$}", base36::encode(&secret)),
        })
    }

    /// Whether `other` carries this token's secret (in constant time: a
    /// manager compares every join attempt against its tokens).
    pub fn same_secret(&self, other: &JoinToken) -> bool {
        constant_time_eq(&self.secret, &other.secret)
    }

    /// Checks the root CA a manager presented against the token's digest.
    pub fn check_root(&self, root_pem: &str) -> Result<(), CaError> {
        if RootDigest::of_pem(root_pem) == self.root_digest {
            Ok(())
        } else {
            Err(CaError::FingerprintMismatch {
                expected: hex::encode(self.root_digest.0),
            })
        }
    }
}

/// Whether two secrets are equal, taking the same time wherever they
/// differ (a manager compares every join attempt against its tokens).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl fmt::Display for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digest = base36::encode(&self.root_digest.0);
        write!(f, "SWMTKN-1-{digest:0>DIGEST_LEN$}-{}", self.secret)
    }
}

impl FromStr for JoinToken {
    type Err = CaError;

    /// Version 1, and version 2 (`SWMTKN-2-<fips 0|1>-…`), whose FIPS flag
    /// berth has no use for.
    fn from_str(s: &str) -> Result<JoinToken, CaError> {
        let parts: Vec<&str> = s.split('-').collect();
        let (digest, secret) = match parts.as_slice() {
            ["SWMTKN", "1", d, s] => (*d, *s),
            ["SWMTKN", "2", "0" | "1", d, s] => (*d, *s),
            _ => return Err(CaError::InvalidJoinToken),
        };
        if digest.len() != DIGEST_LEN || secret.len() != SECRET_LEN {
            return Err(CaError::InvalidJoinToken);
        }
        let bytes = base36::decode(digest, 32).ok_or(CaError::InvalidJoinToken)?;
        base36::decode(secret, 17).ok_or(CaError::InvalidJoinToken)?;
        let mut d = [0u8; 32];
        d.copy_from_slice(&bytes);
        Ok(JoinToken {
            root_digest: RootDigest(d),
            secret: secret.to_ascii_lowercase(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_prints_in_swarmkits_form_and_parses_back() {
        let root = RootCa::generate().unwrap();
        let t = JoinToken::generate(&root).unwrap();
        let text = t.to_string();
        assert!(text.starts_with("SWMTKN-1-"), "{text}");
        assert_eq!(text.len(), "SWMTKN-1-".len() + 50 + 1 + 25);
        let back: JoinToken = text.parse().unwrap();
        assert_eq!(back, t);
        assert!(back.same_secret(&t));
        back.check_root(root.cert_pem()).unwrap();
    }

    #[test]
    fn the_digest_is_the_sha256_of_the_root_pem_in_base36() {
        // the digest of an empty PEM is sha256(""), e3b0c442…
        let empty = RootDigest::of_pem("");
        let t = JoinToken {
            root_digest: empty,
            secret: "0".repeat(25),
        };
        let text = t.to_string();
        let digest_part = text.split('-').nth(2).unwrap();
        assert_eq!(base36::decode(digest_part, 32).unwrap(), empty.0.to_vec());
        assert!(empty.to_string().starts_with("sha256:e3b0c442"));
    }

    #[test]
    fn a_token_for_another_root_fails_the_check_with_swarmkits_words() {
        let (root, other) = (RootCa::generate().unwrap(), RootCa::generate().unwrap());
        let t = JoinToken::generate(&other).unwrap();
        let err = t.check_root(root.cert_pem()).unwrap_err().to_string();
        assert!(
            err.starts_with("remote CA does not match fingerprint. Expected: "),
            "{err}"
        );
        let fresh = JoinToken::generate(&root).unwrap();
        assert!(!fresh.same_secret(&JoinToken::generate(&root).unwrap()));
    }

    #[test]
    fn malformed_tokens_are_invalid_join_tokens() {
        let root = RootCa::generate().unwrap();
        let good = JoinToken::generate(&root).unwrap().to_string();
        let cases = [
            String::new(),
            "SWMTKN-1-abc-def".into(),
            good.replace("SWMTKN-1", "SWMTKN-3"),
            format!("{good}x"),
            good.replacen('-', "_", 1),
            format!("{}!{}", &good[..20], &good[21..]),
        ];
        for c in cases {
            let err = c.parse::<JoinToken>().unwrap_err();
            assert_eq!(err.to_string(), "invalid join token", "{c}");
        }
        let v2 = good.replace("SWMTKN-1-", "SWMTKN-2-0-");
        assert_eq!(v2.parse::<JoinToken>().unwrap().to_string(), good);
    }
}
