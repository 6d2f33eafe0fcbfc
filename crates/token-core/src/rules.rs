//! The rotation rules, written once.
//!
//! [`MemoryStore`](crate::MemoryStore) runs these functions; the Lua scripts in
//! `redis/scripts` perform the same steps in the same order (each script names the function
//! it mirrors), and `tests/model.rs` drives both stores through random histories and checks
//! that they agree on every step. A change to the rules is a change here and in the scripts.
//!
//! # The data
//!
//! A family (a session) is one small record: its current jti, the digest of the token it
//! replaced and when, its lifetimes, a revoked flag. A family therefore costs the same after
//! one rotation or ten thousand. Older spent tokens are recognised without being listed:
//!
//! - in **family-claim mode** every token names its family, so a validly signed token of a
//!   known family that is neither current nor the immediate predecessor can only be a spent
//!   one (the app minted it, and the layer never lets an unrecorded successor out);
//! - without a family claim, a **token index** maps the digest of every recorded jti to its
//!   family and keeps it until the token itself expires (see [`token_index_expiry_ms`]).

/// Index scores of revoked families are their end minus this, so every revoked family sorts
/// before every live one (2^50 ms is about 35 000 years; scores stay exact doubles).
pub(crate) const REVOKED_SHIFT: i64 = 1 << 50;

/// Token-index entries are grouped by the hour in which their token expires: one Redis hash
/// per user and hour, so the per-key overhead is shared by every token of that hour.
pub(crate) const TOKEN_BUCKET_SECS: i64 = 3600;

/// The bucket of a token that expires at `exp` (seconds since the epoch).
pub(crate) fn token_bucket(exp: i64) -> i64 {
    exp.div_euclid(TOKEN_BUCKET_SECS)
}

/// Until when (ms) a token-index entry is kept: past the end of its token's bucket by one
/// more bucket, so a token stays recognisable for at least an hour past its `exp`, which
/// covers any validation leeway up to that.
pub(crate) fn token_index_expiry_ms(exp: i64) -> i64 {
    (token_bucket(exp) + 2)
        .saturating_mul(TOKEN_BUCKET_SECS)
        .saturating_mul(1000)
}

/// One family as both stores keep it. The one-letter names in the comments are those of the
/// Lua scripts' tables (see `redis/scripts/common.lua`, which also packs it for Redis).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Family {
    /// `c`: the current token's jti.
    pub(crate) current: String,
    /// `p`: the digest of the immediate predecessor (the token rotated last).
    pub(crate) previous: Option<String>,
    /// `r`: when the predecessor was rotated, the start of the grace window (ms).
    pub(crate) rotated_at: Option<i64>,
    /// `n`: grace replays served for the predecessor.
    pub(crate) replays: u32,
    /// `t`: when the family was registered (ms).
    pub(crate) created: i64,
    /// `l`: when it was last rotated (ms).
    pub(crate) last_rotated: i64,
    /// `a`: its absolute end (ms).
    pub(crate) absolute_end: i64,
    /// `i`: its idle end (ms), renewed by each rotation, never past `absolute_end`.
    pub(crate) idle_end: i64,
    /// `v`: set once revoked.
    pub(crate) revoked: Option<u8>,
    /// `m`: metadata recorded at login.
    pub(crate) metadata: Option<String>,
    /// `k`: the digest of the OAuth 2.0 client the family is bound to
    /// ([`keys::client_digest`](crate::keys::client_digest)), if any.
    pub(crate) client: Option<String>,
}

/// Lifetimes and grace settings in milliseconds, as the rules use them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Policy {
    pub(crate) grace: i64,
    pub(crate) replay_cap: Option<u32>,
    pub(crate) absolute: i64,
    pub(crate) idle: i64,
}

/// The part a presented token plays in its family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Current,
    Previous,
    /// Any older token of the family.
    Spent,
}

