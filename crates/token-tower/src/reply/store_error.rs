//! Store errors as HTTP answers, for the app's own routes that call the store.

use std::error::Error as _;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use token_core::StoreError;

/// A [`StoreError`] as an HTTP answer, for the routes of the app that call the store
/// themselves (a sessions page, "log out everywhere", a health check), answered the way the
/// layer answers its own store failures:
///
/// - **503** `temporarily_unavailable` with `Retry-After` (1 s unless
///   [`retry_after`](Self::retry_after) says otherwise) when the store could not be reached
///   or did not answer in time ([`StoreError::is_unavailable`]): the client retries later;
/// - **500** `server_error` for any other error (the store refused the call).
///
/// The body is the JSON of the layer's rejections,
/// `{"error": "...", "error_description": "..."}`, with `Cache-Control: no-store`. It never
/// carries the error itself (Redis addresses, replies, key names): the error and its causes
/// are logged with `tracing` when the response is built, at `warn` for 503 and `error` for
/// 500.
///
/// `token-core` does not depend on axum, so [`StoreError`] cannot implement axum's
/// `IntoResponse` itself; this wrapper does (feature `axum`), and `From<StoreError>` lets
/// a handler that returns `Result<_, StoreErrorResponse>` use `?` on store calls:
///
/// ```
/// # #[cfg(feature = "axum")] {
/// use axum::extract::{Path, State};
/// use axum::routing::{delete, get};
/// use axum::{Json, Router};
/// use token_core::{MemoryStore, RotationStore, SessionInfo};
/// use token_tower::StoreErrorResponse;
///
/// // (A real app takes the user from its own authentication, not from the path.)
/// async fn sessions(
///     State(store): State<MemoryStore>,
///     Path(user): Path<String>,
/// ) -> Result<Json<Vec<SessionInfo>>, StoreErrorResponse> {
///     Ok(Json(store.list(&user).await?))
/// }
///
/// async fn log_out_everywhere(
///     State(store): State<MemoryStore>,
///     Path(user): Path<String>,
/// ) -> Result<Json<u64>, StoreErrorResponse> {
///     Ok(Json(store.revoke_all(&user).await?))
/// }
///
/// let app: Router<MemoryStore> = Router::new()
///     .route("/users/{user}/sessions", get(sessions))
///     .route("/users/{user}/sessions", delete(log_out_everywhere));
/// # let _ = app;
/// # }
/// ```
///
/// Without axum, [`response`](Self::response) builds the same answer as an
/// `http::Response<Bytes>` (a hyper or plain Tower app).
#[derive(Debug)]
pub struct StoreErrorResponse {
    error: StoreError,
    retry_after: Duration,
}

impl StoreErrorResponse {
    /// The answer to `error`, with a `Retry-After` of 1 s on 503 (the layer's default).
    pub fn new(error: StoreError) -> Self {
        StoreErrorResponse {
            error,
            retry_after: Duration::from_secs(1),
        }
    }

    /// The delay sent in `Retry-After` on 503, in whole seconds (at least 1); match the
    /// layer's [`retry_after`](crate::RotationLayerBuilder::retry_after) if you changed it.
    pub fn retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = delay;
        self
    }

    /// The error this answers.
    pub fn error(&self) -> &StoreError {
        &self.error
    }

    /// The error this answers, taken back.
    pub fn into_error(self) -> StoreError {
        self.error
    }

    /// 503 when the store is unavailable, 500 otherwise.
    pub fn status(&self) -> StatusCode {
        if self.error.is_unavailable() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }

    /// The answer as an `http` response (logs the error, as described above).
    pub fn response(&self) -> Response<Bytes> {
        let status = self.status();
        let (code, description) = if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(error = %Causes(&self.error), "token store unavailable; answering 503");
            (
                "temporarily_unavailable",
                "token store unavailable, retry later",
            )
        } else {
            tracing::error!(error = %Causes(&self.error), "token store call failed; answering 500");
            ("server_error", "the server could not complete the request")
        };
        let body = serde_json::json!({ "error": code, "error_description": description });
        let mut response = Response::new(Bytes::from(body.to_string()));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(self.retry_after.as_secs().max(1)),
            );
        }
        response
    }
}

impl From<StoreError> for StoreErrorResponse {
    fn from(error: StoreError) -> Self {
        StoreErrorResponse::new(error)
    }
}

impl fmt::Display for StoreErrorResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for StoreErrorResponse {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

#[cfg(feature = "axum")]
impl axum::response::IntoResponse for StoreErrorResponse {
    fn into_response(self) -> axum::response::Response {
        self.response().map(axum::body::Body::from)
    }
}

/// An error followed by its causes (`redis error: connection refused`): `StoreError`'s own
/// message names only the kind of failure, and an operator needs the cause.
struct Causes<'a>(&'a StoreError);

impl fmt::Display for Causes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(response: &Response<Bytes>) -> serde_json::Value {
        serde_json::from_slice(response.body()).expect("a JSON body")
    }

    #[test]
    fn an_unavailable_store_is_503_with_retry_after() {
        let answer = StoreErrorResponse::from(StoreError::Timeout(Duration::from_millis(500)))
            .retry_after(Duration::from_secs(3));
        let response = answer.response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(body(&response)["error"], "temporarily_unavailable");
    }

    #[test]
    fn other_errors_are_500_without_retry_after_or_details() {
        let detail = "record of family abc123 at rt:{udXNlcg}:s";
        let response = StoreErrorResponse::new(StoreError::Corrupt(detail.into())).response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(response.headers().get(header::RETRY_AFTER).is_none());
        assert_eq!(body(&response)["error"], "server_error");
        let text = std::str::from_utf8(response.body()).unwrap();
        assert!(!text.contains("abc123") && !text.contains("rt:"), "{text}");
    }

    #[test]
    fn another_backend_failing_is_503_and_its_message_stays_inside() {
        let cause = std::io::Error::other("postgres at db.internal:5432 refused the login");
        let response = StoreErrorResponse::new(StoreError::backend(cause)).response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body(&response)["error"], "temporarily_unavailable");
        let text = std::str::from_utf8(response.body()).unwrap();
        assert!(
            !text.contains("postgres") && !text.contains("db.internal"),
            "{text}"
        );
    }

    #[test]
    fn retry_after_is_at_least_one_second() {
        let response = StoreErrorResponse::new(StoreError::PoolTimedOut(Duration::ZERO))
            .retry_after(Duration::from_millis(200))
            .response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
