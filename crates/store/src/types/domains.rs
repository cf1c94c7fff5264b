//! Sender domains (`DomainStore`).

use sluice_core::AccountId;

/// A sender domain of an account (table `domains`). Only verified rows are usable for
/// sending; `token` is what the account publishes as `_sluice.<domain> TXT
/// "sluice-verify=<token>"`.
#[derive(Debug, Clone)]
pub struct DomainRow {
    pub id: i64,
    pub account_id: AccountId,
    /// Lower case, no trailing dot.
    pub domain: String,
    pub token: String,
    pub verified: bool,
    pub verified_at: Option<i64>,
    /// `dns`, `admin` or `migration`; `None` while unverified.
    pub verified_how: Option<String>,
    /// The last DNS check (SPF, DKIM, DMARC) as the API shows it; `{}` before the first.
    pub checks: serde_json::Value,
    pub checked_at: Option<i64>,
    pub created_at: i64,
}
