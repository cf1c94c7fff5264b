//! The outbound-email webhook contract, every answer, through its router.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use sluice_config::WebhookConfig;
use sluice_http::webhook::{WebhookState, router};
use sluice_store::{NewAccount, Store};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tower::ServiceExt;

const SECRET: &str = "webhook-secret-1";

struct Hook {
    app: Router,
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

/// Queues into the store, or answers that the account has sent its monthly limit.
struct Submit(Arc<dyn Store>, bool);

#[async_trait::async_trait]
impl sluice_api::Submitter for Submit {
    async fn submit(
        &self,
        policy: &sluice_core::AccountPolicy,
        s: sluice_core::Submission,
    ) -> sluice_core::AcceptOutcome {
        if self.1 {
            return sluice_core::AcceptOutcome::QuotaExceeded;
        }
        let message = sluice_store::NewMessage {
            account_id: policy.account_id,
            source: s.source,
            envelope: s.envelope,
            body: s.body,
            lease: None,
            tags: s.tags,
            max_attempts: s.max_attempts,
            sandbox: false,
            idempotency: None,
        };
        match self.0.enqueue_messages(&[message], 1).await {
            Ok(ids) => sluice_core::AcceptOutcome::Queued(ids[0]),
            Err(_) => sluice_core::AcceptOutcome::Unavailable,
        }
    }
}

fn config() -> WebhookConfig {
    WebhookConfig {
        secret: SECRET.into(),
        account: "hooks@acme.test".into(),
        sender_domain: "acme.test".into(),
        public_web_url: "https://app.acme.test/".into(),
        ..Default::default()
    }
}

impl Hook {
    async fn new(config: WebhookConfig) -> Hook {
        Hook::build(config, false).await
    }

    /// A webhook whose account has sent its monthly limit.
    async fn over_quota(config: WebhookConfig) -> Hook {
        Hook::build(config, true).await
    }

    async fn build(config: WebhookConfig, over_quota: bool) -> Hook {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("w.db").display());
        let store = sluice_store::open(&url, &Default::default()).await.unwrap();
        store
            .create_account(
                NewAccount {
                    name: "hooks".into(),
                    email: "hooks@acme.test".into(),
                    password_hash: "x".into(),
                    allowed_domains: vec!["acme.test".into()],
                },
                1,
            )
            .await
            .unwrap();
        let state = WebhookState::new(
            config,
            store.clone(),
            Arc::new(Submit(store.clone(), over_quota)),
            "sluice.test".into(),
            1 << 20,
            tokio::sync::watch::channel(Default::default()).1,
        );
        Hook {
            app: router(state),
            store,
            _dir: dir,
        }
    }

    async fn post(
        &self,
        body: &[u8],
        headers: &[(&str, String)],
        from: &str,
    ) -> (StatusCode, Value) {
        let (status, body, _) = self.post_full(body, headers, from).await;
        (status, body)
    }

    /// The answer with its headers.
    async fn post_full(
        &self,
        body: &[u8],
        headers: &[(&str, String)],
        from: &str,
    ) -> (StatusCode, Value, axum::http::HeaderMap) {
        let mut request =
            Request::post("/webhook/outbound-email").header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let mut request = request.body(Body::from(body.to_vec())).unwrap();
        let addr: SocketAddr = format!("{from}:40000").parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(addr));
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            headers,
        )
    }
}

fn now_iso(offset_secs: i64) -> String {
    (OffsetDateTime::now_utc() + time::Duration::seconds(offset_secs))
        .format(&Rfc3339)
        .unwrap()
}

fn signed(body: &[u8], timestamp: &str) -> Vec<(&'static str, String)> {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    vec![
        ("x-translife-timestamp", timestamp.to_string()),
        (
            "x-translife-signature",
            hex::encode(mac.finalize().into_bytes()),
        ),
    ]
}

fn payload() -> Vec<u8> {
    json!({
        "type": "email_verification", "to": "new.user@dest.test", "subject": "Confirm your address",
        "token": "tok en/1", "expiresAt": "2030-01-01T00:00:00Z"
    })
    .to_string()
    .into_bytes()
}

fn refused(reply: &(StatusCode, Value), status: StatusCode, error: &str) {
    assert_eq!(reply.0, status, "{}", reply.1);
    assert_eq!(reply.1["ok"], false);
    assert_eq!(reply.1["error"], error, "{}", reply.1);
}

