//! Config hot reload: the config file (and the TLS certificate files) are checked every
//! second, and re-read on SIGHUP. A new config that fails to load or validate is refused
//! with a log line and the running one stays. What can change live is applied; every other
//! changed key is named in a log line saying it waits for a restart. Values are never
//! logged, only key names (they may be secrets).

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sluice_config::Config;
use sluice_core::{Live, RetryPolicy};
use sluice_smtp::SmtpServer;
use sluice_worker::Dispatcher;
use tokio::sync::watch;
use tracing::{error, info, warn};

/// Keys (`section.key`) a running node applies without a restart.
pub const LIVE_KEYS: &[&str] = &[
    "logging.level",
    "smtp.max_connections",
    "smtp.max_connections_per_account",
    "smtp.trusted_networks",
    "smtp.idle_timeout_secs",
    "smtp.min_data_rate",
    "smtp.tls_handshake_timeout_secs",
    "smtp.max_recipients",
    "delivery.retry",
    "delivery.default_provider",
    "api.rate_limit_per_minute",
    "api.send_rate_limit_per_key_per_hour",
    "tls.cert_file",
    "tls.key_file",
    "tls.min_version",
];

/// What a reload reaches into.
pub struct Targets {
    pub smtp: Arc<SmtpServer>,
    pub dispatcher: Arc<Dispatcher>,
    pub retry: Live<RetryPolicy>,
    /// The running config, for what the panel's run-time settings may override too (log
    /// level, API rate limits, delivery mode): `serve::overrides::follow_overridable` applies it.
    pub running: watch::Sender<Arc<Config>>,
    /// The panel's HTTPS certificate (`panel.tls`).
    pub panel_tls: Live<rustls::ServerConfig>,
}

/// Keys whose values differ between two configs: `section.key` for keys of sections,
/// the key alone at the top level. Compared as TOML values, so it never needs updating
/// when a setting is added.
pub fn changed_keys(old: &Config, new: &Config) -> BTreeSet<String> {
    let (Ok(toml::Value::Table(old)), Ok(toml::Value::Table(new))) =
        (toml::Value::try_from(old), toml::Value::try_from(new))
    else {
        return BTreeSet::new();
    };
    let mut changed = BTreeSet::new();
    let sections: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for section in sections {
        match (old.get(section), new.get(section)) {
            (Some(toml::Value::Table(a)), Some(toml::Value::Table(b))) => {
                let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
                for key in keys {
                    if a.get(key) != b.get(key) {
                        changed.insert(format!("{section}.{key}"));
                    }
                }
            }
            (a, b) if a != b => {
                changed.insert(section.clone());
            }
            _ => {}
        }
    }
    changed
}

/// Applies `new` where it differs from `old` and names the changed keys that need a
/// restart. Returns the running config from now on: the live keys from `new`, the rest as
/// before (so a later reload names those keys again until the node restarts).
pub fn apply(targets: &Targets, old: &Config, new: &Config, tls_files_changed: bool) -> Config {
    let changed = changed_keys(old, new);
    let running = merge_live(old.clone(), new.clone());
    let mut applied = Vec::new();
    let mut restart = Vec::new();
    for key in &changed {
        if LIVE_KEYS.contains(&key.as_str()) {
            applied.push(key.clone());
        } else {
            restart.push(key.clone());
        }
    }
    let touched = |prefix: &str| applied.iter().any(|k| k.starts_with(prefix));
    if touched("smtp.") {
        targets.smtp.apply_config(running.smtp.clone());
    }
    if touched("tls.") || tls_files_changed {
        match sluice_smtp::tls::from_config(&running.tls, &running.data_dir, &running.smtp.hostname)
        {
            Ok(tls) => {
                targets.panel_tls.set_arc(tls.clone());
                targets.smtp.apply_tls(tls);
                info!("tls certificate reloaded");
            }
            Err(error) => {
                error!(%error, "tls certificate not reloaded; the previous one stays in use")
            }
        }
    }
    if touched("delivery.retry") {
        targets.retry.set(running.delivery.retry.clone());
    }
    if touched("delivery.default_provider") {
        targets.dispatcher.set_default(sluice_deliver::from_config(
            &running.delivery.default_provider,
            &running.smtp.hostname,
            &sluice_deliver::Egress::Trusted,
        ));
    }
    if !applied.is_empty() || tls_files_changed {
        info!(applied = ?applied, tls_files_changed, "config reloaded");
    } else if restart.is_empty() {
        info!("config reloaded: nothing changed");
    }
    if !restart.is_empty() {
        warn!(keys = ?restart, "config changed; these keys take effect at the next restart");
    }
    // Last: the log filter follows this on its own task, and a raised level must not
    // swallow the lines above that say what this reload did.
    if touched("logging.level") || touched("api.") {
        let _ = targets.running.send(Arc::new(running.clone()));
    }
    running
}

/// A fingerprint of a file's contents (missing file: a fixed value).
fn fingerprint(path: &std::path::Path) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    match std::fs::read(path) {
        Ok(bytes) => bytes.hash(&mut hasher),
        Err(_) => 0u8.hash(&mut hasher),
    }
    hasher.finish()
}

