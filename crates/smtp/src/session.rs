//! Long because it is one state machine: every command handler reads and moves the same
//! `State`, and the transitions are checked by reading them side by side (byte tables in
//! `session_tests.rs`); split across files it would be harder to follow, not easier.
//!
//! The SMTP server session as a state machine: bytes in, replies and events out.
//!
//! It knows nothing of sockets, TLS libraries, clocks or databases. The caller feeds what it
//! reads with [`Session::feed`], then drains [`Session::next_event`]: replies to write, and
//! requests it must answer before the session goes on (check credentials, commit a message,
//! upgrade to TLS).

use std::borrow::Cow;

use sluice_core::{AccountPolicy, Envelope, validate_mailbox};
use smtp_proto::Request;
use smtp_proto::{AUTH_LOGIN, AUTH_PLAIN, Error as ProtoError, MAIL_BODY_8BITMIME, MAIL_SMTPUTF8};

use sluice_core::body::BODY_CHUNK;

use crate::data::{BareNewlineCheck, ContentError, DataReceiver, Ingested};
use crate::deadline::InputPhase;
use crate::reply::Reply;
use crate::sasl::{self, Credentials, SaslError};

/// What the session was configured with by its listener.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub hostname: String,
    pub max_message_size: usize,
    pub max_recipients: usize,
    /// Longest command line, CRLF included.
    pub max_line: usize,
    /// The listener offers STARTTLS (plaintext listeners with `tls = "starttls"`).
    pub starttls: bool,
    /// The connection is already TLS (implicit TLS listeners).
    pub tls_active: bool,
    /// Clients must AUTH before MAIL. When false, `trusted` must be given to `Session::new`.
    pub auth_required: bool,
}

/// What the caller must do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// Write these bytes to the client.
    Reply(Reply),
    /// Flush the replies so far, then do the TLS handshake and call [`Session::tls_started`].
    StartTls,
    /// Check these credentials and call [`Session::auth_result`].
    Authenticate(Credentials),
    /// Check this recipient against the account's suppressions and call
    /// [`Session::recipient_checked`].
    CheckRecipient(String),
    /// The next part of the message's content (about [`BODY_CHUNK`] bytes): store it. The
    /// rest comes in more of these and the [`Event::Message`] that ends it; a transaction
    /// that ends without one (refused, reset, closed) abandons what was stored.
    Content(Vec<u8>),
    /// Commit (or, in sync mode, deliver) this message, whose content is what the
    /// [`Event::Content`]s before it held and then `body`, and call
    /// [`Session::message_result`].
    Message { envelope: Envelope, body: Vec<u8> },
    /// Flush the replies so far and close the connection.
    Close,
}

/// The caller's answer to [`Event::CheckRecipient`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientVerdict {
    Accept,
    /// 550 5.1.1 for this recipient; the transaction goes on.
    Suppressed,
    /// 451 4.3.0: the list could not be read.
    Unavailable,
}

/// The caller's answer to [`Event::Authenticate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    Accepted(AccountPolicy),
    Rejected,
    /// Too many failures from this client: 421 and close.
    Blocked,
    /// The credentials could not be checked (database down): 454, try again later.
    Unavailable,
    /// Right credentials, but the account has as many sessions open as it may: 421, close.
    AccountBusy,
}

#[derive(Debug)]
enum State {
    Command,
    /// Sent `334 `, waiting for the PLAIN response line.
    AuthPlain,
    /// Sent the LOGIN username challenge.
    AuthLoginUser,
    /// Sent the LOGIN password challenge.
    AuthLoginPassword {
        username: String,
    },
    /// Reading a command line that was too long, up to its end; `discarded` bytes so far.
    DiscardLine {
        discarded: usize,
    },
    Data(DataReceiver),
    Bdat {
        remaining: usize,
        last: bool,
    },
    /// A BDAT chunk that is refused but must still be read off the wire (RFC 3030 §2:
    /// the server reads and discards it), then answered with `refusal`.
    BdatDiscard {
        remaining: usize,
        refusal: Reply,
    },
    /// An event went out that the caller must answer first.
    Waiting,
    Closed,
}

