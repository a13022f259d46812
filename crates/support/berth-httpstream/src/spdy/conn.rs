//! The server side of a SPDY/3.1 connection as moby/spdystream's client
//! expects it: every client stream replied to at once (the client opens
//! them one after another and waits for each reply), pings echoed, no flow
//! control, GOAWAY last. A reader task owns the read half and the header
//! decompressor; a writer task owns the write half and the compressor, so
//! replies and data of a stream leave in the order they were queued.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::Error;
use super::frame::{self, FLAG_FIN, Frame};
use super::headers::{Compressor, Decompressor, Headers};

/// Data frames are kept under Go's read buffer.
const MAX_DATA: usize = 32 << 10;
/// A connection with no frame from the client this long is dropped (the
/// kubelet's idle timeout; live clients ping every few seconds).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(4 * 60 * 60);
/// How long a closing connection waits for the client to hang up.
const LINGER: Duration = Duration::from_secs(5);
/// Client streams open at once on one connection: a port-forward opens
/// two per local connection.
const MAX_STREAMS: usize = 512;

/// A stream the client opened, already replied to.
pub struct Incoming {
    pub headers: Headers,
    /// the client's data; ends at its FIN, RST or hang-up
    pub data: mpsc::Receiver<Bytes>,
    pub tx: StreamTx,
}

/// The server's half of a stream.
#[derive(Clone)]
pub struct StreamTx {
    id: u32,
    out: mpsc::Sender<Out>,
}

