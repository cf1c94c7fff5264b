//! Destinations a tenant names (provider hosts and URLs, webhook URLs, mailbox servers),
//! checked by the egress policy when they are saved: a literal or a name that resolves now
//! to a closed address is refused with 422 naming the field. A name that does not resolve
//! (yet) may be saved; every connection checks again.

use axum::http::StatusCode;
use serde_json::Value;
use sluice_core::ProviderType;
use sluice_deliver::egress::{Egress, EgressError, EgressPolicy};

use super::ApiState;
use super::error::ApiError;

fn refused(field: &str, error: &EgressError) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "destination_refused",
        format!("{field}: {error}; an operator can open the range with [egress] allow"),
    )
}

/// A host name or IP literal.
pub(crate) async fn check_host(
    policy: &EgressPolicy,
    field: &str,
    host: &str,
) -> Result<(), ApiError> {
    policy
        .check_when_saved(host)
        .await
        .map_err(|e| refused(field, &e))
}

/// A URL's host (a URL that does not parse is left to the caller's own checks).
pub(crate) async fn check_url(
    policy: &EgressPolicy,
    field: &str,
    url: &str,
) -> Result<(), ApiError> {
    match reqwest::Url::parse(url) {
        Ok(parsed) => policy
            .check_url_when_saved(&parsed)
            .await
            .map_err(|e| refused(field, &e)),
        Err(_) => Ok(()),
    }
}

/// A tenant's provider settings (system providers, made by admins, are trusted).
pub(crate) async fn check_provider(
    state: &ApiState,
    account_id: Option<i64>,
    provider_type: ProviderType,
    config: &Value,
) -> Result<(), ApiError> {
    if account_id.is_none() {
        return Ok(());
    }
    for (field, is_url) in provider_type.destinations() {
        let Some(value) = config.get(*field).and_then(Value::as_str) else {
            continue;
        };
        let field = format!("config.{field}");
        match is_url {
            true => check_url(&state.egress, &field, value).await?,
            false => check_host(&state.egress, &field, value).await?,
        }
    }
    Ok(())
}

/// How a provider's destination is reached: checked for a tenant's, trusted for a system
/// provider.
pub(crate) fn provider_egress(state: &ApiState, account_id: Option<i64>) -> Egress {
    match account_id {
        Some(_) => Egress::Policed(state.egress.clone()),
        None => Egress::Trusted,
    }
}
