//! The tokio side of POP3: an accept loop per listener (plaintext with STLS, or implicit
//! TLS), a semaphore for the connection limit, one task per session driving the sans-IO
//! [`Session`], an idle timeout, and shutdown from the node's shutdown signal.
//!
//! Logins are checked by the SMTP [`Authenticator`] (the same users and passwords as SMTP
//! AUTH; an inactive account cannot log in). A failed login waits `failed_login_delay`
//! before its answer, and `max_auth_failures` failures from one client address within
//! `auth_failure_window` block that address (a [`FailureLimiter`] of POP3's own). Without
//! TLS, USER/PASS is accepted only from loopback or `trusted_networks`.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;
use sluice_core::{AccountId, FailureLimiter, Live};
use sluice_smtp::Authenticator;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::{Instrument, debug, info, warn};

use crate::maildrop::CapturedMailbox;
use crate::session::{Event, FetchOutcome, LoginOutcome, Password, Session, SessionConfig};
use crate::wire::status_error;

/// What a node's POP3 listeners run with.
#[derive(Debug, Clone)]
pub struct Pop3Settings {
    /// Sessions open at once, over all POP3 listeners of the node.
    pub max_connections: usize,
    /// A session that sends nothing for this long is closed (without deleting anything).
    pub idle_timeout: Duration,
    pub tls_handshake_timeout: Duration,
    /// Clients that may log in without TLS, besides loopback.
    pub trusted_networks: Vec<IpNet>,
    pub max_auth_failures: u32,
    pub auth_failure_window: Duration,
    /// How long a wrong password waits for its answer.
    pub failed_login_delay: Duration,
    /// The newest this many captured messages make a maildrop.
    pub max_messages: usize,
}

/// What every POP3 listener of one node shares.
pub struct Pop3Server {
    settings: Pop3Settings,
    /// The SMTP listeners' certificate; replaced when a reload renews it.
    tls: Live<rustls::ServerConfig>,
    auth: Arc<dyn Authenticator>,
    mailbox: Arc<dyn CapturedMailbox>,
    limiter: Mutex<FailureLimiter>,
    slots: Arc<Semaphore>,
    shutdown: watch::Receiver<bool>,
}

enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Between taking the plaintext stream and getting the TLS one back.
    Closed,
}

impl Conn {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf).await,
            Conn::Tls(s) => s.read(buf).await,
            Conn::Closed => Ok(0),
        }
    }

    async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.write_all(bytes).await,
            Conn::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
            Conn::Closed => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }

    async fn shutdown(&mut self) {
        let _ = match self {
            Conn::Plain(s) => s.shutdown().await,
            Conn::Tls(s) => s.shutdown().await,
            Conn::Closed => Ok(()),
        };
    }
}

/// How a session ended, for its log line.
type Ended = &'static str;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

impl Pop3Server {
    pub fn new(
        settings: Pop3Settings,
        tls: Live<rustls::ServerConfig>,
        auth: Arc<dyn Authenticator>,
        mailbox: Arc<dyn CapturedMailbox>,
        shutdown: watch::Receiver<bool>,
    ) -> Arc<Self> {
        Arc::new(Pop3Server {
            limiter: Mutex::new(FailureLimiter::new(
                settings.max_auth_failures,
                settings.auth_failure_window.as_millis() as i64,
            )),
            slots: Arc::new(Semaphore::new(settings.max_connections)),
            settings,
            tls,
            auth,
            mailbox,
            shutdown,
        })
    }

    /// Sessions open now.
    pub fn open_connections(&self) -> usize {
        self.settings
            .max_connections
            .saturating_sub(self.slots.available_permits())
    }

    /// Waits until every session has ended, or `grace` has passed. Returns the number left.
    pub async fn wait_for_sessions(&self, grace: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + grace;
        while self.open_connections() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.open_connections()
    }

