//! What `/api/v1` answers about suppressions (see `routes::suppressions`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SuppressionView {
    pub id: i64,
    pub account_id: i64,
    pub address: String,
    pub reason: String,
    pub source: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}
