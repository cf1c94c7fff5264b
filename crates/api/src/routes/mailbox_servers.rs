//! Optional IMAP / POP3 servers an admin keeps to check (connect, TLS, log in, log out).
//! Separate from outbound delivery; the password is sealed under the master key and never
//! shown again. The host goes through the egress policy (saved and tested): a check that
//! reports each step would otherwise map the internal network.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sluice_deliver::egress::Egress;
use sluice_deliver::mailbox::{
    MailboxProtocol, MailboxSecurity, MailboxServer, default_port, probe_mailbox,
};
use sluice_store::MailboxServerRow;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::super::destinations;
use super::super::error::{ApiError, Json, Path};
use super::super::principal::Principal;
use super::super::{ApiState, now_ms};
use super::ErrorBody;
use crate::dto::mailbox_servers::MailboxServerView;
use crate::dto::providers::TestResult;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(create_server, list_servers))
        .routes(routes!(delete_server))
        .routes(routes!(test_server))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMailboxServer {
    pub name: String,
    /// `imap` or `pop3`.
    #[schema(value_type = String)]
    pub protocol: MailboxProtocol,
    pub host: String,
    /// Default: 143 / 993 (IMAP), 110 / 995 (POP3) by `security`.
    pub port: Option<u16>,
    /// `none`, `starttls` or `tls`.
    #[schema(value_type = String)]
    pub security: MailboxSecurity,
    pub username: String,
    /// Sealed at rest, never shown again.
    pub password: String,
    pub skip_tls_verify: Option<bool>,
}

fn name_of<T: Serialize>(value: T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Keeps a server to check (admins).
#[utoipa::path(post, path = "/mailbox-servers", tag = "mailbox-servers", request_body = CreateMailboxServer,
    security(("bearer" = [])),
    responses((status = 201, body = MailboxServerView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn create_server(
    State(state): State<ApiState>,
    who: Principal,
    Json(body): Json<CreateMailboxServer>,
) -> Result<(StatusCode, axum::Json<MailboxServerView>), ApiError> {
    if !who.is_admin() {
        return Err(ApiError::forbidden());
    }
    let name = body.name.trim();
    let host = body.host.trim();
    if name.is_empty() || name.len() > 100 || host.is_empty() || host.len() > 253 {
        return Err(ApiError::validation(
            "name and host are required (name ≤ 100, host ≤ 253 characters)",
        ));
    }
    if body.username.is_empty() || body.password.is_empty() {
        return Err(ApiError::validation("username and password are required"));
    }
    destinations::check_host(&state.egress, "host", host).await?;
    let sealed = state.seal_bytes(json!(body.password).to_string().as_bytes());
    let row = MailboxServerRow {
        id: 0,
        name: name.to_string(),
        protocol: name_of(body.protocol),
        host: host.to_string(),
        port: i64::from(
            body.port
                .unwrap_or(default_port(body.protocol, body.security)),
        ),
        security: name_of(body.security),
        username: body.username.clone(),
        password_sealed: sealed,
        skip_tls_verify: body.skip_tls_verify.unwrap_or(false),
        created_at: now_ms(),
    };
    let created = state.store.create_mailbox_server(&row).await?;
    state
        .audit(
            &who,
            None,
            "create",
            "mailbox_server",
            created.id,
            json!({ "host": created.host, "protocol": created.protocol }),
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(created.into())))
}

/// The kept servers (admins).
#[utoipa::path(get, path = "/mailbox-servers", tag = "mailbox-servers",
    security(("bearer" = [])),
    responses((status = 200, body = Vec<MailboxServerView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_servers(
    State(state): State<ApiState>,
    who: Principal,
) -> Result<axum::Json<Vec<MailboxServerView>>, ApiError> {
    if !who.is_admin() {
        return Err(ApiError::forbidden());
    }
    let rows = state.store.list_mailbox_servers().await?;
    Ok(axum::Json(rows.into_iter().map(Into::into).collect()))
}

/// A stored enum value (`imap`, `starttls`, ...) read back.
fn stored<T: serde::de::DeserializeOwned>(value: &str, field: &str) -> Result<T, ApiError> {
    serde_json::from_value(json!(value))
        .map_err(|_| ApiError::validation(format!("stored {field} is malformed")))
}

/// Forgets a server (admins).
#[utoipa::path(delete, path = "/mailbox-servers/{id}", tag = "mailbox-servers", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_server(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    who.visible(state.store.mailbox_server(id).await?)?;
    state.store.delete_mailbox_server(id).await?;
    state
        .audit(&who, None, "delete", "mailbox_server", id, json!({}))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Connects, does TLS where configured, logs in and out; each step's result (admins).
#[utoipa::path(post, path = "/mailbox-servers/{id}/test", tag = "mailbox-servers", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = TestResult), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn test_server(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
) -> Result<axum::Json<TestResult>, ApiError> {
    let row = who.visible(state.store.mailbox_server(id).await?)?;
    let password = state
        .unseal(&row.password_sealed)?
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| ApiError::validation("stored password is malformed"))?;
    let server = MailboxServer {
        protocol: stored(&row.protocol, "protocol")?,
        host: row.host.clone(),
        port: u16::try_from(row.port)
            .map_err(|_| ApiError::validation("stored port is malformed"))?,
        security: stored(&row.security, "security")?,
        username: row.username.clone(),
        password,
        skip_tls_verify: row.skip_tls_verify,
        timeout_secs: 10,
    };
    destinations::check_host(&state.egress, "host", &server.host).await?;
    let report = probe_mailbox(&server, &Egress::Policed(state.egress.clone())).await;
    state
        .audit(
            &who,
            None,
            "test",
            "mailbox_server",
            id,
            json!({ "ok": report.ok }),
        )
        .await?;
    Ok(axum::Json(TestResult {
        ok: report.ok,
        steps: report.steps,
    }))
}
