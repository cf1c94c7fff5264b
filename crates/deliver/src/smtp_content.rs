//! The content of a DATA phase, written to the upstream's stream a chunk at a time: from
//! memory, or read from body storage as it is sent, so a large stored message is never
//! whole in memory. Dot-stuffed on the fly (RFC 5321 4.5.2: a `.` that starts a line is
//! doubled; a bare LF counts as a line end too, for lenient receivers) and ended with
//! `CRLF . CRLF`; a final CRLF of the content is not doubled.
//!
//! A stored body that cannot be read to its end is never ended: the connection is cut
//! ([`CutSwitch`]) before anything more is written, so the upstream drops the transaction.

use sluice_core::body::BODY_CHUNK;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tracing::warn;

use crate::OutboundBody;
use crate::deadline::CutSwitch;

/// Content bytes in, wire bytes out; the last two input bytes are held back until the end,
/// where a final CRLF is dropped before the end mark.
#[derive(Debug)]
pub(crate) struct WireChunks {
    /// At most two bytes: the content's last ones so far.
    held: Vec<u8>,
    at_line_start: bool,
}

impl Default for WireChunks {
    fn default() -> Self {
        WireChunks {
            held: Vec::with_capacity(2),
            at_line_start: true,
        }
    }
}

impl WireChunks {
    /// Appends to `out` the wire bytes of `chunk` (and of what was held) that can go now.
    pub(crate) fn push_into(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.held.len() + chunk.len() <= 2 {
            self.held.extend_from_slice(chunk);
            return;
        }
        out.reserve(self.held.len() + chunk.len() + chunk.len() / 512 + 8);
        // Everything but the last two bytes of held-then-chunk goes now.
        let keep_from_chunk = chunk.len().min(2);
        let from_held = self.held.len() - (2 - keep_from_chunk);
        let held = std::mem::take(&mut self.held);
        self.stuff(&held[..from_held], out);
        let (now, kept) = chunk.split_at(chunk.len() - keep_from_chunk);
        self.stuff(now, out);
        self.held = held;
        self.held.drain(..from_held);
        self.held.extend_from_slice(kept);
    }

    /// The wire bytes of `chunk` (and of what was held) that can go now.
    #[cfg(test)]
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        self.push_into(chunk, &mut out);
        out
    }

    /// Appends to `out` what was held back, without a final CRLF, and the end mark.
    pub(crate) fn finish_into(&mut self, out: &mut Vec<u8>) {
        let held = std::mem::take(&mut self.held);
        let tail = held.strip_suffix(b"\r\n").unwrap_or(&held);
        self.stuff(tail, out);
        out.extend_from_slice(b"\r\n.\r\n");
    }

    fn stuff(&mut self, mut bytes: &[u8], out: &mut Vec<u8>) {
        // Line by line: a line that starts with a dot gets another; the rest is copied.
        while !bytes.is_empty() {
            if self.at_line_start && bytes[0] == b'.' {
                out.push(b'.');
            }
            match memchr::memchr(b'\n', bytes) {
                Some(end) => {
                    out.extend_from_slice(&bytes[..=end]);
                    bytes = &bytes[end + 1..];
                    self.at_line_start = true;
                }
                None => {
                    out.extend_from_slice(bytes);
                    self.at_line_start = false;
                    return;
                }
            }
        }
    }
}

/// Why the content did not go out whole.
#[derive(Debug)]
pub(crate) enum ContentError {
    /// Writing to the upstream failed.
    Write(std::io::Error),
    /// The stored body could not be read to its end; the connection was cut.
    Unreadable(String),
}

impl std::fmt::Display for ContentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ContentError::Write(e) => write!(f, "network error: {e}"),
            ContentError::Unreadable(e) => {
                write!(
                    f,
                    "the message body could not be read ({e}); connection cut"
                )
            }
        }
    }
}

/// Writes `body` (stuffed, with the end mark) to `stream` and flushes it: in writes of
/// about a chunk (a message under a chunk in one write), from one buffer reused.
pub(crate) async fn write_content<W: AsyncWrite + Unpin>(
    stream: &mut W,
    body: OutboundBody<'_>,
    cut: &CutSwitch,
) -> Result<(), ContentError> {
    let mut wire = WireChunks::default();
    let (head, split) = match body {
        OutboundBody::Whole(bytes) => (bytes, None),
        OutboundBody::Streamed { head, body } => (head, Some(body)),
    };
    let mut out = Vec::with_capacity(BODY_CHUNK.min(head.len() + 64) + 64);
    for piece in head.chunks(BODY_CHUNK) {
        wire.push_into(piece, &mut out);
        write_full(stream, &mut out).await?;
    }
    if let Some(split) = split {
        let unreadable = |error: sluice_core::BodyError| {
            warn!(%error, "message body unreadable while sending; connection cut");
            cut.cut();
            ContentError::Unreadable(error.to_string())
        };
        let mut rest = split.rest().await.map_err(unreadable)?;
        while let Some(chunk) = rest.next_chunk().await.map_err(unreadable)? {
            wire.push_into(&chunk, &mut out);
            write_full(stream, &mut out).await?;
        }
    }
    wire.finish_into(&mut out);
    write(stream, &out).await?;
    stream.flush().await.map_err(ContentError::Write)
}

/// Writes `out` and empties it once it holds a chunk or more.
async fn write_full<W: AsyncWrite + Unpin>(
    stream: &mut W,
    out: &mut Vec<u8>,
) -> Result<(), ContentError> {
    if out.len() >= BODY_CHUNK {
        write(stream, out).await?;
        out.clear();
    }
    Ok(())
}

