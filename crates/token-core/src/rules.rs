//! The rotation rules, written once.
//!
//! [`MemoryStore`](crate::MemoryStore) runs these functions; the Redis store's function
//! library runs their Lua twins, in `redis/scripts/rules.lua` (`role`, `refuses`, `step`:
//! the same names, the same order; the other scripts name the helper they mirror), and
//! `tests/model.rs` drives both stores through random histories and checks that they agree
//! on every step. A change to the rules is a change here and there, side by side. `docs/ARCHITECTURE.md` describes the state machine as a whole.
//!
//! # The data
//!
//! A family (a session) is one record of at most 63 bytes (see [`Family`]): digests of its
//! current token and of the token it replaced, four times, a replay count, flags. A family
//! therefore costs the same after one rotation or ten thousand. Older spent tokens are
//! recognised without being listed:
//!
//! - in **family-claim mode** every token names its family, so a validly signed token of a
//!   known family that is neither current nor the immediate predecessor can only be a spent
//!   one (the app minted it, and the layer never lets an unrecorded successor out);
//! - without a family claim, a **token index** maps the digest of every recorded jti to its
//!   family and keeps it until the token itself expires or its family ends, whichever is
//!   first (see [`token_index_expiry_ms`]).
//!
//! # Time
//!
//! A family whose end has passed is gone, for every operation, whether or not Redis has
//! dropped its bytes yet: records are pruned lazily (on login, revoke-all and cleanup)
//! and a user's hash expires with its latest end, so the answers never depend on when a TTL
//! fired or a prune ran. Both stores therefore agree on every clock, moving or not.

use crate::digest::Digest;

/// Token-index entries are grouped by the hour in which their token expires: one Redis hash
/// per user and hour, so the per-key overhead is shared by every token of that hour.
pub(crate) const TOKEN_BUCKET_SECS: i64 = 3600;

/// The latest `exp` the store accepts: 9999-12-31T23:59:59Z. Later times do not fit the
/// records' 48-bit millisecond fields and no token should live that long; both stores
/// refuse them alike ([`StoreError::ExpiryOutOfRange`](crate::StoreError::ExpiryOutOfRange)).
pub const MAX_EXPIRES_AT: i64 = 253_402_300_799;

/// The bucket of a token that expires at `exp` (seconds since the epoch).
pub(crate) fn token_bucket(exp: i64) -> i64 {
    exp.div_euclid(TOKEN_BUCKET_SECS)
}

/// Until when (ms) a token-index entry is kept, at most: past the end of its token's bucket
/// by one more bucket, so a token stays recognisable for at least an hour past its `exp`,
/// which covers any validation leeway up to that. The entry never outlives its family: the
/// scripts bound its key's TTL by the family's absolute end as well.
pub(crate) fn token_index_expiry_ms(exp: i64) -> i64 {
    (token_bucket(exp) + 2)
        .saturating_mul(TOKEN_BUCKET_SECS)
        .saturating_mul(1000)
}

/// Until when (ms) the adoption record remembers an adopted token: as long as the token index
/// would, an hour or more past its `exp` (any validation leeway), but, unlike an index entry,
/// not bounded by its family's end. A spent legacy token must stay known after its family
/// ended or was revoked, for as long as it could still be presented, or a second adoption
/// would give it a new family. `adopt` refuses a token already past this time: the store
/// could not remember having adopted it.
pub(crate) fn adoption_expiry_ms(exp: i64) -> i64 {
    token_index_expiry_ms(exp)
}

/// How long (ms) a revocation mark is kept: the absolute lifetime and two hours. A token
/// issued before the mark's revocation is adopted, if ever, less than an absolute lifetime
/// after its `iat` ([`adoption_refusal`]), so while the mark is there.
pub(crate) fn revocation_mark_ttl_ms(policy: &Policy) -> i64 {
    policy.absolute + 2 * TOKEN_BUCKET_SECS * 1000
}

/// Why `adopt` refuses a token issued at `issued_at` (s), if it does, at `now` (ms):
/// `revoked_at` holds the latest revocation of all the user's sessions and the latest of all
/// those of the token's client (ms), as far as the marks remember them. A token issued in the
/// second of a revocation, or before, is refused: `iat` has whole seconds only.
pub(crate) fn adoption_refusal(
    issued_at: Option<i64>,
    revoked_at: [Option<i64>; 2],
    now: i64,
    policy: &Policy,
) -> Option<AdoptionRefusal> {
    let Some(issued_ms) = issued_at.map(|iat| iat.saturating_mul(1000)) else {
        return Some(AdoptionRefusal::IssuedTooLongAgo);
    };
    if issued_ms.saturating_add(policy.absolute) <= now {
        return Some(AdoptionRefusal::IssuedTooLongAgo);
    }
    revoked_at
        .into_iter()
        .flatten()
        .any(|revoked| issued_ms <= revoked)
        .then_some(AdoptionRefusal::RevokedAfterIssue)
}

