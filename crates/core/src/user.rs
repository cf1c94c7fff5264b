//! Users and their sessions: the role a user acts with, whether the user may log in, and
//! what a session is for. Stored as text; decoded once where a row is read.

use serde::{Deserialize, Serialize};

/// A stored text that names none of a kind's values (`kind` says which enum).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind}: {text:?}")]
pub struct UnknownKind {
    pub kind: &'static str,
    pub text: String,
}

impl UnknownKind {
    pub fn new(kind: &'static str, text: &str) -> Self {
        UnknownKind {
            kind,
            text: text.to_string(),
        }
    }
}

/// `Display` and a strict `FromStr` for a kind stored or sent as text: `$kind::ALL` lists its
/// values and `as_str` names each; a text naming none is `UnknownKind { kind: $label }`.
#[macro_export]
macro_rules! text_kind {
    ($kind:ty, $label:literal) => {
        impl std::fmt::Display for $kind {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $kind {
            type Err = $crate::user::UnknownKind;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                <$kind>::ALL
                    .into_iter()
                    .find(|value| value.as_str() == text)
                    .ok_or_else(|| $crate::user::UnknownKind::new($label, text))
            }
        }
    };
}

/// What a user may do, in increasing order. A system admin is an `Admin` without an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Member,
    Owner,
    Admin,
}

impl Role {
    pub fn parse(text: &str) -> Option<Role> {
        Some(match text {
            "viewer" => Role::Viewer,
            "member" => Role::Member,
            "owner" => Role::Owner,
            "admin" => Role::Admin,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Owner => "owner",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = UnknownKind;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Role::parse(text).ok_or_else(|| UnknownKind::new("role", text))
    }
}

/// Whether a user may log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    Active,
    Disabled,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Disabled => "disabled",
        }
    }

    pub fn is_active(self) -> bool {
        self == UserStatus::Active
    }
}

impl std::fmt::Display for UserStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for UserStatus {
    type Err = UnknownKind;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "active" => Ok(UserStatus::Active),
            "disabled" => Ok(UserStatus::Disabled),
            _ => Err(UnknownKind::new("user status", text)),
        }
    }
}

/// What a session row is: an API refresh token or a web panel login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionKind {
    Refresh,
    Panel,
}

impl SessionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::Refresh => "refresh",
            SessionKind::Panel => "panel",
        }
    }
}

impl std::fmt::Display for SessionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SessionKind {
    type Err = UnknownKind;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "refresh" => Ok(SessionKind::Refresh),
            "panel" => Ok(SessionKind::Panel),
            _ => Err(UnknownKind::new("session kind", text)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_unknown_text_is_an_error() {
        for role in [Role::Viewer, Role::Member, Role::Owner, Role::Admin] {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        for status in [UserStatus::Active, UserStatus::Disabled] {
            assert_eq!(status.as_str().parse::<UserStatus>(), Ok(status));
        }
        for kind in [SessionKind::Refresh, SessionKind::Panel] {
            assert_eq!(kind.as_str().parse::<SessionKind>(), Ok(kind));
        }
        assert!("Admin".parse::<Role>().is_err());
        assert!("".parse::<UserStatus>().is_err());
        assert!("api".parse::<SessionKind>().is_err());
    }
}
