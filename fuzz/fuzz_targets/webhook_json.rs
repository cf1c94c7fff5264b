//! Outbound-email webhook bodies (`http::webhook`): arbitrary JSON through the field checks
//! the handler makes (type, `to` by `compose::parse_mailbox`, a header-safe subject of at
//! most 998 bytes, an RFC 3339 `expiresAt`, a `link` by `core::web_url::check_web_url`, a
//! `fromLocalPart` by `parse_mailbox`), then the built-in template rendered with them and
//! the message built; the result must name exactly `to` (see `common/built.rs`).
#![no_main]

#[path = "common/built.rs"]
mod built;

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use sluice_compose::render::{builtin, render};
use sluice_compose::{Composed, build, parse_mailbox};
use sluice_core::text::is_header_safe;
use sluice_core::web_url::check_web_url;

fn field<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body[name].as_str().filter(|s| !s.is_empty())
}

fn run(body: &Value) -> Option<()> {
    let kind = field(body, "type")?;
    let (s, t, h) =
        builtin(kind).filter(|_| matches!(kind, "email_verification" | "password_reset"))?;
    let to = parse_mailbox("to", field(body, "to")?).ok()?;
    let subject = field(body, "subject")?;
    if !is_header_safe(subject) || subject.len() > 998 {
        return None;
    }
    let token = field(body, "token")?;
    let expires_at = field(body, "expiresAt")?;
    time::OffsetDateTime::parse(expires_at, &time::format_description::well_known::Rfc3339).ok()?;
    let link = match &body["link"] {
        Value::Null => "",
        Value::String(link) => link,
        _ => return None,
    };
    if !link.is_empty() {
        check_web_url(link).ok()?;
    }
    let local = match &body["fromLocalPart"] {
        Value::String(local) => local.as_str(),
        _ => "no-reply",
    };
    let from = parse_mailbox("fromLocalPart", &format!("{local}@example.com")).ok()?;
    assert_eq!(
        sluice_core::domain_of(&from.address).as_deref(),
        Some("example.com")
    );
    let data = json!({ "token": token, "expiresAt": expires_at, "link": link, "to": to.address });
    let rendered = render(s, t, h, &data).expect("built-in templates render");
    let raw = build(Composed {
        from: &from,
        to: std::slice::from_ref(&to),
        cc: &[],
        reply_to: None,
        subject,
        text: Some(&rendered.text),
        html: (!rendered.html.trim().is_empty()).then_some(rendered.html.as_str()),
        attachments: Vec::new(),
        headers: &[],
        message_id: "0123456789abcdef@relay.test",
        date_secs: 1_700_000_000,
    })
    .ok()?;
    built::check_built(&raw, &from, &[&to], subject, &[]);
    Some(())
}

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = serde_json::from_slice::<Value>(data) {
        run(&body);
    }
});
