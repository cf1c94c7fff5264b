//! Tenant scoping in one place: "the row with this id, if this caller may see it". Every
//! handler that reads, changes or deletes one row by id passes the fetched row through
//! [`Principal::visible`]; a row of another tenant answers 404 `not_found` exactly like a
//! missing one, so ids of other accounts cannot be probed.

use sluice_core::{AccountId, ConnectionInfo};
use sluice_store::{
    Account, ApiKeyRow, DkimKeyRow, DomainRow, MailboxServerRow, MessageRecord, ProviderRow,
    RuleRow, SmtpCredential, SuppressionRow, TemplateRow, User, WebhookEndpointRow,
};

use crate::error::ApiError;
use crate::principal::Principal;

/// A row that belongs to one account, or (`None`) to the whole system: system-wide
/// providers and templates, system admins.
pub trait Owned {
    fn account_id(&self) -> Option<AccountId>;
}

impl Principal {
    /// The row if this caller may see it (admins every row, others their account's);
    /// a missing row and another tenant's are both 404 `not_found`.
    pub fn visible<T: Owned>(&self, row: Option<T>) -> Result<T, ApiError> {
        row.filter(|row| self.owns(row.account_id()))
            .ok_or_else(ApiError::not_found)
    }
}

/// Rows that always belong to an account.
macro_rules! owned_by_account {
    ($($row:ty),* $(,)?) => {
        $(impl Owned for $row {
            fn account_id(&self) -> Option<AccountId> {
                Some(self.account_id)
            }
        })*
    };
}

owned_by_account!(
    ApiKeyRow,
    DkimKeyRow,
    DomainRow,
    MessageRecord,
    RuleRow,
    SmtpCredential,
    SuppressionRow,
    WebhookEndpointRow,
);

/// Rows an admin may make system-wide.
macro_rules! owned_or_system {
    ($($row:ty),* $(,)?) => {
        $(impl Owned for $row {
            fn account_id(&self) -> Option<AccountId> {
                self.account_id
            }
        })*
    };
}

owned_or_system!(ProviderRow, TemplateRow, User, ConnectionInfo);

/// Mailbox check servers are the system's: only admins see them.
impl Owned for MailboxServerRow {
    fn account_id(&self) -> Option<AccountId> {
        None
    }
}

/// An account is its own tenant.
impl Owned for Account {
    fn account_id(&self) -> Option<AccountId> {
        Some(self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::Role;

    struct Row(Option<AccountId>);

    impl Owned for Row {
        fn account_id(&self) -> Option<AccountId> {
            self.0
        }
    }

    fn caller(account_id: Option<AccountId>, role: Role) -> Principal {
        Principal {
            actor: "test".into(),
            account_id,
            role,
            source_ip: None,
            api_key_hash: None,
            sandbox: false,
        }
    }

    #[test]
    fn tenants_see_their_rows_only_and_others_look_missing() {
        let owner = caller(Some(1), Role::Owner);
        assert!(owner.visible(Some(Row(Some(1)))).is_ok());
        for hidden in [Some(Row(Some(2))), Some(Row(None)), None] {
            let error = owner.visible(hidden).err().unwrap();
            assert_eq!(error.status, axum::http::StatusCode::NOT_FOUND);
            assert_eq!(error.code, "not_found");
        }
    }

    #[test]
    fn system_admins_see_every_row() {
        let admin = caller(None, Role::Admin);
        for row in [Row(Some(1)), Row(Some(2)), Row(None)] {
            assert!(admin.visible(Some(row)).is_ok());
        }
        assert_eq!(admin.visible::<Row>(None).err().unwrap().code, "not_found");
    }
}
