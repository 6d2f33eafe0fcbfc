//! The key schema.
//!
//! ```text
//! <prefix>{<user>}              the user's record: every family of the user (msgpack)
//! <prefix>{<user>}:g:<digest>   the sealed successor of a just-rotated token, for `grace`
//! ```
//!
//! `<user>` is the user id in unpadded URL-safe base64 behind a `u`: an injective encoding
//! whose alphabet has no `{`, `}`, `:`, `*` or glob character, so no user id can name another
//! user's keys, and the hash tag is never empty. Both keys of a user share that hash tag and
//! so one cluster slot.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The key of a user's record.
pub(crate) fn record_key(prefix: &str, user: &str) -> String {
    format!("{prefix}{{u{}}}", b64(user.as_bytes()))
}

/// The grace slot of a presented token (by its digest) in a user's record.
pub(crate) fn grace_key(record_key: &str, digest: &str) -> String {
    format!("{record_key}:g:{digest}")
}

/// The length of a [`jti_digest`].
pub(crate) const DIGEST_LEN: usize = 16;

/// The digest a spent jti is remembered by: 96 bits of SHA-256, URL-safe base64
/// (`DIGEST_LEN` characters).
pub(crate) fn jti_digest(jti: &str) -> String {
    let hash = Sha256::digest(jti.as_bytes());
    b64(&hash[..12])
}

/// The `SCAN MATCH` pattern of every user record under `prefix`.
pub(crate) fn record_pattern(prefix: &str) -> String {
    let mut escaped = String::with_capacity(prefix.len() + 4);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    format!("{escaped}{{u*}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_user_ids_stay_inside_their_hash_tag() {
        for user in ["a}b", "{x}", "a:b", "*", "", "x y", "é✓", "}{"] {
            let key = record_key("rt:", user);
            let tag = &key[key.find('{').unwrap() + 1..key.find('}').unwrap()];
            assert_eq!(format!("rt:{{{tag}}}"), key, "user {user:?}");
            assert!(!tag.is_empty());
            assert!(
                tag.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            );
        }
    }

    #[test]
    fn distinct_users_get_distinct_keys() {
        assert_ne!(record_key("rt:", "a"), record_key("rt:", "a:"));
        assert_ne!(record_key("rt:", "a}"), record_key("rt:", "a"));
    }
}
