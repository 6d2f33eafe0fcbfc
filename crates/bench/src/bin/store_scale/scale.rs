//! Part 3: `list` and `revoke_all` against the keyspace size, beside a pattern listing.

use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use test_support::RedisServer;
use token_rotation::token_core::{RotationStore, StoreConfig};

use crate::figures::stats;
use crate::population::{fill_handrolled, jti, month_ahead, register_users, user};
use crate::server::{dbsize, flushall, store};

pub(crate) async fn timed<T>(call: impl Future<Output = T>) -> (f64, T) {
    let start = Instant::now();
    let value = call.await;
    (start.elapsed().as_secs_f64() * 1000.0, value)
}

pub(crate) async fn scale(server: &RedisServer, conn: &mut MultiplexedConnection, sizes: &[usize]) {
    let config = StoreConfig::default()
        .absolute_lifetime(Duration::from_secs(3600))
        .idle_lifetime(Duration::from_secs(3600));
    let store = store(server, config);
    let exp = month_ahead();
    flushall(conn).await;
    let target = "target-user";
    register_users(&store, 0..1, 5, true, exp, |_| target.to_owned()).await;
    fill_handrolled_user(conn, target).await;
    let mut filled = 0;
    for &size in sizes {
        let start = Instant::now();
        register_users(&store, filled..size, 1, true, exp, user).await;
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
            register_users(&store, 0..1, 5, true, exp, |_| victim.clone()).await;
            let (ms, count) = timed(store.revoke_all(&victim)).await;
            assert_eq!(count.expect("revoke_all"), 5);
            revoke.push(ms);
        }
        let mut scan_ms = Vec::new();
        for _ in 0..10 {
            // The hand-rolled original lists a user's tokens by pattern over the whole
            // keyspace; timed here beside `list` without `KEYS`, as a full `SCAN MATCH`.
            let (ms, found) = timed(scan_match(conn, &format!("refresh_token:{target}:*"))).await;
            assert_eq!(found.expect("SCAN MATCH").len(), 5);
            scan_ms.push(ms);
        }
        let (l50, l99, _) = stats(list);
        let (r50, r99, _) = stats(revoke);
        let (k50, _, kmax) = stats(scan_ms);
        println!(
            "scale: {size} other sessions in each schema ({keys} keys, filled in {fill_s:.1} s): \
             list p50 {l50:.3} ms p99 {l99:.3} ms; revoke_all p50 {r50:.3} ms p99 {r99:.3} ms; \
             SCAN MATCH refresh_token:<user>:* p50 {k50:.3} ms max {kmax:.3} ms"
        );
        println!(
            "RESULT scale size={size} keys={keys} list_p50_ms={l50:.3} list_p99_ms={l99:.3} \
             revoke_all_p50_ms={r50:.3} revoke_all_p99_ms={r99:.3} scan_p50_ms={k50:.3} \
             scan_max_ms={kmax:.3}"
        );
    }
    flushall(conn).await;
}

/// Every key matching `pattern`, by one `SCAN MATCH` walk over the whole keyspace.
pub(crate) async fn scan_match(
    conn: &mut MultiplexedConnection,
    pattern: &str,
) -> redis::RedisResult<Vec<String>> {
    let mut found = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await?;
        found.extend(keys);
        if next == 0 {
            return Ok(found);
        }
        cursor = next;
    }
}

pub(crate) async fn fill_handrolled_user(conn: &mut MultiplexedConnection, user: &str) {
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
