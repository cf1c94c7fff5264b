//! Slow and hanging upstreams and jumps of the wall clock, on the real binary with real
//! upstreams (aiosmtpd): a slow provider holds only its own slots; an upstream that never
//! answers the final dot is cut off after the provider's `timeout_secs`; a forward jump of
//! the clock (libfaketime) does not deliver in-flight mail twice, and a backward one does
//! not strand mail waiting for its retry.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{BIN, Db, USER, api, sample_message, smtplib_send};
use serde_json::json;
use sluice_testkit::{Sluice, Upstream, wait_until};

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

fn plain_provider(port: u16, timeout_secs: u64) -> String {
    format!(
        "type = \"smtp\"\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\ntimeout_secs = {timeout_secs}"
    )
}

fn send_to(sluice: &Sluice, to: &str, subject: &str) -> i64 {
    let (status, body) = api(
        sluice,
        "POST",
        "/send",
        Some(json!({ "from": "app@example.com", "to": [to], "subject": subject, "text": "hi" })),
    );
    assert_eq!(status, 202, "{body}");
    body["id"].as_i64().unwrap()
}

fn smtp_provider(sluice: &Sluice, name: &str, port: u16) -> i64 {
    let (status, body) = api(
        sluice,
        "POST",
        "/providers",
        Some(json!({ "name": name, "provider_type": "smtp", "config": {
            "host": "127.0.0.1", "port": port, "security": "none", "timeout_secs": 30 } })),
    );
    assert_eq!(status, 201, "{body}");
    body["id"].as_i64().unwrap()
}

#[test]
fn a_slow_provider_holds_only_its_own_slots() {
    // Each message takes 20 s at the slow upstream's final dot.
    let slow = Upstream::start(&["--delay", "20"]);
    let fast = Upstream::start(&[]);
    let sluice = Sluice::builder(BIN)
        .delivery("concurrency = 8")
        .delivery("provider_concurrency = 3")
        .start();
    // The account's first provider takes what no rule routes; slow.test goes to the slow one.
    smtp_provider(&sluice, "fast", fast.port);
    let slow_id = smtp_provider(&sluice, "slow", slow.port);
    let (status, body) = api(
        &sluice,
        "POST",
        "/routing-rules",
        Some(json!({ "name": "slow", "priority": 1,
                     "conditions": { "recipient_domains": ["slow.test"] }, "provider_id": slow_id })),
    );
    assert_eq!(status, 201, "{body}");
    for n in 0..24 {
        send_to(&sluice, &format!("user{n}@slow.test"), &format!("slow {n}"));
    }
    // Let the worker take the slow mail first.
    std::thread::sleep(Duration::from_secs(1));
    let started = Instant::now();
    for n in 0..5 {
        send_to(&sluice, &format!("user{n}@fast.test"), &format!("fast {n}"));
    }
    fast.wait_for(5, Duration::from_secs(5));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "healthy mail took {took:?}");
    // The slow upstream never had more than its provider's 3 slots' worth at once.
    assert_eq!(slow.count(), 0, "nothing finished at the slow upstream yet");
}

#[test]
fn an_upstream_that_never_answers_the_final_dot_is_cut_off_after_timeout_secs() {
    let hanging = Upstream::start(&["--delay", "3600"]);
    let sluice = Sluice::builder(BIN)
        .provider(&plain_provider(hanging.port, 3))
        .start();
    let db = Db::open(&sluice);
    let sent = smtplib_send(
        sluice.ports.submission,
        "starttls",
        USER,
        "user@example.com",
        &["rcpt@example.net"],
        &sample_message("hangs at the dot"),
    );
    assert!(sent.ok, "{:?}", sent.json);
    let id = sent.message_id();
    let record = db.wait_status(id, "deferred", 20);
    let attempts = db.attempts(id);
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    let attempt = &attempts[0];
    let took = attempt.finished_at - attempt.started_at;
    assert!((3_000..6_000).contains(&took), "cut off after {took} ms");
    assert_eq!(attempt.verdict.as_str(), "transient");
    assert!(
        attempt.response.contains("did not answer within 3 s"),
        "{attempt:?}"
    );
    assert_eq!(record.attempts, 1);
}

/// libfaketime on the sluice process, steered by a file the test rewrites; None (the test
/// returns) when libfaketime is missing outside CI. Under CI it must be there.
fn faketime() -> Option<(tempfile::TempDir, PathBuf)> {
    if !Path::new(LIBFAKETIME).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "libfaketime is missing ({LIBFAKETIME}): apt-get install faketime"
        );
        eprintln!("skipped: libfaketime missing (apt-get install faketime)");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("faketime");
    std::fs::write(&file, "+0\n").unwrap();
    Some((dir, file))
}

fn with_faketime(
    builder: sluice_testkit::SluiceBuilder,
    file: &Path,
) -> sluice_testkit::SluiceBuilder {
    builder
        .env("LD_PRELOAD", LIBFAKETIME)
        .env("FAKETIME_TIMESTAMP_FILE", file.to_str().unwrap())
        .env("FAKETIME_NO_CACHE", "1")
        // A real clock jump leaves the monotonic clock alone.
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
}

#[test]
fn a_forward_clock_jump_does_not_deliver_in_flight_mail_twice() {
    let Some((_dir, file)) = faketime() else {
        return;
    };
    // The upstream holds its answer to every final dot for 6 s.
    let upstream = Upstream::start(&["--delay", "6"]);
    let sluice = with_faketime(Sluice::builder(BIN), &file)
        .provider(&plain_provider(upstream.port, 30))
        .start();
    let db = Db::open(&sluice);
    let ids: Vec<i64> = (0..5)
        .map(|n| send_to(&sluice, &format!("r{n}@example.net"), &format!("jump {n}")))
        .collect();
    // In flight: every message is sending, none answered yet.
    wait_until(Duration::from_secs(5), || {
        ids.iter()
            .all(|id| db.message(*id).status.as_str() == "sending")
            .then_some(())
    })
    .expect("all in flight");
    std::fs::write(&file, "+3h\n").unwrap();
    for id in &ids {
        db.wait_status(*id, "delivered", 30);
    }
    // Time for a second copy to arrive, had one been sent.
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(upstream.count(), 5, "each message exactly once");
    for id in &ids {
        assert_eq!(db.attempts(*id).len(), 1);
    }
    assert!(sluice.logs().contains("the wall clock jumped forward"));
}

#[test]
fn a_backward_clock_jump_during_retries_does_not_strand_mail() {
    let Some((_dir, file)) = faketime() else {
        return;
    };
    // The first transaction gets 451; the retry is due 4 s later.
    let upstream = Upstream::start(&["--fail-first", "1"]);
    let sluice = with_faketime(Sluice::builder(BIN), &file)
        .provider(&plain_provider(upstream.port, 30))
        .env("SLUICE_DELIVERY__RETRY__INITIAL_DELAY_SECS", "4.0")
        .env("SLUICE_DELIVERY__RETRY__MAX_DELAY_SECS", "4.0")
        .env("SLUICE_DELIVERY__RETRY__JITTER", "0.0")
        .start();
    let db = Db::open(&sluice);
    let id = send_to(&sluice, "r@example.net", "goes back in time");
    db.wait_status(id, "deferred", 10);
    std::fs::write(&file, "-3h\n").unwrap();
    let started = Instant::now();
    db.wait_status(id, "delivered", 20);
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(upstream.count(), 1);
    assert!(sluice.logs().contains("the wall clock jumped back"));
}
