//! The two stores side by side, and what the test (playing the app) handed out.

use std::collections::HashMap;
use std::time::Duration;

use super::history::{CAP, ModelKit, Op, Policy, STEP, USERS, tok};
use crate::kit::{EXP, Mode};
use crate::{
    Adoption, ClockOffset, FamilyId, KeyProof, MemoryStore, RotationOutcome, RotationStore,
    StoreError, Successor, TokenRef,
};

/// The two stores side by side, and what the test (playing the app) handed out.
pub(super) struct Pair<'k, K: ModelKit> {
    pub(super) mode: Mode,
    pub(super) policy: Policy,
    /// When each jti was minted (ms on the stores' clock; for a legacy token, its `iat`).
    pub(super) minted: HashMap<String, i64>,
    /// When each user's sessions were last all revoked, and those of each client.
    pub(super) revoked_all: Vec<Option<i64>>,
    pub(super) revoked_client: HashMap<(usize, &'static str), i64>,
    /// The families that have rotated (memory ids).
    pub(super) rotated: std::collections::HashSet<FamilyId>,
    pub(super) memory: MemoryStore,
    pub(super) other: K::Store,
    pub(super) clock: ClockOffset,
    /// Every jti issued per user, in order, and the family its claim names (in the memory
    /// store's ids; `to_other` maps them for the token-index mode, where each store draws
    /// its own random ids).
    pub(super) issued: Vec<Vec<(String, FamilyId)>>,
    pub(super) to_other: HashMap<FamilyId, FamilyId>,
    /// The current token of each family (memory ids), for deep chains.
    pub(super) current: HashMap<FamilyId, String>,
    pub(super) last_rotation: Option<(usize, String, String)>,
    pub(super) counter: usize,
    /// The client each family (memory ids) was issued to.
    pub(super) clients: HashMap<FamilyId, Option<&'static str>>,
    /// The DPoP key each family (memory ids) was bound to at login, if any.
    pub(super) keys: HashMap<FamilyId, Option<&'static str>>,
    /// The last DPoP proof id used, to send it again now and then.
    pub(super) last_proof: String,
    /// The kit, and the case's key prefix, to age its keys.
    pub(super) kit: &'k K,
    pub(super) prefix: String,
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
        "{what}: the memory store (left) and the store under test (right) disagree"
    );
    memory
}

impl<K: ModelKit> Pair<'_, K> {
    fn now(&self) -> i64 {
        self.clock.now_millis()
    }

    /// The key a call proves, as the layer's policy lets it through: `wanted` under an
    /// optional policy, none when disabled, and under a required one a key always.
    fn policy_key(&self, wanted: Option<&'static str>, fallback: usize) -> Option<&'static str> {
        match self.policy {
            Policy::Disabled => None,
            Policy::Optional | Policy::Certificate => wanted,
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

    /// The proof id a call sends under the history's policy: none for a certificate.
    fn single_use<'a>(&self, id: &'a str) -> Option<&'a str> {
        (self.policy != Policy::Certificate).then_some(id)
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

    fn other_family(&self, family: &FamilyId) -> FamilyId {
        self.to_other
            .get(family)
            .cloned()
            .unwrap_or_else(|| family.clone())
    }

    /// An outcome of the store under test with its family id translated back to the memory store's.
    fn other_to_memory(&self, outcome: RotationOutcome) -> RotationOutcome {
        let back = |f: FamilyId| {
            self.to_other
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
        let proof_jti = self.single_use(&proof_jti);
        let token = TokenRef {
            jti: &jti,
            family: claim.as_ref(),
            expires_at: *EXP,
            client,
            proof: key.map(|thumbprint| KeyProof {
                thumbprint,
                jti: proof_jti,
                binds: false,
            }),
            issued_at: None,
        };
        let m = self.memory.register(USERS[u], token, None).await;
        let r = self.other.register(USERS[u], token, None).await;
        let (m, r) = match (m, r) {
            (Ok(m), Ok(r)) => (m, r),
            (Err(StoreError::ProofReplayed), Err(StoreError::ProofReplayed)) => return,
            (m, r) => panic!("register {jti}: memory {m:?}, the store under test {r:?}"),
        };
        if self.mode == Mode::FamilyClaim {
            assert_eq!((&m, &r), (&sid, &sid));
        } else {
            self.to_other.insert(m.clone(), r);
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
        let proof_jti = self.single_use(&proof_jti);
        let proof = key.map(|thumbprint| KeyProof {
            thumbprint,
            jti: proof_jti,
            binds: self.policy == Policy::Required,
        });
        let (m_claim, r_claim) = (self.claim(family), self.claim(&self.other_family(family)));
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
        let r = self.other.adopt(USERS[u], r_ref, &start, None).await;
        let back = |f: &FamilyId| {
            self.to_other
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
            (m, r) => panic!("adopt {jti}: memory {m:?}, the store under test {r:?}"),
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
        let proof_jti = self.single_use(&proof_jti);
        let proof = key.map(|thumbprint| KeyProof {
            thumbprint,
            jti: proof_jti,
            binds: self.policy == Policy::Required,
        });
        let token = tok(successor);
        let next = Successor {
            jti: successor,
            token: &token,
            expires_at: *EXP,
        };
        let (m_claim, r_claim) = (self.claim(family), self.claim(&self.other_family(family)));
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
            .other
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
            (Ok(m), Ok(r)) => (m, self.other_to_memory(r)),
            (Err(StoreError::DuplicateJti), Err(StoreError::DuplicateJti)) => {
                return Err("duplicate".into());
            }
            (m, r) => panic!("rotate {presented}: memory {m:?}, the store under test {r:?}"),
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

    pub(super) async fn apply(&mut self, op: &Op) {
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
                    (self.claim(&family), self.claim(&self.other_family(&family)));
                let m = self.memory.revoke(USERS[*u], token_ref(&jti, &m_claim));
                let r = self.other.revoke(USERS[*u], token_ref(&jti, &r_claim));
                let (m, r) = (m.await.unwrap(), r.await.unwrap());
                same("revoke", m.is_some(), r.is_some());
            }
            Op::RevokeFamily(u, pick) => {
                let Some(family) = self.pick_family(*u, *pick).await else {
                    return;
                };
                let m = self.memory.revoke_family(USERS[*u], &family).await.unwrap();
                let other_family = self.other_family(&family);
                let r = self
                    .other
                    .revoke_family(USERS[*u], &other_family)
                    .await
                    .unwrap();
                same("revoke_family", m, r);
            }
            Op::RevokeAll(u) => {
                let m = self.memory.revoke_all(USERS[*u]).await.unwrap();
                let r = self.other.revoke_all(USERS[*u]).await.unwrap();
                same("revoke_all", m, r);
                self.revoked_all[*u] = Some(self.now());
            }
            Op::RevokeClient(u, c) => {
                let client = CLIENTS[*c].expect("a client");
                let m = self.memory.revoke_client(USERS[*u], client).await.unwrap();
                let r = self.other.revoke_client(USERS[*u], client).await.unwrap();
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
                let current = |s: &crate::SessionInfo| {
                    issued
                        .iter()
                        .map(|(jti, _)| jti.clone())
                        .find(|jti| s.is_current(jti))
                };
                let view = |sessions: Vec<crate::SessionInfo>| {
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
                let r = view(self.other.list(USERS[*u]).await.unwrap());
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
                self.kit.age(&self.other, &self.prefix, by).await;
            }
            Op::Cleanup => {
                let m = self.memory.cleanup_expired().await.unwrap();
                let r = self.other.cleanup_expired().await.unwrap();
                same("cleanup_expired", m, r);
            }
        }
    }
}