    /// Accepts connections on `listener` until shutdown; `implicit_tls` for the
    /// `tls_listen` listener, else plaintext with STLS.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, implicit_tls: bool) {
        let mut shutdown = self.shutdown.clone();
        let addr = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let tls = if implicit_tls { "implicit" } else { "stls" };
        info!(%addr, tls, "pop3 listener started");
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        warn!(%error, "pop3 accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = stopped(&mut shutdown) => break,
            };
            let _ = stream.set_nodelay(true);
            metrics::counter!("sluice_pop3_connections_total").increment(1);
            let server = self.clone();
            let span = tracing::info_span!("pop3", peer = %peer);
            tokio::spawn(
                async move {
                    let Ok(slot) = server.slots.clone().try_acquire_owned() else {
                        info!("pop3 connection refused: too many connections");
                        if let Some(mut conn) = server.handshake(stream, implicit_tls).await {
                            let reply =
                                status_error(Some("SYS/TEMP"), "Too many connections, try later");
                            let _ = tokio::time::timeout(
                                server.settings.tls_handshake_timeout,
                                conn.write_all(&reply),
                            )
                            .await;
                            conn.shutdown().await;
                        }
                        return;
                    };
                    if let Some(mut conn) = server.handshake(stream, implicit_tls).await {
                        let ended = server.session(&mut conn, peer, implicit_tls).await;
                        conn.shutdown().await;
                        info!(ended, "pop3 session ended");
                    }
                    drop(slot);
                }
                .instrument(span),
            );
        }
        info!(%addr, "pop3 listener stopped");
    }

    /// The connection, after the TLS handshake when `implicit_tls`; `None` when that failed
    /// or timed out.
    async fn handshake(&self, stream: TcpStream, implicit_tls: bool) -> Option<Conn> {
        if !implicit_tls {
            return Some(Conn::Plain(stream));
        }
        self.accept_tls(stream)
            .await
            .map(|tls| Conn::Tls(Box::new(tls)))
    }

    async fn accept_tls(&self, stream: TcpStream) -> Option<TlsStream<TcpStream>> {
        let acceptor = TlsAcceptor::from(self.tls.get());
        match tokio::time::timeout(self.settings.tls_handshake_timeout, acceptor.accept(stream))
            .await
        {
            Ok(Ok(tls)) => Some(tls),
            Ok(Err(error)) => {
                debug!(%error, "pop3 tls handshake failed");
                None
            }
            Err(_) => {
                debug!("pop3 tls handshake timed out");
                None
            }
        }
    }

    fn plaintext_login_allowed(&self, ip: IpAddr) -> bool {
        ip.is_loopback()
            || ip.to_canonical().is_loopback()
            || self
                .settings
                .trusted_networks
                .iter()
                .any(|net| net.contains(&ip) || net.contains(&ip.to_canonical()))
    }

    async fn session(&self, conn: &mut Conn, peer: SocketAddr, implicit_tls: bool) -> Ended {
        let mut session = Session::new(SessionConfig {
            stls_offered: !implicit_tls,
            tls_active: implicit_tls,
            plaintext_login_allowed: self.plaintext_login_allowed(peer.ip()),
        });
        let mut shutdown = self.shutdown.clone();
        let mut account: Option<AccountId> = None;
        let mut buf = vec![0u8; 4096];
        loop {
            while let Some(event) = session.next_event() {
                match event {
                    Event::Reply(bytes) => {
                        if !self.write(conn, &bytes).await {
                            return "write failed";
                        }
                    }
                    Event::Login { user, password } => {
                        let outcome = match self.login(peer.ip(), &user, &password).await {
                            Ok(id) => {
                                let opened = self.open_maildrop(id).await;
                                if matches!(opened, LoginOutcome::Opened(_)) {
                                    account = Some(id);
                                }
                                opened
                            }
                            Err(outcome) => outcome,
                        };
                        session.login_checked(outcome);
                    }
                    Event::Fetch { id, .. } => {
                        let outcome = match account {
                            Some(account) => match self.mailbox.read(account, id).await {
                                Ok(Some(bytes)) => FetchOutcome::Found(bytes),
                                Ok(None) => FetchOutcome::Gone,
                                Err(error) => {
                                    warn!(%error, message = id, "pop3 message not read");
                                    FetchOutcome::Unavailable
                                }
                            },
                            None => FetchOutcome::Gone,
                        };
                        session.fetched(outcome);
                    }
                    Event::StartTls => {
                        let Conn::Plain(stream) = std::mem::replace(conn, Conn::Closed) else {
                            return "stls on tls";
                        };
                        match self.accept_tls(stream).await {
                            Some(tls) => *conn = Conn::Tls(Box::new(tls)),
                            None => return "stls handshake failed",
                        }
                        session.tls_started();
                    }
                    Event::Update { delete } => {
                        let deleted_all = match (account, delete.is_empty()) {
                            (_, true) => true,
                            (None, false) => false,
                            (Some(account), false) => {
                                match self.mailbox.delete(account, &delete).await {
                                    Ok(deleted) => {
                                        info!(account, deleted, "pop3 messages deleted");
                                        true
                                    }
                                    Err(error) => {
                                        warn!(%error, account, "pop3 deletions not applied");
                                        false
                                    }
                                }
                            }
                        };
                        session.updated(deleted_all);
                    }
                    Event::Close => return "closed",
                }
            }
            let read = tokio::select! {
                read = tokio::time::timeout(self.settings.idle_timeout, conn.read(&mut buf)) => read,
                _ = stopped(&mut shutdown) => {
                    let bye = status_error(Some("SYS/TEMP"), "Server shutting down");
                    self.write(conn, &bye).await;
                    return "shutdown";
                }
            };
            match read {
                Ok(Ok(0)) => return "client closed",
                Ok(Ok(n)) => session.feed(&buf[..n]),
                Ok(Err(error)) => {
                    debug!(%error, "pop3 read failed");
                    return "read failed";
                }
                Err(_) => {
                    let bye = status_error(None, "Idle for too long, closing");
                    self.write(conn, &bye).await;
                    return "idle timeout";
                }
            }
        }
    }

    /// Writes within the idle timeout; false when the client is gone or stuck.
    async fn write(&self, conn: &mut Conn, bytes: &[u8]) -> bool {
        matches!(
            tokio::time::timeout(self.settings.idle_timeout, conn.write_all(bytes)).await,
            Ok(Ok(()))
        )
    }

    /// The account of a right user and password; the session's answer otherwise (after the
    /// failed-login delay).
    async fn login(
        &self,
        ip: IpAddr,
        user: &str,
        password: &Password,
    ) -> Result<AccountId, LoginOutcome> {
        if self.limiter.lock().unwrap().is_blocked(ip, now_ms()) {
            metrics::counter!("sluice_pop3_logins_total", "result" => "blocked").increment(1);
            info!(client_ip = %ip, "pop3 login refused: too many failures from this address");
            return Err(LoginOutcome::Blocked);
        }
        match self.auth.authenticate(user, &password.0).await {
            Ok(Some(policy)) => {
                self.limiter.lock().unwrap().record_success(ip);
                metrics::counter!("sluice_pop3_logins_total", "result" => "ok").increment(1);
                info!(account = policy.account_id, "pop3 login");
                Ok(policy.account_id)
            }
            Ok(None) => {
                let blocked = self.limiter.lock().unwrap().record_failure(ip, now_ms());
                metrics::counter!("sluice_pop3_logins_total", "result" => "failed").increment(1);
                info!(client_ip = %ip, blocked, "pop3 login failed");
                tokio::time::sleep(self.settings.failed_login_delay).await;
                Err(match blocked {
                    true => LoginOutcome::Blocked,
                    false => LoginOutcome::Refused,
                })
            }
            Err(error) => {
                warn!(%error, "pop3 login not checked");
                Err(LoginOutcome::Unavailable)
            }
        }
    }

    async fn open_maildrop(&self, account: AccountId) -> LoginOutcome {
        match self.mailbox.list(account, self.settings.max_messages).await {
            Ok(entries) => {
                debug!(account, messages = entries.len(), "pop3 maildrop opened");
                LoginOutcome::Opened(entries)
            }
            Err(error) => {
                warn!(%error, account, "pop3 maildrop not listed");
                LoginOutcome::Unavailable
            }
        }
    }
}

/// Resolves once shutdown has begun.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
