//! Adoption of tokens minted before the store recorded them, and what ends it.

use super::common::*;

/// Turning rotation on in a running app: a token the store never recorded is adopted as the
/// current token of a new family, once; it then rotates like any other.
pub async fn an_unknown_token_is_adopted_once_as_the_current_token_of_a_new_family<K: StoreKit>(
    m: K,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let f = m.make(move |c| c.on_event(move |e| sink.lock().unwrap().push(e.kind)));
    let adoption = f
        .store
        .adopt("alice", "legacy", None, Some("Firefox"))
        .await
        .unwrap();
    let Adoption::Adopted { family } = adoption else {
        panic!("{adoption:?}");
    };
    let sessions = f.store.list("alice").await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].family, family);
    assert!(sessions[0].is_current("legacy"));
    assert_eq!(sessions[0].metadata.as_deref(), Some("Firefox"));
    assert_eq!(
        f.store.adopt("alice", "legacy", None, None).await.unwrap(),
        Adoption::Known {
            family: family.clone()
        },
        "adopted once: the same call sent again finds it"
    );
    assert_eq!(
        rotate_in(&f.store, "legacy", &family, None, "t1").await,
        RotationOutcome::Rotated {
            family: family.clone()
        }
    );
    assert_eq!(
        f.store.adopt("alice", "legacy", None, None).await.unwrap(),
        Adoption::Known {
            family: family.clone()
        }
    );
    assert!(f.store.list("alice").await.unwrap()[0].is_current("t1"));
    use RotationEventKind::*;
    assert_eq!(*seen.lock().unwrap(), [Adopted, Rotated]);
}

/// The adoption is remembered until the token expires, however its family ends: a spent
/// legacy token meets the state machine, never a second adoption.
pub async fn a_spent_adopted_token_is_never_adopted_again<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let family = f
        .store
        .adopt("alice", "legacy", None, None)
        .await
        .unwrap()
        .family()
        .unwrap()
        .clone();
    rotate_in(&f.store, "legacy", &family, None, "t1").await;
    let known = Adoption::Known {
        family: family.clone(),
    };
    // Past the grace window the spent token is reuse, and the family is revoked.
    f.clock.advance(Duration::from_secs(2));
    assert_eq!(
        f.store.adopt("alice", "legacy", None, None).await.unwrap(),
        known
    );
    assert_eq!(
        rotate_in(&f.store, "legacy", &family, None, "x").await,
        RotationOutcome::ReuseDetected {
            family: family.clone()
        }
    );
    assert_eq!(
        f.store.adopt("alice", "legacy", None, None).await.unwrap(),
        known
    );
    assert_eq!(
        rotate_in(&f.store, "legacy", &family, None, "y").await,
        RotationOutcome::Revoked {
            family: family.clone()
        }
    );
    // Once the family has ended (idle lifetime 600 s) the record alone remembers it.
    f.clock.advance(Duration::from_secs(601));
    assert_eq!(
        f.store.adopt("alice", "legacy", None, None).await.unwrap(),
        known
    );
    assert_eq!(
        rotate_in(&f.store, "legacy", &family, None, "z").await,
        RotationOutcome::Unknown
    );
    // A login prunes the ended family; the record still holds.
    f.store.register("alice", "fresh", None).await.unwrap();
    assert_eq!(
        f.store.adopt("alice", "legacy", None, None).await.unwrap(),
        known
    );
    assert_eq!(f.store.list("alice").await.unwrap().len(), 1);
}

/// Concurrent adoptions of one token make one family.
pub async fn concurrent_adoptions_of_one_token_make_one_family<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let n = 32;
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (store, barrier) = (f.store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.adopt("alice", "legacy", None, None).await.unwrap()
            })
        })
        .collect();
    let mut adoptions = Vec::new();
    for task in tasks {
        adoptions.push(task.await.unwrap());
    }
    let adopted: Vec<&Adoption> = adoptions.iter().filter(|a| a.is_adopted()).collect();
    assert_eq!(adopted.len(), 1, "{adoptions:?}");
    let family = adopted[0].family().unwrap();
    assert!(
        adoptions.iter().all(|a| a.family() == Some(family)),
        "{adoptions:?}"
    );
    let sessions = f.store.list("alice").await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(&sessions[0].family, family);
}

