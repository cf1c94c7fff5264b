//! Sluice configuration: one TOML file, every key overridable by `SLUICE_SECTION__KEY`
//! environment variables, validated into [`Config`].

mod capture;
mod delivery;
mod dev;
mod http;
mod pop3;
mod smtp;
mod storage;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use sluice_core::ProviderConfig;
use std::path::{Path, PathBuf};
use thiserror::Error;

pub use capture::CaptureConfig;
pub use delivery::{DeliveryConfig, DeliveryMode, DnsConfig, EgressConfig};
pub use dev::{
    DEV_ACCOUNT_DOMAIN, DEV_ACCOUNT_EMAIL, DEV_ACCOUNT_PASSWORD, DevNetwork, dev_defaults,
    dev_defaults_on,
};
pub use http::{
    ApiConfig, EventWebhooksConfig, FeedbackConfig, HttpConfig, PanelConfig, WebhookConfig,
};
pub use pop3::Pop3Config;
pub use smtp::{ListenerAuth, ListenerConfig, ListenerTls, SmtpConfig, TlsConfig};
pub use storage::{DatabaseConfig, RetentionConfig, StorageConfig, StoreConfig};

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("config: {0}")]
    Parse(#[from] Box<figment::Error>),
    #[error("config: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the SQLite database, the generated certificate and other state live.
    pub data_dir: PathBuf,
    pub database: DatabaseConfig,
    pub smtp: SmtpConfig,
    pub tls: TlsConfig,
    pub store: StoreConfig,
    pub delivery: DeliveryConfig,
    pub http: HttpConfig,
    /// The web control panel (its own listener).
    pub panel: PanelConfig,
    pub api: ApiConfig,
    pub secrets: SecretsConfig,
    pub webhook: WebhookConfig,
    /// Bounce and complaint webhooks from the email services.
    pub feedback: FeedbackConfig,
    /// Tenants' event webhooks (`/api/v1/webhook-endpoints`).
    pub event_webhooks: EventWebhooksConfig,
    /// Staging aids: forward everything to one address, allow only some recipients,
    /// mark delivered mail.
    pub staging: sluice_core::staging::StagingPolicy,
    pub logging: LoggingConfig,
    pub storage: StorageConfig,
    pub retention: RetentionConfig,
    /// The resolver for sender-domain verification and for every outbound destination.
    pub dns: DnsConfig,
    /// Where tenants' destinations (provider hosts and URLs, webhooks, test servers) may
    /// connect.
    pub egress: EgressConfig,
    /// POP3 over each account's captured mail.
    pub pop3: Pop3Config,
    /// The capture sandbox's spam check.
    pub capture: CaptureConfig,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecretsConfig {
    /// 64 hex characters: the AES-256-GCM key that seals provider secrets. Empty: generated
    /// into `<data_dir>/master.key` (mode 0600) once. Nodes sharing a database must share it.
    pub master_key: String,
    /// Keys `master_key` replaced (64 hex characters each): what they sealed still opens.
    /// Keep them until `sluice keys rotate` has re-sealed every body and every secret.
    pub previous_master_keys: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingConfig {
    /// A tracing filter: `info`, `sluice_smtp=debug,info`.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("/var/lib/sluice"),
            database: DatabaseConfig::default(),
            smtp: SmtpConfig::default(),
            tls: TlsConfig::default(),
            store: StoreConfig::default(),
            delivery: DeliveryConfig::default(),
            http: HttpConfig::default(),
            panel: PanelConfig::default(),
            api: ApiConfig::default(),
            secrets: SecretsConfig::default(),
            webhook: WebhookConfig::default(),
            feedback: FeedbackConfig::default(),
            event_webhooks: EventWebhooksConfig::default(),
            staging: Default::default(),
            logging: LoggingConfig::default(),
            storage: StorageConfig::default(),
            retention: RetentionConfig::default(),
            dns: DnsConfig::default(),
            egress: EgressConfig::default(),
            pop3: Pop3Config::default(),
            capture: CaptureConfig::default(),
        }
    }
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: "info".into(),
            format: "json".into(),
        }
    }
}

/// Reads `base`, then the file (if any), then `SLUICE_*` variables, and validates the result.
pub fn load(base: Config, file: Option<&Path>) -> Result<Config, ConfigError> {
    let mut figment = Figment::from(Serialized::defaults(base));
    if let Some(path) = file {
        if !path.exists() {
            return Err(ConfigError::Invalid(format!(
                "config file {} does not exist",
                path.display()
            )));
        }
        figment = figment.merge(Toml::file(path));
    }
    finish(figment)
}

/// `load` with the file's text given instead of its path (then `SLUICE_*` variables, then
/// validation, as `load`): for the config fuzz target and tests.
pub fn load_str(base: Config, toml: &str) -> Result<Config, ConfigError> {
    finish(Figment::from(Serialized::defaults(base)).merge(Toml::string(toml)))
}