/// What `rotate` does with a presented token of a recorded family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// The family is bound to another client: refuse, change nothing.
    WrongClient,
    /// The family was revoked earlier: refuse.
    Revoked,
    /// The family ended: refuse.
    Expired,
    /// The successor's jti is already recorded: refuse, change nothing.
    Duplicate,
    /// Spend the current token; the successor becomes current.
    Rotate,
    /// The same rotation sent again (same presented, same successor): report it done.
    Repeat,
    /// An idempotent retry inside the window: hand out the sealed successor again if it is
    /// still there (else this is reuse).
    Replay,
    /// A spent token came back: revoke the family.
    Reuse,
}

impl Family {
    /// The first token of a new family, registered at `now`.
    pub(crate) fn new(
        jti: &str,
        now: i64,
        policy: &Policy,
        metadata: Option<&str>,
        client: Option<&str>,
    ) -> Self {
        let absolute_end = now + policy.absolute;
        Family {
            current: jti.to_owned(),
            previous: None,
            rotated_at: None,
            replays: 0,
            created: now,
            last_rotated: now,
            absolute_end,
            idle_end: absolute_end.min(now + policy.idle),
            revoked: None,
            metadata: metadata.map(str::to_owned),
            client: client.map(str::to_owned),
        }
    }

    pub(crate) fn ends_at(&self) -> i64 {
        self.absolute_end.min(self.idle_end)
    }

    pub(crate) fn is_live(&self, now: i64) -> bool {
        self.revoked.is_none() && self.ends_at() > now
    }

    /// The family's score in the user's session index: its end, or far below every live
    /// score once revoked. Eviction takes the lowest score first; pruning takes the ended.
    pub(crate) fn index_score(&self) -> i64 {
        match self.revoked {
            Some(_) => self.ends_at() - REVOKED_SHIFT,
            None => self.ends_at(),
        }
    }

    /// Whether a register of `jti` that finds this family already recorded is the same
    /// register sent again (a retry after a lost reply) rather than a clash.
    pub(crate) fn is_registration_of(&self, jti: &str, client: Option<&str>) -> bool {
        self.current == jti
            && self.previous.is_none()
            && self.revoked.is_none()
            && self.client.as_deref() == client
    }

    /// Whether a token of this family may be presented by `client` (a digest, or `None` for
    /// a request that named no client). A family bound to a client admits that client alone;
    /// one registered without a client admits any.
    pub(crate) fn admits(&self, client: Option<&str>) -> bool {
        self.client.is_none() || self.client.as_deref() == client
    }

    pub(crate) fn role(&self, jti: &str, digest: &str) -> Role {
        if self.current == jti {
            Role::Current
        } else if self.previous.as_deref() == Some(digest) {
            Role::Previous
        } else {
            Role::Spent
        }
    }

    /// Decides a rotation. `client`: the digest of the presenting client, if it named one.
    /// `successor_elsewhere`: the token index already knows the successor's jti (always false
    /// in family-claim mode, which has no index).
    ///
    /// The client comes first: another client's request changes nothing (a stolen token in
    /// the wrong hands must not let its holder revoke the owner's session by presenting a
    /// spent one) and learns nothing of the family's state.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn step(
        &self,
        role: Role,
        client: Option<&str>,
        successor_jti: &str,
        successor_digest: &str,
        successor_elsewhere: bool,
        now: i64,
        policy: &Policy,
    ) -> Step {
        if !self.admits(client) {
            return Step::WrongClient;
        }
        if self.revoked.is_some() {
            return Step::Revoked;
        }
        if self.ends_at() <= now {
            return Step::Expired;
        }
        match role {
            Role::Current => {
                let known = self.current == successor_jti
                    || self.previous.as_deref() == Some(successor_digest)
                    || successor_elsewhere;
                if known { Step::Duplicate } else { Step::Rotate }
            }
            Role::Previous if self.current == successor_jti => Step::Repeat,
            Role::Previous
                if policy.grace > 0
                    && self.rotated_at.is_some_and(|at| now - at <= policy.grace)
                    && policy.replay_cap.is_none_or(|cap| self.replays < cap) =>
            {
                Step::Replay
            }
            Role::Previous | Role::Spent => Step::Reuse,
        }
    }

    /// Applies [`Step::Rotate`]: the presented token (by digest) becomes the predecessor.
    pub(crate) fn rotate(
        &mut self,
        presented_digest: &str,
        successor_jti: &str,
        now: i64,
        policy: &Policy,
    ) {
        self.previous = Some(presented_digest.to_owned());
        self.rotated_at = Some(now);
        self.replays = 0;
        self.current = successor_jti.to_owned();
        self.last_rotated = now;
        self.idle_end = self.absolute_end.min(now + policy.idle);
    }

    /// Marks the family revoked (a tombstone until its end, so late tokens read `Revoked`);
    /// true when it was live.
    pub(crate) fn revoke(&mut self, now: i64) -> bool {
        if !self.is_live(now) {
            return false;
        }
        self.revoked = Some(1);
        self.metadata = None;
        true
    }
}

