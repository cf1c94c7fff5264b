//! What the services that do not take an envelope need to know from the message itself.

use mail_parser::{Address, Message, MessageParser};

/// Addresses of an address header, lower case.
pub fn addresses(header: Option<&Address<'_>>) -> Vec<String> {
    header
        .map(|list| {
            list.iter()
                .filter_map(|a| a.address())
                .map(str::to_ascii_lowercase)
                .collect()
        })
        .unwrap_or_default()
}

/// Every recipient the message's To, Cc and Bcc headers name.
pub fn header_recipients(message: &Message<'_>) -> Vec<String> {
    let mut all = addresses(message.to());
    all.extend(addresses(message.cc()));
    all.extend(addresses(message.bcc()));
    all
}

pub fn parse(body: &[u8]) -> Option<Message<'_>> {
    MessageParser::default().parse(body)
}

/// For services that read recipients from the headers (Graph): envelope recipients the
/// headers do not name (`named`, from [`header_recipients`]) are added as a `Bcc` field,
/// which the service strips when it sends.
pub fn with_envelope_bcc(body: &[u8], named: &[String], rcpts: &[String]) -> Vec<u8> {
    let missing: Vec<&str> = rcpts
        .iter()
        .filter(|r| !named.contains(&r.to_ascii_lowercase()))
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        return body.to_vec();
    }
    let mut out = format!("Bcc: {}\r\n", missing.join(", ")).into_bytes();
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_only_recipients_become_bcc() {
        let body = b"To: A <a@x.test>\r\nCc: b@x.test\r\nSubject: s\r\n\r\nhi\r\n";
        let rcpts = ["a@x.test".to_string(), "c@x.test".to_string()];
        let named = header_recipients(&parse(body).unwrap());
        let out = with_envelope_bcc(body, &named, &rcpts);
        assert!(out.starts_with(b"Bcc: c@x.test\r\nTo: A <a@x.test>"));
        let all = ["A@x.test".to_string()];
        assert_eq!(with_envelope_bcc(body, &named, &all), body.to_vec());
    }
}
