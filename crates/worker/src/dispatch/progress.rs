//! What one message's provider calls add up to: the calls so far, the recipients settled,
//! the copies made for SMTP providers, and the merged report.

use super::{AccountSettings, Dispatch};
use sluice_core::{DeliveryReport, Verdict};
use sluice_store::ProviderAttempt;
use std::collections::HashMap;

/// What one message's deliveries made of it: the copies SMTP providers send, by sender
/// name (None when that is the message unchanged; of a split message, the head), and a
/// split message loaded whole for the providers that need it so.
#[derive(Default)]
pub(super) struct PreparedCopies {
    pub(super) copies: HashMap<Option<String>, Option<Vec<u8>>>,
    pub(super) whole: Option<crate::bodies::LoadedBody>,
}

/// What every route of one message is delivered with.
#[derive(Clone, Copy)]
pub(super) struct RouteAttempt<'a> {
    pub(super) message: Dispatch<'a>,
    pub(super) settings: &'a AccountSettings,
    pub(super) sandboxed: bool,
}

/// How a route ended: its recipients settled or left transient, or nothing of the
/// message tried because the first provider had no free slot.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum RouteEnd {
    Done,
    Busy,
}

/// The provider calls of one message so far, and the recipients whose result is final.
#[derive(Default)]
pub(super) struct Progress {
    pub(super) calls: Vec<ProviderAttempt>,
    pub(super) finals: Vec<sluice_core::RecipientResult>,
}

impl Progress {
    /// Keeps one provider call: its settled recipients are final (every one when it was
    /// the route's last provider), a failover event when some go on to the next provider.
    /// Returns the recipients left transient.
    pub(super) fn record(
        &mut self,
        provider_id: Option<i64>,
        mut report: DeliveryReport,
        last: bool,
    ) -> Vec<String> {
        let remaining = report.transient_recipients();
        if !remaining.is_empty() && !last {
            report.events.push((
                "failover".into(),
                format!(
                    "{} failed transiently for {} recipient(s); trying the next provider",
                    report.provider,
                    remaining.len()
                ),
            ));
        }
        let settled = report
            .recipients
            .iter()
            .filter(|r| last || r.verdict != Verdict::Transient)
            .cloned();
        self.finals.extend(settled);
        self.calls.push(ProviderAttempt {
            provider_id,
            report,
        });
        remaining
    }
}

/// One report for the message: each recipient's last result, everything else combined.
pub(super) fn merge(
    calls: &[ProviderAttempt],
    finals: Vec<sluice_core::RecipientResult>,
) -> DeliveryReport {
    let mut kinds: Vec<&str> = Vec::new();
    for call in calls {
        if !kinds.contains(&call.report.provider.as_str()) {
            kinds.push(&call.report.provider);
        }
    }
    DeliveryReport {
        provider: kinds.join("+"),
        recipients: finals,
        captured: !calls.is_empty() && calls.iter().all(|c| c.report.captured),
        provider_message_id: None,
        retry_after_secs: calls.iter().filter_map(|c| c.report.retry_after_secs).max(),
        events: calls.iter().flat_map(|c| c.report.events.clone()).collect(),
    }
}
