//! Message composition shared by `POST /send` (`sluice-api`) and the outbound-email webhook
//! (`sluice-http`): building an RFC 5322 message from a send request, and the mail
//! templates ([`render`]). Every caller string bound for a header is checked first: no CR,
//! LF or NUL, not even inside an encoded word.

pub mod render;

use base64::Engine;
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::text::Text;
use sluice_core::text::is_header_safe;
use sluice_core::validate_mailbox;

/// A send request that cannot become a message; the API answers it 422 `validation_failed`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ComposeError {
    pub message: String,
}

impl ComposeError {
    fn new(message: impl Into<String>) -> Self {
        ComposeError {
            message: message.into(),
        }
    }
}

/// One address as the caller wrote it: `a@b` or `Name <a@b>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: String,
}

pub fn parse_mailbox(field: &str, text: &str) -> Result<Mailbox, ComposeError> {
    if !is_header_safe(text) {
        return Err(ComposeError::new(format!(
            "{field}: line breaks and NUL are not allowed"
        )));
    }
    let text = text.trim();
    let (name, address) = match (text.rfind('<'), text.ends_with('>')) {
        (Some(open), true) => {
            let name = text[..open].trim().trim_matches('"').trim();
            (
                (!name.is_empty()).then(|| name.to_string()),
                text[open + 1..text.len() - 1].trim(),
            )
        }
        _ => (None, text),
    };
    if name.as_deref().is_some_and(|n| n.contains(['<', '>'])) {
        return Err(ComposeError::new(format!(
            "{field}: {text:?} is not an address"
        )));
    }
    validate_mailbox(address)
        .map_err(|e| ComposeError::new(format!("{field}: {address:?}: {e}")))?;
    Ok(Mailbox {
        name,
        address: address.to_string(),
    })
}

/// Headers callers may not set: the ones Sluice writes or that change routing.
const RESERVED: [&str; 14] = [
    "from",
    "to",
    "cc",
    "bcc",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "reply-to",
    "sender",
    "received",
    "return-path",
    "content-type",
    "content-transfer-encoding",
];

pub fn check_header(name: &str, value: &str) -> Result<(), ComposeError> {
    let valid_name = !name.is_empty()
        && name.len() <= 76
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !valid_name {
        return Err(ComposeError::new(format!(
            "headers: {name:?} is not a header name"
        )));
    }
    if RESERVED.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(ComposeError::new(format!(
            "headers: {name} is set by Sluice"
        )));
    }
    if !is_header_safe(value) {
        return Err(ComposeError::new(format!(
            "headers: {name}: line breaks and NUL are not allowed"
        )));
    }
    Ok(())
}

pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub content: Vec<u8>,
}

pub fn decode_attachment(
    index: usize,
    filename: &str,
    content_type: &str,
    content: &str,
) -> Result<Attachment, ComposeError> {
    let field = format!("attachments[{index}]");
    if filename.is_empty() || !is_header_safe(filename) || filename.contains(['"', '/', '\\']) {
        return Err(ComposeError::new(format!(
            "{field}.filename is not a file name"
        )));
    }
    // RFC 6838 §4.2: a type and a subtype name of 1 to 127 characters each. Unbounded,
    // a Content-Type line outgrew RFC 5322's 998 octets (found by fuzzing `send_json`).
    let name = |part: &str| {
        (1..=127).contains(&part.len())
            && part
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(&c))
    };
    let valid_type = content_type
        .split_once('/')
        .is_some_and(|(a, b)| name(a) && name(b));
    if !valid_type {
        return Err(ComposeError::new(format!(
            "{field}.content_type is not a media type"
        )));
    }
    let content = base64::engine::general_purpose::STANDARD
        .decode(content.trim())
        .map_err(|_| ComposeError::new(format!("{field}.content is not base64")))?;
    Ok(Attachment {
        filename: filename.to_string(),
        content_type: content_type.to_string(),
        content,
    })
}

fn address_of(m: &Mailbox) -> Address<'static> {
    match &m.name {
        Some(name) => Address::new_address(Some(name.clone()), m.address.clone()),
        None => Address::new_address(None::<String>, m.address.clone()),
    }
}

fn list_of(boxes: &[Mailbox]) -> Address<'static> {
    Address::new_list(boxes.iter().map(address_of).collect())
}

/// Everything that goes into the message, already checked.
pub struct Composed<'a> {
    pub from: &'a Mailbox,
    pub to: &'a [Mailbox],
    pub cc: &'a [Mailbox],
    pub reply_to: Option<&'a Mailbox>,
    pub subject: &'a str,
    pub text: Option<&'a str>,
    pub html: Option<&'a str>,
    pub attachments: Vec<Attachment>,
    pub headers: &'a [(String, String)],
    pub message_id: &'a str,
    pub date_secs: i64,
}

