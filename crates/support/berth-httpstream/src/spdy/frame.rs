//! SPDY/3 frames: an 8-byte header (control bit, version and type, or a
//! data frame's stream id; flags; a 24-bit length) and a payload. Header
//! blocks stay compressed here: their zlib context spans the connection,
//! so [`super::headers`] handles them in wire order.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::Error;

pub const VERSION: u16 = 3;
pub const FLAG_FIN: u8 = 0x01;

pub const SYN_STREAM: u16 = 1;
pub const SYN_REPLY: u16 = 2;
pub const RST_STREAM: u16 = 3;
pub const PING: u16 = 6;
pub const GOAWAY: u16 = 7;
pub const HEADERS: u16 = 8;

/// RST_STREAM status codes the server sends.
pub const RST_PROTOCOL_ERROR: u32 = 1;
pub const RST_REFUSED_STREAM: u32 = 3;
pub const RST_CANCEL: u32 = 5;

/// The largest payload a frame can carry (24 bits).
pub const MAX_PAYLOAD: usize = (1 << 24) - 1;
/// The largest frames taken from a client: spdystream sends data in 32 KiB
/// chunks and header blocks of a few dozen bytes, and a hostile length
/// must not make the reader buffer 16 MiB.
pub const MAX_DATA_IN: usize = 1 << 20;
pub const MAX_CONTROL_IN: usize = 64 << 10;

/// A frame as read off the wire, header blocks still compressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream: u32,
        flags: u8,
        block: Bytes,
    },
    SynReply {
        stream: u32,
        flags: u8,
        block: Bytes,
    },
    RstStream {
        stream: u32,
        status: u32,
    },
    Ping(u32),
    GoAway {
        last_good: u32,
        status: u32,
    },
    Headers {
        stream: u32,
        block: Bytes,
    },
    Data {
        stream: u32,
        flags: u8,
        payload: Bytes,
    },
    /// SETTINGS, WINDOW_UPDATE and types this server does not act on:
    /// spdystream never answers flow control, so neither do we.
    Ignored(u16),
}

/// Takes one whole frame off the front of `buf`, or `None` until one is
/// there: frames arrive split at any byte.
pub fn decode(buf: &mut BytesMut) -> Result<Option<Frame>, Error> {
    if buf.len() < 8 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([0, buf[5], buf[6], buf[7]]) as usize;
    let max = if buf[0] & 0x80 == 0 {
        MAX_DATA_IN
    } else {
        MAX_CONTROL_IN
    };
    if len > max {
        return Err(Error::Protocol(format!("a frame of {len} bytes")));
    }
    if buf.len() < 8 + len {
        buf.reserve(8 + len - buf.len());
        return Ok(None);
    }
    let head = buf.split_to(8);
    let payload = buf.split_to(len).freeze();
    let flags = head[4];
    if head[0] & 0x80 == 0 {
        let stream = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        return Ok(Some(Frame::Data {
            stream,
            flags,
            payload,
        }));
    }
    let version = u16::from_be_bytes([head[0] & 0x7f, head[1]]);
    if version != VERSION {
        return Err(Error::Protocol(format!("spdy version {version}")));
    }
    let kind = u16::from_be_bytes([head[2], head[3]]);
    control(kind, flags, payload).map(Some)
}

fn control(kind: u16, flags: u8, mut p: Bytes) -> Result<Frame, Error> {
    let need = |p: &Bytes, n: usize| {
        if p.len() < n {
            Err(Error::Protocol(format!(
                "control frame {kind} of {} bytes",
                p.len()
            )))
        } else {
            Ok(())
        }
    };
    Ok(match kind {
        SYN_STREAM => {
            need(&p, 10)?;
            let stream = p.get_u32() & 0x7fff_ffff;
            p.advance(6); // associated stream, priority, slot
            Frame::SynStream {
                stream,
                flags,
                block: p,
            }
        }
        SYN_REPLY => {
            need(&p, 4)?;
            let stream = p.get_u32() & 0x7fff_ffff;
            Frame::SynReply {
                stream,
                flags,
                block: p,
            }
        }
        HEADERS => {
            need(&p, 4)?;
            let stream = p.get_u32() & 0x7fff_ffff;
            Frame::Headers { stream, block: p }
        }
        RST_STREAM => {
            need(&p, 8)?;
            Frame::RstStream {
                stream: p.get_u32() & 0x7fff_ffff,
                status: p.get_u32(),
            }
        }
        PING => {
            need(&p, 4)?;
            Frame::Ping(p.get_u32())
        }
        GOAWAY => {
            need(&p, 8)?;
            Frame::GoAway {
                last_good: p.get_u32() & 0x7fff_ffff,
                status: p.get_u32(),
            }
        }
        other => Frame::Ignored(other),
    })
}

