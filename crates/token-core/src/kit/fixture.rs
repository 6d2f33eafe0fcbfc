//! What a test of the suite runs on: the kit that makes a store, the fixture it makes,
//! and the driver that names tokens by jti.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{
    Adoption, ClockOffset, FamilyId, KeyProof, MemoryStore, RotationOutcome, RotationStore,
    SessionInfo, StoreConfig, StoreError, Successor, TokenRef,
};

/// How the tokens of a test name their family .
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Every token carries its family id (a `sid` claim): the store keeps no per-token state.
    FamilyClaim,
    /// No claim: the store finds families through its token index.
    TokenIndex,
}

/// The `exp` of every test token: a day after the test process started, the same for every
/// token (a token's index bucket follows from its `exp`).
pub static EXP: LazyLock<i64> = LazyLock::new(|| {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 86_400
});

/// The `iat` of the legacy tokens the tests adopt: a minute before the test process started,
/// so before any revocation a test makes.
pub static ISSUED: LazyLock<i64> = LazyLock::new(|| *EXP - 86_400 - 60);

/// A successor token `jti` with the tests' `exp`.
pub fn next<'a>(jti: &'a str, token: &'a str) -> Successor<'a> {
    Successor {
        jti,
        token,
        expires_at: *EXP,
    }
}

/// A store driven the way the tests name tokens: by jti alone. It plays the app's part in
/// family-claim mode, remembering which family each token it saw issued names in its claim,
/// and passes `TokenRef`s accordingly.
#[derive(Clone)]
pub struct ByJti<S> {
    /// The store under test.
    pub inner: S,
    /// How the tokens name their family.
    pub mode: Mode,
    /// (user, jti) → the family its claim names.
    claims: Arc<Mutex<HashMap<(String, String), FamilyId>>>,
}

impl<S: RotationStore> ByJti<S> {
    /// Drives `inner` with tokens named in `mode`.
    pub fn new(inner: S, mode: Mode) -> Self {
        ByJti {
            inner,
            mode,
            claims: Arc::default(),
        }
    }

    /// The family the token's claim names: the one it was issued in, or (for a token the
    /// test made up) a family nobody registered.
    fn claim(&self, user: &str, jti: &str) -> Option<FamilyId> {
        (self.mode == Mode::FamilyClaim).then(|| {
            self.claims
                .lock()
                .unwrap()
                .entry((user.to_owned(), jti.to_owned()))
                .or_insert_with(FamilyId::random)
                .clone()
        })
    }

    fn issued(&self, user: &str, jti: &str, family: &FamilyId) {
        self.claims
            .lock()
            .unwrap()
            .insert((user.to_owned(), jti.to_owned()), family.clone());
    }

    /// Registers `jti` for `user` at a login, with `metadata` (if any).
    pub async fn register(
        &self,
        user: &str,
        jti: &str,
        metadata: Option<&str>,
    ) -> Result<FamilyId, StoreError> {
        self.register_for(user, jti, metadata, None).await
    }

    /// Registers `jti` as issued to the OAuth 2.0 client `client` (if any).
    pub async fn register_for(
        &self,
        user: &str,
        jti: &str,
        metadata: Option<&str>,
        client: Option<&str>,
    ) -> Result<FamilyId, StoreError> {
        self.register_with(user, jti, metadata, client, None).await
    }

    /// Registers `jti` as issued to `client` (if any) at a login that came with the DPoP
    /// proof `proof` (if any).
    pub async fn register_with(
        &self,
        user: &str,
        jti: &str,
        metadata: Option<&str>,
        client: Option<&str>,
        proof: Option<KeyProof<'_>>,
    ) -> Result<FamilyId, StoreError> {
        let claim = (self.mode == Mode::FamilyClaim).then(FamilyId::random);
        let token = TokenRef {
            jti,
            family: claim.as_ref(),
            expires_at: *EXP,
            client,
            proof,
            issued_at: None,
        };
        let family = self.inner.register(user, token, metadata).await?;
        self.issued(user, jti, &family);
        Ok(family)
    }

