//! An SMTP provider's "sender display name": the name put before a From address that has
//! none (`From: billing@example.com` becomes `From: Example Billing <billing@example.com>`).
//!
//! Only a From field holding one bare address is changed; a From that already carries a
//! name, lists several mailboxes or does not parse is left exactly as the sender wrote it.
//! The rewrite happens before Sluice's own DKIM signing, so the signature covers it; mail
//! signed by the sender is not touched by this because its From (which the sender's
//! signature covers) already has the name the sender chose, or the provider has no name set.

use base64::Engine;
use sluice_core::provider::check_sender_name;

/// `message` with `name` as the display name of its From address, or None when the
/// message goes as it is (From has a name already, several mailboxes, none, or `name`
/// is not a valid name).
pub fn with_sender_name(message: &[u8], name: &str) -> Option<Vec<u8>> {
    check_sender_name(name).ok()?;
    let field = find_from_field(message)?;
    let value = unfold(&message[field.value_start..field.end]);
    let address = bare_address(value.trim())?;
    let ending: &[u8] = if message[..field.end].ends_with(b"\r\n") {
        b"\r\n"
    } else {
        b"\n"
    };
    let mut out = Vec::with_capacity(message.len() + name.len() + 8);
    out.extend_from_slice(&message[..field.start]);
    out.extend_from_slice(b"From: ");
    out.extend_from_slice(display_phrase(name.trim()).as_bytes());
    out.extend_from_slice(b" <");
    out.extend_from_slice(address.as_bytes());
    out.push(b'>');
    out.extend_from_slice(ending);
    out.extend_from_slice(&message[field.end..]);
    Some(out)
}

/// Where the From field lies: from its name to the end of its last (folded) line,
/// line ending included.
struct FieldSpan {
    start: usize,
    value_start: usize,
    end: usize,
}

fn find_from_field(message: &[u8]) -> Option<FieldSpan> {
    let mut at = 0;
    let mut found: Option<FieldSpan> = None;
    while at < message.len() {
        let line_end = message[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(message.len(), |i| at + i + 1);
        let line = &message[at..line_end];
        if line == b"\r\n" || line == b"\n" {
            break; // end of the header section
        }
        let continues = matches!(line.first(), Some(b' ' | b'\t'));
        match &mut found {
            Some(field) if continues && field.end == at => field.end = line_end,
            _ if line.len() >= 5 && line[..5].eq_ignore_ascii_case(b"from:") => {
                if found.is_some() {
                    return None; // two From fields: leave such a message alone
                }
                found = Some(FieldSpan {
                    start: at,
                    value_start: at + 5,
                    end: line_end,
                });
            }
            _ => {}
        }
        at = line_end;
    }
    found
}

fn unfold(value: &[u8]) -> String {
    String::from_utf8_lossy(value)
        .replace("\r\n", "")
        .replace('\n', "")
}

/// `a@b` or `<a@b>` with nothing else: the address; anything else: None.
fn bare_address(value: &str) -> Option<&str> {
    let address = value
        .strip_prefix('<')
        .and_then(|v| v.strip_suffix('>'))
        .unwrap_or(value);
    let plain = !address.is_empty()
        && address.matches('@').count() == 1
        && !address.starts_with('@')
        && !address.ends_with('@')
        && !address
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>,;:\"()[]\\".contains(c));
    plain.then_some(address)
}

/// The name as an RFC 5322 phrase: as it is when it is all atoms, a quoted string when
/// it is other printable ASCII, RFC 2047 encoded words (UTF-8, base64) otherwise.
fn display_phrase(name: &str) -> String {
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~ ".contains(c);
    if name.chars().all(atext) {
        return name.to_string();
    }
    if name.chars().all(|c| (' '..='~').contains(&c)) {
        return format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""));
    }
    // Each encoded word stays within 75 characters: at most 45 bytes of UTF-8 each,
    // never splitting a character.
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in name.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(encoded_word(&chunk));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(encoded_word(&chunk));
    }
    words.join(" ")
}

fn encoded_word(text: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    format!("=?utf-8?b?{encoded}?=")
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::provider::MAX_SENDER_NAME;

    fn named(message: &str, name: &str) -> Option<String> {
        with_sender_name(message.as_bytes(), name).map(|m| String::from_utf8(m).unwrap())
    }

    #[test]
    fn a_bare_from_gets_the_name() {
        let table = [
            (
                "From: billing@example.com\r\nTo: a@b.test\r\n\r\nbody\r\n",
                "Example Billing",
                "From: Example Billing <billing@example.com>\r\nTo: a@b.test\r\n\r\nbody\r\n",
            ),
            (
                "To: a@b.test\r\nfrom:   <billing@example.com>  \r\n\r\nFrom: in body\r\n",
                "Example Billing",
                "To: a@b.test\r\nFrom: Example Billing <billing@example.com>\r\n\r\nFrom: in body\r\n",
            ),
            (
                "From:\r\n billing@example.com\r\nSubject: x\r\n\r\n",
                "Billing, Inc.",
                "From: \"Billing, Inc.\" <billing@example.com>\r\nSubject: x\r\n\r\n",
            ),
            (
                "From: b@example.com\nSubject: bare LF\n\nbody\n",
                "Say \"hi\"",
                "From: \"Say \\\"hi\\\"\" <b@example.com>\nSubject: bare LF\n\nbody\n",
            ),
            (
                "From: b@example.com\r\n\r\n",
                "Grüße GmbH",
                "From: =?utf-8?b?R3LDvMOfZSBHbWJI?= <b@example.com>\r\n\r\n",
            ),
        ];
        for (message, name, expected) in table {
            assert_eq!(
                named(message, name).as_deref(),
                Some(expected),
                "{message:?}"
            );
        }
    }

    #[test]
    fn a_from_with_a_name_or_several_or_none_is_left_alone() {
        for message in [
            "From: Ann <ann@example.com>\r\n\r\n",
            "From: \"Ann\" <ann@example.com>\r\n\r\n",
            "From: ann@example.com (Ann)\r\n\r\n",
            "From: ann@example.com, bob@example.com\r\n\r\n",
            "From: ann@example.com\r\nFrom: bob@example.com\r\n\r\n",
            "From: not an address\r\n\r\n",
            "Subject: no from\r\n\r\nFrom: ann@example.com\r\n",
            "X-From: ann@example.com\r\n\r\n",
        ] {
            assert_eq!(named(message, "Name"), None, "{message:?}");
        }
    }

    #[test]
    fn names_that_would_break_the_header_are_refused() {
        assert_eq!(named("From: a@example.com\r\n\r\n", "x\r\nBcc: e@x"), None);
        assert!(check_sender_name("x\nBcc: e@x").is_err());
        assert!(check_sender_name("  ").is_err());
        assert!(check_sender_name(&"n".repeat(MAX_SENDER_NAME + 1)).is_err());
        assert!(check_sender_name("Ünïcode Støre").is_ok());
    }

    #[test]
    fn long_non_ascii_names_become_several_short_encoded_words() {
        let name = "é".repeat(60);
        let phrase = display_phrase(&name);
        let words: Vec<&str> = phrase.split(' ').collect();
        assert_eq!(words.len(), 3);
        assert!(
            words
                .iter()
                .all(|w| w.len() <= 75 && w.starts_with("=?utf-8?b?"))
        );
        let decoded: String = words
            .iter()
            .map(|w| {
                let b64 = &w["=?utf-8?b?".len()..w.len() - 2];
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap();
                String::from_utf8(bytes).unwrap()
            })
            .collect();
        assert_eq!(decoded, name);
    }
}
