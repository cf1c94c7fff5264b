//! The SMTP session fed a byte stream in arbitrary chunks, driven the way
//! `smtp::server::driver` drives it, asserting its invariants:
//! - every reply is well formed (`DDD[ -]text\r\n`, a valid code, printable ASCII, ≤ 512 bytes);
//! - after `354` the next reply is the transaction's final one, never a positive one from
//!   the session itself (only the sink's answer to `Event::Message` may be 250);
//! - at most one `Event::Message` per transaction (per `250 2.1.0` to MAIL);
//! - a stored message has no bare CR, bare LF or NUL (nothing a lenient hop downstream
//!   could read as the end of DATA), fits the size limit, and has valid recipients;
//! - nothing after `Event::Close`; the event loop ends;
//! - the same stream in one piece gives the same replies and messages (unless STARTTLS,
//!   which drops pipelined input by design, or an over-long line, read off differently).
//!
//! Input: 4 header bytes (flags, chunk length, chunk seed, limits), then the stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::{AccountPolicy, Envelope, validate_mailbox};
use sluice_smtp::Reply;
use sluice_smtp::session::{AuthOutcome, Event, RecipientVerdict, Session, SessionConfig};

#[derive(Clone, Copy)]
struct Setup {
    flags: u8,
    max_message_size: usize,
    max_recipients: usize,
    max_line: usize,
}

fn policy() -> AccountPolicy {
    AccountPolicy {
        account_id: 7,
        allowed_domains: vec!["example.com".into()],
        monthly_limit: 1000,
        sandbox: false,
        chaos: None,
    }
}

fn check_reply(reply: &Reply) {
    assert!(
        (200..600).contains(&reply.code) && reply.code / 10 % 10 <= 5,
        "bad code {reply:?}"
    );
    let wire = reply.to_bytes();
    let lines: Vec<&[u8]> = wire.split_inclusive(|&b| b == b'\n').collect();
    assert!(!lines.is_empty());
    for (i, line) in lines.iter().enumerate() {
        assert!(
            line.len() >= 6 && line.len() <= 512,
            "reply line length {line:?}"
        );
        assert!(line.ends_with(b"\r\n"), "{line:?}");
        let code = format!("{}", reply.code);
        assert_eq!(&line[..3], code.as_bytes(), "{line:?}");
        let sep = if i + 1 == lines.len() { b' ' } else { b'-' };
        assert_eq!(line[3], sep, "{wire:?}");
        let text = &line[4..line.len() - 2];
        assert!(
            text.iter().all(|&b| (0x20..0x7f).contains(&b)),
            "reply text not printable ASCII: {line:?}"
        );
    }
}

fn check_message(setup: &Setup, envelope: &Envelope, content: &[u8]) {
    assert!(!envelope.rcpt_to.is_empty(), "message without recipients");
    assert!(envelope.rcpt_to.len() <= setup.max_recipients);
    for rcpt in &envelope.rcpt_to {
        assert!(validate_mailbox(rcpt).is_ok(), "{rcpt:?}");
    }
    assert!(policy().allows_sender(&envelope.mail_from));
    assert!(
        content.len() <= setup.max_message_size,
        "stored {} > limit {}",
        content.len(),
        setup.max_message_size
    );
    for (i, &b) in content.iter().enumerate() {
        assert!(b != 0, "NUL stored at {i}");
        if b == b'\r' {
            assert_eq!(content.get(i + 1), Some(&b'\n'), "bare CR stored at {i}");
        }
        if b == b'\n' {
            assert!(i > 0 && content[i - 1] == b'\r', "bare LF stored at {i}");
        }
    }
}

#[derive(Default, PartialEq, Debug)]
struct Outcome {
    wire: Vec<u8>,
    messages: Vec<(Envelope, Vec<u8>)>,
    starttls: bool,
    long_line: bool,
}

struct Driver {
    setup: Setup,
    session: Session,
    out: Outcome,
    content: Vec<u8>,
    closed: bool,
    /// A 354 went out; the transaction's final reply has not.
    awaiting_data_end: bool,
    /// Messages handed out since the last `250 2.1.0`.
    messages_in_transaction: usize,
}

impl Driver {
    fn new(setup: Setup) -> Self {
        let config = SessionConfig {
            hostname: "relay.test".into(),
            max_message_size: setup.max_message_size,
            max_recipients: setup.max_recipients,
            max_line: setup.max_line,
            starttls: setup.flags & 2 != 0,
            tls_active: setup.flags & 4 != 0,
            auth_required: setup.flags & 1 != 0,
        };
        let trusted = (setup.flags & 1 == 0 || setup.flags & 8 != 0).then(policy);
        let session = Session::new(config, trusted);
        let greeting = session.greeting();
        check_reply(&greeting);
        Driver {
            setup,
            session,
            out: Outcome::default(),
            content: Vec::new(),
            closed: false,
            awaiting_data_end: false,
            messages_in_transaction: 0,
        }
    }

