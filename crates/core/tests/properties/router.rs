//! `RoutingTable::route`: every recipient lands in exactly one route, under the first
//! enabled rule (by priority, then id) that matches and names an enabled provider, else the
//! fallback; a weighted split draws only providers of weight > 0; a fixed sample gives a
//! fixed answer; any sample (even outside [0, 1)) is safe.

use std::collections::BTreeSet;

use proptest::prelude::*;
use sluice_core::Source;
use sluice_core::router::{
    MessageFacts, ProviderSlot, Route, RoutingTable, Rule, Target, WeightedProvider, glob_match,
    matches,
};
use sluice_core::routing::RuleConditions;

const DOMAINS: [&str; 4] = ["a.test", "b.test", "c.test", "d.test"];

fn slot() -> impl Strategy<Value = ProviderSlot> {
    (1i64..6, proptest::bool::weighted(0.8), 0i64..3, 0i64..3).prop_map(
        |(id, enabled, priority, created_at)| ProviderSlot {
            id,
            enabled,
            priority,
            created_at,
        },
    )
}

/// Conditions, each set only now and then, so that several rules often match one
/// recipient and their order decides.
fn conditions() -> impl Strategy<Value = RuleConditions> {
    use proptest::option::weighted;
    (
        weighted(0.3, proptest::sample::subsequence(DOMAINS.to_vec(), 1..=3)),
        weighted(
            0.2,
            prop_oneof![Just("*@a.test"), Just("app@*"), Just("x?y@*")],
        ),
        weighted(0.2, prop_oneof![Just("t1"), Just("t2")]),
        weighted(0.2, prop_oneof![Just(Source::Api), Just(Source::Smtp)]),
        weighted(0.2, 0i64..3000),
    )
        .prop_map(|(domains, sender, tag, source, max_size)| RuleConditions {
            sender: sender.map(str::to_string),
            recipient_domains: domains.map(|d| d.into_iter().map(str::to_string).collect()),
            tag: tag.map(str::to_string),
            source,
            max_size,
            ..RuleConditions::default()
        })
}

fn rule() -> impl Strategy<Value = Rule> {
    (
        1i64..20,
        0i64..4,
        proptest::bool::weighted(0.8),
        conditions(),
        1i64..8,
        proptest::collection::vec(1i64..8, 0..3),
        proptest::collection::vec(
            (1i64..8, prop_oneof![Just(0u32), 1u32..5, Just(u32::MAX)]).prop_map(
                |(provider_id, weight)| WeightedProvider {
                    provider_id,
                    weight,
                },
            ),
            0..4,
        ),
    )
        .prop_map(
            |(id, priority, enabled, conditions, provider_id, fallbacks, split)| Rule {
                id,
                priority,
                enabled,
                conditions,
                provider_id,
                fallbacks,
                split,
            },
        )
}

/// Rules with distinct ids, as the store has them.
fn rules() -> impl Strategy<Value = Vec<Rule>> {
    proptest::collection::vec(rule(), 0..6).prop_map(|mut rules| {
        let mut seen = BTreeSet::new();
        rules.retain(|r| seen.insert(r.id));
        rules
    })
}

fn recipients() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(
        (0usize..3, proptest::sample::select(DOMAINS.to_vec()))
            .prop_map(|(user, domain)| format!("u{user}@{domain}")),
        0..8,
    )
}

fn message() -> impl Strategy<Value = (String, Source, Vec<String>, i64)> {
    (
        prop_oneof![Just("app@a.test"), Just("xzy@b.test"), Just("other@c.test")],
        prop_oneof![Just(Source::Api), Just(Source::Smtp)],
        proptest::sample::subsequence(vec!["t1".to_string(), "t2".to_string()], 0..=2),
        0i64..5000,
    )
        .prop_map(|(from, source, tags, size)| (from.to_string(), source, tags, size))
}

fn enabled(table: &RoutingTable<'_>, id: i64) -> bool {
    table
        .account_providers
        .iter()
        .chain(table.system_providers)
        .any(|p| p.id == id && p.enabled)
}

