//! What `/api/v1` answers about dkim keys (see `routes::dkim_keys`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The TXT record that publishes a key.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DnsRecord {
    /// `<selector>._domainkey.<domain>`
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: String,
    pub value: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DkimKeyView {
    pub id: i64,
    pub account_id: i64,
    pub domain: String,
    pub selector: String,
    pub algorithm: String,
    pub enabled: bool,
    pub created_at: i64,
    pub dns_record: DnsRecord,
}
