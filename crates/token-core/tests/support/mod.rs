//! Backends for the store test suites: every suite runs against the memory store and the
//! Redis store on each connection source, each test on its own `redis-server`.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use test_redis::{RedisCluster, RedisServer};
use token_core::{ClockOffset, ConnectionSource, MemoryStore, RedisStore, StoreConfig};

/// A store under test, the clock it runs on and the server behind it (if any).
pub struct Fixture<S> {
    pub store: S,
    pub clock: ClockOffset,
    pub server: Option<RedisServer>,
    pub cluster: Option<RedisCluster>,
}

/// A test configuration: a 1 s grace window and lifetimes the tests move past with the clock.
pub fn config(clock: &ClockOffset) -> StoreConfig {
    StoreConfig::default()
        .grace(Duration::from_secs(1))
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

pub fn memory(config: StoreConfig, clock: ClockOffset) -> Fixture<MemoryStore> {
    Fixture {
        store: MemoryStore::new(config),
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

pub fn redis(backend: Backend, config: StoreConfig, clock: ClockOffset) -> Fixture<RedisStore> {
    let server = RedisServer::start();
    let source = source(backend, &server.url(), config.call_timeout());
    Fixture {
        store: RedisStore::with_source(source, config),
        clock,
        server: Some(server),
        cluster: None,
    }
}

/// A store on a fresh local three-master Redis Cluster.
pub fn redis_cluster(config: StoreConfig, clock: ClockOffset) -> Fixture<RedisStore> {
    let cluster = RedisCluster::start();
    let timeout = config.call_timeout();
    let urls = cluster.urls();
    // The fixture is built from synchronous test code inside a multi-threaded runtime.
    let source = tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current()
            .block_on(ConnectionSource::cluster(urls, timeout))
            .unwrap()
    });
    Fixture {
        store: RedisStore::with_source(source, config),
        clock,
        server: None,
        cluster: Some(cluster),
    }
}

/// Every key on the fixture's server with its value (records and grace slots are strings)
/// and its remaining TTL in ms. Walks the keyspace with `SCAN`.
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
            let value = server.command(&["GET", &key]).unwrap();
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
pub struct Memory;

impl MakeStore for Memory {
    type Store = MemoryStore;
    fn make(&self, tune: impl FnOnce(StoreConfig) -> StoreConfig) -> Fixture<MemoryStore> {
        let clock = ClockOffset::default();
        memory(tune(config(&clock)), clock)
    }
}

/// The Redis store on one connection source, on a fresh server.
pub struct Redis(pub Backend);

impl MakeStore for Redis {
    type Store = RedisStore;
    fn make(&self, tune: impl FnOnce(StoreConfig) -> StoreConfig) -> Fixture<RedisStore> {
        let clock = ClockOffset::default();
        match self.0 {
            Backend::RedisCluster => redis_cluster(tune(config(&clock)), clock),
            backend => redis(backend, tune(config(&clock)), clock),
        }
    }
}
