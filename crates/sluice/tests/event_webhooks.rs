//! Tenant event webhooks end to end: an endpoint subscribed to `delivered` gets the event
//! POSTed, signed with its secret; a 500 is retried with backoff; every attempt is listed.

mod common;

use std::time::Duration;

use common::{BIN, Db};
use serde_json::{Value, json};
use sluice_testkit::esp::PyServer;
use sluice_testkit::{Sluice, http_json, wait_until};

const SECRET: &str = "endpoint-secret-0123456789";

#[test]
fn subscribed_events_are_posted_signed_and_retried() {
    let receiver = PyServer::start(
        "hook_receiver.py",
        &["--secret", SECRET, "--fail-first", "1"],
    );
    // Loopback stays closed in [egress]; the deprecated alias opens it for webhooks.
    let sluice = Sluice::builder(BIN)
        .egress_allow(&[])
        .env("SLUICE_EVENT_WEBHOOKS__ALLOW_PRIVATE_TARGETS", "true")
        .env("SLUICE_EVENT_WEBHOOKS__POLL_INTERVAL_MS", "100")
        .env("SLUICE_EVENT_WEBHOOKS__RETRY__INITIAL_DELAY_SECS", "0.5")
        .start();
    let db = Db::open(&sluice);
    let api =
        |method: &str, path: &str, body: Option<Value>| common::api(&sluice, method, path, body);
    let (status, refused) = api(
        "POST",
        "/webhook-endpoints",
        Some(json!({ "url": "ftp://x.test/", "events": ["delivered"] })),
    );
    assert_eq!(status, 422, "{refused}");
    let (status, endpoint) = api(
        "POST",
        "/webhook-endpoints",
        Some(
            json!({ "url": format!("http://127.0.0.1:{}/hook", receiver.port),
                     "events": ["delivered", "bounced_hard"], "secret": SECRET }),
        ),
    );
    assert_eq!(status, 201, "{endpoint}");
    assert_eq!(endpoint["secret"], SECRET, "shown once, on create");
    let endpoint_id = endpoint["id"].as_i64().unwrap();
    let (_, shown) = api("GET", &format!("/webhook-endpoints/{endpoint_id}"), None);
    assert!(shown.get("secret").is_none(), "never shown again");

    let (status, sent) = api(
        "POST",
        "/send",
        Some(
            json!({ "from": "app@example.com", "to": "ann@dest.test", "subject": "hi",
                     "text": "hello", "tags": ["welcome"] }),
        ),
    );
    assert_eq!(status, 202, "{sent}");
    let message_id = sent["id"].as_i64().unwrap();
    db.wait_status(message_id, "delivered", 20);

    let posts = wait_until(Duration::from_secs(20), || {
        let (_, log) = http_json(receiver.port, "GET", "/_log", None, None);
        let posts = log.as_array().cloned().unwrap_or_default();
        (posts.len() >= 2).then_some(posts)
    })
    .expect("the event was posted, then retried after the 500");
    assert_eq!(posts.len(), 2, "{posts:?}");
    for post in &posts {
        assert_eq!(post["signature_ok"], true, "{post}");
        assert_eq!(post["content_type"], "application/json");
        assert_eq!(
            post["delivery_id"], posts[0]["delivery_id"],
            "the same delivery retried"
        );
        let body = &post["body"];
        assert_eq!(body["type"], "delivered");
        assert_eq!(body["data"]["message_id"], message_id);
        assert_eq!(body["data"]["to"], json!(["ann@dest.test"]));
        assert_eq!(body["data"]["tags"], json!(["welcome"]));
    }
    assert_eq!(
        (posts[0]["status"].as_i64(), posts[1]["status"].as_i64()),
        (Some(500), Some(204))
    );

    let deliveries = wait_until(Duration::from_secs(10), || {
        let (_, list) = api(
            "GET",
            &format!("/webhook-endpoints/{endpoint_id}/deliveries"),
            None,
        );
        (list[0]["status"] == "delivered").then_some(list)
    })
    .expect("the delivery is recorded as delivered");
    assert_eq!(
        deliveries.as_array().unwrap().len(),
        1,
        "only the subscribed event"
    );
    let only = &deliveries[0];
    assert_eq!(only["attempts"], 2);
    let codes: Vec<_> = only["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].as_i64())
        .collect();
    assert_eq!(codes, vec![Some(500), Some(204)]);
}
