//! The `RefreshContext` extractor and `route_layer` (feature `axum`).
#![cfg(feature = "axum")]

mod common;

use axum::body::Body;
use axum::routing::post;
use axum::{Json, Router};
use common::*;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use token_core::{RotationStore, StoreConfig};
use token_tower::{RefreshContext, Route};
use tower::ServiceExt;

async fn rotate(context: RefreshContext) -> Json<Value> {
    Json(json!({"refresh_token": refresh_token(&context.user), "user": context.user}))
}

fn post_json(path: &str, body: Value) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test]
async fn extractor_works_under_route_layer_and_names_the_missing_layer() {
    let store = memory_store(StoreConfig::default());
    let layer = layer(store)
        .refresh_route(Route::any())
        .issuing_routes([])
        .build()
        .unwrap();
    let app = Router::new()
        .route("/v2/token/refresh", post(rotate))
        .route_layer(layer)
        .route("/unprotected", post(rotate));

    // Never recorded: the handler runs (validation passed) but the store refuses.
    let response = app
        .clone()
        .oneshot(post_json(
            "/v2/token/refresh",
            json!({"refresh_token": refresh_token("alice")}),
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let response = app
        .oneshot(post_json("/unprotected", json!({})))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let message = String::from_utf8(body.to_vec()).unwrap();
    assert!(message.contains("RefreshContext missing"), "{message}");
    assert!(message.contains("RotationLayer"), "{message}");
}

async fn never_called() -> StatusCode {
    panic!("the layer answers the revocation route itself")
}

/// The revocation route needs no handler: with `Router::layer` the layer answers it even
/// where the router has no such route (it wraps the fallback too); with `route_layer`, which
/// wraps matched routes only, a route must exist for the layer to see the request, and its
/// handler is still never called.
#[tokio::test]
async fn the_revocation_route_needs_no_handler() {
    let logout = || Route::new(http::Method::POST, "/logout");
    let logout_request = || post_json("/logout", json!({"refresh_token": refresh_token("alice")}));
    let build = || {
        layer(memory_store(StoreConfig::default()))
            .revocation_route(logout())
            .build()
            .unwrap()
    };

    let app: Router = Router::new().route("/refresh", post(rotate)).layer(build());
    let response = app.oneshot(logout_request()).await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    let app: Router = Router::new()
        .route("/refresh", post(rotate))
        .route_layer(build());
    let response = app.oneshot(logout_request()).await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::NOT_FOUND,
        "route_layer leaves unrouted paths to the fallback"
    );

    let app: Router = Router::new()
        .route("/refresh", post(rotate))
        .route("/logout", post(never_called))
        .route_layer(build());
    let response = app.oneshot(logout_request()).await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

/// One handler for the refresh route and another route: `Option<RefreshContext>` tells
/// them apart, with no rejection on the other route.
async fn either(context: Option<RefreshContext>) -> Json<Value> {
    match context {
        Some(context) => {
            Json(json!({"refresh_token": refresh_token(&context.user), "user": context.user}))
        }
        None => Json(json!({"refresh_token": null, "user": null})),
    }
}

async fn json_of(response: axum::response::Response) -> Value {
    let body = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test]
async fn an_optional_context_is_none_where_the_layer_did_not_refresh() {
    let store = memory_store(StoreConfig::default());
    let app: Router = Router::new()
        .route("/refresh", post(either))
        .route("/profile", post(either))
        .layer(layer(store.clone()).build().unwrap());

    let response = app
        .clone()
        .oneshot(post_json("/profile", json!({})))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "no rejection");
    assert_eq!(json_of(response).await["user"], Value::Null);

    // On the refresh route the handler gets the context and mints a successor, which the
    // layer rotates to.
    let t0 = refresh_token("alice");
    let recorded = claims_of(&t0);
    let jti = recorded["jti"].as_str().unwrap();
    let token = token_core::TokenRef::new(jti, recorded["exp"].as_i64().unwrap());
    store.register("alice", token, None).await.unwrap();
    let response = app
        .oneshot(post_json("/refresh", json!({"refresh_token": t0})))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_of(response).await["user"], "alice");
}
