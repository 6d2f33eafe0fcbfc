pub use crate::rules::AdoptionRefusal;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The id of a token family: every token descended from one login (a session, a device).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FamilyId(String);

impl FamilyId {
    /// A fresh random family id (96 bits, URL-safe base64).
    pub fn random() -> Self {
        let bytes: [u8; 12] = rand::random();
        FamilyId(crate::keys::b64(&bytes))
    }

    /// The family a token minted before the store recorded the app's tokens is adopted
    /// into ([`RotationStore::adopt`](crate::RotationStore::adopt)) when it names none:
    /// derived from its `jti` (96 bits of a domain-separated SHA-256, URL-safe base64), so
    /// that every app instance, and every retry, names it alike before asking the store.
    pub fn for_legacy_token(jti: &str) -> Self {
        use sha2::Digest as _;
        let mut hash = sha2::Sha256::new();
        hash.update(b"token-rotation adopted family v1\0");
        hash.update(jti.as_bytes());
        FamilyId(crate::keys::b64(&hash.finalize()[..12]))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for FamilyId {
    fn from(id: String) -> Self {
        FamilyId(id)
    }
}

impl From<&str> for FamilyId {
    fn from(id: &str) -> Self {
        FamilyId(id.to_owned())
    }
}

impl fmt::Display for FamilyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for FamilyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FamilyId({})", self.0)
    }
}

/// What [`rotate`](crate::RotationStore::rotate) decided for a presented token.
///
/// This enum and the Lua scripts in `src/redis/scripts` are the rotation state machine.
#[derive(Clone, PartialEq, Eq)]
pub enum RotationOutcome {
    /// The presented token was current and its family live: it is spent now and the
    /// successor is the family's current token.
    Rotated {
        /// The family the tokens belong to.
        family: FamilyId,
    },
    /// The presented token is the immediate predecessor of the current one, whose successor
    /// nobody has rotated yet, and was rotated inside the replay window (the longer of
    /// [`StoreConfig::grace`](crate::StoreConfig::grace) and
    /// [`retry_window`](crate::StoreConfig::retry_window)): parallel presentations, or a
    /// retry after a lost reply. The client must get `successor` again.
    GraceReplay {
        /// The family the tokens belong to.
        family: FamilyId,
        /// The successor handed out at the first rotation, byte for byte.
        successor: String,
    },
    /// The presented token was spent before and came back after its successor was used, or
    /// outside the replay window: a copy exists. The family (or, by policy, every family of the user) is revoked.
    ReuseDetected {
        /// The family that was revoked.
        family: FamilyId,
    },
    /// The presented token is the immediate predecessor, inside the replay window, but its
    /// replays reached [`max_grace_replays`](crate::StoreConfig::max_grace_replays): refused,
    /// and nothing changed. The session goes on (the cap bounds the copies handed out; it is
    /// no evidence of theft); the client should use the successor another of its requests
    /// got.
    ReplayRefused {
        /// The family the token belongs to.
        family: FamilyId,
    },
    /// The family was revoked earlier.
    Revoked {
        /// The revoked family.
        family: FamilyId,
    },
    /// The family is bound to an OAuth 2.0 client ([`TokenRef::client`](crate::TokenRef)
    /// at registration) and another client, or none, presented its token. Nothing was
    /// consumed and nothing revoked: the family's owner can go on rotating. Checked before
    /// anything else, so the presenter learns nothing about the family's state.
    WrongClient {
        /// The family the token belongs to.
        family: FamilyId,
    },
    /// The family is bound to a DPoP key ([`TokenRef::proof`](crate::TokenRef) at
    /// registration) and the request's proof was signed by another key, or there was none.
    /// Nothing was consumed and nothing revoked: a copied token without its key is worth
    /// nothing, and its holder cannot log the owner out. Checked first, like `WrongClient`.
    WrongKey {
        /// The family the token belongs to.
        family: FamilyId,
    },
    /// The request's DPoP proof was used before (its `jti` was seen within
    /// [`PROOF_JTI_LIFETIME`](crate::PROOF_JTI_LIFETIME)): a replayed request. Nothing else
    /// was looked at or changed.
    ProofReplayed,
    /// The token was never recorded, or its family is gone: it ended (its absolute or idle
    /// lifetime ran out), was evicted at the session cap, or was lost with Redis. An ended
    /// family is gone at once, whether or not Redis has dropped its bytes yet, so the answer
    /// never depends on when a TTL fired.
    Unknown,
}

impl RotationOutcome {
    /// True for the outcomes that grant a refresh (`Rotated` and `GraceReplay`).
    pub fn is_granted(&self) -> bool {
        matches!(
            self,
            RotationOutcome::Rotated { .. } | RotationOutcome::GraceReplay { .. }
        )
    }

    /// A short, stable name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            RotationOutcome::Rotated { .. } => "rotated",
            RotationOutcome::GraceReplay { .. } => "grace_replay",
            RotationOutcome::ReuseDetected { .. } => "reuse_detected",
            RotationOutcome::Revoked { .. } => "revoked",
            RotationOutcome::ReplayRefused { .. } => "replay_refused",
            RotationOutcome::WrongClient { .. } => "wrong_client",
            RotationOutcome::WrongKey { .. } => "wrong_key",
            RotationOutcome::ProofReplayed => "proof_replayed",
            RotationOutcome::Unknown => "unknown",
        }
    }

    /// The family concerned, when the token was found.
    pub fn family(&self) -> Option<&FamilyId> {
        match self {
            RotationOutcome::Rotated { family }
            | RotationOutcome::GraceReplay { family, .. }
            | RotationOutcome::ReuseDetected { family }
            | RotationOutcome::Revoked { family }
            | RotationOutcome::ReplayRefused { family }
            | RotationOutcome::WrongClient { family }
            | RotationOutcome::WrongKey { family } => Some(family),
            RotationOutcome::Unknown | RotationOutcome::ProofReplayed => None,
        }
    }
}

