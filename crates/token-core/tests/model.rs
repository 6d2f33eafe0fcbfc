//! Model-based property test: random sequences of register / rotate (fresh, replayed and
//! stale tokens) / revoke / revoke_family / revoke_all / list / cleanup / time passing run
//! against a plain reference model, and both stores must agree with it on every step.
//!
//! Time moves through the stores' `ClockOffset` in steps of 1.5 s, which never lands on a
//! boundary of the configured windows (grace 1 s, idle 5 s, absolute 12.75 s), so the few
//! real milliseconds a case takes cannot tip a comparison.

use std::time::Duration;

use proptest::prelude::*;
use test_redis::RedisServer;
use token_core::{
    ClockOffset, FamilyId, MemoryStore, RedisStore, RotationOutcome, RotationStore, StoreConfig,
    Successor,
};

const GRACE: i64 = 1_000;
const IDLE: i64 = 5_000;
const ABSOLUTE: i64 = 12_750;
const REPLAY_CAP: u32 = 2;
const HISTORY: usize = 3;
const STEP: i64 = 1_500;
const USERS: [&str; 3] = ["u0", "u1", "u:{*}2"];

fn config(clock: &ClockOffset, prefix: &str) -> StoreConfig {
    StoreConfig::default()
        .key_prefix(prefix)
        .grace(Duration::from_millis(GRACE as u64))
        .idle_lifetime(Duration::from_millis(IDLE as u64))
        .absolute_lifetime(Duration::from_millis(ABSOLUTE as u64))
        .max_grace_replays(Some(REPLAY_CAP))
        .spent_history(HISTORY as u32)
        .max_sessions_per_user(None)
        .clock(clock.clone())
}

fn tok(jti: &str) -> String {
    format!("jwt-for-{jti}")
}

#[derive(Clone, Debug)]
enum Op {
    Register(usize),
    /// Rotate a token picked among every jti the user was ever given (or one never issued).
    Rotate(usize, usize),
    Revoke(usize, usize),
    RevokeFamily(usize, usize),
    RevokeAll(usize),
    List(usize),
    Advance(u8),
    Cleanup,
}

fn op() -> impl Strategy<Value = Op> {
    let user = 0..USERS.len();
    prop_oneof![
        3 => user.clone().prop_map(Op::Register),
        8 => (user.clone(), any::<usize>()).prop_map(|(u, p)| Op::Rotate(u, p)),
        1 => (user.clone(), any::<usize>()).prop_map(|(u, p)| Op::Revoke(u, p)),
        1 => (user.clone(), any::<usize>()).prop_map(|(u, p)| Op::RevokeFamily(u, p)),
        1 => user.clone().prop_map(Op::RevokeAll),
        2 => user.prop_map(Op::List),
        3 => (0u8..4).prop_map(Op::Advance),
        1 => Just(Op::Cleanup),
    ]
}

/// One family as the model sees it: the whole chain of jtis, oldest first.
#[derive(Debug)]
struct ModelFamily {
    user: usize,
    id: FamilyId,
    chain: Vec<String>,
    rotated_at: i64,
    replays: u32,
    absolute_end: i64,
    idle_end: i64,
    revoked: bool,
}

impl ModelFamily {
    fn end(&self) -> i64 {
        self.absolute_end.min(self.idle_end)
    }
    fn live(&self, now: i64) -> bool {
        !self.revoked && self.end() > now
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    Current,
    Previous,
    Spent,
}

#[derive(Default)]
struct Model {
    now: i64,
    /// Families physically kept, in every user's record.
    families: Vec<ModelFamily>,
    issued: [Vec<String>; 3],
    counter: usize,
}

impl Model {
    fn fresh_jti(&mut self) -> String {
        self.counter += 1;
        format!("j{}", self.counter)
    }

    /// A record whose families have all ended reads as empty.
    fn record_live(&self, user: usize) -> bool {
        self.families
            .iter()
            .any(|f| f.user == user && f.end() > self.now)
    }

