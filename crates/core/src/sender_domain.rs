//! Sender domains: the syntax an account may claim, and the DNS records that prove and
//! describe it, read from TXT values a resolver found (no lookups here):
//! the ownership token at `_sluice.<domain>`, SPF at the domain, the account's DKIM key at
//! `<selector>._domainkey.<domain>`, DMARC at `_dmarc.<domain>`.

use serde::{Deserialize, Serialize};

/// The label under which an account publishes its verification token.
pub const VERIFY_LABEL: &str = "_sluice";
/// The TXT value's prefix: `sluice-verify=<token>`.
pub const VERIFY_PREFIX: &str = "sluice-verify=";

/// What a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Ok,
    Missing,
    Invalid,
}

impl CheckStatus {
    /// The API's word for it: `ok`, `missing` or `invalid`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Ok => "ok",
            CheckStatus::Missing => "missing",
            CheckStatus::Invalid => "invalid",
        }
    }
}

/// One record's status and a sentence saying what was found (and what to fix).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub status: CheckStatus,
    pub detail: String,
}

impl Check {
    pub fn ok(detail: impl Into<String>) -> Check {
        Check {
            status: CheckStatus::Ok,
            detail: detail.into(),
        }
    }
    pub fn missing(detail: impl Into<String>) -> Check {
        Check {
            status: CheckStatus::Missing,
            detail: detail.into(),
        }
    }
    pub fn invalid(detail: impl Into<String>) -> Check {
        Check {
            status: CheckStatus::Invalid,
            detail: detail.into(),
        }
    }
}

