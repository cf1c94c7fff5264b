//! The POP3 maildrop over the store: an account's captured messages (`sluice_pop3`'s
//! `CapturedMailbox`). Every read and delete loads the message again and checks its
//! account and status, so a session's listing never decides whose mail it may touch.

use std::sync::Arc;

use async_trait::async_trait;
use sluice_core::{AccountId, MessageStatus};
use sluice_pop3::{CapturedMailbox, MaildropEntry, MaildropError};
use sluice_store::{MessageFilter, MessageRecord, Store};

/// Messages per listing query.
const PAGE: i64 = 500;

pub struct StoreMaildrop {
    store: Arc<dyn Store>,
}

impl StoreMaildrop {
    pub fn new(store: Arc<dyn Store>) -> Self {
        StoreMaildrop { store }
    }

    /// The message when it is a captured message of `account`.
    async fn captured(
        &self,
        account: AccountId,
        id: i64,
    ) -> Result<Option<MessageRecord>, MaildropError> {
        let record = self.store.message(id).await.map_err(unavailable)?;
        Ok(record.filter(|m| m.account_id == account && m.status == MessageStatus::Captured))
    }
}

fn unavailable(error: impl std::fmt::Display) -> MaildropError {
    MaildropError(error.to_string())
}

#[async_trait]
impl CapturedMailbox for StoreMaildrop {
    async fn list(
        &self,
        account: AccountId,
        limit: usize,
    ) -> Result<Vec<MaildropEntry>, MaildropError> {
        let mut newest_first: Vec<MaildropEntry> = Vec::new();
        let mut before_id = None;
        while newest_first.len() < limit {
            let page = self
                .store
                .list_messages(&MessageFilter {
                    account_id: Some(account),
                    status: Some(MessageStatus::Captured),
                    before_id,
                    limit: PAGE.min((limit - newest_first.len()) as i64),
                    ..Default::default()
                })
                .await
                .map_err(unavailable)?;
            let Some(last) = page.last() else { break };
            before_id = Some(last.id);
            let full = page.len() as i64 == PAGE;
            // The stored size is the whole message (head included), as RETR sends it.
            newest_first.extend(page.iter().map(|m| MaildropEntry {
                id: m.id,
                size: m.size.max(0) as u64,
            }));
            if !full {
                break;
            }
        }
        newest_first.truncate(limit);
        newest_first.reverse();
        Ok(newest_first)
    }

    async fn read(&self, account: AccountId, id: i64) -> Result<Option<Vec<u8>>, MaildropError> {
        // One whose body retention emptied is gone to RETR (DELE still removes it).
        let Some(record) = self
            .captured(account, id)
            .await?
            .filter(|m| m.body_purged_at.is_none())
        else {
            return Ok(None);
        };
        let storage = self.store.body_storage();
        sluice_core::body::read_whole(storage.as_deref(), &record.body)
            .await
            .map(Some)
            .map_err(unavailable)
    }

    async fn delete(&self, account: AccountId, ids: &[i64]) -> Result<usize, MaildropError> {
        let mut deleted = 0;
        for &id in ids {
            if self.captured(account, id).await?.is_none() {
                continue;
            }
            if self
                .store
                .delete_captured_message(id)
                .await
                .map_err(unavailable)?
            {
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}
