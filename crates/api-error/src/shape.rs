//! Every error answer in the documented JSON shape, including the ones axum writes itself:
//! 404 for an unknown route, 405 for a known route with another method (today an empty
//! body), 413 when a body passes its limit, 415 / 422 from the form and JSON extractors,
//! and our own plain-text refusals. A middleware on each listener (the API and health
//! router, the panel, the outbound-email webhook) rewrites an error answer whose body is
//! not already JSON or HTML; headers such as `Allow` and `Retry-After` are kept.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

/// Plain-text bodies longer than this are not taken as the message.
const MAX_MESSAGE: usize = 300;

/// `{"error":{"code","message","request_id"}}` for the API, the health routes and the panel.
pub async fn api_shape(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    reshape(response, false).await
}

/// The outbound-email webhook's contract answers `{"ok": false, "error": "..."}` for the
/// failures it describes (400, 401, 403, 429, 503). The framework's answers outside that
/// contract (404, 405, 413, 415) carry `"ok": false` too, with `error` in the documented
/// object shape, so a client of either shape sees a failure with a code.
pub async fn webhook_shape(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    reshape(response, true).await
}

async fn reshape(response: Response, with_ok: bool) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json_or_html(&response) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_MESSAGE + 1)
        .await
        .ok()
        .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty() && text.len() <= MAX_MESSAGE);
    let (code, fixed) = code_for(status);
    // Ours and axum's short texts say what was wrong; for routing and size the fixed text
    // says it better (and never echoes anything of the request).
    let message = fixed.or(text).unwrap_or_else(|| {
        status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
    });
    let mut request_id = crate::current_request_id();
    if request_id.is_empty() {
        request_id = uuid::Uuid::new_v4().simple().to_string();
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            parts.headers.insert("x-request-id", value);
        }
    }
    let error = serde_json::json!({ "code": code, "message": message, "request_id": request_id });
    let body = if with_ok {
        serde_json::json!({ "ok": false, "error": error })
    } else {
        serde_json::json!({ "error": error })
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body.to_string()))
}

fn is_json_or_html(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let v = v.to_ascii_lowercase();
            v.starts_with("application/json") || v.starts_with("text/html")
        })
}

/// The error code for a status, and a fixed message where the framework's text is not
/// the best one.
fn code_for(status: StatusCode) -> (&'static str, Option<String>) {
    let fixed = |text: &str| Some(text.to_string());
    match status {
        StatusCode::BAD_REQUEST => ("malformed_request", None),
        StatusCode::UNAUTHORIZED => ("unauthorized", None),
        StatusCode::FORBIDDEN => ("forbidden", None),
        StatusCode::NOT_FOUND => ("not_found", fixed("no such resource")),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            fixed("this method is not allowed here; the Allow header lists those that are"),
        ),
        StatusCode::REQUEST_TIMEOUT => ("request_timeout", None),
        StatusCode::PAYLOAD_TOO_LARGE => {
            ("payload_too_large", fixed("the request body is too large"))
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", None),
        StatusCode::UNPROCESSABLE_ENTITY => ("validation_failed", None),
        StatusCode::TOO_MANY_REQUESTS => ("rate_limited", None),
        StatusCode::SERVICE_UNAVAILABLE => ("unavailable", None),
        s if s.is_client_error() => ("bad_request", None),
        _ => ("internal", fixed("internal error")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::post;
    use tower::ServiceExt;

    async fn call(app: Router, request: axum::http::Request<Body>) -> (StatusCode, Response) {
        let response = app.oneshot(request).await.unwrap();
        (response.status(), response)
    }

    async fn json(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn axum_answers_and_plain_text_become_json_and_json_is_left_alone() {
        let app = Router::new()
            .route("/thing", post(|| async { "ok" }))
            .route(
                "/refuse",
                post(|| async { (StatusCode::FORBIDDEN, "refused: the token is wrong") }),
            )
            .route(
                "/json",
                post(|| async {
                    (
                        StatusCode::CONFLICT,
                        axum::Json(serde_json::json!({"error": {"code": "conflict"}})),
                    )
                }),
            )
            .layer(axum::middleware::from_fn(api_shape));
        let request = |method: &str, path: &str| {
            axum::http::Request::builder()
                .method(method)
                .uri(path)
                .body(Body::empty())
                .unwrap()
        };
        let (status, response) = call(app.clone(), request("GET", "/thing")).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[header::ALLOW], "POST");
        let body = json(response).await;
        assert_eq!(body["error"]["code"], "method_not_allowed");
        assert!(!body["error"]["request_id"].as_str().unwrap().is_empty());
        let (status, response) = call(app.clone(), request("GET", "/nowhere")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(json(response).await["error"]["code"], "not_found");
        let (_, response) = call(app.clone(), request("POST", "/refuse")).await;
        let body = json(response).await;
        assert_eq!(body["error"]["code"], "forbidden");
        assert_eq!(body["error"]["message"], "refused: the token is wrong");
        let (status, response) = call(app, request("POST", "/json")).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(
            json(response).await,
            serde_json::json!({"error": {"code": "conflict"}})
        );
    }
}
