//! Test-only crash points. `SLUICE_TEST_CRASHPOINT=<name>[:<n>]` makes the process abort
//! (as a kill -9 would end it: no destructor, no flush) the n-th time (the first by
//! default) it passes the point called `name`, so a crash test can stop it between two
//! steps that a kill from outside hits only by luck (`crates/sluice/tests/spool_crash.rs`).
//! The variable is read once; unset, as in production, a pass costs one atomic load.
//!
//! The points: `body-synced` (a batch's bodies synced, its transaction not committed),
//! `purge-committed` (a purge committed rows that name bodies, not yet given back) and
//! `body-given-back` (one run of a body given back, the next not yet).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

struct Armed {
    name: String,
    /// Passes left before the abort.
    left: AtomicU64,
}

static ARMED: OnceLock<Option<Armed>> = OnceLock::new();

/// Aborts here when `SLUICE_TEST_CRASHPOINT` names this point and its count is reached.
pub fn crashpoint(name: &str) {
    let armed = ARMED.get_or_init(|| {
        let spec = std::env::var("SLUICE_TEST_CRASHPOINT").ok()?;
        let (name, nth) = match spec.split_once(':') {
            Some((name, nth)) => (name, nth.parse().unwrap_or(1)),
            None => (spec.as_str(), 1),
        };
        Some(Armed {
            name: name.to_string(),
            left: AtomicU64::new(nth),
        })
    });
    if let Some(armed) = armed
        && armed.name == name
        && armed.left.fetch_sub(1, Ordering::AcqRel) == 1
    {
        tracing::error!(point = name, "SLUICE_TEST_CRASHPOINT reached: aborting");
        std::process::abort();
    }
}
