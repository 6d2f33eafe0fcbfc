//! Sessions bound to a DPoP key (RFC 9449): proofs by the key, spent once.

use super::common::*;

/// RFC 9449: a login with a DPoP proof binds the session to the proof's key. A rotation
/// without a proof, with a proof by another key, or by the right key for another client,
/// is refused and spends nothing, reported to the hook; the owner goes on rotating.
pub async fn a_key_bound_family_rotates_only_with_proofs_by_its_key<K: StoreKit>(m: K) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let f = m.make(move |c| c.on_event(move |e| sink.lock().unwrap().push(e.kind)));
    let family = f
        .store
        .register_with("alice", "t0", None, Some("app-a"), proof("key-a", "p0"))
        .await
        .unwrap();
    let wrong = RotationOutcome::WrongKey {
        family: family.clone(),
    };
    assert_eq!(rotate_keyed(&f.store, "t0", None, "x").await, wrong);
    assert_eq!(
        rotate_keyed(&f.store, "t0", Some(("key-b", "p1")), "x").await,
        wrong
    );
    let other_client = f
        .store
        .rotate_with(
            "alice",
            "t0",
            Some("app-b"),
            proof("key-a", "p2"),
            next("x", &tok("x")),
        )
        .await
        .unwrap();
    assert_eq!(
        other_client,
        RotationOutcome::WrongClient {
            family: family.clone()
        },
        "the client is checked first, and told nothing of the key"
    );
    assert!(f.store.list("alice").await.unwrap()[0].is_current("t0"));
    for (i, (prev, jti)) in [("t0", "t1"), ("t1", "t2")].into_iter().enumerate() {
        let proof_jti = format!("q{i}");
        assert_eq!(
            rotate_keyed(&f.store, prev, Some(("key-a", &proof_jti)), jti).await,
            RotationOutcome::Rotated {
                family: family.clone()
            },
            "the binding survives rotations"
        );
    }
    assert_eq!(rotate_keyed(&f.store, "t2", None, "x").await, wrong);
    use RotationEventKind::*;
    assert_eq!(
        seen.lock().unwrap().clone(),
        [
            Registered,
            WrongKey,
            WrongKey,
            WrongClient,
            Rotated,
            Rotated,
            WrongKey
        ]
    );
}

/// The follower attack, closed: a copy of a key-bound token gets no grace replay and, after
/// the window, revokes nothing. The owner's replay with its key is served, and the owner's
/// own late replay is still reuse.
pub async fn a_grace_replay_is_served_only_to_the_same_key<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let family = f
        .store
        .register_with("alice", "t0", None, Some("app-a"), proof("key-a", "p0"))
        .await
        .unwrap();
    rotate_keyed(&f.store, "t0", Some(("key-a", "p1")), "t1").await;
    let wrong = RotationOutcome::WrongKey {
        family: family.clone(),
    };
    assert_eq!(
        rotate_keyed(&f.store, "t0", Some(("key-b", "p2")), "x").await,
        wrong
    );
    assert_eq!(rotate_keyed(&f.store, "t0", None, "y").await, wrong);
    assert_eq!(
        rotate_keyed(&f.store, "t0", Some(("key-a", "p3")), "z").await,
        RotationOutcome::GraceReplay {
            family: family.clone(),
            successor: tok("t1")
        }
    );
    f.clock.advance(Duration::from_secs(2));
    assert_eq!(
        rotate_keyed(&f.store, "t0", Some(("key-b", "p4")), "x").await,
        wrong,
        "a copy without the key revokes nothing"
    );
    assert_eq!(
        rotate_keyed(&f.store, "t1", Some(("key-a", "p5")), "t2").await,
        RotationOutcome::Rotated {
            family: family.clone()
        }
    );
    f.clock.advance(Duration::from_secs(2));
    assert_eq!(
        rotate_keyed(&f.store, "t1", Some(("key-a", "p6")), "x").await,
        RotationOutcome::ReuseDetected { family }
    );
}

