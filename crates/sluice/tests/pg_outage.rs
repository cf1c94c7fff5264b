//! PostgreSQL goes away under load and comes back. Alone in its test binary: it stops the
//! machine's PostgreSQL, which every other PostgreSQL test uses.

mod common;

use std::time::Duration;

use common::*;
use sluice_testkit::http_get;
use sluice_testkit::postgres::{Cluster, TempDatabase};

#[test]
fn database_outage_gives_4xx_never_250_and_loses_nothing() {
    let Some(db) = TempDatabase::create() else {
        return;
    };
    let upstream = Upstream::start(&["--discard-body"]);
    let sluice = Sluice::builder(BIN)
        .database(&db.url)
        .upstream(upstream.port)
        .start();
    let cluster = Cluster::local();
    let log = sluice.dir.path().join("accepted.log");
    let sender = sluice
        .send_load_command("r@dest.test", 2400, 150, 6, &log)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let before = accepted_seqs(&log).len();
    assert!(before > 100, "sending had not started: {before}");

    cluster.stop();
    // While it is down: not ready, with Retry-After.
    let (status, response) = http_get(sluice.ports.http, "/readyz");
    assert_eq!(status, 503, "{response}");
    assert!(
        response.to_ascii_lowercase().contains("retry-after: 5"),
        "{response}"
    );
    std::thread::sleep(Duration::from_secs(4));
    cluster.start();

    let output = sender.wait_with_output().unwrap();
    let summary = String::from_utf8_lossy(&output.stdout);
    let accepted = accepted_seqs(&log);
    // Clients were refused with 4xx while it was down ...
    assert!(
        !output.status.success(),
        "no message was refused during the outage:\n{summary}"
    );
    assert!(
        summary.contains("4.3.0") || summary.contains("(421)") || summary.contains("(454)"),
        "refusals were not 4xx:\n{summary}"
    );
    // ... and accepted again once it was back.
    assert!(
        accepted.iter().any(|seq| *seq > 2000),
        "no acceptance after the outage:\n{summary}"
    );
    let (status, _) = http_get(sluice.ports.http, "/readyz");
    assert_eq!(status, 200);
    // Every 250 was a stored message: all of them reach the upstream.
    let delivered = wait_until(Duration::from_secs(120), || {
        let got: std::collections::BTreeSet<u64> = upstream.send_seqs().into_iter().collect();
        accepted.is_subset(&got).then_some(got)
    });
    let got: std::collections::BTreeSet<u64> = upstream.send_seqs().into_iter().collect();
    let lost: Vec<_> = accepted.difference(&got).take(20).collect();
    assert!(
        delivered.is_some(),
        "acknowledged but not delivered: {lost:?}\n{summary}"
    );
    println!("accepted {} of 2400; {summary}", accepted.len());
}
