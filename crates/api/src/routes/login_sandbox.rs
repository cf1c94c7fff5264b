//! Sandbox mode of one login (an API key or an SMTP credential): what it sends is captured,
//! whatever its account's mode and routing. Turning it on is anyone's who may manage the
//! login; turning it off lets mail out, so it takes a logged-in owner or an admin (never an
//! API key: that is what the application under test holds), and each change is audited as
//! `sandbox_on` / `sandbox_off` on the login.

use serde::Deserialize;
use utoipa::ToSchema;

use super::super::ApiState;
use super::super::error::ApiError;
use super::super::principal::{Principal, Role};
use super::live_account;

/// `PUT /api-keys/{id}` and `PUT /smtp-credentials/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginUpdate {
    /// Sandbox mode of this login.
    pub sandbox: bool,
}

/// Which kind of login, for the audit log.
pub(super) struct Login {
    pub target_type: &'static str,
    pub id: i64,
    /// Its account and its current sandbox mode, `None` when there is no such login.
    pub current: Option<(i64, bool)>,
}

/// Checks the caller may make the change, makes it with `set` (given the account), audits.
pub(super) async fn change_login_sandbox<Set>(
    state: &ApiState,
    who: &Principal,
    named: Option<i64>,
    login: Login,
    sandbox: bool,
    set: impl FnOnce(i64) -> Set,
) -> Result<(), ApiError>
where
    Set: std::future::Future<Output = Result<bool, sluice_store::StoreError>>,
{
    let account = live_account(state, who, named).await?;
    let Some((owner, before)) = login.current.filter(|(owner, _)| *owner == account) else {
        return Err(ApiError::not_found());
    };
    if !who.owns(Some(owner)) {
        return Err(ApiError::not_found());
    }
    who.require(Role::Owner)?;
    if before && !sandbox && who.api_key_hash.is_some() {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "forbidden",
            "turning sandbox mode off takes a logged-in owner of the account or an admin, \
             not an API key",
        ));
    }
    if !set(account).await? {
        return Err(ApiError::not_found());
    }
    if before != sandbox {
        state
            .audit(
                who,
                Some(account),
                if sandbox { "sandbox_on" } else { "sandbox_off" },
                login.target_type,
                login.id,
                serde_json::json!({ "sandbox": sandbox }),
            )
            .await?;
    }
    Ok(())
}
