//! Providers: where mail goes. Settings are checked per type; secret settings are
//! write-only (shown masked) and sealed with AES-256-GCM under the master key.

use axum::extract::State;
use axum::http::StatusCode;
use rand::RngCore;
use serde::Deserialize;
use serde_json::Value;
use sluice_core::ProviderType;
use sluice_core::provider_spec::{self, check_settings, masked, merge_secrets, split_secrets};
use sluice_store::{NewProvider, ProviderRow};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::super::destinations;
use super::super::error::{ApiError, Json, Path, Query};
use super::super::principal::{Principal, Role};
use super::super::{ApiState, now_ms};
use super::ErrorBody;
use crate::dto::providers::{ProviderView, TestResult};

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(create_provider, list_providers))
        .routes(routes!(get_provider, update_provider, delete_provider))
        .routes(routes!(test_provider))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProvider {
    pub name: String,
    pub provider_type: String,
    /// Settings for the type, e.g. smtp: host, port, security, username, password,
    /// timeout_secs, skip_tls_verify; sendgrid: api_key; mailgun: domain, api_key, region;
    /// ses: region, access_key_id, secret_access_key; msgraph: tenant_id, client_id,
    /// client_secret, sender.
    #[schema(value_type = Object)]
    pub config: Value,
    pub enabled: Option<bool>,
    /// Lower goes first.
    pub priority: Option<i64>,
    /// Admins: the account; absent makes a system-wide provider.
    pub account_id: Option<i64>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProvider {
    pub name: Option<String>,
    /// Replaces the settings; secrets left out or sent as `********` stay as they were.
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    pub enabled: Option<bool>,
    pub priority: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ProviderQuery {
    /// Admins: one account's providers only.
    pub account_id: Option<i64>,
}

impl ApiState {
    fn seal(&self, secrets: &Value) -> String {
        self.seal_bytes(secrets.to_string().as_bytes())
    }

    /// Seals with the master key under a fresh random nonce.
    pub(crate) fn seal_bytes(&self, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        self.master_key.seal(plaintext, nonce)
    }

    pub(crate) fn unseal(&self, sealed: &str) -> Result<Value, ApiError> {
        let plain = self.master_key.open(sealed).map_err(|e| {
            tracing::error!(error = %e, "provider secrets do not open with the master key");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "secrets_unreadable",
                "the provider's secrets cannot be read with this master key",
            )
        })?;
        serde_json::from_slice(&plain)
            .map_err(|_| ApiError::validation("stored secrets are malformed"))
    }
}

fn view(state: &ApiState, row: ProviderRow) -> Result<ProviderView, ApiError> {
    let secrets = state.unseal(&row.secrets)?;
    Ok(ProviderView {
        config: masked(row.provider_type, &row.config, &secrets),
        id: row.id,
        account_id: row.account_id,
        name: row.name,
        provider_type: row.provider_type.as_str().into(),
        enabled: row.enabled,
        priority: row.priority,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() || name.len() > 200 {
        return Err(ApiError::validation("name must be 1 to 200 characters"));
    }
    Ok(())
}

/// Creates a provider (owners for their account, admins for any or system-wide).
#[utoipa::path(post, path = "/providers", tag = "providers", request_body = CreateProvider,
    security(("bearer" = [])),
    responses((status = 201, body = ProviderView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_provider(
    State(state): State<ApiState>,
    who: Principal,
    Json(body): Json<CreateProvider>,
) -> Result<(StatusCode, axum::Json<ProviderView>), ApiError> {
    who.require(Role::Owner)?;
    let account_id = super::owner_for_new(&state, &who, body.account_id).await?;
    check_name(&body.name)?;
    let provider_type =
        provider_spec::parse_type(&body.provider_type).map_err(ApiError::validation)?;
    check_settings(provider_type, &body.config).map_err(ApiError::validation)?;
    destinations::check_provider(&state, account_id, provider_type, &body.config).await?;
    let (public, secrets) = split_secrets(provider_type, &body.config);
    let row = state
        .store
        .create_provider(
            &NewProvider {
                account_id,
                name: body.name.clone(),
                provider_type,
                config: public.clone(),
                secrets: state.seal(&secrets),
                enabled: body.enabled.unwrap_or(true),
                priority: body.priority.unwrap_or(100),
            },
            now_ms(),
        )
        .await?;
    let changes = serde_json::json!({
        "name": row.name, "provider_type": row.provider_type, "config": public,
        "secrets_set": secrets.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()),
    });
    state
        .audit(&who, account_id, "create", "provider", row.id, changes)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(view(&state, row)?)))
}

/// Lists providers: admins all (or one account's), others their account's.
#[utoipa::path(get, path = "/providers", tag = "providers", params(ProviderQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Vec<ProviderView>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_providers(
    State(state): State<ApiState>,
    who: Principal,
    Query(query): Query<ProviderQuery>,
) -> Result<axum::Json<Vec<ProviderView>>, ApiError> {
    let account = who.scope(query.account_id)?;
    let rows = state.store.list_providers(account).await?;
    let views = rows
        .into_iter()
        .map(|row| view(&state, row))
        .collect::<Result<_, _>>()?;
    Ok(axum::Json(views))
}

/// One provider, secrets masked.
#[utoipa::path(get, path = "/providers/{id}", tag = "providers", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = ProviderView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_provider(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
) -> Result<axum::Json<ProviderView>, ApiError> {
    let row = who.visible(state.store.provider(id).await?)?;
    Ok(axum::Json(view(&state, row)?))
}

