//! Sender domains an account owns. A domain is usable for sending (SMTP MAIL FROM, HTTP
//! send, the webhook's sender, DKIM keys) only once verified: the account publishes
//! `_sluice.<domain> TXT "sluice-verify=<token>"` and asks `POST /domains/{id}/verify`,
//! or a system admin vouches for it (`"verified": true`). DNS verifies a domain for one
//! account only. Each verify also reports SPF, DKIM and DMARC as published.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use sluice_core::sender_domain::{self, Check};
use sluice_deliver::dns::DnsError;
use sluice_store::{DomainRow, StoreError};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::super::error::{ApiError, Json, Path, Query};
use super::super::principal::{Principal, Role};
use super::super::{ApiState, now_ms};
use super::{AccountQuery, ErrorBody, live_account};
use crate::dto::domains::DomainView;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(create_domain, list_domains))
        .routes(routes!(get_domain, delete_domain))
        .routes(routes!(verify_domain))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDomain {
    /// Lower-cased; no trailing dot; an internationalised name in its `xn--` form.
    pub domain: String,
    /// Admins: the account.
    pub account_id: Option<i64>,
    /// Admins: vouch for the domain (verified without DNS, also when another account has
    /// it verified).
    pub verified: Option<bool>,
}

/// Adds a sender domain to the account (owners and admins): unverified, with the TXT record
/// to publish; an admin's `"verified": true` verifies it at once (200 when the account
/// had it already).
#[utoipa::path(post, path = "/domains", tag = "domains", request_body = CreateDomain,
    security(("bearer" = [])),
    responses((status = 201, body = DomainView), (status = 200, body = DomainView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn create_domain(
    State(state): State<ApiState>,
    who: Principal,
    Json(body): Json<CreateDomain>,
) -> Result<(StatusCode, axum::Json<DomainView>), ApiError> {
    who.require(Role::Owner)?;
    let vouch = body.verified == Some(true);
    if vouch && !who.is_admin() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only a system admin may mark a domain verified; publish the TXT record and verify",
        ));
    }
    let account_id = live_account(&state, &who, body.account_id).await?;
    let domain = sender_domain::normalize_domain(&body.domain)
        .map_err(|e| ApiError::validation(format!("domain: {e}")))?;
    let how = vouch.then_some("admin");
    let (row, added) = match state
        .store
        .create_domain(account_id, &domain, how, now_ms())
        .await
    {
        Ok(done) => done,
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::conflict(format!(
                "the account has {domain} already"
            )));
        }
        Err(other) => return Err(other.into()),
    };
    state
        .audit(
            &who,
            Some(account_id),
            "create",
            "domain",
            row.id,
            serde_json::json!({ "domain": row.domain, "verified_how": how }),
        )
        .await?;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(row.into())))
}

/// The caller's domains (admins: every account's, or `?account_id=`), by name.
#[utoipa::path(get, path = "/domains", tag = "domains", params(AccountQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Vec<DomainView>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn list_domains(
    State(state): State<ApiState>,
    who: Principal,
    Query(query): Query<AccountQuery>,
) -> Result<axum::Json<Vec<DomainView>>, ApiError> {
    let scope = who.scope(query.account_id)?;
    let rows = state.store.list_domains(scope).await?;
    Ok(axum::Json(rows.into_iter().map(Into::into).collect()))
}

/// One domain, its verification record and its last DNS check.
#[utoipa::path(get, path = "/domains/{id}", tag = "domains", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = DomainView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_domain(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
) -> Result<axum::Json<DomainView>, ApiError> {
    Ok(axum::Json(
        who.visible(state.store.domain(id).await?)?.into(),
    ))
}