async fn write<W: AsyncWrite + Unpin>(stream: &mut W, bytes: &[u8]) -> Result<(), ContentError> {
    stream.write_all(bytes).await.map_err(ContentError::Write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn content_in_pieces_goes_out_as_the_one_piece_stuffer_makes_it() {
        let table: [&[u8]; 9] = [
            b"a\r\nb\r\n",
            b"a\r\nb",
            b".starts\r\n..two\r\n",
            b"x\r\n.\r\ny\r\n",
            b"bare\n.lf\r\n",
            b"mid.dot\r\n",
            b"",
            b"\r\n",
            b".",
        ];
        for body in table {
            // Longer than one chunk, so it goes in pieces.
            let body = [&b"x".repeat(BODY_CHUNK)[..], b"\r\n", body].concat();
            let body = &body[..];
            let mut wire = Vec::new();
            write_content(&mut wire, OutboundBody::Whole(body), &CutSwitch::default())
                .await
                .unwrap();
            assert_eq!(
                wire,
                crate::smtp::dot_stuffed(body),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    /// Keeps each write apart.
    #[derive(Default)]
    struct Writes(Vec<Vec<u8>>);

    impl AsyncWrite for Writes {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            bytes: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            self.0.push(bytes.to_vec());
            std::task::Poll::Ready(Ok(bytes.len()))
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn content_goes_out_in_writes_of_about_a_chunk() {
        // A line of 94 bytes, then one that gets a dot more: 1% grows on the wire.
        let lines = [&b"x".repeat(94)[..], b"\r\n.d\r\n"].concat();
        for (len, writes) in [
            (0, 1),
            (50_000, 1),
            (BODY_CHUNK - 1000, 1),
            (3 * BODY_CHUNK, 4),
        ] {
            let body = lines.repeat(len / lines.len() + 1)[..len].to_vec();
            let mut sent = Writes::default();
            write_content(&mut sent, OutboundBody::Whole(&body), &CutSwitch::default())
                .await
                .unwrap();
            assert_eq!(sent.0.len(), writes, "{len} bytes");
            assert!(sent.0.iter().all(|w| w.len() < 2 * BODY_CHUNK + 1024));
            assert_eq!(
                sent.0.concat(),
                crate::smtp::dot_stuffed(&body),
                "{len} bytes"
            );
        }
    }

    /// One stored content, read back in chunks of `BODY_CHUNK` as the stores do.
    struct OneBody(Vec<u8>);

    struct Chunks(std::collections::VecDeque<Vec<u8>>);

    #[async_trait::async_trait]
    impl sluice_core::body::BodyReader for Chunks {
        async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, sluice_core::BodyError> {
            Ok(self.0.pop_front())
        }
    }

    #[async_trait::async_trait]
    impl sluice_core::BodyStorage for OneBody {
        async fn writer(
            &self,
        ) -> Result<Box<dyn sluice_core::body::BodyWriter>, sluice_core::BodyError> {
            unimplemented!("the test only reads")
        }
        async fn reader(
            &self,
            _: &[u8],
        ) -> Result<Box<dyn sluice_core::body::BodyReader>, sluice_core::BodyError> {
            Ok(Box::new(Chunks(
                self.0.chunks(BODY_CHUNK).map(<[u8]>::to_vec).collect(),
            )))
        }
        async fn sync(&self, _: &[&[u8]]) -> Result<(), sluice_core::BodyError> {
            Ok(())
        }
        async fn release(&self, _: Vec<Vec<u8>>) {}
    }

    #[tokio::test]
    async fn a_stored_body_goes_out_in_writes_of_about_a_chunk() {
        let lines = [&b"x".repeat(94)[..], b"\r\n.d\r\n"].concat();
        for (len, writes) in [(50_000, 1), (3 * BODY_CHUNK + 5, 4)] {
            let content = [
                &b"Subject: s\r\n\r\n"[..],
                &lines.repeat(len / lines.len() + 1)[..len],
            ]
            .concat();
            let stored = sluice_core::StoredBody {
                head: b"Received: r\r\n".to_vec(),
                reference: Vec::new(),
                len: content.len() as u64,
            };
            let storage = std::sync::Arc::new(OneBody(content.clone()));
            let split =
                sluice_core::split_body::SplitBody::split(storage, &stored, b"X: 1\r\n", 4096)
                    .await
                    .unwrap()
                    .unwrap();
            let mut sent = Writes::default();
            let body = OutboundBody::Streamed {
                head: &split.head,
                body: &split,
            };
            write_content(&mut sent, body, &CutSwitch::default())
                .await
                .unwrap();
            let whole = [&b"X: 1\r\nReceived: r\r\n"[..], &content].concat();
            assert_eq!(sent.0.len(), writes, "{len} bytes");
            assert_eq!(
                sent.0.concat(),
                crate::smtp::dot_stuffed(&whole),
                "{len} bytes"
            );
        }
    }

    #[test]
    fn any_split_gives_the_same_wire_bytes() {
        let body = b".H: v\r\n\r\n.a\r\n\n.b\r\nc.\r\n.\r\n";
        let expected = crate::smtp::dot_stuffed(body);
        for at in 0..=body.len() {
            let mut wire = WireChunks::default();
            let mut out = wire.push(&body[..at]);
            out.extend(wire.push(&body[at..]));
            wire.finish_into(&mut out);
            assert_eq!(out, expected, "split at {at}");
        }
    }
}
