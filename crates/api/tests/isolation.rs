//! API tests: What holds across every route: tenants see only their own ids, every route refuses missing credentials and wrong bodies, secrets never leave, the per-key rate limit.

mod common;
mod harness;

use axum::body::Body;
use axum::http::Method;
use axum::http::Request;
use axum::http::StatusCode;
use serde_json::json;
use std::sync::Arc;
use std::sync::Mutex;
use tower::ServiceExt;

use harness::{ACCOUNT_PASSWORD, ADMIN_PASSWORD, Api, assert_error, connection_of};

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
        body: sluice_core::MessageBody::Inline(
            b"Subject: a\r\n\r\nsecret body of alpha\r\n".to_vec(),
        ),
        lease: None,
        tags: Vec::new(),
        max_attempts: None,
        sandbox: false,
        idempotency: None,
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
        let concrete = path.replace("{id}", id).replace("{n}", "0");
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
                } else if path.ends_with("/feedback") {
                    json!({ "kind": "bounced" })
                } else if path.ends_with("/tags") {
                    json!({ "tags": ["x"] })
                } else if path.starts_with("/api-keys/") || path.starts_with("/smtp-credentials/") {
                    json!({ "sandbox": true })
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
    // The panel's inbox stream polls as its user, marked in-process: counted in a bucket of
    // their own, so they go on now, and are limited in turn. Nothing a client sends can mark
    // a request so.
    let poll = || {
        let mut request = Request::builder()
            .uri("/api/v1/messages?status=captured")
            .header("authorization", format!("Bearer {key}"))
            .body(Body::empty())
            .unwrap();
        request
            .extensions_mut()
            .insert(sluice_api::principal::InboxPoll);
        api.app.clone().oneshot(request)
    };
    for n in 0..100 {
        let response = poll().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "poll {n}");
    }
    let response = poll().await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let still = api.call(Method::GET, "/api-keys", Some(&key), None).await;
    assert_error(&still, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
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