/// Changes a provider; its type stays.
#[utoipa::path(put, path = "/providers/{id}", tag = "providers", params(("id" = i64, Path)),
    request_body = UpdateProvider, security(("bearer" = [])),
    responses((status = 200, body = ProviderView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_provider(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
    Json(body): Json<UpdateProvider>,
) -> Result<axum::Json<ProviderView>, ApiError> {
    let row = who.visible(state.store.provider(id).await?)?;
    who.require(Role::Owner)?;
    if let Some(name) = &body.name {
        check_name(name)?;
    }
    let old_secrets = state.unseal(&row.secrets)?;
    let (public, secrets) = match &body.config {
        Some(config) => {
            let merged = merge_secrets(row.provider_type, config, &old_secrets);
            check_settings(row.provider_type, &merged).map_err(ApiError::validation)?;
            destinations::check_provider(&state, row.account_id, row.provider_type, &merged)
                .await?;
            split_secrets(row.provider_type, &merged)
        }
        None => (row.config.clone(), old_secrets.clone()),
    };
    let secrets_changed: Vec<&str> = row
        .provider_type
        .secret_fields()
        .iter()
        .copied()
        .filter(|f| secrets.get(*f) != old_secrets.get(*f))
        .collect();
    let replacement = NewProvider {
        account_id: row.account_id,
        name: body.name.clone().unwrap_or(row.name.clone()),
        provider_type: row.provider_type,
        config: public.clone(),
        secrets: state.seal(&secrets),
        enabled: body.enabled.unwrap_or(row.enabled),
        priority: body.priority.unwrap_or(row.priority),
    };
    let updated = state
        .store
        .replace_provider(id, &replacement, now_ms())
        .await?
        .ok_or_else(ApiError::not_found)?;
    let changes = serde_json::json!({
        "name": body.name, "config": body.config.as_ref().map(|_| &public),
        "enabled": body.enabled, "priority": body.priority, "secrets_changed": secrets_changed,
    });
    state
        .audit(&who, row.account_id, "update", "provider", id, changes)
        .await?;
    Ok(axum::Json(view(&state, updated)?))
}

/// Deletes a provider no routing rule uses.
#[utoipa::path(delete, path = "/providers/{id}", tag = "providers", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_provider(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let row = who.visible(state.store.provider(id).await?)?;
    who.require(Role::Owner)?;
    if !state.store.delete_provider(id).await? {
        return Err(ApiError::not_found());
    }
    state
        .audit(
            &who,
            row.account_id,
            "delete",
            "provider",
            id,
            serde_json::json!({ "name": row.name }),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Optional body of a provider test: send one real test message.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    /// Envelope sender and From of the test message.
    pub from: String,
    /// Its one recipient.
    pub to: String,
}

/// Checks a provider can be reached: for smtp, connect (TLS as configured), EHLO, AUTH if
/// configured, QUIT; with a body (`from`, `to`), then sends one real test message through
/// it (sender display name applied) and shows the upstream's answer. Other network
/// providers are tested once their deliverers exist.
#[utoipa::path(post, path = "/providers/{id}/test", tag = "providers", params(("id" = i64, Path)),
    request_body(content = Option<TestRequest>), security(("bearer" = [])),
    responses((status = 200, body = TestResult), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn test_provider(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
    request: Option<Json<TestRequest>>,
) -> Result<axum::Json<TestResult>, ApiError> {
    let request = request.map(|Json(request)| request);
    if let Some(request) = &request {
        for (field, address) in [("from", &request.from), ("to", &request.to)] {
            sluice_core::address::validate_mailbox(address)
                .map_err(|e| ApiError::validation(format!("{field}: {e}")))?;
        }
    }
    let row = who.visible(state.store.provider(id).await?)?;
    who.require(Role::Member)?;
    let secrets = state.unseal(&row.secrets)?;
    let settings = merge_secrets(row.provider_type, &row.config, &secrets);
    let result = match row.provider_type {
        ProviderType::Log | ProviderType::Capture => TestResult {
            ok: true,
            steps: vec![format!("{}: nothing to connect to", row.provider_type)],
        },
        ProviderType::Smtp => {
            let config: sluice_core::SmtpProviderConfig = serde_json::from_value(settings)
                .map_err(|e| ApiError::validation(format!("stored settings: {e}")))?;
            // A tenant's host is refused before any connection (it may have been saved
            // while it did not resolve, or the policy changed since).
            if row.account_id.is_some() {
                destinations::check_host(&state.egress, "config.host", &config.host).await?;
            }
            let egress = destinations::provider_egress(&state, row.account_id);
            let report = match &request {
                None => sluice_deliver::probe_smtp(&config, "sluice.invalid", &egress).await,
                Some(request) => {
                    let test = sluice_deliver::TestMessage {
                        from: &request.from,
                        to: &request.to,
                        provider_name: &row.name,
                        now_secs: now_ms() / 1000,
                    };
                    sluice_deliver::send_test_message(&config, "sluice.invalid", &egress, test)
                        .await
                }
            };
            test_result(report)
        }
        other => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "test_not_supported",
                format!("testing {other} providers is not built yet"),
            ));
        }
    };
    state
        .audit(
            &who,
            row.account_id,
            "test",
            "provider",
            id,
            serde_json::json!({ "ok": result.ok, "test_message": request.is_some() }),
        )
        .await?;
    Ok(axum::Json(result))
}

fn test_result(report: sluice_deliver::ProbeReport) -> TestResult {
    TestResult {
        ok: report.ok,
        steps: report.steps,
    }
}
