//! A response sent before its request's body was read (a 401 from the credentials check,
//! a 413, a 404) leaves unread bytes on the connection, so hyper cannot reuse it and closes
//! it — without telling the client, whose next keep-alive request then meets a closed
//! socket ("remote end closed connection without response"). This layer watches whether the
//! body was read to its end and, when it was not, says `Connection: close` on the response,
//! so the client opens a new connection instead of reusing a doomed one.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// Adds the layer to every route of `router`.
pub fn close_when_body_unread(router: Router) -> Router {
    router.layer(axum::middleware::from_fn(mark_unread_body))
}

async fn mark_unread_body(request: Request, next: Next) -> Response {
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let finished = Arc::new(AtomicBool::new(false));
    let watched = finished.clone();
    let request = request.map(|body| {
        Body::new(Watched {
            inner: body,
            finished: watched,
        })
    });
    let mut response = next.run(request).await;
    if !finished.load(Ordering::Acquire) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// A request body that records when it has been read to its end.
struct Watched {
    inner: Body,
    finished: Arc<AtomicBool>,
}

impl HttpBody for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.finished.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::post;
    use tower::ServiceExt;

    use super::*;

    fn app() -> Router {
        close_when_body_unread(
            Router::new()
                .route("/refuse", post(|| async { StatusCode::UNAUTHORIZED }))
                .route(
                    "/read",
                    post(|body: String| async move { format!("{} bytes", body.len()) }),
                ),
        )
    }

    async fn connection_header(path: &str, body: &'static str) -> Option<String> {
        let response = app()
            .oneshot(
                Request::post(path)
                    .header("content-length", body.len())
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await
            .unwrap();
        response
            .headers()
            .get(header::CONNECTION)
            .map(|v| v.to_str().unwrap().to_string())
    }

    #[tokio::test]
    async fn an_answer_before_the_body_was_read_closes_the_connection() {
        assert_eq!(
            connection_header("/refuse", "{\"to\":\"x\"}")
                .await
                .as_deref(),
            Some("close")
        );
        // Read to its end, or no body at all: the connection stays open.
        assert_eq!(connection_header("/read", "{\"to\":\"x\"}").await, None);
        assert_eq!(connection_header("/refuse", "").await, None);
    }
}