#[tokio::test]
async fn a_signed_call_queues_the_rendered_mail() {
    let hook = Hook::new(config()).await;
    let body = payload();
    let reply = hook
        .post(&body, &signed(&body, &now_iso(0)), "127.0.0.1")
        .await;
    assert_eq!(reply.0, StatusCode::OK, "{}", reply.1);
    assert_eq!(reply.1["ok"], true);
    assert_eq!(reply.1["to"], "new.user@dest.test");
    assert_eq!(reply.1["subject"], "Confirm your address");
    assert!(OffsetDateTime::parse(reply.1["queued_at"].as_str().unwrap(), &Rfc3339).is_ok());
    let id = reply.1["queued_id"].as_i64().expect("an integer id");
    let message = hook.store.message(id).await.unwrap().unwrap();
    assert_eq!(
        (message.source.as_str(), message.mail_from.as_str()),
        ("webhook", "no-reply@acme.test")
    );
    let text = String::from_utf8_lossy(message.body.as_inline().unwrap());
    assert!(
        text.contains("https://app.acme.test/verify-email?token=tok%20en%2F1"),
        "{text}"
    );
}

#[tokio::test]
async fn every_refusal_of_the_contract() {
    let hook = Hook::new(config()).await;
    let body = payload();
    // No signature headers.
    refused(
        &hook.post(&body, &[], "127.0.0.1").await,
        StatusCode::UNAUTHORIZED,
        "missing signature",
    );
    // One byte of the body changed after signing.
    let headers = signed(&body, &now_iso(0));
    let mut tampered = body.clone();
    let at = tampered.iter().position(|b| *b == b'n').unwrap();
    tampered[at] = b'm';
    refused(
        &hook.post(&tampered, &headers, "127.0.0.1").await,
        StatusCode::UNAUTHORIZED,
        "invalid signature",
    );
    // Signed with another key.
    let mut forged = headers.clone();
    forged[1].1 = hex::encode([7u8; 32]);
    refused(
        &hook.post(&body, &forged, "127.0.0.1").await,
        StatusCode::UNAUTHORIZED,
        "invalid signature",
    );
    // A valid MAC on an old timestamp.
    let old = signed(&body, &now_iso(-301));
    refused(
        &hook.post(&body, &old, "127.0.0.1").await,
        StatusCode::UNAUTHORIZED,
        "timestamp outside the allowed window",
    );
    // Accepted once, then a replay inside the window is refused.
    assert_eq!(
        hook.post(&body, &headers, "127.0.0.1").await.0,
        StatusCode::OK
    );
    refused(
        &hook.post(&body, &headers, "127.0.0.1").await,
        StatusCode::UNAUTHORIZED,
        "signature already used",
    );
    // Bad JSON and schema errors name the field.
    let bad = b"{not json".to_vec();
    refused(
        &hook
            .post(&bad, &signed(&bad, &now_iso(0)), "127.0.0.1")
            .await,
        StatusCode::BAD_REQUEST,
        "invalid json",
    );
    for (field, error) in [
        ("to", "missing field: to"),
        ("token", "missing field: token"),
        ("expiresAt", "missing field: expiresAt"),
    ] {
        let mut value: Value = serde_json::from_slice(&payload()).unwrap();
        value.as_object_mut().unwrap().remove(field);
        let bytes = value.to_string().into_bytes();
        refused(
            &hook
                .post(&bytes, &signed(&bytes, &now_iso(0)), "127.0.0.1")
                .await,
            StatusCode::BAD_REQUEST,
            error,
        );
    }
    for (field, value, error) in [
        ("type", json!("newsletter"), "invalid field: type"),
        ("to", json!("not an address"), "invalid field: to"),
        (
            "subject",
            json!("x\r\nBcc: evil@example.com"),
            "invalid field: subject",
        ),
        ("expiresAt", json!("tomorrow"), "invalid field: expiresAt"),
        ("link", json!(5), "invalid field: link"),
    ] {
        let mut body: Value = serde_json::from_slice(&payload()).unwrap();
        body[field] = value;
        let bytes = body.to_string().into_bytes();
        refused(
            &hook
                .post(&bytes, &signed(&bytes, &now_iso(0)), "127.0.0.1")
                .await,
            StatusCode::BAD_REQUEST,
            error,
        );
    }
}

