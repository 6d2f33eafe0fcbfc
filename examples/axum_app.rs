//! The Axum example: an app that mints its own JWTs, with refresh-token rotation added by
//! one layer. Run it with `cargo run --example axum_app` (in-memory store) or with
//! `REDIS_URL=redis://127.0.0.1:6379 cargo run --example axum_app`.
//!
//! Routes: `POST /login`, `POST /refresh`, `POST /logout`, `POST /logout-all`,
//! `GET /sessions`, `GET /me`, `GET /healthz` (see the README's curl session). The browser version of the
//! same app, with the refresh token in a cookie, is the `sessions_page` example.
//!
//! `GET /metrics` (Prometheus text format) is served on a listener of its own, at
//! `METRICS_ADDR` (default `127.0.0.1:9464`, loopback: scrapers are not the public), never on
//! the public address. The app prints `metrics on http://<addr>/metrics`, then
//! `listening on http://<addr>` once both are bound (`127.0.0.1:0` picks a free port).

mod common;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use common::answers::{JsonBody, Login, error, store_error};
use common::serve::serve_with_metrics;
use common::{Minter, Settings, TokenResponse};
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use serde_json::json;
use token_rotation::RotationStore;
use token_rotation::{RefreshContext, RotationLayer};

/// The request body cap of every route (the layer applies the same cap on `/refresh`).
const MAX_BODY: usize = 16 * 1024;

struct AppState<S> {
    store: S,
    minter: Minter,
}

type Shared<S> = State<Arc<AppState<S>>>;

/// The user of a valid access token in `Authorization: Bearer`.
struct AccessUser(String);

impl<S: RotationStore> FromRequestParts<Arc<AppState<S>>> for AccessUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState<S>>,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match token.and_then(|t| state.minter.verify(t, "access")) {
            Some(claims) => Ok(AccessUser(claims.sub)),
            None => Err(error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "a valid access token is required",
            )),
        }
    }
}

async fn login<S: RotationStore>(
    State(app): Shared<S>,
    JsonBody(body): JsonBody<Login>,
) -> Response {
    if let Some(refused) = body.refusal() {
        return refused;
    }
    // The layer records the refresh token in this response before it leaves.
    Json(app.minter.issue(&body.username, None)).into_response()
}

/// Reached only once the layer has validated the presented token; the layer then rotates
/// it to the refresh token in this response.
async fn refresh<S: RotationStore>(
    State(app): Shared<S>,
    context: RefreshContext,
) -> Json<TokenResponse> {
    Json(app.minter.issue(&context.user, context.family.as_ref()))
}

#[derive(Deserialize)]
struct Logout {
    refresh_token: String,
}

async fn logout<S: RotationStore>(
    State(app): Shared<S>,
    JsonBody(body): JsonBody<Logout>,
) -> Response {
    let Some(claims) = app.minter.verify(&body.refresh_token, "refresh") else {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
            "invalid refresh token",
        );
    };
    let family = claims.family();
    match app
        .store
        .revoke(&claims.sub, claims.token_ref(family.as_ref()))
        .await
    {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => store_error(e),
    }
}

async fn logout_all<S: RotationStore>(State(app): Shared<S>, user: AccessUser) -> Response {
    match app.store.revoke_all(&user.0).await {
        Ok(revoked) => Json(json!({ "revoked": revoked })).into_response(),
        Err(e) => store_error(e),
    }
}

async fn sessions<S: RotationStore>(State(app): Shared<S>, user: AccessUser) -> Response {
    match app.store.list(&user.0).await {
        // `SessionInfo` serializes without the current token's jti digest: a page has no
        // business with it (and `/logout` needs the token itself).
        Ok(sessions) => Json(sessions).into_response(),
        Err(e) => store_error(e),
    }
}

async fn me(user: AccessUser) -> Json<serde_json::Value> {
    Json(json!({ "sub": user.0 }))
}

async fn healthz<S: RotationStore>(State(app): Shared<S>) -> Response {
    match app.store.ping().await {
        Ok(()) => Json(json!({ "status": "ok" })).into_response(),
        Err(e) => store_error(e),
    }
}

/// The whole public app: the routes an app already has, plus one layer. No `/metrics` here:
/// it has a listener of its own (`common::serve`).
fn app<S: RotationStore>(store: S, settings: &Settings) -> Router {
    let minter = settings.minter();
    let rotation =
        RotationLayer::builder(store.clone(), minter.decoding.clone(), [Algorithm::HS256])
            .required_type("typ", "refresh")
            .family_claim("sid")
            .max_request_body(MAX_BODY)
            .metrics(true);
    // ADOPT_ISSUED_BEFORE / ADOPT_UNTIL: turning the layer on without logging anyone out.
    let rotation = settings
        .adopting(rotation)
        .build()
        .expect("valid rotation layer configuration");

    Router::new()
        .route("/login", post(login::<S>))
        .route("/refresh", post(refresh::<S>))
        .route("/logout", post(logout::<S>))
        .route("/logout-all", post(logout_all::<S>))
        .route("/sessions", get(sessions::<S>))
        .route("/me", get(me))
        .route("/healthz", get(healthz::<S>))
        .with_state(Arc::new(AppState { store, minter }))
        .layer(rotation)
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

#[tokio::main]
async fn main() {
    common::init_tracing();
    let settings = Settings::from_env();
    let store = common::open_store(&settings).await;
    serve_with_metrics(app(store, &settings), &settings.bind_addr).await;
}
