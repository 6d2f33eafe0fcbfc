//! Memory and scale measurements of the Redis store, against a throwaway `redis-server` this
//! program starts itself on a free loopback port (it never connects to any other server,
//! so it is free to flush the one it owns).
//!
//! ```text
//! cargo run --release --example store_scale -- [--sessions 100000] \
//!     [--sizes 10000,100000,1000000] [--lifetime 60] [--smoke]
//! ```
//!
//! 1. **Memory per live session**: `used_memory` (`INFO memory`) before and after
//!    registering `--sessions` sessions, one per user, with the examples' token ids; then
//!    the growth per rotation (with the grace slot, and once the slot has expired), and the
//!    memory left once every family's lifetime (`--lifetime` seconds) has run out. The same
//!    for the hand-rolled schema (`SETEX refresh_token:<user>:<jti> <json>`), for reference.
//! 2. **`list` and `revoke_all` against the keyspace size**: a user with 5 sessions while
//!    Redis holds 10 k, 100 k and 1 M other sessions (in the store's schema, and as many in
//!    the hand-rolled schema), beside `KEYS refresh_token:<user>:*`, the original listing, on
//!    the same data.
//! 3. **Round trips per operation**: `EVALSHA` calls per `register` and per `rotate` from
//!    `INFO commandstats`.
//!
//! Every result also appears on a machine-readable `RESULT` line.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::{StreamExt, stream};
use redis::aio::MultiplexedConnection;
use test_redis::RedisServer;
use token_rotation::core::{RedisStore, RotationOutcome, RotationStore, StoreConfig, Successor};

/// Store calls in flight at once while filling (the connection pipelines them).
const IN_FLIGHT: usize = 256;
/// A refresh token as long as the examples mint: the grace slot keeps it sealed.
const TOKEN_LEN: usize = 260;

fn option(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    let flag = format!("--{name}");
    args.iter()
        .position(|a| *a == flag)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

/// A token id like the examples' (16 random bytes, base64url).
fn jti() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}

fn user(i: usize) -> String {
    format!("user-{i:07}")
}

async fn info_field(conn: &mut MultiplexedConnection, section: &str, field: &str) -> i64 {
    let info: String = redis::cmd("INFO")
        .arg(section)
        .query_async(conn)
        .await
        .expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("INFO {section} has no {field}"))
}

async fn used_memory(conn: &mut MultiplexedConnection) -> i64 {
    info_field(conn, "memory", "used_memory").await
}

async fn dbsize(conn: &mut MultiplexedConnection) -> i64 {
    redis::cmd("DBSIZE")
        .query_async(conn)
        .await
        .expect("DBSIZE")
}