// Hand-written so the successor token never reaches a log through `{:?}`.
impl fmt::Debug for RotationOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.family() {
            Some(family) => write!(f, "{}({family})", self.name()),
            None => f.write_str(self.name()),
        }
    }
}

/// What [`adopt`](crate::RotationStore::adopt) found, or did, for a token minted before the
/// store recorded the app's tokens. Unless it was refused, the token now belongs to `family`:
/// the caller rotates it as a token of that family, and [`RotationOutcome`] says what it is
/// worth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Adoption {
    /// The token already belonged to a family, or was adopted before (even if that family
    /// has ended or been revoked since): nothing changed. A token is adopted once; a spent
    /// one is not given a new life by a second adoption.
    Known {
        /// The family the token belongs to.
        family: FamilyId,
    },
    /// A new family started with this token as its current token, as a login would have
    /// recorded it, and the store remembers that the token was adopted.
    Adopted {
        /// The new family.
        family: FamilyId,
    },
    /// The token may not become a session: nothing changed, and the caller refuses the
    /// refresh as it refuses a revoked family's token.
    Refused {
        /// Why.
        reason: AdoptionRefusal,
    },
}

impl Adoption {
    /// The family the token belongs to now; `None` when it was refused.
    pub fn family(&self) -> Option<&FamilyId> {
        match self {
            Adoption::Known { family } | Adoption::Adopted { family } => Some(family),
            Adoption::Refused { .. } => None,
        }
    }

    /// True when this call started the family.
    pub fn is_adopted(&self) -> bool {
        matches!(self, Adoption::Adopted { .. })
    }
}

/// One live session (token family) of a user, as [`list`](crate::RotationStore::list) shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The family id; pass it to [`revoke_family`](crate::RotationStore::revoke_family).
    pub family: FamilyId,
    /// When the family was registered (the login).
    pub created_at: DateTime<Utc>,
    /// When its token was last rotated (equal to `created_at` before the first rotation).
    pub last_rotated_at: DateTime<Utc>,
    /// When the family ends unless rotated again: the earlier of its absolute and idle ends.
    pub expires_at: DateTime<Utc>,
    /// Metadata recorded at login (for example a user agent), if any.
    pub metadata: Option<String>,
    /// The OAuth 2.0 client the family was issued to ([`TokenRef::client`](crate::TokenRef)
    /// at login), if any: what a "connected apps" page shows, and what
    /// [`revoke_client`](crate::RotationStore::revoke_client) goes by. Serialized only
    /// when there is one, so a first-party app's session JSON keeps its shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The JWK thumbprint (RFC 7638) of the DPoP key the session is bound to, if it is:
    /// what introspection answers as `cnf.jkt` (RFC 9449 section 6.2). A public key's
    /// digest, no secret; serialized only when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_thumbprint: Option<String>,
    /// The digest of the current token's jti: the store keeps no jti in the clear.
    #[serde(skip)]
    pub(crate) current: crate::digest::Digest,
}

impl SessionInfo {
    /// Whether `jti` is the id of this session's current token (the one its next refresh
    /// must present). The store keeps only a digest of it, so it can answer this but not
    /// name the jti.
    pub fn is_current(&self, jti: &str) -> bool {
        self.current == crate::digest::jti_digest(jti)
    }
}

/// What happened, for the event hook and for `tracing`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RotationEventKind {
    /// A new family was registered (a login).
    Registered,
    /// A token minted before the store recorded the app's tokens was adopted: a new family
    /// starts with it as its current token.
    Adopted,
    /// A token was rotated.
    Rotated,
    /// A retry inside the grace window got the same successor again.
    GraceReplay,
    /// A spent token came back: its family was revoked.
    ReuseDetected,
    /// A family was revoked on request (`revoke`, `revoke_family`, `revoke_all`).
    FamilyRevoked,
    /// A presented token the store does not know: never recorded, or its family is gone
    /// (ended, evicted). Behind a layer that checked the signature this is a validly signed
    /// token: forged with a leaked key, or from a session that ended. Worth watching.
    UnknownToken,
    /// A token of a family bound to one OAuth 2.0 client was presented by another (or by
    /// none): refused, nothing consumed. A refresh token in the wrong client's hands is
    /// worth watching too.
    WrongClient,
    /// A token of a family bound to a DPoP key was presented without a proof by that key:
    /// refused, nothing consumed. A copied token in use elsewhere.
    WrongKey,
}

/// An event reported to the hook set with
/// [`StoreConfig::on_event`](crate::StoreConfig::on_event). Carries ids, never tokens.
#[derive(Clone, Copy, Debug)]
pub struct RotationEvent<'a> {
    /// What happened.
    pub kind: RotationEventKind,
    /// The user concerned.
    pub user: &'a str,
    /// The family concerned (`None` for a `revoke_all` that found several).
    pub family: Option<&'a FamilyId>,
}
