//! A dead Redis answers at once: a write that cannot have run has a known outcome, so the
//! store fails it without the patient wait that a write a live server may have read gets.
//! Each test starts its own `redis-server` and kills it (SIGKILL) while the store's
//! connection is idle, as an outage looks to an app between requests.

mod support;

use std::time::{Duration, Instant};

use support::{Backend, MakeStore, Mode, Redis, next};
use token_core::RotationOutcome;

fn tok(jti: &str) -> String {
    format!("header.payload-of-{jti}.signature")
}

/// Rotations of one session with Redis dead, the first after the kill included: how long
/// each took, and that each failed as unavailable.
async fn rotations_while_dead(backend: Backend, count: usize) -> Vec<Duration> {
    // The default outcome wait (5 s): what a dead server must not cost.
    let mut f = Redis(backend, Mode::FamilyClaim).make(|c| {
        c.timeout(Duration::from_millis(500))
            .outcome_wait(Duration::from_secs(5))
    });
    f.store.register("alice", "t0", None).await.unwrap();
    let outcome = f
        .store
        .rotate("alice", "t0", next("t1", &tok("t1")))
        .await
        .unwrap();
    assert!(
        matches!(outcome, RotationOutcome::Rotated { .. }),
        "{outcome:?}"
    );
    f.backend.server.as_mut().unwrap().kill();
    // Idle: the server's close reaches the connection before the next call is written.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut took = Vec::with_capacity(count);
    for i in 0..count {
        let started = Instant::now();
        let result = f
            .store
            .rotate("alice", "t1", next(&format!("t2-{i}"), &tok("t2")))
            .await;
        took.push(started.elapsed());
        match result {
            Err(err) => assert!(err.is_unavailable(), "{backend:?} call {i}: {err:?}"),
            Ok(outcome) => panic!("{backend:?} call {i} with Redis dead: {outcome:?}"),
        }
    }
    took
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

async fn a_dead_redis_fails_every_call_fast(backend: Backend) {
    let took = rotations_while_dead(backend, 200).await;
    let first = took[0];
    let mut sorted = took.clone();
    sorted.sort();
    let (p50, p99) = (percentile(&sorted, 0.5), percentile(&sorted, 0.99));
    println!(
        "{backend:?}: first {first:?}, p50 {p50:?}, p99 {p99:?}, max {:?}",
        sorted[sorted.len() - 1]
    );
    // Generous for a loaded two-core machine; before, the first call waited the whole
    // outcome wait (5.5 s).
    assert!(
        first < Duration::from_secs(1),
        "{backend:?}: the first call took {first:?}"
    );
    assert!(p99 < Duration::from_millis(250), "{backend:?}: p99 {p99:?}");
}

#[tokio::test]
async fn a_dead_redis_fails_every_call_fast_on_a_connection_manager() {
    a_dead_redis_fails_every_call_fast(Backend::RedisManager).await;
}

#[tokio::test]
async fn a_dead_redis_fails_every_call_fast_on_a_bb8_redis_pool() {
    a_dead_redis_fails_every_call_fast(Backend::RedisBb8Redis).await;
}

#[tokio::test]
async fn a_dead_redis_fails_every_call_fast_on_a_bb8_client_pool() {
    a_dead_redis_fails_every_call_fast(Backend::RedisBb8Client).await;
}
