//! The opt-in `WAIT` after writes, against a local primary with one replica.

use std::time::{Duration, Instant};

use test_support::RedisServer;
use token_core::{
    RedisStore, RotationOutcome, RotationStore, StoreConfig, StoreError, Successor, TokenRef,
};

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

fn replica_of(primary: &RedisServer) -> RedisServer {
    let port = primary.port().to_string();
    let replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &port]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !replica
        .command(&["INFO", "replication"])
        .unwrap()
        .contains("master_link_status:up")
    {
        assert!(Instant::now() < deadline, "the replica did not sync");
        std::thread::sleep(Duration::from_millis(20));
    }
    replica
}

fn config() -> StoreConfig {
    StoreConfig::default()
        .timeout(Duration::from_secs(2))
        .wait_for_replicas(1, Duration::from_millis(500))
}

#[tokio::test]
async fn acknowledged_writes_are_on_the_replica_when_the_call_returns() {
    let primary = RedisServer::start();
    let replica = replica_of(&primary);
    let store = RedisStore::open(&primary.url(), config()).unwrap();
    store
        .register("alice", TokenRef::new("t0", exp()), None)
        .await
        .unwrap();
    let outcome = store
        .rotate(
            "alice",
            TokenRef::new("t0", exp()),
            Successor {
                jti: "t1",
                token: "jwt-t1",
                expires_at: exp(),
            },
        )
        .await
        .unwrap();
    assert!(matches!(outcome, RotationOutcome::Rotated { .. }));
    // Read the replica at once: WAIT returned only after it had both writes.
    let on_replica = RedisStore::open(&replica.url(), StoreConfig::default()).unwrap();
    let sessions = on_replica.list("alice").await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert!(sessions[0].is_current("t1"));
}

#[tokio::test]
async fn writes_fail_as_unavailable_when_no_replica_acknowledges() {
    let primary = RedisServer::start();
    let mut replica = replica_of(&primary);
    let store = RedisStore::open(&primary.url(), config()).unwrap();
    store
        .register("alice", TokenRef::new("t0", exp()), None)
        .await
        .unwrap();
    replica.kill();
    let started = Instant::now();
    let err = store
        .rotate(
            "alice",
            TokenRef::new("t0", exp()),
            Successor {
                jti: "t1",
                token: "jwt-t1",
                expires_at: exp(),
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NotReplicated {
                acked: 0,
                wanted: 1
            }
        ),
        "{err:?}"
    );
    assert!(err.is_unavailable());
    assert!(started.elapsed() < Duration::from_secs(2));
    // The rotation stayed applied on the primary: a retry in the grace window gets the
    // successor (and still reports the missing replica).
    let no_wait = RedisStore::open(&primary.url(), StoreConfig::default()).unwrap();
    assert!(no_wait.list("alice").await.unwrap()[0].is_current("t1"));
}

#[tokio::test]
async fn pipelined_wait_loads_scripts_after_a_restart() {
    let mut primary = RedisServer::start();
    let store = RedisStore::open(
        &primary.url(),
        StoreConfig::default().wait_for_replicas(0, Duration::from_millis(100)),
    )
    .unwrap();
    store
        .register("alice", TokenRef::new("t0", exp()), None)
        .await
        .unwrap();
    primary.restart();
    let mut result = store
        .register("alice", TokenRef::new("n0", exp()), None)
        .await;
    for _ in 0..20 {
        if result.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        result = store
            .register("alice", TokenRef::new("n0", exp()), None)
            .await;
    }
    result.unwrap();
    assert_eq!(store.list("alice").await.unwrap().len(), 1);
}
