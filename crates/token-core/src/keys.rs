//! The key schema.
//!
//! ```text
//! <prefix>{u<user>}:s             hash: the user's sessions. Field <family id> holds the
//!                                 family's packed record (at most 63 bytes, see
//!                                 `rules::Family`); field 0xFF <family id> its metadata,
//!                                 when it has any, after 0xFF <client id> 0xFF for a
//!                                 family issued to an OAuth client. TTL = the latest end
//!                                 of its families.
//! <prefix>{u<user>}:g:<family>    the sealed successor of the family's latest rotation (the
//!                                 next one overwrites it); TTL = grace. Without a family
//! <prefix>{u<user>}:g:<digest>    claim it is the presented token's, by its digest
//! <prefix>{u<user>}:t:<hour>      token index, only without a family claim: hash from raw
//!                                 jti digest to family id, for tokens expiring in that hour;
//!                                 TTL = the latest of its entries' ends (each entry: an hour
//!                                 past its hour's end, or its family's absolute end if that
//!                                 is sooner)
//! <prefix>{u<user>}:t:<hour>:<x>  the hour's shard x (0-f, by the digest's first byte) that
//!                                 takes its tokens once the bucket holds 64
//! <prefix>{u<user>}:a             adoption record: hash from raw jti digest to family id,
//!                                 for tokens minted before the store recorded them and
//!                                 adopted since; TTL = the latest of its tokens' `exp`, plus
//!                                 an hour or two (as the token index)
//! <prefix>{u<user>}:r             revocation marks: when all the user's sessions, or a
//!                                 client's, were last revoked
//! <prefix>{d<digest>}             a spent DPoP proof, by its jti's digest, whoever's
//!                                 session it came with: a hash tag of its own (on a Cluster
//!                                 a slot of its own); TTL = PROOF_JTI_LIFETIME
//! ```
//!
//! `<user>` is the user id in unpadded URL-safe base64: an injective encoding whose alphabet
//! has no `{`, `}`, `:`, `*` or glob character, so no user id can name another user's keys,
//! and the hash tag is never empty. Every key of a user shares that hash tag and so one
//! cluster slot: every script touches one slot. A metadata field starts with the byte 0xFF,
//! which no UTF-8 family id can start with, so the two kinds of field never collide.
//!
//! Records stay at most 64 bytes so that Redis keeps a user's hash in its compact listpack
//! encoding (`hash-max-listpack-value`, 64 by default): metadata longer than that (a long
//! user agent) moves that user's hash to a hash table, which costs about 170 bytes more per
//! session (see `BENCHMARKS.md`).

