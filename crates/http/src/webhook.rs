//! The signed "outbound email" webhook: another application asks Sluice to send an email
//! verification or password reset mail. Its own listener, exactly this contract:
//!
//! - `POST /webhook/outbound-email`, JSON `type`, `to`, `subject`, `token`, `expiresAt`
//!   required; `link`, `fromLocalPart` optional.
//! - With a secret: `X-TransLife-Timestamp` (ISO 8601) and `X-TransLife-Signature` =
//!   hex(HMAC-SHA256(secret, timestamp + "." + raw body)), compared in constant time, the
//!   timestamp within the window, each signature accepted once within it.
//! - Answers `{"ok": true, "to", "subject", "queued_id", "queued_at"}` or
//!   `{"ok": false, "error": "..."}` with 400, 401, 403, 429 or 503; a 429, and a 503 that
//!   passes, carry `Retry-After`.
//! - `link`, when given, is an absolute http(s) URL (it becomes an `href`), else 400
//!   `invalid field: link`; an empty one counts as not given.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use sluice_config::WebhookConfig;
use sluice_core::rate::WindowLimiter;
use sluice_core::text::is_header_safe;
use sluice_core::web_url::check_web_url;
use sluice_core::{AcceptOutcome, Envelope, Source, Submission};
use sluice_store::Store;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use sluice_api::Submitter;
use sluice_api_error::secs_until_next_month;
use sluice_compose::render::{builtin, render};
use sluice_compose::{self as compose, Composed, Mailbox, parse_mailbox};

#[derive(Clone)]
pub struct WebhookState {
    pub config: Arc<WebhookConfig>,
    pub store: Arc<dyn Store>,
    pub submitter: Arc<dyn Submitter>,
    pub hostname: String,
    pub max_message_size: usize,
    per_ip: Arc<Mutex<WindowLimiter>>,
    /// Admins' run-time changes (enabled, secret, timestamp window) over `config`.
    runtime: tokio::sync::watch::Receiver<sluice_runtime_settings::RuntimeSettings>,
}

impl WebhookState {
    pub fn new(
        config: WebhookConfig,
        store: Arc<dyn Store>,
        submitter: Arc<dyn Submitter>,
        hostname: String,
        max_message_size: usize,
        runtime: tokio::sync::watch::Receiver<sluice_runtime_settings::RuntimeSettings>,
    ) -> Self {
        let per_ip = WindowLimiter::new(config.rate_limit_per_minute, 60_000);
        WebhookState {
            config: Arc::new(config),
            store,
            submitter,
            hostname,
            max_message_size,
            per_ip: Arc::new(Mutex::new(per_ip)),
            runtime,
        }
    }
}

pub fn router(state: WebhookState) -> Router {
    Router::new()
        .route("/webhook/outbound-email", post(outbound_email))
        .route(
            "/healthz",
            get(|| async { axum::Json(json!({ "status": "ok" })) }),
        )
        .with_state(state)
        .layer(axum::middleware::from_fn(
            sluice_api_error::shape::webhook_shape,
        ))
}

/// An answer of the contract's error shape: `{"ok": false, "error": "..."}`.
struct Refusal {
    status: StatusCode,
    error: String,
    /// Seconds for `Retry-After`.
    retry_after: Option<i64>,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = json!({ "ok": false, "error": self.error });
        let mut response = (self.status, axum::Json(body)).into_response();
        // Storage and database refusals say when to come back even when the refusal did
        // not name a time.
        let retry_after = self.retry_after.or(match self.status {
            StatusCode::INSUFFICIENT_STORAGE => Some(30),
            StatusCode::SERVICE_UNAVAILABLE => Some(5),
            _ => None,
        });
        if let Some(secs) = retry_after
            && let Ok(value) = axum::http::HeaderValue::from_str(&secs.max(1).to_string())
        {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, value);
        }
        response
    }
}

fn refuse(status: StatusCode, error: impl Into<String>) -> Refusal {
    Refusal {
        status,
        error: error.into(),
        retry_after: None,
    }
}

/// A refusal that passes: try again in `secs`.
fn refuse_for(status: StatusCode, error: impl Into<String>, secs: i64) -> Refusal {
    Refusal {
        retry_after: Some(secs),
        ..refuse(status, error)
    }
}

/// Seconds a database outage is expected to last, as the API's 503s say.
const UNAVAILABLE_RETRY_SECS: i64 = 5;

fn now_ms() -> i64 {
    sluice_api::now_ms()
}

