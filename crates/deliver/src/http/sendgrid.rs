//! SendGrid v3 `POST /v3/mail/send`. SendGrid takes JSON, not MIME: the message is parsed
//! and its parts carried over (from, reply-to, subject, text and HTML bodies, attachments,
//! custom headers). Recipients come from the envelope only, placed as To/Cc/Bcc by the
//! headers that name them, with the headers' display names; when the To header names none
//! of them (a list address), each gets a personalization (a copy) of its own, so no
//! recipient sees another. At most 1000 recipients per call.

use async_trait::async_trait;
use base64::Engine;
use mail_parser::{MessagePart, MimeHeaders};
use serde_json::{Value, json};
use sluice_core::{DeliveryReport, SendgridConfig, Verdict};

use super::{
    Answer, client, in_batches, join, limits, literal_refusal, mime, refused_report,
    report_for_answer, report_for_error,
};
use crate::egress::Egress;
use crate::{Deliverer, Outbound};

pub const DEFAULT_BASE_URL: &str = "https://api.sendgrid.com";

/// Headers SendGrid lets us set; the rest it sets itself or refuses.
const PASSED_HEADERS: [&str; 7] = [
    "list-unsubscribe",
    "list-unsubscribe-post",
    "list-id",
    "in-reply-to",
    "references",
    "precedence",
    "auto-submitted",
];

pub struct SendgridDeliverer {
    config: SendgridConfig,
    http: reqwest::Client,
    refused: Option<String>,
}

impl SendgridDeliverer {
    pub fn new(config: SendgridConfig, egress: &Egress) -> Self {
        let http = client(config.timeout_secs, egress);
        let base = config.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL);
        let refused = literal_refusal(egress, &[base]);
        SendgridDeliverer {
            config,
            http,
            refused,
        }
    }
}

#[async_trait]
impl Deliverer for SendgridDeliverer {
    fn kind(&self) -> &'static str {
        "sendgrid"
    }

    async fn deliver(&self, message: Outbound<'_>) -> DeliveryReport {
        if let Some(why) = &self.refused {
            return refused_report("sendgrid", &message.envelope.rcpt_to, why);
        }
        if message.body.whole().is_none() {
            return crate::whole_body_missing("sendgrid", &message);
        }
        in_batches(&message.envelope.rcpt_to, limits::SENDGRID, |rcpts| {
            self.mail_send(&message, rcpts)
        })
        .await
    }
}

impl SendgridDeliverer {
    /// One mail send for these recipients (at most [`limits::SENDGRID`]).
    async fn mail_send(&self, message: &Outbound<'_>, rcpts: &[String]) -> DeliveryReport {
        let Some(payload) = mail_send_payload(message, rcpts) else {
            return DeliveryReport::uniform(
                "sendgrid",
                rcpts,
                Verdict::Permanent,
                None,
                "the message cannot be read as MIME",
            );
        };
        let base = self.config.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL);
        let sent = self
            .http
            .post(join(base, "/v3/mail/send"))
            .bearer_auth(&self.config.api_key)
            .json(&payload)
            .send()
            .await;
        match sent {
            Ok(response) => {
                let answer = Answer::read(response).await;
                let id = answer.header("x-message-id").map(str::to_string);
                report_for_answer("sendgrid", rcpts, &answer, id)
            }
            Err(error) => report_for_error("sendgrid", rcpts, &error),
        }
    }
}

