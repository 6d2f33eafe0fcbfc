//! Backends for the store test suites: every suite runs against the memory store and the
//! Redis store on each connection source, each test on its own `redis-server`.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use test_support::{RedisCluster, RedisServer};
use token_core::{
    ClockOffset, ConnectionSource, MemoryStore, RedisStore, RotationStore, StoreConfig,
};

// Each suite takes what it needs of these.
#[allow(unused_imports)]
pub use token_core::kit::{ByJti, EXP, ISSUED, Memory, Mode, StoreKit as MakeStore, config, next};

/// A store under test on the Redis behind it.
pub type Fixture<S> = token_core::kit::Fixture<S, RedisBackend>;

/// The Redis behind a fixture: one server, or a cluster.
#[derive(Default)]
pub struct RedisBackend {
    pub server: Option<RedisServer>,
    pub cluster: Option<RedisCluster>,
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
    let store = RedisStore::with_source(source, config).unwrap();
    let backend = RedisBackend {
        server: Some(server),
        cluster: None,
    };
    Fixture::new(store, mode, clock, backend)
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
    let store = RedisStore::with_source(source, config).unwrap();
    let backend = RedisBackend {
        server: None,
        cluster: Some(cluster),
    };
    Fixture::new(store, mode, clock, backend)
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

/// The Redis store on one connection source, on a fresh server.
pub struct Redis(pub Backend, pub Mode);

impl MakeStore for Redis {
    type Store = RedisStore;
    type Backend = RedisBackend;
    fn make(&self, tune: impl FnOnce(StoreConfig) -> StoreConfig) -> Fixture<RedisStore> {
        let clock = ClockOffset::default();
        match self.0 {
            Backend::RedisCluster => redis_cluster(tune(config(&clock)), clock, self.1),
            backend => redis(backend, tune(config(&clock)), clock, self.1),
        }
    }

    fn keys_left(&self, fixture: &Fixture<RedisStore>) -> Option<usize> {
        (fixture.backend.server.as_ref()).map(|server| redis_contents(server).len())
    }
}
