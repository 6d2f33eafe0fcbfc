//! The in-memory store: the Redis store's semantics for one process (tests, demos, single
//! instance apps). Its state dies with the process and is not shared between instances.
//!
//! The logic mirrors the Lua scripts in `redis/scripts` step for step; the conformance
//! suite runs against both to keep them in agreement.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::millis;
use crate::keys::{grace_key, jti_digest, record_key};
use crate::store::{Family, Record, clip_metadata, report_rotation, sessions};
use crate::{
    FamilyId, RotationEventKind, RotationOutcome, RotationStore, SessionInfo, StoreConfig,
    StoreError, Successor,
};

/// A [`RotationStore`] in process memory. Single-process only: app instances do not share it.
///
/// ```
/// use token_core::{MemoryStore, RotationOutcome, RotationStore, StoreConfig, Successor};
///
/// # tokio_test_block(async {
/// let store = MemoryStore::new(StoreConfig::default());
/// store.register("alice", "jti-1", None).await?;
/// let outcome = store
///     .rotate("alice", "jti-1", Successor { jti: "jti-2", token: "<jwt 2>" })
///     .await?;
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

#[derive(Debug, Default)]
struct State {
    records: HashMap<String, Record>,
    /// Grace slots: sealed successor and the end of its window.
    grace: HashMap<String, (Vec<u8>, i64)>,
    writes_since_sweep: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Current,
    Previous,
    Spent,
}

fn find(record: &Record, jti: &str, digest: &str) -> Option<(String, Role)> {
    record.iter().find_map(|(id, f)| {
        let role = if f.current == jti {
            Role::Current
        } else if f.previous.as_deref() == Some(digest) {
            Role::Previous
        } else if f.has_spent(digest) {
            Role::Spent
        } else {
            return None;
        };
        Some((id.clone(), role))
    })
}

fn revoke(f: &mut Family, now: i64) -> bool {
    if !f.is_live(now) {
        return false;
    }
    f.revoked = Some(1);
    f.metadata = None;
    true
}

impl State {
    /// Like the scripts' `load`: the user's record, unless all its families have ended (then
    /// it reads as absent, as when its TTL fires).
    fn live_record(&mut self, key: &str, now: i64) -> Option<&mut Record> {
        self.records
            .get_mut(key)
            .filter(|record| record.values().any(|f| f.ends_at() > now))
    }

    /// Like the scripts' `save`, on the record in place: prunes ended families, drops an
    /// empty record. Returns how many families were pruned.
    fn prune(&mut self, key: &str, now: i64) -> u64 {
        self.note_write(now);
        let Some(record) = self.records.get_mut(key) else {
            return 0;
        };
        let before = record.len();
        record.retain(|_, f| f.ends_at() > now);
        let pruned = (before - record.len()) as u64;
        if record.is_empty() {
            self.records.remove(key);
        }
        pruned
    }

    fn family_mut(&mut self, key: &str, id: &str) -> &mut Family {
        self.records
            .get_mut(key)
            .and_then(|record| record.get_mut(id))
            .expect("a family found under this lock")
    }

    fn set_grace(&mut self, key: String, sealed: Vec<u8>, end: i64) {
        self.grace.insert(key, (sealed, end));
    }

    /// Redis drops keys when their TTL fires; here, every few thousand writes drop what has
    /// ended since, so idle users do not accumulate.
    fn note_write(&mut self, now: i64) {
        self.writes_since_sweep += 1;
        // At least as many writes as entries between sweeps: O(1) amortised per write.
        let due = SWEEP_EVERY.max(self.records.len() + self.grace.len());
        if self.writes_since_sweep >= due {
            self.writes_since_sweep = 0;
            self.records
                .retain(|_, record| record.values().any(|f| f.ends_at() > now));
            self.grace.retain(|_, (_, end)| *end > now);
        }
    }