fn finish(figment: Figment) -> Result<Config, ConfigError> {
    let config: Config = figment
        .merge(
            Env::prefixed("SLUICE_")
                .filter(|key| is_config_key(key.as_str()))
                .split("__"),
        )
        .extract()
        .map_err(Box::new)?;
    config.validate()?;
    Ok(config)
}

/// `SLUICE_*` variables that are not config keys (`SLUICE_CONFIG`, the CLI's password
/// variables, `SLUICE_TEST_DATABASE_URL`) are left alone rather than refused.
fn is_config_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    // The top-level keys of Config itself, so a new section cannot be forgotten here.
    let Ok(toml::Value::Table(top)) = toml::Value::try_from(Config::default()) else {
        return false;
    };
    top.iter().any(|(name, value)| match value {
        toml::Value::Table(_) => key
            .strip_prefix(name.as_str())
            .is_some_and(|rest| rest.starts_with("__")),
        _ => key == *name,
    })
}

impl Config {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |msg: &str| Err(ConfigError::Invalid(msg.to_string()));
        if let Some(addr) = self.panel.listen
            && !addr.ip().is_loopback()
            && !self.panel.allow_public_bind
        {
            return invalid(
                "panel.listen is not a loopback address; set panel.allow_public_bind = true to allow it",
            );
        }
        let smtp = &self.smtp;
        if smtp.listeners.iter().any(|l| l.auth == ListenerAuth::None) {
            if smtp.trusted_networks.is_empty() {
                return invalid("a listener with auth = \"none\" needs smtp.trusted_networks");
            }
            if smtp.trusted_account.is_empty() {
                return invalid("a listener with auth = \"none\" needs smtp.trusted_account");
            }
        }
        if smtp.max_connections == 0 || smtp.max_recipients == 0 || smtp.max_message_size == 0 {
            return invalid("smtp limits must be greater than zero");
        }
        if self.tls.cert_file.is_some() != self.tls.key_file.is_some() {
            return invalid("tls.cert_file and tls.key_file go together");
        }
        if self.store.group_commit_max_batch == 0 {
            return invalid("store.group_commit_max_batch must be at least 1");
        }
        if self.delivery.provider_concurrency == 0 || self.delivery.host_concurrency == 0 {
            return invalid(
                "delivery.provider_concurrency and delivery.host_concurrency must be at least 1",
            );
        }
        if self.delivery.concurrency == 0 || self.delivery.batch_size == 0 {
            return invalid("delivery.concurrency and delivery.batch_size must be at least 1");
        }
        let retry = &self.delivery.retry;
        if retry.initial_delay_secs < 0.0 || retry.multiplier < 1.0 || retry.max_attempts == 0 {
            return invalid(
                "delivery.retry needs initial_delay_secs >= 0, multiplier >= 1, max_attempts >= 1",
            );
        }
        if !matches!(self.tls.min_version.as_str(), "1.2" | "1.3") {
            return invalid("tls.min_version is \"1.2\" or \"1.3\"");
        }
        if self.retention.batch_size == 0 || self.retention.interval_secs == 0 {
            return invalid("retention.batch_size and retention.interval_secs must be at least 1");
        }
        let retention = &self.retention;
        if retention.metadata_days != 0 && retention.body_days > retention.metadata_days {
            return invalid("retention.body_days must not exceed retention.metadata_days");
        }
        let pop3 = &self.pop3;
        if pop3.max_connections == 0 || pop3.idle_timeout_secs == 0 || pop3.max_messages == 0 {
            return invalid(
                "pop3.max_connections, pop3.idle_timeout_secs and pop3.max_messages must be at least 1",
            );
        }
        if self.capture.spamd_timeout_secs == 0 {
            return invalid("capture.spamd_timeout_secs must be at least 1");
        }
        if pop3.listen.is_some() && pop3.listen == pop3.tls_listen {
            return invalid("pop3.listen and pop3.tls_listen must differ");
        }
        if !matches!(self.logging.format.as_str(), "text" | "json") {
            return invalid("logging.format is \"text\" or \"json\"");
        }
        if !self.webhook.public_web_url.is_empty()
            && let Err(problem) = sluice_core::web_url::check_web_url(&self.webhook.public_web_url)
        {
            return invalid(&format!(
                "webhook.public_web_url must be an absolute http(s) URL: {problem}"
            ));
        }
        if let ProviderConfig::Smtp(smtp) = &self.delivery.default_provider
            && let Some(name) = &smtp.from_name
            && let Err(problem) = sluice_core::provider::check_sender_name(name)
        {
            return invalid(&format!("delivery.default_provider: {problem}"));
        }
        Ok(())
    }

    /// The database URL, defaulting to SQLite in the data directory.
    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("sluice.db").display())
        } else {
            self.database.url.clone()
        }
    }
}

#[cfg(test)]
mod tests;
