//! The panel's run-time settings (log level, API rate limits, delivery mode) laid over the
//! running config, applied as either changes.

use std::sync::Arc;

use sluice_accept::Acceptor;
use sluice_config::Config;
use sluice_core::DeliveryMode;
use tokio::sync::watch;
use tracing::info;

/// What the panel's run-time settings may override and the config file sets otherwise.
pub(super) struct Overridable {
    pub log_level: crate::logging::LogLevel,
    pub api_rate_limit: Option<Arc<std::sync::Mutex<sluice_core::rate::WindowLimiter>>>,
    pub send_limiter: Option<Arc<std::sync::Mutex<sluice_core::rate::WindowLimiter>>>,
    pub acceptor: Arc<Acceptor>,
}

/// The values in force: the run-time setting where an admin made one, else the running
/// config's.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Effective {
    log_level: String,
    api_rate_limit_per_minute: u32,
    send_rate_limit_per_key_per_hour: u32,
    mode: DeliveryMode,
}

fn effective(runtime: &sluice_runtime_settings::RuntimeSettings, config: &Config) -> Effective {
    let overrides = &runtime.overrides;
    Effective {
        log_level: runtime
            .log_level
            .clone()
            .unwrap_or_else(|| config.logging.level.clone()),
        api_rate_limit_per_minute: overrides
            .api_rate_limit_per_minute
            .unwrap_or(config.api.rate_limit_per_minute),
        send_rate_limit_per_key_per_hour: overrides
            .api_send_rate_limit_per_key_per_hour
            .unwrap_or(config.api.send_rate_limit_per_key_per_hour),
        // `PUT /settings` only stores a mode that parses; anything else is the config's.
        mode: overrides
            .delivery_mode
            .as_deref()
            .and_then(|mode| mode.parse().ok())
            .unwrap_or(config.delivery.mode),
    }
}

/// Applies the run-time settings over the running config as either changes. Until one
/// changes, what the process started with stays (the log level of `RUST_LOG` when set).
pub(super) async fn follow_overridable(
    mut runtime: watch::Receiver<sluice_runtime_settings::RuntimeSettings>,
    mut running: watch::Receiver<Arc<Config>>,
    targets: Overridable,
) {
    let mut applied = effective(&runtime.borrow(), &running.borrow());
    loop {
        tokio::select! {
            changed = runtime.changed() => if changed.is_err() { return },
            changed = running.changed() => if changed.is_err() { return },
        }
        let wanted = effective(&runtime.borrow(), &running.borrow());
        if wanted.log_level != applied.log_level {
            let level = &wanted.log_level;
            // Said at the old level too: the new one may hide the line after it.
            tracing::warn!(%level, "log level changing");
            match targets.log_level.set(level) {
                Ok(()) => tracing::warn!(%level, "log level changed"),
                Err(error) => tracing::error!(%error, "log level not changed"),
            }
        }
        if let Some(limiter) = &targets.api_rate_limit {
            limiter
                .lock()
                .unwrap()
                .set_limit(wanted.api_rate_limit_per_minute);
        }
        if let Some(limiter) = &targets.send_limiter {
            limiter
                .lock()
                .unwrap()
                .set_limit(wanted.send_rate_limit_per_key_per_hour);
        }
        if wanted.mode != applied.mode {
            let mode = wanted.mode;
            targets.acceptor.set_mode(mode);
            info!(?mode, "delivery mode changed");
        }
        applied = wanted;
    }
}