impl StreamTx {
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Sends `data`; false once the connection is gone.
    pub async fn write(&self, data: &[u8]) -> bool {
        for chunk in data.chunks(MAX_DATA) {
            let f = Frame::Data {
                stream: self.id,
                flags: 0,
                payload: Bytes::copy_from_slice(chunk),
            };
            if self.out.send(Out::Frame(f)).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Half-closes the server's direction (an empty DATA with FIN).
    pub async fn close(&self) {
        let f = Frame::Data {
            stream: self.id,
            flags: FLAG_FIN,
            payload: Bytes::new(),
        };
        let _ = self.out.send(Out::Frame(f)).await;
    }

    /// `data` and FIN in one frame (the end of an error stream).
    pub async fn write_and_close(&self, data: &[u8]) {
        let f = Frame::Data {
            stream: self.id,
            flags: FLAG_FIN,
            payload: Bytes::copy_from_slice(data),
        };
        let _ = self.out.send(Out::Frame(f)).await;
    }

    /// Abandons the stream both ways (RST_STREAM CANCEL).
    pub async fn reset(&self) {
        let f = Frame::RstStream {
            stream: self.id,
            status: frame::RST_CANCEL,
        };
        let _ = self.out.send(Out::Frame(f)).await;
    }
}

enum Out {
    Frame(Frame),
    Reply(u32),
    Close(oneshot::Sender<()>),
}

/// Decides whether a client stream is taken (replied to) or refused
/// (reset), from its headers.
pub type Accept = Box<dyn Fn(&Headers) -> bool + Send + Sync>;

pub struct Connection {
    incoming: mpsc::Receiver<Incoming>,
    out: mpsc::Sender<Out>,
    last_stream: Arc<AtomicU32>,
    reader: JoinHandle<()>,
    gone: tokio::sync::watch::Receiver<bool>,
}

impl Connection {
    /// Serves SPDY on `io`, an upgraded HTTP connection (or WebSocket
    /// payloads) after the 101. Nothing is written before the client's
    /// first frame: the Go client would lose it in its HTTP buffer.
    pub fn serve<IO>(io: IO, accept: Accept) -> Connection
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (r, w) = tokio::io::split(io);
        let (out, out_rx) = mpsc::channel(64);
        let (in_tx, incoming) = mpsc::channel(16);
        let last_stream = Arc::new(AtomicU32::new(0));
        let (gone_tx, gone) = tokio::sync::watch::channel(false);
        tokio::spawn(write_loop(w, out_rx));
        let reader = Reader {
            out: out.clone(),
            incoming: Some(in_tx),
            streams: HashMap::new(),
            headers: Decompressor::default(),
            accept,
            last_stream: last_stream.clone(),
            gone: gone_tx,
        };
        let reader = tokio::spawn(reader.run(r));
        Connection {
            incoming,
            out,
            last_stream,
            reader,
            gone,
        }
    }

    /// Streams the client opens from now on are refused (reset): a session
    /// that has all it needs reads no more.
    pub fn stop_accepting(&mut self) {
        self.incoming.close();
    }

    /// Resolves once the client has gone: its GOAWAY, its hang-up, or a
    /// broken connection.
    pub fn gone(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut gone = self.gone.clone();
        async move {
            let _ = gone.wait_for(|g| *g).await;
        }
    }

    /// The next stream the client opens; `None` once it sent GOAWAY or
    /// went away.
    pub async fn next(&mut self) -> Option<Incoming> {
        self.incoming.recv().await
    }

    /// Ends the connection: GOAWAY, our write side shut, then the client's
    /// hang-up awaited (briefly), so a close with unread input does not
    /// make the kernel reset what we wrote last.
    pub async fn close(mut self) {
        self.incoming.close();
        let last_good = self.last_stream.load(Ordering::Relaxed);
        let goaway = Frame::GoAway {
            last_good,
            status: 0,
        };
        let out = self.out.clone();
        let shut = async move {
            let _ = out.send(Out::Frame(goaway)).await;
            let (done, closed) = oneshot::channel();
            if out.send(Out::Close(done)).await.is_ok() {
                let _ = closed.await;
            }
        };
        // a client that reads nothing more cannot hold the close up
        let _ = tokio::time::timeout(LINGER, shut).await;
        if tokio::time::timeout(LINGER, &mut self.reader)
            .await
            .is_err()
        {
            self.reader.abort();
        }
    }
}

async fn write_loop<W: AsyncWrite>(w: W, mut rx: mpsc::Receiver<Out>) {
    tokio::pin!(w);
    let mut headers = Compressor::default();
    while let Some(out) = rx.recv().await {
        let frame = match out {
            Out::Frame(f) => f,
            Out::Reply(stream) => match headers.block(&Headers::default()) {
                Ok(block) => Frame::SynReply {
                    stream,
                    flags: 0,
                    block: block.into(),
                },
                Err(e) => {
                    tracing::debug!(error = %e, "spdy: reply headers");
                    return;
                }
            },
            Out::Close(done) => {
                let _ = w.shutdown().await;
                let _ = done.send(());
                return;
            }
        };
        match tokio::time::timeout(IDLE_TIMEOUT, w.write_all(&frame::encode(&frame))).await {
            Ok(Ok(())) => {}
            _ => return,
        }
    }
}

struct Reader {
    out: mpsc::Sender<Out>,
    incoming: Option<mpsc::Sender<Incoming>>,
    streams: HashMap<u32, mpsc::Sender<Bytes>>,
    headers: Decompressor,
    accept: Accept,
    last_stream: Arc<AtomicU32>,
    gone: tokio::sync::watch::Sender<bool>,
}

impl Reader {
    async fn run<R: AsyncRead>(self, r: R) {
        let gone = self.gone.clone();
        self.read(r).await;
        let _ = gone.send(true);
    }

    async fn read<R: AsyncRead>(mut self, r: R) {
        tokio::pin!(r);
        let mut buf = BytesMut::with_capacity(16 << 10);
        loop {
            let frame = match frame::decode(&mut buf) {
                Ok(Some(f)) => f,
                Ok(None) => match tokio::time::timeout(IDLE_TIMEOUT, r.read_buf(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => continue,
                    Ok(Ok(_)) => return,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "spdy: read");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!("spdy: idle connection dropped");
                        return;
                    }
                },
                Err(e) => {
                    tracing::debug!(error = %e, "spdy: bad frame");
                    return;
                }
            };
            if let Err(e) = self.handle(frame).await {
                tracing::debug!(error = %e, "spdy: connection ends");
                return;
            }
        }
    }

