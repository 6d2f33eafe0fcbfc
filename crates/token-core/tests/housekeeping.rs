//! Expiry housekeeping without a background task: TTLs and pruning on write alone bring a
//! real Redis back to its baseline once every session has ended.

use std::time::{Duration, Instant};

use test_support::RedisServer;
use token_core::{FamilyId, RedisStore, RotationStore, StoreConfig, Successor, TokenRef, admin};

/// The tokens' `exp`: a day from now.
fn exp() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        / 3600
        * 3600
        + 86_400
}

fn info_field(server: &RedisServer, field: &str) -> Option<u64> {
    let info = server.command(&["INFO", "memory"]).expect("INFO memory");
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
}

fn dbsize(server: &RedisServer) -> u64 {
    let reply = server.command(&["DBSIZE"]).expect("DBSIZE");
    reply.trim_start_matches(':').parse().expect("an integer")
}

/// `used_memory` without what Lua itself holds (the script cache, the VM heap), which is
/// warm-up, not session data.
fn data_memory(server: &RedisServer) -> u64 {
    let lua = info_field(server, "used_memory_vm_eval").or(info_field(server, "used_memory_lua"));
    info_field(server, "used_memory")
        .expect("used_memory in INFO memory")
        .saturating_sub(lua.unwrap_or(0))
}

fn short_lived() -> StoreConfig {
    StoreConfig::default()
        .absolute_lifetime(Duration::from_secs(2))
        .idle_lifetime(Duration::from_millis(1500))
        .grace(Duration::from_millis(500))
        .retry_window(Duration::from_millis(500))
}

/// Logs in `users` users with `sessions` sessions each and rotates every session twice, so
/// session hashes and grace slots all exist.
async fn load(store: &RedisStore, tag: &str, users: usize, sessions: usize) {
    for u in 0..users {
        let user = format!("{tag}-user-{u}");
        for s in 0..sessions {
            let jti = |n: usize| format!("{tag}-{u}-{s}-{n}");
            // Family-claim mode: nothing per token, so nothing outlives the sessions.
            let sid = FamilyId::random();
            store
                .register(
                    &user,
                    TokenRef::new(&jti(0), exp()).in_family(&sid),
                    Some("Firefox on Linux"),
                )
                .await
                .unwrap();
            for n in 1..=2 {
                let next = jti(n);
                let successor = Successor {
                    jti: &next,
                    token: "a refresh token of a few hundred bytes, sealed for the grace window",
                    expires_at: exp(),
                };
                assert!(
                    store
                        .rotate(
                            &user,
                            TokenRef::new(&jti(n - 1), exp()).in_family(&sid),
                            successor,
                        )
                        .await
                        .unwrap()
                        .is_granted()
                );
            }
        }
    }
}

async fn wait_for_baseline(server: &RedisServer, baseline: u64, slack: u64) -> Duration {
    let started = Instant::now();
    loop {
        let (keys, memory) = (dbsize(server), data_memory(server));
        if keys == 0 && memory <= baseline + slack {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "Redis did not return to its baseline: {keys} keys, {memory} bytes of data \
             against a baseline of {baseline}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn memory_returns_to_baseline_after_every_session_expires() {
    let server = RedisServer::start();
    let store = RedisStore::open(&server.url(), short_lived()).unwrap();

    // Warm up: scripts loaded, connection open, allocator settled; then the baseline.
    load(&store, "warmup", 2, 1).await;
    wait_for_baseline(&server, u64::MAX / 2, 0).await;
    let baseline = data_memory(&server);

    load(&store, "load", 200, 3).await;
    let loaded_keys = dbsize(&server);
    let loaded = data_memory(&server);
    assert!(
        loaded_keys >= 200,
        "200 records (plus grace slots) expected, got {loaded_keys}"
    );
    assert!(
        loaded > baseline + 100 * 1024,
        "600 sessions should take visible memory: {loaded} vs baseline {baseline}"
    );

    // No cleanup call, no background task: only TTLs run from here.
    let took = wait_for_baseline(&server, baseline, 16 * 1024).await;
    assert!(
        took >= Duration::from_millis(500),
        "sessions outlived their TTL"
    );
}

#[tokio::test]
async fn logins_prune_ended_sessions_of_a_user_who_stays() {
    let server = RedisServer::start();
    let store = RedisStore::open(&server.url(), short_lived()).unwrap();
    let index = admin::index_key("rt:", "nora");
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    // One session that will end, then one that is kept alive by rotating.
    let (old, kept) = (FamilyId::random(), FamilyId::random());
    store
        .register("nora", TokenRef::new("old", exp()).in_family(&old), None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1600)).await;
    store
        .register(
            "nora",
            TokenRef::new("kept-0", exp()).in_family(&kept),
            None,
        )
        .await
        .unwrap();
    let mut current = "kept-0".to_owned();
    for n in 1..=3 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let next = format!("kept-{n}");
        let successor = Successor {
            jti: &next,
            token: "t",
            expires_at: exp(),
        };
        assert!(
            store
                .rotate(
                    "nora",
                    TokenRef::new(&current, exp()).in_family(&kept),
                    successor,
                )
                .await
                .unwrap()
                .is_granted()
        );
        current = next;
    }
    // "old" passed its idle end (1.5 s) before the second login, which pruned it.
    let fields: Vec<(Vec<u8>, Vec<u8>)> = redis::cmd("HGETALL")
        .arg(&index)
        .query_async(&mut conn)
        .await
        .unwrap();
    let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(&mut conn).await.unwrap();
    let after = admin::summarize_index(fields, secs * 1000 + micros / 1000);
    assert_eq!((after.live, after.ended), (1, 0), "{after:?}");
    assert_eq!(store.list("nora").await.unwrap().len(), 1);

    // Once the last session ends, its keys expire on their own.
    let started = Instant::now();
    while dbsize(&server) > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "keys outlived their sessions"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
