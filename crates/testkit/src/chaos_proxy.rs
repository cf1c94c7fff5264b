//! `ChaosProxy`: a TCP proxy that cuts its connections at random, for network-fault tests.
//! Each accepted connection is joined to the target and copied both ways until it is cut
//! after a random number of bytes (both directions together) or a random time, whichever
//! comes first; both sides are then shut down without a word. Seeded: the same seed cuts
//! the n-th connection at the same points.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Where the proxy cuts: each connection gets a byte budget in `[min_bytes, max_bytes)`
/// and a lifetime in `[min_ms, max_ms)`, drawn from the seed and its number.
#[derive(Debug, Clone, Copy)]
pub struct Chaos {
    pub seed: u64,
    pub min_bytes: u64,
    pub max_bytes: u64,
    pub min_ms: u64,
    pub max_ms: u64,
}

struct Shared {
    chaos: Chaos,
    target: u16,
    /// While false, new connections are copied whole (never cut).
    cutting: AtomicBool,
    stop: AtomicBool,
    accepted: AtomicUsize,
    cuts: AtomicUsize,
}

/// A proxy on a loopback port in front of `127.0.0.1:<target>`; stops when dropped.
pub struct ChaosProxy {
    pub port: u16,
    shared: Arc<Shared>,
}

impl ChaosProxy {
    pub fn start(target: u16, chaos: Chaos) -> ChaosProxy {
        assert!(chaos.min_bytes < chaos.max_bytes && chaos.min_ms < chaos.max_ms);
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            chaos,
            target,
            cutting: AtomicBool::new(true),
            stop: AtomicBool::new(false),
            accepted: AtomicUsize::new(0),
            cuts: AtomicUsize::new(0),
        });
        let accepting = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let n = accepting.accepted.fetch_add(1, Ordering::SeqCst) as u64;
                let shared = accepting.clone();
                std::thread::spawn(move || serve(shared, client, n));
            }
        });
        ChaosProxy { port, shared }
    }

    /// Whether new connections are cut (on from the start). Connections already open keep
    /// their cut points: off lets a test settle and check what was done under the faults.
    pub fn set_cutting(&self, on: bool) {
        self.shared.cutting.store(on, Ordering::SeqCst);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Connections cut so far.
    pub fn cuts(&self) -> usize {
        self.shared.cuts.load(Ordering::SeqCst)
    }
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// splitmix64: a small, seedable generator (no dependency needed).
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn between(state: &mut u64, low: u64, high: u64) -> u64 {
    low + splitmix(state) % (high - low)
}

struct Conn {
    client: TcpStream,
    server: TcpStream,
    /// Bytes still allowed through, both directions together.
    budget: AtomicU64,
    closed: AtomicBool,
}

impl Conn {
    /// Shuts both sides down once; true for the call that did it.
    fn close(&self) -> bool {
        if self.closed.swap(true, Ordering::SeqCst) {
            return false;
        }
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.server.shutdown(Shutdown::Both);
        true
    }
}

fn serve(shared: Arc<Shared>, client: TcpStream, n: u64) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", shared.target)) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let chaos = shared.chaos;
    let mut state = chaos.seed ^ n.wrapping_mul(0xA24B_AED4_963E_E407);
    let bytes = between(&mut state, chaos.min_bytes, chaos.max_bytes);
    let lifetime = Duration::from_millis(between(&mut state, chaos.min_ms, chaos.max_ms));
    let cutting = shared.cutting.load(Ordering::SeqCst);
    let conn = Arc::new(Conn {
        client,
        server,
        budget: AtomicU64::new(if cutting { bytes } else { u64::MAX }),
        closed: AtomicBool::new(false),
    });
    let (Ok(client_in), Ok(server_in)) = (conn.client.try_clone(), conn.server.try_clone()) else {
        conn.close();
        return;
    };
    let up = {
        let (conn, shared) = (conn.clone(), shared.clone());
        std::thread::spawn(move || copy(&conn, &shared, client_in, &conn.server))
    };
    let down = {
        let (conn, shared) = (conn.clone(), shared.clone());
        std::thread::spawn(move || copy(&conn, &shared, server_in, &conn.client))
    };
    if cutting {
        let deadline = Instant::now() + lifetime;
        while Instant::now() < deadline && !conn.closed.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
        }
        if conn.close() {
            shared.cuts.fetch_add(1, Ordering::SeqCst);
        }
    }
    let _ = up.join();
    let _ = down.join();
}

/// Copies `from` into `to` until either ends or the byte budget runs out (then a cut).
fn copy(conn: &Conn, shared: &Shared, mut from: TcpStream, mut to: &TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let left = conn
            .budget
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| {
                Some(b.saturating_sub(n as u64))
            })
            .unwrap_or(0);
        let pass = (n as u64).min(left) as usize;
        if to.write_all(&buf[..pass]).is_err() {
            break;
        }
        if pass < n {
            if conn.close() {
                shared.cuts.fetch_add(1, Ordering::SeqCst);
            }
            return;
        }
    }
    conn.close();
}