    fn reply(&mut self, reply: &Reply) {
        check_reply(reply);
        if self.awaiting_data_end {
            // Only the session's own refusals can end DATA here (size, bare newline,
            // closing); the acceptance is the sink's.
            assert!(reply.code >= 400, "session answered DATA itself: {reply:?}");
            self.awaiting_data_end = false;
        }
        if reply.code == 354 {
            self.awaiting_data_end = true;
        }
        if reply.code == 250 && reply.lines[0].starts_with("2.1.0") {
            self.messages_in_transaction = 0;
        }
        if reply.code == 500 && reply.lines[0].starts_with("5.5.6") {
            self.out.long_line = true;
        }
        reply.write_to(&mut self.out.wire);
    }

    fn drain(&mut self) {
        let mut steps = 0usize;
        while let Some(event) = self.session.next_event() {
            steps += 1;
            assert!(steps < 1_000_000, "event loop does not end");
            assert!(!self.closed, "event after Close: {event:?}");
            match event {
                Event::Reply(reply) => self.reply(&reply),
                Event::Close => self.closed = true,
                Event::StartTls => {
                    self.out.starttls = true;
                    self.session.tls_started();
                }
                Event::CheckRecipient(rcpt) => {
                    assert!(validate_mailbox(&rcpt).is_ok(), "{rcpt:?}");
                    let verdict = if rcpt.starts_with("sup") {
                        RecipientVerdict::Suppressed
                    } else if rcpt.starts_with("tmp") {
                        RecipientVerdict::Unavailable
                    } else {
                        RecipientVerdict::Accept
                    };
                    self.session.recipient_checked(&rcpt, verdict);
                }
                Event::Authenticate(credentials) => {
                    let outcome =
                        match (credentials.username.as_str(), credentials.password.as_str()) {
                            (_, "pw") => AuthOutcome::Accepted(policy()),
                            ("busy", _) => AuthOutcome::AccountBusy,
                            ("block", _) => AuthOutcome::Blocked,
                            ("down", _) => AuthOutcome::Unavailable,
                            _ => AuthOutcome::Rejected,
                        };
                    self.session.auth_result(outcome);
                }
                Event::Content(chunk) => {
                    assert!(!chunk.is_empty());
                    self.content.extend_from_slice(&chunk);
                }
                Event::Message { envelope, body } => {
                    assert!(
                        self.session.policy().is_some(),
                        "message without an account"
                    );
                    self.awaiting_data_end = false;
                    self.messages_in_transaction += 1;
                    assert_eq!(
                        self.messages_in_transaction, 1,
                        "two messages in one transaction"
                    );
                    let mut content = std::mem::take(&mut self.content);
                    content.extend_from_slice(&body);
                    check_message(&self.setup, &envelope, &content);
                    let n = self.out.messages.len();
                    self.out.messages.push((envelope, content));
                    let answer = match (self.setup.flags >> 4) & 3 {
                        0 => 0,
                        1 => 1,
                        2 => 2,
                        _ => n % 3,
                    };
                    let reply = match answer {
                        0 => Reply::new(250, "2.0.0", format!("Ok: queued as {n}")),
                        1 => Reply::new(451, "4.3.0", "Try again later"),
                        _ => Reply::new(550, "5.7.1", "Refused"),
                    };
                    self.session.message_result(reply);
                }
            }
        }
        if !self.session.content_pending() {
            // The transaction ended without a message: its content is dropped.
            self.content.clear();
        }
    }

    fn run(mut self, chunks: impl Iterator<Item = Vec<u8>>) -> Outcome {
        for chunk in chunks {
            self.drain();
            if self.closed {
                break;
            }
            self.session.feed(&chunk);
        }
        self.drain();
        self.out
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (head, stream) = data.split_at(4);
    let setup = Setup {
        flags: head[0],
        max_message_size: [16, 64, 256, 1024, 4096, 100, 1, 0][usize::from(head[3] & 7)],
        max_recipients: 1 + usize::from((head[3] >> 3) & 3),
        max_line: [64, 512, 1000, 4096][usize::from((head[3] >> 5) & 3)],
    };
    let max_chunk = usize::from(head[1]);
    let mut seed = u32::from(head[2]) | 0x100;
    let mut chunks = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        let len = if max_chunk == 0 {
            rest.len()
        } else {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            1 + seed as usize % max_chunk
        };
        let (chunk, tail) = rest.split_at(len.min(rest.len()));
        chunks.push(chunk.to_vec());
        rest = tail;
    }
    let chunked = Driver::new(setup).run(chunks.into_iter());
    if head[0] & 0x40 != 0 && !chunked.starttls && !chunked.long_line {
        let whole = Driver::new(setup).run(std::iter::once(stream.to_vec()));
        if !whole.starttls && !whole.long_line {
            assert_eq!(
                String::from_utf8_lossy(&chunked.wire),
                String::from_utf8_lossy(&whole.wire),
                "replies depend on how the stream was cut"
            );
            assert_eq!(
                chunked.messages, whole.messages,
                "messages depend on the cuts"
            );
        }
    }
});