struct Transaction {
    mail_from: String,
    rcpt_to: Vec<String>,
    smtputf8: bool,
    eight_bit: bool,
    /// Content not yet handed out in an [`Event::Content`].
    body: Vec<u8>,
    /// Content bytes taken so far (BDAT: all of it; DATA: after unstuffing).
    size: usize,
    bdat_check: BareNewlineCheck,
    /// A BDAT chunk of this transaction was taken (its content clock is running).
    bdat_started: bool,
}

pub struct Session {
    config: SessionConfig,
    state: State,
    input: Vec<u8>,
    events: std::collections::VecDeque<Event>,
    helo: Option<String>,
    tls_active: bool,
    policy: Option<AccountPolicy>,
    transaction: Option<Transaction>,
    close_sent: bool,
    /// Bytes fed while message content (DATA/BDAT) was being read, for the data-rate deadline.
    content_received: u64,
    /// Samples for the sandbox's injected answers (`AccountPolicy::chaos`).
    dice: sluice_core::chaos::ChaosDice,
}

/// How much of an over-long command line is read off before the session gives up on the
/// client: a line end must come within this many bytes of the limit.
const MAX_DISCARD: usize = 64 * 1024;

impl Session {
    /// `trusted` is the account a trusted-network client sends as on an `auth = "none"` listener.
    pub fn new(config: SessionConfig, trusted: Option<AccountPolicy>) -> Self {
        Session {
            tls_active: config.tls_active,
            config,
            state: State::Command,
            input: Vec::new(),
            events: Default::default(),
            helo: None,
            policy: trusted,
            transaction: None,
            close_sent: false,
            content_received: 0,
            dice: sluice_core::chaos::ChaosDice::new(0),
        }
    }

    /// Seeds the samples of injected answers (the server: from the OS; tests: a constant).
    pub fn seed_chaos(&mut self, seed: u64) {
        self.dice = sluice_core::chaos::ChaosDice::new(seed);
    }

    /// The injected answer at `stage` for this sender, if its chaos rule fires now.
    fn chaos(
        &mut self,
        policy: Option<&AccountPolicy>,
        stage: sluice_core::chaos::ChaosStage,
    ) -> Option<Reply> {
        let rules = policy.or(self.policy.as_ref())?.chaos.clone()?;
        let answer = rules.answer(stage, self.dice.roll())?;
        Some(Reply::new(answer.code, &answer.enhanced, answer.text))
    }

