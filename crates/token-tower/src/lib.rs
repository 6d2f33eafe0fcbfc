//! A Tower layer that enforces refresh-token rotation in front of an existing app.
//!
//! The app keeps minting its own JWTs. [`RotationLayer`] watches two kinds of routes:
//!
//! - **Issuing routes** (default `POST /login`): on a 2xx response the layer finds the
//!   refresh token in it, validates it and [`register`](token_core::RotationStore::register)s
//!   it as a new family before the response leaves. If the store cannot record it, the
//!   client does not get the token: 503 when the store is unavailable, 500 when it refuses
//!   the token (a duplicate `jti`, an app bug).
//! - **The refresh route** (default `POST /refresh`): the layer reads the presented token
//!   (JSON body field, form field, cookie or header), validates it (explicit algorithm allow-list,
//!   signature, `exp`/`nbf` with leeway, optional `iss`/`aud`, required claims, optional
//!   type claim) and only then calls the app, with a [`RefreshContext`] in the request
//!   extensions. On a 2xx response it finds the successor (JSON body field or
//!   `Set-Cookie`), checks it belongs to the same user, and runs
//!   [`rotate`](token_core::RotationStore::rotate) once. `Rotated` lets the response
//!   through; `GraceReplay` swaps the successor for the one stored at the first rotation,
//!   byte for byte; anything else replaces the whole response with a rejection, so a token
//!   the store refused never reaches the client. A non-2xx response consumes nothing, and
//!   one that carries a refresh token anywhere (body of any type, `Set-Cookie`, `Location`,
//!   ...) is replaced by a 500.
//!
//! - **An OAuth 2.0 token endpoint** (none by default,
//!   [`RotationLayerBuilder::token_endpoint`]): one route for every grant of RFC 6749, read
//!   as a form and routed on `grant_type`: `refresh_token` runs the refresh flow, the
//!   [issuing grants](RotationLayerBuilder::issuing_grants) the issuing flow, any other grant
//!   goes to the app, whose answer must carry no refresh token (it would leave unrecorded:
//!   500 instead). Refusals there follow RFC 6749 section 5.2, and each family
//!   is bound to the client it was issued to ([`ClientId`], HTTP Basic or `client_id`): a
//!   refresh token presented by another client is refused without consuming anything.
//!
//! - **A revocation route** (none by default, [`RotationLayerBuilder::revocation_route`]):
//!   a logout for a JSON or cookie API (204, the app is not called), or, beside a token
//!   endpoint, an RFC 7009 token revocation endpoint (the app authenticates the client
//!   first; 200, and only the client's own sessions are revoked).
//!
//! Every other request goes straight to the app: no buffering, no store call.
//! [`RotationLayer::introspection`] builds an RFC 7662 introspection endpoint for refresh
//! tokens ([`Introspection`]), to mount behind the app's own authentication of its callers.
//!
//! # Rejections
//!
//! Rejections are responses, never service errors: JSON
//! `{"error": "invalid_grant", "error_description": "…"}` with `WWW-Authenticate: Bearer
//! error="invalid_token"` (RFC 6750), status 401 (configurable; 400 without a challenge at
//! the token endpoint) for a refused token, 400 (`invalid_request`) for a malformed body, a wrong
//! content type or a missing token, 413 for a body over the cap, 503
//! (`temporarily_unavailable`, with `Retry-After`) when the store is down or slow (fail
//! closed), and 500 (`server_error`) when the app answered 2xx with no usable token. See
//! [`RejectReason`] and [`Rejection`]; customise with
//! [`RotationLayerBuilder::rejection_response`].
//!
//! The app's own routes that call the store (a sessions page, "log out everywhere") answer
//! its errors the same way with [`StoreErrorResponse`]: 503 with `Retry-After` when the store
//! is unavailable, 500 otherwise, an axum `IntoResponse` with the `axum` feature.
//!
//! # jsonwebtoken's crypto backend
//!
//! jsonwebtoken 11 picks a process-wide crypto provider from its cargo features and panics
//! at the first verify when an application enables both `rust_crypto` and `aws_lc_rs` (or
//! neither) without installing one. The layer never goes through that process default: it
//! verifies with the `rust_crypto` provider it is compiled with, so it works whatever else
//! the application enables or installs.
//!
//! # Features
//!
//! - `axum` (default): [`RefreshContext`] as an axum extractor (its rejection,
//!   `MissingRefreshContext`, names the missing layer), [`StoreErrorResponse`] as an
//!   `IntoResponse`, and axum's `ConnectInfo` as the peer address in audit lines. Without it
//!   (`default-features = false`) the layer is plain Tower and axum is not built.
//! - `metrics`: counters and a latency histogram through the `metrics` facade (see
//!   [`metrics`]).
//!
//! # Example
//!
//! ```
//! use axum::{Extension, Json, Router, routing::post};
//! use jsonwebtoken::{Algorithm, DecodingKey};
//! use serde_json::{Value, json};
//! use token_core::{MemoryStore, StoreConfig};
//! use token_tower::{RefreshContext, RotationLayer};
//!
//! // With the `axum` feature, `context: RefreshContext` works as an extractor too.
//! async fn refresh(Extension(context): Extension<RefreshContext>) -> Json<Value> {
//!     // `context.user` passed validation; mint the next pair for it here.
//!     # let _ = context;
//!     Json(json!({ "refresh_token": "<new refresh jwt>" }))
//! }
//!
//! # async fn login() -> Json<Value> { Json(json!({})) }
//! let store = MemoryStore::new(StoreConfig::default());
//! let rotation = RotationLayer::builder(store, DecodingKey::from_secret(b"secret"), [Algorithm::HS256])
//!     .required_type("typ", "refresh")
//!     .build()
//!     .expect("valid configuration");
//!
//! let app: Router = Router::new()
//!     .route("/login", post(login))
//!     .route("/refresh", post(refresh))
//!     .layer(rotation);
//! # let _ = app;
//! ```
//!
//! The same layer works in a plain `tower::ServiceBuilder` served by hyper; the inner
//! service then receives `Request<`[`RequestBody`]`<Incoming>>`.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod binding;
mod flow;
mod http;
mod layer;
mod oauth;
mod observe;
mod reply;

pub use crate::binding::dpop::{
    DpopConfig, DpopNonces, DpopPolicy, InvalidOrigin, JwkThumbprintError, jwk_thumbprint,
};
pub use crate::binding::mtls::{
    CLIENT_CERT, ClientCertError, MAX_CLIENT_CERT_LEN, PeerCertificate, TrustedProxies,
    certificate_thumbprint, client_cert_header,
};
pub use crate::http::body::{RequestBody, ResponseBody};
#[cfg(feature = "axum")]
pub use crate::http::context::MissingRefreshContext;
pub use crate::http::context::{ClientId, DpopKey, RefreshContext};
pub use crate::layer::config::{IssuedToken, PresentedToken, Route};
pub use crate::layer::future::ResponseFuture;
pub use crate::layer::service::Rotation;
pub use crate::layer::{BuildError, RotationLayer, RotationLayerBuilder};
pub use crate::oauth::introspect::{Introspection, IntrospectionResponse};
pub use crate::observe::event::{LayerEvent, LayerEventKind};
pub use crate::observe::metrics;
pub use crate::reply::rejection::{RejectClass, RejectReason, Rejection, RejectionResponse};
pub use crate::reply::store_error::StoreErrorResponse;

/// Re-exported so applications configure keys and algorithms with the same jsonwebtoken
/// the layer verifies with.
pub use jsonwebtoken;
