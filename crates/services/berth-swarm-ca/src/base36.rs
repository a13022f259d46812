//! Big-endian byte strings as base-36 numbers, the way Go's `big.Int`
//! writes them with `Text(36)`: swarm ids and join tokens are spelled so.

const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// `bytes` as a base-36 number, without leading zeros ("0" for zero).
pub fn encode(bytes: &[u8]) -> String {
    let mut n: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    let mut digits = Vec::new();
    while !n.is_empty() {
        let mut rem: u32 = 0;
        let mut quotient = Vec::with_capacity(n.len());
        for b in &n {
            let cur = (rem << 8) | u32::from(*b);
            let q = cur / 36;
            rem = cur % 36;
            if !(quotient.is_empty() && q == 0) {
                quotient.push(q as u8);
            }
        }
        digits.push(DIGITS[rem as usize]);
        n = quotient;
    }
    if digits.is_empty() {
        return "0".into();
    }
    digits.reverse();
    String::from_utf8_lossy(&digits).into_owned()
}

/// A base-36 number (either case) as `len` big-endian bytes; None when it
/// has other characters or doesn't fit.
pub fn decode(text: &str, len: usize) -> Option<Vec<u8>> {
    let mut out = vec![0u8; len];
    for c in text.bytes() {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'z' => c - b'a' + 10,
            b'A'..=b'Z' => c - b'A' + 10,
            _ => return None,
        };
        let mut carry = u32::from(d);
        for byte in out.iter_mut().rev() {
            let cur = u32::from(*byte) * 36 + carry;
            *byte = (cur & 0xff) as u8;
            carry = cur >> 8;
        }
        if carry != 0 {
            return None;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_as_go_big_int_text_36() {
        assert_eq!(encode(&[]), "0");
        assert_eq!(encode(&[0, 0]), "0");
        assert_eq!(encode(&[35]), "z");
        assert_eq!(encode(&[36]), "10");
        // swarmkit's comment: 2^128 - 1 is f5lxx1zz5pnorynqglhzmsp33
        assert_eq!(encode(&[0xff; 16]), "f5lxx1zz5pnorynqglhzmsp33");
    }

    #[test]
    fn decodes_what_it_encodes_and_refuses_the_rest() {
        let bytes: Vec<u8> = (0u8..32).map(|i| i.wrapping_mul(37)).collect();
        assert_eq!(decode(&encode(&bytes), 32), Some(bytes));
        assert_eq!(
            decode("F5LXX1ZZ5PNORYNQGLHZMSP33", 16),
            Some(vec![0xff; 16])
        );
        assert_eq!(
            decode("f5lxx1zz5pnorynqglhzmsp34", 16),
            None,
            "2^128 overflows"
        );
        assert_eq!(decode("abc-", 4), None);
    }
}
