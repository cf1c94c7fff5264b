//! The POP3 state machine (RFC 1939; CAPA from RFC 2449, STLS from RFC 2595, response
//! codes from RFC 2449 / RFC 3206), sans IO: bytes in through [`Session::feed`], what to
//! write or do out through [`Session::next_event`]. The driver answers the events that need
//! the outside world (a login check, a message read, the deletions at QUIT, the TLS
//! handshake) with the matching method; until it does, no further command is read.
//!
//! Messages are numbered 1..n in the order the maildrop listing gave them (oldest first);
//! their unique ids (UIDL) are the driver's ids. DELE only marks: the marked ids go out in
//! [`Event::Update`] at QUIT, and only then (RFC 1939 §6); a connection that ends without
//! QUIT deletes nothing.

use std::collections::VecDeque;

use crate::wire::{encode_message, ok, status_error};

/// A command line longer than this (CRLF included) ends the session. RFC 2449 allows 255
/// octets; a long password gets some room beyond that.
pub const MAX_LINE: usize = 1024;

/// Failed PASS commands in one session before it is closed.
pub const MAX_FAILED_LOGINS: u32 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// STLS is offered (a plaintext listener with a certificate).
    pub stls_offered: bool,
    /// The connection is TLS already (implicit TLS).
    pub tls_active: bool,
    /// USER/PASS is allowed without TLS (a client on loopback or a trusted network).
    pub plaintext_login_allowed: bool,
}

/// One message of the maildrop, as listed when the session logged in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaildropEntry {
    /// The unique id (UIDL): the stored message's id.
    pub id: i64,
    /// The exact octet count of the message as RETR sends it (before byte-stuffing).
    pub size: u64,
}

/// A password that never shows in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// What the session asks of its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Bytes to write to the client.
    Reply(Vec<u8>),
    /// Check USER/PASS, then answer with [`Session::login_checked`].
    Login { user: String, password: Password },
    /// Read message `id` whole, then answer with [`Session::fetched`]. `body_lines` is
    /// TOP's line count (the headers, the blank line and that many body lines).
    Fetch { id: i64, body_lines: Option<usize> },
    /// The `+OK` to STLS was written (the event before this one): do the TLS handshake,
    /// then call [`Session::tls_started`].
    StartTls,
    /// QUIT in the TRANSACTION state: delete these ids (maybe none), then answer with
    /// [`Session::updated`].
    Update { delete: Vec<i64> },
    /// Close the connection (after writing the replies before this event).
    Close,
}

/// The driver's answer to [`Event::Login`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    /// Right credentials: the account's maildrop, oldest first.
    Opened(Vec<MaildropEntry>),
    /// Wrong user or password (or an account that may not log in).
    Refused,
    /// Too many failed logins from this client address: the session ends.
    Blocked,
    /// The check or the listing could not be made (the store is unavailable).
    Unavailable,
}

/// The driver's answer to [`Event::Fetch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    Found(Vec<u8>),
    /// No longer a captured message of this account (deleted elsewhere, released).
    Gone,
    Unavailable,
}

#[derive(Debug)]
enum State {
    Authorization { user: Option<String> },
    Transaction { drop: Vec<Slot> },
    Closed,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    entry: MaildropEntry,
    deleted: bool,
}

/// What the session waits for from the driver; no command is read meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    Login,
    Fetch { size: u64, top: Option<usize> },
    Tls,
    Update,
}

#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    state: State,
    input: Vec<u8>,
    out: VecDeque<Event>,
    waiting: Option<Waiting>,
    failed_logins: u32,
}

impl Session {
    /// A new session; its greeting is the first event.
    pub fn new(config: SessionConfig) -> Self {
        let mut session = Session {
            config,
            state: State::Authorization { user: None },
            input: Vec::new(),
            out: VecDeque::new(),
            waiting: None,
            failed_logins: 0,
        };
        session.reply(ok("Sluice POP3 server ready"));
        session
    }

    pub fn tls_active(&self) -> bool {
        self.config.tls_active
    }

