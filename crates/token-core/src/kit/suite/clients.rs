//! Sessions bound to an OAuth 2.0 client (RFC 6749 section 6, RFC 7009), introspection.

use super::common::*;

/// RFC 6749 section 6: a refresh token is good only for the client it was issued to. Another
/// client (or a request naming none) is refused and spends nothing: the owner's token is
/// still current afterwards, and the refusal reaches the hook.
pub async fn another_client_is_refused_and_consumes_nothing<K: StoreKit>(m: K) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let f = m.make(move |c| c.on_event(move |e| sink.lock().unwrap().push(e.kind)));
    let family = f
        .store
        .register_for("alice", "t0", None, Some("app-a"))
        .await
        .unwrap();
    let wrong = RotationOutcome::WrongClient {
        family: family.clone(),
    };
    for client in [Some("app-b"), None, Some("app-a "), Some("APP-A")] {
        assert_eq!(
            rotate_as(&f.store, "alice", "t0", client, "stolen").await,
            wrong,
            "{client:?}"
        );
    }
    assert!(f.store.list("alice").await.unwrap()[0].is_current("t0"));
    assert_eq!(
        rotate_as(&f.store, "alice", "t0", Some("app-a"), "t1").await,
        RotationOutcome::Rotated { family }
    );
    use RotationEventKind::*;
    let kinds = seen.lock().unwrap().clone();
    assert_eq!(
        kinds,
        [
            Registered,
            WrongClient,
            WrongClient,
            WrongClient,
            WrongClient,
            Rotated
        ]
    );
}

/// A thief holding the owner's spent token and its own client credentials can neither get
/// the grace successor nor revoke the owner's session by replaying it: the client check comes
/// before the grace window and before reuse detection. The owner's replays and next
/// rotations still work.
pub async fn another_client_cannot_replay_or_revoke_the_owners_family<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let family = f
        .store
        .register_for("alice", "t0", None, Some("app-a"))
        .await
        .unwrap();
    rotate_as(&f.store, "alice", "t0", Some("app-a"), "t1").await;
    let wrong = RotationOutcome::WrongClient {
        family: family.clone(),
    };
    // Inside the grace window: no successor for the thief, the owner's retry still gets it.
    assert_eq!(
        rotate_as(&f.store, "alice", "t0", Some("app-b"), "x").await,
        wrong
    );
    assert_eq!(
        rotate_as(&f.store, "alice", "t0", Some("app-a"), "y").await,
        RotationOutcome::GraceReplay {
            family: family.clone(),
            successor: tok("t1")
        }
    );
    // After it: a spent token from the wrong client is refused, not reuse.
    f.clock.advance(Duration::from_secs(2));
    assert_eq!(
        rotate_as(&f.store, "alice", "t0", Some("app-b"), "x").await,
        wrong
    );
    assert_eq!(
        rotate_as(&f.store, "alice", "t1", Some("app-b"), "x").await,
        wrong
    );
    assert_eq!(
        rotate_as(&f.store, "alice", "t1", Some("app-a"), "t2").await,
        RotationOutcome::Rotated {
            family: family.clone()
        }
    );
    assert_eq!(
        rotate_as(&f.store, "alice", "t2", Some("app-a"), "t3").await,
        RotationOutcome::Rotated {
            family: family.clone()
        }
    );
    let sessions = f.store.list("alice").await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert!(sessions[0].is_current("t3"));
    // The owner's own replay of a spent token outside the window is still reuse.
    assert_eq!(
        rotate_as(&f.store, "alice", "t1", Some("app-a"), "x").await,
        RotationOutcome::ReuseDetected { family }
    );
}

