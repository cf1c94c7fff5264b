//! Sluice configuration: one TOML file, every key overridable by `SLUICE_SECTION__KEY`
//! environment variables, validated into [`Config`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use sluice_core::{ProviderConfig, RetryPolicy};
use thiserror::Error;

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
}

/// Name resolution for domain verification and egress.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsConfig {
    /// Nameservers as `ip:port`, queried over UDP and TCP. Empty: the system resolver
    /// (`/etc/resolv.conf`).
    pub nameservers: Vec<SocketAddr>,
}

/// The egress policy for destinations a tenant names.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EgressConfig {
    /// Address ranges opened to tenants beyond the public internet (CIDRs), e.g.
    /// `["10.1.2.0/24", "::1/128"]`. Loopback, private, link-local, CGNAT, multicast,
    /// unspecified and documentation ranges (and IPv6 forms embedding them) are closed
    /// unless listed here.
    pub allow: Vec<IpNet>,
}

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
pub struct DatabaseConfig {
    /// `sqlite://path`, `postgres://user@host/db`, or empty for `<data_dir>/sluice.db`.
    pub url: String,
    pub max_connections: u32,
    /// PostgreSQL: how long to wait for a connection before answering "try again later".
    pub connect_timeout_secs: u64,
    /// PostgreSQL: `statement_timeout` for every statement.
    pub statement_timeout_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenerTls {
    Starttls,
    Implicit,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenerAuth {
    Required,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    pub addr: SocketAddr,
    pub tls: ListenerTls,
    pub auth: ListenerAuth,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    /// The name in the greeting and EHLO reply.
    pub hostname: String,
    pub listeners: Vec<ListenerConfig>,
    /// Clients allowed on `auth = "none"` listeners.
    pub trusted_networks: Vec<IpNet>,
    /// Email of the account that trusted clients send as.
    pub trusted_account: String,
    pub max_connections: usize,
    /// Sessions one account may hold open at once (authenticated or trusted); beyond it
    /// AUTH (or the greeting, for trusted clients) is answered 421 4.7.0. 0: no limit.
    pub max_connections_per_account: usize,
    pub max_message_size: usize,
    pub max_recipients: usize,
    pub max_auth_failures: u32,
    pub auth_failure_window_secs: u64,
    /// Waiting for a command, and the longest one command may take from its first byte
    /// (a client cannot keep a slot by trickling bytes).
    pub idle_timeout_secs: u64,
    /// Message content (DATA/BDAT) must arrive at least this fast, in bytes per second,
    /// after the first `idle_timeout_secs` (Postfix's `smtpd_min_data_rate`).
    pub min_data_rate: u64,
    pub tls_handshake_timeout_secs: u64,
    /// How long sessions may run on after shutdown begins.
    pub shutdown_grace_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain; empty: a self-signed one is generated into `data_dir` once.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// The oldest TLS version offered: "1.2" or "1.3".
    pub min_version: String,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert_file: None,
            key_file: None,
            min_version: "1.2".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Seal message bodies with AES-256-GCM under the master key before they are stored.
    /// Bodies stored before it was turned on stay readable (and stay in the clear until
    /// `sluice keys rotate` rewrites them).
    pub encrypt_bodies: bool,
    /// New mail is refused (452 4.3.1 / 507) while the file system holding the SQLite
    /// database has less than this many bytes free, and taken again once it has more.
    /// 0 turns the check off. Not applied on PostgreSQL (its disk is not this machine's).
    pub min_free_bytes: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            encrypt_bodies: false,
            // One WAL cycle (the writer checkpoints at ~40 MB of WAL, and the checkpoint
            // may grow the database file by as much) plus the delivery log and its rotated
            // copy (2 × 5 MB), with room to spare.
            min_free_bytes: 100 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Bodies of delivered, failed, bounced and cancelled messages are removed after this
    /// many days (the message row, its events and attempts stay). 0: keep forever.
    pub body_days: u32,
    /// Finished messages with their events and attempts are removed after this many days.
    /// 0: keep forever.
    pub metadata_days: u32,
    /// Rows removed per statement; the purge runs in such batches until nothing is left.
    pub batch_size: u32,
    /// How often the purge runs.
    pub interval_secs: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            body_days: 7,
            metadata_days: 90,
            batch_size: 500,
            interval_secs: 600,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Most messages one group commit holds.
    pub group_commit_max_batch: usize,
    /// Longest a write waits for others to share its commit, in microseconds. 0 (the
    /// default): none; writes that arrive while a commit is running share the next one,
    /// which is batching enough under load and adds no wait when idle.
    pub group_commit_max_wait_micros: u64,
    /// How long (ms) a node may reuse an account's settings it read for delivery and
    /// accept: providers, routing rules, DKIM keys, monthly usage. 0: read them for every
    /// message. Changes made on any node apply everywhere within this time.
    pub account_cache_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryMode {
    /// 250 once committed; workers deliver later.
    Async,
    /// The upstream's verdict is the client's.
    Sync,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    pub mode: DeliveryMode,
    pub default_provider: ProviderConfig,
    pub retry: RetryPolicy,
    /// Deliveries in flight at once per node.
    pub concurrency: usize,
    /// Deliveries in flight at once per node through one provider: a slow upstream holds
    /// only these; its other messages wait in the queue, untried.
    pub provider_concurrency: usize,
    /// ...and to one SMTP destination host (host:port), whichever providers point there.
    pub host_concurrency: usize,
    /// Most messages one claim takes.
    pub batch_size: u32,
    /// How long a claim holds a message before another worker may take it.
    pub lease_secs: u64,
    /// How often an idle worker looks for due messages.
    pub poll_interval_ms: u64,
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
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: String::new(),
            max_connections: 8,
            connect_timeout_secs: 5,
            statement_timeout_secs: 30,
        }
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            hostname: "localhost".into(),
            listeners: vec![
                ListenerConfig {
                    addr: "0.0.0.0:587".parse().unwrap(),
                    tls: ListenerTls::Starttls,
                    auth: ListenerAuth::Required,
                },
                ListenerConfig {
                    addr: "0.0.0.0:465".parse().unwrap(),
                    tls: ListenerTls::Implicit,
                    auth: ListenerAuth::Required,
                },
            ],
            trusted_networks: Vec::new(),
            trusted_account: String::new(),
            max_connections: 1000,
            max_connections_per_account: 200,
            max_message_size: 25 * 1024 * 1024,
            max_recipients: 100,
            max_auth_failures: 3,
            auth_failure_window_secs: 900,
            idle_timeout_secs: 300,
            min_data_rate: 500,
            tls_handshake_timeout_secs: 10,
            shutdown_grace_secs: 30,
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            group_commit_max_batch: 256,
            group_commit_max_wait_micros: 0,
            account_cache_ms: 1000,
        }
    }
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            mode: DeliveryMode::Async,
            default_provider: ProviderConfig::Log,
            retry: RetryPolicy::default(),
            concurrency: 64,
            provider_concurrency: 16,
            host_concurrency: 16,
            batch_size: 128,
            lease_secs: 300,
            poll_interval_ms: 250,
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

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: "info".into(),
            format: "json".into(),
        }
    }
}

