//! Settings an admin changes at run time (the panel's Settings page, `PUT /api/v1/settings`):
//! kept in the database (`settings` key `runtime`), so every node applies them; each node
//! reads them every couple of seconds (`watch_runtime_settings`) and publishes them on a
//! watch channel the webhook receiver and the log filter follow. A field left unset means
//! "as the config file says".

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sluice_store::Store;
use tokio::sync::watch;

/// The key in the `settings` table.
pub const RUNTIME_KEY: &str = "runtime";

/// What is stored (the webhook secret sealed under the master key).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRuntime {
    pub log_level: Option<String>,
    pub webhook_enabled: Option<bool>,
    pub webhook_secret_sealed: Option<String>,
    pub webhook_timestamp_window_secs: Option<u64>,
}

/// What the node applies (the secret opened).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RuntimeSettings {
    pub log_level: Option<String>,
    pub webhook_enabled: Option<bool>,
    pub webhook_secret: Option<String>,
    pub webhook_timestamp_window_secs: Option<u64>,
}

impl std::fmt::Debug for RuntimeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeSettings")
            .field("log_level", &self.log_level)
            .field("webhook_enabled", &self.webhook_enabled)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "********"),
            )
            .field(
                "webhook_timestamp_window_secs",
                &self.webhook_timestamp_window_secs,
            )
            .finish()
    }
}

/// Log levels an admin may set: one level, or `target=level` directives joined by commas.
pub fn valid_log_level(text: &str) -> bool {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    !text.is_empty()
        && text.len() <= 200
        && text.split(',').all(|directive| {
            let level = directive.rsplit('=').next().unwrap_or("");
            let target_ok = directive.split_once('=').is_none_or(|(target, _)| {
                !target.is_empty()
                    && target
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            });
            LEVELS.contains(&level) && target_ok
        })
}

/// Reads the stored settings every `every` and publishes them when they change. A row that
/// does not parse or a secret that does not open is logged and skipped; the last good
/// settings stay in force.
pub async fn watch_runtime_settings(
    store: Arc<dyn Store>,
    master_key: Arc<sluice_core::sealed::MasterKey>,
    publish: watch::Sender<RuntimeSettings>,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        match store.setting(RUNTIME_KEY).await {
            Ok(Some(text)) => match open(&text, &master_key) {
                Ok(settings) => {
                    publish.send_if_modified(|current| {
                        let changed = *current != settings;
                        if changed {
                            tracing::info!(?settings, "runtime settings applied");
                            *current = settings;
                        }
                        changed
                    });
                }
                Err(error) => {
                    tracing::error!(%error, "runtime settings unreadable; keeping the last good ones")
                }
            },
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "runtime settings not read"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

/// Parses a stored row and opens its secret.
pub fn open(
    text: &str,
    master_key: &sluice_core::sealed::MasterKey,
) -> Result<RuntimeSettings, String> {
    let stored: StoredRuntime = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let webhook_secret = match &stored.webhook_secret_sealed {
        None => None,
        Some(sealed) => {
            let plain = master_key.open(sealed).map_err(|e| e.to_string())?;
            Some(
                String::from_utf8(plain)
                    .map_err(|_| "the webhook secret is not text".to_string())?,
            )
        }
    };
    Ok(RuntimeSettings {
        log_level: stored.log_level,
        webhook_enabled: stored.webhook_enabled,
        webhook_secret,
        webhook_timestamp_window_secs: stored.webhook_timestamp_window_secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_levels_are_checked() {
        for good in [
            "info",
            "warn",
            "sluice_smtp=debug,info",
            "sluice_http::api=trace",
        ] {
            assert!(valid_log_level(good), "{good}");
        }
        for bad in ["", "loud", "info,", "=info", "a b=info", "info;drop"] {
            assert!(!valid_log_level(bad), "{bad}");
        }
    }

    #[test]
    fn stored_settings_open_with_the_master_key() {
        let key = sluice_core::sealed::MasterKey::from_bytes([7u8; 32]);
        let sealed = key.seal(b"new-secret", [1u8; 12]);
        let text = serde_json::to_string(&StoredRuntime {
            log_level: Some("debug".into()),
            webhook_secret_sealed: Some(sealed),
            ..Default::default()
        })
        .unwrap();
        let settings = open(&text, &key).unwrap();
        assert_eq!(settings.webhook_secret.as_deref(), Some("new-secret"));
        assert!(!format!("{settings:?}").contains("new-secret"));
        let other = sluice_core::sealed::MasterKey::from_bytes([8u8; 32]);
        assert!(open(&text, &other).is_err());
        assert!(open("{not json", &key).is_err());
    }
}
