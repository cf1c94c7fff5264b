//! Mail handed in over HTTP (the send API and the signed webhook) reaches a real upstream
//! SMTP server, checked with a MIME parser.

mod common;

use std::time::Duration;

use base64::Engine;
use common::*;
use hmac::{Hmac, Mac};
use mail_parser::{MessageParser, MimeHeaders};
use serde_json::json;
use sha2::Sha256;
use sluice_testkit::http_json;

fn received_with_subject(upstream: &Upstream, subject: &str) -> Vec<u8> {
    let found = wait_until(Duration::from_secs(20), || {
        upstream.messages().into_iter().find(|m| {
            MessageParser::default()
                .parse(&m.raw)
                .and_then(|p| p.subject().map(|s| s == subject))
                .unwrap_or(false)
        })
    });
    found
        .unwrap_or_else(|| panic!("{subject:?} never reached the upstream"))
        .raw
}

#[test]
fn send_api_and_signed_webhook_deliver_to_a_real_upstream() {
    let upstream = Upstream::start(&[]);
    let sluice = Sluice::builder(BIN)
        .upstream(upstream.port)
        .webhook("secret = \"hook-secret\"")
        .webhook("account = \"user@example.com\"")
        .webhook("sender_domain = \"example.com\"")
        .webhook("public_web_url = \"https://app.example.com\"")
        .start();
    let key = sluice.api_key.clone();
    assert!(key.starts_with("sk_"), "the account's API key: {key:?}");

    // The send API, async: 202 once committed; then at the upstream, byte-checked by a parser.
    let pdf = b"%PDF-1.4\n%\xe2\xe3 binary \x00\x01".to_vec();
    let (status, sent) = http_json(
        sluice.ports.http,
        "POST",
        "/api/v1/send",
        Some(&key),
        Some(&json!({
            "from": "Billing <billing@example.com>",
            "to": ["ann@dest.test"],
            "bcc": "audit@dest.test",
            "subject": "Invoice 42",
            "text": "Your invoice is attached.",
            "html": "<p>Your invoice is attached.</p>",
            "attachments": [{ "filename": "invoice-42.pdf", "content_type": "application/pdf",
                              "content": base64::engine::general_purpose::STANDARD.encode(&pdf) }],
        })),
    );
    assert_eq!(status, 202, "{sent}");
    assert_eq!(sent["status"], "queued");
    let raw = received_with_subject(&upstream, "Invoice 42");
    let parsed = MessageParser::default().parse(&raw).unwrap();
    assert_eq!(
        parsed.from().unwrap().first().unwrap().address(),
        Some("billing@example.com")
    );
    assert_eq!(
        parsed.body_text(0).as_deref(),
        Some("Your invoice is attached.")
    );
    assert!(
        parsed
            .body_html(0)
            .unwrap()
            .contains("<p>Your invoice is attached.</p>")
    );
    let attachment = parsed.attachment(0).unwrap();
    assert_eq!(attachment.attachment_name(), Some("invoice-42.pdf"));
    assert_eq!(attachment.contents(), pdf.as_slice());
    assert!(
        !String::from_utf8_lossy(&raw).contains("audit@dest.test"),
        "Bcc is not a header"
    );
    let copy = upstream
        .messages()
        .into_iter()
        .find(|m| m.raw == raw)
        .unwrap();
    assert_eq!(copy.rcpt_tos(), vec!["ann@dest.test", "audit@dest.test"]);

    // Sync mode: the answer is the upstream's.
    let (status, sent) = http_json(
        sluice.ports.http,
        "POST",
        "/api/v1/send?mode=sync",
        Some(&key),
        Some(
            &json!({ "from": "app@example.com", "to": "bob@dest.test", "subject": "Now", "text": "now" }),
        ),
    );
    assert_eq!(
        (status, sent["status"].as_str()),
        (200, Some("delivered")),
        "{sent}"
    );

    // The signed webhook.
    let body = json!({
        "type": "password_reset", "to": "carol@dest.test", "subject": "Reset your password",
        "token": "abc123", "expiresAt": "2030-01-01T00:00:00Z"
    })
    .to_string();
    let timestamp = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(b"hook-secret").unwrap();
    mac.update(format!("{timestamp}.{body}").as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    let reply = raw_post(
        sluice.ports.webhook,
        "/webhook/outbound-email",
        &[
            ("X-TransLife-Timestamp", &timestamp),
            ("X-TransLife-Signature", &signature),
        ],
        &body,
    );
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("\"queued_id\":"), "{reply}");
    let raw = received_with_subject(&upstream, "Reset your password");
    let parsed = MessageParser::default().parse(&raw).unwrap();
    assert_eq!(
        parsed.from().unwrap().first().unwrap().address(),
        Some("no-reply@example.com")
    );
    assert!(
        parsed
            .body_text(0)
            .unwrap()
            .contains("https://app.example.com/reset-password?token=abc123"),
        "{:?}",
        parsed.body_text(0)
    );
    // The same signed call again is a replay.
    let again = raw_post(
        sluice.ports.webhook,
        "/webhook/outbound-email",
        &[
            ("X-TransLife-Timestamp", &timestamp),
            ("X-TransLife-Signature", &signature),
        ],
        &body,
    );
    assert!(again.starts_with("HTTP/1.1 401"), "{again}");
    let (status, _) = sluice_testkit::http_get(sluice.ports.webhook, "/healthz");
    assert_eq!(status, 200);
    let processed = wait_until(Duration::from_secs(10), || {
        let (_, health) = http_json(sluice.ports.http, "GET", "/health", None, None);
        (health["status"] == "healthy" && health["messagesProcessed"].as_i64() >= Some(3))
            .then_some(health)
    });
    assert!(
        processed.is_some(),
        "/health counts the three delivered messages"
    );
}

