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
#![forbid(unsafe_code)]

pub use token_core;
pub use token_core::{
    AnyStore, ConnectionSource, FamilyId, MemoryStore, RedisStore, RotationOutcome, RotationStore,
    SealingKey, SessionInfo, StoreConfig, StoreError, Successor, TokenRef,
};
pub use token_tower;
pub use token_tower::jsonwebtoken;
pub use token_tower::{
    ClientId, IssuedToken, LayerEvent, LayerEventKind, PresentedToken, RefreshContext,
    RejectReason, RequestBody, RotationLayer, RotationLayerBuilder, Route,
};

// The crates under their former names, kept hidden until every caller in this repository
// moved to the flat items: as public names they shadowed `core` and the `tower` crate in
// code that glob-imports this one.
#[doc(hidden)]
pub use token_core as core;
#[doc(hidden)]
pub use token_tower as tower;
