//! The session driven by byte strings, as a client would send them.

use sluice_core::body::BODY_CHUNK;
use sluice_core::{AccountPolicy, Envelope};

use crate::Reply;
use crate::sasl::encode_base64;
use crate::session::{AuthOutcome, Event, RecipientVerdict, Session, SessionConfig};

const PASSWORD: &str = "s3cret";

fn policy() -> AccountPolicy {
    AccountPolicy {
        account_id: 1,
        allowed_domains: vec!["example.com".into()],
        monthly_limit: 100,
        sandbox: false,
        chaos: None,
    }
}

fn config() -> SessionConfig {
    SessionConfig {
        hostname: "relay.test".into(),
        max_message_size: 1000,
        max_recipients: 3,
        max_line: 4096,
        starttls: true,
        tls_active: false,
        auth_required: true,
    }
}

/// Plays the listener: answers auth (password `s3cret`), "commits" messages, upgrades TLS.
struct Client {
    session: Session,
    stored: Vec<(Envelope, Vec<u8>)>,
    /// Content handed out for the transaction in progress.
    content: Vec<u8>,
    closed: bool,
    auth_outcome_override: Option<AuthOutcome>,
}

impl Client {
    fn new(config: SessionConfig) -> Self {
        Client::with_trusted(config, None)
    }

    fn with_trusted(config: SessionConfig, trusted: Option<AccountPolicy>) -> Self {
        Client {
            session: Session::new(config, trusted),
            stored: Vec::new(),
            content: Vec::new(),
            closed: false,
            auth_outcome_override: None,
        }
    }

    /// A client that has done EHLO, STARTTLS, EHLO and AUTH PLAIN.
    fn authenticated() -> Self {
        let mut c = Client::new(config());
        c.cmd("EHLO client.test", "250");
        c.cmd("STARTTLS", "220");
        c.cmd("EHLO client.test", "250");
        c.auth_plain(PASSWORD, "235");
        c
    }

    /// Feeds raw bytes and returns every reply they produced, as wire text.
    fn send(&mut self, bytes: &[u8]) -> String {
        self.session.feed(bytes);
        let mut out = Vec::new();
        while let Some(event) = self.session.next_event() {
            match event {
                Event::Reply(reply) => reply.write_to(&mut out),
                Event::StartTls => self.session.tls_started(),
                Event::Authenticate(credentials) => {
                    let outcome = self.auth_outcome_override.clone().unwrap_or(
                        if credentials.password == PASSWORD {
                            AuthOutcome::Accepted(policy())
                        } else {
                            AuthOutcome::Rejected
                        },
                    );
                    self.session.auth_result(outcome);
                }
                Event::Content(chunk) => {
                    assert!(chunk.len() >= BODY_CHUNK, "content handed out early");
                    self.content.extend_from_slice(&chunk);
                }
                Event::Message { envelope, body } => {
                    let mut whole = std::mem::take(&mut self.content);
                    whole.extend_from_slice(&body);
                    self.stored.push((envelope, whole));
                    let id = self.stored.len();
                    self.session.message_result(Reply::new(
                        250,
                        "2.0.0",
                        format!("Ok: queued as {id}"),
                    ));
                }
                Event::CheckRecipient(rcpt) => {
                    let verdict = if rcpt.starts_with("suppressed") {
                        RecipientVerdict::Suppressed
                    } else {
                        RecipientVerdict::Accept
                    };
                    self.session.recipient_checked(&rcpt, verdict);
                }
                Event::Close => self.closed = true,
            }
        }
        String::from_utf8(out).unwrap()
    }

    /// Sends one command line and checks the code of the (last) reply.
    fn cmd(&mut self, line: &str, code: &str) -> String {
        let out = self.send(format!("{line}\r\n").as_bytes());
        let last = out.lines().last().unwrap_or_default();
        assert!(
            last.starts_with(code),
            "{line:?}: expected {code}, got {out:?}"
        );
        out
    }

    fn auth_plain(&mut self, password: &str, code: &str) -> String {
        let token = encode_base64(format!("\0dev@example.com\0{password}").as_bytes());
        self.cmd(&format!("AUTH PLAIN {token}"), code)
    }

