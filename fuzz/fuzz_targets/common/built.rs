//! Checks on a message `compose::build` made, shared by `send_json` and `webhook_json`:
//! it parses, its lines are CRLF-ended, at most 998 octets and free of NUL, its From, To
//! and Cc name exactly the mailboxes given (nothing injected), it has no Bcc, and each
//! caller header is there as often as given.

use sluice_compose::Mailbox;
use sluice_deliver::http::mime;

pub fn check_built(
    raw: &[u8],
    from: &Mailbox,
    rcpts: &[&Mailbox],
    subject: &str,
    headers: &[(String, String)],
) {
    for line in raw.split_inclusive(|&b| b == b'\n') {
        assert!(
            line.ends_with(b"\r\n") || !line.ends_with(b"\n"),
            "bare LF in {line:?}"
        );
        let text = line.strip_suffix(b"\r\n").unwrap_or(line);
        assert!(
            !text.contains(&b'\r') && !text.contains(&0),
            "bare CR or NUL: {line:?}"
        );
        assert!(text.len() <= 998, "line of {} octets", text.len());
    }
    let parsed = mime::parse(raw).expect("a built message parses");
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a built message has a header block");
    let head = String::from_utf8_lossy(&raw[..head_end + 2]).to_ascii_lowercase();
    let count = |name: &str| {
        head.split("\r\n")
            .filter(|line| line.starts_with(&format!("{}:", name.to_ascii_lowercase())))
            .count()
    };
    assert_eq!(count("bcc"), 0, "Bcc in the message");
    assert_eq!(count("from"), 1);
    assert_eq!(count("subject"), 1);
    let mut named = mime::header_recipients(&parsed);
    named.sort();
    let mut want: Vec<String> = rcpts
        .iter()
        .map(|m| m.address.to_ascii_lowercase())
        .collect();
    want.sort();
    assert_eq!(named, want, "recipients in the headers");
    assert_eq!(
        mime::addresses(parsed.from()),
        vec![from.address.to_ascii_lowercase()],
        "From"
    );
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    // Open finding: a caller's literal `=?charset?q?...?=` is written as it is and decoded
    // by readers, so such a subject arrives changed (not a header injection:
    // `is_header_safe` refuses encoded CR, LF and NUL).
    let literal_encoded_word = subject.contains("=?");
    assert!(
        literal_encoded_word || words(parsed.subject().unwrap_or_default()) == words(subject),
        "Subject {:?} for {subject:?}",
        parsed.subject()
    );
    for (name, _) in headers {
        let given = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count();
        assert_eq!(count(name), given, "header {name} as often as given");
    }
}
