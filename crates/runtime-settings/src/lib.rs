//! Settings an admin changes at run time (the panel's Settings page, `PUT /api/v1/settings`):
//! kept in the database (`settings` key `runtime`), so every node applies them; each node
//! reads them every couple of seconds (`watch_runtime_settings`) and publishes them on a
//! watch channel that the webhook receiver and the binary (log filter, API rate limits,
//! delivery mode) follow. A field left unset means
//! "as the config file says".

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sluice_store::Store;
use tokio::sync::watch;

/// The key in the `settings` table.
pub const RUNTIME_KEY: &str = "runtime";

/// The settings an admin may override (not secret): the webhook's, the API's rate limits
/// and the delivery mode; `None` keeps the config file's value. Flattened into the stored
/// row, the API's view and its update.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Overrides {
    pub webhook_enabled: Option<bool>,
    /// 1 to 86,400.
    pub webhook_timestamp_window_secs: Option<u64>,
    /// Callers allowed (CIDRs); an empty list allows any.
    #[schema(value_type = Option<Vec<String>>)]
    pub webhook_allowed_ips: Option<Vec<ipnet::IpNet>>,
    /// Calls per minute per caller IP (1 to 1,000,000).
    pub webhook_rate_limit_per_minute: Option<u32>,
    /// The domain of the From address.
    pub webhook_sender_domain: Option<String>,
    pub webhook_default_local_part: Option<String>,
    /// Let callers choose the local part (`fromLocalPart`).
    pub webhook_allow_any_local_part: Option<bool>,
    /// Base of the links the webhook builds.
    pub webhook_public_web_url: Option<String>,
    /// API requests per minute per caller (1 to 1,000,000).
    pub api_rate_limit_per_minute: Option<u32>,
    /// Sends per hour per `rate_limit_key` (1 to 1,000,000).
    pub api_send_rate_limit_per_key_per_hour: Option<u32>,
    /// `async` (250 once stored) or `sync` (250 once the upstream took it).
    pub delivery_mode: Option<String>,
}

/// The names `reset` accepts, besides `log_level` and `webhook_secret`.
pub const OVERRIDE_FIELDS: [&str; 11] = [
    "webhook_enabled",
    "webhook_timestamp_window_secs",
    "webhook_allowed_ips",
    "webhook_rate_limit_per_minute",
    "webhook_sender_domain",
    "webhook_default_local_part",
    "webhook_allow_any_local_part",
    "webhook_public_web_url",
    "api_rate_limit_per_minute",
    "api_send_rate_limit_per_key_per_hour",
    "delivery_mode",
];

impl Overrides {
    /// Why a value would not do, if one would not.
    pub fn check(&self) -> Result<(), String> {
        if let Some(window) = self.webhook_timestamp_window_secs
            && !(1..=86_400).contains(&window)
        {
            return Err("webhook_timestamp_window_secs is 1 to 86400".into());
        }
        if let Some(rate) = self.webhook_rate_limit_per_minute
            && !(1..=1_000_000).contains(&rate)
        {
            return Err("webhook_rate_limit_per_minute is 1 to 1000000".into());
        }
        if let Some(domain) = &self.webhook_sender_domain
            && sluice_core::validate_mailbox(&format!("a@{domain}")).is_err()
        {
            return Err("webhook_sender_domain is not a domain".into());
        }
        if let Some(local) = &self.webhook_default_local_part
            && sluice_core::validate_mailbox(&format!("{local}@example.com")).is_err()
        {
            return Err("webhook_default_local_part is not a local part".into());
        }
        if let Some(url) = &self.webhook_public_web_url
            && !url.is_empty()
            && let Err(problem) = sluice_core::web_url::check_web_url(url)
        {
            return Err(format!(
                "webhook_public_web_url must be an absolute http(s) URL: {problem}"
            ));
        }
        for (name, rate) in [
            ("api_rate_limit_per_minute", self.api_rate_limit_per_minute),
            (
                "api_send_rate_limit_per_key_per_hour",
                self.api_send_rate_limit_per_key_per_hour,
            ),
        ] {
            if rate.is_some_and(|rate| !(1..=1_000_000).contains(&rate)) {
                return Err(format!("{name} is 1 to 1000000"));
            }
        }
        if let Some(mode) = &self.delivery_mode
            && mode.parse::<sluice_core::DeliveryMode>().is_err()
        {
            return Err("delivery_mode is async or sync".into());
        }
        Ok(())
    }

