//! The in-memory store: the Redis store's semantics for one process (tests, demos, single
//! instance apps). Its state dies with the process and is not shared between instances.
//!
//! It runs the rules of [`crate::rules`] on the same data the Redis store keeps (a record per
//! family, a token index without a family claim, grace slots), so the two agree; the
//! conformance suite and the model test check that they do.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::keys::{UserKeys, client_digest, jti_digest};
use crate::rules::{Family, Role, Step, evictions, token_index_expiry_ms};
use crate::store::{clip_metadata, report_rotation, sessions};
use crate::{
    FamilyId, RotationEventKind, RotationOutcome, RotationStore, SessionInfo, StoreConfig,
    StoreError, Successor, TokenRef,
};

/// A [`RotationStore`] in process memory. Single-process only: app instances do not share it.
///
/// ```
/// use token_core::{MemoryStore, RotationOutcome, RotationStore, StoreConfig, Successor, TokenRef};
///
/// # tokio_test_block(async {
/// let store = MemoryStore::new(StoreConfig::default());
/// let exp = 1_900_000_000;
/// store.register("alice", TokenRef::new("jti-1", exp), None).await?;
/// let next = Successor { jti: "jti-2", token: "<jwt 2>", expires_at: exp };
/// let outcome = store.rotate("alice", TokenRef::new("jti-1", exp), next).await?;
/// assert!(matches!(outcome, RotationOutcome::Rotated { .. }));
/// # Ok::<_, token_core::StoreError>(())
/// # });
/// # fn tokio_test_block<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    config: Arc<StoreConfig>,
}

const SWEEP_EVERY: usize = 4096;

/// What Redis would hold, keyed the same way.
#[derive(Debug, Default)]
struct State {
    /// Session index key → the user's families by id.
    users: HashMap<String, HashMap<String, Family>>,
    /// Grace slots: sealed successor and the end of its window.
    grace: HashMap<String, (Vec<u8>, i64)>,
    /// Token-index buckets: jti digest → family id, and the bucket's expiry.
    tokens: HashMap<String, (HashMap<String, String>, i64)>,
    writes_since_sweep: usize,
}

impl State {
    /// The family a token belongs to: its claim, else the token index.
    fn family_of(
        &self,
        keys: &UserKeys,
        token: &TokenRef<'_>,
        digest: &str,
        now: i64,
    ) -> Option<String> {
        match token.family {
            Some(family) => Some(family.as_str().to_owned()),
            None => self.indexed(keys, token.expires_at, digest, now).cloned(),
        }
    }

    fn indexed(&self, keys: &UserKeys, exp: i64, digest: &str, now: i64) -> Option<&String> {
        if token_index_expiry_ms(exp) <= now {
            return None;
        }
        self.tokens
            .get(&keys.tokens(exp))
            .and_then(|(bucket, _)| bucket.get(digest))
    }

    fn index_token(&mut self, keys: &UserKeys, exp: i64, digest: &str, family: &str) {
        let (bucket, expiry) = self.tokens.entry(keys.tokens(exp)).or_default();
        bucket.insert(digest.to_owned(), family.to_owned());
        *expiry = token_index_expiry_ms(exp);
    }

    fn family_mut(&mut self, keys: &UserKeys, id: &str) -> Option<&mut Family> {
        self.users.get_mut(&keys.index())?.get_mut(id)
    }

    fn families_mut(&mut self, keys: &UserKeys) -> Option<&mut HashMap<String, Family>> {
        self.users.get_mut(&keys.index())
    }

    fn grace(&self, key: &str, now: i64) -> Option<&[u8]> {
        match self.grace.get(key) {
            Some((sealed, end)) if *end > now => Some(sealed),
            _ => None,
        }
    }

    /// Drops the user's ended families (the `prune` step of the scripts); returns how many.
    fn prune(&mut self, index: &str, now: i64) -> u64 {
        let Some(families) = self.users.get_mut(index) else {
            return 0;
        };
        let before = families.len();
        families.retain(|_, f| f.ends_at() > now);
        let pruned = (before - families.len()) as u64;
        if families.is_empty() {
            self.users.remove(index);
        }
        pruned
    }

    /// Redis drops keys when their TTL fires; here, every few thousand writes drop what has
    /// ended since, so idle users do not accumulate.
    fn note_write(&mut self, now: i64) {
        self.writes_since_sweep += 1;
        // At least as many writes as entries between sweeps: O(1) amortised per write.
        let due = SWEEP_EVERY.max(self.users.len() + self.grace.len() + self.tokens.len());
        if self.writes_since_sweep >= due {
            self.writes_since_sweep = 0;
            self.sweep(now);
        }
    }

