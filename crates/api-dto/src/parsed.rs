//! A captured message parsed for developers: `GET /api/v1/messages/{id}/parsed` and the
//! `data` of the `message.captured` event (one function builds both, so they agree).
//! Attachments are described with a download URL, never inlined.

use mail_parser::{Address, MessageParser, MimeHeaders};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The text and HTML bodies are cut at this many bytes (at a character boundary), so a
/// huge captured message cannot make a huge event.
pub const BODY_TEXT_CAP: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ParsedMessage {
    pub id: i64,
    pub account_id: i64,
    /// Unix ms, when Sluice accepted it.
    pub received_at: i64,
    pub envelope: ParsedEnvelope,
    /// Every header field in order, values as sent (unfolded, not decoded).
    pub headers: Vec<HeaderField>,
    pub message_id: Option<String>,
    pub subject: Option<String>,
    pub from: Option<AddressView>,
    pub to: Vec<AddressView>,
    pub cc: Vec<AddressView>,
    pub reply_to: Vec<AddressView>,
    /// The Date header as RFC 3339.
    pub date: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
    pub tags: Vec<String>,
    pub attachments: Vec<AttachmentView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ParsedEnvelope {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HeaderField {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AddressView {
    pub name: Option<String>,
    pub address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AttachmentView {
    pub filename: Option<String>,
    pub content_type: String,
    /// Decoded bytes.
    pub size: usize,
    pub content_id: Option<String>,
    /// `attachment` or `inline`.
    pub disposition: String,
    /// `/api/v1/messages/{id}/attachments/{n}`: its decoded bytes.
    pub url: String,
}

/// What the store knows of the message, besides its bytes.
#[derive(Debug, Clone)]
pub struct StoredFacts {
    pub id: i64,
    pub account_id: i64,
    pub received_at: i64,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The sender's tags (send API `tags`), before the ones read from the message.
    pub tags: Vec<String>,
}

impl ParsedMessage {
    /// Parses `raw` (an RFC 5322 message; a malformed one gives what could be read).
    pub fn parse(raw: &[u8], facts: StoredFacts) -> ParsedMessage {
        let envelope = ParsedEnvelope {
            mail_from: facts.mail_from,
            rcpt_to: facts.rcpt_to,
        };
        let mut parsed = ParsedMessage {
            id: facts.id,
            account_id: facts.account_id,
            received_at: facts.received_at,
            envelope,
            headers: Vec::new(),
            message_id: None,
            subject: None,
            from: None,
            to: Vec::new(),
            cc: Vec::new(),
            reply_to: Vec::new(),
            date: None,
            text: None,
            html: None,
            tags: Vec::new(),
            attachments: Vec::new(),
        };
        let message = MessageParser::default().parse(raw);
        let x_tags = message
            .as_ref()
            .and_then(|m| m.header_raw("X-Tags"))
            .unwrap_or_default();
        parsed.tags = tags_of(&facts.tags, x_tags, &parsed.envelope.rcpt_to);
        let Some(m) = message else {
            return parsed;
        };
        parsed.headers = m
            .headers_raw()
            .map(|(name, value)| HeaderField {
                name: name.to_string(),
                value: unfold(value),
            })
            .collect();
        parsed.message_id = m.message_id().map(str::to_string);
        parsed.subject = m.subject().map(str::to_string);
        parsed.from = addresses(m.from()).into_iter().next();
        parsed.to = addresses(m.to());
        parsed.cc = addresses(m.cc());
        parsed.reply_to = addresses(m.reply_to());
        parsed.date = m.date().map(|d| d.to_rfc3339());
        parsed.text = m.body_text(0).map(|t| capped(t.into_owned()));
        parsed.html = m.body_html(0).map(|t| capped(t.into_owned()));
        parsed.attachments = m
            .attachments()
            .enumerate()
            .map(|(n, part)| AttachmentView {
                filename: part.attachment_name().map(str::to_string),
                content_type: part
                    .content_type()
                    .map(|c| match c.subtype() {
                        Some(sub) => format!("{}/{}", c.ctype(), sub).to_ascii_lowercase(),
                        None => c.ctype().to_ascii_lowercase(),
                    })
                    .unwrap_or_else(|| "application/octet-stream".into()),
                size: part.contents().len(),
                content_id: part
                    .content_id()
                    .map(|id| id.trim_matches(['<', '>']).to_string()),
                disposition: match part.content_disposition() {
                    Some(d) if d.ctype().eq_ignore_ascii_case("inline") => "inline".into(),
                    _ => "attachment".into(),
                },
                url: format!("/api/v1/messages/{}/attachments/{n}", facts.id),
            })
            .collect();
        parsed
    }

    /// Every address of the From, To and Cc fields, as `Name <address>` lines.
    pub fn addresses_text(list: &[AddressView]) -> String {
        list.iter()
            .map(|a| match (&a.name, &a.address) {
                (Some(name), Some(address)) => format!("{name} <{address}>"),
                (None, Some(address)) => address.clone(),
                (Some(name), None) => name.clone(),
                (None, None) => String::new(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Tags of a captured message: the sender's, then `X-Tags` (comma separated), then each
/// recipient's plus-address tag (`user+tag@`); lower case, trimmed, each once, at most 32
/// of at most 64 characters.
pub fn tags_of(sent: &[String], x_tags: &str, rcpt_to: &[String]) -> Vec<String> {
    let plus = rcpt_to.iter().filter_map(|rcpt| {
        let local = rcpt.rsplit_once('@')?.0;
        Some(local.split_once('+')?.1)
    });
    let mut tags: Vec<String> = Vec::new();
    for tag in sent
        .iter()
        .map(String::as_str)
        .chain(unfold(x_tags).split(','))
        .chain(plus)
    {
        let tag = tag.trim().to_lowercase();
        if !tag.is_empty()
            && tag.chars().count() <= 64
            && !tag.chars().any(char::is_control)
            && !tags.contains(&tag)
            && tags.len() < 32
        {
            tags.push(tag);
        }
    }
    tags
}

fn addresses(list: Option<&Address<'_>>) -> Vec<AddressView> {
    list.map(|list| {
        list.iter()
            .map(|a| AddressView {
                name: a.name().map(str::to_string),
                address: a.address().map(str::to_string),
            })
            .collect()
    })
    .unwrap_or_default()
}

fn unfold(value: &str) -> String {
    value
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn capped(mut text: String) -> String {
    if text.len() > BODY_TEXT_CAP {
        let mut cut = BODY_TEXT_CAP;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> StoredFacts {
        StoredFacts {
            id: 7,
            account_id: 3,
            received_at: 1_000,
            mail_from: "app@example.com".into(),
            rcpt_to: vec!["dev+signup@example.org".into(), "ops@example.org".into()],
            tags: vec!["Welcome".into()],
        }
    }

    const MIXED: &[u8] = b"From: \"App Team\" <app@example.com>\r\n\
To: Dev <dev+signup@example.org>, ops@example.org\r\n\
Cc: Boss <boss@example.org>\r\n\
Reply-To: help@example.com\r\n\
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= from\r\n the app\r\n\
Date: Fri, 04 Dec 2026 08:00:00 +0000\r\n\
Message-ID: <abc@example.com>\r\n\
X-Tags: Alpha, beta ,welcome\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: multipart/alternative; boundary=\"b2\"\r\n\
\r\n\
--b2\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Hello text\r\n\
--b2\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>Hello <img src=\"cid:logo1\"></p>\r\n\
--b2--\r\n\
--b1\r\n\
Content-Type: image/png\r\n\
Content-ID: <logo1>\r\n\
Content-Disposition: inline; filename=\"logo.png\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
iVBORw0KGgo=\r\n\
--b1\r\n\
Content-Type: application/pdf; name=\"report.pdf\"\r\n\
Content-Disposition: attachment; filename=\"report.pdf\"\r\n\
\r\n\
%PDF-1.4\r\n\
--b1--\r\n";

    #[test]
    fn a_mixed_message_has_every_field_of_the_contract() {
        let p = ParsedMessage::parse(MIXED, facts());
        assert_eq!((p.id, p.account_id, p.received_at), (7, 3, 1_000));
        assert_eq!(p.envelope.mail_from, "app@example.com");
        assert_eq!(p.subject.as_deref(), Some("Grüße from the app"));
        assert_eq!(p.message_id.as_deref(), Some("abc@example.com"));
        let from = p.from.clone().unwrap();
        assert_eq!(from.name.as_deref(), Some("App Team"));
        assert_eq!(from.address.as_deref(), Some("app@example.com"));
        assert_eq!(p.to.len(), 2);
        assert_eq!(p.to[1].address.as_deref(), Some("ops@example.org"));
        assert_eq!(p.cc[0].name.as_deref(), Some("Boss"));
        assert_eq!(p.reply_to[0].address.as_deref(), Some("help@example.com"));
        assert_eq!(p.date.as_deref(), Some("2026-12-04T08:00:00Z"));
        assert_eq!(p.text.as_deref().map(str::trim), Some("Hello text"));
        assert!(p.html.as_deref().unwrap().contains("cid:logo1"));
        assert_eq!(p.tags, ["welcome", "alpha", "beta", "signup"]);
        let subject = p.headers.iter().find(|h| h.name == "Subject").unwrap();
        assert_eq!(subject.value, "=?utf-8?q?Gr=C3=BC=C3=9Fe?= from the app");
        assert_eq!(p.attachments.len(), 2);
        let logo = &p.attachments[0];
        assert_eq!(logo.filename.as_deref(), Some("logo.png"));
        assert_eq!(logo.content_type, "image/png");
        assert_eq!(logo.content_id.as_deref(), Some("logo1"));
        assert_eq!(logo.disposition, "inline");
        assert_eq!(logo.size, 8);
        assert_eq!(logo.url, "/api/v1/messages/7/attachments/0");
        let pdf = &p.attachments[1];
        assert_eq!(pdf.disposition, "attachment");
        assert_eq!(pdf.content_type, "application/pdf");
        assert_eq!(
            ParsedMessage::addresses_text(&p.to),
            "Dev <dev+signup@example.org>, ops@example.org"
        );
        // The JSON names of the contract.
        let json = serde_json::to_value(&p).unwrap();
        for key in [
            "id",
            "account_id",
            "received_at",
            "envelope",
            "headers",
            "message_id",
            "subject",
            "from",
            "to",
            "cc",
            "reply_to",
            "date",
            "text",
            "html",
            "tags",
            "attachments",
        ] {
            assert!(json.get(key).is_some(), "{key}");
        }
        assert!(json["envelope"]["rcpt_to"].is_array());
    }

    #[test]
    fn bytes_that_are_no_message_still_answer_the_envelope() {
        let p = ParsedMessage::parse(b"", facts());
        assert_eq!(p.envelope.rcpt_to.len(), 2);
        assert_eq!(p.subject, None);
        assert_eq!(p.tags, ["welcome", "signup"]);
    }

    #[test]
    fn tags_are_cleaned_and_bounded() {
        let many: Vec<String> = (0..40).map(|n| format!("t{n}")).collect();
        assert_eq!(tags_of(&many, "", &[]).len(), 32);
        assert_eq!(
            tags_of(&[], &format!("ok, {}, a\u{7}b", "x".repeat(65)), &[]),
            ["ok"]
        );
        assert!(tags_of(&[], "", &["no-plus@example.org".into()]).is_empty());
    }

    #[test]
    fn huge_text_is_cut_at_a_character_boundary() {
        let text = "é".repeat(BODY_TEXT_CAP);
        let cut = capped(text);
        assert!(cut.len() <= BODY_TEXT_CAP && cut.len() >= BODY_TEXT_CAP - 1);
    }
}
