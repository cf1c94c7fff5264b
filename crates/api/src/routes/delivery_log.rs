//! The delivery log file (`<data_dir>/delivery.log`, capped at 5 MB and rotated once):
//! its last 5 MB as text, for admins. It is this node's file: with several nodes each
//! keeps its own.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use sluice_deliver::delivery_log::{DELIVERY_LOG_CAP, read_tail};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::super::ApiState;
use super::super::error::ApiError;
use super::super::principal::Principal;
use super::ErrorBody;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(delivery_log_tail))
}

fn unreadable() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "delivery_log_unreadable",
        "the delivery log could not be read",
    )
}

/// The last 5 MB of this node's delivery log, one line per recipient per provider call
/// (admins).
#[utoipa::path(get, path = "/delivery-log", tag = "messages", security(("bearer" = [])),
    responses((status = 200, description = "The log's last 5 MB", content_type = "text/plain", body = String),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn delivery_log_tail(
    State(state): State<ApiState>,
    who: Principal,
) -> Result<Response, ApiError> {
    if !who.is_admin() {
        return Err(ApiError::forbidden());
    }
    let text = match state.delivery_log.clone() {
        None => Vec::new(),
        Some(path) => tokio::task::spawn_blocking(move || read_tail(&path, DELIVERY_LOG_CAP))
            .await
            .map_err(|_| unreadable())?
            .map_err(|error| {
                tracing::warn!(%error, "delivery log not readable");
                unreadable()
            })?,
    };
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}