use crate::digest::{Digest, proof_digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The keys of one user.
#[derive(Clone, Debug)]
pub(crate) struct UserKeys {
    /// `<prefix>{u<user>}`: every key of the user starts with it.
    base: String,
}

impl UserKeys {
    pub(crate) fn new(prefix: &str, user: &str) -> Self {
        UserKeys {
            base: format!("{prefix}{{u{}}}", b64(user.as_bytes())),
        }
    }

    /// The user's sessions: a hash of family records.
    pub(crate) fn index(&self) -> String {
        format!("{}:s", self.base)
    }

    /// The grace slot of a presented token: its family's, one per family that the next
    /// rotation overwrites, when the token names its family; else the token's own, by its
    /// digest (only the script learns the family then, and a script must name its keys
    /// up front, or a Cluster slot migration fails it). Overwriting one key per family
    /// costs Redis less than creating and expiring one per rotation.
    pub(crate) fn grace(&self, family: Option<&str>, digest: &Digest) -> String {
        match family {
            Some(family) => format!("{}:g:{family}", self.base),
            None => format!("{}:g:{}", self.base, b64(digest)),
        }
    }

    /// The associated data a successor is sealed with: the user and the digest of the
    /// token it answers, so a sealed successor opens only as the replay of that very token.
    pub(crate) fn grace_aad(&self, digest: &Digest) -> String {
        format!("{}:g:{}", self.base, b64(digest))
    }

    /// The user's adoption record: which pre-existing tokens were adopted, into which family.
    pub(crate) fn adopted(&self) -> String {
        format!("{}:a", self.base)
    }

    /// The user's revocation marks: when all the user's sessions (field `''`), or all those
    /// of a client (field: the client id), were last revoked, so that adoption refuses the
    /// tokens issued before (see `rules::adoption_refusal`). The scripts derive it from the
    /// session hash's name (`revocations_of` in `common.lua`), so no call sends it.
    pub(crate) fn revocations(&self) -> String {
        format!("{}:r", self.base)
    }

    /// The token-index bucket of tokens expiring at `exp` (seconds since the epoch).
    pub(crate) fn tokens(&self, exp: i64) -> String {
        format!("{}:t:{}", self.base, crate::rules::token_bucket(exp))
    }

    /// The shard of that bucket that takes `digest` once the bucket is full (see
    /// `index_token` in `common.lua`): one of 64, by the low six bits of the digest's first
    /// byte. Redis only:
    /// the memory store's index is a hash map, which no length slows down.
    #[cfg(feature = "redis")]
    pub(crate) fn token_shard(&self, exp: i64, digest: &Digest) -> String {
        format!(
            "{}:t:{}:{:02x}",
            self.base,
            crate::rules::token_bucket(exp),
            digest[0] & 0x3f
        )
    }
}

/// The mark of a spent DPoP proof under `prefix`, by the digest of its `jti`: one per
/// server, not per user, since a proof is good for one call whatever token comes with it
/// (RFC 9449, section 11.1; a client may use one key for several users). Kept for
/// [`PROOF_JTI_LIFETIME`](crate::PROOF_JTI_LIFETIME). Its hash tag is its own: outside a
/// Cluster the call it came with checks and sets it in the same atomic step; on a Cluster
/// it lives in a slot of its own and is spent first (see `RedisStore`).
pub(crate) fn proof_mark(prefix: &str, jti: &str) -> String {
    format!("{prefix}{{d{}}}", b64(&proof_digest(jti)))
}

/// The first byte of a metadata field in a user's hash (see the schema above).
#[cfg(feature = "redis")]
pub(crate) const METADATA_MARK: u8 = 0xFF;

/// The byte around a DPoP key's thumbprint at the start of a metadata field's value.
#[cfg(feature = "redis")]
pub(crate) const THUMBPRINT_MARK: u8 = 0xFE;

/// `text` with the glob characters of `SCAN MATCH` escaped.
#[cfg(feature = "redis")]
pub(crate) fn escape_glob(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 4);
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// What a key under a prefix is, by the schema above.
#[cfg(feature = "redis")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyKind {
    /// A user's session hash.
    SessionIndex,
    /// A sealed successor kept for the grace window.
    GraceSlot,
    /// A token-index bucket (apps without a family claim).
    TokenIndex,
    /// A user's adoption record: the pre-existing tokens taken into the store (see
    /// [`RotationStore::adopt`](crate::RotationStore::adopt)).
    Adopted,
    /// The mark of a spent DPoP proof, kept for
    /// [`PROOF_JTI_LIFETIME`](crate::PROOF_JTI_LIFETIME).
    SpentProof,
    /// A user's revocation marks: when all the user's sessions, or a client's, were last
    /// revoked (what adoption checks), kept for the absolute lifetime and two hours.
    RevocationMarks,
    /// Not a key of the store.
    Other,
}

/// The kind of `key` under `prefix`.
#[cfg(feature = "redis")]
pub(crate) fn key_kind(prefix: &str, key: &str) -> KeyKind {
    if user_of_index_key(prefix, key).is_some() {
        return KeyKind::SessionIndex;
    }
    if let Some(tag) = key
        .strip_prefix(prefix)
        .and_then(|k| k.strip_prefix("{d"))
        .and_then(|k| k.strip_suffix('}'))
        && !tag.is_empty()
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return KeyKind::SpentProof;
    }
    let Some(rest) = key.strip_prefix(prefix).and_then(|k| k.strip_prefix("{u")) else {
        return KeyKind::Other;
    };
    let Some((tag, tail)) = rest.split_once('}') else {
        return KeyKind::Other;
    };
    if tag.is_empty()
        || !tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return KeyKind::Other;
    }
    if tail.starts_with(":g:") {
        KeyKind::GraceSlot
    } else if tail.starts_with(":t:") {
        KeyKind::TokenIndex
    } else if tail == ":a" {
        KeyKind::Adopted
    } else if tail == ":r" {
        KeyKind::RevocationMarks
    } else {
        KeyKind::Other
    }
}