/// The frame's bytes, header blocks given already compressed. One frame
/// is one buffer: the Go reader wants a header block whole.
pub fn encode(frame: &Frame) -> BytesMut {
    let mut out = BytesMut::new();
    let control = |out: &mut BytesMut, kind: u16, flags: u8, len: usize| {
        out.put_u16(0x8000 | VERSION);
        out.put_u16(kind);
        out.put_u32(((flags as u32) << 24) | len as u32);
    };
    match frame {
        Frame::SynStream {
            stream,
            flags,
            block,
        } => {
            control(&mut out, SYN_STREAM, *flags, 10 + block.len());
            out.put_u32(*stream);
            out.put_u32(0);
            out.put_u16(0);
            out.put_slice(block);
        }
        Frame::SynReply {
            stream,
            flags,
            block,
        } => {
            control(&mut out, SYN_REPLY, *flags, 4 + block.len());
            out.put_u32(*stream);
            out.put_slice(block);
        }
        Frame::Headers { stream, block } => {
            control(&mut out, HEADERS, 0, 4 + block.len());
            out.put_u32(*stream);
            out.put_slice(block);
        }
        Frame::RstStream { stream, status } => {
            control(&mut out, RST_STREAM, 0, 8);
            out.put_u32(*stream);
            out.put_u32(*status);
        }
        Frame::Ping(id) => {
            control(&mut out, PING, 0, 4);
            out.put_u32(*id);
        }
        Frame::GoAway { last_good, status } => {
            control(&mut out, GOAWAY, 0, 8);
            out.put_u32(*last_good);
            out.put_u32(*status);
        }
        Frame::Data {
            stream,
            flags,
            payload,
        } => {
            out.put_u32(*stream & 0x7fff_ffff);
            out.put_u32(((*flags as u32) << 24) | payload.len() as u32);
            out.put_slice(payload);
        }
        Frame::Ignored(_) => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spdy::tests::hex;

    #[test]
    fn frames_have_the_bytes_of_the_spec() {
        let cases = [
            (
                Frame::Data {
                    stream: 3,
                    flags: 0,
                    payload: Bytes::from_static(b"hello"),
                },
                "00000003 00000005 68656c6c6f",
            ),
            (
                Frame::Data {
                    stream: 3,
                    flags: FLAG_FIN,
                    payload: Bytes::new(),
                },
                "00000003 01000000",
            ),
            (Frame::Ping(1), "80030006 00000004 00000001"),
            (
                Frame::GoAway {
                    last_good: 7,
                    status: 0,
                },
                "80030007 00000008 00000007 00000000",
            ),
            (
                Frame::RstStream {
                    stream: 3,
                    status: RST_CANCEL,
                },
                "80030003 00000008 00000003 00000005",
            ),
        ];
        for (frame, want) in cases {
            let bytes = encode(&frame);
            assert_eq!(bytes.to_vec(), hex(want), "{frame:?}");
            let mut buf = bytes.clone();
            assert_eq!(decode(&mut buf).unwrap(), Some(frame));
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn a_frame_split_at_any_byte_waits_for_the_rest() {
        let whole = encode(&Frame::SynStream {
            stream: 1,
            flags: 0,
            block: Bytes::from_static(b"abc"),
        });
        for cut in 0..whole.len() {
            let mut buf = BytesMut::from(&whole[..cut]);
            assert_eq!(decode(&mut buf).unwrap(), None, "cut at {cut}");
            buf.extend_from_slice(&whole[cut..]);
            let Some(Frame::SynStream { stream, block, .. }) = decode(&mut buf).unwrap() else {
                panic!("no syn_stream at cut {cut}");
            };
            assert_eq!((stream, &block[..]), (1, &b"abc"[..]));
        }
    }

    #[test]
    fn short_control_frames_and_other_versions_are_errors() {
        let mut short = BytesMut::from(&hex("80030003 00000004 00000003")[..]);
        assert!(decode(&mut short).is_err());
        let mut v2 = BytesMut::from(&hex("80020006 00000004 00000001")[..]);
        assert!(decode(&mut v2).is_err());
        let mut settings = BytesMut::from(&hex("80030004 00000004 00000000")[..]);
        assert_eq!(decode(&mut settings).unwrap(), Some(Frame::Ignored(4)));
        // a hostile length is refused before its body is awaited
        let mut huge = BytesMut::from(&hex("00000001 00ffffff")[..]);
        assert!(decode(&mut huge).is_err());
        let mut huge = BytesMut::from(&hex("80030001 00100000")[..]);
        assert!(decode(&mut huge).is_err());
    }
}
