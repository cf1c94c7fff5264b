use serde_json::json;

use super::*;

fn slot(id: i64, enabled: bool, priority: i64, created_at: i64) -> ProviderSlot {
    ProviderSlot {
        id,
        enabled,
        priority,
        created_at,
    }
}

fn rule(id: i64, priority: i64, conditions: serde_json::Value, provider: i64) -> Rule {
    Rule {
        id,
        priority,
        enabled: true,
        conditions: RuleConditions::parse(&conditions).unwrap(),
        provider_id: provider,
        fallbacks: Vec::new(),
        split: Vec::new(),
    }
}

fn facts<'a>(headers: &'a [(String, String)], tags: &'a [String]) -> MessageFacts<'a> {
    MessageFacts {
        mail_from: "app@billing.example.com",
        source: Source::Api,
        tags,
        size: 2_000,
        headers,
    }
}

fn p(id: i64) -> Target {
    Target::Provider(id)
}

/// Which targets one recipient of the standard message gets under one rule.
#[test]
fn each_condition_matches_and_misses() {
    let headers = vec![
        ("X-Priority".to_string(), "1".to_string()),
        ("Subject".to_string(), "Invoice 7".to_string()),
    ];
    let tags = vec!["invoice".to_string()];
    let providers = [slot(1, true, 10, 1), slot(2, true, 20, 2)];
    // (conditions, recipient, expected first target)
    let table = [
        (json!({}), "a@x.test", p(2)),
        (
            json!({ "sender": "*@billing.example.com" }),
            "a@x.test",
            p(2),
        ),
        (
            json!({ "sender": "*@BILLING.example.com" }),
            "a@x.test",
            p(2),
        ),
        (json!({ "sender": "app@*.example.com" }), "a@x.test", p(2)),
        (
            json!({ "sender": "ap?@billing.example.com" }),
            "a@x.test",
            p(2),
        ),
        (json!({ "sender": "*@sales.example.com" }), "a@x.test", p(1)),
        (json!({ "recipient_domains": ["x.test"] }), "a@X.TEST", p(2)),
        (json!({ "recipient_domains": ["y.test"] }), "a@x.test", p(1)),
        (
            json!({ "header": { "name": "x-priority", "equals": "1" } }),
            "a@x.test",
            p(2),
        ),
        (
            json!({ "header": { "name": "X-Priority", "equals": "2" } }),
            "a@x.test",
            p(1),
        ),
        (
            json!({ "header": { "name": "Subject", "regex": "^Invoice \\d+$" } }),
            "a@x.test",
            p(2),
        ),
        (
            json!({ "header": { "name": "Subject", "regex": "^Receipt" } }),
            "a@x.test",
            p(1),
        ),
        (
            json!({ "header": { "name": "X-Missing", "regex": ".*" } }),
            "a@x.test",
            p(1),
        ),
        (json!({ "tag": "invoice" }), "a@x.test", p(2)),
        (json!({ "tag": "newsletter" }), "a@x.test", p(1)),
        (json!({ "source": "api" }), "a@x.test", p(2)),
        (json!({ "source": "smtp" }), "a@x.test", p(1)),
        (
            json!({ "min_size": 2000, "max_size": 2000 }),
            "a@x.test",
            p(2),
        ),
        (json!({ "max_size": 1999 }), "a@x.test", p(1)),
        (json!({ "min_size": 2001 }), "a@x.test", p(1)),
        (
            json!({ "tag": "invoice", "source": "smtp" }),
            "a@x.test",
            p(1),
        ),
    ];
    for (conditions, rcpt, expected) in table {
        let rules = [rule(7, 1, conditions.clone(), 2)];
        let table = RoutingTable {
            rules: &rules,
            account_providers: &providers,
            system_providers: &[],
        };
        let routes = table.route(&facts(&headers, &tags), &[rcpt.to_string()], 0.0);
        assert_eq!(routes.len(), 1, "{conditions}");
        assert_eq!(routes[0].targets[0], expected, "{conditions} for {rcpt}");
        assert_eq!(
            routes[0].rule_id.is_some(),
            expected == p(2),
            "{conditions}"
        );
    }
}

#[test]
fn resolution_order_when_no_rule_matches() {
    let none: [Rule; 0] = [];
    // (account providers, system providers, expected)
    let table = [
        (
            vec![slot(1, true, 20, 1), slot(2, true, 10, 2)],
            vec![slot(9, true, 1, 0)],
            p(2),
        ),
        (
            vec![slot(1, true, 10, 5), slot(2, true, 10, 3)],
            vec![],
            p(2),
        ),
        (
            vec![slot(1, false, 1, 1), slot(2, true, 50, 2)],
            vec![],
            p(2),
        ),
        (vec![slot(1, false, 1, 1)], vec![slot(9, true, 1, 0)], p(9)),
        (vec![], vec![slot(9, false, 1, 0)], Target::ConfigDefault),
        (vec![], vec![], Target::ConfigDefault),
    ];
    for (account, system, expected) in table {
        let table = RoutingTable {
            rules: &none,
            account_providers: &account,
            system_providers: &system,
        };
        let routes = table.route(&facts(&[], &[]), &["a@x.test".to_string()], 0.5);
        assert_eq!(routes[0].targets, vec![expected], "{account:?} {system:?}");
    }
}

