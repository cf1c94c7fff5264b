//! Network faults on the real binary: upstream SMTP servers that reset mid-DATA or close
//! after MAIL, HTTP services that reset before or during their answer or answer a success
//! with an unreadable body, and a proxy that cuts connections at random between Sluice and
//! its upstream, and between Sluice and PostgreSQL. Nothing acknowledged is lost; a reset is
//! never taken for a delivery.
//!
//! What a 2xx with an unreadable body means: the status line is the service's answer, so
//! the message is delivered (the service accepted it; sending again would duplicate it);
//! only the id the body would have carried is missing. A connection that ends before any
//! status line is transient and retried; since the service may have taken the message
//! before it went away, delivery is at least once there, as everywhere an answer is lost.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{BIN, Db, api};
use serde_json::{Value, json};
use sluice_core::message::Verdict;
use sluice_testkit::esp::EspFake;
use sluice_testkit::postgres::TempDatabase;
use sluice_testkit::{Chaos, ChaosProxy, Sluice, SluiceBuilder, Upstream, accepted_seqs};

/// Retries a second after a failure, at most two seconds apart, for a long while.
fn quick_retries(builder: SluiceBuilder) -> SluiceBuilder {
    builder
        .env("SLUICE_DELIVERY__RETRY__INITIAL_DELAY_SECS", "1.0")
        .env("SLUICE_DELIVERY__RETRY__MAX_DELAY_SECS", "2.0")
        .env("SLUICE_DELIVERY__RETRY__JITTER", "0.0")
        .env("SLUICE_DELIVERY__RETRY__MAX_ATTEMPTS", "200")
}

fn plain_provider(port: u16) -> String {
    format!(
        "type = \"smtp\"\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\ntimeout_secs = 5"
    )
}

fn send(sluice: &Sluice, to: &str, subject: &str) -> i64 {
    let (status, body) = api(
        sluice,
        "POST",
        "/send",
        Some(
            json!({ "from": "app@example.com", "to": [to], "subject": subject,
                     "text": "a body of a few lines\nsecond line\nthird line\n" }),
        ),
    );
    assert_eq!(status, 202, "{body}");
    body["id"].as_i64().unwrap()
}

fn verdicts(db: &Db, id: i64) -> Vec<Verdict> {
    db.attempts(id).iter().map(|a| a.verdict).collect()
}

/// An upstream misbehaving on its first 2 transactions (`fault`): each message is retried
/// and delivered once the upstream behaves, exactly once, and no failed attempt is a
/// delivery.
fn upstream_fault_is_retried(fault: &str) {
    let upstream = Upstream::start(&[fault, "2"]);
    let sluice = quick_retries(Sluice::builder(BIN))
        .provider(&plain_provider(upstream.port))
        .start();
    let db = Db::open(&sluice);
    let id = send(&sluice, "r@dest.test", fault);
    db.wait_status(id, "delivered", 30);
    assert_eq!(
        verdicts(&db, id),
        [Verdict::Transient, Verdict::Transient, Verdict::Delivered],
        "{:?}",
        db.attempts(id)
    );
    // A second message goes through on the first try now.
    let second = send(&sluice, "s@dest.test", "after");
    db.wait_status(second, "delivered", 10);
    std::thread::sleep(Duration::from_millis(500));
    let got = upstream.messages();
    assert_eq!(got.len(), 2, "each message exactly once");
    assert!(got[0].text().contains(&format!("Subject: {fault}")));
}

#[test]
fn an_upstream_that_resets_mid_data_defers_and_the_message_arrives_once() {
    upstream_fault_is_retried("--reset-mid-data");
}

#[test]
fn an_upstream_that_closes_after_mail_defers_and_the_message_arrives_once() {
    upstream_fault_is_retried("--close-after-mail");
}

