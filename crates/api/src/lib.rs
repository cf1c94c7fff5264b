//! The management REST API under `/api/v1`. One error type ([`error::ApiError`]), one
//! principal extractor ([`principal::Principal`]); the OpenAPI document is generated from
//! the handlers' annotations, so a route cannot exist without being described. What the
//! routes answer is in [`dto`] (`sluice-api-dto`), which the panel (`sluice-panel`) reads
//! its pages from; one row by id is scoped to its tenant by [`scoped`].
//! Not here, because the API shares them with the other listeners: the error type, JSON
//! error shape and request ids (`sluice-api-error`), message composition and templates (`sluice-compose`),
//! the run-time settings (`sluice-runtime-settings`) and the email services' feedback
//! webhooks (`sluice-feedback`, mounted here).

pub(crate) mod destinations;
pub mod dto;
pub mod html_compat;
pub mod html_scan;
/// The error type every handler answers with (`sluice-api-error`).
pub(crate) use sluice_api_error as error;
pub mod idempotency;
pub mod password;
pub mod principal;
pub(crate) mod routes;
pub mod scoped;
pub mod tokens;

/// Checks a user's email and password as `POST /auth/login` does (the panel's login).
pub use routes::auth::verify_login;
/// The statuses `GET /messages?status=` takes (the panel's filter offers them).
pub use routes::messages::STATUSES as MESSAGE_STATUSES;

use std::sync::Arc;

use axum::Router;
use sluice_core::LoginThrottle;
use sluice_store::{AuditEntry, Store};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use principal::Principal;
use tokens::Tokens;

#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn Store>,
    pub tokens: Arc<Tokens>,
    pub refresh_ttl_secs: u64,
    pub throttle: LoginThrottle,
    /// Verified against when a login names no user, so both take as long.
    pub dummy_hash: Arc<String>,
    /// Seals provider secrets (AES-256-GCM); never stored in the database.
    pub master_key: Arc<sluice_core::sealed::MasterKey>,
    /// Live SMTP sessions of this node.
    pub connections: Arc<dyn sluice_core::ConnectionDirectory>,
    /// Takes messages from `POST /send` (the accept path the SMTP side uses too).
    pub submitter: Arc<dyn Submitter>,
    /// For Message-IDs.
    pub hostname: String,
    pub max_message_size: usize,
    pub max_recipients: usize,
    /// Sends per account and `rate_limit_key`.
    pub send_limiter: Arc<std::sync::Mutex<sluice_core::rate::WindowLimiter>>,
    /// API keys seen recently: key hash → (key id, the active account), for
    /// `store.account_cache_ms`.
    /// Per key hash: the key's id, its account and its sandbox mode.
    pub api_keys:
        Arc<sluice_store::ttl_cache::TtlCache<String, (i64, sluice_store::Account, bool)>>,
    /// Accounts' statuses, for users' access tokens, for `store.account_cache_ms`: a
    /// suspension or deletion shuts every token out within that time.
    pub account_status:
        Arc<sluice_store::ttl_cache::TtlCache<sluice_core::AccountId, sluice_core::AccountStatus>>,
    /// The egress policy for tenants' destinations (providers, mailbox servers).
    pub egress: sluice_deliver::egress::EgressPolicy,
    /// The policy for event webhook endpoints: `egress`, plus the private ranges while the
    /// deprecated `event_webhooks.allow_private_targets` is on.
    pub webhook_egress: sluice_deliver::egress::EgressPolicy,
    /// Verifies feedback webhooks from the email services.
    pub feedback: Arc<sluice_feedback::FeedbackState>,
    /// Requests per minute per caller (API key or user).
    pub rate_limit: Arc<std::sync::Mutex<sluice_core::rate::WindowLimiter>>,
    /// This node's delivery log file, when it writes one.
    pub delivery_log: Option<std::path::PathBuf>,
    /// The one resolver (`[dns] nameservers`): sender-domain verification and checks.
    pub resolver: sluice_deliver::dns::Resolver,
    /// How long a sync send may hold its message (`delivery.lease_secs`): a send with an
    /// `Idempotency-Key` that has not answered within it is replayed as queued.
    pub sync_lease_ms: i64,
    /// The operator's spamd (`capture.spamd`) and how long a check may take.
    pub spamd: Option<(String, std::time::Duration)>,
}

