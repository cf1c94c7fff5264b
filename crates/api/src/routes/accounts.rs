//! Accounts (tenants). Creating and listing them is for system admins.

use axum::extract::State;
use axum::http::StatusCode;
use rand::RngCore;
use serde::Deserialize;
use sluice_core::AccountStatus;
use sluice_core::secret::new_secret;
use sluice_store::{Account, AccountUpdate, NewAccount};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::super::error::{ApiError, Json, Path, Query};
use super::super::principal::{Principal, Role};
use super::super::{ApiState, now_ms};
use super::{ErrorBody, Page, page_size};
use crate::dto::accounts::{AccountView, CreatedAccount};

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(create_account, list_accounts))
        .routes(routes!(get_account, update_account, delete_account))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    pub name: String,
    /// The SMTP AUTH login.
    pub email: String,
    /// The SMTP AUTH password (at least 8 characters). Stored as argon2id, never returned.
    pub password: String,
    /// Domains the admin vouches for: added verified (`admin`).
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    pub monthly_limit: Option<i64>,
    pub allow_any_local_part: Option<bool>,
    /// Start in sandbox mode: everything the account sends is captured (default false).
    pub sandbox: Option<bool>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAccount {
    pub name: Option<String>,
    pub email: Option<String>,
    /// Admins only (others: 400 `read_only_field`): the account's verified domains become
    /// exactly these, vouched for by the admin; others listed before become unverified.
    /// Tenants add and verify domains at `/api/v1/domains`.
    pub allowed_domains: Option<Vec<String>>,
    /// Admins only.
    pub monthly_limit: Option<i64>,
    pub allow_any_local_part: Option<bool>,
    /// `active` or `suspended`; admins only. Suspending refuses every way in and holds the
    /// account's queued mail (status `held`); reactivating queues it again.
    pub status: Option<String>,
    /// Sandbox mode: `true` captures everything the account sends, whatever its rules and
    /// providers say (owners, API keys included, and admins). `false` lets its mail out
    /// again: only a logged-in owner of the account or an admin, never an API key. Each
    /// change is audited as `sandbox_on` / `sandbox_off`.
    pub sandbox: Option<bool>,
    /// Captured mail kept: at most this many (1 to 1,000,000; the newest stay); `null`:
    /// the server's `retention.capture_count`. Owners and admins.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub capture_retention_count: Option<Option<i64>>,
    /// Captured mail kept for at most this many days (1 to 3650); `null`: the server's
    /// `retention.capture_days`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub capture_retention_days: Option<Option<i64>>,
    /// Where captured mail may be released to: addresses (`qa@example.com`) and domains
    /// (`example.com`, with its subdomains), at most 100; `null`: anywhere. Owners and
    /// admins.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    pub capture_release_allowlist: Option<Option<Vec<String>>>,
    /// Injected SMTP answers for the account's sandboxed senders, per stage (`auth`,
    /// `mail`, `rcpt`, `data`): `{"rcpt": {"code": 451, "probability": 0.1, "message":
    /// "..."}}`; `null` turns them off. Owners and admins.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    pub capture_chaos: Option<Option<sluice_core::chaos::ChaosRules>>,
}

