//! Feedback from the email services end to end: messages go out through the fakes, then
//! signed SendGrid, Mailgun and SES/SNS events (signed in the test with test keys) come
//! back; bounces and complaints become events, statuses and suppressions; anything not
//! signed right is refused with 401 and changes nothing.

mod common;

use common::{BIN, Db, api};
use serde_json::{Value, json};
use sluice_testkit::esp::{EspFake, FeedbackSigner};
use sluice_testkit::{Sluice, http_raw};

const MAILGUN_SIGNING_KEY: &str = "mg-signing-key";

/// A provider of `kind` and a rule sending messages tagged `kind` to it; its id.
fn provider_for_tag(sluice: &Sluice, kind: &str, settings: Value, priority: i64) -> i64 {
    let (status, provider) = api(
        sluice,
        "POST",
        "/providers",
        Some(json!({ "name": kind, "provider_type": kind, "config": settings })),
    );
    assert_eq!(status, 201, "{provider}");
    let id = provider["id"].as_i64().unwrap();
    let (status, rule) = api(
        sluice,
        "POST",
        "/routing-rules",
        Some(
            json!({ "name": kind, "priority": priority, "conditions": { "tag": kind }, "provider_id": id }),
        ),
    );
    assert_eq!(status, 201, "{rule}");
    id
}

/// Sends one message through the provider tagged `kind`; (message id, provider message id).
fn delivered_via(sluice: &Sluice, db: &Db, kind: &str, to: &str) -> (i64, String) {
    let (status, sent) = api(
        sluice,
        "POST",
        "/send",
        Some(
            json!({ "from": "app@example.com", "to": to, "subject": kind, "text": "hi", "tags": [kind] }),
        ),
    );
    assert_eq!(status, 202, "{sent}");
    let id = sent["id"].as_i64().unwrap();
    db.wait_status(id, "delivered", 20);
    let (_, logs) = api(
        sluice,
        "GET",
        &format!("/delivery-logs?message_id={id}"),
        None,
    );
    let provider_message_id = logs[0]["provider_message_id"].as_str().unwrap().to_string();
    (id, provider_message_id)
}

