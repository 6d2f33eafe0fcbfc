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
//! The items of the quick start and the integration guide are here, at the root:
//!
//! - the store (`token-core`): [`RedisStore`], [`MemoryStore`], [`AnyStore`] (either, chosen
//!   at run time), [`ConnectionSource`], [`StoreConfig`], [`SealingKey`], the
//!   [`RotationStore`] trait and its [`StoreError`], [`FamilyId`] and [`SessionInfo`];
//! - the layer (`token-tower`): [`RotationLayer`] and its [`RotationLayerBuilder`] in front of
//!   an existing app, the [`RefreshContext`] its refresh handler reads, the [`IssuedToken`]
//!   and [`PresentedToken`] readers a [`Route`] takes, [`BuildError`] from `build`, and the
//!   refusals, [`Rejection`] and its [`RejectReason`].
//!
//! The rest lives in modules, one per concern: [`dpop`] (sessions bound to a key),
//! [`mtls`] (a TLS client certificate's thumbprint and where it is read from),
//! [`oauth`] (introspection and the token endpoint's client), [`reply`] (customising the
//! layer's answers), [`events`] (what the layer observed), [`metrics`] (the metric names and
//! labels), [`admin`] (finding and cleaning the store's keys) and [`store`] (what a store and
//! its callers exchange). The whole of each crate is at [`token_core`] and [`token_tower`].
//! The layer takes [`jsonwebtoken`] 11 keys and algorithms: use the re-exported
//! [`jsonwebtoken`] so your app and the layer agree on one version of it.
//!
//! The [`guides`] take it from there: [integrating](guides::integrating) the layer into an
//! existing app and configuring it, [OAuth 2.0 servers](guides::oauth), [DPoP](guides::dpop),
//! [the sessions page](guides::sessions_page), [operating](guides::operating) the store in
//! production, and [upgrading](guides::upgrading). `examples/` in the repository holds an
//! Axum and a plain Hyper app.
//!
//! # Features
//!
//! - `redis` (default): the Redis store ([`RedisStore`], [`ConnectionSource`], [`RedisAuth`](store::RedisAuth),
//!   [`AnyStore`]).
//!   Without it only [`MemoryStore`] is built, and neither redis nor its dependencies.
//! - `bb8`: bb8 pools as Redis connection sources.
//! - `metrics`: counters and a latency histogram through the `metrics` facade.
//! - `test-util`: [`store::ClockOffset`] and `StoreConfig::clock`, to let lifetimes pass in tests.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

/// The guides: integrating, OAuth 2.0, DPoP, the sessions page, operating, upgrading.
pub mod guides;

pub use token_core;
pub use token_tower;
pub use token_tower::jsonwebtoken;

#[cfg(feature = "redis")]
pub use token_core::{AnyStore, ConnectionSource, RedisStore};
pub use token_core::{
    FamilyId, MemoryStore, RotationStore, SealingKey, SessionInfo, StoreConfig, StoreError,
};
pub use token_tower::{
    BuildError, IssuedToken, PresentedToken, RefreshContext, RejectReason, Rejection,
    RotationLayer, RotationLayerBuilder, Route,
};

/// Sessions bound to a key (DPoP, RFC 9449): the layer's configuration, the key a verified
/// proof carries, and the store's side of a proof.
pub mod dpop {
    pub use token_core::{KeyProof, PROOF_JTI_LIFETIME};
    pub use token_tower::{
        DpopConfig, DpopKey, DpopNonces, DpopPolicy, InvalidOrigin, JwkThumbprintError,
        jwk_thumbprint,
    };
}

/// Certificate-bound sessions (RFC 8705): a TLS client certificate's `x5t#S256` thumbprint,
/// and the certificate read from the connection or from a trusted proxy's `Client-Cert`
/// header (RFC 9440).
pub mod mtls {
    pub use token_tower::{
        CLIENT_CERT, ClientCertError, MAX_CLIENT_CERT_LEN, PeerCertificate, TrustedProxies,
        certificate_thumbprint, client_cert_header,
    };
}

/// OAuth 2.0 servers: RFC 7662 introspection and the client a token endpoint authenticated.
pub mod oauth {
    pub use token_tower::{ClientId, Introspection, IntrospectionResponse};
}

/// Customising the layer's answers: refusals by class, store errors in the app's own
/// handlers, and the bodies the layer reads and writes.
pub mod reply {
    pub use token_tower::{
        MissingRefreshContext, RejectClass, RejectionResponse, RequestBody, ResponseBody,
        StoreErrorResponse,
    };
}

/// What the layer and the store observed: the layer's events and the store's rotation
/// events, for audit lines and alerts.
pub mod events {
    pub use token_core::{RotationEvent, RotationEventKind};
    pub use token_tower::{LayerEvent, LayerEventKind};
}

pub use token_tower::metrics;

#[cfg(feature = "redis")]
pub use token_core::admin;

/// What a store and its callers exchange: the presented token, the successor, the outcome
/// of a rotation, adoption of tokens minted before the layer, and the store's limits.
pub mod store {
    #[cfg(feature = "test-util")]
    pub use token_core::ClockOffset;
    #[cfg(feature = "redis")]
    pub use token_core::RedisAuth;
    pub use token_core::{
        Adoption, AdoptionRefusal, DEFAULT_GRACE_REPLAYS, DEFAULT_RETRY_WINDOW, MAX_EXPIRES_AT,
        MAX_METADATA_LEN, ReplicaAck, RotationOutcome, Successor, TokenRef,
    };
}
