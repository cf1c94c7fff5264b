//! Live SMTP sessions of this node: who is connected, doing what; an admin may end one.

use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::super::ApiState;
use super::super::error::{ApiError, Path};
use super::super::principal::{Principal, Role};
use super::ErrorBody;
use crate::dto::connections::ConnectionView;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_connections))
        .routes(routes!(close_connection))
}

/// SMTP sessions open on this node: all for admins, their account's for owners.
#[utoipa::path(get, path = "/smtp/connections", tag = "smtp",
    security(("bearer" = [])),
    responses((status = 200, body = Vec<ConnectionView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_connections(
    State(state): State<ApiState>,
    who: Principal,
) -> Result<axum::Json<Vec<ConnectionView>>, ApiError> {
    who.require(Role::Owner)?;
    let list = state
        .connections
        .list()
        .into_iter()
        .filter(|c| who.owns(c.account_id))
        .map(Into::into)
        .collect();
    Ok(axum::Json(list))
}

/// Ends an SMTP session with 421 (admins).
#[utoipa::path(delete, path = "/smtp/connections/{id}", tag = "smtp", params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn close_connection(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let connection = who.visible(state.connections.list().into_iter().find(|c| c.id == id))?;
    if !who.is_admin() {
        return Err(ApiError::forbidden());
    }
    if !state.connections.close(&id) {
        return Err(ApiError::not_found());
    }
    state
        .audit(
            &who,
            connection.account_id,
            "close",
            "smtp_connection",
            &id,
            serde_json::json!({ "remote_addr": connection.remote_addr }),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
