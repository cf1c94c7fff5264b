//! Bodies read back for delivery. A large stored message goes to an SMTP upstream as it is
//! read ([`DeliveryBody::Split`]: its header section in memory, the rest read a chunk at a
//! time); the services that need the whole message get it loaded, and how many bytes of
//! stored bodies are loaded at once is bounded (`delivery.max_bodies_in_memory_bytes`): a
//! delivery waits for its share, and one body larger than the whole budget goes alone.

use std::sync::Arc;

use sluice_core::body::{BODY_CHUNK, read_whole};
use sluice_core::split_body::SplitBody;
use sluice_core::{BodyError, BodyStorage, MessageBody};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Stored messages larger than this are split and streamed; smaller ones are loaded whole
/// (a read or a few, within the budget), which is cheaper than reading the first chunk
/// twice.
pub const STREAM_OVER: u64 = 4 * BODY_CHUNK as u64;

/// A header section longer than this is not split off: the message is loaded whole.
const HEADER_CAP: usize = 1024 * 1024;

pub struct BodyBudget {
    storage: Option<Arc<dyn BodyStorage>>,
    bytes: Arc<Semaphore>,
    limit: usize,
}

/// A body loaded for delivery; its share of the budget is held until it is dropped.
pub struct LoadedBody {
    pub bytes: Vec<u8>,
    _share: Option<OwnedSemaphorePermit>,
}

/// A message as one delivery attempt holds it, the relay's delivery headers first.
pub enum DeliveryBody {
    Whole(LoadedBody),
    Split(SplitBody),
}

impl std::fmt::Debug for DeliveryBody {
    /// Lengths only: a body is never logged.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeliveryBody::Whole(loaded) => write!(f, "Whole({} bytes)", loaded.bytes.len()),
            DeliveryBody::Split(split) => write!(f, "{split:?}"),
        }
    }
}

impl DeliveryBody {
    /// The header section (and, when whole, the rest): enough for header fields.
    pub fn headers(&self) -> &[u8] {
        match self {
            DeliveryBody::Whole(loaded) => &loaded.bytes,
            DeliveryBody::Split(split) => &split.head,
        }
    }

    /// Length of the whole message.
    pub fn len(&self) -> u64 {
        match self {
            DeliveryBody::Whole(loaded) => loaded.bytes.len() as u64,
            DeliveryBody::Split(split) => split.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A whole message with no share of the budget (tests, small bodies).
    pub fn whole(bytes: Vec<u8>) -> Self {
        DeliveryBody::Whole(LoadedBody {
            bytes,
            _share: None,
        })
    }
}

impl BodyBudget {
    pub fn new(storage: Option<Arc<dyn BodyStorage>>, limit: usize) -> Self {
        let limit = limit.clamp(1, u32::MAX as usize);
        BodyBudget {
            storage,
            bytes: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }

    /// The whole message; a stored one once its bytes fit in the budget.
    pub async fn load(&self, body: &MessageBody) -> Result<LoadedBody, BodyError> {
        let share = match body {
            MessageBody::Inline(bytes) => {
                return Ok(LoadedBody {
                    bytes: bytes.clone(),
                    _share: None,
                });
            }
            MessageBody::Stored(_) => self.share(body.len()).await?,
        };
        let bytes = read_whole(self.storage.as_deref(), body).await?;
        Ok(LoadedBody {
            bytes,
            _share: Some(share),
        })
    }

    /// The message for one delivery, `prefix` (the relay's delivery headers) first: split
    /// when stored and larger than [`STREAM_OVER`], else loaded whole.
    pub async fn prepare(
        &self,
        body: &MessageBody,
        prefix: Option<String>,
    ) -> Result<DeliveryBody, BodyError> {
        let prefix = prefix.unwrap_or_default();
        if let (MessageBody::Stored(stored), Some(storage)) = (body, &self.storage)
            && stored.len > STREAM_OVER
            && let Some(split) =
                SplitBody::split(storage.clone(), stored, prefix.as_bytes(), HEADER_CAP).await?
        {
            return Ok(DeliveryBody::Split(split));
        }
        let mut loaded = self.load(body).await?;
        if !prefix.is_empty() {
            loaded.bytes.splice(0..0, prefix.into_bytes());
        }
        Ok(DeliveryBody::Whole(loaded))
    }

    /// A split message whole, for a provider that needs it so, within the budget.
    pub async fn load_split(&self, split: &SplitBody) -> Result<LoadedBody, BodyError> {
        let share = self.share(split.len()).await?;
        let bytes = split.read_whole().await?;
        Ok(LoadedBody {
            bytes,
            _share: Some(share),
        })
    }

    async fn share(&self, len: u64) -> Result<OwnedSemaphorePermit, BodyError> {
        let want = (len as usize).clamp(1, self.limit);
        self.bytes
            .clone()
            .acquire_many_owned(want as u32)
            .await
            .map_err(|_| BodyError::Unavailable("the body budget is closed".into()))
    }

    /// Bytes of the budget free now (for tests and metrics).
    pub fn available(&self) -> usize {
        self.bytes.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn inline_bodies_take_no_share_and_stored_ones_wait_for_theirs() {
        let budget = BodyBudget::new(None, 100);
        let loaded = budget
            .load(&MessageBody::Inline(b"hello".to_vec()))
            .await
            .unwrap();
        assert_eq!(loaded.bytes, b"hello");
        assert_eq!(budget.available(), 100);
        // A stored body with no storage to read it from: an error, and its share given back.
        let stored = MessageBody::Stored(sluice_core::StoredBody {
            head: Vec::new(),
            reference: vec![1],
            len: 80,
        });
        assert!(budget.load(&stored).await.is_err());
        assert_eq!(budget.available(), 100);
    }
}
