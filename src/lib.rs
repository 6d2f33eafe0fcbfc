//! Enforced refresh-token rotation for Tower, Axum and Hyper apps, backed by Redis.
//!
//! The everyday items of the two crates of the workspace are here, flat:
//!
//! - the store (`token-core`): [`RedisStore`], [`MemoryStore`], [`AnyStore`] (either, chosen
//!   at run time), [`StoreConfig`], [`SealingKey`], and the [`RotationStore`] trait;
//! - the layer (`token-tower`): [`RotationLayer`] in front of an existing app, and the
//!   [`RefreshContext`] its refresh handler reads.
//!
//! The whole of each crate is at [`token_core`] and [`token_tower`]. The layer takes
//! [`jsonwebtoken`] 11 keys and algorithms: use the re-exported [`jsonwebtoken`] so your app
//! and the layer agree on one version of it.
//!
//! See the README for a quick start and `examples/` for an Axum and a plain Hyper app.
//!
//! # Features
//!
//! - `redis` (default): the Redis store ([`RedisStore`], [`ConnectionSource`], [`AnyStore`]).
//!   Without it only [`MemoryStore`] is built, and neither redis nor its dependencies.
//! - `bb8`: bb8 pools as Redis connection sources.
//! - `metrics`: counters and a latency histogram through the `metrics` facade.
//! - `test-util`: `ClockOffset` and `StoreConfig::clock`, to let lifetimes pass in tests.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use token_core;
#[cfg(feature = "test-util")]
pub use token_core::ClockOffset;
#[cfg(feature = "redis")]
pub use token_core::{AnyStore, ConnectionSource, RedisStore};
pub use token_core::{
    FamilyId, MemoryStore, RotationOutcome, RotationStore, SealingKey, SessionInfo, StoreConfig,
    StoreError, Successor, TokenRef,
};
pub use token_tower;
pub use token_tower::jsonwebtoken;
pub use token_tower::{
    ClientId, IssuedToken, LayerEvent, LayerEventKind, PresentedToken, RefreshContext,
    RejectReason, RequestBody, RotationLayer, RotationLayerBuilder, Route,
};