    fn codes(out: &str) -> Vec<&str> {
        out.lines()
            .filter(|l| l.as_bytes().get(3) == Some(&b' '))
            .map(|l| &l[..3])
            .collect()
    }
}

#[test]
fn greeting_and_ehlo_capabilities_before_and_after_tls() {
    let mut c = Client::new(config());
    assert_eq!(
        c.session.greeting().to_bytes(),
        b"220 relay.test ESMTP Sluice\r\n"
    );
    let out = c.cmd("EHLO client.test", "250");
    for cap in [
        "PIPELINING",
        "SIZE 1000",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "STARTTLS",
    ] {
        assert!(
            out.contains(&format!("250-{cap}\r\n")) || out.contains(&format!("250 {cap}\r\n")),
            "{cap} in {out}"
        );
    }
    assert!(!out.contains("AUTH"), "no AUTH before TLS: {out}");
    c.cmd("STARTTLS", "220 2.0.0");
    let out = c.cmd("EHLO client.test", "250");
    assert!(out.contains("AUTH PLAIN LOGIN"), "{out}");
    assert!(!out.contains("STARTTLS"), "{out}");
}

#[test]
fn auth_before_tls_and_mail_before_auth_are_refused() {
    let mut c = Client::new(config());
    c.cmd("EHLO client.test", "250");
    c.auth_plain(PASSWORD, "538 5.7.11");
    c.cmd("MAIL FROM:<a@example.com>", "530 5.7.0");
    c.cmd("RCPT TO:<b@elsewhere.test>", "503 5.5.1");
    c.cmd("DATA", "503 5.5.1");
    assert!(c.stored.is_empty());
}

#[test]
fn implicit_tls_session_needs_auth_for_mail() {
    let mut c = Client::new(SessionConfig {
        starttls: false,
        tls_active: true,
        ..config()
    });
    let out = c.cmd("EHLO client.test", "250");
    assert!(
        out.contains("AUTH PLAIN LOGIN") && !out.contains("STARTTLS"),
        "{out}"
    );
    c.cmd("MAIL FROM:<a@example.com>", "530 5.7.0");
    c.cmd("STARTTLS", "503");
}

#[test]
fn auth_plain_login_failures_and_blocking() {
    let mut c = Client::authenticated();
    c.auth_plain(PASSWORD, "503 5.5.1");

    let mut c = Client::new(config());
    c.cmd("EHLO x", "250");
    c.cmd("STARTTLS", "220");
    c.cmd("EHLO x", "250");
    c.auth_plain("wrong", "535 5.7.8");
    c.cmd("AUTH PLAIN", "334");
    c.cmd("*", "501 5.7.0");
    c.cmd("AUTH PLAIN", "334");
    c.cmd("not base64!", "501 5.5.2");
    c.cmd("AUTH CRAM-MD5", "504 5.5.4");
    c.cmd("AUTH LOGIN", "334 VXNlcm5hbWU6");
    c.cmd(&encode_base64(b"dev@example.com"), "334 UGFzc3dvcmQ6");
    c.cmd(&encode_base64(PASSWORD.as_bytes()), "235 2.7.0");

    let mut c = Client::new(config());
    c.cmd("EHLO x", "250");
    c.cmd("STARTTLS", "220");
    c.cmd("EHLO x", "250");
    c.auth_outcome_override = Some(AuthOutcome::Unavailable);
    c.auth_plain(PASSWORD, "454 4.7.0");
    assert!(!c.closed);
    c.auth_outcome_override = Some(AuthOutcome::Blocked);
    c.auth_plain("wrong", "421 4.7.0");
    assert!(c.closed);
    let mut c = Client::new(config());
    c.cmd("EHLO x", "250");
    c.cmd("STARTTLS", "220");
    c.cmd("EHLO x", "250");
    c.auth_outcome_override = Some(AuthOutcome::AccountBusy);
    c.auth_plain(PASSWORD, "421 4.7.0");
    assert!(c.closed);
}

