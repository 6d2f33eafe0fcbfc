//! Binding a session to a key after it started: under a required policy, at adoption.

use super::common::*;

/// A session bound to a DPoP key lists the key's thumbprint (what introspection answers as
/// `cnf.jkt`), whichever way it was bound: at login, by a rotation under `Required`, at its
/// adoption with a proof. A bearer session lists none, and the client and metadata stay.
pub async fn a_key_bound_session_lists_its_key_thumbprint<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let login = f
        .store
        .register_with(
            "alice",
            "l0",
            Some("Firefox"),
            Some("app-a"),
            proof("key-a", "p0"),
        )
        .await
        .unwrap();
    let bearer = f
        .store
        .register_for("alice", "t0", None, Some("app-a"))
        .await
        .unwrap();
    let adopted = f
        .store
        .adopt_with(
            "alice",
            "legacy",
            Some("app-a"),
            None,
            *ISSUED,
            proof("key-c", "p2"),
        )
        .await
        .unwrap()
        .family()
        .cloned()
        .expect("adopted");
    let listed = |sessions: &[crate::SessionInfo], family: &FamilyId| {
        let s = sessions
            .iter()
            .find(|s| &s.family == family)
            .expect("listed");
        (
            s.key_thumbprint.clone(),
            s.client.clone(),
            s.metadata.clone(),
        )
    };
    let sessions = f.store.list("alice").await.unwrap();
    assert_eq!(
        listed(&sessions, &login),
        (
            Some("key-a".into()),
            Some("app-a".into()),
            Some("Firefox".into())
        )
    );
    assert_eq!(
        listed(&sessions, &bearer),
        (None, Some("app-a".into()), None)
    );
    assert_eq!(listed(&sessions, &adopted).0, Some("key-c".into()));
    // Bound late, by a rotation under `Required`.
    assert_eq!(
        rotate_binding(&f.store, "t0", ("key-b", "p1"), "t1").await,
        RotationOutcome::Rotated {
            family: bearer.clone()
        }
    );
    let sessions = f.store.list("alice").await.unwrap();
    assert_eq!(
        listed(&sessions, &bearer),
        (Some("key-b".into()), Some("app-a".into()), None)
    );
    // The client binding still reads right behind the thumbprint.
    assert_eq!(f.store.revoke_client("alice", "app-a").await.unwrap(), 3);
}

/// Under `Required`, a family that started without a key (a bearer login, an adoption) is
/// bound to the first proof's key by the rotation itself: other keys are refused from then
/// on, and the owner goes on rotating with it.
pub async fn a_binding_proof_binds_a_bearer_family_to_its_key<K: StoreKit>(m: K) {
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
        rotate_binding(&f.store, "t0", ("key-a", "p1"), "t1").await,
        rotated
    );
    for (key, proof_jti) in [("key-b", "p2"), ("key-c", "p3")] {
        assert_eq!(
            rotate_binding(&f.store, "t1", (key, proof_jti), "x").await,
            RotationOutcome::WrongKey {
                family: family.clone()
            },
            "{key}"
        );
    }
    assert_eq!(
        rotate_keyed(&f.store, "t1", None, "x").await,
        RotationOutcome::WrongKey {
            family: family.clone()
        },
        "without a proof"
    );
    assert_eq!(
        rotate_binding(&f.store, "t1", ("key-a", "p4"), "t2").await,
        rotated
    );
    assert!(f.store.list("alice").await.unwrap()[0].is_current("t2"));
}

/// A thief who presents a copied token first binds the family to the thief's key; the
/// owner's token, spent now, presented with the owner's key, is reuse (even inside the grace
/// window): the family is revoked, and the thief's successor dies with it. A family bound at
/// login answers such a presentation `WrongKey` instead (the login proved the key).
pub async fn a_thief_who_binds_first_is_exposed_by_the_owners_spent_token<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let family = f
        .store
        .register_for("alice", "t0", None, Some("app-a"))
        .await
        .unwrap();
    rotate_binding(&f.store, "t0", ("thief", "p1"), "t1").await;
    assert_eq!(
        rotate_binding(&f.store, "t0", ("owner", "p2"), "o1").await,
        RotationOutcome::ReuseDetected {
            family: family.clone()
        }
    );
    assert_eq!(
        rotate_binding(&f.store, "t1", ("thief", "p3"), "t2").await,
        RotationOutcome::Revoked { family }
    );
    assert!(f.store.list("alice").await.unwrap().is_empty());

    let at_login = f
        .store
        .register_with(
            "alice",
            "u0",
            None,
            Some("app-a"),
            binding_proof("owner", "p4"),
        )
        .await
        .unwrap();
    rotate_binding(&f.store, "u0", ("owner", "p5"), "u1").await;
    assert_eq!(
        rotate_binding(&f.store, "u0", ("thief", "p6"), "x").await,
        RotationOutcome::WrongKey { family: at_login }
    );
}

