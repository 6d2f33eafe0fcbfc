//! Model-based property test: the rules live in one Rust module (`token_core`'s `rules`),
//! which the memory store runs; the Redis store's Lua scripts must agree with it. Random
//! histories of register / adopt (of tokens never recorded, issued ones, adopted ones) /
//! rotate (current, replayed, repeated, spent and made-up tokens) /
//! deep rotation chains (past 1000 rotations) / bursts of logins (past the 64-session cap) /
//! revoke / revoke_family / revoke_all / revoke_client / list / cleanup / time passing run
//! against both stores, in both modes (family claim and token index), with families bound to
//! an OAuth 2.0 client or to none and tokens presented by the right client, another or none,
//! logins, adoptions and rotations with DPoP proofs by one of two keys or none (a proof sent
//! again now and then) under each DPoP policy of the layer (none: never a proof; optional;
//! required: every call proves a key, and a rotation binds an unbound family), and every
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

mod support;

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;
use support::{EXP, Mode};
use test_support::RedisServer;
use token_core::{
    Adoption, ClockOffset, FamilyId, KeyProof, MemoryStore, RedisStore, RotationOutcome,
    RotationStore, StoreConfig, StoreError, Successor, TokenRef,
};

const STEP: Duration = Duration::from_secs(90);
const USERS: [&str; 3] = ["u0", "u1", "u:{*}2"];
const CAP: u32 = 64;

