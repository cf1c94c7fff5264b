//! `sluice serve`: wires store, committer, worker, SMTP listeners and HTTP, then waits for
//! SIGTERM/SIGINT and shuts down in order: stop accepting, let sessions finish (up to the
//! grace period), let workers finish in-flight attempts, drain the committer.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sluice_config::{Config, DeliveryMode as ConfigMode};
use sluice_deliver::egress::EgressPolicy;
use sluice_store::{GroupCommitConfig, QueueCommitter, Store};
use sluice_worker::{Acceptor, DeliveryMode, Worker, WorkerConfig};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tracing::{info, warn};

use crate::Role;
use crate::auth::StoreAuthenticator;
use crate::sink::SmtpSink;

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
    };
    sluice_store::open(&config.database_url(), &options)
        .await
        .context("opening the database")
}

async fn ensure_dev_account(store: &dyn Store) -> anyhow::Result<()> {
    use sluice_config::{DEV_ACCOUNT_DOMAIN, DEV_ACCOUNT_EMAIL, DEV_ACCOUNT_PASSWORD};
    match store.account_by_email(DEV_ACCOUNT_EMAIL).await? {
        None => {
            let created = crate::account::create(
                store,
                "Development",
                DEV_ACCOUNT_EMAIL,
                DEV_ACCOUNT_PASSWORD,
                &[DEV_ACCOUNT_DOMAIN.to_string()],
                true,
            )
            .await?;
            info!(
                account = created.id,
                "created dev account {DEV_ACCOUNT_EMAIL} in sandbox mode (its password is in the README)"
            );
        }
        // The dev flow stays one command: its domain is verified (as an admin would).
        Some(account)
            if !account
                .allowed_domains
                .iter()
                .any(|d| d == DEV_ACCOUNT_DOMAIN) =>
        {
            store
                .create_domain(
                    account.id,
                    DEV_ACCOUNT_DOMAIN,
                    Some("admin"),
                    crate::account::now_ms(),
                )
                .await?;
        }
        Some(_) => {}
    }
    // The dev account captures everything it sends until someone turns that off on purpose.
    if let Some(account) = store.account_by_email(DEV_ACCOUNT_EMAIL).await? {
        if crate::account::keep_sandboxed(store, account.id).await? {
            info!(
                account = account.id,
                "dev account {DEV_ACCOUNT_EMAIL} put in sandbox mode"
            );
        } else if !account.sandbox {
            warn!(
                account = account.id,
                "dev account {DEV_ACCOUNT_EMAIL} is not in sandbox mode (turned off on purpose): its mail goes to its providers"
            );
        }
    }
    // A system admin for the web panel and the API's user login.
    if store.user_by_email(DEV_ADMIN_EMAIL).await?.is_none() {
        let id = crate::account::create_admin(store, DEV_ADMIN_EMAIL, DEV_ADMIN_PASSWORD).await?;
        info!(
            user = id,
            "created dev admin {DEV_ADMIN_EMAIL} (its password is in the README)"
        );
    }
    Ok(())
}

/// What the panel's run-time settings may override and the config file sets otherwise.
struct Overridable {
    log_level: crate::logging::LogLevel,
    api_rate_limit: Option<Arc<std::sync::Mutex<sluice_core::rate::WindowLimiter>>>,
    send_limiter: Option<Arc<std::sync::Mutex<sluice_core::rate::WindowLimiter>>>,
    acceptor: Arc<Acceptor>,
}

/// The values in force: the run-time setting where an admin made one, else the running
/// config's.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Effective {
    log_level: String,
    api_rate_limit_per_minute: u32,
    send_rate_limit_per_key_per_hour: u32,
    sync: bool,
}

fn effective(runtime: &sluice_http::runtime::RuntimeSettings, config: &Config) -> Effective {
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
        sync: match overrides.delivery_mode.as_deref() {
            Some(mode) => mode == "sync",
            None => config.delivery.mode == ConfigMode::Sync,
        },
    }
}

/// Applies the run-time settings over the running config as either changes. Until one
/// changes, what the process started with stays (the log level of `RUST_LOG` when set).
async fn follow_overridable(
    mut runtime: watch::Receiver<sluice_http::runtime::RuntimeSettings>,
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
        if wanted.sync != applied.sync {
            let mode = if wanted.sync {
                DeliveryMode::Sync
            } else {
                DeliveryMode::Async
            };
            targets.acceptor.set_mode(mode);
            info!(?mode, "delivery mode changed");
        }
        applied = wanted;
    }
}

