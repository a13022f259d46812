//! SPDY/3 header blocks: a count, then length-prefixed names and values,
//! zlib-compressed with the spec's preset dictionary. Each direction of a
//! connection has one zlib context for all its blocks, each block ending
//! in a sync flush, so neither side may skip or reorder a block.

use zlib_rs::{Deflate, DeflateFlush, Inflate, InflateError, InflateFlush, Status};

use super::Error;

/// The SPDY/3 header dictionary (draft 3, section 2.6.10.1).
pub const DICTIONARY: &[u8; 1423] = include_bytes!("dictionary.bin");

/// Hostile blocks must not inflate without bound: Kubernetes' stream
/// headers are a few dozen bytes.
const MAX_BLOCK: usize = 256 << 10;
const MAX_HEADERS: u32 = 1000;

/// A header block's names (lowercase, as on the wire) and values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    /// Headers from name and value pairs.
    pub fn of(pairs: &[(&str, &str)]) -> Headers {
        Headers(
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// The value of `name`, compared without case: Go spells
    /// `streamType` and the wire has `streamtype`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = (self.0.len() as u32).to_be_bytes().to_vec();
        for (n, v) in &self.0 {
            for s in [n.to_ascii_lowercase().as_bytes(), v.as_bytes()] {
                out.extend_from_slice(&(s.len() as u32).to_be_bytes());
                out.extend_from_slice(s);
            }
        }
        out
    }

    fn decode(mut b: &[u8]) -> Result<Self, Error> {
        let bad = |what: &str| Error::Protocol(format!("header block: {what}"));
        let mut take = |n: usize| -> Result<&[u8], Error> {
            if b.len() < n {
                return Err(bad("truncated"));
            }
            let (head, rest) = b.split_at(n);
            b = rest;
            Ok(head)
        };
        let u32_of = |s: &[u8]| u32::from_be_bytes([s[0], s[1], s[2], s[3]]);
        let count = u32_of(take(4)?);
        if count > MAX_HEADERS {
            return Err(bad("too many headers"));
        }
        let mut headers = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let mut pair = [String::new(), String::new()];
            for s in &mut pair {
                let len = u32_of(take(4)?) as usize;
                *s = String::from_utf8(take(len)?.to_vec()).map_err(|_| bad("not utf-8"))?;
            }
            let [name, value] = pair;
            headers.push((name, value));
        }
        Ok(Headers(headers))
    }
}

/// The compressing side of one direction of a connection.
pub struct Compressor(Deflate);

impl Default for Compressor {
    fn default() -> Self {
        let mut d = Deflate::new(6, true, 15);
        // a fresh stream takes a dictionary: this cannot fail
        let _ = d.set_dictionary(DICTIONARY);
        Compressor(d)
    }
}

impl Compressor {
    /// The next block of this direction, compressed and sync-flushed.
    pub fn block(&mut self, headers: &Headers) -> Result<Vec<u8>, Error> {
        let input = headers.encode();
        let mut out = Vec::new();
        let mut chunk = [0u8; 4096];
        let mut at = 0;
        loop {
            let before = (self.0.total_in(), self.0.total_out());
            self.0
                .compress(&input[at..], &mut chunk, DeflateFlush::SyncFlush)
                .map_err(|e| Error::Protocol(format!("compressing headers: {}", e.as_str())))?;
            let produced = (self.0.total_out() - before.1) as usize;
            at += (self.0.total_in() - before.0) as usize;
            out.extend_from_slice(&chunk[..produced]);
            // zlib's rule: a flush is complete when it left room unused
            if at == input.len() && produced < chunk.len() {
                return Ok(out);
            }
        }
    }
}

/// The decompressing side of one direction of a connection.
pub struct Decompressor(Inflate);

impl Default for Decompressor {
    fn default() -> Self {
        Decompressor(Inflate::new(true, 15))
    }
}