/// A field that was sent (`Some`), possibly as `null` (`Some(None)`); absent: `None`.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A retention value within `1..=max`, or null.
fn check_retention(name: &str, value: Option<Option<i64>>, max: i64) -> Result<(), ApiError> {
    match value {
        Some(Some(n)) if !(1..=max).contains(&n) => Err(ApiError::validation(format!(
            "{name} is 1 to {max}, or null for the server's default"
        ))),
        _ => Ok(()),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() || name.len() > 200 {
        return Err(ApiError::validation("name must be 1 to 200 characters"));
    }
    Ok(())
}

fn check_email(email: &str) -> Result<(), ApiError> {
    sluice_core::validate_mailbox(email).map_err(|e| ApiError::validation(format!("email: {e}")))
}

/// The domains an admin vouches for, each as `/api/v1/domains` takes it.
fn check_domains(domains: &[String]) -> Result<Vec<String>, ApiError> {
    domains
        .iter()
        .map(|domain| {
            sluice_core::sender_domain::normalize_domain(domain)
                .map_err(|e| ApiError::validation(format!("allowed_domains: {e}")))
        })
        .collect()
}

fn check_limit(limit: Option<i64>) -> Result<(), ApiError> {
    match limit {
        Some(n) if n < 0 => Err(ApiError::validation("monthly_limit must be 0 or more")),
        _ => Ok(()),
    }
}

/// Creates an account and its first API key (admins).
#[utoipa::path(post, path = "/accounts", tag = "accounts", request_body = CreateAccount,
    security(("bearer" = [])),
    responses((status = 201, body = CreatedAccount), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_account(
    State(state): State<ApiState>,
    who: Principal,
    Json(body): Json<CreateAccount>,
) -> Result<(StatusCode, axum::Json<CreatedAccount>), ApiError> {
    if !who.is_admin() {
        return Err(ApiError::forbidden());
    }
    check_name(&body.name)?;
    check_email(&body.email)?;
    let domains = check_domains(&body.allowed_domains)?;
    check_limit(body.monthly_limit)?;
    let hash = super::hash_new_password(&body.password).await?;
    let now = now_ms();
    let mut account = state
        .store
        .create_account(
            NewAccount {
                name: body.name.clone(),
                email: body.email.clone(),
                password_hash: hash,
                allowed_domains: domains,
            },
            now,
        )
        .await?;
    if body.monthly_limit.is_some() || body.allow_any_local_part.is_some() || body.sandbox.is_some()
    {
        let update = AccountUpdate {
            monthly_limit: body.monthly_limit,
            allow_any_local_part: body.allow_any_local_part,
            sandbox: body.sandbox,
            ..Default::default()
        };
        account = state
            .store
            .update_account(account.id, &update, now)
            .await?
            .ok_or_else(ApiError::not_found)?;
    }
    let mut random = [0u8; 32];
    rand::rng().fill_bytes(&mut random);
    let key = new_secret("sk", random);
    let key_id = state
        .store
        .add_api_key(account.id, &key.prefix, &key.hash, now)
        .await?;
    let changes = serde_json::json!({
        "name": account.name, "email": account.email,
        "allowed_domains": account.allowed_domains, "monthly_limit": account.monthly_limit,
        "allow_any_local_part": account.allow_any_local_part, "sandbox": account.sandbox,
        "first_api_key": key_id,
    });
    state
        .audit(
            &who,
            Some(account.id),
            "create",
            "account",
            account.id,
            changes,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedAccount {
            account: account.into(),
            api_key: key.value,
        }),
    ))
}

