//! The request body as handlers see it: a client that stops sending in the
//! middle of a body gets an error after an idle time instead of holding a
//! task forever, and the server learns what became of the body so that it
//! can keep the connection usable (drain the rest) or say it will close it.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::BoxError;
use bytes::Buf;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

/// What became of a request body once its handler answered.
#[derive(Debug)]
pub enum Left<B> {
    /// still with the handler (a task may go on reading it)
    Reading,
    /// read to its end: the connection can carry the next request
    Read,
    /// dropped before its end: the rest is still on the wire
    Unread(B),
    /// failed or stalled: what remains on the wire cannot be trusted
    Broken,
}

/// The server's side of a body handed to a handler.
pub struct Fate<B>(Arc<Mutex<Left<B>>>);

impl<B> Fate<B> {
    /// Takes what is left: a body still being read stays with its reader.
    pub fn take(&self) -> Left<B> {
        let mut left = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match *left {
            Left::Reading => Left::Reading,
            _ => std::mem::replace(&mut *left, Left::Read),
        }
    }
}

/// A request body that fails when the client sends nothing for `idle`
/// while the handler waits for data. Time the handler spends elsewhere
/// (writing to disk, to a container) does not count.
pub struct Input<B> {
    inner: Option<B>,
    idle: Duration,
    stall: Option<Pin<Box<Sleep>>>,
    left: Arc<Mutex<Left<B>>>,
}

/// The error a stalled body ends with.
#[derive(Debug)]
pub struct Stalled(pub Duration);

impl std::fmt::Display for Stalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "request body stalled: no data for {:.1}s",
            self.0.as_secs_f64()
        )
    }
}

impl std::error::Error for Stalled {}

impl<B: Body + Unpin> Input<B> {
    pub fn new(inner: B, idle: Duration) -> (Self, Fate<B>) {
        let state = if inner.is_end_stream() {
            Left::Read
        } else {
            Left::Reading
        };
        let left = Arc::new(Mutex::new(state));
        let input = Input {
            inner: Some(inner),
            idle,
            stall: None,
            left: left.clone(),
        };
        (input, Fate(left))
    }

    fn settle(&mut self, to: Left<B>) {
        let mut left = self.left.lock().unwrap_or_else(PoisonError::into_inner);
        if matches!(*left, Left::Reading) {
            *left = to;
        }
    }

    /// Arms the idle timer while the client owes data; fails once it fires.
    fn poll_stall(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, BoxError>>> {
        let idle = self.idle;
        let stall = self
            .stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
        if stall.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.inner = None;
        self.settle(Left::Broken);
        Poll::Ready(Some(Err(Box::new(Stalled(idle)))))
    }
}

impl<B> Body for Input<B>
where
    B: Body + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(&mut *inner).poll_frame(cx) {
            Poll::Pending => this.poll_stall(cx),
            Poll::Ready(Some(Ok(frame))) => {
                this.stall = None;
                if inner.is_end_stream() {
                    this.settle(Left::Read);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                this.settle(Left::Read);
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                this.inner = None;
                this.settle(Left::Broken);
                Poll::Ready(Some(Err(e.into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl<B> Drop for Input<B> {
    fn drop(&mut self) {
        let mut left = self.left.lock().unwrap_or_else(PoisonError::into_inner);
        if let (Left::Reading, Some(rest)) = (&*left, self.inner.take()) {
            *left = Left::Unread(rest);
        }
    }
}

/// Reads and discards the rest of a body the handler left, up to `limit`
/// bytes and for at most `within`: true when the body ended, so the next
/// request on the connection starts where the client believes it does.
pub async fn drain<B>(mut rest: B, limit: u64, within: Duration) -> bool
where
    B: Body + Unpin,
{
    if rest.size_hint().lower() > limit {
        return false;
    }
    let discard = async {
        let mut seen = 0u64;
        while let Some(frame) = http_body_util::BodyExt::frame(&mut rest).await {
            let Ok(frame) = frame else { return false };
            if let Some(data) = frame.data_ref() {
                seen = seen.saturating_add(data.remaining() as u64);
                if seen > limit {
                    return false;
                }
            }
        }
        true
    };
    tokio::time::timeout(within, discard).await.unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::BodyExt;

    type Chunks = http_body_util::StreamBody<
        tokio_stream::wrappers::ReceiverStream<Result<Frame<Bytes>, std::io::Error>>,
    >;

    fn chunks() -> (
        tokio::sync::mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>,
        Chunks,
    ) {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let body = http_body_util::StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx));
        (tx, body)
    }

    fn data(s: &'static str) -> Result<Frame<Bytes>, std::io::Error> {
        Ok(Frame::data(Bytes::from_static(s.as_bytes())))
    }

    #[tokio::test]
    async fn a_stalled_body_fails_after_the_idle_time() {
        let (tx, body) = chunks();
        let (mut input, fate) = Input::new(body, Duration::from_millis(100));
        tx.send(data("abc")).await.unwrap();
        assert!(input.frame().await.unwrap().is_ok());
        let started = std::time::Instant::now();
        let err = input.frame().await.unwrap().unwrap_err();
        assert!(err.is::<Stalled>(), "{err}");
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert!(matches!(fate.take(), Left::Broken));
        drop(tx);
    }

    #[tokio::test]
    async fn a_slow_body_that_progresses_is_not_cut() {
        let (tx, body) = chunks();
        let (input, fate) = Input::new(body, Duration::from_millis(200));
        tokio::spawn(async move {
            for _ in 0..6 {
                tokio::time::sleep(Duration::from_millis(80)).await;
                tx.send(data("x")).await.unwrap();
            }
        });
        let all = input.collect().await.unwrap().to_bytes();
        assert_eq!(&all[..], b"xxxxxx");
        assert!(matches!(fate.take(), Left::Read));
    }

    #[tokio::test]
    async fn time_the_handler_spends_elsewhere_does_not_count() {
        let (tx, body) = chunks();
        let (mut input, _fate) = Input::new(body, Duration::from_millis(100));
        tx.send(data("a")).await.unwrap();
        assert!(input.frame().await.unwrap().is_ok());
        tokio::time::sleep(Duration::from_millis(250)).await;
        tx.send(data("b")).await.unwrap();
        assert!(input.frame().await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn a_dropped_body_leaves_its_rest_to_drain() {
        let (tx, body) = chunks();
        let (input, fate) = Input::new(body, Duration::from_secs(5));
        assert!(matches!(fate.take(), Left::Reading));
        drop(input);
        let Left::Unread(rest) = fate.take() else {
            panic!("the rest was not handed back");
        };
        tx.send(data("0123456789")).await.unwrap();
        drop(tx);
        assert!(drain(rest, 64, Duration::from_secs(5)).await);
    }

    #[tokio::test]
    async fn drain_gives_up_on_a_large_or_stalled_rest() {
        let (tx, body) = chunks();
        tx.send(data("0123456789")).await.unwrap();
        drop(tx);
        assert!(!drain(body, 4, Duration::from_secs(5)).await, "too large");
        let (_tx, body) = chunks();
        assert!(!drain(body, 64, Duration::from_millis(50)).await, "stalled");
        let declared = http_body_util::Full::new(Bytes::from_static(b"abcdef"));
        assert!(!drain(declared, 4, Duration::from_secs(5)).await);
    }

    #[tokio::test]
    async fn an_empty_body_is_read_from_the_start() {
        let (input, fate) = Input::new(
            http_body_util::Empty::<Bytes>::new(),
            Duration::from_secs(1),
        );
        assert!(matches!(fate.take(), Left::Read));
        assert!(input.is_end_stream());
    }
}
