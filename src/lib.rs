//! Enforced refresh-token rotation for Tower, Axum and Hyper apps, backed by Redis.
//!
//! ```
//! use axum::routing::post;
//! use axum::{Json, Router};
//! use serde_json::{Value, json};
//! use token_rotation::jsonwebtoken::{Algorithm, DecodingKey};
//! use token_rotation::{MemoryStore, RefreshContext, RotationLayer, StoreConfig};
//!
//! // The app's own handlers: it keeps minting its JWTs (a `sid` claim names the session).
//! async fn login() -> Json<Value> {
//!     Json(json!({ "refresh_token": "<refresh jwt>" }))
//! }
//! async fn refresh(context: RefreshContext) -> Json<Value> {
//!     // The presented token was valid, current and is spent once this answer leaves.
//!     let _user = context.user;
//!     Json(json!({ "refresh_token": "<the successor>" }))
//! }
//!
//! let store = MemoryStore::new(StoreConfig::default()); // or RedisStore::open(url, ...)
//! let rotation = RotationLayer::builder(store, DecodingKey::from_secret(b"secret"), [Algorithm::HS256])
//!     .family_claim("sid")
//!     .build()
//!     .expect("a valid configuration");
//! let app: Router = Router::new()
//!     .route("/login", post(login))
//!     .route("/refresh", post(refresh))
//!     .layer(rotation);
//! # let _ = app;
//! ```
//!
//! The everyday items of the two crates of the workspace are here, flat:
//!
//! - the store (`token-core`): [`RedisStore`], [`MemoryStore`], [`AnyStore`] (either, chosen
//!   at run time), [`StoreConfig`], [`SealingKey`], and the [`RotationStore`] trait;
//! - the layer (`token-tower`): [`RotationLayer`] in front of an existing app, the
//!   [`RefreshContext`] its refresh handler reads, and [`StoreErrorResponse`], the answer
//!   (503 or 500) to a [`StoreError`] in the app's own handlers; with the types the builder's
//!   own signatures name: [`BuildError`] from `build`, [`RejectionResponse`] and
//!   [`Rejection`] (its [`RejectReason`] and [`RejectClass`]) for `rejection_response`,
//!   [`LayerEvent`] for `on_event`.
//!
//! The whole of each crate is at [`token_core`] and [`token_tower`]. The layer takes
//! [`jsonwebtoken`] 11 keys and algorithms: use the re-exported [`jsonwebtoken`] so your app
//! and the layer agree on one version of it.
//!
//! The [`guides`] take it from there: [integrating](guides::integrating) the layer into an
//! existing app and configuring it, [OAuth 2.0 servers](guides::oauth), [DPoP](guides::dpop),
//! [the sessions page](guides::sessions_page), [operating](guides::operating) the store in
//! production, and [upgrading](guides::upgrading). `examples/` in the repository holds an
//! Axum and a plain Hyper app.
//!
//! # Features
//!
//! - `redis` (default): the Redis store ([`RedisStore`], [`ConnectionSource`], [`RedisAuth`],
//!   [`AnyStore`]).
//!   Without it only [`MemoryStore`] is built, and neither redis nor its dependencies.
//! - `bb8`: bb8 pools as Redis connection sources.
//! - `metrics`: counters and a latency histogram through the `metrics` facade.
//! - `test-util`: `ClockOffset` and `StoreConfig::clock`, to let lifetimes pass in tests.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

/// The guides: integrating, OAuth 2.0, DPoP, the sessions page, operating, upgrading.
pub mod guides;

pub use token_core;
#[cfg(feature = "test-util")]
pub use token_core::ClockOffset;
#[cfg(feature = "redis")]
pub use token_core::{AnyStore, ConnectionSource, RedisAuth, RedisStore};
pub use token_core::{
    FamilyId, KeyProof, MemoryStore, PROOF_JTI_LIFETIME, RotationOutcome, RotationStore,
    SealingKey, SessionInfo, StoreConfig, StoreError, Successor, TokenRef,
};
pub use token_tower;
pub use token_tower::jsonwebtoken;
pub use token_tower::{
    BuildError, ClientId, DpopConfig, DpopKey, DpopNonces, DpopPolicy, Introspection,
    IntrospectionResponse, IssuedToken, LayerEvent, LayerEventKind, MissingRefreshContext,
    PresentedToken, RefreshContext, RejectClass, RejectReason, Rejection, RejectionResponse,
    RequestBody, RotationLayer, RotationLayerBuilder, Route, StoreErrorResponse,
};
