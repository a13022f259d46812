//! Docker's detach keys (moby/term): the `--detach-keys` syntax and the
//! scanner that finds the sequence in an attached session's input. The CLI
//! and the daemon both scan, as in Docker: the CLI for its own terminal,
//! the daemon for API clients that send the keys raw.

/// docker's default detach keys: ctrl-p ctrl-q.
pub const DEFAULT_DETACH_KEYS: [u8; 2] = [0x10, 0x11];

/// Parses docker's detach key syntax: comma-separated single characters or
/// `ctrl-<c>` where `<c>` is a letter or one of `@ [ \ ] ^ _`.
pub fn parse_detach_keys(keys: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for key in keys.split(',') {
        if key.len() == 1 {
            out.push(key.as_bytes()[0]);
            continue;
        }
        let code = key
            .strip_prefix("ctrl-")
            .filter(|c| c.len() == 1)
            .map(|c| c.as_bytes()[0].to_ascii_lowercase())
            .and_then(|c| match c {
                b'a'..=b'z' => Some(c - b'a' + 1),
                b'@' => Some(0),
                b'[' => Some(27),
                b'\\' => Some(28),
                b']' => Some(29),
                b'^' => Some(30),
                b'_' => Some(31),
                _ => None,
            })
            .ok_or_else(|| format!("Unknown character: '{key}'"))?;
        out.push(code);
    }
    if out.is_empty() {
        return Err("no detach keys given".into());
    }
    Ok(out)
}

/// Finds the detach sequence in a stream of reads. Bytes that could start
/// the sequence are held back until the next read decides; if the sequence
/// breaks off they are forwarded, as moby's escape proxy does.
pub struct DetachScanner {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachScanner {
    pub fn new(keys: Vec<u8>) -> Self {
        DetachScanner { keys, matched: 0 }
    }

    /// The bytes to forward from this read, and whether the user detached.
    pub fn scan(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len() + self.keys.len());
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return (out, true);
                }
                continue;
            }
            // the held-back prefix was not the sequence after all
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    self.matched = 0;
                    return (out, true);
                }
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

/// Copies `input` to `output` until the end of `input` or the detach keys;
/// answers true when the user detached (the keys are not forwarded).
pub async fn copy_until_detach<R, W>(input: &mut R, output: &mut W, keys: Vec<u8>) -> bool
where
    R: tokio::io::AsyncRead + Unpin + ?Sized,
    W: tokio::io::AsyncWrite + Unpin + ?Sized,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut scanner = DetachScanner::new(keys);
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match input.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        let (fwd, detached) = scanner.scan(&buf[..n]);
        if output.write_all(&fwd).await.is_err() {
            return false;
        }
        let _ = output.flush().await;
        if detached {
            return true;
        }
    }
}

impl Default for DetachScanner {
    fn default() -> Self {
        DetachScanner::new(DEFAULT_DETACH_KEYS.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_syntax() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("ctrl-a,x").unwrap(), vec![1, b'x']);
        assert_eq!(parse_detach_keys("ctrl-@,ctrl-_").unwrap(), vec![0, 31]);
        assert!(parse_detach_keys("ctrl-").is_err());
        assert!(
            parse_detach_keys("ctrl-1")
                .unwrap_err()
                .contains("Unknown character: 'ctrl-1'")
        );
        assert!(parse_detach_keys("ab").is_err());
    }

    #[test]
    fn copies_until_the_keys() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut out = Vec::new();
            let mut input: &[u8] = b"ls\n\x10\x11after";
            assert!(copy_until_detach(&mut input, &mut out, DEFAULT_DETACH_KEYS.to_vec()).await);
            assert_eq!(out, b"ls\n");
            let mut out = Vec::new();
            let mut input: &[u8] = b"no keys\x10";
            assert!(!copy_until_detach(&mut input, &mut out, DEFAULT_DETACH_KEYS.to_vec()).await);
            assert_eq!(out, b"no keys");
        });
    }

    #[test]
    fn finds_the_sequence_across_reads() {
        let mut s = DetachScanner::default();
        assert_eq!(s.scan(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(s.scan(b"\x11rest"), (vec![], true));
        let mut s = DetachScanner::default();
        assert_eq!(s.scan(b"\x10x"), (b"\x10x".to_vec(), false));
        // a broken-off prefix followed by the start of a new one
        let mut s = DetachScanner::new(vec![1, 2, 3]);
        assert_eq!(s.scan(&[1, 2, 1]), (vec![1, 2], false));
        assert_eq!(s.scan(&[2, 3]), (vec![], true));
        let mut s = DetachScanner::new(vec![b'x']);
        assert_eq!(s.scan(b"abxc"), (b"ab".to_vec(), true));
    }
}
