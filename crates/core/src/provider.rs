//! How to reach a provider. The settings are checked by serde when config is read.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ProviderConfig {
    /// Writes a one-line summary of each message to the log; sends nothing.
    Log,
    /// Keeps each message in the store with status `captured`.
    Capture,
    /// An upstream SMTP server (smarthost).
    Smtp(SmtpProviderConfig),
}

impl ProviderConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderConfig::Log => "log",
            ProviderConfig::Capture => "capture",
            ProviderConfig::Smtp(_) => "smtp",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain SMTP, never upgraded (port 25 preset).
    None,
    /// STARTTLS required (port 587 preset).
    Starttls,
    /// Implicit TLS (port 465 preset).
    Tls,
}

impl SmtpSecurity {
    pub fn default_port(self) -> u16 {
        match self {
            SmtpSecurity::None => 25,
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
        }
    }
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpProviderConfig {
    pub host: String,
    /// Defaults to the preset of `security`.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default = "default_security")]
    pub security: SmtpSecurity,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Accept any certificate (self-signed test upstreams). Never in production.
    #[serde(default)]
    pub skip_tls_verify: bool,
    /// Name sent in EHLO; defaults to `smtp.hostname`.
    #[serde(default)]
    pub hello_name: Option<String>,
}

fn default_security() -> SmtpSecurity {
    SmtpSecurity::Starttls
}

fn default_timeout() -> u64 {
    30
}

impl SmtpProviderConfig {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or_else(|| self.security.default_port())
    }
}

/// Never prints the password.
impl std::fmt::Debug for SmtpProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpProviderConfig")
            .field("host", &self.host)
            .field("port", &self.port())
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "********"))
            .field("timeout_secs", &self.timeout_secs)
            .field("skip_tls_verify", &self.skip_tls_verify)
            .finish()
    }
}
