//! The queue runner: claim due messages under a lease, deliver, record the attempt and
//! reschedule; sync mode's delivery of a message its client waits for (`SyncDelivery`).
//! Accepting new mail is `sluice-accept`'s; it hands mail to this crate through
//! `handoff` and `SyncDelivery`.

pub mod bodies;
pub mod capture_index;
pub mod clock;
mod dispatch;
pub mod event_webhooks;
pub mod handoff;
pub mod plan;
pub mod retention;
mod runner;
pub mod slots;
mod sync;

pub use bodies::DeliveryBody;
pub use dispatch::{Dispatch, Dispatched, Dispatcher, DispatcherSettings};
pub use runner::{Worker, WorkerConfig};
pub use slots::SlotLimits;
pub use sluice_core::AcceptOutcome;
pub use sync::{SyncDelivery, SyncMessage};

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
