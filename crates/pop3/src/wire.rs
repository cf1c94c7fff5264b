//! POP3's wire forms: status lines with optional RFC 2449 response codes, and a message as
//! a multi-line answer (CRLF line ends, byte-stuffed, ended by `.` CRLF). Pure.

/// `+OK text` CRLF (`+OK` CRLF for empty text).
pub fn ok(text: &str) -> Vec<u8> {
    match text.is_empty() {
        true => b"+OK\r\n".to_vec(),
        false => format!("+OK {text}\r\n").into_bytes(),
    }
}

/// `-ERR [CODE] text` CRLF; `code` is an RFC 2449 / RFC 3206 response code (`AUTH`,
/// `SYS/TEMP`, `SYS/PERM`).
pub fn status_error(code: Option<&str>, text: &str) -> Vec<u8> {
    match code {
        Some(code) => format!("-ERR [{code}] {text}\r\n").into_bytes(),
        None => format!("-ERR {text}\r\n").into_bytes(),
    }
}

/// A message as the body of a multi-line answer (RFC 1939 §3): every line ended by CRLF
/// (a bare LF, or a last line without one, gets one), a line that starts with `.` gets
/// another `.` before it, and `.` CRLF ends it. With `body_lines` (TOP), only the header
/// section, the blank line after it and that many lines of the body.
///
/// Stored messages have CRLF line ends already (the SMTP ingress refuses bare CR and LF,
/// the send API writes CRLF), so what is sent before stuffing is exactly their octets, and
/// LIST's sizes (the stored size) match what RETR sends.
pub fn encode_message(message: &[u8], body_lines: Option<usize>) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 8);
    let mut in_body = false;
    let mut body_left = body_lines;
    let mut rest = message;
    while !rest.is_empty() {
        if in_body && body_left == Some(0) {
            break;
        }
        let (line, after) = match memchr_lf(rest) {
            Some(end) => (&rest[..end], &rest[end + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
        if in_body {
            body_left = body_left.map(|n| n - 1);
        } else if line.is_empty() {
            in_body = true;
        }
        rest = after;
    }
    out.extend_from_slice(b".\r\n");
    out
}

fn memchr_lf(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|b| *b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_stuffed_and_terminated() {
        let cases: &[(&[u8], Option<usize>, &[u8])] = &[
            (b"", None, b".\r\n"),
            (b"A: b\r\n\r\nbody\r\n", None, b"A: b\r\n\r\nbody\r\n.\r\n"),
            (b"A: b\r\n\r\n.\r\n", None, b"A: b\r\n\r\n..\r\n.\r\n"),
            (
                b"A: b\r\n\r\n..x\r\n.\r\nend",
                None,
                b"A: b\r\n\r\n...x\r\n..\r\nend\r\n.\r\n",
            ),
            // Bare LF and a last line without an end get CRLF.
            (b"A: b\n\nx\ny", None, b"A: b\r\n\r\nx\r\ny\r\n.\r\n"),
            // A CR inside a line is kept as it is.
            (b"A: b\r\n\r\nx\ry\r\n", None, b"A: b\r\n\r\nx\ry\r\n.\r\n"),
            // TOP: headers, the blank line, n body lines.
            (
                b"A: b\r\nC: d\r\n\r\n1\r\n.2\r\n3\r\n",
                Some(0),
                b"A: b\r\nC: d\r\n\r\n.\r\n",
            ),
            (
                b"A: b\r\nC: d\r\n\r\n1\r\n.2\r\n3\r\n",
                Some(2),
                b"A: b\r\nC: d\r\n\r\n1\r\n..2\r\n.\r\n",
            ),
            (b"A: b\r\n\r\n1\r\n", Some(9), b"A: b\r\n\r\n1\r\n.\r\n"),
            // No blank line: all of it is headers.
            (b"A: b\r\nC: d\r\n", Some(0), b"A: b\r\nC: d\r\n.\r\n"),
        ];
        for (message, lines, expected) in cases {
            assert_eq!(
                String::from_utf8_lossy(&encode_message(message, *lines)),
                String::from_utf8_lossy(expected),
                "{:?} {lines:?}",
                String::from_utf8_lossy(message)
            );
        }
    }

    #[test]
    fn a_crlf_message_unstuffed_is_its_own_octets() {
        let message = b"Subject: x\r\n\r\n.hidden\r\n..two\r\nlast\r\n";
        let wire = encode_message(message, None);
        let body = wire.strip_suffix(b".\r\n").unwrap();
        let mut unstuffed = Vec::new();
        for line in body.split_inclusive(|b| *b == b'\n') {
            unstuffed.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        }
        assert_eq!(unstuffed, message);
    }

    #[test]
    fn status_lines() {
        assert_eq!(ok(""), b"+OK\r\n");
        assert_eq!(ok("hi"), b"+OK hi\r\n");
        assert_eq!(status_error(Some("AUTH"), "no"), b"-ERR [AUTH] no\r\n");
        assert_eq!(status_error(None, "no"), b"-ERR no\r\n");
    }
}
