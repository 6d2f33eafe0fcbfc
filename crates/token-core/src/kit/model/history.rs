//! What a history is made of: the kit that makes the store under test, the operations, the
//! DPoP policy, and the configuration both stores share.

use std::future::Future;
use std::time::Duration;

use proptest::prelude::*;

use crate::{ClockOffset, RotationStore, StoreConfig};

/// Makes the store under test for each case of the model test.
pub trait ModelKit: Sync {
    /// The store under test.
    type Store: RotationStore;

    /// A store for one case, empty under `config`'s key prefix (the case's own), reading
    /// `config`'s clock (the case's, which the test moves).
    fn store(&self, config: StoreConfig) -> impl Future<Output = Self::Store> + Send;

    /// Lets `by` pass on the backend's own clock for everything stored under `prefix`, for a
    /// backend that expires data by itself (Redis's TTLs): each key `by` closer to its end,
    /// gone if that passes it. The default does nothing: right for a backend that decides
    /// every expiry by the store's clock.
    fn age(
        &self,
        store: &Self::Store,
        prefix: &str,
        by: Duration,
    ) -> impl Future<Output = ()> + Send {
        let _ = (store, prefix, by);
        async {}
    }
}

pub(super) const STEP: Duration = Duration::from_secs(90);
pub(super) const USERS: [&str; 3] = ["u0", "u1", "u:{*}2"];
pub(super) const CAP: u32 = 64;

pub(super) fn config(clock: &ClockOffset, prefix: &str) -> StoreConfig {
    StoreConfig::default()
        .key_prefix(prefix)
        .grace(Duration::from_secs(60))
        .retry_window(Duration::from_secs(150))
        .idle_lifetime(Duration::from_secs(300))
        .absolute_lifetime(Duration::from_secs(765))
        .max_grace_replays(Some(2))
        .max_sessions_per_user(Some(CAP))
        // Generous: on two busy cores a call was seen to take longer than the default
        // 500 ms, and this test compares answers, not latency.
        .timeout(Duration::from_secs(5))
        .clock(clock.clone())
}

pub(super) fn tok(jti: &str) -> String {
    format!("jwt-for-{jti}")
}

#[derive(Clone, Debug)]
pub(super) enum Op {
    Register(usize),
    /// Adopt a token picked among every jti the user was given, or one never recorded.
    Adopt(usize, usize),
    /// Logins in a row (enough to reach the session cap).
    Burst(usize, u8),
    /// Rotate a token picked among every jti the user was given (or one never issued),
    /// presented by its family's client, by none, or by another.
    Rotate(usize, usize),
    /// The last rotation sent again, as after a lost reply.
    Repeat,
    /// Rotate the current token of a family this many times.
    Deep(usize, usize, u16),
    Revoke(usize, usize),
    RevokeFamily(usize, usize),
    RevokeAll(usize),
    /// Revoke every session of the user issued to one of the clients.
    RevokeClient(usize, usize),
    /// Present the current token of a family that has rotated with a proof by a key it is
    /// not bound to (under a required DPoP policy).
    ProbeBinding(usize, usize),
    List(usize),
    Advance(u8),
    Cleanup,
}

pub(super) fn op() -> impl Strategy<Value = Op> {
    let user = 0..USERS.len();
    prop_oneof![
        3 => user.clone().prop_map(Op::Register),
        2 => (user.clone(), any::<usize>()).prop_map(|(u, p)| Op::Adopt(u, p)),
        1 => (user.clone(), 1u8..70).prop_map(|(u, n)| Op::Burst(u, n)),
        8 => (user.clone(), any::<usize>()).prop_map(|(u, p)| Op::Rotate(u, p)),
        1 => Just(Op::Repeat),
        1 => (user.clone(), any::<usize>(), 1u16..1200).prop_map(|(u, f, n)| Op::Deep(u, f, n)),
        1 => (user.clone(), any::<usize>()).prop_map(|(u, p)| Op::Revoke(u, p)),
        1 => (user.clone(), any::<usize>()).prop_map(|(u, p)| Op::RevokeFamily(u, p)),
        1 => user.clone().prop_map(Op::RevokeAll),
        1 => (user.clone(), 1usize..3).prop_map(|(u, c)| Op::RevokeClient(u, c)),
        1 => (user.clone(), any::<usize>()).prop_map(|(u, p)| Op::ProbeBinding(u, p)),
        2 => user.prop_map(Op::List),
        3 => (0u8..5).prop_map(Op::Advance),
        1 => Just(Op::Cleanup),
    ]
}

/// The layer's DPoP policy a history plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Policy {
    /// No proofs at all.
    Disabled,
    /// Proofs when the client sends them.
    Optional,
    /// Every call with a proof; a rotation binds an unbound family (`KeyProof::binds`).
    Required,
    /// Keys proven without a single-use id, as client certificates are (RFC 8705): when the
    /// client has one, as under `Optional`, and nothing spent for it.
    Certificate,
}