    fn sweep(&mut self, now: i64) -> u64 {
        let indexes: Vec<String> = self.users.keys().cloned().collect();
        let pruned = indexes.iter().map(|index| self.prune(index, now)).sum();
        self.grace.retain(|_, (_, end)| *end > now);
        self.tokens.retain(|_, (_, expiry)| *expiry > now);
        pruned
    }
}

impl MemoryStore {
    /// An empty store with this configuration.
    pub fn new(config: StoreConfig) -> Self {
        MemoryStore {
            state: Arc::default(),
            config: Arc::new(config),
        }
    }

    fn now(&self) -> i64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default();
        self.config.clock.now(wall)
    }

    fn keys(&self, user: &str) -> UserKeys {
        UserKeys::new(&self.config.key_prefix, user)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every step below checks before it writes and writes whole values, so a panic
        // while holding the lock cannot leave half a change: a poisoned lock is consistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Mirrors `register.lua`.
    fn register_now(
        &self,
        user: &str,
        token: TokenRef<'_>,
        metadata: Option<&str>,
    ) -> Result<FamilyId, StoreError> {
        let cfg = &self.config;
        let keys = self.keys(user);
        let index = keys.index();
        let digest = jti_digest(token.jti);
        let client = token.client.map(client_digest);
        let family = token.family.cloned().unwrap_or_else(FamilyId::random);
        let now = self.now();
        let policy = cfg.policy();
        let mut state = self.lock();
        if let Some(existing) = state.family_mut(&keys, family.as_str()) {
            return if existing.is_registration_of(token.jti, client.as_deref()) {
                Ok(family)
            } else {
                Err(StoreError::DuplicateJti)
            };
        }
        if token.family.is_none()
            && state
                .indexed(&keys, token.expires_at, &digest, now)
                .is_some()
        {
            return Err(StoreError::DuplicateJti);
        }
        state.note_write(now);
        state.prune(&index, now);
        let families = state.users.entry(index).or_default();
        if let Some(cap) = cfg.max_sessions_per_user {
            let dropped: Vec<String> = evictions(
                families.iter().map(|(id, f)| (id.as_str(), f)),
                cap as usize,
            )
            .into_iter()
            .map(str::to_owned)
            .collect();
            for id in dropped {
                families.remove(&id);
            }
        }
        families.insert(
            family.as_str().to_owned(),
            Family::new(
                token.jti,
                now,
                &policy,
                clip_metadata(metadata),
                client.as_deref(),
            ),
        );
        if token.family.is_none() {
            state.index_token(&keys, token.expires_at, &digest, family.as_str());
        }
        Ok(family)
    }

    /// Mirrors `rotate.lua`.
    fn rotate_now(
        &self,
        user: &str,
        presented: TokenRef<'_>,
        successor: Successor<'_>,
    ) -> Result<RotationOutcome, StoreError> {
        let cfg = &self.config;
        let keys = self.keys(user);
        let digest = jti_digest(presented.jti);
        let successor_digest = jti_digest(successor.jti);
        let client = presented.client.map(client_digest);
        let slot = keys.grace(&digest);
        let now = self.now();
        let policy = cfg.policy();
        let mut state = self.lock();
        let Some(id) = state.family_of(&keys, &presented, &digest, now) else {
            return Ok(RotationOutcome::Unknown);
        };
        let successor_elsewhere = presented.family.is_none()
            && state
                .indexed(&keys, successor.expires_at, &successor_digest, now)
                .is_some();
        let Some(f) = state.family_mut(&keys, &id) else {
            return Ok(RotationOutcome::Unknown);
        };
        let family = FamilyId::from(id.as_str());
        let role = f.role(presented.jti, &digest);
        let step = f.step(
            role,
            client.as_deref(),
            successor.jti,
            &successor_digest,
            successor_elsewhere,
            now,
            &policy,
        );
        match step {
            Step::WrongClient => return Ok(RotationOutcome::WrongClient { family }),
            Step::Revoked => return Ok(RotationOutcome::Revoked { family }),
            Step::Expired => return Ok(RotationOutcome::Expired { family }),
            Step::Duplicate => return Err(StoreError::DuplicateJti),
            Step::Repeat => return Ok(RotationOutcome::Rotated { family }),
            Step::Rotate => {
                f.rotate(&digest, successor.jti, now, &policy);
                state.note_write(now);
                if policy.grace > 0 {
                    let sealed = cfg.sealing_key.seal(successor.token, slot.as_bytes());
                    state.grace.insert(slot, (sealed, now + policy.grace + 1));
                }
                if presented.family.is_none() {
                    state.index_token(&keys, successor.expires_at, &successor_digest, &id);
                }
                return Ok(RotationOutcome::Rotated { family });
            }
            Step::Replay | Step::Reuse => {}
        }
        if step == Step::Replay
            && let Some(sealed) = state.grace(&slot, now)
        {
            let successor = cfg.sealing_key.open(sealed, slot.as_bytes())?;
            if let Some(f) = state.family_mut(&keys, &id) {
                f.replays += 1;
            }
            return Ok(RotationOutcome::GraceReplay { family, successor });
        }

        // A spent token came back outside its grace: someone holds a copy.
        state.note_write(now);
        let families = state
            .families_mut(&keys)
            .expect("the family was found above");
        if let Some(f) = families.get_mut(&id) {
            f.revoke(now);
        }
        if cfg.revoke_all_on_reuse {
            for other in families.values_mut() {
                other.revoke(now);
            }
        }
        state.grace.remove(&slot);
        debug_assert_ne!(role, Role::Current);
        Ok(RotationOutcome::ReuseDetected { family })
    }
}

