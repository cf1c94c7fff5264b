//! The message as sendmail reads it from stdin: LF or CRLF lines (sent as CRLF), ended by
//! the input's end or, without `-i`, by a line holding only "."; recipients from its
//! headers for `-t`; Bcc fields removed. Pure: bytes in, bytes out.

/// The message in CRLF lines, as far as it goes: to a lone "." line unless `ignore_dots`,
/// else to the end. The last line ends with CRLF even when the input's did not.
pub fn read_message(input: &[u8], ignore_dots: bool) -> Vec<u8> {
    let mut message = Vec::with_capacity(input.len() + input.len() / 40 + 2);
    let body = input.strip_suffix(b"\n").unwrap_or(input);
    if input.is_empty() {
        return message;
    }
    for line in body.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if !ignore_dots && line == b"." {
            break;
        }
        message.extend_from_slice(line);
        message.extend_from_slice(b"\r\n");
    }
    message
}

/// The header fields of `message` (CRLF lines) as byte ranges, each with its folded lines,
/// up to the empty line that ends the header.
fn header_fields(message: &[u8]) -> Vec<(String, std::ops::Range<usize>)> {
    let mut fields: Vec<(String, std::ops::Range<usize>)> = Vec::new();
    let mut at = 0;
    while at < message.len() {
        let end = message[at..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(message.len(), |p| at + p + 2);
        let line = &message[at..end];
        if line == b"\r\n" {
            break;
        }
        match line.first() {
            Some(b' ' | b'\t') => {
                if let Some((_, range)) = fields.last_mut() {
                    range.end = end;
                }
            }
            _ => {
                let name = line
                    .iter()
                    .position(|b| *b == b':')
                    .map(|colon| {
                        String::from_utf8_lossy(&line[..colon])
                            .trim()
                            .to_ascii_lowercase()
                    })
                    .unwrap_or_default();
                fields.push((name, at..end));
            }
        }
        at = end;
    }
    fields
}

/// Whether the header has a field named `name` (lower case).
pub fn has_field(message: &[u8], name: &str) -> bool {
    header_fields(message).iter().any(|(n, _)| n == name)
}

/// The message without its Bcc (and Resent-Bcc) fields; every other byte as it was.
pub fn without_bcc(message: &[u8]) -> Vec<u8> {
    let mut kept = Vec::with_capacity(message.len());
    let mut from = 0;
    for (name, range) in header_fields(message) {
        if name == "bcc" || name == "resent-bcc" {
            kept.extend_from_slice(&message[from..range.start]);
            from = range.end;
        }
    }
    kept.extend_from_slice(&message[from..]);
    kept
}

/// The addresses of the To, Cc and Bcc fields (`-t`), in order, without repeats.
pub fn header_recipients(message: &[u8]) -> Vec<String> {
    let mut recipients: Vec<String> = Vec::new();
    let fields = header_fields(message);
    for wanted in ["to", "cc", "bcc"] {
        for (_, range) in fields.iter().filter(|(name, _)| name == wanted) {
            for address in addresses_in(&message[range.clone()]) {
                if !recipients.iter().any(|r| r.eq_ignore_ascii_case(&address)) {
                    recipients.push(address);
                }
            }
        }
    }
    recipients
}

/// The first address of the From field.
pub fn from_address(message: &[u8]) -> Option<String> {
    let fields = header_fields(message);
    let (_, range) = fields.iter().find(|(name, _)| name == "from")?;
    addresses_in(&message[range.clone()]).into_iter().next()
}

/// The addresses of one header field (with its name), by mail-parser: display names,
/// comments, groups and encoded words as RFC 5322 has them.
fn addresses_in(field: &[u8]) -> Vec<String> {
    let mut block = field.to_vec();
    block.extend_from_slice(b"\r\n");
    let Some(parsed) = mail_parser::MessageParser::default().parse_headers(&block[..]) else {
        return Vec::new();
    };
    let list = parsed
        .to()
        .or_else(|| parsed.cc())
        .or_else(|| parsed.bcc())
        .or_else(|| parsed.from());
    list.map(|list| {
        list.iter()
            .filter_map(|addr| addr.address())
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
            .collect()
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lf_lines_become_crlf_and_a_lone_dot_ends_the_message_unless_told() {
        assert_eq!(read_message(b"A: b\n\nhi\n", false), b"A: b\r\n\r\nhi\r\n");
        assert_eq!(
            read_message(b"A: b\r\n\r\nhi", false),
            b"A: b\r\n\r\nhi\r\n"
        );
        assert_eq!(
            read_message(b"A: b\n\nhi\n.\nafter\n", false),
            b"A: b\r\n\r\nhi\r\n"
        );
        assert_eq!(
            read_message(b"A: b\n\nhi\n.\nafter\n", true),
            b"A: b\r\n\r\nhi\r\n.\r\nafter\r\n"
        );
        assert_eq!(
            read_message(b"A: b\n\n..x\n\n\n", false),
            b"A: b\r\n\r\n..x\r\n\r\n\r\n"
        );
        assert_eq!(read_message(b"", false), b"");
    }

    #[test]
    fn recipients_come_from_to_cc_and_bcc_and_bcc_leaves_the_content() {
        let message = read_message(
            b"From: \"App, Inc.\" <app@example.com>\n\
              To: Ann <ann@x.test>, bob@x.test\n\
              Subject: hi\n\
              Cc: team: carl@x.test, dee@x.test;\n\
              Bcc: hidden@x.test,\n\
              \tother@x.test\n\
              X-Tail: kept\n\
              \n\
              Bcc: not a header\n",
            false,
        );
        assert_eq!(
            header_recipients(&message),
            vec![
                "ann@x.test",
                "bob@x.test",
                "carl@x.test",
                "dee@x.test",
                "hidden@x.test",
                "other@x.test"
            ]
        );
        assert_eq!(from_address(&message).as_deref(), Some("app@example.com"));
        assert_eq!(
            without_bcc(&message),
            b"From: \"App, Inc.\" <app@example.com>\r\n\
              To: Ann <ann@x.test>, bob@x.test\r\n\
              Subject: hi\r\n\
              Cc: team: carl@x.test, dee@x.test;\r\n\
              X-Tail: kept\r\n\
              \r\n\
              Bcc: not a header\r\n"
        );
        assert!(has_field(&message, "subject") && !has_field(&message, "date"));
    }
}
