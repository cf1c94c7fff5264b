//! BDAT content: `BareNewlineCheck` over arbitrary chunks against the whole content read at
//! once (the first NUL, bare LF or bare CR, a CR at the very end included), and the session
//! taking BDAT chunks of arbitrary sizes: it counts every octet, keeps them unchanged, and
//! answers each chunk once.
//!
//! Input: chunk length, then the content.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::AccountPolicy;
use sluice_smtp::Reply;
use sluice_smtp::data::{BareNewlineCheck, ContentError};
use sluice_smtp::session::{Event, RecipientVerdict, Session, SessionConfig};

fn reference(content: &[u8]) -> Result<(), ContentError> {
    for (i, &b) in content.iter().enumerate() {
        let after_cr = i > 0 && content[i - 1] == b'\r';
        if b == 0 {
            return Err(ContentError::Nul);
        }
        if b == b'\n' && !after_cr {
            return Err(ContentError::BareLf);
        }
        if after_cr && b != b'\n' {
            return Err(ContentError::BareCr);
        }
    }
    if content.last() == Some(&b'\r') {
        return Err(ContentError::BareCr);
    }
    Ok(())
}

fn session_bdat(content: &[u8], sizes: &[usize]) {
    let config = SessionConfig {
        hostname: "relay.test".into(),
        max_message_size: 4096,
        max_recipients: 5,
        max_line: 1000,
        starttls: false,
        tls_active: false,
        auth_required: false,
    };
    let policy = AccountPolicy {
        account_id: 1,
        allowed_domains: vec!["example.com".into()],
        monthly_limit: 10,
        sandbox: false,
        chaos: None,
    };
    let mut session = Session::new(config, Some(policy));
    let mut wire = b"EHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\n".to_vec();
    let mut at = 0;
    for (i, &size) in sizes.iter().enumerate() {
        let last = i + 1 == sizes.len();
        let size = size.min(content.len() - at);
        let suffix = if last { " LAST" } else { "" };
        wire.extend_from_slice(format!("BDAT {size}{suffix}\r\n").as_bytes());
        wire.extend_from_slice(&content[at..at + size]);
        at += size;
    }
    session.feed(&wire);
    let mut replies: Vec<Reply> = Vec::new();
    let mut stored = None;
    while let Some(event) = session.next_event() {
        match event {
            Event::Reply(reply) => replies.push(reply),
            Event::CheckRecipient(r) => session.recipient_checked(&r, RecipientVerdict::Accept),
            Event::Message { body, .. } => {
                assert!(stored.is_none(), "two messages");
                stored = Some(body);
                session.message_result(Reply::new(250, "2.0.0", "queued"));
            }
            Event::Close => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    let whole = &content[..at];
    let chunk_replies = replies.len().saturating_sub(3);
    match reference(whole) {
        Ok(()) => {
            assert_eq!(stored.as_deref(), Some(whole), "stored content differs");
            assert_eq!(chunk_replies, sizes.len(), "{replies:?}");
            assert!(replies[3..].iter().all(|r| r.code == 250), "{replies:?}");
        }
        Err(_) => {
            assert!(stored.is_none(), "bad content stored");
            assert_eq!(replies.last().map(|r| r.code), Some(550), "{replies:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&step, content)) = data.split_first() else {
        return;
    };
    let step = usize::from(step).max(1);
    let mut check = BareNewlineCheck::default();
    let mut got = Ok(());
    for chunk in content.chunks(step) {
        got = check.check(chunk);
        if got.is_err() {
            break;
        }
    }
    if got.is_ok() {
        got = check.finish();
    }
    assert_eq!(got, reference(content), "{content:?}");

    if content.len() <= 4096 && !content.is_empty() {
        let sizes: Vec<usize> = (0..content.len().div_ceil(step)).map(|_| step).collect();
        session_bdat(content, &sizes);
    }
});
