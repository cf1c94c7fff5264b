//! Several nodes on one PostgreSQL: one ingress node, two worker nodes.
//! Needs `SLUICE_TEST_DATABASE_URL` (skipped without it, except under CI).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use sluice_testkit::postgres::TempDatabase;

fn copies_per_seq(upstream: &Upstream) -> HashMap<u64, usize> {
    let mut copies = HashMap::new();
    for seq in upstream.send_seqs() {
        *copies.entry(seq).or_default() += 1;
    }
    copies
}

#[test]
fn two_workers_deliver_ten_thousand_messages_exactly_once() {
    let Some(db) = TempDatabase::create() else {
        return;
    };
    let upstream = Upstream::start(&["--discard-body"]);
    let sluice = Sluice::builder(BIN)
        .database(&db.url)
        .roles("smtp,http")
        .upstream(upstream.port)
        .start();
    let _worker_a = sluice.spawn_node("a", "worker");
    let _worker_b = sluice.spawn_node("b", "worker");
    let output = sluice
        .send_plain_command(&["--count", "10000", "--concurrency", "25"])
        .args(["--to", "many@dest.test"])
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{summary}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let done = wait_until(Duration::from_secs(240), || {
        (upstream.count() >= 10_000).then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));
    let copies = copies_per_seq(&upstream);
    assert!(done.is_some(), "delivered {} of 10000", copies.len());
    assert_eq!(copies.len(), 10_000, "distinct messages delivered");
    let duplicates = copies.values().filter(|n| **n > 1).count();
    assert_eq!(duplicates, 0, "duplicates");
    // Both workers took part.
    for node in ["a", "b"] {
        let log =
            std::fs::read_to_string(sluice.dir.path().join(format!("node-{node}.log"))).unwrap();
        assert!(
            log.matches("attempt finished").count() > 100,
            "worker {node} idle"
        );
    }
    println!("{summary}");
}

#[test]
fn a_killed_worker_nodes_messages_are_delivered_after_its_leases_expire() {
    let Some(db) = TempDatabase::create() else {
        return;
    };
    let upstream = Upstream::start(&["--discard-body", "--delay", "0.05"]);
    let sluice = Sluice::builder(BIN)
        .database(&db.url)
        .roles("smtp,http")
        .upstream(upstream.port)
        .delivery("lease_secs = 3")
        .start();
    let mut doomed = sluice.spawn_node("doomed", "worker");
    let output = sluice
        .send_plain_command(&["--count", "1500", "--concurrency", "10"])
        .args(["--to", "many@dest.test"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    // The doomed node is mid-run (the upstream is slow); kill it with leases held.
    let started = wait_until(Duration::from_secs(30), || {
        (upstream.count() > 50).then_some(())
    });
    assert!(started.is_some(), "the worker never started delivering");
    doomed.kill9();
    let before = upstream.count();
    assert!(before < 1500, "too late to kill: all delivered");
    let _survivor = sluice.spawn_node("survivor", "worker");
    let done = wait_until(Duration::from_secs(180), || {
        (copies_per_seq(&upstream).len() >= 1500).then_some(())
    });
    assert!(
        done.is_some(),
        "delivered {} of 1500 after the kill",
        copies_per_seq(&upstream).len()
    );
}

/// A large body accepted on the ingress node goes to PostgreSQL's chunk table as it arrives
/// (the row keeps only a reference), and a worker on another node reads it from there and
/// relays every byte of it.
#[test]
fn a_large_body_accepted_on_one_node_is_relayed_whole_by_another() {
    let Some(db) = TempDatabase::create() else {
        return;
    };
    let upstream = Upstream::start(&[]);
    let sluice = Sluice::builder(BIN)
        .database(&db.url)
        .roles("smtp,http")
        .upstream(upstream.port)
        .start();
    let _worker = sluice.spawn_node("a", "worker");
    let lines = 16_000;
    let mut input = b"EHLO x\r\nMAIL FROM:<app@example.com>\r\nRCPT TO:<r@dest.test>\r\nDATA\r\n\
        Subject: large\r\n\r\n"
        .to_vec();
    for i in 0..lines {
        input.extend_from_slice(
            format!("line {i:06} of a large body, sixty-four bytes long.....\r\n").as_bytes(),
        );
    }
    input.extend_from_slice(b".\r\nQUIT\r\n");
    let out = sluice.raw_session(sluice.ports.plain, &input);
    assert!(out.contains("queued"), "{out}");
    let received = upstream.wait_for(1, Duration::from_secs(60));
    let text = received[0].text();
    assert_eq!(
        text.matches("of a large body").count(),
        lines,
        "every line relayed"
    );
    assert!(text.contains(&format!("line {:06} of", lines - 1)));
    let stored = Db::open(&sluice).message(1);
    assert!(
        matches!(stored.body, sluice_core::MessageBody::Stored(_)),
        "the row names the body in the chunk table"
    );
}
