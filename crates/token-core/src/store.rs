use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::rules::Family;
use crate::{Adoption, FamilyId, RotationOutcome, SessionInfo, StoreConfig, StoreError};

/// The longest metadata string a family keeps; longer input is cut at a char boundary.
pub const MAX_METADATA_LEN: usize = 256;

/// A refresh token the store is told about: its ids and expiry, never the token itself.
///
/// `family` is the token's family claim when the app uses one (`docs/ARCHITECTURE.md`, *Concepts*): the store
/// then finds the family directly and keeps no per-token state. Without it the store keeps
/// a token index (jti digest → family) whose entries live until the token expires, which is
/// why `expires_at` is required.
///
/// `client` binds a family to an OAuth 2.0 client (RFC 6749 section 6: a refresh token is
/// only good for the client it was issued to). At [`register`](RotationStore::register) it
/// is the client the token is issued to, recorded with the family (as a digest); at
/// [`rotate`](RotationStore::rotate) it is the client presenting the token. A family
/// registered with a client answers any other client (or none) with
/// [`RotationOutcome::WrongClient`], consuming nothing and revoking nothing. A family
/// registered without a client is not bound: it rotates for whichever client presents its
/// token. At [`revoke`](RotationStore::revoke) it is the client asking for the revocation:
/// a family issued to another client (or to a client, when the request names none) is left
/// alone. The store keeps the client id itself with the family (client ids are not secrets),
/// so [`SessionInfo::client`] shows it and
/// [`revoke_client`](RotationStore::revoke_client) finds a client's families.
///
/// `proof` binds a family to a DPoP key (RFC 9449): at `register` the family is bound to the
/// key the login's proof was signed with (together with `client`), and from then on only a
/// rotation whose proof is signed by the same key may spend its tokens or be served a grace
/// replay; any other caller (no proof, another key) gets [`RotationOutcome::WrongKey`],
/// consuming nothing and revoking nothing. Every proof's `jti` is good for one call: the
/// store remembers it for [`PROOF_JTI_LIFETIME`] in the same atomic step, and a proof seen
/// before is refused ([`RotationOutcome::ProofReplayed`], [`StoreError::ProofReplayed`]).
/// The caller (the layer) has verified the proof: its signature, method, URI and age.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenRef<'a> {
    /// The token's `jti`.
    pub jti: &'a str,
    /// The family the token names in its family claim, if the app uses one.
    pub family: Option<&'a FamilyId>,
    /// The token's `exp` claim, in seconds since the Unix epoch.
    pub expires_at: i64,
    /// The OAuth 2.0 client the token is issued to (register), presented by (rotate) or
    /// revoked by (revoke), if any. See above.
    pub client: Option<&'a str>,
    /// The verified DPoP proof that came with the request, if any. See above.
    pub proof: Option<KeyProof<'a>>,
    /// The token's `iat` claim, in seconds since the Unix epoch, if it has one. Only
    /// [`adopt`](RotationStore::adopt) reads it: a revocation of all the user's (or the
    /// client's) sessions ends the tokens issued before it.
    pub issued_at: Option<i64>,
}

/// How long the store remembers a DPoP proof's `jti` to refuse its reuse: 5 minutes. A
/// verifier must refuse proofs that are older than this (by their `iat`), so that a proof
/// cannot come back once the store has forgotten it.
pub const PROOF_JTI_LIFETIME: Duration = Duration::from_secs(300);

