//! Where a captured message may be released to: an account's optional allowlist of
//! addresses (`qa@example.com`) and domains (`example.com`, which also covers its
//! subdomains). Pure.

/// The first recipient the allowlist does not cover; `None` when all are covered (or there
/// is no allowlist).
pub fn refused_recipient<'a>(allowlist: Option<&[String]>, rcpts: &'a [String]) -> Option<&'a str> {
    let list = allowlist?;
    rcpts
        .iter()
        .find(|rcpt| !list.iter().any(|entry| covers(entry, rcpt)))
        .map(String::as_str)
}

fn covers(entry: &str, rcpt: &str) -> bool {
    let entry = entry.trim().to_ascii_lowercase();
    let rcpt = rcpt.to_ascii_lowercase();
    if entry.contains('@') {
        return entry == rcpt;
    }
    let Some((_, domain)) = rcpt.rsplit_once('@') else {
        return false;
    };
    !entry.is_empty() && (domain == entry || domain.ends_with(&format!(".{entry}")))
}

/// An allowlist entry as saved: an address or a domain, lower case.
pub fn valid_entry(entry: &str) -> bool {
    let entry = entry.trim();
    match entry.rsplit_once('@') {
        Some(_) => crate::validate_mailbox(entry).is_ok(),
        None => crate::sender_domain::normalize_domain(entry).is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> Vec<String> {
        entries.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn addresses_match_exactly_and_domains_with_their_subdomains() {
        let allow = list(&["qa@Example.com", "team.test"]);
        let rcpts = |r: &[&str]| list(r);
        assert_eq!(
            refused_recipient(Some(&allow), &rcpts(&["QA@example.com"])),
            None
        );
        assert_eq!(
            refused_recipient(Some(&allow), &rcpts(&["dev@example.com"])),
            Some("dev@example.com")
        );
        assert_eq!(
            refused_recipient(Some(&allow), &rcpts(&["a@team.test", "b@eu.team.test"])),
            None
        );
        assert_eq!(
            refused_recipient(Some(&allow), &rcpts(&["a@team.test", "b@evilteam.test"])),
            Some("b@evilteam.test")
        );
        assert_eq!(
            refused_recipient(None, &rcpts(&["anyone@anywhere.test"])),
            None
        );
        assert_eq!(
            refused_recipient(Some(&[]), &rcpts(&["a@team.test"])),
            Some("a@team.test")
        );
    }

    #[test]
    fn entries_are_addresses_or_domains() {
        assert!(valid_entry("qa@example.com"));
        assert!(valid_entry("example.com"));
        assert!(!valid_entry("not a domain"));
        assert!(!valid_entry("@example.com"));
    }
}
