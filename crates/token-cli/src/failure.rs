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
