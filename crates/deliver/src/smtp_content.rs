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
    held: Vec<u8>,
    at_line_start: bool,
}

impl Default for WireChunks {
    fn default() -> Self {
        WireChunks {
            held: Vec::new(),
            at_line_start: true,
        }
    }
}

impl WireChunks {
    /// The wire bytes of `chunk` (and of what was held) that can go now.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut input = std::mem::take(&mut self.held);
        input.extend_from_slice(chunk);
        let ready = input.len() - input.len().min(2);
        let mut out = Vec::with_capacity(ready + ready / 512 + 8);
        self.stuff(&input[..ready], &mut out);
        self.held = input[ready..].to_vec();
        out
    }

    /// What was held back, without a final CRLF, and the end mark.
    pub(crate) fn finish(&mut self) -> Vec<u8> {
        let held = std::mem::take(&mut self.held);
        let tail = held.strip_suffix(b"\r\n").unwrap_or(&held);
        let mut out = Vec::with_capacity(tail.len() + 6);
        self.stuff(tail, &mut out);
        out.extend_from_slice(b"\r\n.\r\n");
        out
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

/// Writes `body` (stuffed, with the end mark) to `stream` and flushes it.
pub(crate) async fn write_content<W: AsyncWrite + Unpin>(
    stream: &mut W,
    body: OutboundBody<'_>,
    cut: &CutSwitch,
) -> Result<(), ContentError> {
    if let OutboundBody::Whole(bytes) = body
        && bytes.len() <= BODY_CHUNK
    {
        // A short message in one write.
        write(stream, &crate::smtp::dot_stuffed(bytes)).await?;
        return stream.flush().await.map_err(ContentError::Write);
    }
    let mut wire = WireChunks::default();
    let (head, split) = match body {
        OutboundBody::Whole(bytes) => (bytes, None),
        OutboundBody::Streamed { head, body } => (head, Some(body)),
    };
    for piece in head.chunks(BODY_CHUNK) {
        write(stream, &wire.push(piece)).await?;
    }
    if let Some(split) = split {
        let unreadable = |error: sluice_core::BodyError| {
            warn!(%error, "message body unreadable while sending; connection cut");
            cut.cut();
            ContentError::Unreadable(error.to_string())
        };
        let mut rest = split.rest().await.map_err(unreadable)?;
        while let Some(chunk) = rest.next_chunk().await.map_err(unreadable)? {
            write(stream, &wire.push(&chunk)).await?;
        }
    }
    write(stream, &wire.finish()).await?;
    stream.flush().await.map_err(ContentError::Write)
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

    #[test]
    fn any_split_gives_the_same_wire_bytes() {
        let body = b".H: v\r\n\r\n.a\r\n\n.b\r\nc.\r\n.\r\n";
        let expected = crate::smtp::dot_stuffed(body);
        for at in 0..=body.len() {
            let mut wire = WireChunks::default();
            let mut out = wire.push(&body[..at]);
            out.extend(wire.push(&body[at..]));
            out.extend(wire.finish());
            assert_eq!(out, expected, "split at {at}");
        }
    }
}