impl Decompressor {
    /// The headers of the next block of this direction.
    pub fn block(&mut self, block: &[u8]) -> Result<Headers, Error> {
        let mut out = Vec::new();
        let mut chunk = [0u8; 4096];
        let mut at = 0;
        loop {
            let before = (self.0.total_in(), self.0.total_out());
            let r = self
                .0
                .decompress(&block[at..], &mut chunk, InflateFlush::SyncFlush);
            let produced = (self.0.total_out() - before.1) as usize;
            at += (self.0.total_in() - before.0) as usize;
            out.extend_from_slice(&chunk[..produced]);
            if out.len() > MAX_BLOCK {
                return Err(Error::Protocol("header block too large".into()));
            }
            match r {
                Err(InflateError::NeedDict { .. }) => {
                    self.0.set_dictionary(DICTIONARY).map_err(|e| {
                        Error::Protocol(format!("header dictionary: {}", e.as_str()))
                    })?;
                }
                Err(e) => {
                    return Err(Error::Protocol(format!(
                        "decompressing headers: {}",
                        e.as_str()
                    )));
                }
                Ok(Status::StreamEnd) => {
                    return Err(Error::Protocol("header stream ended".into()));
                }
                Ok(_) if at == block.len() && produced < chunk.len() => break,
                Ok(Status::BufError) if produced == 0 => {
                    return Err(Error::Protocol("header block cut short".into()));
                }
                Ok(_) => {}
            }
        }
        Headers::decode(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spdy::tests::hex;

    fn h(pairs: &[(&str, &str)]) -> Headers {
        Headers::of(pairs)
    }

    #[test]
    fn the_dictionary_is_the_specs() {
        assert_eq!(DICTIONARY.len(), 1423);
        let (mut a, mut b) = (1u32, 0u32);
        for &x in DICTIONARY.iter() {
            a = (a + x as u32) % 65521;
            b = (b + a) % 65521;
        }
        assert_eq!((b << 16) | a, 0xE3C6_A7C2);
    }

    #[test]
    fn blocks_another_zlib_made_decompress_in_one_context() {
        // Python's zlib, level 9, the dictionary, a sync flush each
        let mut d = Decompressor::default();
        let first = hex("78f9e3c6a7c202a62346703a2b294a4dcc851625aca9a08006000000ffff");
        assert_eq!(d.block(&first).unwrap(), h(&[("streamtype", "error")]));
        let second = hex("c22a054ccc29f9a52500000000ffff");
        assert_eq!(d.block(&second).unwrap(), h(&[("streamtype", "stdout")]));
        let mut fresh = Decompressor::default();
        let empty = hex("78f9e3c6a7c202a6230600000000ffff");
        assert_eq!(fresh.block(&empty).unwrap(), Headers::default());
    }

    #[test]
    fn our_blocks_round_trip_over_one_context() {
        let (mut c, mut d) = (Compressor::default(), Decompressor::default());
        let first = c.block(&Headers::default()).unwrap();
        // a context's first block carries the zlib header and DICTID
        assert_eq!(first[0], 0x78);
        assert_ne!(first[1] & 0x20, 0, "FDICT");
        assert_eq!(&first[2..6], &hex("e3c6a7c2")[..]);
        assert_eq!(d.block(&first).unwrap(), Headers::default());
        for i in 0..100 {
            let want = h(&[("streamtype", "data"), ("port", &i.to_string())]);
            let block = c.block(&want).unwrap();
            assert!(block.ends_with(&[0, 0, 0xff, 0xff]));
            assert_eq!(d.block(&block).unwrap(), want);
        }
    }

    #[test]
    fn hostile_blocks_are_errors() {
        let mut d = Decompressor::default();
        assert!(d.block(b"not zlib at all").is_err());
        // a count of headers with nothing behind it, too many, a name
        // longer than the block
        assert!(Headers::decode(&[0, 0, 0, 1]).is_err());
        assert!(Headers::decode(&1001u32.to_be_bytes()).is_err());
        assert!(Headers::decode(&[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, b'a']).is_err());
        // a bomb: a block inflating past the cap
        let mut c = Compressor::default();
        let huge = Headers(vec![("x".into(), "a".repeat(MAX_BLOCK + 1))]);
        let bomb = c.block(&huge).unwrap();
        assert!(bomb.len() < 4096);
        assert!(Decompressor::default().block(&bomb).is_err());
    }

    #[test]
    fn names_are_found_without_case() {
        let headers = h(&[("streamtype", "error"), ("requestid", "0")]);
        assert_eq!(headers.get("streamType"), Some("error"));
        assert_eq!(headers.get("requestID"), Some("0"));
        assert_eq!(headers.get("port"), None);
    }
}