/// Lists accounts (admins), by id, with a cursor.
#[utoipa::path(get, path = "/accounts", tag = "accounts", params(ListQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Page<AccountView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_accounts(
    State(state): State<ApiState>,
    who: Principal,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<Page<AccountView>>, ApiError> {
    if !who.is_admin() {
        return Err(ApiError::forbidden());
    }
    let after = super::cursor(query.cursor.as_deref())?.unwrap_or(0);
    let limit = page_size(query.limit);
    let accounts = state.store.list_accounts(after, limit).await?;
    let next_cursor = (accounts.len() as i64 == limit)
        .then(|| accounts.last().map(|a| a.id.to_string()))
        .flatten();
    Ok(axum::Json(Page {
        items: accounts.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// The account unless deleted (a deleted account is "not found").
fn live(account: Option<Account>) -> Option<Account> {
    account.filter(|a| a.status != AccountStatus::Deleted)
}

/// One account: admins any, others their own.
#[utoipa::path(get, path = "/accounts/{id}", tag = "accounts", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = AccountView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_account(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
) -> Result<axum::Json<AccountView>, ApiError> {
    Ok(axum::Json(
        who.visible(live(state.store.account(id).await?))?.into(),
    ))
}

/// Changes an account: admins any field, owners name, email, local-part policy and sandbox
/// mode (turning it off takes a login, not an API key).
#[utoipa::path(put, path = "/accounts/{id}", tag = "accounts", params(("id" = i64, Path)),
    request_body = UpdateAccount, security(("bearer" = [])),
    responses((status = 200, body = AccountView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_account(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
    Json(body): Json<UpdateAccount>,
) -> Result<axum::Json<AccountView>, ApiError> {
    let before = who.visible(live(state.store.account(id).await?))?;
    check_update_rights(&who, &before, &body)?;
    let (domains, status) = checked_update(&who, &body)?;
    let mut status_change = None;
    if let Some(status) = status {
        let change = change_status(&state, id, status).await?;
        let lifecycle = serde_json::json!({
            "messages_changed": change.messages_changed,
            "sessions_revoked": change.sessions_revoked,
        });
        status_change = Some((status, lifecycle));
    }
    let update = AccountUpdate {
        name: body.name.clone(),
        email: body.email.clone(),
        allowed_domains: domains,
        monthly_limit: body.monthly_limit,
        allow_any_local_part: body.allow_any_local_part,
        status: None,
        sandbox: body.sandbox,
        capture_retention_count: body.capture_retention_count,
        capture_retention_days: body.capture_retention_days,
        capture_chaos: body.capture_chaos.clone(),
        capture_release_allowlist: body.capture_release_allowlist.clone().map(|list| {
            list.map(|entries| {
                entries
                    .iter()
                    .map(|e| e.trim().to_ascii_lowercase())
                    .collect()
            })
        }),
    };
    let account = state
        .store
        .update_account(id, &update, now_ms())
        .await?
        .ok_or_else(ApiError::not_found)?;
    audit_update(&state, &who, &before, &account, status_change).await?;
    audit_sandbox_change(&state, &who, &before, &account).await?;
    Ok(axum::Json(account.into()))
}

/// Who may change what: owners and up; the monthly limit and status only admins; sandbox
/// mode off not with an API key.
fn check_update_rights(
    who: &Principal,
    before: &Account,
    body: &UpdateAccount,
) -> Result<(), ApiError> {
    who.require(Role::Owner)?;
    if !who.is_admin() && (body.monthly_limit.is_some() || body.status.is_some()) {
        return Err(ApiError::forbidden());
    }
    // Letting a sandbox's mail out is a person's deliberate act: an API key is what the
    // application under test holds, so it may turn sandbox mode on but never off.
    if body.sandbox == Some(false) && before.sandbox && who.api_key_hash.is_some() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "turning sandbox mode off takes a logged-in owner of the account or an admin, \
             not an API key",
        ));
    }
    Ok(())
}

/// The body's fields checked: the allowed domains (admins only) and the new status.
fn checked_update(
    who: &Principal,
    body: &UpdateAccount,
) -> Result<(Option<Vec<String>>, Option<AccountStatus>), ApiError> {
    if let Some(name) = &body.name {
        check_name(name)?;
    }
    if let Some(email) = &body.email {
        check_email(email)?;
    }
    check_retention(
        "capture_retention_count",
        body.capture_retention_count,
        1_000_000,
    )?;
    check_retention("capture_retention_days", body.capture_retention_days, 3650)?;
    if let Some(Some(rules)) = &body.capture_chaos {
        rules
            .check()
            .map_err(|e| ApiError::validation(format!("capture_chaos: {e}")))?;
    }
    if let Some(Some(list)) = &body.capture_release_allowlist {
        if list.len() > 100 {
            return Err(ApiError::validation(
                "capture_release_allowlist holds at most 100 entries",
            ));
        }
        if let Some(bad) = list
            .iter()
            .find(|e| !sluice_core::capture_release::valid_entry(e))
        {
            return Err(ApiError::validation(format!(
                "capture_release_allowlist: {bad:?} is neither an address nor a domain"
            )));
        }
    }
    if body.allowed_domains.is_some() && !who.is_admin() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "read_only_field",
            "allowed_domains is read-only: it lists the account's verified domains; \
             add and verify a domain at /api/v1/domains",
        ));
    }
    let domains = body
        .allowed_domains
        .as_deref()
        .map(check_domains)
        .transpose()?;
    check_limit(body.monthly_limit)?;
    let status = match body.status.as_deref() {
        None => None,
        Some("active") => Some(AccountStatus::Active),
        Some("suspended") => Some(AccountStatus::Suspended),
        Some(_) => return Err(ApiError::validation("status is active or suspended")),
    };
    Ok((domains, status))
}

