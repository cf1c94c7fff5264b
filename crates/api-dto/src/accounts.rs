//! What `/api/v1` answers about accounts (see `routes::accounts`).

use serde::{Deserialize, Serialize};
use sluice_store::Account;
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AccountView {
    pub id: i64,
    pub name: String,
    pub email: String,
    /// The account's verified sender domains: read-only, managed at `/api/v1/domains`.
    pub allowed_domains: Vec<String>,
    pub monthly_limit: i64,
    pub allow_any_local_part: bool,
    pub status: String,
    /// Sandbox mode: everything the account sends is captured (status `captured`),
    /// whatever its rules and providers say.
    pub sandbox: bool,
    /// Captured mail kept: at most this many; `null`: the server's default.
    pub capture_retention_count: Option<i64>,
    /// Captured mail kept for at most this many days; `null`: the server's default.
    pub capture_retention_days: Option<i64>,
    /// Where captured mail may be released to (addresses, domains); `null`: anywhere.
    pub capture_release_allowlist: Option<Vec<String>>,
    /// Injected SMTP answers for its sandboxed senders; `null`: none.
    #[schema(value_type = Option<Object>)]
    pub capture_chaos: Option<sluice_core::chaos::ChaosRules>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedAccount {
    pub account: AccountView,
    /// Shown once; only its hash is kept.
    pub api_key: String,
}

impl From<Account> for AccountView {
    fn from(a: Account) -> Self {
        AccountView {
            id: a.id,
            name: a.name,
            email: a.email,
            allowed_domains: a.allowed_domains,
            monthly_limit: a.monthly_limit,
            allow_any_local_part: a.allow_any_local_part,
            status: a.status.to_string(),
            sandbox: a.sandbox,
            capture_retention_count: a.capture_retention_count,
            capture_retention_days: a.capture_retention_days,
            capture_release_allowlist: a.capture_release_allowlist,
            capture_chaos: a.capture_chaos,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}
