//! An OAuth 2.0 token endpoint (RFC 6749) with the rotation layer in front:
//! `cargo run --example oauth_server` (in-memory store), or with
//! `REDIS_URL=redis://127.0.0.1:6379`. The OAuth guide (`docs/guides/oauth.md`) drives it
//! with curl.
//!
//! `POST /token` serves the password grant (any username, password `demo`) and the refresh
//! grant for two confidential clients, `demo-client` / `demo-secret` and `other-client` /
//! `other-secret` (HTTP Basic, or `client_id` and `client_secret` in the form). The app
//! authenticates clients and mints tokens as it would without the layer; the layer, routing
//! on `grant_type`, records each login's refresh token bound to its client, and rotates on
//! `grant_type=refresh_token`. `POST /revoke` is an RFC 7009 revocation endpoint (the app
//! authenticates the client, the layer revokes that client's own session only) and
//! `POST /introspect` an RFC 7662 introspection endpoint for refresh tokens, open to the
//! registered clients, each told only of its own tokens (another client's is
//! `{"active": false}`). `GET /healthz` is 200 while the store answers, 503 otherwise.
//! Environment as for the Axum example: `BIND_ADDR`, `REDIS_URL`, `JWT_SECRET`,
//! `ACCESS_TTL_SECS`, `REFRESH_TTL_SECS`, `ROTATION_GRACE_SECS`, `SEALING_KEY`, and
//! `PUBLIC_ORIGIN`.
//!
//! DPoP (RFC 9449) is optional: a token request with a valid `DPoP` proof gets
//! `token_type: DPoP` and an access token bound to the proof's key (`cnf.jkt`), and the
//! session's refreshes then need proofs by that key; a request without one gets `Bearer`.
//!
//! `GET /.well-known/oauth-authorization-server` serves the server's metadata (RFC 8414),
//! with the proof algorithms it accepts in `dpop_signing_alg_values_supported` (RFC 9449
//! section 5.1), so a client can discover the endpoints and pick a key type. Its `issuer`
//! is `PUBLIC_ORIGIN` when set (`https://as.example`: proofs' `htu` must then name it too,
//! whatever `Host` a client sends), else `http://` and the address the example listens on.

mod common;

use std::collections::HashMap;

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{Minter, Settings};
use serde_json::json;
use token_rotation::jsonwebtoken::Algorithm;
use token_rotation::token_tower::{ClientId, DpopConfig, DpopKey, DpopPolicy};
use token_rotation::{
    AnyStore, MemoryStore, RedisStore, RefreshContext, RotationLayer, RotationStore, Route,
};

/// The registered confidential clients: id and secret (a real server keeps secret hashes).
const CLIENTS: [(&str, &str); 2] = [
    ("demo-client", "demo-secret"),
    ("other-client", "other-secret"),
];

/// An RFC 6749 section 5.2 error response.
fn oauth_error(status: StatusCode, error: &str) -> Response {
    let mut response = (status, Json(json!({ "error": error }))).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, "no-store".parse().unwrap());
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(
            header::WWW_AUTHENTICATE,
            "Basic realm=\"token\"".parse().unwrap(),
        );
    }
    response
}

/// Client authentication (RFC 6749 section 2.3.1): HTTP Basic with the form-encoded id and
/// secret, or `client_id` and `client_secret` in the form. The authenticated client's id.
fn authenticate(headers: &HeaderMap, form: &HashMap<String, String>) -> Option<&'static str> {
    let form_decode = |s: &str| -> String {
        form_urlencoded::parse(format!("v={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let (id, secret) = match headers.get(header::AUTHORIZATION) {
        Some(value) => {
            let encoded = value.to_str().ok()?.strip_prefix("Basic ")?;
            let decoded = String::from_utf8(STANDARD.decode(encoded).ok()?).ok()?;
            let (id, secret) = decoded.split_once(':')?;
            (form_decode(id), form_decode(secret))
        }
        None => (
            form.get("client_id")?.clone(),
            form.get("client_secret")?.clone(),
        ),
    };
    CLIENTS
        .iter()
        .find(|(known, known_secret)| *known == id && *known_secret == secret)
        .map(|(known, _)| *known)
}

/// The token endpoint as the app has it: authenticate the client, then the grant.
async fn token(
    Extension(minter): Extension<Minter>,
    refresh: Option<Extension<RefreshContext>>,
    dpop: Option<Extension<DpopKey>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if authenticate(&headers, &form).is_none() {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    // The layer verified the request's DPoP proof, if any: its key is the one the session
    // is bound to, so the access token is bound to it too.
    let jkt = dpop.as_ref().map(|Extension(key)| key.thumbprint.as_str());
    match field("grant_type") {
        "password" if common::password_ok(field("username"), field("password")) => {
            Json(minter.issue_bound(field("username"), None, jkt)).into_response()
        }
        "password" => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant"),
        // The layer validated the refresh token, and rotates it to the one minted here (or
        // refuses it, for instance when another client presents it).
        "refresh_token" => match refresh {
            Some(Extension(context)) => {
                Json(minter.issue_bound(&context.user, context.family.as_ref(), jkt))
                    .into_response()
            }
            None => oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
        },
        _ => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    }
}

/// The authorization server's metadata (RFC 8414) for `issuer`: its endpoints, grants and
/// client authentication methods, and the DPoP proof algorithms `dpop` accepts.
fn metadata(issuer: &str, dpop: &DpopConfig) -> serde_json::Value {
    json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}/token"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "introspection_endpoint": format!("{issuer}/introspect"),
        "grant_types_supported": ["password", "refresh_token"],
        // No authorization endpoint: no response type is served.
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post"
        ],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic"],
        // From the layer's own configuration, so the list cannot drift from what it accepts.
        "dpop_signing_alg_values_supported": dpop.signing_algorithms(),
    })
}

