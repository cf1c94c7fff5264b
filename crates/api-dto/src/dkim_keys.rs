//! What `/api/v1` answers about dkim keys (see `routes::dkim_keys`).

use serde::{Deserialize, Serialize};
use sluice_store::DkimKeyRow;
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

impl From<DkimKeyRow> for DkimKeyView {
    fn from(r: DkimKeyRow) -> Self {
        DkimKeyView {
            dns_record: DnsRecord {
                name: format!("{}._domainkey.{}", r.selector, r.domain),
                record_type: "TXT".into(),
                value: r.dns_record,
            },
            id: r.id,
            account_id: r.account_id,
            domain: r.domain,
            selector: r.selector,
            algorithm: r.algorithm,
            enabled: r.enabled,
            created_at: r.created_at,
        }
    }
}
