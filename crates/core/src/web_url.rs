//! Absolute http(s) URLs that end up in mail or HTML (a link in a verification mail, the
//! public web address links are built on): checked by syntax, strictly, so that nothing but
//! a plain web address can become an `href`.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WebUrlError {
    #[error("it does not start with http:// or https://")]
    Scheme,
    #[error("it has no host")]
    NoHost,
    #[error("its host is not a host name or an IP address")]
    Host,
    #[error("its port is not a number from 1 to 65535")]
    Port,
    #[error("it names a user before the host")]
    UserInfo,
    #[error("it contains a character that must be percent-encoded")]
    Character,
    #[error("it is longer than 2048 characters")]
    TooLong,
}

/// Checks that `text` is an absolute `http://` or `https://` URL with a host (a DNS name,
/// an IPv4 address or a bracketed IPv6 address), an optional port and no user part, made
/// only of printable ASCII without spaces, quotes, angle brackets or backslashes.
pub fn check_web_url(text: &str) -> Result<(), WebUrlError> {
    if text.len() > 2048 {
        return Err(WebUrlError::TooLong);
    }
    let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &text[8..]
    } else if lower.starts_with("http://") {
        &text[7..]
    } else {
        return Err(WebUrlError::Scheme);
    };
    if !text
        .bytes()
        .all(|b| b.is_ascii_graphic() && !b"\"'<>\\`{}|^".contains(&b))
    {
        return Err(WebUrlError::Character);
    }
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if authority.contains('@') {
        return Err(WebUrlError::UserInfo);
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (v6, after) = bracketed.split_once(']').ok_or(WebUrlError::Host)?;
            v6.parse::<std::net::Ipv6Addr>()
                .map_err(|_| WebUrlError::Host)?;
            match after {
                "" => (v6, None),
                _ => (v6, Some(after.strip_prefix(':').ok_or(WebUrlError::Port)?)),
            }
        }
        None => {
            let (host, port) = match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            };
            if host.is_empty() {
                return Err(WebUrlError::NoHost);
            }
            if !is_host_name(host) {
                return Err(WebUrlError::Host);
            }
            (host, port)
        }
    };
    if host.is_empty() {
        return Err(WebUrlError::NoHost);
    }
    if let Some(port) = port
        && !port.parse::<u16>().is_ok_and(|p| p > 0)
    {
        return Err(WebUrlError::Port);
    }
    Ok(())
}

/// A DNS name (letters, digits, hyphens; labels of 1 to 63) or a dotted IPv4 address.
fn is_host_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    host.len() <= 253
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_web_addresses_pass() {
        let table: [(&str, Result<(), WebUrlError>); 22] = [
            ("https://app.example.com", Ok(())),
            ("HTTPS://App.Example.com/verify?token=a%20b&x=1#top", Ok(())),
            ("http://127.0.0.1:8080/app/", Ok(())),
            ("https://[2001:db8::1]:8443/x", Ok(())),
            ("https://localhost", Ok(())),
            ("javascript:alert(1)", Err(WebUrlError::Scheme)),
            (
                "JavaScript://app.example.com/%0aalert(1)",
                Err(WebUrlError::Scheme),
            ),
            ("data:text/html,<b>", Err(WebUrlError::Scheme)),
            ("//app.example.com/x", Err(WebUrlError::Scheme)),
            ("/verify", Err(WebUrlError::Scheme)),
            ("ftp://app.example.com", Err(WebUrlError::Scheme)),
            ("https://", Err(WebUrlError::NoHost)),
            ("https:///path", Err(WebUrlError::NoHost)),
            ("https://:443/", Err(WebUrlError::NoHost)),
            (
                "https://app.example.com/\"><script>",
                Err(WebUrlError::Character),
            ),
            ("https://app.example.com/ x", Err(WebUrlError::Character)),
            (
                "https://app.example.com/\u{e9}",
                Err(WebUrlError::Character),
            ),
            (
                "https://bank.example@evil.test/",
                Err(WebUrlError::UserInfo),
            ),
            ("https://app_example.com/", Err(WebUrlError::Host)),
            ("https://[::1/", Err(WebUrlError::Host)),
            ("https://app.example.com:0/", Err(WebUrlError::Port)),
            ("https://app.example.com:99999/", Err(WebUrlError::Port)),
        ];
        for (text, expected) in table {
            assert_eq!(check_web_url(text), expected, "{text}");
        }
        assert_eq!(
            check_web_url(&format!("https://a.test/{}", "x".repeat(2100))),
            Err(WebUrlError::TooLong)
        );
    }
}
