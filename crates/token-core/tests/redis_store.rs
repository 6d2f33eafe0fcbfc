//! What only the Redis store can show: what Redis holds (no raw token, a TTL on every key,
//! one hash tag per user), round trips per operation, separate connections racing, and
//! behaviour when Redis is down or restarted.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::{Backend, MakeStore, Mode, Redis, redis_contents};
use test_support::RedisServer;
use test_support::proxy::reply_dropping_proxy;
use token_core::{
    ConnectionSource, FamilyId, KeyProof, RedisStore, RotationOutcome, RotationStore, StoreConfig,
    StoreError, Successor, TokenRef,
};

const BACKENDS: [Backend; 3] = [
    Backend::RedisManager,
    Backend::RedisBb8Redis,
    Backend::RedisBb8Client,
];

fn tok(jti: &str) -> String {
    format!("eyJhbGciOiJIUzI1NiJ9.secret-payload-{jti}.c2lnbmF0dXJl")
}

fn next<'a>(jti: &'a str, token: &'a str) -> Successor<'a> {
    Successor {
        jti,
        token,
        expires_at: exp(),
    }
}

fn exp() -> i64 {
    *support::EXP
}

/// The jti of a token minted before the store recorded tokens, adopted in `scenario`.
const LEGACY_JTI: &str = "legacy-jti-0b9c1e";

/// A scenario touching every operation: logins, an adoption, rotations, a grace replay,
/// reuse, revocations.
async fn scenario(store: &RedisStore, user: &str) {
    let legacy = TokenRef::new(LEGACY_JTI, exp()).issued_at(*support::ISSUED);
    let adopted = store
        .adopt(user, legacy, &FamilyId::random(), Some("agent"))
        .await
        .unwrap();
    store
        .rotate(
            user,
            legacy.in_family(adopted.family().unwrap()),
            next("l1", &tok("l1")),
        )
        .await
        .unwrap();
    store
        .register(user, TokenRef::new("a0", exp()), Some("agent"))
        .await
        .unwrap();
    store
        .register(user, TokenRef::new("b0", exp()), None)
        .await
        .unwrap();
    store
        .register(user, TokenRef::new("c0", exp()), None)
        .await
        .unwrap();
    for i in 1..=5 {
        let (prev, jti) = (format!("a{}", i - 1), format!("a{i}"));
        store
            .rotate(user, TokenRef::new(&prev, exp()), next(&jti, &tok(&jti)))
            .await
            .unwrap();
    }
    store
        .rotate(user, TokenRef::new("a4", exp()), next("zz", &tok("zz")))
        .await
        .unwrap(); // grace replay
    store
        .rotate(user, TokenRef::new("b0", exp()), next("b1", &tok("b1")))
        .await
        .unwrap();
    store
        .rotate(user, TokenRef::new("c0", exp()), next("c1", &tok("c1")))
        .await
        .unwrap();
    store
        .rotate(user, TokenRef::new("a1", exp()), next("zz", &tok("zz")))
        .await
        .unwrap(); // reuse
    store
        .revoke(user, TokenRef::new("b1", exp()))
        .await
        .unwrap();
    store.list(user).await.unwrap();
    // Both leave revocation marks (for adoption).
    store.revoke_client(user, "app-x").await.unwrap();
    store.revoke_all(user).await.unwrap();
}