/// The provider a sample falls on, by cumulative weight (the module's documented draw).
fn reference_draw(split: &[WeightedProvider], sample: f64) -> Option<i64> {
    let total: f64 = split.iter().map(|w| f64::from(w.weight)).sum();
    let point = sample * total;
    let mut upto = 0.0;
    for w in split {
        upto += f64::from(w.weight);
        if point < upto {
            return Some(w.provider_id);
        }
    }
    None
}

/// Where a recipient goes, by the reference reading of the module doc: the first enabled
/// rule (by priority, then id) that matches and names an enabled provider, its providers
/// (drawn one first) enabled and each once; else the fallback.
fn expected(
    table: &RoutingTable<'_>,
    facts: &MessageFacts<'_>,
    rcpt: &str,
    sample: f64,
) -> (Option<i64>, Vec<Target>) {
    let mut ordered: Vec<&Rule> = table.rules.iter().filter(|r| r.enabled).collect();
    ordered.sort_by_key(|r| (r.priority, r.id));
    for rule in ordered {
        if !matches(&rule.conditions, facts, rcpt) {
            continue;
        }
        let mut targets = Vec::new();
        let order = reference_draw(&rule.split, sample)
            .into_iter()
            .chain([rule.provider_id])
            .chain(rule.fallbacks.iter().copied());
        for id in order {
            if enabled(table, id) && !targets.contains(&Target::Provider(id)) {
                targets.push(Target::Provider(id));
            }
        }
        if !targets.is_empty() {
            return (Some(rule.id), targets);
        }
    }
    let first = |slots: &[ProviderSlot]| {
        slots
            .iter()
            .filter(|p| p.enabled)
            .min_by_key(|p| (p.priority, p.created_at, p.id))
            .map(|p| Target::Provider(p.id))
    };
    let fallback = first(table.account_providers)
        .or_else(|| first(table.system_providers))
        .unwrap_or(Target::ConfigDefault);
    (None, vec![fallback])
}

