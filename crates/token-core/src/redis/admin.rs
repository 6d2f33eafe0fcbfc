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
        match super::record::decode(value.as_ref()) {
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

/// The Redis URL (or comma-separated list of URLs) as messages may show it, with every place
/// a secret can sit masked as `***`. It reads the text itself and never a URL parser's view
/// of it: generated passwords hold `/`, `#`, `?`, `:` and `@`, which a parser takes for the
/// end of the authority, so what it calls the host may be the tail of the password.
///
/// - Everything between `://` and the last `@` (user and password, whatever they hold)
///   becomes `***`: `redis://me:12/s3cret@host:6379/0` shows as `redis://***@host:6379/0`.
/// - A Unix socket URL (`redis+unix://`, `unix://`) has no user part: its password rides in
///   the query, so there only the query is masked.
/// - Query values other than those of `db`, `protocol` and `user` are masked
///   (`?pass=***`); a query pair that is not one of those is shown as `***`.
/// - A fragment other than `#insecure` is masked.
/// - A list is split before each `scheme://` that follows a comma, and each URL is masked on
///   its own; a comma inside a password stays inside its URL.
/// - Text without `://` is masked before its last `@`, if it has one.
///
/// A URL without credentials is shown unchanged.
///
/// ```
/// use token_core::admin::redact_url;
/// assert_eq!(redact_url("redis://me:12/s3cret@host:6379/0"), "redis://***@host:6379/0");
/// assert_eq!(redact_url("rediss://h:6380/0"), "rediss://h:6380/0");
/// ```
pub fn redact_url(url: &str) -> String {
    let mut shown = String::with_capacity(url.len());
    for (i, item) in list_items(url).into_iter().enumerate() {
        if i > 0 {
            shown.push(',');
        }
        shown.push_str(&redact_one(item));
    }
    shown
}

/// `text` cut at each comma that is followed (after spaces) by `scheme://`.
fn list_items(text: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let mut start = 0;
    for (comma, _) in text.match_indices(',') {
        if starts_with_scheme(text[comma + 1..].trim_start()) {
            items.push(&text[start..comma]);
            start = comma + 1;
        }
    }
    items.push(&text[start..]);
    items
}

/// Whether `text` opens with `scheme://` (RFC 3986 scheme characters).
fn starts_with_scheme(text: &str) -> bool {
    text.split_once("://").is_some_and(|(scheme, _)| {
        let mut chars = scheme.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    })
}

fn redact_one(item: &str) -> String {
    let Some(at) = item.find("://") else {
        return match item.rfind('@') {
            Some(last) => format!("***{}", &item[last..]),
            None => item.to_owned(),
        };
    };
    let (scheme, rest) = item.split_at(at + 3);
    let lead = scheme.trim_start().to_ascii_lowercase();
    let unix = lead.starts_with("unix:") || lead.starts_with("redis+unix:");
    match rest.rfind('@') {
        Some(last) if !unix => format!("{scheme}***@{}", redact_tail(&rest[last + 1..])),
        _ => format!("{scheme}{}", redact_tail(rest)),
    }
}

/// Host, path, query and fragment, with the query's secrets and the fragment masked.
fn redact_tail(tail: &str) -> String {
    let (before_fragment, fragment) = match tail.split_once('#') {
        Some((before, fragment)) => (before, Some(fragment)),
        None => (tail, None),
    };
    let mut shown = match before_fragment.split_once('?') {
        Some((path, query)) => {
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key @ ("db" | "protocol" | "user"), value)) => format!("{key}={value}"),
                    Some((key @ ("pass" | "password"), _)) => format!("{key}=***"),
                    _ if pair.is_empty() => String::new(),
                    _ => "***".to_owned(),
                })
                .collect();
            format!("{path}?{}", pairs.join("&"))
        }
        None => before_fragment.to_owned(),
    };
    match fragment {
        Some("insecure") => shown.push_str("#insecure"),
        Some(_) => shown.push_str("#***"),
        None => {}
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::redact_url as redact;

    #[test]
    fn urls_without_credentials_are_shown_unchanged() {
        for url in [
            "redis://h:6379",
            "redis://h:6379/0",
            "rediss://h:6380/#insecure",
            "redis://[::1]:6379/2",
            "redis+unix:///run/redis.sock?db=2",
            "redis://h:6379/?protocol=resp3",
            "h:6379",
        ] {
            assert_eq!(redact(url), url);
        }
    }

    #[test]
    fn everything_before_the_last_at_sign_is_masked() {
        for (url, shown) in [
            ("redis://:s3cret@h:6379/0", "redis://***@h:6379/0"),
            ("redis://me:s3cret@h", "redis://***@h"),
            ("redis://s3cret@host", "redis://***@host"),
            ("redis://:p@ss@host:6379/2", "redis://***@host:6379/2"),
            ("redis://me:p@ss:w@rd@host", "redis://***@host"),
            ("redis://me:p%40ss@host", "redis://***@host"),
            ("rediss://me:p@ss@[::1]:6380/", "rediss://***@[::1]:6380/"),
            (
                "redis+sentinel://me:s3cret@h:26379/mymaster",
                "redis+sentinel://***@h:26379/mymaster",
            ),
            ("redis://:p@ss@host:notaport/", "redis://***@host:notaport/"),
            ("me:s3cret@host", "***@host"),
        ] {
            assert_eq!(redact(url), shown, "{url}");
        }
    }

    #[test]
    fn a_password_holding_a_slash_or_a_hash_is_masked_whole() {
        assert_eq!(redact("redis://me:12/s3cret@host"), "redis://***@host");
        assert_eq!(redact("redis://me:123#s3cret@host"), "redis://***@host");
        assert_eq!(
            redact("redis://me:1?2/3#4@host:6379/0"),
            "redis://***@host:6379/0"
        );
        assert_eq!(
            redact("rediss://me:12/s3cret@host:6380/0"),
            "rediss://***@host:6380/0"
        );
        assert_eq!(
            redact("redis+sentinel://me:123#s3cret@host:26379"),
            "redis+sentinel://***@host:26379"
        );
    }

    #[test]
    fn secrets_in_the_query_and_fragment_are_masked() {
        assert_eq!(
            redact("redis+unix:///run/redis.sock?db=2&pass=s3cret&user=ops"),
            "redis+unix:///run/redis.sock?db=2&pass=***&user=ops"
        );
        // A Unix socket URL has no user part: an `@` in its query password stays masked.
        assert_eq!(
            redact("unix:///run/redis.sock?password=s3@cret"),
            "unix:///run/redis.sock?password=***"
        );
        assert_eq!(
            redact("redis+unix:///s.sock?pass=ab#cd"),
            "redis+unix:///s.sock?pass=***#***"
        );
        assert_eq!(
            redact("redis://h:6379/?protocol=resp3&s3cret"),
            "redis://h:6379/?protocol=resp3&***"
        );
        assert_eq!(redact("redis://h:6379/#s3cret"), "redis://h:6379/#***");
    }

    #[test]
    fn each_url_of_a_list_is_masked() {
        assert_eq!(
            redact("redis://:a/b@h1:26379,redis://h2:26379, rediss://me:c#d@h3:26380"),
            "redis://***@h1:26379,redis://h2:26379, rediss://***@h3:26380"
        );
        // A comma inside a password does not start a new URL.
        assert_eq!(
            redact("redis://me:a,b@h1,redis://h2"),
            "redis://***@h1,redis://h2"
        );
    }

    #[test]
    fn no_part_of_the_password_is_ever_shown() {
        for url in [
            "redis://me:12/s3cret@host",
            "redis://me:123#s3cret@host",
            "redis://:s3cret?x@host",
            "redis://:pa ss s3cret@",
        ] {
            let shown = redact(url);
            assert!(!shown.contains("s3cret"), "{url}: {shown}");
        }
    }
}
