//! A node: every part built from the config first (`Node::build`: store, keys, delivery,
//! the accept path, listeners bound), then run (`Node::run`) until SIGTERM/SIGINT, and
//! shut down in order: stop accepting, let sessions finish (up to the grace period), let
//! workers finish in-flight attempts, drain the committer.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use sluice_accept::{Acceptor, AcceptorSettings};
use sluice_config::{Config, ListenerConfig};
use sluice_core::{ConnectionDirectory, Live, RetryPolicy};
use sluice_runtime_settings::RuntimeSettings;
use sluice_store::ttl_cache::TtlCache;
use sluice_store::{DiskReserve, QueueCommitter, Store};
use sluice_worker::event_webhooks::EventWebhookSender;
use sluice_worker::handoff::HandoffReceiver;
use sluice_worker::{Dispatcher, SyncDelivery, Worker};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::overrides::{Overridable, follow_overridable};
use super::setup::{
    api_state, disk_reserve, dispatcher, egress_policies, event_webhooks, group_commit, master_key,
    worker_config,
};
use crate::auth::StoreAuthenticator;
use crate::{ConfigArgs, Role};

/// One process of Sluice with the roles it was started with, ready to run.
pub struct Node {
    args: ConfigArgs,
    config: Config,
    roles: Vec<Role>,
    /// Unique per process: the lease owner of this node's worker (and, suffixed, of its
    /// sync deliveries and webhook posts).
    id: String,
    store: Arc<dyn Store>,
    log_level: crate::logging::LogLevel,
    metrics: PrometheusHandle,
    shutdown_tx: watch::Sender<bool>,
    shutdown: watch::Receiver<bool>,
    /// Admins' run-time settings, read from the database every 2 s once running (the
    /// sender goes to the task that reads them).
    runtime_tx: Option<watch::Sender<RuntimeSettings>>,
    runtime: watch::Receiver<RuntimeSettings>,
    master_key: Arc<sluice_core::sealed::MasterKey>,
    retry: Live<RetryPolicy>,
    dispatcher: Arc<Dispatcher>,
    acceptor: Arc<Acceptor>,
    /// Ends once every holder of the committer is gone and what it held is written.
    committer_task: JoinHandle<()>,
    smtp: Arc<sluice_smtp::SmtpServer>,
    connections: Arc<dyn ConnectionDirectory>,
    /// The API's state when this node serves HTTP or the panel.
    api: Option<sluice_api::ApiState>,
    reserve: Option<DiskReserve>,
    /// The panel's HTTPS (`panel.tls`) serves the SMTP certificate, reloaded with it.
    panel_tls: Live<rustls::ServerConfig>,
    sockets: Sockets,
    /// The worker role's parts.
    worker: Option<WorkerParts>,
}

/// Every listener, bound before any serves, so a bad address fails the start cleanly.
struct Sockets {
    smtp: Vec<(TcpListener, ListenerConfig)>,
    panel: Option<TcpListener>,
    http: Option<TcpListener>,
    webhook: Option<TcpListener>,
}

struct WorkerParts {
    worker: Arc<Worker>,
    /// Mail this node's acceptor hands straight to its worker.
    handed: HandoffReceiver,
    event_webhooks: Arc<EventWebhookSender>,
}

/// The accept path of a node, and what its worker shares with it.
struct AcceptPath {
    acceptor: Arc<Acceptor>,
    /// The worker records attempts through the same group committer.
    committer: QueueCommitter,
    committer_task: JoinHandle<()>,
    /// Poked when mail is queued unleased.
    wake: Arc<Notify>,
    /// The worker's end of the hand-off, when this node runs a worker.
    handed: Option<HandoffReceiver>,
    /// One cache of accounts' statuses for the accept path and the API.
    account_status: Arc<TtlCache<sluice_core::AccountId, sluice_core::AccountStatus>>,
}

