//! Suppressions (`FeedbackStore`).

use serde::{Deserialize, Serialize};
use sluice_core::{AccountId, SuppressionReason};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SuppressionRow {
    pub id: i64,
    pub account_id: AccountId,
    pub address: String,
    pub reason: SuppressionReason,
    pub source: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}