    /// Adopts `jti` as a token minted before the store recorded tokens, issued to `client`
    /// (if any), the way the layer does: in family-claim mode the token names a family in its
    /// claim (the one it was issued in, or one nobody registered) and that family is the one
    /// to start; without a claim, a fresh one is.
    pub async fn adopt(
        &self,
        user: &str,
        jti: &str,
        client: Option<&str>,
        metadata: Option<&str>,
    ) -> Result<Adoption, StoreError> {
        self.adopt_issued_at(user, jti, client, metadata, *ISSUED)
            .await
    }

    /// [`adopt`](Self::adopt) for a token whose `iat` is `issued_at`.
    pub async fn adopt_issued_at(
        &self,
        user: &str,
        jti: &str,
        client: Option<&str>,
        metadata: Option<&str>,
        issued_at: i64,
    ) -> Result<Adoption, StoreError> {
        self.adopt_with(user, jti, client, metadata, issued_at, None)
            .await
    }

    /// [`adopt_issued_at`](Self::adopt_issued_at) with the DPoP proof `proof` (if any).
    pub async fn adopt_with(
        &self,
        user: &str,
        jti: &str,
        client: Option<&str>,
        metadata: Option<&str>,
        issued_at: i64,
        proof: Option<KeyProof<'_>>,
    ) -> Result<Adoption, StoreError> {
        let claim = self.claim(user, jti);
        let family = claim
            .clone()
            .unwrap_or_else(|| FamilyId::for_legacy_token(jti));
        let token = TokenRef {
            jti,
            family: claim.as_ref(),
            expires_at: *EXP,
            client,
            proof,
            issued_at: Some(issued_at),
        };
        let adoption = self.inner.adopt(user, token, &family, metadata).await?;
        if let Some(family) = adoption.family() {
            self.issued(user, jti, family);
        }
        Ok(adoption)
    }

    /// Rotates `presented` as a token of `family`, presented by `client` (if any): the way
    /// the layer rotates an adopted token, with the family `adopt` answered.
    pub async fn rotate_in(
        &self,
        user: &str,
        presented: &str,
        family: &FamilyId,
        client: Option<&str>,
        successor: Successor<'_>,
    ) -> Result<RotationOutcome, StoreError> {
        let token = TokenRef {
            jti: presented,
            family: Some(family),
            expires_at: *EXP,
            client,
            proof: None,
            issued_at: None,
        };
        self.inner.rotate(user, token, successor).await
    }

    /// Rotates `presented` to `next`, presented by no client and without a proof.
    pub async fn rotate(
        &self,
        user: &str,
        presented: &str,
        successor: Successor<'_>,
    ) -> Result<RotationOutcome, StoreError> {
        self.rotate_as(user, presented, None, successor).await
    }

    /// Rotates `presented` as presented by the OAuth 2.0 client `client` (if any).
    pub async fn rotate_as(
        &self,
        user: &str,
        presented: &str,
        client: Option<&str>,
        successor: Successor<'_>,
    ) -> Result<RotationOutcome, StoreError> {
        self.rotate_with(user, presented, client, None, successor)
            .await
    }

    /// Rotates `presented` as presented by `client` (if any) with the DPoP proof `proof`
    /// (if any).
    pub async fn rotate_with(
        &self,
        user: &str,
        presented: &str,
        client: Option<&str>,
        proof: Option<KeyProof<'_>>,
        successor: Successor<'_>,
    ) -> Result<RotationOutcome, StoreError> {
        let claim = self.claim(user, presented);
        let token = TokenRef {
            jti: presented,
            family: claim.as_ref(),
            expires_at: *EXP,
            client,
            proof,
            issued_at: None,
        };
        let outcome = self.inner.rotate(user, token, successor).await?;
        if let RotationOutcome::Rotated { family } = &outcome {
            self.issued(user, successor.jti, family);
        }
        Ok(outcome)
    }

    /// Revokes the family of `jti`.
    pub async fn revoke(&self, user: &str, jti: &str) -> Result<Option<FamilyId>, StoreError> {
        self.revoke_as(user, jti, None).await
    }

    /// Revokes the family of `jti` as asked by the OAuth 2.0 client `client`.
    pub async fn revoke_as(
        &self,
        user: &str,
        jti: &str,
        client: Option<&str>,
    ) -> Result<Option<FamilyId>, StoreError> {
        let claim = self.claim(user, jti);
        let token = TokenRef {
            jti,
            family: claim.as_ref(),
            expires_at: *EXP,
            client,
            proof: None,
            issued_at: None,
        };
        self.inner.revoke(user, token).await
    }

