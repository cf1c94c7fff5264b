//! What `/api/v1` answers about mailbox servers (see `routes::mailbox_servers`).

use serde::{Deserialize, Serialize};
use sluice_store::MailboxServerRow;
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

impl From<MailboxServerRow> for MailboxServerView {
    fn from(r: MailboxServerRow) -> Self {
        MailboxServerView {
            id: r.id,
            name: r.name,
            protocol: r.protocol,
            host: r.host,
            port: r.port,
            security: r.security,
            username: r.username,
            skip_tls_verify: r.skip_tls_verify,
            created_at: r.created_at,
        }
    }
}
