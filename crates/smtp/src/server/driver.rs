//! One session's driver: bytes between the connection and the sans-IO `Session`, its
//! deadlines, STARTTLS, AUTH against the `Authenticator`, and each message handed to the
//! `MessageSink` (the reply only after its answer).

use super::{SmtpServer, now_ms, stopped};
use crate::conn::Conn;
use crate::deadline::{InputPhase, RequestClock};
use crate::limits::AccountSlot;
use crate::session::{AuthOutcome, Event, RecipientVerdict, Session};
use crate::{Reply, sasl::Credentials};
use sluice_config::SmtpConfig;
use sluice_core::body::BodyWriter;
use sluice_core::text::sanitize_reply_text;
use sluice_core::{AcceptOutcome, AccountId, BodyError, Envelope, MessageBody, StoredBody};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tracing::{debug, info, warn};

pub(super) struct SessionDriver<'a> {
    pub(super) server: &'a SmtpServer,
    /// The `[smtp]` section as it was when the session started.
    pub(super) limits: Arc<SmtpConfig>,
    pub(super) peer: SocketAddr,
    pub(super) id: &'a str,
    /// Set once AUTH succeeds.
    pub(super) account: Option<AccountId>,
    /// This session's place in its account's connection count.
    pub(super) account_slot: Option<AccountSlot>,
    pub(super) user: Option<String>,
    /// Notified when an administrator closes the session.
    pub(super) close: Arc<Notify>,
    /// Where the content of the message being received went so far.
    pub(super) content: Content,
}

/// The content of the message being received, as [`Event::Content`] handed it out.
#[derive(Default)]
pub(super) enum Content {
    /// Nothing handed out yet.
    #[default]
    None,
    /// Written to the body store as it came.
    Stored(Box<dyn BodyWriter>),
    /// No body store: held here.
    Held(Vec<u8>),
    /// The body store failed: the rest is read and dropped, and the message refused.
    Failed,
}

