//! The web control panel: server-rendered pages (minijinja) on their own listener.
//!
//! The panel has no logic of its own: every page reads and every form writes through the
//! management API, called in-process with a short-lived access token of the logged-in user
//! (`PanelState::api`), so the API's checks, scoping and audit entries apply unchanged.
//! What is the panel's own: the login session (a cookie naming a `panel` session row),
//! CSRF tokens, and turning JSON into HTML.
//!
//! `api_read` reads an answer as its `api::dto` type; an answer that is not one is a 502
//! page, never an empty cell.

mod chart;
mod domains;
mod inbox;
mod inline;
mod messages;
mod pages;
mod providers;
mod resources;
mod session;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tower::ServiceExt;

pub use session::PanelUser;
use sluice_api::ApiState;
use sluice_api_error::ErrorBody;

/// Everything the panel's handlers share.
#[derive(Clone)]
pub struct PanelState {
    api_state: ApiState,
    /// The API's router, called in-process.
    api_router: Router,
    templates: Arc<minijinja::Environment<'static>>,
    cookie_secure: bool,
    session_ttl_ms: i64,
    /// The session secret, reused for a second: every page and every form needs it.
    secret: Arc<sluice_store::ttl_cache::TtlCache<(), Vec<u8>>>,
}

/// An answer of the in-process API.
pub struct ApiAnswer {
    pub status: StatusCode,
    pub bytes: axum::body::Bytes,
}

impl ApiAnswer {
    pub fn ok(&self) -> bool {
        self.status.is_success()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }

    /// The answer as the API's type for it (`sluice_api::dto`).
    pub fn read<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.bytes)
    }

    /// The API error's message, for showing on a page.
    pub fn error_message(&self) -> String {
        self.read::<ErrorBody>()
            .map(|body| body.error.message)
            .unwrap_or_else(|_| format!("the request failed ({})", self.status))
    }
}

impl PanelState {
    pub fn new(api_state: ApiState, config: &sluice_config::PanelConfig) -> Self {
        let api_router = sluice_api::router(api_state.clone()).0;
        PanelState {
            api_state,
            api_router,
            templates: Arc::new(templates()),
            cookie_secure: config.cookie_secure || config.tls,
            session_ttl_ms: (config.session_ttl_secs as i64).saturating_mul(1000),
            secret: Arc::new(sluice_store::ttl_cache::TtlCache::new(
                std::time::Duration::from_secs(1),
            )),
        }
    }

    /// Calls the management API as `user`.
    pub async fn api(
        &self,
        user: &PanelUser,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> ApiAnswer {
        self.api_call(user, method, path, body, false).await
    }

    /// A GET the API's rate limit counts in the inbox polls' own bucket
    /// (`principal::InboxPoll`): for the inbox stream's polls only.
    pub async fn api_poll(&self, user: &PanelUser, path: &str) -> ApiAnswer {
        self.api_call(user, Method::GET, path, None, true).await
    }

    async fn api_call(
        &self,
        user: &PanelUser,
        method: Method,
        path: &str,
        body: Option<Value>,
        inbox_poll: bool,
    ) -> ApiAnswer {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", user.bearer));
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let body = body.map(|b| Body::from(b.to_string())).unwrap_or_default();
        let mut request = match request.body(body) {
            Ok(request) => request,
            Err(_) => {
                return ApiAnswer {
                    status: StatusCode::BAD_REQUEST,
                    bytes: Default::default(),
                };
            }
        };
        if let Some(client) = user.client {
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(client));
        }
        if inbox_poll {
            request
                .extensions_mut()
                .insert(sluice_api::principal::InboxPoll);
        }
        let response = match self.api_router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 64 << 20)
            .await
            .unwrap_or_default();
        ApiAnswer { status, bytes }
    }

    /// Renders a page; `context` gets the user, their CSRF token and the navigation.
    pub fn page(&self, name: &str, user: Option<&PanelUser>, mut context: Value) -> Response {
        if let Some(user) = user {
            context["me"] = serde_json::json!({
                "email": user.email, "role": user.role, "csrf": user.csrf,
            });
        }
        match self
            .templates
            .get_template(name)
            .and_then(|t| t.render(minijinja::value::Serde(&context)))
        {
            Ok(html) => Html(html).into_response(),
            Err(error) => {
                tracing::error!(%error, template = name, "panel template failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the page could not be shown",
                )
                    .into_response()
            }
        }
    }

    /// A template rendered alone (a fragment a script puts into a page, an event's row);
    /// `None` (logged) if it fails.
    pub(crate) fn fragment(&self, name: &str, context: &Value) -> Option<String> {
        self.templates
            .get_template(name)
            .and_then(|t| t.render(minijinja::value::Serde(context)))
            .map_err(|error| tracing::error!(%error, template = name, "panel template failed"))
            .ok()
    }

    /// A page saying what went wrong, with the API's message.
    pub fn error_page(
        &self,
        user: Option<&PanelUser>,
        status: StatusCode,
        message: &str,
    ) -> Response {
        let mut page = self.page(
            "error.html",
            user,
            serde_json::json!({ "status": status.as_u16(), "message": message }),
        );
        *page.status_mut() = status;
        page
    }
}

