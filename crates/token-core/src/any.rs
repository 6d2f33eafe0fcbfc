//! One concrete store type for apps that pick memory or Redis at run time.

use std::time::Duration;

use crate::{
    Adoption, FamilyId, MemoryStore, RedisStore, RotationOutcome, RotationStore, SessionInfo,
    StoreError, Successor, TokenRef,
};

/// Either built-in store, chosen at run time (say, Redis when `REDIS_URL` is set, memory
/// otherwise), as one concrete type: handlers and layers need no store generic.
///
/// ```
/// use token_core::{AnyStore, MemoryStore, RedisStore, StoreConfig};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store: AnyStore = match std::env::var("REDIS_URL") {
///     Ok(url) => RedisStore::open(&url, StoreConfig::default())?.into(),
///     Err(_) => MemoryStore::new(StoreConfig::default()).into(),
/// };
/// # Ok::<_, token_core::StoreError>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug)]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub enum AnyStore {
    /// The in-memory store.
    Memory(MemoryStore),
    /// The Redis store.
    Redis(RedisStore),
}

impl From<MemoryStore> for AnyStore {
    fn from(store: MemoryStore) -> Self {
        AnyStore::Memory(store)
    }
}

impl From<RedisStore> for AnyStore {
    fn from(store: RedisStore) -> Self {
        AnyStore::Redis(store)
    }
}

/// Calls the same method on whichever store this is.
macro_rules! each {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            AnyStore::Memory($store) => $call,
            AnyStore::Redis($store) => $call,
        }
    };
}

impl RotationStore for AnyStore {
    async fn register(
        &self,
        user: &str,
        token: TokenRef<'_>,
        metadata: Option<&str>,
    ) -> Result<FamilyId, StoreError> {
        each!(self, store => store.register(user, token, metadata).await)
    }

    async fn adopt(
        &self,
        user: &str,
        token: TokenRef<'_>,
        family: &FamilyId,
        metadata: Option<&str>,
    ) -> Result<Adoption, StoreError> {
        each!(self, store => store.adopt(user, token, family, metadata).await)
    }

    async fn rotate(
        &self,
        user: &str,
        presented: TokenRef<'_>,
        successor: Successor<'_>,
    ) -> Result<RotationOutcome, StoreError> {
        each!(self, store => store.rotate(user, presented, successor).await)
    }

    async fn revoke(
        &self,
        user: &str,
        token: TokenRef<'_>,
    ) -> Result<Option<FamilyId>, StoreError> {
        each!(self, store => store.revoke(user, token).await)
    }

    async fn revoke_family(&self, user: &str, family: &FamilyId) -> Result<bool, StoreError> {
        each!(self, store => store.revoke_family(user, family).await)
    }

    async fn revoke_all(&self, user: &str) -> Result<u64, StoreError> {
        each!(self, store => store.revoke_all(user).await)
    }

    async fn revoke_client(&self, user: &str, client: &str) -> Result<u64, StoreError> {
        each!(self, store => store.revoke_client(user, client).await)
    }

    async fn list(&self, user: &str) -> Result<Vec<SessionInfo>, StoreError> {
        each!(self, store => store.list(user).await)
    }

    async fn cleanup_expired(&self) -> Result<u64, StoreError> {
        each!(self, store => store.cleanup_expired().await)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        each!(self, store => store.ping().await)
    }

    fn call_timeout(&self) -> Option<Duration> {
        each!(self, store => store.call_timeout())
    }

    fn session_lifetime(&self) -> Option<Duration> {
        each!(self, store => store.session_lifetime())
    }
}
