//! The session driven by byte strings, as a client would send them, with a fake maildrop.

use crate::session::{
    Event, FetchOutcome, LoginOutcome, MaildropEntry, Password, Session, SessionConfig,
};

const PASSWORD: &str = "s3cret pass";

/// The maildrop after login: ids 7 and 9, oldest first.
fn maildrop() -> Vec<(i64, &'static [u8])> {
    vec![
        (7, b"Subject: one\r\n\r\nfirst\r\n.dot\r\n" as &[u8]),
        (9, b"Subject: two\r\nX: y\r\n\r\nl1\r\nl2\r\nl3\r\n"),
    ]
}

fn config() -> SessionConfig {
    SessionConfig {
        stls_offered: true,
        tls_active: false,
        plaintext_login_allowed: true,
    }
}

/// Plays the server loop: answers logins (password `s3cret pass`), reads and deletes
/// messages of [`maildrop`], upgrades TLS.
struct Client {
    session: Session,
    deleted: Vec<i64>,
    closed: bool,
    /// Ids deleted elsewhere: their RETR finds nothing.
    gone: Vec<i64>,
    logins: Vec<(String, Password)>,
}

impl Client {
    fn new(config: SessionConfig) -> Self {
        Client {
            session: Session::new(config),
            deleted: Vec::new(),
            closed: false,
            gone: Vec::new(),
            logins: Vec::new(),
        }
    }

    fn logged_in() -> Self {
        let mut c = Client::new(config());
        c.expect(b"", "+OK Sluice POP3 server ready\r\n");
        c.expect(b"USER app\r\n", "+OK Send PASS\r\n");
        c.expect(
            b"PASS s3cret pass\r\n",
            "+OK Logged in, 2 messages (63 octets)\r\n",
        );
        c
    }

    fn send(&mut self, bytes: &[u8]) -> String {
        self.session.feed(bytes);
        let mut out = Vec::new();
        while let Some(event) = self.session.next_event() {
            match event {
                Event::Reply(bytes) => out.extend_from_slice(&bytes),
                Event::Login { user, password } => {
                    let ok = password.0 == PASSWORD;
                    self.logins.push((user, password));
                    self.session.login_checked(match ok {
                        true => LoginOutcome::Opened(
                            maildrop()
                                .iter()
                                .map(|(id, m)| MaildropEntry {
                                    id: *id,
                                    size: m.len() as u64,
                                })
                                .collect(),
                        ),
                        false => LoginOutcome::Refused,
                    });
                }
                Event::Fetch { id, .. } => {
                    let found = maildrop().into_iter().find(|(i, _)| *i == id);
                    self.session.fetched(match found {
                        Some(_) if self.gone.contains(&id) => FetchOutcome::Gone,
                        Some((_, m)) => FetchOutcome::Found(m.to_vec()),
                        None => FetchOutcome::Gone,
                    });
                }
                Event::StartTls => {
                    out.extend_from_slice(b"<tls>");
                    self.session.tls_started();
                }
                Event::Update { delete } => {
                    self.deleted = delete;
                    self.session.updated(true);
                }
                Event::Close => {
                    out.extend_from_slice(b"<close>");
                    self.closed = true;
                }
            }
        }
        String::from_utf8(out).unwrap()
    }

    fn expect(&mut self, bytes: &[u8], reply: &str) {
        assert_eq!(
            self.send(bytes),
            reply,
            "after {:?}",
            String::from_utf8_lossy(bytes)
        );
    }

    fn table(&mut self, rows: &[(&[u8], &str)]) {
        for (bytes, reply) in rows {
            self.expect(bytes, reply);
        }
    }
}

