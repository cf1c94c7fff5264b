//! Mailbox servers, the dashboard and the audit log (`AdminStore`).

use serde::{Deserialize, Serialize};
use sluice_core::{AccountId, Verdict};

/// An IMAP / POP3 server kept for checking; the password stays sealed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MailboxServerRow {
    pub id: i64,
    pub name: String,
    pub protocol: String,
    pub host: String,
    pub port: i64,
    pub security: String,
    pub username: String,
    #[serde(skip_serializing)]
    pub password_sealed: String,
    pub skip_tls_verify: bool,
    pub created_at: i64,
}

/// What the panel's dashboard shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dashboard {
    pub by_status: Vec<(String, i64)>,
    pub hourly: Vec<HourCount>,
    pub providers: Vec<ProviderCount>,
    pub recent_errors: Vec<RecentError>,
}

/// Events of one kind in the hour starting at `hour` (ms).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HourCount {
    pub hour: i64,
    pub kind: String,
    pub count: i64,
}

/// Provider calls of one verdict since the dashboard's start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProviderCount {
    pub provider: String,
    pub verdict: Verdict,
    pub count: i64,
    pub last_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecentError {
    pub message_id: i64,
    pub kind: String,
    pub detail: String,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub account_id: Option<AccountId>,
    /// `user:<id>`, `api_key:<id>` or `cli`.
    pub actor: String,
    /// `create`, `update`, `delete`, `revoke`, `login` ...
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    /// Changed fields; never secrets.
    pub changes: serde_json::Value,
    pub source_ip: Option<String>,
}

/// Which audit entries: every field that is set must match (`None` account: all accounts).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub account_id: Option<AccountId>,
    /// `user:<id>`, `api_key:<id>`, `cli`.
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target_type: Option<String>,
    /// Entries older than this id (the cursor).
    pub before_id: Option<i64>,
    pub limit: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditRow {
    pub id: i64,
    pub account_id: Option<AccountId>,
    pub actor: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub changes: serde_json::Value,
    pub source_ip: Option<String>,
    pub created_at: i64,
}
