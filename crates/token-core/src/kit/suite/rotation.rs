//! Rotation: grace replays, the replay cap, the retry window, the session cap.

use super::common::*;

/// Register then rotate is rotated.
pub async fn register_then_rotate_is_rotated<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let family = f.store.register("alice", "t0", None).await.unwrap();
    let outcome = rotate(&f.store, "alice", "t0", "t1").await;
    assert_eq!(
        outcome,
        RotationOutcome::Rotated {
            family: family.clone()
        }
    );
    let outcome = rotate(&f.store, "alice", "t1", "t2").await;
    assert_eq!(outcome, RotationOutcome::Rotated { family });
}

/// Retry within grace gets same successor.
pub async fn retry_within_grace_gets_same_successor<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let family = f.store.register("alice", "t0", None).await.unwrap();
    let first = tok("t1");
    f.store
        .rotate("alice", "t0", next("t1", &first))
        .await
        .unwrap();
    for attempt in 0..3 {
        let other = format!("t1-retry-{attempt}");
        let outcome = rotate(&f.store, "alice", "t0", &other).await;
        assert_eq!(
            outcome,
            RotationOutcome::GraceReplay {
                family: family.clone(),
                successor: first.clone()
            }
        );
    }
    // The successor handed out is the family's current token.
    let outcome = rotate(&f.store, "alice", "t1", "t2").await;
    assert_eq!(outcome, RotationOutcome::Rotated { family });
}

/// Grace window is not extended by retries.
pub async fn grace_window_is_not_extended_by_retries<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let family = f.store.register("alice", "t0", None).await.unwrap();
    rotate(&f.store, "alice", "t0", "t1").await;
    f.clock.advance(Duration::from_millis(600));
    let outcome = rotate(&f.store, "alice", "t0", "x").await;
    assert!(
        matches!(outcome, RotationOutcome::GraceReplay { .. }),
        "{outcome:?}"
    );
    // 1.2 s after the first rotation: past the 1 s window, although the retry was 0.6 s ago.
    f.clock.advance(Duration::from_millis(600));
    let outcome = rotate(&f.store, "alice", "t0", "y").await;
    assert_eq!(outcome, RotationOutcome::ReuseDetected { family });
}

/// Reuse after grace revokes family.
pub async fn reuse_after_grace_revokes_family<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let family = chain(&f.store, "alice", 2).await;
    f.clock.advance(Duration::from_secs(2));
    let outcome = rotate(&f.store, "alice", "t1", "x").await;
    assert_eq!(
        outcome,
        RotationOutcome::ReuseDetected {
            family: family.clone()
        }
    );
    // Invariant 2: nothing of that family works any more, the current token included.
    for jti in ["t2", "t1", "t0"] {
        let outcome = rotate(&f.store, "alice", jti, "y").await;
        assert_eq!(
            outcome,
            RotationOutcome::Revoked {
                family: family.clone()
            },
            "{jti}"
        );
    }
    assert!(f.store.list("alice").await.unwrap().is_empty());
}

/// Token older than predecessor is reuse even within grace.
pub async fn token_older_than_predecessor_is_reuse_even_within_grace<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let family = chain(&f.store, "alice", 2).await;
    let outcome = rotate(&f.store, "alice", "t0", "x").await;
    assert_eq!(outcome, RotationOutcome::ReuseDetected { family });
}

/// Grace zero makes any second use reuse.
pub async fn grace_zero_makes_any_second_use_reuse<K: StoreKit>(m: K) {
    let f = m.make(|c| c.grace(Duration::ZERO));
    let family = chain(&f.store, "alice", 1).await;
    let outcome = rotate(&f.store, "alice", "t0", "x").await;
    assert_eq!(outcome, RotationOutcome::ReuseDetected { family });
}

/// Past the cap a replay is refused, and the session goes on: a cap bounds the copies handed
/// out, it is no evidence of theft.
pub async fn replays_past_the_cap_are_refused_and_the_session_goes_on<K: StoreKit>(m: K) {
    let f = m.make(|c| c.max_grace_replays(Some(2)));
    let family = chain(&f.store, "alice", 1).await;
    for _ in 0..2 {
        let outcome = rotate(&f.store, "alice", "t0", "x").await;
        assert!(
            matches!(outcome, RotationOutcome::GraceReplay { .. }),
            "{outcome:?}"
        );
    }
    for _ in 0..3 {
        let outcome = rotate(&f.store, "alice", "t0", "x").await;
        assert_eq!(
            outcome,
            RotationOutcome::ReplayRefused {
                family: family.clone()
            }
        );
    }
    // The successor handed out is still the session's current token.
    let outcome = rotate(&f.store, "alice", "t1", "t2").await;
    assert_eq!(outcome, RotationOutcome::Rotated { family });
    assert_eq!(f.store.list("alice").await.unwrap().len(), 1);
}

/// Replays are bounded by default, and the default lets sixteen parallel presentations of one
/// token through twice over (fan-out, then a retry of each).
pub async fn replays_are_capped_by_default<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let family = chain(&f.store, "alice", 1).await;
    const { assert!(crate::DEFAULT_GRACE_REPLAYS >= 2 * 15) };
    for _ in 0..crate::DEFAULT_GRACE_REPLAYS {
        let outcome = rotate(&f.store, "alice", "t0", "x").await;
        assert!(
            matches!(outcome, RotationOutcome::GraceReplay { .. }),
            "{outcome:?}"
        );
    }
    let outcome = rotate(&f.store, "alice", "t0", "x").await;
    assert_eq!(
        outcome,
        RotationOutcome::ReplayRefused {
            family: family.clone()
        }
    );
    let outcome = rotate(&f.store, "alice", "t1", "t2").await;
    assert_eq!(outcome, RotationOutcome::Rotated { family });
}