/// RFC 7009: a client revokes its own tokens only. Revoking a family issued to app-a with
/// another client's credentials, or with none, leaves it alone and answers as for a token
/// the store does not know; app-a's own revocation works. A family issued to no client is
/// revoked whoever asks.
pub async fn revoke_leaves_another_clients_family_alone<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let family = f
        .store
        .register_for("alice", "t0", Some("Firefox"), Some("app-a"))
        .await
        .unwrap();
    rotate_as(&f.store, "alice", "t0", Some("app-a"), "t1").await;
    for jti in ["t0", "t1"] {
        for client in [Some("app-b"), None, Some("app-a "), Some("APP-A")] {
            assert_eq!(
                f.store.revoke_as("alice", jti, client).await.unwrap(),
                None,
                "{jti} by {client:?}"
            );
        }
    }
    let sessions = f.store.list("alice").await.unwrap();
    assert_eq!(sessions.len(), 1, "still live");
    assert_eq!(sessions[0].metadata.as_deref(), Some("Firefox"));
    assert_eq!(
        rotate_as(&f.store, "alice", "t1", Some("app-a"), "t2").await,
        RotationOutcome::Rotated {
            family: family.clone()
        }
    );
    assert_eq!(
        f.store
            .revoke_as("alice", "t2", Some("app-a"))
            .await
            .unwrap(),
        Some(family.clone())
    );
    assert_eq!(
        rotate_as(&f.store, "alice", "t2", Some("app-a"), "t3").await,
        RotationOutcome::Revoked { family }
    );
    // Not issued to any client: revoked whoever asks.
    let open = f.store.register("alice", "u0", None).await.unwrap();
    assert_eq!(
        f.store
            .revoke_as("alice", "u0", Some("app-b"))
            .await
            .unwrap(),
        Some(open)
    );
    assert!(f.store.list("alice").await.unwrap().is_empty());
}

/// Sessions say which client they were issued to (at login or by adoption), one client's
/// sessions can be listed, and `revoke_client` revokes exactly the user's live families of
/// that client, once.
pub async fn one_clients_sessions_are_listed_and_revoked_together<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let agent = Some("Mozilla/5.0");
    let a1 = f
        .store
        .register_for("alice", "a1", agent, Some("app-a"))
        .await
        .unwrap();
    let b1 = f
        .store
        .register_for("alice", "b1", None, Some("app-b"))
        .await
        .unwrap();
    let plain = f.store.register("alice", "p1", agent).await.unwrap();
    let a2 = f
        .store
        .adopt("alice", "a2", Some("app-a"), None)
        .await
        .unwrap()
        .family()
        .unwrap()
        .clone();
    // Another user's session of app-a is not alice's to lose.
    let bob = f
        .store
        .register_for("bob", "x1", None, Some("app-a"))
        .await
        .unwrap();
    rotate_as(&f.store, "alice", "a1", Some("app-a"), "a1'").await;

    let sessions = f.store.list("alice").await.unwrap();
    let client_of = |family: &FamilyId| {
        let session = sessions.iter().find(|s| s.family == *family).unwrap();
        (session.client.clone(), session.metadata.clone())
    };
    assert_eq!(
        client_of(&a1),
        (Some("app-a".into()), Some("Mozilla/5.0".into()))
    );
    assert_eq!(client_of(&b1), (Some("app-b".into()), None));
    assert_eq!(client_of(&plain), (None, Some("Mozilla/5.0".into())));
    assert_eq!(client_of(&a2), (Some("app-a".into()), None));

    let of_a: HashSet<FamilyId> = f
        .store
        .list_client("alice", "app-a")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.family)
        .collect();
    assert_eq!(of_a, HashSet::from([a1.clone(), a2.clone()]));
    assert!(
        f.store
            .list_client("alice", "app-c")
            .await
            .unwrap()
            .is_empty()
    );

    assert_eq!(f.store.revoke_client("alice", "app-a").await.unwrap(), 2);
    assert_eq!(
        f.store.revoke_client("alice", "app-a").await.unwrap(),
        0,
        "once"
    );
    assert_eq!(f.store.revoke_client("nobody", "app-a").await.unwrap(), 0);
    let left: HashSet<FamilyId> = f
        .store
        .list("alice")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.family)
        .collect();
    assert_eq!(left, HashSet::from([b1, plain]));
    assert_eq!(
        rotate_as(&f.store, "alice", "a1'", Some("app-a"), "a1''").await,
        RotationOutcome::Revoked { family: a1 }
    );
    assert_eq!(
        f.store.list_client("bob", "app-a").await.unwrap()[0].family,
        bob
    );
    // An empty client id names no client.
    f.store
        .register_for("carol", "z1", None, Some(""))
        .await
        .unwrap();
    assert_eq!(f.store.list("carol").await.unwrap()[0].client, None);
    assert_eq!(f.store.revoke_client("carol", "").await.unwrap(), 0);
}