/// Removes a domain (owners and admins): mail from it is refused from then on.
#[utoipa::path(delete, path = "/domains/{id}", tag = "domains", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_domain(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let row = who.visible(state.store.domain(id).await?)?;
    who.require(Role::Owner)?;
    state.store.delete_domain(id).await?;
    state
        .audit(
            &who,
            Some(row.account_id),
            "delete",
            "domain",
            id,
            serde_json::json!({ "domain": row.domain }),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Checks DNS now (owners and admins): the verification TXT record (an unverified domain
/// becomes verified when it is published, unless another account has the domain verified:
/// 409), and SPF, DKIM (the account's keys for the domain) and DMARC.
#[utoipa::path(post, path = "/domains/{id}/verify", tag = "domains", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = DomainView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn verify_domain(
    State(state): State<ApiState>,
    who: Principal,
    Path(id): Path<i64>,
) -> Result<axum::Json<DomainView>, ApiError> {
    let row = who.visible(state.store.domain(id).await?)?;
    who.require(Role::Owner)?;
    let checks = check_dns(&state, &row).await?;
    let proved = checks.ownership.status == sender_domain::CheckStatus::Ok;
    let now = now_ms();
    let mut taken = false;
    if proved && !row.verified {
        taken = state.store.verify_domain_by_dns(id, now).await?.is_none();
    }
    let recorded = serde_json::json!({
        "ownership": checks.ownership, "spf": checks.spf, "dkim": checks.dkim, "dmarc": checks.dmarc,
    });
    let updated = state
        .store
        .record_domain_checks(id, &recorded, now)
        .await?
        .ok_or_else(ApiError::not_found)?;
    state
        .audit(
            &who,
            Some(row.account_id),
            "verify",
            "domain",
            id,
            serde_json::json!({ "domain": row.domain, "verified": updated.verified,
                "verified_how": updated.verified_how, "refused_taken": taken }),
        )
        .await?;
    if taken {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "domain_taken",
            format!(
                "{} is verified by another account; only a system admin can verify it for this one too",
                row.domain
            ),
        ));
    }
    Ok(axum::Json(updated.into()))
}

struct DnsChecks {
    ownership: Check,
    spf: Check,
    dkim: Check,
    dmarc: Check,
}

/// The lookups of one check, side by side, through the one resolver (`[dns]`).
async fn check_dns(state: &ApiState, row: &DomainRow) -> Result<DnsChecks, ApiError> {
    let resolver = &state.resolver;
    let domain = row.domain.as_str();
    let keys: Vec<_> = state
        .store
        .list_dkim_keys(Some(row.account_id))
        .await?
        .into_iter()
        .filter(|k| k.enabled && k.domain == domain)
        .collect();
    let verify_name = sender_domain::verification_name(domain);
    let dmarc_name = format!("_dmarc.{domain}");
    let (ownership, spf, dmarc, dkim) = tokio::join!(
        resolver.lookup_txt(&verify_name),
        resolver.lookup_txt(domain),
        resolver.lookup_txt(&dmarc_name),
        async {
            let mut found = Vec::new();
            for key in &keys {
                let name = format!("{}._domainkey.{domain}", key.selector);
                found.push(match resolver.lookup_txt(&name).await {
                    Ok(txts) => sender_domain::dkim_check(&name, &key.dns_record, &txts),
                    Err(e) => lookup_failed(&e),
                });
            }
            found
        },
    );
    let ownership = match ownership {
        Ok(txts) if sender_domain::proves_ownership(&row.token, &txts) => {
            Check::ok(format!("{verify_name} has the token"))
        }
        Ok(txts) if txts.is_empty() => Check::missing(format!(
            "no TXT record at {verify_name}: publish {}",
            sender_domain::verification_value(&row.token)
        )),
        Ok(_) => Check::invalid(format!(
            "{verify_name} has TXT records but not {}",
            sender_domain::verification_value(&row.token)
        )),
        Err(e) => lookup_failed(&e),
    };
    Ok(DnsChecks {
        ownership,
        spf: spf.map_or_else(|e| lookup_failed(&e), |t| sender_domain::spf_check(&t)),
        dkim: sender_domain::dkim_summary(domain, dkim),
        dmarc: dmarc.map_or_else(|e| lookup_failed(&e), |t| sender_domain::dmarc_check(&t)),
    })
}

/// A lookup that got no answer: nothing was found, and the detail says why.
fn lookup_failed(error: &DnsError) -> Check {
    Check::missing(format!("not checked: {error}"))
}
