//! What `/api/v1` answers about api keys (see `routes::api_keys`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyView {
    pub id: i64,
    pub account_id: i64,
    pub prefix: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedKey {
    pub id: i64,
    pub prefix: String,
    /// Shown once.
    pub api_key: String,
}
