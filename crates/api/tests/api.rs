//! The management API through its router (`oneshot`, no socket), on SQLite.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use mail_parser::MimeHeaders;
use serde_json::{Value, json};
use sluice_core::LoginThrottle;
use sluice_api::{ApiState, tokens::Tokens};
use sluice_store::{NewUser, Store};
use tower::ServiceExt;

mod common;

use common::{acceptor, loopback_open};

const ADMIN_PASSWORD: &str = "admin-password-1";
const ACCOUNT_PASSWORD: &str = "smtp-password-A1";

struct WorkerSubmitter(Arc<sluice_worker::Acceptor>);

#[async_trait::async_trait]
impl sluice_api::Submitter for WorkerSubmitter {
    async fn submit(
        &self,
        policy: &sluice_core::AccountPolicy,
        submission: sluice_core::Submission,
    ) -> sluice_core::AcceptOutcome {
        self.0.accept(policy, submission).await
    }
}

/// Stands in for the SMTP server's session registry.
#[derive(Default)]
struct FakeConnections {
    list: Mutex<Vec<sluice_core::ConnectionInfo>>,
    closed: Mutex<Vec<String>>,
}

impl sluice_core::ConnectionDirectory for FakeConnections {
    fn list(&self) -> Vec<sluice_core::ConnectionInfo> {
        self.list.lock().unwrap().clone()
    }
    fn close(&self, id: &str) -> bool {
        let known = self.list.lock().unwrap().iter().any(|c| c.id == id);
        if known {
            self.closed.lock().unwrap().push(id.to_string());
        }
        known
    }
}

fn connection_of(account: i64, id: &str) -> sluice_core::ConnectionInfo {
    sluice_core::ConnectionInfo {
        id: id.into(),
        remote_addr: "192.0.2.1:5555".into(),
        listener: "0.0.0.0:587".into(),
        tls: true,
        account_id: Some(account),
        user: Some("app".into()),
        mail_from: Some("x@alpha.test".into()),
        recipients: 2,
        started_at: 1,
    }
}

struct Api {
    app: Router,
    connections: Arc<FakeConnections>,
    store: Arc<dyn Store>,
    openapi: utoipa::openapi::OpenApi,
    _dir: tempfile::TempDir,
}

struct Reply {
    status: StatusCode,
    body: Value,
    text: String,
    request_id: String,
    retry_after: Option<String>,
}

