//! `StoreErrorResponse` in an axum app's own handlers (feature `axum`): `?` on a store call
//! answers 503 with `Retry-After` when Redis is unreachable and 500 when the store refuses,
//! in the layer's JSON shape and without the error's details.
#![cfg(feature = "axum")]

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::routing::get;
use axum::{Router, http::Request};
use http::{StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use token_core::{RedisStore, RotationStore, SessionInfo, StoreConfig, StoreError};
use token_tower::StoreErrorResponse;
use tower::ServiceExt;

async fn sessions(
    State(store): State<RedisStore>,
) -> Result<Json<Vec<SessionInfo>>, StoreErrorResponse> {
    Ok(Json(store.list("alice").await?))
}

async fn refused() -> Result<Json<Value>, StoreErrorResponse> {
    Err(StoreError::DuplicateJti.into())
}

async fn get_path(app: Router, path: &str) -> (StatusCode, http::HeaderMap, String) {
    let response = app
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8(bytes.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn store_errors_answer_503_when_unavailable_and_500_otherwise() {
    // Nothing listens on this port: every store call fails to connect.
    let port = test_support::closed_port();
    let url = format!("redis://127.0.0.1:{port}");
    let config = StoreConfig::default()
        .timeout(Duration::from_millis(300))
        .sealing_key(token_core::SealingKey::derive(
            b"test",
            b"store error response",
        ));
    let store = RedisStore::open(&url, config).unwrap();
    let app = Router::new()
        .route("/sessions", get(sessions))
        .route("/refused", get(refused))
        .with_state(store);

    let (status, headers, body) = get_path(app.clone(), "/sessions").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(headers[header::RETRY_AFTER], "1");
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["error"], "temporarily_unavailable");
    let port = port.to_string();
    for detail in [port.as_str(), "redis", "refused", "127.0.0.1"] {
        assert!(!body.contains(detail), "{detail:?} leaked: {body}");
    }

    let (status, headers, body) = get_path(app, "/refused").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(headers.get(header::RETRY_AFTER).is_none());
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["error"], "server_error");
    assert!(!body.contains("jti"), "the error's text leaked: {body}");
}
