//! `Idempotency-Key` on `POST /send`: the header, the request's identity (query and body
//! bytes), and the answers a remembered key gives. The decision itself is
//! `sluice_core::idempotency::replay`; the key is written with the message by the store.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sluice_core::idempotency::{self, IdempotencyRecord, Replay, SendAnswer};

use super::error::{ApiError, Json};
use super::routes::send::Sent;

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// The request's `Idempotency-Key`, if it has one: 422 `invalid_idempotency_key` when it
/// is not 1 to 255 visible ASCII characters (or given twice).
pub fn key_of(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let mut values = headers.get_all(HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(invalid_key("give one Idempotency-Key header, not several"));
    }
    idempotency::check_key(value.as_bytes())
        .map(|key| Some(key.to_string()))
        .map_err(invalid_key)
}

fn invalid_key(message: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_idempotency_key",
        message,
    )
}

/// A JSON body, checked exactly as [`Json`] checks it, with the bytes it was read from
/// (what makes a repeated request "the same").
pub struct JsonWithBytes<T> {
    pub value: T,
    pub bytes: Bytes,
}

impl<T, S> FromRequest<S> for JsonWithBytes<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(|rejection| match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the request body is too large",
                ),
                _ => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "malformed_request",
                    rejection.body_text(),
                ),
            })?;
        let again = Request::from_parts(parts, Body::from(bytes.clone()));
        let Json(value) = Json::<T>::from_request(again, state).await?;
        Ok(JsonWithBytes { value, bytes })
    }
}

/// The answer to a request whose key is remembered: the first answer again (with
/// `Idempotent-Replayed: true`), 422 `idempotency_key_reused` for another request, or 409
/// `idempotency_key_in_use` (`Retry-After: 1`) while the first is still being answered.
pub fn replayed(
    record: &IdempotencyRecord,
    request_hash: &str,
    now_ms: i64,
    in_flight_limit_ms: i64,
) -> Result<Response, ApiError> {
    match idempotency::replay(record, request_hash, now_ms, in_flight_limit_ms) {
        Replay::Answer { id, answer } => {
            let status = match answer {
                SendAnswer::Queued => StatusCode::ACCEPTED,
                SendAnswer::Delivered => StatusCode::OK,
            };
            let body = Sent {
                id,
                status: answer.as_str().into(),
            };
            let mut response = (status, axum::Json(body)).into_response();
            response
                .headers_mut()
                .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
            Ok(response)
        }
        Replay::Reused => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was used for a different request (another body or query) \
             in the last 24 hours; use a new key for a new message",
        )),
        Replay::InFlight => Err(ApiError {
            retry_after: Some(1),
            ..ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_key_in_use",
                "a request with this Idempotency-Key is still being answered; try again",
            )
        }),
    }
}