/// Checks the signature headers against the raw body; `Err` is the refusal.
async fn verify_signature(
    state: &WebhookState,
    config: &WebhookConfig,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Refusal> {
    let secret = &config.secret;
    let window_secs = config.timestamp_window_secs;
    if secret.is_empty() {
        return if config.allow_unsigned {
            Ok(())
        } else {
            Err(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "webhook secret not configured",
            ))
        };
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let (Some(timestamp), Some(signature)) = (
        header("x-translife-timestamp"),
        header("x-translife-signature"),
    ) else {
        return Err(refuse(StatusCode::UNAUTHORIZED, "missing signature"));
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| {
        refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "webhook secret not configured",
        )
    })?;
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let provided = hex::decode(signature)
        .map_err(|_| refuse(StatusCode::UNAUTHORIZED, "invalid signature"))?;
    mac.verify_slice(&provided)
        .map_err(|_| refuse(StatusCode::UNAUTHORIZED, "invalid signature"))?;
    // Only a genuine signature gets this far: now its time and freshness.
    let sent = OffsetDateTime::parse(timestamp, &Rfc3339)
        .map_err(|_| refuse(StatusCode::UNAUTHORIZED, "invalid timestamp"))?;
    let now = now_ms();
    let window_ms = window_secs as i64 * 1000;
    let sent_ms = (sent.unix_timestamp_nanos() / 1_000_000) as i64;
    if (now - sent_ms).abs() > window_ms {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "timestamp outside the allowed window",
        ));
    }
    // Once per signature on every node: the database remembers it for the window.
    match state
        .store
        .remember_signature(signature, sent_ms + window_ms, now)
        .await
    {
        Ok(true) => Ok(()),
        Ok(false) => Err(refuse(StatusCode::UNAUTHORIZED, "signature already used")),
        Err(_) => Err(refuse_for(
            StatusCode::SERVICE_UNAVAILABLE,
            "database unavailable",
            UNAVAILABLE_RETRY_SECS,
        )),
    }
}

fn field<'a>(body: &'a Value, name: &str) -> Result<&'a str, Refusal> {
    match body.get(name) {
        None | Some(Value::Null) => Err(refuse(
            StatusCode::BAD_REQUEST,
            format!("missing field: {name}"),
        )),
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(_) => Err(refuse(
            StatusCode::BAD_REQUEST,
            format!("invalid field: {name}"),
        )),
    }
}

fn optional<'a>(body: &'a Value, name: &str) -> Result<Option<&'a str>, Refusal> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(refuse(
            StatusCode::BAD_REQUEST,
            format!("invalid field: {name}"),
        )),
    }
}

async fn outbound_email(
    State(state): State<WebhookState>,
    connect: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ip = connect.map(|axum::Extension(ConnectInfo(addr))| addr.ip());
    // The config file's settings with the admins' run-time changes over them.
    let (enabled, config) = {
        let runtime = state.runtime.borrow();
        (
            runtime.overrides.webhook_enabled.unwrap_or(true),
            runtime.webhook_config(&state.config),
        )
    };
    if !enabled {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "the webhook is disabled").into_response();
    }
    if !config.allowed_ips.is_empty()
        && !ip.is_some_and(|ip| config.allowed_ips.iter().any(|net| net.contains(&ip)))
    {
        tracing::warn!(ip = ?ip, "webhook call from an address not allowed");
        return refuse(StatusCode::FORBIDDEN, "forbidden").into_response();
    }
    let key = ip.map(|ip| ip.to_string()).unwrap_or_default();
    let limited = state
        .per_ip
        .lock()
        .map(|mut limiter| {
            limiter.set_limit(config.rate_limit_per_minute);
            limiter.check(&key, now_ms()).err()
        })
        .unwrap_or(None);
    if let Some(wait_ms) = limited {
        return refuse_for(
            StatusCode::TOO_MANY_REQUESTS,
            "rate limited",
            (wait_ms + 999) / 1000,
        )
        .into_response();
    }
    if let Err(refusal) = verify_signature(&state, &config, &headers, &body).await {
        return refusal.into_response();
    }
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        return refuse(StatusCode::BAD_REQUEST, "invalid json").into_response();
    };
    if !payload.is_object() {
        return refuse(StatusCode::BAD_REQUEST, "invalid json: expected an object").into_response();
    }
    match build_and_submit(&state, &config, &payload).await {
        Ok(response) => response,
        Err(refusal) => refusal.into_response(),
    }
}

/// A call's fields, checked.
struct EmailRequest<'a> {
    /// `email_verification` or `password_reset`: the template and the message's tag.
    kind: &'a str,
    /// The path of the link built when the caller sends none.
    link_path: &'static str,
    to: Mailbox,
    subject: &'a str,
    token: &'a str,
    expires_at: &'a str,
    link: Option<&'a str>,
    local_part: Option<&'a str>,
}