/// Whether `exp` (seconds since the epoch) is a time the store can record.
pub(crate) fn check_expiry(exp: i64) -> Result<(), crate::StoreError> {
    if (0..=MAX_EXPIRES_AT).contains(&exp) {
        Ok(())
    } else {
        Err(crate::StoreError::ExpiryOutOfRange(exp))
    }
}

/// One family as both stores keep it. The one-letter names in the comments are those of the
/// Lua tables (see `redis/scripts/common.lua`, which also packs it for Redis).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Family {
    /// `c`: the digest of the current token's jti.
    pub(crate) current: Digest,
    /// `p`: the digest of the immediate predecessor (the token rotated last). It was rotated
    /// at `last_rotated`, which starts its grace window.
    pub(crate) previous: Option<Digest>,
    /// `n`: grace replays served for the predecessor (saturates at `u16::MAX`).
    pub(crate) replays: u16,
    /// `t`: when the family was registered (ms).
    pub(crate) created: i64,
    /// `l`: when it was last rotated (ms); `created` before the first rotation.
    pub(crate) last_rotated: i64,
    /// `a`: its absolute end (ms).
    pub(crate) absolute_end: i64,
    /// `i`: its idle end (ms), renewed by each rotation, never past `absolute_end`.
    pub(crate) idle_end: i64,
    /// `v`: set once revoked; the record stays as a tombstone until the family's end.
    pub(crate) revoked: bool,
    /// `m`: metadata recorded at login (kept beside the record, not in it).
    pub(crate) metadata: Option<String>,
    /// `k`: the digest of the OAuth 2.0 client the family is bound to, if any; with
    /// `key_bound`, the digest over the client (if any) and the DPoP key instead.
    pub(crate) client: Option<Digest>,
    /// Flag 8: bound to a DPoP key (`k` is then a key binding digest).
    pub(crate) key_bound: bool,
    /// Flag 16: bound to its key after its login: by a rotation ([`Family::rotate`] with a
    /// binding presenter) or at its adoption. Whoever presented first may have been a thief,
    /// so a spent token of such a family coming back with another key is reuse, not a wrong
    /// key.
    pub(crate) bound_late: bool,
    /// `o`: the id of the OAuth 2.0 client the family was issued to, in the clear (client
    /// ids are not secrets), kept beside the record in its metadata field: the one thing
    /// that says which client a family belongs to for revocation and listing, whatever
    /// else the binding digest `k` covers.
    pub(crate) client_id: Option<String>,
    /// `j`: the JWK thumbprint of the DPoP key the family is bound to (with `key_bound`),
    /// kept beside the record with the client id, for introspection's `cnf.jkt` (RFC 9449
    /// section 6.2): `k` is only a digest over it.
    pub(crate) key_thumbprint: Option<String>,
}

/// Who presents a token (or logs in), as the binding check compares it: the digest of the
/// client it named and, with a DPoP proof, the digest over that client and the proof's key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Presenter {
    pub(crate) client: Option<Digest>,
    pub(crate) keyed: Option<Digest>,
    /// The proof binds a family not yet bound to a key ([`KeyProof::binds`](crate::KeyProof)).
    pub(crate) binds: bool,
}

impl Presenter {
    /// What a family registered by this presenter records as `k`, and whether it is bound to
    /// a key: a login with a proof binds the family to its key, else to its client, if any.
    pub(crate) fn binding(&self) -> (Option<Digest>, bool) {
        match self.keyed {
            Some(keyed) => (Some(keyed), true),
            None => (self.client, false),
        }
    }
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

/// What `rotate` does with a presented token of a family that is still there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// The family is bound to another client: refuse, change nothing.
    WrongClient,
    /// The family is bound to a DPoP key the request did not prove: refuse, change nothing.
    WrongKey,
    /// The family was revoked earlier: refuse.
    Revoked,
    /// The successor's jti is already recorded: refuse, change nothing.
    Duplicate,
    /// Spend the current token; the successor becomes current.
    Rotate,
    /// The same rotation sent again (same presented, same successor): report it done.
    Repeat,
    /// An idempotent retry inside the window: hand out the sealed successor again if it is
    /// still there (else this is reuse).
    Replay,
    /// A retry inside the window past the replay cap: refuse it, change nothing. The cap
    /// bounds the copies handed out; it is no evidence of theft.
    ReplayRefused,
    /// A spent token came back: revoke the family.
    Reuse,
}

