//! A message's bytes, and the port to the store that keeps large ones out of memory.
//!
//! A body arrives in chunks (SMTP DATA/BDAT) or whole (the HTTP API). Small bodies stay in
//! memory and in the message's row; large ones are written to the [`BodyStorage`] as they
//! arrive, never held whole, and the row keeps only a reference to them. Every message is
//! `head` (the trace and staging headers this relay adds, small) then its content.

use async_trait::async_trait;

/// Most bytes one write or read of a stored body moves, and what an ingress buffers
/// before it writes (64 KiB).
pub const BODY_CHUNK: usize = 64 * 1024;

/// A message's bytes: all in memory, or a small head in memory and the content stored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MessageBody {
    Inline(Vec<u8>),
    Stored(StoredBody),
}

impl Default for MessageBody {
    fn default() -> Self {
        MessageBody::Inline(Vec::new())
    }
}

/// A body written to the [`BodyStorage`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredBody {
    /// Bytes that come before the stored content (the Received header, staging headers).
    pub head: Vec<u8>,
    /// The body storage's reference to the content; opaque outside the store.
    pub reference: Vec<u8>,
    /// Length of the stored content, without `head`.
    pub len: u64,
}

impl MessageBody {
    /// Length of the whole message, head included.
    pub fn len(&self) -> u64 {
        match self {
            MessageBody::Inline(bytes) => bytes.len() as u64,
            MessageBody::Stored(stored) => stored.head.len() as u64 + stored.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Puts `header` before everything else.
    pub fn prepend(&mut self, header: &[u8]) {
        let head = match self {
            MessageBody::Inline(bytes) => bytes,
            MessageBody::Stored(stored) => &mut stored.head,
        };
        head.splice(0..0, header.iter().copied());
    }

    /// The whole message, when it is in memory.
    pub fn as_inline(&self) -> Option<&[u8]> {
        match self {
            MessageBody::Inline(bytes) => Some(bytes),
            MessageBody::Stored(_) => None,
        }
    }

    /// The stored content's reference, if the content is stored.
    pub fn reference(&self) -> Option<&[u8]> {
        match self {
            MessageBody::Inline(_) => None,
            MessageBody::Stored(stored) => Some(&stored.reference),
        }
    }
}

/// Why a stored body could not be written or read.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    /// The disk failed the write or its sync, or is full: nothing is promised (452 / 507).
    #[error("body storage failed: {0}")]
    Storage(String),
    /// The store that holds bodies cannot be reached now (try again later).
    #[error("body storage unavailable: {0}")]
    Unavailable(String),
    /// A reference or stored bytes that do not read back as written.
    #[error("stored body is corrupt: {0}")]
    Corrupt(String),
}

/// Writes one body as it arrives. Dropping a writer before [`BodyWriter::finish`] gives
/// back what it wrote.
#[async_trait]
pub trait BodyWriter: Send + Sync {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), BodyError>;
    /// The reference and the length written. Not durable yet: the queue commit makes it so
    /// (`BodyStorage::sync`) before the row that names it commits.
    async fn finish(self: Box<Self>) -> Result<(Vec<u8>, u64), BodyError>;
}

/// Reads one stored body back, a chunk at a time.
#[async_trait]
pub trait BodyReader: Send {
    /// The next at most [`BODY_CHUNK`] bytes, or `None` at the end.
    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, BodyError>;
}

/// Where large bodies live: a node's spool of segment files (SQLite), or a table of chunks
/// every node reaches (PostgreSQL).
#[async_trait]
pub trait BodyStorage: Send + Sync + 'static {
    async fn writer(&self) -> Result<Box<dyn BodyWriter>, BodyError>;
    async fn reader(&self, reference: &[u8]) -> Result<Box<dyn BodyReader>, BodyError>;
    /// Makes these bodies durable; called before the rows that name them commit.
    async fn sync(&self, references: &[&[u8]]) -> Result<(), BodyError>;
    /// Frees bodies no row names any more: after the change that dropped them committed, or
    /// written for a message that was refused before its commit.
    async fn release(&self, references: Vec<Vec<u8>>);
    /// `sluice keys rotate`: the reference with its data key wrapped again under the
    /// current master key, when it was wrapped under an older one; the stored bytes stay.
    fn rewrap(&self, reference: &[u8]) -> Result<Option<Vec<u8>>, BodyError> {
        let _ = reference;
        Ok(None)
    }
}

