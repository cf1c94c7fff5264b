//! Providers, rules, templates and DKIM keys (`RoutingStore`).

use serde::{Deserialize, Serialize};
use sluice_core::router::WeightedProvider;
use sluice_core::{AccountId, ProviderType};

/// A provider as stored: public settings in the clear, secret settings sealed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProviderRow {
    pub id: i64,
    /// `None`: system-wide.
    pub account_id: Option<AccountId>,
    pub name: String,
    pub provider_type: ProviderType,
    pub config: serde_json::Value,
    /// `v1.` + base64 AES-256-GCM; never leaves the server.
    #[serde(skip)]
    pub secrets: String,
    pub enabled: bool,
    pub priority: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewProvider {
    pub account_id: Option<AccountId>,
    pub name: String,
    pub provider_type: ProviderType,
    pub config: serde_json::Value,
    pub secrets: String,
    pub enabled: bool,
    pub priority: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuleRow {
    pub id: i64,
    pub account_id: AccountId,
    pub name: String,
    pub priority: i64,
    pub conditions: serde_json::Value,
    pub provider_id: i64,
    pub fallbacks: Vec<i64>,
    pub split: Vec<WeightedProvider>,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewRule {
    pub account_id: AccountId,
    pub name: String,
    pub priority: i64,
    pub conditions: serde_json::Value,
    pub provider_id: i64,
    pub fallbacks: Vec<i64>,
    pub split: Vec<WeightedProvider>,
    pub enabled: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TemplateRow {
    pub id: i64,
    /// `None`: system-wide.
    pub account_id: Option<AccountId>,
    pub name: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewTemplate {
    pub account_id: Option<AccountId>,
    pub name: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
}

/// A DKIM key: the private half sealed, the DNS record to publish in the clear.
#[derive(Debug, Clone)]
pub struct DkimKeyRow {
    pub id: i64,
    pub account_id: AccountId,
    pub domain: String,
    pub selector: String,
    pub algorithm: String,
    /// Sealed PKCS#8 DER; never leaves the server.
    pub private_key: String,
    pub dns_record: String,
    pub enabled: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewDkimKey {
    pub account_id: AccountId,
    pub domain: String,
    pub selector: String,
    pub algorithm: String,
    pub private_key: String,
    pub dns_record: String,
}
