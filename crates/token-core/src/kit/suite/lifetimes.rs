//! Unknown and duplicate tokens, family ids, the idle and absolute lifetimes, expiries.

use super::common::*;

/// Unknown tokens are refused.
pub async fn unknown_tokens_are_refused<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let outcome = rotate(&f.store, "alice", "nope", "x").await;
    assert_eq!(outcome, RotationOutcome::Unknown);
    chain(&f.store, "alice", 1).await;
    let outcome = rotate(&f.store, "alice", "nope", "x").await;
    assert_eq!(outcome, RotationOutcome::Unknown);
    // Nothing was recorded for the refused successor.
    let outcome = rotate(&f.store, "alice", "x", "y").await;
    assert_eq!(outcome, RotationOutcome::Unknown);
}

/// Duplicate jtis are refused.
pub async fn duplicate_jtis_are_refused<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let family = f.store.register("alice", "t0", None).await.unwrap();
    f.store.register("alice", "other", None).await.unwrap();
    if f.store.mode == Mode::TokenIndex {
        // The token index knows every recorded jti of the user.
        let err = f.store.register("alice", "t0", None).await.unwrap_err();
        assert!(matches!(err, StoreError::DuplicateJti), "{err:?}");
        let err = f
            .store
            .rotate("alice", "t0", next("other", &tok("other")))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::DuplicateJti), "{err:?}");
    }
    // In either mode a successor may not reuse the jti of its own family's tokens.
    let err = f
        .store
        .rotate("alice", "t0", next("t0", &tok("t0")))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::DuplicateJti), "{err:?}");
    // The refused rotations changed nothing: t0 is still current.
    let outcome = rotate(&f.store, "alice", "t0", "t1").await;
    assert_eq!(outcome, RotationOutcome::Rotated { family });
    // The same jti for another user is another token.
    f.store.register("bob", "t0", None).await.unwrap();
}

/// A family id is registered once.
pub async fn a_family_id_is_registered_once<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let exp = *EXP;
    let sid = FamilyId::random();
    let first = crate::TokenRef::new("t0", exp).in_family(&sid);
    assert_eq!(
        f.store.inner.register("alice", first, None).await.unwrap(),
        sid
    );
    // The same registration sent again (a reply lost on the way back) is no clash ...
    assert_eq!(
        f.store.inner.register("alice", first, None).await.unwrap(),
        sid
    );
    // ... but another token claiming a family that exists is.
    let clash = crate::TokenRef::new("u0", exp).in_family(&sid);
    let err = f
        .store
        .inner
        .register("alice", clash, None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::DuplicateJti), "{err:?}");
    assert_eq!(f.store.list("alice").await.unwrap().len(), 1);
}

/// Absolute lifetime is never extended.
pub async fn absolute_lifetime_is_never_extended<K: StoreKit>(m: K) {
    let f = m.make(|c| {
        c.absolute_lifetime(Duration::from_secs(100))
            .idle_lifetime(Duration::from_secs(60))
    });
    let family = f.store.register("alice", "t0", None).await.unwrap();
    f.clock.advance(Duration::from_secs(50));
    rotate(&f.store, "alice", "t0", "t1").await;
    // A younger session keeps the user's hash alive: the ended family is still gone.
    f.store.register("alice", "young", None).await.unwrap();
    f.clock.advance(Duration::from_secs(45));
    rotate(&f.store, "alice", "t1", "t2").await;
    let sessions = f.store.list("alice").await.unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[0].family, family);
    assert_eq!(
        (sessions[0].expires_at - sessions[0].created_at).num_seconds(),
        100,
        "idle renewal stops at the absolute end"
    );
    f.clock.advance(Duration::from_secs(10));
    let outcome = rotate(&f.store, "alice", "t2", "t3").await;
    assert_eq!(outcome, RotationOutcome::Unknown, "{family:?} ended");
    assert_eq!(f.store.list("alice").await.unwrap().len(), 1);
}

/// Idle lifetime ends family and rotation renews it.
pub async fn idle_lifetime_ends_family_and_rotation_renews_it<K: StoreKit>(m: K) {
    let f = m.make(|c| c.idle_lifetime(Duration::from_secs(60)));
    f.store.register("alice", "a0", None).await.unwrap();
    let idle = f.store.register("alice", "b0", None).await.unwrap();
    f.clock.advance(Duration::from_secs(40));
    rotate(&f.store, "alice", "a0", "a1").await;
    f.clock.advance(Duration::from_secs(40));
    // a: rotated 40 s ago, still live. b: idle for 80 s, ended.
    let outcome = rotate(&f.store, "alice", "a1", "a2").await;
    assert!(
        matches!(outcome, RotationOutcome::Rotated { .. }),
        "{outcome:?}"
    );
    let outcome = rotate(&f.store, "alice", "b0", "b1").await;
    assert_eq!(outcome, RotationOutcome::Unknown, "{idle:?} ended");
    // A login prunes the user's ended families; the answer stays the same.
    f.store.register("alice", "c0", None).await.unwrap();
    let outcome = rotate(&f.store, "alice", "b0", "b1").await;
    assert_eq!(outcome, RotationOutcome::Unknown, "pruned by the login");
    let sessions = f.store.list("alice").await.unwrap();
    assert_eq!(sessions.len(), 2, "a and c");
}

