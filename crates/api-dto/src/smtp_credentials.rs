//! What `/api/v1` answers about smtp credentials (see `routes::smtp_credentials`).

use serde::{Deserialize, Serialize};
use sluice_store::SmtpCredential;
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CredentialView {
    pub id: i64,
    pub account_id: i64,
    pub username: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    /// Sandbox mode: what it sends is captured, whatever the account's mode and routing.
    pub sandbox: bool,
}

impl From<SmtpCredential> for CredentialView {
    fn from(c: SmtpCredential) -> Self {
        CredentialView {
            id: c.id,
            account_id: c.account_id,
            username: c.username,
            created_at: c.created_at,
            revoked_at: c.revoked_at,
            sandbox: c.sandbox,
        }
    }
}
