//! The `/api/v1` routes, one file per resource.

mod accounts;
mod api_keys;
mod audit;
pub(crate) mod auth;
mod capture;
mod capture_checks;
mod capture_spam;
mod connections;
mod dashboard;
mod delivery_log;
mod dkim_keys;
mod domains;
mod login_sandbox;
mod mailbox_servers;
pub(crate) mod messages;
pub(crate) mod providers;
mod rules;
pub(crate) mod send;
mod settings;
mod smtp_credentials;
mod suppressions;
mod templates;
mod users;
mod webhook_endpoints;

use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;

use super::ApiState;
pub use super::dto::{ErrorBody, Page};

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .merge(auth::router())
        .merge(accounts::router())
        .merge(users::router())
        .merge(api_keys::router())
        .merge(smtp_credentials::router())
        .merge(messages::router())
        .merge(capture::router())
        .merge(capture_checks::router())
        .merge(capture_spam::router())
        .merge(audit::router())
        .merge(connections::router())
        .merge(dashboard::router())
        .merge(delivery_log::router())
        .merge(providers::router())
        .merge(rules::router())
        .merge(send::router())
        .merge(settings::router())
        .merge(templates::router())
        .merge(suppressions::router())
        .merge(dkim_keys::router())
        .merge(domains::router())
        .merge(mailbox_servers::router())
        .merge(webhook_endpoints::router())
}

/// `?account_id=` of routes that act on one account: admins name it, others may omit it.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AccountQuery {
    /// Admins: which account.
    pub account_id: Option<i64>,
}

/// Page size from `?limit=`: 1 to 200, default 50.
pub fn page_size(limit: Option<i64>) -> i64 {
    limit.unwrap_or(50).clamp(1, 200)
}

fn cursor(value: Option<&str>) -> Result<Option<i64>, super::error::ApiError> {
    value
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| super::error::ApiError::validation("cursor is not valid"))
        })
        .transpose()
}

/// The account a write acts on (see `Principal::target_account`), which must exist.
async fn live_account(
    state: &ApiState,
    who: &super::principal::Principal,
    named: Option<i64>,
) -> Result<i64, super::error::ApiError> {
    let id = who.target_account(named)?;
    let live = state
        .store
        .account(id)
        .await?
        .is_some_and(|a| a.status != sluice_core::AccountStatus::Deleted);
    if live {
        Ok(id)
    } else {
        Err(super::error::ApiError::not_found())
    }
}

/// What removing one account-owned row by id needs: who may, and how the audit log names it.
struct Removal {
    /// The least role that may remove the row.
    role: super::principal::Role,
    /// The audit entry's action (`revoke`, `delete`).
    action: &'static str,
    /// The audit entry's target type (`api_key`, …).
    target_type: &'static str,
}

/// Removes row `id` of the named (live) account: the revoke/delete-one routes. The row
/// (`fetched`) must be that account's and visible to the caller, who needs `removal.role`;
/// `remove(account)` answering `false` is "not found". Audited; answers 204.
async fn remove_account_row<R, Removed>(
    state: &ApiState,
    who: &super::principal::Principal,
    named: Option<i64>,
    id: i64,
    removal: Removal,
    fetched: impl std::future::Future<Output = Result<Option<R>, sluice_store::StoreError>>,
    remove: impl FnOnce(i64) -> Removed,
) -> Result<axum::http::StatusCode, super::error::ApiError>
where
    R: super::scoped::Owned,
    Removed: std::future::Future<Output = Result<bool, sluice_store::StoreError>>,
{
    let account = live_account(state, who, named).await?;
    // The row must be the named account's, and the caller must see it.
    who.visible(
        fetched
            .await?
            .filter(|row| row.account_id() == Some(account)),
    )?;
    who.require(removal.role)?;
    if !remove(account).await? {
        return Err(super::error::ApiError::not_found());
    }
    state
        .audit(
            who,
            Some(account),
            removal.action,
            removal.target_type,
            id,
            serde_json::json!({}),
        )
        .await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// The owner of a new provider or template: an admin naming no account makes it
/// system-wide (`None`); otherwise the (live) account the caller acts on.
async fn owner_for_new(
    state: &ApiState,
    who: &super::principal::Principal,
    named: Option<i64>,
) -> Result<Option<i64>, super::error::ApiError> {
    if who.is_admin() && named.is_none() {
        return Ok(None);
    }
    live_account(state, who, named).await.map(Some)
}

/// A send request that does not compose into a message: 422 like every validation error.
fn invalid(error: sluice_compose::ComposeError) -> super::error::ApiError {
    super::error::ApiError::validation(error.message)
}

/// A template that does not render: 422 `template_error`, naming the part and line.
fn template_failed(error: sluice_compose::render::TemplateError) -> super::error::ApiError {
    super::error::ApiError::new(
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        "template_error",
        error.message,
    )
}

/// argon2id off the async threads; at least 8 characters.
async fn hash_new_password(password: &str) -> Result<String, super::error::ApiError> {
    use super::error::ApiError;
    if password.len() < 8 {
        return Err(ApiError::validation(
            "password must have at least 8 characters",
        ));
    }
    crate::password::hash(password.to_string())
        .await
        .ok_or_else(|| ApiError::validation("password could not be hashed"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sluice_compose::render::render;

    #[test]
    fn template_errors_are_422_template_error() {
        let error = render("ok", "line one\n{{ broken", "", &json!({})).unwrap_err();
        let error = super::template_failed(error);
        assert_eq!(error.status, axum::http::StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(error.code, "template_error");
        assert!(
            error.message.starts_with("text line 2"),
            "{}",
            error.message
        );
    }
}
