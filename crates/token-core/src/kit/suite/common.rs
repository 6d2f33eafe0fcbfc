//! What the tests share: the imports, and the helpers that drive a store the way the tests
//! name tokens.

pub(crate) use std::collections::HashSet;
pub(crate) use std::sync::{Arc, Mutex};
pub(crate) use std::time::Duration;

pub(crate) use crate::kit::fixture::{ByJti, EXP, ISSUED, Mode, StoreKit, next};
pub(crate) use crate::{
    Adoption, AdoptionRefusal, FamilyId, KeyProof, RotationEventKind, RotationOutcome,
    RotationStore, StoreError, Successor, TokenRef,
};

/// Rotates the adopted token `presented` of `family` to `jti`, as the layer does after `adopt`.
pub(crate) async fn rotate_in<S: RotationStore>(
    store: &ByJti<S>,
    presented: &str,
    family: &FamilyId,
    client: Option<&str>,
    jti: &str,
) -> RotationOutcome {
    store
        .rotate_in("alice", presented, family, client, next(jti, &tok(jti)))
        .await
        .unwrap()
}

/// The store's clock now, in whole seconds (the `iat` of a token minted now).
pub(crate) fn store_now_secs(clock: &crate::ClockOffset) -> i64 {
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    (wall + clock.millis()) / 1000
}

pub(crate) const REVOKED_AFTER_ISSUE: Adoption = Adoption::Refused {
    reason: AdoptionRefusal::RevokedAfterIssue,
};

/// A proof as the layer passes it under `DpopPolicy::Required`: it binds a family that
/// started without a key.
pub(crate) fn binding_proof<'a>(key: &'a str, jti: &'a str) -> Option<KeyProof<'a>> {
    Some(KeyProof {
        thumbprint: key,
        jti: Some(jti),
        binds: true,
    })
}

/// Rotates `presented` to `jti` for app-a with a binding proof by `key`.
pub(crate) async fn rotate_binding<S: RotationStore>(
    store: &ByJti<S>,
    presented: &str,
    (key, proof_jti): (&str, &str),
    jti: &str,
) -> RotationOutcome {
    store
        .rotate_with(
            "alice",
            presented,
            Some("app-a"),
            binding_proof(key, proof_jti),
            next(jti, &tok(jti)),
        )
        .await
        .unwrap()
}

/// Rotates `presented` to `jti` as presented by the OAuth 2.0 client `client`.
pub(crate) async fn rotate_as<S: RotationStore>(
    store: &ByJti<S>,
    user: &str,
    presented: &str,
    client: Option<&str>,
    jti: &str,
) -> RotationOutcome {
    store
        .rotate_as(user, presented, client, next(jti, &tok(jti)))
        .await
        .unwrap()
}

/// A DPoP proof by `key` with the single-use id `jti`, as the layer passes it once verified.
pub(crate) fn proof<'a>(key: &'a str, jti: &'a str) -> Option<KeyProof<'a>> {
    Some(KeyProof {
        thumbprint: key,
        jti: Some(jti),
        binds: false,
    })
}

/// Rotates `presented` to `jti` with a DPoP proof by `key` (its id `proof_jti`), or none.
pub(crate) async fn rotate_keyed<S: RotationStore>(
    store: &ByJti<S>,
    presented: &str,
    key: Option<(&str, &str)>,
    jti: &str,
) -> RotationOutcome {
    let proof = key.and_then(|(key, proof_jti)| proof(key, proof_jti));
    store
        .rotate_with(
            "alice",
            presented,
            Some("app-a"),
            proof,
            next(jti, &tok(jti)),
        )
        .await
        .unwrap()
}

/// `n` concurrent rotations of `t0`, each with its own successor `s<i>`.
pub(crate) async fn race<S: RotationStore>(
    store: &ByJti<S>,
    n: usize,
) -> Vec<(RotationOutcome, String)> {
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                let jti = format!("s{i}");
                barrier.wait().await;
                let outcome = rotate(&store, "alice", "t0", &jti).await;
                (outcome, jti)
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    outcomes
}

pub(crate) fn tok(jti: &str) -> String {
    format!("header.payload-of-{jti}.signature")
}

/// Rotates `presented` to the successor `jti` (whose token is `tok(jti)`).
pub(crate) async fn rotate<S: RotationStore>(
    store: &ByJti<S>,
    user: &str,
    presented: &str,
    jti: &str,
) -> RotationOutcome {
    store
        .rotate(user, presented, next(jti, &tok(jti)))
        .await
        .unwrap()
}

/// Registers `t0` for `user` and rotates it `n` times (t0 -> t1 -> ... -> tn).
pub(crate) async fn chain<S: RotationStore>(store: &ByJti<S>, user: &str, n: usize) -> FamilyId {
    let family = store.register(user, "t0", None).await.unwrap();
    for i in 1..=n {
        let (jti, prev) = (format!("t{i}"), format!("t{}", i - 1));
        let outcome = rotate(store, user, &prev, &jti).await;
        assert_eq!(
            outcome,
            RotationOutcome::Rotated {
                family: family.clone()
            }
        );
    }
    family
}
