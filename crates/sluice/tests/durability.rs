//! A yes is a promise: kill -9 under load, and graceful shutdown mid-transaction.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::Duration;

use common::*;

#[test]
fn every_acknowledged_message_survives_kill_9() {
    let upstream = Upstream::start(&[]);
    let mut sluice = Sluice::builder(BIN)
        .upstream(upstream.port)
        .delivery("lease_secs = 2")
        .start();
    let log = sluice.dir.path().join("accepted.log");
    let sender = sluice
        .send_command(&[
            "--to",
            "load@dest.test",
            "--count",
            "1500",
            "--rate",
            "250",
            "--concurrency",
            "12",
            "--timeout",
            "5",
            "--accepted-log",
        ])
        .arg(&log)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(1200));
        sluice.kill9();
        std::thread::sleep(Duration::from_millis(150));
        sluice.spawn();
    }
    let output = sender.wait_with_output().unwrap();
    let summary = String::from_utf8_lossy(&output.stdout);
    let accepted = accepted_seqs(&log);
    assert!(
        accepted.len() > 100,
        "too few accepted to mean anything: {summary}"
    );
    let delivered = wait_until(Duration::from_secs(90), || {
        let got: BTreeSet<u64> = upstream
            .messages()
            .iter()
            .filter_map(|m| send_seq(&m.text()))
            .collect();
        accepted.is_subset(&got).then_some(got)
    });
    let got: BTreeSet<u64> = upstream
        .messages()
        .iter()
        .filter_map(|m| send_seq(&m.text()))
        .collect();
    let lost: Vec<_> = accepted.difference(&got).collect();
    assert!(
        delivered.is_some(),
        "{} acknowledged messages lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(20)]
    );
    let mut copies: HashMap<u64, usize> = HashMap::new();
    for m in upstream.messages() {
        if let Some(seq) = send_seq(&m.text()) {
            *copies.entry(seq).or_default() += 1;
        }
    }
    let duplicates = copies.values().filter(|n| **n > 1).count();
    println!(
        "accepted {} of 1500, delivered {} distinct, {duplicates} duplicated, lost 0\n{summary}",
        accepted.len(),
        got.len()
    );
}

#[test]
fn sigterm_lets_a_session_in_data_finish_and_loses_nothing() {
    let upstream = Upstream::start(&[]);
    let mut sluice = Sluice::builder(BIN).upstream(upstream.port).start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.eml");
    std::fs::write(&file, sample_message("shutdown")).unwrap();
    let mut client = std::process::Command::new("python3")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testkit/py/client.py"))
        .args([
            "--port",
            &sluice.ports.submission.to_string(),
            "--mode",
            "starttls",
        ])
        .args(["--user", "user@example.com", "--password", "secret"])
        .args([
            "--from",
            "app@example.com",
            "--to",
            "r@dest.test",
            "--pause",
            "--file",
        ])
        .arg(&file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(client.stdout.take().unwrap()).lines();
    let paused = lines.next().unwrap().unwrap();
    assert!(paused.contains("paused"), "{paused}");

    // An idle session is told to go away; the one in DATA may finish.
    let idle = std::net::TcpStream::connect(("127.0.0.1", sluice.ports.submission)).unwrap();
    let mut idle_reader = BufReader::new(idle);
    let mut greeting = String::new();
    idle_reader.read_line(&mut greeting).unwrap();
    let pid = sluice.pid().unwrap();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let mut goodbye = String::new();
    idle_reader.read_line(&mut goodbye).unwrap();
    assert!(goodbye.starts_with("421 4.3.2"), "{goodbye}");
    // New connections are no longer accepted.
    let refused = wait_until(Duration::from_secs(5), || {
        std::net::TcpStream::connect(("127.0.0.1", sluice.ports.implicit)).err()
    });
    assert!(refused.is_some(), "listener still accepting after SIGTERM");

    writeln!(client.stdin.as_mut().unwrap()).unwrap();
    let result = lines.next().unwrap().unwrap();
    assert!(result.contains("\"code\": 250"), "{result}");
    assert!(client.wait().unwrap().success());
    let status = sluice.terminate_wait();
    assert!(status.success(), "{status:?}\n{}", sluice.logs());
    // Restarted, it delivers what it acknowledged (if it had not already).
    sluice.spawn();
    let received = upstream.wait_for(1, Duration::from_secs(20));
    assert_eq!(
        strip_received(&received[0].raw),
        sample_message("shutdown").as_slice()
    );
}
