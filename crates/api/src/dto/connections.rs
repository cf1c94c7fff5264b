//! What `/api/v1` answers about connections (see `routes::connections`).

use serde::{Deserialize, Serialize};
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
