//! The in-memory store: the Redis store's semantics for one process (tests, demos, single
//! instance apps). Its state dies with the process and is not shared between instances.
//!
//! It runs the rules of [`crate::rules`] on the same data the Redis store keeps (a hash of
//! family records per user, a token index without a family claim, grace slots, adoption
//! records), prunes
//! when the scripts prune, and treats an ended family as gone as they do, so the two agree
//! on every clock; the conformance suite and the model test check that they do.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::digest::{Digest, jti_digest};
use crate::keys::{UserKeys, proof_mark};
use crate::rules::{
    Family, Policy, Role, Step, adoption_expiry_ms, adoption_refusal, check_expiry, evictions,
    revocation_mark_ttl_ms, token_index_expiry_ms,
};
use crate::store::{clip_metadata, report_rotation, sessions};
use crate::{
    Adoption, FamilyId, PROOF_JTI_LIFETIME, RotationEventKind, RotationOutcome, RotationStore,
    SessionInfo, StoreConfig, StoreError, Successor, TokenRef,
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
    /// Session hash key → the user's families.
    users: HashMap<String, Sessions>,
    /// Grace slots: sealed successor and the end of its window.
    grace: HashMap<String, (Vec<u8>, i64)>,
    /// Token-index buckets.
    tokens: HashMap<String, Bucket>,
    /// Adoption records, one per user: jti digest → the family the token was adopted into.
    adopted: HashMap<String, Bucket>,
    /// Spent DPoP proofs: what the call that spent each made current, and when it is
    /// forgotten.
    proofs: HashMap<String, (Digest, i64)>,
    /// Revocation marks, one per user: when all the user's sessions (`""`) or a client's
    /// were last revoked (ms), and when the key expires.
    revocations: HashMap<String, Marks>,
    writes_since_sweep: usize,
}

/// A user's revocation marks (the scripts' `<base>:r` hash).
#[derive(Debug, Default)]
struct Marks {
    at: HashMap<String, i64>,
    expires: i64,
}

/// A user's session hash: families by id, and when the key expires (the latest family end
/// written, as `PEXPIRE … GT` keeps it).
#[derive(Debug, Default)]
struct Sessions {
    families: HashMap<String, Family>,
    expires: i64,
}

/// A token-index bucket or an adoption record: jti digest → family id, and when the key
/// expires.
#[derive(Debug, Default)]
struct Bucket {
    entries: HashMap<Digest, String>,
    expires: i64,
}

impl State {
    /// The user's families, unless the hash has expired.
    fn sessions(&self, keys: &UserKeys, now: i64) -> Option<&Sessions> {
        self.users.get(&keys.index()).filter(|s| s.expires > now)
    }

    fn sessions_mut(&mut self, keys: &UserKeys, now: i64) -> Option<&mut Sessions> {
        self.users
            .get_mut(&keys.index())
            .filter(|s| s.expires > now)
    }

    /// A family that is present at `now` (the scripts' `load_family`).
    fn family_mut(&mut self, keys: &UserKeys, id: &str, now: i64) -> Option<&mut Family> {
        self.sessions_mut(keys, now)?
            .families
            .get_mut(id)
            .filter(|f| f.is_present(now))
    }

    fn is_present(&self, keys: &UserKeys, id: &str, now: i64) -> bool {
        self.sessions(keys, now)
            .and_then(|s| s.families.get(id))
            .is_some_and(|f| f.is_present(now))
    }

    /// The family a token belongs to: its claim, else the token index.
    fn family_of(&self, keys: &UserKeys, token: &TokenRef<'_>, now: i64) -> Option<String> {
        match token.family {
            Some(family) => Some(family.as_str().to_owned()),
            None => self
                .indexed(keys, token.expires_at, &jti_digest(token.jti), now)
                .cloned(),
        }
    }

    fn indexed(&self, keys: &UserKeys, exp: i64, digest: &Digest, now: i64) -> Option<&String> {
        if token_index_expiry_ms(exp) <= now {
            return None;
        }
        self.tokens
            .get(&keys.tokens(exp))
            .filter(|bucket| bucket.expires > now)
            .and_then(|bucket| bucket.entries.get(digest))
    }

