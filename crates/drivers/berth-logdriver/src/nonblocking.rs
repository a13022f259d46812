//! `mode=non-blocking`: the container never waits for its driver. Messages
//! queue in memory up to `max-buffer-size` bytes and a thread delivers
//! them; when the queue is full new messages are dropped, as dockerd's
//! ring logger does.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use crate::{Logger, Message};

struct Queue {
    msgs: VecDeque<Message>,
    bytes: u64,
    closed: bool,
    dropped: u64,
}

pub(crate) struct NonBlocking {
    shared: Arc<(Mutex<Queue>, Condvar)>,
    max: u64,
    thread: Option<JoinHandle<()>>,
}

impl NonBlocking {
    pub(crate) fn new(mut inner: Box<dyn Logger>, max: u64) -> std::io::Result<NonBlocking> {
        let shared = Arc::new((
            Mutex::new(Queue {
                msgs: VecDeque::new(),
                bytes: 0,
                closed: false,
                dropped: 0,
            }),
            Condvar::new(),
        ));
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name("log-ring".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                let (lock, cv) = &*sh;
                loop {
                    let (batch, closed) = {
                        let mut q = lock.lock().unwrap_or_else(|p| p.into_inner());
                        while q.msgs.is_empty() && !q.closed {
                            q = cv.wait(q).unwrap_or_else(|p| p.into_inner());
                        }
                        q.bytes = 0;
                        if q.dropped > 0 {
                            tracing::warn!(
                                dropped = q.dropped,
                                "log buffer full: messages dropped"
                            );
                            q.dropped = 0;
                        }
                        (q.msgs.drain(..).collect::<Vec<_>>(), q.closed)
                    };
                    if !batch.is_empty()
                        && let Err(e) = inner.log(&batch)
                    {
                        tracing::warn!(error = %e, "delivering buffered log messages");
                    }
                    if closed {
                        return;
                    }
                }
            })?;
        Ok(NonBlocking {
            shared,
            max,
            thread: Some(thread),
        })
    }
}

impl Logger for NonBlocking {
    fn log(&mut self, msgs: &[Message]) -> std::io::Result<()> {
        let (lock, cv) = &*self.shared;
        let mut q = lock.lock().unwrap_or_else(|p| p.into_inner());
        for m in msgs {
            let size = m.line.len() as u64;
            // one message always fits, however large, as in dockerd
            if q.bytes + size > self.max && !q.msgs.is_empty() {
                q.dropped += 1;
                continue;
            }
            q.bytes += size;
            q.msgs.push_back(m.clone());
        }
        cv.notify_one();
        Ok(())
    }
}

impl Drop for NonBlocking {
    /// Delivers what is queued before the shim goes away.
    fn drop(&mut self) {
        {
            let (lock, cv) = &*self.shared;
            lock.lock().unwrap_or_else(|p| p.into_inner()).closed = true;
            cv.notify_one();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::{Duration, SystemTime};

    struct Slow {
        gate: mpsc::Receiver<()>,
        seen: Arc<Mutex<Vec<Vec<u8>>>>,
    }

    impl Logger for Slow {
        fn log(&mut self, msgs: &[Message]) -> std::io::Result<()> {
            let _ = self.gate.recv_timeout(Duration::from_secs(5));
            let mut s = self.seen.lock().unwrap();
            s.extend(msgs.iter().map(|m| m.line.clone()));
            Ok(())
        }
    }

    fn msg(s: &str) -> Message {
        Message {
            stream: crate::Stream::Stdout,
            line: s.as_bytes().to_vec(),
            partial: false,
            time: SystemTime::now(),
        }
    }

    #[test]
    fn never_waits_drops_when_full_and_flushes_on_drop() {
        let (tx, rx) = mpsc::channel();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut nb = NonBlocking::new(
            Box::new(Slow {
                gate: rx,
                seen: seen.clone(),
            }),
            10,
        )
        .unwrap();
        // the first message is taken by the thread, which then blocks
        nb.log(&[msg("first")]).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        // 6 + 4 bytes fit in 10; the third is dropped
        nb.log(&[msg("second"), msg("3333"), msg("dropped")])
            .unwrap();
        for _ in 0..3 {
            tx.send(()).unwrap();
        }
        drop(nb);
        let seen = seen.lock().unwrap();
        assert_eq!(
            *seen,
            vec![b"first".to_vec(), b"second".to_vec(), b"3333".to_vec()]
        );
    }
}
