use ring::rand::{SecureRandom, SystemRandom};

use crate::CaError;
use crate::base36;

/// A new random id in swarmkit's form: 25 base-36 characters (node,
/// cluster, service and task ids all look like this).
pub fn new_id() -> Result<String, CaError> {
    // 17 bytes with the top bit set, as swarmkit does, so the number always
    // has 26 digits and the first one is dropped: a fixed length without
    // padding and an even spread of the first character
    let mut p = [0u8; 17];
    random(&mut p)?;
    p[0] |= 0x80;
    let text = base36::encode(&p);
    Ok(text.get(1..26).unwrap_or_default().to_string())
}

/// A uniform random number in [0, 1): where in its window a node renews.
pub fn random_fraction() -> f64 {
    let mut b = [0u8; 8];
    if random(&mut b).is_err() {
        return 0.5;
    }
    (u64::from_be_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

pub(crate) fn random(buf: &mut [u8]) -> Result<(), CaError> {
    SystemRandom::new()
        .fill(buf)
        .map_err(|_| CaError::Crypto("the system's random source failed".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_25_base36_characters_and_differ() {
        let a = new_id().unwrap();
        let b = new_id().unwrap();
        assert_eq!(a.len(), 25);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
        );
        assert_ne!(a, b);
    }
}