/// The JSON body of a mail send of this message to `rcpts` (envelope recipients).
pub fn mail_send_payload(message: &Outbound<'_>, rcpts: &[String]) -> Option<Value> {
    let body = message.body.whole()?;
    let parsed = mime::parse(body)?;
    let named_to = mime::addresses(parsed.to());
    let named_cc = mime::addresses(parsed.cc());
    let names = mime::display_names(&parsed);
    let entry = |rcpt: &str, lower: &str| {
        let mut entry = json!({ "email": rcpt });
        if let Some((_, name)) = names.iter().find(|(address, _)| address == lower) {
            entry["name"] = json!(name);
        }
        entry
    };
    let mut seen = Vec::new();
    let (mut to, mut cc, mut bcc) = (Vec::new(), Vec::new(), Vec::new());
    for rcpt in rcpts {
        let lower = rcpt.to_ascii_lowercase();
        if seen.contains(&lower) {
            continue;
        }
        let entry = entry(rcpt, &lower);
        if named_to.contains(&lower) {
            to.push(entry);
        } else if named_cc.contains(&lower) {
            cc.push(entry);
        } else {
            bcc.push(entry);
        }
        seen.push(lower);
    }
    let personalizations: Vec<Value> = if to.is_empty() {
        // SendGrid needs a To in every personalization, and puts it in the To header: each
        // recipient gets a copy of its own rather than seeing the others.
        cc.into_iter()
            .chain(bcc)
            .map(|one| json!({ "to": [one] }))
            .collect()
    } else {
        let mut personalization = json!({ "to": to });
        if !cc.is_empty() {
            personalization["cc"] = json!(cc);
        }
        if !bcc.is_empty() {
            personalization["bcc"] = json!(bcc);
        }
        vec![personalization]
    };
    let from = parsed.from().and_then(|f| f.first());
    let mut from_json =
        json!({ "email": from.and_then(|a| a.address()).unwrap_or(&message.envelope.mail_from) });
    if let Some(name) = from.and_then(|a| a.name()) {
        from_json["name"] = json!(name);
    }
    let mut payload = json!({
        "personalizations": personalizations,
        "from": from_json,
        "subject": parsed.subject().filter(|s| !s.is_empty()).unwrap_or("(no subject)"),
        "content": contents(&parsed),
        "custom_args": { "sluice_message_id": message.id.to_string() },
    });
    if let Some(reply_to) = parsed.reply_to().and_then(|r| r.first())
        && let Some(address) = reply_to.address()
    {
        payload["reply_to"] = json!({ "email": address });
        if let Some(name) = reply_to.name().filter(|n| !n.trim().is_empty()) {
            payload["reply_to"]["name"] = json!(name);
        }
    }
    let attachments: Vec<Value> = parsed.attachments().map(attachment).collect();
    if !attachments.is_empty() {
        payload["attachments"] = json!(attachments);
    }
    let headers: serde_json::Map<String, Value> = sluice_core::router::header_fields(body)
        .into_iter()
        .filter(|(name, _)| {
            let lower = name.to_ascii_lowercase();
            (lower.starts_with("x-") && !lower.starts_with("x-sg-"))
                || PASSED_HEADERS.contains(&lower.as_str())
        })
        .map(|(name, value)| (name, Value::String(value)))
        .collect();
    if !headers.is_empty() {
        payload["headers"] = Value::Object(headers);
    }
    Some(payload)
}

/// text/plain first, then text/html, as SendGrid requires; never empty.
fn contents(parsed: &mail_parser::Message<'_>) -> Vec<Value> {
    let text = parsed
        .text_bodies()
        .find(|p| !p.is_text_html())
        .and_then(|p| p.text_contents());
    let html = parsed
        .html_bodies()
        .find(|p| p.is_text_html())
        .and_then(|p| p.text_contents());
    let mut out = Vec::new();
    if let Some(text) = text.filter(|t| !t.is_empty()) {
        out.push(json!({ "type": "text/plain", "value": text }));
    }
    if let Some(html) = html.filter(|h| !h.is_empty()) {
        out.push(json!({ "type": "text/html", "value": html }));
    }
    if out.is_empty() {
        out.push(json!({ "type": "text/plain", "value": " " }));
    }
    out
}