/// The `update` audit entry: the fields whose values changed, with their new values (a
/// form that sends every field records only what it changed), and a status change with
/// what it did to mail and sessions. Nothing changed, or only sandbox mode (that has entries
/// of its own): no entry.
async fn audit_update(
    state: &ApiState,
    who: &Principal,
    before: &Account,
    after: &Account,
    status_change: Option<(AccountStatus, serde_json::Value)>,
) -> Result<(), ApiError> {
    let mut changes = changed_fields(before, after);
    if let Some((status, lifecycle)) = status_change {
        changes.insert("status".into(), status.as_str().into());
        changes.insert("lifecycle".into(), lifecycle);
    }
    if !changes.is_empty() {
        state
            .audit(
                who,
                Some(after.id),
                "update",
                "account",
                after.id,
                serde_json::Value::Object(changes),
            )
            .await?;
    }
    Ok(())
}

/// The account's fields that differ between `before` and `after`, with their new values;
/// not the timestamps, the status (audited with its consequences) or sandbox mode.
fn changed_fields(before: &Account, after: &Account) -> serde_json::Map<String, serde_json::Value> {
    let view = |a: &Account| serde_json::to_value(AccountView::from(a.clone())).unwrap_or_default();
    let (before, after) = (view(before), view(after));
    let mut changes = serde_json::Map::new();
    if let (Some(before), Some(after)) = (before.as_object(), after.as_object()) {
        for (field, value) in after {
            let skipped = matches!(
                field.as_str(),
                "id" | "created_at" | "updated_at" | "status" | "sandbox"
            );
            if !skipped && before.get(field) != Some(value) {
                changes.insert(field.clone(), value.clone());
            }
        }
    }
    changes
}

/// Each change of sandbox mode is an entry of its own, easy to find: who turned it on or
/// off, and when.
async fn audit_sandbox_change(
    state: &ApiState,
    who: &Principal,
    before: &Account,
    account: &Account,
) -> Result<(), ApiError> {
    if before.sandbox == account.sandbox {
        return Ok(());
    }
    let id = account.id;
    let action = if account.sandbox {
        "sandbox_on"
    } else {
        "sandbox_off"
    };
    state
        .audit(
            who,
            Some(id),
            action,
            "account",
            id,
            serde_json::json!({ "sandbox": account.sandbox }),
        )
        .await?;
    tracing::info!(account = id, actor = %who.actor, action, "account sandbox mode changed");
    Ok(())
}

/// Deletes an account (admins): its users, keys, SMTP logins and trusted-port mapping stop
/// working (within `store.account_cache_ms`), its refresh tokens and panel sessions are
/// revoked, its queued, deferred and held mail is cancelled (event `account_deleted`);
/// the rows stay for admins and retention. Not undone.
#[utoipa::path(delete, path = "/accounts/{id}", tag = "accounts", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_account(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    who.visible(live(state.store.account(id).await?))?;
    if !who.is_admin() {
        return Err(ApiError::forbidden());
    }
    let change = change_status(&state, id, AccountStatus::Deleted).await?;
    state
        .audit(
            &who,
            Some(id),
            "delete",
            "account",
            id,
            serde_json::json!({
                "messages_cancelled": change.messages_changed,
                "sessions_revoked": change.sessions_revoked,
            }),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Moves an account to `status` with what goes with it (its mail held, released or
/// cancelled; its sessions revoked), and lets this node's caches know at once.
async fn change_status(
    state: &ApiState,
    id: i64,
    status: AccountStatus,
) -> Result<sluice_store::AccountStatusChange, ApiError> {
    let change = state
        .store
        .set_account_status(id, status, now_ms())
        .await?
        .ok_or_else(ApiError::not_found)?;
    state.account_status.put(id, status);
    tracing::info!(
        account = id,
        status = status.as_str(),
        messages = change.messages_changed,
        sessions = change.sessions_revoked,
        "account status changed"
    );
    Ok(change)
}
