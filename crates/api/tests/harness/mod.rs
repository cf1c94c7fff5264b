//! The test harness of the API tests: an API on a fresh SQLite with the real accept path,
//! requests as a client makes them, and the checks they share.
#![allow(dead_code)]

use crate::common::acceptor;
use crate::common::loopback_open;
use axum::Router;
use axum::body::Body;
use axum::http::Method;
use axum::http::Request;
use axum::http::StatusCode;
use serde_json::Value;
use serde_json::json;
use sluice_api::ApiState;
use sluice_api::tokens::Tokens;
use sluice_core::LoginThrottle;
use sluice_store::NewUser;
use sluice_store::Store;
use std::sync::Arc;
use std::sync::Mutex;
use tower::ServiceExt;

pub const ADMIN_PASSWORD: &str = "admin-password-1";
pub const ACCOUNT_PASSWORD: &str = "smtp-password-A1";

pub struct WorkerSubmitter(pub Arc<sluice_accept::Acceptor>);

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
pub struct FakeConnections {
    pub list: Mutex<Vec<sluice_core::ConnectionInfo>>,
    pub closed: Mutex<Vec<String>>,
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

pub fn connection_of(account: i64, id: &str) -> sluice_core::ConnectionInfo {
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

pub struct Api {
    pub app: Router,
    pub connections: Arc<FakeConnections>,
    pub store: Arc<dyn Store>,
    pub openapi: utoipa::openapi::OpenApi,
    pub _dir: tempfile::TempDir,
}

pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub text: String,
    pub request_id: String,
    pub retry_after: Option<String>,
}

impl Api {
    /// The whole stored message, from its row or the spool.
    pub async fn whole(&self, body: &sluice_core::MessageBody) -> Vec<u8> {
        let storage = self.store.body_storage();
        sluice_core::body::read_whole(storage.as_deref(), body)
            .await
            .unwrap()
    }

    pub async fn new() -> Api {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("api.db").display());
        let connections = Arc::new(FakeConnections::default());
        // Bodies over 4 KiB go to a spool, as with `serve`.
        let options = sluice_store::OpenOptions {
            spool_dir: Some(dir.path().join("spool")),
            ..Default::default()
        };
        let store = sluice_store::open(&url, &options).await.unwrap();
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
            feedback: Arc::new(sluice_feedback::FeedbackState {
                max_age_secs: 600,
                certificates: sluice_feedback::verify::SnsCertificates::new(
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
            sync_lease_ms: 300_000,
            spamd: None,
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

    pub async fn call(
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

    pub async fn send(&self, request: Request<Body>) -> Reply {
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

    pub async fn login(&self, email: &str, password: &str) -> Value {
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

    pub async fn admin_token(&self) -> String {
        self.login("admin@sluice.test", ADMIN_PASSWORD).await["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Creates an account as admin; returns (account id, its first API key).
    pub async fn account(&self, admin: &str, name: &str, domain: &str) -> (i64, String) {
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
    pub async fn user(&self, admin: &str, account: i64, email: &str, role: &str) -> (i64, String) {
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

pub fn message_for(account: i64) -> sluice_store::NewMessage {
    sluice_store::NewMessage {
        account_id: account,
        source: sluice_core::Source::Smtp,
        envelope: sluice_core::Envelope {
            mail_from: "app@acme.test".into(),
            rcpt_to: vec!["r@dest.test".into()],
            smtputf8: false,
            eight_bit: false,
        },
        body: sluice_core::MessageBody::Inline(b"Subject: hi\r\n\r\nbody\r\n".to_vec()),
        lease: None,
        tags: Vec::new(),
        max_attempts: None,
        sandbox: false,
        idempotency: None,
    }
}

pub fn assert_error(reply: &Reply, status: StatusCode, code: &str) {
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
