//! Revocation, listing, reuse detection, eviction, cleanup, races and the event hook.

use super::common::*;

/// Revoke by jti revokes its family.
pub async fn revoke_by_jti_revokes_its_family<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let family = chain(&f.store, "alice", 3).await;
    let other = f.store.register("alice", "o0", None).await.unwrap();
    assert_eq!(
        f.store.revoke("alice", "t1").await.unwrap(),
        Some(family.clone())
    );
    assert_eq!(
        f.store.revoke("alice", "t3").await.unwrap(),
        None,
        "already revoked"
    );
    assert_eq!(f.store.revoke("alice", "missing").await.unwrap(), None);
    let outcome = rotate(&f.store, "alice", "t3", "t4").await;
    assert_eq!(outcome, RotationOutcome::Revoked { family });
    let outcome = rotate(&f.store, "alice", "o0", "o1").await;
    assert_eq!(outcome, RotationOutcome::Rotated { family: other });
}

/// Revoke family ends one session.
pub async fn revoke_family_ends_one_session<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let a = f.store.register("alice", "a0", None).await.unwrap();
    let b = f.store.register("alice", "b0", None).await.unwrap();
    assert!(f.store.revoke_family("alice", &a).await.unwrap());
    assert!(!f.store.revoke_family("alice", &a).await.unwrap());
    assert!(
        !f.store.revoke_family("bob", &b).await.unwrap(),
        "another user's family"
    );
    let outcome = rotate(&f.store, "alice", "a0", "a1").await;
    assert_eq!(outcome, RotationOutcome::Revoked { family: a });
    let sessions = f.store.list("alice").await.unwrap();
    assert_eq!(sessions.iter().map(|s| &s.family).collect::<Vec<_>>(), [&b]);
}

/// Each way out ends the replays too: after a revoke of the session, of all the user's
/// sessions or of its client's, the spent predecessor (inside its window) gets no successor,
/// nor does the current token.
pub async fn a_revoked_session_serves_no_replay<K: StoreKit>(m: K) {
    for way_out in ["one", "all", "client"] {
        let f = m.make(|c| c);
        let family = f
            .store
            .register_for("alice", "t0", None, Some("app-a"))
            .await
            .unwrap();
        let rotated = f
            .store
            .rotate_with("alice", "t0", Some("app-a"), None, next("t1", &tok("t1")))
            .await
            .unwrap();
        assert_eq!(
            rotated,
            RotationOutcome::Rotated {
                family: family.clone()
            }
        );
        match way_out {
            "one" => assert!(f.store.revoke_family("alice", &family).await.unwrap()),
            "all" => assert_eq!(f.store.revoke_all("alice").await.unwrap(), 1),
            _ => assert_eq!(f.store.revoke_client("alice", "app-a").await.unwrap(), 1),
        }
        for presented in ["t0", "t1"] {
            let outcome = f
                .store
                .rotate_with(
                    "alice",
                    presented,
                    Some("app-a"),
                    None,
                    next("x", &tok("x")),
                )
                .await
                .unwrap();
            assert_eq!(
                outcome,
                RotationOutcome::Revoked {
                    family: family.clone()
                },
                "revoke {way_out}, then {presented}"
            );
        }
    }
}

/// Revoke all counts live families.
pub async fn revoke_all_counts_live_families<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    for i in 0..3 {
        f.store
            .register("alice", &format!("a{i}"), None)
            .await
            .unwrap();
    }
    let bob = f.store.register("bob", "b0", None).await.unwrap();
    let first = f.store.list("alice").await.unwrap()[0].family.clone();
    f.store.revoke_family("alice", &first).await.unwrap();
    assert_eq!(f.store.revoke_all("alice").await.unwrap(), 2);
    assert_eq!(f.store.revoke_all("alice").await.unwrap(), 0);
    assert!(f.store.list("alice").await.unwrap().is_empty());
    for i in 0..3 {
        let outcome = rotate(&f.store, "alice", &format!("a{i}"), "z").await;
        assert!(
            matches!(outcome, RotationOutcome::Revoked { .. }),
            "{outcome:?}"
        );
    }
    let outcome = rotate(&f.store, "bob", "b0", "b1").await;
    assert_eq!(outcome, RotationOutcome::Rotated { family: bob });
}

