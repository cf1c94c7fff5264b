//! An account's lifecycle state, decoded once where its row is read.

use serde::{Deserialize, Serialize};

/// Whether an account may act. Suspension is reversible; deletion is not.
///
/// - `Active`: everything works.
/// - `Suspended`: every way in is refused (logins, tokens, panel sessions, API keys, SMTP
///   AUTH and the trusted port); its queued mail is `held`, new mail is refused with a
///   temporary answer; reactivating brings all of it back.
/// - `Deleted`: the same refusals, permanent; its queued mail is `cancelled`. The rows
///   stay for admins and retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountStatus {
    Active,
    Suspended,
    Deleted,
}

impl AccountStatus {
    pub const ALL: [AccountStatus; 3] = [
        AccountStatus::Active,
        AccountStatus::Suspended,
        AccountStatus::Deleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Suspended => "suspended",
            AccountStatus::Deleted => "deleted",
        }
    }

    /// An unknown text is taken as `Deleted`: a row Sluice cannot read gets no access.
    pub fn parse(text: &str) -> AccountStatus {
        match text {
            "active" => AccountStatus::Active,
            "suspended" => AccountStatus::Suspended,
            _ => AccountStatus::Deleted,
        }
    }

    pub fn is_active(self) -> bool {
        self == AccountStatus::Active
    }
}

// Strict: where a row is read, an unknown text is an error, not a status.
crate::text_kind!(AccountStatus, "account status");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_unknown_text_gets_no_access() {
        for status in AccountStatus::ALL {
            assert_eq!(AccountStatus::parse(status.as_str()), status);
        }
        assert_eq!(AccountStatus::parse("Active"), AccountStatus::Deleted);
        assert_eq!(AccountStatus::parse(""), AccountStatus::Deleted);
        assert!(AccountStatus::Active.is_active());
        assert!(!AccountStatus::Suspended.is_active());
        for status in AccountStatus::ALL {
            assert_eq!(status.as_str().parse::<AccountStatus>(), Ok(status));
        }
        assert!("Active".parse::<AccountStatus>().is_err());
    }
}
