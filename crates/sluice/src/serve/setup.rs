//! What a node is built from besides its parts: the store, keys from config or the data
//! dir, egress policies, the API's state, the disk reserve.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sluice_config::Config;
use sluice_deliver::egress::EgressPolicy;
use sluice_store::Store;
use tracing::warn;

pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data_dir {}", config.data_dir.display()))?;
    let options = sluice_store::OpenOptions {
        max_connections: config.database.max_connections,
        connect_timeout: Duration::from_secs(config.database.connect_timeout_secs),
        statement_timeout: Duration::from_secs(config.database.statement_timeout_secs),
        bodies: sluice_store::BodyCodec::new(
            Some(Arc::new(master_key(config)?)),
            config.storage.encrypt_bodies,
        ),
        spool_dir: Some(config.data_dir.join("spool")),
    };
    sluice_store::open(&config.database_url(), &options)
        .await
        .context("opening the database")
}

/// The key that seals provider secrets and bodies: from config, else
/// `<data_dir>/master.key`; with the previous keys it replaced.
pub fn master_key(config: &Config) -> anyhow::Result<sluice_core::sealed::MasterKey> {
    let master_hex = if config.secrets.master_key.is_empty() {
        key_file(&config.data_dir.join("master.key"))?
    } else {
        config.secrets.master_key.clone()
    };
    let previous = config
        .secrets
        .previous_master_keys
        .iter()
        .map(|hex| sluice_core::sealed::MasterKey::from_hex(hex))
        .collect::<Result<Vec<_>, _>>()
        .context("secrets.previous_master_keys")?;
    Ok(sluice_core::sealed::MasterKey::from_hex(&master_hex)
        .context("secrets.master_key")?
        .with_previous(previous))
}

/// The egress policies: for tenants' destinations (`[egress] allow`, names resolved with
/// `[dns] nameservers`), and for event webhooks, which the deprecated
/// `event_webhooks.allow_private_targets` opens to the private ranges as well.
pub(super) fn egress_policies(config: &Config) -> anyhow::Result<(EgressPolicy, EgressPolicy)> {
    let resolver = sluice_deliver::dns::Resolver::new(&config.dns.nameservers)
        .context("building the resolver from [dns] nameservers")?;
    let egress = EgressPolicy::new(resolver, &config.egress.allow);
    let webhooks = if config.event_webhooks.allow_private_targets {
        warn!(
            "event_webhooks.allow_private_targets is deprecated: it opens loopback, private and \
             link-local ranges to event webhooks; list the ranges in [egress] allow instead"
        );
        egress.opening(&sluice_core::egress::private_ranges())
    } else {
        egress.clone()
    };
    Ok((egress, webhooks))
}

/// This node's delivery log.
pub(super) fn delivery_log_path(config: &Config) -> std::path::PathBuf {
    config.data_dir.join("delivery.log")
}

/// Accounts' statuses as this node last read them (one cache for the API and the accept
/// path).
type AccountStatuses =
    Arc<sluice_store::ttl_cache::TtlCache<sluice_core::AccountId, sluice_core::AccountStatus>>;

/// The API's state: token keys from config or the data dir, TTLs, login throttle.
pub(super) fn api_state(
    config: &Config,
    store: Arc<dyn Store>,
    connections: Arc<dyn sluice_core::ConnectionDirectory>,
    (submitter, account_status): (Arc<dyn sluice_api::Submitter>, AccountStatuses),
    master_key: Arc<sluice_core::sealed::MasterKey>,
    (egress, webhook_egress): (EgressPolicy, EgressPolicy),
) -> anyhow::Result<sluice_api::ApiState> {
    let api = &config.api;
    let secret = if api.jwt_secret.is_empty() {
        key_file(&config.data_dir.join("jwt.key"))?.into_bytes()
    } else {
        api.jwt_secret.clone().into_bytes()
    };
    Ok(sluice_api::ApiState {
        store,
        tokens: Arc::new(sluice_api::tokens::Tokens::new(
            &secret,
            api.access_token_ttl_secs,
        )),
        refresh_ttl_secs: api.refresh_token_ttl_secs,
        throttle: sluice_core::LoginThrottle {
            max_failures: api.login_max_failures,
            window_ms: api.login_window_secs as i64 * 1000,
            lock_ms: api.login_lock_secs as i64 * 1000,
        },
        dummy_hash: Arc::new(crate::account::hash_password("no such user")?),
        connections,
        master_key,
        webhook_egress,
        api_keys: Arc::new(sluice_store::ttl_cache::TtlCache::new(
            Duration::from_millis(config.store.account_cache_ms),
        )),
        account_status,
        feedback: Arc::new(sluice_feedback::FeedbackState {
            max_age_secs: config.feedback.max_age_secs as i64,
            certificates: sluice_feedback::verify::SnsCertificates::new(
                config.feedback.sns_cert_url_prefixes.clone(),
                sluice_deliver::Egress::Policed(egress.clone()),
            ),
        }),
        egress,
        submitter,
        hostname: config.smtp.hostname.clone(),
        max_message_size: config.smtp.max_message_size,
        max_recipients: config.smtp.max_recipients,
        send_limiter: Arc::new(std::sync::Mutex::new(
            sluice_core::rate::WindowLimiter::new(api.send_rate_limit_per_key_per_hour, 3_600_000),
        )),
        rate_limit: Arc::new(std::sync::Mutex::new(
            sluice_core::rate::WindowLimiter::new(api.rate_limit_per_minute, 60_000),
        )),
        delivery_log: Some(delivery_log_path(config)),
        resolver: sluice_deliver::dns::Resolver::new(&config.dns.nameservers)
            .context("[dns] nameservers")?,
        sync_lease_ms: (config.delivery.lease_secs as i64).saturating_mul(1000),
        spamd: config.capture.spamd.clone().map(|address| {
            (
                address,
                Duration::from_secs(config.capture.spamd_timeout_secs),
            )
        }),
    })
}