impl RotationStore for MemoryStore {
    async fn register(
        &self,
        user: &str,
        token: TokenRef<'_>,
        metadata: Option<&str>,
    ) -> Result<FamilyId, StoreError> {
        let family = self.register_now(user, token, metadata)?;
        self.config
            .emit(RotationEventKind::Registered, user, Some(&family));
        Ok(family)
    }

    async fn rotate(
        &self,
        user: &str,
        presented: TokenRef<'_>,
        successor: Successor<'_>,
    ) -> Result<RotationOutcome, StoreError> {
        let outcome = self.rotate_now(user, presented, successor)?;
        report_rotation(&self.config, user, &outcome);
        Ok(outcome)
    }

    async fn revoke(
        &self,
        user: &str,
        token: TokenRef<'_>,
    ) -> Result<Option<FamilyId>, StoreError> {
        let keys = self.keys(user);
        let now = self.now();
        let revoked = {
            let mut state = self.lock();
            let digest = jti_digest(token.jti);
            let id = state.family_of(&keys, &token, &digest, now);
            id.filter(|id| state.family_mut(&keys, id).is_some_and(|f| f.revoke(now)))
                .map(FamilyId::from)
        };
        if let Some(family) = &revoked {
            self.config
                .emit(RotationEventKind::FamilyRevoked, user, Some(family));
        }
        Ok(revoked)
    }

    async fn revoke_family(&self, user: &str, family: &FamilyId) -> Result<bool, StoreError> {
        let keys = self.keys(user);
        let now = self.now();
        let revoked = self
            .lock()
            .family_mut(&keys, family.as_str())
            .is_some_and(|f| f.revoke(now));
        if revoked {
            self.config
                .emit(RotationEventKind::FamilyRevoked, user, Some(family));
        }
        Ok(revoked)
    }

    async fn revoke_all(&self, user: &str) -> Result<u64, StoreError> {
        let keys = self.keys(user);
        let now = self.now();
        let count = self.lock().families_mut(&keys).map_or(0, |families| {
            families
                .values_mut()
                .map(|f| f.revoke(now))
                .filter(|&revoked| revoked)
                .count() as u64
        });
        if count > 0 {
            self.config
                .emit(RotationEventKind::FamilyRevoked, user, None);
        }
        Ok(count)
    }

    async fn list(&self, user: &str) -> Result<Vec<SessionInfo>, StoreError> {
        let keys = self.keys(user);
        let now = self.now();
        let mut state = self.lock();
        Ok(state
            .families_mut(&keys)
            .map(|families| sessions(families.iter().map(|(id, f)| (id.as_str(), f)), now))
            .unwrap_or_default())
    }

    async fn cleanup_expired(&self) -> Result<u64, StoreError> {
        let now = self.now();
        Ok(self.lock().sweep(now))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn call_timeout(&self) -> Option<Duration> {
        Some(self.config.timeout)
    }

    fn session_lifetime(&self) -> Option<Duration> {
        Some(self.config.session_lifetime())
    }
}
