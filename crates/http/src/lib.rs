//! The HTTP shell: liveness, readiness and Prometheus metrics, the management API
//! (`sluice-api`) mounted under `/api/v1`, serving a router on a listener, and the
//! outbound-email webhook receiver on its own listener. The web panel is `sluice-panel`.

pub mod unread_body;
pub mod webhook;

/// The API crate under its old path, for the binary's wiring.
pub use sluice_api as api;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use sluice_store::Store;

#[derive(Clone)]
pub struct HttpState {
    pub store: Arc<dyn Store>,
    /// `None` when no recorder is installed (tests).
    pub metrics: Option<PrometheusHandle>,
    pub started: std::time::Instant,
    /// `storage.min_free_bytes` on the database's file system (SQLite), for `/readyz` and
    /// `sluice_storage_free_bytes`.
    pub reserve: Option<sluice_store::DiskReserve>,
}

/// Health, readiness and metrics, plus the API under `/api/v1` when given.
pub fn router(state: HttpState, api: Option<api::ApiState>) -> Router {
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .with_state(state);
    let router = match api {
        Some(api) => router.nest("/api/v1", api::router(api).0),
        None => router,
    };
    router.layer(axum::middleware::from_fn(
        sluice_api_error::shape::api_shape,
    ))
}

async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

/// The shape some tools expect: status, uptime in seconds, messages processed (delivered,
/// failed or captured).
async fn health(State(state): State<HttpState>) -> Response {
    match state.store.count_by_status().await {
        Ok(counts) => {
            let processed: i64 = counts
                .iter()
                .filter(|(status, _)| matches!(status.as_str(), "delivered" | "failed" | "captured"))
                .map(|(_, n)| n)
                .sum();
            Json(serde_json::json!({
                "status": "healthy",
                "uptime": state.started.elapsed().as_secs(),
                "messagesProcessed": processed,
            }))
            .into_response()
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "5")],
            Json(serde_json::json!({ "status": "unhealthy", "uptime": state.started.elapsed().as_secs() })),
        )
            .into_response(),
    }
}

/// 200 when the database answers and the disk holds its reserve; 503 with `Retry-After`
/// when not (new mail is refused then), so a load balancer steers clients elsewhere.
async fn readyz(State(state): State<HttpState>) -> Response {
    match state.store.ping().await {
        Ok(()) => match state.reserve.as_ref().map(|r| (r.check(), r.min_free_bytes())) {
            Some((Err(error), min_free_bytes)) => {
                tracing::warn!(%error, "not ready: storage below its reserve");
                let free_bytes = state.reserve.as_ref().and_then(|r| r.free_bytes().ok());
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, "30")],
                    Json(serde_json::json!({
                        "error": {
                            "code": "insufficient_storage",
                            "message": "the disk is below storage.min_free_bytes; new mail is refused",
                            "free_bytes": free_bytes,
                            "min_free_bytes": min_free_bytes,
                        }
                    })),
                )
                    .into_response()
            }
            Some((Ok(free_bytes), min_free_bytes)) if min_free_bytes > 0 => Json(
                serde_json::json!({ "status": "ready", "free_bytes": free_bytes, "min_free_bytes": min_free_bytes }),
            )
            .into_response(),
            _ => Json(serde_json::json!({ "status": "ready" })).into_response(),
        },
        Err(error) => {
            tracing::warn!(%error, "not ready: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "5")],
                Json(serde_json::json!({
                    "error": { "code": "database_unavailable", "message": "the database is unreachable" }
                })),
            )
                .into_response()
        }
    }
}

async fn metrics_text(State(state): State<HttpState>) -> Response {
    let Some(handle) = &state.metrics else {
        return (StatusCode::NOT_FOUND, "metrics are not enabled\n").into_response();
    };
    // Read at scrape time, from the database every node shares.
    if let Ok(counts) = state.store.count_by_status().await {
        for status in sluice_core::MessageStatus::ALL {
            let count = counts
                .iter()
                .find(|(name, _)| name == status.as_str())
                .map_or(0, |(_, n)| *n);
            metrics::gauge!("sluice_queue_messages", "status" => status.as_str()).set(count as f64);
        }
    }
    if let Ok(oldest) = state.store.oldest_waiting_created_at().await {
        let age = oldest.map_or(0, |created| (api::now_ms() - created).max(0));
        metrics::gauge!("sluice_queue_oldest_age_seconds").set(age as f64 / 1000.0);
    }
    if let Some(reserve) = &state.reserve {
        let _ = reserve.free_bytes();
    }
    for (pool, in_use, open) in state.store.pool_usage() {
        metrics::gauge!("sluice_db_connections_in_use", "pool" => pool).set(in_use as f64);
        metrics::gauge!("sluice_db_connections_open", "pool" => pool).set(open as f64);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}

/// Serves `router` on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let router = unread_body::close_when_body_unread(router);
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    #[tokio::test]
    async fn health_and_readiness() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("h.db").display());
        let store = sluice_store::open(&url, &Default::default()).await.unwrap();
        let app = router(
            HttpState {
                store,
                metrics: None,
                started: std::time::Instant::now(),
                reserve: Some(sluice_store::DiskReserve::new(dir.path(), 1)),
            },
            None,
        );
        for path in ["/healthz", "/readyz", "/health"] {
            let response = app
                .clone()
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
        }
        let response = app
            .oneshot(Request::get("/nope").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn not_ready_below_the_storage_reserve() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("h.db").display());
        let store = sluice_store::open(&url, &Default::default()).await.unwrap();
        let app = router(
            HttpState {
                store,
                metrics: None,
                started: std::time::Instant::now(),
                reserve: Some(sluice_store::DiskReserve::new(dir.path(), u64::MAX)),
            },
            None,
        );
        let response = app
            .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "30");
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "insufficient_storage");
    }
}
