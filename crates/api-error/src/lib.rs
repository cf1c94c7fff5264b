//! The one error type at the HTTP edge: `{"error":{"code","message","request_id"}}`,
//! shared by the API, its feedback webhooks, the panel and the outbound-email webhook:
//! [`ApiError`], the extractors that answer with it ([`Json`], [`Query`], [`Path`]), the
//! request id its bodies carry ([`REQUEST_ID`], set with the access log and request metrics
//! by [`request_id`]), the body's type for the OpenAPI document
//! ([`ErrorBody`]), and the middleware that puts axum's own answers in the same shape
//! ([`shape`]).

pub mod shape;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sluice_store::StoreError;
use utoipa::ToSchema;

tokio::task_local! {
    /// The id of the request being served, for error bodies and logs.
    pub static REQUEST_ID: String;
}

pub fn current_request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

/// Error body, for the OpenAPI document.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    pub request_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds, for 429 and 503.
    pub retry_after: Option<i64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn rate_limited(retry_after_secs: i64) -> Self {
        ApiError {
            retry_after: Some(retry_after_secs.max(1)),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests, slow down",
            )
        }
    }

    /// 507: the message was not stored (disk below its reserve, full, or failing).
    pub fn insufficient_storage() -> Self {
        ApiError {
            retry_after: Some(30),
            ..ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "insufficient_storage",
                "the message was not stored: insufficient storage, try again later",
            )
        }
    }

    pub fn unauthorized() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or invalid credentials",
        )
    }

    pub fn forbidden() -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "your role may not do this",
        )
    }

    /// Valid credentials of a suspended account: 403, since the caller is known but may
    /// not act until an admin reactivates the account.
    pub fn account_suspended() -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "account_suspended",
            "this account is suspended; ask an administrator to reactivate it",
        )
    }

    /// Credentials of a deleted account: 401, since they no longer identify anyone who
    /// can act (a deletion is not undone).
    pub fn account_deleted() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "account_deleted",
            "this account is deleted",
        )
    }

    /// The refusal for an account that is not active.
    pub fn account_inactive(status: sluice_core::AccountStatus) -> Self {
        match status {
            sluice_core::AccountStatus::Suspended => ApiError::account_suspended(),
            _ => ApiError::account_deleted(),
        }
    }

    pub fn not_found() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }

    pub fn validation(message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            message,
        )
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => ApiError::not_found(),
            StoreError::Conflict(_) => ApiError::conflict("a resource with these values exists"),
            StoreError::Storage(error) => {
                tracing::error!(%error, "storage failed");
                ApiError::insufficient_storage()
            }
            StoreError::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "the database is unreachable, try again later",
            ),
            other => {
                tracing::error!(error = %other, "store error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "request_id": current_request_id(),
            }
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        let retry_after = match (self.retry_after, self.status) {
            (Some(secs), _) => Some(secs),
            (None, StatusCode::SERVICE_UNAVAILABLE) => Some(5),
            _ => None,
        };
        if let Some(secs) = retry_after
            && let Ok(value) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// Seconds from `now_ms` to the start of the next calendar month (UTC), when a monthly
/// limit opens again: the `Retry-After` of its 429s. At least 1.
pub fn secs_until_next_month(now_ms: i64) -> i64 {
    let Ok(now) = time::OffsetDateTime::from_unix_timestamp(now_ms.div_euclid(1000)) else {
        return 86_400;
    };
    let (year, month) = match now.month() {
        time::Month::December => (now.year() + 1, time::Month::January),
        month => (now.year(), month.next()),
    };
    time::Date::from_calendar_date(year, month, 1)
        .map(|first| (first.midnight().assume_utc() - now).whole_seconds().max(1))
        .unwrap_or(86_400)
}

/// Malformed JSON and wrong shapes become 400/422 in our format, not axum's text.
pub struct Json<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for Json<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// `Option<Json<T>>`: a request without a Content-Type has no body (None); one with a
/// body is checked exactly as `Json<T>` checks it.
impl<T, S> axum::extract::OptionalFromRequest<S> for Json<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(
        req: axum::extract::Request,
        state: &S,
    ) -> Result<Option<Self>, ApiError> {
        match <axum::Json<T> as axum::extract::OptionalFromRequest<S>>::from_request(req, state)
            .await
        {
            Ok(value) => Ok(value.map(|axum::Json(value)| Json(value))),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// A wrong shape is 422, a body that is not JSON 400, a missing JSON content type 415, a
/// body past the limit 413.
fn json_rejection(rejection: axum::extract::rejection::JsonRejection) -> ApiError {
    use axum::extract::rejection::JsonRejection;
    match rejection {
        JsonRejection::JsonDataError(e) => ApiError::validation(e.body_text()),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send Content-Type: application/json",
        ),
        e if e.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is too large",
        ),
        e => ApiError::new(StatusCode::BAD_REQUEST, "malformed_request", e.body_text()),
    }
}

/// Query strings that do not parse become 400 in our format.
pub struct Query<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Query<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Query(value))
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed_request", e.body_text()))
    }
}

/// Path parameters that do not parse (`/accounts/abc`) are "not found", in our format.
pub struct Path<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Path<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Path(value))
            .map_err(|_| ApiError::not_found())
    }
}

/// Gives every request an id (`X-Request-Id`), used in error bodies and logs.
/// Counts every request by route (the matched pattern, never the path itself, so ids do
/// not multiply the series), method and status.
pub async fn request_id(request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |path| path.as_str().to_string());
    let method = request.method().as_str().to_string();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let span = tracing::info_span!("http", request_id = %id, method = %request.method(), path = %request.uri().path());
    let mut response = REQUEST_ID
        .scope(
            id.clone(),
            tracing::Instrument::instrument(next.run(request), span.clone()),
        )
        .await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    let status = response.status().as_u16();
    // The access log: inside the request's span, so the line carries its request id.
    span.in_scope(|| {
        tracing::info!(
            route = %route,
            status,
            ms = started.elapsed().as_millis() as u64,
            "request"
        )
    });
    metrics::counter!(
        "sluice_http_requests_total",
        "route" => route.clone(),
        "method" => method,
        "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!("sluice_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::secs_until_next_month;

    #[test]
    fn a_monthly_limit_opens_at_the_next_month() {
        // 2026-12-31T23:59:00Z: a minute to 2027-01-01.
        assert_eq!(secs_until_next_month(1_798_761_540_000), 60);
        // 2026-02-01T00:00:00Z: all of February (28 days).
        assert_eq!(secs_until_next_month(1_769_904_000_000), 28 * 86_400);
    }
}
