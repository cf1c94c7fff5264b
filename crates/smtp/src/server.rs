//! The tokio side: accept loop with a connection semaphore, one task per session driving
//! the sans-IO [`Session`], TLS upgrades, timeouts and shutdown.

mod driver;

use driver::SessionDriver;

use crate::Reply;
use crate::conn::Conn;
use crate::limits::{AccountSlot, OpenSessions};
use crate::session::{RecipientVerdict, Session, SessionConfig};
use async_trait::async_trait;
use sluice_config::{ListenerAuth, ListenerConfig, ListenerTls, SmtpConfig};
use sluice_core::{
    AcceptOutcome, AccountId, AccountPolicy, ConnectionDirectory, ConnectionInfo, Envelope,
    FailureLimiter, Live,
};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio_rustls::TlsAcceptor;
use tracing::{Instrument, debug, info, warn};

/// Checks SMTP credentials. Implemented over the store by the binary.
#[async_trait]
pub trait Authenticator: Send + Sync + 'static {
    /// `Ok(None)` for wrong credentials; `Err` when the check could not be made.
    async fn authenticate(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<AccountPolicy>, String>;
    /// The account trusted-network clients send as.
    async fn trusted_policy(&self) -> Result<TrustedAccount, String>;
}

/// The account `smtp.trusted_account` names, as the store has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustedAccount {
    Active(AccountPolicy),
    /// Greeted `421 4.7.0`: a suspension can be lifted, so clients keep their mail and
    /// retry.
    Suspended,
    /// Greeted `554 5.7.1`: no mail is taken here, and retrying will not change that.
    Deleted,
    /// No such account (a configuration mistake): `421 4.3.0`.
    Missing,
}

/// Takes accepted messages. Its outcome is the client's answer (`outcome::reply_for`):
/// 250 only once the message is stored.
#[async_trait]
pub trait MessageSink: Send + Sync + 'static {
    async fn accept(
        &self,
        policy: &AccountPolicy,
        envelope: Envelope,
        body: sluice_core::MessageBody,
    ) -> AcceptOutcome;
    /// Where a message's content goes as it arrives, so a session never holds a large
    /// message whole; `None` keeps it in memory (no body store).
    async fn body_writer(
        &self,
    ) -> Result<Option<Box<dyn sluice_core::body::BodyWriter>>, sluice_core::BodyError> {
        Ok(None)
    }
    /// Whether the account may send to `rcpt` (its suppression list).
    async fn check_recipient(&self, policy: &AccountPolicy, rcpt: &str) -> RecipientVerdict;
}

/// What all listeners of one node share.
pub struct SmtpServer {
    /// Replaced by a config reload; each session reads it once, at its start. Listener
    /// addresses are bound at start and do not change.
    config: Live<SmtpConfig>,
    /// Replaced when the certificate files change.
    tls: Live<TlsAcceptor>,
    auth: Arc<dyn Authenticator>,
    sink: Arc<dyn MessageSink>,
    limiter: Mutex<FailureLimiter>,
    open: Arc<OpenSessions>,
    shutdown: watch::Receiver<bool>,
    /// Live sessions, for the API: what they are doing and a way to end each.
    registry: Mutex<HashMap<String, (ConnectionInfo, Arc<Notify>)>>,
}