impl Family {
    /// The first token of a new family, registered at `now`.
    pub(crate) fn new(
        current: Digest,
        now: i64,
        policy: &Policy,
        metadata: Option<&str>,
        client: Option<Digest>,
    ) -> Self {
        let absolute_end = now + policy.absolute;
        Family {
            current,
            previous: None,
            replays: 0,
            created: now,
            last_rotated: now,
            absolute_end,
            idle_end: absolute_end.min(now + policy.idle),
            revoked: false,
            metadata: metadata.map(str::to_owned),
            client,
            key_bound: false,
            bound_late: false,
            client_id: None,
            key_thumbprint: None,
        }
    }

    pub(crate) fn ends_at(&self) -> i64 {
        self.absolute_end.min(self.idle_end)
    }

    /// Whether the family is still there at `now`: its end has not passed. An ended family
    /// is gone for every operation, whether or not its bytes were pruned yet.
    pub(crate) fn is_present(&self, now: i64) -> bool {
        self.ends_at() > now
    }

    pub(crate) fn is_live(&self, now: i64) -> bool {
        !self.revoked && self.is_present(now)
    }

    /// Whether a register of `jti` that finds this family already recorded is the same
    /// register sent again (a retry after a lost reply) rather than a clash.
    pub(crate) fn is_registration_of(&self, digest: &Digest, presenter: &Presenter) -> bool {
        self.current == *digest
            && self.previous.is_none()
            && !self.revoked
            && (self.client, self.key_bound) == presenter.binding()
    }

    /// Why `presenter` may not present a token of this family, if it may not. A family bound
    /// to a DPoP key admits a proof by that key (and the same client) alone; one bound to a
    /// client, that client alone; one registered with neither, anyone. The client comes
    /// first: another client is told so, and learns nothing of a key binding. (The client
    /// of a key-bound family is compared on its id, which a revoked family no longer keeps:
    /// then any refusal reads as a wrong key.)
    pub(crate) fn refuses(&self, presenter: &Presenter) -> Option<Step> {
        if self.key_bound {
            if self.client == presenter.keyed {
                return None;
            }
            let owner = self.client_id.as_deref().map(crate::digest::client_digest);
            Some(if owner.is_some() && owner != presenter.client {
                Step::WrongClient
            } else {
                Step::WrongKey
            })
        } else {
            (self.client.is_some() && self.client != presenter.client).then_some(Step::WrongClient)
        }
    }

    /// Whether a revocation by `client` (`None`: a request naming no client) may touch this
    /// family: one issued to a client is that client's alone, one issued to none anyone's.
    /// Compared on the client id, never on `k`.
    pub(crate) fn belongs_to(&self, client: Option<&str>) -> bool {
        self.client_id.is_none() || self.client_id.as_deref() == client
    }

    pub(crate) fn role(&self, digest: &Digest) -> Role {
        if self.current == *digest {
            Role::Current
        } else if self.previous.as_ref() == Some(digest) {
            Role::Previous
        } else {
            Role::Spent
        }
    }

    /// Decides a rotation of a family that is present at `now`. `presenter`: who presents
    /// the token (its client, its DPoP key). `successor_elsewhere`: the token index already
    /// maps the successor's jti to a family that is present (always false in family-claim
    /// mode, which has no index).
    ///
    /// The binding comes first: another client's (or key's) request changes nothing (a stolen token in
    /// the wrong hands must not let its holder revoke the owner's session by presenting a
    /// spent one) and learns nothing of the family's state.
    pub(crate) fn step(
        &self,
        role: Role,
        presenter: &Presenter,
        successor: &Digest,
        successor_elsewhere: bool,
        now: i64,
        policy: &Policy,
    ) -> Step {
        if let Some(refusal) = self.refuses(presenter) {
            // Bound by a rotation: the key that presented first may have been a thief's, so
            // the owner's spent token, presented with the owner's key, exposes the copy.
            if refusal == Step::WrongKey
                && self.bound_late
                && !self.revoked
                && role != Role::Current
            {
                return Step::Reuse;
            }
            return refusal;
        }
        if self.revoked {
            return Step::Revoked;
        }
        match role {
            Role::Current => {
                let known = self.current == *successor
                    || self.previous.as_ref() == Some(successor)
                    || successor_elsewhere;
                if known { Step::Duplicate } else { Step::Rotate }
            }
            Role::Previous if self.current == *successor => Step::Repeat,
            Role::Previous if policy.grace > 0 && now - self.last_rotated <= policy.grace => {
                if policy
                    .replay_cap
                    .is_none_or(|cap| u32::from(self.replays) < cap)
                {
                    Step::Replay
                } else {
                    Step::ReplayRefused
                }
            }
            Role::Previous | Role::Spent => Step::Reuse,
        }
    }

