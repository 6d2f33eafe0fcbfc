//! The model test: the rules live in one Rust module, which the memory store runs; any
//! other store (the Redis store's Lua scripts, a store on another backend) must agree with it. Random
//! histories of register / adopt (of tokens never recorded, issued ones, adopted ones) /
//! rotate (current, replayed, repeated, spent and made-up tokens) /
//! deep rotation chains (past 1000 rotations) / bursts of logins (past the 64-session cap) /
//! revoke / revoke_family / revoke_all / revoke_client / list / cleanup / time passing run
//! against the memory store and the store under test, in both modes (family claim and token index), with families bound to
//! an OAuth 2.0 client or to none and tokens presented by the right client, another or none,
//! logins, adoptions and rotations with DPoP proofs by one of two keys or none (a proof sent
//! again now and then) under each DPoP policy of the layer (none: never a proof; optional;
//! required: every call proves a key, and a rotation binds an unbound family; certificate:
//! keys proven without a single-use id, as client certificates are), and every
//! answer must match.
//!
//! Beside agreement, the histories check the seams between the ways into a session and the
//! ways out of it:
//! - after a revoke-all at T (or a revoke of a client's sessions at T), no token issued
//!   before T (to that client), recorded or adopted, yields a live session: no rotation,
//!   no replay, no adoption;
//! - under a required DPoP policy, every family that has rotated is bound to exactly one
//!   key: the rotation is granted only to the key it is bound to, and another key is
//!   refused.
//!
//! Both stores run on one clock (`ClockOffset::frozen`) that the test moves, in steps of 90 s
//! against windows of 60 s (grace), 150 s (retry), 300 s (idle) and 765 s (absolute): no
//! real millisecond can tip a comparison. Redis's TTLs run on its own clock, so each step also ages every key
//! of the case by as much (`PEXPIRE` to what is left, `DEL` once nothing is): keys expire
//! as they would had the time really passed, and the memory store, which keeps the same
//! expiries, must still give every answer Redis gives. Every key must carry a TTL.

//!
//! [`agrees_with_the_rules`] runs it for a [`ModelKit`]; the crate's Redis store runs exactly
//! this (`tests/model.rs`).

use std::collections::HashMap;

use proptest::prelude::*;

pub use self::history::ModelKit;
use self::history::{Op, Policy, USERS, config, op};
use self::pair::Pair;
use crate::kit::Mode;
use crate::{ClockOffset, MemoryStore};

mod history;
mod pair;

/// Runs `cases` random histories against the memory store and `kit`'s store side by side,
/// in both modes and under each DPoP policy, and panics at the first answer they disagree
/// on (or a seam a history breaks), with the shrunk history.
pub fn agrees_with_the_rules<K: ModelKit>(kit: &K, cases: u32) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let case = std::sync::atomic::AtomicUsize::new(0);
    let config = ProptestConfig {
        cases,
        ..ProptestConfig::default()
    };
    let policies = [
        Policy::Disabled,
        Policy::Optional,
        Policy::Required,
        Policy::Certificate,
    ];
    proptest!(config, |(ops in proptest::collection::vec(op(), 1..60), claim in any::<bool>(), policy in 0..policies.len())| {
        let n = case.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mode = if claim { Mode::FamilyClaim } else { Mode::TokenIndex };
        runtime.block_on(check(kit, n, mode, policies[policy], &ops));
    });
}

async fn check<K: ModelKit>(kit: &K, case: usize, mode: Mode, policy: Policy, ops: &[Op]) {
    let clock = ClockOffset::frozen();
    let prefix = format!("model{case}:");
    let other = kit.store(config(&clock, &prefix)).await;
    let mut pair = Pair {
        kit,
        prefix: prefix.clone(),
        mode,
        policy,
        minted: HashMap::new(),
        revoked_all: vec![None; USERS.len()],
        revoked_client: HashMap::new(),
        rotated: Default::default(),
        memory: MemoryStore::new(config(&clock, &prefix)),
        other,
        clock,
        issued: vec![Vec::new(); USERS.len()],
        to_other: HashMap::new(),
        current: HashMap::new(),
        last_rotation: None,
        counter: 0,
        clients: HashMap::new(),
        keys: HashMap::new(),
        last_proof: String::new(),
    };
    for op in ops {
        pair.apply(op).await;
    }
}