#[tokio::test]
async fn redis_never_holds_a_raw_token_and_every_key_has_a_ttl() {
    for backend in BACKENDS {
        let f = Redis(backend, Mode::TokenIndex).make(|c| c);
        let server = f.backend.server.as_ref().unwrap();
        scenario(&f.store.inner, "alice").await;
        scenario(&f.store.inner, "bob").await;
        let contents = redis_contents(server);
        assert!(contents.len() >= 4, "records and grace slots: {contents:?}");
        let absolute = 3600 * 1000;
        // Token-index entries live until their token's `exp`, plus at most two hours.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let token_bound = (exp() + 2 * 3600) * 1000 - now;
        let mut adoption_records = 0;
        let mut marks = 0;
        for (key, value, ttl) in &contents {
            let bound = if key.contains("}:t:") || key.ends_with("}:a") {
                token_bound
            } else if key.ends_with("}:r") {
                marks += 1;
                // Revocation marks: the absolute lifetime and two hours.
                absolute + 2 * 3600 * 1000
            } else {
                absolute
            };
            assert!(*ttl > 0 && *ttl <= bound, "{key} has TTL {ttl}");
            if key.ends_with("}:a") {
                adoption_records += 1;
                // A spent legacy token must stay known for as long as it can be presented.
                assert!(
                    *ttl >= exp() * 1000 - now,
                    "adoption record {key} ends before its token: {ttl} ms"
                );
            }
            assert!(!value.contains(LEGACY_JTI), "{key} holds a raw jti");
            for jti in ["a0", "a1", "a2", "a3", "a4", "a5", "b1", "c1", "l1", "zz"] {
                assert!(
                    !value.contains(&tok(jti)),
                    "{key} holds the raw token {jti}"
                );
                assert!(
                    !value.contains("secret-payload"),
                    "{key} holds token material"
                );
            }
            if key.contains(":g:") {
                assert!(
                    *ttl <= 1001,
                    "grace slot {key} outlives the window: {ttl} ms"
                );
            }
        }
        assert_eq!(adoption_records, 2, "one per user: {contents:?}");
        assert_eq!(marks, 2, "one per user: {contents:?}");
    }
}

