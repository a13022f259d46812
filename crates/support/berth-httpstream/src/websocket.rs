//! The server side of RFC 6455 WebSocket, as client-go's streaming
//! clients use it: binary messages, Ping answered with Pong (the client's
//! read deadline moves only on a Pong), Close 1000 as the clean end. The
//! HTTP handshake is the caller's; [`accept_key`] is its one computation.

use base64::Engine as _;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// The normal closure code.
pub const CLOSE_NORMAL: u16 = 1000;
/// Messages are refused past this (a hostile length must not allocate):
/// clients send stdin and tunnelled frames in pieces of about 32 KiB.
const MAX_MESSAGE: usize = 1 << 20;
/// A connection with nothing from the client this long is dropped (its
/// pings come every few seconds).
const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(4 * 60 * 60);
/// Server messages are kept under gorilla's read buffer.
pub const MAX_SEND: usize = 32 << 10;

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`.
pub fn accept_key(key: &str) -> String {
    const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(key.trim().as_bytes());
    ctx.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(ctx.finish().as_ref())
}

/// A whole message from the client, fragments joined and unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Binary(Bytes),
    Text(Bytes),
    /// the peer's close code, if it gave one
    Close(Option<u16>),
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("websocket protocol error: {0}")]
    Protocol(&'static str),
    #[error("websocket read: {0}")]
    Io(#[from] std::io::Error),
}

/// One unmasked server frame with FIN set.
pub fn encode(opcode: u8, payload: &[u8]) -> BytesMut {
    let mut out = BytesMut::with_capacity(payload.len() + 10);
    out.put_u8(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.put_u8(n as u8),
        n if n <= 0xffff => {
            out.put_u8(126);
            out.put_u16(n as u16);
        }
        n => {
            out.put_u8(127);
            out.put_u64(n as u64);
        }
    }
    out.put_slice(payload);
    out
}

/// A Close frame with `code`.
pub fn close_frame(code: u16) -> BytesMut {
    encode(OP_CLOSE, &code.to_be_bytes())
}

struct RawFrame {
    fin: bool,
    opcode: u8,
    payload: Bytes,
}

/// Takes one whole client frame off `buf`, or `None` until it is there.
fn decode(buf: &mut BytesMut) -> Result<Option<RawFrame>, Error> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    if b0 & 0x70 != 0 {
        return Err(Error::Protocol("reserved bits set"));
    }
    if b1 & 0x80 == 0 {
        return Err(Error::Protocol("unmasked client frame"));
    }
    let (len, at) = match b1 & 0x7f {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        127 if buf.len() >= 10 => {
            let n = u64::from_be_bytes(buf[2..10].try_into().unwrap_or_default());
            (usize::try_from(n).unwrap_or(usize::MAX), 10)
        }
        126 | 127 => return Ok(None),
        n => (n as usize, 2),
    };
    if len > MAX_MESSAGE {
        return Err(Error::Protocol("message too large"));
    }
    if buf.len() < at + 4 + len {
        return Ok(None);
    }
    buf.advance(at);
    let mask = [buf[0], buf[1], buf[2], buf[3]];
    buf.advance(4);
    let mut payload = buf.split_to(len);
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
    Ok(Some(RawFrame {
        fin: b0 & 0x80 != 0,
        opcode: b0 & 0x0f,
        payload: payload.freeze(),
    }))
}

/// Client messages in, server frames out: a reader task answers pings and
/// joins fragments; a writer task owns the write half.
pub struct WebSocket {
    pub rx: mpsc::Receiver<Message>,
    pub tx: WsTx,
}

/// Sends whole server messages.
#[derive(Clone)]
pub struct WsTx(mpsc::Sender<BytesMut>);

impl WsTx {
    /// A binary message; false once the connection is gone.
    pub async fn binary(&self, payload: &[u8]) -> bool {
        self.0.send(encode(OP_BINARY, payload)).await.is_ok()
    }

    /// Close with `code`: the writer shuts its side after it.
    pub async fn close(&self, code: u16) {
        let _ = self.0.send(close_frame(code)).await;
    }
}

impl WebSocket {
    pub fn serve<IO>(io: IO) -> WebSocket
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (r, w) = tokio::io::split(io);
        let (out, out_rx) = mpsc::channel::<BytesMut>(32);
        let (in_tx, rx) = mpsc::channel(16);
        tokio::spawn(write_loop(w, out_rx));
        let pongs = out.clone();
        tokio::spawn(async move {
            if let Err(e) = read_loop(r, in_tx, pongs).await {
                tracing::debug!(error = %e, "websocket: connection ends");
            }
        });
        WebSocket { rx, tx: WsTx(out) }
    }
}

async fn write_loop<W: AsyncWrite>(w: W, mut rx: mpsc::Receiver<BytesMut>) {
    tokio::pin!(w);
    while let Some(frame) = rx.recv().await {
        if w.write_all(&frame).await.is_err() {
            return;
        }
        if frame.first() == Some(&(0x80 | OP_CLOSE)) {
            let _ = w.shutdown().await;
            return;
        }
    }
}

async fn read_loop<R: AsyncRead>(
    r: R,
    to: mpsc::Sender<Message>,
    out: mpsc::Sender<BytesMut>,
) -> Result<(), Error> {
    tokio::pin!(r);
    let mut buf = BytesMut::with_capacity(16 << 10);
    let mut partial: Option<(u8, BytesMut)> = None;
    loop {
        let Some(f) = decode(&mut buf)? else {
            match tokio::time::timeout(IDLE_TIMEOUT, r.read_buf(&mut buf)).await {
                Ok(Ok(0)) => return Ok(()),
                Ok(read) => {
                    read?;
                    continue;
                }
                Err(_) => return Err(Error::Protocol("idle connection dropped")),
            }
        };
        let message = match f.opcode {
            OP_PING => {
                let _ = out.send(encode(OP_PONG, &f.payload)).await;
                continue;
            }
            OP_PONG => continue,
            OP_CLOSE => {
                let code = (f.payload.len() >= 2)
                    .then(|| u16::from_be_bytes([f.payload[0], f.payload[1]]));
                let _ = to.send(Message::Close(code)).await;
                return Ok(());
            }
            OP_CONTINUATION => {
                let Some((_, data)) = partial.as_mut() else {
                    return Err(Error::Protocol("continuation of nothing"));
                };
                if data.len() + f.payload.len() > MAX_MESSAGE {
                    return Err(Error::Protocol("message too large"));
                }
                data.extend_from_slice(&f.payload);
                if !f.fin {
                    continue;
                }
                let Some((op, data)) = partial.take() else {
                    continue;
                };
                whole(op, data.freeze())?
            }
            op @ (OP_TEXT | OP_BINARY) if f.fin => whole(op, f.payload)?,
            op @ (OP_TEXT | OP_BINARY) => {
                partial = Some((op, BytesMut::from(&f.payload[..])));
                continue;
            }
            _ => return Err(Error::Protocol("unknown opcode")),
        };
        if to.send(message).await.is_err() {
            return Ok(());
        }
    }
}

fn whole(op: u8, data: Bytes) -> Result<Message, Error> {
    Ok(if op == OP_TEXT {
        Message::Text(data)
    } else {
        Message::Binary(data)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [1u8, 2, 3, 4];
        let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    #[test]
    fn the_accept_key_is_rfc_6455s() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn server_frames_are_unmasked() {
        assert_eq!(
            encode(OP_BINARY, b"\x01hello").to_vec(),
            b"\x82\x06\x01hello".to_vec()
        );
        assert_eq!(close_frame(1000).to_vec(), vec![0x88, 0x02, 0x03, 0xe8]);
        let long = encode(OP_BINARY, &[0u8; 300]);
        assert_eq!(&long[..4], &[0x82, 126, 0x01, 0x2c]);
    }

    #[tokio::test]
    async fn fragments_join_pings_get_pongs_close_ends() {
        let (a, mut b) = tokio::io::duplex(1 << 20);
        let mut ws = WebSocket::serve(a);
        let big = vec![9u8; 40 << 10];
        let mut input = masked(false, OP_BINARY, &big[..1000]);
        input.extend(masked(true, OP_PING, b"p"));
        input.extend(masked(true, OP_CONTINUATION, &big[1000..]));
        input.extend(masked(true, OP_BINARY, b"\x00hi"));
        input.extend(masked(true, OP_CLOSE, &1000u16.to_be_bytes()));
        b.write_all(&input).await.unwrap();
        assert_eq!(ws.rx.recv().await, Some(Message::Binary(big.into())));
        assert_eq!(
            ws.rx.recv().await,
            Some(Message::Binary(Bytes::from_static(b"\x00hi")))
        );
        assert_eq!(ws.rx.recv().await, Some(Message::Close(Some(1000))));
        assert_eq!(ws.rx.recv().await, None);
        let mut pong = [0u8; 3];
        b.read_exact(&mut pong).await.unwrap();
        assert_eq!(pong, [0x8A, 1, b'p']);
        ws.tx.close(CLOSE_NORMAL).await;
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, vec![0x88, 0x02, 0x03, 0xe8]);
    }

    #[tokio::test]
    async fn unmasked_and_huge_frames_end_the_connection() {
        for bad in [
            b"\x82\x02hi".to_vec(),
            [&[0x82u8, 0xff][..], &u64::MAX.to_be_bytes(), &[0; 4]].concat(),
        ] {
            let (a, mut b) = tokio::io::duplex(1 << 16);
            let mut ws = WebSocket::serve(a);
            b.write_all(&bad).await.unwrap();
            assert_eq!(ws.rx.recv().await, None);
        }
    }
}