    pub fn greeting(&self) -> Reply {
        Reply::plain(220, format!("{} ESMTP Sluice", self.config.hostname))
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed) && self.events.is_empty()
    }

    /// Whether a mail transaction is under way (MAIL given, message not yet answered).
    pub fn in_transaction(&self) -> bool {
        self.transaction.is_some() || !matches!(self.state, State::Command)
    }

    pub fn authenticated(&self) -> bool {
        self.policy.is_some()
    }

    /// The account this session sends as (authenticated or trusted).
    pub fn account_id(&self) -> Option<sluice_core::AccountId> {
        self.policy.as_ref().map(|p| p.account_id)
    }

    /// That account's policy.
    pub fn policy(&self) -> Option<&AccountPolicy> {
        self.policy.as_ref()
    }

    /// MAIL FROM and the recipients so far of the transaction under way.
    pub fn transaction_summary(&self) -> (Option<&str>, usize) {
        match &self.transaction {
            Some(tx) => (Some(tx.mail_from.as_str()), tx.rcpt_to.len()),
            None => (None, 0),
        }
    }

    /// The name the client gave in EHLO/HELO.
    pub fn helo(&self) -> Option<&str> {
        self.helo.as_deref()
    }

    pub fn tls_active(&self) -> bool {
        self.tls_active
    }

    /// Bytes read from the client.
    pub fn feed(&mut self, bytes: &[u8]) {
        if !matches!(self.state, State::Closed) {
            if self.reading_content() {
                self.content_received += bytes.len() as u64;
            }
            self.input.extend_from_slice(bytes);
        }
    }

    fn reading_content(&self) -> bool {
        matches!(
            self.state,
            State::Data(_) | State::Bdat { .. } | State::BdatDiscard { .. }
        )
    }

    /// What the session waits for, so the caller can bound how long the client may take
    /// (see [`crate::deadline`]).
    pub fn input_phase(&self) -> InputPhase {
        if self.reading_content() {
            return InputPhase::Content {
                received: self.content_received,
            };
        }
        let partial_line = !self.input.is_empty()
            && matches!(
                self.state,
                State::Command
                    | State::AuthPlain
                    | State::AuthLoginUser
                    | State::AuthLoginPassword { .. }
            );
        // A SASL challenge was answered with 334: the response is a request under way.
        let sasl = matches!(
            self.state,
            State::AuthPlain | State::AuthLoginUser | State::AuthLoginPassword { .. }
        );
        if partial_line || sasl || matches!(self.state, State::DiscardLine { .. }) {
            InputPhase::Request
        } else {
            InputPhase::Idle
        }
    }

    /// The next thing to do, or `None` when the session needs more input or an answer.
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Some(event);
            }
            if !self.step() {
                return None;
            }
        }
    }

    /// Ends the session from outside (idle timeout, shutdown) with this reply.
    pub fn close_with(&mut self, reply: Reply) {
        self.reply(reply);
        self.close();
    }

    /// The TLS handshake after STARTTLS succeeded. Everything the client sent before it,
    /// pipelined plaintext included, is forgotten (RFC 3207 §4.2).
    pub fn tls_started(&mut self) {
        self.input.clear();
        self.tls_active = true;
        self.helo = None;
        self.transaction = None;
        if matches!(self.state, State::Waiting) {
            self.state = State::Command;
        }
    }

    pub fn auth_result(&mut self, outcome: AuthOutcome) {
        self.state = State::Command;
        match outcome {
            AuthOutcome::Accepted(policy) => {
                if let Some(injected) =
                    self.chaos(Some(&policy), sluice_core::chaos::ChaosStage::Auth)
                {
                    return self.reply(injected);
                }
                self.policy = Some(policy);
                self.reply(Reply::new(235, "2.7.0", "Authentication successful"));
            }
            AuthOutcome::Rejected => {
                self.reply(Reply::new(
                    535,
                    "5.7.8",
                    "Authentication credentials invalid",
                ));
            }
            AuthOutcome::Unavailable => {
                self.reply(Reply::new(454, "4.7.0", "Temporary authentication failure"));
            }
            AuthOutcome::Blocked => {
                self.close_with(Reply::new(
                    421,
                    "4.7.0",
                    "Too many authentication failures, closing connection",
                ));
            }
            AuthOutcome::AccountBusy => {
                self.close_with(Reply::new(
                    421,
                    "4.7.0",
                    "Too many connections for this account, try again later",
                ));
            }
        }
    }

    /// The answer to [`Event::Message`]: 250 once committed, or a refusal.
    pub fn message_result(&mut self, reply: Reply) {
        self.transaction = None;
        self.state = State::Command;
        self.reply(reply);
    }

    fn reply(&mut self, reply: Reply) {
        self.events.push_back(Event::Reply(reply));
    }

    fn close(&mut self) {
        self.state = State::Closed;
        self.input.clear();
        if !self.close_sent {
            self.close_sent = true;
            self.events.push_back(Event::Close);
        }
    }

    fn refuse_content(&mut self, error: ContentError) {
        let what = match error {
            ContentError::BareLf => "bare <LF> received",
            ContentError::BareCr => "bare <CR> received",
            ContentError::Nul => "NUL byte received",
        };
        self.transaction = None;
        self.close_with(Reply::new(
            550,
            "5.5.2",
            format!("Error: {what}; closing connection"),
        ));
    }

    /// Does one unit of work. Returns false when nothing more can be done now.
    fn step(&mut self) -> bool {
        match std::mem::replace(&mut self.state, State::Waiting) {
            State::Waiting => false,
            State::Closed => {
                self.state = State::Closed;
                false
            }
            State::Data(mut receiver) => {
                let tx = self.transaction.as_mut().expect("DATA has a transaction");
                let before = tx.body.len();
                let ingested = receiver.ingest(&self.input, &mut tx.body);
                tx.size += tx.body.len() - before;
                match ingested {
                    Ingested::NeedMore => {
                        self.input.clear();
                        self.state = State::Data(receiver);
                        self.hand_out_content();
                        false
                    }
                    Ingested::Refused(error) => {
                        self.refuse_content(error);
                        true
                    }
                    Ingested::Done(used) => {
                        self.input.drain(..used);
                        if receiver.oversized() {
                            self.transaction = None;
                            self.state = State::Command;
                            self.reply(Reply::new(
                                552,
                                "5.3.4",
                                "Message size exceeds fixed limit",
                            ));
                        } else {
                            self.emit_message();
                        }
                        true
                    }
                }
            }
            State::Bdat { remaining, last } => self.step_bdat(remaining, last),
            State::BdatDiscard { remaining, refusal } => {
                let take = remaining.min(self.input.len());
                self.input.drain(..take);
                if take == remaining {
                    self.state = State::Command;
                    self.reply(refusal);
                    true
                } else {
                    self.state = State::BdatDiscard {
                        remaining: remaining - take,
                        refusal,
                    };
                    false
                }
            }
            State::DiscardLine { discarded } => match self.input.iter().position(|&b| b == b'\n') {
                Some(end) if discarded + end < MAX_DISCARD => {
                    self.input.drain(..=end);
                    self.state = State::Command;
                    true
                }
                None if discarded + self.input.len() < MAX_DISCARD => {
                    let discarded = discarded + self.input.len();
                    self.input.clear();
                    self.state = State::DiscardLine { discarded };
                    false
                }
                _ => {
                    self.close_with(Reply::new(
                        421,
                        "4.7.0",
                        "Too much input without a line end, closing connection",
                    ));
                    true
                }
            },
            line_state @ (State::Command
            | State::AuthPlain
            | State::AuthLoginUser
            | State::AuthLoginPassword { .. }) => {
                let Some(end) = self.input.iter().position(|&b| b == b'\n') else {
                    self.state = line_state;
                    if self.input.len() > self.config.max_line {
                        let discarded = self.input.len();
                        self.input.clear();
                        self.state = State::DiscardLine { discarded };
                        self.reply(Reply::new(500, "5.5.6", "Line too long"));
                        return true;
                    }
                    return false;
                };
                let line: Vec<u8> = self.input.drain(..=end).collect();
                self.state = line_state;
                self.handle_line(&line);
                true
            }
        }
    }

    fn handle_line(&mut self, line: &[u8]) {
        // `line` ends in LF; it must be CRLF, with no other CR, LF or NUL in it.
        let body = &line[..line.len() - 1];
        let Some(text) = body.strip_suffix(b"\r") else {
            return self.refuse_content(ContentError::BareLf);
        };
        if text.contains(&b'\r') {
            return self.refuse_content(ContentError::BareCr);
        }
        if text.contains(&0) {
            return self.refuse_content(ContentError::Nul);
        }
        if line.len() > self.config.max_line {
            self.state = State::Command;
            return self.reply(Reply::new(500, "5.5.6", "Line too long"));
        }
        match std::mem::replace(&mut self.state, State::Command) {
            State::AuthPlain => self.sasl_plain(&String::from_utf8_lossy(text)),
            State::AuthLoginUser => self.sasl_login_user(&String::from_utf8_lossy(text)),
            State::AuthLoginPassword { username } => {
                self.sasl_login_password(username, &String::from_utf8_lossy(text))
            }
            _ => self.command(line),
        }
    }

    fn command(&mut self, line: &[u8]) {
        let request = match Request::parse(&mut line.iter()) {
            Ok(request) => request,
            Err(error) => return self.reply(parse_error_reply(error)),
        };
        match request {
            Request::Ehlo { host } => self.ehlo(host, true),
            Request::Helo { host } => self.ehlo(host, false),
            Request::Lhlo { .. } => self.reply(Reply::new(502, "5.5.1", "LHLO is for LMTP")),
            Request::StartTls => self.starttls(),
            Request::Auth {
                mechanism,
                initial_response,
            } => self.auth(mechanism, &initial_response),
            Request::Mail { from } => self.mail(
                &from.address,
                from.size,
                from.flags & MAIL_SMTPUTF8 != 0,
                from.flags & MAIL_BODY_8BITMIME != 0,
            ),
            Request::Rcpt { to } => self.rcpt(&to.address),
            Request::Data => self.data(),
            Request::Bdat {
                chunk_size,
                is_last,
            } => self.bdat(chunk_size, is_last),
            Request::Rset => {
                self.transaction = None;
                self.reply(Reply::new(250, "2.0.0", "OK"));
            }
            Request::Noop { .. } => self.reply(Reply::new(250, "2.0.0", "OK")),
            Request::Quit => {
                self.reply(Reply::new(221, "2.0.0", "Bye"));
                self.close();
            }
            Request::Vrfy { .. } => self.reply(Reply::new(
                252,
                "2.5.0",
                "Cannot VRFY user, but will accept message",
            )),
            Request::Help { .. } => self.reply(Reply::new(
                214,
                "2.0.0",
                "See RFC 5321 and https://sluice.dev",
            )),
            Request::Expn { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => {
                self.reply(Reply::new(502, "5.5.1", "Command not implemented"))
            }
        }
    }

    fn ehlo(&mut self, host: Cow<'_, str>, extended: bool) {
        if host.is_empty() {
            return self.reply(Reply::new(501, "5.5.4", "Syntax: EHLO hostname"));
        }
        self.helo = Some(host.into_owned());
        self.transaction = None;
        let hostname = &self.config.hostname;
        if !extended {
            return self.reply(Reply::plain(250, hostname.clone()));
        }
        let mut lines = vec![
            format!("{hostname} at your service"),
            "PIPELINING".into(),
            format!("SIZE {}", self.config.max_message_size),
            "8BITMIME".into(),
            "SMTPUTF8".into(),
            "ENHANCEDSTATUSCODES".into(),
            "CHUNKING".into(),
        ];
        if self.config.starttls && !self.tls_active {
            lines.push("STARTTLS".into());
        }
        if self.config.auth_required && self.tls_active && self.policy.is_none() {
            lines.push("AUTH PLAIN LOGIN".into());
        }
        self.reply(Reply::multiline(250, lines));
    }

    fn starttls(&mut self) {
        if self.tls_active {
            return self.reply(Reply::new(503, "5.5.1", "TLS already active"));
        }
        if !self.config.starttls {
            return self.reply(Reply::new(502, "5.5.1", "STARTTLS not available here"));
        }
        self.reply(Reply::new(220, "2.0.0", "Ready to start TLS"));
        self.events.push_back(Event::StartTls);
        self.state = State::Waiting;
    }

    fn auth(&mut self, mechanism: u64, initial: &str) {
        if !self.config.auth_required {
            return self.reply(Reply::new(503, "5.5.1", "AUTH not needed on this listener"));
        }
        if self.policy.is_some() {
            return self.reply(Reply::new(503, "5.5.1", "Already authenticated"));
        }
        if self.helo.is_none() {
            return self.reply(Reply::new(503, "5.5.1", "Send EHLO first"));
        }
        if self.transaction.is_some() {
            return self.reply(Reply::new(
                503,
                "5.5.1",
                "AUTH not allowed during a transaction",
            ));
        }
        if !self.tls_active {
            return self.reply(Reply::new(538, "5.7.11", "Encryption required for AUTH"));
        }
        match mechanism {
            AUTH_PLAIN if initial.is_empty() => {
                self.reply(Reply::plain(334, ""));
                self.state = State::AuthPlain;
            }
            AUTH_PLAIN => self.sasl_plain(initial),
            AUTH_LOGIN if initial.is_empty() => {
                self.reply(Reply::plain(334, sasl::encode_base64(b"Username:")));
                self.state = State::AuthLoginUser;
            }
            AUTH_LOGIN => self.sasl_login_user(initial),
            _ => self.reply(Reply::new(
                504,
                "5.5.4",
                "Mechanism not supported; use PLAIN or LOGIN",
            )),
        }
    }

    fn sasl_failed(&mut self, error: SaslError) {
        self.reply(match error {
            SaslError::Encoding => Reply::new(501, "5.5.2", "Invalid base64 data"),
            SaslError::Malformed => Reply::new(501, "5.5.2", "Malformed authentication response"),
        });
    }

    fn sasl_cancelled(&mut self, text: &str) -> bool {
        if text.trim() == "*" {
            self.reply(Reply::new(501, "5.7.0", "Authentication cancelled"));
            return true;
        }
        false
    }

    fn sasl_plain(&mut self, text: &str) {
        if self.sasl_cancelled(text) {
            return;
        }
        match sasl::decode_plain(text) {
            Ok(credentials) => self.request_auth(credentials),
            Err(error) => self.sasl_failed(error),
        }
    }

    fn sasl_login_user(&mut self, text: &str) {
        if self.sasl_cancelled(text) {
            return;
        }
        match sasl::decode_login_item(text) {
            Ok(username) if !username.is_empty() => {
                self.reply(Reply::plain(334, sasl::encode_base64(b"Password:")));
                self.state = State::AuthLoginPassword { username };
            }
            Ok(_) => self.sasl_failed(SaslError::Malformed),
            Err(error) => self.sasl_failed(error),
        }
    }

    fn sasl_login_password(&mut self, username: String, text: &str) {
        if self.sasl_cancelled(text) {
            return;
        }
        match sasl::decode_login_item(text) {
            Ok(password) => self.request_auth(Credentials { username, password }),
            Err(error) => self.sasl_failed(error),
        }
    }

    fn request_auth(&mut self, credentials: Credentials) {
        self.events.push_back(Event::Authenticate(credentials));
        self.state = State::Waiting;
    }

    fn mail(&mut self, from: &str, size: usize, smtputf8: bool, eight_bit: bool) {
        if self.helo.is_none() {
            return self.reply(Reply::new(503, "5.5.1", "Send EHLO first"));
        }
        if self.config.starttls && !self.tls_active && self.config.auth_required {
            return self.reply(Reply::new(
                530,
                "5.7.0",
                "Must issue a STARTTLS command first",
            ));
        }
        let Some(policy) = &self.policy else {
            return self.reply(Reply::new(530, "5.7.0", "Authentication required"));
        };
        if self.transaction.is_some() {
            return self.reply(Reply::new(503, "5.5.1", "Nested MAIL command"));
        }
        if size > self.config.max_message_size {
            return self.reply(Reply::new(552, "5.3.4", "Message size exceeds fixed limit"));
        }
        if !from.is_empty() && validate_mailbox(from).is_err() {
            return self.reply(Reply::new(501, "5.1.7", "Bad sender address syntax"));
        }
        if !from.is_ascii() && !smtputf8 {
            return self.reply(Reply::new(553, "5.6.7", "Non-ASCII address needs SMTPUTF8"));
        }
        if !policy.allows_sender(from) {
            // Only the account's verified domains (`/api/v1/domains`) may be senders.
            let text = if from.is_empty() {
                "Null sender not allowed for this account"
            } else {
                "Sender domain is not a verified domain of this account; add and verify it at /api/v1/domains"
            };
            return self.reply(Reply::new(550, "5.7.1", text));
        }
        if let Some(injected) = self.chaos(None, sluice_core::chaos::ChaosStage::Mail) {
            return self.reply(injected);
        }
        self.transaction = Some(Transaction {
            mail_from: from.to_string(),
            rcpt_to: Vec::new(),
            smtputf8,
            eight_bit,
            body: Vec::new(),
            size: 0,
            bdat_check: BareNewlineCheck::default(),
            bdat_started: false,
        });
        self.reply(Reply::new(250, "2.1.0", "Sender OK"));
    }

    fn rcpt(&mut self, to: &str) {
        let max = self.config.max_recipients;
        let Some(tx) = self.transaction.as_mut() else {
            return self.reply(Reply::new(503, "5.5.1", "Need MAIL before RCPT"));
        };
        if validate_mailbox(to).is_err() {
            return self.reply(Reply::new(501, "5.1.3", "Bad recipient address syntax"));
        }
        if !to.is_ascii() && !tx.smtputf8 {
            return self.reply(Reply::new(553, "5.6.7", "Non-ASCII address needs SMTPUTF8"));
        }
        if tx.rcpt_to.len() >= max {
            return self.reply(Reply::new(452, "4.5.3", "Too many recipients"));
        }
        if tx.rcpt_to.iter().any(|r| r == to) {
            return self.reply(Reply::new(250, "2.1.5", "Recipient OK"));
        }
        if let Some(injected) = self.chaos(None, sluice_core::chaos::ChaosStage::Rcpt) {
            return self.reply(injected);
        }
        // The account's suppression list decides; the caller answers `recipient_checked`.
        self.events.push_back(Event::CheckRecipient(to.to_string()));
        self.state = State::Waiting;
    }

    /// The answer to [`Event::CheckRecipient`].
    pub fn recipient_checked(&mut self, rcpt: &str, verdict: RecipientVerdict) {
        self.state = State::Command;
        match verdict {
            RecipientVerdict::Accept => {
                if let Some(tx) = self.transaction.as_mut() {
                    tx.rcpt_to.push(rcpt.to_string());
                }
                self.reply(Reply::new(250, "2.1.5", "Recipient OK"));
            }
            RecipientVerdict::Suppressed => self.reply(Reply::new(
                550,
                "5.1.1",
                "Recipient is on this account's suppression list",
            )),
            RecipientVerdict::Unavailable => self.reply(Reply::new(
                451,
                "4.3.0",
                "Temporary failure, try again later",
            )),
        }
    }

    fn has_recipients(&self) -> bool {
        self.transaction
            .as_ref()
            .is_some_and(|tx| !tx.rcpt_to.is_empty())
    }

    fn data(&mut self) {
        if !self.has_recipients() {
            return self.reply(Reply::new(503, "5.5.1", "Need RCPT before DATA"));
        }
        if self.transaction.as_ref().is_some_and(|tx| tx.size > 0) {
            return self.reply(Reply::new(503, "5.5.1", "DATA after BDAT"));
        }
        if let Some(injected) = self.chaos(None, sluice_core::chaos::ChaosStage::Data) {
            return self.reply(injected);
        }
        self.reply(Reply::plain(354, "End data with <CR><LF>.<CR><LF>"));
        self.content_received = 0;
        self.state = State::Data(DataReceiver::new(self.config.max_message_size));
    }

    fn bdat(&mut self, chunk_size: usize, last: bool) {
        if !self.transaction.as_ref().is_some_and(|tx| tx.bdat_started) {
            self.content_received = 0;
        }
        if !self.has_recipients() {
            self.state = State::BdatDiscard {
                remaining: chunk_size,
                refusal: Reply::new(503, "5.5.1", "BDAT without a mail transaction"),
            };
            return;
        }
        let so_far = self.transaction.as_ref().map_or(0, |tx| tx.size);
        if so_far.saturating_add(chunk_size) > self.config.max_message_size {
            self.transaction = None;
            let refusal = Reply::new(552, "5.3.4", "Message size exceeds fixed limit");
            if chunk_size > self.config.max_message_size {
                // Larger than any message may be: not worth reading off. End the session.
                return self.close_with(refusal);
            }
            // Read the chunk off and discard it, then refuse the message; the session
            // stays usable for the next transaction (RFC 3030 §2).
            self.state = State::BdatDiscard {
                remaining: chunk_size,
                refusal,
            };
            return;
        }
        if let Some(tx) = self.transaction.as_mut() {
            tx.bdat_started = true;
        }
        self.state = State::Bdat {
            remaining: chunk_size,
            last,
        };
    }

    fn step_bdat(&mut self, remaining: usize, last: bool) -> bool {
        let take = remaining.min(self.input.len());
        let tx = self.transaction.as_mut().expect("BDAT has a transaction");
        if let Err(error) = tx.bdat_check.check(&self.input[..take]) {
            self.refuse_content(error);
            return true;
        }
        tx.body.extend(self.input.drain(..take));
        tx.size += take;
        let size = tx.size;
        self.hand_out_content();
        if take < remaining {
            self.state = State::Bdat {
                remaining: remaining - take,
                last,
            };
            return false;
        }
        if !last {
            self.state = State::Command;
            self.reply(Reply::new(250, "2.0.0", format!("{size} octets received")));
            return true;
        }
        let tx = self.transaction.as_mut().expect("BDAT has a transaction");
        if let Err(error) = tx.bdat_check.finish() {
            self.refuse_content(error);
            return true;
        }
        self.emit_message();
        true
    }

    /// Hands content out once a chunk of it is held, so a session holds at most about
    /// one chunk and one read of the message, whatever its size.
    fn hand_out_content(&mut self) {
        if let Some(tx) = self
            .transaction
            .as_mut()
            .filter(|tx| tx.body.len() >= BODY_CHUNK)
        {
            let chunk = std::mem::take(&mut tx.body);
            self.events.push_back(Event::Content(chunk));
        }
    }

    /// Content of the current transaction was handed out or is being received: the caller
    /// keeps what it stored of it until [`Event::Message`] or the transaction's end.
    pub fn content_pending(&self) -> bool {
        self.transaction.as_ref().is_some_and(|tx| tx.size > 0)
            || matches!(self.state, State::Data(_))
    }

    fn emit_message(&mut self) {
        let tx = self
            .transaction
            .as_mut()
            .expect("message has a transaction");
        let envelope = Envelope {
            mail_from: tx.mail_from.clone(),
            rcpt_to: tx.rcpt_to.clone(),
            smtputf8: tx.smtputf8,
            eight_bit: tx.eight_bit,
        };
        let body = std::mem::take(&mut tx.body);
        self.events.push_back(Event::Message { envelope, body });
        self.state = State::Waiting;
    }
}

fn parse_error_reply(error: ProtoError) -> Reply {
    match error {
        ProtoError::UnknownCommand => Reply::new(500, "5.5.1", "Command unrecognized"),
        ProtoError::InvalidSenderAddress => Reply::new(501, "5.1.7", "Bad sender address syntax"),
        ProtoError::InvalidRecipientAddress => {
            Reply::new(501, "5.1.3", "Bad recipient address syntax")
        }
        ProtoError::SyntaxError { syntax } => Reply::new(501, "5.5.4", format!("Syntax: {syntax}")),
        ProtoError::InvalidParameter { param } => {
            Reply::new(501, "5.5.4", format!("Invalid parameter {param}"))
        }
        ProtoError::UnsupportedParameter { .. } => {
            Reply::new(555, "5.5.4", "Unsupported parameter")
        }
        _ => Reply::new(500, "5.5.2", "Syntax error"),
    }
}