/// Cuts a body written in pieces of any size into [`BODY_CHUNK`] chunks for a body store,
/// holding the last one back until [`ChunkBuffer::finish`] says it is the last (a sealed
/// chunk's last flag). Both body stores' writers use it.
#[derive(Debug, Default)]
pub struct ChunkBuffer {
    held: Vec<u8>,
    len: u64,
}

impl ChunkBuffer {
    /// Takes `bytes`; answers the full chunks now known not to be the last.
    pub fn push(&mut self, mut bytes: &[u8]) -> Vec<Vec<u8>> {
        self.len += bytes.len() as u64;
        let mut full = Vec::new();
        while !bytes.is_empty() {
            if self.held.len() == BODY_CHUNK {
                full.push(std::mem::replace(
                    &mut self.held,
                    Vec::with_capacity(BODY_CHUNK),
                ));
            }
            let take = (BODY_CHUNK - self.held.len()).min(bytes.len());
            self.held.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
        full
    }

    /// The last chunk (empty for an empty body) and the body's length.
    pub fn finish(&mut self) -> (Vec<u8>, u64) {
        (std::mem::take(&mut self.held), self.len)
    }
}

/// Writes `content` to `storage` as a body with this `head`.
pub async fn store_body(
    storage: &dyn BodyStorage,
    head: Vec<u8>,
    content: &[u8],
) -> Result<StoredBody, BodyError> {
    let mut writer = storage.writer().await?;
    for chunk in content.chunks(BODY_CHUNK) {
        writer.write(chunk).await?;
    }
    let (reference, len) = writer.finish().await?;
    Ok(StoredBody {
        head,
        reference,
        len,
    })
}

/// The whole message in memory (for the services that need it whole, and the API's view).
pub async fn read_whole(
    storage: Option<&dyn BodyStorage>,
    body: &MessageBody,
) -> Result<Vec<u8>, BodyError> {
    let stored = match body {
        MessageBody::Inline(bytes) => return Ok(bytes.clone()),
        MessageBody::Stored(stored) => stored,
    };
    let storage = storage.ok_or_else(|| {
        BodyError::Unavailable("a stored body, and no body storage configured".into())
    })?;
    let mut whole = Vec::with_capacity(stored.head.len() + stored.len as usize);
    whole.extend_from_slice(&stored.head);
    let mut reader = storage.reader(&stored.reference).await?;
    while let Some(chunk) = reader.next_chunk().await? {
        whole.extend_from_slice(&chunk);
    }
    if whole.len() as u64 != stored.head.len() as u64 + stored.len {
        return Err(BodyError::Corrupt(format!(
            "read {} bytes of a {}-byte body",
            whole.len() - stored.head.len(),
            stored.len
        )));
    }
    Ok(whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_full_but_the_last_which_is_held_back() {
        for (pieces, total) in [
            (vec![0usize], 0usize),
            (vec![BODY_CHUNK], BODY_CHUNK),
            (vec![7, BODY_CHUNK * 2, 3], BODY_CHUNK * 2 + 10),
        ] {
            let mut buffer = ChunkBuffer::default();
            let mut chunks = Vec::new();
            for n in pieces {
                chunks.extend(buffer.push(&vec![1u8; n]));
            }
            let (last, len) = buffer.finish();
            assert_eq!(len as usize, total);
            assert!(chunks.iter().all(|c| c.len() == BODY_CHUNK));
            assert!(last.len() <= BODY_CHUNK && (total == 0 || !last.is_empty()));
            assert_eq!(chunks.len() * BODY_CHUNK + last.len(), total);
        }
    }

    #[test]
    fn prepend_goes_before_inline_bytes_and_before_a_stored_head() {
        let mut inline = MessageBody::Inline(b"Subject: x\r\n\r\nhi".to_vec());
        inline.prepend(b"X-A: 1\r\n");
        assert_eq!(
            inline,
            MessageBody::Inline(b"X-A: 1\r\nSubject: x\r\n\r\nhi".to_vec())
        );
        let mut stored = MessageBody::Stored(StoredBody {
            head: b"Received: r\r\n".to_vec(),
            reference: vec![1],
            len: 10,
        });
        stored.prepend(b"X-A: 1\r\n");
        assert_eq!(stored.len(), 8 + 13 + 10);
        let MessageBody::Stored(stored) = stored else {
            panic!("still stored")
        };
        assert_eq!(stored.head, b"X-A: 1\r\nReceived: r\r\n");
    }
}