fn templates() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    for (name, source) in [
        ("base.html", include_str!("templates/base.html")),
        ("login.html", include_str!("templates/login.html")),
        ("error.html", include_str!("templates/error.html")),
        ("dashboard.html", include_str!("templates/dashboard.html")),
        ("messages.html", include_str!("templates/messages.html")),
        ("message.html", include_str!("templates/message.html")),
        ("providers.html", include_str!("templates/providers.html")),
        (
            "provider_fields.html",
            include_str!("templates/provider_fields.html"),
        ),
        (
            "provider_edit.html",
            include_str!("templates/provider_edit.html"),
        ),
        (
            "provider_test.html",
            include_str!("templates/provider_test.html"),
        ),
        ("templates.html", include_str!("templates/templates.html")),
        (
            "template_edit.html",
            include_str!("templates/template_edit.html"),
        ),
        ("users.html", include_str!("templates/users.html")),
        ("audit.html", include_str!("templates/audit.html")),
        (
            "resource_edit.html",
            include_str!("templates/resource_edit.html"),
        ),
        (
            "delivery_log.html",
            include_str!("templates/delivery_log.html"),
        ),
        ("settings.html", include_str!("templates/settings.html")),
        ("resource.html", include_str!("templates/resource.html")),
        ("domains.html", include_str!("templates/domains.html")),
        ("created.html", include_str!("templates/created.html")),
        ("inbox.html", include_str!("templates/inbox.html")),
        ("inbox_row.html", include_str!("templates/inbox_row.html")),
        (
            "inbox_message.html",
            include_str!("templates/inbox_message.html"),
        ),
        (
            "inbox_scope_fields.html",
            include_str!("templates/inbox_scope_fields.html"),
        ),
        (
            "inbox_checks.html",
            include_str!("templates/inbox_checks.html"),
        ),
        (
            "inbox_settings.html",
            include_str!("templates/inbox_settings.html"),
        ),
    ] {
        if let Err(error) = env.add_template(name, source) {
            panic!("panel template {name} does not parse: {error}");
        }
    }
    env.add_filter("datetime", utc_datetime);
    env
}

/// Epoch milliseconds as a UTC date-time (`2026-12-03 12:00:00 UTC`).
pub(crate) fn utc_datetime(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map(|t| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        })
        .unwrap_or_default()
}

/// The panel's routes, security headers and CSRF check.
pub fn router(state: PanelState) -> Router {
    let csrf_state = state.clone();
    pages::routes()
        .merge(messages::routes())
        .merge(inbox::routes())
        .merge(providers::routes())
        .merge(resources::routes())
        .merge(domains::routes())
        .merge(session::routes())
        .route(
            "/static/panel.js",
            axum::routing::get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    include_str!("static/panel.js"),
                )
            }),
        )
        .route(
            "/static/inbox.js",
            axum::routing::get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    include_str!("static/inbox.js"),
                )
            }),
        )
        .route(
            "/static/panel.css",
            axum::routing::get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
                    include_str!("static/panel.css"),
                )
            }),
        )
        .route(
            "/static/favicon.svg",
            axum::routing::get(|| async {
                (
                    [(header::CONTENT_TYPE, "image/svg+xml")],
                    include_str!("static/favicon.svg"),
                )
            }),
        )
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            csrf_state,
            session::require_csrf,
        ))
        .layer(axum::middleware::from_fn(
            sluice_api_error::shape::api_shape,
        ))
        .layer(axum::middleware::from_fn(security_headers))
}

