//! Account lifecycle through the real API, health and panel routers (`oneshot`), on
//! SQLite, with the real accept path: a suspended or deleted account's users, tokens,
//! panel sessions and API keys are refused and its mail is neither readable nor sent;
//! reactivation brings access back. And every listener's own answers (404, 405, 413, 415)
//! carry the JSON error body.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use sluice_api::{ApiState, tokens::Tokens};
use sluice_core::{AcceptOutcome, LoginThrottle};
use sluice_store::{NewUser, Store};
use tower::ServiceExt;

// The API tests' in-process accept path, shared rather than copied.
#[path = "../../api/tests/common/mod.rs"]
mod common;

use common::loopback_open;

const ADMIN_PASSWORD: &str = "admin-password-1";
const USER_PASSWORD: &str = "user-password-1";

fn acceptor(store: Arc<dyn Store>) -> Arc<sluice_accept::Acceptor> {
    Arc::new(common::acceptor(store))
}

struct Submit(Arc<sluice_accept::Acceptor>);

#[async_trait::async_trait]
impl sluice_api::Submitter for Submit {
    async fn submit(
        &self,
        policy: &sluice_core::AccountPolicy,
        submission: sluice_core::Submission,
    ) -> AcceptOutcome {
        self.0.accept(policy, submission).await
    }
}

struct App {
    /// Health, metrics and `/api/v1`, as the HTTP listener serves them.
    http: Router,
    panel: Router,
    store: Arc<dyn Store>,
    acceptor: Arc<sluice_accept::Acceptor>,
    _dir: tempfile::TempDir,
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
    text: String,
}

async fn answer(router: &Router, request: Request<Body>) -> Answer {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Answer {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

impl App {
    async fn new() -> App {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("lifecycle.db").display());
        let store = sluice_store::open(&url, &Default::default()).await.unwrap();
        let acceptor = acceptor(store.clone());
        let state = ApiState {
            store: store.clone(),
            tokens: Arc::new(Tokens::new(b"lifecycle-test-secret-0123456789", 900)),
            refresh_ttl_secs: 3600,
            throttle: LoginThrottle {
                max_failures: 5,
                window_ms: 600_000,
                lock_ms: 600_000,
            },
            dummy_hash: Arc::new(sluice_core::secret::hash_password("dummy").unwrap()),
            rate_limit: Arc::new(Mutex::new(sluice_core::rate::WindowLimiter::new(
                1000, 60_000,
            ))),
            connections: Arc::new(sluice_core::NoConnections),
            master_key: Arc::new(sluice_core::sealed::MasterKey::from_bytes([7u8; 32])),
            egress: loopback_open(),
            webhook_egress: loopback_open(),
            api_keys: Arc::new(sluice_store::ttl_cache::TtlCache::new(
                std::time::Duration::ZERO,
            )),
            account_status: Arc::new(sluice_store::ttl_cache::TtlCache::new(
                std::time::Duration::ZERO,
            )),
            feedback: Arc::new(sluice_feedback::FeedbackState {
                max_age_secs: 600,
                certificates: sluice_feedback::verify::SnsCertificates::new(
                    vec![],
                    sluice_deliver::Egress::Policed(loopback_open()),
                ),
            }),
            submitter: Arc::new(Submit(acceptor.clone())),
            hostname: "sluice.test".into(),
            max_message_size: 64 * 1024,
            max_recipients: 5,
            send_limiter: Arc::new(Mutex::new(sluice_core::rate::WindowLimiter::new(
                1000, 3_600_000,
            ))),
            delivery_log: None,
            resolver: sluice_deliver::dns::Resolver::new(&["127.0.0.1:9".parse().unwrap()])
                .unwrap(),
            sync_lease_ms: 300_000,
            spamd: None,
        };
        store
            .create_user(
                NewUser {
                    account_id: None,
                    email: "admin@sluice.test".into(),
                    password_hash: sluice_core::secret::hash_password(ADMIN_PASSWORD).unwrap(),
                    role: "admin".into(),
                },
                1,
            )
            .await
            .unwrap();
        let panel = sluice_panel::router(sluice_panel::PanelState::new(
            state.clone(),
            &Default::default(),
        ));
        let http = sluice_http::router(
            sluice_http::HttpState {
                store: store.clone(),
                metrics: None,
                started: std::time::Instant::now(),
                reserve: None,
            },
            Some(state),
        );
        App {
            http,
            panel,
            store,
            acceptor,
            _dir: dir,
        }
    }

    async fn api(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("/api/v1{path}"));
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
            None => request.body(Body::empty()).unwrap(),
        };
        answer(&self.http, request).await
    }

    async fn login(&self, email: &str, password: &str) -> Answer {
        self.api(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({ "email": email, "password": password })),
        )
        .await
    }

    async fn refresh(&self, refresh_token: &str) -> Answer {
        self.api(
            Method::POST,
            "/auth/refresh",
            None,
            Some(json!({ "refresh_token": refresh_token })),
        )
        .await
    }

    /// The panel's dashboard with a session cookie.
    async fn panel_home(&self, cookie: &str) -> Answer {
        let request = Request::get("/")
            .header(header::COOKIE, format!("sluice_session={cookie}"))
            .body(Body::empty())
            .unwrap();
        answer(&self.panel, request).await
    }
}

