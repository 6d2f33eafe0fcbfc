//! The sessions page: a browser app where a user signs in, sees their sessions (devices),
//! revokes one, or logs out everywhere. Run it with `cargo run --example sessions_page` and
//! open `http://127.0.0.1:3000/` (in-memory store; `REDIS_URL`, `REDIS_CLUSTER_NODES` or
//! `REDIS_SENTINEL_NODES` as for the other examples). `GET /metrics` is served on its own
//! listener, as in the Axum example.
//!
//! The browser never sees its refresh token: it lives in an `HttpOnly`, `Secure`,
//! `SameSite=Strict` `__Host-` cookie, and a second [`RotationLayer`] in cookie mode rotates it on
//! `POST /web/refresh`. The page keeps the access token in memory only and renews it on its
//! own before it expires; two tabs renewing at once present the same cookie, and the grace
//! window hands both the same successor.
//!
//! The session is also bound to a key the browser holds (DPoP, RFC 9449): the page keeps a
//! non-extractable P-256 key in IndexedDB and signs a proof (`DPoP` header) for every
//! sign-in and renewal, and the layer refuses the cookie without a proof by that key (401
//! `invalid_dpop_proof`, nothing spent, the owner still signed in). A copied cookie is of no
//! use in another browser.
//!
//! | route | request | success |
//! |---|---|---|
//! | `GET /` | – | the page (HTML; its script and style at `GET /assets/sessions.js` and `/assets/sessions.css`) |
//! | `POST /web/login` | `{"username", "password"}` + `DPoP` proof | 200 `{"access_token", "token_type", "expires_in", "user"}` + refresh cookie |
//! | `POST /web/refresh` | refresh cookie + `DPoP` proof by the login's key | 200, same shape, a new refresh cookie |
//! | `POST /web/logout` | refresh cookie (the page's own origin) | 204, that session revoked, cookie cleared |
//! | `GET /web/sessions` | Bearer access (+ cookie to mark this device) | 200 `[{"family", "created_at", "last_rotated_at", "expires_at", "device", "this_device"}]` |
//! | `DELETE /web/sessions/{family}` | Bearer access | 204, or 404 when no such live session |
//! | `POST /web/logout-all` | Bearer access | 200 `{"revoked": n}`, every session of the user revoked |

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::extract::Request;
use axum::extract::{Path, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use jsonwebtoken::Algorithm;

use serde_json::json;

use token_rotation::token_tower::{DpopConfig, DpopPolicy};
use token_rotation::{FamilyId, RotationStore};
use token_rotation::{IssuedToken, PresentedToken, RefreshContext, RotationLayer, Route};

// The app's error shape, store failure answer and JSON body reader.
use common::answers::{JsonBody, Login, error, store_error};
use common::serve::serve_with_metrics;
use common::{Minter, Settings};

/// The request body cap of every route (the layer applies the same cap on `/web/refresh`).
const MAX_BODY: usize = 16 * 1024;

/// The refresh cookie's name. `__Host-`: browsers accept this cookie only with `Secure`, `Path=/` and no `Domain`, so a
/// sibling subdomain or a plain-HTTP page cannot plant or overwrite it.
const COOKIE_NAME: &str = "__Host-rt";

const PAGE: &str = include_str!("assets/sessions.html");
const SCRIPT: &str = include_str!("assets/sessions.js");
const STYLE: &str = include_str!("assets/sessions.css");

/// The page loads only its own script and style (no inline code an injected tag could add
/// to), and no other site may frame it (clickjacking) or have a response sniffed into
/// another type.
const PAGE_HEADERS: [(&str, &str); 3] = [
    (
        "content-security-policy",
        "default-src 'self'; frame-ancestors 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
];

struct WebState<S> {
    store: S,
    minter: Minter,
    refresh_ttl: Duration,
}

type Shared<S> = State<Arc<WebState<S>>>;

/// The page and its routes behind a rotation layer in cookie mode (cookie in, `Set-Cookie`
/// out).
fn app<S: RotationStore>(
    store: S,
    minter: Minter,
    refresh_ttl: Duration,
    dpop: DpopConfig,
) -> Router {
    let rotation =
        RotationLayer::builder(store.clone(), minter.decoding.clone(), [Algorithm::HS256])
            .required_type("typ", "refresh")
            .family_claim("sid")
            .refresh_route(Route::new(Method::POST, "/web/refresh"))
            .issuing_routes([Route::new(Method::POST, "/web/login")])
            .presented_token(PresentedToken::Cookie(COOKIE_NAME.into()))
            .issued_token(IssuedToken::SetCookie(COOKIE_NAME.into()))
            // Required, not Optional: the page is this layer's only client and signs every
            // sign-in and renewal, so a request without a proof is a cookie used away from
            // the browser that holds the key. Optional would let a login without a proof
            // make an unbound session, whose cookie works anywhere. Without `PUBLIC_ORIGIN`
            // the proof's `htu` is checked against the `Host` header; a deployment sets it.
            .dpop(dpop)
            // `SameSite=Strict` keeps other sites' requests from carrying the cookie, but not
            // a sibling subdomain's (same site) nor an old browser's: the layer refuses
            // renewals and logouts asked for by another origin's page (403).
            .require_same_origin()
            // The layer answers a logout itself (204, that session revoked), behind the
            // same-origin check; `clear_cookie_on_logout` then clears the cookie.
            .revocation_route(Route::new(Method::POST, "/web/logout"))
            .max_request_body(MAX_BODY)
            .metrics(true)
            .build()
            .expect("valid rotation layer configuration");
    Router::new()
        .route("/", get(page))
        .route("/assets/sessions.js", get(script))
        .route("/assets/sessions.css", get(style))
        .route("/web/login", post(login::<S>))
        .route("/web/refresh", post(refresh::<S>))
        .route("/web/sessions", get(sessions::<S>))
        .route("/web/sessions/{family}", delete(revoke_session::<S>))
        .route("/web/logout-all", post(logout_all::<S>))
        .with_state(Arc::new(WebState {
            store,
            minter,
            refresh_ttl,
        }))
        .layer(rotation)
        .layer(middleware::from_fn(clear_cookie_on_logout))
        .layer(middleware::from_fn(page_headers))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

#[tokio::main]
async fn main() {
    common::init_tracing();
    let settings = Settings::from_env();
    let store = common::open_store(&settings).await;
    let dpop = settings.dpop(DpopPolicy::Required);
    let app = app(store, settings.minter(), settings.refresh_ttl, dpop);
    serve_with_metrics(app, &settings.bind_addr).await;
}

async fn page() -> impl IntoResponse {
    ([(CACHE_CONTROL, "no-store")], Html(PAGE))
}

async fn style() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "no-store"),
        ],
        STYLE,
    )
}

