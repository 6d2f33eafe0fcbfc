//! A store written outside the library crates, with the published API alone: it wraps any
//! [`RotationStore`] and counts the calls of each operation, for an app that wants to see
//! its store traffic (or a test that asserts on it). Its tests run token-core's conformance
//! suite on it (`tests/conformance.rs`), as a store on another backend would.
//!
//! ```
//! use counting_store::{CountingStore, Operation};
//! use token_core::{MemoryStore, RotationStore, StoreConfig, TokenRef};
//!
//! # tokio_test();
//! # fn tokio_test() {
//! # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! # runtime.block_on(async {
//! let store = CountingStore::new(MemoryStore::new(StoreConfig::default()));
//! let exp = 4_102_444_800; // 2100-01-01
//! store.register("alice", TokenRef::new("t0", exp), None).await?;
//! assert_eq!(store.calls(Operation::Register), 1);
//! # Ok::<(), token_core::StoreError>(())
//! # }).unwrap();
//! # }
//! ```

#![forbid(unsafe_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use token_core::{
    Adoption, FamilyId, RotationOutcome, RotationStore, SessionInfo, StoreError, Successor,
    TokenRef,
};

/// A store operation, as [`CountingStore::calls`] counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// [`RotationStore::register`]: a login.
    Register,
    /// [`RotationStore::adopt`]: a token minted before the store recorded tokens.
    Adopt,
    /// [`RotationStore::rotate`]: a refresh.
    Rotate,
    /// [`RotationStore::revoke`], [`revoke_family`](RotationStore::revoke_family),
    /// [`revoke_all`](RotationStore::revoke_all) and
    /// [`revoke_client`](RotationStore::revoke_client).
    Revoke,
    /// [`RotationStore::list`], [`list_client`](RotationStore::list_client) and
    /// [`introspect`](RotationStore::introspect).
    Read,
    /// [`RotationStore::cleanup_expired`] and [`ping`](RotationStore::ping).
    Housekeeping,
}

const OPERATIONS: usize = 6;

/// A [`RotationStore`] that counts each operation of the store it wraps. Clones share the
/// counts, as they share the wrapped store.
#[derive(Clone, Debug)]
pub struct CountingStore<S> {
    inner: S,
    counts: Arc<[AtomicU64; OPERATIONS]>,
}

impl<S: RotationStore> CountingStore<S> {
    /// Wraps `inner`, with every count at zero.
    pub fn new(inner: S) -> Self {
        CountingStore {
            inner,
            counts: Arc::default(),
        }
    }

    /// How many calls of `operation` the store has had.
    pub fn calls(&self, operation: Operation) -> u64 {
        self.counts[operation as usize].load(Ordering::Relaxed)
    }

    fn count(&self, operation: Operation) -> &S {
        self.counts[operation as usize].fetch_add(1, Ordering::Relaxed);
        &self.inner
    }
}

impl<S: RotationStore> RotationStore for CountingStore<S> {
    async fn register(
        &self,
        user: &str,
        token: TokenRef<'_>,
        metadata: Option<&str>,
    ) -> Result<FamilyId, StoreError> {
        let inner = self.count(Operation::Register);
        inner.register(user, token, metadata).await
    }

    async fn adopt(
        &self,
        user: &str,
        token: TokenRef<'_>,
        family: &FamilyId,
        metadata: Option<&str>,
    ) -> Result<Adoption, StoreError> {
        let inner = self.count(Operation::Adopt);
        inner.adopt(user, token, family, metadata).await
    }

    async fn rotate(
        &self,
        user: &str,
        presented: TokenRef<'_>,
        successor: Successor<'_>,
    ) -> Result<RotationOutcome, StoreError> {
        let inner = self.count(Operation::Rotate);
        inner.rotate(user, presented, successor).await
    }

    async fn revoke(
        &self,
        user: &str,
        token: TokenRef<'_>,
    ) -> Result<Option<FamilyId>, StoreError> {
        self.count(Operation::Revoke).revoke(user, token).await
    }

    async fn revoke_family(&self, user: &str, family: &FamilyId) -> Result<bool, StoreError> {
        self.count(Operation::Revoke)
            .revoke_family(user, family)
            .await
    }

    async fn revoke_all(&self, user: &str) -> Result<u64, StoreError> {
        self.count(Operation::Revoke).revoke_all(user).await
    }

    async fn revoke_client(&self, user: &str, client: &str) -> Result<u64, StoreError> {
        self.count(Operation::Revoke)
            .revoke_client(user, client)
            .await
    }

    async fn list(&self, user: &str) -> Result<Vec<SessionInfo>, StoreError> {
        self.count(Operation::Read).list(user).await
    }

    async fn list_client(&self, user: &str, client: &str) -> Result<Vec<SessionInfo>, StoreError> {
        self.count(Operation::Read).list_client(user, client).await
    }

    async fn introspect(
        &self,
        user: &str,
        token: TokenRef<'_>,
    ) -> Result<Option<SessionInfo>, StoreError> {
        self.count(Operation::Read).introspect(user, token).await
    }

    async fn cleanup_expired(&self) -> Result<u64, StoreError> {
        self.count(Operation::Housekeeping).cleanup_expired().await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.count(Operation::Housekeeping).ping().await
    }

    fn call_timeout(&self) -> Option<Duration> {
        self.inner.call_timeout()
    }

    fn session_lifetime(&self) -> Option<Duration> {
        self.inner.session_lifetime()
    }
}