    fn find(&self, user: usize, jti: &str) -> Option<(usize, Role)> {
        if !self.record_live(user) {
            return None;
        }
        self.families.iter().enumerate().find_map(|(i, f)| {
            if f.user != user {
                return None;
            }
            let k = f.chain.iter().position(|j| j == jti)?;
            let behind = f.chain.len() - 1 - k;
            match behind {
                0 => Some((i, Role::Current)),
                1 => Some((i, Role::Previous)),
                n if n - 1 <= HISTORY => Some((i, Role::Spent)),
                _ => None,
            }
        })
    }

    /// A write: ended families of the user's record are pruned.
    fn save(&mut self, user: usize) -> u64 {
        let now = self.now;
        let before = self.families.len();
        self.families.retain(|f| f.user != user || f.end() > now);
        (before - self.families.len()) as u64
    }

    fn register(&mut self, user: usize, jti: &str, id: FamilyId) {
        if !self.record_live(user) {
            self.families.retain(|f| f.user != user);
        }
        let absolute_end = self.now + ABSOLUTE;
        self.families.push(ModelFamily {
            user,
            id,
            chain: vec![jti.to_owned()],
            rotated_at: 0,
            replays: 0,
            absolute_end,
            idle_end: absolute_end.min(self.now + IDLE),
            revoked: false,
        });
        self.save(user);
    }

    fn rotate(&mut self, user: usize, presented: &str, successor: &str) -> RotationOutcome {
        let now = self.now;
        let Some((i, role)) = self.find(user, presented) else {
            return RotationOutcome::Unknown;
        };
        let f = &mut self.families[i];
        let family = f.id.clone();
        if f.revoked {
            return RotationOutcome::Revoked { family };
        }
        if f.end() <= now {
            return RotationOutcome::Expired { family };
        }
        match role {
            Role::Current => {
                f.chain.push(successor.to_owned());
                f.rotated_at = now;
                f.replays = 0;
                f.idle_end = f.absolute_end.min(now + IDLE);
                self.save(user);
                RotationOutcome::Rotated { family }
            }
            Role::Previous if now - f.rotated_at <= GRACE && f.replays < REPLAY_CAP => {
                f.replays += 1;
                let successor = tok(f.chain.last().unwrap());
                self.save(user);
                RotationOutcome::GraceReplay { family, successor }
            }
            _ => {
                f.revoked = true;
                self.save(user);
                RotationOutcome::ReuseDetected { family }
            }
        }
    }

    fn revoke_where(&mut self, user: usize, pick: impl Fn(&ModelFamily) -> bool) -> Vec<FamilyId> {
        let now = self.now;
        if !self.record_live(user) {
            return Vec::new();
        }
        let mut revoked = Vec::new();
        for f in self.families.iter_mut().filter(|f| f.user == user) {
            if pick(f) && f.live(now) {
                f.revoked = true;
                revoked.push(f.id.clone());
            }
        }
        if !revoked.is_empty() {
            self.save(user);
        }
        revoked
    }

    fn list(&self, user: usize) -> Vec<(FamilyId, String)> {
        let mut live: Vec<_> = self
            .families
            .iter()
            .filter(|f| f.user == user && f.live(self.now) && self.record_live(user))
            .map(|f| (f.id.clone(), f.chain.last().unwrap().clone()))
            .collect();
        live.sort();
        live
    }

