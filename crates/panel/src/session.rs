//! Panel logins: a random token in an HttpOnly, SameSite=Strict cookie names a `panel`
//! session row (stored hashed, so sessions survive restarts and any node can check them);
//! logout, password change, disabling the user and rotating the session secret end them.
//! Every state-changing request carries a CSRF token: HMAC-SHA256 under the session
//! secret of the cookie's token (before login, of a random pre-login cookie).
//!
//! The session secret (in `settings`) is read at most once a second per node.

use axum::Form;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::Deserialize;
use sha2::Sha256;
use sluice_core::secret::hash_token;

use super::{PanelState, client_of};
use sluice_api::now_ms;

pub const SESSION_COOKIE: &str = "sluice_session";
const PRELOGIN_COOKIE: &str = "sluice_prelogin";
const SECRET_KEY: &str = "panel.session_secret";

pub fn routes() -> axum::Router<PanelState> {
    axum::Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", axum::routing::post(logout))
}

/// The logged-in user of a panel request.
#[derive(Clone)]
pub struct PanelUser {
    pub id: i64,
    pub email: String,
    pub role: sluice_core::Role,
    /// The user's account; `None` for an admin.
    pub account_id: Option<i64>,
    /// An access token for the in-process API calls.
    pub bearer: String,
    /// The CSRF token forms of this session carry.
    pub csrf: String,
    pub client: Option<std::net::SocketAddr>,
    session_id: i64,
}

fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The session secret, made on first use; read from the database at most once a second
/// (a rotation on another node applies here within that; its sessions end at once anyway).
async fn secret(state: &PanelState) -> Result<Vec<u8>, sluice_store::StoreError> {
    if let Some(secret) = state.secret.get(&()) {
        return Ok(secret);
    }
    let store = &state.api_state.store;
    let stored = match store.setting(SECRET_KEY).await? {
        Some(hex_secret) if hex::decode(&hex_secret).is_ok() => hex_secret,
        _ => {
            store
                .put_setting(SECRET_KEY, &random_token(), now_ms())
                .await?;
            store.setting(SECRET_KEY).await?.unwrap_or_default()
        }
    };
    let secret = hex::decode(stored).unwrap_or_default();
    state.secret.put((), secret.clone());
    Ok(secret)
}

/// Replaces the session secret and ends every panel session (the caller's too).
pub async fn rotate_secret(state: &PanelState) -> Result<u64, sluice_store::StoreError> {
    let store = &state.api_state.store;
    let fresh = random_token();
    store.put_setting(SECRET_KEY, &fresh, now_ms()).await?;
    state
        .secret
        .put((), hex::decode(&fresh).unwrap_or_default());
    store
        .revoke_sessions_of_kind(sluice_core::SessionKind::Panel, now_ms())
        .await
}

fn csrf_for(secret: &[u8], token: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(token.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn to_login() -> Response {
    Redirect::to("/login").into_response()
}

impl FromRequestParts<PanelState> for PanelUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &PanelState) -> Result<Self, Response> {
        let Some(token) = cookie(parts, SESSION_COOKIE) else {
            return Err(to_login());
        };
        let store = &state.api_state.store;
        let unavailable = |_| {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the database is unavailable",
            )
                .into_response()
        };
        let session = store
            .session_by_hash(&hash_token(token))
            .await
            .map_err(unavailable)?
            .filter(|s| {
                s.kind == sluice_core::SessionKind::Panel
                    && s.revoked_at.is_none()
                    && s.expires_at > now_ms()
            })
            .ok_or_else(to_login)?;
        let user = store
            .user(session.user_id)
            .await
            .map_err(unavailable)?
            .filter(|u| u.status == sluice_core::UserStatus::Active)
            .ok_or_else(to_login)?;
        // Suspending or deleting the account revokes its panel sessions; this also shuts
        // out one that began within the cache window before that.
        if let Some(account_id) = user.account_id {
            let status = state
                .api_state
                .account_status(account_id)
                .await
                .map_err(IntoResponse::into_response)?;
            if !status.is_active() {
                return Err(to_login());
            }
        }
        let secret = secret(state).await.map_err(unavailable)?;
        Ok(PanelUser {
            id: user.id,
            email: user.email,
            role: user.role,
            account_id: user.account_id,
            bearer: state
                .api_state
                .tokens
                .issue(user.id, (now_ms() / 1000) as u64),
            csrf: csrf_for(&secret, token),
            client: client_of(parts),
            session_id: session.id,
        })
    }
}

