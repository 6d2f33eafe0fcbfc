//! Read-only helpers for operators' tools (the `token-admin` command line): where a user's
//! record lives, how to find every record with `SCAN`, and what a raw record holds.
//!
//! Applications never need these: the [`RotationStore`](crate::RotationStore) operations
//! are the whole API. They exist so a tool can report on a live Redis (key counts, memory,
//! sessions per user) without duplicating the key schema or the record format.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::StoreError;

/// The Redis key of `user`'s record under `prefix` (`<prefix>{u<base64url(user)>}`).
///
/// ```
/// assert_eq!(token_core::admin::record_key("rt:", "alice"), "rt:{uYWxpY2U}");
/// ```
pub fn record_key(prefix: &str, user: &str) -> String {
    crate::keys::record_key(prefix, user)
}

/// The `SCAN MATCH` pattern of every user record under `prefix` (glob characters in the
/// prefix escaped). Grace slots (`…}:g:…`) do not match it.
pub fn record_pattern(prefix: &str) -> String {
    crate::keys::record_pattern(prefix)
}

/// The user a record key names, when `key` is a record key under `prefix`.
///
/// ```
/// use token_core::admin::{record_key, user_of_record_key};
/// assert_eq!(user_of_record_key("rt:", &record_key("rt:", "a}b")).as_deref(), Some("a}b"));
/// assert_eq!(user_of_record_key("rt:", "rt:{uYWxpY2U}:g:x"), None);
/// ```
pub fn user_of_record_key(prefix: &str, key: &str) -> Option<String> {
    let encoded = key
        .strip_prefix(prefix)?
        .strip_prefix("{u")?
        .strip_suffix('}')?;
    let bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
    String::from_utf8(bytes).ok()
}

/// What one user's record holds at a given time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordSummary {
    /// Families that are neither revoked nor past their end: live sessions.
    pub live: u64,
    /// Revoked families kept as tombstones until their end (so late tokens read `revoked`).
    pub revoked: u64,
    /// Families past their end, still in the record until its next write prunes them.
    pub ended: u64,
}

/// Reads a raw record (the value of a [`record_key`]) as of `now_ms`, milliseconds since
/// the epoch on the Redis server's clock (`TIME`).
pub fn summarize_record(raw: &[u8], now_ms: i64) -> Result<RecordSummary, StoreError> {
    let record = crate::redis::decode(raw)?;
    let mut summary = RecordSummary::default();
    for family in record.values() {
        if family.ends_at() <= now_ms {
            summary.ended += 1;
        } else if family.revoked.is_some() {
            summary.revoked += 1;
        } else {
            summary.live += 1;
        }
    }
    Ok(summary)
}

/// How far [`RedisStore::cleanup_expired_with_progress`](crate::RedisStore::cleanup_expired_with_progress)
/// got, reported after each `SCAN` batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CleanupProgress {
    /// `SCAN` batches done (each covers up to about 1000 keys of the keyspace).
    pub batches: u64,
    /// User records visited so far.
    pub records: u64,
    /// Ended families removed so far.
    pub pruned: u64,
}
