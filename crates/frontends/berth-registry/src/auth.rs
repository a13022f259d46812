//! Basic authentication against an htpasswd file of bcrypt hashes (the
//! only kind Docker's registry accepts, made by `htpasswd -B`).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, bail};
use base64::Engine as _;

pub struct Htpasswd {
    users: HashMap<String, String>,
}

impl Htpasswd {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading htpasswd file {}", path.display()))?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut users = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((user, hash)) = line.split_once(':') else {
                bail!("htpasswd line {}: expected user:hash", n + 1);
            };
            if !hash.starts_with("$2") {
                bail!(
                    "htpasswd line {}: only bcrypt hashes are supported (htpasswd -B)",
                    n + 1
                );
            }
            users.insert(user.to_string(), hash.to_string());
        }
        Ok(Htpasswd { users })
    }

    pub fn check(&self, user: &str, password: &str) -> bool {
        self.users
            .get(user)
            .is_some_and(|h| bcrypt::verify(password, h).unwrap_or(false))
    }

    /// Checks an `Authorization: Basic …` header value.
    pub fn check_header(&self, value: &str) -> bool {
        let Some(b64) = value.strip_prefix("Basic ") else {
            return false;
        };
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
            return false;
        };
        let Ok(pair) = String::from_utf8(raw) else {
            return false;
        };
        pair.split_once(':').is_some_and(|(u, p)| self.check(u, p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcrypt_entries_check() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let h = Htpasswd::parse(&format!("# users\nalice:{hash}\n")).unwrap();
        assert!(h.check("alice", "s3cret"));
        assert!(!h.check("alice", "wrong"));
        assert!(!h.check("bob", "s3cret"));
        let hdr = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("alice:s3cret")
        );
        assert!(h.check_header(&hdr));
        assert!(!h.check_header("Bearer x"));
        assert!(Htpasswd::parse("alice:{SHA}abc").is_err());
    }
}