#[test]
fn transaction_commands() {
    let mut c = Client::logged_in();
    c.table(&[
        (b"STAT\r\n", "+OK 2 63\r\n"),
        (
            b"LIST\r\n",
            "+OK 2 messages (63 octets)\r\n1 29\r\n2 34\r\n.\r\n",
        ),
        (b"list 2\r\n", "+OK 2 34\r\n"),
        (b"LIST 3\r\n", "-ERR No such message\r\n"),
        (b"LIST 0\r\n", "-ERR No such message\r\n"),
        (b"LIST x\r\n", "-ERR Not a message number\r\n"),
        (b"UIDL\r\n", "+OK Unique ids follow\r\n1 7\r\n2 9\r\n.\r\n"),
        (b"UIDL 1\r\n", "+OK 1 7\r\n"),
        (
            b"RETR 1\r\n",
            "+OK 29 octets\r\nSubject: one\r\n\r\nfirst\r\n..dot\r\n.\r\n",
        ),
        (
            b"TOP 2 1\r\n",
            "+OK Top of message follows\r\nSubject: two\r\nX: y\r\n\r\nl1\r\n.\r\n",
        ),
        (
            b"TOP 2 0\r\n",
            "+OK Top of message follows\r\nSubject: two\r\nX: y\r\n\r\n.\r\n",
        ),
        (b"TOP 2\r\n", "-ERR Wrong arguments\r\n"),
        (b"TOP 2 x\r\n", "-ERR Not a line count\r\n"),
        (b"RETR\r\n", "-ERR Wrong arguments\r\n"),
        (b"NOOP\r\n", "+OK\r\n"),
        (b"DELE 1\r\n", "+OK Message 1 deleted\r\n"),
        (b"DELE 1\r\n", "-ERR Message 1 is deleted\r\n"),
        (b"RETR 1\r\n", "-ERR Message 1 is deleted\r\n"),
        (b"STAT\r\n", "+OK 1 34\r\n"),
        (b"LIST\r\n", "+OK 1 messages (34 octets)\r\n2 34\r\n.\r\n"),
        (b"UIDL\r\n", "+OK Unique ids follow\r\n2 9\r\n.\r\n"),
        (b"RSET\r\n", "+OK Maildrop has 2 messages (63 octets)\r\n"),
        (b"STAT\r\n", "+OK 2 63\r\n"),
        (b"DELE 2\r\n", "+OK Message 2 deleted\r\n"),
        // Not before login, not twice, not STLS after login.
        (b"USER app\r\n", "-ERR Already logged in\r\n"),
        (b"PASS x\r\n", "-ERR Already logged in\r\n"),
        (b"STLS\r\n", "-ERR STLS only before login\r\n"),
        (b"XYZZY\r\n", "-ERR Unknown command\r\n"),
    ]);
    assert!(c.deleted.is_empty(), "DELE deletes nothing before QUIT");
    c.expect(
        b"QUIT\r\n",
        "+OK Sluice POP3 server signing off (1 messages left)\r\n<close>",
    );
    assert_eq!(c.deleted, vec![9]);
    assert!(c.closed);
}

#[test]
fn quit_in_authorization_deletes_nothing_and_pipelined_commands_run_in_order() {
    let mut c = Client::new(config());
    c.expect(b"", "+OK Sluice POP3 server ready\r\n");
    c.expect(
        b"USER app\r\nPASS s3cret pass\r\nDELE 1\r\nSTAT\r\n",
        "+OK Send PASS\r\n+OK Logged in, 2 messages (63 octets)\r\n\
         +OK Message 1 deleted\r\n+OK 1 34\r\n",
    );
    // A connection that ends without QUIT never reaches UPDATE: nothing is deleted.
    assert!(c.deleted.is_empty());

    let mut c = Client::new(config());
    c.send(b"");
    c.expect(b"QUIT\r\n", "+OK Sluice POP3 server signing off\r\n<close>");
    assert!(c.deleted.is_empty());
}

#[test]
fn authorization_state() {
    let mut c = Client::new(config());
    c.table(&[
        (b"", "+OK Sluice POP3 server ready\r\n"),
        (
            b"CAPA\r\n",
            "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n\
             PIPELINING\r\nUSER\r\nSTLS\r\nIMPLEMENTATION Sluice\r\n.\r\n",
        ),
        (b"STAT\r\n", "-ERR Log in first\r\n"),
        (b"RETR 1\r\n", "-ERR Log in first\r\n"),
        (b"NOOP\r\n", "-ERR Log in first\r\n"),
        (b"PASS s3cret pass\r\n", "-ERR USER first\r\n"),
        (b"USER\r\n", "-ERR USER needs a name\r\n"),
        // LF alone ends a line too; keywords in any case.
        (b"user app\n", "+OK Send PASS\r\n"),
        (
            b"PASS wrong\r\n",
            "-ERR [AUTH] Wrong user name or password\r\n",
        ),
        // A failed PASS forgets the user.
        (b"PASS s3cret pass\r\n", "-ERR USER first\r\n"),
        (b"USER app\r\n", "+OK Send PASS\r\n"),
        (
            b"PASS wrong\r\n",
            "-ERR [AUTH] Wrong user name or password\r\n",
        ),
        (b"USER app\r\n", "+OK Send PASS\r\n"),
        // The third failure ends the session.
        (
            b"PASS wrong again\r\n",
            "-ERR [AUTH] Wrong user name or password\r\n<close>",
        ),
        (b"CAPA\r\n", ""),
    ]);
    assert_eq!(c.logins.len(), 3);
    assert_eq!(c.logins[2].1, Password("wrong again".into()), "spaces kept");
    assert_eq!(
        format!("{:?}", c.logins[2].1),
        "Password(<redacted>)",
        "a password never shows in Debug"
    );
}

#[test]
fn capa_after_login_lists_no_login_commands() {
    let mut c = Client::logged_in();
    c.expect(
        b"CAPA\r\n",
        "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n\
         PIPELINING\r\nIMPLEMENTATION Sluice\r\n.\r\n",
    );
}