fn config(clock: &ClockOffset, prefix: &str) -> StoreConfig {
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

fn tok(jti: &str) -> String {
    format!("jwt-for-{jti}")
}

#[derive(Clone, Debug)]
enum Op {
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

fn op() -> impl Strategy<Value = Op> {
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
enum Policy {
    /// No proofs at all.
    Disabled,
    /// Proofs when the client sends them.
    Optional,
    /// Every call with a proof; a rotation binds an unbound family (`KeyProof::binds`).
    Required,
}

/// The two stores side by side, and what the test (playing the app) handed out.
struct Pair {
    mode: Mode,
    policy: Policy,
    /// When each jti was minted (ms on the stores' clock; for a legacy token, its `iat`).
    minted: HashMap<String, i64>,
    /// When each user's sessions were last all revoked, and those of each client.
    revoked_all: Vec<Option<i64>>,
    revoked_client: HashMap<(usize, &'static str), i64>,
    /// The families that have rotated (memory ids).
    rotated: std::collections::HashSet<FamilyId>,
    memory: MemoryStore,
    redis: RedisStore,
    clock: ClockOffset,
    /// Every jti issued per user, in order, and the family its claim names (in the memory
    /// store's ids; `to_redis` maps them for the token-index mode, where each store draws
    /// its own random ids).
    issued: Vec<Vec<(String, FamilyId)>>,
    to_redis: HashMap<FamilyId, FamilyId>,
    /// The current token of each family (memory ids), for deep chains.
    current: HashMap<FamilyId, String>,
    last_rotation: Option<(usize, String, String)>,
    counter: usize,
    /// The client each family (memory ids) was issued to.
    clients: HashMap<FamilyId, Option<&'static str>>,
    /// The DPoP key each family (memory ids) was bound to at login, if any.
    keys: HashMap<FamilyId, Option<&'static str>>,
    /// The last DPoP proof id used, to send it again now and then.
    last_proof: String,
    /// A connection to the case's server, and the case's key prefix, to age its keys.
    conn: redis::aio::MultiplexedConnection,
    prefix: String,
}

/// Moves every key under `prefix` `by` closer to its expiry, as if that much time had passed
/// on Redis's clock: what would have expired is deleted. Asserts that every key has a TTL.
async fn age_keys(conn: &mut redis::aio::MultiplexedConnection, prefix: &str, by: Duration) {
    let by = by.as_millis() as i64;
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
            .unwrap();
        for key in keys {
            let left: i64 = redis::cmd("PTTL")
                .arg(&key)
                .query_async(conn)
                .await
                .unwrap();
            assert!(left != -1, "{key} has no TTL");
            if left < 0 {
                continue; // gone meanwhile
            }
            if left <= by {
                let _: i64 = redis::cmd("DEL").arg(&key).query_async(conn).await.unwrap();
            } else {
                let _: i64 = redis::cmd("PEXPIRE")
                    .arg(&key)
                    .arg(left - by)
                    .query_async(conn)
                    .await
                    .unwrap();
            }
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
}

fn token_ref<'a>(jti: &'a str, claim: &'a Option<FamilyId>) -> TokenRef<'a> {
    TokenRef {
        jti,
        family: claim.as_ref(),
        expires_at: *EXP,
        client: None,
        proof: None,
        issued_at: None,
    }
}

/// The OAuth 2.0 clients of the histories: logins are issued to one of them or to none.
const CLIENTS: [Option<&str>; 3] = [None, Some("app-a"), Some("app-b")];

/// The DPoP keys (thumbprints) logins and rotations prove, or none (a bearer request).
const KEYS: [Option<&str>; 3] = [None, Some("key-a"), Some("key-b")];

fn same<T: PartialEq + std::fmt::Debug>(what: &str, memory: T, redis: T) -> T {
    assert_eq!(
        memory, redis,
        "{what}: memory store (left) and Redis (right) disagree"
    );
    memory
}

impl Pair {
    fn now(&self) -> i64 {
        self.clock.now_millis()
    }

    /// The key a call proves, as the layer's policy lets it through: `wanted` under an
    /// optional policy, none when disabled, and under a required one a key always.
    fn policy_key(&self, wanted: Option<&'static str>, fallback: usize) -> Option<&'static str> {
        match self.policy {
            Policy::Disabled => None,
            Policy::Optional => wanted,
            Policy::Required => wanted.or(KEYS[1 + fallback % 2]),
        }
    }

    /// Whether a session the token `jti` of `family` opened has been ended by a revoke-all
    /// or a revoke of its client since the token was minted: then it must not live.
    fn revoked_since_minted(&self, u: usize, jti: &str, client: Option<&'static str>) -> bool {
        let Some(minted) = self.minted.get(jti) else {
            return false;
        };
        let after = |at: Option<&i64>| at.is_some_and(|at| *minted <= *at);
        after(self.revoked_all[u].as_ref())
            || client.is_some_and(|c| after(self.revoked_client.get(&(u, c))))
    }

    fn fresh_jti(&mut self) -> String {
        self.counter += 1;
        format!("j{}", self.counter)
    }

    /// A DPoP proof id for the next request: a fresh one, or now and then the last one
    /// again (a replayed proof, which both stores must refuse alike).
    fn proof_jti(&mut self) -> String {
        self.counter += 1;
        if !self.counter.is_multiple_of(13) || self.last_proof.is_empty() {
            self.last_proof = format!("p{}", self.counter);
        }
        self.last_proof.clone()
    }

    fn redis_family(&self, family: &FamilyId) -> FamilyId {
        self.to_redis
            .get(family)
            .cloned()
            .unwrap_or_else(|| family.clone())
    }

    /// A Redis outcome with its family id translated back to the memory store's.
    fn redis_to_memory(&self, outcome: RotationOutcome) -> RotationOutcome {
        let back = |f: FamilyId| {
            self.to_redis
                .iter()
                .find(|(_, r)| **r == f)
                .map_or(f.clone(), |(m, _)| m.clone())
        };
        match outcome {
            RotationOutcome::Rotated { family } => RotationOutcome::Rotated {
                family: back(family),
            },
            RotationOutcome::GraceReplay { family, successor } => RotationOutcome::GraceReplay {
                family: back(family),
                successor,
            },
            RotationOutcome::ReuseDetected { family } => RotationOutcome::ReuseDetected {
                family: back(family),
            },
            RotationOutcome::Revoked { family } => RotationOutcome::Revoked {
                family: back(family),
            },
            RotationOutcome::ReplayRefused { family } => RotationOutcome::ReplayRefused {
                family: back(family),
            },
            RotationOutcome::WrongClient { family } => RotationOutcome::WrongClient {
                family: back(family),
            },
            RotationOutcome::WrongKey { family } => RotationOutcome::WrongKey {
                family: back(family),
            },
            RotationOutcome::ProofReplayed => RotationOutcome::ProofReplayed,
            RotationOutcome::Unknown => RotationOutcome::Unknown,
        }
    }

    fn claim(&self, family: &FamilyId) -> Option<FamilyId> {
        (self.mode == Mode::FamilyClaim).then(|| family.clone())
    }

    async fn register(&mut self, u: usize) {
        let jti = self.fresh_jti();
        let sid = FamilyId::random();
        let claim = self.claim(&sid);
        let client = CLIENTS[self.counter % CLIENTS.len()];
        let key = self.policy_key(KEYS[(self.counter / 3) % KEYS.len()], self.counter);
        let proof_jti = self.proof_jti();
        let token = TokenRef {
            jti: &jti,
            family: claim.as_ref(),
            expires_at: *EXP,
            client,
            proof: key.map(|thumbprint| KeyProof {
                thumbprint,
                jti: &proof_jti,
                binds: false,
            }),
            issued_at: None,
        };
        let m = self.memory.register(USERS[u], token, None).await;
        let r = self.redis.register(USERS[u], token, None).await;
        let (m, r) = match (m, r) {
            (Ok(m), Ok(r)) => (m, r),
            (Err(StoreError::ProofReplayed), Err(StoreError::ProofReplayed)) => return,
            (m, r) => panic!("register {jti}: memory {m:?}, Redis {r:?}"),
        };
        if self.mode == Mode::FamilyClaim {
            assert_eq!((&m, &r), (&sid, &sid));
        } else {
            self.to_redis.insert(m.clone(), r);
        }
        self.current.insert(m.clone(), jti.clone());
        self.clients.insert(m.clone(), client);
        self.keys.insert(m.clone(), key);
        self.minted.insert(jti.clone(), self.now());
        self.issued[u].push((jti, m));
    }

    /// Adopts `jti` on both stores; `family` is the one its claim names (in family-claim
    /// mode). The family to start if the token is unknown is that claim, else a fresh id, as
    /// the layer picks it: the same on both stores.
    async fn adopt(&mut self, u: usize, jti: &str, family: &FamilyId) {
        let start = match self.mode {
            Mode::FamilyClaim => family.clone(),
            Mode::TokenIndex => FamilyId::random(),
        };
        let client = CLIENTS[self.counter % CLIENTS.len()];
        // A legacy token's iat: up to 10 minutes back (in whole seconds, as in a JWT), so
        // that some were issued before a revocation and some after.
        let iat = match self.minted.get(jti) {
            Some(minted) => minted.div_euclid(1000),
            None => {
                let iat = (self.now() - (self.counter as i64 * 7919) % 600_000).div_euclid(1000);
                self.minted.insert(jti.to_owned(), iat * 1000);
                iat
            }
        };
        let key = self.policy_key(KEYS[(self.counter / 5) % KEYS.len()], self.counter);
        let proof_jti = self.proof_jti();
        let proof = key.map(|thumbprint| KeyProof {
            thumbprint,
            jti: &proof_jti,
            binds: self.policy == Policy::Required,
        });
        let (m_claim, r_claim) = (self.claim(family), self.claim(&self.redis_family(family)));
        let m_ref = TokenRef {
            client,
            proof,
            ..token_ref(jti, &m_claim)
        }
        .issued_at(iat);
        let r_ref = TokenRef {
            client,
            proof,
            ..token_ref(jti, &r_claim)
        }
        .issued_at(iat);
        let m = self.memory.adopt(USERS[u], m_ref, &start, None).await;
        let r = self.redis.adopt(USERS[u], r_ref, &start, None).await;
        let back = |f: &FamilyId| {
            self.to_redis
                .iter()
                .find(|(_, r)| *r == f)
                .map_or(f.clone(), |(m, _)| m.clone())
        };
        let (m, r) = match (m, r) {
            (Ok(m), Ok(Adoption::Known { family })) => (
                m,
                Adoption::Known {
                    family: back(&family),
                },
            ),
            (Ok(m), Ok(r)) => (m, r),
            (Err(StoreError::DuplicateJti), Err(StoreError::DuplicateJti)) => return,
            (m, r) => panic!("adopt {jti}: memory {m:?}, Redis {r:?}"),
        };
        if let Adoption::Adopted { family } = same(&format!("adopt {jti}"), m, r) {
            assert!(
                !self.revoked_since_minted(u, jti, client),
                "adopt {jti}: a token issued before a revocation of its sessions was adopted"
            );
            self.current.insert(family.clone(), jti.to_owned());
            self.clients.insert(family.clone(), client);
            self.keys.insert(family.clone(), key);
            self.issued[u].push((jti.to_owned(), family));
        }
    }

    /// The client a family was issued to (none for a made-up one).
    fn owner(&self, family: &FamilyId) -> Option<&'static str> {
        self.clients.get(family).copied().flatten()
    }

    /// The DPoP key a family was bound to at login (none for a bearer or made-up one).
    fn owner_key(&self, family: &FamilyId) -> Option<&'static str> {
        self.keys.get(family).copied().flatten()
    }

    /// Rotates `presented` (a jti and the family its claim names) on both stores, presented
    /// by the family's own client with a proof by its own key (if bound).
    async fn rotate(
        &mut self,
        u: usize,
        presented: &str,
        family: &FamilyId,
        successor: &str,
    ) -> Result<RotationOutcome, String> {
        let client = self.owner(family);
        let key = self.owner_key(family);
        self.rotate_as(u, presented, family, client, key, successor)
            .await
    }

    /// Rotates `presented` on both stores, presented by `client` with a proof by `key` (if
    /// any).
    async fn rotate_as(
        &mut self,
        u: usize,
        presented: &str,
        family: &FamilyId,
        client: Option<&str>,
        key: Option<&'static str>,
        successor: &str,
    ) -> Result<RotationOutcome, String> {
        let key = self.policy_key(key, self.counter);
        let proof_jti = self.proof_jti();
        let proof = key.map(|thumbprint| KeyProof {
            thumbprint,
            jti: &proof_jti,
            binds: self.policy == Policy::Required,
        });
        let token = tok(successor);
        let next = Successor {
            jti: successor,
            token: &token,
            expires_at: *EXP,
        };
        let (m_claim, r_claim) = (self.claim(family), self.claim(&self.redis_family(family)));
        let (m_ref, r_ref) = (
            token_ref(presented, &m_claim),
            token_ref(presented, &r_claim),
        );
        let m = self
            .memory
            .rotate(
                USERS[u],
                TokenRef {
                    client,
                    proof,
                    ..m_ref
                },
                next,
            )
            .await;
        let r = self
            .redis
            .rotate(
                USERS[u],
                TokenRef {
                    client,
                    proof,
                    ..r_ref
                },
                next,
            )
            .await;
        let (m, r) = match (m, r) {
            (Ok(m), Ok(r)) => (m, self.redis_to_memory(r)),
            (Err(StoreError::DuplicateJti), Err(StoreError::DuplicateJti)) => {
                return Err("duplicate".into());
            }
            (m, r) => panic!("rotate {presented}: memory {m:?}, Redis {r:?}"),
        };
        let outcome = same(&format!("rotate {presented} -> {successor}"), m, r);
        if let RotationOutcome::Rotated { family: f }
        | RotationOutcome::GraceReplay { family: f, .. } = &outcome
        {
            assert!(
                !self.revoked_since_minted(u, presented, self.owner(f)),
                "rotate {presented}: a token issued before a revocation of its session lives"
            );
            if self.policy == Policy::Required {
                // Granted under a required policy: the family is bound to this very key,
                // bound now if it was not before (a bearer login or an adoption without a
                // proof), and to no other.
                let bound = self.keys.entry(f.clone()).or_insert(None);
                assert!(
                    bound.is_none() || *bound == key,
                    "rotate {presented}: granted to {key:?}, bound to {bound:?}"
                );
                *bound = key;
                self.rotated.insert(f.clone());
            }
        }
        if let RotationOutcome::Rotated { family: f } = &outcome
            && self.current.get(f).map(String::as_str) == Some(presented)
        {
            self.current.insert(f.clone(), successor.to_owned());
            self.minted.insert(successor.to_owned(), self.now());
            self.issued[u].push((successor.to_owned(), f.clone()));
        }
        self.last_rotation = Some((u, presented.to_owned(), successor.to_owned()));
        Ok(outcome)
    }

    async fn pick_family(&self, u: usize, pick: usize) -> Option<FamilyId> {
        let families: Vec<&FamilyId> = self.issued[u].iter().map(|(_, f)| f).collect();
        (!families.is_empty()).then(|| families[pick % families.len()].clone())
    }

    async fn apply(&mut self, op: &Op) {
        // Every operation at its own millisecond: sessions then never share an end, so the
        // eviction order at the cap never hangs on the tie-break by family id, which differs
        // between the stores in token-index mode (each draws its own random ids). With the
        // lifetimes above (idle 300 s, absolute 765 s) and `STEP` 90 s, an idle end meets an
        // absolute one only 465 s + k·90 s apart, 15 000 operations away.
        self.clock.advance(Duration::from_millis(1));
        match op {
            Op::Register(u) => self.register(*u).await,
            Op::Adopt(u, pick) => {
                let issued = &self.issued[*u];
                let (jti, family) = if issued.is_empty() || pick % 3 == 0 {
                    (self.fresh_jti(), FamilyId::random())
                } else {
                    issued[pick % issued.len()].clone()
                };
                self.adopt(*u, &jti, &family).await;
            }
            Op::Burst(u, n) => {
                for _ in 0..*n {
                    self.register(*u).await;
                    self.clock.advance(Duration::from_millis(1));
                }
            }
            Op::Rotate(u, pick) => {
                let issued = &self.issued[*u];
                let (presented, family) = if issued.is_empty() || pick % 7 == 0 {
                    ("never-issued".to_owned(), FamilyId::random())
                } else {
                    issued[pick % issued.len()].clone()
                };
                let successor = self.fresh_jti();
                // Mostly the family's own client; else none or either client, which may be
                // the owner by chance.
                let client = match (pick / 7) % 5 {
                    0 | 1 => self.owner(&family),
                    other => CLIENTS[other - 2],
                };
                // Likewise the family's own DPoP key, or none, or either key.
                let key = match (pick / 35) % 5 {
                    0 | 1 => self.owner_key(&family),
                    other => KEYS[other - 2],
                };
                let _ = self
                    .rotate_as(*u, &presented, &family, client, key, &successor)
                    .await;
            }
            Op::Repeat => {
                if let Some((u, presented, successor)) = self.last_rotation.clone() {
                    let family = self.issued[u]
                        .iter()
                        .find(|(jti, _)| *jti == presented)
                        .map_or_else(FamilyId::random, |(_, f)| f.clone());
                    let _ = self.rotate(u, &presented, &family, &successor).await;
                }
            }
            Op::Deep(u, pick, n) => {
                let Some(family) = self.pick_family(*u, *pick).await else {
                    return;
                };
                for _ in 0..*n {
                    let presented = self.current[&family].clone();
                    let successor = self.fresh_jti();
                    match self.rotate(*u, &presented, &family, &successor).await {
                        Ok(RotationOutcome::Rotated { .. }) => {}
                        _ => break,
                    }
                }
            }
            Op::Revoke(u, pick) => {
                let issued = &self.issued[*u];
                if issued.is_empty() {
                    return;
                }
                let (jti, family) = issued[pick % issued.len()].clone();
                let (m_claim, r_claim) =
                    (self.claim(&family), self.claim(&self.redis_family(&family)));
                let m = self.memory.revoke(USERS[*u], token_ref(&jti, &m_claim));
                let r = self.redis.revoke(USERS[*u], token_ref(&jti, &r_claim));
                let (m, r) = (m.await.unwrap(), r.await.unwrap());
                same("revoke", m.is_some(), r.is_some());
            }
            Op::RevokeFamily(u, pick) => {
                let Some(family) = self.pick_family(*u, *pick).await else {
                    return;
                };
                let m = self.memory.revoke_family(USERS[*u], &family).await.unwrap();
                let redis_family = self.redis_family(&family);
                let r = self
                    .redis
                    .revoke_family(USERS[*u], &redis_family)
                    .await
                    .unwrap();
                same("revoke_family", m, r);
            }
            Op::RevokeAll(u) => {
                let m = self.memory.revoke_all(USERS[*u]).await.unwrap();
                let r = self.redis.revoke_all(USERS[*u]).await.unwrap();
                same("revoke_all", m, r);
                self.revoked_all[*u] = Some(self.now());
            }
            Op::RevokeClient(u, c) => {
                let client = CLIENTS[*c].expect("a client");
                let m = self.memory.revoke_client(USERS[*u], client).await.unwrap();
                let r = self.redis.revoke_client(USERS[*u], client).await.unwrap();
                same("revoke_client", m, r);
                self.revoked_client.insert((*u, client), self.now());
            }
            Op::ProbeBinding(u, pick) => {
                if self.policy != Policy::Required {
                    return;
                }
                let mut families: Vec<FamilyId> = self
                    .rotated
                    .iter()
                    .filter(|f| self.issued[*u].iter().any(|(_, g)| g == *f))
                    .cloned()
                    .collect();
                if families.is_empty() {
                    return;
                }
                families.sort_by(|a, b| a.as_str().cmp(b.as_str()));
                let family = families[pick % families.len()].clone();
                let bound = self.owner_key(&family).expect("a rotated family is bound");
                let other = if bound == "key-a" { "key-b" } else { "key-a" };
                let presented = self.current[&family].clone();
                let successor = self.fresh_jti();
                let client = self.owner(&family);
                if let Ok(outcome) = self
                    .rotate_as(*u, &presented, &family, client, Some(other), &successor)
                    .await
                {
                    assert!(
                        matches!(
                            outcome,
                            RotationOutcome::WrongKey { .. }
                                | RotationOutcome::Revoked { .. }
                                | RotationOutcome::Unknown
                                | RotationOutcome::ProofReplayed
                        ),
                        "another key presented the current token of a family bound to \
                         {bound}: {outcome:?}"
                    );
                }
            }
            Op::List(u) => {
                let issued = &self.issued[*u];
                // The store names no jti, but tells whether one is current.
                let current = |s: &token_core::SessionInfo| {
                    issued
                        .iter()
                        .map(|(jti, _)| jti.clone())
                        .find(|jti| s.is_current(jti))
                };
                let view = |sessions: Vec<token_core::SessionInfo>| {
                    let mut view: Vec<(Option<String>, i64, i64)> = sessions
                        .into_iter()
                        .map(|s| {
                            (
                                current(&s),
                                s.created_at.timestamp_millis(),
                                s.expires_at.timestamp_millis(),
                            )
                        })
                        .collect();
                    view.sort();
                    view
                };
                let m = view(self.memory.list(USERS[*u]).await.unwrap());
                let r = view(self.redis.list(USERS[*u]).await.unwrap());
                let listed = same("list", m, r);
                assert!(
                    listed.len() <= CAP as usize,
                    "the cap holds: {}",
                    listed.len()
                );
            }
            Op::Advance(steps) => {
                let by = STEP * u32::from(*steps);
                self.clock.advance(by);
                age_keys(&mut self.conn, &self.prefix, by).await;
            }
            Op::Cleanup => {
                let m = self.memory.cleanup_expired().await.unwrap();
                let r = self.redis.cleanup_expired().await.unwrap();
                same("cleanup_expired", m, r);
            }
        }
    }
}

async fn check(server: &RedisServer, case: usize, mode: Mode, policy: Policy, ops: &[Op]) {
    let clock = ClockOffset::frozen();
    let prefix = format!("model{case}:");
    let redis = RedisStore::open(&server.url(), config(&clock, &prefix)).unwrap();
    let conn = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut pair = Pair {
        conn,
        prefix: prefix.clone(),
        mode,
        policy,
        minted: HashMap::new(),
        revoked_all: vec![None; USERS.len()],
        revoked_client: HashMap::new(),
        rotated: Default::default(),
        memory: MemoryStore::new(config(&clock, &prefix)),
        redis,
        clock,
        issued: vec![Vec::new(); USERS.len()],
        to_redis: HashMap::new(),
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

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn redis_store_agrees_with_the_rules() {
    let server = RedisServer::start();
    let runtime = runtime();
    let case = std::sync::atomic::AtomicUsize::new(0);
    let config = ProptestConfig {
        cases: 48,
        ..ProptestConfig::default()
    };
    let policies = [Policy::Disabled, Policy::Optional, Policy::Required];
    proptest!(config, |(ops in proptest::collection::vec(op(), 1..60), claim in any::<bool>(), policy in 0..3usize)| {
        let n = case.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mode = if claim { Mode::FamilyClaim } else { Mode::TokenIndex };
        runtime.block_on(check(&server, n, mode, policies[policy], &ops));
    });
}