/// A DPoP proof is good for one call on the server, whatever session it comes with (RFC
/// 9449, section 11.1): a client using one key for several users (a backend for frontends)
/// cannot refresh two sessions with one proof, at login or at rotation.
pub async fn a_dpop_proof_refreshes_one_session_of_one_user_only<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let mut families = Vec::new();
    for (user, token, login_proof) in [("alice", "a0", "pa"), ("bob", "b0", "pb")] {
        families.push(
            f.store
                .register_with(
                    user,
                    token,
                    None,
                    Some("app-a"),
                    proof("key-a", login_proof),
                )
                .await
                .unwrap(),
        );
    }
    let refresh = |user: &'static str, presented: &'static str, jti: &'static str| {
        let store = &f.store;
        async move {
            store
                .rotate_with(
                    user,
                    presented,
                    Some("app-a"),
                    proof("key-a", "shared"),
                    next(jti, &tok(jti)),
                )
                .await
                .unwrap()
        }
    };
    assert_eq!(
        refresh("alice", "a0", "a1").await,
        RotationOutcome::Rotated {
            family: families[0].clone()
        }
    );
    assert_eq!(
        refresh("bob", "b0", "b1").await,
        RotationOutcome::ProofReplayed
    );
    // The same call sent again after a lost reply still passes.
    assert_eq!(
        refresh("alice", "a0", "a1").await,
        RotationOutcome::Rotated {
            family: families[0].clone()
        }
    );
    assert!(f.store.list("bob").await.unwrap()[0].is_current("b0"));
    // A login of a third user with a proof spent for alice is refused too.
    let login = f
        .store
        .register_with("carol", "c0", None, Some("app-a"), proof("key-a", "shared"))
        .await;
    assert!(matches!(login, Err(StoreError::ProofReplayed)), "{login:?}");
    assert!(f.store.list("carol").await.unwrap().is_empty());
}

/// A proof's jti is good for one call, checked in the rotation's own atomic step: a second
/// use is refused and changes nothing, at a rotation as at a login; the same rotation sent
/// again after a lost reply (same proof, same successor) is done, not refused.
pub async fn a_dpop_proof_is_good_for_one_call<K: StoreKit>(m: K) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let f = m.make(move |c| c.on_event(move |e| sink.lock().unwrap().push(e.kind)));
    let family = f
        .store
        .register_with("alice", "t0", None, Some("app-a"), proof("key-a", "p0"))
        .await
        .unwrap();
    let rotated = RotationOutcome::Rotated {
        family: family.clone(),
    };
    assert_eq!(
        rotate_keyed(&f.store, "t0", Some(("key-a", "p0")), "t1").await,
        RotationOutcome::ProofReplayed,
        "the login's proof"
    );
    assert_eq!(
        rotate_keyed(&f.store, "t0", Some(("key-a", "p1")), "t1").await,
        rotated
    );
    assert_eq!(
        rotate_keyed(&f.store, "t0", Some(("key-a", "p1")), "t1").await,
        rotated,
        "the same call sent again"
    );
    assert_eq!(
        rotate_keyed(&f.store, "t1", Some(("key-a", "p1")), "t2").await,
        RotationOutcome::ProofReplayed
    );
    assert!(f.store.list("alice").await.unwrap()[0].is_current("t1"));
    let login = f
        .store
        .register_with("alice", "u0", None, Some("app-a"), proof("key-a", "p1"))
        .await;
    assert!(matches!(login, Err(StoreError::ProofReplayed)), "{login:?}");
    assert_eq!(f.store.list("alice").await.unwrap().len(), 1);
    // A login with a fresh proof goes through.
    let again = f
        .store
        .register_with("alice", "v0", None, Some("app-a"), proof("key-a", "p9"))
        .await
        .unwrap();
    assert_eq!(f.store.list("alice").await.unwrap().len(), 2);
    assert_ne!(again, family);
    use RotationEventKind::*;
    assert_eq!(
        seen.lock().unwrap().clone(),
        [Registered, Rotated, Rotated, Registered]
    );
}

/// A family registered without a proof stays a bearer family: a later refresh with a proof
/// rotates it (spending the proof) but does not bind it.
pub async fn a_bearer_family_is_not_bound_by_a_later_proof<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let family = f
        .store
        .register_for("alice", "t0", None, Some("app-a"))
        .await
        .unwrap();
    let rotated = RotationOutcome::Rotated {
        family: family.clone(),
    };
    assert_eq!(
        rotate_keyed(&f.store, "t0", Some(("key-a", "p1")), "t1").await,
        rotated
    );
    assert_eq!(rotate_keyed(&f.store, "t1", None, "t2").await, rotated);
    assert_eq!(
        rotate_keyed(&f.store, "t2", Some(("key-b", "p2")), "t3").await,
        rotated
    );
}

/// Family ids are unique.
pub async fn family_ids_are_unique<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let mut seen = HashSet::new();
    for i in 0..50 {
        assert!(
            seen.insert(
                f.store
                    .register("alice", &format!("t{i}"), None)
                    .await
                    .unwrap()
            )
        );
    }
}