#[test]
fn sender_policy_recipients_and_limits() {
    let mut c = Client::authenticated();
    c.cmd(
        "MAIL FROM:<a@evil.test>",
        "550 5.7.1 Sender domain is not a verified domain of this account; add and verify it at /api/v1/domains",
    );
    c.cmd("MAIL FROM:<>", "550 5.7.1 Null sender");
    c.cmd("MAIL FROM:<a@example.com> SIZE=1001", "552 5.3.4");
    c.cmd("MAIL FROM:<bad address@example.com>", "501");
    c.cmd("MAIL FROM:<a@example.com> SIZE=10", "250 2.1.0");
    c.cmd("MAIL FROM:<a@example.com>", "503 5.5.1");
    c.cmd("RCPT TO:<no-at-sign>", "501");
    c.cmd("RCPT TO:<x@-bad-.test>", "501 5.1.3");
    c.cmd("RCPT TO:<r1@x.test>", "250 2.1.5");
    c.cmd("RCPT TO:<r2@x.test>", "250");
    c.cmd("RCPT TO:<r3@x.test>", "250");
    c.cmd("RCPT TO:<r4@x.test>", "452 4.5.3");
    c.cmd("DATA", "354");
    c.cmd("Subject: hi\r\n\r\nbody\r\n.", "250 2.0.0");
    assert_eq!(
        c.stored[0].0.rcpt_to,
        vec!["r1@x.test", "r2@x.test", "r3@x.test"]
    );
    assert_eq!(c.stored[0].1, b"Subject: hi\r\n\r\nbody\r\n");
    c.cmd("NOOP", "250");
    c.cmd("VRFY x", "252");
    c.cmd("EXPN x", "502");
    c.cmd("FOO", "500 5.5.1");
    c.cmd("QUIT", "221");
    assert!(c.closed);
}

#[test]
fn oversized_data_is_refused_and_session_goes_on() {
    let mut c = Client::authenticated();
    c.cmd("MAIL FROM:<a@example.com>", "250");
    c.cmd("RCPT TO:<r@x.test>", "250");
    c.cmd("DATA", "354");
    let big = "x".repeat(1200);
    c.cmd(&format!("{big}\r\n."), "552 5.3.4");
    assert!(c.stored.is_empty());
    c.cmd("MAIL FROM:<a@example.com>", "250");
}

#[test]
fn long_command_lines_get_500() {
    let mut c = Client::authenticated();
    let long = format!("NOOP {}", "a".repeat(5000));
    c.cmd(&long, "500 5.5.6");
    c.cmd("NOOP", "250");
    // Without a line end the buffer is not allowed to grow past the limit.
    let out = c.send("A".repeat(5000).as_bytes());
    assert!(out.starts_with("500 5.5.6"), "{out}");
    c.send(b"tail\r\n");
    c.cmd("NOOP", "250");
}

#[test]
fn dot_stuffing_and_pipelining() {
    let mut c = Client::authenticated();
    let out = c.send(
        b"MAIL FROM:<a@example.com>\r\nRCPT TO:<r@x.test>\r\nDATA\r\n..leading dot\r\n.\r\n\
          MAIL FROM:<a@example.com>\r\nRCPT TO:<s@x.test>\r\nDATA\r\nsecond\r\n.\r\nQUIT\r\n",
    );
    assert_eq!(
        Client::codes(&out),
        vec![
            "250", "250", "354", "250", "250", "250", "354", "250", "221"
        ]
    );
    assert_eq!(c.stored[0].1, b".leading dot\r\n");
    assert_eq!(c.stored[1].1, b"second\r\n");
    assert!(c.closed);
}

#[test]
fn bdat_chunks_and_last() {
    let mut c = Client::authenticated();
    c.cmd("MAIL FROM:<a@example.com>", "250");
    c.cmd("RCPT TO:<r@x.test>", "250");
    let out = c.send(b"BDAT 7\r\nline 1\rBDAT 9 LAST\r\n\nline 2\r\n");
    assert_eq!(Client::codes(&out), vec!["250", "250"], "{out}");
    assert_eq!(c.stored[0].1, b"line 1\r\nline 2\r\n");
    let out = c.send(b"BDAT 3 LAST\r\nabc");
    assert_eq!(Client::codes(&out), vec!["503"], "{out}");
}

