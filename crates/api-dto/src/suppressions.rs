//! What `/api/v1` answers about suppressions (see `routes::suppressions`).

use serde::{Deserialize, Serialize};
use sluice_store::SuppressionRow;
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

impl From<SuppressionRow> for SuppressionView {
    fn from(r: SuppressionRow) -> Self {
        SuppressionView {
            id: r.id,
            account_id: r.account_id,
            address: r.address,
            reason: r.reason.as_str().into(),
            source: r.source,
            created_at: r.created_at,
            expires_at: r.expires_at,
        }
    }
}