    fn grace(&self, key: &str, now: i64) -> Option<&[u8]> {
        match self.grace.get(key) {
            Some((sealed, end)) if *end > now => Some(sealed),
            _ => None,
        }
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
        wall + self.config.clock.millis()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-written record (every write
        // replaces a whole record), so a poisoned lock is still consistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn rotate_now(
        &self,
        user: &str,
        presented_jti: &str,
        successor: Successor<'_>,
    ) -> Result<RotationOutcome, StoreError> {
        let cfg = &self.config;
        let key = record_key(&cfg.key_prefix, user);
        let digest = jti_digest(presented_jti);
        let slot = grace_key(&key, &digest);
        let now = self.now();
        let grace = millis(cfg.grace) as i64;
        let mut state = self.lock();
        let Some(record) = state.live_record(&key, now) else {
            return Ok(RotationOutcome::Unknown);
        };
        let Some((id, role)) = find(record, presented_jti, &digest) else {
            return Ok(RotationOutcome::Unknown);
        };
        let family = FamilyId::from(id.as_str());
        let f = &record[&id];
        if f.revoked.is_some() {
            return Ok(RotationOutcome::Revoked { family });
        }
        if f.ends_at() <= now {
            return Ok(RotationOutcome::Expired { family });
        }

        if role == Role::Current {
            if find(record, successor.jti, &jti_digest(successor.jti)).is_some() {
                return Err(StoreError::DuplicateJti);
            }
            let f = record.get_mut(&id).expect("found above");
            if let Some(previous) = f.previous.take() {
                f.push_spent(&previous, cfg.spent_history as usize);
            }
            f.previous = Some(digest);
            f.rotated_at = Some(now);
            f.replays = 0;
            f.current = successor.jti.to_owned();
            f.last_rotated = now;
            f.idle_end = f.absolute_end.min(now + millis(cfg.idle_lifetime) as i64);
            if grace > 0 {
                let sealed = cfg.sealing_key.seal(successor.token, slot.as_bytes());
                state.set_grace(slot, sealed, now + grace + 1);
            }
            state.prune(&key, now);
            return Ok(RotationOutcome::Rotated { family });
        }

        let in_window = f.rotated_at.is_some_and(|at| now - at <= grace);
        let under_cap = cfg.max_grace_replays.is_none_or(|cap| f.replays < cap);
        let replayable = role == Role::Previous && grace > 0 && in_window && under_cap;
        if let Some(sealed) = state.grace(&slot, now).filter(|_| replayable) {
            let successor = cfg.sealing_key.open(sealed, slot.as_bytes())?;
            state.family_mut(&key, &id).replays += 1;
            state.prune(&key, now);
            return Ok(RotationOutcome::GraceReplay { family, successor });
        }

        let record = state.records.get_mut(&key).expect("found above");
        revoke(record.get_mut(&id).expect("found above"), now);
        if cfg.revoke_all_on_reuse {
            for other in record.values_mut() {
                revoke(other, now);
            }
        }
        state.grace.remove(&slot);
        state.prune(&key, now);
        Ok(RotationOutcome::ReuseDetected { family })
    }
}

impl RotationStore for MemoryStore {
    async fn register(
        &self,
        user: &str,
        jti: &str,
        metadata: Option<&str>,
    ) -> Result<FamilyId, StoreError> {
        let cfg = &self.config;
        let key = record_key(&cfg.key_prefix, user);
        let now = self.now();
        let family = FamilyId::random();
        {
            let mut state = self.lock();
            if state.live_record(&key, now).is_none() {
                // Every family ended: the record is gone, as when its TTL fires.
                state.records.remove(&key);
            }
            let record = state.records.entry(key.clone()).or_default();
            if find(record, jti, &jti_digest(jti)).is_some() {
                return Err(StoreError::DuplicateJti);
            }
            if let Some(cap) = cfg.max_sessions_per_user {
                while record.len() >= cap as usize {
                    let oldest = record
                        .iter()
                        .min_by_key(|(_, f)| f.created)
                        .map(|(id, _)| id.clone())
                        .expect("a non-empty record");
                    record.remove(&oldest);
                }
            }
            let absolute_end = now + millis(cfg.absolute_lifetime) as i64;
            record.insert(
                family.as_str().to_owned(),
                Family {
                    current: jti.to_owned(),
                    previous: None,
                    rotated_at: None,
                    replays: 0,
                    spent: String::new(),
                    created: now,
                    last_rotated: now,
                    absolute_end,
                    idle_end: absolute_end.min(now + millis(cfg.idle_lifetime) as i64),
                    revoked: None,
                    metadata: clip_metadata(metadata).map(str::to_owned),
                },
            );
            state.prune(&key, now);
        }
        cfg.emit(RotationEventKind::Registered, user, Some(&family));
        Ok(family)
    }