    /// Indexes a token of family `id` (whose absolute end is `family_end`) until its
    /// expiry or that end, whichever is first.
    fn index_token(
        &mut self,
        keys: &UserKeys,
        exp: i64,
        digest: Digest,
        id: &str,
        family_end: i64,
    ) {
        let bucket = self.tokens.entry(keys.tokens(exp)).or_default();
        bucket.entries.insert(digest, id.to_owned());
        bucket.expires = bucket
            .expires
            .max(token_index_expiry_ms(exp).min(family_end));
    }

    /// The family a token to adopt already belongs to (the scripts' checks in `adopt`): the
    /// one its claim names if it is there, else the one the token index maps it to if it is
    /// there; failing both, the one it was adopted into, whether or not that one is there.
    fn known(
        &self,
        keys: &UserKeys,
        token: &TokenRef<'_>,
        digest: &Digest,
        now: i64,
    ) -> Option<String> {
        let exp = token.expires_at;
        let member = match token.family {
            Some(claim) => Some(claim.as_str()).filter(|id| self.is_present(keys, id, now)),
            None => self
                .indexed(keys, exp, digest, now)
                .map(String::as_str)
                .filter(|id| self.is_present(keys, id, now)),
        };
        if let Some(id) = member {
            return Some(id.to_owned());
        }
        self.adopted
            .get(&keys.adopted())
            .filter(|record| record.expires > now && adoption_expiry_ms(exp) > now)
            .and_then(|record| record.entries.get(digest))
            .cloned()
    }

    /// Records that the token `digest` (expiring at `exp`) was adopted into family `id`.
    fn remember_adoption(&mut self, keys: &UserKeys, exp: i64, digest: Digest, id: &str) {
        let record = self.adopted.entry(keys.adopted()).or_default();
        record.entries.insert(digest, id.to_owned());
        record.expires = record.expires.max(adoption_expiry_ms(exp));
    }

    /// Spends the request's DPoP proof, if any (the scripts' `spend_proof`): true when it is
    /// new, or was spent by this very call sent again (`did`: what the call makes current).
    fn spend_proof(&mut self, prefix: &str, token: &TokenRef<'_>, did: &Digest, now: i64) -> bool {
        // A key proven without a single-use id (a client certificate) spends nothing.
        let Some(jti) = token.proof.and_then(|proof| proof.jti) else {
            return true;
        };
        let key = proof_mark(prefix, jti);
        match self.proofs.get(&key) {
            Some((done, forgotten)) if *forgotten > now => done == did,
            _ => {
                let lifetime = PROOF_JTI_LIFETIME.as_millis() as i64;
                self.proofs.insert(key, (*did, now + lifetime));
                true
            }
        }
    }

    /// Records that all the user's sessions (`field` `""`), or all those of client `field`,
    /// were revoked at `now` (the scripts' `mark_revoked`).
    fn mark_revoked(&mut self, keys: &UserKeys, field: &str, now: i64, policy: &Policy) {
        let marks = self.revocations.entry(keys.revocations()).or_default();
        if marks.expires <= now {
            *marks = Marks::default();
        }
        marks.at.insert(field.to_owned(), now);
        marks.expires = marks.expires.max(now + revocation_mark_ttl_ms(policy));
    }

    /// When all the user's sessions, and all those of `client`, were last revoked, as far
    /// as the marks remember (the scripts' `revoked_at`).
    fn revoked_at(&self, keys: &UserKeys, client: Option<&str>, now: i64) -> [Option<i64>; 2] {
        let Some(marks) = self
            .revocations
            .get(&keys.revocations())
            .filter(|m| m.expires > now)
        else {
            return [None, None];
        };
        let client = client.filter(|c| !c.is_empty());
        [
            marks.at.get("").copied(),
            client.and_then(|c| marks.at.get(c).copied()),
        ]
    }

    fn grace(&self, key: &str, now: i64) -> Option<&[u8]> {
        match self.grace.get(key) {
            Some((sealed, end)) if *end > now => Some(sealed),
            _ => None,
        }
    }

    /// Drops the user's ended families (the scripts' `prune`); returns how many.
    fn prune(&mut self, index: &str, now: i64) -> u64 {
        let Some(sessions) = self.users.get_mut(index) else {
            return 0;
        };
        if sessions.expires <= now {
            // Redis dropped this hash by its TTL: nothing left for a prune to count.
            self.users.remove(index);
            return 0;
        }
        let before = sessions.families.len();
        sessions.families.retain(|_, f| f.is_present(now));
        let pruned = (before - sessions.families.len()) as u64;
        if sessions.families.is_empty() {
            // Redis deletes a hash whose last field goes, TTL and all.
            self.users.remove(index);
        }
        pruned
    }