/// A token registered at login (current or spent) is the store's already: adoption finds
/// its family and changes nothing.
pub async fn a_registered_token_is_known_not_adopted<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let family = f.store.register("alice", "t0", None).await.unwrap();
    let known = Adoption::Known {
        family: family.clone(),
    };
    assert_eq!(
        f.store.adopt("alice", "t0", None, None).await.unwrap(),
        known
    );
    rotate(&f.store, "alice", "t0", "t1").await;
    for jti in ["t0", "t1"] {
        assert_eq!(
            f.store.adopt("alice", jti, None, None).await.unwrap(),
            known,
            "{jti}"
        );
    }
    let sessions = f.store.list("alice").await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert!(sessions[0].is_current("t1"));
    // A family id the user has already is not started again for another token.
    let token = TokenRef::new("stranger", *EXP).issued_at(*ISSUED);
    assert!(matches!(
        f.store.inner.adopt("alice", token, &family, None).await,
        Err(StoreError::DuplicateJti)
    ));
}

/// An adopted token starts its family as a login would: the session cap evicts the least
/// recently used session, and the family is bound to the client the token was issued to.
pub async fn adoption_respects_the_session_cap_and_the_client_binding<K: StoreKit>(m: K) {
    let f = m.make(|c| c.max_sessions_per_user(Some(2)));
    let d0 = f.store.register("alice", "d0", None).await.unwrap();
    f.clock.advance(Duration::from_secs(1));
    let d1 = f.store.register("alice", "d1", None).await.unwrap();
    f.clock.advance(Duration::from_secs(1));
    let adoption = f
        .store
        .adopt("alice", "legacy", Some("app-a"), None)
        .await
        .unwrap();
    assert!(adoption.is_adopted(), "{adoption:?}");
    let family = adoption.family().unwrap().clone();
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
        [d1, family.clone()],
        "the oldest login {d0} was evicted"
    );
    for client in [Some("app-b"), None] {
        assert_eq!(
            rotate_in(&f.store, "legacy", &family, client, "stolen").await,
            RotationOutcome::WrongClient {
                family: family.clone()
            },
            "{client:?}"
        );
    }
    assert_eq!(
        rotate_in(&f.store, "legacy", &family, Some("app-a"), "t1").await,
        RotationOutcome::Rotated { family }
    );
}

/// A token so far past its `exp` that its adoption could not be remembered is refused.
pub async fn a_long_expired_token_is_not_adopted<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let long_ago = *EXP - 86_400 - 3 * 3600;
    let token = TokenRef::new("ancient", long_ago);
    for _ in 0..2 {
        assert!(matches!(
            f.store
                .inner
                .adopt("alice", token, &FamilyId::random(), None)
                .await,
            Err(StoreError::ExpiryOutOfRange(exp)) if exp == long_ago
        ));
    }
    assert!(f.store.list("alice").await.unwrap().is_empty());
}

/// "Log out everywhere" ends the user's legacy tokens too, adopted yet or not: one not yet
/// presented is refused afterwards, changing nothing. Another user's are not touched, and a
/// token issued after the revocation is adopted.
pub async fn a_revoke_all_ends_the_adoption_of_tokens_issued_before<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let adopted = f
        .store
        .adopt("alice", "legacy-1", None, None)
        .await
        .unwrap();
    assert!(adopted.is_adopted(), "{adopted:?}");
    assert_eq!(f.store.revoke_all("alice").await.unwrap(), 1);
    for _ in 0..2 {
        let second = f
            .store
            .adopt("alice", "legacy-2", None, None)
            .await
            .unwrap();
        assert_eq!(second, REVOKED_AFTER_ISSUE);
    }
    assert!(f.store.list("alice").await.unwrap().is_empty());
    assert_eq!(
        rotate(&f.store, "alice", "legacy-2", "stolen").await,
        RotationOutcome::Unknown,
        "the refused token is no session"
    );
    let bob = f.store.adopt("bob", "legacy-3", None, None).await.unwrap();
    assert!(bob.is_adopted(), "{bob:?}");
    f.clock.advance(Duration::from_secs(2));
    let issued_after = store_now_secs(&f.clock);
    let later = f
        .store
        .adopt_issued_at("alice", "legacy-4", None, None, issued_after)
        .await
        .unwrap();
    assert!(later.is_adopted(), "{later:?}");
}