impl AcceptPath {
    fn build(
        config: &Config,
        node: &str,
        store: &Arc<dyn Store>,
        dispatcher: &Arc<Dispatcher>,
        retry: &Live<RetryPolicy>,
        with_worker: bool,
    ) -> AcceptPath {
        // New messages and delivery attempts: one group committer, so they share
        // transactions.
        let (committer, committer_task) =
            QueueCommitter::start(store.clone(), group_commit(config));
        let wake = Arc::new(Notify::new());
        // This node's async mail goes straight to its worker, leased in the INSERT.
        let (handoff, handed) = match with_worker {
            true => {
                let (handoff, handed) = sluice_worker::handoff::handoff(
                    config.delivery.concurrency,
                    node.to_string(),
                    Duration::from_secs(config.delivery.lease_secs),
                );
                (Some(handoff), Some(handed))
            }
            false => (None, None),
        };
        let cache_ttl = Duration::from_millis(config.store.account_cache_ms);
        let account_status = Arc::new(TtlCache::new(cache_ttl));
        let acceptor = Arc::new(Acceptor::new(AcceptorSettings {
            committer: committer.clone(),
            store: store.clone(),
            mode: config.delivery.mode,
            wake: wake.clone(),
            staging: config.staging.clone(),
            cache_ttl,
            account_status: account_status.clone(),
            sync: SyncDelivery {
                store: store.clone(),
                dispatcher: dispatcher.clone(),
                retry: retry.clone(),
                staging: config.staging.clone(),
                wake: wake.clone(),
                owner: format!("{node}-sync"),
                lease: Duration::from_secs(config.delivery.lease_secs),
            },
            handoff,
            reserve: disk_reserve(config),
            inline_body_bytes: config.storage.inline_body_bytes,
        }));
        AcceptPath {
            acceptor,
            committer,
            committer_task,
            wake,
            handed,
            account_status,
        }
    }
}