fn service_settings(kind: &str, fake: &EspFake) -> Value {
    let url = fake.url();
    match kind {
        "sendgrid" => json!({ "api_key": "SG.test-key", "base_url": url, "timeout_secs": 2 }),
        "mailgun" => json!({ "domain": "mg.example.test", "api_key": "mg-test-key",
                             "base_url": url, "timeout_secs": 2 }),
        "ses" => json!({ "region": "eu-west-1", "access_key_id": "AKIDEXAMPLE",
                         "secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                         "endpoint": url, "timeout_secs": 2 }),
        "msgraph" => json!({ "tenant_id": "tenant-1", "client_id": "client-1",
                             "client_secret": "graph-secret", "sender": "sender@example.test",
                             "authority_url": url, "graph_url": url, "timeout_secs": 2 }),
        _ => unreachable!(),
    }
}

/// The fake's name for the service's send endpoint.
fn fake_service(kind: &str) -> &'static str {
    match kind {
        "sendgrid" => "sendgrid",
        "mailgun" => "mailgun",
        "ses" => "ses",
        _ => "graph",
    }
}

#[test]
fn http_services_that_reset_or_answer_unreadable_bodies_get_the_right_verdict() {
    let fake = EspFake::start(&[]);
    let sluice = quick_retries(Sluice::builder(BIN)).start();
    let db = Db::open(&sluice);
    // (service fault, the verdicts of the message's attempts)
    let cases: &[(&str, &[Verdict])] = &[
        ("reset", &[Verdict::Transient, Verdict::Delivered]),
        ("reset-mid-body", &[Verdict::Delivered]),
        ("truncated-json", &[Verdict::Delivered]),
        ("non-json", &[Verdict::Delivered]),
    ];
    for (n, kind) in ["sendgrid", "mailgun", "ses", "msgraph"]
        .into_iter()
        .enumerate()
    {
        let (status, body) = api(
            &sluice,
            "POST",
            "/providers",
            Some(json!({ "name": kind, "provider_type": kind,
                         "config": service_settings(kind, &fake) })),
        );
        assert_eq!(status, 201, "{body}");
        let provider = body["id"].as_i64().unwrap();
        // Mail to <kind>.test goes through this provider.
        let (status, body) = api(
            &sluice,
            "POST",
            "/routing-rules",
            Some(
                json!({ "name": kind, "priority": n + 1, "provider_id": provider,
                         "conditions": { "recipient_domains": [format!("{kind}.test")] } }),
            ),
        );
        assert_eq!(status, 201, "{body}");
        let service = fake_service(kind);
        for (fault, expected) in cases {
            let before = fake.requests(service).len();
            fake.script(service, &[fault]);
            let id = send(&sluice, &format!("rcpt@{kind}.test"), fault);
            db.wait_status(id, "delivered", 20);
            let attempts = db.attempts(id);
            let got: Vec<Verdict> = attempts.iter().map(|a| a.verdict).collect();
            assert_eq!(&got, expected, "{kind} {fault}: {attempts:?}");
            // The service saw the message once per attempt, each time a valid request.
            let requests = fake.requests(service);
            let requests = &requests[before..];
            assert_eq!(
                requests.len(),
                expected.len(),
                "{kind} {fault}: {requests:?}"
            );
            assert!(
                requests.iter().all(|r| r["problems"] == json!([])),
                "{kind} {fault}: {requests:?}"
            );
            // An id only the body would have carried (Mailgun's, SES's) is missing, never
            // invented; SendGrid's comes in a header, Graph's is the Message-ID.
            let delivered = attempts.last().unwrap();
            if matches!(kind, "mailgun" | "ses") && *fault != "reset" {
                assert_eq!(delivered.provider_message_id, None, "{kind} {fault}");
            }
        }
        if kind == "msgraph" {
            // The token endpoint's unreadable success is no token: transient, retried.
            for fault in ["non-json", "truncated-json", "reset-mid-body", "reset"] {
                // The cached token is refused; the new one's answer is the fault.
                fake.script("graph", &["revoke-tokens"]);
                fake.script("graph-token", &[fault]);
                let id = send(&sluice, "token@msgraph.test", &format!("token {fault}"));
                db.wait_status(id, "delivered", 20);
                let got = verdicts(&db, id);
                assert_eq!(
                    got.first(),
                    Some(&Verdict::Transient),
                    "token {fault}: {:?}",
                    db.attempts(id)
                );
                assert_eq!(got.last(), Some(&Verdict::Delivered), "token {fault}");
            }
        }
    }
    assert!(!sluice.logs().contains("panicked"), "a panic in the logs");
}

/// `sluice send` on the trusted port: `count` messages at `rate` per second; the sequence
/// numbers acknowledged and what it printed.
fn send_load(sluice: &Sluice, count: u32, rate: u32) -> (BTreeSet<u64>, String) {
    let log = sluice.dir.path().join("accepted.log");
    let output = sluice
        .send_load_command("r@dest.test", count as u64, rate as u64, 4, &log)
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&output.stdout).into_owned();
    (accepted_seqs(&log), summary)
}