    /// Takes the values `update` sets; the names of those it took.
    pub fn take(&mut self, update: &Overrides) -> Vec<&'static str> {
        let mut changed = Vec::new();
        macro_rules! take {
            ($($field:ident),*) => {$(
                if let Some(value) = &update.$field {
                    self.$field = Some(value.clone());
                    changed.push(stringify!($field));
                }
            )*};
        }
        take!(
            webhook_enabled,
            webhook_timestamp_window_secs,
            webhook_allowed_ips,
            webhook_rate_limit_per_minute,
            webhook_sender_domain,
            webhook_default_local_part,
            webhook_allow_any_local_part,
            webhook_public_web_url,
            api_rate_limit_per_minute,
            api_send_rate_limit_per_key_per_hour,
            delivery_mode
        );
        changed
    }

    /// Back to the config file's value; false for a name it does not know.
    pub fn reset(&mut self, field: &str) -> bool {
        match field {
            "webhook_enabled" => self.webhook_enabled = None,
            "webhook_timestamp_window_secs" => self.webhook_timestamp_window_secs = None,
            "webhook_allowed_ips" => self.webhook_allowed_ips = None,
            "webhook_rate_limit_per_minute" => self.webhook_rate_limit_per_minute = None,
            "webhook_sender_domain" => self.webhook_sender_domain = None,
            "webhook_default_local_part" => self.webhook_default_local_part = None,
            "webhook_allow_any_local_part" => self.webhook_allow_any_local_part = None,
            "webhook_public_web_url" => self.webhook_public_web_url = None,
            "api_rate_limit_per_minute" => self.api_rate_limit_per_minute = None,
            "api_send_rate_limit_per_key_per_hour" => {
                self.api_send_rate_limit_per_key_per_hour = None
            }
            "delivery_mode" => self.delivery_mode = None,
            _ => return false,
        }
        true
    }

    /// The config file's webhook settings with these over them.
    pub fn over(&self, base: &sluice_config::WebhookConfig) -> sluice_config::WebhookConfig {
        let mut config = base.clone();
        if let Some(v) = self.webhook_timestamp_window_secs {
            config.timestamp_window_secs = v;
        }
        if let Some(v) = &self.webhook_allowed_ips {
            config.allowed_ips = v.clone();
        }
        if let Some(v) = self.webhook_rate_limit_per_minute {
            config.rate_limit_per_minute = v;
        }
        if let Some(v) = &self.webhook_sender_domain {
            config.sender_domain = v.clone();
        }
        if let Some(v) = &self.webhook_default_local_part {
            config.default_local_part = v.clone();
        }
        if let Some(v) = self.webhook_allow_any_local_part {
            config.allow_any_local_part = v;
        }
        if let Some(v) = &self.webhook_public_web_url {
            config.public_web_url = v.clone();
        }
        config
    }
}

/// What is stored (the webhook secret sealed under the master key).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRuntime {
    pub log_level: Option<String>,
    pub webhook_secret_sealed: Option<String>,
    #[serde(flatten)]
    pub overrides: Overrides,
}

/// What the node applies (the secret opened).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RuntimeSettings {
    pub log_level: Option<String>,
    pub webhook_secret: Option<String>,
    /// The webhook's settings, the API's rate limits and the delivery mode.
    pub overrides: Overrides,
}

impl RuntimeSettings {
    /// The webhook's effective settings: the config file's with these over them.
    pub fn webhook_config(
        &self,
        base: &sluice_config::WebhookConfig,
    ) -> sluice_config::WebhookConfig {
        let mut config = self.overrides.over(base);
        if let Some(secret) = &self.webhook_secret {
            config.secret = secret.clone();
        }
        config
    }
}

impl std::fmt::Debug for RuntimeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeSettings")
            .field("log_level", &self.log_level)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "********"),
            )
            .field("overrides", &self.overrides)
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
        webhook_secret,
        overrides: stored.overrides,
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
    fn overrides_are_checked_taken_reset_and_laid_over_the_config() {
        let bad = Overrides {
            webhook_public_web_url: Some("ftp://x".into()),
            ..Default::default()
        };
        assert!(bad.check().unwrap_err().contains("public_web_url"));
        let bad = Overrides {
            webhook_sender_domain: Some("no domain".into()),
            ..Default::default()
        };
        assert!(bad.check().is_err());
        let update = Overrides {
            webhook_rate_limit_per_minute: Some(5),
            webhook_allowed_ips: Some(vec!["10.0.0.0/8".parse().unwrap()]),
            ..Default::default()
        };
        assert!(update.check().is_ok());
        let mut stored = Overrides::default();
        assert_eq!(
            stored.take(&update),
            vec!["webhook_allowed_ips", "webhook_rate_limit_per_minute"]
        );
        let base = sluice_config::WebhookConfig::default();
        let config = stored.over(&base);
        assert_eq!(config.rate_limit_per_minute, 5);
        assert_eq!(config.allowed_ips.len(), 1);
        assert_eq!(config.timestamp_window_secs, base.timestamp_window_secs);
        assert!(stored.reset("webhook_rate_limit_per_minute"));
        assert!(!stored.reset("nonsense"));
        assert_eq!(
            stored.over(&base).rate_limit_per_minute,
            base.rate_limit_per_minute
        );
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