#[test]
fn plaintext_login_is_refused_until_stls_when_not_allowed() {
    let mut c = Client::new(SessionConfig {
        plaintext_login_allowed: false,
        ..config()
    });
    c.table(&[
        (b"", "+OK Sluice POP3 server ready\r\n"),
        (
            b"CAPA\r\n",
            "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n\
             PIPELINING\r\nSTLS\r\nIMPLEMENTATION Sluice\r\n.\r\n",
        ),
        (
            b"USER app\r\n",
            "-ERR [SYS/PERM] Login without TLS is not allowed here: use STLS first\r\n",
        ),
        (b"PASS s3cret pass\r\n", "-ERR USER first\r\n"),
        // Bytes pipelined after STLS are dropped, never read as commands after the
        // handshake (RFC 2595 §4: command injection).
        (
            b"STLS\r\nUSER injected\r\n",
            "+OK Begin TLS negotiation\r\n<tls>",
        ),
        (b"PASS s3cret pass\r\n", "-ERR USER first\r\n"),
        (
            b"CAPA\r\n",
            "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n\
             PIPELINING\r\nUSER\r\nIMPLEMENTATION Sluice\r\n.\r\n",
        ),
        (b"STLS\r\n", "-ERR Already in TLS\r\n"),
        (b"USER app\r\n", "+OK Send PASS\r\n"),
        (
            b"PASS s3cret pass\r\n",
            "+OK Logged in, 2 messages (63 octets)\r\n",
        ),
    ]);
    assert!(c.logins.iter().all(|(user, _)| user == "app"));
}

#[test]
fn implicit_tls_and_no_stls_offered() {
    let mut c = Client::new(SessionConfig {
        stls_offered: false,
        tls_active: true,
        plaintext_login_allowed: false,
    });
    c.table(&[
        (b"", "+OK Sluice POP3 server ready\r\n"),
        (b"STLS\r\n", "-ERR Already in TLS\r\n"),
        (b"USER app\r\n", "+OK Send PASS\r\n"),
    ]);
    let mut c = Client::new(SessionConfig {
        stls_offered: false,
        ..config()
    });
    c.send(b"");
    c.expect(b"STLS\r\n", "-ERR STLS is not offered here\r\n");
}

#[test]
fn a_message_gone_since_login_is_an_error_and_unavailable_store_says_sys_temp() {
    let mut c = Client::logged_in();
    c.gone.push(7);
    c.expect(b"RETR 1\r\n", "-ERR No such message\r\n");
    c.session.feed(b"RETR 2\r\n");
    assert_eq!(
        c.session.next_event(),
        Some(Event::Fetch {
            id: 9,
            body_lines: None
        })
    );
    // No further command is read while the fetch is outstanding.
    c.session.feed(b"NOOP\r\n");
    assert_eq!(c.session.next_event(), None);
    c.session.fetched(FetchOutcome::Unavailable);
    assert_eq!(
        c.send(b""),
        "-ERR [SYS/TEMP] The message could not be read, try again later\r\n+OK\r\n"
    );
}

#[test]
fn blocked_and_unavailable_logins() {
    let mut session = Session::new(config());
    session.feed(b"USER a\r\nPASS b\r\n");
    while let Some(event) = session.next_event() {
        if let Event::Login { .. } = event {
            session.login_checked(LoginOutcome::Unavailable);
        }
    }
    assert!(!session.is_closed());
    session.feed(b"USER a\r\nPASS b\r\n");
    let mut replies = Vec::new();
    while let Some(event) = session.next_event() {
        match event {
            Event::Login { .. } => session.login_checked(LoginOutcome::Blocked),
            Event::Reply(r) => replies.push(String::from_utf8(r).unwrap()),
            Event::Close => replies.push("<close>".into()),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        replies,
        [
            "+OK Send PASS\r\n",
            "-ERR [SYS/TEMP] Too many failed logins, try again later\r\n",
            "<close>"
        ]
    );
    assert!(session.is_closed());
}

#[test]
fn overlong_lines_end_the_session() {
    let mut c = Client::new(config());
    c.send(b"");
    let long = vec![b'A'; 2000];
    assert_eq!(c.send(&long), "-ERR Line too long\r\n<close>");
    let mut c = Client::new(config());
    c.send(b"");
    let mut line = vec![b'A'; 1023];
    line.extend_from_slice(b"\r\n");
    assert_eq!(c.send(&line), "-ERR Line too long\r\n<close>");
}

#[test]
fn a_failed_update_is_reported() {
    let mut session = Session::new(config());
    session.feed(b"USER a\r\nPASS b\r\nDELE 1\r\nQUIT\r\n");
    let mut replies = Vec::new();
    while let Some(event) = session.next_event() {
        match event {
            Event::Login { .. } => {
                session.login_checked(LoginOutcome::Opened(vec![MaildropEntry {
                    id: 5,
                    size: 10,
                }]))
            }
            Event::Update { delete } => {
                assert_eq!(delete, [5]);
                session.updated(false)
            }
            Event::Reply(r) => replies.push(String::from_utf8(r).unwrap()),
            Event::Close => replies.push("<close>".into()),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        replies.last().map(String::as_str),
        Some("<close>"),
        "{replies:?}"
    );
    assert_eq!(
        replies[replies.len() - 2],
        "-ERR [SYS/TEMP] Some deleted messages were not removed\r\n"
    );
}