/// An adoption with a proof binds the new family to the proof's key (late, as a rotation
/// does: a legacy token may have been copied before); the rotation that follows spends the
/// proof.
pub async fn an_adoption_with_a_proof_binds_the_family_to_its_key<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let adoption = f
        .store
        .adopt_with(
            "alice",
            "legacy",
            Some("app-a"),
            None,
            *ISSUED,
            binding_proof("key-a", "p1"),
        )
        .await
        .unwrap();
    let family = adoption.family().unwrap().clone();
    assert_eq!(
        rotate_binding(&f.store, "legacy", ("key-a", "p1"), "t1").await,
        RotationOutcome::Rotated {
            family: family.clone()
        },
        "the adoption left the proof to the rotation"
    );
    assert_eq!(
        rotate_binding(&f.store, "t1", ("key-b", "p2"), "x").await,
        RotationOutcome::WrongKey {
            family: family.clone()
        }
    );
    assert_eq!(
        rotate_binding(&f.store, "legacy", ("key-b", "p3"), "x").await,
        RotationOutcome::ReuseDetected { family }
    );
}

/// A family bound to a client and a key: another client is told `WrongClient` (the event
/// and metric fire) and learns nothing of the key; the client with another key, `WrongKey`.
pub async fn another_client_is_refused_as_such_before_the_key_is_checked<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let family = f
        .store
        .register_with("alice", "t0", None, Some("app-a"), proof("key-a", "p0"))
        .await
        .unwrap();
    for (client, key) in [
        (Some("app-b"), "key-b"),
        (Some("app-b"), "key-a"),
        (None, "key-b"),
    ] {
        let outcome = f
            .store
            .rotate_with(
                "alice",
                "t0",
                client,
                proof(key, &format!("{client:?}{key}")),
                next("x", &tok("x")),
            )
            .await
            .unwrap();
        assert_eq!(
            outcome,
            RotationOutcome::WrongClient {
                family: family.clone()
            },
            "{client:?} {key}"
        );
    }
    let bearer = f
        .store
        .rotate_with("alice", "t0", Some("app-b"), None, next("x", &tok("x")))
        .await
        .unwrap();
    assert_eq!(
        bearer,
        RotationOutcome::WrongClient {
            family: family.clone()
        }
    );
    assert_eq!(
        rotate_keyed(&f.store, "t0", Some(("key-b", "p9")), "x").await,
        RotationOutcome::WrongKey { family }
    );
}

/// A key proven without a single-use id, as by a client certificate (RFC 8705).
fn certificate(thumbprint: &str) -> Option<KeyProof<'_>> {
    Some(KeyProof {
        thumbprint,
        jti: None,
        binds: false,
    })
}

/// A family bound at login to a key proven without a single-use id (a client certificate)
/// rotates with that key on every refresh, nothing spent for it, so the same proof serves
/// again and again and for other users too; another key or none is refused and changes
/// nothing; the session lists the key's thumbprint.
pub async fn a_certificate_bound_family_rotates_only_with_its_certificate<K: StoreKit>(m: K) {
    let f = m.make(|c| c);
    let cert_a = "x5t#S256:cert-a";
    let family = f
        .store
        .register_with("alice", "t0", None, Some("app-a"), certificate(cert_a))
        .await
        .unwrap();
    // The same certificate logs in another user: no proof id to spend, nothing replayed.
    f.store
        .register_with("bob", "b0", None, Some("app-a"), certificate(cert_a))
        .await
        .unwrap();
    let wrong = RotationOutcome::WrongKey {
        family: family.clone(),
    };
    let rotate = |presented: &'static str, key: Option<&'static str>, jti: &'static str| {
        let store = &f.store;
        async move {
            store
                .rotate_with(
                    "alice",
                    presented,
                    Some("app-a"),
                    key.and_then(certificate),
                    next(jti, &tok(jti)),
                )
                .await
                .unwrap()
        }
    };
    assert_eq!(rotate("t0", None, "x").await, wrong);
    assert_eq!(rotate("t0", Some("x5t#S256:cert-b"), "x").await, wrong);
    assert_eq!(
        rotate("t0", Some("cert-a"), "x").await,
        wrong,
        "another kind's thumbprint of the same value is another key"
    );
    for (prev, jti) in [("t0", "t1"), ("t1", "t2"), ("t2", "t3")] {
        assert_eq!(
            rotate(prev, Some(cert_a), jti).await,
            RotationOutcome::Rotated {
                family: family.clone()
            }
        );
    }
    let sessions = f.store.list("alice").await.unwrap();
    assert!(sessions[0].is_current("t3"));
    assert_eq!(sessions[0].key_thumbprint.as_deref(), Some(cert_a));
}