/// The payload's fields, each checked; the first bad one is the refusal.
fn parse_request(payload: &Value) -> Result<EmailRequest<'_>, Refusal> {
    let kind = field(payload, "type")?;
    let link_path = match kind {
        "email_verification" => "verify-email",
        "password_reset" => "reset-password",
        _ => return Err(refuse(StatusCode::BAD_REQUEST, "invalid field: type")),
    };
    let to = field(payload, "to")?;
    let to = parse_mailbox("to", to)
        .map_err(|_| refuse(StatusCode::BAD_REQUEST, "invalid field: to"))?;
    let subject = field(payload, "subject")?;
    if !is_header_safe(subject) || subject.len() > 998 {
        return Err(refuse(StatusCode::BAD_REQUEST, "invalid field: subject"));
    }
    let token = field(payload, "token")?;
    let expires_at = field(payload, "expiresAt")?;
    if OffsetDateTime::parse(expires_at, &Rfc3339).is_err() {
        return Err(refuse(StatusCode::BAD_REQUEST, "invalid field: expiresAt"));
    }
    let link = optional(payload, "link")?.filter(|link| !link.is_empty());
    if link.is_some_and(|link| check_web_url(link).is_err()) {
        return Err(refuse(StatusCode::BAD_REQUEST, "invalid field: link"));
    }
    let local_part = optional(payload, "fromLocalPart")?;
    Ok(EmailRequest {
        kind,
        link_path,
        to,
        subject,
        token,
        expires_at,
        link,
        local_part,
    })
}

fn database_unavailable() -> Refusal {
    refuse_for(
        StatusCode::SERVICE_UNAVAILABLE,
        "database unavailable",
        UNAVAILABLE_RETRY_SECS,
    )
}

/// The operator's account for this webhook (`webhook.account`), which must be active: a
/// suspended or deleted one is refused (403: the caller cannot fix it by retrying now).
async fn webhook_account(
    state: &WebhookState,
    config: &WebhookConfig,
) -> Result<sluice_store::Account, Refusal> {
    let account = state
        .store
        .account_by_email(&config.account)
        .await
        .map_err(|_| database_unavailable())?
        .ok_or_else(|| {
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "webhook account not configured",
            )
        })?;
    match account.state() {
        sluice_core::AccountStatus::Active => Ok(account),
        sluice_core::AccountStatus::Suspended => {
            Err(refuse(StatusCode::FORBIDDEN, "webhook account suspended"))
        }
        sluice_core::AccountStatus::Deleted => {
            Err(refuse(StatusCode::FORBIDDEN, "webhook account deleted"))
        }
    }
}

/// The From address: `fromLocalPart` only where the operator allows any local part, at
/// the sender domain, which must be a verified domain of the account (like every ingress).
fn sender(
    config: &WebhookConfig,
    request: &EmailRequest<'_>,
    policy: &sluice_core::AccountPolicy,
) -> Result<Mailbox, Refusal> {
    let local = match request.local_part {
        Some(local) if config.allow_any_local_part => local,
        _ => config.default_local_part.as_str(),
    };
    let from = parse_mailbox(
        "fromLocalPart",
        &format!("{local}@{}", config.sender_domain),
    )
    .map_err(|_| refuse(StatusCode::BAD_REQUEST, "invalid field: fromLocalPart"))?;
    if !policy.allows_sender(&from.address) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "sender domain is not a verified domain of the webhook account",
        ));
    }
    Ok(from)
}

/// The link in the mail: the caller's, else one under `public_web_url`, else none.
fn link_of(config: &WebhookConfig, request: &EmailRequest<'_>) -> String {
    match request.link {
        Some(link) => link.to_string(),
        None if !config.public_web_url.is_empty() => format!(
            "{}/{}?token={}",
            config.public_web_url.trim_end_matches('/'),
            request.link_path,
            url_encode(request.token)
        ),
        None => String::new(),
    }
}

/// The account's template of the request's kind, else the built-in one, rendered.
async fn render_for(
    state: &WebhookState,
    account_id: i64,
    request: &EmailRequest<'_>,
    link: &str,
) -> Result<sluice_compose::render::Rendered, Refusal> {
    let data = json!({
        "token": request.token, "expiresAt": request.expires_at, "link": link,
        "to": request.to.address,
    });
    let template = request.kind;
    match state
        .store
        .template_by_name(Some(account_id), template)
        .await
    {
        Ok(Some(t)) => render(&t.subject, &t.text_body, &t.html_body, &data),
        Ok(None) => {
            let (s, t, h) = builtin(template).expect("built-in template");
            render(s, t, h, &data)
        }
        Err(_) => return Err(database_unavailable()),
    }
    .map_err(|e| {
        refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("template error: {}", e.message),
        )
    })
}