/// An ended family is gone for every operation before any prune or TTL removes it: both
/// stores answer as they will once its bytes are gone (unknown, nothing to revoke, its id
/// free again), so they agree whenever Redis's TTLs fire.
pub async fn an_ended_family_is_gone_before_it_is_pruned<K: StoreKit>(m: K) {
    let f = m.make(|c| c.idle_lifetime(Duration::from_secs(60)));
    let short = f.store.register("alice", "a0", None).await.unwrap();
    let revoked = f.store.register("alice", "r0", None).await.unwrap();
    f.store.revoke_family("alice", &revoked).await.unwrap();
    f.clock.advance(Duration::from_secs(30));
    // A younger session keeps the user's hash (and both ended records) in Redis.
    f.store.register("alice", "b0", None).await.unwrap();
    f.clock.advance(Duration::from_secs(40));
    assert_eq!(
        rotate(&f.store, "alice", "a0", "a1").await,
        RotationOutcome::Unknown
    );
    assert_eq!(
        rotate(&f.store, "alice", "r0", "r1").await,
        RotationOutcome::Unknown,
        "a revoked family's tombstone ends with the family"
    );
    assert_eq!(f.store.revoke("alice", "a0").await.unwrap(), None);
    assert!(!f.store.revoke_family("alice", &short).await.unwrap());
    // Its family id (with a family claim) or its jti (token index) can be registered again.
    if f.store.mode == Mode::FamilyClaim {
        let token = TokenRef::new("a9", *EXP).in_family(&short);
        let again = f.store.inner.register("alice", token, None).await.unwrap();
        assert_eq!(again, short, "the same family id, registered anew");
    } else {
        f.store.register("alice", "a0", None).await.unwrap();
    }
    assert_eq!(f.store.list("alice").await.unwrap().len(), 2);
}

/// The same once real time has passed the end and Redis's TTLs have fired: a store whose
/// keys expired answers exactly as one that still holds the ended records.
pub async fn ended_families_answer_alike_once_their_keys_expired<K: StoreKit>(m: K) {
    // Token-index entries live until their family's absolute end (an idle end can still
    // move), so that one is short too.
    let f = m.make(|c| {
        c.idle_lifetime(Duration::from_millis(700))
            .absolute_lifetime(Duration::from_millis(1000))
            .grace(Duration::from_millis(100))
    });
    let family = f.store.register("alice", "a0", None).await.unwrap();
    rotate(&f.store, "alice", "a0", "a1").await;
    let revoked = f.store.register("alice", "r0", None).await.unwrap();
    f.store.revoke_family("alice", &revoked).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1400)).await;
    if let Some(left) = m.keys_left(&f) {
        assert_eq!(left, 0, "every key expired with its families");
    }
    for (presented, successor) in [("a1", "a2"), ("a0", "ax"), ("r0", "r1")] {
        assert_eq!(
            rotate(&f.store, "alice", presented, successor).await,
            RotationOutcome::Unknown,
            "{presented}"
        );
    }
    assert_eq!(f.store.revoke("alice", "a1").await.unwrap(), None);
    assert!(!f.store.revoke_family("alice", &family).await.unwrap());
    assert_eq!(f.store.revoke_all("alice").await.unwrap(), 0);
    assert!(f.store.list("alice").await.unwrap().is_empty());
    f.store.register("alice", "a1", None).await.unwrap();
}

/// With the idle lifetime equal to the absolute one (as in the examples), a family's end says
/// nothing about its use: eviction at the cap still goes by last use.
pub async fn eviction_follows_last_use_when_idle_equals_absolute<K: StoreKit>(m: K) {
    let f = m.make(|c| {
        c.max_sessions_per_user(Some(2))
            .absolute_lifetime(Duration::from_secs(600))
            .idle_lifetime(Duration::from_secs(600))
    });
    let a = f.store.register("alice", "a0", None).await.unwrap();
    f.clock.advance(Duration::from_secs(10));
    f.store.register("alice", "b0", None).await.unwrap();
    f.clock.advance(Duration::from_secs(10));
    // a, created first, was refreshed a moment ago; b was never used.
    rotate(&f.store, "alice", "a0", "a1").await;
    let c = f.store.register("alice", "c0", None).await.unwrap();
    let families: Vec<_> = f
        .store
        .list("alice")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.family)
        .collect();
    assert_eq!(families, [a, c], "b, the least recently used, was evicted");
    assert_eq!(
        rotate(&f.store, "alice", "b0", "b1").await,
        RotationOutcome::Unknown
    );
}

/// An `exp` the store cannot record (near `i64::MAX`, or before the epoch) gets the same
/// clear refusal from both stores, in both modes, and changes nothing.
pub async fn expiries_out_of_range_are_refused_alike<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let store = &f.store.inner;
    for exp in [i64::MAX, crate::MAX_EXPIRES_AT + 1, -1] {
        let family = FamilyId::random();
        let mut token = TokenRef::new("far", exp);
        if f.store.mode == Mode::FamilyClaim {
            token = token.in_family(&family);
        }
        let err = store.register("alice", token, None).await.unwrap_err();
        assert!(
            matches!(err, StoreError::ExpiryOutOfRange(e) if e == exp),
            "{exp}: {err:?}"
        );
    }
    f.store.register("alice", "t0", None).await.unwrap();
    let family = f.store.list("alice").await.unwrap()[0].family.clone();
    let mut presented = TokenRef::new("t0", *EXP);
    if f.store.mode == Mode::FamilyClaim {
        presented = presented.in_family(&family);
    }
    let far = Successor {
        jti: "t1",
        token: "jwt-t1",
        expires_at: i64::MAX,
    };
    let err = store.rotate("alice", presented, far).await.unwrap_err();
    assert!(matches!(err, StoreError::ExpiryOutOfRange(_)), "{err:?}");
    assert!(
        f.store.list("alice").await.unwrap()[0].is_current("t0"),
        "nothing was spent"
    );
    assert_eq!(store.list("alice").await.unwrap().len(), 1);
}