    async fn rotate(
        &self,
        user: &str,
        presented_jti: &str,
        successor: Successor<'_>,
    ) -> Result<RotationOutcome, StoreError> {
        let outcome = self.rotate_now(user, presented_jti, successor)?;
        report_rotation(&self.config, user, &outcome);
        Ok(outcome)
    }

    async fn revoke(&self, user: &str, jti: &str) -> Result<Option<FamilyId>, StoreError> {
        let key = record_key(&self.config.key_prefix, user);
        let now = self.now();
        let revoked = {
            let mut state = self.lock();
            let Some(record) = state.live_record(&key, now) else {
                return Ok(None);
            };
            match find(record, jti, &jti_digest(jti)) {
                Some((id, _)) if revoke(record.get_mut(&id).expect("found"), now) => {
                    state.prune(&key, now);
                    Some(FamilyId::from(id))
                }
                _ => None,
            }
        };
        if let Some(family) = &revoked {
            self.config
                .emit(RotationEventKind::FamilyRevoked, user, Some(family));
        }
        Ok(revoked)
    }

    async fn revoke_family(&self, user: &str, family: &FamilyId) -> Result<bool, StoreError> {
        let key = record_key(&self.config.key_prefix, user);
        let now = self.now();
        let revoked = {
            let mut state = self.lock();
            let revoked = state
                .live_record(&key, now)
                .and_then(|record| record.get_mut(family.as_str()))
                .is_some_and(|f| revoke(f, now));
            if revoked {
                state.prune(&key, now);
            }
            revoked
        };
        if revoked {
            self.config
                .emit(RotationEventKind::FamilyRevoked, user, Some(family));
        }
        Ok(revoked)
    }

    async fn revoke_all(&self, user: &str) -> Result<u64, StoreError> {
        let key = record_key(&self.config.key_prefix, user);
        let now = self.now();
        let count = {
            let mut state = self.lock();
            let count = state.live_record(&key, now).map_or(0, |record| {
                record
                    .values_mut()
                    .map(|f| revoke(f, now))
                    .filter(|&r| r)
                    .count() as u64
            });
            if count > 0 {
                state.prune(&key, now);
            }
            count
        };
        if count > 0 {
            self.config
                .emit(RotationEventKind::FamilyRevoked, user, None);
        }
        Ok(count)
    }

    async fn list(&self, user: &str) -> Result<Vec<SessionInfo>, StoreError> {
        let key = record_key(&self.config.key_prefix, user);
        let now = self.now();
        let mut state = self.lock();
        Ok(state
            .live_record(&key, now)
            .map(|record| sessions(record, now))
            .unwrap_or_default())
    }

    async fn cleanup_expired(&self) -> Result<u64, StoreError> {
        let now = self.now();
        let mut state = self.lock();
        let keys: Vec<String> = state.records.keys().cloned().collect();
        let mut pruned = 0;
        for key in keys {
            pruned += state.prune(&key, now);
        }
        state.grace.retain(|_, (_, end)| *end > now);
        Ok(pruned)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn config(&self) -> &StoreConfig {
        &self.config
    }
}
