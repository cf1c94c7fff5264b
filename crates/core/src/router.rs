//! Which provider carries which recipient. Pure: the rules, the account's providers and a
//! random sample (for weighted splits) are inputs, so every case is a table row.
//!
//! Resolution, per recipient: the first enabled rule (by priority, then id) whose conditions
//! match and that names at least one enabled provider → the account's first enabled provider
//! (by priority, then creation) → the first enabled system-wide provider → the configured
//! default provider (`delivery.default_provider`, `log` unless set).

use serde::{Deserialize, Serialize};

use crate::Source;
use crate::routing::RuleConditions;

/// One provider of a weighted split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightedProvider {
    pub provider_id: i64,
    pub weight: u32,
}

/// A routing rule as the router sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: i64,
    pub priority: i64,
    pub enabled: bool,
    pub conditions: RuleConditions,
    /// The provider; tried first unless `split` is set.
    pub provider_id: i64,
    /// Tried in order, at once, when the one before fails transiently.
    pub fallbacks: Vec<i64>,
    /// When set, the first provider is drawn from these by weight; `provider_id` and the
    /// fallbacks follow as the failover list.
    pub split: Vec<WeightedProvider>,
}

/// What the router needs to know of a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderSlot {
    pub id: i64,
    pub enabled: bool,
    pub priority: i64,
    pub created_at: i64,
}

/// Where a group of recipients goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    Provider(i64),
    /// `delivery.default_provider` from the config.
    ConfigDefault,
}

/// The facts of a message that rules may test.
#[derive(Debug, Clone, Copy)]
pub struct MessageFacts<'a> {
    pub mail_from: &'a str,
    pub source: Source,
    pub tags: &'a [String],
    pub size: i64,
    pub headers: &'a [(String, String)],
}

/// Recipients that go the same way: try `targets` in order (failover).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub rule_id: Option<i64>,
    pub targets: Vec<Target>,
    pub recipients: Vec<String>,
}

/// Everything the router decides from.
#[derive(Debug, Clone, Copy)]
pub struct RoutingTable<'a> {
    pub rules: &'a [Rule],
    pub account_providers: &'a [ProviderSlot],
    pub system_providers: &'a [ProviderSlot],
}

impl RoutingTable<'_> {
    /// Groups `recipients` by where they go. `sample` in [0, 1) draws weighted splits (one
    /// draw per message, so a message's recipients that match one rule stay together).
    pub fn route(
        &self,
        facts: &MessageFacts<'_>,
        recipients: &[String],
        sample: f64,
    ) -> Vec<Route> {
        let mut rules: Vec<&Rule> = self.rules.iter().filter(|r| r.enabled).collect();
        rules.sort_by_key(|r| (r.priority, r.id));
        let fallback = first_enabled(self.account_providers)
            .or_else(|| first_enabled(self.system_providers))
            .map_or(Target::ConfigDefault, Target::Provider);
        let mut routes: Vec<Route> = Vec::new();
        for rcpt in recipients {
            let (rule_id, targets) = rules
                .iter()
                .find_map(|rule| {
                    if !matches(&rule.conditions, facts, rcpt) {
                        return None;
                    }
                    let targets = self.rule_targets(rule, sample);
                    (!targets.is_empty()).then_some((Some(rule.id), targets))
                })
                .unwrap_or_else(|| (None, vec![fallback]));
            match routes
                .iter_mut()
                .find(|r| r.rule_id == rule_id && r.targets == targets)
            {
                Some(route) => route.recipients.push(rcpt.clone()),
                None => routes.push(Route {
                    rule_id,
                    targets,
                    recipients: vec![rcpt.clone()],
                }),
            }
        }
        routes
    }

    fn enabled(&self, id: i64) -> bool {
        self.account_providers
            .iter()
            .chain(self.system_providers)
            .any(|p| p.id == id && p.enabled)
    }

    /// The rule's providers in failover order, disabled and repeated ones left out.
    fn rule_targets(&self, rule: &Rule, sample: f64) -> Vec<Target> {
        let mut order = Vec::new();
        if let Some(first) = draw(&rule.split, sample) {
            order.push(first);
        }
        order.push(rule.provider_id);
        order.extend(&rule.fallbacks);
        let mut targets = Vec::new();
        for id in order {
            if self.enabled(id) && !targets.contains(&Target::Provider(id)) {
                targets.push(Target::Provider(id));
            }
        }
        targets
    }
}

fn first_enabled(providers: &[ProviderSlot]) -> Option<i64> {
    providers
        .iter()
        .filter(|p| p.enabled)
        .min_by_key(|p| (p.priority, p.created_at, p.id))
        .map(|p| p.id)
}

/// The provider a sample in [0, 1) falls on, each taking a share of its weight.
fn draw(split: &[WeightedProvider], sample: f64) -> Option<i64> {
    let total: u64 = split.iter().map(|w| u64::from(w.weight)).sum();
    if total == 0 {
        return None;
    }
    let point = (sample.clamp(0.0, 1.0) * total as f64) as u64;
    let mut upto = 0;
    for entry in split {
        upto += u64::from(entry.weight);
        if point < upto {
            return Some(entry.provider_id);
        }
    }
    split
        .iter()
        .rev()
        .find(|w| w.weight > 0)
        .map(|w| w.provider_id)
}

/// Whether every condition set on a rule holds for this recipient of this message.
pub fn matches(conditions: &RuleConditions, facts: &MessageFacts<'_>, rcpt: &str) -> bool {
    if let Some(glob) = &conditions.sender
        && !glob_match(
            &glob.to_ascii_lowercase(),
            &facts.mail_from.to_ascii_lowercase(),
        )
    {
        return false;
    }
    if let Some(domains) = &conditions.recipient_domains {
        let domain = crate::domain_of(rcpt).unwrap_or_default();
        if !domains.iter().any(|d| d.eq_ignore_ascii_case(&domain)) {
            return false;
        }
    }
    if let Some(tag) = &conditions.tag
        && !facts.tags.iter().any(|t| t == tag)
    {
        return false;
    }
    if let Some(source) = conditions.source
        && source != facts.source
    {
        return false;
    }
    if conditions.min_size.is_some_and(|min| facts.size < min)
        || conditions.max_size.is_some_and(|max| facts.size > max)
    {
        return false;
    }
    if let Some(header) = &conditions.header {
        let mut values = facts
            .headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case(&header.name))
            .map(|(_, value)| value.trim());
        let found = match (&header.equals, &header.regex) {
            (Some(expected), _) => values.any(|v| v == expected),
            (None, Some(pattern)) => match regex::Regex::new(pattern) {
                Ok(re) => values.any(|v| re.is_match(v)),
                Err(_) => false,
            },
            (None, None) => values.next().is_some(),
        };
        if !found {
            return false;
        }
    }
    true
}

/// `*` matches any run of characters, `?` one character; everything else itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// The header fields of a message (unfolded), read up to the first empty line.
pub fn header_fields(message: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(&message[..message.len().min(256 * 1024)]);
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push_str(line);
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            fields.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    fields
}

#[cfg(test)]
#[path = "router_tests.rs"]
mod tests;
