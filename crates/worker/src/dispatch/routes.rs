//! From an account's settings to routes: which providers, in which order, carry which
//! recipients (the rules through `sluice_core::router`, or a release's provider, or capture).

use super::{AccountSettings, Dispatch};
use sluice_core::router::{MessageFacts, ProviderSlot, Route, RoutingTable, Rule, Target};
use sluice_core::routing::RuleConditions;
use sluice_store::{ProviderRow, RuleRow};
use tracing::warn;

/// The routes of a message: a release goes to its provider, a sandboxed account's mail
/// to capture, anything else where the account's rules say.
pub(super) fn routes_of(
    message: Dispatch<'_>,
    settings: &AccountSettings,
    sandboxed: bool,
    sample: f64,
) -> Vec<Route> {
    let rcpts = &message.envelope.rcpt_to;
    let only = |target| {
        vec![Route {
            rule_id: None,
            targets: vec![target],
            recipients: rcpts.clone(),
        }]
    };
    match message.release_provider_id {
        Some(id) => return only(Target::Provider(id)),
        None if sandboxed => return only(Target::ConfigDefault),
        None => {}
    }
    // Only rules on headers need the header section read.
    let headers = if settings.rules.iter().any(|r| r.conditions.header.is_some()) {
        sluice_core::router::header_fields(message.body.headers())
    } else {
        Vec::new()
    };
    let facts = MessageFacts {
        mail_from: &message.envelope.mail_from,
        source: message.source,
        tags: message.tags,
        size: message.body.len() as i64,
        headers: &headers,
    };
    let (account_slots, system_slots): (Vec<_>, Vec<_>) = settings
        .providers
        .iter()
        .partition(|p| p.account_id == Some(message.account_id));
    let account_slots: Vec<ProviderSlot> = account_slots.into_iter().map(slot_of).collect();
    let system_slots: Vec<ProviderSlot> = system_slots.into_iter().map(slot_of).collect();
    let table = RoutingTable {
        rules: &settings.rules,
        account_providers: &account_slots,
        system_providers: &system_slots,
    };
    table.route(&facts, rcpts, sample)
}

/// What the router knows of a provider.
pub(super) fn slot_of(provider: &ProviderRow) -> ProviderSlot {
    ProviderSlot {
        id: provider.id,
        enabled: provider.enabled,
        priority: provider.priority,
        created_at: provider.created_at,
    }
}

pub(super) fn rule_of(row: &RuleRow) -> Option<Rule> {
    let conditions = match RuleConditions::parse(&row.conditions) {
        Ok(conditions) => conditions,
        Err(problem) => {
            warn!(rule_id = row.id, %problem, "rule skipped");
            return None;
        }
    };
    Some(Rule {
        id: row.id,
        priority: row.priority,
        enabled: row.enabled,
        conditions,
        provider_id: row.provider_id,
        fallbacks: row.fallbacks.clone(),
        split: row.split.clone(),
    })
}