    /// Applies [`Step::Rotate`]: the presented token (by digest) becomes the predecessor.
    /// A family not yet bound to a key is bound to the presenter's when its proof binds
    /// (the layer's `DpopPolicy::Required`), in the same step.
    pub(crate) fn rotate(
        &mut self,
        presented: Digest,
        successor: Digest,
        presenter: &Presenter,
        now: i64,
        policy: &Policy,
    ) {
        if !self.key_bound
            && presenter.binds
            && let Some(keyed) = presenter.keyed
        {
            self.client = Some(keyed);
            self.key_bound = true;
            self.bound_late = true;
        }
        self.previous = Some(presented);
        self.replays = 0;
        self.current = successor;
        self.last_rotated = now;
        self.idle_end = self.absolute_end.min(now + policy.idle);
    }

    /// Counts a served grace replay.
    pub(crate) fn replayed(&mut self) {
        self.replays = self.replays.saturating_add(1);
    }

    /// Marks the family revoked (a tombstone until its end, so late tokens read `Revoked`);
    /// true when it was live. Its metadata field (metadata and client id) goes at once.
    pub(crate) fn revoke(&mut self, now: i64) -> bool {
        if !self.is_live(now) {
            return false;
        }
        self.revoked = true;
        self.metadata = None;
        self.client_id = None;
        self.key_thumbprint = None;
        true
    }

    /// Where the family stands in the line for eviction at the session cap: revoked families
    /// first (by end), then live ones by last use, least recently used first.
    fn eviction_rank(&self) -> (bool, i64) {
        if self.revoked {
            (false, self.ends_at())
        } else {
            (true, self.last_rotated)
        }
    }
}

/// Whom a login at the session cap drops, among families that are present (the ended ones
/// were pruned first): revoked families, then the least recently used live ones (oldest
/// last rotation; a login counts as a use). Ties go by family id, compared bytewise. Returns
/// the ids to drop, in order, so that `cap - 1` families remain.
pub(crate) fn evictions<'a>(
    families: impl Iterator<Item = (&'a str, &'a Family)>,
    cap: usize,
) -> Vec<&'a str> {
    let mut ranked: Vec<((bool, i64), &str)> =
        families.map(|(id, f)| (f.eviction_rank(), id)).collect();
    ranked.sort_unstable();
    let excess = (ranked.len() + 1).saturating_sub(cap);
    ranked.into_iter().take(excess).map(|(_, id)| id).collect()
}

/// Why [`adopt`](crate::RotationStore::adopt) refused a token ([`Adoption::Refused`](crate::Adoption::Refused)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdoptionRefusal {
    /// All the user's sessions, or all those of the token's client, were revoked after the
    /// token was issued ([`revoke_all`](crate::RotationStore::revoke_all),
    /// [`revoke_client`](crate::RotationStore::revoke_client), or a reuse with
    /// [`StoreConfig::revoke_all_on_reuse`](crate::StoreConfig::revoke_all_on_reuse)): the
    /// revocation ends the tokens issued before it, adopted yet or not.
    RevokedAfterIssue,
    /// The token was issued longer ago than a session may last (the absolute lifetime), or
    /// names no issue time: had it been a session, it would have ended, and the store keeps
    /// its revocation marks only that long.
    IssuedTooLongAgo,
}

impl AdoptionRefusal {
    /// A short name for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            AdoptionRefusal::RevokedAfterIssue => "revoked_after_issue",
            AdoptionRefusal::IssuedTooLongAgo => "issued_too_long_ago",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOBODY: Presenter = Presenter {
        client: None,
        keyed: None,
        binds: false,
    };

    const POLICY: Policy = Policy {
        grace: 1000,
        replay_cap: Some(2),
        absolute: 100_000,
        idle: 10_000,
    };

    const D0: Digest = [0; 12];
    const D1: Digest = [1; 12];
    const D2: Digest = [2; 12];

