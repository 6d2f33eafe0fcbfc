//! Backends for the store test suites: every suite runs against the memory store and the
//! Redis store on each connection source, each test on its own `redis-server`.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use test_support::{RedisCluster, RedisServer};
use token_core::{
    Adoption, ClockOffset, ConnectionSource, FamilyId, KeyProof, MemoryStore, RedisStore,
    RotationOutcome, RotationStore, SessionInfo, StoreConfig, StoreError, Successor, TokenRef,
};

/// How the tokens of a test name their family (`docs/ARCHITECTURE.md`, *Concepts*).
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
    pub inner: S,
    pub mode: Mode,
    /// (user, jti) → the family its claim names.
    claims: Arc<Mutex<HashMap<(String, String), FamilyId>>>,
}

impl<S: RotationStore> ByJti<S> {
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

    pub async fn revoke_client(&self, user: &str, client: &str) -> Result<u64, StoreError> {
        self.inner.revoke_client(user, client).await
    }

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

    pub async fn revoke_family(&self, user: &str, family: &FamilyId) -> Result<bool, StoreError> {
        self.inner.revoke_family(user, family).await
    }

    pub async fn revoke_all(&self, user: &str) -> Result<u64, StoreError> {
        self.inner.revoke_all(user).await
    }

    pub async fn list(&self, user: &str) -> Result<Vec<SessionInfo>, StoreError> {
        self.inner.list(user).await
    }

    pub async fn cleanup_expired(&self) -> Result<u64, StoreError> {
        self.inner.cleanup_expired().await
    }
}

/// A store under test, the clock it runs on and the server behind it (if any).
pub struct Fixture<S> {
    pub store: ByJti<S>,
    pub clock: ClockOffset,
    pub server: Option<RedisServer>,
    pub cluster: Option<RedisCluster>,
}

/// A test configuration: a 1 s grace window (no longer retry window, so the window's end is
/// a second away) and lifetimes the tests move past with the clock.
pub fn config(clock: &ClockOffset) -> StoreConfig {
    StoreConfig::default()
        .grace(Duration::from_secs(1))
        .retry_window(Duration::ZERO)
        .absolute_lifetime(Duration::from_secs(3600))
        .idle_lifetime(Duration::from_secs(600))
        .timeout(Duration::from_secs(2))
        .clock(clock.clone())
}

/// Which store a suite runs against.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Memory,
    RedisManager,
    RedisBb8Redis,
    RedisBb8Client,
    RedisCluster,
}

pub fn memory(config: StoreConfig, clock: ClockOffset, mode: Mode) -> Fixture<MemoryStore> {
    Fixture {
        store: ByJti::new(MemoryStore::new(config), mode),
        clock,
        server: None,
        cluster: None,
    }
}

pub fn source(backend: Backend, url: &str, timeout: Duration) -> ConnectionSource {
    match backend {
        Backend::RedisManager | Backend::Memory => {
            ConnectionSource::connection_manager(url, timeout).unwrap()
        }
        Backend::RedisBb8Redis => ConnectionSource::bb8_redis(url, 8, timeout).unwrap(),
        Backend::RedisBb8Client => ConnectionSource::bb8_client(url, 8, timeout).unwrap(),
        Backend::RedisCluster => unreachable!("a cluster source is built by `redis_cluster`"),
    }
}

/// The per-call timeout `config` sets (a `StoreConfig` keeps its settings to itself; a store
/// built from it tells).
fn call_timeout(config: &StoreConfig) -> Duration {
    MemoryStore::new(config.clone())
        .call_timeout()
        .expect("the memory store reports its call timeout")
}

pub fn redis(
    backend: Backend,
    config: StoreConfig,
    clock: ClockOffset,
    mode: Mode,
) -> Fixture<RedisStore> {
    let server = RedisServer::start();
    let source = source(backend, &server.url(), call_timeout(&config));
    Fixture {
        store: ByJti::new(RedisStore::with_source(source, config).unwrap(), mode),
        clock,
        server: Some(server),
        cluster: None,
    }
}

/// A store on a fresh local three-master Redis Cluster.
pub fn redis_cluster(config: StoreConfig, clock: ClockOffset, mode: Mode) -> Fixture<RedisStore> {
    let cluster = RedisCluster::start();
    let timeout = call_timeout(&config);
    let urls = cluster.urls();
    // The fixture is built from synchronous test code inside a multi-threaded runtime.
    let source = tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current()
            .block_on(ConnectionSource::cluster(urls, timeout))
            .unwrap()
    });
    Fixture {
        store: ByJti::new(RedisStore::with_source(source, config).unwrap(), mode),
        clock,
        server: None,
        cluster: Some(cluster),
    }
}

/// Every key on the fixture's server with its value and its remaining TTL in ms. Walks the
/// keyspace with `SCAN`. Values of sorted sets and hashes are read whole.
pub fn redis_contents(server: &RedisServer) -> Vec<(String, String, i64)> {
    let mut keys = Vec::new();
    let mut cursor = "0".to_owned();
    loop {
        let reply = server.command(&["SCAN", &cursor, "COUNT", "1000"]).unwrap();
        let mut lines = reply.lines().skip(1);
        cursor = lines.next().unwrap().trim_start_matches('$').to_owned();
        keys.extend(lines.skip(1).map(|k| k.trim_start_matches('$').to_owned()));
        if cursor == "0" {
            break;
        }
    }
    keys.into_iter()
        .map(|key| {
            let kind = server.command(&["TYPE", &key]).unwrap();
            let value = match kind.trim_start_matches('+') {
                "zset" => server.command(&["ZRANGE", &key, "0", "-1", "WITHSCORES"]),
                "hash" => server.command(&["HGETALL", &key]),
                _ => server.command(&["GET", &key]),
            }
            .unwrap();
            let ttl: i64 = server.command(&["PTTL", &key]).unwrap()[1..]
                .parse()
                .unwrap();
            (key, value, ttl)
        })
        .collect()
}

/// Makes a fresh store (and server) for one test.
pub trait MakeStore {
    type Store: token_core::RotationStore;
    fn make(&self, tune: impl FnOnce(StoreConfig) -> StoreConfig) -> Fixture<Self::Store>;
}

/// The memory store.
pub struct Memory(pub Mode);

impl MakeStore for Memory {
    type Store = MemoryStore;
    fn make(&self, tune: impl FnOnce(StoreConfig) -> StoreConfig) -> Fixture<MemoryStore> {
        let clock = ClockOffset::default();
        memory(tune(config(&clock)), clock, self.0)
    }
}

/// The Redis store on one connection source, on a fresh server.
pub struct Redis(pub Backend, pub Mode);

impl MakeStore for Redis {
    type Store = RedisStore;
    fn make(&self, tune: impl FnOnce(StoreConfig) -> StoreConfig) -> Fixture<RedisStore> {
        let clock = ClockOffset::default();
        match self.0 {
            Backend::RedisCluster => redis_cluster(tune(config(&clock)), clock, self.1),
            backend => redis(backend, tune(config(&clock)), clock, self.1),
        }
    }
}
