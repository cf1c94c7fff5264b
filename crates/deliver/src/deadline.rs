//! A deadline on every step of an upstream conversation.
//!
//! lettre's async connection reads and writes without any timeout of its own, so a
//! connection handed to it with [`DeadlineStream`] gets one: the greeting, each reply (to a
//! command, to the TLS handshake's messages, to the final dot) must arrive within `limit`
//! of the last bytes we wrote, and a write must make progress within `limit`. A reply that
//! trickles in does not extend the deadline. Once a deadline passed the stream is dead:
//! every further read or write fails at once, so the QUIT of an abort does not wait a
//! second `limit`.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use lettre::transport::smtp::client::AsyncTokioStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

#[derive(Debug)]
pub struct DeadlineStream<S> {
    inner: S,
    limit: Duration,
    deadline: Pin<Box<Sleep>>,
    expired: bool,
    cut: CutSwitch,
}

/// Kills a connection from outside its reads and writes: once cut, every further read and
/// write of the stream fails at once and nothing more reaches the socket. Delivery cuts a
/// connection whose message content could not be read to the end, so the upstream sees the
/// connection drop before the final dot and never takes a truncated message.
#[derive(Debug, Clone, Default)]
pub struct CutSwitch(Arc<AtomicBool>);

impl CutSwitch {
    pub fn cut(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cut(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

impl<S> DeadlineStream<S> {
    /// The first deadline (for the greeting) runs from now.
    pub fn new(inner: S, limit: Duration) -> Self {
        DeadlineStream {
            inner,
            limit,
            deadline: Box::pin(tokio::time::sleep(limit)),
            expired: false,
            cut: CutSwitch::default(),
        }
    }

    /// The same, killed by `cut` once it is cut.
    pub fn with_cut(mut self, cut: CutSwitch) -> Self {
        self.cut = cut;
        self
    }

    /// The error every read and write gets once the stream is dead, if it is.
    fn dead(&self) -> Option<io::Error> {
        if self.cut.is_cut() {
            return Some(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "connection cut: the message content could not be read",
            ));
        }
        self.expired.then(|| self.timed_out())
    }

    fn timed_out(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "the upstream did not answer within {} s",
                self.limit.as_secs_f64()
            ),
        )
    }

    /// Pending: has the deadline passed? (Registers the waker for it if not.)
    fn check(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.expired || self.deadline.as_mut().poll(cx).is_ready() {
            self.expired = true;
            return Poll::Ready(Err(self.timed_out()));
        }
        Poll::Pending
    }

    fn rearm(&mut self) {
        let at = Instant::now() + self.limit;
        self.deadline.as_mut().reset(at);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for DeadlineStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(error) = self.dead() {
            return Poll::Ready(Err(error));
        }
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Pending => self.check(cx),
            ready => ready,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for DeadlineStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(error) = self.dead() {
            return Poll::Ready(Err(error));
        }
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Pending => self.check(cx).map_ok(|()| 0),
            Poll::Ready(Ok(n)) => {
                self.rearm();
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(error) = self.dead() {
            return Poll::Ready(Err(error));
        }
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => self.check(cx),
            Poll::Ready(Ok(())) => {
                self.rearm();
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S: AsyncTokioStream> AsyncTokioStream for DeadlineStream<S> {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const LIMIT: Duration = Duration::from_millis(300);

    #[tokio::test]
    async fn a_reply_must_come_within_the_limit_of_the_last_write() {
        let (client, mut server) = tokio::io::duplex(64);
        let mut stream = DeadlineStream::new(client, LIMIT);
        server.write_all(b"220 hi\r\n").await.unwrap();
        let mut buf = [0u8; 8];
        stream.read_exact(&mut buf).await.unwrap();
        tokio::time::sleep(LIMIT * 2).await;
        // A write re-arms: the idle time before it does not count.
        stream.write_all(b"DATA\r\n").await.unwrap();
        let started = Instant::now();
        let error = stream.read(&mut buf).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        let waited = started.elapsed();
        assert!(waited >= LIMIT && waited < LIMIT * 3, "{waited:?}");
        // Dead from then on, without waiting again.
        let again = Instant::now();
        let error = stream.write_all(b"QUIT\r\n").await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(again.elapsed() < LIMIT / 3);
    }

    #[tokio::test]
    async fn a_trickled_reply_does_not_extend_the_deadline() {
        let (client, mut server) = tokio::io::duplex(64);
        let mut stream = DeadlineStream::new(client, LIMIT);
        let trickle = tokio::spawn(async move {
            for byte in b"250 slowly\r\n" {
                tokio::time::sleep(LIMIT / 4).await;
                if server.write_all(&[*byte]).await.is_err() {
                    break;
                }
            }
            server
        });
        let mut line = Vec::new();
        let started = Instant::now();
        let error = loop {
            let mut byte = [0u8; 1];
            match stream.read(&mut byte).await {
                Ok(0) => panic!("closed"),
                Ok(_) => line.push(byte[0]),
                Err(error) => break error,
            }
        };
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < LIMIT * 2);
        assert!(line.len() < b"250 slowly\r\n".len());
        drop(stream);
        let _ = trickle.await;
    }
}