#[tokio::test]
async fn configuration_refusals_ip_allowlist_and_rate_limit() {
    let body = payload();
    // No secret configured: refused, unless unsigned calls are allowed explicitly.
    let hook = Hook::new(WebhookConfig {
        secret: String::new(),
        ..config()
    })
    .await;
    refused(
        &hook.post(&body, &[], "127.0.0.1").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "webhook secret not configured",
    );
    let open = Hook::new(WebhookConfig {
        secret: String::new(),
        allow_unsigned: true,
        ..config()
    })
    .await;
    assert_eq!(open.post(&body, &[], "127.0.0.1").await.0, StatusCode::OK);
    // No sender domain.
    let hook = Hook::new(WebhookConfig {
        sender_domain: String::new(),
        ..config()
    })
    .await;
    refused(
        &hook
            .post(&body, &signed(&body, &now_iso(0)), "127.0.0.1")
            .await,
        StatusCode::SERVICE_UNAVAILABLE,
        "sender domain not configured",
    );
    // A sender domain the webhook account has not verified.
    let hook = Hook::new(WebhookConfig {
        sender_domain: "unverified.test".into(),
        ..config()
    })
    .await;
    refused(
        &hook
            .post(&body, &signed(&body, &now_iso(0)), "127.0.0.1")
            .await,
        StatusCode::FORBIDDEN,
        "sender domain is not a verified domain of the webhook account",
    );
    // Source IP allowlist.
    let hook = Hook::new(WebhookConfig {
        allowed_ips: vec!["10.0.0.0/8".parse().unwrap()],
        ..config()
    })
    .await;
    refused(
        &hook
            .post(&body, &signed(&body, &now_iso(0)), "192.0.2.9")
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_eq!(
        hook.post(&body, &signed(&body, &now_iso(0)), "10.1.2.3")
            .await
            .0,
        StatusCode::OK
    );
    // Per-IP rate limit.
    let hook = Hook::new(WebhookConfig {
        rate_limit_per_minute: 2,
        ..config()
    })
    .await;
    for _ in 0..2 {
        hook.post(&body, &[], "127.0.0.1").await;
    }
    refused(
        &hook.post(&body, &[], "127.0.0.1").await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate limited",
    );
    assert_eq!(
        hook.post(&body, &[], "127.0.0.2").await.0,
        StatusCode::UNAUTHORIZED,
        "another IP has its own budget"
    );
    // fromLocalPart only where any local part is allowed.
    let mut value: Value = serde_json::from_slice(&payload()).unwrap();
    value["fromLocalPart"] = json!("security");
    let bytes = value.to_string().into_bytes();
    let strict = Hook::new(config()).await;
    let reply = strict
        .post(&bytes, &signed(&bytes, &now_iso(0)), "127.0.0.1")
        .await;
    let id = reply.1["queued_id"].as_i64().unwrap();
    assert_eq!(
        strict.store.message(id).await.unwrap().unwrap().mail_from,
        "no-reply@acme.test"
    );
    let any = Hook::new(WebhookConfig {
        allow_any_local_part: true,
        ..config()
    })
    .await;
    let reply = any
        .post(&bytes, &signed(&bytes, &now_iso(0)), "127.0.0.1")
        .await;
    let id = reply.1["queued_id"].as_i64().unwrap();
    assert_eq!(
        any.store.message(id).await.unwrap().unwrap().mail_from,
        "security@acme.test"
    );
}

/// `link` becomes an href in the mail: only an absolute http(s) URL is taken.
#[tokio::test]
async fn link_must_be_an_absolute_http_url() {
    let hook = Hook::new(config()).await;
    for bad in [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "//evil.test/verify",
        "/verify-email?token=1",
        "https://",
        "https:///path",
        "https://app.acme.test/\"><script>",
        "https://app.acme.test/ x",
        "ftp://app.acme.test/x",
    ] {
        let mut value: Value = serde_json::from_slice(&payload()).unwrap();
        value["link"] = json!(bad);
        let bytes = value.to_string().into_bytes();
        let reply = hook
            .post(&bytes, &signed(&bytes, &now_iso(0)), "127.0.0.1")
            .await;
        refused(&reply, StatusCode::BAD_REQUEST, "invalid field: link");
    }
    let mut value: Value = serde_json::from_slice(&payload()).unwrap();
    value["link"] = json!("https://app.acme.test/verify?token=a%20b&x=1");
    let bytes = value.to_string().into_bytes();
    let reply = hook
        .post(&bytes, &signed(&bytes, &now_iso(0)), "127.0.0.1")
        .await;
    assert_eq!(reply.0, StatusCode::OK, "{}", reply.1);
    let id = reply.1["queued_id"].as_i64().unwrap();
    let body = hook.store.message(id).await.unwrap().unwrap().body;
    let parsed = mail_parser::MessageParser::default()
        .parse(body.as_inline().unwrap())
        .unwrap();
    assert!(
        parsed
            .body_text(0)
            .unwrap()
            .contains("https://app.acme.test/verify?token=a%20b&x=1")
    );
    assert!(parsed.body_html(0).unwrap().contains("href=\"https:"));
}

/// Every 429 says when to come back.
#[tokio::test]
async fn too_many_requests_carry_retry_after() {
    let hook = Hook::new(WebhookConfig {
        rate_limit_per_minute: 1,
        ..config()
    })
    .await;
    let body = payload();
    hook.post(&body, &[], "127.0.0.1").await;
    let (status, reply, headers) = hook.post_full(&body, &[], "127.0.0.1").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{reply}");
    let wait: u64 = headers
        .get("retry-after")
        .expect("Retry-After on 429")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // The monthly limit: come back next month (UTC), at most 31 days away.
    let hook = Hook::over_quota(config()).await;
    let (status, reply, headers) = hook
        .post_full(&body, &signed(&body, &now_iso(0)), "127.0.0.1")
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{reply}");
    assert_eq!(reply["error"], "monthly limit reached");
    let wait: i64 = headers
        .get("retry-after")
        .expect("Retry-After on the monthly limit's 429")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=31 * 86_400).contains(&wait), "{wait}");
}