proptest! {
    #![proptest_config(crate::config())]

    #[test]
    fn every_recipient_lands_in_exactly_one_route_under_the_first_rule_that_takes_it(
        rules in rules(),
        account in proptest::collection::vec(slot(), 0..4),
        system in proptest::collection::vec(slot(), 0..3),
        (from, source, tags, size) in message(),
        recipients in recipients(),
        sample in 0.0..1.0f64,
    ) {
        let table = RoutingTable {
            rules: &rules,
            account_providers: &account,
            system_providers: &system,
        };
        let facts = MessageFacts { mail_from: &from, source, tags: &tags, size, headers: &[] };
        let routes = table.route(&facts, &recipients, sample);

        // Exactly the recipients handed in, each once (as often as it was handed in).
        let mut routed: Vec<&String> = routes.iter().flat_map(|r| &r.recipients).collect();
        let mut given: Vec<&String> = recipients.iter().collect();
        routed.sort();
        given.sort();
        prop_assert_eq!(routed, given);

        let mut seen_groups = BTreeSet::new();
        for route in &routes {
            prop_assert!(!route.recipients.is_empty());
            prop_assert!(!route.targets.is_empty());
            // One route per (rule, targets): the same way is one group.
            let group = (route.rule_id, format!("{:?}", route.targets));
            prop_assert!(seen_groups.insert(group), "two routes go one way");
            // No provider twice in a failover list; rule targets are enabled providers.
            let distinct: BTreeSet<String> =
                route.targets.iter().map(|t| format!("{t:?}")).collect();
            prop_assert_eq!(distinct.len(), route.targets.len());
            for rcpt in &route.recipients {
                let (rule_id, targets) = expected(&table, &facts, rcpt, sample);
                prop_assert_eq!(route.rule_id, rule_id, "{}", rcpt);
                prop_assert_eq!(&route.targets, &targets, "{}", rcpt);
            }
            if let Some(id) = route.rule_id {
                let rule = rules.iter().find(|r| r.id == id).unwrap();
                for target in &route.targets {
                    let Target::Provider(p) = *target else {
                        return Err(TestCaseError::fail("a rule routed to the config default"));
                    };
                    prop_assert!(enabled(&table, p), "disabled provider {p}");
                    let named = rule.provider_id == p
                        || rule.fallbacks.contains(&p)
                        || rule.split.iter().any(|w| w.provider_id == p && w.weight > 0);
                    prop_assert!(named, "provider {p} not named by rule {id}");
                }
            }
        }
        // Deterministic for a fixed sample.
        prop_assert_eq!(table.route(&facts, &recipients, sample), routes);
    }

    /// The provider drawn by a split (the first target, when the rule's own provider is
    /// not it) has weight > 0, and every provider of weight > 0 is drawn for some sample.
    #[test]
    fn weighted_splits_draw_only_weighted_providers(
        split in proptest::collection::vec(
            (10i64..14, prop_oneof![Just(0u32), 1u32..10, Just(u32::MAX)]),
            1..5,
        ),
        sample in prop_oneof![0.0..1.0f64, Just(0.0), Just(1.0 - f64::EPSILON)],
    ) {
        let split: Vec<WeightedProvider> = split
            .into_iter()
            .map(|(provider_id, weight)| WeightedProvider { provider_id, weight })
            .collect();
        // The rule's own provider (99) is enabled too, so the draw decides the head.
        let providers: Vec<ProviderSlot> = (10..14)
            .chain([99])
            .map(|id| ProviderSlot { id, enabled: true, priority: 0, created_at: 0 })
            .collect();
        let rules = vec![Rule {
            id: 1,
            priority: 0,
            enabled: true,
            conditions: RuleConditions::default(),
            provider_id: 99,
            fallbacks: Vec::new(),
            split: split.clone(),
        }];
        let table = RoutingTable { rules: &rules, account_providers: &providers, system_providers: &[] };
        let facts = MessageFacts { mail_from: "a@a.test", source: Source::Api, tags: &[], size: 1, headers: &[] };
        let routes = table.route(&facts, &["r@a.test".to_string()], sample);
        prop_assert_eq!(routes.len(), 1);
        let head = routes[0].targets[0];
        let weighted: Vec<i64> =
            split.iter().filter(|w| w.weight > 0).map(|w| w.provider_id).collect();
        if weighted.is_empty() {
            prop_assert_eq!(head, Target::Provider(99));
        } else {
            let Target::Provider(p) = head else { unreachable!() };
            prop_assert!(weighted.contains(&p), "drew {p} from {split:?}");
        }
    }

    /// Any f64 as the sample, NaN and infinities included: no panic, every recipient routed.
    #[test]
    fn any_sample_is_safe(
        rules in rules(),
        account in proptest::collection::vec(slot(), 0..4),
        recipients in recipients(),
        sample in prop_oneof![any::<f64>(), Just(f64::NAN), Just(f64::INFINITY), Just(-1.0), Just(1.0)],
    ) {
        let table = RoutingTable { rules: &rules, account_providers: &account, system_providers: &[] };
        let facts = MessageFacts { mail_from: "a@a.test", source: Source::Api, tags: &[], size: 1, headers: &[] };
        let routes: Vec<Route> = table.route(&facts, &recipients, sample);
        prop_assert_eq!(routes.iter().map(|r| r.recipients.len()).sum::<usize>(), recipients.len());
    }

    /// `glob_match` agrees with a plain recursive reading of `*` and `?`.
    #[test]
    fn globs_match_like_the_reference(
        pattern in "[ab*?]{0,8}",
        text in "[ab]{0,10}",
    ) {
        fn reference(p: &[char], t: &[char]) -> bool {
            match p.split_first() {
                None => t.is_empty(),
                Some(('*', rest)) => (0..=t.len()).any(|i| reference(rest, &t[i..])),
                Some((&c, rest)) => {
                    !t.is_empty() && (c == '?' || c == t[0]) && reference(rest, &t[1..])
                }
            }
        }
        let p: Vec<char> = pattern.chars().collect();
        let t: Vec<char> = text.chars().collect();
        prop_assert_eq!(glob_match(&pattern, &text), reference(&p, &t));
    }
}
