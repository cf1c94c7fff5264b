//! End to end over real sockets: Python's smtplib → Sluice → aiosmtpd.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn relays_byte_exact_over_starttls_and_implicit_tls() {
    let upstream = Upstream::start(&[]);
    let sluice = Sluice::builder(BIN).upstream(upstream.port).start();
    let db = Db::open(&sluice);
    let mut ids = Vec::new();
    for (mode, port) in [
        ("starttls", sluice.ports.submission),
        ("implicit", sluice.ports.implicit),
    ] {
        let message = sample_message(mode);
        let result = smtplib_send(
            port,
            mode,
            USER,
            "app@example.com",
            &["rcpt@dest.test", "second@dest.test"],
            &message,
        );
        assert!(result.ok, "{mode}: {:?}", result.json);
        assert!(result.message.contains("queued as"), "{}", result.message);
        ids.push(result.message_id());
    }
    let received = upstream.wait_for(2, Duration::from_secs(20));
    for mode in ["starttls", "implicit"] {
        let copy = received
            .iter()
            .find(|m| m.text().contains(&format!("Subject: {mode}\r\n")))
            .unwrap_or_else(|| panic!("{mode} message not received"));
        assert_eq!(
            strip_received(&copy.raw),
            sample_message(mode).as_slice(),
            "{mode} byte-exact"
        );
        assert!(copy.text().contains("with ESMTPSA id"), "{}", copy.text());
        assert_eq!(copy.envelope["mail_from"], "app@example.com");
        assert_eq!(copy.rcpt_tos(), vec!["rcpt@dest.test", "second@dest.test"]);
        assert_eq!(
            copy.envelope["pipelined"], true,
            "MAIL, RCPT and DATA in one write to an upstream that offers PIPELINING"
        );
    }
    for id in ids {
        let message = db.wait_status(id, "delivered", 10);
        assert_eq!(message.attempts, 1);
        let attempts = db.attempts(id);
        assert_eq!(
            (attempts[0].verdict.as_str(), attempts[0].code),
            ("delivered", Some(250))
        );
        assert_eq!(db.events(id), vec!["queued", "delivered"]);
    }
    let logs = sluice.logs();
    assert!(
        !logs.contains("Grüße") && !logs.contains("a line that starts"),
        "body in the log"
    );
    assert!(!logs.contains("secret"), "password in the log");
}

#[test]
fn sync_mode_gives_the_client_the_upstreams_verdict() {
    let upstream = Upstream::start(&["--fail-first", "1", "--reject-rcpt", "nobody"]);
    let sluice = Sluice::builder(BIN)
        .upstream(upstream.port)
        .delivery("mode = \"sync\"")
        .start();
    let db = Db::open(&sluice);
    let port = sluice.ports.submission;

    // The upstream's first DATA answer is 451: the client hears 451, Sluice keeps a record.
    let first = smtplib_send(
        port,
        "starttls",
        USER,
        "app@example.com",
        &["a@dest.test"],
        &sample_message("first"),
    );
    assert_eq!(first.code, 451, "{:?}", first.json);
    assert!(
        first.message.starts_with("4.4.0 Upstream deferred"),
        "{}",
        first.message
    );
    assert!(upstream.messages().is_empty());

    let second = smtplib_send(
        port,
        "starttls",
        USER,
        "app@example.com",
        &["a@dest.test"],
        &sample_message("second"),
    );
    assert!(second.ok, "{:?}", second.json);
    assert!(
        second.message.contains("delivered as"),
        "{}",
        second.message
    );
    assert_eq!(upstream.messages().len(), 1, "delivered before the 250");
    let id = second.message_id();
    assert_eq!(db.message(id).status.as_str(), "delivered");
    assert_eq!(db.attempts(id).len(), 1);

    let refused = smtplib_send(
        port,
        "starttls",
        USER,
        "app@example.com",
        &["nobody@dest.test"],
        &sample_message("third"),
    );
    assert_eq!(refused.code, 550, "{:?}", refused.json);
    assert!(
        refused.message.starts_with("5.1.1 Upstream refused"),
        "{}",
        refused.message
    );
    assert!(!refused.message.contains('\r'));
    // The failed sync messages are recorded with their attempt too.
    let failed: Vec<_> = (1..=3)
        .map(|id| db.message(id))
        .filter(|m| m.status.as_str() == "failed")
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    for message in failed {
        assert_eq!(db.attempts(message.id).len(), 1);
    }
}

#[test]
fn upstream_4xx_is_retried_until_delivered() {
    let upstream = Upstream::start(&["--fail-first", "2"]);
    let sluice = Sluice::builder(BIN).upstream(upstream.port).start();
    let db = Db::open(&sluice);
    let result = smtplib_send(
        sluice.ports.submission,
        "starttls",
        USER,
        "app@example.com",
        &["r@dest.test"],
        &sample_message("retry"),
    );
    assert!(result.ok, "{:?}", result.json);
    let id = result.message_id();
    let received = upstream.wait_for(1, Duration::from_secs(30));
    assert_eq!(
        strip_received(&received[0].raw),
        sample_message("retry").as_slice()
    );
    let message = db.wait_status(id, "delivered", 10);
    assert_eq!(message.attempts, 3);
    let verdicts: Vec<_> = db
        .attempts(id)
        .into_iter()
        .map(|a| (a.verdict.as_str().to_string(), a.code))
        .collect();
    assert_eq!(
        verdicts,
        vec![
            ("transient".to_string(), Some(451)),
            ("transient".to_string(), Some(451)),
            ("delivered".to_string(), Some(250)),
        ]
    );
    assert_eq!(
        db.events(id),
        vec!["queued", "deferred", "deferred", "delivered"]
    );
}

