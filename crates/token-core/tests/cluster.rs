//! Redis Cluster beyond the conformance suite: rotations keep working while the slot of a
//! user with live sessions moves to another master.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use test_support::RedisCluster;
use token_core::{
    ConnectionSource, RedisStore, RotationOutcome, RotationStore, StoreConfig, Successor, TokenRef,
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

fn tok(jti: &str) -> String {
    format!("jwt-{jti}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotations_survive_a_slot_migration() {
    let cluster = Arc::new(RedisCluster::start());
    let source = ConnectionSource::cluster(cluster.urls(), Duration::from_secs(2))
        .await
        .unwrap();
    let store = RedisStore::with_source(
        source,
        StoreConfig::default().timeout(Duration::from_secs(2)),
    )
    .unwrap();

    // Several live sessions for the user whose slot moves.
    for i in 0..5 {
        store
            .register("alice", TokenRef::new(&format!("other{i}"), exp()), None)
            .await
            .unwrap();
    }
    store
        .register("alice", TokenRef::new("t0", exp()), None)
        .await
        .unwrap();
    // `alice` in the key schema: rt:{u<base64url("alice")>}.
    let slot = cluster.slot_of("rt:{uYWxpY2U}");
    let from = cluster.owner_of(slot);
    let to = (from + 1) % 3;

    let migrating = Arc::new(AtomicBool::new(true));
    let mover = {
        let (cluster, migrating) = (cluster.clone(), migrating.clone());
        tokio::task::spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(200));
            cluster.move_slot(slot, from, to);
            std::thread::sleep(Duration::from_millis(200));
            migrating.store(false, Ordering::SeqCst);
        })
    };

    let mut rotations = 0;
    let mut current = "t0".to_owned();
    while migrating.load(Ordering::SeqCst) || rotations < 20 {
        let next = format!("t{}", rotations + 1);
        let outcome = store
            .rotate(
                "alice",
                TokenRef::new(&current, exp()),
                Successor {
                    jti: &next,
                    token: &tok(&next),
                    expires_at: exp(),
                },
            )
            .await
            .unwrap_or_else(|e| panic!("rotation {rotations} failed during the migration: {e:?}"));
        assert!(
            matches!(outcome, RotationOutcome::Rotated { .. }),
            "{outcome:?}"
        );
        current = next;
        rotations += 1;
        assert!(rotations < 100_000, "bounded");
    }
    mover.await.unwrap();
    assert_eq!(cluster.owner_of(slot), to, "the slot moved");

    // Nothing was lost: every session is still there, the chain's head is current, and a
    // spent token is still recognised as reuse.
    let sessions = store.list("alice").await.unwrap();
    assert_eq!(sessions.len(), 6);
    assert!(sessions.iter().any(|s| s.is_current(&current)));
    let stale = format!("t{}", rotations - 3);
    let outcome = store
        .rotate(
            "alice",
            TokenRef::new(&stale, exp()),
            Successor {
                jti: "x",
                token: &tok("x"),
                expires_at: exp(),
            },
        )
        .await
        .unwrap();
    assert!(
        matches!(outcome, RotationOutcome::ReuseDetected { .. }),
        "{outcome:?}"
    );
}

/// `WAIT` cannot vouch for a write on a cluster (it would reach whichever node the client
/// picks): the configuration is refused when the store is built.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_replicas_on_a_cluster_is_refused_when_the_store_is_built() {
    let cluster = RedisCluster::start();
    let source = ConnectionSource::cluster(cluster.urls(), Duration::from_secs(2))
        .await
        .unwrap();
    let config = StoreConfig::default().wait_for_replicas(1, Duration::from_millis(100));
    let err = RedisStore::with_source(source, config).unwrap_err();
    assert!(
        matches!(err, token_core::StoreError::Unsupported(_)),
        "{err:?}"
    );
}