fn raw_post(port: u16, path: &str, headers: &[(&str, &str)], body: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

fn signed_webhook(port: u16, secret: &str, subject: &str) -> String {
    let body = json!({
        "type": "password_reset", "to": "dora@dest.test", "subject": subject,
        "token": "t0k3n", "expiresAt": "2030-01-01T00:00:00Z"
    })
    .to_string();
    let timestamp = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{body}").as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    raw_post(
        port,
        "/webhook/outbound-email",
        &[
            ("X-TransLife-Timestamp", &timestamp),
            ("X-TransLife-Signature", &signature),
        ],
        &body,
    )
}

/// Run-time settings changed through the API apply without a restart: the webhook takes
/// the new secret (and refuses the old), can be switched off, and the log level changes.
#[test]
fn runtime_settings_apply_without_a_restart() {
    let upstream = Upstream::start(&[]);
    let sluice = Sluice::builder(BIN)
        .upstream(upstream.port)
        .webhook("secret = \"hook-secret\"")
        .webhook("account = \"user@example.com\"")
        .webhook("sender_domain = \"example.com\"")
        .webhook("public_web_url = \"https://app.example.com\"")
        .webhook("rate_limit_per_minute = 100000")
        .start();
    let created = sluice.cli(&[
        "admin",
        "create",
        "--email",
        "ops@example.com",
        "--password",
        "ops-password-1",
    ]);
    assert!(created.status.success(), "{created:?}");
    let (_, tokens) = http_json(
        sluice.ports.http,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&json!({ "email": "ops@example.com", "password": "ops-password-1" })),
    );
    let token = tokens["access_token"].as_str().unwrap().to_string();
    let put = |body: serde_json::Value| {
        http_json(
            sluice.ports.http,
            "PUT",
            "/api/v1/settings",
            Some(&token),
            Some(&body),
        )
    };
    let webhook = sluice.ports.webhook;
    let first = signed_webhook(webhook, "hook-secret", "before");
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");

    let (status, shown) = put(json!({ "webhook_secret": "rotated-secret-0123456789" }));
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["webhook_secret_set"], true);
    assert!(
        !shown.to_string().contains("rotated-secret"),
        "the secret is never shown"
    );
    let applied = wait_until(Duration::from_secs(10), || {
        signed_webhook(webhook, "rotated-secret-0123456789", "after")
            .starts_with("HTTP/1.1 200")
            .then_some(())
    });
    assert!(
        applied.is_some(),
        "the new secret was not taken without a restart"
    );
    assert!(signed_webhook(webhook, "hook-secret", "old").starts_with("HTTP/1.1 401"));
    let (status, refused) = put(json!({ "log_level": "loud" }));
    assert_eq!(status, 422, "{refused}");

    // Switched off, then back to the config file.
    put(json!({ "webhook_enabled": false }));
    let off = wait_until(Duration::from_secs(10), || {
        signed_webhook(webhook, "rotated-secret-0123456789", "off")
            .starts_with("HTTP/1.1 503")
            .then_some(())
    });
    assert!(off.is_some(), "the webhook was not switched off");
    // An allowlist without the caller's address refuses it.
    let (status, shown) =
        put(json!({ "webhook_enabled": true, "webhook_allowed_ips": ["10.0.0.0/8"] }));
    assert_eq!(status, 200, "{shown}");
    let fenced = wait_until(Duration::from_secs(10), || {
        signed_webhook(webhook, "rotated-secret-0123456789", "fenced")
            .starts_with("HTTP/1.1 403")
            .then_some(())
    });
    assert!(fenced.is_some(), "the allowlist was not applied");
    put(json!({ "reset": ["webhook_enabled", "webhook_secret", "webhook_allowed_ips"] }));
    let back = wait_until(Duration::from_secs(10), || {
        signed_webhook(webhook, "hook-secret", "back")
            .starts_with("HTTP/1.1 200")
            .then_some(())
    });
    assert!(back.is_some(), "the config file's secret did not return");

    // The log level: at `error` an SMTP session's info lines are gone; back at the
    // config file's level they return.
    let sessions = || sluice.logs().matches("session started").count();
    let connect = || {
        use std::io::{Read, Write};
        let mut smtp = std::net::TcpStream::connect(("127.0.0.1", sluice.ports.plain)).unwrap();
        let mut greeting = [0u8; 256];
        let _ = smtp.read(&mut greeting);
        let _ = smtp.write_all(b"QUIT\r\n");
        let _ = smtp.read(&mut greeting);
    };
    put(json!({ "log_level": "error" }));
    let quiet = wait_until(Duration::from_secs(10), || {
        sluice.logs().contains("log level changing").then_some(())
    });
    assert!(quiet.is_some(), "the log level did not change");
    std::thread::sleep(Duration::from_millis(200));
    let before = sessions();
    connect();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sessions(), before, "no info lines at level error");
    put(json!({ "reset": ["log_level"] }));
    let loud = wait_until(Duration::from_secs(10), || {
        connect();
        (sessions() > before).then_some(())
    });
    assert!(loud.is_some(), "info lines did not return");

    // The delivery mode: at `sync` the client's 250 waits for the upstream.
    let reply_text = || {
        let sent = common::smtplib_send(
            sluice.ports.plain,
            "plain",
            None,
            "app@example.com",
            &["r@dest.test"],
            &common::sample_message("mode"),
        );
        assert!(sent.ok, "{:?}", sent.json);
        sent.message
    };
    assert!(reply_text().contains("queued as"));
    let (status, shown) = put(json!({ "delivery_mode": "sync" }));
    assert_eq!(status, 200, "{shown}");
    let sync = wait_until(Duration::from_secs(10), || {
        reply_text().contains("delivered as").then_some(())
    });
    assert!(sync.is_some(), "the delivery mode did not change");
    let (status, refused) = put(json!({ "delivery_mode": "later" }));
    assert_eq!(status, 422, "{refused}");
    put(json!({ "reset": ["delivery_mode"] }));
    let back = wait_until(Duration::from_secs(10), || {
        reply_text().contains("queued as").then_some(())
    });
    assert!(back.is_some(), "the config file's mode did not return");

    // Every change is in the audit log, without the secret.
    let (_, audit) = http_json(
        sluice.ports.http,
        "GET",
        "/api/v1/audit-logs",
        Some(&token),
        None,
    );
    let text = audit.to_string();
    assert!(text.contains("\"target_type\":\"settings\""), "{text}");
    assert!(!text.contains("rotated-secret"), "{text}");
    // Last, as it limits the admin too: the API's rate limit.
    // The API's rate limit: 5 calls a minute for the account's key. The config file allows
    // 100, so a 429 before the 100th call is the new limit's.
    let (status, shown) = put(json!({ "api_rate_limit_per_minute": 5 }));
    assert_eq!(status, 200, "{shown}");
    let mut calls = 0;
    let limited = wait_until(Duration::from_secs(10), || {
        for _ in 0..6 {
            calls += 1;
            let (status, _) = http_json(
                sluice.ports.http,
                "GET",
                "/api/v1/messages?limit=1",
                Some(&sluice.api_key),
                None,
            );
            if status == 429 {
                return Some(calls);
            }
        }
        std::thread::sleep(Duration::from_millis(250));
        None
    });
    assert!(
        limited.is_some_and(|calls| calls < 100),
        "the API's rate limit did not apply: {limited:?}"
    );
}