/// The refusal for an accept outcome that is not a queued (or delivered) message.
fn refusal_for(outcome: AcceptOutcome, now: i64) -> Refusal {
    match outcome {
        AcceptOutcome::Suppressed(_) => {
            refuse(StatusCode::BAD_REQUEST, "invalid field: to (suppressed)")
        }
        AcceptOutcome::RecipientNotAllowed(_) => refuse(
            StatusCode::BAD_REQUEST,
            "invalid field: to (not an allowed recipient)",
        ),
        AcceptOutcome::QuotaExceeded => refuse_for(
            StatusCode::TOO_MANY_REQUESTS,
            "monthly limit reached",
            secs_until_next_month(now),
        ),
        AcceptOutcome::AccountSuspended => {
            refuse(StatusCode::FORBIDDEN, "webhook account suspended")
        }
        AcceptOutcome::AccountDeleted => refuse(StatusCode::FORBIDDEN, "webhook account deleted"),
        AcceptOutcome::InsufficientStorage => refuse(
            StatusCode::INSUFFICIENT_STORAGE,
            "message not stored: insufficient storage, try again later",
        ),
        AcceptOutcome::Queued(_)
        | AcceptOutcome::Delivered(_)
        | AcceptOutcome::Transient { .. }
        | AcceptOutcome::Permanent { .. }
        | AcceptOutcome::IdempotencyKeyTaken(_)
        | AcceptOutcome::Unavailable => refuse_for(
            StatusCode::SERVICE_UNAVAILABLE,
            "message not stored, try again later",
            UNAVAILABLE_RETRY_SECS,
        ),
    }
}

/// Checks the call, composes the mail from the account's template and hands it to the
/// accept path; the answer says what was queued.
async fn build_and_submit(
    state: &WebhookState,
    config: &WebhookConfig,
    payload: &Value,
) -> Result<Response, Refusal> {
    let request = parse_request(payload)?;
    if config.sender_domain.is_empty() {
        return Err(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "sender domain not configured",
        ));
    }
    let account = webhook_account(state, config).await?;
    let policy = account.policy();
    let from = sender(config, &request, &policy)?;
    let link = link_of(config, &request);
    let rendered = render_for(state, account.id, &request, &link).await?;
    let message_id = format!("{}@{}", uuid::Uuid::new_v4().simple(), state.hostname);
    let now = now_ms();
    let to = &request.to;
    let raw = compose::build(Composed {
        from: &from,
        to: std::slice::from_ref(to),
        cc: &[],
        reply_to: None,
        subject: request.subject,
        text: Some(&rendered.text),
        html: (!rendered.html.trim().is_empty()).then_some(rendered.html.as_str()),
        attachments: Vec::new(),
        headers: &[],
        message_id: &message_id,
        date_secs: now / 1000,
    })
    .map_err(|e| refuse(StatusCode::BAD_REQUEST, e.message))?;
    if raw.len() > state.max_message_size {
        return Err(refuse(StatusCode::BAD_REQUEST, "message too large"));
    }
    let submission = Submission {
        source: Source::Webhook,
        envelope: Envelope {
            mail_from: from.address.clone(),
            rcpt_to: vec![to.address.clone()],
            smtputf8: !(from.address.is_ascii() && to.address.is_ascii()),
            eight_bit: false,
        },
        body: sluice_core::MessageBody::Inline(raw),
        tags: vec![request.kind.to_string()],
        max_attempts: None,
        sync: false,
        recipients_checked: false,
        idempotency: None,
    };
    let id = match state.submitter.submit(&policy, submission).await {
        AcceptOutcome::Queued(id) | AcceptOutcome::Delivered(id) => id,
        // The webhook sends no idempotency key; were one taken, its message is this one.
        AcceptOutcome::IdempotencyKeyTaken(sluice_core::idempotency::IdempotencyRecord {
            message_id: Some(id),
            ..
        }) => id,
        other => return Err(refusal_for(other, now)),
    };
    let queued_at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(now) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default();
    tracing::info!(message_id = id, kind = request.kind, "webhook mail queued");
    Ok((
        StatusCode::OK,
        axum::Json(json!({
            "ok": true, "to": to.address, "subject": request.subject, "queued_id": id, "queued_at": queued_at,
        })),
    )
        .into_response())
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