/// List shows live sessions.
pub async fn list_shows_live_sessions<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    assert!(f.store.list("alice").await.unwrap().is_empty());
    let a = f
        .store
        .register("alice", "a0", Some("Firefox on Linux"))
        .await
        .unwrap();
    f.clock.advance(Duration::from_secs(5));
    let b = f.store.register("alice", "b0", None).await.unwrap();
    f.clock.advance(Duration::from_secs(5));
    rotate(&f.store, "alice", "a0", "a1").await;
    let long_meta = "é".repeat(1000);
    f.store
        .register("alice", "c0", Some(&long_meta))
        .await
        .unwrap();
    let sessions = f.store.list("alice").await.unwrap();
    assert_eq!(sessions.len(), 3);
    assert_eq!(sessions[0].family, a);
    assert!(sessions[0].is_current("a1"));
    assert_eq!(sessions[0].metadata.as_deref(), Some("Firefox on Linux"));
    assert_eq!(
        (sessions[0].last_rotated_at - sessions[0].created_at).num_seconds(),
        10
    );
    assert_eq!(sessions[1].family, b);
    assert_eq!(sessions[1].last_rotated_at, sessions[1].created_at);
    assert_eq!(sessions[1].metadata, None);
    let clipped = sessions[2].metadata.as_deref().unwrap();
    assert!(clipped.len() <= crate::MAX_METADATA_LEN && long_meta.starts_with(clipped));
    assert!(f.store.list("bob").await.unwrap().is_empty());
}

/// Reuse revokes only that family by default.
pub async fn reuse_revokes_only_that_family_by_default<K: StoreKit>(m: K) {
    let f = m.make(|c| c.grace(Duration::ZERO));
    chain(&f.store, "alice", 1).await;
    let other = f.store.register("alice", "o0", None).await.unwrap();
    rotate(&f.store, "alice", "t0", "x").await;
    let outcome = rotate(&f.store, "alice", "o0", "o1").await;
    assert_eq!(outcome, RotationOutcome::Rotated { family: other });
}

/// Reuse can revoke every family of the user.
pub async fn reuse_can_revoke_every_family_of_the_user<K: StoreKit>(m: K) {
    let f = m.make(|c| c.grace(Duration::ZERO).revoke_all_on_reuse(true));
    chain(&f.store, "alice", 1).await;
    let other = f.store.register("alice", "o0", None).await.unwrap();
    let bob = f.store.register("bob", "b0", None).await.unwrap();
    rotate(&f.store, "alice", "t0", "x").await;
    let outcome = rotate(&f.store, "alice", "o0", "o1").await;
    assert_eq!(outcome, RotationOutcome::Revoked { family: other });
    let outcome = rotate(&f.store, "bob", "b0", "b1").await;
    assert_eq!(outcome, RotationOutcome::Rotated { family: bob });
}

/// Invariant 8: a token spent 1, 20 or 1000 rotations ago still revokes its family.
pub async fn reuse_is_detected_however_many_rotations_ago<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let family = chain(&f.store, "alice", 1001).await;
    f.clock.advance(Duration::from_secs(2));
    for (user, depth) in [("alice", 1000), ("alice", 981), ("alice", 1)] {
        let spent = format!("t{}", 1001 - depth);
        let outcome = rotate(&f.store, user, &spent, "x").await;
        if depth == 1000 {
            assert_eq!(
                outcome,
                RotationOutcome::ReuseDetected {
                    family: family.clone()
                },
                "spent {depth} rotations ago"
            );
        } else {
            assert_eq!(
                outcome,
                RotationOutcome::Revoked {
                    family: family.clone()
                },
                "spent {depth} rotations ago, family already revoked"
            );
        }
    }
    // Each depth on a fresh family of its own.
    for depth in [1usize, 20] {
        let user = format!("u{depth}");
        let family = chain(&f.store, &user, depth + 1).await;
        f.clock.advance(Duration::from_secs(2));
        let spent = format!("t{}", 1);
        let outcome = rotate(&f.store, &user, &spent, "x").await;
        assert_eq!(
            outcome,
            RotationOutcome::ReuseDetected {
                family: family.clone()
            },
            "spent {depth} rotations ago"
        );
        let current = format!("t{}", depth + 1);
        let outcome = rotate(&f.store, &user, &current, "y").await;
        assert_eq!(outcome, RotationOutcome::Revoked { family });
    }
}