    async fn handle(&mut self, frame: Frame) -> Result<(), Error> {
        match frame {
            Frame::SynStream {
                stream,
                flags,
                block,
            } => self.open(stream, flags, &block).await?,
            Frame::Data {
                stream,
                flags,
                payload,
            } => self.data(stream, flags, payload).await,
            Frame::RstStream { stream, .. } => {
                self.streams.remove(&stream);
            }
            Frame::Ping(id) => {
                // the client's pings are odd; an even one would be our own
                if id % 2 == 1 {
                    self.send(Frame::Ping(id)).await;
                }
            }
            Frame::GoAway { .. } => {
                self.incoming = None;
                let _ = self.gone.send(true);
            }
            Frame::Headers { block, .. } | Frame::SynReply { block, .. } => {
                // read for the zlib context's sake
                self.headers.block(&block)?;
            }
            Frame::Ignored(_) => {}
        }
        Ok(())
    }

    async fn open(&mut self, stream: u32, flags: u8, block: &[u8]) -> Result<(), Error> {
        // decompressed before anything else: the context must stay in step
        let headers = self.headers.block(block)?;
        let last = self.last_stream.load(Ordering::Relaxed);
        if stream.is_multiple_of(2) || stream <= last {
            self.rst(stream, frame::RST_PROTOCOL_ERROR).await;
            return Ok(());
        }
        self.last_stream.store(stream, Ordering::Relaxed);
        let taken = self
            .incoming
            .as_ref()
            .filter(|_| (self.accept)(&headers) && self.streams.len() < MAX_STREAMS);
        // a place in the session's queue first: one that stopped taking
        // streams gets a reset, never a reply
        let permit = match taken {
            Some(incoming) => incoming.reserve().await.ok(),
            None => None,
        };
        let Some(permit) = permit else {
            self.rst(stream, frame::RST_REFUSED_STREAM).await;
            return Ok(());
        };
        let _ = self.out.send(Out::Reply(stream)).await;
        let (tx, data) = mpsc::channel(16);
        if flags & FLAG_FIN == 0 {
            self.streams.insert(stream, tx);
        }
        let tx = StreamTx {
            id: stream,
            out: self.out.clone(),
        };
        permit.send(Incoming { headers, data, tx });
        Ok(())
    }

    async fn data(&mut self, stream: u32, flags: u8, payload: Bytes) {
        if let Some(tx) = self.streams.get(&stream)
            && !payload.is_empty()
            && tx.send(payload).await.is_err()
        {
            self.streams.remove(&stream);
        }
        if flags & FLAG_FIN != 0 {
            self.streams.remove(&stream);
        }
    }

    async fn rst(&self, stream: u32, status: u32) {
        self.send(Frame::RstStream { stream, status }).await;
    }