    fn cleanup(&mut self) -> u64 {
        (0..USERS.len()).map(|u| self.save(u)).sum()
    }
}

async fn check<S: RotationStore>(
    store: S,
    clock: ClockOffset,
    ops: Vec<Op>,
) -> Result<(), TestCaseError> {
    let mut model = Model::default();
    for (step, op) in ops.into_iter().enumerate() {
        let ctx = format!("step {step}: {op:?}");
        match op {
            Op::Register(u) => {
                let jti = model.fresh_jti();
                let id = store.register(USERS[u], &jti, None).await.unwrap();
                model.register(u, &jti, id);
                model.issued[u].push(jti);
            }
            Op::Rotate(u, pick) => {
                let issued = &model.issued[u];
                // The newest token (so chains grow long), a recent one (replays, reuse within
                // the remembered history) or any token ever issued.
                let n = issued.len();
                let presented = match (pick % 4, pick / 4) {
                    (0, _) if n > 0 => issued[n - 1].clone(),
                    (1, back) if n > 0 => issued[n - 1 - back % n.min(2)].clone(),
                    (2, back) if n > 0 => issued[n - 1 - back % n.min(7)].clone(),
                    (_, i) if i % (n + 1) < n => issued[i % (n + 1)].clone(),
                    _ => "never-issued".to_owned(),
                };
                let successor = model.fresh_jti();
                let got = store
                    .rotate(
                        USERS[u],
                        &presented,
                        Successor {
                            jti: &successor,
                            token: &tok(&successor),
                        },
                    )
                    .await
                    .unwrap();
                let want = model.rotate(u, &presented, &successor);
                prop_assert_eq!(&got, &want, "{} (presented {})", ctx, presented);
                if matches!(want, RotationOutcome::Rotated { .. }) {
                    model.issued[u].push(successor);
                }
            }
            Op::Revoke(u, pick) => {
                let issued = model.issued[u].clone();
                if issued.is_empty() {
                    continue;
                }
                let jti = &issued[pick % issued.len()];
                let got = store.revoke(USERS[u], jti).await.unwrap();
                let want = match model.find(u, jti) {
                    Some((i, _)) => {
                        let id = model.families[i].id.clone();
                        model.revoke_where(u, |f| f.id == id).pop()
                    }
                    None => None,
                };
                prop_assert_eq!(got, want, "{}", ctx);
            }
            Op::RevokeFamily(u, pick) => {
                let ids: Vec<FamilyId> = model.families.iter().map(|f| f.id.clone()).collect();
                if ids.is_empty() {
                    continue;
                }
                let id = &ids[pick % ids.len()];
                let got = store.revoke_family(USERS[u], id).await.unwrap();
                let want = !model.revoke_where(u, |f| &f.id == id).is_empty();
                prop_assert_eq!(got, want, "{}", ctx);
            }
            Op::RevokeAll(u) => {
                let got = store.revoke_all(USERS[u]).await.unwrap();
                let want = model.revoke_where(u, |_| true).len() as u64;
                prop_assert_eq!(got, want, "{}", ctx);
            }
            Op::List(u) => {
                let mut got: Vec<_> = store
                    .list(USERS[u])
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|s| (s.family, s.current_jti))
                    .collect();
                got.sort();
                prop_assert_eq!(got, model.list(u), "{}", ctx);
            }
            Op::Advance(steps) => {
                let by = STEP * i64::from(steps);
                clock.advance(Duration::from_millis(by as u64));
                model.now += by;
            }
            Op::Cleanup => {
                let got = store.cleanup_expired().await.unwrap();
                prop_assert_eq!(got, model.cleanup(), "{}", ctx);
            }
        }
    }
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]
    #[test]
    fn memory_store_agrees_with_the_model(ops in proptest::collection::vec(op(), 1..80)) {
        let clock = ClockOffset::default();
        let store = MemoryStore::new(config(&clock, "m:"));
        runtime().block_on(check(store, clock, ops))?;
    }
}

#[test]
fn redis_store_agrees_with_the_model() {
    let server = RedisServer::start();
    let rt = runtime();
    let case = std::sync::atomic::AtomicUsize::new(0);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    });
    runner
        .run(&proptest::collection::vec(op(), 1..80), |ops| {
            let case = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // A fresh key prefix per case: every case starts from an empty store.
            let clock = ClockOffset::default();
            let store = rt.block_on(async {
                RedisStore::open(&server.url(), config(&clock, &format!("c{case}:"))).unwrap()
            });
            rt.block_on(check(store, clock, ops))
        })
        .unwrap();
}