/// A domain as an account may name it: lower-cased, without a final dot, ASCII (an
/// internationalised name in its `xn--` form), at least two labels of letters, digits and
/// inner hyphens, at most 253 characters. Else a sentence saying what is wrong.
pub fn normalize_domain(input: &str) -> Result<String, String> {
    let domain = input.trim().trim_end_matches('.').to_ascii_lowercase();
    if domain.is_empty() {
        return Err("the domain is empty".into());
    }
    if !domain.is_ascii() {
        return Err(format!(
            "{domain:?}: write an internationalised domain in its ASCII (xn--) form"
        ));
    }
    if domain.len() > 253 {
        return Err("a domain has at most 253 characters".into());
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err(format!("{domain:?} is not a domain of its own (no dot)"));
    }
    for label in &labels {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok {
            return Err(format!("{domain:?} is not a domain"));
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(format!("{domain:?} is an address, not a domain"));
    }
    Ok(domain)
}

/// Where the verification token is published.
pub fn verification_name(domain: &str) -> String {
    format!("{VERIFY_LABEL}.{domain}")
}

/// The TXT value that proves ownership.
pub fn verification_value(token: &str) -> String {
    format!("{VERIFY_PREFIX}{token}")
}

/// Whether one of the TXT values at `_sluice.<domain>` is exactly `sluice-verify=<token>`
/// (surrounding blanks aside).
pub fn proves_ownership(token: &str, txts: &[String]) -> bool {
    let expected = verification_value(token);
    txts.iter().any(|txt| txt.trim() == expected)
}

/// `tag=value` pairs of a DKIM or DMARC record (`;`-separated, blanks around ignored).
/// `None` when a non-empty part has no `=`.
pub fn tags(record: &str) -> Option<Vec<(String, String)>> {
    let mut found = Vec::new();
    for part in record.split(';') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (tag, value) = part.split_once('=')?;
        found.push((tag.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    Some(found)
}

fn tag<'a>(tags: &'a [(String, String)], name: &str) -> Option<&'a str> {
    tags.iter()
        .find(|(t, _)| t == name)
        .map(|(_, v)| v.as_str())
}

/// SPF from the TXT values at the domain: exactly one `v=spf1` record whose terms are
/// mechanisms and modifiers of RFC 7208, with at most 10 that cost a lookup.
pub fn spf_check(txts: &[String]) -> Check {
    let records: Vec<&String> = txts
        .iter()
        .filter(|t| {
            let lower = t.trim().to_ascii_lowercase();
            lower == "v=spf1" || lower.starts_with("v=spf1 ")
        })
        .collect();
    match records.as_slice() {
        [] => Check::missing("no TXT record starting with v=spf1 at the domain"),
        [record] => match spf_terms(record) {
            Ok(()) => Check::ok(record.trim().to_string()),
            Err(why) => Check::invalid(format!("{}: {why}", record.trim())),
        },
        _ => Check::invalid(format!(
            "{} SPF records; a domain must publish exactly one",
            records.len()
        )),
    }
}

fn spf_terms(record: &str) -> Result<(), String> {
    let mut lookups = 0;
    for term in record.split_whitespace().skip(1) {
        let lower = term.to_ascii_lowercase();
        if let Some((name, value)) = lower.split_once('=')
            && !name.contains(':')
            && !name.contains('/')
        {
            let name_ok = name.starts_with(|c: char| c.is_ascii_alphabetic())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !name_ok {
                return Err(format!("{term:?} is not a modifier"));
            }
            if name == "redirect" {
                if value.is_empty() {
                    return Err("redirect= needs a domain".into());
                }
                lookups += 1;
            }
            continue;
        }
        let mechanism = lower.trim_start_matches(['+', '-', '~', '?']);
        if mechanism.len() + 1 < lower.len() {
            return Err(format!("{term:?} has more than one qualifier"));
        }
        let (name, arg) = match mechanism.find([':', '/']) {
            Some(at) => (&mechanism[..at], Some(&mechanism[at..])),
            None => (mechanism, None),
        };
        let ok = match (name, arg) {
            ("all", None) => true,
            ("include" | "exists", Some(arg)) => {
                lookups += 1;
                arg.len() > 1 && arg.starts_with(':')
            }
            ("a" | "mx", _) => {
                lookups += 1;
                arg.is_none_or(|arg| arg.len() > 1)
            }
            ("ptr", _) => {
                lookups += 1;
                true
            }
            ("ip4", Some(arg)) => ip_with_prefix::<std::net::Ipv4Addr>(arg, 32),
            ("ip6", Some(arg)) => ip_with_prefix::<std::net::Ipv6Addr>(arg, 128),
            _ => false,
        };
        if !ok {
            return Err(format!("{term:?} is not an SPF mechanism"));
        }
    }
    if lookups > 10 {
        return Err(format!(
            "{lookups} terms need DNS lookups; receivers stop at 10"
        ));
    }
    Ok(())
}

fn ip_with_prefix<T: std::str::FromStr>(arg: &str, max: u8) -> bool {
    let Some(arg) = arg.strip_prefix(':') else {
        return false;
    };
    let (ip, prefix) = match arg.split_once('/') {
        Some((ip, prefix)) => (ip, Some(prefix)),
        None => (arg, None),
    };
    ip.parse::<T>().is_ok() && prefix.is_none_or(|p| p.parse::<u8>().is_ok_and(|p| p <= max))
}

/// DMARC from the TXT values at `_dmarc.<domain>`: exactly one record, `v=DMARC1` first,
/// with a policy `p=none|quarantine|reject`.
pub fn dmarc_check(txts: &[String]) -> Check {
    let records: Vec<&String> = txts
        .iter()
        .filter(|t| {
            t.trim_start()
                .get(..8)
                .is_some_and(|v| v.eq_ignore_ascii_case("v=DMARC1"))
        })
        .collect();
    let record = match records.as_slice() {
        [] => return Check::missing("no TXT record starting with v=DMARC1 at _dmarc"),
        [record] => record.trim(),
        _ => {
            return Check::invalid(format!(
                "{} DMARC records; receivers ignore all of them",
                records.len()
            ));
        }
    };
    let Some(tags) = tags(record) else {
        return Check::invalid(format!("{record}: not a list of tag=value"));
    };
    if tags.first().map(|(t, v)| (t.as_str(), v.as_str())) != Some(("v", "DMARC1")) {
        return Check::invalid(format!("{record}: v=DMARC1 must come first"));
    }
    match tag(&tags, "p") {
        Some("none" | "quarantine" | "reject") => Check::ok(record.to_string()),
        Some(other) => Check::invalid(format!(
            "{record}: p={other} is not none, quarantine or reject"
        )),
        None => Check::invalid(format!("{record}: no policy (p=)")),
    }
}

/// The public key (`p=`) of a DKIM key record, blanks removed; `None` without one.
pub fn dkim_public_key(record: &str) -> Option<String> {
    let tags = tags(record)?;
    tag(&tags, "p").map(|p| p.chars().filter(|c| !c.is_whitespace()).collect())
}

/// One DKIM key of the account: the TXT values at `<selector>._domainkey.<domain>`
/// (`name`) against the record Sluice gave for the key (`expected`).
pub fn dkim_check(name: &str, expected: &str, txts: &[String]) -> Check {
    let Some(expected_key) = dkim_public_key(expected) else {
        return Check::invalid(format!("{name}: the key's own record has no p="));
    };
    let records: Vec<&String> = txts.iter().filter(|t| !t.trim().is_empty()).collect();
    let record = match records.as_slice() {
        [] => return Check::missing(format!("no DKIM record at {name}")),
        [record] => record.trim(),
        _ => return Check::invalid(format!("{} DKIM records at {name}", records.len())),
    };
    let Some(tags) = tags(record) else {
        return Check::invalid(format!("{name}: not a list of tag=value"));
    };
    if let Some(version) = tag(&tags, "v")
        && version != "DKIM1"
    {
        return Check::invalid(format!("{name}: v={version} is not DKIM1"));
    }
    match tag(&tags, "p").map(|p| p.chars().filter(|c| !c.is_whitespace()).collect::<String>()) {
        None => Check::invalid(format!("{name}: no public key (p=)")),
        Some(p) if p.is_empty() => Check::invalid(format!("{name}: the key is revoked (empty p=)")),
        Some(p) if p == expected_key => Check::ok(format!("{name} publishes the account's key")),
        Some(_) => Check::invalid(format!(
            "{name} publishes another key than the account's; publish the record of GET /api/v1/dkim-keys"
        )),
    }
}

/// The DKIM status of a domain from the checks of the account's keys for it: none is
/// missing (no key); all ok is ok; else the first that is not.
pub fn dkim_summary(domain: &str, mut keys: Vec<Check>) -> Check {
    if keys.is_empty() {
        return Check::missing(format!(
            "no DKIM key for {domain}: create one with POST /api/v1/dkim-keys"
        ));
    }
    let worst = keys
        .iter()
        .position(|k| k.status == CheckStatus::Invalid)
        .or_else(|| keys.iter().position(|k| k.status != CheckStatus::Ok));
    match worst {
        Some(at) => keys.swap_remove(at),
        None => {
            let details: Vec<&str> = keys.iter().map(|k| k.detail.as_str()).collect();
            Check::ok(details.join("; "))
        }
    }
}

#[cfg(test)]
#[path = "sender_domain_tests.rs"]
mod tests;