impl ApiState {
    /// The caller's account if active: from the API-key cache when the caller came with a
    /// key seen in the last `store.account_cache_ms`, else read.
    pub async fn active_account(
        &self,
        who: &Principal,
        account_id: i64,
    ) -> Result<Option<sluice_store::Account>, error::ApiError> {
        if let Some(hash) = &who.api_key_hash
            && let Some((_, account, _)) = self.api_keys.get(hash)
            && account.id == account_id
        {
            return Ok(Some(account));
        }
        Ok(self
            .store
            .account(account_id)
            .await?
            .filter(|a| a.is_active()))
    }

    /// An account's status, from the cache when read in the last `store.account_cache_ms`;
    /// a missing account is `Deleted`.
    pub async fn account_status(
        &self,
        account_id: sluice_core::AccountId,
    ) -> Result<sluice_core::AccountStatus, error::ApiError> {
        Ok(
            sluice_store::cached_account_status(&*self.store, &self.account_status, account_id)
                .await?,
        )
    }

    /// Records who changed what; never secrets (callers pass only non-secret fields).
    pub async fn audit(
        &self,
        who: &Principal,
        account_id: Option<i64>,
        action: &str,
        target_type: &str,
        target_id: impl ToString,
        changes: serde_json::Value,
    ) -> Result<(), error::ApiError> {
        let entry = AuditEntry {
            account_id,
            actor: who.actor.clone(),
            action: action.into(),
            target_type: target_type.into(),
            target_id: target_id.to_string(),
            changes,
            source_ip: who.source_ip.clone(),
        };
        self.store.add_audit(&entry, now_ms()).await?;
        Ok(())
    }
}

impl axum::extract::FromRef<ApiState> for sluice_feedback::FeedbackContext {
    fn from_ref(state: &ApiState) -> Self {
        sluice_feedback::FeedbackContext {
            store: state.store.clone(),
            master_key: state.master_key.clone(),
            feedback: state.feedback.clone(),
        }
    }
}

/// The accept path (`sluice-accept`'s `Acceptor` in a node), declared in `core`.
pub use sluice_core::Submitter;

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Sluice management API", version = "1"),
    modifiers(&BearerAuth),
    tags(
        (name = "auth"), (name = "accounts"), (name = "users"), (name = "api-keys"),
        (name = "smtp-credentials"), (name = "smtp"), (name = "providers"), (name = "routing-rules"),
        (name = "send"), (name = "templates"), (name = "suppressions"), (name = "feedback"), (name = "dkim-keys"), (name = "domains"), (name = "webhook-endpoints"),
        (name = "messages"), (name = "audit"), (name = "dashboard"), (name = "mailbox-servers"), (name = "settings")
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API router (mounted at `/api/v1`) and its OpenAPI document.
pub fn router(state: ApiState) -> (Router, utoipa::openapi::OpenApi) {
    let (router, mut openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::router())
        .merge(sluice_feedback::router())
        .split_for_parts();
    openapi.servers = Some(vec![utoipa::openapi::Server::new("/api/v1")]);
    openapi.info.version = "1".into();
    let document = openapi.clone();
    let router = router
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let document = document.clone();
                async move { axum::Json(document) }
            }),
        )
        .fallback(|| async { error::ApiError::not_found() })
        .with_state(state)
        .layer(axum::middleware::from_fn(
            sluice_api_error::shape::api_shape,
        ))
        .layer(axum::middleware::from_fn(sluice_api_error::request_id));
    (router, openapi)
}