#[test]
fn upstream_5xx_fails_the_message_and_records_the_attempt() {
    let upstream = Upstream::start(&["--reject-data"]);
    let sluice = Sluice::builder(BIN).upstream(upstream.port).start();
    let db = Db::open(&sluice);
    let result = smtplib_send(
        sluice.ports.submission,
        "starttls",
        USER,
        "app@example.com",
        &["r@dest.test"],
        &sample_message("reject"),
    );
    assert!(result.ok);
    let id = result.message_id();
    let message = db.wait_status(id, "failed", 15);
    assert_eq!(message.attempts, 1);
    assert!(
        message
            .last_error
            .as_deref()
            .unwrap_or_default()
            .starts_with("554"),
        "{message:?}"
    );
    let attempts = db.attempts(id);
    assert_eq!(
        (attempts[0].verdict.as_str(), attempts[0].code),
        ("permanent", Some(554))
    );
    assert_eq!(db.events(id), vec!["queued", "failed"]);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        db.attempts(id).len(),
        1,
        "a permanent failure is not retried"
    );
}

#[test]
fn per_recipient_results_when_the_upstream_refuses_some() {
    // Pipelined (the upstream offers PIPELINING) and one command at a time.
    for (options, pipelined) in [(&[][..], true), (&["--no-pipelining"][..], false)] {
        let upstream = Upstream::start(&[&["--reject-rcpt", "nobody"], options].concat());
        let sluice = Sluice::builder(BIN).upstream(upstream.port).start();
        let db = Db::open(&sluice);
        let send = |rcpts: &[&str], subject: &str| {
            let result = smtplib_send(
                sluice.ports.implicit,
                "implicit",
                USER,
                "app@example.com",
                rcpts,
                &sample_message(subject),
            );
            assert!(result.ok, "{:?}", result.json);
            result.message_id()
        };
        let id = send(&["nobody@dest.test", "somebody@dest.test"], "partial");
        let received = upstream.wait_for(1, Duration::from_secs(20));
        assert_eq!(received[0].rcpt_tos(), vec!["somebody@dest.test"]);
        assert_eq!(received[0].envelope["pipelined"], pipelined);
        let message = db.wait_status(id, "delivered", 10);
        assert!(message.last_error.unwrap_or_default().starts_with("550"));
        assert_eq!(
            db.events(id),
            vec!["queued", "recipient_failed", "delivered"]
        );
        // Every recipient refused: the message fails, no content is sent, and the
        // pooled connection is still in step for the next message.
        let refused = send(&["nobody@dest.test"], "refused");
        let message = db.wait_status(refused, "failed", 10);
        assert!(message.last_error.unwrap_or_default().starts_with("550"));
        let next = send(&["somebody@dest.test"], "next");
        db.wait_status(next, "delivered", 10);
        let received = upstream.wait_for(2, Duration::from_secs(10));
        assert!(
            received[1].text().contains("Subject: next\r\n"),
            "{}",
            received[1].text()
        );
        assert_eq!(received.len(), 2, "nothing of the refused message arrived");
    }
}

#[test]
fn staging_forwards_everything_marks_it_and_refuses_other_recipients() {
    let upstream = Upstream::start(&[]);
    let sluice = Sluice::builder(BIN)
        .upstream(upstream.port)
        .env("SLUICE_STAGING__FORWARD_ALL_TO", "qa@team.test")
        .env("SLUICE_STAGING__ADD_HEADERS", "true")
        .env("SLUICE_STAGING__RECIPIENT_ALLOWLIST", "[\"@dest.test\"]")
        .start();
    let sent = smtplib_send(
        sluice.ports.submission,
        "starttls",
        USER,
        "app@example.com",
        &["ann@dest.test", "bob@dest.test"],
        &sample_message("staged"),
    );
    assert!(sent.ok, "{:?}", sent.json);
    let id = sent.message_id();
    let received = upstream.wait_for(1, Duration::from_secs(20));
    assert_eq!(received[0].rcpt_tos(), vec!["qa@team.test"]);
    let text = received[0].text();
    assert!(text.starts_with(&format!("X-Sluice-Account: 1\r\nX-Sluice-Message-Id: {id}\r\nX-Sluice-Original-To: ann@dest.test, bob@dest.test\r\nReceived: ")), "{text}");
    assert!(text.ends_with(std::str::from_utf8(&sample_message("staged")).unwrap()));
    let refused = smtplib_send(
        sluice.ports.submission,
        "starttls",
        USER,
        "app@example.com",
        &["someone@real.test"],
        &sample_message("x"),
    );
    assert_eq!(refused.code, 550, "{:?}", refused.json);
    assert!(refused.message.starts_with("5.7.1"), "{}", refused.message);
}