    /// Revokes every live family of `user` issued to `client`.
    pub async fn revoke_client(&self, user: &str, client: &str) -> Result<u64, StoreError> {
        self.inner.revoke_client(user, client).await
    }

    /// The live sessions of `user` issued to `client`.
    pub async fn list_client(
        &self,
        user: &str,
        client: &str,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        self.inner.list_client(user, client).await
    }

    /// The live session whose current token `jti` is (its claim, in family-claim mode).
    pub async fn introspect(
        &self,
        user: &str,
        jti: &str,
    ) -> Result<Option<SessionInfo>, StoreError> {
        let claim = self.claim(user, jti);
        let token = TokenRef {
            jti,
            family: claim.as_ref(),
            expires_at: *EXP,
            client: None,
            proof: None,
            issued_at: None,
        };
        self.inner.introspect(user, token).await
    }

    /// Revokes one family.
    pub async fn revoke_family(&self, user: &str, family: &FamilyId) -> Result<bool, StoreError> {
        self.inner.revoke_family(user, family).await
    }

    /// Revokes every family of `user`.
    pub async fn revoke_all(&self, user: &str) -> Result<u64, StoreError> {
        self.inner.revoke_all(user).await
    }

    /// The live sessions of `user`.
    pub async fn list(&self, user: &str) -> Result<Vec<SessionInfo>, StoreError> {
        self.inner.list(user).await
    }

    /// Removes the ended families.
    pub async fn cleanup_expired(&self) -> Result<u64, StoreError> {
        self.inner.cleanup_expired().await
    }
}

/// A store under test, the clock it runs on, and what backs it (a server process, say),
/// kept alive as long as the fixture.
pub struct Fixture<S, B = ()> {
    /// The store, driven by token ids.
    pub store: ByJti<S>,
    /// The clock the store's configuration reads: tests move it to let lifetimes pass.
    pub clock: ClockOffset,
    /// What backs the store, for the kit's own use.
    pub backend: B,
}

impl<S: RotationStore, B> Fixture<S, B> {
    /// A fixture for `store`, whose tokens name their family as `mode` says, running on
    /// `clock` (the one its configuration was given), backed by `backend`.
    pub fn new(store: S, mode: Mode, clock: ClockOffset, backend: B) -> Self {
        Fixture {
            store: ByJti::new(store, mode),
            clock,
            backend,
        }
    }
}

/// The suite's configuration, on `clock`: a 1 s grace window (no longer retry window, so
/// the window's end is a second away) and lifetimes the tests move past with the clock.
/// A [`StoreKit`] starts from it and applies the test's tuning.
pub fn config(clock: &ClockOffset) -> StoreConfig {
    StoreConfig::default()
        .grace(Duration::from_secs(1))
        .retry_window(Duration::ZERO)
        .absolute_lifetime(Duration::from_secs(3600))
        .idle_lifetime(Duration::from_secs(600))
        .timeout(Duration::from_secs(2))
        .clock(clock.clone())
}

/// Makes a fresh store for one test of the suite.
pub trait StoreKit {
    /// The store under test.
    type Store: RotationStore;
    /// What backs the store (a server process, a database), kept in the fixture.
    type Backend;

    /// A fresh store, empty, configured by `tune` applied to [`config`] on a new
    /// [`ClockOffset`] (the one the fixture carries).
    fn make(
        &self,
        tune: impl FnOnce(StoreConfig) -> StoreConfig,
    ) -> Fixture<Self::Store, Self::Backend>;

    /// How many keys (rows, items) the backend still holds, for a backend that expires them
    /// on its own clock; `None` (the default) skips that check.
    fn keys_left(&self, fixture: &Fixture<Self::Store, Self::Backend>) -> Option<usize> {
        let _ = fixture;
        None
    }
}

/// The memory store, fresh for each test: the suite's reference.
#[derive(Clone, Copy, Debug)]
pub struct Memory(pub Mode);

impl StoreKit for Memory {
    type Store = MemoryStore;
    type Backend = ();

    fn make(&self, tune: impl FnOnce(StoreConfig) -> StoreConfig) -> Fixture<MemoryStore> {
        let clock = ClockOffset::default();
        Fixture::new(MemoryStore::new(tune(config(&clock))), self.0, clock, ())
    }
}
