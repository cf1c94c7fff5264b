//! `[capture]`: the capture sandbox's tools that reach a server the operator runs.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaptureConfig {
    /// SpamAssassin's `spamd` (`host:port`) for the spam check of captured mail
    /// (`GET /api/v1/messages/{id}/checks/spam`); unset: no spam check. The operator's
    /// server: it is not a tenant's destination.
    pub spamd: Option<String>,
    /// How long one spam check may take.
    pub spamd_timeout_secs: u64,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            spamd: None,
            spamd_timeout_secs: 15,
        }
    }
}
