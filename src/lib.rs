//! Enforced refresh-token rotation for Tower, Axum and Hyper apps, backed by Redis.
//!
//! This facade re-exports the two crates of the workspace:
//!
//! - [`core`] (`token-core`): the rotation store, [`core::RedisStore`] and
//!   [`core::MemoryStore`];
//! - [`tower`] (`token-tower`): the [`tower::RotationLayer`] that enforces rotation in
//!   front of an existing app.
//!
//! See the README for a quick start and `examples/` for an Axum and a plain Hyper app.
#![forbid(unsafe_code)]

pub use token_core as core;
pub use token_tower as tower;