fn suppressed(sluice: &Sluice) -> Vec<(String, String)> {
    let (status, list) = api(sluice, "GET", "/suppressions", None);
    assert_eq!(status, 200, "{list}");
    let items = list["items"]
        .as_array()
        .or(list.as_array())
        .cloned()
        .unwrap();
    let mut pairs: Vec<(String, String)> = items
        .iter()
        .map(|s| {
            (
                s["address"].as_str().unwrap().to_string(),
                s["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    pairs.sort();
    pairs
}

fn post(sluice: &Sluice, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Value) {
    http_raw(
        sluice.ports.http,
        "POST",
        &format!("/api/v1{path}"),
        headers,
        body,
    )
}

#[test]
fn signed_feedback_updates_messages_and_suppressions_and_bad_signatures_change_nothing() {
    let fake = EspFake::start(&[]);
    let signer = FeedbackSigner::start();
    let sluice = Sluice::builder(BIN)
        .env(
            "SLUICE_FEEDBACK__SNS_CERT_URL_PREFIXES",
            &format!("[\"{}\"]", signer.url()),
        )
        .start();
    let db = Db::open(&sluice);
    let sendgrid = provider_for_tag(
        &sluice,
        "sendgrid",
        json!({ "api_key": "SG.test-key", "base_url": fake.url(),
                "webhook_verification_key": signer.sendgrid_key() }),
        1,
    );
    let mailgun = provider_for_tag(
        &sluice,
        "mailgun",
        json!({ "domain": "mg.example.test", "api_key": "mg-test-key", "base_url": fake.url(),
                "webhook_signing_key": MAILGUN_SIGNING_KEY }),
        2,
    );
    let ses = provider_for_tag(
        &sluice,
        "ses",
        json!({ "region": "eu-west-1", "access_key_id": "AKIDEXAMPLE",
                "secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "endpoint": fake.url() }),
        3,
    );
    let (sg_message, sg_id) = delivered_via(&sluice, &db, "sendgrid", "gone@dest.test");
    let (mg_message, mg_id) = delivered_via(&sluice, &db, "mailgun", "angry@dest.test");
    let (ses_message, ses_id) = delivered_via(&sluice, &db, "ses", "nobody@dest.test");

    // SendGrid: a hard bounce, signed with the key the provider was given.
    let events = json!([
        { "email": "gone@dest.test", "event": "bounce", "type": "bounce",
          "reason": "550 5.1.1 no such user", "sg_message_id": format!("{sg_id}.filter0001.1.0"),
          "timestamp": 1 },
        { "email": "gone@dest.test", "event": "open", "sg_message_id": format!("{sg_id}.x") },
    ])
    .to_string();
    let (timestamp, signature) = signer.sign_sendgrid(events.as_bytes());
    let sg_path = format!("/webhooks/sendgrid/{sendgrid}");
    let headers = [
        ("X-Twilio-Email-Event-Webhook-Signature", signature.as_str()),
        ("X-Twilio-Email-Event-Webhook-Timestamp", timestamp.as_str()),
        ("Content-Type", "application/json"),
    ];
    // Tampered: one byte changed after signing.
    let tampered = events.replace("no such user", "no such userX");
    let (status, refused) = post(&sluice, &sg_path, &headers, tampered.as_bytes());
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (401, Some("unauthorized")),
        "{refused}"
    );
    assert_eq!(
        db.message(sg_message).status.as_str(),
        "delivered",
        "nothing changed"
    );
    assert!(suppressed(&sluice).is_empty(), "nothing changed");

    let (status, applied) = post(&sluice, &sg_path, &headers, events.as_bytes());
    assert_eq!(status, 200, "{applied}");
    assert_eq!(
        (applied["events"].as_u64(), applied["matched"].as_u64()),
        (Some(1), Some(1))
    );
    let bounced = db.message(sg_message);
    assert_eq!(bounced.status.as_str(), "bounced");
    assert!(bounced.last_error.unwrap().contains("550 5.1.1"));
    assert!(db.events(sg_message).contains(&"bounced_hard".to_string()));
    // The same request again is a replay: accepted, not applied twice.
    let (status, again) = post(&sluice, &sg_path, &headers, events.as_bytes());
    assert_eq!((status, again["duplicate"].as_bool()), (200, Some(true)));
    let hard = db
        .events(sg_message)
        .iter()
        .filter(|e| *e == "bounced_hard")
        .count();
    assert_eq!(hard, 1);

    // Mailgun: a complaint, HMAC-signed; a wrong key is refused.
    let complaint = json!({ "event": "complained", "recipient": "angry@dest.test",
        "message": { "headers": { "message-id": mg_id } } });
    let mg_path = format!("/webhooks/mailgun/{mailgun}");
    let forged = signer.sign_mailgun("not-the-key", &complaint).to_string();
    let (status, _) = post(&sluice, &mg_path, &[], forged.as_bytes());
    assert_eq!(status, 401);
    let signed = signer
        .sign_mailgun(MAILGUN_SIGNING_KEY, &complaint)
        .to_string();
    let (status, applied) = post(&sluice, &mg_path, &[], signed.as_bytes());
    assert_eq!(
        (status, applied["matched"].as_u64()),
        (200, Some(1)),
        "{applied}"
    );
    assert!(db.events(mg_message).contains(&"complained".to_string()));
    assert_eq!(
        db.message(mg_message).status.as_str(),
        "delivered",
        "a complaint is not a bounce"
    );

    // SES through SNS: the subscription is confirmed, then a permanent bounce arrives.
    let confirm_url = format!("{}confirm?Token=abc", signer.url());
    let subscription = signer.sign_sns(&json!({ "Type": "SubscriptionConfirmation",
        "MessageId": "sub-1", "Token": "abc", "TopicArn": "arn:aws:sns:eu-west-1:1:ses",
        "Message": "You have chosen to subscribe", "SubscribeURL": confirm_url,
        "Timestamp": "2026-11-22T10:00:00.000Z" }));
    let ses_path = format!("/webhooks/ses/{ses}");
    let (status, body) = post(&sluice, &ses_path, &[], subscription.to_string().as_bytes());
    assert_eq!(status, 200, "{body}");
    assert_eq!(signer.confirmations().len(), 1);

    let ses_bounce = json!({ "notificationType": "Bounce", "mail": { "messageId": ses_id },
        "bounce": { "bounceType": "Permanent", "bouncedRecipients": [
            { "emailAddress": "nobody@dest.test", "diagnosticCode": "smtp; 550 5.1.1 unknown" }] } });
    let notification = |version: &str| {
        json!({ "Type": "Notification", "MessageId": format!("n-{version}"),
            "TopicArn": "arn:aws:sns:eu-west-1:1:ses", "Message": ses_bounce.to_string(),
            "Timestamp": "2026-11-22T10:01:00.000Z", "SignatureVersion": version })
    };
    // A certificate from anywhere but the allowed place is not trusted.
    let mut elsewhere = notification("2");
    elsewhere["SigningCertURL"] = json!("https://evil.test/cert.pem");
    let elsewhere = signer.sign_sns(&elsewhere);
    let (status, _) = post(&sluice, &ses_path, &[], elsewhere.to_string().as_bytes());
    assert_eq!(status, 401);
    let mut altered = signer.sign_sns(&notification("1"));
    altered["Message"] = json!(ses_bounce.to_string().replace("Permanent", "Transient"));
    let (status, _) = post(&sluice, &ses_path, &[], altered.to_string().as_bytes());
    assert_eq!(status, 401);
    assert_eq!(
        db.message(ses_message).status.as_str(),
        "delivered",
        "nothing changed"
    );
    // SignatureVersion 1 (SHA1withRSA) and 2 (SHA256withRSA) both verify.
    for version in ["1", "2"] {
        let signed = signer.sign_sns(&notification(version));
        let (status, applied) = post(&sluice, &ses_path, &[], signed.to_string().as_bytes());
        assert_eq!(
            (status, applied["matched"].as_u64()),
            (200, Some(1)),
            "{applied}"
        );
    }
    assert_eq!(db.message(ses_message).status.as_str(), "bounced");

    // Hard bounces and complaints are suppressed, with their source...
    assert_eq!(
        suppressed(&sluice),
        vec![
            ("angry@dest.test".to_string(), "complaint".to_string()),
            ("gone@dest.test".to_string(), "hard_bounce".to_string()),
            ("nobody@dest.test".to_string(), "hard_bounce".to_string()),
        ]
    );
    // ...and sending to them again is refused at accept, naming the address.
    let (status, refused) = api(
        &sluice,
        "POST",
        "/send",
        Some(
            json!({ "from": "app@example.com", "to": "gone@dest.test", "subject": "again", "text": "x" }),
        ),
    );
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gone@dest.test")
    );

    // Feedback for a provider that does not exist: 404.
    let (status, _) = post(
        &sluice,
        "/webhooks/sendgrid/9999",
        &headers,
        events.as_bytes(),
    );
    assert_eq!(status, 404);
}