    #[test]
    fn a_repeated_rotation_is_reported_done_even_after_the_window() {
        let mut f = Family::new(D0, 0, &POLICY, None, None);
        f.rotate(D0, D1, &NOBODY, 0, &POLICY);
        assert_eq!(
            f.step(Role::Previous, &NOBODY, &D1, false, 5000, &POLICY),
            Step::Repeat
        );
        assert_eq!(
            f.step(Role::Previous, &NOBODY, &D2, false, 5000, &POLICY),
            Step::Reuse
        );
    }

    #[test]
    fn a_bound_family_admits_its_client_alone_and_an_unbound_one_any() {
        let k1 = [7; 12];
        let k2 = [8; 12];
        let client = |k| Presenter {
            client: Some(k),
            keyed: None,
            binds: false,
        };
        let bound = Family::new(D0, 0, &POLICY, None, Some(k1));
        assert_eq!(bound.refuses(&client(k1)), None);
        assert_eq!(bound.refuses(&client(k2)), Some(Step::WrongClient));
        assert_eq!(bound.refuses(&NOBODY), Some(Step::WrongClient));
        let step = bound.step(Role::Spent, &client(k2), &D1, false, 0, &POLICY);
        assert_eq!(step, Step::WrongClient, "checked before reuse");
        let unbound = Family::new(D0, 0, &POLICY, None, None);
        assert_eq!(unbound.refuses(&NOBODY), None);
        assert_eq!(unbound.refuses(&client(k2)), None);
    }

    #[test]
    fn a_key_bound_family_admits_a_proof_by_its_key_alone() {
        let (keyed, other) = ([5; 12], [6; 12]);
        let login = Presenter {
            client: Some([7; 12]),
            keyed: Some(keyed),
            binds: false,
        };
        let (digest, key_bound) = login.binding();
        let mut bound = Family::new(D0, 0, &POLICY, None, digest);
        bound.key_bound = key_bound;
        assert_eq!(bound.refuses(&login), None);
        // The client alone, without the key, or another key: refused, before reuse.
        let without_proof = Presenter {
            keyed: None,
            ..login
        };
        let other_key = Presenter {
            keyed: Some(other),
            ..login
        };
        for presenter in [without_proof, other_key, NOBODY] {
            let step = bound.step(Role::Spent, &presenter, &D1, false, 0, &POLICY);
            assert_eq!(step, Step::WrongKey, "{presenter:?}");
        }
        assert!(bound.is_registration_of(&D0, &login));
        assert!(!bound.is_registration_of(&D0, &without_proof));
    }

    #[test]
    fn eviction_takes_revoked_then_least_recently_used() {
        // Idle = absolute, as in the examples: the end says nothing about use.
        let policy = Policy {
            idle: POLICY.absolute,
            ..POLICY
        };
        let mut old_but_used = Family::new(D0, 0, &policy, None, None);
        old_but_used.rotate(D0, D1, &NOBODY, 60_000, &policy);
        let young_unused = Family::new(D0, 50_000, &policy, None, None);
        let mut revoked = Family::new(D0, 55_000, &policy, None, None);
        revoked.revoke(55_000);
        let families = [("a", &old_but_used), ("b", &young_unused), ("c", &revoked)];
        assert_eq!(evictions(families.into_iter(), 3), ["c"]);
        assert_eq!(evictions(families.into_iter(), 2), ["c", "b"]);
    }

    #[test]
    fn an_ended_family_is_not_present() {
        let f = Family::new(D0, 0, &POLICY, None, None);
        assert!(f.is_present(POLICY.idle - 1));
        assert!(!f.is_present(POLICY.idle));
    }

    #[test]
    fn token_index_entries_outlive_their_token_by_at_least_an_hour() {
        for exp in [0, 1, 3599, 3600, 1_800_000_000, MAX_EXPIRES_AT] {
            let expiry = token_index_expiry_ms(exp);
            assert!(expiry >= (exp + TOKEN_BUCKET_SECS) * 1000, "{exp}");
            assert!(expiry <= (exp + 2 * TOKEN_BUCKET_SECS) * 1000, "{exp}");
        }
    }

    #[test]
    fn expiries_outside_the_records_range_are_refused() {
        assert!(check_expiry(0).is_ok());
        assert!(check_expiry(MAX_EXPIRES_AT).is_ok());
        assert!(check_expiry(MAX_EXPIRES_AT + 1).is_err());
        assert!(check_expiry(i64::MAX).is_err());
        assert!(check_expiry(-1).is_err());
    }
}
