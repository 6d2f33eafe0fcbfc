use std::time::Duration;

/// Why a store operation failed.
///
/// Outcomes the rotation protocol expects (a reused or unknown token) are not errors: they
/// are [`RotationOutcome`](crate::RotationOutcome)s. An error means the store could not give
/// an answer, or was asked something it must refuse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Redis answered with an error, or the connection to it failed.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    #[error("redis error")]
    Redis(#[source] redis::RedisError),
    /// Another backend failed: the database or service of a store written outside this
    /// crate (Postgres, DynamoDB, ...) could not be reached or answered with an error. The
    /// backend's own error is the [`source`](std::error::Error::source). Like
    /// [`Redis`](StoreError::Redis), it counts as unavailable: the caller fails closed and the
    /// client retries later. Build it with [`StoreError::backend`].
    #[error("store backend error")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// No pooled connection became available in time (Redis is down or the pool exhausted).
    #[error("no redis connection available within {0:?}")]
    PoolTimedOut(Duration),
    /// The operation did not complete within the configured timeout.
    #[error("store call timed out after {0:?}")]
    Timeout(Duration),
    /// Fewer replicas than configured acknowledged a write in time (see
    /// [`StoreConfig::wait_for_replicas`](crate::StoreConfig::wait_for_replicas)).
    #[error("only {acked} of {wanted} replicas acknowledged the write")]
    NotReplicated {
        /// Replicas that acknowledged.
        acked: u32,
        /// Replicas required.
        wanted: u32,
    },
    /// A token's `exp` is before the epoch or after [`MAX_EXPIRES_AT`](crate::MAX_EXPIRES_AT)
    /// (9999-12-31): the store cannot record it. Nothing was changed. Also the answer of
    /// [`adopt`](crate::RotationStore::adopt) for a token an hour or more past its `exp`, whose
    /// adoption the store could no longer remember.
    #[error("token exp {0} is outside the range the store records")]
    ExpiryOutOfRange(i64),
    /// The jti is already recorded for this user: token ids must be unique per user.
    #[error("jti is already recorded for this user")]
    DuplicateJti,
    /// The login's DPoP proof was used before (see
    /// [`TokenRef::proof`](crate::TokenRef)): a replayed request. Nothing was recorded.
    #[error("DPoP proof was used before")]
    ProofReplayed,
    /// A successor kept for grace replay could not be opened: the sealing key differs
    /// between app instances, or the stored value was altered.
    #[error("sealed successor could not be opened")]
    Unseal,
    /// The store was asked for a configuration it cannot honour.
    #[error("unsupported configuration: {0}")]
    Unsupported(&'static str),
    /// The store returned data this version cannot read.
    #[error("unexpected data from the store: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// A [`Backend`](StoreError::Backend) error around another backend's own error.
    ///
    /// ```
    /// use token_core::StoreError;
    ///
    /// let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
    /// let err = StoreError::backend(io);
    /// assert!(err.is_unavailable());
    /// assert_eq!(std::error::Error::source(&err).unwrap().to_string(), "refused");
    /// ```
    pub fn backend(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StoreError::Backend(err.into())
    }

    /// True when the store could not be reached or did not answer in time: the caller should
    /// fail closed and ask the client to retry later (HTTP 503).
    pub fn is_unavailable(&self) -> bool {
        #[cfg(feature = "redis")]
        if let StoreError::Redis(_) = self {
            return true;
        }
        matches!(
            self,
            StoreError::Backend(_)
                | StoreError::PoolTimedOut(_)
                | StoreError::Timeout(_)
                | StoreError::NotReplicated { .. }
        )
    }
}

#[cfg(feature = "redis")]
impl From<redis::RedisError> for StoreError {
    fn from(err: redis::RedisError) -> Self {
        StoreError::Redis(err)
    }
}