/// A strict policy for every page: only our own scripts, styles and frames; never framed
/// by others. The message-HTML route sets its own, stricter policy.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; frame-src 'self'; \
                 form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Serves the panel until shutdown.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: PanelState,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    sluice_http::serve(listener, router(state), shutdown).await
}

/// Serves the panel over HTTPS (HTTP/1.1) on `listener` until shutdown: each connection's
/// handshake in its own task (bounded by 10 s), with the certificate `tls` holds at that
/// moment, so a reloaded certificate serves new connections. The client's address goes
/// into `ConnectInfo` as with the plain listener, for the audit log.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    state: PanelState,
    tls: sluice_core::Live<rustls::ServerConfig>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    use tower::ServiceExt;
    let router = sluice_http::unread_body::close_when_body_unread(router(state));
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(&mut shutdown) => return Ok(()),
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.get());
        let router = router.clone();
        tokio::spawn(async move {
            let handshake = std::time::Duration::from_secs(10);
            let Ok(Ok(stream)) = tokio::time::timeout(handshake, acceptor.accept(stream)).await
            else {
                return;
            };
            let service = hyper::service::service_fn(
                move |mut request: hyper::Request<hyper::body::Incoming>| {
                    request
                        .extensions_mut()
                        .insert(axum::extract::ConnectInfo(peer));
                    router.clone().oneshot(request.map(axum::body::Body::new))
                },
            );
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Resolves once shutdown has begun (the guard `wait_for` returns is not `Send`).
async fn stopped(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// The client's address, when the listener recorded it.
fn client_of(request: &axum::http::request::Parts) -> Option<SocketAddr> {
    request
        .extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}

/// Runs an API call and reads its answer as the API's type `T` (`sluice_api::dto`), or
/// answers with an error page: the API's error, or a 502 when the answer is not a `T`.
pub(crate) async fn api_read<T: DeserializeOwned>(
    state: &PanelState,
    user: &PanelUser,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<T, Response> {
    let answer = state.api(user, method, path, body).await;
    if !answer.ok() {
        return Err(state.error_page(Some(user), answer.status, &answer.error_message()));
    }
    answer.read().map_err(|error| {
        tracing::error!(%error, path, "the panel could not read the API's answer");
        state.error_page(
            Some(user),
            StatusCode::BAD_GATEWAY,
            "the API's answer could not be read",
        )
    })
}

/// Runs an API call and answers with its JSON, or with an error page: for the pages that
/// serve many resources from one table (`resources.rs`) and show whatever fields they have.
pub(crate) async fn api_json(
    state: &PanelState,
    user: &PanelUser,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, Response> {
    let answer = state.api(user, method, path, body).await;
    if answer.ok() {
        Ok(answer.json())
    } else {
        Err(state.error_page(Some(user), answer.status, &answer.error_message()))
    }
}

/// Runs a state-changing API call, then goes to `then`; an error page if it failed.
pub(crate) async fn act(
    state: &PanelState,
    user: &PanelUser,
    method: Method,
    path: &str,
    body: Option<Value>,
    then: &str,
) -> Response {
    let answer = state.api(user, method, path, body).await;
    if answer.ok() {
        Redirect::to(then).into_response()
    } else {
        state.error_page(Some(user), answer.status, &answer.error_message())
    }
}

/// [`act`] with the API body a form became, or the form's error as a 422 page.
pub(crate) async fn act_on_form(
    state: &PanelState,
    user: &PanelUser,
    method: Method,
    path: &str,
    body: Result<Value, String>,
    then: &str,
) -> Response {
    match body {
        Ok(body) => act(state, user, method, path, Some(body), then).await,
        Err(message) => state.error_page(Some(user), StatusCode::UNPROCESSABLE_ENTITY, &message),
    }
}

/// `?account_id=N` for an API path when `account_id` is a number; else nothing.
pub(crate) fn account_query(account_id: Option<&str>) -> String {
    match account_id
        .map(str::trim)
        .filter(|a| a.parse::<i64>().is_ok())
    {
        Some(a) => format!("?account_id={a}"),
        None => String::new(),
    }
}

/// A submitted form as the handlers get it, for tests.
#[cfg(test)]
pub(crate) fn form_pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