    /// Redis drops keys when their TTL fires; here, every few thousand writes drop what has
    /// ended since, so idle users do not accumulate.
    fn note_write(&mut self, now: i64) {
        self.writes_since_sweep += 1;
        // At least as many writes as entries between sweeps: O(1) amortised per write.
        let due = SWEEP_EVERY
            .max(self.users.len() + self.grace.len() + self.tokens.len() + self.adopted.len())
            .max(self.proofs.len() + self.revocations.len());
        if self.writes_since_sweep >= due {
            self.writes_since_sweep = 0;
            self.sweep(now);
        }
    }

    fn sweep(&mut self, now: i64) -> u64 {
        let indexes: Vec<String> = self.users.keys().cloned().collect();
        let pruned = indexes.iter().map(|index| self.prune(index, now)).sum();
        self.users.retain(|_, s| !s.families.is_empty());
        self.grace.retain(|_, (_, end)| *end > now);
        self.tokens.retain(|_, bucket| bucket.expires > now);
        self.adopted.retain(|_, record| record.expires > now);
        self.proofs.retain(|_, (_, forgotten)| *forgotten > now);
        self.revocations.retain(|_, marks| marks.expires > now);
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

    /// Mirrors `register` in the scripts.
    fn register_now(
        &self,
        user: &str,
        token: TokenRef<'_>,
        metadata: Option<&str>,
    ) -> Result<FamilyId, StoreError> {
        check_expiry(token.expires_at)?;
        let keys = self.keys(user);
        let digest = jti_digest(token.jti);
        let presenter = token.presenter();
        let family = token.family.cloned().unwrap_or_else(FamilyId::random);
        let now = self.now();
        let mut state = self.lock();
        if !state.spend_proof(&self.config.key_prefix, &token, &digest, now) {
            return Err(StoreError::ProofReplayed);
        }
        if let Some(existing) = state.family_mut(&keys, family.as_str(), now) {
            return if existing.is_registration_of(&digest, &presenter) {
                Ok(family)
            } else {
                Err(StoreError::DuplicateJti)
            };
        }
        if token.family.is_none()
            && let Some(id) = state.indexed(&keys, token.expires_at, &digest, now)
            && state.is_present(&keys, id, now)
        {
            return Err(StoreError::DuplicateJti);
        }
        state.note_write(now);
        self.start_family(&mut state, &keys, family.as_str(), &token, now, metadata);
        Ok(family)
    }

    /// The part of a login after its checks (the scripts' `start_family`), shared with
    /// adoption: prunes the user's ended families, evicts at the session cap, records family
    /// `id` with the token as its current token and, without a family claim, indexes the
    /// token.
    fn start_family(
        &self,
        state: &mut State,
        keys: &UserKeys,
        id: &str,
        token: &TokenRef<'_>,
        now: i64,
        metadata: Option<&str>,
    ) {
        let cfg = &self.config;
        let digest = jti_digest(token.jti);
        let index = keys.index();
        let (binding, key_bound) = token.presenter().binding();
        state.prune(&index, now);
        let sessions = state.users.entry(index).or_default();
        if let Some(cap) = cfg.max_sessions_per_user {
            let dropped: Vec<String> = evictions(
                sessions.families.iter().map(|(id, f)| (id.as_str(), f)),
                cap as usize,
            )
            .into_iter()
            .map(str::to_owned)
            .collect();
            for id in dropped {
                sessions.families.remove(&id);
            }
            if sessions.families.is_empty() {
                // The hash went with its last field: the new one starts without a TTL.
                sessions.expires = 0;
            }
        }
        let mut f = Family::new(digest, now, &cfg.policy(), clip_metadata(metadata), binding);
        f.key_bound = key_bound;
        // An empty id names no client, as the scripts read `''`.
        f.client_id = token.client.filter(|c| !c.is_empty()).map(str::to_owned);
        if key_bound {
            f.key_thumbprint = token.proof.map(|proof| proof.thumbprint.to_owned());
        }
        let absolute_end = f.absolute_end;
        sessions.expires = sessions.expires.max(f.ends_at());
        sessions.families.insert(id.to_owned(), f);
        if token.family.is_none() {
            state.index_token(keys, token.expires_at, digest, id, absolute_end);
        }
    }

    /// Mirrors `adopt` in the scripts.
    fn adopt_now(
        &self,
        user: &str,
        token: TokenRef<'_>,
        family: &FamilyId,
        metadata: Option<&str>,
    ) -> Result<Adoption, StoreError> {
        check_expiry(token.expires_at)?;
        let keys = self.keys(user);
        let digest = jti_digest(token.jti);
        let now = self.now();
        if adoption_expiry_ms(token.expires_at) <= now {
            return Err(StoreError::ExpiryOutOfRange(token.expires_at));
        }
        let mut state = self.lock();
        if let Some(id) = state.known(&keys, &token, &digest, now) {
            return Ok(Adoption::Known {
                family: FamilyId::from(id),
            });
        }
        let revoked_at = state.revoked_at(&keys, token.client, now);
        if let Some(reason) =
            adoption_refusal(token.issued_at, revoked_at, now, &self.config.policy())
        {
            return Ok(Adoption::Refused { reason });
        }
        if state.is_present(&keys, family.as_str(), now) {
            return Err(StoreError::DuplicateJti);
        }
        state.note_write(now);
        // With a proof the family is bound to its key, late: the legacy token may have been
        // copied before. The proof is the rotation's to spend (it follows in the same request).
        self.start_family(&mut state, &keys, family.as_str(), &token, now, metadata);
        if let Some(f) = state.family_mut(&keys, family.as_str(), now) {
            f.bound_late = f.key_bound;
        }
        state.remember_adoption(&keys, token.expires_at, digest, family.as_str());
        Ok(Adoption::Adopted {
            family: family.clone(),
        })
    }

    /// Mirrors `rotate` in the scripts.
    fn rotate_now(
        &self,
        user: &str,
        presented: TokenRef<'_>,
        successor: Successor<'_>,
    ) -> Result<RotationOutcome, StoreError> {
        check_expiry(presented.expires_at)?;
        check_expiry(successor.expires_at)?;
        let cfg = &self.config;
        let keys = self.keys(user);
        let digest = jti_digest(presented.jti);
        let successor_digest = jti_digest(successor.jti);
        let presenter = presented.presenter();
        let aad = keys.grace_aad(&digest);
        let slot = keys.grace(presented.family.map(FamilyId::as_str), &digest);
        let now = self.now();
        let policy = cfg.policy();
        let mut state = self.lock();
        if !state.spend_proof(&cfg.key_prefix, &presented, &successor_digest, now) {
            return Ok(RotationOutcome::ProofReplayed);
        }
        let Some(id) = state.family_of(&keys, &presented, now) else {
            return Ok(RotationOutcome::Unknown);
        };
        let successor_elsewhere = presented.family.is_none()
            && state
                .indexed(&keys, successor.expires_at, &successor_digest, now)
                .is_some_and(|other| state.is_present(&keys, other, now));
        let Some(f) = state.family_mut(&keys, &id, now) else {
            return Ok(RotationOutcome::Unknown);
        };
        let family = FamilyId::from(id.as_str());
        let role = f.role(&digest);
        let step = f.step(
            role,
            &presenter,
            &successor_digest,
            successor_elsewhere,
            now,
            &policy,
        );
        match step {
            Step::WrongClient => return Ok(RotationOutcome::WrongClient { family }),
            Step::WrongKey => return Ok(RotationOutcome::WrongKey { family }),
            Step::Revoked => return Ok(RotationOutcome::Revoked { family }),
            Step::ReplayRefused => return Ok(RotationOutcome::ReplayRefused { family }),
            Step::Duplicate => return Err(StoreError::DuplicateJti),
            Step::Repeat => return Ok(RotationOutcome::Rotated { family }),
            Step::Rotate => {
                let was_key_bound = f.key_bound;
                f.rotate(digest, successor_digest, &presenter, now, &policy);
                if f.key_bound && !was_key_bound {
                    // Bound late by this rotation: keep the key's thumbprint, as the
                    // scripts do.
                    f.key_thumbprint = presented.proof.map(|proof| proof.thumbprint.to_owned());
                }
                let (end, absolute_end) = (f.ends_at(), f.absolute_end);
                if let Some(sessions) = state.sessions_mut(&keys, now) {
                    sessions.expires = sessions.expires.max(end);
                }
                state.note_write(now);
                if policy.grace > 0 {
                    let sealed = cfg.sealing_key.seal(successor.token, aad.as_bytes());
                    // The slot never outlives its session.
                    let slot_end = (now + policy.grace + 1).min(end);
                    state.grace.insert(slot, (sealed, slot_end));
                }
                if presented.family.is_none() {
                    state.index_token(
                        &keys,
                        successor.expires_at,
                        successor_digest,
                        &id,
                        absolute_end,
                    );
                }
                return Ok(RotationOutcome::Rotated { family });
            }
            Step::Replay | Step::Reuse => {}
        }
        if step == Step::Replay
            && let Some(sealed) = state.grace(&slot, now)
        {
            let successor = cfg.sealing_key.open(sealed, aad.as_bytes())?;
            if let Some(f) = state.family_mut(&keys, &id, now) {
                f.replayed();
            }
            return Ok(RotationOutcome::GraceReplay { family, successor });
        }

        // A spent token came back outside its grace: someone holds a copy.
        state.note_write(now);
        if let Some(f) = state.family_mut(&keys, &id, now) {
            f.revoke(now);
        }
        if cfg.revoke_all_on_reuse {
            state.revoke_all(&keys, now, &policy);
        }
        state.grace.remove(&slot);
        debug_assert_ne!(role, Role::Current);
        Ok(RotationOutcome::ReuseDetected { family })
    }
}

impl State {
    /// Revokes every live family of the user, after pruning the ended ones (the scripts'
    /// `revoke_all`); returns how many were revoked.
    /// The mark it leaves ends the adoption of the user's tokens issued before.
    fn revoke_all(&mut self, keys: &UserKeys, now: i64, policy: &Policy) -> u64 {
        self.mark_revoked(keys, "", now, policy);
        self.prune(&keys.index(), now);
        self.sessions_mut(keys, now).map_or(0, |sessions| {
            sessions
                .families
                .values_mut()
                .map(|f| f.revoke(now))
                .filter(|&revoked| revoked)
                .count() as u64
        })
    }

