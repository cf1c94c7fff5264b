//! The types of provider an account can configure, and what Sluice knows of each type
//! apart from its settings' struct (`provider::ProviderConfig`): its stored name, which
//! settings are secrets, which settings name where it connects. Adding a type is a
//! variant here, a variant of `ProviderConfig`, and its deliverer in `deliver`.

use serde::{Deserialize, Serialize};

/// A provider's type: `providers.provider_type`, decoded once where a row is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderType {
    Sendgrid,
    Ses,
    Mailgun,
    Smtp,
    Msgraph,
    Log,
    Capture,
}

impl ProviderType {
    /// Every type, in the order error messages list them.
    pub const ALL: [ProviderType; 7] = [
        ProviderType::Sendgrid,
        ProviderType::Ses,
        ProviderType::Mailgun,
        ProviderType::Smtp,
        ProviderType::Msgraph,
        ProviderType::Log,
        ProviderType::Capture,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderType::Sendgrid => "sendgrid",
            ProviderType::Ses => "ses",
            ProviderType::Mailgun => "mailgun",
            ProviderType::Smtp => "smtp",
            ProviderType::Msgraph => "msgraph",
            ProviderType::Log => "log",
            ProviderType::Capture => "capture",
        }
    }

    /// Names of the type's secret settings (write-only, sealed at rest).
    pub fn secret_fields(self) -> &'static [&'static str] {
        match self {
            ProviderType::Sendgrid => &["api_key"],
            ProviderType::Mailgun => &["api_key", "webhook_signing_key"],
            ProviderType::Ses => &["secret_access_key"],
            ProviderType::Smtp => &["password"],
            ProviderType::Msgraph => &["client_secret"],
            ProviderType::Log | ProviderType::Capture => &[],
        }
    }

    /// The settings that name where it connects: `(field, is a URL)`; a tenant's are
    /// checked by the egress policy when saved.
    pub fn destinations(self) -> &'static [(&'static str, bool)] {
        match self {
            ProviderType::Smtp => &[("host", false)],
            ProviderType::Sendgrid | ProviderType::Mailgun => &[("base_url", true)],
            ProviderType::Ses => &[("endpoint", true)],
            ProviderType::Msgraph => &[("authority_url", true), ("graph_url", true)],
            ProviderType::Log | ProviderType::Capture => &[],
        }
    }

    /// Whether it takes settings at all (`log` and `capture` take none).
    pub fn takes_settings(self) -> bool {
        !matches!(self, ProviderType::Log | ProviderType::Capture)
    }
}

crate::text_kind!(ProviderType, "provider type");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_round_trip_and_unknown_text_is_an_error() {
        for kind in ProviderType::ALL {
            assert_eq!(kind.as_str().parse::<ProviderType>(), Ok(kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::Value::String(kind.as_str().into())
            );
        }
        assert!("SMTP".parse::<ProviderType>().is_err());
        assert!("pigeon".parse::<ProviderType>().is_err());
    }
}