/// A reuse that revokes every family of the user (`revoke_all_on_reuse`) is a revoke-all:
/// it ends the adoption of the user's tokens issued before it as well.
pub async fn a_reuse_that_revokes_everything_ends_adoption_too<K: StoreKit>(m: K) {
    let f = m.make(|c| c.revoke_all_on_reuse(true));
    chain(&f.store, "alice", 1).await;
    f.clock.advance(Duration::from_secs(5));
    assert!(matches!(
        rotate(&f.store, "alice", "t0", "x").await,
        RotationOutcome::ReuseDetected { .. }
    ));
    let legacy = f.store.adopt("alice", "legacy", None, None).await.unwrap();
    assert_eq!(legacy, REVOKED_AFTER_ISSUE);
}

/// Revoking a client's sessions ends the adoption of that client's tokens issued before,
/// and of no other client's.
pub async fn revoking_a_client_ends_the_adoption_of_its_tokens_issued_before<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    assert_eq!(f.store.revoke_client("alice", "app-a").await.unwrap(), 0);
    let of_a = f
        .store
        .adopt("alice", "legacy-a", Some("app-a"), None)
        .await
        .unwrap();
    assert_eq!(of_a, REVOKED_AFTER_ISSUE);
    for (jti, client) in [("legacy-b", Some("app-b")), ("legacy-none", None)] {
        let other = f.store.adopt("alice", jti, client, None).await.unwrap();
        assert!(other.is_adopted(), "{client:?}: {other:?}");
    }
    assert_eq!(f.store.list("alice").await.unwrap().len(), 2);
}

/// A legacy token issued an absolute session lifetime ago (or naming no issue time) is not
/// adopted: had it been a session it would have ended, and no revocation mark lasts longer.
pub async fn a_legacy_token_older_than_a_session_is_not_adopted<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let too_old = Adoption::Refused {
        reason: AdoptionRefusal::IssuedTooLongAgo,
    };
    let long_ago = store_now_secs(&f.clock) - 3600 - 1;
    let old = f
        .store
        .adopt_issued_at("alice", "old", None, None, long_ago)
        .await
        .unwrap();
    assert_eq!(old, too_old);
    let claim = FamilyId::for_legacy_token("no-iat");
    let token = TokenRef::new("no-iat", *EXP);
    let without_iat = f
        .store
        .inner
        .adopt("alice", token, &claim, None)
        .await
        .unwrap();
    assert_eq!(without_iat, too_old);
    assert!(f.store.list("alice").await.unwrap().is_empty());
}

/// A recorded token whose session ended, adopted again, is the current token of its new
/// session, also when the user's token-index bucket for its hour is full (its old entry is
/// overwritten, not shadowed).
pub async fn a_token_adopted_after_its_session_ended_rotates_in_its_new_session<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    for i in 0..20 {
        f.store
            .register("alice", &format!("old{i}"), None)
            .await
            .unwrap();
    }
    f.clock.advance(Duration::from_secs(700)); // past the idle lifetime: every session ended
    let adopted = f.store.adopt("alice", "old3", None, None).await.unwrap();
    let family = adopted.family().cloned().expect("adopted");
    assert!(adopted.is_adopted(), "{adopted:?}");
    let outcome = rotate(&f.store, "alice", "old3", "new1").await;
    assert_eq!(outcome, RotationOutcome::Rotated { family });
}

/// Revoking one session ends that family alone: the user's other legacy tokens (other
/// devices) are still adopted.
pub async fn revoking_one_session_leaves_other_legacy_tokens_adoptable<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let adopted = f
        .store
        .adopt("alice", "legacy-1", None, None)
        .await
        .unwrap();
    let family = adopted.family().unwrap().clone();
    assert!(f.store.revoke_family("alice", &family).await.unwrap());
    let sibling = f
        .store
        .adopt("alice", "legacy-2", None, None)
        .await
        .unwrap();
    assert!(sibling.is_adopted(), "{sibling:?}");
}