/// Every acknowledged message reaches the upstream (at least once); the copies per number.
fn all_arrive(upstream: &Upstream, accepted: &BTreeSet<u64>, summary: &str) -> BTreeMap<u64, u32> {
    let arrived = sluice_testkit::wait_until(Duration::from_secs(45), || {
        let got: BTreeSet<u64> = upstream.send_seqs().into_iter().collect();
        accepted.is_subset(&got).then_some(())
    });
    let mut copies = BTreeMap::new();
    for seq in upstream.send_seqs() {
        *copies.entry(seq).or_insert(0) += 1;
    }
    let lost: Vec<_> = accepted
        .iter()
        .filter(|s| !copies.contains_key(s))
        .take(20)
        .collect();
    assert!(
        arrived.is_some(),
        "acknowledged but never delivered: {lost:?}\n{summary}"
    );
    copies
}

#[test]
fn connections_to_the_upstream_cut_at_random_lose_nothing() {
    let upstream = Upstream::start(&["--discard-body"]);
    let proxy = ChaosProxy::start(
        upstream.port,
        Chaos {
            seed: 7,
            min_bytes: 20,
            max_bytes: 6_000,
            min_ms: 20,
            max_ms: 1_500,
        },
    );
    let sluice = quick_retries(Sluice::builder(BIN))
        .provider(&plain_provider(proxy.port))
        .start();
    let (accepted, summary) = send_load(&sluice, 300, 40);
    assert_eq!(
        accepted.len(),
        300,
        "the client side has no faults:\n{summary}"
    );
    proxy.set_cutting(false);
    let copies = all_arrive(&upstream, &accepted, &summary);
    let twice = copies.values().filter(|n| **n > 1).count();
    assert!(proxy.cuts() > 20, "only {} cuts", proxy.cuts());
    println!(
        "{} connections, {} cut; {} messages arrived twice",
        proxy.accepted(),
        proxy.cuts(),
        twice
    );
}

/// `url` with its port replaced by `port` (the host stays).
fn through_port(url: &str, port: u16) -> (String, u16) {
    let scheme_end = url.find("://").unwrap() + 3;
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let (host, target) = match authority[host_start..].rsplit_once(':') {
        Some((host, p)) => (host, p.parse().unwrap()),
        None => (&authority[host_start..], 5432),
    };
    let url = format!(
        "{}{}{}:{port}{}",
        &url[..scheme_end],
        &authority[..host_start],
        host,
        &rest[authority_end..]
    );
    (url, target)
}

#[test]
fn connections_to_postgresql_cut_at_random_lose_nothing() {
    let Some(db) = TempDatabase::create() else {
        return;
    };
    let (_, pg_port) = through_port(&db.url, 0);
    let proxy = ChaosProxy::start(
        pg_port,
        Chaos {
            seed: 11,
            min_bytes: 2_000,
            max_bytes: 300_000,
            min_ms: 200,
            max_ms: 4_000,
        },
    );
    // Migrations and start-up go through whole; the cuts begin under load.
    proxy.set_cutting(false);
    let (url, _) = through_port(&db.url, proxy.port);
    let upstream = Upstream::start(&["--discard-body"]);
    let sluice = quick_retries(Sluice::builder(BIN))
        .database(&url)
        .env("SLUICE_DELIVERY__LEASE_SECS", "5")
        .upstream(upstream.port)
        .start();
    proxy.set_cutting(true);
    let (accepted, summary) = send_load(&sluice, 400, 40);
    proxy.set_cutting(false);
    assert!(accepted.len() > 200, "too few accepted:\n{summary}");
    assert!(
        !summary.contains("permanent"),
        "a refusal was not 4xx:\n{summary}"
    );
    let copies = all_arrive(&upstream, &accepted, &summary);
    let twice = copies.values().filter(|n| **n > 1).count();
    assert!(proxy.cuts() > 5, "only {} cuts", proxy.cuts());
    println!(
        "accepted {} of 400; {} connections, {} cut; {twice} arrived twice\n{summary}",
        accepted.len(),
        proxy.accepted(),
        proxy.cuts()
    );
}