/// The SMTP smuggling sequences: a fake end of data, then a second transaction.
/// The session must never answer a second 250 nor store a message holding the smuggled one.
#[test]
fn smuggling_sequences_are_refused() {
    let sequences: [&[u8]; 10] = [
        b"\n.\n",
        b"\n.\r",
        b"\r.\n",
        b"\r.\r",
        b"\n.\r\n",
        b"\r.\r\n",
        b"\r\n\x00.\r\n",
        b"\r\n.\n",
        b"\r\n.\r\r\n",
        b"\r\r\n.\r\r\n",
    ];
    for seq in sequences {
        let mut c = Client::authenticated();
        let mut input = b"MAIL FROM:<a@example.com>\r\nRCPT TO:<r@x.test>\r\nDATA\r\nSubject: first\r\n\r\nfirst".to_vec();
        input.extend_from_slice(seq);
        input.extend_from_slice(
            b"MAIL FROM:<a@example.com>\r\nRCPT TO:<victim@x.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n.\r\n",
        );
        input.extend_from_slice(b"\r\n.\r\n");
        let out = c.send(&input);
        let codes = Client::codes(&out);
        assert_eq!(
            codes.iter().filter(|c| **c == "250").count(),
            2,
            "{seq:?}: {out}"
        );
        assert_eq!(codes.last(), Some(&"550"), "{seq:?}: {out}");
        assert!(out.contains("550 5.5.2"), "{seq:?}: {out}");
        assert!(c.closed, "{seq:?}");
        assert!(c.stored.is_empty(), "{seq:?} stored {:?}", c.stored);
    }
}

#[test]
fn bare_newlines_in_commands_and_bdat_close_the_session() {
    for input in [&b"NOOP\n"[..], b"NOOP\rRSET\r\n"] {
        let mut c = Client::authenticated();
        let out = c.send(input);
        assert!(out.starts_with("550 5.5.2"), "{input:?}: {out}");
        assert!(c.closed);
    }
    let mut c = Client::authenticated();
    c.cmd("MAIL FROM:<a@example.com>", "250");
    c.cmd("RCPT TO:<r@x.test>", "250");
    let out = c.send(b"BDAT 4 LAST\r\na\nb.");
    assert!(out.starts_with("550 5.5.2"), "{out}");
    assert!(c.stored.is_empty() && c.closed);
}

#[test]
fn plaintext_pipelined_after_starttls_is_discarded() {
    let mut c = Client::new(config());
    c.cmd("EHLO x", "250");
    // An attacker injects commands after STARTTLS in the same packet.
    let out = c.send(b"STARTTLS\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<r@x.test>\r\n");
    assert_eq!(Client::codes(&out), vec!["220"], "{out}");
    // After the handshake the session starts over: nothing of the injected commands remains.
    c.cmd("RCPT TO:<r@x.test>", "503");
    c.cmd("EHLO x", "250");
}

#[test]
fn trusted_session_sends_without_auth() {
    let mut c = Client::with_trusted(
        SessionConfig {
            starttls: false,
            auth_required: false,
            ..config()
        },
        Some(policy()),
    );
    let out = c.cmd("EHLO x", "250");
    assert!(!out.contains("AUTH") && !out.contains("STARTTLS"), "{out}");
    c.cmd("AUTH PLAIN AGRldkBleGFtcGxlLmNvbQBzM2NyZXQ=", "503");
    c.cmd(
        "MAIL FROM:<a@evil.test>",
        "550 5.7.1 Sender domain is not a verified domain of this account; add and verify it at /api/v1/domains",
    );
    c.cmd("MAIL FROM:<a@example.com>", "250");
    c.cmd("RCPT TO:<r@x.test>", "250");
    c.cmd("DATA", "354");
    c.cmd("hi\r\n.", "250");
    assert_eq!(c.stored.len(), 1);
}