#[test]
fn first_matching_rule_by_priority_wins_and_recipients_split() {
    let providers = [
        slot(1, true, 1, 1),
        slot(2, true, 1, 2),
        slot(3, true, 1, 3),
    ];
    let rules = [
        rule(10, 50, json!({ "recipient_domains": ["gmail.com"] }), 2),
        rule(
            11,
            5,
            json!({ "recipient_domains": ["gmail.com", "yahoo.com"] }),
            3,
        ),
        rule(12, 90, json!({}), 1),
    ];
    let table = RoutingTable {
        rules: &rules,
        account_providers: &providers,
        system_providers: &[],
    };
    let rcpts: Vec<String> = ["a@gmail.com", "b@corp.test", "c@yahoo.com", "d@corp.test"]
        .map(String::from)
        .to_vec();
    let routes = table.route(&facts(&[], &[]), &rcpts, 0.0);
    assert_eq!(
        routes,
        vec![
            Route {
                rule_id: Some(11),
                targets: vec![p(3)],
                recipients: vec!["a@gmail.com".into(), "c@yahoo.com".into()],
            },
            Route {
                rule_id: Some(12),
                targets: vec![p(1)],
                recipients: vec!["b@corp.test".into(), "d@corp.test".into()],
            },
        ]
    );
}

#[test]
fn failover_list_skips_disabled_and_rule_without_providers_is_passed_over() {
    let providers = [
        slot(1, true, 1, 1),
        slot(2, false, 1, 2),
        slot(3, true, 1, 3),
    ];
    let mut failover = rule(10, 1, json!({}), 2);
    failover.fallbacks = vec![3, 2, 1];
    let table = RoutingTable {
        rules: std::slice::from_ref(&failover),
        account_providers: &providers,
        system_providers: &[],
    };
    let routes = table.route(&facts(&[], &[]), &["a@x.test".to_string()], 0.0);
    assert_eq!(routes[0].targets, vec![p(3), p(1)]);

    let mut dead = rule(10, 1, json!({}), 2);
    dead.fallbacks = vec![2];
    let disabled_rule = Rule {
        enabled: false,
        ..rule(9, 0, json!({}), 3)
    };
    let rules = [disabled_rule, dead];
    let table = RoutingTable {
        rules: &rules,
        account_providers: &providers,
        system_providers: &[],
    };
    let routes = table.route(&facts(&[], &[]), &["a@x.test".to_string()], 0.0);
    assert_eq!(routes[0].rule_id, None);
    assert_eq!(routes[0].targets, vec![p(1)]);
}

#[test]
fn weighted_split_draws_by_sample_then_fails_over() {
    let providers = [
        slot(1, true, 1, 1),
        slot(2, true, 1, 2),
        slot(3, true, 1, 3),
    ];
    let mut split = rule(10, 1, json!({}), 1);
    split.split = vec![
        WeightedProvider {
            provider_id: 2,
            weight: 3,
        },
        WeightedProvider {
            provider_id: 3,
            weight: 1,
        },
    ];
    split.fallbacks = vec![3];
    let table = RoutingTable {
        rules: std::slice::from_ref(&split),
        account_providers: &providers,
        system_providers: &[],
    };
    let first = |sample: f64| {
        table.route(&facts(&[], &[]), &["a@x.test".to_string()], sample)[0]
            .targets
            .clone()
    };
    assert_eq!(first(0.0), vec![p(2), p(1), p(3)]);
    assert_eq!(first(0.74), vec![p(2), p(1), p(3)]);
    assert_eq!(first(0.75), vec![p(3), p(1)]);
    assert_eq!(first(0.999), vec![p(3), p(1)]);
    // Over many draws the shares follow the weights.
    let to_two = (0..1000)
        .filter(|i| first(f64::from(*i) / 1000.0)[0] == p(2))
        .count();
    assert_eq!(to_two, 750);
}

#[test]
fn globs() {
    let table = [
        ("*", "", true),
        ("*@a.test", "x@a.test", true),
        ("*@a.test", "x@b.test", false),
        ("a*b*c", "a-b-c", true),
        ("a*b*c", "a-c-b", false),
        ("?", "", false),
        ("x?z", "xyz", true),
        ("noreply@a.test", "noreply@a.test", true),
    ];
    for (pattern, text, expected) in table {
        assert_eq!(glob_match(pattern, text), expected, "{pattern} {text}");
    }
}

#[test]
fn header_fields_are_unfolded_and_stop_at_the_body() {
    let message = b"Subject: one\r\n two\r\nX-Tag:\tv\r\n\r\nX-Body: no\r\n";
    assert_eq!(
        header_fields(message),
        vec![
            ("Subject".to_string(), "one two".to_string()),
            ("X-Tag".to_string(), "v".to_string()),
        ]
    );
}
