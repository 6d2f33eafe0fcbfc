//! The store behind enforced refresh-token rotation.
//!
//! An app mints refresh tokens; this crate records them and decides, atomically, what each
//! presented token is worth: [`RotationStore::rotate`] spends it and records its successor,
//! hands the same successor back to a retry inside a short grace window, or detects reuse
//! of a spent token and revokes its whole family (session). The rotation state machine is
//! [`RotationOutcome`] plus the Lua scripts in `src/redis/scripts`.
//!
//! Two stores implement [`RotationStore`] with the same semantics:
//!
//! - [`RedisStore`]: one Lua script per operation, one round trip, Redis server time, one
//!   hash tag per user (runs on Redis Cluster), a TTL on every key, no `KEYS`. Successors
//!   kept for grace replay are sealed with XChaCha20-Poly1305 ([`SealingKey`]).
//! - [`MemoryStore`]: the same in process memory, for tests and single-instance apps.
//!
//! # Key schema
//!
//! ```text
//! <prefix>{u<base64url(user)>}              one msgpack record per user: every family
//!                                           (current jti, digests of spent jtis, times,
//!                                           revoked flag, metadata); TTL = latest end
//! <prefix>{u<base64url(user)>}:g:<digest>   sealed successor of a just-rotated token;
//!                                           TTL = the grace window
//! ```
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use token_core::{MemoryStore, RotationOutcome, RotationStore, StoreConfig, Successor};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = MemoryStore::new(StoreConfig::default().grace(Duration::from_secs(5)));
//! let family = store.register("alice", "t1", Some("Firefox")).await?;
//!
//! let next = Successor { jti: "t2", token: "<refresh jwt t2>" };
//! assert_eq!(store.rotate("alice", "t1", next).await?, RotationOutcome::Rotated { family: family.clone() });
//!
//! // A retry inside the grace window gets the same successor back.
//! let retry = store.rotate("alice", "t1", Successor { jti: "t2b", token: "<other>" }).await?;
//! assert_eq!(retry, RotationOutcome::GraceReplay { family: family.clone(), successor: "<refresh jwt t2>".into() });
//! # Ok::<_, token_core::StoreError>(())
//! # }).unwrap();
//! ```
#![forbid(unsafe_code)]

pub mod admin;
mod config;
mod error;
mod keys;
mod memory;
mod outcome;
mod redis;
mod seal;
mod store;

pub use crate::config::{ClockOffset, ReplicaAck, StoreConfig};
pub use crate::error::StoreError;
pub use crate::memory::MemoryStore;
pub use crate::outcome::{
    FamilyId, RotationEvent, RotationEventKind, RotationOutcome, SessionInfo,
};
pub use crate::redis::{Checked, CheckedConnection, ConnectionSource, RedisStore};
pub use crate::seal::SealingKey;
pub use crate::store::{MAX_METADATA_LEN, RotationStore, Successor};

/// Re-exported so callers can build a [`ConnectionSource`] from a `redis` type without
/// depending on a second, possibly mismatched, copy of the crate.
pub use ::redis as redis_crate;
