//! Where the layer must sit under `axum::Router::nest`, which strips the prefix before the
//! nested router's layers see the path. Over real HTTP.
#![cfg(feature = "axum")]

mod common;

use axum::Router;
use axum::routing::post;
use axum::{Json, response::IntoResponse};
use common::*;
use http::Method;
use serde_json::{Value, json};
use token_core::{FamilyId, StoreConfig};
use token_tower::{RefreshContext, RotationLayer, Route};

async fn login(Json(body): Json<Value>) -> impl IntoResponse {
    let user = body["username"].as_str().unwrap_or("anonymous");
    Json(json!({"refresh_token": refresh_token_in(user, &FamilyId::random())}))
}

async fn refresh(context: RefreshContext) -> impl IntoResponse {
    let family = context.family.unwrap_or_else(FamilyId::random);
    Json(json!({"refresh_token": refresh_token_in(&context.user, &family)}))
}

/// The app's auth routes, as the nested router sees them.
fn auth_routes() -> Router {
    Router::new()
        .route("/login", post(login))
        .route("/refresh", post(refresh))
}

async fn serve_router(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

async fn post_token(url: &str, path: &str, body: Value) -> (u16, Value, String) {
    let response = reqwest::Client::new()
        .post(format!("{url}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, json, text)
}

/// Logs in under `/auth` and refreshes twice with the same token: the second one must be
/// refused if the layer rotated.
async fn replay_is_refused(url: &str) -> bool {
    let (status, body, _) = post_token(url, "/auth/login", json!({"username": "quinn"})).await;
    assert_eq!(status, 200);
    let token = body["refresh_token"].as_str().unwrap().to_owned();
    let (status, _, text) = post_token(url, "/auth/refresh", json!({"refresh_token": token})).await;
    assert_eq!(status, 200, "{text}");
    let (status, _, _) = post_token(url, "/auth/refresh", json!({"refresh_token": token})).await;
    status == 401
}

fn rotation(prefix: &str) -> token_tower::RotationLayerBuilder<token_core::MemoryStore> {
    let config = StoreConfig::default().grace(std::time::Duration::ZERO);
    layer(memory_store(config))
        .family_claim("sid")
        .refresh_route(Route::new(Method::POST, format!("{prefix}/refresh")))
        .issuing_routes([Route::new(Method::POST, format!("{prefix}/login"))])
}

#[tokio::test]
async fn inside_a_nested_router_the_layer_matches_the_paths_it_sees() {
    // Documented placement 1: on the nested router, with the paths it sees (no prefix).
    let layer: RotationLayer<_> = rotation("").build().unwrap();
    let url = serve_router(Router::new().nest("/auth", auth_routes().layer(layer))).await;
    assert!(replay_is_refused(&url).await, "rotation enforced");

    // Documented placement 2: on the outer router, with the full paths.
    let layer = rotation("/auth").build().unwrap();
    let url = serve_router(Router::new().nest("/auth", auth_routes()).layer(layer)).await;
    assert!(replay_is_refused(&url).await, "rotation enforced");
}

#[tokio::test]
async fn a_layer_that_never_matches_fails_closed_and_names_itself() {
    // Wrong: full paths on the nested router, which only sees `/login` and `/refresh`. The
    // layer never matches, so nothing is rotated; the refresh handler's extractor refuses
    // to run without the layer's context (500), naming the missing layer.
    let layer = rotation("/auth").build().unwrap();
    let url = serve_router(Router::new().nest("/auth", auth_routes().layer(layer))).await;
    let (_, body, _) = post_token(&url, "/auth/login", json!({"username": "quinn"})).await;
    let token = body["refresh_token"].as_str().unwrap().to_owned();
    let (status, _, text) =
        post_token(&url, "/auth/refresh", json!({"refresh_token": token})).await;
    assert_eq!(status, 500);
    assert!(text.contains("RefreshContext missing"), "{text}");
    assert!(text.contains("RotationLayer"), "{text}");
}
