//! The port the POP3 server reads mail through: an account's captured messages. The binary
//! implements it over the store; every read and delete names the account, so the
//! implementation checks each id's owner again and never trusts the listing for it.

use async_trait::async_trait;
use sluice_core::AccountId;
use thiserror::Error;

use crate::session::MaildropEntry;

/// The maildrop could not be reached (the store failed); the client hears `[SYS/TEMP]`.
#[derive(Debug, Error)]
#[error("maildrop unavailable: {0}")]
pub struct MaildropError(pub String);

#[async_trait]
pub trait CapturedMailbox: Send + Sync + 'static {
    /// The account's captured messages, oldest first, each with the exact octet count its
    /// RETR sends (before byte-stuffing); at most `limit`, the newest ones.
    async fn list(
        &self,
        account: AccountId,
        limit: usize,
    ) -> Result<Vec<MaildropEntry>, MaildropError>;

    /// Message `id` whole, or `None` unless it is a captured message of `account`.
    async fn read(&self, account: AccountId, id: i64) -> Result<Option<Vec<u8>>, MaildropError>;

    /// Deletes those of `ids` that are captured messages of `account`; how many were
    /// deleted (ids gone already are not counted, and are no error).
    async fn delete(&self, account: AccountId, ids: &[i64]) -> Result<usize, MaildropError>;
}