#[tokio::test]
async fn a_suspended_or_deleted_webhook_account_is_refused_and_nothing_is_stored() {
    let hook = Hook::new(config()).await;
    let account = hook
        .store
        .account_by_email("hooks@acme.test")
        .await
        .unwrap()
        .unwrap()
        .id;
    for (status, error) in [
        (
            sluice_core::AccountStatus::Suspended,
            "webhook account suspended",
        ),
        (
            sluice_core::AccountStatus::Deleted,
            "webhook account deleted",
        ),
    ] {
        hook.store
            .set_account_status(account, status, 2)
            .await
            .unwrap()
            .unwrap();
        let body = payload();
        refused(
            &hook
                .post(&body, &signed(&body, &now_iso(0)), "127.0.0.1")
                .await,
            StatusCode::FORBIDDEN,
            error,
        );
    }
    let all = sluice_store::MessageFilter {
        limit: 10,
        ..Default::default()
    };
    assert!(hook.store.list_messages(&all).await.unwrap().is_empty());
}

/// The listener's own answers outside the contract (404, 405, 413) are JSON too:
/// `"ok": false` as the contract has it, `error` with a code as the API's errors have it.
#[tokio::test]
async fn the_listeners_own_answers_are_json() {
    let hook = Hook::new(config()).await;
    let call = |method: &str, path: &str, body: Vec<u8>| {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        let app = hook.app.clone();
        async move {
            let response = app.oneshot(request).await.unwrap();
            let status = response.status();
            let allow = response.headers().get("allow").cloned();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            let body: Value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)));
            (status, body, allow)
        }
    };
    let check =
        |(status, body, _): &(StatusCode, Value, Option<_>), want: StatusCode, code: &str| {
            assert_eq!(*status, want, "{body}");
            assert_eq!(body["ok"], false, "{body}");
            assert_eq!(body["error"]["code"], code, "{body}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
            );
            assert!(
                body["error"]["request_id"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
            );
        };
    let wrong = call("GET", "/webhook/outbound-email", Vec::new()).await;
    check(&wrong, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert!(wrong.2.is_some(), "Allow header kept");
    check(
        &call("POST", "/webhook/nothing", Vec::new()).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    // Past the body limit (2 MiB): 413, before any signature check.
    let big = format!("{{\"subject\":\"{}\"}}", "x".repeat(3 << 20)).into_bytes();
    check(
        &call("POST", "/webhook/outbound-email", big).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
}