/// What binds a request to a key, as the store needs it: the key's thumbprint and, for a
/// proof signed per request (DPoP, RFC 9449), the proof's single-use id. A client
/// certificate (RFC 8705) proves its key in the TLS handshake of every connection and has
/// no such id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyProof<'a> {
    /// The key's thumbprint: for DPoP the JWK SHA-256 thumbprint (RFC 7638) of the proof's
    /// public key, the `jkt`. The store compares thumbprints as they are: a caller binding
    /// sessions by more than one kind of key gives each kind a prefix of its own.
    pub thumbprint: &'a str,
    /// The proof's `jti`, spent once per server (a second call with it is
    /// [`RotationOutcome::ProofReplayed`](crate::RotationOutcome::ProofReplayed)); `None` for
    /// a key proven without a single-use id (a client certificate).
    pub jti: Option<&'a str>,
    /// Whether a rotation with this proof binds a family not yet bound to a key (one that
    /// started without a proof: an older bearer login, an adoption) to this proof's key, in
    /// the same atomic step. The layer sets it under `DpopPolicy::Required`, so that every
    /// family that rotates there ends bound to one key; under `Optional` a proof on a
    /// bearer family binds nothing. A spent token of a family bound so, presented with
    /// another key, is reuse ([`RotationOutcome::ReuseDetected`]): the first key may have
    /// been a thief's.
    pub binds: bool,
}

impl<'a> TokenRef<'a> {
    /// A token without a family claim, for no particular client.
    pub fn new(jti: &'a str, expires_at: i64) -> Self {
        TokenRef {
            jti,
            family: None,
            expires_at,
            client: None,
            proof: None,
            issued_at: None,
        }
    }

    /// The same token, presented (or issued) with the verified DPoP proof `proof`.
    pub fn with_proof(self, proof: KeyProof<'a>) -> Self {
        TokenRef {
            proof: Some(proof),
            ..self
        }
    }

    /// The same token, issued to (or presented by) the OAuth 2.0 client `client`.
    pub fn for_client(self, client: &'a str) -> Self {
        TokenRef {
            client: Some(client),
            ..self
        }
    }

    /// The same token, with its `iat` claim (seconds since the Unix epoch).
    pub fn issued_at(self, iat: i64) -> Self {
        TokenRef {
            issued_at: Some(iat),
            ..self
        }
    }

    /// The same token, naming `family` in its family claim.
    pub fn in_family(self, family: &'a FamilyId) -> Self {
        TokenRef {
            family: Some(family),
            ..self
        }
    }
}

/// The successor the app minted for a rotation. It belongs to the presented token's family.
#[derive(Clone, Copy)]
pub struct Successor<'a> {
    /// The successor's `jti`.
    pub jti: &'a str,
    /// The whole successor token; kept only sealed, only for the grace window.
    pub token: &'a str,
    /// The successor's `exp` claim, in seconds since the Unix epoch.
    pub expires_at: i64,
}

impl std::fmt::Debug for Successor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Successor")
            .field("jti", &self.jti)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A refresh-token rotation store. Every operation is atomic; on Redis each one is a single