/// Whom a login at the session cap drops: ended families first, then revoked ones, then the
/// live family closest to its end (each rotation renews the idle end, so under the idle
/// lifetime that is the least recently used one). Ties go by family id, as in a Redis sorted
/// set. Returns the ids to drop, in order, so that `cap - 1` families remain.
pub(crate) fn evictions<'a>(
    families: impl Iterator<Item = (&'a str, &'a Family)>,
    cap: usize,
) -> Vec<&'a str> {
    let mut ranked: Vec<(i64, &str)> = families.map(|(id, f)| (f.index_score(), id)).collect();
    ranked.sort_unstable();
    let excess = (ranked.len() + 1).saturating_sub(cap);
    ranked.into_iter().take(excess).map(|(_, id)| id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy = Policy {
        grace: 1000,
        replay_cap: Some(2),
        absolute: 100_000,
        idle: 10_000,
    };

    #[test]
    fn a_repeated_rotation_is_reported_done_even_after_the_window() {
        let mut f = Family::new("t0", 0, &POLICY, None, None);
        f.rotate("d0", "t1", 0, &POLICY);
        let step = f.step(Role::Previous, None, "t1", "d1", false, 5000, &POLICY);
        assert_eq!(step, Step::Repeat);
        let step = f.step(Role::Previous, None, "other", "dx", false, 5000, &POLICY);
        assert_eq!(step, Step::Reuse);
    }

    #[test]
    fn a_bound_family_admits_its_client_alone_and_an_unbound_one_any() {
        let bound = Family::new("t0", 0, &POLICY, None, Some("k1"));
        assert!(bound.admits(Some("k1")));
        assert!(!bound.admits(Some("k2")));
        assert!(!bound.admits(None));
        let step = bound.step(Role::Spent, Some("k2"), "t1", "d1", false, 0, &POLICY);
        assert_eq!(step, Step::WrongClient, "checked before reuse");
        let unbound = Family::new("t0", 0, &POLICY, None, None);
        assert!(unbound.admits(None) && unbound.admits(Some("k2")));
    }

    #[test]
    fn revoked_families_sort_before_live_ones() {
        let mut old = Family::new("a", 0, &POLICY, None, None);
        let young = Family::new("b", 50_000, &POLICY, None, None);
        assert!(old.index_score() < young.index_score());
        let mut revoked_young = young.clone();
        revoked_young.revoke(50_000);
        old.rotate("d", "a1", 60_000, &POLICY);
        let families = [("old", &old), ("young", &revoked_young)];
        assert_eq!(evictions(families.into_iter(), 2), ["young"]);
    }

    #[test]
    fn token_index_entries_outlive_their_token_by_at_least_an_hour() {
        for exp in [0, 1, 3599, 3600, 1_800_000_000] {
            let expiry = token_index_expiry_ms(exp);
            assert!(expiry >= (exp + TOKEN_BUCKET_SECS) * 1000, "{exp}");
            assert!(expiry <= (exp + 2 * TOKEN_BUCKET_SECS) * 1000, "{exp}");
        }
    }
}
