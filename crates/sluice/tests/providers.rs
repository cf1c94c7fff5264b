//! Email-service providers end to end: the real binary delivers through SendGrid, Mailgun,
//! SES and Graph stand-ins that check each request as the service does; routing rules
//! split one message's recipients and fail over; every answer class is seen through.

mod common;

use common::{BIN, Db, api, smtplib_send};
use serde_json::{Value, json};
use std::time::Duration;

use sluice_testkit::esp::EspFake;
use sluice_testkit::{Sluice, wait_until};

fn create_provider(sluice: &Sluice, name: &str, kind: &str, settings: Value) -> i64 {
    let (status, body) = api(
        sluice,
        "POST",
        "/providers",
        Some(json!({ "name": name, "provider_type": kind, "config": settings })),
    );
    assert_eq!(status, 201, "{body}");
    body["id"].as_i64().unwrap()
}

fn create_rule(
    sluice: &Sluice,
    priority: i64,
    conditions: Value,
    provider: i64,
    fallbacks: &[i64],
) {
    let (status, body) = api(
        sluice,
        "POST",
        "/routing-rules",
        Some(
            json!({ "name": format!("rule {priority}"), "priority": priority,
                     "conditions": conditions, "provider_id": provider, "fallbacks": fallbacks }),
        ),
    );
    assert_eq!(status, 201, "{body}");
}

/// Sends through the HTTP API; the message id.
fn send(sluice: &Sluice, to: &[&str], subject: &str, tags: &[&str]) -> i64 {
    let (status, body) = api(
        sluice,
        "POST",
        "/send",
        Some(
            json!({ "from": "App <app@example.com>", "to": to, "subject": subject,
                     "text": "plain body", "html": "<p>html body</p>", "tags": tags }),
        ),
    );
    assert_eq!(status, 202, "{body}");
    body["id"].as_i64().unwrap()
}