/// A replay cap of zero allows no replay.
pub async fn a_replay_cap_of_zero_allows_no_replay<K: StoreKit>(m: K) {
    let f = m.make(|c| c.max_grace_replays(Some(0)));
    let family = chain(&f.store, "alice", 1).await;
    let outcome = rotate(&f.store, "alice", "t0", "x").await;
    assert_eq!(
        outcome,
        RotationOutcome::ReplayRefused {
            family: family.clone()
        }
    );
    // Outside the window it is reuse as ever.
    f.clock.advance(Duration::from_secs(2));
    let outcome = rotate(&f.store, "alice", "t0", "x").await;
    assert_eq!(outcome, RotationOutcome::ReuseDetected { family });
}

/// Sixteen parallel presentations of one token: one rotates, fifteen get the same successor,
/// the session lives on.
pub async fn sixteen_parallel_presentations_end_no_session<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let family = f.store.register("alice", "t0", None).await.unwrap();
    let store = Arc::new(f.store);
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { rotate(&store, "alice", "t0", &format!("t1-{i}")).await })
        })
        .collect();
    let mut successors = HashSet::new();
    for task in tasks {
        match task.await.unwrap() {
            RotationOutcome::Rotated { family: got } => {
                assert_eq!(got, family);
            }
            RotationOutcome::GraceReplay {
                family: got,
                successor,
            } => {
                assert_eq!(got, family);
                successors.insert(successor);
            }
            other => panic!("a parallel presentation got {other:?}"),
        }
    }
    assert_eq!(successors.len(), 1, "one successor for all: {successors:?}");
    let successor = successors.into_iter().next().unwrap();
    let jti = successor
        .strip_prefix("header.payload-of-")
        .and_then(|s| s.strip_suffix(".signature"))
        .unwrap()
        .to_owned();
    let outcome = rotate(&store, "alice", &jti, "t2").await;
    assert_eq!(outcome, RotationOutcome::Rotated { family });
}

/// A client retrying after lost replies, past the grace window but inside the retry window,
/// gets the same successor as long as nobody has used it.
pub async fn a_retry_after_the_grace_window_gets_the_successor_nobody_used<K: StoreKit>(m: K) {
    let f = m.make(|c| c.retry_window(Duration::from_secs(60)));
    let family = chain(&f.store, "alice", 1).await;
    for _ in 0..4 {
        f.clock.advance(Duration::from_secs(5));
        let outcome = rotate(&f.store, "alice", "t0", "x").await;
        assert_eq!(
            outcome,
            RotationOutcome::GraceReplay {
                family: family.clone(),
                successor: tok("t1")
            }
        );
    }
    let outcome = rotate(&f.store, "alice", "t1", "t2").await;
    assert_eq!(
        outcome,
        RotationOutcome::Rotated {
            family: family.clone()
        }
    );
}

/// Once the successor was used, the spent token coming back is theft, however early.
pub async fn a_spent_token_after_its_successor_was_used_is_reuse<K: StoreKit>(m: K) {
    let f = m.make(|c| c.retry_window(Duration::from_secs(60)));
    let family = chain(&f.store, "alice", 2).await;
    f.clock.advance(Duration::from_secs(5));
    let outcome = rotate(&f.store, "alice", "t0", "x").await;
    assert_eq!(outcome, RotationOutcome::ReuseDetected { family });
}

/// Past the retry window a spent token is reuse even when its successor was never used.
pub async fn a_retry_after_the_retry_window_is_reuse<K: StoreKit>(m: K) {
    let f = m.make(|c| c.retry_window(Duration::from_secs(60)));
    let family = chain(&f.store, "alice", 1).await;
    f.clock.advance(Duration::from_secs(61));
    let outcome = rotate(&f.store, "alice", "t0", "x").await;
    assert_eq!(outcome, RotationOutcome::ReuseDetected { family });
}

/// With grace off, a retry window changes nothing: any second use is reuse.
pub async fn grace_zero_turns_the_retry_window_off<K: StoreKit>(m: K) {
    let f = m.make(|c| {
        c.grace(Duration::ZERO)
            .retry_window(Duration::from_secs(60))
    });
    let family = chain(&f.store, "alice", 1).await;
    let outcome = rotate(&f.store, "alice", "t0", "x").await;
    assert_eq!(outcome, RotationOutcome::ReuseDetected { family });
}

/// Logins beyond the session cap drop the oldest.
pub async fn logins_beyond_the_session_cap_drop_the_oldest<K: StoreKit>(m: K) {
    let f = m.make(|c| c.max_sessions_per_user(Some(3)));
    let mut families = Vec::new();
    for i in 0..5 {
        families.push(
            f.store
                .register("alice", &format!("d{i}"), None)
                .await
                .unwrap(),
        );
        f.clock.advance(Duration::from_secs(1));
    }
    let kept: Vec<FamilyId> = f
        .store
        .list("alice")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.family)
        .collect();
    assert_eq!(
        kept,
        families[2..].to_vec(),
        "the three newest sessions remain"
    );
    assert_eq!(
        rotate(&f.store, "alice", "d0", "x").await,
        RotationOutcome::Unknown
    );
    let outcome = rotate(&f.store, "alice", "d4", "d5").await;
    assert_eq!(
        outcome,
        RotationOutcome::Rotated {
            family: families[4].clone()
        }
    );
    f.store.register("bob", "b0", None).await.unwrap();
    assert_eq!(
        f.store.list("bob").await.unwrap().len(),
        1,
        "the cap is per user"
    );
}
