//! What `/api/v1` answers about audit (see `routes::audit`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditView {
    pub id: i64,
    pub account_id: Option<i64>,
    pub actor: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub changes: serde_json::Value,
    pub source_ip: Option<String>,
    pub created_at: i64,
}
