//! What `/api/v1` answers about mailbox servers (see `routes::mailbox_servers`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MailboxServerView {
    pub id: i64,
    pub name: String,
    pub protocol: String,
    pub host: String,
    pub port: i64,
    pub security: String,
    pub username: String,
    pub skip_tls_verify: bool,
    pub created_at: i64,
}
