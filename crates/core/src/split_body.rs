//! A stored message as delivery streams it: its header section in memory (where the relay
//! may change or sign it), the rest read from the [`BodyStorage`] a chunk at a time as it
//! is sent. The header section is what the relay's own headers, the sender name and the
//! DKIM signature touch; the body after it is sent as stored.

use std::sync::Arc;

use crate::body::{BODY_CHUNK, BodyError, BodyReader, BodyStorage, StoredBody};

/// A stored message split for streaming: `head` in memory, then the stored content from
/// byte `skip` on.
pub struct SplitBody {
    /// The relay's headers, the message's own header section and the blank line after it.
    pub head: Vec<u8>,
    storage: Arc<dyn BodyStorage>,
    reference: Vec<u8>,
    /// Bytes at the start of the stored content that are in `head`.
    skip: u64,
    /// Bytes of the stored content from `skip` on.
    rest_len: u64,
}

impl std::fmt::Debug for SplitBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SplitBody")
            .field("head_len", &self.head.len())
            .field("skip", &self.skip)
            .field("rest_len", &self.rest_len)
            .finish()
    }
}

/// Where the header section of `bytes` ends: just after its blank line (`CRLF CRLF`, or
/// a bare `LF LF`), or None when `bytes` holds no end of it yet.
pub fn header_section_end(bytes: &[u8]) -> Option<usize> {
    // A message that starts with its blank line has no header fields.
    if bytes.starts_with(b"\r\n") {
        return Some(2);
    }
    if bytes.starts_with(b"\n") {
        return Some(1);
    }
    let mut from = 0;
    while let Some(at) = memchr::memchr(b'\n', &bytes[from..]) {
        let line_end = from + at + 1;
        match &bytes[line_end..] {
            [b'\r', b'\n', ..] => return Some(line_end + 2),
            [b'\n', ..] => return Some(line_end + 1),
            _ => from = line_end,
        }
    }
    None
}

impl SplitBody {
    /// Reads the stored content's header section into memory, after `prefix` (the relay's
    /// delivery headers) and the stored head. None when the header section does not end
    /// within `header_cap` bytes (the caller then loads the message whole).
    pub async fn split(
        storage: Arc<dyn BodyStorage>,
        stored: &StoredBody,
        prefix: &[u8],
        header_cap: usize,
    ) -> Result<Option<SplitBody>, BodyError> {
        let mut reader = storage.reader(&stored.reference).await?;
        let mut read = Vec::new();
        let end = loop {
            if let Some(end) = header_section_end(&read) {
                break end;
            }
            if read.len() > header_cap {
                return Ok(None);
            }
            match reader.next_chunk().await? {
                Some(chunk) => read.extend_from_slice(&chunk),
                // The whole content is a header section: nothing to stream.
                None => return Ok(None),
            }
        };
        let mut head = Vec::with_capacity(prefix.len() + stored.head.len() + end);
        head.extend_from_slice(prefix);
        head.extend_from_slice(&stored.head);
        head.extend_from_slice(&read[..end]);
        let skip = end as u64;
        Ok(Some(SplitBody {
            head,
            storage,
            reference: stored.reference.clone(),
            skip,
            rest_len: stored.len.saturating_sub(skip),
        }))
    }

    /// Length of the whole message: head and rest.
    pub fn len(&self) -> u64 {
        self.head.len() as u64 + self.rest_len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Length of what follows the head.
    pub fn rest_len(&self) -> u64 {
        self.rest_len
    }

    /// A reader of what follows the head, from its first byte.
    pub async fn rest(&self) -> Result<RestReader, BodyError> {
        Ok(RestReader {
            inner: self.storage.reader(&self.reference).await?,
            skip: self.skip,
            left: self.rest_len,
        })
    }

    /// The whole message in memory: head then rest.
    pub async fn read_whole(&self) -> Result<Vec<u8>, BodyError> {
        let mut whole = Vec::with_capacity(self.len() as usize);
        whole.extend_from_slice(&self.head);
        let mut rest = self.rest().await?;
        while let Some(chunk) = rest.next_chunk().await? {
            whole.extend_from_slice(&chunk);
        }
        Ok(whole)
    }
}

/// The stored content after a [`SplitBody`]'s head, a chunk of at most [`BODY_CHUNK`]
/// bytes at a time; a body that reads back shorter or longer than stored is an error, so
/// a truncated message is never sent as if whole.
pub struct RestReader {
    inner: Box<dyn BodyReader>,
    skip: u64,
    left: u64,
}

impl RestReader {
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, BodyError> {
        loop {
            let Some(mut chunk) = self.inner.next_chunk().await? else {
                if self.left != 0 || self.skip != 0 {
                    return Err(BodyError::Corrupt(format!(
                        "the stored body ended {} bytes early",
                        self.left + self.skip
                    )));
                }
                return Ok(None);
            };
            if self.skip > 0 {
                let drop = (self.skip as usize).min(chunk.len());
                chunk.drain(..drop);
                self.skip -= drop as u64;
            }
            if chunk.is_empty() {
                continue;
            }
            if chunk.len() as u64 > self.left {
                return Err(BodyError::Corrupt(
                    "the stored body is longer than its row says".into(),
                ));
            }
            self.left -= chunk.len() as u64;
            debug_assert!(chunk.len() <= BODY_CHUNK);
            return Ok(Some(chunk));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_section_ends_after_its_blank_line() {
        let table: [(&[u8], Option<usize>); 7] = [
            (b"A: b\r\n\r\nbody", Some(8)),
            (b"A: b\r\nC: d\r\n\r\n", Some(14)),
            (b"A: b\n\nbody", Some(6)),
            (b"\r\nbody", Some(2)),
            (b"A: b\r\n folded\r\n\r\nx", Some(17)),
            (b"A: b\r\nC: d\r\n", None),
            (b"A: b\r\n\r", None),
        ];
        for (bytes, end) in table {
            assert_eq!(
                header_section_end(bytes),
                end,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}
