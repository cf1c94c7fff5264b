//! What `/api/v1` answers about smtp credentials (see `routes::smtp_credentials`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CredentialView {
    pub id: i64,
    pub account_id: i64,
    pub username: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}