impl ConnectionDirectory for SmtpServer {
    fn list(&self) -> Vec<ConnectionInfo> {
        let mut list: Vec<ConnectionInfo> = self
            .registry
            .lock()
            .unwrap()
            .values()
            .map(|(info, _)| info.clone())
            .collect();
        list.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.id.cmp(&b.id)));
        list
    }

    fn close(&self, id: &str) -> bool {
        match self.registry.lock().unwrap().get(id) {
            Some((_, close)) => {
                close.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Removes a session from the registry when it ends, however it ends.
struct Registered<'a> {
    server: &'a SmtpServer,
    id: String,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.server.registry.lock().unwrap().remove(&self.id);
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

impl SmtpServer {
    pub fn new(
        config: SmtpConfig,
        tls: Arc<rustls::ServerConfig>,
        auth: Arc<dyn Authenticator>,
        sink: Arc<dyn MessageSink>,
        shutdown: watch::Receiver<bool>,
    ) -> Arc<Self> {
        Arc::new(SmtpServer {
            limiter: Mutex::new(FailureLimiter::new(
                config.max_auth_failures,
                config.auth_failure_window_secs as i64 * 1000,
            )),
            open: Arc::new(OpenSessions::default()),
            config: Live::new(config),
            tls: Live::new(TlsAcceptor::from(tls)),
            auth,
            sink,
            shutdown,
            registry: Mutex::new(HashMap::new()),
        })
    }

    /// Sessions open now.
    pub fn open_connections(&self) -> usize {
        self.open.count()
    }

    /// Applies a reloaded `[smtp]` section to sessions that start from now on: connection
    /// limits, trusted networks, timeouts, message limits, the hostname. Listener addresses
    /// need a restart.
    pub fn apply_config(&self, config: SmtpConfig) {
        self.config.set(config);
    }

    /// A place among the account's sessions, or `None` (counted and logged) when it holds
    /// `smtp.max_connections_per_account` already.
    fn account_slot(&self, account: AccountId, limits: &SmtpConfig) -> Option<AccountSlot> {
        let slot = self
            .open
            .claim_account(account, limits.max_connections_per_account);
        if slot.is_none() {
            metrics::counter!("sluice_smtp_connections_refused_total", "reason" => "account_limit")
                .increment(1);
            info!(account, "refused: the account is at its connection limit");
        }
        slot
    }

    /// Serves new TLS handshakes with this configuration (a renewed certificate).
    pub fn apply_tls(&self, tls: Arc<rustls::ServerConfig>) {
        self.tls.set(TlsAcceptor::from(tls));
    }

    /// Waits until every session has ended, or `grace` has passed. Returns the number left.
    pub async fn wait_for_sessions(&self, grace: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + grace;
        while self.open_connections() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.open_connections()
    }

    /// Accepts connections on `listener` until shutdown.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, kind: ListenerConfig) {
        let mut shutdown = self.shutdown.clone();
        info!(addr = %kind.addr, tls = ?kind.tls, auth = ?kind.auth, "smtp listener started");
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = stopped(&mut shutdown) => break,
            };
            let _ = stream.set_nodelay(true);
            metrics::counter!("sluice_smtp_connections_total").increment(1);
            let server = self.clone();
            let session_id = new_session_id();
            let span = tracing::info_span!("smtp", session = %session_id, peer = %peer);
            tokio::spawn(
                async move {
                    let refusal = server.refusal_at_connect(peer.ip(), &kind);
                    match refusal {
                        Some((reason, reply)) => {
                            metrics::counter!("sluice_smtp_connections_refused_total", "reason" => reason)
                                .increment(1);
                            info!(reason, "connection refused");
                            server.refuse(stream, &kind, reply).await;
                        }
                        None => match server.open.open(server.config.get().max_connections) {
                            Some(slot) => {
                                server.session(stream, peer, &kind, &session_id).await;
                                drop(slot);
                            }
                            None => {
                                metrics::counter!("sluice_smtp_connections_refused_total", "reason" => "max_connections")
                                    .increment(1);
                                info!("connection refused: too many connections");
                                let reply = Reply::new(421, "4.7.0", "Too many connections, try again later");
                                server.refuse(stream, &kind, reply).await;
                            }
                        },
                    }
                }
                .instrument(span),
            );
        }
        info!(addr = %kind.addr, "smtp listener stopped");
    }

    fn refusal_at_connect(
        &self,
        ip: IpAddr,
        kind: &ListenerConfig,
    ) -> Option<(&'static str, Reply)> {
        if kind.auth == ListenerAuth::None
            && !self
                .config
                .get()
                .trusted_networks
                .iter()
                .any(|net| net.contains(&ip))
        {
            return Some((
                "untrusted",
                Reply::new(554, "5.7.1", "Relaying from your address is not permitted"),
            ));
        }
        None
    }

    async fn refuse(&self, stream: TcpStream, kind: &ListenerConfig, reply: Reply) {
        let handshake = Duration::from_secs(self.config.get().tls_handshake_timeout_secs);
        let conn = if kind.tls == ListenerTls::Implicit {
            match tokio::time::timeout(handshake, self.tls.get().accept(stream)).await {
                Ok(Ok(tls)) => Conn::Tls(Box::new(tls)),
                _ => return,
            }
        } else {
            Conn::Plain(stream)
        };
        let mut conn = conn;
        let _ = tokio::time::timeout(handshake, async {
            let _ = conn.write_all(&reply.to_bytes()).await;
            let _ = conn.shutdown().await;
        })
        .await;
    }

    async fn session(&self, stream: TcpStream, peer: SocketAddr, kind: &ListenerConfig, id: &str) {
        let limits = self.config.get();
        let Some(mut conn) = self.handshake(stream, kind, &limits).await else {
            return;
        };
        let (trusted, account_slot) = match self.trusted_at_connect(kind, &limits).await {
            Ok(trusted) => trusted,
            Err(reply) => {
                let _ = conn.write_all(&reply.to_bytes()).await;
                return;
            }
        };
        let config = SessionConfig {
            hostname: limits.hostname.clone(),
            max_message_size: limits.max_message_size,
            max_recipients: limits.max_recipients,
            max_line: 4096,
            starttls: kind.tls == ListenerTls::Starttls,
            tls_active: kind.tls == ListenerTls::Implicit,
            auth_required: kind.auth == ListenerAuth::Required,
        };
        let mut session = Session::new(config, trusted);
        session.seed_chaos(rand::random());
        let close = Arc::new(Notify::new());
        let _registered = self.register(&session, peer, kind, id, close.clone());
        let mut driver = SessionDriver {
            server: self,
            limits: limits.clone(),
            peer,
            id,
            account: None,
            account_slot,
            user: None,
            close,
            content: Default::default(),
        };
        info!(
            client_ip = %peer.ip(),
            tls = session.tls_active(),
            auth = if session.authenticated() { "trusted" } else { "none" },
            "session started"
        );
        let outcome = driver.run(&mut session, &mut conn).await;
        let _ = conn.shutdown().await;
        info!(
            outcome,
            account = session.account_id(),
            auth = match (session.authenticated(), driver.user.is_some()) {
                (true, true) => "authenticated",
                (true, false) => "trusted",
                _ => "none",
            },
            "session ended"
        );
    }

    /// The connection, after the TLS handshake on an implicit-TLS listener; None when
    /// that failed or timed out.
    async fn handshake(
        &self,
        stream: TcpStream,
        kind: &ListenerConfig,
        limits: &SmtpConfig,
    ) -> Option<Conn> {
        if kind.tls != ListenerTls::Implicit {
            return Some(Conn::Plain(stream));
        }
        let handshake = Duration::from_secs(limits.tls_handshake_timeout_secs);
        match tokio::time::timeout(handshake, self.tls.get().accept(stream)).await {
            Ok(Ok(tls)) => Some(Conn::Tls(Box::new(tls))),
            Ok(Err(error)) => {
                debug!(%error, "tls handshake failed");
                None
            }
            Err(_) => {
                debug!("tls handshake timed out");
                None
            }
        }
    }

    /// On a listener without AUTH, the trusted account's policy and its place in the
    /// account's connection count; the greeting that refuses the session instead when the
    /// account is not active, not found, or at its connection limit.
    async fn trusted_at_connect(
        &self,
        kind: &ListenerConfig,
        limits: &SmtpConfig,
    ) -> Result<(Option<AccountPolicy>, Option<AccountSlot>), Reply> {
        if kind.auth != ListenerAuth::None {
            return Ok((None, None));
        }
        match self.auth.trusted_policy().await {
            Ok(TrustedAccount::Active(policy)) => {
                match self.account_slot(policy.account_id, limits) {
                    Some(slot) => Ok((Some(policy), Some(slot))),
                    None => Err(Reply::new(
                        421,
                        "4.7.0",
                        "Too many connections for this account, try again later",
                    )),
                }
            }
            Ok(TrustedAccount::Suspended) => Err(Reply::new(
                421,
                "4.7.0",
                "The account of this service is suspended, try again later",
            )),
            Ok(TrustedAccount::Deleted) => Err(Reply::new(
                554,
                "5.7.1",
                "The account of this service is deleted; no mail is accepted here",
            )),
            Ok(TrustedAccount::Missing) => {
                warn!("smtp.trusted_account does not name an account");
                Err(Reply::new(
                    421,
                    "4.3.0",
                    "Service not available, try again later",
                ))
            }
            Err(error) => {
                warn!(%error, "trusted account lookup failed");
                Err(Reply::new(
                    421,
                    "4.3.0",
                    "Service not available, try again later",
                ))
            }
        }
    }

    /// The session in the registry of open connections (what the API lists and may
    /// close) until the returned guard drops.
    fn register(
        &self,
        session: &Session,
        peer: SocketAddr,
        kind: &ListenerConfig,
        id: &str,
        close: Arc<Notify>,
    ) -> Registered<'_> {
        let info = ConnectionInfo {
            id: id.to_string(),
            remote_addr: peer.to_string(),
            listener: kind.addr.to_string(),
            tls: session.tls_active(),
            account_id: session.account_id(),
            user: None,
            mail_from: None,
            recipients: 0,
            started_at: now_ms(),
        };
        self.registry
            .lock()
            .unwrap()
            .insert(id.to_string(), (info, close));
        Registered {
            server: self,
            id: id.to_string(),
        }
    }
}

/// Resolves once shutdown has begun.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

fn new_session_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}
