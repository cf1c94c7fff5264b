//! Log setup: text or JSON lines on stderr, level from config (RUST_LOG wins when set). The
//! level can be changed while running (`LogLevel::set`, driven by the runtime settings).

use sluice_config::LoggingConfig;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, fmt, reload};

/// Changes the level of the running process's logs.
#[derive(Clone)]
pub struct LogLevel {
    handle: reload::Handle<EnvFilter, Registry>,
}

impl LogLevel {
    /// Applies a filter (`info`, `sluice_smtp=debug,info`); an invalid one is refused.
    pub fn set(&self, level: &str) -> anyhow::Result<()> {
        let filter = EnvFilter::try_new(level).map_err(|e| anyhow::anyhow!("log level: {e}"))?;
        self.handle
            .reload(filter)
            .map_err(|e| anyhow::anyhow!("log level: {e}"))
    }
}

pub fn init(config: &LoggingConfig) -> anyhow::Result<LogLevel> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.level))
        .map_err(|e| anyhow::anyhow!("logging.level: {e}"))?;
    let (filter, handle) = reload::Layer::new(filter);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let output = if config.format == "json" {
        fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
            .boxed()
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .try_init()
        .map_err(|e| anyhow::anyhow!("logging: {e}"))?;
    Ok(LogLevel { handle })
}
