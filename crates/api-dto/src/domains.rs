//! What `/api/v1` answers about domains (see `routes::domains`).

use serde::{Deserialize, Serialize};
use sluice_core::sender_domain::{self, Check};
use sluice_store::DomainRow;
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

impl From<DomainRow> for DomainView {
    fn from(row: DomainRow) -> Self {
        let checked = |key: &str| -> RecordStatus {
            let found: Option<Check> = row
                .checks
                .get(key)
                .and_then(|c| serde_json::from_value(c.clone()).ok());
            match found {
                Some(check) => RecordStatus {
                    status: check.status.as_str().into(),
                    detail: check.detail,
                },
                None => RecordStatus {
                    status: sender_domain::CheckStatus::Missing.as_str().into(),
                    detail: format!(
                        "not checked yet: POST /api/v1/domains/{}/verify checks DNS",
                        row.id
                    ),
                },
            }
        };
        let (spf, dkim, dmarc) = (checked("spf"), checked("dkim"), checked("dmarc"));
        let detail = match (&row.verified_how, checked("ownership")) {
            (Some(how), _) => format!("verified ({how})"),
            (None, found) if row.checked_at.is_some() => found.detail,
            (None, _) => format!(
                "publish the TXT record, then POST /api/v1/domains/{}/verify",
                row.id
            ),
        };
        DomainView {
            verification: VerificationRecord {
                name: sender_domain::verification_name(&row.domain),
                record_type: "TXT".into(),
                value: sender_domain::verification_value(&row.token),
            },
            id: row.id,
            account_id: row.account_id,
            domain: row.domain,
            verified: row.verified,
            verified_how: row.verified_how,
            verified_at: row.verified_at,
            detail,
            spf,
            dkim,
            dmarc,
            checked_at: row.checked_at,
            created_at: row.created_at,
        }
    }
}
