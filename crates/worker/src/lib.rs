//! The queue runner: claim due messages under a lease, deliver, record the attempt and
//! reschedule; and the accept path that commits new messages (or, in sync mode, delivers
//! them while the client waits).

mod accept;
pub mod clock;
mod dispatch;
pub mod event_webhooks;
pub mod handoff;
pub mod plan;
pub mod retention;
mod runner;
pub mod slots;

pub use accept::{Acceptor, DeliveryMode};
pub use dispatch::{Dispatch, Dispatched, Dispatcher};
pub use runner::{Worker, WorkerConfig};
pub use slots::SlotLimits;
pub use sluice_core::AcceptOutcome;

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
