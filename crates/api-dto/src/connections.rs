//! What `/api/v1` answers about connections (see `routes::connections`).

use serde::{Deserialize, Serialize};
use sluice_core::ConnectionInfo;
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConnectionView {
    pub id: String,
    pub remote_addr: String,
    pub listener: String,
    pub tls: bool,
    pub account_id: Option<i64>,
    pub user: Option<String>,
    pub mail_from: Option<String>,
    pub recipients: usize,
    pub started_at: i64,
}

impl From<ConnectionInfo> for ConnectionView {
    fn from(c: ConnectionInfo) -> Self {
        ConnectionView {
            id: c.id,
            remote_addr: c.remote_addr,
            listener: c.listener,
            tls: c.tls,
            account_id: c.account_id,
            user: c.user,
            mail_from: c.mail_from,
            recipients: c.recipients,
            started_at: c.started_at,
        }
    }
}
