//! Staging aids: keep mail from non-production environments away from real people.
//! Pure: the accept path and the workers apply them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StagingPolicy {
    /// Every message goes to this address instead; the original recipients are kept in an
    /// `X-Sluice-Original-To` header.
    pub forward_all_to: String,
    /// Recipients allowed (`someone@example.com` or `@example.com`); empty allows any.
    pub recipient_allowlist: Vec<String>,
    /// Add `X-Sluice-Account` and `X-Sluice-Message-Id` to every message delivered.
    pub add_headers: bool,
}

impl StagingPolicy {
    /// The first recipient the allowlist does not allow.
    pub fn refused_recipient<'a>(&self, rcpts: &'a [String]) -> Option<&'a str> {
        if self.recipient_allowlist.is_empty() {
            return None;
        }
        rcpts
            .iter()
            .find(|rcpt| {
                let rcpt = rcpt.to_ascii_lowercase();
                !self.recipient_allowlist.iter().any(|allowed| {
                    let allowed = allowed.to_ascii_lowercase();
                    if allowed.starts_with('@') {
                        rcpt.ends_with(&allowed)
                    } else {
                        rcpt == allowed
                    }
                })
            })
            .map(String::as_str)
    }

    /// With `forward_all_to`: the new recipients, and the header to put first in the body.
    pub fn forward(&self, rcpts: &[String]) -> Option<(Vec<String>, String)> {
        if self.forward_all_to.is_empty() {
            return None;
        }
        let original = rcpts.join(", ");
        Some((
            vec![self.forward_all_to.clone()],
            format!("X-Sluice-Original-To: {original}\r\n"),
        ))
    }

    /// With `add_headers`: the headers to put first in a body handed to a provider.
    pub fn delivery_headers(&self, account_id: i64, message_id: i64) -> Option<String> {
        self.add_headers.then(|| {
            format!("X-Sluice-Account: {account_id}\r\nX-Sluice-Message-Id: {message_id}\r\n")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlist_forward_and_headers() {
        let rcpts = vec!["a@team.test".to_string(), "b@elsewhere.test".to_string()];
        let open = StagingPolicy::default();
        assert_eq!(open.refused_recipient(&rcpts), None);
        assert_eq!(open.forward(&rcpts), None);
        assert_eq!(open.delivery_headers(1, 2), None);
        let strict = StagingPolicy {
            recipient_allowlist: vec!["@Team.test".into(), "ok@elsewhere.test".into()],
            ..Default::default()
        };
        assert_eq!(strict.refused_recipient(&rcpts), Some("b@elsewhere.test"));
        assert_eq!(
            strict.refused_recipient(&["OK@elsewhere.test".to_string()]),
            None
        );
        let forward = StagingPolicy {
            forward_all_to: "qa@team.test".into(),
            add_headers: true,
            ..Default::default()
        };
        let (new, header) = forward.forward(&rcpts).unwrap();
        assert_eq!(new, vec!["qa@team.test"]);
        assert_eq!(
            header,
            "X-Sluice-Original-To: a@team.test, b@elsewhere.test\r\n"
        );
        assert_eq!(
            forward.delivery_headers(7, 9).unwrap(),
            "X-Sluice-Account: 7\r\nX-Sluice-Message-Id: 9\r\n"
        );
    }
}