/// Every response gets [`PAGE_HEADERS`]: the page's, its assets', and the API's (a JSON
/// answer opened as a page is no page either).
async fn page_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    for (name, value) in PAGE_HEADERS {
        response
            .headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The layer's `204` to `POST /web/logout` (the session revoked) also expires the cookie,
/// so the browser stops sending a dead token.
async fn clear_cookie_on_logout(request: Request, next: Next) -> Response {
    let logout = request.method() == Method::POST && request.uri().path() == "/web/logout";
    let mut response = next.run(request).await;
    let cleared = format!("{COOKIE_NAME}=; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    if logout
        && response.status() == StatusCode::NO_CONTENT
        && let Ok(value) = HeaderValue::from_str(&cleared)
    {
        response.headers_mut().append(SET_COOKIE, value);
    }
    response
}

async fn script() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "no-store"),
        ],
        SCRIPT,
    )
}

/// The refresh cookie. `HttpOnly` keeps it from scripts (an XSS cannot steal it),
/// `SameSite=Strict` keeps other sites from sending it (no CSRF on `/web/refresh`), `Secure`
/// and the `__Host-` prefix keep other hosts and plain HTTP from planting one. Chromium and
/// Firefox treat `http://localhost` and `http://127.0.0.1` as secure, so the page works
/// locally with them; anywhere else serve it over HTTPS.
fn refresh_cookie(token: &str, max_age: Duration) -> String {
    format!(
        "{COOKIE_NAME}={token}; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        max_age.as_secs()
    )
}