impl SessionDriver<'_> {
    pub(super) async fn run(&mut self, session: &mut Session, conn: &mut Conn) -> &'static str {
        let idle = Duration::from_secs(self.limits.idle_timeout_secs);
        let mut clock = RequestClock::default();
        let mut out = session.greeting().to_bytes();
        // Only TLS sessions keep a read buffer (see `Conn::read_with`).
        let mut tls_buf = Vec::new();
        let mut shutdown = self.server.shutdown.clone();
        loop {
            while let Some(event) = session.next_event() {
                match event {
                    Event::Reply(reply) => reply.write_to(&mut out),
                    Event::Close => {
                        let _ = conn.write_all(&out).await;
                        return "closed";
                    }
                    Event::StartTls => {
                        if conn.write_all(&std::mem::take(&mut out)).await.is_err() {
                            return "write failed";
                        }
                        if let Err(why) = self.upgrade(conn).await {
                            return why;
                        }
                        session.tls_started();
                    }
                    Event::CheckRecipient(rcpt) => {
                        let verdict = match session.policy() {
                            Some(policy) => self.server.sink.check_recipient(policy, &rcpt).await,
                            None => RecipientVerdict::Unavailable,
                        };
                        session.recipient_checked(&rcpt, verdict);
                    }
                    Event::Authenticate(credentials) => {
                        let mut outcome = self.authenticate(&credentials).await;
                        if let AuthOutcome::Accepted(policy) = &outcome {
                            match self.server.account_slot(policy.account_id, &self.limits) {
                                Some(slot) => {
                                    self.account_slot = Some(slot);
                                    self.account = Some(policy.account_id);
                                    self.user = Some(credentials.username.clone());
                                }
                                None => outcome = AuthOutcome::AccountBusy,
                            }
                        }
                        session.auth_result(outcome);
                    }
                    Event::Content(chunk) => self.store_content(chunk).await,
                    Event::Message { envelope, body } => {
                        let reply = self.accept(session, envelope, body).await;
                        session.message_result(reply);
                    }
                }
            }
            if !session.content_pending() {
                // The transaction ended without a message: what was stored of it goes back.
                self.content = Content::None;
            }
            if !out.is_empty() && conn.write_all(&std::mem::take(&mut out)).await.is_err() {
                return "write failed";
            }
            self.publish(session);
            let stopping = *shutdown.borrow();
            if stopping && !session.in_transaction() {
                session.close_with(Reply::new(
                    421,
                    "4.3.2",
                    "Service shutting down, try again later",
                ));
                continue;
            }
            let phase = session.input_phase();
            let deadline =
                clock.read_deadline(phase, Instant::now(), idle, self.limits.min_data_rate);
            let read = tokio::select! {
                read = tokio::time::timeout_at(deadline.into(), conn.read_with(&mut tls_buf, |bytes| session.feed(bytes))) => read,
                _ = stopped(&mut shutdown), if !stopping => continue,
                _ = self.close.notified() => {
                    info!("closed by an administrator");
                    session.close_with(Reply::new(421, "4.3.2", "Connection closed by the administrator"));
                    continue;
                }
            };
            match read {
                Ok(Ok(0)) => return "client closed",
                Ok(Ok(_)) => {}
                Ok(Err(_)) => return "read failed",
                Err(_) => {
                    let why = match phase {
                        InputPhase::Idle => "Idle timeout",
                        InputPhase::Request => "Command not completed in time",
                        InputPhase::Content { .. } => "Message content arriving too slowly",
                    };
                    info!(why, "session timed out");
                    session.close_with(Reply::new(
                        421,
                        "4.4.2",
                        format!("{why}, closing connection"),
                    ));
                }
            }
        }
    }

    /// Updates what the registry shows of this session.
    fn publish(&self, session: &Session) {
        let (mail_from, recipients) = session.transaction_summary();
        if let Some((info, _)) = self.server.registry.lock().unwrap().get_mut(self.id) {
            info.tls = session.tls_active();
            info.account_id = session.account_id();
            info.user.clone_from(&self.user);
            info.mail_from = mail_from.map(str::to_string);
            info.recipients = recipients;
        }
    }

    async fn upgrade(&self, conn: &mut Conn) -> Result<(), &'static str> {
        let Conn::Plain(_) = conn else {
            return Err("starttls on tls");
        };
        let Conn::Plain(stream) = std::mem::replace(conn, Conn::Closed) else {
            return Err("starttls on tls");
        };
        let handshake = Duration::from_secs(self.limits.tls_handshake_timeout_secs);
        match tokio::time::timeout(handshake, self.server.tls.get().accept(stream)).await {
            Ok(Ok(tls)) => {
                *conn = Conn::Tls(Box::new(tls));
                debug!("starttls done");
                Ok(())
            }
            Ok(Err(_)) => Err("tls handshake failed"),
            Err(_) => Err("tls handshake timed out"),
        }
    }

    async fn authenticate(&self, credentials: &Credentials) -> AuthOutcome {
        let ip = self.peer.ip();
        if self.server.limiter.lock().unwrap().is_blocked(ip, now_ms()) {
            metrics::counter!("sluice_smtp_auth_total", "outcome" => "blocked").increment(1);
            warn!("auth refused: too many failures from this address");
            return AuthOutcome::Blocked;
        }
        match self
            .server
            .auth
            .authenticate(&credentials.username, &credentials.password)
            .await
        {
            Ok(Some(policy)) => {
                self.server.limiter.lock().unwrap().record_success(ip);
                metrics::counter!("sluice_smtp_auth_total", "outcome" => "success").increment(1);
                info!(user = %credentials.username, account = policy.account_id, "auth succeeded");
                AuthOutcome::Accepted(policy)
            }
            Ok(None) => {
                let blocked = self
                    .server
                    .limiter
                    .lock()
                    .unwrap()
                    .record_failure(ip, now_ms());
                metrics::counter!("sluice_smtp_auth_total", "outcome" => "failure").increment(1);
                warn!(user = %credentials.username, blocked, "auth failed");
                if blocked {
                    AuthOutcome::Blocked
                } else {
                    AuthOutcome::Rejected
                }
            }
            Err(error) => {
                warn!(%error, "auth check unavailable");
                AuthOutcome::Unavailable
            }
        }
    }

    /// Writes a chunk of content where it goes: the body store (opened with the first), or
    /// memory when there is none.
    async fn store_content(&mut self, chunk: Vec<u8>) {
        if let Content::None = self.content {
            self.content = match self.server.sink.body_writer().await {
                Ok(Some(writer)) => Content::Stored(writer),
                Ok(None) => Content::Held(Vec::new()),
                Err(error) => {
                    warn!(%error, "content not stored; the message will be refused");
                    Content::Failed
                }
            };
        }
        match &mut self.content {
            Content::Stored(writer) => {
                if let Err(error) = writer.write(&chunk).await {
                    warn!(%error, "content not stored; the message will be refused");
                    self.content = Content::Failed;
                }
            }
            Content::Held(held) => held.extend_from_slice(&chunk),
            Content::None | Content::Failed => {}
        }
    }

    /// The whole message: this hop's Received header, then the content handed out before
    /// and `rest`.
    async fn message_body(
        &mut self,
        session: &Session,
        rest: Vec<u8>,
    ) -> Result<MessageBody, BodyError> {
        let head = self.received_header(session).into_bytes();
        match std::mem::take(&mut self.content) {
            Content::None => Ok(MessageBody::Inline([head, rest].concat())),
            Content::Held(held) => Ok(MessageBody::Inline([head, held, rest].concat())),
            Content::Stored(mut writer) => {
                writer.write(&rest).await?;
                let (reference, len) = writer.finish().await?;
                Ok(MessageBody::Stored(StoredBody {
                    head,
                    reference,
                    len,
                }))
            }
            Content::Failed => Err(BodyError::Storage("an earlier write failed".into())),
        }
    }

    async fn accept(&mut self, session: &Session, envelope: Envelope, rest: Vec<u8>) -> Reply {
        let Some(policy) = session.policy() else {
            self.content = Content::None;
            return Reply::new(451, "4.3.0", "No account for this session");
        };
        let account_id = policy.account_id;
        let message = match self.message_body(session, rest).await {
            Ok(message) => message,
            Err(error) => {
                warn!(%error, "message refused: its content was not stored");
                return crate::outcome::reply_for(&AcceptOutcome::InsufficientStorage);
            }
        };
        let recipients = envelope.rcpt_to.len();
        let size = message.len();
        let outcome = self.server.sink.accept(policy, envelope, message).await;
        let reply = crate::outcome::reply_for(&outcome);
        info!(
            account = account_id,
            recipients,
            size,
            code = reply.code,
            "message"
        );
        reply
    }

    /// The RFC 5321 trace header this hop adds.
    fn received_header(&self, session: &Session) -> String {
        let with = match (session.tls_active(), self.account.is_some()) {
            (true, true) => "ESMTPSA",
            (true, false) => "ESMTPS",
            _ => "ESMTP",
        };
        let date = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_default();
        format!(
            "Received: from {} ({})\r\n\tby {} (Sluice) with {with} id {};\r\n\t{date}\r\n",
            sanitize_reply_text(session.helo().unwrap_or("unknown"), 100),
            self.peer.ip(),
            self.limits.hostname,
            self.id,
        )
    }
}