/// Waits until the keyspace holds `keys` keys. Redis reclaims expired keys lazily (when
/// touched) and by a sampling cycle that took about 50 s for 100 k grace slots here, so a
/// `SCAN` pass over the keyspace (which expires the keys it meets) runs every round.
async fn wait_for_dbsize(conn: &mut MultiplexedConnection, keys: i64, limit: Duration) -> f64 {
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

async fn register_many(store: &RedisStore, users: std::ops::Range<usize>) -> Vec<String> {
    stream::iter(users)
        .map(|i| async move {
            let jti = jti();
            store
                .register(&user(i), &jti, None)
                .await
                .expect("register");
            jti
        })
        .buffered(IN_FLIGHT)
        .collect()
        .await
}

/// Rotates every user's session once; returns how many rotated.
async fn rotate_all(store: &RedisStore, current: &mut [String], token: &str) -> usize {
    let next: Vec<(String, bool)> = stream::iter(current.iter().enumerate())
        .map(|(i, presented)| async move {
            let successor = jti();
            let outcome = store
                .rotate(
                    &user(i),
                    presented,
                    Successor {
                        jti: &successor,
                        token,
                    },
                )
                .await
                .expect("rotate");
            let rotated = matches!(outcome, RotationOutcome::Rotated { .. });
            (successor, rotated)
        })
        .buffered(IN_FLIGHT)
        .collect()
        .await;
    let mut rotated = 0;
    for (slot, (jti, ok)) in current.iter_mut().zip(next) {
        *slot = jti;
        rotated += usize::from(ok);
    }
    rotated
}

async fn memory(
    server: &RedisServer,
    conn: &mut MultiplexedConnection,
    sessions: usize,
    lifetime: Duration,
) {
    let grace = Duration::from_secs(1);
    let config = StoreConfig::default()
        .grace(grace)
        .absolute_lifetime(lifetime)
        .idle_lifetime(lifetime)
        .timeout(Duration::from_secs(10));
    let store = RedisStore::open(&server.url(), config).expect("a store");
    let token = "t".repeat(TOKEN_LEN);
    // Load the scripts and let the connection settle, then start from an empty keyspace.
    register_many(&store, 0..1).await;
    rotate_all(&store, &mut [jti()], &token).await;
    let _: () = redis::cmd("FLUSHALL")
        .query_async(conn)
        .await
        .expect("FLUSHALL");
    let start = Instant::now();
    let baseline = used_memory(conn).await;

    let mut current = register_many(&store, 0..sessions).await;
    // Rotation never moves a family's absolute end: the last one ends `lifetime` from here.
    let last_end = tokio::time::Instant::now() + lifetime;
    let registered = used_memory(conn).await;
    let per_session = (registered - baseline) as f64 / sessions as f64;
    println!(
        "memory: {sessions} live sessions (1 per user, no metadata): {} bytes over a baseline of \
         {baseline}: {per_session:.0} bytes per session ({} keys; filled in {:.1} s)",
        registered - baseline,
        dbsize(conn).await,
        start.elapsed().as_secs_f64()
    );

    let rotated = rotate_all(&store, &mut current, &token).await;
    let with_slots = used_memory(conn).await;
    tokio::time::sleep(grace).await;
    let waited = wait_for_dbsize(conn, sessions as i64, Duration::from_secs(60)).await;
    let after_slots = used_memory(conn).await;
    let first_rotation = (after_slots - registered) as f64 / sessions as f64;
    let slot_bytes = (with_slots - after_slots) as f64 / sessions as f64;
    println!(
        "memory: one rotation of each ({rotated} rotated): +{:.0} bytes per session while the \
         grace slot lives (slot: {slot_bytes:.0} bytes, reclaimed {waited:.1} s after the grace), \
         +{first_rotation:.0} bytes per session after",
        (with_slots - registered) as f64 / sessions as f64,
    );
    let more = 3;
    let mut rotated_more = 0;
    for _ in 0..more {
        rotated_more += rotate_all(&store, &mut current, &token).await;
    }
    tokio::time::sleep(grace).await;
    wait_for_dbsize(conn, sessions as i64, Duration::from_secs(60)).await;
    let after_more = used_memory(conn).await;
    let steady = (after_more - after_slots) as f64 / (more * sessions) as f64;
    println!(
        "memory: {more} more rotations each ({rotated_more} rotated): +{steady:.1} bytes per \
         session per rotation (spent-token digests, capped at the spent history)"
    );
    let elapsed = start.elapsed();
    assert!(
        elapsed < lifetime,
        "the rotations took {elapsed:?}, longer than --lifetime {lifetime:?}: raise it"
    );
    tokio::time::sleep_until(last_end).await;
    let expired_in = wait_for_dbsize(conn, 0, Duration::from_secs(120)).await;
    let after_expiry = used_memory(conn).await;
    println!(
        "memory: every family ended ({lifetime:?} lifetime): keyspace empty {expired_in:.1} s \
         after the last end, used_memory {after_expiry} ({:+} bytes against the baseline)",
        after_expiry - baseline
    );

    // The hand-rolled schema, for reference: one JSON record per token.
    let hand_baseline = used_memory(conn).await;
    fill_handrolled(conn, 0..sessions, 3600).await;
    let hand = (used_memory(conn).await - hand_baseline) as f64 / sessions as f64;
    println!(
        "memory: hand-rolled schema (SETEX refresh_token:<user>:<jti> <json record>): {hand:.0} \
         bytes per session"
    );
    let _: () = redis::cmd("FLUSHALL")
        .query_async(conn)
        .await
        .expect("FLUSHALL");
    println!(
        "RESULT memory sessions={sessions} bytes_per_session={per_session:.0} \
         grace_slot_bytes={slot_bytes:.0} first_rotation_bytes={first_rotation:.0} \
         steady_rotation_bytes={steady:.1} after_expiry_delta={} expiry_wait_s={expired_in:.1} \
         handrolled_bytes_per_session={hand:.0}",
        after_expiry - baseline
    );
}

/// `SETEX refresh_token:<user>:<jti>` records as the hand-rolled apps write them, pipelined.
async fn fill_handrolled(
    conn: &mut MultiplexedConnection,
    users: std::ops::Range<usize>,
    ttl: u64,
) {
    let ids: Vec<usize> = users.collect();
    for chunk in ids.chunks(5000) {
        let mut pipe = redis::pipe();
        for &i in chunk {
            let jti = jti();
            let record = serde_json::json!({
                "user": user(i), "jti": jti, "family": jti,
                "issued_at": 1_700_000_000u64, "expires_at": 1_702_592_000u64,
            });
            pipe.cmd("SETEX")
                .arg(format!("refresh_token:{}:{jti}", user(i)))
                .arg(ttl)
                .arg(record.to_string())
                .ignore();
        }
        let _: () = pipe.query_async(conn).await.expect("SETEX pipeline");
    }
}

fn stats(mut samples: Vec<f64>) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at =
        |p: f64| samples[((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1];
    (at(0.5), at(0.99), samples[samples.len() - 1])
}

async fn timed<T>(call: impl Future<Output = T>) -> (f64, T) {
    let start = Instant::now();
    let value = call.await;
    (start.elapsed().as_secs_f64() * 1000.0, value)
}

async fn scale(server: &RedisServer, conn: &mut MultiplexedConnection, sizes: &[usize]) {
    let config = StoreConfig::default()
        .absolute_lifetime(Duration::from_secs(3600))
        .idle_lifetime(Duration::from_secs(3600))
        .timeout(Duration::from_secs(10));
    let store = RedisStore::open(&server.url(), config).expect("a store");
    let _: () = redis::cmd("FLUSHALL")
        .query_async(conn)
        .await
        .expect("FLUSHALL");
    let target = "target-user";
    for _ in 0..5 {
        store
            .register(target, &jti(), None)
            .await
            .expect("register");
    }
    fill_handrolled_user(conn, target).await;
    let mut filled = 0;
    for &size in sizes {
        let start = Instant::now();
        register_many(&store, filled..size).await;
        fill_handrolled(conn, filled..size, 3600).await;
        filled = size;
        let fill_s = start.elapsed().as_secs_f64();
        let keys = dbsize(conn).await;

        let mut list = Vec::new();
        for _ in 0..200 {
            let (ms, sessions) = timed(store.list(target)).await;
            assert_eq!(sessions.expect("list").len(), 5);
            list.push(ms);
        }
        let mut revoke = Vec::new();
        for k in 0..50 {
            let victim = format!("victim-{size}-{k}");
            for _ in 0..5 {
                store
                    .register(&victim, &jti(), None)
                    .await
                    .expect("register");
            }
            let (ms, count) = timed(store.revoke_all(&victim)).await;
            assert_eq!(count.expect("revoke_all"), 5);
            revoke.push(ms);
        }
        let mut keys_ms = Vec::new();
        for _ in 0..10 {
            // The hand-rolled original's listing, measured beside `list` on purpose (issue 5);
            // the store itself never sends KEYS.
            let (ms, found) = timed(
                redis::cmd("KEYS")
                    .arg(format!("refresh_token:{target}:*"))
                    .query_async::<Vec<String>>(conn),
            )
            .await;
            assert_eq!(found.expect("KEYS").len(), 5);
            keys_ms.push(ms);
        }
        let (l50, l99, _) = stats(list);
        let (r50, r99, _) = stats(revoke);
        let (k50, _, kmax) = stats(keys_ms);
        println!(
            "scale: {size} other sessions in each schema ({keys} keys, filled in {fill_s:.1} s): \
             list p50 {l50:.3} ms p99 {l99:.3} ms; revoke_all p50 {r50:.3} ms p99 {r99:.3} ms; \
             KEYS refresh_token:<user>:* p50 {k50:.3} ms max {kmax:.3} ms"
        );
        println!(
            "RESULT scale size={size} keys={keys} list_p50_ms={l50:.3} list_p99_ms={l99:.3} \
             revoke_all_p50_ms={r50:.3} revoke_all_p99_ms={r99:.3} keys_p50_ms={k50:.3} \
             keys_max_ms={kmax:.3}"
        );
    }
    let _: () = redis::cmd("FLUSHALL")
        .query_async(conn)
        .await
        .expect("FLUSHALL");
}

async fn fill_handrolled_user(conn: &mut MultiplexedConnection, user: &str) {
    for _ in 0..5 {
        let _: () = redis::cmd("SETEX")
            .arg(format!("refresh_token:{user}:{}", jti()))
            .arg(3600)
            .arg("{}")
            .query_async(conn)
            .await
            .expect("SETEX");
    }
}

async fn evalsha_calls(conn: &mut MultiplexedConnection) -> i64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .expect("INFO");
    info.lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<i64>()
                .ok()
        })
        .sum()
}

