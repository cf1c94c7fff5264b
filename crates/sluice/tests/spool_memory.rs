//! Issue N: message content goes to the spool as it arrives, so the relay's memory does not
//! grow with message size. 40 clients send 5 MB messages at once, then (a fresh instance)
//! 40 send 10 MB ones, each session with STARTTLS and AUTH (Python's smtplib), relayed to
//! aiosmtpd, which keeps a SHA-256 per message instead of the message. The `sluice serve`
//! process's VmRSS is sampled from /proc while it accepts and delivers; VmHWM is its peak.
//! Before the spool, 40 × 10 MB took it to 1,178 MB. Measured here (debug build, two busy
//! shared cores, about 30 s): peaks of 261 to 298 MiB at 5 MB and 262 to 278 MiB at 10 MB
//! against a bound of about 330 MiB; the SMTP deliverer's dot-stuffed copy of each message
//! (before lettre's chunked writer replaced it) made them 378 and 483 MiB, and content held
//! in memory instead of spooled 293 and 496 MiB: both fail here.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use sluice_testkit::{BulkClient, BulkOptions, spool_seq};

const MB: usize = 1_000_000;
const MIB: u64 = 1024 * 1024;

/// VmRSS and VmHWM (bytes) of a process, from /proc/PID/status.
fn memory_of(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Samples a process's VmRSS every 20 ms until stopped: the highest sample seen.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut highest = 0;
            while !flag.load(Ordering::Relaxed) {
                if let Some((rss, _)) = memory_of(pid) {
                    highest = highest.max(rss);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            highest
        });
        Sampler { stop, thread }
    }

    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// What one run measured (bytes, seconds).
#[derive(Debug)]
struct Run {
    size: usize,
    idle_rss: u64,
    /// Highest VmRSS sampled while the clients were sending (accepting and delivering).
    accepting_rss: u64,
    /// VmHWM once every message was delivered: the process's peak.
    peak: u64,
    accept_secs: f64,
    total_secs: f64,
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB as f64
}

/// `clients` sessions each send one message of `size` bytes at once; every one is
/// acknowledged and arrives upstream byte-exact.
fn run(clients: usize, size: usize) -> Run {
    let upstream = Upstream::start(&["--hash"]);
    let sluice = Sluice::builder(BIN).upstream(upstream.port).start();
    let pid = sluice.pid().unwrap();
    let (idle_rss, _) = memory_of(pid).unwrap();
    let started = Instant::now();
    let sampler = Sampler::start(pid);
    let mut client = BulkClient::start(&BulkOptions {
        label: format!("memory-{size}"),
        ..BulkOptions::submission(sluice.ports.submission, clients, size, clients)
    });
    assert!(
        client.wait_done(Duration::from_secs(180)),
        "the clients did not finish"
    );
    let sent = client.finish();
    let accept_secs = started.elapsed().as_secs_f64();
    let accepting_rss = sampler.finish();
    assert_eq!(sent.len(), clients);
    for message in &sent {
        assert!(message.acknowledged(), "{message:?}");
    }
    let delivered = wait_until(Duration::from_secs(180), || {
        (upstream.count() >= clients).then_some(())
    });
    assert!(
        delivered.is_some(),
        "{} of {clients} delivered",
        upstream.count()
    );
    let (_, peak) = memory_of(pid).unwrap();
    let total_secs = started.elapsed().as_secs_f64();

    let expected: BTreeMap<u64, (&str, u64)> = sent
        .iter()
        .map(|m| (m.seq, (m.sha256.as_str(), m.size)))
        .collect();
    let mut arrived = BTreeMap::new();
    for received in upstream.messages() {
        let (_, seq) = spool_seq(strip_received(&received.raw)).expect("X-Spool-Seq");
        let (sha256, len) = received.sha256().expect("--hash");
        assert_eq!(
            Some(&(sha256, len)),
            expected.get(&seq),
            "message {seq} did not arrive as sent"
        );
        *arrived.entry(seq).or_insert(0) += 1;
    }
    assert_eq!(arrived.len(), clients, "every message arrives");
    Run {
        size,
        idle_rss,
        accepting_rss,
        peak,
        accept_secs,
        total_secs,
    }
}

/// What delivery may hold: an SMTP upstream gets a large stored message streamed from the
/// spool (its header section and a chunk or two in memory per delivery), so nothing of the
/// `delivery.max_bodies_in_memory_bytes` budget is used; this is the room for the
/// deliveries in flight (`delivery.concurrency`) and their connections.
const DELIVERY: u64 = 24 * MIB;
/// What a session in DATA may hold: its 64 KiB content chunk and the spool writer's, TLS
/// records and buffers, the allocator's share. Measured: about 1.5 MiB.
const PER_SESSION: u64 = 2 * MIB;
/// Room for the allocator and the rest of the process moving between runs.
const MARGIN: u64 = 48 * MIB;
/// Twice the message size may add this much at most. Before the SMTP deliverer stopped
/// making a dot-stuffed copy of each message it sent, it added 105 MiB (378 to 483 MiB);
/// holding messages whole, as before the spool, adds hundreds.
const GROWTH: u64 = 48 * MIB;

#[test]
fn memory_stays_bounded_and_does_not_grow_with_message_size() {
    const CLIENTS: usize = 40;
    let runs = [run(CLIENTS, 5 * MB), run(CLIENTS, 10 * MB)];
    for r in &runs {
        println!(
            "{CLIENTS} x {} MB: idle {:.0} MiB, highest while sending {:.0} MiB, peak (VmHWM) \
             {:.0} MiB; sent in {:.1} s, delivered in {:.1} s",
            r.size / MB,
            mib(r.idle_rss),
            mib(r.accepting_rss),
            mib(r.peak),
            r.accept_secs,
            r.total_secs
        );
    }
    // Nothing in the process scales with message size: the start-up footprint, the
    // delivery budget, and a bounded amount per session.
    for r in &runs {
        let bound = r.idle_rss + DELIVERY + CLIENTS as u64 * PER_SESSION + MARGIN;
        assert!(
            r.peak < bound,
            "peak {:.0} MiB with {} MB messages, above {:.0} MiB",
            mib(r.peak),
            r.size / MB,
            mib(bound)
        );
    }
    let [small, large] = &runs;
    assert!(
        large.peak < small.peak + GROWTH,
        "peak {:.0} MiB at 10 MB against {:.0} MiB at 5 MB",
        mib(large.peak),
        mib(small.peak)
    );
}