/// The `SCAN MATCH` pattern of every session index under `prefix`. It can also match other
/// keys (a family id may end in `:s`); [`user_of_index_key`] tells them apart.
#[cfg(feature = "redis")]
pub(crate) fn index_pattern(prefix: &str) -> String {
    format!("{}{{u*}}:s", escape_glob(prefix))
}

/// The user whose session index `key` is, when it is one under `prefix`.
#[cfg(feature = "redis")]
pub(crate) fn user_of_index_key(prefix: &str, key: &str) -> Option<String> {
    let encoded = key
        .strip_prefix(prefix)?
        .strip_prefix("{u")?
        .strip_suffix("}:s")?;
    let bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_tag(key: &str) -> &str {
        &key[key.find('{').unwrap() + 1..key.find('}').unwrap()]
    }

    #[test]
    fn hostile_user_ids_stay_inside_their_hash_tag() {
        for user in ["a}b", "{x}", "a:b", "*", "", "x y", "é✓", "}{"] {
            let keys = UserKeys::new("rt:", user);
            let tag = hash_tag(&keys.index()).to_owned();
            assert!(!tag.is_empty());
            assert!(
                tag.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            );
            for key in [
                keys.index(),
                keys.grace(Some("d"), &[0; 12]),
                keys.tokens(7200),
                keys.adopted(),
                keys.revocations(),
            ] {
                assert_eq!(hash_tag(&key), tag, "user {user:?}: {key}");
            }
            assert_eq!(
                user_of_index_key("rt:", &keys.index()).as_deref(),
                Some(user)
            );
        }
    }

    #[test]
    fn a_proof_mark_names_no_user_and_has_a_hash_tag_of_its_own() {
        let mark = proof_mark("rt:", "proof-1");
        assert!(hash_tag(&mark).starts_with('d'), "{mark}");
        assert_ne!(
            hash_tag(&mark),
            hash_tag(&UserKeys::new("rt:", "alice").index())
        );
        assert_ne!(mark, proof_mark("rt:", "proof-2"));
        assert_eq!(user_of_index_key("rt:", &mark), None);
    }

    #[test]
    fn distinct_users_get_distinct_keys() {
        let index = |user| UserKeys::new("rt:", user).index();
        assert_ne!(index("a"), index("a:"));
        assert_ne!(index("a}"), index("a"));
    }

    #[test]
    fn every_key_of_the_schema_has_its_kind() {
        let keys = UserKeys::new("rt:", "a}b");
        assert_eq!(key_kind("rt:", &keys.index()), KeyKind::SessionIndex);
        assert_eq!(
            key_kind("rt:", &keys.grace(Some("d"), &[0; 12])),
            KeyKind::GraceSlot
        );
        assert_eq!(key_kind("rt:", &keys.tokens(7200)), KeyKind::TokenIndex);
        assert_eq!(key_kind("rt:", &keys.adopted()), KeyKind::Adopted);
        assert_eq!(
            key_kind("rt:", &keys.revocations()),
            KeyKind::RevocationMarks
        );
        assert_eq!(
            key_kind("rt:", &proof_mark("rt:", "p1")),
            KeyKind::SpentProof
        );
        assert_eq!(user_of_index_key("rt:", &keys.adopted()), None);
        assert_eq!(key_kind("rt:", "rt:other"), KeyKind::Other);
        assert_eq!(key_kind("rt:", "rt:{d}"), KeyKind::Other);
        assert_eq!(key_kind("other:", &keys.index()), KeyKind::Other);
    }

    #[test]
    fn only_session_indexes_name_a_user() {
        let keys = UserKeys::new("rt:", "alice");
        assert_eq!(user_of_index_key("rt:", &keys.grace(None, &[1; 12])), None);
        assert_eq!(user_of_index_key("other:", &keys.index()), None);
    }
}
