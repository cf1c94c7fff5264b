//! API tests: Providers (secrets sealed and masked, Test SMTP for real) and the live SMTP sessions admins list and close.

mod common;
mod harness;

use axum::http::Method;
use axum::http::StatusCode;
use serde_json::Value;
use serde_json::json;

use harness::{Api, assert_error, connection_of};

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
