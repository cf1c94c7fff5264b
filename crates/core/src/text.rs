//! Making foreign text safe to echo: upstream replies go back to clients and into logs.

/// Keeps printable ASCII, turns everything else (CR, LF, controls, non-ASCII) into a space,
/// collapses runs of spaces and cuts to `max` bytes.
pub fn sanitize_reply_text(input: &str, max: usize) -> String {
    let mut out = String::with_capacity(input.len().min(max));
    let mut last_space = true;
    for c in input.chars() {
        let c = if (' '..='~').contains(&c) { c } else { ' ' };
        if c == ' ' {
            if last_space {
                continue;
            }
            last_space = true;
        } else {
            last_space = false;
        }
        if out.len() + 1 > max {
            break;
        }
        out.push(c);
    }
    out.trim_end().to_string()
}

/// Whether caller text may go into a header: no CR, LF or NUL, not even hidden in an
/// RFC 2047 encoded word (`=?utf-8?q?a=0D=0ABcc:...?=`).
pub fn is_header_safe(value: &str) -> bool {
    let forbidden = |b: u8| b == b'\r' || b == b'\n' || b == 0;
    if value.bytes().any(forbidden) {
        return false;
    }
    let mut rest = value;
    while let Some(start) = rest.find("=?") {
        let word = &rest[start + 2..];
        let mut parts = word.splitn(3, '?');
        let (Some(_charset), Some(encoding), Some(tail)) =
            (parts.next(), parts.next(), parts.next())
        else {
            break;
        };
        let Some(end) = tail.find("?=") else { break };
        let text = &tail[..end];
        let decoded = match encoding.to_ascii_lowercase().as_str() {
            "b" => {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD
                    .decode(text.trim_end_matches('='))
                    .or_else(|_| base64::engine::general_purpose::STANDARD.decode(text))
                    .unwrap_or_default()
            }
            "q" => decode_q(text),
            _ => Vec::new(),
        };
        if decoded.into_iter().any(forbidden) {
            return false;
        }
        rest = &tail[end + 2..];
    }
    true
}

fn decode_q(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'_' => out.push(b' '),
            // Byte-wise: `=` may be followed by any character, a multi-byte one included.
            b'=' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'='),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_safety_table() {
        let safe = [
            "Hello",
            "Grüße",
            "=?utf-8?q?caf=C3=A9?=",
            "a=?b",
            "=?utf-8?b?aGVsbG8=?=",
        ];
        for value in safe {
            assert!(is_header_safe(value), "{value:?}");
        }
        let unsafe_values = [
            "x\r\nBcc: evil@example.com",
            "x\nBcc: evil@example.com",
            "x\rBcc: y",
            "nul\0",
            "=?utf-8?q?x=0D=0ABcc:_evil@example.com?=",
            "=?UTF-8?Q?x=0ABcc:_evil@example.com?=",
            "=?utf-8?b?eA0KQmNjOiBldmlsQGV4YW1wbGUuY29t?=",
        ];
        for value in unsafe_values {
            assert!(!is_header_safe(value), "{value:?}");
        }
    }

    #[test]
    fn q_words_with_multibyte_text_do_not_panic() {
        // Found by the `address` fuzz target (through `compose::parse_mailbox`): `=` then a
        // character and a multi-byte one sliced a `str` inside a character, a panic on
        // any send API or webhook field checked here.
        let found = "\">\"qum\"???\"qum\"???====?:=m\"?q?=e==l\u{fc}xample.\u{fc}\u{787}c p===?==\u{f}\u{f}\u{f}\u{f}";
        assert!(is_header_safe(found));
        assert!(is_header_safe("=?utf-8?q?=a\u{fc}?="));
        assert!(is_header_safe("=?utf-8?q?\u{fc}=\u{fc}?="));
        assert!(!is_header_safe("=?utf-8?q?\u{fc}=0A\u{fc}?="));
        // Not two hex digits (`from_str_radix` took `+A` for 0x0A): kept as written.
        assert!(is_header_safe("=?utf-8?q?=+A?="));
    }

    #[test]
    fn strips_controls_and_cuts() {
        assert_eq!(
            sanitize_reply_text("550 no\r\n such\tuser", 100),
            "550 no such user"
        );
        assert_eq!(sanitize_reply_text("abcdef", 3), "abc");
        assert_eq!(sanitize_reply_text("  lead", 10), "lead");
    }
}