/// A rotate sent again after its reply was lost (same presented token, same successor) is
/// the same rotation: `Rotated` again, whether or not grace is on, inside the window or
/// after it, and the successor stays current.
pub async fn a_repeated_rotation_is_rotated_again<K: StoreKit>(m: K) {
    for grace in [Duration::ZERO, Duration::from_secs(1)] {
        let f = m.make(|c| c.grace(grace));
        let family = f.store.register("alice", "t0", None).await.unwrap();
        let rotated = RotationOutcome::Rotated {
            family: family.clone(),
        };
        assert_eq!(rotate(&f.store, "alice", "t0", "t1").await, rotated);
        assert_eq!(rotate(&f.store, "alice", "t0", "t1").await, rotated);
        f.clock.advance(Duration::from_secs(5));
        assert_eq!(rotate(&f.store, "alice", "t0", "t1").await, rotated);
        assert_eq!(rotate(&f.store, "alice", "t1", "t2").await, rotated);
        // Once the family moved on, the old pair is no retry any more: t0 is spent.
        f.clock.advance(Duration::from_secs(5));
        let outcome = rotate(&f.store, "alice", "t0", "t1").await;
        assert_eq!(outcome, RotationOutcome::ReuseDetected { family });
    }
}

/// At the cap a login drops ended sessions first, then revoked ones, then the least
/// recently used live one (not the oldest created).
pub async fn eviction_drops_ended_then_revoked_then_least_recently_used<K: StoreKit>(m: K) {
    let f = m.make(|c| {
        c.max_sessions_per_user(Some(3))
            .idle_lifetime(Duration::from_secs(100))
    });
    let a = f.store.register("alice", "a0", None).await.unwrap();
    f.clock.advance(Duration::from_secs(10));
    let b = f.store.register("alice", "b0", None).await.unwrap();
    f.clock.advance(Duration::from_secs(10));
    let c = f.store.register("alice", "c0", None).await.unwrap();
    f.clock.advance(Duration::from_secs(10));
    // a, the oldest, is used; b is now the least recently used.
    rotate(&f.store, "alice", "a0", "a1").await;
    let d = f.store.register("alice", "d0", None).await.unwrap();
    let live = |sessions: Vec<crate::SessionInfo>| {
        sessions.into_iter().map(|s| s.family).collect::<Vec<_>>()
    };
    assert_eq!(
        live(f.store.list("alice").await.unwrap()),
        [a.clone(), c.clone(), d.clone()]
    );
    assert_eq!(
        rotate(&f.store, "alice", "b0", "b1").await,
        RotationOutcome::Unknown
    );

    // A revoked session goes before any live one, however recently that one was used.
    f.store.revoke_family("alice", &d).await.unwrap();
    let e = f.store.register("alice", "e0", None).await.unwrap();
    assert_eq!(
        live(f.store.list("alice").await.unwrap()),
        [a.clone(), c.clone(), e.clone()]
    );
    assert_eq!(
        rotate(&f.store, "alice", "d0", "d1").await,
        RotationOutcome::Unknown
    );

    // An ended session goes first of all: c ends (idle), a revoked tombstone stays.
    f.store.revoke_family("alice", &e).await.unwrap();
    f.clock.advance(Duration::from_secs(95));
    rotate(&f.store, "alice", "a1", "a2").await;
    let g = f.store.register("alice", "g0", None).await.unwrap();
    assert_eq!(live(f.store.list("alice").await.unwrap()), [a.clone(), g]);
    assert_eq!(
        rotate(&f.store, "alice", "e0", "e1").await,
        RotationOutcome::Revoked { family: e },
        "the revoked tombstone was kept: only the ended session had to go"
    );
    assert_eq!(
        rotate(&f.store, "alice", "c0", "c1").await,
        RotationOutcome::Unknown
    );
    let _ = b;
}

/// A token the store does not know is worth seeing: it reaches the event hook.
pub async fn unknown_tokens_reach_the_hook<K: StoreKit>(m: K) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let f = m.make(move |c| c.on_event(move |e| sink.lock().unwrap().push(e.kind)));
    rotate(&f.store, "alice", "forged", "x").await;
    assert_eq!(*seen.lock().unwrap(), [RotationEventKind::UnknownToken]);
}

/// Cleanup removes the ended sessions of users who still have a live one (a user whose every
/// session ended loses the whole hash by its TTL, with nothing left to count).
pub async fn cleanup_removes_ended_families<K: StoreKit>(m: K) {
    let f = m.make(|c| c.idle_lifetime(Duration::from_secs(60)));
    // Users spread over every node of a cluster.
    let users: Vec<String> = ["alice", "bob"]
        .into_iter()
        .map(str::to_owned)
        .chain((0..16).map(|i| format!("carol{i}")))
        .collect();
    for user in &users {
        f.store.register(user, "s0", None).await.unwrap();
    }
    f.clock.advance(Duration::from_secs(30));
    for user in &users {
        f.store.register(user, "s1", None).await.unwrap();
    }
    f.clock.advance(Duration::from_secs(31));
    assert_eq!(f.store.cleanup_expired().await.unwrap(), 18);
    assert_eq!(f.store.cleanup_expired().await.unwrap(), 0);
    assert_eq!(f.store.list("alice").await.unwrap().len(), 1);
}