/// Lua script in a single round trip.
///
/// Implemented by [`RedisStore`](crate::RedisStore) and [`MemoryStore`](crate::MemoryStore),
/// which pass the same conformance suite. Token ids (`jti`) must be unique per user.
pub trait RotationStore: Clone + Send + Sync + 'static {
    /// Records a freshly issued token (a login) as the current token of a new family: the
    /// one its family claim names, else a new random one. A jti (or, in family-claim mode, a
    /// family) the user already has is refused with [`StoreError::DuplicateJti`], except for
    /// the same registration sent again, which returns the same family.
    ///
    /// At the session cap ([`StoreConfig::max_sessions_per_user`]) the login first drops
    /// ended families, then revoked ones, then the least recently used live one (the one
    /// whose last rotation, or login, is oldest).
    ///
    /// A token whose `exp` is outside `0..=`[`MAX_EXPIRES_AT`](crate::MAX_EXPIRES_AT) is
    /// refused with [`StoreError::ExpiryOutOfRange`] by every operation.
    fn register(
        &self,
        user: &str,
        token: TokenRef<'_>,
        metadata: Option<&str>,
    ) -> impl Future<Output = Result<FamilyId, StoreError>> + Send;

    /// Takes in a token minted before the store recorded the app's tokens (turning rotation
    /// on in a running app), so that its holder is not logged out: the caller (the layer,
    /// in its adoption mode) has checked that the token is one to adopt, and calls this
    /// before letting the app answer its refresh, then rotates it with
    /// `token.in_family(adoption.family())`.
    ///
    /// - [`Adoption::Known`]: the token already belongs to a family: the one its family claim
    ///   names, if that family is there (in any state), or the one the token index maps it
    ///   to (without a claim); or it was adopted before, whatever became of that family since.
    ///   Nothing changes, and the rotation that follows answers as for any token: a spent one
    ///   is reuse, a revoked or ended family's is refused.
    /// - [`Adoption::Adopted`]: a new family `family` starts with this token as its current
    ///   token, exactly as [`register`](RotationStore::register) would have recorded it at
    ///   login (metadata, client binding with `token.client`, lifetimes from now, the session
    ///   cap, the token index without a claim), and the store remembers the adoption until
    ///   the token has expired (an hour or two past its `exp`), so the token is never adopted
    ///   twice. `family` is the token's own claim when it has one, else a fresh
    ///   [`FamilyId::random`].
    ///
    /// - [`Adoption::Refused`]: the token may not become a session, and nothing changes:
    ///   [`revoke_all`](RotationStore::revoke_all) (or a reuse with
    ///   [`StoreConfig::revoke_all_on_reuse`](crate::StoreConfig::revoke_all_on_reuse)), or
    ///   [`revoke_client`](RotationStore::revoke_client) for the token's client, ran after
    ///   `token.issued_at` ([`AdoptionRefusal::RevokedAfterIssue`](crate::AdoptionRefusal));
    ///   or the token was issued an absolute session lifetime ago or longer, or has no
    ///   `issued_at` ([`AdoptionRefusal::IssuedTooLongAgo`](crate::AdoptionRefusal)). Those
    ///   revocations leave a mark, per user and per client, kept for the absolute lifetime
    ///   plus two hours: "log out everywhere" ends the user's legacy tokens too, adopted yet or
    ///   not. Revoking one session ([`revoke`](RotationStore::revoke),
    ///   [`revoke_family`](RotationStore::revoke_family)) ends that family only.
    ///
    /// Atomic: of concurrent adoptions of one token, one is `Adopted` and the others `Known`
    /// with the same family; a call sent again after a lost reply is `Known` as well. A
    /// token an hour or more past its `exp` is refused with
    /// [`StoreError::ExpiryOutOfRange`]; a `family` the user already has, unless the token's
    /// claim names it, with [`StoreError::DuplicateJti`].
    fn adopt(
        &self,
        user: &str,
        token: TokenRef<'_>,
        family: &FamilyId,
        metadata: Option<&str>,
    ) -> impl Future<Output = Result<Adoption, StoreError>> + Send;

    /// Spends `presented` and records `successor` as its family's current token, or says
    /// why not. See [`RotationOutcome`]. The same rotation sent again (same presented token,
    /// same successor) returns `Rotated` again.
    fn rotate(
        &self,
        user: &str,
        presented: TokenRef<'_>,
        successor: Successor<'_>,
    ) -> impl Future<Output = Result<RotationOutcome, StoreError>> + Send;

    /// Revokes the family of `token` (current or spent); returns it when a live one was found.
    ///
    /// `token.client` is the client asking (RFC 7009: a client revokes its own tokens
    /// only). A family issued to another client, or issued to a client when `token.client`
    /// is `None`, is left alone and the call answers `None`, as for a token it does not
    /// know: the caller learns nothing about another client's session. A family issued to
    /// no client is revoked whoever asks.
    fn revoke(
        &self,
        user: &str,
        token: TokenRef<'_>,
    ) -> impl Future<Output = Result<Option<FamilyId>, StoreError>> + Send;

    /// Revokes one family; true when it was live.
    fn revoke_family(
        &self,
        user: &str,
        family: &FamilyId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Revokes every live family of the user and returns how many there were.
    fn revoke_all(&self, user: &str) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Revokes every live family of the user issued to the OAuth 2.0 client `client` (a
    /// "connected apps" page, a user withdrawing consent) and returns how many there were.
    /// Families of other clients, or of none, are left alone. One atomic step, like
    /// [`revoke_all`](RotationStore::revoke_all).
    fn revoke_client(
        &self,
        user: &str,
        client: &str,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The user's live sessions, oldest first.
    fn list(&self, user: &str)
    -> impl Future<Output = Result<Vec<SessionInfo>, StoreError>> + Send;

    /// The user's live sessions issued to the OAuth 2.0 client `client`, oldest first: what
    /// [`list`](RotationStore::list) shows, filtered on [`SessionInfo::client`] (one `list`
    /// call; the store reads the user's whole hash either way).
    fn list_client(
        &self,
        user: &str,
        client: &str,
    ) -> impl Future<Output = Result<Vec<SessionInfo>, StoreError>> + Send {
        async move {
            let mut sessions = self.list(user).await?;
            sessions.retain(|s| s.client.as_deref() == Some(client));
            Ok(sessions)
        }
    }

    /// The live session whose **current** token `token` is, if any: what an RFC 7662
    /// introspection answers `active` for. A spent token (even inside its grace window), a
    /// revoked or ended family's, or a token the store never recorded gives `None`. With a
    /// family claim the session must be the one the claim names. `token.client` is not
    /// checked: the session's [`client`](SessionInfo::client) is in the answer.
    ///
    /// One [`list`](RotationStore::list) call (`FCALL_RO` on Redis, so a replica can answer;
    /// O(the user's sessions)): it writes nothing, not even a prune.
    fn introspect(
        &self,
        user: &str,
        token: TokenRef<'_>,
    ) -> impl Future<Output = Result<Option<SessionInfo>, StoreError>> + Send {
        async move {
            crate::rules::check_expiry(token.expires_at)?;
            let sessions = self.list(user).await?;
            Ok(sessions.into_iter().find(|s| {
                s.is_current(token.jti) && token.family.is_none_or(|family| *family == s.family)
            }))
        }
    }

    /// Removes ended families everywhere and returns how many. Optional housekeeping: keys
    /// carry TTLs and writes prune, so nothing grows without it.
    fn cleanup_expired(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Checks that the store answers (for health checks).
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The longest one call may take before the store answers with an error: for the Redis
    /// store, a write's whole wait, its timeout plus its
    /// [outcome wait](StoreConfig::outcome_wait). A caller (the layer) waits a little longer
    /// before it gives up on the call itself: giving up first would answer 503 for a write
    /// that may have run, and the client's retry, with a new successor, could only count as
    /// a grace replay of it, or as reuse. `None`, the default: the store sets no bound of its
    /// own, and the caller's applies.
    fn call_timeout(&self) -> Option<Duration> {
        None
    }

    /// How long a session lives without being used: an app whose refresh tokens last longer
    /// has them refused once their session ends, and the layer warns about it. `None`, the
    /// default: the store does not end sessions by itself.
    fn session_lifetime(&self) -> Option<Duration> {
        None
    }
}

/// The live sessions among `families` at `now`, oldest first.
pub(crate) fn sessions<'a>(
    families: impl Iterator<Item = (&'a str, &'a Family)>,
    now: i64,
) -> Vec<SessionInfo> {
    let mut list: Vec<SessionInfo> = families
        .filter(|(_, f)| f.is_live(now))
        .map(|(id, f)| SessionInfo {
            family: FamilyId::from(id),
            created_at: time(f.created),
            last_rotated_at: time(f.last_rotated),
            expires_at: time(f.ends_at()),
            metadata: f.metadata.clone(),
            client: f.client_id.clone(),
            key_thumbprint: f.key_thumbprint.clone(),
            current: f.current,
        })
        .collect();
    list.sort_by(|a, b| (a.created_at, &a.family).cmp(&(b.created_at, &b.family)));
    list
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// What a family's metadata field holds: its client id, its DPoP key's thumbprint and its
/// metadata.
#[cfg(feature = "redis")]
pub(crate) type MetadataField = (Option<String>, Option<String>, Option<String>);

/// A family's metadata field, as `start_family` (`redis/scripts/register.lua`) writes it,
/// split into the client id, the key's thumbprint and the metadata: for a family bound to a
/// DPoP key, first the byte 0xFE, the thumbprint, 0xFE; then the metadata alone for a
/// family issued to no client, else the byte 0xFF, the client id, 0xFF, then the metadata
/// (possibly empty). No part is anything but UTF-8, which never holds 0xFE or 0xFF, so the
/// split is unambiguous, and a family without a client or a key pays no byte for them.
/// `None`: not such a field.
#[cfg(feature = "redis")]
pub(crate) fn split_metadata_field(value: &[u8]) -> Option<MetadataField> {
    use crate::keys::{METADATA_MARK, THUMBPRINT_MARK};
    let text = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).ok();
    let (thumbprint, value) = match value.strip_prefix(&[THUMBPRINT_MARK]) {
        Some(rest) => {
            let end = rest.iter().position(|&b| b == THUMBPRINT_MARK)?;
            (Some(text(&rest[..end])?), &rest[end + 1..])
        }
        None => (None, value),
    };
    // The client's mark is the metadata field's own (see `keys::METADATA_MARK`).
    let (client, metadata) = match value.strip_prefix(&[METADATA_MARK]) {
        Some(rest) => {
            let end = rest.iter().position(|&b| b == METADATA_MARK)?;
            (Some(text(&rest[..end])?), &rest[end + 1..])
        }
        None => (None, value),
    };
    let metadata = match metadata {
        [] => None,
        bytes => Some(text(bytes)?),
    };
    Some((client, thumbprint, metadata))
}

pub(crate) fn clip_metadata(metadata: Option<&str>) -> Option<&str> {
    metadata.filter(|m| !m.is_empty()).map(|m| {
        let mut end = m.len().min(MAX_METADATA_LEN);
        while !m.is_char_boundary(end) {
            end -= 1;
        }
        &m[..end]
    })
}

/// Reports the event a rotation outcome stands for.
pub(crate) fn report_rotation(config: &StoreConfig, user: &str, outcome: &RotationOutcome) {
    use crate::RotationEventKind as Kind;
    let kind = match outcome {
        RotationOutcome::Rotated { .. } => Kind::Rotated,
        RotationOutcome::GraceReplay { .. } => Kind::GraceReplay,
        RotationOutcome::ReuseDetected { .. } => Kind::ReuseDetected,
        RotationOutcome::Unknown => Kind::UnknownToken,
        RotationOutcome::WrongClient { .. } => Kind::WrongClient,
        RotationOutcome::WrongKey { .. } => Kind::WrongKey,
        _ => return,
    };
    config.emit(kind, user, outcome.family());
}

#[cfg(all(test, feature = "redis"))]
mod tests {
    use super::split_metadata_field;

    #[test]
    fn a_metadata_field_splits_into_client_thumbprint_and_metadata() {
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(
            split_metadata_field(b"Firefox"),
            Some((None, None, some("Firefox")))
        );
        assert_eq!(
            split_metadata_field(b"\xffapp-a\xffFirefox"),
            Some((some("app-a"), None, some("Firefox")))
        );
        assert_eq!(
            split_metadata_field(b"\xffapp-a\xff"),
            Some((some("app-a"), None, None))
        );
        assert_eq!(
            split_metadata_field(b"\xfejkt-1\xfe\xffapp-a\xffFirefox"),
            Some((some("app-a"), some("jkt-1"), some("Firefox")))
        );
        assert_eq!(
            split_metadata_field(b"\xfejkt-1\xfe"),
            Some((None, some("jkt-1"), None))
        );
        assert_eq!(split_metadata_field(b"\xffunterminated"), None);
        assert_eq!(split_metadata_field(b"\xfeunterminated"), None);
        assert_eq!(split_metadata_field(b"\xfd"), None, "not UTF-8");
    }
}

impl TokenRef<'_> {
    /// The presenter of this token: the digests of its client and of its DPoP binding.
    pub(crate) fn presenter(&self) -> crate::rules::Presenter {
        crate::rules::Presenter {
            client: self.client.map(crate::digest::client_digest),
            keyed: self
                .proof
                .map(|proof| crate::digest::key_binding_digest(self.client, proof.thumbprint)),
            binds: self.proof.is_some_and(|proof| proof.binds),
        }
    }
}