#[test]
fn utf8_addresses_need_smtputf8() {
    let mut c = Client::authenticated();
    c.cmd("MAIL FROM:<a@example.com>", "250");
    c.cmd("RCPT TO:<ünï@x.test>", "553 5.6.7");
    c.cmd("RSET", "250");
    c.cmd("MAIL FROM:<a@example.com> SMTPUTF8 BODY=8BITMIME", "250");
    c.cmd("RCPT TO:<ünï@x.test>", "250");
}

#[test]
fn suppressed_recipients_get_550_and_the_transaction_goes_on() {
    let mut c = Client::authenticated();
    c.cmd("MAIL FROM:<a@example.com>", "250");
    c.cmd("RCPT TO:<suppressed@x.test>", "550 5.1.1");
    c.cmd("RCPT TO:<ok@x.test>", "250 2.1.5");
    let out = c.send(b"RCPT TO:<suppressed2@x.test>\r\nRCPT TO:<ok2@x.test>\r\nDATA\r\n");
    assert_eq!(Client::codes(&out), vec!["550", "250", "354"], "{out}");
    c.cmd("hi\r\n.", "250");
    assert_eq!(c.stored[0].0.rcpt_to, vec!["ok@x.test", "ok2@x.test"]);
}

#[test]
fn an_over_long_line_is_discarded_only_up_to_a_bound() {
    let mut c = Client::authenticated();
    // No line end within the limit: 500, then the rest is read off...
    let out = c.send("A".repeat(5000).as_bytes());
    assert!(out.starts_with("500 5.5.6"), "{out}");
    c.send("B".repeat(30_000).as_bytes());
    assert!(!c.closed);
    // ...but not forever: past 64 KiB without a line end the client is cut off.
    let out = c.send("C".repeat(40_000).as_bytes());
    assert!(out.starts_with("421 4.7.0"), "{out}");
    assert!(c.closed);
}

#[test]
fn an_oversized_bdat_chunk_is_read_off_and_refused_and_the_session_goes_on() {
    let mut c = Client::authenticated();
    c.cmd("MAIL FROM:<a@example.com>", "250");
    c.cmd("RCPT TO:<r@x.test>", "250");
    let out = c.send(b"BDAT 600\r\n");
    assert_eq!(out, "");
    // 600 + 600 > 1000: the second chunk is refused once it has been read off.
    let first = "x".repeat(598) + "\r\n";
    let out = c.send(first.as_bytes());
    assert_eq!(Client::codes(&out), vec!["250"], "{out}");
    let out = c.send(format!("BDAT 600 LAST\r\n{}", "y".repeat(600)).as_bytes());
    assert_eq!(Client::codes(&out), vec!["552"], "{out}");
    assert!(out.starts_with("552 5.3.4"), "{out}");
    assert!(!c.closed);
    assert!(c.stored.is_empty());
    // The transaction is gone; a new one works.
    c.cmd("MAIL FROM:<a@example.com>", "250");
    c.cmd("RCPT TO:<r@x.test>", "250");
    let out = c.send(b"BDAT 5 LAST\r\nhi\r\n.");
    assert_eq!(Client::codes(&out), vec!["250"], "{out}");
    assert_eq!(c.stored[0].1, b"hi\r\n.");
    // A chunk larger than any message may be is not read off: the session ends.
    c.cmd("MAIL FROM:<a@example.com>", "250");
    c.cmd("RCPT TO:<r@x.test>", "250");
    let out = c.send(b"BDAT 999999999 LAST\r\n");
    assert!(out.starts_with("552 5.3.4"), "{out}");
    assert!(c.closed);
}

