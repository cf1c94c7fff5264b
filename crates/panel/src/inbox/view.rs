//! What the inbox shows of one message, read from its raw source: the header lines, the
//! subject and addresses, the text part, whether there is an HTML part, the attachments
//! (image ones get a thumbnail) and the raw source cut for highlighting. Pure: bytes in.

use mail_parser::{Address, Message, MessageParser, MimeHeaders, PartType};
use serde::Serialize;

use super::raw_source::{Span, highlight};

/// Attachment types shown as thumbnails (`img` of the part); never SVG or HTML.
pub const IMAGE_TYPES: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp"];

#[derive(Debug, Serialize)]
pub struct HeaderLine {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Serialize)]
pub struct AttachmentView {
    /// Its index among the message's attachments (the attachment routes take it).
    pub n: usize,
    pub name: String,
    pub content_type: String,
    pub size: usize,
    pub content_id: Option<String>,
    /// Shown as a thumbnail.
    pub image: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct MessageView {
    pub subject: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub cc: Option<String>,
    pub date: Option<String>,
    pub headers: Vec<HeaderLine>,
    pub text: Option<String>,
    pub has_html: bool,
    pub attachments: Vec<AttachmentView>,
    pub raw: Vec<Span>,
}

/// A part's `type/subtype`, lower case.
pub fn content_type_of<'a>(part: &impl MimeHeaders<'a>) -> String {
    part.content_type()
        .map(|c| match &c.c_subtype {
            Some(sub) => format!("{}/{}", c.c_type, sub),
            None => c.c_type.to_string(),
        })
        .unwrap_or_else(|| "application/octet-stream".into())
        .to_ascii_lowercase()
}

/// `Name <address>, ...` as a mail client shows an address list.
pub fn addresses(address: Option<&Address<'_>>) -> Option<String> {
    let shown: Vec<String> = address?
        .iter()
        .map(|a| match (a.name(), a.address()) {
            (Some(name), Some(address)) => format!("{name} <{address}>"),
            (None, Some(address)) => address.to_string(),
            (Some(name), None) => name.to_string(),
            (None, None) => String::new(),
        })
        .filter(|a| !a.is_empty())
        .collect();
    (!shown.is_empty()).then(|| shown.join(", "))
}

pub fn attachments(message: &Message<'_>) -> Vec<AttachmentView> {
    message
        .attachments()
        .enumerate()
        .map(|(n, part)| {
            let content_type = content_type_of(part);
            AttachmentView {
                n,
                name: part
                    .attachment_name()
                    .or(part.content_id())
                    .unwrap_or("attachment")
                    .to_string(),
                image: IMAGE_TYPES.contains(&content_type.as_str()),
                content_type,
                size: part.contents().len(),
                content_id: part.content_id().map(str::to_string),
            }
        })
        .collect()
}

/// Everything the message pane shows, from the stored bytes.
pub fn message_view(raw: &[u8]) -> MessageView {
    let source = String::from_utf8_lossy(raw);
    let Some(message) = MessageParser::default().parse(raw) else {
        return MessageView {
            raw: highlight(&source),
            ..MessageView::default()
        };
    };
    MessageView {
        subject: message.subject().map(str::to_string),
        from: addresses(message.from()),
        to: addresses(message.to()),
        cc: addresses(message.cc()),
        date: message.date().map(|d| d.to_rfc3339()),
        headers: message
            .headers_raw()
            .map(|(name, value)| HeaderLine {
                name: name.to_string(),
                value: value.trim().to_string(),
            })
            .collect(),
        text: message.body_text(0).map(|t| t.into_owned()),
        // mail-parser offers a text part as HTML too when there is no HTML part.
        has_html: message
            .html_part(0)
            .is_some_and(|part| matches!(part.body, PartType::Html(_))),
        attachments: attachments(&message),
        raw: highlight(&source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &str = "From: \"Ada L.\" <ada@example.com>\r\nTo: b@example.org, Cy <c@example.org>\r\n\
        Subject: =?utf-8?q?Caf=C3=A9?=\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=\"m\"\r\n\r\n\
        --m\r\nContent-Type: text/plain\r\n\r\nhello\r\n\
        --m\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=\"p.png\"\r\n\
        Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n\
        --m\r\nContent-Type: image/svg+xml\r\nContent-Disposition: attachment; filename=\"s.svg\"\r\n\r\n<svg/>\r\n\
        --m--\r\n";

    #[test]
    fn the_view_has_subject_addresses_parts_and_thumbnails() {
        let view = message_view(MESSAGE.as_bytes());
        assert_eq!(view.subject.as_deref(), Some("Café"));
        assert_eq!(view.from.as_deref(), Some("Ada L. <ada@example.com>"));
        assert_eq!(
            view.to.as_deref(),
            Some("b@example.org, Cy <c@example.org>")
        );
        assert_eq!(view.text.as_deref(), Some("hello"));
        assert!(!view.has_html);
        let shown: Vec<(&str, &str, bool, usize)> = view
            .attachments
            .iter()
            .map(|a| (a.name.as_str(), a.content_type.as_str(), a.image, a.size))
            .collect();
        assert_eq!(
            shown,
            vec![
                ("p.png", "image/png", true, 8),
                ("s.svg", "image/svg+xml", false, 6)
            ]
        );
        assert_eq!(view.headers[2].name, "Subject");
        assert!(view.raw.len() > 10, "the raw source is highlighted");
    }

    #[test]
    fn bytes_that_are_not_a_message_still_show_as_source() {
        let view = message_view(b"");
        assert!(view.subject.is_none() && view.attachments.is_empty());
    }
}