    /// Revokes every live family of the user issued to `client`, after pruning the ended
    /// ones (the scripts' `revoke_client`); returns how many were revoked.
    /// The mark it leaves ends the adoption of the client's tokens issued before.
    fn revoke_client(&mut self, keys: &UserKeys, client: &str, now: i64, policy: &Policy) -> u64 {
        self.mark_revoked(keys, client, now, policy);
        self.prune(&keys.index(), now);
        self.sessions_mut(keys, now).map_or(0, |sessions| {
            sessions
                .families
                .values_mut()
                .filter(|f| f.client_id.as_deref() == Some(client))
                .map(|f| f.revoke(now))
                .filter(|&revoked| revoked)
                .count() as u64
        })
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

    async fn adopt(
        &self,
        user: &str,
        token: TokenRef<'_>,
        family: &FamilyId,
        metadata: Option<&str>,
    ) -> Result<Adoption, StoreError> {
        let adoption = self.adopt_now(user, token, family, metadata)?;
        if adoption.is_adopted() {
            self.config
                .emit(RotationEventKind::Adopted, user, adoption.family());
        }
        Ok(adoption)
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
        check_expiry(token.expires_at)?;
        let revoked = {
            let mut state = self.lock();
            let id = state.family_of(&keys, &token, now);
            id.filter(|id| {
                state
                    .family_mut(&keys, id, now)
                    .filter(|f| f.belongs_to(token.client))
                    .is_some_and(|f| f.revoke(now))
            })
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
            .family_mut(&keys, family.as_str(), now)
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
        let count = self.lock().revoke_all(&keys, now, &self.config.policy());
        if count > 0 {
            self.config
                .emit(RotationEventKind::FamilyRevoked, user, None);
        }
        Ok(count)
    }

    async fn revoke_client(&self, user: &str, client: &str) -> Result<u64, StoreError> {
        let keys = self.keys(user);
        let now = self.now();
        let count = self
            .lock()
            .revoke_client(&keys, client, now, &self.config.policy());
        if count > 0 {
            self.config
                .emit(RotationEventKind::FamilyRevoked, user, None);
        }
        Ok(count)
    }

    async fn list(&self, user: &str) -> Result<Vec<SessionInfo>, StoreError> {
        let keys = self.keys(user);
        let now = self.now();
        let state = self.lock();
        Ok(state
            .sessions(&keys, now)
            .map(|s| sessions(s.families.iter().map(|(id, f)| (id.as_str(), f)), now))
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