/// Where `serve --dev` listens and whom it trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevNetwork {
    /// A developer's machine: loopback only (the default).
    Loopback,
    /// Inside a container (`--dev-container`, set in the image): every interface, so `-p`
    /// port mappings reach it; the plain port trusts loopback and the private ranges a
    /// container engine's bridge uses (a mapped port's client arrives from the bridge's
    /// gateway: 10.88.0.1 under podman, 172.17.0.1 under Docker), and those ranges are
    /// opened to egress, since a developer's upstream on the host is reached through them.
    Container,
}

impl DevNetwork {
    /// The address the listeners bind.
    fn bind_ip(self) -> &'static str {
        match self {
            DevNetwork::Loopback => "127.0.0.1",
            DevNetwork::Container => "0.0.0.0",
        }
    }

    /// Clients of the plain port, and destinations opened to egress.
    fn local_networks(self) -> Vec<IpNet> {
        let mut nets = vec!["127.0.0.0/8", "::1/128"];
        if self == DevNetwork::Container {
            nets.extend(["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"]);
        }
        nets.into_iter().map(|n| n.parse().unwrap()).collect()
    }
}

/// The defaults `serve --dev` starts from: everything on loopback, unprivileged ports,
/// state under `./data`, mail captured instead of sent.
pub fn dev_defaults() -> Config {
    dev_defaults_on(DevNetwork::Loopback)
}

/// `serve --dev`'s defaults on the given network (see [`DevNetwork`]); the same ports and
/// state either way.
pub fn dev_defaults_on(network: DevNetwork) -> Config {
    let mut config = Config {
        data_dir: PathBuf::from("./data"),
        ..Config::default()
    };
    let ip = network.bind_ip();
    let addr = |port: u16| -> SocketAddr { format!("{ip}:{port}").parse().unwrap() };
    config.smtp.listeners = vec![
        ListenerConfig {
            addr: addr(2587),
            tls: ListenerTls::Starttls,
            auth: ListenerAuth::Required,
        },
        ListenerConfig {
            addr: addr(2465),
            tls: ListenerTls::Implicit,
            auth: ListenerAuth::Required,
        },
        ListenerConfig {
            addr: addr(2525),
            tls: ListenerTls::None,
            auth: ListenerAuth::None,
        },
    ];
    config.smtp.trusted_networks = network.local_networks();
    config.smtp.trusted_account = DEV_ACCOUNT_EMAIL.into();
    config.delivery.default_provider = ProviderConfig::Capture;
    config.http.listen = Some(addr(2580));
    config.panel.listen = Some(addr(2581));
    // Only a container's own interfaces are "public" here: the engine's port mapping is
    // what exposes it, as the person running it chose.
    config.panel.allow_public_bind = network == DevNetwork::Container;
    config.webhook.listen = Some(addr(2555));
    // A developer's upstreams and webhook receivers run on this machine: loopback is opened
    // through the same setting an operator would use, not a special case.
    config.egress.allow = network.local_networks();
    // A person reads these logs in a terminal.
    config.logging.format = "text".into();
    config
}

pub const DEV_ACCOUNT_EMAIL: &str = "dev@example.com";
pub const DEV_ACCOUNT_PASSWORD: &str = "dev";
pub const DEV_ACCOUNT_DOMAIN: &str = "example.com";

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
