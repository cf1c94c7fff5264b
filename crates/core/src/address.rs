//! RFC 5321 mailbox syntax (with RFC 6531 UTF-8 allowed in atoms).

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum AddressError {
    #[error("address is empty")]
    Empty,
    #[error("address is missing '@'")]
    MissingAt,
    #[error("local part is invalid")]
    BadLocalPart,
    #[error("domain is invalid")]
    BadDomain,
    #[error("address is too long")]
    TooLong,
}

/// Checks `local@domain` against RFC 5321 `Mailbox`. The null path `<>` is not a mailbox.
pub fn validate_mailbox(addr: &str) -> Result<(), AddressError> {
    if addr.is_empty() {
        return Err(AddressError::Empty);
    }
    if addr.len() > 254 {
        return Err(AddressError::TooLong);
    }
    let at = addr.rfind('@').ok_or(AddressError::MissingAt)?;
    let (local, domain) = (&addr[..at], &addr[at + 1..]);
    validate_local_part(local)?;
    validate_domain(domain)
}

/// The domain of `local@domain`, lower-cased; `None` for the null path or a malformed address.
pub fn domain_of(addr: &str) -> Option<String> {
    addr.rfind('@')
        .map(|at| addr[at + 1..].to_ascii_lowercase())
}

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii()
}

fn validate_local_part(local: &str) -> Result<(), AddressError> {
    if local.is_empty() || local.len() > 64 {
        return Err(AddressError::BadLocalPart);
    }
    if let Some(inner) = local.strip_prefix('"') {
        let inner = inner.strip_suffix('"').ok_or(AddressError::BadLocalPart)?;
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(' '..='~') => {}
                    _ => return Err(AddressError::BadLocalPart),
                },
                '"' => return Err(AddressError::BadLocalPart),
                ' '..='~' => {}
                c if !c.is_ascii() => {}
                _ => return Err(AddressError::BadLocalPart),
            }
        }
        return Ok(());
    }
    if local
        .split('.')
        .all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
    {
        Ok(())
    } else {
        Err(AddressError::BadLocalPart)
    }
}

fn validate_domain(domain: &str) -> Result<(), AddressError> {
    if domain.is_empty() || domain.len() > 255 {
        return Err(AddressError::BadDomain);
    }
    if let Some(literal) = domain.strip_prefix('[') {
        let literal = literal.strip_suffix(']').ok_or(AddressError::BadDomain)?;
        let ok = match literal.strip_prefix("IPv6:") {
            Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
            None => literal.parse::<std::net::Ipv4Addr>().is_ok(),
        };
        return if ok {
            Ok(())
        } else {
            Err(AddressError::BadDomain)
        };
    }
    for label in domain.split('.') {
        let valid = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || !c.is_ascii());
        if !valid {
            return Err(AddressError::BadDomain);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_table() {
        let good = [
            "a@b",
            "user.name+tag@example.com",
            "\"quoted local\"@example.com",
            "x@[192.0.2.1]",
            "x@[IPv6:2001:db8::1]",
            "ünï@exämple.com",
        ];
        for addr in good {
            assert_eq!(validate_mailbox(addr), Ok(()), "{addr}");
        }
        let bad = [
            ("", AddressError::Empty),
            ("nobody", AddressError::MissingAt),
            (".a@b.com", AddressError::BadLocalPart),
            ("a..b@b.com", AddressError::BadLocalPart),
            ("a b@b.com", AddressError::BadLocalPart),
            ("a@", AddressError::BadDomain),
            ("a@-b.com", AddressError::BadDomain),
            ("a@b..com", AddressError::BadDomain),
            ("a@[300.1.1.1]", AddressError::BadDomain),
            ("a@b_c.com", AddressError::BadDomain),
        ];
        for (addr, err) in bad {
            assert_eq!(validate_mailbox(addr), Err(err), "{addr}");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert_eq!(
            validate_mailbox(&long_local),
            Err(AddressError::BadLocalPart)
        );
    }

    #[test]
    fn domain_is_lowercased() {
        assert_eq!(domain_of("A@Example.COM").as_deref(), Some("example.com"));
        assert_eq!(domain_of(""), None);
    }
}
