//! What `/api/v1` answers about audit (see `routes::audit`).

use serde::{Deserialize, Serialize};
use sluice_store::AuditRow;
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

impl From<AuditRow> for AuditView {
    fn from(a: AuditRow) -> Self {
        AuditView {
            id: a.id,
            account_id: a.account_id,
            actor: a.actor,
            action: a.action,
            target_type: a.target_type,
            target_id: a.target_id,
            changes: a.changes,
            source_ip: a.source_ip,
            created_at: a.created_at,
        }
    }
}
