//! The streaming server's token cache, as the kubelet keeps it: an Exec,
//! Attach or PortForward call leaves its request here under a random
//! token that its URL carries; the token is good once, for a minute.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use ring::rand::SecureRandom;

use crate::pb;

const TTL: Duration = Duration::from_secs(60);
/// Past this many outstanding tokens a call is refused.
const MAX_TOKENS: usize = 1000;

/// A request waiting for its client to connect.
#[derive(Debug, Clone)]
pub enum Pending {
    Exec(pb::ExecRequest),
    Attach(pb::AttachRequest),
    PortForward(pb::PortForwardRequest),
}

impl Pending {
    /// The URL path's first segment for this kind of request.
    pub fn kind(&self) -> &'static str {
        match self {
            Pending::Exec(_) => "exec",
            Pending::Attach(_) => "attach",
            Pending::PortForward(_) => "portforward",
        }
    }
}

pub struct Tokens {
    map: Mutex<HashMap<String, (Instant, Pending)>>,
    rng: ring::rand::SystemRandom,
}

impl Default for Tokens {
    fn default() -> Self {
        Tokens {
            map: Mutex::default(),
            rng: ring::rand::SystemRandom::new(),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    Full,
    NoRandom,
}

impl Tokens {
    /// A new token for `p`; expired ones are collected first.
    pub fn insert(&self, p: Pending) -> Result<String, TokenError> {
        let mut raw = [0u8; 16];
        self.rng.fill(&mut raw).map_err(|_| TokenError::NoRandom)?;
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        map.retain(|_, (at, _)| now.duration_since(*at) < TTL);
        if map.len() >= MAX_TOKENS {
            return Err(TokenError::Full);
        }
        map.insert(token.clone(), (now, p));
        Ok(token)
    }

    /// The request of `token`, which is used up by asking.
    pub fn take(&self, token: &str) -> Option<Pending> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let (at, p) = map.remove(token)?;
        (at.elapsed() < TTL).then_some(p)
    }

    #[cfg(test)]
    fn age(&self, token: &str, by: Duration) {
        let mut map = self.map.lock().unwrap();
        if let Some((at, _)) = map.get_mut(token) {
            *at -= by;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pf() -> Pending {
        Pending::PortForward(pb::PortForwardRequest::default())
    }

    #[test]
    fn a_token_is_good_once() {
        let t = Tokens::default();
        let a = t.insert(pf()).unwrap();
        let b = t.insert(pf()).unwrap();
        assert_ne!(a, b);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert!(t.take(&a).is_some());
        assert!(t.take(&a).is_none());
        assert!(t.take("nosuch").is_none());
        t.age(&b, TTL);
        assert!(t.take(&b).is_none(), "expired");
    }

    #[test]
    fn outstanding_tokens_are_capped() {
        let t = Tokens::default();
        for _ in 0..MAX_TOKENS {
            t.insert(pf()).unwrap();
        }
        assert_eq!(t.insert(pf()), Err(TokenError::Full));
    }
}
