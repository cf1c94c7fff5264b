//! What `/api/v1` answers about settings (see `routes::settings`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use sluice_runtime_settings::Overrides;

/// The overrides in force; an absent value means the config file's.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SettingsView {
    pub log_level: Option<String>,
    /// Whether a webhook secret was set here (it is never shown).
    pub webhook_secret_set: bool,
    #[serde(flatten)]
    pub overrides: Overrides,
}
