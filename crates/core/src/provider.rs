//! How to reach a provider. The settings are checked by serde when config is read.

use serde::{Deserialize, Serialize};

pub use crate::provider_type::ProviderType;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ProviderConfig {
    /// Writes a one-line summary of each message to the log; sends nothing.
    Log,
    /// Keeps each message in the store with status `captured`.
    Capture,
    /// An upstream SMTP server (smarthost).
    Smtp(SmtpProviderConfig),
    /// SendGrid v3 mail send.
    Sendgrid(SendgridConfig),
    /// Mailgun `messages.mime`.
    Mailgun(MailgunConfig),
    /// Amazon SES v2 `outbound-emails`, raw content, SigV4-signed.
    Ses(SesConfig),
    /// Microsoft Graph `sendMail` with a MIME body, client-credentials token.
    Msgraph(MsGraphConfig),
}

impl ProviderConfig {
    pub fn provider_type(&self) -> ProviderType {
        match self {
            ProviderConfig::Log => ProviderType::Log,
            ProviderConfig::Capture => ProviderType::Capture,
            ProviderConfig::Smtp(_) => ProviderType::Smtp,
            ProviderConfig::Sendgrid(_) => ProviderType::Sendgrid,
            ProviderConfig::Mailgun(_) => ProviderType::Mailgun,
            ProviderConfig::Ses(_) => ProviderType::Ses,
            ProviderConfig::Msgraph(_) => ProviderType::Msgraph,
        }
    }

    /// The type's name (`log`, `smtp`, ...).
    pub fn kind(&self) -> &'static str {
        self.provider_type().as_str()
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

    /// How a person names it (Test SMTP's steps): `plain`, `STARTTLS`, `SSL/TLS`.
    pub fn label(self) -> &'static str {
        match self {
            SmtpSecurity::None => "plain",
            SmtpSecurity::Starttls => "STARTTLS",
            SmtpSecurity::Tls => "SSL/TLS",
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
    /// Sender display name: put before a From address that has no name
    /// (`sluice_deliver::sender_name`).
    #[serde(default)]
    pub from_name: Option<String>,
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

/// The longest display name a provider may set, in bytes.
pub const MAX_SENDER_NAME: usize = 200;

/// Whether `name` can be a sender display name: not empty, no control characters
/// (CR/LF would inject headers), at most [`MAX_SENDER_NAME`] bytes.
pub fn check_sender_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("from_name must not be empty (leave it out for none)".into());
    }
    if name.len() > MAX_SENDER_NAME {
        return Err(format!("from_name is longer than {MAX_SENDER_NAME} bytes"));
    }
    if name.chars().any(char::is_control) {
        return Err("from_name must not hold control characters".into());
    }
    Ok(())
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
            .field("from_name", &self.from_name)
            .finish()
    }
}

/// Shows a secret as set or not, never its value.
fn masked(secret: &str) -> &'static str {
    if secret.is_empty() { "" } else { "********" }
}

fn default_http_timeout() -> u64 {
    30
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendgridConfig {
    pub api_key: String,
    /// Defaults to `https://api.sendgrid.com`.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The Event Webhook's verification key (base64 DER of an ECDSA P-256 public key).
    #[serde(default)]
    pub webhook_verification_key: Option<String>,
    #[serde(default = "default_http_timeout")]
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailgunRegion {
    #[default]
    Us,
    Eu,
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailgunConfig {
    /// The sending domain, as set up at Mailgun.
    pub domain: String,
    pub api_key: String,
    #[serde(default)]
    pub region: MailgunRegion,
    /// Overrides the region's base URL.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Verifies Mailgun's webhook signatures (the account's HTTP webhook signing key).
    #[serde(default)]
    pub webhook_signing_key: Option<String>,
    #[serde(default = "default_http_timeout")]
    pub timeout_secs: u64,
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SesConfig {
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Defaults to `https://email.{region}.amazonaws.com`.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub configuration_set: Option<String>,
    #[serde(default = "default_http_timeout")]
    pub timeout_secs: u64,
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MsGraphConfig {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    /// The mailbox mail is sent as (`/users/{sender}/sendMail`).
    pub sender: String,
    /// Defaults to `https://login.microsoftonline.com`.
    #[serde(default)]
    pub authority_url: Option<String>,
    /// Defaults to `https://graph.microsoft.com`.
    #[serde(default)]
    pub graph_url: Option<String>,
    #[serde(default = "default_http_timeout")]
    pub timeout_secs: u64,
}

impl std::fmt::Debug for SendgridConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendgridConfig")
            .field("api_key", &masked(&self.api_key))
            .field("base_url", &self.base_url)
            .finish()
    }
}

impl std::fmt::Debug for MailgunConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailgunConfig")
            .field("domain", &self.domain)
            .field("api_key", &masked(&self.api_key))
            .field("region", &self.region)
            .field("base_url", &self.base_url)
            .finish()
    }
}

impl std::fmt::Debug for SesConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SesConfig")
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &masked(&self.secret_access_key))
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

impl std::fmt::Debug for MsGraphConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MsGraphConfig")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("client_secret", &masked(&self.client_secret))
            .field("sender", &self.sender)
            .finish()
    }
}
