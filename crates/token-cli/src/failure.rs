//! What went wrong, as a message on stderr and an exit code a script can branch on.

use std::error::Error;
use std::process::ExitCode;

use token_core::StoreError;

use crate::Target;

/// Usage error or invalid Redis URL (clap uses 2 for usage errors too).
pub(crate) const USAGE: u8 = 2;
const OTHER: u8 = 1;
const UNKNOWN_USER: u8 = 3;
const NOT_FOUND: u8 = 4;
const UNREACHABLE: u8 = 5;

#[derive(Debug)]
pub(crate) enum Failure {
    Usage(String),
    UnknownUser(String),
    NotFound(String),
    Unreachable(String),
    Other(String),
}

impl Failure {
    pub(crate) fn unreachable(url: &str, error: &redis::RedisError) -> Failure {
        Failure::Unreachable(format!("cannot reach Redis at {url}: {}", chain(error)))
    }

    /// A failed plain command: the connection broke, or Redis answered with an error.
    pub(crate) fn from_redis(url: &str, error: &redis::RedisError) -> Failure {
        if error.is_io_error() || error.is_timeout() || error.is_connection_dropped() {
            Failure::unreachable(url, error)
        } else {
            Failure::Other(format!(
                "Redis at {url} refused the command: {}",
                chain(error)
            ))
        }
    }

    pub(crate) fn from_store(target: &Target, error: &StoreError) -> Failure {
        if error.is_unavailable() {
            Failure::Unreachable(format!(
                "Redis at {} stopped answering: {}",
                target.url,
                chain(error)
            ))
        } else {
            Failure::Other(format!("the store failed: {}", chain(error)))
        }
    }

    pub(crate) fn report(self) -> ExitCode {
        let (code, message) = match self {
            Failure::Usage(m) => (USAGE, m),
            Failure::UnknownUser(m) => (UNKNOWN_USER, m),
            Failure::NotFound(m) => (NOT_FOUND, m),
            Failure::Unreachable(m) => (UNREACHABLE, m),
            Failure::Other(m) => (OTHER, m),
        };
        eprintln!("error: {message}");
        ExitCode::from(code)
    }
}

/// An error with its causes, `a: b: c`, so "redis error" is never the whole story.
fn chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
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
pub(crate) fn redact(url: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::redact;

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