/// Introspection: a token is active while it is the current token of a live family, and
/// the answer names the family's client; a spent token (even inside its grace window), a
/// revoked or ended family's token and an unknown one are not.
pub async fn introspection_finds_only_current_tokens_of_live_families<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let family = f
        .store
        .register_for("alice", "t0", None, Some("app-a"))
        .await
        .unwrap();
    let session = f.store.introspect("alice", "t0").await.unwrap().unwrap();
    assert_eq!(session.family, family);
    assert_eq!(session.client.as_deref(), Some("app-a"));
    rotate_as(&f.store, "alice", "t0", Some("app-a"), "t1").await;
    assert_eq!(
        f.store.introspect("alice", "t0").await.unwrap(),
        None,
        "spent"
    );
    let session = f.store.introspect("alice", "t1").await.unwrap().unwrap();
    assert_eq!(session.family, family);
    assert_eq!(f.store.introspect("alice", "never").await.unwrap(), None);
    assert_eq!(
        f.store.introspect("bob", "t1").await.unwrap(),
        None,
        "another user"
    );
    // No client: active too, with no client named.
    let plain = f.store.register("alice", "u0", None).await.unwrap();
    let session = f.store.introspect("alice", "u0").await.unwrap().unwrap();
    assert_eq!((session.family, session.client), (plain.clone(), None));
    assert!(f.store.revoke_family("alice", &plain).await.unwrap());
    assert_eq!(
        f.store.introspect("alice", "u0").await.unwrap(),
        None,
        "revoked"
    );
    // The idle lifetime (600 s) runs out: ended.
    f.clock.advance(Duration::from_secs(601));
    assert_eq!(
        f.store.introspect("alice", "t1").await.unwrap(),
        None,
        "ended"
    );
}

/// A family registered without a client is not bound: any client, or none, rotates it
/// (the JSON and cookie routes, which know no clients, work as before).
pub async fn a_family_without_a_client_admits_any_client<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let family = f.store.register("alice", "t0", None).await.unwrap();
    let rotated = RotationOutcome::Rotated {
        family: family.clone(),
    };
    assert_eq!(
        rotate_as(&f.store, "alice", "t0", Some("app-b"), "t1").await,
        rotated
    );
    assert_eq!(
        rotate_as(&f.store, "alice", "t1", None, "t2").await,
        rotated
    );
    assert_eq!(
        rotate_as(&f.store, "alice", "t2", Some("app-c"), "t3").await,
        rotated
    );
}

/// The binding is the family's, for life: it survives rotations, and another user's family
/// bound to the same client is a separate matter.
pub async fn the_client_binding_survives_rotations<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let family = f
        .store
        .register_for("alice", "t0", None, Some("app-a"))
        .await
        .unwrap();
    for i in 1..=5 {
        let (prev, jti) = (format!("t{}", i - 1), format!("t{i}"));
        rotate_as(&f.store, "alice", &prev, Some("app-a"), &jti).await;
    }
    assert_eq!(
        rotate_as(&f.store, "alice", "t5", None, "x").await,
        RotationOutcome::WrongClient { family }
    );
    let bob = f
        .store
        .register_for("bob", "b0", None, Some("app-b"))
        .await
        .unwrap();
    assert_eq!(
        rotate_as(&f.store, "bob", "b0", Some("app-b"), "b1").await,
        RotationOutcome::Rotated { family: bob }
    );
}