fn attachment(part: &MessagePart<'_>) -> Value {
    let content_type = part
        .content_type()
        .map(|ct| match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub),
            None => ct.ctype().to_string(),
        })
        .unwrap_or_else(|| "application/octet-stream".into());
    let mut value = json!({
        "content": base64::engine::general_purpose::STANDARD.encode(part.contents()),
        "filename": part.attachment_name().unwrap_or("attachment"),
        "type": content_type,
    });
    let inline = part
        .content_disposition()
        .is_some_and(|d| d.ctype().eq_ignore_ascii_case("inline"));
    match (inline, part.content_id()) {
        (true, Some(cid)) => {
            value["disposition"] = json!("inline");
            value["content_id"] = json!(cid.trim_matches(['<', '>']));
        }
        _ => value["disposition"] = json!("attachment"),
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::Envelope;

    #[test]
    fn payload_carries_parts_and_places_recipients() {
        let body = b"From: Shop <shop@a.test>\r\nTo: Ann <ann@b.test>\r\nCc: cy@b.test\r\n\
Reply-To: help@a.test\r\nSubject: Your order\r\nX-Campaign: spring\r\nReceived: x\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
--b1\r\nContent-Type: multipart/alternative; boundary=\"b2\"\r\n\r\n\
--b2\r\nContent-Type: text/plain\r\n\r\nplain text\r\n\
--b2\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--b2--\r\n\
--b1\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"a.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\nJVBERg==\r\n--b1--\r\n";
        let envelope = Envelope {
            mail_from: "bounce@a.test".into(),
            rcpt_to: vec![
                "ann@b.test".into(),
                "cy@b.test".into(),
                "hidden@b.test".into(),
            ],
            smtputf8: false,
            eight_bit: false,
        };
        let payload = mail_send_payload(
            &Outbound {
                id: 42,
                account_id: 1,
                envelope: &envelope,
                body: crate::OutboundBody::Whole(body),
            },
            &envelope.rcpt_to,
        )
        .unwrap();
        assert_eq!(
            payload["personalizations"],
            json!([{ "to": [{ "email": "ann@b.test", "name": "Ann" }], "cc": [{ "email": "cy@b.test" }],
                     "bcc": [{ "email": "hidden@b.test" }] }])
        );
        assert_eq!(
            payload["from"],
            json!({ "email": "shop@a.test", "name": "Shop" })
        );
        assert_eq!(payload["reply_to"], json!({ "email": "help@a.test" }));
        assert_eq!(payload["subject"], "Your order");
        assert_eq!(
            payload["content"],
            json!([{ "type": "text/plain", "value": "plain text" },
                   { "type": "text/html", "value": "<p>html</p>" }])
        );
        assert_eq!(
            payload["attachments"],
            json!([{ "content": "JVBERg==", "filename": "a.pdf", "type": "application/pdf",
                     "disposition": "attachment" }])
        );
        assert_eq!(payload["headers"], json!({ "X-Campaign": "spring" }));
        assert_eq!(payload["custom_args"], json!({ "sluice_message_id": "42" }));
    }

    fn payload_for(body: &[u8], rcpts: &[&str]) -> Value {
        let envelope = Envelope {
            mail_from: "bounce@a.test".into(),
            rcpt_to: rcpts.iter().map(|r| r.to_string()).collect(),
            smtputf8: false,
            eight_bit: false,
        };
        let message = Outbound {
            id: 7,
            account_id: 1,
            envelope: &envelope,
            body: crate::OutboundBody::Whole(body),
        };
        mail_send_payload(&message, &envelope.rcpt_to).unwrap()
    }

    #[test]
    fn display_names_of_to_cc_and_reply_to_are_passed() {
        let body = "From: Shop <shop@a.test>\r\nTo: Ann Example <ann@b.test>, bo@b.test\r\n\
Cc: \"Cy, Jr.\" <cy@b.test>\r\nReply-To: Help Desk <help@a.test>\r\n\
Subject: s\r\n\r\nhi\r\n";
        let payload = payload_for(body.as_bytes(), &["ann@b.test", "bo@b.test", "cy@b.test"]);
        assert_eq!(
            payload["personalizations"],
            json!([{ "to": [{ "email": "ann@b.test", "name": "Ann Example" }, { "email": "bo@b.test" }],
                     "cc": [{ "email": "cy@b.test", "name": "Cy, Jr." }] }])
        );
        assert_eq!(
            payload["reply_to"],
            json!({ "email": "help@a.test", "name": "Help Desk" })
        );
    }

    #[test]
    fn only_envelope_recipients_and_none_sees_another() {
        // A list address in To that is not an envelope recipient: it gets nothing, and
        // each subscriber gets a copy addressed to them alone.
        let body =
            b"From: list@a.test\r\nTo: Newsletter <newsletter@a.test>\r\nSubject: s\r\n\r\nhi\r\n";
        let payload = payload_for(body, &["s1@b.test", "s2@b.test"]);
        assert_eq!(
            payload["personalizations"],
            json!([{ "to": [{ "email": "s1@b.test" }] }, { "to": [{ "email": "s2@b.test" }] }])
        );
        assert!(!payload.to_string().contains("newsletter@"));
    }
}
