//! API tests: `POST /send` and what it goes through: MIME building, refusals that store nothing, templates, suppressions, retention, the workflow platforms' calls.

mod common;
mod harness;

use axum::body::Body;
use axum::http::Method;
use axum::http::Request;
use axum::http::StatusCode;
use mail_parser::MimeHeaders;
use serde_json::Value;
use serde_json::json;
use tower::ServiceExt;

use harness::{Api, Reply, assert_error, message_for};

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn send_builds_a_mime_message_and_commits_it() {
    let api = Api::new().await;
    let admin = api.admin_token().await;
    let (account, key) = api.account(&admin, "acme", "acme.test").await;
    let attachment = b"%PDF-1.4 pretend\x00\x01\x02 binary".to_vec();
    let reply = api
        .call(
            Method::POST,
            "/send",
            Some(&key),
            Some(json!({
                "from": "Acme Billing <billing@acme.test>",
                "to": ["Ann <ann@dest.test>", "bob@dest.test"],
                "cc": "carol@dest.test",
                "bcc": ["hidden@dest.test"],
                "reply_to": "help@acme.test",
                "subject": "Your invoice – März",
                "text": "Hello,\nyour invoice is attached.\n",
                "html": "<p>Hello, your invoice is attached.</p>",
                "attachments": [{ "filename": "invoice.pdf", "content_type": "application/pdf", "content": b64(&attachment) }],
                "headers": { "X-Campaign": "march" },
                "tags": ["billing", "invoice"],
                "retry_attempts": 2
            })),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    assert_eq!(reply.body["status"], "queued");
    let id = reply.body["id"].as_i64().unwrap();
    let stored = api.store.message(id).await.unwrap().unwrap();
    assert_eq!(stored.account_id, account);
    assert_eq!(stored.source.as_str(), "api");
    assert_eq!(stored.mail_from, "billing@acme.test");
    assert_eq!(
        stored.rcpt_to,
        vec![
            "ann@dest.test",
            "bob@dest.test",
            "carol@dest.test",
            "hidden@dest.test"
        ]
    );
    let whole = api.whole(&stored.body).await;
    let raw = String::from_utf8_lossy(&whole).into_owned();
    assert!(
        !raw.to_ascii_lowercase().contains("hidden@dest.test"),
        "Bcc must not be in the headers"
    );
    let parsed = mail_parser::MessageParser::default()
        .parse(&whole)
        .expect("a MIME message");
    assert_eq!(parsed.subject(), Some("Your invoice – März"));
    assert_eq!(
        parsed.from().unwrap().first().unwrap().address(),
        Some("billing@acme.test")
    );
    assert_eq!(parsed.to().unwrap().iter().count(), 2);
    assert!(parsed.message_id().unwrap().ends_with("@sluice.test"));
    assert!(parsed.date().is_some());
    assert_eq!(
        parsed.header_raw("MIME-Version").map(str::trim),
        Some("1.0")
    );
    assert_eq!(
        parsed.header_raw("X-Campaign").map(str::trim),
        Some("march")
    );
    assert!(
        parsed
            .body_text(0)
            .unwrap()
            .contains("your invoice is attached")
    );
    assert!(parsed.body_html(0).unwrap().contains("<p>Hello"));
    let part = parsed.attachment(0).expect("the attachment");
    assert_eq!(part.attachment_name(), Some("invoice.pdf"));
    assert_eq!(part.contents(), attachment.as_slice());
    // A template instead of a body.
    let templated = api
        .call(
            Method::POST,
            "/send",
            Some(&key),
            Some(json!({ "to": "d@dest.test", "from": "x@acme.test", "template": "welcome", "data": { "name": "<Dana>" } })),
        )
        .await;
    assert_eq!(templated.status, StatusCode::ACCEPTED, "{}", templated.text);
    let stored = api
        .store
        .message(templated.body["id"].as_i64().unwrap())
        .await
        .unwrap()
        .unwrap();
    let parsed = mail_parser::MessageParser::default()
        .parse(stored.body.as_inline().unwrap())
        .unwrap();
    assert_eq!(parsed.subject(), Some("Welcome, <Dana>!"));
    assert!(
        parsed.body_html(0).unwrap().contains("&lt;Dana&gt;"),
        "HTML is escaped"
    );
}

#[tokio::test]
async fn send_refuses_header_injection_and_policy_breaches_storing_nothing() {
    let api = Api::new().await;
    let admin = api.admin_token().await;
    let (account, key) = api.account(&admin, "acme", "acme.test").await;
    let base =
        || json!({ "from": "a@acme.test", "to": "r@dest.test", "subject": "s", "text": "t" });
    let with = |field: &str, value: Value| {
        let mut body = base();
        body[field] = value;
        body
    };
    let attempts = [
        with("subject", json!("x\r\nBcc: evil@example.com")),
        with("subject", json!("x\nBcc: evil@example.com")),
        with("subject", json!("=?utf-8?q?x=0D=0ABcc:_evil@example.com?=")),
        with("subject", json!("nul\u{0}byte")),
        with("to", json!("r@dest.test\r\nBcc: evil@example.com")),
        with("to", json!("Evil\r\nBcc: evil@example.com <r@dest.test>")),
        with("from", json!("a@acme.test\nBcc: evil@example.com")),
        with("reply_to", json!("h@acme.test\r\nBcc: evil@example.com")),
        with("headers", json!({ "X-A\r\nBcc": "evil@example.com" })),
        with("headers", json!({ "X-A": "v\r\nBcc: evil@example.com" })),
        with("headers", json!({ "Bcc": "evil@example.com" })),
        with(
            "attachments",
            json!([{ "filename": "a\r\nBcc: e.txt", "content_type": "text/plain", "content": "eA==" }]),
        ),
        with(
            "attachments",
            json!([{ "filename": "a.txt", "content_type": format!("text/{}", "x".repeat(1100)), "content": "eA==" }]),
        ),
        with("tags", json!(["a\nb"])),
    ];
    for body in attempts {
        let reply = api
            .call(Method::POST, "/send", Some(&key), Some(body.clone()))
            .await;
        assert_error(
            &reply,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }
    let foreign = api
        .call(
            Method::POST,
            "/send",
            Some(&key),
            Some(with("from", json!("ceo@elsewhere.test"))),
        )
        .await;
    assert_error(&foreign, StatusCode::FORBIDDEN, "sender_not_verified");
    let no_body = api
        .call(
            Method::POST,
            "/send",
            Some(&key),
            Some(json!({ "to": "r@dest.test", "from": "a@acme.test" })),
        )
        .await;
    assert_error(
        &no_body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let too_many = api
        .call(
            Method::POST,
            "/send",
            Some(&key),
            Some(with(
                "to",
                json!([
                    "a@d.test", "b@d.test", "c@d.test", "d@d.test", "e@d.test", "f@d.test"
                ]),
            )),
        )
        .await;
    assert_error(
        &too_many,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let big = with("text", json!("x".repeat(70 * 1024)));
    assert_error(
        &api.call(Method::POST, "/send", Some(&key), Some(big)).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "message_too_large",
    );
    let broken = api
        .call(
            Method::POST,
            "/send",
            Some(&key),
            Some(json!({ "to": "r@dest.test", "from": "a@acme.test", "template": "nope" })),
        )
        .await;
    assert_error(
        &broken,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let filter = sluice_store::MessageFilter {
        account_id: Some(account),
        limit: 10,
        ..Default::default()
    };
    assert!(
        api.store.list_messages(&filter).await.unwrap().is_empty(),
        "nothing was stored"
    );

    // rate_limit_key: 3 per key per hour here.
    for _ in 0..3 {
        let ok = api
            .call(
                Method::POST,
                "/send",
                Some(&key),
                Some(with("rate_limit_key", json!("user-42"))),
            )
            .await;
        assert_eq!(ok.status, StatusCode::ACCEPTED, "{}", ok.text);
    }
    let limited = api
        .call(
            Method::POST,
            "/send",
            Some(&key),
            Some(with("rate_limit_key", json!("user-42"))),
        )
        .await;
    assert_error(&limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let other = api
        .call(
            Method::POST,
            "/send",
            Some(&key),
            Some(with("rate_limit_key", json!("user-43"))),
        )
        .await;
    assert_eq!(other.status, StatusCode::ACCEPTED);
    // The monthly limit.
    api.call(
        Method::PUT,
        &format!("/accounts/{account}"),
        Some(&admin),
        Some(json!({ "monthly_limit": 4 })),
    )
    .await;
    let over = api
        .call(Method::POST, "/send", Some(&key), Some(base()))
        .await;
    assert_error(
        &over,
        StatusCode::TOO_MANY_REQUESTS,
        "monthly_limit_reached",
    );
    // A 429 says when to come back: at the start of next month (UTC), at most 31 days away.
    let wait: i64 = over
        .retry_after
        .as_deref()
        .expect("Retry-After on the monthly limit's 429")
        .parse()
        .unwrap();
    assert!((1..=31 * 86_400).contains(&wait), "{wait}");
    assert_eq!(api.store.list_messages(&filter).await.unwrap().len(), 4);
}

#[tokio::test]
async fn templates_override_in_order_and_errors_name_the_line() {
    let api = Api::new().await;
    let admin = api.admin_token().await;
    let (_, key) = api.account(&admin, "acme", "acme.test").await;
    let (_, other) = api.account(&admin, "other", "other.test").await;
    // Built-in, then system-wide, then the account's own.
    let preview = api
        .call(
            Method::POST,
            "/templates/welcome/render",
            Some(&key),
            Some(json!({ "data": { "name": "Ann" } })),
        )
        .await;
    assert_eq!(preview.body["subject"], "Welcome, Ann!", "{}", preview.text);
    let system = api
        .call(
            Method::POST,
            "/templates",
            Some(&admin),
            Some(json!({ "name": "welcome", "subject": "System hi {{ name }}", "text": "s" })),
        )
        .await;
    assert_eq!(system.status, StatusCode::CREATED, "{}", system.text);
    let own = api
        .call(Method::POST, "/templates", Some(&key), Some(json!({ "name": "welcome", "subject": "Acme hi {{ name }}", "html": "<b>{{ name }}</b>" })))
        .await;
    assert_eq!(own.status, StatusCode::CREATED, "{}", own.text);
    let mine = api
        .call(
            Method::POST,
            "/templates/welcome/render",
            Some(&key),
            Some(json!({ "data": { "name": "<Ann>" } })),
        )
        .await;
    assert_eq!(mine.body["subject"], "Acme hi <Ann>");
    assert_eq!(mine.body["html"], "<b>&lt;Ann&gt;</b>");
    let theirs = api
        .call(
            Method::POST,
            "/templates/welcome/render",
            Some(&other),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        theirs.body["subject"], "System hi Ada",
        "sample data; the system template"
    );
    assert_error(
        &api.call(
            Method::POST,
            "/templates/none/render",
            Some(&key),
            Some(json!({})),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    // A broken template is refused with the part and line.
    let broken = api
        .call(
            Method::POST,
            "/templates",
            Some(&key),
            Some(json!({ "name": "bad", "subject": "ok", "text": "fine\n{% if %}" })),
        )
        .await;
    assert_error(&broken, StatusCode::UNPROCESSABLE_ENTITY, "template_error");
    assert!(
        broken.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("text line 2"),
        "{}",
        broken.text
    );
    let duplicate = api
        .call(
            Method::POST,
            "/templates",
            Some(&key),
            Some(json!({ "name": "welcome", "subject": "again", "text": "x" })),
        )
        .await;
    assert_error(&duplicate, StatusCode::CONFLICT, "conflict");
    let listed = api.call(Method::GET, "/templates", Some(&key), None).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 2, "own and system");
}

#[tokio::test]
async fn suppressed_recipients_are_refused_at_send_until_removed_or_expired() {
    let api = Api::new().await;
    let admin = api.admin_token().await;
    let (_, key) = api.account(&admin, "acme", "acme.test").await;
    let send = |to: &str| json!({ "from": "a@acme.test", "to": ["ok@dest.test", to], "subject": "s", "text": "t" });
    let added = api
        .call(
            Method::POST,
            "/suppressions",
            Some(&key),
            Some(json!({ "address": "Gone@Dest.test", "reason": "hard_bounce" })),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
    assert_eq!(added.body["address"], "gone@dest.test");
    let refused = api
        .call(
            Method::POST,
            "/send",
            Some(&key),
            Some(send("gone@dest.test")),
        )
        .await;
    assert_error(
        &refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "recipient_suppressed",
    );
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gone@dest.test")
    );
    assert_error(
        &api.call(
            Method::POST,
            "/suppressions",
            Some(&key),
            Some(json!({ "address": "x@y.test", "reason": "dislike" })),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    // An entry that has expired no longer refuses.
    api.call(
        Method::POST,
        "/suppressions",
        Some(&key),
        Some(json!({ "address": "old@dest.test", "expires_at": 1 })),
    )
    .await;
    assert_eq!(
        api.call(
            Method::POST,
            "/send",
            Some(&key),
            Some(send("old@dest.test"))
        )
        .await
        .status,
        StatusCode::ACCEPTED
    );
    // Removed: allowed again.
    let id = added.body["id"].as_i64().unwrap();
    assert_eq!(
        api.call(
            Method::DELETE,
            &format!("/suppressions/{id}"),
            Some(&key),
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.call(
            Method::POST,
            "/send",
            Some(&key),
            Some(send("gone@dest.test"))
        )
        .await
        .status,
        StatusCode::ACCEPTED
    );
    let listed = api
        .call(Method::GET, "/suppressions", Some(&key), None)
        .await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1, "{}", listed.text);
}

#[tokio::test]
async fn a_body_removed_by_retention_is_gone_but_its_message_stays() {
    let api = Api::new().await;
    let admin = api.admin_token().await;
    let (account, key) = api.account(&admin, "kept", "kept.test").await;
    let id = api
        .store
        .enqueue_messages(&[message_for(account)], 5)
        .await
        .unwrap()[0];
    let raw_path = format!("/messages/{id}/raw");
    let before = api.call(Method::GET, &raw_path, Some(&key), None).await;
    assert_eq!(before.text, "Subject: hi\r\n\r\nbody\r\n");
    let claimed = api.store.claim_due_messages("w", 6, 1000, 1).await.unwrap();
    assert_eq!(claimed[0].id, id);
    let delivered = sluice_store::AttemptRecord {
        message_id: id,
        lease_owner: "w".into(),
        report: sluice_core::DeliveryReport::uniform(
            "smtp",
            &["r@dest.test".to_string()],
            sluice_core::Verdict::Delivered,
            Some(250),
            "ok",
        ),
        calls: vec![],
        started_at: 10,
        finished_at: 10,
        new_status: sluice_core::MessageStatus::Delivered,
        pending_rcpt: vec![],
        next_attempt_at: 10,
        last_error: None,
        events: vec![("delivered".into(), String::new())],
    };
    assert!(api.store.record_attempt(&delivered).await.unwrap());
    assert_eq!(api.store.purge_bodies(i64::MAX, 200, 10).await.unwrap(), 1);
    let gone = api.call(Method::GET, &raw_path, Some(&key), None).await;
    assert_error(&gone, StatusCode::GONE, "body_purged");
    let detail = api
        .call(Method::GET, &format!("/messages/{id}"), Some(&key), None)
        .await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.text);
    assert_eq!(detail.body["body_purged_at"], 200);
    assert_eq!(detail.body["status"], "delivered");
    assert_eq!(detail.body["delivery_attempts"][0]["verdict"], "delivered");
}

/// The workflow platform's node sends `{"to", "subject", "template", "data"}` (its subject
/// is required) and names the HTML body `body` and the retries `retryAttempts`.
#[tokio::test]
async fn the_workflow_platforms_sends_are_accepted() {
    let api = Api::new().await;
    let admin = api.admin_token().await;
    let (_, key) = api.account(&admin, "acme", "acme.test").await;
    let stored = |reply: Reply| {
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
        let id = reply.body["id"].as_i64().unwrap();
        let store = api.store.clone();
        async move { store.message(id).await.unwrap().unwrap() }
    };
    // Templated, with the caller's subject: the caller's subject wins over the template's.
    let reply = api
        .call(
            Method::POST,
            "/send",
            Some(&key),
            Some(json!({ "to": "d@dest.test", "from": "x@acme.test", "subject": "Your account is ready",
                         "template": "welcome", "data": { "name": "Dana" } })),
        )
        .await;
    let message = stored(reply).await;
    let parsed = mail_parser::MessageParser::default()
        .parse(message.body.as_inline().unwrap())
        .unwrap();
    assert_eq!(parsed.subject(), Some("Your account is ready"));
    assert!(parsed.body_html(0).unwrap().contains("Hello Dana"));
    // Its own field names: `body` is the HTML body, `retryAttempts` the retries.
    let reply = api
        .call(
            Method::POST,
            "/send",
            Some(&key),
            Some(
                json!({ "to": ["d@dest.test"], "from": "x@acme.test", "subject": "Report",
                         "body": "<p>The <b>report</b> is ready.</p>", "retryAttempts": 2 }),
            ),
        )
        .await;
    let message = stored(reply).await;
    let parsed = mail_parser::MessageParser::default()
        .parse(message.body.as_inline().unwrap())
        .unwrap();
    assert_eq!(parsed.subject(), Some("Report"));
    assert!(
        parsed
            .body_html(0)
            .unwrap()
            .contains("<p>The <b>report</b> is ready.</p>")
    );
    // A template with a body of the caller's, or a field and its alias together, is
    // still refused, naming the fields.
    for (body, names) in [
        (
            json!({ "to": "d@dest.test", "template": "welcome", "text": "mine" }),
            "text",
        ),
        (
            json!({ "to": "d@dest.test", "template": "welcome", "body": "<p>mine</p>" }),
            "html",
        ),
        (
            json!({ "to": "d@dest.test", "subject": "s", "html": "<p>a</p>", "body": "<p>b</p>" }),
            "body",
        ),
        (
            json!({ "to": "d@dest.test", "subject": "s", "text": "t", "retry_attempts": 1, "retryAttempts": 2 }),
            "retryAttempts",
        ),
    ] {
        let reply = api
            .call(Method::POST, "/send", Some(&key), Some(body))
            .await;
        assert_error(
            &reply,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(names),
            "{}",
            reply.text
        );
    }
    // The aliases are in the OpenAPI document.
    let schema = serde_json::to_value(&api.openapi).unwrap();
    let properties = &schema["components"]["schemas"]["SendRequest"]["properties"];
    for alias in ["body", "retryAttempts"] {
        assert!(
            properties[alias]["description"]
                .as_str()
                .is_some_and(|d| d.contains("Alias")),
            "{alias}: {properties}"
        );
    }
}

/// `Idempotency-Key` on `POST /send` (client-contract.md): a 2xx answer is remembered
/// with its message and answered again, marked `Idempotent-Replayed: true`; a refusal is
/// not remembered; the key with another request is 422; keys are per account; a malformed
/// key is 422; the OpenAPI document describes the header, the replay header and the 409.
#[tokio::test]
async fn an_idempotency_key_answers_a_repeated_send_with_the_first_answer() {
    let api = Api::new().await;
    let admin = api.admin_token().await;
    let (account, key) = api.account(&admin, "acme", "acme.test").await;
    let (_, other_key) = api.account(&admin, "other", "other.test").await;
    let keyed = |token: &str, idempotency_key: &str, body: &str| {
        Request::builder()
            .method(Method::POST)
            .uri("/api/v1/send")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .header("idempotency-key", idempotency_key)
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let replayed = |request: Request<Body>| {
        let app = api.app.clone();
        async move {
            let response = app.oneshot(request).await.unwrap();
            let flag = response
                .headers()
                .get("idempotent-replayed")
                .map(|v| v.to_str().unwrap().to_string());
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            (
                status,
                flag,
                serde_json::from_slice::<Value>(&bytes).unwrap(),
            )
        }
    };
    let body = r#"{"from":"app@acme.test","to":"ann@dest.test","subject":"s","text":"t"}"#;

    // A refusal is not remembered: the same key then sends.
    let refused = body.replace("app@acme.test", "app@elsewhere.test");
    let (status, flag, answer) = replayed(keyed(&key, "k-1", &refused)).await;
    assert_eq!((status, flag), (StatusCode::FORBIDDEN, None), "{answer}");
    let (status, flag, first) = replayed(keyed(&key, "k-1", body)).await;
    assert_eq!((status, flag), (StatusCode::ACCEPTED, None), "{first}");
    let id = first["id"].as_i64().unwrap();
    let (status, flag, again) = replayed(keyed(&key, "k-1", body)).await;
    assert_eq!(
        (status, flag.as_deref()),
        (StatusCode::ACCEPTED, Some("true"))
    );
    assert_eq!(again, first);
    let listed = api
        .store
        .list_messages(&sluice_store::MessageFilter {
            account_id: Some(account),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.iter().map(|m| m.id).collect::<Vec<_>>(), vec![id]);

    // Another body (even one space) is another request.
    let spaced = body.replace(r#""t"}"#, r#""t" }"#);
    let reply = api.send(keyed(&key, "k-1", &spaced)).await;
    assert_error(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    );
    // Another account's key of the same name is its own.
    let other_body = body.replace("acme.test", "other.test");
    let (status, flag, theirs) = replayed(keyed(&other_key, "k-1", &other_body)).await;
    assert_eq!((status, flag), (StatusCode::ACCEPTED, None), "{theirs}");
    assert_ne!(theirs["id"], first["id"]);
    for bad in ["two words", &"k".repeat(256), "tab\there"] {
        let request = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/send")
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .header(
                "idempotency-key",
                axum::http::HeaderValue::from_bytes(bad.as_bytes()).unwrap(),
            )
            .body(Body::from(body))
            .unwrap();
        let reply = api.send(request).await;
        assert_error(
            &reply,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_idempotency_key",
        );
    }

    let document = serde_json::to_value(&api.openapi).unwrap();
    let send = &document["paths"]["/send"]["post"];
    assert!(
        send["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header"),
        "{send}"
    );
    assert!(
        send["responses"]["202"]["headers"]["Idempotent-Replayed"].is_object(),
        "{send}"
    );
    assert!(send["responses"]["409"].is_object(), "{send}");
}

/// A body over `storage.inline_body_bytes` sent through the API goes to the spool (its row
/// keeps a reference), and the raw view streams it back whole.
#[tokio::test]
async fn a_large_body_is_spooled_and_its_raw_view_streams_it_back() {
    let api = Api::new().await;
    let admin = api.admin_token().await;
    let (_account, key) = api.account(&admin, "big", "big.test").await;
    let text: String = (0..1500)
        .map(|n| format!("line {n} of a long report\n"))
        .collect();
    let reply = api
        .call(
            Method::POST,
            "/send",
            Some(&key),
            Some(json!({ "from": "r@big.test", "to": "d@dest.test", "subject": "Report", "text": text })),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    let id = reply.body["id"].as_i64().unwrap();
    let stored = api.store.message(id).await.unwrap().unwrap();
    let sluice_core::MessageBody::Stored(spooled) = &stored.body else {
        panic!("a {}-byte body stayed in its row", stored.size);
    };
    assert!(spooled.len > 30_000, "{}", spooled.len);
    let whole = api.whole(&stored.body).await;
    assert_eq!(whole.len() as i64, stored.size);
    let raw = api
        .call(
            Method::GET,
            &format!("/messages/{id}/raw"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(raw.status, StatusCode::OK);
    assert_eq!(raw.text.as_bytes(), whole.as_slice());
    let parsed = mail_parser::MessageParser::default().parse(&whole).unwrap();
    assert_eq!(parsed.body_text(0).unwrap().replace("\r\n", "\n"), text);
}