/// The RFC 5322 bytes (CRLF line ends). Bcc recipients are in the envelope only.
pub fn build(message: Composed<'_>) -> Result<Vec<u8>, ComposeError> {
    let mut builder = MessageBuilder::new()
        .from(address_of(message.from))
        .subject(message.subject.to_string())
        .message_id(message.message_id.to_string())
        .date(message.date_secs);
    if !message.to.is_empty() {
        builder = builder.to(list_of(message.to));
    }
    if !message.cc.is_empty() {
        builder = builder.cc(list_of(message.cc));
    }
    if let Some(reply_to) = message.reply_to {
        builder = builder.reply_to(address_of(reply_to));
    }
    for (name, value) in message.headers {
        builder = builder.header(name.clone(), Text::new(value.clone()));
    }
    if let Some(text) = message.text {
        builder = builder.text_body(lone_cr_to_crlf(text));
    }
    if let Some(html) = message.html {
        builder = builder.html_body(lone_cr_to_crlf(html));
    }
    for attachment in message.attachments {
        builder = builder.attachment(
            attachment.content_type,
            attachment.filename,
            attachment.content,
        );
    }
    let raw = builder
        .write_to_vec()
        .map_err(|e| ComposeError::new(format!("the message could not be built: {e}")))?;
    // mail-builder writes text parts (and text/* attachments) as they are unless they hold
    // 8-bit bytes or long lines: a NUL or a bare CR would reach the wire, where SMTP hops
    // refuse it or, worse, read a bare CR as a line end (smuggling).
    if !crlf_only(&raw) {
        return Err(ComposeError::new(
            "the message would hold a NUL or a bare CR: text and html may not contain NUL, \
             and a text attachment with NUL or bare CR must be sent as application/octet-stream",
        ));
    }
    Ok(raw)
}

/// A CR not followed by LF becomes CRLF (old Mac line ends), so no bare CR is written.
fn lone_cr_to_crlf(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '\r' && chars.peek() != Some(&'\n') {
            out.push('\n');
        }
    }
    out
}

/// No NUL, and every CR and LF part of a CRLF.
fn crlf_only(raw: &[u8]) -> bool {
    raw.iter().enumerate().all(|(i, &b)| match b {
        0 => false,
        b'\r' => raw.get(i + 1) == Some(&b'\n'),
        b'\n' => i > 0 && raw[i - 1] == b'\r',
        _ => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built(text: &str, attachments: Vec<Attachment>) -> Result<Vec<u8>, ComposeError> {
        let from = parse_mailbox("from", "App <app@example.com>").unwrap();
        let to = [parse_mailbox("to", "a@x.test").unwrap()];
        build(Composed {
            from: &from,
            to: &to,
            cc: &[],
            reply_to: None,
            subject: "Hello",
            text: Some(text),
            html: None,
            attachments,
            headers: &[],
            message_id: "id@relay.test",
            date_secs: 1_700_000_000,
        })
    }

    /// Found by `send_json` (a random run of 8 minutes, 2026-12-04): an attachment's
    /// `content_type` of 1,100 characters was written on one Content-Type line of 1,112
    /// octets, past RFC 5322's 998.
    #[test]
    fn a_media_type_is_at_most_127_and_127_characters() {
        let long = format!("text/{}plain", "x".repeat(1100));
        assert!(decode_attachment(0, "a.txt", &long, "aGk=").is_err());
        assert!(decode_attachment(0, "a.txt", "text/plain/x", "aGk=").is_err());
        let longest = format!("{}/{}", "a".repeat(127), "b".repeat(127));
        let file = decode_attachment(0, &"f".repeat(3000), &longest, "aGk=").unwrap();
        let raw = built("hi", vec![file]).unwrap();
        assert!(crlf_only(&raw));
        for line in raw.split(|b| *b == b'\n') {
            assert!(line.len() <= 999, "a line of {} octets", line.len());
        }
    }

    #[test]
    fn no_nul_or_bare_cr_reaches_the_message() {
        // Found by the `send_json` fuzz target: a text/plain attachment of "\0ello" (content
        // "AGVsbG8=") was written as it was, NUL and all.
        let nul_file = decode_attachment(0, "a.txt", "text/plain", "AGVsbG8=").unwrap();
        let error = built("hi", vec![nul_file]).unwrap_err();
        assert!(error.message.contains("NUL"), "{}", error.message);
        let binary = decode_attachment(0, "a.bin", "application/octet-stream", "AGVsbG8=");
        assert!(built("hi", vec![binary.unwrap()]).is_ok());
        assert!(built("nul \0 in text", Vec::new()).is_err());
        // A bare CR in text (SMTP smuggling's `<CR>.<CR>`) becomes a line end.
        let raw = built("a\r.\rMAIL FROM:<x@y>\r\nb", Vec::new()).unwrap();
        let text = String::from_utf8(raw).unwrap();
        assert!(
            text.contains("a\r\n.\r\nMAIL FROM:<x@y>\r\nb") || text.contains("a\r\n..\r\nMAIL"),
            "{text}"
        );
        assert!(crlf_only(text.as_bytes()));
    }
}