/// A key file in the data dir: 32 random bytes as hex, made once with mode 0600.
fn key_file(path: &std::path::Path) -> anyhow::Result<String> {
    use rand::RngCore;
    use std::io::Write;
    if let Ok(existing) = std::fs::read_to_string(path) {
        return Ok(existing.trim().to_string());
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(key.as_bytes())?;
    Ok(key)
}

/// `storage.min_free_bytes` on the file system of the SQLite database; none on PostgreSQL
/// (its disk is another machine's) or when set to 0.
pub(super) fn disk_reserve(config: &Config) -> Option<sluice_store::DiskReserve> {
    let url = config.database_url();
    let path = url
        .strip_prefix("sqlite://")
        .or(url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next().unwrap_or(path);
    let dir = std::path::Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map_or_else(|| config.data_dir.clone(), std::path::Path::to_path_buf);
    (config.storage.min_free_bytes > 0)
        .then(|| sluice_store::DiskReserve::new(dir, config.storage.min_free_bytes))
}

pub(super) fn dispatcher(
    config: &Config,
    store: &Arc<dyn Store>,
    master_key: &Arc<sluice_core::sealed::MasterKey>,
    egress: &sluice_deliver::egress::EgressPolicy,
) -> Arc<sluice_worker::Dispatcher> {
    sluice_worker::Dispatcher::new(sluice_worker::DispatcherSettings {
        store: store.clone(),
        master_key: master_key.clone(),
        default: sluice_deliver::from_config(
            &config.delivery.default_provider,
            &config.smtp.hostname,
            &sluice_deliver::Egress::Trusted,
        ),
        hello_name: config.smtp.hostname.clone(),
        tenant_egress: egress.clone(),
        cache_ttl: Duration::from_millis(config.store.account_cache_ms),
        slots: sluice_worker::SlotLimits {
            per_provider: config.delivery.provider_concurrency,
            per_host: config.delivery.host_concurrency,
            bodies_in_memory: config.delivery.max_bodies_in_memory_bytes,
        },
        delivery_log: Some(sluice_deliver::delivery_log::DeliveryLog::start(
            delivery_log_path(config),
        )),
    })
}

pub(super) fn group_commit(config: &Config) -> sluice_store::GroupCommitConfig {
    sluice_store::GroupCommitConfig {
        max_batch: config.store.group_commit_max_batch,
        max_wait: Duration::from_micros(config.store.group_commit_max_wait_micros),
    }
}

pub(super) fn worker_config(
    config: &Config,
    retry: &sluice_core::Live<sluice_core::RetryPolicy>,
) -> sluice_worker::WorkerConfig {
    sluice_worker::WorkerConfig {
        concurrency: config.delivery.concurrency,
        batch_size: config.delivery.batch_size,
        lease: Duration::from_secs(config.delivery.lease_secs),
        poll_interval: Duration::from_millis(config.delivery.poll_interval_ms),
        retry: retry.clone(),
        staging: config.staging.clone(),
    }
}

pub(super) fn event_webhooks(
    config: &Config,
    store: &Arc<dyn Store>,
    master_key: &Arc<sluice_core::sealed::MasterKey>,
    node: &str,
    egress: sluice_deliver::egress::EgressPolicy,
) -> Arc<sluice_worker::event_webhooks::EventWebhookSender> {
    let hooks = &config.event_webhooks;
    sluice_worker::event_webhooks::EventWebhookSender::new(
        store.clone(),
        master_key.clone(),
        sluice_worker::event_webhooks::EventWebhookConfig {
            timeout: Duration::from_secs(hooks.timeout_secs),
            poll_interval: Duration::from_millis(hooks.poll_interval_ms),
            batch_size: hooks.batch_size,
            retry: hooks.retry.clone(),
        },
        format!("{node}-hooks"),
        egress,
    )
}
