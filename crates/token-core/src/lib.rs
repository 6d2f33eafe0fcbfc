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
//!   kept for grace replay are sealed with AES-256-GCM-SIV ([`SealingKey`]).
//! - [`MemoryStore`]: the same in process memory, for tests and single-instance apps.
//!
//! # Two ways to find a token's family
//!
//! - **Family claim** (recommended): the app puts the family id in every refresh token (a
//!   claim such as `sid`, picked at login with [`FamilyId::random`] and copied into each
//!   successor) and passes it in [`TokenRef::family`]. The store then keeps one small record
//!   per session, whatever its number of rotations, and recognises any older token of a
//!   family as spent: reuse is detected however many rotations ago the token was spent.
//! - **Token index**: without a claim, the store maps the digest of every recorded jti to
//!   its family and remembers it until the token expires ([`TokenRef::expires_at`]) or its
//!   family ends, whichever comes first (see `BENCHMARKS.md` for the bytes it costs).
//!
//! # Key schema
//!
//! ```text
//! <prefix>{u<base64url(user)>}:s            hash of the user's sessions: family id →
//!                                           packed record (≤ 64 bytes), 0xFF family id →
//!                                           metadata (and the OAuth client id, if any);
//!                                           TTL = the latest family end
//! <prefix>{u<base64url(user)>}:g:<family>   sealed successor of the family's latest
//!                                           rotation; TTL = the grace window
//! <prefix>{u<base64url(user)>}:t:<hour>     token index (no family claim): jti digest →
//!                                           family, for tokens expiring in that hour
//!                                           (past 16 entries, in `:t:<hour>:<00-3f>`)
//! <prefix>{u<base64url(user)>}:a            adoption record: jti digest → family of each
//!                                           token taken in by `adopt`; TTL = the latest
//!                                           of those tokens' expiries, plus an hour or two
//! ```
//!
//! Ended families are pruned lazily (on login, revoke-all and cleanup), and are gone
//! for every operation from the moment they end. Each operation is one function of a Redis
//! Functions library (`FCALL`, loaded once per server) touching a fixed number of these
//! keys; a rotation costs Redis the same for a user with one session or sixty-four, and for
//! a family rotated once or a thousand times. `docs/ARCHITECTURE.md` walks through it.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use token_core::{
//!     FamilyId, MemoryStore, RotationOutcome, RotationStore, StoreConfig, Successor, TokenRef,
//! };
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = MemoryStore::new(StoreConfig::default().grace(Duration::from_secs(5)));
//! let exp = 1_900_000_000; // the tokens' `exp` claim
//! // At login the app picks the family id and puts it in the token (its `sid` claim, say).
//! let sid = FamilyId::random();
//! let t1 = TokenRef::new("t1", exp).in_family(&sid);
//! let family = store.register("alice", t1, Some("Firefox")).await?;
//! assert_eq!(family, sid);
//!
//! let next = Successor { jti: "t2", token: "<refresh jwt t2>", expires_at: exp };
//! assert_eq!(store.rotate("alice", t1, next).await?, RotationOutcome::Rotated { family: family.clone() });
//!
//! // A retry inside the grace window gets the same successor back.
//! let other = Successor { jti: "t2b", token: "<other>", expires_at: exp };
//! let retry = store.rotate("alice", t1, other).await?;
//! assert_eq!(retry, RotationOutcome::GraceReplay { family: family.clone(), successor: "<refresh jwt t2>".into() });
//! # Ok::<_, token_core::StoreError>(())
//! # }).unwrap();
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

/// The crate README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(feature = "redis")]
mod any;
mod config;
mod digest;
mod error;
mod keys;
#[cfg(feature = "kit")]
#[cfg_attr(docsrs, doc(cfg(feature = "kit")))]
pub mod kit;
mod memory;
mod outcome;
#[cfg(feature = "redis")]
mod redis;
mod rules;
mod seal;
mod store;

#[cfg(feature = "redis")]
pub use crate::any::AnyStore;
#[cfg(feature = "test-util")]
pub use crate::config::ClockOffset;
pub use crate::config::{DEFAULT_GRACE_REPLAYS, DEFAULT_RETRY_WINDOW, ReplicaAck, StoreConfig};
pub use crate::error::StoreError;
pub use crate::memory::MemoryStore;
pub use crate::outcome::{
    Adoption, AdoptionRefusal, FamilyId, RotationEvent, RotationEventKind, RotationOutcome,
    SessionInfo,
};
#[cfg(feature = "redis")]
pub use crate::redis::admin;
#[cfg(feature = "redis")]
pub use crate::redis::{ConnectionSource, RedisAuth, RedisStore};
pub use crate::rules::MAX_EXPIRES_AT;
pub use crate::seal::SealingKey;
pub use crate::store::{
    KeyProof, MAX_METADATA_LEN, PROOF_JTI_LIFETIME, RotationStore, Successor, TokenRef,
};
