//! The redis-server this program owns: `INFO` and `MEMORY` readers, statistics resets and
//! reads around a measured batch, waits for expiry, and stores opened on it.

use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use test_support::RedisServer;
use token_rotation::token_core::{RedisStore, StoreConfig};

pub(crate) async fn info(conn: &mut MultiplexedConnection, section: &str) -> String {
    redis::cmd("INFO")
        .arg(section)
        .query_async(conn)
        .await
        .expect("INFO")
}

pub(crate) async fn info_field(
    conn: &mut MultiplexedConnection,
    section: &str,
    field: &str,
) -> i64 {
    info(conn, section)
        .await
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("INFO {section} has no {field}"))
}

pub(crate) async fn used_memory(conn: &mut MultiplexedConnection) -> i64 {
    info_field(conn, "memory", "used_memory").await
}

/// From `MEMORY STATS`: the bytes of the keyspace's hash tables (`overhead.hashtable.main`
/// and `overhead.hashtable.expires` of every database), and of the clients' buffers
/// (`clients.normal`). The tables' bucket arrays are sized to a power of two for the most
/// keys held at once and only shrink once less than a tenth is used, so a burst of grace
/// slots leaves them larger than the keys at rest need; client buffers grow with pipelined
/// calls and shrink some time later.
pub(crate) async fn memory_stats(conn: &mut MultiplexedConnection) -> (i64, i64) {
    let stats: redis::Value = redis::cmd("MEMORY")
        .arg("STATS")
        .query_async(conn)
        .await
        .expect("MEMORY STATS");
    fn pairs(value: &redis::Value) -> Vec<(String, &redis::Value)> {
        match value {
            redis::Value::Array(items) => items
                .chunks(2)
                .filter_map(|kv| match kv {
                    [redis::Value::BulkString(k), v] => {
                        Some((String::from_utf8_lossy(k).into_owned(), v))
                    }
                    [redis::Value::SimpleString(k), v] => Some((k.clone(), v)),
                    _ => None,
                })
                .collect(),
            redis::Value::Map(items) => items
                .iter()
                .filter_map(|(k, v)| match k {
                    redis::Value::BulkString(k) => {
                        Some((String::from_utf8_lossy(k).into_owned(), v))
                    }
                    redis::Value::SimpleString(k) => Some((k.clone(), v)),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }
    let int = |v: &redis::Value| match v {
        redis::Value::Int(n) => *n,
        _ => 0,
    };
    let top = pairs(&stats);
    let tables = top
        .iter()
        .filter(|(k, _)| k.starts_with("db."))
        .flat_map(|(_, db)| pairs(db))
        .filter(|(k, _)| k.starts_with("overhead.hashtable."))
        .map(|(_, v)| int(v))
        .sum();
    let clients = top
        .iter()
        .filter(|(k, _)| k == "clients.normal")
        .map(|(_, v)| int(v))
        .sum();
    (tables, clients)
}

pub(crate) async fn dbsize(conn: &mut MultiplexedConnection) -> i64 {
    redis::cmd("DBSIZE")
        .query_async(conn)
        .await
        .expect("DBSIZE")
}

pub(crate) async fn flushall(conn: &mut MultiplexedConnection) {
    let _: () = redis::cmd("FLUSHALL")
        .query_async(conn)
        .await
        .expect("FLUSHALL");
}

pub(crate) async fn reset_stats(conn: &mut MultiplexedConnection) {
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(conn)
        .await
        .expect("CONFIG RESETSTAT");
}

/// `(calls, usec)` of one command in `INFO commandstats` (zeros when it has not run).
pub(crate) async fn command_stats(conn: &mut MultiplexedConnection, command: &str) -> (u64, u64) {
    let stats = info(conn, "commandstats").await;
    let Some(line) = stats
        .lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:")))
    else {
        return (0, 0);
    };
    let field = |name: &str| {
        line.split(',')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("calls"), field("usec"))
}

/// Server time per call of one command over a measured batch.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Cost {
    pub(crate) calls: u64,
    pub(crate) usec_per_call: f64,
}

/// Waits until no grace slot (`…:g:…`) is left. Redis reclaims expired keys lazily (when
/// touched) and by a sampling cycle that can take tens of seconds over 100 k keys, so each
/// round is a `SCAN` pass over the keyspace, which expires the keys it meets.
pub(crate) async fn wait_for_no_grace_slots(
    conn: &mut MultiplexedConnection,
    limit: Duration,
) -> f64 {
    let start = Instant::now();
    loop {
        let mut cursor = 0u64;
        let mut found = 0usize;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg("*}:g:*")
                .arg("COUNT")
                .arg(10_000)
                .query_async(conn)
                .await
                .expect("SCAN");
            found += keys.len();
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        if found == 0 {
            return start.elapsed().as_secs_f64();
        }
        assert!(
            start.elapsed() < limit,
            "grace slots did not expire within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the keyspace holds at most `keys` keys (with a `SCAN` pass each round, as
/// [`wait_for_no_grace_slots`]).
pub(crate) async fn wait_for_dbsize(
    conn: &mut MultiplexedConnection,
    keys: i64,
    limit: Duration,
) -> f64 {
    let start = Instant::now();
    loop {
        let mut cursor = 0u64;
        loop {
            let (next, _): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("COUNT")
                .arg(10_000)
                .query_async(conn)
                .await
                .expect("SCAN");
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        if dbsize(conn).await <= keys {
            return start.elapsed().as_secs_f64();
        }
        assert!(
            start.elapsed() < limit,
            "keys did not expire within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The store's defaults with a replay window of `grace`: the window is the longer of the
/// grace and the retry window (2 minutes by default), so both are set, or the grace slots
/// the memory part waits out would live 2 minutes, not `grace`.
pub(crate) fn with_grace(grace: Duration) -> StoreConfig {
    StoreConfig::default().grace(grace).retry_window(grace)
}

pub(crate) fn store(server: &RedisServer, config: StoreConfig) -> RedisStore {
    RedisStore::open(&server.url(), config.timeout(Duration::from_secs(10))).expect("a store")
}

/// Runs `batch` (which must make exactly `expected` function calls) between a
/// `CONFIG RESETSTAT` and a read of `cmdstat_fcall` and `cmdstat_fcall_ro`; checks one
/// `FCALL` (or `FCALL_RO`) per call.
/// Nothing runs for an empty batch.
pub(crate) async fn fcall_cost(
    conn: &mut MultiplexedConnection,
    expected: usize,
    batch: impl Future<Output = ()>,
) -> Option<Cost> {
    if expected == 0 {
        return None;
    }
    reset_stats(conn).await;
    batch.await;
    // Writes go out as FCALL, reads (`list`) as FCALL_RO.
    let (calls, usec) = command_stats(conn, "fcall").await;
    let (ro_calls, ro_usec) = command_stats(conn, "fcall_ro").await;
    let (calls, usec) = (calls + ro_calls, usec + ro_usec);
    assert_eq!(
        calls, expected as u64,
        "one FCALL or FCALL_RO per store call"
    );
    Some(Cost {
        calls,
        usec_per_call: usec as f64 / calls as f64,
    })
}

/// `(name, calls, usec)` of each command.
pub(crate) type CommandStats = Vec<(String, u64, u64)>;

/// Every command's `(name, calls, usec)` in `INFO commandstats`.
pub(crate) async fn all_command_stats(conn: &mut MultiplexedConnection) -> CommandStats {
    let stats = info(conn, "commandstats").await;
    stats
        .lines()
        .filter_map(|l| l.strip_prefix("cmdstat_"))
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let field = |key: &str| -> u64 {
                rest.split(',')
                    .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            Some((name.to_owned(), field("calls"), field("usec")))
        })
        .collect()
}

pub(crate) async fn memory_usage(conn: &mut MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(key)
        .query_async(conn)
        .await
        .expect("MEMORY USAGE")
}

pub(crate) async fn object_encoding(conn: &mut MultiplexedConnection, key: &str) -> String {
    redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg(key)
        .query_async(conn)
        .await
        .expect("OBJECT ENCODING")
}

pub(crate) async fn config_get(conn: &mut MultiplexedConnection, name: &str) -> String {
    let pair: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query_async(conn)
        .await
        .expect("CONFIG GET");
    pair.get(1).cloned().unwrap_or_default()
}

pub(crate) async fn hstrlen(conn: &mut MultiplexedConnection, key: &str, field: &str) -> i64 {
    redis::cmd("HSTRLEN")
        .arg(key)
        .arg(field)
        .query_async(conn)
        .await
        .expect("HSTRLEN")
}
