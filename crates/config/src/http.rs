//! The HTTP listeners' sections: `[http]`, `[api]`, `[panel]`, `[webhook]` (and its
//! `[webhook.feedback]`), `[event_webhooks]`.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use sluice_core::RetryPolicy;
use std::net::SocketAddr;

/// The signed "outbound email" webhook receiver (its own listener).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where it listens; unset disables it.
    pub listen: Option<SocketAddr>,
    /// HMAC-SHA256 key. Empty: every call is refused with 503, unless `allow_unsigned`.
    pub secret: String,
    pub allow_unsigned: bool,
    /// Accepted clock difference of `X-TransLife-Timestamp`, and how long a signature is
    /// remembered against replays.
    pub timestamp_window_secs: u64,
    /// Callers allowed (CIDRs); empty allows any.
    pub allowed_ips: Vec<IpNet>,
    /// Calls per minute per caller IP.
    pub rate_limit_per_minute: u32,
    /// Email of the account webhook mail is sent as (its limits apply).
    pub account: String,
    /// The domain of the From address; unset: 503 "sender domain not configured".
    pub sender_domain: String,
    pub default_local_part: String,
    /// Let callers choose the local part (`fromLocalPart`).
    pub allow_any_local_part: bool,
    /// Builds `link` when a call has none: `<url>/verify-email?token=…`, `<url>/reset-password?token=…`.
    pub public_web_url: String,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            listen: Some("0.0.0.0:2555".parse().unwrap()),
            secret: String::new(),
            allow_unsigned: false,
            timestamp_window_secs: 300,
            allowed_ips: Vec::new(),
            rate_limit_per_minute: 60,
            account: String::new(),
            sender_domain: String::new(),
            default_local_part: "no-reply".into(),
            allow_any_local_part: false,
            public_web_url: String::new(),
        }
    }
}

/// Posting message events to tenants' endpoints.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventWebhooksConfig {
    /// Per POST.
    pub timeout_secs: u64,
    pub poll_interval_ms: u64,
    /// Posts in flight per node.
    pub batch_size: u32,
    /// Deprecated alias (a warning at start): opens loopback, private, link-local and CGNAT
    /// ranges to event webhooks only, on top of `[egress] allow`.
    pub allow_private_targets: bool,
    pub retry: RetryPolicy,
}

impl Default for EventWebhooksConfig {
    fn default() -> Self {
        EventWebhooksConfig {
            timeout_secs: 10,
            poll_interval_ms: 1000,
            batch_size: 20,
            allow_private_targets: false,
            retry: RetryPolicy {
                initial_delay_secs: 10.0,
                multiplier: 2.0,
                max_delay_secs: 3600.0,
                max_age_secs: 3.0 * 86400.0,
                max_attempts: 12,
                jitter: 0.2,
            },
        }
    }
}

/// `POST /api/v1/webhooks/{sendgrid|mailgun|ses}/{provider_id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedbackConfig {
    /// Accepted age of a SendGrid or Mailgun signature's timestamp.
    pub max_age_secs: u64,
    /// Where SNS signing certificates (and SubscribeURLs) may be fetched from. Empty: only
    /// `https://sns.<region>.amazonaws.com/`. Set URL prefixes for tests or private setups.
    pub sns_cert_url_prefixes: Vec<String>,
}

impl Default for FeedbackConfig {
    fn default() -> Self {
        FeedbackConfig {
            max_age_secs: 600,
            sns_cert_url_prefixes: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// HS256 key for access tokens. Empty: generated into `<data_dir>/jwt.key` (mode 0600)
    /// once. Nodes sharing a database must share this value.
    pub jwt_secret: String,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    /// Failed logins within `login_window_secs` that lock a user for `login_lock_secs`.
    pub login_max_failures: i64,
    pub login_window_secs: u64,
    pub login_lock_secs: u64,
    /// Requests per minute per API key or user; beyond it 429 with Retry-After.
    pub rate_limit_per_minute: u32,
    /// `POST /send` with a `rate_limit_key`: sends per account and key per hour.
    pub send_rate_limit_per_key_per_hour: u32,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            jwt_secret: String::new(),
            access_token_ttl_secs: 900,
            refresh_token_ttl_secs: 7 * 86400,
            login_max_failures: 5,
            login_window_secs: 900,
            login_lock_secs: 900,
            rate_limit_per_minute: 100,
            send_rate_limit_per_key_per_hour: 10,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Health, readiness and metrics (and the API in later versions). Empty disables it.
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PanelConfig {
    /// Where the panel listens; unset disables it. Loopback unless `allow_public_bind`.
    pub listen: Option<SocketAddr>,
    /// Allows `listen` on a non-loopback address.
    pub allow_public_bind: bool,
    /// Marks the session cookie `Secure` (set it when the panel is reached over HTTPS,
    /// e.g. through a TLS-terminating proxy).
    pub cookie_secure: bool,
    /// Serve the panel over HTTPS with the listeners' certificate (`[tls]`); the cookie is
    /// then always `Secure`.
    pub tls: bool,
    /// How long a panel login lasts.
    pub session_ttl_secs: u64,
}

impl Default for PanelConfig {
    fn default() -> Self {
        PanelConfig {
            listen: Some("127.0.0.1:2581".parse().unwrap()),
            allow_public_bind: false,
            cookie_secure: false,
            tls: false,
            session_ttl_secs: 12 * 3600,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: Some("127.0.0.1:2580".parse().unwrap()),
        }
    }
}