#[tokio::test]
async fn grace_slots_vanish_with_the_window() {
    let f = Redis(Backend::RedisManager, Mode::TokenIndex)
        .make(|c| c.grace(Duration::from_millis(200)));
    let server = f.backend.server.as_ref().unwrap();
    f.store
        .inner
        .register("alice", TokenRef::new("t0", exp()), None)
        .await
        .unwrap();
    f.store
        .inner
        .rotate("alice", TokenRef::new("t0", exp()), next("t1", &tok("t1")))
        .await
        .unwrap();
    assert!(
        redis_contents(server)
            .iter()
            .any(|(k, _, _)| k.contains(":g:"))
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let keys: Vec<_> = redis_contents(server)
        .into_iter()
        .map(|(k, _, _)| k)
        .collect();
    assert!(
        keys.iter().all(|k| !k.contains(":g:")),
        "the grace slot is gone: {keys:?}"
    );
    assert_eq!(
        keys.len(),
        2,
        "the session hash and the token index: {keys:?}"
    );
}

#[tokio::test]
async fn a_family_keeps_one_grace_slot_however_often_it_rotates() {
    let f =
        Redis(Backend::RedisManager, Mode::FamilyClaim).make(|c| c.grace(Duration::from_secs(60)));
    let server = f.backend.server.as_ref().unwrap();
    let family = FamilyId::from("fam");
    let store = &f.store.inner;
    store
        .register("alice", TokenRef::new("t0", exp()).in_family(&family), None)
        .await
        .unwrap();
    let slots = || {
        redis_contents(server)
            .into_iter()
            .filter(|(k, _, _)| k.contains(":g:"))
            .count()
    };
    for i in 0..20 {
        let (jti, next_jti) = (format!("t{i}"), format!("t{}", i + 1));
        let outcome = store
            .rotate(
                "alice",
                TokenRef::new(&jti, exp()).in_family(&family),
                next(&next_jti, &tok(&next_jti)),
            )
            .await
            .unwrap();
        assert!(
            matches!(outcome, RotationOutcome::Rotated { .. }),
            "{outcome:?}"
        );
        assert_eq!(slots(), 1, "after rotation {i}");
    }
    // The one slot answers the latest predecessor's retry, byte for byte.
    let replay = store
        .rotate(
            "alice",
            TokenRef::new("t19", exp()).in_family(&family),
            next("other", &tok("other")),
        )
        .await
        .unwrap();
    assert_eq!(
        replay,
        RotationOutcome::GraceReplay {
            family: family.clone(),
            successor: tok("t20"),
        }
    );
}

#[tokio::test]
async fn a_busy_hour_spills_into_shards_and_every_token_stays_known() {
    let f = Redis(Backend::RedisManager, Mode::TokenIndex).make(|c| c.grace(Duration::ZERO));
    let server = f.backend.server.as_ref().unwrap();
    let store = &f.store.inner;
    store
        .register("alice", TokenRef::new("t0", exp()), None)
        .await
        .unwrap();
    for i in 0..300 {
        let (jti, next_jti) = (format!("t{i}"), format!("t{}", i + 1));
        let outcome = store
            .rotate(
                "alice",
                TokenRef::new(&jti, exp()),
                next(&next_jti, &tok(&next_jti)),
            )
            .await
            .unwrap();
        assert!(
            matches!(outcome, RotationOutcome::Rotated { .. }),
            "{outcome:?}"
        );
    }
    // Every token of the hour is indexed once: the hour's bucket holds 16, its 64 shards
    // the rest, a few each; every key has a TTL.
    let index: Vec<(String, usize)> = redis_contents(server)
        .into_iter()
        .filter(|(key, _, _)| key.contains(":t:"))
        .map(|(key, _, ttl)| {
            assert!(ttl > 0, "{key} has a TTL");
            let entries = server.command(&["HLEN", &key]).unwrap()[1..]
                .parse()
                .unwrap();
            (key, entries)
        })
        .collect();
    assert_eq!(
        index.iter().map(|(_, n)| n).sum::<usize>(),
        301,
        "{index:?}"
    );
    let bucket = index
        .iter()
        // The bucket ends in its hour, a shard in two hex digits.
        .find(|(key, _)| key.rsplit(':').next().is_some_and(|last| last.len() > 2))
        .expect("the hour's bucket");
    assert_eq!(bucket.1, 16, "{index:?}");
    assert!(index.len() > 32, "shards in use: {index:?}");
    assert!(index.iter().all(|(_, n)| *n <= 16), "{index:?}");
    // A spent token from the bucket and one from a shard are both recognised, and the
    // current token from a shard still rotates... until the reuse revokes the family.
    let outcome = store
        .rotate("alice", TokenRef::new("t250", exp()), next("x", &tok("x")))
        .await
        .unwrap();
    assert!(
        matches!(outcome, RotationOutcome::ReuseDetected { .. }),
        "{outcome:?}"
    );
    let outcome = store
        .rotate("alice", TokenRef::new("t3", exp()), next("y", &tok("y")))
        .await
        .unwrap();
    assert!(
        matches!(outcome, RotationOutcome::Revoked { .. }),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn keys_of_one_user_share_one_hash_tag() {
    let f = Redis(Backend::RedisManager, Mode::TokenIndex).make(|c| c);
    let server = f.backend.server.as_ref().unwrap();
    for user in ["alice", "a}b{c", "{x}", "*:*"] {
        f.store
            .inner
            .register(user, TokenRef::new("t0", exp()), None)
            .await
            .unwrap();
        f.store
            .inner
            .rotate(user, TokenRef::new("t0", exp()), next("t1", &tok("t1")))
            .await
            .unwrap();
    }
    let contents = redis_contents(server);
    assert_eq!(contents.len(), 12, "{contents:?}");
    let mut tags = std::collections::HashMap::<String, usize>::new();
    for (key, _, _) in contents {
        let open = key.find('{').unwrap();
        let close = open + key[open..].find('}').unwrap();
        let tag = &key[open + 1..close];
        assert!(
            tag.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert!(key.starts_with("rt:{u"), "{key}");
        *tags.entry(tag.to_owned()).or_default() += 1;
    }
    assert!(
        tags.values().all(|&n| n == 3),
        "session hash, grace slot and token index per user: {tags:?}"
    );
}

fn commandstats(server: &RedisServer) -> Vec<(String, u64)> {
    let info = server.command(&["INFO", "commandstats"]).unwrap();
    info.lines()
        .filter_map(|line| line.strip_prefix("cmdstat_"))
        .map(|line| {
            let (name, rest) = line.split_once(':').unwrap();
            let calls = rest
                .split(',')
                .find_map(|kv| kv.strip_prefix("calls="))
                .unwrap()
                .parse()
                .unwrap();
            (name.to_owned(), calls)
        })
        .filter(|(name, _)| !matches!(name.as_str(), "info" | "config|resetstat"))
        .collect()
}

/// `INFO commandstats` also counts the commands a function runs inside Redis (`time`,
/// `hget`, `hset`, ...); those are not round trips. Everything else a client sent is.
fn assert_one_round_trip(stats: Vec<(String, u64)>, what: &str) {
    let inside_functions = [
        "time", "get", "set", "del", "pttl", "pexpire", "hget", "hset", "hgetall", "hdel", "hlen",
    ];
    let sent: Vec<_> = stats
        .iter()
        .filter(|(name, _)| !inside_functions.contains(&name.as_str()))
        .collect();
    assert_eq!(sent, [&("fcall".to_owned(), 1)], "{what}: {stats:?}");
}

#[tokio::test]
async fn register_rotate_and_adopt_cost_one_fcall_each_on_every_source() {
    for backend in BACKENDS {
        let f = Redis(backend, Mode::TokenIndex).make(|c| c);
        let server = f.backend.server.as_ref().unwrap();
        // Warm up: connect and load the function library once.
        f.store
            .inner
            .register("warm", TokenRef::new("w0", exp()), None)
            .await
            .unwrap();
        f.store
            .inner
            .rotate("warm", TokenRef::new("w0", exp()), next("w1", &tok("w1")))
            .await
            .unwrap();
        server.command(&["CONFIG", "RESETSTAT"]).unwrap();
        f.store
            .inner
            .register("alice", TokenRef::new("t0", exp()), None)
            .await
            .unwrap();
        assert_one_round_trip(commandstats(server), &format!("{backend:?} register"));
        server.command(&["CONFIG", "RESETSTAT"]).unwrap();
        f.store
            .inner
            .rotate("alice", TokenRef::new("t0", exp()), next("t1", &tok("t1")))
            .await
            .unwrap();
        assert_one_round_trip(commandstats(server), &format!("{backend:?} rotate"));
        server.command(&["CONFIG", "RESETSTAT"]).unwrap();
        f.store
            .inner
            .adopt(
                "alice",
                TokenRef::new("legacy", exp()),
                &FamilyId::random(),
                None,
            )
            .await
            .unwrap();
        assert_one_round_trip(commandstats(server), &format!("{backend:?} adopt"));
    }
}

/// DPoP costs no round trip: a login and a rotation with a proof are still one `FCALL` each,
/// the proof spent inside it (and a replayed one refused inside it).
#[tokio::test]
async fn a_dpop_login_and_rotation_cost_one_fcall_each() {
    for mode in [Mode::FamilyClaim, Mode::TokenIndex] {
        let f = Redis(Backend::RedisManager, mode).make(|c| c);
        let server = f.backend.server.as_ref().unwrap();
        let proof = |jti| KeyProof {
            thumbprint: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
            jti: Some(jti),
            binds: false,
        };
        f.store
            .register_with("warm", "w0", None, None, Some(proof("warm")))
            .await
            .unwrap();
        server.command(&["CONFIG", "RESETSTAT"]).unwrap();
        f.store
            .register_with("alice", "t0", None, None, Some(proof("p0")))
            .await
            .unwrap();
        assert_one_round_trip(commandstats(server), &format!("{mode:?} DPoP register"));
        // Twice: the same call sent again after a lost reply (same proof, same successor)
        // is done again, in one round trip as well.
        for _ in 0..2 {
            server.command(&["CONFIG", "RESETSTAT"]).unwrap();
            let outcome = f
                .store
                .rotate_with(
                    "alice",
                    "t0",
                    None,
                    Some(proof("p1")),
                    next("t1", &tok("t1")),
                )
                .await
                .unwrap();
            assert_eq!(outcome.name(), "rotated", "{mode:?}");
            assert_one_round_trip(commandstats(server), &format!("{mode:?} DPoP rotate"));
        }
        let outcome = f
            .store
            .rotate_with(
                "alice",
                "t1",
                None,
                Some(proof("p1")),
                next("t2", &tok("t2")),
            )
            .await
            .unwrap();
        assert_eq!(outcome, RotationOutcome::ProofReplayed, "{mode:?}");
        // Each proof's mark lives no longer than the store remembers proofs.
        let marks: Vec<i64> = redis_contents(server)
            .into_iter()
            .filter(|(key, _, _)| key.starts_with("rt:{d"))
            .map(|(_, _, ttl)| ttl)
            .collect();
        assert_eq!(marks.len(), 3, "{mode:?}: warm, p0, p1");
        let lifetime = token_core::PROOF_JTI_LIFETIME.as_millis() as i64;
        assert!(
            marks.iter().all(|ttl| *ttl > 0 && *ttl <= lifetime),
            "{marks:?}"
        );
    }
}

#[tokio::test]
async fn rotations_racing_on_separate_connections_store_one_successor() {
    let server = RedisServer::start();
    // Atomicity, not the replay cap, is under test: 63 replays are allowed here.
    let config = StoreConfig::default()
        .grace(Duration::from_secs(5))
        .max_grace_replays(None);
    let stores: Vec<RedisStore> = (0..64)
        .map(|_| RedisStore::open(&server.url(), config.clone()).unwrap())
        .collect();
    for store in &stores {
        store.ping().await.unwrap();
    }
    let clients: u64 = server
        .command(&["INFO", "clients"])
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("connected_clients:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        clients >= 64,
        "each store has its own connection: {clients}"
    );
    stores[0]
        .register("alice", TokenRef::new("t0", exp()), None)
        .await
        .unwrap();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(64));
    let tasks: Vec<_> = stores
        .iter()
        .enumerate()
        .map(|(i, store)| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                let jti = format!("s{i}");
                barrier.wait().await;
                store
                    .rotate("alice", TokenRef::new("t0", exp()), next(&jti, &tok(&jti)))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut successors = std::collections::HashSet::new();
    let mut rotated = 0;
    for task in tasks {
        match task.await.unwrap() {
            RotationOutcome::Rotated { .. } => rotated += 1,
            RotationOutcome::GraceReplay { successor, .. } => {
                successors.insert(successor);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(rotated, 1);
    assert_eq!(successors.len(), 1, "one successor for all replays");
    let session = &stores[0].list("alice").await.unwrap()[0];
    let winner = (0..64)
        .map(|i| format!("s{i}"))
        .find(|jti| session.is_current(jti))
        .expect("one of the successors is current");
    assert_eq!(&tok(&winner), successors.iter().next().unwrap());
}

#[tokio::test]
async fn calls_fail_within_the_timeout_when_redis_is_down() {
    for backend in BACKENDS {
        let mut server = RedisServer::start();
        let timeout = Duration::from_millis(300);
        // A rotation sent just before the kill has an unknown outcome: it is sent again for
        // this long; one Redis refuses outright fails at once.
        let outcome_wait = Duration::from_millis(300);
        let source = support::source(backend, &server.url(), timeout);
        let config = StoreConfig::default()
            .timeout(timeout)
            .outcome_wait(outcome_wait);
        let store = RedisStore::with_source(source, config).unwrap();
        store
            .register("alice", TokenRef::new("t0", exp()), None)
            .await
            .unwrap();
        server.kill();
        for _ in 0..3 {
            let started = Instant::now();
            let err = store
                .rotate("alice", TokenRef::new("t0", exp()), next("t1", &tok("t1")))
                .await
                .unwrap_err();
            assert!(err.is_unavailable(), "{backend:?}: {err:?}");
            assert!(
                started.elapsed() < timeout + outcome_wait + Duration::from_millis(250),
                "{backend:?} took {:?}",
                started.elapsed()
            );
        }
    }
}

#[tokio::test]
async fn every_source_recovers_after_a_redis_restart() {
    for backend in BACKENDS {
        let mut server = RedisServer::start();
        let timeout = Duration::from_millis(500);
        let source = support::source(backend, &server.url(), timeout);
        let store =
            RedisStore::with_source(source, StoreConfig::default().timeout(timeout)).unwrap();
        store
            .register("alice", TokenRef::new("t0", exp()), None)
            .await
            .unwrap();
        server.restart();
        // Without persistence the restarted Redis knows nothing: fail closed.
        let mut outcome = None;
        for _ in 0..20 {
            match store
                .rotate("alice", TokenRef::new("t0", exp()), next("t1", &tok("t1")))
                .await
            {
                Ok(o) => {
                    outcome = Some(o);
                    break;
                }
                Err(e) => {
                    assert!(e.is_unavailable(), "{e:?}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        assert_eq!(outcome, Some(RotationOutcome::Unknown), "{backend:?}");
        store
            .register("alice", TokenRef::new("n0", exp()), None)
            .await
            .unwrap();
        let outcome = store
            .rotate("alice", TokenRef::new("n0", exp()), next("n1", &tok("n1")))
            .await
            .unwrap();
        assert!(
            matches!(outcome, RotationOutcome::Rotated { .. }),
            "{backend:?}"
        );
    }
}

/// Instances given the same derived key answer each other's retries; a store built without
/// a key says what that costs.
#[tokio::test]
async fn instances_sharing_a_derived_sealing_key_replay_each_others_successors() {
    let server = RedisServer::start();
    let key = || token_core::SealingKey::derive(b"shared by every instance", b"tests v1");
    let one = RedisStore::open(&server.url(), StoreConfig::default().sealing_key(key())).unwrap();
    let other = RedisStore::open(&server.url(), StoreConfig::default().sealing_key(key())).unwrap();
    one.register("alice", TokenRef::new("t0", exp()), None)
        .await
        .unwrap();
    one.rotate("alice", TokenRef::new("t0", exp()), next("t1", &tok("t1")))
        .await
        .unwrap();
    let replay = other
        .rotate("alice", TokenRef::new("t0", exp()), next("t2", &tok("t2")))
        .await
        .unwrap();
    assert!(
        matches!(&replay, RotationOutcome::GraceReplay { successor, .. } if *successor == tok("t1")),
        "{replay:?}"
    );
}

#[tokio::test]
async fn a_store_without_a_sealing_key_warns_that_instances_cannot_share_replays() {
    let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || Capture(sink.clone()))
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        RedisStore::open("redis://127.0.0.1:1/", StoreConfig::default()).unwrap();
    });
    let without = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(
        without.contains("WARN") && without.contains("without a sealing key"),
        "{without}"
    );

    logs.lock().unwrap().clear();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || Capture(sink.clone()))
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let key = token_core::SealingKey::derive(b"secret", b"context");
        RedisStore::open(
            "redis://127.0.0.1:1/",
            StoreConfig::default().sealing_key(key),
        )
        .unwrap();
    });
    assert!(logs.lock().unwrap().is_empty(), "no warning with a key");
}

/// A `tracing` writer into a shared buffer.
struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_foreign_sealing_key_cannot_open_a_grace_replay() {
    let server = RedisServer::start();
    let one = RedisStore::open(&server.url(), StoreConfig::default()).unwrap();
    let other = RedisStore::open(&server.url(), StoreConfig::default()).unwrap();
    one.register("alice", TokenRef::new("t0", exp()), None)
        .await
        .unwrap();
    one.rotate("alice", TokenRef::new("t0", exp()), next("t1", &tok("t1")))
        .await
        .unwrap();
    let err = other
        .rotate("alice", TokenRef::new("t0", exp()), next("t2", &tok("t2")))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unseal), "{err:?}");
    assert!(!err.is_unavailable());
}

#[tokio::test]
async fn connection_sources_debug_print_their_kind_without_the_password() {
    let server = RedisServer::start();
    let url = format!("redis://:hunter2-secret@127.0.0.1:{}/", server.port());
    let timeout = Duration::from_secs(1);
    let sources = [
        (
            ConnectionSource::connection_manager(url.as_str(), timeout).unwrap(),
            "ConnectionSource::Manager",
        ),
        (
            ConnectionSource::bb8_redis(url.as_str(), 2, timeout).unwrap(),
            "ConnectionSource::Bb8Redis",
        ),
        (
            ConnectionSource::bb8_client(url.as_str(), 2, timeout).unwrap(),
            "ConnectionSource::Bb8Client",
        ),
    ];
    for (source, name) in sources {
        assert_eq!(format!("{source:?}"), name);
        let store = RedisStore::with_source(source, StoreConfig::default()).unwrap();
        assert!(!format!("{store:?}").contains("hunter2"), "{store:?}");
    }
}

/// A rotate whose reply is lost (the connection drops after Redis ran it) is sent again by
/// the store, with the same presented token and successor: the same rotation, `Rotated`,
/// with grace off or on, never reuse. A caller that sends it again after that gets
/// `Rotated` too.
#[tokio::test]
async fn a_rotation_retried_after_a_lost_reply_is_rotated_again() {
    let server = RedisServer::start();
    let armed = Arc::new(AtomicBool::new(false));
    let port = reply_dropping_proxy(server.port(), armed.clone()).await;
    for (grace, mode) in [
        (Duration::ZERO, None),
        (Duration::from_secs(1), None),
        (Duration::ZERO, Some(FamilyId::random())),
    ] {
        let store = RedisStore::open(
            &format!("redis://127.0.0.1:{port}/"),
            StoreConfig::default()
                .grace(grace)
                .timeout(Duration::from_secs(2)),
        )
        .unwrap();
        let user = format!("user-{}-{}", grace.as_millis(), mode.is_some());
        let at = |jti| TokenRef {
            jti,
            family: mode.as_ref(),
            expires_at: exp(),
            client: None,
            proof: None,
            issued_at: None,
        };
        // Warm up, on a family of its own: the connection is open, both scripts loaded.
        let warm = FamilyId::random();
        let warm_at = |jti| TokenRef {
            family: mode.as_ref().map(|_| &warm),
            ..at(jti)
        };
        store.register(&user, warm_at("w0"), None).await.unwrap();
        store
            .rotate(&user, warm_at("w0"), next("w1", &tok("w1")))
            .await
            .unwrap();
        let family = store.register(&user, at("t0"), None).await.unwrap();

        let rotated = RotationOutcome::Rotated {
            family: family.clone(),
        };
        armed.store(true, Ordering::SeqCst);
        let lost = store.rotate(&user, at("t0"), next("t1", &tok("t1"))).await;
        assert!(!armed.load(Ordering::SeqCst), "the proxy dropped a reply");
        assert_eq!(
            lost.unwrap(),
            rotated,
            "sent again after the lost reply: grace {grace:?}, family claim {}",
            mode.is_some()
        );

        let started = Instant::now();
        let retried = loop {
            match store.rotate(&user, at("t0"), next("t1", &tok("t1"))).await {
                Ok(outcome) => break outcome,
                Err(e) if e.is_unavailable() && started.elapsed() < Duration::from_secs(5) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("retry failed: {e}"),
            }
        };
        assert_eq!(
            retried,
            rotated,
            "grace {grace:?}, family claim {}",
            mode.is_some()
        );
        // The successor of the lost reply is the family's current token.
        let outcome = store
            .rotate(&user, at("t1"), next("t2", &tok("t2")))
            .await
            .unwrap();
        assert_eq!(outcome, rotated);
    }
}

/// Without a family claim, a token-index entry is bounded by its family's end, not only by
/// its token's `exp`: a 2 s session rotated 50 times with 30-day tokens leaves nothing in
/// Redis a moment after it ends.
#[tokio::test]
async fn token_index_entries_end_with_their_family() {
    let f = Redis(Backend::RedisManager, Mode::TokenIndex).make(|c| {
        c.absolute_lifetime(Duration::from_secs(2))
            .idle_lifetime(Duration::from_secs(2))
    });
    let server = f.backend.server.as_ref().unwrap();
    let month = exp() + 30 * 24 * 3600;
    let store = &f.store.inner;
    store
        .register("alice", TokenRef::new("t0", month), None)
        .await
        .unwrap();
    for i in 1..=50 {
        let (prev, jti) = (format!("t{}", i - 1), format!("t{i}"));
        let successor = token_core::Successor {
            jti: &jti,
            token: "jwt",
            expires_at: month,
        };
        let outcome = store
            .rotate("alice", TokenRef::new(&prev, month), successor)
            .await
            .unwrap();
        assert!(
            matches!(outcome, RotationOutcome::Rotated { .. }),
            "{outcome:?}"
        );
    }
    for (key, _, ttl) in redis_contents(server) {
        assert!(ttl <= 2000, "{key} lives {ttl} ms, past its family's end");
    }
    let started = Instant::now();
    while !redis_contents(server).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "keys outlived the family: {:?}",
            redis_contents(server)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The functions are loaded once per server; a server that lost them (restarted without
/// persistence, `FUNCTION FLUSH`) gets them again on the first call that misses them.
#[tokio::test]
async fn the_function_library_is_loaded_once_and_again_after_a_flush() {
    let f = Redis(Backend::RedisManager, Mode::FamilyClaim).make(|c| c);
    let server = f.backend.server.as_ref().unwrap();
    f.store.register("alice", "t0", None).await.unwrap();
    let loads = |server: &RedisServer| {
        commandstats(server)
            .into_iter()
            .find(|(name, _)| name == "function|load")
            .map_or(0, |(_, calls)| calls)
    };
    assert_eq!(loads(server), 1);
    f.store.register("alice", "a0", None).await.unwrap();
    f.store
        .rotate("alice", "t0", next("t1", &tok("t1")))
        .await
        .unwrap();
    assert_eq!(loads(server), 1, "loaded once");
    server.command(&["FUNCTION", "FLUSH"]).unwrap();
    let outcome = f
        .store
        .rotate("alice", "t1", next("t2", &tok("t2")))
        .await
        .unwrap();
    assert!(
        matches!(outcome, RotationOutcome::Rotated { .. }),
        "{outcome:?}"
    );
    assert_eq!(loads(server), 2, "loaded again after the flush");
}

/// A user's sessions are one hash whose records stay small enough (at most 64 bytes, with
/// metadata in fields of their own) for Redis's compact listpack encoding: after logins
/// with a 40-byte user agent, rotations and a client binding, every value fits.
#[tokio::test]
async fn a_users_sessions_stay_one_listpack_encoded_hash() {
    let f = Redis(Backend::RedisManager, Mode::FamilyClaim).make(|c| c);
    let server = f.backend.server.as_ref().unwrap();
    let store = &f.store.inner;
    let agent = "Mozilla/5.0 (X11; Linux x86_64) Firefox1";
    assert_eq!(agent.len(), 40);
    for i in 0..10 {
        let family = token_core::FamilyId::random();
        let jti = format!("s{i}-0");
        let mut token = TokenRef::new(&jti, exp()).in_family(&family);
        if i % 2 == 0 {
            token = token.for_client("app-a");
        }
        store.register("alice", token, Some(agent)).await.unwrap();
        let successor = format!("s{i}-1");
        let outcome = store
            .rotate("alice", token, next(&successor, &tok(&successor)))
            .await
            .unwrap();
        assert!(
            matches!(outcome, RotationOutcome::Rotated { .. }),
            "{outcome:?}"
        );
    }
    let contents = redis_contents(server);
    let hashes: Vec<&(String, String, i64)> = contents
        .iter()
        .filter(|(k, _, _)| k.ends_with(":s"))
        .collect();
    assert_eq!(
        hashes.len(),
        1,
        "one key for all of a user's sessions: {contents:?}"
    );
    let key = &hashes[0].0;
    assert_eq!(
        server.command(&["OBJECT", "ENCODING", key]).unwrap(),
        "$listpack"
    );
    assert_eq!(
        server.command(&["HLEN", key]).unwrap(),
        ":20",
        "10 records, 10 agents"
    );
    // Every value's length, measured by the server (metadata fields are named with a 0xFF
    // byte, which the test client cannot send back).
    let script = "local n = {} for _, v in ipairs(redis.call('HVALS', KEYS[1])) do \
                  n[#n + 1] = #v end return n";
    let reply = server.command(&["EVAL", script, "1", key]).unwrap();
    let lengths: Vec<usize> = reply
        .lines()
        .skip(1)
        .map(|n| n.trim_start_matches(':').parse().unwrap())
        .collect();
    assert!(lengths.iter().all(|&len| len <= 64), "{lengths:?}");
    // A session without a client keeps its agent alone: no byte for the client it lacks.
    // With one, the agent follows 0xFF "app-a" 0xFF.
    let count = |n: usize| lengths.iter().filter(|&&len| len == n).count();
    assert_eq!((count(40), count(47)), (5, 5), "{lengths:?}");
}