const DEV_ADMIN_EMAIL: &str = "admin@example.com";
const DEV_ADMIN_PASSWORD: &str = "dev-admin";

pub async fn run(args: crate::ConfigArgs, roles: &[Role]) -> anyhow::Result<()> {
    let config = args.load()?;
    let dev = args.dev;
    let log_level = crate::logging::init(&config.logging)?;
    let metrics = crate::metrics::install().context("installing the metrics recorder")?;
    let store = open_store(&config).await?;
    let (egress, webhook_egress) = egress_policies(&config)?;
    if dev {
        ensure_dev_account(store.as_ref()).await?;
        let key = crate::dev_key::fresh_dev_key(store.as_ref(), &config.data_dir).await?;
        let admin = (DEV_ADMIN_EMAIL, DEV_ADMIN_PASSWORD);
        // One write, its error ignored: a closed stdout must not stop the server.
        let banner = crate::dev_key::banner(&config, admin, &key);
        let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), banner.as_bytes());
    }
    // SQLite has one node: whatever a previous run of this node leased is not being worked on.
    let released = store.release_all_leases(crate::account::now_ms()).await?;
    if released > 0 {
        info!(
            released,
            "returned messages leased by a previous run to the queue"
        );
    }

    let tls = sluice_smtp::tls::from_config(&config.tls, &config.data_dir, &config.smtp.hostname)?;
    // The panel's HTTPS (`panel.tls`) serves the same certificate, reloaded with it.
    let panel_tls = sluice_core::Live::from_arc(tls.clone());

    let (shutdown_tx, shutdown) = watch::channel(false);
    let node = format!("node-{}", uuid::Uuid::new_v4().simple());
    let master_key = Arc::new(master_key(&config)?);
    // Admins' run-time settings: read from the database every 2 s on every node.
    let (runtime_tx, runtime) = watch::channel(sluice_http::runtime::RuntimeSettings::default());
    tokio::spawn(sluice_http::runtime::watch_runtime_settings(
        store.clone(),
        master_key.clone(),
        runtime_tx,
        Duration::from_secs(2),
        shutdown.clone(),
    ));
    let dispatcher = sluice_worker::Dispatcher::new(
        store.clone(),
        master_key.clone(),
        sluice_deliver::from_config(
            &config.delivery.default_provider,
            &config.smtp.hostname,
            &sluice_deliver::Egress::Trusted,
        ),
        config.smtp.hostname.clone(),
        egress.clone(),
        Duration::from_millis(config.store.account_cache_ms),
    );
    dispatcher.limit_slots(sluice_worker::SlotLimits {
        per_provider: config.delivery.provider_concurrency,
        per_host: config.delivery.host_concurrency,
    });
    dispatcher.log_deliveries_to(sluice_deliver::delivery_log::DeliveryLog::start(
        delivery_log_path(&config),
    ));
    let group_commit = GroupCommitConfig {
        max_batch: config.store.group_commit_max_batch,
        max_wait: Duration::from_micros(config.store.group_commit_max_wait_micros),
    };
    // New messages and delivery attempts: one group committer, so they share transactions.
    let (committer, committer_task) = QueueCommitter::start(store.clone(), group_commit);
    let attempts = committer.clone();
    let wake = Arc::new(Notify::new());
    let retry = sluice_core::Live::new(config.delivery.retry.clone());
    let mode = match config.delivery.mode {
        ConfigMode::Async => DeliveryMode::Async,
        ConfigMode::Sync => DeliveryMode::Sync,
    };
    let acceptor = Arc::new(Acceptor::new(
        committer,
        store.clone(),
        dispatcher.clone(),
        mode,
        retry.clone(),
        wake.clone(),
        format!("{node}-sync"),
        Duration::from_secs(config.delivery.lease_secs),
        config.staging.clone(),
        Duration::from_millis(config.store.account_cache_ms),
    ));
    let reserve = disk_reserve(&config);
    if let Some(reserve) = &reserve {
        acceptor.keep_reserve(reserve.clone());
    }

    let auth = Arc::new(StoreAuthenticator::new(
        store.clone(),
        config.smtp.trusted_account.clone(),
        Duration::from_millis(config.store.account_cache_ms),
    )?);
    let smtp = sluice_smtp::SmtpServer::new(
        config.smtp.clone(),
        tls,
        auth,
        Arc::new(SmtpSink {
            acceptor: acceptor.clone(),
        }),
        shutdown.clone(),
    );
    let mut listeners = Vec::new();
    let smtp_listeners = if roles.contains(&Role::Smtp) {
        config.smtp.listeners.as_slice()
    } else {
        &[]
    };
    // Bind every listener before serving any, so a bad address fails the start cleanly.
    let mut sockets = Vec::new();
    for listener in smtp_listeners {
        let socket = TcpListener::bind(listener.addr)
            .await
            .with_context(|| format!("binding SMTP listener {}", listener.addr))?;
        sockets.push((socket, *listener));
    }
    for (socket, listener) in sockets {
        listeners.push(tokio::spawn(smtp.clone().serve(socket, listener)));
    }
    let connections: Arc<dyn sluice_core::ConnectionDirectory> = if roles.contains(&Role::Smtp) {
        smtp.clone()
    } else {
        Arc::new(sluice_core::NoConnections)
    };
    let serves_http = roles.contains(&Role::Http)
        && (config.http.listen.is_some() || config.panel.listen.is_some());
    let api = match serves_http {
        false => None,
        true => Some(api_state(
            &config,
            store.clone(),
            connections.clone(),
            Arc::new(crate::sink::ApiSink {
                acceptor: acceptor.clone(),
            }),
            master_key.clone(),
            (egress.clone(), webhook_egress.clone()),
        )?),
    };
    let (running_tx, running_rx) = watch::channel(Arc::new(config.clone()));
    tokio::spawn(follow_overridable(
        runtime.clone(),
        running_rx,
        Overridable {
            log_level,
            api_rate_limit: api.as_ref().map(|api| api.rate_limit.clone()),
            send_limiter: api.as_ref().map(|api| api.send_limiter.clone()),
            acceptor: acceptor.clone(),
        },
    ));
    let reload_targets = crate::reload::Targets {
        smtp: smtp.clone(),
        dispatcher: dispatcher.clone(),
        retry: retry.clone(),
        running: running_tx,
        panel_tls: panel_tls.clone(),
    };
    let reload_args = args.clone();
    tokio::spawn(crate::reload::follow_config(
        args.config.clone(),
        move || reload_args.load(),
        config.clone(),
        reload_targets,
        shutdown.clone(),
    ));
    let panel = match config.panel.listen.zip(api.clone()) {
        Some((addr, api)) => {
            let socket = TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the panel listener {addr}"))?;
            info!(%addr, "panel listener started");
            let state = sluice_panel::PanelState::new(api, &config.panel);
            Some(if config.panel.tls {
                tokio::spawn(sluice_panel::serve_tls(
                    socket,
                    state,
                    panel_tls.clone(),
                    shutdown.clone(),
                ))
            } else {
                tokio::spawn(sluice_panel::serve(socket, state, shutdown.clone()))
            })
        }
        None => None,
    };
    let http = match config.http.listen.zip(api) {
        Some((addr, api)) => {
            let socket = TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding HTTP listener {addr}"))?;
            info!(%addr, "http listener started");
            let router = sluice_http::router(
                sluice_http::HttpState {
                    store: store.clone(),
                    metrics: Some(metrics),
                    started: std::time::Instant::now(),
                    reserve: reserve.clone(),
                },
                Some(api),
            );
            Some(tokio::spawn(sluice_http::serve(
                socket,
                router,
                shutdown.clone(),
            )))
        }
        None => None,
    };
    let webhook = match config
        .webhook
        .listen
        .filter(|_| roles.contains(&Role::Http))
    {
        Some(addr) => {
            let socket = TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the webhook listener {addr}"))?;
            info!(%addr, "webhook listener started");
            let state = sluice_http::webhook::WebhookState::new(
                config.webhook.clone(),
                store.clone(),
                Arc::new(crate::sink::ApiSink {
                    acceptor: acceptor.clone(),
                }),
                config.smtp.hostname.clone(),
                config.smtp.max_message_size,
                runtime.clone(),
            );
            let router = sluice_http::webhook::router(state);
            Some(tokio::spawn(sluice_http::serve(
                socket,
                router,
                shutdown.clone(),
            )))
        }
        None => None,
    };
    let worker = Worker::new(
        store.clone(),
        dispatcher,
        attempts,
        WorkerConfig {
            concurrency: config.delivery.concurrency,
            batch_size: config.delivery.batch_size,
            lease: Duration::from_secs(config.delivery.lease_secs),
            poll_interval: Duration::from_millis(config.delivery.poll_interval_ms),
            retry: retry.clone(),
            staging: config.staging.clone(),
        },
        node.clone(),
        wake,
    );
    let worker_task = roles.contains(&Role::Worker).then(|| {
        // This node's async mail goes straight to its worker, leased in the INSERT.
        let (handoff, handed) = sluice_worker::handoff::handoff(
            config.delivery.concurrency,
            node.clone(),
            Duration::from_secs(config.delivery.lease_secs),
        );
        acceptor.hand_off_to(handoff);
        tokio::spawn(worker.run(shutdown.clone(), Some(handed)))
    });
    let hooks = &config.event_webhooks;
    let event_webhooks = sluice_worker::event_webhooks::EventWebhookSender::new(
        store.clone(),
        master_key.clone(),
        sluice_worker::event_webhooks::EventWebhookConfig {
            timeout: Duration::from_secs(hooks.timeout_secs),
            poll_interval: Duration::from_millis(hooks.poll_interval_ms),
            batch_size: hooks.batch_size,
            retry: hooks.retry.clone(),
        },
        format!("{node}-hooks"),
        webhook_egress.clone(),
    );
    let event_webhooks_task = roles
        .contains(&Role::Worker)
        .then(|| tokio::spawn(event_webhooks.run(shutdown.clone())));
    if roles.contains(&Role::Worker) {
        let retention = &config.retention;
        tokio::spawn(sluice_worker::retention::run(
            store.clone(),
            sluice_worker::retention::RetentionConfig {
                body_days: retention.body_days,
                metadata_days: retention.metadata_days,
                batch_size: retention.batch_size,
                interval: Duration::from_secs(retention.interval_secs),
            },
            shutdown.clone(),
        ));
    }
    info!(
        node = %node,
        database = %crate::redact_url(&config.database_url()),
        provider = config.delivery.default_provider.kind(),
        mode = ?config.delivery.mode,
        roles = ?roles,
        "sluice ready"
    );

    wait_for_signal().await;
    info!("shutting down: no new connections");
    let _ = shutdown_tx.send(true);
    for listener in listeners {
        let _ = listener.await;
    }
    let grace = Duration::from_secs(config.smtp.shutdown_grace_secs);
    let left = smtp.wait_for_sessions(grace).await;
    if left > 0 {
        warn!(left, "grace period over; cutting remaining sessions");
    }
    for task in [worker_task, event_webhooks_task].into_iter().flatten() {
        let _ = task.await;
    }
    for task in [http, webhook, panel].into_iter().flatten() {
        let _ = task.await;
    }
    // The last holders of the accept path (and so of the committer; the worker's copy went
    // with the worker): when they are gone the committer writes what it holds and ends.
    drop(connections);
    drop(smtp);
    drop(acceptor);
    let committers = async {
        let _ = committer_task.await;
    };
    if tokio::time::timeout(Duration::from_secs(5), committers)
        .await
        .is_err()
    {
        warn!("committer still busy at exit; sessions holding it were cut");
    }
    info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
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