async fn round_trips(server: &RedisServer, conn: &mut MultiplexedConnection) {
    let store = RedisStore::open(&server.url(), StoreConfig::default()).expect("a store");
    let token = "t".repeat(TOKEN_LEN);
    let n = 1000;
    // Load both scripts first (the first call after a restart adds a SCRIPT LOAD).
    let mut first = register_many(&store, n..n + 1).await;
    rotate_all(&store, &mut first, &token).await;
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(conn)
        .await
        .expect("RESETSTAT");
    let mut current = register_many(&store, 0..n).await;
    let register = evalsha_calls(conn).await as f64 / n as f64;
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(conn)
        .await
        .expect("RESETSTAT");
    rotate_all(&store, &mut current, &token).await;
    let rotate = evalsha_calls(conn).await as f64 / n as f64;
    println!(
        "round trips: {register:.2} EVALSHA per register, {rotate:.2} per rotate \
         (INFO commandstats over {n} calls each)"
    );
    println!("RESULT store_roundtrips register={register:.2} rotate={rotate:.2}");
}

#[tokio::main]
async fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let sessions: usize = option("sessions", if smoke { "1000" } else { "100000" })
        .parse()
        .expect("--sessions");
    let sizes: Vec<usize> = option(
        "sizes",
        if smoke {
            "1000,2000,4000"
        } else {
            "10000,100000,1000000"
        },
    )
    .split(',')
    .map(|s| s.trim().parse().expect("--sizes"))
    .collect();
    let server = RedisServer::start();
    println!("redis-server on {} (started for this run)", server.addr());
    let client = redis::Client::open(server.url()).expect("a client");
    // KEYS and FLUSHALL over millions of keys outlast redis's default 500 ms response timeout.
    let config =
        redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(60)));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("connect");
    let lifetime = Duration::from_secs(
        option("lifetime", if smoke { "10" } else { "45" })
            .parse()
            .expect("--lifetime"),
    );
    round_trips(&server, &mut conn).await;
    memory(&server, &mut conn, sessions, lifetime).await;
    scale(&server, &mut conn, &sizes).await;
}