fn attempts(sluice: &Sluice, id: i64) -> Vec<Value> {
    let (status, body) = api(
        sluice,
        "GET",
        &format!("/delivery-logs?message_id={id}"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    body.as_array().cloned().unwrap()
}

fn sendgrid(fake: &EspFake) -> Value {
    json!({ "api_key": "SG.test-key", "base_url": fake.url(), "timeout_secs": 2 })
}

fn mailgun(fake: &EspFake) -> Value {
    json!({ "domain": "mg.example.test", "api_key": "mg-test-key", "base_url": fake.url(), "timeout_secs": 2 })
}

fn ses(fake: &EspFake, secret: &str) -> Value {
    json!({ "region": "eu-west-1", "access_key_id": "AKIDEXAMPLE", "secret_access_key": secret,
            "endpoint": fake.url(), "timeout_secs": 2 })
}

fn msgraph(fake: &EspFake, secret: &str) -> Value {
    json!({ "tenant_id": "tenant-1", "client_id": "client-1", "client_secret": secret,
            "sender": "sender@example.test", "authority_url": fake.url(), "graph_url": fake.url(),
            "timeout_secs": 2 })
}

#[test]
fn each_service_accepts_what_sluice_sends_and_its_id_is_kept() {
    let fake = EspFake::start(&[]);
    let sluice = Sluice::builder(BIN).start();
    let db = Db::open(&sluice);
    let providers = [
        (
            "sendgrid",
            create_provider(&sluice, "sg", "sendgrid", sendgrid(&fake)),
        ),
        (
            "mailgun",
            create_provider(&sluice, "mg", "mailgun", mailgun(&fake)),
        ),
        (
            "ses",
            create_provider(
                &sluice,
                "ses",
                "ses",
                ses(&fake, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            ),
        ),
        (
            "graph",
            create_provider(&sluice, "graph", "msgraph", msgraph(&fake, "graph-secret")),
        ),
    ];
    for (n, (service, id)) in providers.iter().enumerate() {
        create_rule(&sluice, n as i64 + 1, json!({ "tag": service }), *id, &[]);
    }
    for (service, provider_id) in providers {
        let to = format!("{service}-rcpt@dest.test");
        let id = send(
            &sluice,
            &[&to, "copy@dest.test"],
            &format!("via {service}"),
            &[service],
        );
        db.wait_status(id, "delivered", 20);
        let requests = fake.requests(service);
        assert_eq!(requests.len(), 1, "{service}: {requests:?}");
        let request = &requests[0];
        assert_eq!(request["problems"], json!([]), "{service}");
        let mut rcpts: Vec<String> = request["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect();
        rcpts.sort();
        assert_eq!(
            rcpts,
            vec!["copy@dest.test".to_string(), to.clone()],
            "{service}"
        );
        if service != "sendgrid" {
            assert!(
                request["mime"].as_str().unwrap().contains("Subject: via"),
                "{service} got the MIME message"
            );
        }
        let logged = attempts(&sluice, id);
        assert_eq!(logged.len(), 1, "{logged:?}");
        assert_eq!(logged[0]["provider_id"], provider_id);
        if service != "graph" {
            assert_eq!(
                logged[0]["provider_message_id"], request["message_id"],
                "{service}"
            );
        }
    }
    let sent = &fake.requests("sendgrid")[0]["json"];
    assert_eq!(sent["subject"], "via sendgrid");
    assert_eq!(
        sent["content"][0],
        json!({ "type": "text/plain", "value": "plain body" })
    );
    // One Graph token served the message.
    assert_eq!(fake.requests("graph-token").len(), 1);
}

/// The same answers from each service mean the same to Sluice: 400 fails, 401 fails with
/// an event, 429 waits as long as Retry-After says, 500 and a hang are retried.
fn answers_are_classified(service: &str) {
    let fake = EspFake::start(&[]);
    let sluice = Sluice::builder(BIN).start();
    let db = Db::open(&sluice);
    let (kind, settings) = match service {
        "sendgrid" => ("sendgrid", sendgrid(&fake)),
        "mailgun" => ("mailgun", mailgun(&fake)),
        "ses" => (
            "ses",
            ses(&fake, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        ),
        _ => ("msgraph", msgraph(&fake, "graph-secret")),
    };
    let provider = create_provider(&sluice, service, kind, settings);
    create_rule(&sluice, 1, json!({}), provider, &[]);

    // 400: refused for good.
    fake.script(service, &["400"]);
    let id = send(&sluice, &["a@dest.test"], "bad request", &[]);
    let failed = db.wait_status(id, "failed", 20);
    assert!(failed.last_error.unwrap().contains("400"), "{service}");
    assert_eq!(failed.attempts, 1);

    // 401: refused, and the event says the credentials are wrong. (Graph first fetches a
    // new token and tries once more, so it takes two.)
    let unauthorized: &[&str] = if service == "graph" {
        &["401", "401"]
    } else {
        &["401"]
    };
    fake.script(service, unauthorized);
    let id = send(&sluice, &["a@dest.test"], "bad key", &[]);
    db.wait_status(id, "failed", 20);
    assert!(
        db.events(id).contains(&"provider_auth_failed".to_string()),
        "{service}"
    );

    // 429 with Retry-After: 2, then accepted: retried no sooner than asked.
    fake.script(service, &["429:2"]);
    let id = send(&sluice, &["a@dest.test"], "slow down", &[]);
    db.wait_status(id, "delivered", 20);
    let tries = db.attempts(id);
    assert_eq!(tries.len(), 2, "{service}: {tries:?}");
    assert_eq!(tries[0].code, Some(429));
    let waited = tries[1].started_at - tries[0].finished_at;
    assert!(
        waited >= 1_900,
        "{service}: waited {waited} ms, Retry-After said 2 s"
    );

    // 500 and a hang (the 2 s timeout): transient, then delivered.
    fake.script(service, &["500", "hang"]);
    let id = send(&sluice, &["a@dest.test"], "flaky", &[]);
    db.wait_status(id, "delivered", 30);
    let tries = db.attempts(id);
    assert_eq!(tries.len(), 3, "{service}: {tries:?}");
    assert_eq!(tries[0].code, Some(500));
    assert_eq!(
        (tries[1].code, tries[1].response.as_str()),
        (None, "timed out waiting for the service")
    );
    assert_eq!(tries[2].verdict.as_str(), "delivered");
}

#[test]
fn sendgrid_answers_are_classified() {
    answers_are_classified("sendgrid");
}

#[test]
fn mailgun_answers_are_classified() {
    answers_are_classified("mailgun");
}

#[test]
fn ses_answers_are_classified() {
    answers_are_classified("ses");
}

#[test]
fn graph_answers_are_classified() {
    answers_are_classified("graph");
}

#[test]
fn bad_credentials_are_caught_by_the_services_own_checks() {
    let fake = EspFake::start(&[]);
    let sluice = Sluice::builder(BIN).start();
    let db = Db::open(&sluice);
    // A wrong SES secret makes a signature the independent SigV4 check refuses.
    let bad_ses = create_provider(&sluice, "ses", "ses", ses(&fake, "not-the-secret"));
    create_rule(&sluice, 1, json!({ "tag": "ses" }), bad_ses, &[]);
    let id = send(&sluice, &["a@dest.test"], "ses", &["ses"]);
    db.wait_status(id, "failed", 20);
    let refused = &fake.requests("ses")[0];
    assert_eq!(refused["status"], 403);
    assert!(
        refused["problems"][0]
            .as_str()
            .unwrap()
            .contains("signature")
    );
    assert!(db.events(id).contains(&"provider_auth_failed".to_string()));

    // A wrong Graph client secret: the token is refused, the message fails, the event says why.
    let bad_graph = create_provider(&sluice, "graph", "msgraph", msgraph(&fake, "wrong"));
    create_rule(&sluice, 2, json!({ "tag": "graph" }), bad_graph, &[]);
    let id = send(&sluice, &["a@dest.test"], "graph", &["graph"]);
    db.wait_status(id, "failed", 20);
    assert!(db.events(id).contains(&"provider_auth_failed".to_string()));
    assert!(fake.requests("graph").is_empty(), "no send without a token");
}

#[test]
fn graph_token_is_cached_and_fetched_again_once_on_401() {
    let fake = EspFake::start(&[]);
    let sluice = Sluice::builder(BIN).start();
    let db = Db::open(&sluice);
    let graph = create_provider(&sluice, "graph", "msgraph", msgraph(&fake, "graph-secret"));
    create_rule(&sluice, 1, json!({}), graph, &[]);
    for n in 0..2 {
        let id = send(&sluice, &["a@dest.test"], &format!("cached {n}"), &[]);
        db.wait_status(id, "delivered", 20);
    }
    assert_eq!(
        fake.requests("graph-token").len(),
        1,
        "the token was reused"
    );
    // Graph forgets the token: the next send gets 401, fetches a new one and succeeds.
    fake.script("graph", &["revoke-tokens"]);
    let id = send(&sluice, &["a@dest.test"], "refreshed", &[]);
    db.wait_status(id, "delivered", 20);
    assert_eq!(db.attempts(id).len(), 1, "one attempt, refreshed inside it");
    assert_eq!(fake.requests("graph-token").len(), 2);
    let statuses: Vec<i64> = fake
        .requests("graph")
        .iter()
        .map(|r| r["status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, vec![202, 202, 401, 202]);
}

/// A recipient whose local part looks like an RFC 2047 encoded word (valid, found by
/// fuzzing `mime_convert`) is refused for Graph, which reads recipients from the headers,
/// where a lenient parser reads it as another address; the other recipient is sent to.
#[test]
fn graph_refuses_a_recipient_no_header_carries_safely() {
    let fake = EspFake::start(&[]);
    let sluice = Sluice::builder(BIN).start();
    let db = Db::open(&sluice);
    let graph = create_provider(&sluice, "graph", "msgraph", msgraph(&fake, "graph-secret"));
    create_rule(&sluice, 1, json!({}), graph, &[]);
    let odd = "=?x?q?J=C?=B=t@dest.test";
    let id = send(&sluice, &["a@dest.test", odd], "odd recipient", &[]);
    let sent = wait_until(Duration::from_secs(20), || {
        let requests = fake.requests("graph");
        (!requests.is_empty()).then_some(requests)
    })
    .expect("Graph was called");
    assert_eq!(sent[0]["recipients"], json!(["a@dest.test"]), "{}", sent[0]);
    assert!(
        !sent[0]["mime"]
            .as_str()
            .unwrap_or_default()
            .contains("=?x?q?J")
    );
    // Settled: the odd address refused for good, with why; nothing left to try.
    let settled = wait_until(Duration::from_secs(20), || {
        let m = db.message(id);
        (!["queued", "sending", "deferred"].contains(&m.status.to_string().as_str())).then_some(m)
    })
    .expect("the message settles");
    assert!(settled.pending_rcpt.is_empty(), "{settled:?}");
    assert!(
        settled
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("encoded word")),
        "{settled:?}"
    );
    assert_eq!(fake.requests("graph").len(), 1, "no second call");
}

#[test]
fn rules_split_recipients_across_services_and_fail_over() {
    let first = EspFake::start(&[]);
    let second = EspFake::start(&[]);
    let sluice = Sluice::builder(BIN).start();
    let db = Db::open(&sluice);
    let sg = create_provider(&sluice, "sg", "sendgrid", sendgrid(&first));
    let mg = create_provider(&sluice, "mg", "mailgun", mailgun(&second));
    create_rule(
        &sluice,
        1,
        json!({ "recipient_domains": ["one.test"] }),
        sg,
        &[],
    );
    create_rule(
        &sluice,
        2,
        json!({ "recipient_domains": ["two.test"] }),
        mg,
        &[],
    );

    // Two recipients of one message, two rules, two services.
    let id = send(&sluice, &["ann@one.test", "bob@two.test"], "split", &[]);
    db.wait_status(id, "delivered", 20);
    let to_first = first.requests("sendgrid");
    let to_second = second.requests("mailgun");
    assert_eq!((to_first.len(), to_second.len()), (1, 1));
    assert_eq!(to_first[0]["recipients"], json!(["ann@one.test"]));
    assert_eq!(to_second[0]["recipients"], json!(["bob@two.test"]));
    assert_eq!(attempts(&sluice, id).len(), 2, "one row per provider call");

    // Failover: the first provider answers 503, the next one delivers at once.
    create_rule(&sluice, 0, json!({ "tag": "failover" }), sg, &[mg]);
    first.script("sendgrid", &["503"]);
    let id = send(&sluice, &["cy@three.test"], "failover", &["failover"]);
    let delivered = db.wait_status(id, "delivered", 20);
    assert_eq!(delivered.attempts, 1, "failed over within the attempt");
    let logged = attempts(&sluice, id);
    let summary: Vec<(&str, &str)> = logged
        .iter()
        .map(|a| {
            (
                a["provider"].as_str().unwrap(),
                a["verdict"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![("sendgrid", "transient"), ("mailgun", "delivered")]
    );
    assert!(db.events(id).contains(&"failover".to_string()));
    assert_eq!(
        second.requests("mailgun")[1]["recipients"],
        json!(["cy@three.test"])
    );
}

/// Routes messages with `X-Service: <service>` to a provider of that service at `fake`.
fn provider_per_service(sluice: &Sluice, fake: &EspFake) {
    let providers = [
        ("sendgrid", "sendgrid", sendgrid(fake)),
        ("mailgun", "mailgun", mailgun(fake)),
        (
            "ses",
            "ses",
            ses(fake, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        ),
        ("graph", "msgraph", msgraph(fake, "graph-secret")),
    ];
    for (n, (service, kind, settings)) in providers.into_iter().enumerate() {
        let id = create_provider(sluice, service, kind, settings);
        create_rule(
            sluice,
            n as i64 + 1,
            json!({ "header": { "name": "X-Service", "equals": service } }),
            id,
            &[],
        );
    }
}

fn recipients_of(request: &Value) -> Vec<String> {
    let mut all: Vec<String> = request["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_ascii_lowercase())
        .collect();
    all.sort();
    all
}

/// SES takes at most 50 recipients per call, Graph 500, SendGrid and Mailgun 1000: a
/// message to more goes in several calls, and each recipient keeps its own call's result.
#[test]
fn recipients_over_a_services_limit_go_in_several_calls() {
    let fake = EspFake::start(&[]);
    let sluice = Sluice::builder(BIN).smtp("max_recipients = 1100").start();
    let db = Db::open(&sluice);
    provider_per_service(&sluice, &fake);
    let send_many = |service: &str, count: usize| {
        let to: Vec<String> = (0..count).map(|n| format!("r{n}@dest.test")).collect();
        let (status, body) = api(
            &sluice,
            "POST",
            "/send",
            Some(
                json!({ "from": "app@example.com", "to": to, "subject": format!("many via {service}"),
                         "text": "hello", "headers": { "X-Service": service } }),
            ),
        );
        assert_eq!(status, 202, "{body}");
        (body["id"].as_i64().unwrap(), to)
    };

    // SES: 120 recipients in calls of 50, 50 and 20; the second call is refused, and only
    // its 50 recipients fail.
    fake.script("ses", &["", "400"]);
    let (id, all) = send_many("ses", 120);
    db.wait_status(id, "delivered", 30);
    let calls = fake.requests("ses");
    let sizes: Vec<usize> = calls.iter().map(|c| recipients_of(c).len()).collect();
    assert_eq!(sizes, vec![50, 50, 20], "{:?}", calls[0]["problems"]);
    assert!(calls.iter().all(|c| c["problems"] == json!([])));
    let failed = db
        .events(id)
        .iter()
        .filter(|e| *e == "recipient_failed")
        .count();
    assert_eq!(failed, 50);
    let mut sent: Vec<String> = calls.iter().flat_map(recipients_of).collect();
    sent.sort();
    let mut expected = all.clone();
    expected.sort();
    assert_eq!(sent, expected, "every recipient in exactly one call");

    // Graph 501, SendGrid and Mailgun 1001: two calls each, all delivered.
    for (service, limit) in [("graph", 500), ("sendgrid", 1000), ("mailgun", 1000)] {
        let (id, all) = send_many(service, limit + 1);
        db.wait_status(id, "delivered", 30);
        let calls = fake.requests(service);
        let sizes: Vec<usize> = calls.iter().map(|c| recipients_of(c).len()).collect();
        assert_eq!(
            sizes,
            vec![limit, 1],
            "{service}: {:?}",
            calls[0]["problems"]
        );
        assert!(
            calls.iter().all(|c| c["problems"] == json!([])),
            "{service}"
        );
        let mut sent: Vec<String> = calls.iter().flat_map(recipients_of).collect();
        sent.sort();
        let mut expected = all;
        expected.sort();
        assert_eq!(sent, expected, "{service}");
    }
}

/// A list mail: header `To: newsletter@example.com`, envelope recipients a subscriber and
/// a named Cc. Only the envelope recipients may receive it, through every service.
#[test]
fn only_envelope_recipients_receive_through_every_service() {
    let fake = EspFake::start(&[]);
    let sluice = Sluice::builder(BIN).start();
    let db = Db::open(&sluice);
    provider_per_service(&sluice, &fake);
    for service in ["sendgrid", "mailgun", "ses", "graph"] {
        let message = format!(
            "From: List <list@example.com>\r\nTo: Newsletter <newsletter@example.com>\r\n\
             Cc: Ann Example <ann@dest.test>\r\nSubject: issue 7 via {service}\r\n\
             X-Service: {service}\r\nMessage-ID: <issue7-{service}@example.com>\r\n\
             MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n"
        );
        let sent = smtplib_send(
            sluice.ports.plain,
            "plain",
            None,
            "list@example.com",
            &["subscriber@example.org", "ann@dest.test"],
            message.as_bytes(),
        );
        assert!(sent.ok, "{:?}", sent.message);
        db.wait_status(sent.message_id(), "delivered", 20);
        let requests = fake.requests(service);
        assert_eq!(requests.len(), 1, "{service}");
        assert_eq!(requests[0]["problems"], json!([]), "{service}");
        assert_eq!(
            recipients_of(&requests[0]),
            vec!["ann@dest.test", "subscriber@example.org"],
            "{service}: only the envelope recipients"
        );
    }
    // Graph reads recipients from the headers: Ann stays visible in Cc, the subscriber
    // is a Bcc, the list address is gone.
    let graph = &fake.requests("graph")[0];
    assert_eq!(
        graph["visible"],
        json!({ "To": [], "Cc": ["ann@dest.test"] })
    );
    // SendGrid gets the display name.
    let sendgrid = &fake.requests("sendgrid")[0]["json"]["personalizations"];
    assert!(
        sendgrid
            .to_string()
            .contains(r#"{"email":"ann@dest.test","name":"Ann Example"}"#),
        "{sendgrid}"
    );
}

/// `To: Ann Example <ann@…>`, Cc and Reply-To names reach SendGrid with their names.
#[test]
fn sendgrid_gets_display_names() {
    let fake = EspFake::start(&[]);
    let sluice = Sluice::builder(BIN).start();
    let db = Db::open(&sluice);
    let sg = create_provider(&sluice, "sg", "sendgrid", sendgrid(&fake));
    create_rule(&sluice, 1, json!({}), sg, &[]);
    let (status, body) = api(
        &sluice,
        "POST",
        "/send",
        Some(
            json!({ "from": "App <app@example.com>", "to": ["Ann Example <ann@dest.test>"],
                     "cc": ["Jürgen Cc <j@dest.test>"], "reply_to": "Help Desk <help@example.com>",
                     "subject": "names", "text": "hello" }),
        ),
    );
    assert_eq!(status, 202, "{body}");
    db.wait_status(body["id"].as_i64().unwrap(), "delivered", 20);
    let request = &fake.requests("sendgrid")[0];
    assert_eq!(request["problems"], json!([]));
    let sent = &request["json"];
    assert_eq!(
        sent["personalizations"],
        json!([{ "to": [{ "email": "ann@dest.test", "name": "Ann Example" }],
                 "cc": [{ "email": "j@dest.test", "name": "Jürgen Cc" }] }])
    );
    assert_eq!(
        sent["reply_to"],
        json!({ "email": "help@example.com", "name": "Help Desk" })
    );
    assert_eq!(
        sent["from"],
        json!({ "email": "app@example.com", "name": "App" })
    );
}