/// This node's delivery log.
/// The egress policies: for tenants' destinations (`[egress] allow`, names resolved with
/// `[dns] nameservers`), and for event webhooks, which the deprecated
/// `event_webhooks.allow_private_targets` opens to the private ranges as well.
fn egress_policies(config: &Config) -> anyhow::Result<(EgressPolicy, EgressPolicy)> {
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

fn delivery_log_path(config: &Config) -> std::path::PathBuf {
    config.data_dir.join("delivery.log")
}

/// The API's state: token keys from config or the data dir, TTLs, login throttle.
fn api_state(
    config: &Config,
    store: Arc<dyn Store>,
    connections: Arc<dyn sluice_core::ConnectionDirectory>,
    submitter: Arc<dyn sluice_http::api::Submitter>,
    master_key: Arc<sluice_core::sealed::MasterKey>,
    (egress, webhook_egress): (EgressPolicy, EgressPolicy),
) -> anyhow::Result<sluice_http::api::ApiState> {
    let api = &config.api;
    let secret = if api.jwt_secret.is_empty() {
        key_file(&config.data_dir.join("jwt.key"))?.into_bytes()
    } else {
        api.jwt_secret.clone().into_bytes()
    };
    Ok(sluice_http::api::ApiState {
        store,
        tokens: Arc::new(sluice_http::api::tokens::Tokens::new(
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
        account_status: Arc::new(sluice_store::ttl_cache::TtlCache::new(
            Duration::from_millis(config.store.account_cache_ms),
        )),
        feedback: Arc::new(sluice_http::api::feedback::FeedbackState {
            max_age_secs: config.feedback.max_age_secs as i64,
            certificates: sluice_http::api::feedback::verify::SnsCertificates::new(
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
fn disk_reserve(config: &Config) -> Option<sluice_store::DiskReserve> {
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
