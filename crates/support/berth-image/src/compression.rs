//! Layer and archive streams as they come: plain, gzip or zstd, told
//! apart by their first bytes rather than by what a media type claims.

use std::io::{self, BufRead, BufReader, Read};

use ruzstd::decoding::{FrameDecoder, StreamingDecoder};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The decompressed content of `r`.
pub fn decompress<'a, R: Read + 'a>(r: R) -> io::Result<Box<dyn Read + 'a>> {
    let mut br = BufReader::with_capacity(256 * 1024, r);
    let head = br.fill_buf()?;
    Ok(if head.starts_with(&GZIP_MAGIC) {
        Box::new(flate2::read::MultiGzDecoder::new(br))
    } else if head.starts_with(&ZSTD_MAGIC) {
        Box::new(ZstdReader::new(br)?)
    } else {
        Box::new(br)
    })
}

/// A zstd stream of one or more frames (ruzstd's decoder reads one).
struct ZstdReader<R: BufRead> {
    current: Option<StreamingDecoder<R, FrameDecoder>>,
}

impl<R: BufRead> ZstdReader<R> {
    fn new(r: R) -> io::Result<Self> {
        let d = StreamingDecoder::new(r).map_err(io::Error::other)?;
        Ok(ZstdReader { current: Some(d) })
    }
}

impl<R: BufRead> Read for ZstdReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(d) = self.current.as_mut() else {
                return Ok(0);
            };
            let n = d.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            // this frame is done: another may follow
            let Some(d) = self.current.take() else {
                return Ok(0);
            };
            let (mut src, dec) = d.into_parts();
            if src.fill_buf()?.is_empty() {
                return Ok(0);
            }
            // new_with_decoder reads the next frame's header
            self.current =
                Some(StreamingDecoder::new_with_decoder(src, dec).map_err(io::Error::other)?);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn plain_gzip_and_zstd_by_their_bytes() {
        let data = b"layer content ".repeat(1000);
        let mut out = Vec::new();
        decompress(&data[..])
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        out.clear();
        decompress(&gz[..]).unwrap().read_to_end(&mut out).unwrap();
        assert_eq!(out, data);

        // two frames, as the zstd CLI writes for concatenated files
        let mut zst = Vec::new();
        for part in [&data[..7000], &data[7000..]] {
            let mut c = std::process::Command::new("zstd")
                .args(["-q", "-c"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("the zstd CLI");
            c.stdin.take().unwrap().write_all(part).unwrap();
            zst.extend(c.wait_with_output().unwrap().stdout);
        }
        out.clear();
        decompress(&zst[..]).unwrap().read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
    }
}
