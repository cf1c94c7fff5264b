//! The `/api/v1` routes, one file per resource.

mod accounts;
mod api_keys;
mod audit;
mod auth;
mod connections;
mod messages;
mod providers;
mod rules;
mod send;
mod smtp_credentials;
mod templates;
mod users;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use super::ApiState;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .merge(auth::router())
        .merge(accounts::router())
        .merge(users::router())
        .merge(api_keys::router())
        .merge(smtp_credentials::router())
        .merge(messages::router())
        .merge(audit::router())
        .merge(connections::router())
        .merge(providers::router())
        .merge(rules::router())
        .merge(send::router())
        .merge(templates::router())
}

/// A list and the cursor for the next page (absent on the last page).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Page size from `?limit=`: 1 to 200, default 50.
pub fn page_size(limit: Option<i64>) -> i64 {
    limit.unwrap_or(50).clamp(1, 200)
}

/// Error body, for the OpenAPI document.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    pub request_id: String,
}

fn cursor(value: Option<&str>) -> Result<Option<i64>, super::error::ApiError> {
    value
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| super::error::ApiError::validation("cursor is not valid"))
        })
        .transpose()
}
