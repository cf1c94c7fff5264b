//! A yes is a promise when the disk fails too (issue 18): a data_dir on a small tmpfs filled
//! until full, and an LD_PRELOAD shim that makes fsync and write return EIO, each under
//! concurrent SMTP load with the upstream down. Every 250 must be a message that is in the
//! database, byte-exact, after kill -9 and a restart; refusals are 452 4.3.1; the database
//! passes `PRAGMA integrity_check`; service resumes by itself once the fault clears.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use sluice_testkit::{Tmpfs, build_fault_shim, free_port, http_get};

/// What one SMTP client heard for one message.
#[derive(Debug)]
struct Outcome {
    seq: u64,
    /// The reply to the end of data ("250 2.0.0 Ok: queued as 7"), or the I/O error.
    reply: String,
    at: Instant,
}

impl Outcome {
    fn acknowledged(&self) -> bool {
        self.reply.starts_with("250 ")
    }

    fn queued_id(&self) -> i64 {
        self.reply
            .rsplit(' ')
            .next()
            .and_then(|id| id.trim().parse().ok())
            .unwrap_or_else(|| panic!("no id in {:?}", self.reply))
    }
}

/// Message `seq`: headers, then `size` bytes of lines that differ per message.
fn message(seq: u64, size: usize) -> Vec<u8> {
    let mut out = format!(
        "From: <app@example.com>\r\nTo: <r@dest.test>\r\nSubject: storage fault {seq}\r\n\
         Message-ID: <fault-{seq}@example.com>\r\n\r\n"
    )
    .into_bytes();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut state = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() < size {
        for _ in 0..76 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            out.push(alphabet[(state % 64) as usize]);
        }
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn read_reply(reader: &mut BufReader<TcpStream>) -> std::io::Result<String> {
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(line.trim_end().to_string());
        }
    }
}

/// One message over the trusted plain listener; the reply to the final dot.
fn smtp_send(port: u16, body: &[u8]) -> std::io::Result<String> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    read_reply(&mut reader)?;
    for (command, expect) in [
        ("EHLO client.test\r\n", "250"),
        ("MAIL FROM:<app@example.com>\r\n", "250"),
        ("RCPT TO:<r@dest.test>\r\n", "250"),
        ("DATA\r\n", "354"),
    ] {
        writer.write_all(command.as_bytes())?;
        let reply = read_reply(&mut reader)?;
        if !reply.starts_with(expect) {
            return Ok(reply);
        }
    }
    writer.write_all(body)?;
    writer.write_all(b".\r\n")?;
    let reply = read_reply(&mut reader)?;
    let _ = writer.write_all(b"QUIT\r\n");
    Ok(reply)
}

/// SMTP clients sending until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
    threads: Vec<JoinHandle<Vec<Outcome>>>,
}

impl Load {
    fn start(port: u16, clients: usize, size: usize, next: &Arc<AtomicU64>) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let refused = Arc::new(AtomicUsize::new(0));
        let threads = (0..clients)
            .map(|_| {
                let (stop, refused, next) = (stop.clone(), refused.clone(), next.clone());
                std::thread::spawn(move || {
                    let mut outcomes = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let seq = next.fetch_add(1, Ordering::Relaxed);
                        let reply = smtp_send(port, &message(seq, size))
                            .unwrap_or_else(|error| format!("io error: {error}"));
                        let outcome = Outcome {
                            seq,
                            reply,
                            at: Instant::now(),
                        };
                        if !outcome.acknowledged() {
                            refused.fetch_add(1, Ordering::Relaxed);
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        outcomes.push(outcome);
                    }
                    outcomes
                })
            })
            .collect();
        Load {
            stop,
            refused,
            threads,
        }
    }

    fn refused(&self) -> usize {
        self.refused.load(Ordering::Relaxed)
    }

    fn finish(self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect()
    }
}

/// Every refusal is the storage one, 452 4.3.1.
/// What the server said of a failure: its last 40 warnings, errors and panics.
fn notable_log_lines(sluice: &Sluice) -> String {
    let logs = sluice.logs();
    let notable: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("panicked"))
        .collect();
    format!(
        "server log (last 40 notable lines):\n{}",
        notable[notable.len().saturating_sub(40)..].join("\n")
    )
}

/// The fault tests load the machine (six clients each, kill -9, restart): one at a time, so
/// their timing does not depend on each other.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn assert_refusals_are_452(outcomes: &[Outcome], sluice: &Sluice) {
    let wrong: Vec<_> = outcomes
        .iter()
        .filter(|o| !o.acknowledged() && !o.reply.starts_with("452 4.3.1 "))
        .map(|o| &o.reply)
        .collect();
    if !wrong.is_empty() {
        panic!(
            "{} refusals other than 452 4.3.1, e.g. {:?}\n{}",
            wrong.len(),
            &wrong[..wrong.len().min(5)],
            notable_log_lines(sluice)
        );
    }
}

