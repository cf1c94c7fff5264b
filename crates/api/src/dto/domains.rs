//! What `/api/v1` answers about domains (see `routes::domains`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The TXT record that proves the account owns the domain.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VerificationRecord {
    /// `_sluice.<domain>`
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: String,
    /// `sluice-verify=<token>`
    pub value: String,
}

/// What the last DNS check found for one record.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecordStatus {
    /// `ok`, `missing` or `invalid`.
    pub status: String,
    pub detail: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DomainView {
    pub id: i64,
    pub account_id: i64,
    pub domain: String,
    /// Usable for sending.
    pub verified: bool,
    /// `dns`, `admin` or `migration`.
    pub verified_how: Option<String>,
    pub verified_at: Option<i64>,
    pub verification: VerificationRecord,
    /// What the last check found of the verification record.
    pub detail: String,
    pub spf: RecordStatus,
    pub dkim: RecordStatus,
    pub dmarc: RecordStatus,
    /// When DNS was last checked (`POST /domains/{id}/verify`).
    pub checked_at: Option<i64>,
    pub created_at: i64,
}
