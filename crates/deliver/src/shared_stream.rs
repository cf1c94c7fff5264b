//! The byte stream under an upstream SMTP connection, shared by lettre (commands and
//! replies) and the DATA phase, which writes message content to it directly, a chunk at a
//! time as it is read from body storage, and then lets lettre read the final reply.
//!
//! TLS is below the shared stream: implicit TLS is set up before SMTP starts, and STARTTLS
//! is done here before lettre sees the connection ([`starttls_dialogue`]): greeting, EHLO,
//! STARTTLS, handshake. lettre then reads a stand-in greeting ([`Prefaced`]) and says EHLO
//! over TLS, so what it knows of the server (AUTH mechanisms, SMTPUTF8) is what the server
//! offers once secured.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use lettre::transport::smtp::client::AsyncTokioStream;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// One stream, two users that never use it at once: lettre between commands, the DATA
/// phase while lettre waits. Each poll takes the lock for that poll only.
#[derive(Debug, Clone)]
pub struct SharedStream(Arc<Mutex<Box<dyn AsyncTokioStream>>>);

impl SharedStream {
    pub fn new(inner: Box<dyn AsyncTokioStream>) -> Self {
        SharedStream(Arc::new(Mutex::new(inner)))
    }

    fn with<T>(&self, f: impl FnOnce(Pin<&mut Box<dyn AsyncTokioStream>>) -> T) -> T {
        let mut inner = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(Pin::new(&mut *inner))
    }
}

impl AsyncRead for SharedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.with(|inner| inner.poll_read(cx, buf))
    }
}

impl AsyncWrite for SharedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.with(|inner| inner.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(|inner| inner.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(|inner| inner.poll_shutdown(cx))
    }
}

impl AsyncTokioStream for SharedStream {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).peer_addr()
    }
}

/// A stream whose first reads return `preface` (a greeting that was already read off the
/// wire before TLS), then the stream's own bytes.
#[derive(Debug)]
pub struct Prefaced<S> {
    preface: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S> Prefaced<S> {
    pub fn new(preface: &[u8], inner: S) -> Self {
        Prefaced {
            preface: preface.to_vec(),
            at: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefaced<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.at < self.preface.len() {
            let n = buf.remaining().min(self.preface.len() - self.at);
            let at = self.at;
            buf.put_slice(&self.preface[at..at + n]);
            self.at += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefaced<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S: AsyncTokioStream> AsyncTokioStream for Prefaced<S> {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }
}

/// One SMTP reply: its code and its lines' text.
#[derive(Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

/// Longest reply read in the STARTTLS dialogue (an EHLO answer is a few hundred bytes).
const MAX_REPLY: usize = 16 * 1024;

/// Reads one (possibly multi-line) reply. Reads a byte at a time: nothing after the reply
/// may be taken off the wire before TLS starts.
async fn read_reply<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<Reply> {
    let mut lines = Vec::new();
    let mut line = Vec::new();
    let mut total = 0;
    loop {
        let mut byte = [0u8; 1];
        if stream.read(&mut byte).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the upstream closed the connection",
            ));
        }
        total += 1;
        if total > MAX_REPLY {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the upstream's reply is too long",
            ));
        }
        if byte[0] != b'\n' {
            line.push(byte[0]);
            continue;
        }
        let text = String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(&line)).into_owned();
        line.clear();
        let code = text
            .get(..3)
            .and_then(|c| c.parse::<u16>().ok())
            .filter(|c| (200..600).contains(c))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an SMTP reply"))?;
        let last = text.as_bytes().get(3) != Some(&b'-');
        lines.push(text.get(4..).unwrap_or("").to_string());
        if last {
            return Ok(Reply { code, lines });
        }
    }
}

/// A reply that is not the one wanted, as the connection's error.
fn refused(step: &str, reply: &Reply) -> io::Error {
    let text = sluice_core::text::sanitize_reply_text(&reply.lines.join(" "), 200);
    io::Error::other(format!("{step}: {} {text}", reply.code))
}

