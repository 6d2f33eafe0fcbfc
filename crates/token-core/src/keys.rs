//! The key schema.
//!
//! ```text
//! <prefix>{u<user>}:s             sorted set: the user's families, scored by their end
//!                                 (revoked ones far below, see `rules::REVOKED_SHIFT`)
//! <prefix>{u<user>}:f:<family>    one family's record (msgpack); TTL = the family's end
//! <prefix>{u<user>}:g:<digest>    the sealed successor of a just-rotated token; TTL = grace
//! <prefix>{u<user>}:t:<hour>      token index, only without a family claim: hash from jti
//!                                 digest to family, for tokens expiring in that hour;
//!                                 TTL = an hour past the hour's end
//! ```
//!
//! `<user>` is the user id in unpadded URL-safe base64: an injective encoding whose alphabet
//! has no `{`, `}`, `:`, `*` or glob character, so no user id can name another user's keys,
//! and the hash tag is never empty. Every key of a user shares that hash tag and so one
//! cluster slot: every script touches one slot.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

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

    /// The user's session index.
    pub(crate) fn index(&self) -> String {
        format!("{}:s", self.base)
    }

    /// What a family id is appended to for its record's key (the scripts build family keys
    /// they learn from the token index with it).
    #[cfg(feature = "redis")]
    pub(crate) fn family_prefix(&self) -> String {
        format!("{}:f:", self.base)
    }

    /// One family's record.
    #[cfg(any(feature = "redis", test))]
    pub(crate) fn family(&self, family: &str) -> String {
        format!("{}:f:{family}", self.base)
    }

    /// The grace slot of a presented token, by its digest.
    pub(crate) fn grace(&self, digest: &str) -> String {
        format!("{}:g:{digest}", self.base)
    }

    /// The token-index bucket of tokens expiring at `exp` (seconds since the epoch).
    pub(crate) fn tokens(&self, exp: i64) -> String {
        format!("{}:t:{}", self.base, crate::rules::token_bucket(exp))
    }
}

/// The digest a jti is remembered by once spent (and in the token index): 96 bits of
/// SHA-256, URL-safe base64 (16 characters).
pub(crate) fn jti_digest(jti: &str) -> String {
    let hash = Sha256::digest(jti.as_bytes());
    b64(&hash[..12])
}

/// The digest a family keeps of the OAuth 2.0 client it is bound to: 96 bits of SHA-256 over
/// a domain-separated input, URL-safe base64 (16 characters), so a record has a fixed size
/// whatever the length of the client id.
pub(crate) fn client_digest(client: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(b"token-rotation client v1\0");
    hash.update(client.as_bytes());
    b64(&hash.finalize()[..12])
}

/// `text` with the glob characters of `SCAN MATCH` escaped.
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyKind {
    /// A user's session index.
    SessionIndex,
    /// A family's record.
    FamilyRecord,
    /// A sealed successor kept for the grace window.
    GraceSlot,
    /// A token-index bucket (apps without a family claim).
    TokenIndex,
    /// Not a key of the store.
    Other,
}

/// The kind of `key` under `prefix`.
pub(crate) fn key_kind(prefix: &str, key: &str) -> KeyKind {
    if user_of_index_key(prefix, key).is_some() {
        return KeyKind::SessionIndex;
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
    if tail.starts_with(":f:") {
        KeyKind::FamilyRecord
    } else if tail.starts_with(":g:") {
        KeyKind::GraceSlot
    } else if tail.starts_with(":t:") {
        KeyKind::TokenIndex
    } else {
        KeyKind::Other
    }
}

/// The `SCAN MATCH` pattern of every session index under `prefix`. It can also match other
/// keys (a family id may end in `:s`); [`user_of_index_key`] tells them apart.
pub(crate) fn index_pattern(prefix: &str) -> String {
    format!("{}{{u*}}:s", escape_glob(prefix))
}

/// The user whose session index `key` is, when it is one under `prefix`.
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
                keys.family("}{x"),
                keys.grace("d"),
                keys.tokens(7200),
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
    fn distinct_users_get_distinct_keys() {
        let index = |user| UserKeys::new("rt:", user).index();
        assert_ne!(index("a"), index("a:"));
        assert_ne!(index("a}"), index("a"));
    }

    #[test]
    fn every_key_of_the_schema_has_its_kind() {
        let keys = UserKeys::new("rt:", "a}b");
        assert_eq!(key_kind("rt:", &keys.index()), KeyKind::SessionIndex);
        assert_eq!(key_kind("rt:", &keys.family("x:s")), KeyKind::FamilyRecord);
        assert_eq!(key_kind("rt:", &keys.grace("d")), KeyKind::GraceSlot);
        assert_eq!(key_kind("rt:", &keys.tokens(7200)), KeyKind::TokenIndex);
        assert_eq!(key_kind("rt:", "rt:other"), KeyKind::Other);
        assert_eq!(key_kind("other:", &keys.index()), KeyKind::Other);
    }

    #[test]
    fn only_session_indexes_name_a_user() {
        let keys = UserKeys::new("rt:", "alice");
        assert_eq!(user_of_index_key("rt:", &keys.family("x:s")), None);
        assert_eq!(user_of_index_key("rt:", &keys.grace("abc")), None);
        assert_eq!(user_of_index_key("other:", &keys.index()), None);
    }
}