/// After kill -9 and a restart: every acknowledged message is in the database byte-exact,
/// and the database passes `PRAGMA integrity_check`.
fn assert_acknowledged_survive(sluice: &mut Sluice, outcomes: &[Outcome], size: usize) {
    sluice.kill9();
    sluice.spawn();
    let db = Db::open(sluice);
    let mut checked = 0;
    for outcome in outcomes.iter().filter(|o| o.acknowledged()) {
        let stored = db.message_bytes(outcome.queued_id());
        assert!(
            strip_received(&stored) == message(outcome.seq, size).as_slice(),
            "message {} (seq {}) is not what was acknowledged",
            outcome.queued_id(),
            outcome.seq
        );
        checked += 1;
    }
    assert!(checked > 0, "nothing was acknowledged");
    assert_eq!(integrity_check(&sluice.database_url()), "ok");
}

fn integrity_check(url: &str) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        let rows: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_all(&pool)
            .await
            .unwrap();
        pool.close().await;
        rows.join("\n")
    })
}

/// A raw HTTP exchange: (status, the whole response with its headers).
fn http_post(port: u16, path: &str, token: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, response)
}

fn api_send(sluice: &Sluice) -> (u16, String) {
    http_post(
        sluice.ports.http,
        "/api/v1/send",
        &sluice.api_key,
        r#"{"from":"app@example.com","to":["r@dest.test"],"subject":"api","text":"hello"}"#,
    )
}

/// Sends single messages until one is acknowledged (service resumed) or `timeout` passes.
fn resumes(port: u16, next: &AtomicU64, size: usize, timeout: Duration) -> Option<Outcome> {
    wait_until(timeout, || {
        let seq = next.fetch_add(1, Ordering::Relaxed);
        let reply = smtp_send(port, &message(seq, size)).ok()?;
        let outcome = Outcome {
            seq,
            reply,
            at: Instant::now(),
        };
        outcome.acknowledged().then_some(outcome)
    })
}

const FILL_SIZE: usize = 48 * 1024;

