//! Bodies read back for delivery. Every provider gets the whole message in memory, so how
//! many bytes of stored bodies are loaded at once is bounded
//! (`delivery.max_bodies_in_memory_bytes`): a delivery waits for its share, and one body
//! larger than the whole budget goes alone.

use std::sync::Arc;

use sluice_core::body::read_whole;
use sluice_core::{BodyError, BodyStorage, MessageBody};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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
            MessageBody::Stored(_) => {
                let want = (body.len() as usize).clamp(1, self.limit);
                self.bytes
                    .clone()
                    .acquire_many_owned(want as u32)
                    .await
                    .map_err(|_| BodyError::Unavailable("the body budget is closed".into()))?
            }
        };
        let bytes = read_whole(self.storage.as_deref(), body).await?;
        Ok(LoadedBody {
            bytes,
            _share: Some(share),
        })
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