/// The revocation endpoint as the app has it: authenticate the client (RFC 7009 section
/// 2.1). On this 2xx the layer revokes the token's session, if it is this client's, and
/// answers 200 itself.
async fn revoke(headers: HeaderMap, Form(form): Form<HashMap<String, String>>) -> Response {
    match authenticate(&headers, &form) {
        Some(_) => StatusCode::OK.into_response(),
        None => oauth_error(StatusCode::UNAUTHORIZED, "invalid_client"),
    }
}

/// `GET /healthz`, as in the other examples: 200 `{"status": "ok"}` while the store answers,
/// else the store failure's answer (503 with `Retry-After`).
async fn healthz(store: AnyStore) -> Response {
    match store.ping().await {
        Ok(()) => Json(json!({ "status": "ok" })).into_response(),
        Err(e) => common::answers::store_error(e),
    }
}

/// Who may introspect (RFC 7662 section 2.1): here, the registered clients, with HTTP
/// Basic. A real server would admit its resource servers.
async fn registered_callers_only(mut request: Request, next: Next) -> Response {
    match authenticate(request.headers(), &HashMap::new()) {
        Some(id) => {
            // Introspection answers a client about its own tokens only.
            request.extensions_mut().insert(ClientId(id.to_owned()));
            next.run(request).await
        }
        None => oauth_error(StatusCode::UNAUTHORIZED, "invalid_client"),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    common::init_tracing();
    let settings = Settings::from_env();
    let minter = settings.minter();
    let store: AnyStore = match &settings.redis_url {
        Some(url) => {
            println!(
                "store: Redis at {}",
                token_rotation::token_core::admin::redact_url(url)
            );
            RedisStore::open(url, settings.store_config())?.into()
        }
        None => {
            println!(
                "store: IN-MEMORY (REDIS_URL is not set). Sessions live in this process only."
            );
            MemoryStore::new(settings.store_config()).into()
        }
    };
    let dpop = settings.dpop(DpopPolicy::Optional);
    let health = store.clone();
    let rotation = RotationLayer::builder(store, minter.decoding.clone(), [Algorithm::HS256])
        .required_type("typ", "refresh")
        .family_claim("sid")
        // One path for every grant: `refresh_token` rotates, `password` (and
        // `authorization_code`) register, anything else goes straight to the handler.
        .token_endpoint(Route::new(axum::http::Method::POST, "/token"))
        // Beside a token endpoint, RFC 7009: the handler authenticates the client first.
        .revocation_route(Route::new(axum::http::Method::POST, "/revoke"))
        .issuing_routes([])
        // Optional: clients that send proofs get bound sessions, bearer clients keep working.
        .dpop(dpop.clone())
        .build()?;
    let introspection = Router::new()
        .route_service("/introspect", rotation.introspection())
        .route_layer(middleware::from_fn(registered_callers_only));
    let listener = common::listen(&settings.bind_addr, "BIND_ADDR").await;
    // The metadata names the origin clients address: the public one when it is set.
    let issuer = match &settings.public_origin {
        Some(origin) => origin.trim_end_matches('/').to_owned(),
        None => format!("http://{}", listener.local_addr()?),
    };
    let metadata = Json(metadata(&issuer, &dpop));
    let app = Router::new()
        .route("/token", post(token))
        .route("/revoke", post(revoke))
        .route("/healthz", get(move || healthz(health.clone())))
        .route(
            "/.well-known/oauth-authorization-server",
            get(move || std::future::ready(metadata.clone())),
        )
        .merge(introspection)
        .layer(rotation)
        .layer(Extension(minter));
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