/// Fills a 32 MB tmpfs data_dir (12 MB of it a ballast file the test deletes later) from six
/// clients with the upstream down, until the refusals pile up.
fn fill_the_disk(min_free_bytes: u64) {
    let Some(tmpfs) = Tmpfs::mount("32m") else {
        return;
    };
    let data = tmpfs.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let ballast = tmpfs.path().join("ballast");
    // Larger than the reserve: below it, accepts stop, but the worker still records its
    // attempts and events for the mail already taken (they are no acknowledgement), so the
    // disk can end up under the reserve, and freeing less than the reserve might not resume.
    std::fs::write(&ballast, vec![0u8; 12 << 20]).unwrap();
    let mut sluice = Sluice::builder(BIN)
        .data_dir(&data)
        .upstream(free_port())
        .section(&format!("[storage]\nmin_free_bytes = {min_free_bytes}"))
        .start();
    let port = sluice.ports.plain;
    let next = Arc::new(AtomicU64::new(1));
    let load = Load::start(port, 6, FILL_SIZE, &next);
    let full = wait_until(Duration::from_secs(60), || {
        (load.refused() >= 30).then_some(())
    });
    if min_free_bytes > 0 && full.is_some() {
        let (status, ready) = http_get(sluice.ports.http, "/readyz");
        assert_eq!(status, 503, "{ready}");
        assert!(ready.contains("insufficient_storage"), "{ready}");
        assert!(
            ready.to_ascii_lowercase().contains("retry-after"),
            "{ready}"
        );
        let (_, metrics) = http_get(sluice.ports.http, "/metrics");
        assert!(metrics.contains("sluice_storage_free_bytes"), "{metrics}");
        assert!(
            metrics.contains("sluice_storage_refusals_total{reason=\"reserve\"}"),
            "{metrics}"
        );
    }
    // Without a reserve a checkpoint can free a little room between two refusals, so an
    // HTTP send may find space and be stored (202 is then true); it must meet the full disk
    // with a 507 within a few tries while the load goes on.
    let (mut api_status, mut api_response) = api_send(&sluice);
    for _ in 0..20 {
        if api_status == 507 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        (api_status, api_response) = api_send(&sluice);
    }
    let mut outcomes = load.finish();
    assert!(full.is_some(), "the disk never filled:\n{}", sluice.logs());
    assert_eq!(api_status, 507, "{api_response}");
    assert!(
        api_response
            .to_ascii_lowercase()
            .contains("retry-after: 30"),
        "{api_response}"
    );
    assert!(
        api_response.contains(r#""code":"insufficient_storage""#),
        "{api_response}"
    );
    assert_refusals_are_452(&outcomes, &sluice);
    let acknowledged = outcomes.iter().filter(|o| o.acknowledged()).count();
    assert!(acknowledged > 50, "only {acknowledged} acknowledged");

    // Space comes back: service resumes without a restart.
    std::fs::remove_file(&ballast).unwrap();
    let resumed = resumes(port, &next, FILL_SIZE, Duration::from_secs(60));
    assert!(
        resumed.is_some(),
        "no 250 after space returned:\n{}",
        notable_log_lines(&sluice)
    );
    outcomes.extend(resumed);
    if min_free_bytes > 0 {
        let (status, ready) = http_get(sluice.ports.http, "/readyz");
        assert_eq!(status, 200, "{ready}");
    }
    println!(
        "acknowledged {} and refused {} of {} ({} bytes each), then resumed",
        acknowledged,
        outcomes.len() - acknowledged - 1,
        outcomes.len() - 1,
        FILL_SIZE
    );
    assert_acknowledged_survive(&mut sluice, &outcomes, FILL_SIZE);
}

#[test]
fn a_full_disk_refuses_with_452_and_loses_no_acknowledged_message() {
    let _serial = one_at_a_time();
    // No reserve: SQLite itself runs into ENOSPC (SQLITE_FULL).
    fill_the_disk(0);
}

#[test]
fn the_free_space_reserve_refuses_before_the_disk_is_full() {
    let _serial = one_at_a_time();
    fill_the_disk(8 << 20);
}

const EIO_SIZE: usize = 4 * 1024;

#[test]
fn fsync_and_write_errors_are_never_acknowledged() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    let shim = build_fault_shim(&root);
    let data = root.join("data");
    let control = root.join("fault");
    let mut sluice = Sluice::builder(BIN)
        .data_dir(&data)
        .upstream(free_port())
        .env("LD_PRELOAD", shim.to_str().unwrap())
        .env("SLUICE_FAULT_DIR", data.to_str().unwrap())
        .env("SLUICE_FAULT_CONTROL", control.to_str().unwrap())
        .start();
    let port = sluice.ports.plain;
    let next = Arc::new(AtomicU64::new(1));
    let load = Load::start(port, 6, EIO_SIZE, &next);
    std::thread::sleep(Duration::from_millis(1500));
    let mut windows = Vec::new();
    for fault in ["fsync", "write", "fsync write"] {
        std::fs::write(&control, fault).unwrap();
        let on = Instant::now();
        std::thread::sleep(Duration::from_millis(800));
        let (status, response) = api_send(&sluice);
        assert_eq!(status, 507, "HTTP send during {fault} faults: {response}");
        assert!(
            response.to_ascii_lowercase().contains("retry-after: 30"),
            "{response}"
        );
        std::thread::sleep(Duration::from_millis(1700));
        std::fs::remove_file(&control).unwrap();
        windows.push((fault, on, Instant::now()));
        std::thread::sleep(Duration::from_millis(1500));
    }
    let outcomes = load.finish();
    assert_refusals_are_452(&outcomes, &sluice);
    // A commit whose fsync finished just before the fault may still be answered after it:
    // only answers well inside each window count.
    let grace = Duration::from_millis(500);
    for (fault, on, off) in &windows {
        let during: Vec<_> = outcomes
            .iter()
            .filter(|o| o.at > *on + grace && o.at < *off)
            .collect();
        let acknowledged = during.iter().filter(|o| o.acknowledged()).count();
        assert!(!during.is_empty(), "no answers during the {fault} fault");
        assert_eq!(
            acknowledged,
            0,
            "{acknowledged} of {} acknowledged while {fault} failed",
            during.len()
        );
        let after = outcomes
            .iter()
            .filter(|o| o.at > *off + Duration::from_millis(100) && o.acknowledged())
            .count();
        assert!(after > 0, "nothing acknowledged after the {fault} fault");
    }
    let acknowledged = outcomes.iter().filter(|o| o.acknowledged()).count();
    println!(
        "acknowledged {acknowledged} and refused {} of {}",
        outcomes.len() - acknowledged,
        outcomes.len()
    );
    assert_acknowledged_survive(&mut sluice, &outcomes, EIO_SIZE);
}
