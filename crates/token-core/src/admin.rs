//! Read-only helpers for operators' tools (the `token-admin` command line): where a user's
//! session index lives, how to find every index with `SCAN`, and what an index holds.
//!
//! Applications never need these: the [`RotationStore`](crate::RotationStore) operations
//! are the whole API. They exist so a tool can report on a live Redis (key counts, memory,
//! sessions per user) without duplicating the key schema or the index scores.

pub use crate::keys::KeyKind;

/// The `SCAN MATCH` pattern of every key under `prefix` (glob characters escaped).
///
/// ```
/// assert_eq!(token_core::admin::prefix_pattern("a*b:"), "a\\*b:*");
/// ```
pub fn prefix_pattern(prefix: &str) -> String {
    format!("{}*", crate::keys::escape_glob(prefix))
}

/// What `key` is in the store's schema under `prefix`.
///
/// ```
/// use token_core::admin::{KeyKind, index_key, key_kind};
/// assert_eq!(key_kind("rt:", &index_key("rt:", "alice")), KeyKind::SessionIndex);
/// assert_eq!(key_kind("rt:", "rt:{uYWxpY2U}:g:abc"), KeyKind::GraceSlot);
/// assert_eq!(key_kind("rt:", "rt:{dYWJj}"), KeyKind::SpentProof);
/// ```
pub fn key_kind(prefix: &str, key: &str) -> KeyKind {
    crate::keys::key_kind(prefix, key)
}

/// The Redis key of `user`'s session index under `prefix` (`<prefix>{u<base64url(user)>}:s`):
/// a hash of the user's family records. It exists while the user has a session.
///
/// ```
/// assert_eq!(token_core::admin::index_key("rt:", "alice"), "rt:{uYWxpY2U}:s");
/// ```
pub fn index_key(prefix: &str, user: &str) -> String {
    crate::keys::UserKeys::new(prefix, user).index()
}

/// The `SCAN MATCH` pattern of every session index under `prefix` (glob characters in the
/// prefix escaped). It may also match a family record whose id ends in `:s`:
/// [`user_of_index_key`] tells them apart.
pub fn index_pattern(prefix: &str) -> String {
    crate::keys::index_pattern(prefix)
}

/// The user a session index key names, when `key` is one under `prefix`.
///
/// ```
/// use token_core::admin::{index_key, user_of_index_key};
/// assert_eq!(user_of_index_key("rt:", &index_key("rt:", "a}b")).as_deref(), Some("a}b"));
/// assert_eq!(user_of_index_key("rt:", "rt:{uYWxpY2U}:g:x"), None);
/// ```
pub fn user_of_index_key(prefix: &str, key: &str) -> Option<String> {
    crate::keys::user_of_index_key(prefix, key)
}

/// What one user's sessions are at a given time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexSummary {
    /// Families that are neither revoked nor past their end: live sessions.
    pub live: u64,
    /// Revoked families kept as tombstones until their end (so late tokens read `revoked`).
    pub revoked: u64,
    /// Families past their end, still in the index until the next login or cleanup prunes
    /// them.
    pub ended: u64,
}

/// Reads a session index (`HGETALL <index_key>`: field and value pairs) as of `now_ms`,
/// milliseconds since the epoch on the Redis server's clock (`TIME`). Metadata fields are
/// skipped; a record this version cannot read counts as ended.
pub fn summarize_index<F, V>(fields: impl IntoIterator<Item = (F, V)>, now_ms: i64) -> IndexSummary
where
    F: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let mut summary = IndexSummary::default();
    for (field, value) in fields {
        if field.as_ref().first() == Some(&crate::keys::METADATA_MARK) {
            continue;
        }
        match crate::record::decode(value.as_ref()) {
            Ok(f) if f.is_live(now_ms) => summary.live += 1,
            Ok(f) if f.is_present(now_ms) => summary.revoked += 1,
            _ => summary.ended += 1,
        }
    }
    summary
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

