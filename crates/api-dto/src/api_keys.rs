//! What `/api/v1` answers about api keys (see `routes::api_keys`).

use serde::{Deserialize, Serialize};
use sluice_store::ApiKeyRow;
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyView {
    pub id: i64,
    pub account_id: i64,
    pub prefix: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    /// Sandbox mode: what it sends is captured, whatever the account's mode and routing.
    pub sandbox: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedKey {
    pub id: i64,
    pub prefix: String,
    /// Shown once.
    pub api_key: String,
}

impl From<ApiKeyRow> for ApiKeyView {
    fn from(k: ApiKeyRow) -> Self {
        ApiKeyView {
            id: k.id,
            account_id: k.account_id,
            prefix: k.prefix,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
            sandbox: k.sandbox,
        }
    }
}