    async fn send(&self, f: Frame) {
        let _ = self.out.send(Out::Frame(f)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spdy::headers::Compressor;

    /// A client's side, by hand: its own compressor and decompressor.
    struct Client {
        io: tokio::io::DuplexStream,
        comp: Compressor,
        decomp: Decompressor,
        buf: BytesMut,
    }

    impl Client {
        async fn send(&mut self, f: Frame) {
            self.io.write_all(&frame::encode(&f)).await.unwrap();
        }

        async fn open(&mut self, stream: u32, pairs: &[(&str, &str)]) {
            let h = Headers::of(pairs);
            let block = self.comp.block(&h).unwrap().into();
            self.send(Frame::SynStream {
                stream,
                flags: 0,
                block,
            })
            .await;
        }

        async fn recv(&mut self) -> Option<Frame> {
            loop {
                if let Some(f) = frame::decode(&mut self.buf).unwrap() {
                    if let Frame::SynReply { block, .. } = &f {
                        assert_eq!(self.decomp.block(block).unwrap(), Headers::default());
                    }
                    return Some(f);
                }
                if self.io.read_buf(&mut self.buf).await.unwrap() == 0 {
                    return None;
                }
            }
        }
    }

    fn pair(accept: Accept) -> (Connection, Client) {
        let (a, b) = tokio::io::duplex(1 << 20);
        let conn = Connection::serve(a, accept);
        let client = Client {
            io: b,
            comp: Compressor::default(),
            decomp: Decompressor::default(),
            buf: BytesMut::new(),
        };
        (conn, client)
    }

    #[tokio::test]
    async fn streams_are_replied_to_data_flows_and_goaway_ends() {
        let (mut conn, mut client) = pair(Box::new(|h| h.get("streamtype") != Some("bad")));
        client.open(1, &[("streamtype", "error")]).await;
        assert!(matches!(
            client.recv().await,
            Some(Frame::SynReply { stream: 1, .. })
        ));
        let mut s1 = conn.next().await.unwrap();
        assert_eq!(s1.headers.get("streamType"), Some("error"));

        client.open(3, &[("streamtype", "bad")]).await;
        assert_eq!(
            client.recv().await,
            Some(Frame::RstStream {
                stream: 3,
                status: frame::RST_REFUSED_STREAM
            })
        );
        // an id not above the last is a protocol error
        client.open(1, &[("streamtype", "stdin")]).await;
        assert!(matches!(
            client.recv().await,
            Some(Frame::RstStream {
                stream: 1,
                status: frame::RST_PROTOCOL_ERROR
            })
        ));

        client.send(Frame::Ping(5)).await;
        assert_eq!(client.recv().await, Some(Frame::Ping(5)));

        let data = |flags, p: &'static [u8]| Frame::Data {
            stream: 1,
            flags,
            payload: Bytes::from_static(p),
        };
        client.send(data(0, b"in")).await;
        client.send(data(FLAG_FIN, b"")).await;
        assert_eq!(s1.data.recv().await.as_deref(), Some(&b"in"[..]));
        assert_eq!(
            s1.data.recv().await,
            None,
            "FIN is the end of the client's data"
        );

        let big = vec![7u8; 70 << 10];
        assert!(s1.tx.write(&big).await);
        let mut got = Vec::new();
        while got.len() < big.len() {
            match client.recv().await {
                Some(Frame::Data {
                    stream: 1, payload, ..
                }) => {
                    assert!(payload.len() <= MAX_DATA);
                    got.extend_from_slice(&payload);
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(got, big);
        s1.tx.write_and_close(b"{}").await;
        assert_eq!(client.recv().await, Some(data(FLAG_FIN, b"{}")));

        // a session with all its streams takes no more
        conn.stop_accepting();
        client.open(5, &[("streamtype", "stdin")]).await;
        assert_eq!(
            client.recv().await,
            Some(Frame::RstStream {
                stream: 5,
                status: frame::RST_REFUSED_STREAM
            })
        );

        let closing = tokio::spawn(conn.close());
        assert_eq!(
            client.recv().await,
            Some(Frame::GoAway {
                last_good: 5,
                status: 0
            })
        );
        assert_eq!(client.recv().await, None, "the server shut its side");
        drop(client);
        closing.await.unwrap();
    }

    #[tokio::test]
    async fn a_client_hanging_up_is_seen() {
        let (conn, client) = pair(Box::new(|_| true));
        let gone = conn.gone();
        drop(client);
        tokio::time::timeout(Duration::from_secs(5), gone)
            .await
            .expect("the hang-up is seen");
    }

    #[tokio::test]
    async fn garbage_ends_the_connection() {
        let (mut conn, mut client) = pair(Box::new(|_| true));
        client
            .io
            .write_all(&[0x80, 0x03, 0, 1, 0, 0, 0, 10])
            .await
            .unwrap();
        client
            .io
            .write_all(&[0, 0, 0, 1, 0, 0, 0, 0, 1, 2])
            .await
            .unwrap();
        assert!(conn.next().await.is_none());
    }
}