#[test]
fn the_input_phase_tells_a_waiting_session_from_a_half_received_request() {
    use crate::deadline::InputPhase;
    let mut c = Client::authenticated();
    assert_eq!(c.session.input_phase(), InputPhase::Idle);
    c.send(b"EHLO ");
    assert_eq!(c.session.input_phase(), InputPhase::Request);
    c.send(b"x\r\n");
    assert_eq!(c.session.input_phase(), InputPhase::Idle);
    // A SASL challenge awaits its answer: a request under way.
    let mut fresh = Client::new(config());
    fresh.cmd("EHLO client.test", "250");
    fresh.cmd("STARTTLS", "220");
    fresh.cmd("EHLO client.test", "250");
    fresh.cmd("AUTH LOGIN", "334");
    assert_eq!(fresh.session.input_phase(), InputPhase::Request);
    // Content counts its bytes.
    c.cmd("MAIL FROM:<a@example.com>", "250");
    c.cmd("RCPT TO:<r@x.test>", "250");
    c.cmd("DATA", "354");
    assert_eq!(c.session.input_phase(), InputPhase::Content { received: 0 });
    c.send(b"01234567\r\n");
    assert_eq!(
        c.session.input_phase(),
        InputPhase::Content { received: 10 }
    );
    c.cmd(".", "250");
    assert_eq!(c.session.input_phase(), InputPhase::Idle);
}

/// A client on a TLS session, authenticated, past `DATA`'s 354, with this size limit.
fn in_data(max_message_size: usize) -> Client {
    let mut c = Client::new(SessionConfig {
        max_message_size,
        tls_active: true,
        ..config()
    });
    c.cmd("EHLO client.test", "250");
    c.auth_plain(PASSWORD, "235");
    c.cmd("MAIL FROM:<a@example.com>", "250");
    c.cmd("RCPT TO:<b@example.net>", "250");
    c.cmd("DATA", "354");
    c
}

/// A message of many chunks, DATA and BDAT, fed whole and 7 bytes at a time: the session
/// hands its content out as it goes (never holding much more than a chunk) and what it
/// handed out is the message, byte for byte.
#[test]
fn large_content_is_handed_out_in_chunks_and_adds_up_to_the_message() {
    let line = b"0123456789 .abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n";
    let mut message = Vec::new();
    while message.len() < 5 * BODY_CHUNK + 123 {
        message.extend_from_slice(line);
    }
    let mut stuffed = Vec::new();
    for text_line in message.split_inclusive(|&b| b == b'\n') {
        if text_line.starts_with(b".") {
            stuffed.push(b'.');
        }
        stuffed.extend_from_slice(text_line);
    }
    stuffed.extend_from_slice(b".\r\n");
    for step in [usize::MAX, 7] {
        let mut c = in_data(10 * BODY_CHUNK);
        for piece in stuffed.chunks(step.min(stuffed.len())) {
            c.send(piece);
        }
        assert_eq!(c.stored.len(), 1, "step {step}");
        assert_eq!(c.stored[0].1, message, "step {step}");
        // BDAT in two chunks, then a message after it on the same session.
        c.cmd("MAIL FROM:<a@example.com>", "250");
        c.cmd("RCPT TO:<b@example.net>", "250");
        let (first, second) = message.split_at(3 * BODY_CHUNK + 5);
        let mut bdat = format!("BDAT {}\r\n", first.len()).into_bytes();
        bdat.extend_from_slice(first);
        for piece in bdat.chunks(step.min(bdat.len())) {
            c.send(piece);
        }
        let mut last = format!("BDAT {} LAST\r\n", second.len()).into_bytes();
        last.extend_from_slice(second);
        let mut out = String::new();
        for piece in last.chunks(step.min(last.len())) {
            out.push_str(&c.send(piece));
        }
        assert!(out.starts_with("250"), "{out:?}");
        assert_eq!(c.stored.len(), 2);
        assert_eq!(c.stored[1].1, message, "bdat, step {step}");
    }
}

/// Content handed out for a transaction that then ends without a message (too large, or
/// reset) is the caller's to throw away: the session says no content is pending.
#[test]
fn a_refused_or_reset_transaction_leaves_no_content_pending() {
    let mut c = in_data(2 * BODY_CHUNK);
    let line = [b'x'; 998];
    for _ in 0..(3 * BODY_CHUNK / 1000) {
        c.send(&line);
        c.send(b"\r\n");
    }
    assert!(!c.content.is_empty(), "content went out before the end");
    assert!(c.session.content_pending());
    let out = c.send(b".\r\n");
    assert!(out.starts_with("552 5.3.4"), "{out:?}");
    assert!(!c.session.content_pending());
    assert!(c.stored.is_empty());
    c.content.clear();
    c.cmd("MAIL FROM:<a@example.com>", "250");
    c.cmd("RCPT TO:<b@example.net>", "250");
    let mut bdat = format!("BDAT {}\r\n", BODY_CHUNK + 10).into_bytes();
    bdat.extend(std::iter::repeat_n(b'y', BODY_CHUNK + 8));
    bdat.extend_from_slice(b"\r\n");
    c.send(&bdat);
    assert!(c.session.content_pending());
    c.cmd("RSET", "250");
    assert!(!c.session.content_pending());
}

