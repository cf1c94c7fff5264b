//! PostgreSQL backends of Sluice's database killed (`pg_terminate_backend`) again and again
//! under a steady send load, mid-transaction as often as not: refusals are 4xx, and every
//! acknowledged message is delivered (at least once: a backend killed during the COMMIT of
//! an attempt leaves the delivery unrecorded, so it is sent again once its lease expires).
//! Alone in its test binary: it kills connections on the server other tests share (only
//! those of its own database, but it keeps the server busy). The server itself stays up.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::*;
use sluice_testkit::postgres::{TempDatabase, base_url};

/// Terminates every backend of database `name` but the caller's; how many.
fn terminate_backends(admin_url: &str, name: &str) -> u64 {
    let output = Command::new("psql")
        .args([
            admin_url,
            "-Atc",
            &format!(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            ),
        ])
        .output()
        .expect("psql runs");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn backends_killed_under_load_give_4xx_never_250_and_lose_nothing() {
    let Some(db) = TempDatabase::create() else {
        return;
    };
    let admin_url = base_url().unwrap();
    let name = db
        .url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap();
    let name = name.to_string();
    let upstream = Upstream::start(&["--discard-body"]);
    let sluice = Sluice::builder(BIN)
        .database(&db.url)
        .upstream(upstream.port)
        .env("SLUICE_DELIVERY__RETRY__INITIAL_DELAY_SECS", "1.0")
        .env("SLUICE_DELIVERY__RETRY__MAX_DELAY_SECS", "2.0")
        .env("SLUICE_DELIVERY__RETRY__JITTER", "0.0")
        .env("SLUICE_DELIVERY__LEASE_SECS", "5")
        .start();
    let log = sluice.dir.path().join("accepted.log");
    let sender = sluice
        .send_load_command("r@dest.test", 600, 60, 4, &log)
        .spawn()
        .unwrap();
    // Kill Sluice's backends every 300 ms while the load runs (about 10 s).
    let done = Arc::new(AtomicBool::new(false));
    let killed = Arc::new(AtomicU64::new(0));
    let killer = {
        let (done, killed) = (done.clone(), killed.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(1));
            while !done.load(Ordering::SeqCst) {
                killed.fetch_add(terminate_backends(&admin_url, &name), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(300));
            }
        })
    };
    let output = sender.wait_with_output().unwrap();
    done.store(true, Ordering::SeqCst);
    killer.join().unwrap();
    let summary = String::from_utf8_lossy(&output.stdout);
    let accepted = accepted_seqs(&log);
    let killed = killed.load(Ordering::SeqCst);
    assert!(killed > 20, "only {killed} backends killed");
    assert!(accepted.len() > 300, "too few accepted:\n{summary}");
    assert!(
        !summary.contains("permanent"),
        "a refusal was not 4xx:\n{summary}"
    );
    let delivered = wait_until(Duration::from_secs(45), || {
        let got: BTreeSet<u64> = upstream.send_seqs().into_iter().collect();
        accepted.is_subset(&got).then_some(())
    });
    let seqs = upstream.send_seqs();
    let got: BTreeSet<u64> = seqs.iter().copied().collect();
    let lost: Vec<_> = accepted.difference(&got).take(20).collect();
    assert!(
        delivered.is_some(),
        "acknowledged but not delivered: {lost:?}\n{summary}"
    );
    println!(
        "accepted {} of 600, {killed} backends killed, {} copies for {} messages\n{summary}",
        accepted.len(),
        seqs.len(),
        got.len()
    );
}