/// Hostile user ids cannot reach other users.
pub async fn hostile_user_ids_cannot_reach_other_users<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let long = "x".repeat(1024);
    let users = [
        "alice",
        "alice}",
        "{alice}",
        "alice:",
        "a:lice",
        "*",
        "alice*",
        "al ice",
        " alice",
        "ålice✓",
        "",
        "}{",
        long.as_str(),
        "alice\0",
        "rt:{alice}",
    ];
    for user in users {
        f.store.register(user, "t0", None).await.unwrap();
    }
    for user in users {
        let sessions = f.store.list(user).await.unwrap();
        assert_eq!(
            sessions.len(),
            1,
            "user {user:?} sees exactly its own session"
        );
    }
    assert_eq!(f.store.revoke_all("*").await.unwrap(), 1);
    let outcome = rotate(&f.store, "alice", "t0", "t1").await;
    assert!(
        matches!(outcome, RotationOutcome::Rotated { .. }),
        "{outcome:?}"
    );
    for user in users.iter().filter(|u| !["alice", "*"].contains(u)) {
        let sessions = f.store.list(user).await.unwrap();
        assert!(sessions[0].is_current("t0"), "user {user:?} untouched");
    }
}

/// Concurrent rotations yield one successor.
pub async fn concurrent_rotations_yield_one_successor<K: StoreKit>(m: K) {
    // Atomicity, not the replay cap, is under test: 63 replays are allowed here.
    let f = m.make(|c| c.max_grace_replays(None));
    let family = f.store.register("alice", "t0", None).await.unwrap();
    let outcomes = race(&f.store, 64).await;
    let rotated: Vec<_> = outcomes
        .iter()
        .filter(|(o, _)| matches!(o, RotationOutcome::Rotated { .. }))
        .collect();
    assert_eq!(rotated.len(), 1, "{outcomes:?}");
    let winner = rotated[0].1.clone();
    for (outcome, _) in &outcomes {
        match outcome {
            RotationOutcome::Rotated { .. } => {}
            RotationOutcome::GraceReplay {
                family: fam,
                successor,
            } => {
                assert_eq!(fam, &family);
                assert_eq!(
                    successor,
                    &tok(&winner),
                    "every replay carries the one successor"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let sessions = f.store.list("alice").await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert!(sessions[0].is_current(&winner));
}

/// Concurrent rotations without grace grant exactly one.
pub async fn concurrent_rotations_without_grace_grant_exactly_one<K: StoreKit>(m: K) {
    let f = m.make(|c| c.grace(Duration::ZERO));
    f.store.register("alice", "t0", None).await.unwrap();
    let outcomes = race(&f.store, 64).await;
    let granted = outcomes.iter().filter(|(o, _)| o.is_granted()).count();
    assert_eq!(granted, 1, "{outcomes:?}");
    assert!(outcomes.iter().all(|(o, _)| o.is_granted()
        || matches!(
            o,
            RotationOutcome::ReuseDetected { .. } | RotationOutcome::Revoked { .. }
        )));
}

/// Events reach the hook.
pub async fn events_reach_the_hook<K: StoreKit>(m: K) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let f = m
        .make(move |c| c.on_event(move |e| sink.lock().unwrap().push((e.kind, e.user.to_owned()))));
    chain(&f.store, "alice", 1).await;
    rotate(&f.store, "alice", "t0", "x").await;
    f.clock.advance(Duration::from_secs(2));
    rotate(&f.store, "alice", "t0", "x").await;
    let b = f.store.register("alice", "b0", None).await.unwrap();
    f.store.revoke_family("alice", &b).await.unwrap();
    let kinds: Vec<_> = seen.lock().unwrap().iter().map(|(k, _)| *k).collect();
    use RotationEventKind::*;
    assert_eq!(
        kinds,
        [
            Registered,
            Rotated,
            GraceReplay,
            ReuseDetected,
            Registered,
            FamilyRevoked
        ]
    );
    assert!(seen.lock().unwrap().iter().all(|(_, u)| u == "alice"));
}
