//! `POST /send` bodies: arbitrary JSON through the checks and composition the handler runs
//! (`compose::parse_mailbox` for every address, `check_header`, `decode_attachment`,
//! `render` of a built-in template with the caller's `data`, `build`); whatever passes
//! them must build a message that names exactly the given recipients (see
//! `common/built.rs`). The handler's store and account steps are not here.
#![no_main]

#[path = "common/built.rs"]
mod built;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sluice_compose::render::{builtin, render};
use sluice_compose::{Composed, Mailbox, build, check_header, decode_attachment, parse_mailbox};
use sluice_core::text::is_header_safe;

fn list(value: &Value) -> Option<Vec<&str>> {
    match value {
        Value::Null => Some(Vec::new()),
        Value::String(s) => Some(vec![s.as_str()]),
        Value::Array(items) => items.iter().map(Value::as_str).collect(),
        _ => None,
    }
}

fn mailboxes(field: &str, value: &Value) -> Option<Vec<Mailbox>> {
    list(value)?
        .into_iter()
        .map(|text| parse_mailbox(field, text).ok())
        .collect()
}

fn text(value: &Value) -> Option<Option<&str>> {
    match value {
        Value::Null => Some(None),
        Value::String(s) => Some(Some(s)),
        _ => None,
    }
}

fn run(body: &Value) -> Option<()> {
    let from = parse_mailbox("from", text(&body["from"])?.unwrap_or("app@example.com")).ok()?;
    let to = mailboxes("to", &body["to"])?;
    let cc = mailboxes("cc", &body["cc"])?;
    let reply_to = match text(&body["reply_to"])? {
        Some(r) => Some(parse_mailbox("reply_to", r).ok()?),
        None => None,
    };
    if to.is_empty() && cc.is_empty() {
        return None;
    }
    let (subject, text_body, html) = match text(&body["template"])? {
        Some(name) => {
            let (s, t, h) = builtin(name)?;
            let data = match &body["data"] {
                Value::Null => Value::Object(Default::default()),
                data => data.clone(),
            };
            let r = render(s, t, h, &data).ok()?;
            let subject = match text(&body["subject"])? {
                Some(s) if !s.trim().is_empty() => s.to_string(),
                _ => r.subject,
            };
            let text = (!r.text.trim().is_empty()).then_some(r.text);
            let html = (!r.html.trim().is_empty()).then_some(r.html);
            (subject, text, html)
        }
        None => (
            text(&body["subject"])?.unwrap_or_default().to_string(),
            text(&body["text"])?.map(str::to_string),
            text(&body["html"])?.map(str::to_string),
        ),
    };
    if !is_header_safe(&subject) || (text_body.is_none() && html.is_none()) {
        return None;
    }
    let headers: Vec<(String, String)> = match &body["headers"] {
        Value::Null => Vec::new(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect::<Option<_>>()?,
        _ => return None,
    };
    for (name, value) in &headers {
        check_header(name, value).ok()?;
    }
    let mut attachments = Vec::new();
    if let Some(items) = body["attachments"].as_array() {
        for (i, a) in items.iter().enumerate() {
            attachments.push(
                decode_attachment(
                    i,
                    a["filename"].as_str()?,
                    a["content_type"].as_str()?,
                    a["content"].as_str()?,
                )
                .ok()?,
            );
        }
    }
    let raw = build(Composed {
        from: &from,
        to: &to,
        cc: &cc,
        reply_to: reply_to.as_ref(),
        subject: &subject,
        text: text_body.as_deref(),
        html: html.as_deref(),
        attachments,
        headers: &headers,
        message_id: "0123456789abcdef@relay.test",
        date_secs: 1_700_000_000,
    })
    .ok()?;
    let rcpts: Vec<&Mailbox> = to.iter().chain(&cc).collect();
    built::check_built(&raw, &from, &rcpts, &subject, &headers);
    Some(())
}

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = serde_json::from_slice::<Value>(data) {
        run(&body);
    }
});