    /// Whether the session has logged in (TRANSACTION state).
    pub fn logged_in(&self) -> bool {
        matches!(self.state, State::Transaction { .. })
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Bytes read from the client.
    pub fn feed(&mut self, bytes: &[u8]) {
        if !self.is_closed() {
            self.input.extend_from_slice(bytes);
        }
    }

    /// The next thing to do, or `None` when more input (or a driver's answer) is needed.
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.out.pop_front() {
                return Some(event);
            }
            if self.waiting.is_some() || self.is_closed() {
                return None;
            }
            let line = match self.take_line() {
                Some(line) => line,
                None if self.input.len() > MAX_LINE => {
                    self.close_with(status_error(None, "Line too long"));
                    continue;
                }
                None => return None,
            };
            self.command(&line);
        }
    }

    /// The driver's answer to [`Event::Login`].
    pub fn login_checked(&mut self, outcome: LoginOutcome) {
        if self.waiting != Some(Waiting::Login) {
            return;
        }
        self.waiting = None;
        match outcome {
            LoginOutcome::Opened(entries) => {
                let drop: Vec<Slot> = entries
                    .into_iter()
                    .map(|entry| Slot {
                        entry,
                        deleted: false,
                    })
                    .collect();
                let (count, size) = totals(&drop);
                self.state = State::Transaction { drop };
                self.reply(ok(&format!("Logged in, {count} messages ({size} octets)")));
            }
            LoginOutcome::Refused => {
                self.failed_logins += 1;
                self.state = State::Authorization { user: None };
                let reply = status_error(Some("AUTH"), "Wrong user name or password");
                if self.failed_logins >= MAX_FAILED_LOGINS {
                    self.close_with(reply);
                } else {
                    self.reply(reply);
                }
            }
            LoginOutcome::Blocked => self.close_with(status_error(
                Some("SYS/TEMP"),
                "Too many failed logins, try again later",
            )),
            LoginOutcome::Unavailable => {
                self.state = State::Authorization { user: None };
                self.reply(status_error(
                    Some("SYS/TEMP"),
                    "Service not available, try again later",
                ));
            }
        }
    }

    /// The driver's answer to [`Event::Fetch`].
    pub fn fetched(&mut self, outcome: FetchOutcome) {
        let Some(Waiting::Fetch { size, top }) = self.waiting else {
            return;
        };
        self.waiting = None;
        match outcome {
            FetchOutcome::Found(bytes) => {
                let mut reply = match top {
                    Some(_) => b"+OK Top of message follows\r\n".to_vec(),
                    None => format!("+OK {size} octets\r\n").into_bytes(),
                };
                reply.extend_from_slice(&encode_message(&bytes, top));
                self.reply(reply);
            }
            FetchOutcome::Gone => self.reply(status_error(None, "No such message")),
            FetchOutcome::Unavailable => self.reply(status_error(
                Some("SYS/TEMP"),
                "The message could not be read, try again later",
            )),
        }
    }

    /// The TLS handshake after STLS succeeded: the session starts over in AUTHORIZATION,
    /// with nothing the client sent before the handshake kept (RFC 2595 §4).
    pub fn tls_started(&mut self) {
        if self.waiting != Some(Waiting::Tls) {
            return;
        }
        self.waiting = None;
        self.config.tls_active = true;
        self.input.clear();
        self.state = State::Authorization { user: None };
    }

    /// The driver's answer to [`Event::Update`]: whether every marked message was deleted.
    pub fn updated(&mut self, deleted_all: bool) {
        if self.waiting != Some(Waiting::Update) {
            return;
        }
        self.waiting = None;
        let left = match &self.state {
            State::Transaction { drop } => drop.iter().filter(|s| !s.deleted).count(),
            _ => 0,
        };
        let reply = if deleted_all {
            ok(&format!(
                "Sluice POP3 server signing off ({left} messages left)"
            ))
        } else {
            status_error(Some("SYS/TEMP"), "Some deleted messages were not removed")
        };
        self.close_with(reply);
    }

    fn reply(&mut self, bytes: Vec<u8>) {
        self.out.push_back(Event::Reply(bytes));
    }

    fn close_with(&mut self, bytes: Vec<u8>) {
        self.reply(bytes);
        self.out.push_back(Event::Close);
        self.state = State::Closed;
        self.input.clear();
    }

    /// One line without its line end (LF, or CRLF), when a whole one has arrived.
    fn take_line(&mut self) -> Option<Vec<u8>> {
        let end = self.input.iter().position(|b| *b == b'\n')?;
        let mut line: Vec<u8> = self.input.drain(..=end).collect();
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Some(line)
    }

    fn command(&mut self, line: &[u8]) {
        if line.len() + 2 > MAX_LINE {
            self.close_with(status_error(None, "Line too long"));
            return;
        }
        let text = String::from_utf8_lossy(line);
        let (keyword, argument) = match text.split_once(' ') {
            Some((keyword, argument)) => (keyword.to_ascii_uppercase(), argument.to_string()),
            None => (text.to_ascii_uppercase(), String::new()),
        };
        match keyword.as_str() {
            "CAPA" => self.capa(),
            "QUIT" => self.quit(),
            "NOOP" if self.logged_in() => self.reply(ok("")),
            "USER" => self.user(argument.trim()),
            // The password is the rest of the line, spaces and all (RFC 1939 §7).
            "PASS" => self.pass(argument),
            "STLS" => self.stls(),
            "STAT" | "LIST" | "UIDL" | "RETR" | "TOP" | "DELE" | "RSET" | "NOOP" => {
                match self.logged_in() {
                    true => self.transaction(&keyword, argument.trim()),
                    false => self.reply(status_error(None, "Log in first")),
                }
            }
            _ => self.reply(status_error(None, "Unknown command")),
        }
    }

    fn login_allowed(&self) -> bool {
        self.config.tls_active || self.config.plaintext_login_allowed
    }

    fn capa(&mut self) {
        let mut lines = vec!["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"];
        if !self.logged_in() {
            if self.login_allowed() {
                lines.push("USER");
            }
            if self.config.stls_offered && !self.config.tls_active {
                lines.push("STLS");
            }
        }
        lines.push("IMPLEMENTATION Sluice");
        let mut reply = b"+OK Capability list follows\r\n".to_vec();
        for line in lines {
            reply.extend_from_slice(line.as_bytes());
            reply.extend_from_slice(b"\r\n");
        }
        reply.extend_from_slice(b".\r\n");
        self.reply(reply);
    }

    fn user(&mut self, name: &str) {
        let State::Authorization { user } = &mut self.state else {
            self.reply(status_error(None, "Already logged in"));
            return;
        };
        if name.is_empty() {
            self.reply(status_error(None, "USER needs a name"));
        } else if !(self.config.tls_active || self.config.plaintext_login_allowed) {
            self.reply(status_error(
                Some("SYS/PERM"),
                "Login without TLS is not allowed here: use STLS first",
            ));
        } else {
            *user = Some(name.to_string());
            self.reply(ok("Send PASS"));
        }
    }

    fn pass(&mut self, password: String) {
        let State::Authorization { user } = &mut self.state else {
            self.reply(status_error(None, "Already logged in"));
            return;
        };
        let Some(name) = user.take() else {
            self.reply(status_error(None, "USER first"));
            return;
        };
        self.waiting = Some(Waiting::Login);
        self.out.push_back(Event::Login {
            user: name,
            password: Password(password),
        });
    }

    fn stls(&mut self) {
        if self.config.tls_active {
            self.reply(status_error(None, "Already in TLS"));
        } else if !self.config.stls_offered {
            self.reply(status_error(None, "STLS is not offered here"));
        } else if !matches!(self.state, State::Authorization { .. }) {
            self.reply(status_error(None, "STLS only before login"));
        } else {
            self.reply(ok("Begin TLS negotiation"));
            self.waiting = Some(Waiting::Tls);
            self.input.clear();
            self.out.push_back(Event::StartTls);
        }
    }

    fn quit(&mut self) {
        match &self.state {
            State::Transaction { drop } => {
                let delete = drop
                    .iter()
                    .filter(|s| s.deleted)
                    .map(|s| s.entry.id)
                    .collect();
                self.waiting = Some(Waiting::Update);
                self.out.push_back(Event::Update { delete });
            }
            _ => self.close_with(ok("Sluice POP3 server signing off")),
        }
    }

    fn transaction(&mut self, keyword: &str, argument: &str) {
        let State::Transaction { drop } = &mut self.state else {
            return;
        };
        let mut words = argument.split_ascii_whitespace();
        let first = words.next();
        let second = words.next();
        if words.next().is_some() {
            self.reply(status_error(None, "Too many arguments"));
            return;
        }
        // The message a number names: 1-based, not marked deleted.
        let pick = |drop: &Vec<Slot>, word: Option<&str>| -> Result<(usize, Slot), Vec<u8>> {
            let Some(word) = word else {
                return Err(status_error(None, "A message number is needed"));
            };
            let number: usize = word
                .parse()
                .map_err(|_| status_error(None, "Not a message number"))?;
            match number.checked_sub(1).and_then(|i| drop.get(i)) {
                Some(slot) if slot.deleted => {
                    Err(status_error(None, &format!("Message {number} is deleted")))
                }
                Some(slot) => Ok((number, *slot)),
                None => Err(status_error(None, "No such message")),
            }
        };
        let reply = match (keyword, first, second) {
            ("STAT", None, _) => {
                let (count, size) = totals(drop);
                format!("+OK {count} {size}\r\n").into_bytes()
            }
            ("LIST" | "UIDL", None, _) => {
                let (count, size) = totals(drop);
                let mut reply = match keyword {
                    "LIST" => format!("+OK {count} messages ({size} octets)\r\n").into_bytes(),
                    _ => b"+OK Unique ids follow\r\n".to_vec(),
                };
                for (i, slot) in drop.iter().enumerate().filter(|(_, s)| !s.deleted) {
                    let value = match keyword {
                        "LIST" => slot.entry.size.to_string(),
                        _ => slot.entry.id.to_string(),
                    };
                    reply.extend_from_slice(format!("{} {value}\r\n", i + 1).as_bytes());
                }
                reply.extend_from_slice(b".\r\n");
                reply
            }
            ("LIST", Some(_), None) => match pick(drop, first) {
                Ok((n, slot)) => format!("+OK {n} {}\r\n", slot.entry.size).into_bytes(),
                Err(reply) => reply,
            },
            ("UIDL", Some(_), None) => match pick(drop, first) {
                Ok((n, slot)) => format!("+OK {n} {}\r\n", slot.entry.id).into_bytes(),
                Err(reply) => reply,
            },
            ("RETR", Some(_), None) => match pick(drop, first) {
                Ok((_, slot)) => {
                    self.fetch(slot.entry, None);
                    return;
                }
                Err(reply) => reply,
            },
            ("TOP", Some(_), Some(lines)) => match (pick(drop, first), lines.parse::<usize>()) {
                (Ok((_, slot)), Ok(lines)) => {
                    self.fetch(slot.entry, Some(lines));
                    return;
                }
                (Err(reply), _) => reply,
                (_, Err(_)) => status_error(None, "Not a line count"),
            },
            ("DELE", Some(_), None) => match pick(drop, first) {
                Ok((n, _)) => {
                    drop[n - 1].deleted = true;
                    ok(&format!("Message {n} deleted"))
                }
                Err(reply) => reply,
            },
            ("RSET", None, _) => {
                for slot in drop.iter_mut() {
                    slot.deleted = false;
                }
                let (count, size) = totals(drop);
                ok(&format!("Maildrop has {count} messages ({size} octets)"))
            }
            ("NOOP", None, _) => ok(""),
            _ => status_error(None, "Wrong arguments"),
        };
        self.reply(reply);
    }

    fn fetch(&mut self, entry: MaildropEntry, body_lines: Option<usize>) {
        self.waiting = Some(Waiting::Fetch {
            size: entry.size,
            top: body_lines,
        });
        self.out.push_back(Event::Fetch {
            id: entry.id,
            body_lines,
        });
    }
}

/// Messages not marked deleted, and their octets.
fn totals(drop: &[Slot]) -> (usize, u64) {
    drop.iter()
        .filter(|s| !s.deleted)
        .fold((0, 0), |(n, size), s| (n + 1, size + s.entry.size))
}