/// A sandboxed sender whose account injects `code` at each stage with probability 1.
fn chaotic(stages: &[&str], code: u16) -> AuthOutcome {
    use sluice_core::chaos::{ChaosRule, ChaosRules};
    let rule = || {
        Some(ChaosRule {
            code,
            probability: 1.0,
            message: Some("Injected by the sandbox".into()),
        })
    };
    let mut rules = ChaosRules::default();
    for stage in stages {
        match *stage {
            "auth" => rules.auth = rule(),
            "mail" => rules.mail = rule(),
            "rcpt" => rules.rcpt = rule(),
            _ => rules.data = rule(),
        }
    }
    AuthOutcome::Accepted(AccountPolicy {
        sandbox: true,
        chaos: Some(std::sync::Arc::new(rules)),
        ..policy()
    })
}

fn chaos_client(stages: &[&str], code: u16) -> Client {
    let mut c = Client::new(config());
    c.auth_outcome_override = Some(chaotic(stages, code));
    c.cmd("EHLO client.test", "250");
    c.cmd("STARTTLS", "220");
    c.cmd("EHLO client.test", "250");
    c
}

#[test]
fn sandbox_chaos_answers_at_its_stage_and_the_session_goes_on() {
    // RCPT: every recipient gets the injected 451; the transaction stays open.
    let mut c = chaos_client(&["rcpt"], 451);
    c.auth_plain(PASSWORD, "235");
    c.cmd("MAIL FROM:<a@example.com>", "250");
    let out = c.cmd("RCPT TO:<b@example.net>", "451 4.3.0");
    assert!(out.contains("Injected by the sandbox"), "{out}");
    c.cmd("DATA", "503");
    c.cmd("RSET", "250");

    // MAIL: no transaction starts.
    let mut c = chaos_client(&["mail"], 550);
    c.auth_plain(PASSWORD, "235");
    c.cmd("MAIL FROM:<a@example.com>", "550 5.3.0");
    c.cmd("RCPT TO:<b@example.net>", "503");

    // DATA: refused before 354, nothing is read as content or stored.
    let mut c = chaos_client(&["data"], 452);
    c.auth_plain(PASSWORD, "235");
    c.cmd("MAIL FROM:<a@example.com>", "250");
    c.cmd("RCPT TO:<b@example.net>", "250");
    c.cmd("DATA", "452 4.3.0");
    c.cmd("QUIT", "221");
    assert!(c.stored.is_empty());

    // AUTH: right credentials, injected refusal, not authenticated.
    let mut c = chaos_client(&["auth"], 454);
    c.auth_plain(PASSWORD, "454 4.3.0");
    c.cmd("MAIL FROM:<a@example.com>", "530");
}

#[test]
fn a_rule_that_never_fires_changes_nothing() {
    use sluice_core::chaos::{ChaosRule, ChaosRules};
    let mut c = Client::new(config());
    c.auth_outcome_override = Some(AuthOutcome::Accepted(AccountPolicy {
        sandbox: true,
        chaos: Some(std::sync::Arc::new(ChaosRules {
            rcpt: Some(ChaosRule {
                code: 451,
                probability: 0.0,
                message: None,
            }),
            ..Default::default()
        })),
        ..policy()
    }));
    c.cmd("EHLO client.test", "250");
    c.cmd("STARTTLS", "220");
    c.cmd("EHLO client.test", "250");
    c.auth_plain(PASSWORD, "235");
    c.cmd("MAIL FROM:<a@example.com>", "250");
    for n in 0..3 {
        c.cmd(&format!("RCPT TO:<r{n}@example.net>"), "250");
    }
}