/// The certificate files the running config serves (the generated pair when none are set).
fn tls_files(config: &Config) -> Vec<PathBuf> {
    match (&config.tls.cert_file, &config.tls.key_file) {
        (Some(cert), Some(key)) => vec![cert.clone(), key.clone()],
        _ => Vec::new(),
    }
}

/// Watches `file` and the certificate files until shutdown; `load` reads the config the
/// way the start did (same defaults, same environment).
pub async fn follow_config(
    file: Option<PathBuf>,
    load: impl Fn() -> anyhow::Result<Config> + Send + 'static,
    mut running: Config,
    targets: Targets,
    mut shutdown: watch::Receiver<bool>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(hangup) => Some(hangup),
        Err(error) => {
            warn!(%error, "SIGHUP handler not installed; the config file is still watched");
            None
        }
    };
    let config_print = |file: &Option<PathBuf>| file.as_deref().map(fingerprint);
    let tls_print = |config: &Config| {
        tls_files(config)
            .iter()
            .map(|p| fingerprint(p))
            .collect::<Vec<_>>()
    };
    let mut seen_config = config_print(&file);
    let mut seen_tls = tls_print(&running);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let signalled = tokio::select! {
            _ = tick.tick() => false,
            _ = async {
                match hangup.as_mut() {
                    Some(hangup) => { hangup.recv().await; }
                    None => std::future::pending::<()>().await,
                }
            } => true,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let now_config = config_print(&file);
        let now_tls = tls_print(&running);
        if !signalled && now_config == seen_config && now_tls == seen_tls {
            continue;
        }
        if signalled {
            info!("SIGHUP: reloading the config");
        }
        seen_config = now_config;
        match load() {
            Ok(new) => {
                let tls_changed = signalled || now_tls != seen_tls;
                running = apply(&targets, &running, &new, tls_changed);
                seen_tls = tls_print(&running);
            }
            Err(error) => {
                seen_tls = now_tls;
                error!(
                    error = format!("{error:#}"),
                    "config reload refused: the new config does not load; the running config stays"
                );
            }
        }
    }
}

/// The running config after a reload: the live keys from `new`, the rest as before.
fn merge_live(mut running: Config, new: Config) -> Config {
    running.logging.level = new.logging.level;
    running.smtp.max_connections = new.smtp.max_connections;
    running.smtp.max_connections_per_account = new.smtp.max_connections_per_account;
    running.smtp.trusted_networks = new.smtp.trusted_networks;
    running.smtp.idle_timeout_secs = new.smtp.idle_timeout_secs;
    running.smtp.min_data_rate = new.smtp.min_data_rate;
    running.smtp.tls_handshake_timeout_secs = new.smtp.tls_handshake_timeout_secs;
    running.smtp.max_recipients = new.smtp.max_recipients;
    running.delivery.retry = new.delivery.retry;
    running.delivery.default_provider = new.delivery.default_provider;
    running.api.rate_limit_per_minute = new.api.rate_limit_per_minute;
    running.api.send_rate_limit_per_key_per_hour = new.api.send_rate_limit_per_key_per_hour;
    running.tls = new.tls;
    running
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_keys_names_section_and_key_and_merge_keeps_restart_keys() {
        let old = Config::default();
        let mut new = Config::default();
        new.smtp.max_connections = 2;
        new.logging.level = "warn".into();
        new.database.max_connections = 3;
        new.data_dir = "/elsewhere".into();
        let changed: Vec<String> = changed_keys(&old, &new).into_iter().collect();
        assert_eq!(
            changed,
            [
                "data_dir",
                "database.max_connections",
                "logging.level",
                "smtp.max_connections"
            ]
        );
        let merged = merge_live(old.clone(), new);
        assert_eq!(merged.smtp.max_connections, 2);
        assert_eq!(merged.logging.level, "warn");
        assert_eq!(
            merged.database.max_connections,
            old.database.max_connections
        );
        assert_eq!(merged.data_dir, old.data_dir);
        // Every live key is one that merge_live carries over.
        let mut every = Config::default();
        every.smtp.max_connections = 7;
        every.smtp.max_connections_per_account = 7;
        every.smtp.trusted_networks = vec!["10.0.0.0/8".parse().unwrap()];
        every.smtp.idle_timeout_secs = 7;
        every.smtp.min_data_rate = 7;
        every.smtp.tls_handshake_timeout_secs = 7;
        every.smtp.max_recipients = 7;
        every.delivery.retry.max_attempts = 7;
        every.delivery.default_provider = sluice_core::ProviderConfig::Capture;
        every.api.rate_limit_per_minute = 7;
        every.api.send_rate_limit_per_key_per_hour = 7;
        every.tls.min_version = "1.3".into();
        every.logging.level = "debug".into();
        let merged = merge_live(Config::default(), every.clone());
        assert!(changed_keys(&merged, &every).is_empty());
        for key in changed_keys(&Config::default(), &every) {
            assert!(LIVE_KEYS.contains(&key.as_str()), "{key}");
        }
    }
}