/// The Redis URL as messages may show it: parsed the way redis parses it (with the `url`
/// crate, so a password holding `@`, `:` or percent-escapes is found whole), then with every
/// place a secret can sit masked as `***`:
///
/// - the password (`redis://user:***@host`);
/// - a lone user part with no password (`redis://***@host`): some clients read it as the
///   password, so it may well be one;
/// - the query, except the values of `db`, `protocol` and `user` (`redis+unix:///s?pass=***`);
/// - a fragment other than `#insecure`.
///
/// A URL that does not parse is not shown at all: where its password ends cannot be known.
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub fn redact_url(url: &str) -> String {
    const NOT_SHOWN: &str = "(not shown: it does not parse as a URL)";
    let Ok(mut parsed) = url::Url::parse(url) else {
        return NOT_SHOWN.to_owned();
    };
    let masked = if parsed.password().is_some() {
        parsed.set_password(Some("***"))
    } else if !parsed.username().is_empty() {
        parsed.set_username("***")
    } else {
        Ok(())
    };
    if masked.is_err() {
        return NOT_SHOWN.to_owned();
    }
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(key, value)| match key.as_ref() {
                "db" | "protocol" | "user" => (key.into_owned(), value.into_owned()),
                "pass" | "password" => (key.into_owned(), "***".to_owned()),
                _ => ("***".to_owned(), "***".to_owned()),
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    if parsed.fragment().is_some_and(|f| f != "insecure") {
        parsed.set_fragment(Some("***"));
    }
    parsed.into()
}

#[cfg(all(test, feature = "redis"))]
mod tests {
    use super::redact_url as redact;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(redact("redis://:s3cret@h:6379/0"), "redis://:***@h:6379/0");
        assert_eq!(redact("redis://me:s3cret@h"), "redis://me:***@h");
        assert_eq!(redact("redis://h:6379"), "redis://h:6379");
        assert_eq!(
            redact("rediss://h:6380/#insecure"),
            "rediss://h:6380/#insecure"
        );
    }

    #[test]
    fn a_password_holding_at_signs_and_colons_is_masked_whole() {
        for (url, shown) in [
            ("redis://:p@ss@host", "redis://:***@host"),
            ("redis://:p@ss@host:6379/2", "redis://:***@host:6379/2"),
            ("redis://me:p@ss:w@rd@host", "redis://me:***@host"),
            ("redis://me:p%40ss@host", "redis://me:***@host"),
            (
                "rediss://me:p@ss@[::1]:6380/",
                "rediss://me:***@[::1]:6380/",
            ),
        ] {
            assert_eq!(redact(url), shown, "{url}");
        }
    }

    #[test]
    fn a_user_part_alone_may_be_a_password() {
        assert_eq!(redact("redis://s3cret@host"), "redis://***@host");
        assert_eq!(redact("redis://p@ss@host/0"), "redis://***@host/0");
    }

    #[test]
    fn secrets_in_the_query_and_fragment_are_masked() {
        assert_eq!(
            redact("redis+unix:///run/redis.sock?db=2&pass=s3cret&user=ops"),
            "redis+unix:///run/redis.sock?db=2&pass=***&user=ops"
        );
        assert_eq!(
            redact("unix:///run/redis.sock?password=s3cret"),
            "unix:///run/redis.sock?password=***"
        );
        assert_eq!(
            redact("redis://h:6379/?protocol=resp3&s3cret"),
            "redis://h:6379/?protocol=resp3&***=***"
        );
        // `#` ends the authority: what follows may be the rest of a password.
        assert_eq!(redact("redis://me:123#s3cret@h"), "redis://me:123#***");
    }

    #[test]
    fn a_url_that_does_not_parse_is_not_shown() {
        for url in [
            "not a url",
            "redis://:p@ss@host:notaport/",
            "redis://:pa#ss@host",
            "redis://:p@ss word@",
        ] {
            let shown = redact(url);
            assert!(shown.contains("not shown"), "{url}: {shown}");
            assert!(!shown.contains("ss"), "{url}: {shown}");
        }
    }
}