/// Refuses a state-changing request whose CSRF token (form field `csrf` or header
/// `X-CSRF-Token`) is not the one of its cookie.
pub async fn require_csrf(
    State(state): State<PanelState>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let refused = || {
        (
            StatusCode::FORBIDDEN,
            "refused: the form's CSRF token is missing or wrong; reload the page and try again",
        )
            .into_response()
    };
    // The login form is bound to the pre-login cookie (a stale session cookie may remain);
    // everything else to the session.
    let token = match parts.uri.path() {
        "/login" => cookie(&parts, PRELOGIN_COOKIE),
        _ => cookie(&parts, SESSION_COOKIE),
    };
    let Some(token) = token else {
        return refused();
    };
    let Ok(secret) = secret(&state).await else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the database is unavailable",
        )
            .into_response();
    };
    let expected = csrf_for(&secret, token);
    let Ok(bytes) = axum::body::to_bytes(body, 4 << 20).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "the form is too large").into_response();
    };
    let from_header = parts
        .headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let from_form = || {
        std::str::from_utf8(&bytes)
            .ok()?
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == "csrf")
            .map(|(_, value)| value.to_string())
    };
    let given = from_header.or_else(from_form).unwrap_or_default();
    let matches: bool = given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !matches {
        tracing::warn!(path = %parts.uri.path(), "panel request refused: bad CSRF token");
        return refused();
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

fn set_cookie(state: &PanelState, name: &str, value: &str, max_age_secs: i64) -> String {
    let secure = if state.cookie_secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}")
}

async fn login_page(State(state): State<PanelState>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let (token, new_cookie) = match cookie(&parts, PRELOGIN_COOKIE) {
        Some(token) => (token.to_string(), None),
        None => {
            let token = random_token();
            let cookie = set_cookie(&state, PRELOGIN_COOKIE, &token, 3600);
            (token, Some(cookie))
        }
    };
    let Ok(secret) = secret(&state).await else {
        return state.error_page(
            None,
            StatusCode::SERVICE_UNAVAILABLE,
            "the database is unavailable",
        );
    };
    let mut page = state.page(
        "login.html",
        None,
        serde_json::json!({ "csrf": csrf_for(&secret, &token) }),
    );
    if let Some(cookie) = new_cookie
        && let Ok(value) = cookie.parse()
    {
        page.headers_mut().append(header::SET_COOKIE, value);
    }
    page
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
}

async fn login(
    State(state): State<PanelState>,
    headers: axum::http::HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let user = match sluice_api::verify_login(&state.api_state, &form.email, &form.password).await {
        Ok(user) => user,
        Err(error) => {
            let message = match error.code {
                "account_suspended" | "account_deleted" => error.message,
                _ => "Wrong email or password, or the user is locked or disabled.".into(),
            };
            // The form again, with the same pre-login token (the CSRF check passed on it).
            let mut parts = axum::http::Request::new(()).into_parts().0;
            parts.headers = headers;
            let csrf = match (cookie(&parts, PRELOGIN_COOKIE), secret(&state).await) {
                (Some(token), Ok(secret)) => csrf_for(&secret, token),
                _ => String::new(),
            };
            let mut page = state.page(
                "login.html",
                None,
                serde_json::json!({
                    "csrf": csrf,
                    "error": message,
                }),
            );
            *page.status_mut() = error.status;
            return page;
        }
    };
    let token = random_token();
    let now = now_ms();
    if let Err(error) = state
        .api_state
        .store
        .create_session(
            user.id,
            sluice_core::SessionKind::Panel,
            &hash_token(&token),
            now + state.session_ttl_ms,
            now,
        )
        .await
    {
        tracing::error!(%error, "panel session not stored");
        return state.error_page(
            None,
            StatusCode::SERVICE_UNAVAILABLE,
            "the database is unavailable",
        );
    }
    tracing::info!(user = user.id, "panel login");
    let mut response = Redirect::to("/").into_response();
    let headers = response.headers_mut();
    let session = set_cookie(&state, SESSION_COOKIE, &token, state.session_ttl_ms / 1000);
    let prelogin = set_cookie(&state, PRELOGIN_COOKIE, "", 0);
    for value in [session, prelogin] {
        if let Ok(value) = value.parse() {
            headers.append(header::SET_COOKIE, value);
        }
    }
    response
}

async fn logout(State(state): State<PanelState>, user: PanelUser) -> Response {
    if let Err(error) = state
        .api_state
        .store
        .revoke_session(user.session_id, now_ms())
        .await
    {
        tracing::error!(%error, "panel logout not stored");
        return state.error_page(
            Some(&user),
            StatusCode::SERVICE_UNAVAILABLE,
            "the database is unavailable; you are still logged in",
        );
    }
    to_login_clearing_session(&state)
}

/// Back to the login page, with the session cookie removed from the browser.
pub fn to_login_clearing_session(state: &PanelState) -> Response {
    let mut response = Redirect::to("/login").into_response();
    if let Ok(value) = set_cookie(state, SESSION_COOKIE, "", 0).parse() {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_depends_on_secret_and_token() {
        let a = csrf_for(b"one", "token");
        assert_eq!(a, csrf_for(b"one", "token"));
        assert_ne!(a, csrf_for(b"two", "token"));
        assert_ne!(a, csrf_for(b"one", "other"));
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn cookies_are_found_among_others() {
        let request = axum::http::Request::builder()
            .header(header::COOKIE, "a=1; sluice_session=abc; b=2")
            .body(())
            .unwrap();
        let (parts, _) = request.into_parts();
        assert_eq!(cookie(&parts, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&parts, PRELOGIN_COOKIE), None);
    }
}