/// The SMTP server, with AUTH checked against the store; nothing served yet.
fn smtp_server(
    config: &Config,
    store: &Arc<dyn Store>,
    tls: Arc<rustls::ServerConfig>,
    acceptor: Arc<Acceptor>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Arc<sluice_smtp::SmtpServer>> {
    let auth = Arc::new(StoreAuthenticator::new(
        store.clone(),
        config.smtp.trusted_account.clone(),
        Duration::from_millis(config.store.account_cache_ms),
    )?);
    Ok(sluice_smtp::SmtpServer::new(
        config.smtp.clone(),
        tls,
        auth,
        acceptor,
        shutdown,
    ))
}

/// What `run` waits for at shutdown.
struct Tasks {
    smtp: Vec<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
    http: Vec<JoinHandle<std::io::Result<()>>>,
}

impl Node {
    /// Loads the config and builds every part; nothing is served yet.
    pub async fn build(args: ConfigArgs, roles: &[Role]) -> anyhow::Result<Node> {
        let config = args.load()?;
        let log_level = crate::logging::init(&config.logging)?;
        let metrics = crate::metrics::install().context("installing the metrics recorder")?;
        let store = super::open_store(&config).await?;
        let (egress, webhook_egress) = egress_policies(&config)?;
        if args.dev {
            dev_start(&config, store.as_ref()).await?;
        }
        release_previous_leases(store.as_ref()).await?;
        let tls =
            sluice_smtp::tls::from_config(&config.tls, &config.data_dir, &config.smtp.hostname)?;
        let panel_tls = Live::from_arc(tls.clone());
        let (shutdown_tx, shutdown) = watch::channel(false);
        let id = format!("node-{}", uuid::Uuid::new_v4().simple());
        let master_key = Arc::new(master_key(&config)?);
        let dispatcher = dispatcher(&config, &store, &master_key, &egress);
        let retry = Live::new(config.delivery.retry.clone());
        let accept = AcceptPath::build(
            &config,
            &id,
            &store,
            &dispatcher,
            &retry,
            roles.contains(&Role::Worker),
        );
        let AcceptPath {
            acceptor,
            committer,
            committer_task,
            wake,
            handed,
            account_status,
        } = accept;
        let smtp = smtp_server(&config, &store, tls, acceptor.clone(), shutdown.clone())?;
        let connections: Arc<dyn ConnectionDirectory> = match roles.contains(&Role::Smtp) {
            true => smtp.clone(),
            false => Arc::new(sluice_core::NoConnections),
        };
        let serves_http = roles.contains(&Role::Http)
            && (config.http.listen.is_some() || config.panel.listen.is_some());
        let api = match serves_http {
            false => None,
            true => Some(api_state(
                &config,
                store.clone(),
                connections.clone(),
                (acceptor.clone(), account_status),
                master_key.clone(),
                (egress, webhook_egress.clone()),
            )?),
        };
        let sockets = Sockets::bind(&config, roles, api.is_some()).await?;
        let reserve = disk_reserve(&config);
        let (runtime_tx, runtime) = watch::channel(RuntimeSettings::default());
        let worker = handed.map(|handed| WorkerParts {
            worker: Worker::new(
                store.clone(),
                dispatcher.clone(),
                committer,
                worker_config(&config, &retry),
                id.clone(),
                wake,
            ),
            handed,
            event_webhooks: event_webhooks(&config, &store, &master_key, &id, webhook_egress),
        });
        Ok(Node {
            args,
            config,
            roles: roles.to_vec(),
            id,
            store,
            log_level,
            metrics,
            shutdown_tx,
            shutdown,
            runtime_tx: Some(runtime_tx),
            runtime,
            master_key,
            retry,
            dispatcher,
            acceptor,
            committer_task,
            smtp,
            connections,
            api,
            reserve,
            panel_tls,
            sockets,
            worker,
        })
    }

    /// Serves until SIGTERM or SIGINT, then shuts down in order.
    pub async fn run(mut self) -> anyhow::Result<()> {
        if let Some(runtime_tx) = self.runtime_tx.take() {
            tokio::spawn(sluice_runtime_settings::watch_runtime_settings(
                self.store.clone(),
                self.master_key.clone(),
                runtime_tx,
                Duration::from_secs(2),
                self.shutdown.clone(),
            ));
        }
        let smtp = std::mem::take(&mut self.sockets.smtp)
            .into_iter()
            .map(|(socket, listener)| tokio::spawn(self.smtp.clone().serve(socket, listener)))
            .collect();
        self.follow_changes();
        let tasks = Tasks {
            smtp,
            http: self.serve_http(),
            background: self.start_background(),
        };
        let config = &self.config;
        info!(
            node = %self.id,
            database = %crate::redact_url(&config.database_url()),
            provider = config.delivery.default_provider.kind(),
            mode = ?config.delivery.mode,
            roles = ?self.roles,
            "sluice ready"
        );
        wait_for_signal().await;
        self.shut_down(tasks).await;
        Ok(())
    }

    /// Config reloads (file, certificates, SIGHUP) and the panel's run-time settings.
    fn follow_changes(&self) {
        let (running_tx, running_rx) = watch::channel(Arc::new(self.config.clone()));
        tokio::spawn(follow_overridable(
            self.runtime.clone(),
            running_rx,
            Overridable {
                log_level: self.log_level.clone(),
                api_rate_limit: self.api.as_ref().map(|api| api.rate_limit.clone()),
                send_limiter: self.api.as_ref().map(|api| api.send_limiter.clone()),
                acceptor: self.acceptor.clone(),
            },
        ));
        let targets = crate::reload::Targets {
            smtp: self.smtp.clone(),
            dispatcher: self.dispatcher.clone(),
            retry: self.retry.clone(),
            running: running_tx,
            panel_tls: self.panel_tls.clone(),
        };
        let reload_args = self.args.clone();
        tokio::spawn(crate::reload::follow_config(
            self.args.config.clone(),
            move || reload_args.load(),
            self.config.clone(),
            targets,
            self.shutdown.clone(),
        ));
    }

    /// The panel, the HTTP listener (health, metrics, API) and the outbound-email webhook.
    fn serve_http(&mut self) -> Vec<JoinHandle<std::io::Result<()>>> {
        let shutdown = &self.shutdown;
        let mut tasks = Vec::new();
        if let Some((socket, api)) = self.sockets.panel.take().zip(self.api.clone()) {
            let state = sluice_panel::PanelState::new(api, &self.config.panel);
            tasks.push(if self.config.panel.tls {
                tokio::spawn(sluice_panel::serve_tls(
                    socket,
                    state,
                    self.panel_tls.clone(),
                    shutdown.clone(),
                ))
            } else {
                tokio::spawn(sluice_panel::serve(socket, state, shutdown.clone()))
            });
        }
        if let Some((socket, api)) = self.sockets.http.take().zip(self.api.clone()) {
            let router = sluice_http::router(
                sluice_http::HttpState {
                    store: self.store.clone(),
                    metrics: Some(self.metrics.clone()),
                    started: std::time::Instant::now(),
                    reserve: self.reserve.clone(),
                },
                Some(api),
            );
            tasks.push(tokio::spawn(sluice_http::serve(
                socket,
                router,
                shutdown.clone(),
            )));
        }
        if let Some(socket) = self.sockets.webhook.take() {
            let state = sluice_http::webhook::WebhookState::new(
                self.config.webhook.clone(),
                self.store.clone(),
                self.acceptor.clone(),
                self.config.smtp.hostname.clone(),
                self.config.smtp.max_message_size,
                self.runtime.clone(),
            );
            let router = sluice_http::webhook::router(state);
            tasks.push(tokio::spawn(sluice_http::serve(
                socket,
                router,
                shutdown.clone(),
            )));
        }
        tasks
    }

    /// The worker role: the queue runner, the capture indexer, tenants' event webhooks,
    /// retention.
    fn start_background(&mut self) -> Vec<JoinHandle<()>> {
        let Some(parts) = self.worker.take() else {
            return Vec::new();
        };
        let retention = &self.config.retention;
        tokio::spawn(sluice_worker::retention::run(
            self.store.clone(),
            sluice_worker::retention::RetentionConfig {
                body_days: retention.body_days,
                metadata_days: retention.metadata_days,
                capture_count: retention.capture_count,
                capture_days: retention.capture_days,
                batch_size: retention.batch_size,
                interval: Duration::from_secs(retention.interval_secs),
            },
            self.shutdown.clone(),
        ));
        let indexer = sluice_worker::capture_index::CaptureIndexer::new(
            self.store.clone(),
            !self.config.storage.encrypt_bodies,
            Duration::from_millis(500),
        );
        vec![
            tokio::spawn(indexer.run(self.shutdown.clone())),
            tokio::spawn(parts.worker.run(self.shutdown.clone(), Some(parts.handed))),
            tokio::spawn(parts.event_webhooks.run(self.shutdown.clone())),
        ]
    }

    async fn shut_down(self, tasks: Tasks) {
        info!("shutting down: no new connections");
        let _ = self.shutdown_tx.send(true);
        for listener in tasks.smtp {
            let _ = listener.await;
        }
        let grace = Duration::from_secs(self.config.smtp.shutdown_grace_secs);
        let left = self.smtp.wait_for_sessions(grace).await;
        if left > 0 {
            warn!(left, "grace period over; cutting remaining sessions");
        }
        for task in tasks.background {
            let _ = task.await;
        }
        for task in tasks.http {
            let _ = task.await;
        }
        // The last holders of the accept path (and so of the committer; the worker's copy
        // went with the worker): when they are gone the committer writes what it holds and
        // ends.
        let Node {
            connections,
            smtp,
            acceptor,
            api,
            committer_task,
            ..
        } = self;
        drop((connections, smtp, acceptor, api));
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
    }
}

impl Sockets {
    async fn bind(config: &Config, roles: &[Role], serves_api: bool) -> anyhow::Result<Sockets> {
        let mut smtp = Vec::new();
        if roles.contains(&Role::Smtp) {
            for listener in &config.smtp.listeners {
                let socket = TcpListener::bind(listener.addr)
                    .await
                    .with_context(|| format!("binding SMTP listener {}", listener.addr))?;
                smtp.push((socket, *listener));
            }
        }
        let panel = match config.panel.listen.filter(|_| serves_api) {
            Some(addr) => Some(bind(addr, "the panel listener", "panel listener started").await?),
            None => None,
        };
        let http = match config.http.listen.filter(|_| serves_api) {
            Some(addr) => Some(bind(addr, "HTTP listener", "http listener started").await?),
            None => None,
        };
        let webhook = match config
            .webhook
            .listen
            .filter(|_| roles.contains(&Role::Http))
        {
            Some(addr) => {
                Some(bind(addr, "the webhook listener", "webhook listener started").await?)
            }
            None => None,
        };
        Ok(Sockets {
            smtp,
            panel,
            http,
            webhook,
        })
    }
}

/// Binds the listener `what` to `addr` and logs `started`.
async fn bind(
    addr: std::net::SocketAddr,
    what: &str,
    started: &str,
) -> anyhow::Result<TcpListener> {
    let socket = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {what} {addr}"))?;
    info!(%addr, "{started}");
    Ok(socket)
}

/// `serve --dev`: the dev account and admin, and the start banner with a fresh dev key.
async fn dev_start(config: &Config, store: &dyn Store) -> anyhow::Result<()> {
    super::dev::ensure_dev_account(store).await?;
    let key = crate::dev_key::fresh_dev_key(store, &config.data_dir).await?;
    let admin = (super::dev::DEV_ADMIN_EMAIL, super::dev::DEV_ADMIN_PASSWORD);
    // One write, its error ignored: a closed stdout must not stop the server.
    let banner = crate::dev_key::banner(config, admin, &key);
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), banner.as_bytes());
    Ok(())
}

/// SQLite has one node: whatever a previous run of this node leased is not being worked on.
async fn release_previous_leases(store: &dyn Store) -> anyhow::Result<()> {
    let released = store.release_all_leases(crate::account::now_ms()).await?;
    if released > 0 {
        info!(
            released,
            "returned messages leased by a previous run to the queue"
        );
    }
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