/// A token answer for the page: the access token in the body, the refresh token only in
/// the cookie (the layer records or rotates it from the `Set-Cookie` header). The access
/// token stays a `Bearer` token: only the refresh cookie, the long-lived credential, is
/// bound to the browser's key.
fn signed_in<S>(web: &WebState<S>, user: &str, family: Option<&FamilyId>) -> Response {
    let tokens = web.minter.issue(user, family);
    let body = json!({
        "access_token": tokens.access_token,
        "token_type": "Bearer",
        "expires_in": tokens.expires_in,
        "user": user,
    });
    (
        [
            (
                SET_COOKIE,
                refresh_cookie(&tokens.refresh_token, web.refresh_ttl),
            ),
            (CACHE_CONTROL, "no-store".to_owned()),
        ],
        Json(body),
    )
        .into_response()
}

async fn login<S: RotationStore>(
    State(web): Shared<S>,
    JsonBody(body): JsonBody<Login>,
) -> Response {
    if let Some(refused) = body.refusal() {
        return refused;
    }
    signed_in(&web, &body.username, None)
}

/// Reached only with a valid refresh cookie and a proof by its session's key; the layer
/// rotates it to the new one.
async fn refresh<S: RotationStore>(State(web): Shared<S>, context: RefreshContext) -> Response {
    signed_in(&web, &context.user, context.family.as_ref())
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.to_owned())
}

fn access_user<S>(web: &WebState<S>, headers: &HeaderMap) -> Option<String> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| web.minter.verify(t, "access"))
        .map(|claims| claims.sub)
}

fn invalid_token() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "a valid access token is required",
    )
}

async fn sessions<S: RotationStore>(State(web): Shared<S>, headers: HeaderMap) -> Response {
    let Some(user) = access_user(&web, &headers) else {
        return invalid_token();
    };
    // The cookie's `sid` claim names this browser's session.
    let this_session = cookie_token(&headers)
        .and_then(|t| web.minter.verify(&t, "refresh"))
        .filter(|claims| claims.sub == user)
        .and_then(|claims| claims.family());
    match web.store.list(&user).await {
        Ok(list) => Json(
            list.into_iter()
                .map(|s| {
                    json!({
                        "family": s.family,
                        "created_at": s.created_at,
                        "last_rotated_at": s.last_rotated_at,
                        "expires_at": s.expires_at,
                        "device": s.metadata,
                        "this_device": this_session.as_ref() == Some(&s.family),
                    })
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(e) => store_error(e),
    }
}

async fn revoke_session<S: RotationStore>(
    State(web): Shared<S>,
    Path(family): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(user) = access_user(&web, &headers) else {
        return invalid_token();
    };
    // Scoped to the caller's own record: another user's family id finds nothing here.
    match web
        .store
        .revoke_family(&user, &FamilyId::from(family))
        .await
    {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => error(StatusCode::NOT_FOUND, "not_found", "no such live session"),
        Err(e) => store_error(e),
    }
}

async fn logout_all<S: RotationStore>(State(web): Shared<S>, headers: HeaderMap) -> Response {
    let Some(user) = access_user(&web, &headers) else {
        return invalid_token();
    };
    match web.store.revoke_all(&user).await {
        Ok(revoked) => Json(json!({ "revoked": revoked })).into_response(),
        Err(e) => store_error(e),
    }
}