fn assert_error(answer: &Answer, status: StatusCode, code: &str) {
    assert_eq!(answer.status, status, "{}", answer.text);
    assert_eq!(answer.body["error"]["code"], code, "{}", answer.text);
    assert!(
        !answer.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "{}",
        answer.text
    );
    assert!(
        !answer.body["error"]["request_id"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "{}",
        answer.text
    );
}

/// Every way in of one account's people, as they stand before the account changes.
struct Ways {
    account: i64,
    api_key: String,
    access: String,
    refresh: String,
    panel_cookie: String,
    message: i64,
}

/// What each way in gets, as (status, code) pairs; `None` code for a success.
async fn try_every_way(app: &App, ways: &Ways) -> Vec<(&'static str, StatusCode, Option<String>)> {
    let code = |a: &Answer| {
        (!a.status.is_success() && !a.status.is_redirection())
            .then(|| a.body["error"]["code"].as_str().unwrap_or("?").to_string())
    };
    let mut seen = Vec::new();
    let login = app.login("member@acme.test", USER_PASSWORD).await;
    seen.push(("login", login.status, code(&login)));
    let list = app
        .api(Method::GET, "/messages", Some(&ways.access), None)
        .await;
    seen.push(("access token: messages", list.status, code(&list)));
    let raw = app
        .api(
            Method::GET,
            &format!("/messages/{}/raw", ways.message),
            Some(&ways.access),
            None,
        )
        .await;
    seen.push(("access token: raw body", raw.status, code(&raw)));
    let keys = app
        .api(
            Method::POST,
            "/api-keys",
            Some(&ways.access),
            Some(json!({})),
        )
        .await;
    seen.push(("access token: new api key", keys.status, code(&keys)));
    let by_key = app
        .api(Method::GET, "/messages", Some(&ways.api_key), None)
        .await;
    seen.push(("api key: messages", by_key.status, code(&by_key)));
    let raw = app
        .api(
            Method::GET,
            &format!("/messages/{}/raw", ways.message),
            Some(&ways.api_key),
            None,
        )
        .await;
    seen.push(("api key: raw body", raw.status, code(&raw)));
    let send = app
        .api(
            Method::POST,
            "/send",
            Some(&ways.api_key),
            Some(json!({ "from": "app@acme.test", "to": "r@dest.test", "subject": "s", "text": "t" })),
        )
        .await;
    seen.push(("api key: send", send.status, code(&send)));
    let panel = app.panel_home(&ways.panel_cookie).await;
    let panel_code = match panel.headers.get(header::LOCATION) {
        Some(to) => Some(format!("redirect {}", to.to_str().unwrap())),
        None => code(&panel),
    };
    seen.push(("panel session", panel.status, panel_code));
    seen
}

async fn held_events(app: &App, id: i64) -> Vec<String> {
    app.store
        .events(id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

#[tokio::test]
async fn suspended_and_deleted_accounts_are_shut_out_and_their_mail_held_then_cancelled() {
    let app = App::new().await;
    let admin = app.login("admin@sluice.test", ADMIN_PASSWORD).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let created = app
        .api(
            Method::POST,
            "/accounts",
            Some(&admin),
            Some(json!({
                "name": "acme", "email": "smtp@acme.test", "password": "smtp-password-1",
                "allowed_domains": ["acme.test"]
            })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let account = created.body["account"]["id"].as_i64().unwrap();
    let api_key = created.body["api_key"].as_str().unwrap().to_string();
    let user = app
        .api(
            Method::POST,
            "/users",
            Some(&admin),
            Some(json!({ "email": "member@acme.test", "password": USER_PASSWORD, "role": "owner", "account_id": account })),
        )
        .await;
    assert_eq!(user.status, StatusCode::CREATED, "{}", user.text);
    let user_id = user.body["id"].as_i64().unwrap();
    let pair = app.login("member@acme.test", USER_PASSWORD).await;
    assert_eq!(pair.status, StatusCode::OK, "{}", pair.text);
    // A panel login, as the login form makes it.
    let panel_cookie = "panel-session-token-of-member".to_string();
    app.store
        .create_session(
            user_id,
            sluice_core::SessionKind::Panel,
            &sluice_core::secret::hash_token(&panel_cookie),
            i64::MAX / 2,
            1,
        )
        .await
        .unwrap();
    // Mail the account has in the queue.
    let sent = app
        .api(
            Method::POST,
            "/send",
            Some(&api_key),
            Some(json!({ "from": "app@acme.test", "to": "r@dest.test", "subject": "queued", "text": "waiting" })),
        )
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text);
    let message = sent.body["id"].as_i64().unwrap();
    let mut ways = Ways {
        account,
        api_key,
        access: pair.body["access_token"].as_str().unwrap().to_string(),
        refresh: pair.body["refresh_token"].as_str().unwrap().to_string(),
        panel_cookie,
        message,
    };

    // Active: every way in works.
    for (way, status, code) in try_every_way(&app, &ways).await {
        assert!(status.is_success(), "{way}: {status} {code:?}");
    }
    let rotated = app.refresh(&ways.refresh).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    ways.refresh = rotated.body["refresh_token"].as_str().unwrap().to_string();
    // The send above queued a second message; both wait.
    let queued: Vec<i64> = app
        .api(Method::GET, "/messages?status=queued", Some(&admin), None)
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert_eq!(queued.len(), 2);

    // Suspended: each way is refused; its mail is held.
    let suspended = app
        .api(
            Method::PUT,
            &format!("/accounts/{}", ways.account),
            Some(&admin),
            Some(json!({ "status": "suspended" })),
        )
        .await;
    assert_eq!(suspended.status, StatusCode::OK, "{}", suspended.text);
    assert_eq!(suspended.body["status"], "suspended");
    let refused = try_every_way(&app, &ways).await;
    for (way, status, code) in &refused {
        if *way == "panel session" {
            assert_eq!(*status, StatusCode::SEE_OTHER, "{way}");
            assert_eq!(code.as_deref(), Some("redirect /login"), "{way}");
        } else {
            assert_eq!(*status, StatusCode::FORBIDDEN, "{way}: {code:?}");
            assert_eq!(code.as_deref(), Some("account_suspended"), "{way}");
        }
    }
    // A wrong password learns nothing of the account's state.
    assert_error(
        &app.login("member@acme.test", "wrong-password-9").await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    assert_error(
        &app.refresh(&ways.refresh).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let listed = app
        .api(Method::GET, "/messages?status=held", Some(&admin), None)
        .await;
    let held: Vec<i64> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert_eq!(held, queued, "{}", listed.text);
    assert!(held_events(&app, message).await.contains(&"held".into()));
    // A session that authenticated before the suspension sends no more.
    let policy = app.store.account(account).await.unwrap().unwrap().policy();
    let late = app
        .acceptor
        .accept(
            &policy,
            sluice_core::Submission {
                source: sluice_core::Source::Smtp,
                envelope: sluice_core::Envelope {
                    mail_from: "app@acme.test".into(),
                    rcpt_to: vec!["r@dest.test".into()],
                    smtputf8: false,
                    eight_bit: false,
                },
                body: sluice_core::MessageBody::Inline(b"Subject: late\r\n\r\nlate\r\n".to_vec()),
                tags: Vec::new(),
                max_attempts: None,
                sync: false,
                recipients_checked: false,
                idempotency: None,
            },
        )
        .await;
    assert_eq!(late, AcceptOutcome::AccountSuspended);
    // A worker that claimed its mail before the suspension held it sends nothing.
    let dispatcher = common::log_dispatcher(app.store.clone());
    let envelope = sluice_core::Envelope {
        mail_from: "app@acme.test".into(),
        rcpt_to: vec!["r@dest.test".into()],
        smtputf8: false,
        eight_bit: false,
    };
    let claimed = sluice_worker::Dispatch {
        id: message,
        account_id: account,
        source: sluice_core::Source::Api,
        tags: &[],
        envelope: &envelope,
        body: &sluice_worker::DeliveryBody::whole(b"Subject: x\r\n\r\nx\r\n".to_vec()),
        release_provider_id: None,
        sandbox: false,
    };
    let dispatched = dispatcher.dispatch(claimed, 0.5).await;
    assert!(dispatched.calls.is_empty(), "no provider was called");
    assert_eq!(
        dispatched.merged.recipients[0].verdict,
        sluice_core::Verdict::Transient
    );
    // The admin has no account: not locked out, and sees the held mail.
    let seen = app
        .api(
            Method::GET,
            &format!("/messages/{message}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(seen.body["status"], "held", "{}", seen.text);

    // Reactivated: access is back; the mail is queued again. Refresh tokens and panel
    // sessions were revoked by the suspension and stay so; unexpired access tokens work.
    let active = app
        .api(
            Method::PUT,
            &format!("/accounts/{}", ways.account),
            Some(&admin),
            Some(json!({ "status": "active" })),
        )
        .await;
    assert_eq!(active.status, StatusCode::OK, "{}", active.text);
    for (way, status, code) in try_every_way(&app, &ways).await {
        if way == "panel session" {
            assert_eq!(code.as_deref(), Some("redirect /login"), "{way}");
        } else {
            assert!(status.is_success(), "{way}: {status} {code:?}");
        }
    }
    assert_error(
        &app.refresh(&ways.refresh).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_eq!(
        app.store
            .message(message)
            .await
            .unwrap()
            .unwrap()
            .status
            .as_str(),
        "queued"
    );
    let dispatched = dispatcher.dispatch(claimed, 0.5).await;
    assert_eq!(
        dispatched.merged.recipients[0].verdict,
        sluice_core::Verdict::Delivered,
        "active again: it goes out"
    );
    assert!(
        held_events(&app, message)
            .await
            .contains(&"hold_released".into())
    );
    let fresh = app.login("member@acme.test", USER_PASSWORD).await;
    ways.refresh = fresh.body["refresh_token"].as_str().unwrap().to_string();
    let new_cookie = "second-panel-session-token".to_string();
    app.store
        .create_session(
            user_id,
            sluice_core::SessionKind::Panel,
            &sluice_core::secret::hash_token(&new_cookie),
            i64::MAX / 2,
            1,
        )
        .await
        .unwrap();
    assert_eq!(app.panel_home(&new_cookie).await.status, StatusCode::OK);
    ways.panel_cookie = new_cookie;

    // Deleted: refused for good (401 account_deleted); its waiting mail is cancelled.
    let deleted = app
        .api(
            Method::DELETE,
            &format!("/accounts/{}", ways.account),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    for (way, status, code) in try_every_way(&app, &ways).await {
        if way == "panel session" {
            assert_eq!(code.as_deref(), Some("redirect /login"), "{way}");
        } else {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{way}: {code:?}");
            assert_eq!(code.as_deref(), Some("account_deleted"), "{way}");
        }
    }
    assert_error(
        &app.refresh(&ways.refresh).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let record = app.store.message(message).await.unwrap().unwrap();
    assert_eq!(record.status.as_str(), "cancelled");
    assert!(!record.body.is_empty(), "bodies are left to retention");
    assert!(
        held_events(&app, message)
            .await
            .contains(&"account_deleted".into())
    );
    assert_eq!(
        app.acceptor
            .accept(
                &policy,
                sluice_core::Submission {
                    source: sluice_core::Source::Api,
                    envelope: sluice_core::Envelope {
                        mail_from: "app@acme.test".into(),
                        rcpt_to: vec!["r@dest.test".into()],
                        smtputf8: false,
                        eight_bit: false,
                    },
                    body: sluice_core::MessageBody::Inline(
                        b"Subject: later\r\n\r\nlater\r\n".to_vec()
                    ),
                    tags: Vec::new(),
                    max_attempts: None,
                    sync: false,
                    recipients_checked: false,
                    idempotency: None,
                },
            )
            .await,
        AcceptOutcome::AccountDeleted
    );
    // A deleted account cannot be brought back.
    let back = app
        .api(
            Method::PUT,
            &format!("/accounts/{}", ways.account),
            Some(&admin),
            Some(json!({ "status": "active" })),
        )
        .await;
    assert_error(&back, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn the_api_and_health_listener_answers_every_error_in_json() {
    let app = App::new().await;
    let request = |method: Method, path: &str| {
        Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap()
    };
    // 405: a known route, another method. The Allow header stays.
    let wrong = answer(&app.http, request(Method::PATCH, "/api/v1/accounts")).await;
    assert_error(&wrong, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert!(wrong.headers.contains_key(header::ALLOW));
    let wrong = answer(&app.http, request(Method::POST, "/healthz")).await;
    assert_error(&wrong, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    // 404: unknown routes inside and outside the API.
    for path in ["/api/v1/nothing-here", "/nothing-here"] {
        let missing = answer(&app.http, request(Method::GET, path)).await;
        assert_error(&missing, StatusCode::NOT_FOUND, "not_found");
    }
    // 413: a body past the limit.
    let big = Request::post("/api/v1/auth/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(format!(
            "{{\"email\":\"{}\",\"password\":\"x\"}}",
            "a".repeat(3 << 20)
        )))
        .unwrap();
    assert_error(
        &answer(&app.http, big).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    // 415 and 400 from the JSON extractor.
    let no_type = Request::post("/api/v1/auth/login")
        .body(Body::from("{}"))
        .unwrap();
    assert_error(
        &answer(&app.http, no_type).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let broken = Request::post("/api/v1/auth/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    assert_error(
        &answer(&app.http, broken).await,
        StatusCode::BAD_REQUEST,
        "malformed_request",
    );
    // Successes are left alone.
    let ok = answer(&app.http, request(Method::GET, "/healthz")).await;
    assert_eq!(ok.body["status"], "ok");
}

#[tokio::test]
async fn the_panel_answers_every_error_in_json() {
    let app = App::new().await;
    let wrong = answer(
        &app.panel,
        Request::builder()
            .method(Method::PUT)
            .uri("/login")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    // The CSRF check runs first for every non-GET request: no cookie, 403 in JSON.
    assert_error(&wrong, StatusCode::FORBIDDEN, "forbidden");
    let wrong = answer(
        &app.panel,
        Request::builder()
            .method(Method::GET)
            .uri("/logout")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_error(&wrong, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    let missing = answer(
        &app.panel,
        Request::get("/nothing-here").body(Body::empty()).unwrap(),
    )
    .await;
    assert_error(&missing, StatusCode::NOT_FOUND, "not_found");
    // A form past the limit: 413 in JSON.
    let big = Request::post("/login")
        .header(header::COOKIE, "sluice_prelogin=abc")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("email={}", "a".repeat(5 << 20))))
        .unwrap();
    assert_error(
        &answer(&app.panel, big).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    // Pages stay HTML.
    let login = answer(
        &app.panel,
        Request::get("/login").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.text.contains("<form"), "{}", login.text);
}