/// The plain-text part of a STARTTLS connection: greeting, EHLO, STARTTLS, each within
/// `timeout`. Returns the greeting's line for lettre's stand-in greeting. Fails (so the
/// message waits: never sent in the clear) when the upstream does not offer STARTTLS.
pub async fn starttls_dialogue<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    hello: &str,
    timeout: Duration,
) -> io::Result<String> {
    let step = |what: &'static str| {
        move |_| io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out"))
    };
    let greeting = tokio::time::timeout(timeout, read_reply(stream))
        .await
        .map_err(step("the greeting"))??;
    if greeting.code != 220 {
        return Err(refused("greeting", &greeting));
    }
    stream
        .write_all(format!("EHLO {hello}\r\n").as_bytes())
        .await?;
    let ehlo = tokio::time::timeout(timeout, read_reply(stream))
        .await
        .map_err(step("EHLO"))??;
    if ehlo.code != 250 {
        return Err(refused("EHLO", &ehlo));
    }
    if !ehlo
        .lines
        .iter()
        .any(|l| l.trim().eq_ignore_ascii_case("STARTTLS"))
    {
        return Err(io::Error::other("the upstream does not offer STARTTLS"));
    }
    stream.write_all(b"STARTTLS\r\n").await?;
    let ready = tokio::time::timeout(timeout, read_reply(stream))
        .await
        .map_err(step("STARTTLS"))??;
    if ready.code != 220 {
        return Err(refused("STARTTLS", &ready));
    }
    Ok(format!(
        "220 {}\r\n",
        greeting.lines.first().map(String::as_str).unwrap_or("")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_dialogue_reads_only_up_to_the_ready_reply() {
        let (mut client, mut server) = tokio::io::duplex(4096);
        let serve = tokio::spawn(async move {
            server
                .write_all(b"220-mx.test ESMTP\r\n220 welcome\r\n")
                .await
                .unwrap();
            let mut seen = vec![0u8; 64];
            let n = server.read(&mut seen).await.unwrap();
            assert_eq!(&seen[..n], b"EHLO relay.test\r\n");
            server
                .write_all(b"250-mx.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
                .await
                .unwrap();
            let n = server.read(&mut seen).await.unwrap();
            assert_eq!(&seen[..n], b"STARTTLS\r\n");
            // The ready reply, then what would be the first TLS bytes.
            server.write_all(b"220 go ahead\r\n\x16\x03").await.unwrap();
            server
        });
        let greeting = starttls_dialogue(&mut client, "relay.test", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(greeting, "220 mx.test ESMTP\r\n");
        let _server = serve.await.unwrap();
        let mut next = [0u8; 2];
        client.read_exact(&mut next).await.unwrap();
        assert_eq!(
            &next, b"\x16\x03",
            "nothing after the ready reply was consumed"
        );
    }

    #[tokio::test]
    async fn no_starttls_offered_is_an_error_not_a_plain_text_session() {
        let (mut client, mut server) = tokio::io::duplex(4096);
        tokio::spawn(async move {
            server.write_all(b"220 hi\r\n").await.unwrap();
            let mut seen = vec![0u8; 64];
            let _ = server.read(&mut seen).await.unwrap();
            server
                .write_all(b"250-mx\r\n250 SIZE 1000\r\n")
                .await
                .unwrap();
            let _ = server.read(&mut seen).await;
        });
        let error = starttls_dialogue(&mut client, "relay.test", Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("does not offer STARTTLS"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_prefaced_stream_reads_its_preface_first() {
        let (client, mut server) = tokio::io::duplex(64);
        server.write_all(b"rest").await.unwrap();
        let mut stream = Prefaced::new(b"220 x\r\n", client);
        let mut all = vec![0u8; 11];
        stream.read_exact(&mut all).await.unwrap();
        assert_eq!(&all, b"220 x\r\nrest");
    }
}