/// (status, `Idempotent-Replayed` header if any, JSON body) of a send with an
/// `Idempotency-Key`.
fn keyed_send(
    port: u16,
    api_key: &str,
    key: &str,
    path: &str,
    body: &str,
) -> (u16, Option<String>, serde_json::Value) {
    let auth = format!("Bearer {api_key}");
    let response = raw_post(
        port,
        path,
        &[("Authorization", &auth), ("Idempotency-Key", key)],
        body,
    );
    let (head, json) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let replayed = head.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("idempotent-replayed:")
            .map(|v| v.trim().to_string())
    });
    (
        status,
        replayed,
        serde_json::from_str(json).unwrap_or_default(),
    )
}

fn captured_count(sluice: &Sluice) -> usize {
    let (status, list) = http_json(
        sluice.ports.http,
        "GET",
        "/api/v1/messages?limit=500",
        Some(&sluice.api_key),
        None,
    );
    assert_eq!(status, 200, "{list}");
    list["items"].as_array().map_or(0, Vec::len)
}

/// `Idempotency-Key` against the real binary: the same key twice is one message and the
/// first answer again (`Idempotent-Replayed: true`); another request with the key is 422;
/// many at once with one key are one message, every caller told its id.
#[test]
fn an_idempotency_key_makes_a_retried_send_one_message() {
    let sluice = Sluice::builder(BIN).provider("type = \"capture\"").start();
    let (port, key) = (sluice.ports.http, sluice.api_key.clone());
    let body =
        r#"{"from":"app@example.com","to":"ann@dest.test","subject":"Once","text":"only once"}"#;
    let (status, replayed, first) = keyed_send(port, &key, "order-42", "/api/v1/send", body);
    assert_eq!(
        (status, replayed.as_deref(), first["status"].as_str()),
        (202, None, Some("queued")),
        "{first}"
    );
    let (status, replayed, again) = keyed_send(port, &key, "order-42", "/api/v1/send", body);
    assert_eq!(
        (status, replayed.as_deref()),
        (202, Some("true")),
        "{again}"
    );
    assert_eq!(again, first, "the first answer, byte for byte as JSON");
    let other = body.replace("only once", "something else");
    let (status, _, reused) = keyed_send(port, &key, "order-42", "/api/v1/send", &other);
    assert_eq!(
        (status, reused["error"]["code"].as_str()),
        (422, Some("idempotency_key_reused")),
        "{reused}"
    );
    let (status, _, bad) = keyed_send(port, &key, "two words", "/api/v1/send", body);
    assert_eq!(
        (status, bad["error"]["code"].as_str()),
        (422, Some("invalid_idempotency_key")),
        "{bad}"
    );
    assert_eq!(captured_count(&sluice), 1);

    // Sync mode remembers its 200.
    let (status, replayed, sync) = keyed_send(port, &key, "sync-1", "/api/v1/send?mode=sync", body);
    assert_eq!(
        (status, replayed.as_deref(), sync["status"].as_str()),
        (200, None, Some("delivered")),
        "{sync}"
    );
    let (status, replayed, again) =
        keyed_send(port, &key, "sync-1", "/api/v1/send?mode=sync", body);
    assert_eq!(
        (status, replayed.as_deref(), &again),
        (200, Some("true"), &sync)
    );
    // The query is part of the request: the same body async is another request.
    let (status, _, reused) = keyed_send(port, &key, "sync-1", "/api/v1/send", body);
    assert_eq!(
        (status, reused["error"]["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
    assert_eq!(captured_count(&sluice), 2);

    // Twelve clients at once with one key: one message; each gets its id, or a 409 to retry.
    let answers: Vec<(u16, Option<String>, serde_json::Value)> = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..12)
            .map(|_| scope.spawn(|| keyed_send(port, &key, "burst", "/api/v1/send", body)))
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let ids: Vec<i64> = answers
        .iter()
        .filter(|(status, _, _)| *status == 202)
        .map(|(_, _, json)| json["id"].as_i64().unwrap())
        .collect();
    assert!(
        !ids.is_empty() && ids.iter().all(|id| *id == ids[0]),
        "{answers:?}"
    );
    assert!(
        answers
            .iter()
            .all(|(s, _, j)| *s == 202
                || (*s == 409 && j["error"]["code"] == "idempotency_key_in_use")),
        "{answers:?}"
    );
    assert_eq!(
        answers
            .iter()
            .filter(|(s, replayed, _)| *s == 202 && replayed.is_none())
            .count(),
        1,
        "one first answer: {answers:?}"
    );
    assert_eq!(captured_count(&sluice), 3);
}