impl Api {
    async fn new() -> Api {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("api.db").display());
        let connections = Arc::new(FakeConnections::default());
        let store = sluice_store::open(&url, &Default::default()).await.unwrap();
        let state = ApiState {
            store: store.clone(),
            tokens: Arc::new(Tokens::new(b"test-secret-test-secret-test-secret", 900)),
            refresh_ttl_secs: 3600,
            throttle: LoginThrottle {
                max_failures: 5,
                window_ms: 900_000,
                lock_ms: 900_000,
            },
            dummy_hash: Arc::new(sluice_core::secret::hash_password("x").unwrap()),
            rate_limit: Arc::new(Mutex::new(sluice_core::rate::WindowLimiter::new(
                100, 60_000,
            ))),
            connections: connections.clone(),
            master_key: Arc::new(sluice_core::sealed::MasterKey::from_bytes([7u8; 32])),
            // Upstreams and receivers here run on loopback: opened the way `--dev` does.
            egress: loopback_open(),
            webhook_egress: loopback_open(),
            api_keys: Arc::new(sluice_store::ttl_cache::TtlCache::new(
                std::time::Duration::ZERO,
            )),
            account_status: Arc::new(sluice_store::ttl_cache::TtlCache::new(
                std::time::Duration::ZERO,
            )),
            feedback: Arc::new(sluice_api::feedback::FeedbackState {
                max_age_secs: 600,
                certificates: sluice_api::feedback::verify::SnsCertificates::new(
                    vec![],
                    sluice_deliver::Egress::Policed(loopback_open()),
                ),
            }),
            submitter: Arc::new(WorkerSubmitter(Arc::new(acceptor(store.clone())))),
            hostname: "sluice.test".into(),
            max_message_size: 64 * 1024,
            max_recipients: 5,
            send_limiter: Arc::new(Mutex::new(sluice_core::rate::WindowLimiter::new(
                3, 3_600_000,
            ))),
            delivery_log: Some(dir.path().join("delivery.log")),
            // Nothing answers there: verification in these tests finds no records.
            resolver: sluice_deliver::dns::Resolver::new(&["127.0.0.1:9".parse().unwrap()])
                .unwrap(),
        };
        let hash = sluice_core::secret::hash_password(ADMIN_PASSWORD).unwrap();
        store
            .create_user(
                NewUser {
                    account_id: None,
                    email: "admin@sluice.test".into(),
                    password_hash: hash,
                    role: "admin".into(),
                },
                1,
            )
            .await
            .unwrap();
        let (router, openapi) = sluice_api::router(state);
        Api {
            app: Router::new().nest("/api/v1", router),
            connections,
            store,
            openapi,
            _dir: dir,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("/api/v1{path}"));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
            None => request.body(Body::empty()).unwrap(),
        };
        self.send(request).await
    }

    async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let request_id = response
            .headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            body,
            text,
            request_id,
            retry_after,
        }
    }

    async fn login(&self, email: &str, password: &str) -> Value {
        let reply = self
            .call(
                Method::POST,
                "/auth/login",
                None,
                Some(json!({ "email": email, "password": password })),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.body
    }

    async fn admin_token(&self) -> String {
        self.login("admin@sluice.test", ADMIN_PASSWORD).await["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Creates an account as admin; returns (account id, its first API key).
    async fn account(&self, admin: &str, name: &str, domain: &str) -> (i64, String) {
        let reply = self
            .call(
                Method::POST,
                "/accounts",
                Some(admin),
                Some(json!({
                    "name": name, "email": format!("{name}@{domain}"), "password": ACCOUNT_PASSWORD,
                    "allowed_domains": [domain]
                })),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        (
            reply.body["account"]["id"].as_i64().unwrap(),
            reply.body["api_key"].as_str().unwrap().to_string(),
        )
    }

    /// Creates a user in an account and logs in; returns (user id, access token).
    async fn user(&self, admin: &str, account: i64, email: &str, role: &str) -> (i64, String) {
        let reply = self
            .call(
                Method::POST,
                "/users",
                Some(admin),
                Some(json!({ "email": email, "password": "user-password-1", "role": role, "account_id": account })),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        let token = self.login(email, "user-password-1").await["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        (reply.body["id"].as_i64().unwrap(), token)
    }
}

fn message_for(account: i64) -> sluice_store::NewMessage {
    sluice_store::NewMessage {
        account_id: account,
        source: sluice_core::Source::Smtp,
        envelope: sluice_core::Envelope {
            mail_from: "app@acme.test".into(),
            rcpt_to: vec!["r@dest.test".into()],
            smtputf8: false,
            eight_bit: false,
        },
        body: b"Subject: hi\r\n\r\nbody\r\n".to_vec(),
        lease: None,
        tags: Vec::new(),
        max_attempts: None,
    }
}

fn assert_error(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert_eq!(reply.body["error"]["code"], code, "{}", reply.text);
    assert!(
        !reply.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
    );
    assert_eq!(
        reply.body["error"]["request_id"],
        reply.request_id.as_str(),
        "request id matches the header"
    );
}

#[tokio::test]
async fn login_refresh_logout_and_lockout() {
    let api = Api::new().await;
    let pair = api.login("admin@sluice.test", ADMIN_PASSWORD).await;
    assert_eq!(pair["expires_in"], 900);
    let access = pair["access_token"].as_str().unwrap();
    let refresh = pair["refresh_token"].as_str().unwrap();
    assert!(refresh.starts_with("rt_"));
    assert_eq!(
        api.call(Method::GET, "/accounts", Some(access), None)
            .await
            .status,
        StatusCode::OK
    );

    // Refresh rotates: the new token works, the old one is dead.
    let rotated = api
        .call(
            Method::POST,
            "/auth/refresh",
            None,
            Some(json!({ "refresh_token": refresh })),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let replay = api
        .call(
            Method::POST,
            "/auth/refresh",
            None,
            Some(json!({ "refresh_token": refresh })),
        )
        .await;
    assert_error(&replay, StatusCode::UNAUTHORIZED, "unauthorized");
    let newer = rotated.body["refresh_token"].as_str().unwrap();
    let out = api
        .call(
            Method::POST,
            "/auth/logout",
            None,
            Some(json!({ "refresh_token": newer })),
        )
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let after = api
        .call(
            Method::POST,
            "/auth/refresh",
            None,
            Some(json!({ "refresh_token": newer })),
        )
        .await;
    assert_error(&after, StatusCode::UNAUTHORIZED, "unauthorized");

    // Unknown user and wrong password look the same.
    let unknown = api
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({ "email": "nobody@x.test", "password": "p" })),
        )
        .await;
    let wrong = api
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({ "email": "admin@sluice.test", "password": "p" })),
        )
        .await;
    assert_error(&unknown, StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert_error(&wrong, StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert_eq!(
        unknown.body["error"]["message"],
        wrong.body["error"]["message"]
    );

    // Four more failures (five in all) lock the user: the right password is refused too.
    for _ in 0..4 {
        let reply = api
            .call(
                Method::POST,
                "/auth/login",
                None,
                Some(json!({ "email": "admin@sluice.test", "password": "p" })),
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    let locked = api
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({ "email": "admin@sluice.test", "password": ADMIN_PASSWORD })),
        )
        .await;
    assert_error(&locked, StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert_eq!(
        locked.body["error"]["message"],
        wrong.body["error"]["message"]
    );
}

#[tokio::test]
async fn bad_credentials_and_malformed_requests() {
    let api = Api::new().await;
    let admin = api.admin_token().await;
    assert_error(
        &api.call(Method::GET, "/accounts", None, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_error(
        &api.call(Method::GET, "/accounts", Some("garbage"), None)
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let forged = format!("{}x", &admin[..admin.len() - 1]);
    assert_error(
        &api.call(Method::GET, "/accounts", Some(&forged), None)
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_error(
        &api.call(
            Method::GET,
            "/accounts",
            Some("sk_0000000000000000000000000000000000000000000000000000000000000000"),
            None,
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    // Malformed JSON: 400 in our shape.
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/accounts")
        .header("authorization", format!("Bearer {admin}"))
        .header("content-type", "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    assert_error(
        &api.send(request).await,
        StatusCode::BAD_REQUEST,
        "malformed_request",
    );
    // Wrong shape and unknown fields: 422.
    let reply = api
        .call(
            Method::POST,
            "/accounts",
            Some(&admin),
            Some(json!({ "name": 5 })),
        )
        .await;
    assert_error(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let reply = api
        .call(
            Method::POST,
            "/api-keys",
            Some(&admin),
            Some(json!({ "account_id": 1, "extra": true })),
        )
        .await;
    assert_error(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_error(
        &api.call(Method::GET, "/no-such-route", Some(&admin), None)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[tokio::test]
async fn accounts_users_keys_messages_and_audit() {
    let api = Api::new().await;
    let admin = api.admin_token().await;
    let (account, first_key) = api.account(&admin, "acme", "acme.test").await;

    // Validation.
    for bad in [
        json!({ "name": "", "email": "a@acme.test", "password": ACCOUNT_PASSWORD, "allowed_domains": [] }),
        json!({ "name": "x", "email": "not-an-email", "password": ACCOUNT_PASSWORD, "allowed_domains": [] }),
        json!({ "name": "x", "email": "a@x.test", "password": "short", "allowed_domains": [] }),
        json!({ "name": "x", "email": "a@x.test", "password": ACCOUNT_PASSWORD, "allowed_domains": ["bad domain"] }),
        json!({ "name": "x", "email": "a@x.test", "password": ACCOUNT_PASSWORD, "allowed_domains": [], "monthly_limit": -1 }),
    ] {
        let reply = api
            .call(Method::POST, "/accounts", Some(&admin), Some(bad.clone()))
            .await;
        assert_error(
            &reply,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }
    let dup = json!({ "name": "x", "email": "acme@acme.test", "password": ACCOUNT_PASSWORD, "allowed_domains": [] });
    assert_error(
        &api.call(Method::POST, "/accounts", Some(&admin), Some(dup))
            .await,
        StatusCode::CONFLICT,
        "conflict",
    );

    // The first API key authenticates as the account's owner.
    let got = api
        .call(
            Method::GET,
            &format!("/accounts/{account}"),
            Some(&first_key),
            None,
        )
        .await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text);
    assert_eq!(got.body["monthly_limit"], 10_000);
    assert!(got.body.get("password_hash").is_none());
    // Only admins list or create accounts.
    assert_error(
        &api.call(Method::GET, "/accounts", Some(&first_key), None)
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );

    // Owners change their account but not its limit or status.
    let put = api
        .call(
            Method::PUT,
            &format!("/accounts/{account}"),
            Some(&first_key),
            Some(json!({ "name": "Acme Inc" })),
        )
        .await;
    assert_eq!(
        (put.status, put.body["name"].as_str()),
        (StatusCode::OK, Some("Acme Inc"))
    );
    let limit = api
        .call(
            Method::PUT,
            &format!("/accounts/{account}"),
            Some(&first_key),
            Some(json!({ "monthly_limit": 1 })),
        )
        .await;
    assert_error(&limit, StatusCode::FORBIDDEN, "forbidden");
    // Allowed domains are a read-only view of the verified domains: a tenant's write
    // grants nothing; an admin's list is the admin vouching for exactly those.
    let grab = api
        .call(
            Method::PUT,
            &format!("/accounts/{account}"),
            Some(&first_key),
            Some(json!({ "allowed_domains": ["other-tenant.test", "gmail.com"] })),
        )
        .await;
    assert_error(&grab, StatusCode::BAD_REQUEST, "read_only_field");
    let own = api
        .call(
            Method::GET,
            &format!("/accounts/{account}"),
            Some(&first_key),
            None,
        )
        .await;
    assert_eq!(own.body["allowed_domains"], json!(["acme.test"]));
    let vouched = api
        .call(
            Method::PUT,
            &format!("/accounts/{account}"),
            Some(&admin),
            Some(json!({ "allowed_domains": ["acme.test", "Mail.Acme.Test."] })),
        )
        .await;
    assert_eq!(vouched.status, StatusCode::OK, "{}", vouched.text);
    assert_eq!(
        vouched.body["allowed_domains"],
        json!(["acme.test", "mail.acme.test"])
    );
    let listed = api
        .call(Method::GET, "/domains", Some(&first_key), None)
        .await;
    let hows: Vec<&str> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["verified_how"].as_str().unwrap())
        .collect();
    assert_eq!(hows, vec!["admin", "admin"], "{}", listed.text);
    let bad_status = api
        .call(
            Method::PUT,
            &format!("/accounts/{account}"),
            Some(&admin),
            Some(json!({ "status": "gone" })),
        )
        .await;
    assert_error(
        &bad_status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );

    // Users and roles.
    let (member_id, member) = api
        .user(&admin, account, "member@acme.test", "member")
        .await;
    let (_, viewer) = api
        .user(&admin, account, "viewer@acme.test", "viewer")
        .await;
    let got = api
        .call(
            Method::GET,
            &format!("/users/{member_id}"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(got.body["role"], "member");
    let escalate = api
        .call(
            Method::POST,
            "/users",
            Some(&member),
            Some(json!({ "email": "x@acme.test", "password": "pppppppp1", "role": "owner" })),
        )
        .await;
    assert_error(&escalate, StatusCode::FORBIDDEN, "forbidden");
    let admin_by_owner = api
        .call(
            Method::POST,
            "/users",
            Some(&first_key),
            Some(json!({ "email": "y@acme.test", "password": "pppppppp1", "role": "admin" })),
        )
        .await;
    assert_error(&admin_by_owner, StatusCode::FORBIDDEN, "forbidden");
    let bad_role = api
        .call(
            Method::POST,
            "/users",
            Some(&first_key),
            Some(json!({ "email": "y@acme.test", "password": "pppppppp1", "role": "god" })),
        )
        .await;
    assert_error(
        &bad_role,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );

    // API keys: created once, listed by prefix, revoked; members may not.
    let created = api
        .call(Method::POST, "/api-keys", Some(&first_key), Some(json!({})))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let second_key = created.body["api_key"].as_str().unwrap().to_string();
    let key_id = created.body["id"].as_i64().unwrap();
    let listed = api
        .call(Method::GET, "/api-keys", Some(&member), None)
        .await;
    assert_eq!(listed.body.as_array().unwrap().len(), 2);
    assert!(!listed.text.contains(&second_key) && !listed.text.contains(&first_key));
    assert_error(
        &api.call(
            Method::DELETE,
            &format!("/api-keys/{key_id}"),
            Some(&member),
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_eq!(
        api.call(
            Method::DELETE,
            &format!("/api-keys/{key_id}"),
            Some(&first_key),
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &api.call(Method::GET, "/api-keys", Some(&second_key), None)
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_error(
        &api.call(Method::POST, "/api-keys", Some(&admin), Some(json!({})))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );

    // SMTP credentials: created (password never echoed), listed, revoked.
    let bad = api
        .call(
            Method::POST,
            "/smtp-credentials",
            Some(&first_key),
            Some(json!({ "username": "a b", "password": "cred-password-1" })),
        )
        .await;
    assert_error(&bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let cred = api
        .call(
            Method::POST,
            "/smtp-credentials",
            Some(&first_key),
            Some(json!({ "username": "app-1", "password": "cred-password-1" })),
        )
        .await;
    assert_eq!(cred.status, StatusCode::CREATED, "{}", cred.text);
    assert!(!cred.text.contains("cred-password-1"));
    let again = api
        .call(
            Method::POST,
            "/smtp-credentials",
            Some(&first_key),
            Some(json!({ "username": "APP-1", "password": "cred-password-2" })),
        )
        .await;
    assert_error(&again, StatusCode::CONFLICT, "conflict");
    let cred_id = cred.body["id"].as_i64().unwrap();
    let listed = api
        .call(Method::GET, "/smtp-credentials", Some(&viewer), None)
        .await;
    assert_eq!(listed.body[0]["username"], "app-1", "{}", listed.text);
    assert_error(
        &api.call(
            Method::DELETE,
            &format!("/smtp-credentials/{cred_id}"),
            Some(&viewer),
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_eq!(
        api.call(
            Method::DELETE,
            &format!("/smtp-credentials/{cred_id}"),
            Some(&first_key),
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );

    // Messages: listed, filtered, shown with attempts/events, raw.
    let id = api
        .store
        .enqueue_messages(&[message_for(account)], 5)
        .await
        .unwrap()[0];
    let list = api
        .call(
            Method::GET,
            "/messages?status=queued&to=r@dest.test",
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(list.body["items"][0]["id"], id, "{}", list.text);
    let none = api
        .call(
            Method::GET,
            "/messages?status=delivered",
            Some(&viewer),
            None,
        )
        .await;
    assert!(none.body["items"].as_array().unwrap().is_empty());
    assert_error(
        &api.call(Method::GET, "/messages?status=bogus", Some(&viewer), None)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let detail = api
        .call(Method::GET, &format!("/messages/{id}"), Some(&viewer), None)
        .await;
    assert_eq!(
        detail.body["events"][0]["kind"], "queued",
        "{}",
        detail.text
    );
    let raw = api
        .call(
            Method::GET,
            &format!("/messages/{id}/raw"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(raw.text, "Subject: hi\r\n\r\nbody\r\n");
    let logs = api
        .call(
            Method::GET,
            &format!("/delivery-logs?message_id={id}"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(
        (logs.status, logs.body.as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );
    assert_error(
        &api.call(Method::GET, "/delivery-logs", Some(&viewer), None)
            .await,
        StatusCode::BAD_REQUEST,
        "malformed_request",
    );
    // A queued message cannot be retried; viewers cannot cancel; members can, once.
    assert_error(
        &api.call(
            Method::POST,
            &format!("/messages/{id}/retry"),
            Some(&member),
            None,
        )
        .await,
        StatusCode::CONFLICT,
        "conflict",
    );
    assert_error(
        &api.call(
            Method::DELETE,
            &format!("/messages/{id}"),
            Some(&viewer),
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_eq!(
        api.call(
            Method::DELETE,
            &format!("/messages/{id}"),
            Some(&member),
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &api.call(
            Method::DELETE,
            &format!("/messages/{id}"),
            Some(&member),
            None,
        )
        .await,
        StatusCode::CONFLICT,
        "conflict",
    );
    let cancelled = api
        .call(Method::GET, &format!("/messages/{id}"), Some(&viewer), None)
        .await;
    assert_eq!(cancelled.body["status"], "cancelled");
    // A failed message goes back to the queue, to all its recipients.
    let failed_id = api
        .store
        .enqueue_messages(&[message_for(account)], 6)
        .await
        .unwrap()[0];
    let claimed = api
        .store
        .claim_due_messages("w", 10, 1000, 10)
        .await
        .unwrap();
    assert_eq!(claimed[0].id, failed_id);
    let report = sluice_core::DeliveryReport::uniform(
        "smtp",
        &claimed[0].envelope.rcpt_to,
        sluice_core::Verdict::Permanent,
        Some(550),
        "no",
    );
    api.store
        .record_attempt(&sluice_store::AttemptRecord {
            message_id: failed_id,
            lease_owner: "w".into(),
            report,
            calls: vec![],
            started_at: 11,
            finished_at: 12,
            new_status: sluice_core::MessageStatus::Failed,
            pending_rcpt: vec![],
            next_attempt_at: 12,
            last_error: Some("550 no".into()),
            events: vec![],
        })
        .await
        .unwrap();
    let retried = api
        .call(
            Method::POST,
            &format!("/messages/{failed_id}/retry"),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(retried.status, StatusCode::ACCEPTED, "{}", retried.text);
    let again = api.store.message(failed_id).await.unwrap().unwrap();
    assert_eq!(again.status, "queued");
    assert_eq!(again.pending_rcpt, again.rcpt_to);

    // The audit log has every change, with actor, target and fields; viewers may not read it.
    let audit = api
        .call(Method::GET, "/audit-logs", Some(&first_key), None)
        .await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.text);
    let actions: Vec<String> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["action"].as_str().unwrap(),
                e["target_type"].as_str().unwrap()
            )
        })
        .collect();
    for expected in [
        "create account",
        "update account",
        "create user",
        "create api_key",
        "revoke api_key",
        "create smtp_credential",
        "revoke smtp_credential",
        "cancel message",
        "retry message",
    ] {
        assert!(
            actions.contains(&expected.to_string()),
            "{expected} in {actions:?}"
        );
    }
    assert_error(
        &api.call(Method::GET, "/audit-logs", Some(&viewer), None)
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );

    // Deleting (admins only) ends the account's access.
    assert_error(
        &api.call(
            Method::DELETE,
            &format!("/accounts/{account}"),
            Some(&first_key),
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_eq!(
        api.call(
            Method::DELETE,
            &format!("/accounts/{account}"),
            Some(&admin),
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &api.call(Method::GET, "/api-keys", Some(&first_key), None)
            .await,
        StatusCode::UNAUTHORIZED,
        "account_deleted",
    );
    let gone = api
        .call(
            Method::GET,
            &format!("/accounts/{account}"),
            Some(&admin),
            None,
        )
        .await;
    assert_error(&gone, StatusCode::NOT_FOUND, "not_found");
}

/// Every `{id}` route in the OpenAPI document, called by account B with account A's ids,
/// answers 404 and changes nothing. A new route with an `{id}` the sweep cannot fill fails it.
#[tokio::test]
async fn tenant_isolation_sweep_over_every_id_route() {
    let api = Api::new().await;
    let admin = api.admin_token().await;
    let (a, a_key) = api.account(&admin, "alpha", "alpha.test").await;
    let (b, b_key) = api.account(&admin, "beta", "beta.test").await;
    let (a_user, _) = api.user(&admin, a, "member@alpha.test", "member").await;
    let (_, b_member) = api.user(&admin, b, "member@beta.test", "member").await;
    let a_key_id = api.store.list_api_keys(a).await.unwrap()[0].id;
    let message = sluice_store::NewMessage {
        account_id: a,
        source: sluice_core::Source::Api,
        envelope: sluice_core::Envelope {
            mail_from: "x@alpha.test".into(),
            rcpt_to: vec!["r@dest.test".into()],
            smtputf8: false,
            eight_bit: false,
        },
        body: b"Subject: a\r\n\r\nsecret body of alpha\r\n".to_vec(),
        lease: None,
        tags: Vec::new(),
        max_attempts: None,
    };
    let a_message = api.store.enqueue_messages(&[message], 5).await.unwrap()[0];
    let created = api
        .call(
            Method::POST,
            "/smtp-credentials",
            Some(&a_key),
            Some(json!({ "username": "alpha-app", "password": "cred-password-1" })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let a_credential = created.body["id"].as_i64().unwrap();
    api.connections
        .list
        .lock()
        .unwrap()
        .push(connection_of(a, "a1b2c3"));
    let provider = api
        .call(
            Method::POST,
            "/providers",
            Some(&a_key),
            Some(json!({
                "name": "mx", "provider_type": "smtp",
                "config": { "host": "mx.alpha.test", "password": "provider-secret-1" }
            })),
        )
        .await;
    assert_eq!(provider.status, StatusCode::CREATED, "{}", provider.text);
    let a_provider = provider.body["id"].as_i64().unwrap().to_string();
    let rule = api
        .call(
            Method::POST,
            "/routing-rules",
            Some(&a_key),
            Some(json!({ "name": "all", "priority": 1, "conditions": {}, "provider_id": provider.body["id"] })),
        )
        .await;
    assert_eq!(rule.status, StatusCode::CREATED, "{}", rule.text);
    let a_rule = rule.body["id"].as_i64().unwrap().to_string();
    let template = api
        .call(
            Method::POST,
            "/templates",
            Some(&a_key),
            Some(json!({ "name": "receipt", "subject": "Receipt", "text": "Paid {{ amount }}" })),
        )
        .await;
    assert_eq!(template.status, StatusCode::CREATED, "{}", template.text);
    let a_template = template.body["id"].as_i64().unwrap().to_string();
    let suppression = api
        .call(
            Method::POST,
            "/suppressions",
            Some(&a_key),
            Some(json!({ "address": "gone@dest.test" })),
        )
        .await;
    assert_eq!(
        suppression.status,
        StatusCode::CREATED,
        "{}",
        suppression.text
    );
    let a_suppression = suppression.body["id"].as_i64().unwrap().to_string();
    let dkim = api
        .call(
            Method::POST,
            "/dkim-keys",
            Some(&a_key),
            Some(
                json!({ "domain": "alpha.test", "selector": "s1", "algorithm": "ed25519-sha256" }),
            ),
        )
        .await;
    assert_eq!(dkim.status, StatusCode::CREATED, "{}", dkim.text);
    let a_dkim = dkim.body["id"].as_i64().unwrap().to_string();
    let endpoint = api
        .call(
            Method::POST,
            "/webhook-endpoints",
            Some(&a_key),
            Some(json!({ "url": "https://hooks.alpha.test/sluice", "events": ["*"] })),
        )
        .await;
    assert_eq!(endpoint.status, StatusCode::CREATED, "{}", endpoint.text);
    let a_endpoint = endpoint.body["id"].as_i64().unwrap().to_string();
    let domain = api
        .call(
            Method::POST,
            "/domains",
            Some(&a_key),
            Some(json!({ "domain": "mail.alpha.test" })),
        )
        .await;
    assert_eq!(domain.status, StatusCode::CREATED, "{}", domain.text);
    let a_domain = domain.body["id"].as_i64().unwrap().to_string();
    let ids: &[(&str, &str)] = &[
        ("/domains/", &a_domain),
        ("/accounts/", &a.to_string()),
        ("/users/", &a_user.to_string()),
        ("/api-keys/", &a_key_id.to_string()),
        ("/messages/", &a_message.to_string()),
        ("/smtp-credentials/", &a_credential.to_string()),
        ("/smtp/connections/", "a1b2c3"),
        ("/providers/", &a_provider),
        ("/routing-rules/", &a_rule),
        ("/templates/", &a_template),
        ("/suppressions/", &a_suppression),
        ("/dkim-keys/", &a_dkim),
        ("/webhook-endpoints/", &a_endpoint),
        // Admin-only: any id answers 404 to a tenant.
        ("/mailbox-servers/", "1"),
    ];
    let audit_before = api
        .store
        .list_audit(&sluice_store::AuditFilter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .len();
    let mut swept = 0;
    for (path, item) in api.openapi.paths.paths.iter() {
        if !path.contains("{id}") {
            continue;
        }
        let id = ids
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix))
            .map(|(_, id)| *id)
            .unwrap_or_else(|| panic!("the isolation sweep does not know the ids for {path}"));
        let concrete = path.replace("{id}", id);
        let methods = [
            (Method::GET, item.get.is_some()),
            (Method::PUT, item.put.is_some()),
            (Method::DELETE, item.delete.is_some()),
            (Method::POST, item.post.is_some()),
        ];
        for (method, present) in methods {
            if !present {
                continue;
            }
            for token in [&b_key, &b_member] {
                // A body of the right shape, so that only the id can make the answer differ.
                let shape = if path.starts_with("/routing-rules/") {
                    json!({ "name": "x", "priority": 1, "conditions": {}, "provider_id": 1 })
                } else if path.starts_with("/templates/") {
                    json!({ "name": "x", "subject": "s", "text": "t" })
                } else if path.starts_with("/webhook-endpoints/") {
                    json!({ "url": "https://hooks.beta.test/", "events": ["*"] })
                } else if path.ends_with("/release") {
                    json!({ "provider_id": 1 })
                } else if path == "/providers/{id}/test" {
                    json!({ "from": "app@beta.test", "to": "r@dest.test" })
                } else {
                    json!({})
                };
                let body = (method == Method::PUT || method == Method::POST).then_some(shape);
                let reply = api.call(method.clone(), &concrete, Some(token), body).await;
                assert_error(&reply, StatusCode::NOT_FOUND, "not_found");
                assert!(
                    !reply.text.contains("secret body"),
                    "{method} {concrete} leaked"
                );
                swept += 1;
            }
        }
    }
    assert!(swept >= 10, "only {swept} calls swept");
    // Nothing changed.
    let alpha = api
        .call(Method::GET, &format!("/accounts/{a}"), Some(&a_key), None)
        .await;
    assert_eq!(alpha.body["name"], "alpha");
    assert!(
        api.store
            .list_api_keys(a)
            .await
            .unwrap()
            .iter()
            .all(|k| k.revoked_at.is_none())
    );
    let credentials = api.store.list_smtp_credentials(a).await.unwrap();
    assert!(credentials.iter().all(|c| c.revoked_at.is_none()));
    assert!(
        api.store
            .domain(a_domain.parse().unwrap())
            .await
            .unwrap()
            .is_some_and(|d| d.checked_at.is_none())
    );
    assert!(api.connections.closed.lock().unwrap().is_empty());
    let seen = api
        .call(Method::GET, "/smtp/connections", Some(&b_key), None)
        .await;
    assert_eq!(seen.body.as_array().map(Vec::len), Some(0), "{}", seen.text);
    assert_eq!(
        api.store
            .list_audit(&sluice_store::AuditFilter {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap()
            .len(),
        audit_before
    );
    // Lists are scoped too: B sees none of A's messages, and may not name A.
    let list = api.call(Method::GET, "/messages", Some(&b_key), None).await;
    assert!(
        list.body["items"].as_array().unwrap().is_empty(),
        "{}",
        list.text
    );
    assert_error(
        &api.call(
            Method::GET,
            &format!("/messages?account_id={a}"),
            Some(&b_key),
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &api.call(
            Method::GET,
            &format!("/api-keys?account_id={a}"),
            Some(&b_key),
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &api.call(
            Method::GET,
            &format!("/audit-logs?account_id={a}"),
            Some(&b_key),
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

/// Captures log output of the test's thread.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn secrets_never_appear_in_responses_audit_or_logs() {
    // A global subscriber: a thread-scoped one misses events whose callsites other tests'
    // threads registered first (tracing caches interest per callsite).
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("only this test sets it");

    let api = Api::new().await;
    let admin_pair = api.login("admin@sluice.test", ADMIN_PASSWORD).await;
    let admin = admin_pair["access_token"].as_str().unwrap().to_string();
    let (account, key) = api.account(&admin, "gamma", "gamma.test").await;
    let (_, member) = api.user(&admin, account, "m@gamma.test", "member").await;
    let provider = api
        .call(
            Method::POST,
            "/providers",
            Some(&key),
            Some(json!({ "name": "esp", "provider_type": "mailgun", "config": { "domain": "mg.test", "api_key": "key-mailgun-secret" } })),
        )
        .await;
    assert_eq!(provider.status, StatusCode::CREATED, "{}", provider.text);
    let mut later = String::new();
    for path in [
        format!("/accounts/{account}"),
        "/api-keys".into(),
        "/messages".into(),
        "/providers".into(),
    ] {
        later.push_str(&api.call(Method::GET, &path, Some(&member), None).await.text);
    }
    later.push_str(
        &api.call(Method::GET, "/accounts", Some(&admin), None)
            .await
            .text,
    );
    let audit = api
        .store
        .list_audit(&sluice_store::AuditFilter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    let audit_text = serde_json::to_string(
        &audit
            .iter()
            .map(|a| (&a.actor, &a.changes))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let secrets = [
        ADMIN_PASSWORD,
        ACCOUNT_PASSWORD,
        "user-password-1",
        key.as_str(),
        admin.as_str(),
        admin_pair["refresh_token"].as_str().unwrap(),
        "key-mailgun-secret",
    ];
    for secret in secrets {
        assert!(!later.contains(secret), "a secret in a response");
        assert!(!audit_text.contains(secret), "a secret in the audit log");
        assert!(!logged.contains(secret), "a secret in the logs");
    }
    assert!(logged.contains("login"), "the log capture works");
    assert!(audit_text.contains("first_api_key"));
}

#[tokio::test]
async fn each_api_key_gets_100_requests_a_minute() {
    let api = Api::new().await;
    let admin = api.admin_token().await;
    let (_, key) = api.account(&admin, "busy", "busy.test").await;
    let (_, other) = api.account(&admin, "calm", "calm.test").await;
    for n in 0..100 {
        let reply = api.call(Method::GET, "/api-keys", Some(&key), None).await;
        assert_eq!(reply.status, StatusCode::OK, "request {n}");
    }
    let limited = api.call(Method::GET, "/api-keys", Some(&key), None).await;
    assert_error(&limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    // Another key is not affected.
    assert_eq!(
        api.call(Method::GET, "/api-keys", Some(&other), None)
            .await
            .status,
        StatusCode::OK
    );
    let request = Request::builder()
        .uri("/api/v1/api-keys")
        .header("authorization", format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap();
    let response = api.app.clone().oneshot(request).await.unwrap();
    let retry: i64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
}

#[tokio::test]
async fn smtp_connections_are_listed_and_closed_by_admins() {
    let api = Api::new().await;
    let admin = api.admin_token().await;
    let (a, a_key) = api.account(&admin, "alpha", "alpha.test").await;
    let (b, _) = api.account(&admin, "beta", "beta.test").await;
    api.connections
        .list
        .lock()
        .unwrap()
        .extend([connection_of(a, "s-a"), connection_of(b, "s-b")]);
    let all = api
        .call(Method::GET, "/smtp/connections", Some(&admin), None)
        .await;
    assert_eq!(all.body.as_array().unwrap().len(), 2);
    let own = api
        .call(Method::GET, "/smtp/connections", Some(&a_key), None)
        .await;
    assert_eq!(own.body.as_array().unwrap().len(), 1);
    assert_eq!(own.body[0]["id"], "s-a");
    assert_eq!(own.body[0]["recipients"], 2);
    assert_error(
        &api.call(Method::DELETE, "/smtp/connections/s-a", Some(&a_key), None)
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_error(
        &api.call(Method::DELETE, "/smtp/connections/nope", Some(&admin), None)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let closed = api
        .call(Method::DELETE, "/smtp/connections/s-a", Some(&admin), None)
        .await;
    assert_eq!(closed.status, StatusCode::NO_CONTENT);
    assert_eq!(
        *api.connections.closed.lock().unwrap(),
        vec!["s-a".to_string()]
    );
}

#[tokio::test]
async fn users_are_listed_changed_and_disabled_within_their_account() {
    let api = Api::new().await;
    let admin = api.admin_token().await;
    let (a, a_key) = api.account(&admin, "alpha", "alpha.test").await;
    let (member_id, member) = api.user(&admin, a, "member@alpha.test", "member").await;
    let (viewer_id, viewer) = api.user(&admin, a, "viewer@alpha.test", "viewer").await;
    let listed = api.call(Method::GET, "/users", Some(&viewer), None).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 2, "{}", listed.text);
    let everyone = api.call(Method::GET, "/users", Some(&admin), None).await;
    assert_eq!(
        everyone.body.as_array().unwrap().len(),
        3,
        "admin sees the admin too"
    );
    // Members cannot manage users; owners can, but not into admins.
    let promote = json!({ "role": "owner" });
    assert_error(
        &api.call(
            Method::PUT,
            &format!("/users/{viewer_id}"),
            Some(&member),
            Some(promote.clone()),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let promoted = api
        .call(
            Method::PUT,
            &format!("/users/{viewer_id}"),
            Some(&a_key),
            Some(promote),
        )
        .await;
    assert_eq!(promoted.body["role"], "owner", "{}", promoted.text);
    assert_error(
        &api.call(
            Method::PUT,
            &format!("/users/{viewer_id}"),
            Some(&a_key),
            Some(json!({ "role": "admin" })),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_error(
        &api.call(
            Method::PUT,
            &format!("/users/{viewer_id}"),
            Some(&a_key),
            Some(json!({ "password": "short" })),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    // A password change ends the user's sessions: its refresh token stops working.
    let pair = api.login("member@alpha.test", "user-password-1").await;
    let changed = api
        .call(
            Method::PUT,
            &format!("/users/{member_id}"),
            Some(&a_key),
            Some(json!({ "password": "new-password-2" })),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    let refresh = api
        .call(
            Method::POST,
            "/auth/refresh",
            None,
            Some(json!({ "refresh_token": pair["refresh_token"] })),
        )
        .await;
    assert_error(&refresh, StatusCode::UNAUTHORIZED, "unauthorized");
    api.login("member@alpha.test", "new-password-2").await;
    // Disabling ends access at once, even for a still-valid access token.
    assert_eq!(
        api.call(
            Method::DELETE,
            &format!("/users/{member_id}"),
            Some(&a_key),
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &api.call(Method::GET, "/users", Some(&member), None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let relogin = api
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({ "email": "member@alpha.test", "password": "new-password-2" })),
        )
        .await;
    assert_error(&relogin, StatusCode::UNAUTHORIZED, "invalid_credentials");
}

#[tokio::test]
async fn providers_keep_secrets_sealed_and_masked_and_are_tested_for_real() {
    let api = Api::new().await;
    let admin = api.admin_token().await;
    let (a, key) = api.account(&admin, "alpha", "alpha.test").await;
    let (_, viewer) = api.user(&admin, a, "viewer@alpha.test", "viewer").await;
    let upstream = sluice_testkit::Upstream::start(&[]);

    for (bad, why) in [
        (
            json!({ "name": "x", "provider_type": "pigeon", "config": {} }),
            "unknown type",
        ),
        (
            json!({ "name": "x", "provider_type": "sendgrid", "config": {} }),
            "missing api_key",
        ),
        (
            json!({ "name": "x", "provider_type": "smtp", "config": { "host": "h", "colour": 1 } }),
            "unknown setting",
        ),
        (
            json!({ "name": "", "provider_type": "log", "config": {} }),
            "empty name",
        ),
        (
            json!({ "name": "x", "provider_type": "smtp", "config": { "host": "h", "from_name": "A\r\nBcc: e@x.test" } }),
            "a sender name that would inject a header",
        ),
    ] {
        let reply = api
            .call(Method::POST, "/providers", Some(&key), Some(bad))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{why}: {}",
            reply.text
        );
    }
    assert_error(
        &api.call(
            Method::POST,
            "/providers",
            Some(&viewer),
            Some(json!({ "name": "x", "provider_type": "log", "config": {} })),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );

    let created = api
        .call(
            Method::POST,
            "/providers",
            Some(&key),
            Some(json!({
                "name": "local relay", "provider_type": "smtp",
                "config": { "host": "127.0.0.1", "port": upstream.port, "security": "none", "password": "relay-secret-9" }
            })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["config"]["password"], "********");
    assert!(!created.text.contains("relay-secret-9"));
    let id = created.body["id"].as_i64().unwrap();
    // At rest: sealed, not in the clear.
    let row = api.store.provider(id).await.unwrap().unwrap();
    assert!(
        !row.secrets.contains("relay-secret-9")
            && !row.config.to_string().contains("relay-secret-9")
    );
    let master = sluice_core::sealed::MasterKey::from_bytes([7u8; 32]);
    let opened: Value = serde_json::from_slice(&master.open(&row.secrets).unwrap()).unwrap();
    assert_eq!(opened["password"], "relay-secret-9");

    // An update that sends the mask back keeps the secret.
    let updated = api
        .call(
            Method::PUT,
            &format!("/providers/{id}"),
            Some(&key),
            Some(json!({ "config": { "host": "127.0.0.1", "port": upstream.port, "security": "none", "password": "********" }, "priority": 5 })),
        )
        .await;
    assert_eq!(
        (updated.status, updated.body["priority"].as_i64()),
        (StatusCode::OK, Some(5)),
        "{}",
        updated.text
    );
    let row = api.store.provider(id).await.unwrap().unwrap();
    let opened: Value = serde_json::from_slice(&master.open(&row.secrets).unwrap()).unwrap();
    assert_eq!(opened["password"], "relay-secret-9");

    // Test SMTP against a real server, then against a closed port.
    let test = api
        .call(
            Method::POST,
            &format!("/providers/{id}/test"),
            Some(&viewer),
            None,
        )
        .await;
    assert_error(&test, StatusCode::FORBIDDEN, "forbidden");
    let (_, member) = api.user(&admin, a, "member@alpha.test", "member").await;
    let test = api
        .call(
            Method::POST,
            &format!("/providers/{id}/test"),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(test.body["ok"], true, "{}", test.text);
    assert!(test.text.contains("QUIT accepted"), "{}", test.text);

    // With a sender display name set, a test message goes for real and carries it.
    let named = api
        .call(
            Method::PUT,
            &format!("/providers/{id}"),
            Some(&key),
            Some(json!({ "config": { "host": "127.0.0.1", "port": upstream.port, "security": "none", "from_name": "Alpha Billing" } })),
        )
        .await;
    assert_eq!(named.status, StatusCode::OK, "{}", named.text);
    assert_eq!(named.body["config"]["password"], "********", "kept");
    let path = format!("/providers/{id}/test");
    for (bad, field) in [
        (
            json!({ "from": "not an address", "to": "check@dest.test" }),
            "from",
        ),
        (json!({ "from": "billing@alpha.test", "to": "" }), "to"),
    ] {
        let refused = api
            .call(Method::POST, &path, Some(&member), Some(bad))
            .await;
        assert_error(
            &refused,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert!(refused.text.contains(field), "{}", refused.text);
    }
    let test = api
        .call(
            Method::POST,
            &path,
            Some(&member),
            Some(json!({ "from": "billing@alpha.test", "to": "check@dest.test" })),
        )
        .await;
    assert_eq!(test.body["ok"], true, "{}", test.text);
    let last = test.body["steps"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .to_string();
    assert!(
        last.contains("test message to check@dest.test: accepted: 250"),
        "{last}"
    );
    let received = upstream.wait_for(1, std::time::Duration::from_secs(10));
    let text = received[0].text();
    assert_eq!(received[0].rcpt_tos(), ["check@dest.test"]);
    assert!(
        text.contains("\r\nFrom: Alpha Billing <billing@alpha.test>\r\n")
            || text.starts_with("From: Alpha Billing <billing@alpha.test>\r\n"),
        "{text}"
    );
    assert!(
        text.contains("Subject: Sluice test message (local relay)"),
        "{text}"
    );
    let closed = sluice_testkit::free_port();
    let broken = api
        .call(
            Method::POST,
            "/providers",
            Some(&key),
            Some(json!({ "name": "dead", "provider_type": "smtp", "config": { "host": "127.0.0.1", "port": closed, "security": "none", "timeout_secs": 2 } })),
        )
        .await;
    let broken_id = broken.body["id"].as_i64().unwrap();
    let test = api
        .call(
            Method::POST,
            &format!("/providers/{broken_id}/test"),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(test.body["ok"], false, "{}", test.text);
    assert!(test.text.contains("failed"), "{}", test.text);
    let sendgrid = api
        .call(Method::POST, "/providers", Some(&key), Some(json!({ "name": "sg", "provider_type": "sendgrid", "config": { "api_key": "SG.secret" } })))
        .await;
    let sg = sendgrid.body["id"].as_i64().unwrap();
    assert_eq!(sendgrid.body["config"]["api_key"], "********");
    assert_error(
        &api.call(
            Method::POST,
            &format!("/providers/{sg}/test"),
            Some(&member),
            None,
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "test_not_supported",
    );

    // Routing rules use providers of their own account only.
    let (b, b_key) = api.account(&admin, "beta", "beta.test").await;
    let _ = b;
    let foreign = api
        .call(
            Method::POST,
            "/routing-rules",
            Some(&b_key),
            Some(json!({ "name": "steal", "priority": 1, "conditions": {}, "provider_id": id })),
        )
        .await;
    assert_error(
        &foreign,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let bad_conditions = api
        .call(Method::POST, "/routing-rules", Some(&key), Some(json!({ "name": "r", "priority": 1, "conditions": { "header": { "name": "X", "regex": "(" } }, "provider_id": id })))
        .await;
    assert_error(
        &bad_conditions,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let rule = api
        .call(
            Method::POST,
            "/routing-rules",
            Some(&key),
            Some(json!({ "name": "gmail", "priority": 10, "conditions": { "recipient_domains": ["gmail.com"] }, "provider_id": id, "fallbacks": [sg] })),
        )
        .await;
    assert_eq!(rule.status, StatusCode::CREATED, "{}", rule.text);
    let rule_id = rule.body["id"].as_i64().unwrap();
    let listed = api
        .call(Method::GET, "/routing-rules", Some(&viewer), None)
        .await;
    assert_eq!(listed.body[0]["fallbacks"], json!([sg]), "{}", listed.text);
    let replaced = api
        .call(
            Method::PUT,
            &format!("/routing-rules/{rule_id}"),
            Some(&key),
            Some(json!({ "name": "gmail", "priority": 3, "conditions": { "source": "api" }, "provider_id": sg, "enabled": false })),
        )
        .await;
    assert_eq!(
        (
            replaced.body["priority"].as_i64(),
            replaced.body["enabled"].as_bool()
        ),
        (Some(3), Some(false)),
        "{}",
        replaced.text
    );
    // A provider in use cannot go; the rule can.
    assert_error(
        &api.call(
            Method::DELETE,
            &format!("/providers/{sg}"),
            Some(&key),
            None,
        )
        .await,
        StatusCode::CONFLICT,
        "conflict",
    );
    assert_eq!(
        api.call(
            Method::DELETE,
            &format!("/routing-rules/{rule_id}"),
            Some(&key),
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.call(
            Method::DELETE,
            &format!("/providers/{sg}"),
            Some(&key),
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );

    // No secret reaches a response or the audit log.
    let mut texts = String::new();
    texts.push_str(
        &api.call(Method::GET, "/providers", Some(&key), None)
            .await
            .text,
    );
    texts.push_str(
        &api.call(Method::GET, "/audit-logs", Some(&key), None)
            .await
            .text,
    );
    for secret in ["relay-secret-9", "SG.secret"] {
        assert!(!texts.contains(secret), "{secret} leaked");
    }
}

/// Generated from the OpenAPI document, so a new route cannot skip it: without credentials
/// every route but login/refresh/logout answers 401; every route that takes a body refuses
/// a body of the wrong shape with 422, in the JSON error format.
#[tokio::test]
async fn every_route_refuses_missing_credentials_and_bodies_of_the_wrong_shape() {
    let api = Api::new().await;
    let admin = api.admin_token().await;
    let mut checked = 0;
    for (path, item) in api.openapi.paths.paths.iter() {
        let concrete = path.replace("{id}", "1").replace("{provider_id}", "1");
        // Feedback from the services is signed, not bearer-authenticated: without a
        // signature it is refused before its body is read.
        let signed = path.starts_with("/webhooks/");
        let operations = [
            (Method::GET, item.get.as_ref()),
            (Method::POST, item.post.as_ref()),
            (Method::PUT, item.put.as_ref()),
            (Method::DELETE, item.delete.as_ref()),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation else { continue };
            let public = path.starts_with("/auth/");
            if !public {
                let reply = api.call(method.clone(), &concrete, None, None).await;
                assert_error(&reply, StatusCode::UNAUTHORIZED, "unauthorized");
            }
            if operation.request_body.is_some() && !signed {
                let token = (!public).then_some(admin.as_str());
                let reply = api
                    .call(
                        method.clone(),
                        &concrete,
                        token,
                        Some(json!("not an object")),
                    )
                    .await;
                assert_error(
                    &reply,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation_failed",
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} operations");
}

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
    assert_eq!(stored.source, "api");
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
    let raw = String::from_utf8_lossy(&stored.body).into_owned();
    assert!(
        !raw.to_ascii_lowercase().contains("hidden@dest.test"),
        "Bcc must not be in the headers"
    );
    let parsed = mail_parser::MessageParser::default()
        .parse(&stored.body)
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
        .parse(&stored.body)
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
        .parse(&message.body)
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
        .parse(&message.body)
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

/// Sandbox mode: owners (an API key too) and admins turn it on; only a logged-in owner or
/// an admin turns it off; members and other tenants cannot touch it; every change is an
/// audit entry naming who made it.
#[tokio::test]
async fn sandbox_mode_goes_on_by_any_owner_and_off_only_by_a_login() {
    let api = Api::new().await;
    let admin = api.admin_token().await;
    let (account, key) = api.account(&admin, "acme", "acme.test").await;
    let (_, other_key) = api.account(&admin, "other", "other.test").await;
    let (owner_id, owner) = api.user(&admin, account, "owner@acme.test", "owner").await;
    let (_, member) = api
        .user(&admin, account, "member@acme.test", "member")
        .await;
    let path = format!("/accounts/{account}");
    let set = |token: String, on: bool| {
        let api = &api;
        let path = path.clone();
        async move {
            api.call(
                Method::PUT,
                &path,
                Some(&token),
                Some(json!({ "sandbox": on })),
            )
            .await
        }
    };
    let got = api.call(Method::GET, &path, Some(&key), None).await;
    assert_eq!(got.body["sandbox"], false, "{}", got.text);

    // On: the account's API key may.
    let on = set(key.clone(), true).await;
    assert_eq!(
        (on.status, &on.body["sandbox"]),
        (StatusCode::OK, &json!(true))
    );
    // Off: not by the API key, a member, or another tenant (who sees no such account).
    let by_key = set(key.clone(), false).await;
    assert_error(&by_key, StatusCode::FORBIDDEN, "forbidden");
    assert!(by_key.text.contains("API key"), "{}", by_key.text);
    assert_error(
        &set(member.clone(), false).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_error(
        &set(other_key.clone(), false).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let got = api.call(Method::GET, &path, Some(&key), None).await;
    assert_eq!(got.body["sandbox"], true, "{}", got.text);
    // A logged-in owner may; saying false again changes (and audits) nothing.
    let off = set(owner.clone(), false).await;
    assert_eq!(
        (off.status, &off.body["sandbox"]),
        (StatusCode::OK, &json!(false))
    );
    assert_eq!(set(key.clone(), false).await.status, StatusCode::OK);
    // Admins both ways.
    assert_eq!(set(admin.clone(), true).await.body["sandbox"], true);
    assert_eq!(set(admin.clone(), false).await.body["sandbox"], false);
    let bad = api
        .call(
            Method::PUT,
            &path,
            Some(&admin),
            Some(json!({ "sandbox": "yes" })),
        )
        .await;
    assert_eq!(bad.status.as_u16() / 100, 4, "{}", bad.text);
    assert!(bad.body["error"]["code"].is_string(), "{}", bad.text);

    let audit = api
        .call(
            Method::GET,
            &format!("/audit-logs?account_id={account}"),
            Some(&admin),
            None,
        )
        .await;
    let mut changes: Vec<(String, String)> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("sandbox_"))
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["actor"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    changes.reverse();
    let key_actor = changes[0].1.clone();
    assert!(key_actor.starts_with("api_key:"), "{changes:?}");
    let admin_actor = changes[2].1.clone();
    assert!(admin_actor.starts_with("user:"), "{changes:?}");
    assert_eq!(
        changes,
        vec![
            ("sandbox_on".to_string(), key_actor),
            ("sandbox_off".to_string(), format!("user:{owner_id}")),
            ("sandbox_on".to_string(), admin_actor.clone()),
            ("sandbox_off".to_string(), admin_actor),
        ]
    );

    // Admins may create an account in sandbox mode.
    let created = api
        .call(
            Method::POST,
            "/accounts",
            Some(&admin),
            Some(
                json!({ "name": "lab", "email": "lab@lab.test", "password": ACCOUNT_PASSWORD,
                "allowed_domains": ["lab.test"], "sandbox": true }),
            ),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["account"]["sandbox"], true);
}
